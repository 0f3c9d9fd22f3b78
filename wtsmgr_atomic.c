/*-------------------------------------------------------------------------
 *
 * wtsmgr_atomic.c
 *	  The write path of the wtsmgr storage manager: untorn atomic writes.
 *
 * This file owns every write of relation blocks that the storage manager
 * receives: smgr_writev, smgr_extend and smgr_zeroextend.  For a relation in
 * a tablespace whose writes are protected (wtsmgr_ts_writes_protected():
 * proven untorn by a probe, or named by replayed WAL that lacks its
 * images), no block may ever be left torn by a crash:
 *
 * - Each segment file gets a second file descriptor, opened with O_DIRECT
 *   through fd.c, so max_files_per_process is respected.  md.c keeps its own
 *   buffered descriptor for reads, sizes and truncation; the kernel keeps the
 *   page cache coherent with the direct writes.  Our descriptors are closed
 *   with md's, on close, truncate and unlink, and when smgrrelease() asks.
 *   (Buffered RWF_ATOMIC needs RWF_WRITETHROUGH, which no released kernel
 *   header defines; its value must come from a header, never be guessed.)
 *
 * - A call with n blocks is cut into naturally aligned power-of-two units
 *   (wtsmgr_split.h), each a valid atomic write of whole blocks, written one
 *   after another with pwritev2(RWF_ATOMIC).  Each is a synchronous direct
 *   write, so the kernel does not let the writing process exit, nor the
 *   postmaster see it gone, before the write has completed.  Writes still
 *   in flight after their process died (which io_uring allows: its rings are
 *   torn down asynchronously) could land after crash recovery rewrote their
 *   blocks and overwrite newer data.  Units whose buffers need more iovecs
 *   than the device takes, or are misaligned, are copied into an aligned
 *   bounce buffer.
 *
 * - Durability (wtsmgr.durability): with fsync, writes are plain atomic
 *   direct writes and the checkpointer fsyncs the segment, as md.c arranges
 *   for its own writes; with dsync, every write carries RWF_DSYNC and no
 *   fsync request is made for it.
 *
 * - A unit that cannot be written atomically, because the kernel refuses it
 *   (EINVAL, EOPNOTSUPP; ENOSPC and EDQUOT where copy-on-write atomic writes
 *   find no free extent, which happens long before a filesystem is full if
 *   its free space is fragmented), because the kernel reports it written
 *   short (it broke its promise; nothing is written again atomically over a
 *   unit that may be torn), or because the file cannot take atomic writes at
 *   all, is never written plainly over its old contents: it goes through the
 *   doublewrite area (wtsmgr_doublewrite.c), which no crash can leave torn.
 *   A unit of several blocks that finds no free space is first tried again
 *   one block at a time, which needs smaller free extents.  So every write
 *   of a protected tablespace's blocks is either atomic or preceded by a
 *   durable copy in the doublewrite area.  Any other failure is an ERROR; the
 *   caller's buffers stay dirty and are written again later.  A call with
 *   some units written and others not is reported as failed as a whole.
 *
 * - Extending: smgr_extend writes the new block atomically, creating the
 *   segment file if needed; smgr_zeroextend writes zero blocks the same way,
 *   so their space is allocated as md.c's rule wants (a checkpoint must not
 *   hit ENOSPC) without unwritten extents, which would cost a metadata update
 *   on each later write.  Files in XFS get a copy-on-write extent size hint
 *   of BLCKSZ, so that atomic writes need free extents no larger than a
 *   block (wtsmgr_set_cow_extent_size_hint()); new ones get an extent size
 *   hint if wtsmgr.extent_size_hint asks for one.
 *
 * This file also owns the write path's settings, wtsmgr.durability and
 * wtsmgr.reread_written, and counts what it does in wtsmgr_stats.c.
 *
 * Temporary relations are never WAL-logged and vanish at a crash, so a torn
 * page of theirs cannot matter: they, and everything outside protected
 * tablespaces, go to md.c unchanged.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_atomic.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "access/xlogutils.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/fd.h"
#include "storage/md.h"
#include "storage/sync.h"
#include "utils/guc.h"
#include "utils/injection_point.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "wtsmgr_atomic.h"
#include "wtsmgr_doublewrite.h"
#include "wtsmgr_split.h"
#include "wtsmgr_stats.h"

/* Largest run handled in one go: io_combine_limit's ceiling */
#define WTSMGR_MAX_RUN MAX_IO_COMBINE_LIMIT

/* Retries of an atomic write interrupted before it wrote anything */
#define WTSMGR_MAX_RETRIES 16

/* What write_unit() returns for a unit the kernel reports written short */
#define WTSMGR_WRITTEN_SHORT WTSMGR_FALLBACK_SHORT

/* How often a process warns that a tablespace falls back, at most */
#define WTSMGR_FALLBACK_WARN_INTERVAL_MS 60000

/* wtsmgr.durability */
typedef enum WtsmgrDurability
{
	WTSMGR_DURABILITY_FSYNC,	/* checkpointer fsyncs, as for md.c */
	WTSMGR_DURABILITY_DSYNC,	/* RWF_DSYNC on every atomic write */
} WtsmgrDurability;

static const struct config_enum_entry durability_options[] = {
	{"fsync", WTSMGR_DURABILITY_FSYNC, false},
	{"dsync", WTSMGR_DURABILITY_DSYNC, false},
	{NULL, 0, false}
};

/* GUC variables */
static int	durability = WTSMGR_DURABILITY_FSYNC;
static bool reread_written = false;

/* holds the per-relation segment arrays */
static MemoryContext WtsmgrCxt = NULL;

/* aligned scratch areas, allocated on first use */
static char *bounce_area = NULL;
static char *zero_area = NULL;

/* A run of one segment being written, and what became of it */
typedef struct SegmentRun
{
	WtsmgrRelation wreln;
	WtsmgrTablespace *ts;
	ForkNumber	forknum;
	BlockNumber segno;
	BlockNumber segblock;		/* first block, within the segment */
	const void **buffers;
	uint32		nblocks;
	bool		new_blocks;		/* past the end of the file */
	WtsmgrSegment *seg;
	/* the plan: units of atomic writes, or none and why */
	int			flags;			/* for atomic writes */
	uint32		nunits;
	WtsmgrUnit	units[WTSMGR_MAX_RUN];
	int			fallback_cause; /* with no units: errno or WTSMGR_FALLBACK_* */
	/* what was done, for the counters and the fsync request */
	uint32		atomic_blocks;
	uint32		atomic_units;
	uint32		doublewritten;
} SegmentRun;

static WtsmgrSegment *get_segment(WtsmgrRelation wreln, ForkNumber forknum,
								  BlockNumber segno);
static WtsmgrSegment *open_segment(WtsmgrRelation wreln, WtsmgrTablespace *ts,
								   ForkNumber forknum, BlockNumber segno,
								   WtsmgrSegment *seg, bool create);
static void atomic_write(WtsmgrRelation wreln, WtsmgrTablespace *ts,
						 ForkNumber forknum, BlockNumber blocknum,
						 const void **buffers, BlockNumber nblocks,
						 bool skipFsync, bool create, bool new_blocks);
static void write_segment_run(WtsmgrRelation wreln, WtsmgrTablespace *ts,
							  ForkNumber forknum, BlockNumber blocknum,
							  const void **buffers, uint32 nblocks,
							  bool skipFsync, bool create, bool new_blocks);

/*
 * wtsmgr_atomic_init() -- Called from _PG_init(): the write path's settings.
 */
void
wtsmgr_atomic_init(void)
{
	DefineCustomEnumVariable("wtsmgr.durability",
							 "How atomic writes are made durable.",
							 "fsync: plain atomic direct writes, fsynced by the checkpointer as md.c's are; dsync: every atomic write carries RWF_DSYNC and needs no fsync.",
							 &durability,
							 WTSMGR_DURABILITY_FSYNC,
							 durability_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("wtsmgr.reread_written",
							 "Has the kernel read blocks back into its page cache after writing them atomically.",
							 "Direct writes drop what they write from the page cache; with this on, a block that shared buffers evict later can still be read from the cache, at the cost of a background read per write.",
							 &reread_written,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}

/*
 * wtsmgr_atomic_backend_init() -- Per-process initialization (smgr_init).
 */
void
wtsmgr_atomic_backend_init(void)
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
	WtsmgrRelation wreln = (WtsmgrRelation) reln;

	/* known already, or looked up (and probed) on first write */
	wreln->wt_tablespace =
		wtsmgr_find_tablespace(reln->smgr_rlocator.locator.spcOid);
	for (int fork = 0; fork <= MAX_FORKNUM; fork++)
	{
		wreln->wt_segs[fork] = NULL;
		wreln->wt_nsegs[fork] = 0;
	}
}

/*
 * wtsmgr_atomic_close() -- Close our descriptors of a fork's files and
 * forget what we knew about them.
 */
void
wtsmgr_atomic_close(SMgrRelation reln, ForkNumber forknum)
{
	WtsmgrRelation wreln = (WtsmgrRelation) reln;

	for (int segno = 0; segno < wreln->wt_nsegs[forknum]; segno++)
	{
		if (wreln->wt_segs[forknum][segno].file > 0)
			FileClose(wreln->wt_segs[forknum][segno].file);
	}
	if (wreln->wt_segs[forknum] != NULL)
		pfree(wreln->wt_segs[forknum]);
	wreln->wt_segs[forknum] = NULL;
	wreln->wt_nsegs[forknum] = 0;
}

/*
 * wtsmgr_relation_tablespace() -- The tablespace entry of a relation,
 * probing the tablespace first if it is new.  In a critical section nothing
 * may be probed; the relation then counts as being in an unprobed
 * tablespace.
 */
WtsmgrTablespace *
wtsmgr_relation_tablespace(SMgrRelation reln)
{
	WtsmgrRelation wreln = (WtsmgrRelation) reln;

	if (wreln->wt_tablespace == NULL)
	{
		Oid			spcoid = wreln->reln.smgr_rlocator.locator.spcOid;

		if (CritSectionCount > 0)
			return wtsmgr_find_tablespace(spcoid);
		wreln->wt_tablespace = wtsmgr_enter_tablespace(spcoid);
	}
	return wreln->wt_tablespace;
}

/*
 * Are this relation's writes protected?  Only if its tablespace's are
 * (wtsmgr_ts_writes_protected(); wtsmgr_fpi.c says why that holds until the
 * server stops); temporary relations never are (see the file header).  *ts
 * is set to the tablespace's entry either way, for the counters of calls,
 * and *io_ts to the same but NULL for temporary relations, whose I/O
 * wtsmgr_stat_io does not count.
 */
static bool
protected_target(SMgrRelation reln, WtsmgrTablespace **ts,
				 WtsmgrTablespace **io_ts)
{
	*ts = wtsmgr_relation_tablespace(reln);
	if (SmgrIsTemp(reln))
	{
		*io_ts = NULL;
		return false;
	}
	*io_ts = *ts;
	return wtsmgr_ts_writes_protected(*ts);
}

/*
 * The bookkeeping entry of a segment, making room for it.
 */
static WtsmgrSegment *
get_segment(WtsmgrRelation wreln, ForkNumber forknum, BlockNumber segno)
{
	if (segno >= (BlockNumber) wreln->wt_nsegs[forknum])
	{
		int			oldlen = wreln->wt_nsegs[forknum];
		int			newlen = Max(segno + 1, 4);

		if (wreln->wt_segs[forknum] == NULL)
			wreln->wt_segs[forknum] =
				MemoryContextAllocZero(WtsmgrCxt, sizeof(WtsmgrSegment) * newlen);
		else
			wreln->wt_segs[forknum] =
				repalloc0_array(wreln->wt_segs[forknum], WtsmgrSegment,
								oldlen, newlen);
		wreln->wt_nsegs[forknum] = newlen;
	}
	return &wreln->wt_segs[forknum][segno];
}

static void
segment_path(WtsmgrRelation wreln, ForkNumber forknum, BlockNumber segno,
			 char *buf, size_t size)
{
	RelPathStr	path = relpath(wreln->reln.smgr_rlocator, forknum);

	if (segno == 0)
		strlcpy(buf, path.str, size);
	else
		snprintf(buf, size, "%s.%u", path.str, segno);
}

/*
 * Does the file share blocks with another file (a reflink copy)?  A
 * filesystem without FIEMAP has no reflinks for us to find.
 */
#define WTSMGR_FIEMAP_EXTENTS 32

static bool
has_shared_extents(int fd)
{
	/* on the stack, suitably aligned: no palloc on the write path */
	uint64		buf[(sizeof(struct fiemap) +
					 WTSMGR_FIEMAP_EXTENTS * sizeof(struct fiemap_extent)) /
					sizeof(uint64) + 1];
	struct fiemap *fm = (struct fiemap *) buf;
	uint64		start = 0;
	bool		shared = false;
	bool		done = false;

	while (!shared && !done)
	{
		memset(fm, 0, sizeof(struct fiemap));
		fm->fm_start = start;
		fm->fm_length = FIEMAP_MAX_OFFSET - start;
		fm->fm_extent_count = WTSMGR_FIEMAP_EXTENTS;
		if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0 || fm->fm_mapped_extents == 0)
			break;
		for (uint32 i = 0; i < fm->fm_mapped_extents; i++)
		{
			if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED)
				shared = true;
			if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_LAST)
				done = true;
		}
		start = fm->fm_extents[fm->fm_mapped_extents - 1].fe_logical +
			fm->fm_extents[fm->fm_mapped_extents - 1].fe_length;
	}
	return shared;
}

/*
 * Give a segment file blocks of its own if it shares some with another file
 * (file_copy_method = clone, pg_upgrade --clone, pg_combinebackup --clone,
 * cp --reflink).  Atomic writes to shared blocks work, but each needs new
 * space that is never given back while the other file keeps the old
 * blocks, so a checkpoint could hit ENOSPC on blocks md.c would consider
 * allocated long ago.  Unsharing now pays for all of them at once, when the
 * file is opened for writing, and fails (the write with it) if the space is
 * not there; the buffers stay dirty.
 */
static void
unshare_segment(File file, const char *path)
{
	int			fd = FileGetRawDesc(file);
	off_t		size;

	if (fd < 0 || !has_shared_extents(fd))
		return;

	size = FileSize(file);
	if (size <= 0)
		return;
	if (fallocate(fd, FALLOC_FL_UNSHARE_RANGE, 0, size) != 0)
	{
		/* a filesystem that cannot unshare still takes the atomic writes */
		if (errno == EOPNOTSUPP)
			return;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not unshare the blocks of file \"%s\" before writing it atomically: %m",
						path),
				 errdetail("The file shares %lld bytes with another file, a copy made by reflink (as with file_copy_method = clone).",
						   (long long) size),
				 errhint("Free space on the tablespace's filesystem.")));
	}
	ereport(LOG,
			(errmsg("unshared the blocks of file \"%s\" (%lld bytes) before writing it atomically",
					path, (long long) size),
			 errdetail("The file shared blocks with a copy made by reflink; each atomic write to a shared block would need new space.")));
}

/*
 * Open our descriptor of a segment file, whose entry get_segment() gave:
 * O_DIRECT, or, on a filesystem without it (tmpfs), a plain one, through
 * which only writes that need no atomicity (the doublewrite area's, and new
 * blocks) are made.  create is for extension, which may begin a new segment
 * file, as md.c's does.  A new file gets the extent size hint; any file is
 * checked once with statx.
 */
static WtsmgrSegment *
open_segment(WtsmgrRelation wreln, WtsmgrTablespace *ts, ForkNumber forknum,
			 BlockNumber segno, WtsmgrSegment *seg, bool create)
{
	int			flags = O_RDWR | PG_BINARY | (create ? O_CREAT : 0);
	char		path[MAXPGPATH];

	if (seg->file > 0)
		return seg;

	segment_path(wreln, forknum, segno, path, sizeof(path));
	seg->file = PathNameOpenFile(path, flags | PG_O_DIRECT);
	seg->direct = true;
	if (seg->file < 0 && errno == EINVAL)
	{
		seg->file = PathNameOpenFile(path, flags);
		seg->direct = false;
	}
	if (seg->file < 0)
	{
		seg->file = 0;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for atomic writes: %m", path),
				 errhint("Check the file's permissions and the limit on open files.")));
	}

	if (!seg->checked)
	{
		char		reason[256];

		if (seg->direct && create && FileSize(seg->file) == 0)
		{
			WtsmgrTablespaceInfo info;

			/* the hint the probe proved atomic writes to work with */
			wtsmgr_ts_info(ts, &info);
			if (info.probe.result.extent_size_hint != 0)
				(void) wtsmgr_set_extent_size_hint(FileGetRawDesc(seg->file),
												   info.probe.result.extent_size_hint);
		}
		if (!seg->direct)
		{
			memset(&seg->limits, 0, sizeof(seg->limits));
			strlcpy(reason, "the file cannot be opened with O_DIRECT",
					sizeof(reason));
			seg->atomic = false;
		}
		else
			seg->atomic = wtsmgr_check_segment_file(path, &seg->limits,
													reason, sizeof(reason));

		/*
		 * Overwriting blocks that the file shares with another needs new
		 * space, for a plain write as much as for an atomic one.  On XFS,
		 * atomic writes need free extents no larger than a block only with a
		 * copy-on-write extent size hint of a block.
		 */
		if (seg->direct)
			unshare_segment(seg->file, path);
		if (seg->atomic && strcmp(seg->limits.fs_type, "xfs") == 0)
			(void) wtsmgr_set_cow_extent_size_hint(FileGetRawDesc(seg->file));

		/*
		 * In a tablespace that was proven untorn, the file itself should take
		 * atomic writes too; say so if it does not.  Elsewhere (a standby
		 * replaying WAL without images onto storage that tears) that is
		 * expected.
		 */
		if (!seg->atomic && wtsmgr_ts_state(ts) == WTSMGR_TS_UNTORN)
		{
			wtsmgr_stat_count(ts, WTSMGR_STAT_NONATOMIC_FILES, 1);
			ereport(WARNING,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("file \"%s\" in a tablespace with atomic writes cannot be written atomically",
							path),
					 errdetail("The check of the file reported: %s. Its blocks are written through the doublewrite area, at three durable writes each.",
							   reason),
					 errhint("Check how the file came to be there, then run wtsmgr_probe() on its tablespace.")));
		}
		seg->checked = true;
	}
	return seg;
}

/*
 * WTSMGR_MAX_RUN zero blocks, contiguous and aligned for O_DIRECT, so that
 * any unit of them needs a single iovec.
 */
static const char *
zero_blocks(void)
{
	if (zero_area == NULL)
		zero_area = MemoryContextAllocAligned(TopMemoryContext,
											  (Size) WTSMGR_MAX_RUN * BLCKSZ,
											  PG_IO_ALIGN_SIZE,
											  MCXT_ALLOC_ZERO);
	return zero_area;
}

/*
 * The number of blocks in a segment file, from its size, or -1 if it does
 * not exist.
 */
static int64
segment_nblocks(WtsmgrRelation wreln, ForkNumber forknum, BlockNumber segno)
{
	char		path[MAXPGPATH];
	struct stat st;

	segment_path(wreln, forknum, segno, path, sizeof(path));
	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT)
			return -1;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path),
				 errhint("Check the file's permissions and its filesystem.")));
	}
	return (int64) (st.st_size / BLCKSZ);
}

/*
 * Before a segment file past the first is written by an extension, make
 * every segment before it exist and be RELSEG_SIZE blocks long, as md.c's
 * _mdfd_getseg(EXTENSION_CREATE) does.  md.c finds the end of a relation by
 * walking its segments and stopping at the first short one, so a relation
 * extended by a jump (RelationCopyStorageUsingBuffer() extends the copy of
 * a relation to its last block first; _hash_alloc_buckets() skips ahead by
 * whole bucket splits) would otherwise have blocks that md.c cannot reach,
 * and writing them back would fail.
 *
 * Like md.c, a short segment is padded by writing its last block, zeroed;
 * the blocks in between stay a hole.  The write is atomic like every other
 * write here.  Segments are padded in order, so a crash in between leaves
 * a prefix of full segments, which md.c handles.
 */
static void
pad_previous_segments(WtsmgrRelation wreln, WtsmgrTablespace *ts,
					  ForkNumber forknum, BlockNumber segno, bool skipFsync)
{
	BlockNumber first_short = segno;
	const void *zero = zero_blocks();

	/* segments before a full one are full: md.c keeps that invariant */
	while (first_short > 0 &&
		   segment_nblocks(wreln, forknum, first_short - 1) < RELSEG_SIZE)
		first_short--;

	for (BlockNumber s = first_short; s < segno; s++)
		write_segment_run(wreln, ts, forknum,
						  s * ((BlockNumber) RELSEG_SIZE) + RELSEG_SIZE - 1,
						  &zero, 1, skipFsync, true, true);
}

/*
 * Ask the checkpointer to fsync a segment we wrote, through md.c's own
 * request (patch 0008): the segment is md.c's file, synced by its handler.
 */
static void
request_segment_fsync(WtsmgrRelation wreln, ForkNumber forknum,
					  BlockNumber segno, File file)
{
	bool		drop = false;

	/* lets crash tests drop the request, to show that they would notice */
	INJECTION_POINT("wtsmgr-register-sync", &drop);
	if (drop)
		return;
	mdregisterdirtysegment(&wreln->reln, forknum, segno, file);
}

/*
 * Is err the kernel saying that this write cannot be done atomically, as
 * opposed to an I/O error?  Copy-on-write atomic writes return ENOSPC (or
 * EDQUOT) when no free extent fits them, however much space is free.
 */
static bool
atomic_write_refused(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EINVAL ||
		err == EOPNOTSUPP;
}

/*
 * Part of a run took the way out: say so in the views, and warn, at most
 * once a minute per tablespace.  cause is an errno, or a WTSMGR_FALLBACK_*
 * code.
 */
static void
note_fallback(SegmentRun *run, int cause, off_t offset, uint32 nblocks)
{
	TimestampTz prev = wtsmgr_ts_note_fallback(run->ts, cause);
	WtsmgrTablespaceInfo info;
	char		dir[MAXPGPATH];

	if (prev != 0 &&
		!TimestampDifferenceExceeds(prev, GetCurrentTimestamp(),
									WTSMGR_FALLBACK_WARN_INTERVAL_MS))
		return;

	wtsmgr_ts_info(run->ts, &info);
	wtsmgr_tablespace_dir(info.spcoid, dir, sizeof(dir));
	/* a short write, a file or a tablespace that cannot: said elsewhere */
	if (cause < 0)
		return;
	errno = cause;
	ereport(WARNING,
			(errcode(cause == ENOSPC || cause == EDQUOT ?
					 ERRCODE_DISK_FULL : ERRCODE_IO_ERROR),
			 errmsg("atomic writes to tablespace %u (\"%s\") fail: %m",
					info.spcoid, dir),
			 errdetail_plural("%u block of file \"%s\" at offset %lld was written through the doublewrite area instead, at three durable writes.",
							  "%u blocks of file \"%s\" at offset %lld were written through the doublewrite area instead, at three durable writes each.",
							  nblocks, nblocks, FilePathName(run->seg->file),
							  (long long) offset),
			 (cause == ENOSPC || cause == EDQUOT) ?
			 errhint("Free space on the tablespace's filesystem: copy-on-write atomic writes need free extents, which fragmented free space lacks long before the filesystem is full.") :
			 errhint("Check the tablespace's filesystem and device, then run wtsmgr_probe() on the tablespace.")));
}

/*
 * The kernel completed an atomic write short.  It promised all or nothing,
 * and the unit may now be torn on disk: it must not be written again with
 * an atomic write as if nothing had happened, nor left for later.  The
 * caller writes it through the doublewrite area at once; here the
 * tablespace stops leaving images out, since its writes are not what they
 * were proven to be.
 */
static void
report_short_write(SegmentRun *run, off_t offset, size_t len, ssize_t written)
{
	char		reason[256];

	snprintf(reason, sizeof(reason),
			 "an RWF_ATOMIC write of %zu bytes to file \"%s\" completed short (%zd bytes)",
			 len, FilePathName(run->seg->file), written);
	wtsmgr_ts_mark_torn(run->ts, reason);
	wtsmgr_stat_count(run->ts, WTSMGR_STAT_REFUSALS, 1);
	ereport(WARNING,
			(errcode(ERRCODE_IO_ERROR),
			 errmsg("an atomic write of %zu bytes to file \"%s\" at offset %lld completed short: %zd bytes",
					len, FilePathName(run->seg->file), (long long) offset,
					written),
			 errdetail("The blocks are written again through the doublewrite area, and the tablespace keeps its full-page images from now on."),
			 errhint("Report this kernel bug with the kernel version and the filesystem; once it is fixed, run wtsmgr_probe() on the tablespace.")));
}

/*
 * Report a failed write that no way out can help: an I/O error.  The
 * caller's buffers stay dirty.
 */
static void
report_write_failure(WtsmgrTablespace *ts, File file, off_t offset,
					 size_t len, int err)
{
	wtsmgr_stat_count(ts, WTSMGR_STAT_ERRORS, 1);
	errno = err;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not write %zu bytes atomically to file \"%s\" at offset %lld: %m",
					len, FilePathName(file), (long long) offset),
			 errhint("Check the tablespace's filesystem and device.")));
}

/*
 * A unit's iovecs: the blocks' own buffers, joining neighbours in memory as
 * md.c does (patch 0008 exports its helper), or one bounce buffer holding a
 * copy of them.
 */
static int
unit_iovecs(const WtsmgrUnit *unit, const void **buffers, char **bounce,
			struct iovec *iov)
{
	if (unit->bounce)
	{
		char	   *dst = *bounce;

		for (uint32 i = 0; i < unit->nblocks; i++)
			memcpy(dst + (size_t) i * BLCKSZ, buffers[unit->first + i], BLCKSZ);
		iov[0].iov_base = dst;
		iov[0].iov_len = (size_t) unit->nblocks * BLCKSZ;
		*bounce += (size_t) unit->nblocks * BLCKSZ;
		return 1;
	}
	return mdbufferstoiovec(iov, (void **) (buffers + unit->first),
							(int) unit->nblocks);
}

/*
 * The injection point "wtsmgr-atomic-write" lets tests make the next atomic
 * write fail with an errno of their choosing (0: no failure).
 */
static int
injected_failure(void)
{
	int			err = 0;

	INJECTION_POINT("wtsmgr-atomic-write", &err);
	return err;
}

/*
 * The injection point "wtsmgr-atomic-unit" lets tests make one unit of a
 * multi-unit write fail, or complete short: see WtsmgrUnitFault.  Returns
 * 0, -errno or a short byte count.
 */
static int
injected_unit_fault(int unit, int nunits, int fd, const struct iovec *iov,
					int niov, off_t offset, size_t len)
{
	WtsmgrUnitFault fault = {unit, nunits, (int) len, 0, fd, iov, niov,
	(long long) offset};

	if (nunits > 1)
		INJECTION_POINT("wtsmgr-atomic-unit", &fault);
	return fault.result;
}

/*
 * Write one unit with one atomic pwritev2().  Returns 0, an errno, or
 * WTSMGR_WRITTEN_SHORT with *written set.  Only a write that failed with
 * EINTR, having written nothing, is tried again.
 */
static int
write_unit(int fd, const struct iovec *iov, int niov, off_t offset,
		   size_t len, int flags, int u, int nunits, ssize_t *written)
{
	for (int attempt = 0; attempt < WTSMGR_MAX_RETRIES; attempt++)
	{
		ssize_t		rc;
		int			err = injected_failure();

		if (err == 0)
			err = -injected_unit_fault(u, nunits, fd, iov, niov, offset, len);
		if (err > 0)
			return err;
		if (err < 0)
		{
			*written = -err;
			return WTSMGR_WRITTEN_SHORT;
		}

		pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
		rc = pwritev2(fd, iov, niov, offset, flags);
		pgstat_report_wait_end();

		if (rc == (ssize_t) len)
			return 0;
		if (rc >= 0)
		{
			*written = rc;
			return WTSMGR_WRITTEN_SHORT;
		}
		if (errno != EINTR)
			return errno;
	}
	return EINTR;
}

/*
 * Blocks [first, first + n) of a run could not be written atomically (cause
 * says why): write them through the doublewrite area, so that no crash can
 * leave them torn.  New blocks, past the end of the file, have no old
 * contents to tear into, but go the same way: that every write that is not
 * atomic is protected is a rule that an audit of the writes can check.
 */
static void
fallback_write(SegmentRun *run, uint32 first, uint32 n, int cause)
{
	WtsmgrDwTarget target;
	int			fd = FileGetRawDesc(run->seg->file);

	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not reopen file \"%s\": %m",
						FilePathName(run->seg->file)),
				 errhint("Check the limit on open files (max_files_per_process).")));

	target.locator = run->wreln->reln.smgr_rlocator.locator;
	target.forknum = run->forknum;
	target.blocknum = run->segno * ((BlockNumber) RELSEG_SIZE) +
		run->segblock + first;
	target.fd = fd;
	target.direct = run->seg->direct;
	target.offset = (off_t) (run->segblock + first) * BLCKSZ;
	target.new_blocks = run->new_blocks;
	target.path = FilePathName(run->seg->file);
	wtsmgr_dw_write(&target, run->buffers + first, n);
	run->doublewritten += n;
	note_fallback(run, cause, target.offset, n);
}

/*
 * A unit of several blocks found no free extent for a copy-on-write atomic
 * write: try its blocks one at a time, which need smaller extents, and take
 * the way out for those that still fail.  unit_iov is the unit in memory
 * (its buffers, or one bounce copy).
 */
static void
write_blocks_singly(SegmentRun *run, const WtsmgrUnit *unit,
					const struct iovec *unit_iov)
{
	int			fd = FileGetRawDesc(run->seg->file);
	uint32		failed_from = 0;
	uint32		nfailed = 0;
	int			cause = 0;

	for (uint32 i = 0; i <= unit->nblocks; i++)
	{
		struct iovec iov;
		ssize_t		written = 0;	/* set with WTSMGR_WRITTEN_SHORT */
		off_t		offset = (off_t) (run->segblock + unit->first + i) * BLCKSZ;
		int			rc = 0;

		if (i < unit->nblocks)
		{
			iov.iov_base = unit->bounce ?
				(char *) unit_iov[0].iov_base + (size_t) i * BLCKSZ :
				unconstify(void *, run->buffers[unit->first + i]);
			iov.iov_len = BLCKSZ;
			rc = write_unit(fd, &iov, 1, offset, BLCKSZ, run->flags, 0, 1,
							&written);
			if (rc == 0)
			{
				run->atomic_blocks++;
				run->atomic_units++;
			}
			else if (rc == WTSMGR_WRITTEN_SHORT)
				report_short_write(run, offset, BLCKSZ, written);
			else if (!atomic_write_refused(rc))
				report_write_failure(run->ts, run->seg->file, offset, BLCKSZ,
									 rc);
			else
				wtsmgr_stat_count(run->ts, WTSMGR_STAT_REFUSALS, 1);
		}

		/* a stretch of failed blocks ends: take the way out for it */
		if ((rc == 0 || i == unit->nblocks) && nfailed > 0)
		{
			fallback_write(run, unit->first + failed_from, nfailed, cause);
			nfailed = 0;
		}
		if (rc != 0 && i < unit->nblocks)
		{
			if (nfailed == 0)
				failed_from = i;
			nfailed++;
			cause = rc;
		}
	}
}

/*
 * Step 1 of write_segment_run(): open the segment and plan how its blocks go
 * down.  An extension that begins a segment, or the first in this opening
 * of the relation, pads the segments before it first (see
 * pad_previous_segments()).
 *
 * Units are planned with the limits statx gave for this very file when it
 * was opened: the kernel holds the write to them.  The tablespace's probe
 * may have looked at another filesystem (a file moved behind a link), or
 * failed and read only its directory, while writes there stay atomic.  A
 * plan of no units means every block takes the way out, for the reason in
 * fallback_cause: the file cannot take atomic writes (as on a standby
 * replaying WAL that lacks the tablespace's images onto storage that
 * tears), the kernel broke its promise there (report_short_write()), or no
 * unit of one block is a valid atomic write in it.
 */
static void
plan_segment_run(SegmentRun *run, bool skipFsync, bool create)
{
	WtsmgrSegment *seg = get_segment(run->wreln, run->forknum, run->segno);
	const WtsmgrAtomicLimits *limits;

	/* only writes segments before this one: seg stays where it is */
	if (run->new_blocks && run->segno > 0 && seg->file == 0)
		pad_previous_segments(run->wreln, run->ts, run->forknum, run->segno,
							  skipFsync);
	run->seg = open_segment(run->wreln, run->ts, run->forknum, run->segno,
							seg, create);

	run->flags = RWF_ATOMIC;
	if (durability == WTSMGR_DURABILITY_DSYNC)
		run->flags |= RWF_DSYNC;
	run->nunits = 0;
	if (!run->seg->atomic)
	{
		run->fallback_cause = WTSMGR_FALLBACK_FILE;
		return;
	}
	if (wtsmgr_ts_atomic_distrusted(run->ts))
	{
		run->fallback_cause = WTSMGR_FALLBACK_SHORT;
		return;
	}

	limits = &run->seg->limits;
	run->nunits = wtsmgr_plan_units(run->segblock, run->nblocks, BLCKSZ,
									limits->unit_min, limits->unit_max,
									limits->segments_max,
									Max(limits->dio_mem_align, 1),
									(const void *const *) run->buffers,
									run->units);
	if (run->nunits == 0)
	{
		wtsmgr_stat_count(run->ts, WTSMGR_STAT_REFUSALS, 1);
		run->fallback_cause = EINVAL;
	}
}

/*
 * Step 2: write the planned units, each atomically or, if it cannot be,
 * through the way out; with no units, every block through the way out.
 */
static void
submit_segment_run(SegmentRun *run)
{
	struct iovec iov[WTSMGR_MAX_RUN];	/* at most one per block */
	int			fd = FileGetRawDesc(run->seg->file);
	char	   *bounce;

	if (run->nunits == 0)
	{
		fallback_write(run, 0, run->nblocks, run->fallback_cause);
		return;
	}

	if (bounce_area == NULL)
		bounce_area = MemoryContextAllocAligned(TopMemoryContext,
												(Size) WTSMGR_MAX_RUN * BLCKSZ,
												PG_IO_ALIGN_SIZE, 0);
	bounce = bounce_area;
	for (uint32 u = 0; u < run->nunits; u++)
	{
		const WtsmgrUnit *unit = &run->units[u];
		off_t		offset = (off_t) (run->segblock + unit->first) * BLCKSZ;
		size_t		len = (size_t) unit->nblocks * BLCKSZ;
		int			niov = unit_iovecs(unit, run->buffers, &bounce, iov);
		ssize_t		written = 0;	/* set with WTSMGR_WRITTEN_SHORT */
		int			rc;

		rc = write_unit(fd, iov, niov, offset, len, run->flags, u,
						run->nunits, &written);
		if (rc == 0)
		{
			run->atomic_blocks += unit->nblocks;
			run->atomic_units++;
			continue;
		}
		if (rc == WTSMGR_WRITTEN_SHORT)
		{
			report_short_write(run, offset, len, written);
			fallback_write(run, unit->first, unit->nblocks, rc);
			continue;
		}
		if (!atomic_write_refused(rc))
			report_write_failure(run->ts, run->seg->file, offset, len, rc);
		wtsmgr_stat_count(run->ts, WTSMGR_STAT_REFUSALS, 1);
		if (unit->nblocks > 1 && (rc == ENOSPC || rc == EDQUOT))
			write_blocks_singly(run, unit, iov);
		else
			fallback_write(run, unit->first, unit->nblocks, rc);
	}
}

/*
 * Step 3: count what was done, and have what was written atomically
 * fsynced; the doublewrite area's writes are durable already.
 */
static void
account_segment_run(SegmentRun *run, bool skipFsync)
{
	wtsmgr_stat_count(run->ts, WTSMGR_STAT_ATOMIC_WRITES, run->atomic_blocks);
	wtsmgr_stat_count(run->ts, WTSMGR_STAT_ATOMIC_UNITS, run->atomic_units);
	if (run->nunits > 1)
		wtsmgr_stat_count(run->ts, WTSMGR_STAT_BATCHES, 1);
	wtsmgr_stat_count(run->ts, WTSMGR_STAT_DOUBLEWRITES, run->doublewritten);
	wtsmgr_stat_count(run->ts, WTSMGR_STAT_WRITE_BYTES,
					  (uint64) run->nblocks * BLCKSZ);

	if (!skipFsync && durability == WTSMGR_DURABILITY_FSYNC &&
		run->atomic_blocks > 0)
		request_segment_fsync(run->wreln, run->forknum, run->segno,
							  run->seg->file);

	/*
	 * A direct write drops the range from the kernel's page cache, where a
	 * buffered write would have left it: a block that shared buffers evict
	 * later is then read from the device, not from the cache.  If asked, have
	 * the kernel read the range back in the background.  New blocks are left
	 * alone.
	 */
	if (reread_written && !run->new_blocks)
		(void) posix_fadvise(FileGetRawDesc(run->seg->file),
							 (off_t) run->segblock * BLCKSZ,
							 (off_t) run->nblocks * BLCKSZ,
							 POSIX_FADV_WILLNEED);
}

/*
 * Write blocks [blocknum, blocknum + nblocks) of one segment, none of them
 * torn by any crash: plan, submit, account.  create: the segment file may
 * be created; new_blocks: the blocks lie past the end of the file.
 */
static void
write_segment_run(WtsmgrRelation wreln, WtsmgrTablespace *ts,
				  ForkNumber forknum, BlockNumber blocknum,
				  const void **buffers, uint32 nblocks, bool skipFsync,
				  bool create, bool new_blocks)
{
	SegmentRun	run = {0};

	Assert(nblocks > 0 && nblocks <= WTSMGR_MAX_RUN);

	run.wreln = wreln;
	run.ts = ts;
	run.forknum = forknum;
	run.segno = blocknum / RELSEG_SIZE;
	run.segblock = blocknum % RELSEG_SIZE;
	run.buffers = buffers;
	run.nblocks = nblocks;
	run.new_blocks = new_blocks;
	Assert(run.segblock + nblocks <= RELSEG_SIZE);

	plan_segment_run(&run, skipFsync, create);
	submit_segment_run(&run);
	account_segment_run(&run, skipFsync);
}

/*
 * Write blocks, segment by segment, at most WTSMGR_MAX_RUN blocks at a
 * time.
 */
static void
atomic_write(WtsmgrRelation wreln, WtsmgrTablespace *ts, ForkNumber forknum,
			 BlockNumber blocknum, const void **buffers, BlockNumber nblocks,
			 bool skipFsync, bool create, bool new_blocks)
{
	while (nblocks > 0)
	{
		uint32		n = Min(nblocks, RELSEG_SIZE - blocknum % RELSEG_SIZE);

		n = Min(n, WTSMGR_MAX_RUN);
		write_segment_run(wreln, ts, forknum, blocknum, buffers, n,
						  skipFsync, create, new_blocks);
		blocknum += n;
		buffers += n;
		nblocks -= n;
	}
}

/*
 * md.c refuses to grow a relation past the largest possible block number;
 * so do we.
 */
static void
check_extend_limit(SMgrRelation reln, ForkNumber forknum,
				   BlockNumber blocknum, int nblocks)
{
	if ((uint64) blocknum + nblocks >= (uint64) InvalidBlockNumber)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("cannot extend file \"%s\" beyond %u blocks",
						relpath(reln->smgr_rlocator, forknum).str,
						InvalidBlockNumber),
				 errdetail("A relation cannot grow past 32 TB with 8 kB blocks."),
				 errhint("Split the data over several relations, for example with partitioning.")));
}

/*
 * Count a call of the storage manager that wrote nblocks blocks, once it
 * has succeeded (a failed one is written again).
 */
static void
count_call(WtsmgrTablespace *ts, WtsmgrStat blocks_stat, uint64 nblocks)
{
	if (blocks_stat == WTSMGR_STAT_WRITEV_BLOCKS)
		wtsmgr_stat_count(ts, WTSMGR_STAT_WRITEV_CALLS, 1);
	wtsmgr_stat_count(ts, blocks_stat, nblocks);
}

/*
 * wtsmgr_writev() -- Write blocks of a relation fork.
 */
void
wtsmgr_writev(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const void **buffers, BlockNumber nblocks, bool skipFsync)
{
	WtsmgrTablespace *ts;
	WtsmgrTablespace *io_ts;

	if (!protected_target(reln, &ts, &io_ts))
	{
		mdwritev(reln, forknum, blocknum, buffers, nblocks, skipFsync);
		count_call(ts, WTSMGR_STAT_WRITEV_BLOCKS, nblocks);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_WRITES, nblocks);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_WRITE_BYTES,
						  (uint64) nblocks * BLCKSZ);
		wtsmgr_stats_flush_if_due(false);
		return;
	}

	/*
	 * In recovery md.c creates missing segments for writes too
	 * (EXTENSION_CREATE_RECOVERY): the relation may have been truncated or
	 * dropped later in the WAL.  So do we.  The blocks may exist all the
	 * same, so they are not written as new ones.
	 */
	atomic_write((WtsmgrRelation) reln, ts, forknum, blocknum, buffers,
				 nblocks, skipFsync, InRecovery, false);
	count_call(ts, WTSMGR_STAT_WRITEV_BLOCKS, nblocks);
	wtsmgr_stat_count(ts, WTSMGR_STAT_WRITES, nblocks);
	wtsmgr_stats_flush_if_due(false);
}

/*
 * wtsmgr_extend() -- Add a block to a relation fork.
 */
void
wtsmgr_extend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
			  const void *buffer, bool skipFsync)
{
	WtsmgrTablespace *ts;
	WtsmgrTablespace *io_ts;

	if (!protected_target(reln, &ts, &io_ts))
	{
		mdextend(reln, forknum, blocknum, buffer, skipFsync);
		count_call(ts, WTSMGR_STAT_EXTEND_BLOCKS, 1);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_EXTENDS, 1);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_WRITE_BYTES, BLCKSZ);
		wtsmgr_stats_flush_if_due(false);
		return;
	}

	check_extend_limit(reln, forknum, blocknum, 1);
	atomic_write((WtsmgrRelation) reln, ts, forknum, blocknum, &buffer, 1,
				 skipFsync, true, true);
	count_call(ts, WTSMGR_STAT_EXTEND_BLOCKS, 1);
	wtsmgr_stat_count(ts, WTSMGR_STAT_EXTENDS, 1);
	wtsmgr_stats_flush_if_due(false);
}

/*
 * wtsmgr_zeroextend() -- Add zeroed blocks to a relation fork.
 *
 * In a protected tablespace the zero blocks are written, atomically and in
 * runs, rather than fallocate()d: see the file header.
 */
void
wtsmgr_zeroextend(SMgrRelation reln, ForkNumber forknum, BlockNumber blocknum,
				  int nblocks, bool skipFsync)
{
	WtsmgrTablespace *ts;
	WtsmgrTablespace *io_ts;
	const void *zeros[WTSMGR_MAX_RUN];

	/*
	 * Recovery extends a relation only to replay records that then initialize
	 * or overwrite the new blocks, which are written atomically like any
	 * other.  Writing the zeros atomically first would cost a copy-on-write
	 * atomic write per block (and its space) for nothing, so recovery extends
	 * as md.c does.  The zeros cannot tear into anything: the blocks lie past
	 * the old end of the file.
	 */
	if (!protected_target(reln, &ts, &io_ts) || InRecovery)
	{
		mdzeroextend(reln, forknum, blocknum, nblocks, skipFsync);
		count_call(ts, WTSMGR_STAT_ZEROEXTEND_BLOCKS, nblocks);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_EXTENDS, nblocks);
		wtsmgr_stats_flush_if_due(false);
		return;
	}

	check_extend_limit(reln, forknum, blocknum, nblocks);

	/* one contiguous zero area, so that a unit needs a single iovec */
	for (int i = 0; i < WTSMGR_MAX_RUN; i++)
		zeros[i] = zero_blocks() + (Size) i * BLCKSZ;

	while (nblocks > 0)
	{
		uint32		n = Min(nblocks, WTSMGR_MAX_RUN);

		atomic_write((WtsmgrRelation) reln, ts, forknum, blocknum, zeros, n,
					 skipFsync, true, true);
		count_call(ts, WTSMGR_STAT_ZEROEXTEND_BLOCKS, n);
		wtsmgr_stat_count(ts, WTSMGR_STAT_EXTENDS, n);
		blocknum += n;
		nblocks -= n;
	}
	wtsmgr_stats_flush_if_due(false);
}
