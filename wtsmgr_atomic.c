/*-------------------------------------------------------------------------
 *
 * wtsmgr_atomic.c
 *	  The write path of the wtsmgr storage manager.
 *
 * This file owns every write of relation blocks that the storage manager
 * receives: smgr_writev, smgr_extend and smgr_zeroextend.  It finds the
 * tablespace a relation lives in (probing it first if it is new, so that no
 * relation of a new tablespace is written before the tablespace is probed),
 * counts the writes per tablespace, and checks each segment file of an
 * untorn tablespace with statx the first time it is written.  Tablespaces
 * proven untorn will get writethrough RWF_ATOMIC writes here; until that
 * path exists, every write is handed to md.c unchanged, which is also what
 * all other tablespaces will keep getting.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_atomic.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/md.h"
#include "utils/memutils.h"

#include "wtsmgr.h"

/* holds the per-relation arrays of checked segments */
static MemoryContext WtsmgrCxt = NULL;

/*
 * wtsmgr_atomic_init() -- Per-process initialization (smgr_init).
 */
void
wtsmgr_atomic_init(void)
{
	WtsmgrCxt = AllocSetContextCreate(TopMemoryContext, "wtsmgr",
									  ALLOCSET_SMALL_SIZES);
}

/*
 * wtsmgr_atomic_open() -- Initialize wtsmgr's fields of a new SMgrRelation.
 */
void
wtsmgr_atomic_open(SMgrRelation reln)
{
	WtSMgrRelation wreln = (WtSMgrRelation) reln;

	wreln->wt_tablespace = NULL;
	for (int fork = 0; fork <= MAX_FORKNUM; fork++)
	{
		wreln->wt_segs_checked[fork] = NULL;
		wreln->wt_nsegs[fork] = 0;
	}
}

/*
 * wtsmgr_atomic_close() -- Forget what we knew about a fork's files.
 */
void
wtsmgr_atomic_close(SMgrRelation reln, ForkNumber forknum)
{
	WtSMgrRelation wreln = (WtSMgrRelation) reln;

	if (wreln->wt_segs_checked[forknum] != NULL)
		pfree(wreln->wt_segs_checked[forknum]);
	wreln->wt_segs_checked[forknum] = NULL;
	wreln->wt_nsegs[forknum] = 0;
}

/*
 * wtsmgr_relation_tablespace() -- The tablespace entry of a relation,
 * probing the tablespace first if it is new.  In a critical section nothing may be probed; the relation then
 * counts as being in an unprobed tablespace.
 */
WtsmgrTablespace *
wtsmgr_relation_tablespace(SMgrRelation reln)
{
	WtSMgrRelation wreln = (WtSMgrRelation) reln;

	if (wreln->wt_tablespace == NULL)
	{
		Oid			spcoid = wreln->reln.smgr_rlocator.locator.spcOid;

		if (CritSectionCount > 0)
			return wtsmgr_find_tablespace(spcoid);
		wreln->wt_tablespace = wtsmgr_get_tablespace(spcoid);
	}
	return wreln->wt_tablespace;
}

/*
 * Check with statx, once per fork opening, each segment file that
 * blocks [blocknum, blocknum + nblocks) of an untorn tablespace live in.
 */
static void
check_segments(WtSMgrRelation wreln, WtsmgrTablespace *ts,
			   ForkNumber forknum, BlockNumber blocknum, BlockNumber nblocks)
{
	BlockNumber first = blocknum / RELSEG_SIZE;
	BlockNumber last = (blocknum + nblocks - 1) / RELSEG_SIZE;

	if (ts == NULL || nblocks == 0 ||
		pg_atomic_read_u32(&ts->state) != WTSMGR_TS_UNTORN)
		return;

	for (BlockNumber segno = first; segno <= last; segno++)
	{
		RelPathStr	path;
		char		segpath[MAXPGPATH];

		if (segno >= (BlockNumber) wreln->wt_nsegs[forknum])
		{
			int			newlen = Max(segno + 1, 4);

			if (wreln->wt_segs_checked[forknum] == NULL)
				wreln->wt_segs_checked[forknum] =
					MemoryContextAllocZero(WtsmgrCxt, sizeof(bool) * newlen);
			else
				wreln->wt_segs_checked[forknum] =
					repalloc0_array(wreln->wt_segs_checked[forknum], bool,
									wreln->wt_nsegs[forknum], newlen);
			wreln->wt_nsegs[forknum] = newlen;
		}
		if (wreln->wt_segs_checked[forknum][segno])
			continue;

		path = relpath(wreln->reln.smgr_rlocator, forknum);
		if (segno == 0)
			strlcpy(segpath, path.str, sizeof(segpath));
		else
			snprintf(segpath, sizeof(segpath), "%s.%u", path.str, segno);
		wtsmgr_check_segment_file(ts, segpath);
		wreln->wt_segs_checked[forknum][segno] = true;
	}
}

/*
 * wtsmgr_writev() -- Write blocks of a relation fork.
 */
void
wtsmgr_writev(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const void **buffers, BlockNumber nblocks, bool skipFsync)
{
	WtSMgrRelation wreln = (WtSMgrRelation) reln;
	WtsmgrTablespace *ts = wtsmgr_relation_tablespace(reln);

	mdwritev(reln, forknum, blocknum, buffers, nblocks, skipFsync);

	wtsmgr_count(WTSMGR_COUNT_WRITEV, 1);
	wtsmgr_count(WTSMGR_COUNT_WRITEV_BLOCKS, nblocks);
	wtsmgr_count_io(ts, WTSMGR_IO_WRITES, nblocks);
	wtsmgr_count_io(ts, WTSMGR_IO_WRITE_BYTES, (uint64) nblocks * BLCKSZ);
	check_segments(wreln, ts, forknum, blocknum, nblocks);
}

/*
 * wtsmgr_extend() -- Add a block to a relation fork.
 */
void
wtsmgr_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const void *buffer, bool skipFsync)
{
	WtSMgrRelation wreln = (WtSMgrRelation) reln;
	WtsmgrTablespace *ts = wtsmgr_relation_tablespace(reln);

	mdextend(reln, forknum, blocknum, buffer, skipFsync);

	wtsmgr_count(WTSMGR_COUNT_EXTEND, 1);
	wtsmgr_count_io(ts, WTSMGR_IO_EXTENDS, 1);
	wtsmgr_count_io(ts, WTSMGR_IO_WRITE_BYTES, BLCKSZ);
	check_segments(wreln, ts, forknum, blocknum, 1);
}

/*
 * wtsmgr_zeroextend() -- Add zeroed blocks to a relation fork.
 */
void
wtsmgr_zeroextend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
				  int nblocks, bool skipFsync)
{
	WtSMgrRelation wreln = (WtSMgrRelation) reln;
	WtsmgrTablespace *ts = wtsmgr_relation_tablespace(reln);

	mdzeroextend(reln, forknum, blocknum, nblocks, skipFsync);

	wtsmgr_count(WTSMGR_COUNT_ZEROEXTEND, nblocks);
	wtsmgr_count_io(ts, WTSMGR_IO_EXTENDS, nblocks);
	check_segments(wreln, ts, forknum, blocknum, nblocks);
}
