/*-------------------------------------------------------------------------
 *
 * split_test.c
 *	  Unit test of wtsmgr_plan_units(), the multiple-atomicity planner.
 *
 * For several (unit_min, unit_max, segments_max) limits, every run length
 * from 1 to 128 blocks (MAX_IO_COMBINE_LIMIT) at every block position over
 * two periods of the largest unit (and near the end of a 1 GB segment), and
 * three buffer layouts (one contiguous aligned area, separate blocks, one
 * misaligned block), checks that:
 *
 *	- the units cover the run exactly once, in order;
 *	- each unit is a power of two of whole blocks, within [unit_min,
 *	  unit_max], at a file offset that is a multiple of its length;
 *	- a unit is bounced exactly when its iovecs exceed segments_max or its
 *	  memory is misaligned;
 *	- the number of units is the smallest possible, computed independently;
 *	- limits under which no block can be written atomically yield 0.
 *
 * Prints TAP.  Built and run by "make check-split" (scripts/test.sh).
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200112L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wtsmgr_split.h"

#define BLCKSZ 8192
#define MAX_RUN 128
#define RELSEG_BLOCKS 131072
#define ALIGN 4096

static int	ntests = 0;
static int	nfailed = 0;

static void
report(int ok, const char *name, long cases)
{
	ntests++;
	if (!ok)
		nfailed++;
	printf("%sok %d - %s", ok ? "" : "not ", ntests, name);
	if (cases > 0)
		printf(" (%ld runs)", cases);
	printf("\n");
}

/* smallest number of aligned power-of-two units covering [pos, pos + n) */
static uint32_t
min_units(uint64_t pos, uint32_t n, uint32_t max_blocks)
{
	uint32_t	best[MAX_RUN + 1];

	best[n] = 0;
	for (int i = (int) n - 1; i >= 0; i--)
	{
		best[i] = UINT32_MAX;
		for (uint32_t k = 1; k <= max_blocks && i + k <= n; k *= 2)
		{
			if ((pos + i) % k == 0 && best[i + k] != UINT32_MAX &&
				best[i + k] + 1 < best[i])
				best[i] = best[i + k] + 1;
		}
	}
	return best[0];
}

static int
is_pow2(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Check one plan; returns an error message or NULL. */
static const char *
check_plan(uint64_t pos, uint32_t n, uint32_t unit_min, uint32_t unit_max,
		   uint32_t segments_max, const void *const *bufs)
{
	WtsmgrUnit	units[MAX_RUN];
	uint32_t	nunits;
	uint32_t	next = 0;
	uint32_t	max_blocks = wtsmgr_floor_pow2(unit_max / BLCKSZ);

	nunits = wtsmgr_plan_units(pos, n, BLCKSZ, unit_min, unit_max,
							   segments_max, ALIGN, bufs, units);
	if (nunits == 0)
		return "no units";
	for (uint32_t u = 0; u < nunits; u++)
	{
		uint32_t	len = units[u].nblocks * BLCKSZ;
		int			misaligned = 0;
		uint32_t	niov = 1;

		if (units[u].first != next)
			return "units do not cover the run exactly once, in order";
		if (!is_pow2(units[u].nblocks))
			return "unit is not a power of two of blocks";
		if (len < unit_min || len > unit_max)
			return "unit length outside [unit_min, unit_max]";
		if (((pos + units[u].first) * BLCKSZ) % len != 0)
			return "unit offset not a multiple of its length";
		for (uint32_t i = units[u].first; i < units[u].first + units[u].nblocks; i++)
		{
			if ((uintptr_t) bufs[i] % ALIGN != 0)
				misaligned = 1;
			if (i > units[u].first &&
				(const char *) bufs[i] != (const char *) bufs[i - 1] + BLCKSZ)
				niov++;
		}
		if (units[u].niov != niov)
			return "iovec count wrong";
		if (units[u].bounce != (niov > segments_max || misaligned))
			return "bounce decision wrong";
		next += units[u].nblocks;
	}
	if (next != n)
		return "units do not cover the whole run";
	if (nunits != min_units(pos, n, max_blocks))
		return "more units than necessary";
	return NULL;
}

int
main(void)
{
	static const struct
	{
		uint32_t	unit_min;
		uint32_t	unit_max;
		uint32_t	segments_max;
	}			limits[] = {
		{4096, 2 * 1024 * 1024, 1}, /* XFS software atomic writes */
		{4096, 1024 * 1024, 1},
		{512, 64 * 1024, 1},	/* typical NVMe AWUPF */
		{8192, 8192, 1},		/* one block per unit */
		{4096, 32 * 1024, 4},
		{4096, 1024 * 1024, 16},
		{4096, 48 * 1024, 1},	/* not a power of two: 32 kB units */
	};
	char	   *area;
	const void *contiguous[MAX_RUN];
	const void *separate[MAX_RUN];
	const void *misaligned[MAX_RUN];
	WtsmgrUnit	units[MAX_RUN];

	if (posix_memalign((void **) &area, ALIGN, (size_t) 3 * MAX_RUN * BLCKSZ) != 0)
		return 2;
	for (int i = 0; i < MAX_RUN; i++)
	{
		contiguous[i] = area + (size_t) i * BLCKSZ;
		/* every other block: never adjacent */
		separate[i] = area + (size_t) (MAX_RUN + 2 * (MAX_RUN - 1 - i) % MAX_RUN) * BLCKSZ;
		misaligned[i] = contiguous[i];
	}
	misaligned[MAX_RUN / 2] = area + (size_t) (2 * MAX_RUN) * BLCKSZ + 512;

	for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++)
	{
		uint32_t	max_blocks = wtsmgr_floor_pow2(limits[l].unit_max / BLCKSZ);
		const void *const *layouts[] = {contiguous, separate, misaligned};
		const char *layout_names[] = {"contiguous", "separate", "misaligned"};
		char		name[256];

		for (int b = 0; b < 3; b++)
		{
			long		cases = 0;
			const char *err = NULL;

			for (uint32_t n = 1; n <= MAX_RUN && !err; n++)
			{
				for (uint64_t pos = 0; pos < 2 * max_blocks + 3 && !err; pos++, cases++)
					err = check_plan(pos, n, limits[l].unit_min, limits[l].unit_max,
									 limits[l].segments_max, layouts[b]);
				for (uint64_t pos = RELSEG_BLOCKS - n; pos > RELSEG_BLOCKS - n - 3 && !err; pos--, cases++)
					err = check_plan(pos, n, limits[l].unit_min, limits[l].unit_max,
									 limits[l].segments_max, layouts[b]);
			}
			snprintf(name, sizeof(name),
					 "unit_min %u, unit_max %u, segments_max %u, %s buffers: %s",
					 limits[l].unit_min, limits[l].unit_max,
					 limits[l].segments_max, layout_names[b],
					 err ? err : "all plans valid and minimal");
			report(err == NULL, name, cases);
		}
	}

	/* Limits that cannot hold one block atomically yield no plan. */
	report(wtsmgr_plan_units(0, 4, BLCKSZ, 16384, 65536, 1, ALIGN, contiguous, units) == 0,
		   "unit_min above the block size: no plan", 0);
	report(wtsmgr_plan_units(0, 4, BLCKSZ, 512, 4096, 1, ALIGN, contiguous, units) == 0,
		   "unit_max below the block size: no plan", 0);
	report(wtsmgr_plan_units(0, 4, BLCKSZ, 512, 65536, 0, ALIGN, contiguous, units) == 0,
		   "segments_max 0: no plan", 0);

	printf("1..%d\n", ntests);
	free(area);
	return nfailed ? 1 : 0;
}
