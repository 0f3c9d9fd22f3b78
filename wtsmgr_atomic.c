/*-------------------------------------------------------------------------
 *
 * wtsmgr_atomic.c
 *	  The write path of the wtsmgr storage manager.
 *
 * This file owns every write of relation blocks that the storage manager
 * receives: smgr_writev, smgr_extend and smgr_zeroextend.  Tablespaces whose
 * storage is proven to write blocks untorn will get writethrough RWF_ATOMIC
 * writes here; until that path exists, every write is handed to md.c
 * unchanged, which is also what all other tablespaces will keep getting.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_atomic.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "storage/md.h"

#include "wtsmgr.h"

/*
 * wtsmgr_writev() -- Write blocks of a relation fork.
 */
void
wtsmgr_writev(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const void **buffers, BlockNumber nblocks, bool skipFsync)
{
	mdwritev(reln, forknum, blocknum, buffers, nblocks, skipFsync);
	wtsmgr_count(WTSMGR_COUNT_WRITEV, 1);
	wtsmgr_count(WTSMGR_COUNT_WRITEV_BLOCKS, nblocks);
}

/*
 * wtsmgr_extend() -- Add a block to a relation fork.
 */
void
wtsmgr_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const void *buffer, bool skipFsync)
{
	mdextend(reln, forknum, blocknum, buffer, skipFsync);
	wtsmgr_count(WTSMGR_COUNT_EXTEND, 1);
}

/*
 * wtsmgr_zeroextend() -- Add zeroed blocks to a relation fork.
 */
void
wtsmgr_zeroextend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
				  int nblocks, bool skipFsync)
{
	mdzeroextend(reln, forknum, blocknum, nblocks, skipFsync);
	wtsmgr_count(WTSMGR_COUNT_ZEROEXTEND, nblocks);
}
