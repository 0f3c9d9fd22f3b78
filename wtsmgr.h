/*-------------------------------------------------------------------------
 *
 * wtsmgr.h
 *	  Declarations shared by the files of the wtsmgr storage manager.
 *
 * wtsmgr.c owns module loading, configuration, shared memory and the SQL
 * functions; wtsmgr_atomic.c owns the write path; wtsmgr_statx.c owns what
 * the kernel reports about atomic writes.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_H
#define WTSMGR_H

#include "port/atomics.h"
#include "storage/smgr.h"

#ifndef SMGR_HAS_REGISTER
#error "wtsmgr needs a PostgreSQL server with wtsmgr's core patches (smgr_register); build one with scripts/build-server.sh"
#endif

/*
 * Counters of the calls wtsmgr's storage manager received, in shared
 * memory.  They show that relations really are handled by wtsmgr; the
 * per-tablespace I/O statistics are a separate view.
 */
typedef enum WtsmgrCounter
{
	WTSMGR_COUNT_OPEN,			/* SMgrRelations opened */
	WTSMGR_COUNT_CREATE,		/* forks created */
	WTSMGR_COUNT_UNLINK,		/* forks unlinked */
	WTSMGR_COUNT_WRITEV,		/* smgr_writev calls */
	WTSMGR_COUNT_WRITEV_BLOCKS, /* blocks written by smgr_writev */
	WTSMGR_COUNT_EXTEND,		/* blocks added by smgr_extend */
	WTSMGR_COUNT_ZEROEXTEND,	/* blocks added by smgr_zeroextend */
	WTSMGR_COUNT_TRUNCATE,		/* forks truncated */
	WTSMGR_NUM_COUNTERS
} WtsmgrCounter;

typedef struct WtsmgrShared
{
	pg_atomic_uint64 counters[WTSMGR_NUM_COUNTERS];
} WtsmgrShared;

/* Atomic-write limits of a file, as statx() reports them */
typedef struct WtsmgrAtomicLimits
{
	bool		atomic_supported;	/* STATX_ATTR_WRITE_ATOMIC is set */
	uint32		unit_min;		/* smallest atomic write, bytes */
	uint32		unit_max;		/* largest atomic write, bytes */
	uint32		unit_max_opt;	/* largest done in hardware; 0 = unknown */
	uint32		segments_max;	/* iovecs one atomic write may carry */
	uint32		dio_mem_align;	/* O_DIRECT buffer alignment; 0 = no DIO */
	uint32		dio_offset_align;	/* O_DIRECT file offset alignment */
	const char *fs_type;		/* filesystem type name, e.g. "xfs" */
} WtsmgrAtomicLimits;

/* wtsmgr.c */
extern WtsmgrShared *WtsmgrState;

static inline void
wtsmgr_count(WtsmgrCounter counter, uint64 n)
{
	if (WtsmgrState != NULL)
		pg_atomic_fetch_add_u64(&WtsmgrState->counters[counter], n);
}

/* wtsmgr_atomic.c */
extern void wtsmgr_writev(SMgrRelation reln, ForkNumber forknum,
						  BlockNumber blocknum, const void **buffers,
						  BlockNumber nblocks, bool skipFsync);
extern void wtsmgr_extend(SMgrRelation reln, ForkNumber forknum,
						  BlockNumber blocknum, const void *buffer,
						  bool skipFsync);
extern void wtsmgr_zeroextend(SMgrRelation reln, ForkNumber forknum,
							  BlockNumber blocknum, int nblocks,
							  bool skipFsync);

/* wtsmgr_statx.c */
extern int	wtsmgr_read_atomic_limits(const char *path,
									  WtsmgrAtomicLimits *limits);

#endif							/* WTSMGR_H */
