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

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/smgr.h"

/* Kernel ABI that Debian bookworm's headers lack (Linux 6.11) */
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040
#endif

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
	uint32		dev_major;		/* device the file is on */
	uint32		dev_minor;
	char		fs_type[32];	/* filesystem type name, e.g. "xfs" */
} WtsmgrAtomicLimits;

/*
 * What a probe found out about a tablespace.
 */
typedef struct WtsmgrProbeResult
{
	WtsmgrAtomicLimits limits;
	bool		untorn;			/* BLCKSZ writes proven untorn */
	uint32		extent_size_hint;	/* bytes; proven with atomic writes, or 0 */
	char		reason[256];	/* why (not) untorn, in words */
} WtsmgrProbeResult;

/*
 * Per-tablespace I/O counters, shown by the wtsmgr_stat_io view.
 */
typedef enum WtsmgrIoCounter
{
	WTSMGR_IO_WRITES,			/* blocks written by writev */
	WTSMGR_IO_WRITE_BYTES,		/* bytes written by writev and extend */
	WTSMGR_IO_EXTENDS,			/* blocks added by extend and zeroextend */
	WTSMGR_IO_ATOMIC_WRITES,	/* blocks written with RWF_ATOMIC */
	WTSMGR_IO_ATOMIC_UNITS,		/* atomic units submitted */
	WTSMGR_IO_BATCHES,			/* submissions of more than one unit */
	WTSMGR_IO_FPI_SKIPPED,		/* full-page images left out */
	WTSMGR_IO_REFUSALS,			/* writes refused: could not be atomic */
	WTSMGR_IO_ERRORS,			/* writes that failed */
	WTSMGR_IO_NONATOMIC_FILES,	/* files whose statx denied atomic writes */
	WTSMGR_NUM_IO_COUNTERS
} WtsmgrIoCounter;

/* Decision about a tablespace, readable without locks (see below) */
typedef enum WtsmgrTablespaceState
{
	WTSMGR_TS_UNPROBED = 0,		/* not probed yet: keeps images */
	WTSMGR_TS_TORN,				/* probed: blocks may tear */
	WTSMGR_TS_UNTORN,			/* probed: BLCKSZ writes are untorn */
} WtsmgrTablespaceState;

/*
 * What the announcer (wtsmgr_fpi.c) decided about a tablespace's full-page
 * images, from the settings and the catalog; readable without locks.
 */
typedef enum WtsmgrFpiDecision
{
	WTSMGR_FPI_UNDECIDED = 0,	/* not decided yet: keeps images */
	WTSMGR_FPI_SKIP,			/* may be left out where blocks are untorn */
	WTSMGR_FPI_SWITCHED_OFF,	/* wtsmgr.skip_full_page_images is off */
	WTSMGR_FPI_LISTED,			/* in wtsmgr.keep_full_page_images_tablespaces */
	WTSMGR_FPI_DROPPED,			/* dropped: its directory is gone */
} WtsmgrFpiDecision;

/*
 * A tablespace wtsmgr knows about, in shared memory.
 *
 * Entries are appended under WtsmgrShared->lock and never removed, so that a
 * pointer to one stays valid.  spcoid is set before the entry is published
 * by incrementing ntablespaces, and state is an atomic: both can be read
 * without a lock, which the full-page-image hook must do because it runs in
 * critical sections.  Everything else describes the last probe, and is read
 * and written under the lock.
 */
typedef struct WtsmgrTablespace
{
	Oid			spcoid;
	pg_atomic_uint32 state;		/* a WtsmgrTablespaceState */

	/*
	 * Set once a probe has found the tablespace untorn, and never cleared
	 * while the server runs: from then on every write there is atomic, even
	 * if a later probe disagrees, because pages whose images were left out
	 * must never be written otherwise (see wtsmgr_fpi.c).  The one exception
	 * is a tablespace dropped and created again under the same OID, in
	 * another directory (dir_dev, dir_ino): none of the old one's pages is
	 * left to write.
	 */
	pg_atomic_uint32 atomic_path;

	/* a WtsmgrFpiDecision, published by the announcer (wtsmgr_fpi.c) */
	pg_atomic_uint32 decision;

	/*
	 * The redo pointer whose checkpoint cycle the latest announcement of this
	 * tablespace covers: a WAL record written after that redo pointer said
	 * that images of this tablespace may be left out, so that a server
	 * replaying WAL from there learns it before any record without them.
	 */
	pg_atomic_uint64 announced_redo;

	/* set when replayed WAL lacked images although we are not untorn */
	pg_atomic_uint32 replay_unsafe;

	WtsmgrProbeResult probe;	/* last probe's findings */
	uint64		dir_dev;		/* identity of the directory it probed: a */
	uint64		dir_ino;		/* tablespace re-created with the same OID
								 * is another directory, probed anew */
	TimestampTz probed_at;
	pg_atomic_uint64 io[WTSMGR_NUM_IO_COUNTERS];
	TimestampTz stats_reset;
} WtsmgrTablespace;


typedef struct WtsmgrShared
{
	pg_atomic_uint64 counters[WTSMGR_NUM_COUNTERS];
	LWLock	   *lock;			/* protects the tablespace entries */
	pg_atomic_uint32 ntablespaces;	/* published entries */
	pg_atomic_uint32 announcer_procno;	/* its ProcNumber, or
										 * INVALID_PROC_NUMBER */
	pg_atomic_uint32 announcer_wakeup;	/* its latch is set already */
	/* wtsmgr.max_tablespaces entries */
	WtsmgrTablespace tablespaces[FLEXIBLE_ARRAY_MEMBER];
} WtsmgrShared;

/* wtsmgr.durability */
typedef enum WtsmgrDurability
{
	WTSMGR_DURABILITY_FSYNC,	/* checkpointer fsyncs, as for md.c */
	WTSMGR_DURABILITY_DSYNC,	/* RWF_DSYNC on every atomic write */
} WtsmgrDurability;

/* wtsmgr.c */
extern WtsmgrShared *WtsmgrState;
extern int	wtsmgr_durability;
extern int	wtsmgr_io_uring_entries;

/*
 * What the injection point "wtsmgr-atomic-unit" gets, before each unit of a
 * multi-unit write is submitted (and again when it is retried): tests set
 * result to -errno to make the unit fail, or to a byte count below len to
 * make it complete short, without writing it.  0 leaves it alone.
 */
typedef struct WtsmgrUnitFault
{
	int			unit;			/* index of the unit in its write */
	int			nunits;			/* units in the write */
	int			len;			/* bytes in the unit */
	int			result;			/* set by the callback */
} WtsmgrUnitFault;
extern int	wtsmgr_extent_size_hint;
extern int	wtsmgr_max_tablespaces;

static inline void
wtsmgr_count(WtsmgrCounter counter, uint64 n)
{
	if (WtsmgrState != NULL)
		pg_atomic_fetch_add_u64(&WtsmgrState->counters[counter], n);
}

static inline void
wtsmgr_count_io(WtsmgrTablespace *ts, WtsmgrIoCounter counter, uint64 n)
{
	if (ts != NULL)
		pg_atomic_fetch_add_u64(&ts->io[counter], n);
}

/*
 * wtsmgr's SMgrRelation entries: md.c's fields, which live in
 * SMgrRelationData, then ours.
 */
/* What wtsmgr keeps per segment file it writes atomically */
typedef struct WtsmgrSegment
{
	File		file;			/* our O_DIRECT descriptor; 0 if not open */
	bool		checked;		/* statx-checked since the fork was opened */
	bool		atomic;			/* ... and found able to take atomic writes */
	WtsmgrAtomicLimits limits;	/* ... with these limits, for unit planning */
} WtsmgrSegment;

typedef struct WtSMgrRelationData
{
	SMgrRelationData reln;
	WtsmgrTablespace *wt_tablespace;	/* NULL until first write */

	/* per fork, wt_nsegs[forknum] entries, indexed by segment number */
	WtsmgrSegment *wt_segs[MAX_FORKNUM + 1];
	int			wt_nsegs[MAX_FORKNUM + 1];
} WtSMgrRelationData;

typedef WtSMgrRelationData *WtSMgrRelation;

/* wtsmgr_atomic.c */
extern void wtsmgr_atomic_init(void);
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

/* wtsmgr_fpi.c */
extern void wtsmgr_fpi_init(void);
extern const char *wtsmgr_fpi_decision(WtsmgrTablespace *ts);
extern void wtsmgr_fpi_tablespaces_changed(void);

/* wtsmgr_statx.c */
extern int	wtsmgr_read_atomic_limits(const char *path,
									  WtsmgrAtomicLimits *limits);
extern void wtsmgr_probe_directory(const char *dir, WtsmgrProbeResult *result);
extern bool wtsmgr_set_extent_size_hint(int fd, uint32 bytes);
extern void wtsmgr_tablespace_dir(Oid spcoid, char *buf, size_t size);
extern void wtsmgr_probe_all_tablespaces(void);
extern WtsmgrTablespace *wtsmgr_find_tablespace(Oid spcoid);
extern WtsmgrTablespace *wtsmgr_get_tablespace(Oid spcoid, bool verify);
extern WtsmgrTablespace *wtsmgr_reprobe_tablespace(Oid spcoid);
extern bool wtsmgr_check_segment_file(WtsmgrTablespace *ts, const char *path,
									  WtsmgrAtomicLimits *limits);

#endif							/* WTSMGR_H */
