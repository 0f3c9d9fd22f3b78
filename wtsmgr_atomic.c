/*-------------------------------------------------------------------------
 *
 * wtsmgr_atomic.c
 *	  The write path of the wtsmgr storage manager: untorn atomic writes.
 *
 * This file owns every write of relation blocks that the storage manager
 * receives: smgr_writev, smgr_extend and smgr_zeroextend.  For a relation in
 * a tablespace proven untorn (wtsmgr_statx.c), blocks reach the disk with
 * O_DIRECT RWF_ATOMIC writes, so that no block can ever be torn:
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
 *   (wtsmgr_split.h), each a valid atomic write of whole blocks.  One unit
 *   goes down with pwritev2(); several go to this backend's io_uring ring in
 *   one submission, and all are reaped before we return.  Units whose
 *   buffers need more iovecs than the device takes, or are misaligned, are
 *   copied into an aligned bounce buffer.
 *
 * - Durability (wtsmgr.durability): with fsync, writes are plain atomic
 *   direct writes and the checkpointer fsyncs the segment, as md.c arranges
 *   for its own writes; with dsync, every write carries RWF_DSYNC and no
 *   fsync request is made for it.
 *
 * - A write that cannot be done atomically (EINVAL, EOPNOTSUPP) is an ERROR,
 *   never a fallback to a plain write: the caller's buffer stays dirty and
 *   is written again later.  So is any other failure, and a call with some
 *   units written and others not is reported as failed as a whole.
 *
 * - Extending: smgr_extend writes the new block atomically, creating the
 *   segment file if needed; smgr_zeroextend writes zero blocks the same way,
 *   so their space is allocated as md.c's rule wants (a checkpoint must not
 *   hit ENOSPC) without unwritten extents, which would cost a metadata update
 *   on each later write.  New files in XFS get an extent size hint
 *   (wtsmgr.extent_size_hint) so that growing many files at once does not
 *   fragment them.
 *
 * This file also owns the write path's settings, wtsmgr.durability,
 * wtsmgr.io_uring_entries and wtsmgr.reread_written, and counts what it
 * does in wtsmgr_stats.c.
 *
 * Temporary relations are never WAL-logged and vanish at a crash, so a torn
 * page of theirs cannot matter: they, and everything outside untorn
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
#include <liburing.h>
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
#include "utils/wait_event.h"

#include "wtsmgr_atomic.h"
#include "wtsmgr_split.h"
#include "wtsmgr_stats.h"

/* Largest run handled in one go: io_combine_limit's ceiling */
#define WTSMGR_MAX_RUN MAX_IO_COMBINE_LIMIT

/* Retries of a unit that was interrupted or written short */
#define WTSMGR_MAX_RETRIES 16

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
static int	io_uring_entries = 64;
static bool reread_written = false;

/* holds the per-relation segment arrays */
static MemoryContext WtsmgrCxt = NULL;

/* this backend's io_uring ring, created on first multi-unit write */
static struct io_uring ring;
static enum
{
	RING_NONE, RING_READY, RING_UNAVAILABLE
}			ring_state = RING_NONE;

/* aligned scratch areas, allocated on first use */
static char *bounce_area = NULL;
static char *zero_area = NULL;

static WtsmgrSegment *get_segment(WtSMgrRelation wreln, ForkNumber forknum,
								  BlockNumber segno);
static File open_segment(WtSMgrRelation wreln, WtsmgrTablespace *ts,
						 ForkNumber forknum, BlockNumber segno, bool create);
static void atomic_write(WtSMgrRelation wreln, WtsmgrTablespace *ts,
						 ForkNumber forknum, BlockNumber blocknum,
						 const void **buffers, BlockNumber nblocks,
						 bool skipFsync, bool extending);
static void write_segment_run(WtSMgrRelation wreln, WtsmgrTablespace *ts,
							  ForkNumber forknum, BlockNumber blocknum,
							  const void **buffers, uint32 nblocks,
							  bool skipFsync, bool extending);

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

	DefineCustomIntVariable("wtsmgr.io_uring_entries",
							"Size of each backend's io_uring submission queue.",
							"A batch of atomic units larger than this is submitted in several rounds.",
							&io_uring_entries,
							64, 1, 4096,
							PGC_POSTMASTER,
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
	WtSMgrRelation wreln = (WtSMgrRelation) reln;

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
	WtSMgrRelation wreln = (WtSMgrRelation) reln;

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
	WtSMgrRelation wreln = (WtSMgrRelation) reln;

	if (wreln->wt_tablespace == NULL)
	{
		Oid			spcoid = wreln->reln.smgr_rlocator.locator.spcOid;

		if (CritSectionCount > 0)
			return wtsmgr_find_tablespace(spcoid);
		wreln->wt_tablespace = wtsmgr_get_tablespace(spcoid, false);
	}
	return wreln->wt_tablespace;
}

/*
 * Does this relation's writing go through the atomic path?  Only if its
 * tablespace was proven untorn since the server started, even if a later
 * probe disagrees (wtsmgr_fpi.c says why); temporary relations never do (see
 * the file header).  *ts is set to the tablespace's entry either way, for
 * the counters of calls, and *io_ts to the same but NULL for temporary
 * relations, whose I/O wtsmgr_stat_io does not count.
 */
static bool
atomic_target(SMgrRelation reln, WtsmgrTablespace **ts,
			  WtsmgrTablespace **io_ts)
{
	*ts = wtsmgr_relation_tablespace(reln);
	if (SmgrIsTemp(reln))
	{
		*io_ts = NULL;
		return false;
	}
	*io_ts = *ts;
	return wtsmgr_ts_writes_atomically(*ts);
}

/*
 * The bookkeeping entry of a segment, making room for it.
 */
static WtsmgrSegment *
get_segment(WtSMgrRelation wreln, ForkNumber forknum, BlockNumber segno)
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
segment_path(WtSMgrRelation wreln, ForkNumber forknum, BlockNumber segno,
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
				 errdetail("The file shares %lld bytes of blocks with another file (a reflink copy, e.g. from file_copy_method = clone); wtsmgr gives it blocks of its own first. The blocks to write stay dirty in shared buffers.",
						   (long long) size),
				 errhint("Free space on the tablespace's filesystem.")));
	}
	ereport(LOG,
			(errmsg("wtsmgr unshared the blocks of file \"%s\" (%lld bytes) before writing it atomically",
					path, (long long) size),
			 errdetail("The file shared blocks with another file (a reflink copy); atomic writes to shared blocks would each need new space.")));
}

/*
 * Open our O_DIRECT descriptor of a segment file.  create is for extension,
 * which may begin a new segment file, as md.c's does.  A new file gets the
 * extent size hint; any file is checked once with statx.
 */
static File
open_segment(WtSMgrRelation wreln, WtsmgrTablespace *ts, ForkNumber forknum,
			 BlockNumber segno, bool create)
{
	WtsmgrSegment *seg = get_segment(wreln, forknum, segno);
	char		path[MAXPGPATH];

	if (seg->file > 0)
		return seg->file;

	segment_path(wreln, forknum, segno, path, sizeof(path));
	seg->file = PathNameOpenFile(path, O_RDWR | PG_BINARY | PG_O_DIRECT |
								 (create ? O_CREAT : 0));
	if (seg->file < 0)
	{
		seg->file = 0;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for atomic writes: %m", path),
				 errdetail("wtsmgr writes relation files in tablespaces with atomic writes through a second, O_DIRECT descriptor. The blocks to write stay dirty in shared buffers."),
				 errhint("Check the file's permissions and the limit on open files.")));
	}

	if (!seg->checked)
	{
		if (create && FileSize(seg->file) == 0)
		{
			WtsmgrTablespaceInfo info;

			/* the hint the probe proved atomic writes to work with */
			wtsmgr_ts_info(ts, &info);
			if (info.probe.result.extent_size_hint != 0)
				(void) wtsmgr_set_extent_size_hint(FileGetRawDesc(seg->file),
												   info.probe.result.extent_size_hint);
		}
		seg->atomic = wtsmgr_check_segment_file(path, &seg->limits);
		if (seg->atomic)
			unshare_segment(seg->file, path);
		else
			wtsmgr_stat_count(ts, WTSMGR_STAT_NONATOMIC_FILES, 1);
		seg->checked = true;
	}
	return seg->file;
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
segment_nblocks(WtSMgrRelation wreln, ForkNumber forknum, BlockNumber segno)
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
				 errdetail("wtsmgr checks that the segments before a new one are full, as md.c does. The blocks to write stay dirty in shared buffers."),
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
pad_previous_segments(WtSMgrRelation wreln, WtsmgrTablespace *ts,
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
						  &zero, 1, skipFsync, true);
}

/*
 * Ask the checkpointer to fsync a segment we wrote, as md.c's
 * register_dirty_segment() does; if its queue is full, fsync it ourselves.
 */
static void
register_dirty_segment(WtSMgrRelation wreln, ForkNumber forknum,
					   BlockNumber segno, File file)
{
	FileTag		tag;
	bool		drop = false;

	/* lets crash tests drop the request, to show that they would notice */
	INJECTION_POINT("wtsmgr-register-sync", &drop);
	if (drop)
		return;

	memset(&tag, 0, sizeof(tag));
	tag.handler = SYNC_HANDLER_MD;
	tag.rlocator = wreln->reln.smgr_rlocator.locator;
	tag.forknum = forknum;
	tag.segno = segno;

	if (!RegisterSyncRequest(&tag, SYNC_REQUEST, false))
	{
		ereport(DEBUG1,
				(errmsg_internal("could not forward fsync request because request queue is full")));
		if (FileSync(file, WAIT_EVENT_DATA_FILE_SYNC) < 0)
			ereport(data_sync_elevel(ERROR),
					(errcode_for_file_access(),
					 errmsg("could not fsync file \"%s\": %m",
							FilePathName(file)),
					 errdetail("The checkpointer's request queue was full. The written blocks remain dirty in shared buffers and will be written again."),
					 errhint("Check the file's filesystem for errors.")));
	}
}

/*
 * An atomic write failed for want of space.  Where the filesystem does
 * atomic writes by copy-on-write, every overwrite needs free space, even of
 * blocks allocated long ago, so unlike with md.c a full filesystem stops
 * checkpoints: say so, naming the tablespace.  The name is not looked up in
 * the catalog, which the checkpointer cannot read.
 */
static void
report_out_of_space(WtsmgrTablespace *ts)
{
	char		dir[MAXPGPATH];
	WtsmgrTablespaceInfo info;

	if (ts == NULL)
		return;
	wtsmgr_ts_info(ts, &info);
	wtsmgr_tablespace_dir(info.spcoid, dir, sizeof(dir));
	if (info.probe.result.limits.unit_max_opt >= BLCKSZ)
		ereport(WARNING,
				(errcode(ERRCODE_DISK_FULL),
				 errmsg("tablespace %u (\"%s\") has no space left for atomic writes: checkpoints cannot complete until space is freed",
						info.spcoid, dir),
				 errdetail("Atomic writes there are done by the device, but the write still needed new space. Dirty blocks stay in shared buffers."),
				 errhint("Free space on the tablespace's filesystem, or add space to it.")));
	else
		ereport(WARNING,
				(errcode(ERRCODE_DISK_FULL),
				 errmsg("tablespace %u (\"%s\") has no space left for atomic writes: checkpoints cannot complete until space is freed",
						info.spcoid, dir),
				 errdetail("Atomic writes there are done by filesystem copy-on-write, which needs free space for every overwrite of a block, even one allocated long ago. Dirty blocks stay in shared buffers."),
				 errhint("Free space on the tablespace's filesystem, or add space to it.")));
}

/*
 * Report a failed atomic write.  EINVAL and EOPNOTSUPP mean the kernel
 * refused the write as an atomic one, which must not happen in a tablespace
 * proven untorn; everything else is an I/O failure.  Either way the caller's
 * buffers stay dirty.
 */
static void
report_write_failure(WtsmgrTablespace *ts, File file, off_t offset,
					 size_t len, int err)
{
	errno = err;
	if (err == EINVAL || err == EOPNOTSUPP)
	{
		wtsmgr_stat_count(ts, WTSMGR_STAT_REFUSALS, 1);
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not write %zu bytes atomically to file \"%s\" at offset %lld: %m",
						len, FilePathName(file), (long long) offset),
				 errdetail("The kernel refused an RWF_ATOMIC write in a tablespace where atomic writes were proven; wtsmgr never falls back to a write that could tear. The blocks stay dirty in shared buffers and nothing is lost."),
				 errhint("Check the tablespace with SELECT * FROM wtsmgr_probe(...).")));
	}
	wtsmgr_stat_count(ts, WTSMGR_STAT_ERRORS, 1);
	if (err == ENOSPC)
		report_out_of_space(ts);
	errno = err;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not write %zu bytes atomically to file \"%s\" at offset %lld: %m",
					len, FilePathName(file), (long long) offset),
			 errdetail("The blocks stay dirty in shared buffers and nothing is lost; they are written again once the cause is fixed."),
			 errhint("Check the tablespace's filesystem and device, and that it has free space.")));
}

/*
 * A unit's iovecs: the blocks' own buffers, joining neighbours in memory,
 * or one bounce buffer holding a copy of them.
 */
static int
unit_iovecs(const WtsmgrUnit *unit, const void **buffers, char **bounce,
			struct iovec *iov)
{
	int			niov = 0;

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

	for (uint32 i = unit->first; i < unit->first + unit->nblocks; i++)
	{
		if (niov > 0 &&
			(const char *) iov[niov - 1].iov_base + iov[niov - 1].iov_len ==
			(const char *) buffers[i])
			iov[niov - 1].iov_len += BLCKSZ;
		else
		{
			iov[niov].iov_base = unconstify(void *, buffers[i]);
			iov[niov].iov_len = BLCKSZ;
			niov++;
		}
	}
	return niov;
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
 * multi-unit write fail, or complete short, without writing it: see
 * WtsmgrUnitFault.  Returns 0, -errno or a short byte count.
 */
static int
injected_unit_fault(int unit, int nunits, size_t len)
{
	WtsmgrUnitFault fault = {unit, nunits, (int) len, 0};

	if (nunits > 1)
		INJECTION_POINT("wtsmgr-atomic-unit", &fault);
	return fault.result;
}

/*
 * Write unit u of nunits with pwritev2(), retrying interruptions and short
 * writes.  Returns 0 or an errno.
 */
static int
pwrite_unit(int fd, struct iovec *iov, int niov, off_t offset, size_t len,
			int flags, int u, int nunits)
{
	for (int attempt = 0; attempt < WTSMGR_MAX_RETRIES; attempt++)
	{
		ssize_t		rc;
		int			err = injected_failure();
		int			fault = injected_unit_fault(u, nunits, len);

		if (err != 0)
			return err;
		if (fault < 0)
			return -fault;
		if (fault > 0)
		{
			/* as if written short: write it again */
			CHECK_FOR_INTERRUPTS();
			continue;
		}

		pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
		rc = pwritev2(fd, iov, niov, offset, flags);
		pgstat_report_wait_end();

		if (rc == (ssize_t) len)
			return 0;
		if (rc < 0 && errno != EINTR && errno != EAGAIN)
			return errno;
		/* interrupted, or short: write the whole unit again */
		CHECK_FOR_INTERRUPTS();
	}
	return EIO;
}

/*
 * Create this backend's ring on first use.  A kernel without io_uring (or
 * with it disabled) still gets atomic writes, one unit at a time.
 */
static bool
ring_available(void)
{
	if (ring_state == RING_NONE)
	{
		int			rc = 0;

		/* tests make setup fail here, as a kernel without io_uring does */
		INJECTION_POINT("wtsmgr-ring-setup", &rc);
		if (rc == 0)
			rc = io_uring_queue_init(io_uring_entries, &ring, 0);
		if (rc == 0)
			ring_state = RING_READY;
		else
		{
			ring_state = RING_UNAVAILABLE;
			ereport(LOG,
					(errmsg("wtsmgr could not set up io_uring: %s", strerror(-rc)),
					 errdetail("This process writes the atomic units of a run one at a time."),
					 errhint("Check that io_uring is enabled (sysctl kernel.io_uring_disabled).")));
		}
	}
	return ring_state == RING_READY;
}

/*
 * Write units [0, nunits) through the ring, all submitted before any is
 * waited for, and all reaped before returning.  Units interrupted or
 * written short are submitted again.  Returns 0, or the first errno, with
 * *failed_unit set.
 */
static int
ring_write_units(int fd, struct iovec **iovs, int *niovs,
				 off_t *offsets, size_t *lens, int nunits, int flags,
				 int *failed_unit)
{
	int			retries[WTSMGR_MAX_RUN] = {0};
	int			injected[WTSMGR_MAX_RUN] = {0};
	int			pending = 0;
	int			next = 0;
	int			first_err = 0;
	bool		resubmit[WTSMGR_MAX_RUN] = {0};
	int			nresubmit = 0;

	while (next < nunits || pending > 0 || nresubmit > 0)
	{
		struct io_uring_cqe *cqe;
		int			rc;

		/* queue what fits: new units, then units to write again */
		for (int u = 0; u < nunits && first_err == 0; u++)
		{
			struct io_uring_sqe *sqe;
			bool		fresh = (u == next && next < nunits);

			if (!fresh && !resubmit[u])
				continue;
			sqe = io_uring_get_sqe(&ring);
			if (sqe == NULL)
				break;
			injected[u] = injected_unit_fault(u, nunits, lens[u]);
			if (injected[u] != 0)
				io_uring_prep_nop(sqe);
			else
			{
				io_uring_prep_writev(sqe, fd, iovs[u], niovs[u], offsets[u]);
				sqe->rw_flags = flags;
			}
			io_uring_sqe_set_data64(sqe, (uint64) u);
			pending++;
			if (fresh)
				next++;
			else
			{
				resubmit[u] = false;
				nresubmit--;
			}
		}
		if (first_err != 0)
		{
			/* stop submitting, but reap all that is in flight */
			next = nunits;
			nresubmit = 0;
		}
		if (pending == 0)
			break;

		pgstat_report_wait_start(WAIT_EVENT_DATA_FILE_WRITE);
		rc = io_uring_submit_and_wait(&ring, 1);
		pgstat_report_wait_end();
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		{
			/* the ring is unusable: what was submitted may still run */
			elog(PANIC, "io_uring_submit_and_wait failed: %s", strerror(-rc));
		}

		while (io_uring_peek_cqe(&ring, &cqe) == 0)
		{
			int			u = (int) io_uring_cqe_get_data64(cqe);
			int			res = injected[u] != 0 ? injected[u] : cqe->res;

			io_uring_cqe_seen(&ring, cqe);
			pending--;
			if (res == (int) lens[u])
				continue;
			if ((res >= 0 || res == -EINTR || res == -EAGAIN) &&
				++retries[u] < WTSMGR_MAX_RETRIES && first_err == 0)
			{
				resubmit[u] = true;
				nresubmit++;
				continue;
			}
			if (first_err == 0)
			{
				first_err = res < 0 ? -res : EIO;
				*failed_unit = u;
			}
		}
	}
	return first_err;
}

/*
 * Write blocks [blocknum, blocknum + nblocks) of one segment atomically.
 */
static void
write_segment_run(WtSMgrRelation wreln, WtsmgrTablespace *ts,
				  ForkNumber forknum, BlockNumber blocknum,
				  const void **buffers, uint32 nblocks, bool skipFsync,
				  bool extending)
{
	BlockNumber segno = blocknum / RELSEG_SIZE;
	BlockNumber segblock = blocknum % RELSEG_SIZE;
	WtsmgrAtomicLimits *limits;
	WtsmgrUnit	units[WTSMGR_MAX_RUN];
	struct iovec iov[WTSMGR_MAX_RUN];	/* at most one per block */
	struct iovec *iovs[WTSMGR_MAX_RUN]; /* each unit's first iovec */
	int			niovs[WTSMGR_MAX_RUN];
	off_t		offsets[WTSMGR_MAX_RUN];
	size_t		lens[WTSMGR_MAX_RUN];
	char	   *bounce;
	uint32		nunits;
	File		file;
	int			fd;
	int			flags = RWF_ATOMIC;
	int			err;
	int			failed = 0;

	Assert(nblocks > 0 && nblocks <= WTSMGR_MAX_RUN);
	Assert(segblock + nblocks <= RELSEG_SIZE);

	/*
	 * An extension that begins a segment, or the first in this opening of the
	 * relation, checks the segments before it: see pad_previous_segments().
	 */
	if (extending && segno > 0 &&
		get_segment(wreln, forknum, segno)->file == 0)
		pad_previous_segments(wreln, ts, forknum, segno, skipFsync);

	file = open_segment(wreln, ts, forknum, segno, extending);

	/*
	 * Units are planned with the limits statx gives for this very file, read
	 * when it was opened: the kernel holds the write to them.  The
	 * tablespace's probe may have looked at another filesystem (a file moved
	 * behind a link), or failed and read only its directory, while writes
	 * there stay atomic.
	 */
	limits = &get_segment(wreln, forknum, segno)->limits;
	if (!get_segment(wreln, forknum, segno)->atomic)
	{
		wtsmgr_stat_count(ts, WTSMGR_STAT_REFUSALS, 1);
		ereport(ERROR,
				(errcode(ERRCODE_IO_ERROR),
				 errmsg("could not write %u blocks of file \"%s\" atomically",
						nblocks, FilePathName(file)),
				 errdetail("statx reports that the file cannot take atomic writes of a block, although its tablespace can. The blocks stay dirty in shared buffers and nothing is lost."),
				 errhint("Move the file back onto the tablespace's filesystem, or re-probe the tablespace with wtsmgr_probe().")));
	}

	nunits = wtsmgr_plan_units(segblock, nblocks, BLCKSZ, limits->unit_min,
							   limits->unit_max, limits->segments_max,
							   Max(limits->dio_mem_align, 1),
							   (const void *const *) buffers, units);
	if (nunits == 0)
		report_write_failure(ts, file, (off_t) segblock * BLCKSZ,
							 (size_t) nblocks * BLCKSZ, EINVAL);

	if (bounce_area == NULL)
		bounce_area = MemoryContextAllocAligned(TopMemoryContext,
												(Size) WTSMGR_MAX_RUN * BLCKSZ,
												PG_IO_ALIGN_SIZE, 0);
	bounce = bounce_area;
	for (uint32 u = 0, used = 0; u < nunits; u++)
	{
		iovs[u] = &iov[used];
		niovs[u] = unit_iovecs(&units[u], buffers, &bounce, iovs[u]);
		used += niovs[u];
		offsets[u] = (off_t) (segblock + units[u].first) * BLCKSZ;
		lens[u] = (size_t) units[u].nblocks * BLCKSZ;
	}

	if (durability == WTSMGR_DURABILITY_DSYNC)
		flags |= RWF_DSYNC;

	fd = FileGetRawDesc(file);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not reopen file \"%s\": %m", FilePathName(file)),
				 errdetail("The blocks stay dirty in shared buffers and nothing is lost."),
				 errhint("Check the limit on open files (max_files_per_process).")));

	if (nunits > 1 && ring_available())
	{
		/* the injection point is checked once per batch */
		err = injected_failure();
		if (err == 0)
			err = ring_write_units(fd, iovs, niovs, offsets, lens, nunits,
								   flags, &failed);
		wtsmgr_stat_count(ts, WTSMGR_STAT_BATCHES, 1);
	}
	else
	{
		err = 0;
		for (uint32 u = 0; u < nunits && err == 0; u++)
		{
			err = pwrite_unit(fd, iovs[u], niovs[u], offsets[u], lens[u], flags,
							  u, nunits);
			failed = u;
		}
	}
	if (err != 0)
		report_write_failure(ts, file, offsets[failed], lens[failed], err);

	wtsmgr_stat_count(ts, WTSMGR_STAT_ATOMIC_WRITES, nblocks);
	wtsmgr_stat_count(ts, WTSMGR_STAT_ATOMIC_UNITS, nunits);
	wtsmgr_stat_count(ts, WTSMGR_STAT_WRITE_BYTES, (uint64) nblocks * BLCKSZ);

	if (!skipFsync && durability == WTSMGR_DURABILITY_FSYNC)
		register_dirty_segment(wreln, forknum, segno, file);

	/*
	 * A direct write drops the range from the kernel's page cache, where a
	 * buffered write would have left it: a block that shared buffers evict
	 * later is then read from the device, not from the cache.  If asked, have
	 * the kernel read the range back in the background.  New blocks
	 * (extending) are left alone.
	 */
	if (reread_written && !extending)
		(void) posix_fadvise(fd, (off_t) segblock * BLCKSZ,
							 (off_t) nblocks * BLCKSZ, POSIX_FADV_WILLNEED);
}

/*
 * Write blocks atomically, segment by segment, at most WTSMGR_MAX_RUN
 * blocks at a time.
 */
static void
atomic_write(WtSMgrRelation wreln, WtsmgrTablespace *ts, ForkNumber forknum,
			 BlockNumber blocknum, const void **buffers, BlockNumber nblocks,
			 bool skipFsync, bool extending)
{
	while (nblocks > 0)
	{
		uint32		n = Min(nblocks, RELSEG_SIZE - blocknum % RELSEG_SIZE);

		n = Min(n, WTSMGR_MAX_RUN);
		write_segment_run(wreln, ts, forknum, blocknum, buffers, n,
						  skipFsync, extending);
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

	if (!atomic_target(reln, &ts, &io_ts))
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
	 * dropped later in the WAL.  So do we.
	 */
	atomic_write((WtSMgrRelation) reln, ts, forknum, blocknum, buffers,
				 nblocks, skipFsync, InRecovery);
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

	if (!atomic_target(reln, &ts, &io_ts))
	{
		mdextend(reln, forknum, blocknum, buffer, skipFsync);
		count_call(ts, WTSMGR_STAT_EXTEND_BLOCKS, 1);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_EXTENDS, 1);
		wtsmgr_stat_count(io_ts, WTSMGR_STAT_WRITE_BYTES, BLCKSZ);
		wtsmgr_stats_flush_if_due(false);
		return;
	}

	check_extend_limit(reln, forknum, blocknum, 1);
	atomic_write((WtSMgrRelation) reln, ts, forknum, blocknum, &buffer, 1,
				 skipFsync, true);
	count_call(ts, WTSMGR_STAT_EXTEND_BLOCKS, 1);
	wtsmgr_stat_count(ts, WTSMGR_STAT_EXTENDS, 1);
	wtsmgr_stats_flush_if_due(false);
}

/*
 * wtsmgr_zeroextend() -- Add zeroed blocks to a relation fork.
 *
 * In an untorn tablespace the zero blocks are written, atomically and in
 * batches, rather than fallocate()d: see the file header.
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
	if (!atomic_target(reln, &ts, &io_ts) || InRecovery)
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

		atomic_write((WtSMgrRelation) reln, ts, forknum, blocknum, zeros, n,
					 skipFsync, true);
		count_call(ts, WTSMGR_STAT_ZEROEXTEND_BLOCKS, n);
		wtsmgr_stat_count(ts, WTSMGR_STAT_EXTENDS, n);
		blocknum += n;
		nblocks -= n;
	}
	wtsmgr_stats_flush_if_due(false);
}
