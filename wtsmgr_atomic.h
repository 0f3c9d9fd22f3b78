/*-------------------------------------------------------------------------
 *
 * wtsmgr_atomic.h
 *	  The write path of the wtsmgr storage manager: untorn atomic writes.
 *
 * Depends on wtsmgr_statx.h, wtsmgr_registry.h, wtsmgr_stats.h and
 * wtsmgr_doublewrite.h.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_ATOMIC_H
#define WTSMGR_ATOMIC_H

#include <sys/uio.h>

#include "storage/fd.h"
#include "storage/smgr.h"

#include "wtsmgr_registry.h"
#include "wtsmgr_statx.h"

/* What wtsmgr keeps per segment file it writes atomically */
typedef struct WtsmgrSegment
{
	File		file;			/* our descriptor; 0 if not open */
	bool		direct;			/* ... opened with O_DIRECT */
	bool		checked;		/* statx-checked since the fork was opened */
	bool		atomic;			/* ... and found able to take atomic writes */
	WtsmgrAtomicLimits limits;	/* ... with these limits, for unit planning */
} WtsmgrSegment;

/*
 * wtsmgr's SMgrRelation entries: md.c's fields, which live in
 * SMgrRelationData, then ours.
 */
typedef struct WtsmgrRelationData
{
	SMgrRelationData reln;
	WtsmgrTablespace *wt_tablespace;	/* NULL until known: see
										 * wtsmgr_relation_tablespace() */

	/* per fork, wt_nsegs[forknum] entries, indexed by segment number */
	WtsmgrSegment *wt_segs[MAX_FORKNUM + 1];
	int			wt_nsegs[MAX_FORKNUM + 1];
} WtsmgrRelationData;

typedef WtsmgrRelationData *WtsmgrRelation;

/*
 * What the injection point "wtsmgr-atomic-unit" gets, before each unit of a
 * multi-unit write is written (and again when it is tried again after an
 * interruption): tests set result to -errno to make the unit fail, or to a
 * byte count below len to make it complete short.  The unit is then not
 * written, unless the callback writes part of it itself, through fd, as a
 * torn write would.  0 leaves it alone.
 */
typedef struct WtsmgrUnitFault
{
	int			unit;			/* index of the unit in its write */
	int			nunits;			/* units in the write */
	int			len;			/* bytes in the unit */
	int			result;			/* set by the callback */
	int			fd;				/* the segment file, O_DIRECT */
	const struct iovec *iov;	/* the unit's data */
	int			niov;
	long long	offset;			/* the unit's offset in the file */
} WtsmgrUnitFault;

extern void wtsmgr_atomic_init(void);
extern void wtsmgr_atomic_backend_init(void);
extern void wtsmgr_atomic_open(SMgrRelation reln);
extern void wtsmgr_atomic_close(SMgrRelation reln, ForkNumber forknum);
extern WtsmgrTablespace *wtsmgr_relation_tablespace(SMgrRelation reln);
extern void wtsmgr_writev(SMgrRelation reln, ForkNumber forknum,
						  BlockNumber blocknum, const void **buffers,
						  BlockNumber nblocks, bool skipFsync);
extern void wtsmgr_extend(SMgrRelation reln, ForkNumber forknum,
						  BlockNumber blocknum, const void *buffer,
						  bool skipFsync);
extern void wtsmgr_zeroextend(SMgrRelation reln, ForkNumber forknum,
							  BlockNumber blocknum, int nblocks,
							  bool skipFsync);

#endif							/* WTSMGR_ATOMIC_H */
