/*-------------------------------------------------------------------------
 *
 * wtsmgr_split.h
 *	  Cutting a run of blocks into atomic write units.
 *
 * PostgreSQL needs each block written untorn, not a whole multi-block
 * write.  Linux has no flag for "multiple atomicity" (each unit untorn, the
 * write as a whole tearable only between units), so wtsmgr gets it by
 * cutting a run of consecutive blocks into naturally aligned power-of-two
 * units of whole blocks, each one a valid RWF_ATOMIC write, and submitting
 * them together.  The kernel's rules for one RWF_ATOMIC write: its length is
 * a power of two within [unit_min, unit_max], its file offset is a multiple
 * of its length, it carries at most segments_max iovecs, and its buffers
 * meet the O_DIRECT memory alignment.
 *
 * This header depends on nothing but C99, so that test/split_test.c can
 * check the planner exhaustively outside the server.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_SPLIT_H
#define WTSMGR_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One atomic write unit of a run */
typedef struct WtsmgrUnit
{
	uint32_t	first;			/* index of its first block in the run */
	uint32_t	nblocks;		/* a power of two */
	uint32_t	niov;			/* iovecs it needs without a bounce buffer */
	bool		bounce;			/* must be copied into one aligned buffer */
} WtsmgrUnit;

/*
 * The largest power of two that is <= x, for x > 0.
 */
static inline uint32_t
wtsmgr_floor_pow2(uint32_t x)
{
	uint32_t	p = 1;

	while (p <= x / 2)
		p *= 2;
	return p;
}

/*
 * wtsmgr_plan_units() -- Cut a run of nblocks blocks of blcksz bytes, the
 * first at block position seg_block of its file, into atomic write units.
 *
 * units must have room for nblocks entries.  buffers[i] is the memory of the
 * run's i-th block.  Returns the number of units, or 0 if no unit of one
 * block is a valid atomic write under these limits (the caller must then
 * refuse the write).
 *
 * Greedy from the start of the run: each unit is the largest power of two of
 * blocks that fits what is left, stays within unit_max and is aligned at its
 * offset.  That cuts a run into the fewest naturally aligned units.  A unit
 * whose blocks need more iovecs than segments_max (after joining buffers
 * that are adjacent in memory), or whose memory is not aligned for
 * O_DIRECT, is marked for a bounce buffer; it is still one atomic write.
 */
static inline uint32_t
wtsmgr_plan_units(uint64_t seg_block, uint32_t nblocks, uint32_t blcksz,
				  uint32_t unit_min, uint32_t unit_max, uint32_t segments_max,
				  uint32_t mem_align, const void *const *buffers,
				  WtsmgrUnit *units)
{
	uint32_t	max_blocks;
	uint32_t	nunits = 0;
	uint32_t	done = 0;

	if (nblocks == 0 || blcksz < unit_min || blcksz > unit_max ||
		(blcksz & (blcksz - 1)) != 0 || segments_max == 0)
		return 0;
	max_blocks = wtsmgr_floor_pow2(unit_max / blcksz);

	while (done < nblocks)
	{
		uint64_t	pos = seg_block + done;
		uint32_t	n = wtsmgr_floor_pow2(nblocks - done);
		WtsmgrUnit *u = &units[nunits++];

		if (n > max_blocks)
			n = max_blocks;
		while (pos % n != 0)
			n /= 2;

		u->first = done;
		u->nblocks = n;
		u->niov = 1;
		u->bounce = false;
		for (uint32_t i = done; i < done + n; i++)
		{
			if (mem_align > 1 && (uintptr_t) buffers[i] % mem_align != 0)
				u->bounce = true;
			if (i > done &&
				(const char *) buffers[i] != (const char *) buffers[i - 1] + blcksz)
				u->niov++;
		}
		if (u->niov > segments_max)
			u->bounce = true;
		done += n;
	}

	return nunits;
}

#endif							/* WTSMGR_SPLIT_H */
