/*-------------------------------------------------------------------------
 *
 * wtsmgr_doublewrite.c
 *	  The doublewrite area: protected writes of blocks that cannot be
 *	  written atomically, and their repair before recovery.
 *
 * This file owns the file pg_wtsmgr/doublewrite in the data directory, the
 * locks of its regions, the protocol of a protected write and the repair of
 * interrupted ones.  wtsmgr_atomic.c calls it for a block whose full-page
 * image may be missing from WAL when that block cannot be written with an
 * atomic write: the kernel refused the write (copy-on-write atomic writes
 * need free space that a fragmented filesystem may lack), the file cannot
 * take atomic writes, or this server replays WAL without images onto
 * storage that can tear.
 *
 * A protected write of up to WTSMGR_DW_BLOCKS blocks of one segment file:
 *
 *	1. takes one of WTSMGR_DW_REGIONS regions of the area, with its lock;
 *	2. writes, in one durable write (RWF_DSYNC, or a write and fdatasync),
 *	   a header naming the blocks, with a CRC-32C of itself and of each
 *	   block, followed by copies of the blocks;
 *	3. writes the blocks in place, durably, with plain writes that may tear;
 *	4. overwrites the header with zeros, durably, and releases the region.
 *
 * So at any moment a block being written in place has a complete copy in
 * the area, under a valid header.  If the server crashes, the startup
 * process (and a single-user backend) calls wtsmgr_dw_startup() before
 * recovery reads anything, which writes every block of every valid region
 * back in place and then invalidates the regions: a block torn in step 3 is
 * whole again before redo looks at it, and redo then applies later records
 * as it would to a block written atomically.  A region whose header or
 * copies fail their CRC was torn in step 2, before step 3 touched the
 * block, and is ignored.
 *
 * Copying a block back is always correct while its header is valid: the
 * copy is the newest content of the block that was written (the caller's
 * buffer is locked for I/O until step 4 is durable, so nothing newer can
 * have been written), and WAL up to its LSN is durable, as for any write of
 * a buffer.  A copy of the area taken by pg_basebackup or pg_rewind may
 * hold a valid region of a write that was in flight on the source; copying
 * it back is as correct as copying the block itself at that moment, and
 * replay from the backup's start makes it consistent the same way.
 *
 * A failure in step 2 invalidates the region and raises an ERROR: the block
 * was not touched, the buffer stays dirty.  A failure after step 2 is a
 * PANIC: the block may be torn and only the repair can make it whole, and
 * the region must not be reused until then.  (Blocks past the end of the
 * file are the exception: nothing old can tear there, and failing to write
 * them on a full filesystem is an ERROR, as in md.c.)
 *
 * The area is made at the first start with wtsmgr (it cannot be made when
 * space has run out, which is when it is needed); its writes overwrite
 * blocks allocated then.  The cost of a protected write is three durable
 * writes, so it is a way out, not a write path: the views say when it is
 * used.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_doublewrite.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/pg_crc32c.h"
#include "storage/bufpage.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/md.h"
#include "storage/shmem.h"
#include "utils/injection_point.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "wtsmgr_doublewrite.h"

/* Regions of the area: doublewrites that may be in progress at once */
#define WTSMGR_DW_REGIONS	16

/* Each region: a header sector, then WTSMGR_DW_BLOCKS block copies */
#define WTSMGR_DW_HEADER_SIZE	PG_IO_ALIGN_SIZE
#define WTSMGR_DW_REGION_SIZE \
	(WTSMGR_DW_HEADER_SIZE + (off_t) WTSMGR_DW_BLOCKS * BLCKSZ)
#define WTSMGR_DW_FILE_SIZE	((off_t) WTSMGR_DW_REGIONS * WTSMGR_DW_REGION_SIZE)

#define WTSMGR_DW_MAGIC		0x57544457	/* "WTDW" */
#define WTSMGR_DW_VERSION	1

/* Plain writes that complete short are written again, at most this often */
#define WTSMGR_DW_MAX_RETRIES 16

/* One block of a region */
typedef struct WtsmgrDwEntry
{
	RelFileLocator locator;
	int32		forknum;
	BlockNumber blocknum;
	pg_crc32c	page_crc;		/* of the copy */
} WtsmgrDwEntry;

/* The header of a region in use; all zeros when it is not */
typedef struct WtsmgrDwHeader
{
	uint32		magic;
	uint32		version;
	uint32		region;			/* its own index, against misplaced copies */
	uint32		nblocks;
	uint64		sequence;		/* for the log only */
	pg_crc32c	crc;			/* of the header with crc = 0, up to
								 * entries[nblocks] */
	uint32		blcksz;
	WtsmgrDwEntry entries[WTSMGR_DW_BLOCKS];
} WtsmgrDwHeader;

StaticAssertDecl(sizeof(WtsmgrDwHeader) <= WTSMGR_DW_HEADER_SIZE,
				 "a doublewrite header fits its sector");

/* In shared memory */
typedef struct WtsmgrDwShared
{
	pg_atomic_uint64 sequence;
	LWLockPadded *locks;		/* one per region */
} WtsmgrDwShared;

static WtsmgrDwShared *DwShared = NULL;

/* This process's descriptor of the area, opened on first use */
static File dw_file = 0;
static bool dw_direct = false;

/* aligned scratch: a header sector, and the copies of the blocks */
static char *header_area = NULL;
static char *copy_area = NULL;

static uint32
header_length(uint32 nblocks)
{
	return offsetof(WtsmgrDwHeader, entries) + nblocks * sizeof(WtsmgrDwEntry);
}

static pg_crc32c
header_crc(const WtsmgrDwHeader *hdr)
{
	WtsmgrDwHeader copy;
	pg_crc32c	crc;

	memcpy(&copy, hdr, header_length(hdr->nblocks));
	copy.crc = 0;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &copy, header_length(hdr->nblocks));
	FIN_CRC32C(crc);
	return crc;
}

static pg_crc32c
page_crc(const void *page)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, page, BLCKSZ);
	FIN_CRC32C(crc);
	return crc;
}

void
wtsmgr_dw_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(WtsmgrDwShared)));
	RequestNamedLWLockTranche("wtsmgr doublewrite", WTSMGR_DW_REGIONS);
}

void
wtsmgr_dw_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	DwShared = ShmemInitStruct("wtsmgr doublewrite", sizeof(WtsmgrDwShared),
							   &found);
	if (!found)
	{
		pg_atomic_init_u64(&DwShared->sequence, 0);
		DwShared->locks = GetNamedLWLockTranche("wtsmgr doublewrite");
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Write iov durably at offset of fd: with RWF_DSYNC if fd is O_DIRECT,
 * otherwise with a write and fdatasync().  These are plain writes, which may
 * tear: a write that completes short is simply written again whole.
 * Returns 0 or an errno.
 */
static int
write_durably(int fd, bool direct, const struct iovec *iov, int iovcnt,
			  off_t offset, size_t len, uint32 wait_event)
{
	for (int attempt = 0; attempt < WTSMGR_DW_MAX_RETRIES; attempt++)
	{
		ssize_t		rc;

		pgstat_report_wait_start(wait_event);
		if (direct)
			rc = pwritev2(fd, iov, iovcnt, offset, RWF_DSYNC);
		else
		{
			rc = pwritev(fd, iov, iovcnt, offset);
			if (rc == (ssize_t) len && fdatasync(fd) != 0)
				rc = -1;
		}
		pgstat_report_wait_end();

		if (rc == (ssize_t) len)
			return 0;
		if (rc < 0 && errno != EINTR)
			return errno;
	}
	return EIO;
}

/*
 * Open this process's descriptor of the area.  O_DIRECT where the
 * filesystem has it, so that each write is one durable device write.
 */
static void
open_area(void)
{
	if (dw_file > 0)
		return;

	dw_file = PathNameOpenFile(WTSMGR_DW_FILE, O_RDWR | PG_BINARY | PG_O_DIRECT);
	dw_direct = true;
	if (dw_file < 0 && errno == EINVAL)
	{
		dw_file = PathNameOpenFile(WTSMGR_DW_FILE, O_RDWR | PG_BINARY);
		dw_direct = false;
	}
	if (dw_file < 0)
	{
		dw_file = 0;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open doublewrite area \"%s\": %m",
						WTSMGR_DW_FILE),
				 errhint("The startup process creates the file; restart the server if it was removed.")));
	}
	if (header_area == NULL)
	{
		header_area = MemoryContextAllocAligned(TopMemoryContext,
												WTSMGR_DW_HEADER_SIZE,
												PG_IO_ALIGN_SIZE, 0);
		copy_area = MemoryContextAllocAligned(TopMemoryContext,
											  (Size) WTSMGR_DW_BLOCKS * BLCKSZ,
											  PG_IO_ALIGN_SIZE, 0);
	}
}

/*
 * Take a free region, preferring one that nobody else is likely to want.
 */
static int
acquire_region(void)
{
	int			start = MyProcNumber >= 0 ? MyProcNumber % WTSMGR_DW_REGIONS : 0;

	for (int i = 0; i < WTSMGR_DW_REGIONS; i++)
	{
		int			r = (start + i) % WTSMGR_DW_REGIONS;

		if (LWLockConditionalAcquire(&DwShared->locks[r].lock, LW_EXCLUSIVE))
			return r;
	}
	LWLockAcquire(&DwShared->locks[start].lock, LW_EXCLUSIVE);
	return start;
}

/*
 * Make a region's header invalid, durably, before the region is released.
 * A region that stays valid would have its copies written back at the next
 * start, although its blocks may be written again meanwhile: a failure is
 * a PANIC.
 */
static void
invalidate_region(int region)
{
	struct iovec iov;
	int			err;

	memset(header_area, 0, WTSMGR_DW_HEADER_SIZE);
	iov.iov_base = header_area;
	iov.iov_len = WTSMGR_DW_HEADER_SIZE;
	err = write_durably(FileGetRawDesc(dw_file), dw_direct, &iov, 1,
						(off_t) region * WTSMGR_DW_REGION_SIZE,
						WTSMGR_DW_HEADER_SIZE, WAIT_EVENT_DATA_FILE_WRITE);
	if (err != 0)
	{
		errno = err;
		ereport(PANIC,
				(errcode_for_file_access(),
				 errmsg("could not invalidate region %d of doublewrite area \"%s\": %m",
						region, WTSMGR_DW_FILE),
				 errhint("Check the filesystem of the data directory.")));
	}
}

/*
 * Write nblocks <= WTSMGR_DW_BLOCKS blocks through one region.
 */
static void
write_through_region(const WtsmgrDwTarget *target, const void **buffers,
					 int nblocks)
{
	WtsmgrDwHeader *hdr;
	struct iovec iov[WTSMGR_DW_BLOCKS + 1];
	int			region;
	int			fd;
	int			err;
	off_t		region_offset;
	char	   *copy = copy_area;

	Assert(nblocks > 0 && nblocks <= WTSMGR_DW_BLOCKS);

	fd = FileGetRawDesc(dw_file);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not reopen doublewrite area \"%s\": %m",
						WTSMGR_DW_FILE),
				 errhint("Check the limit on open files (max_files_per_process).")));

	region = acquire_region();
	region_offset = (off_t) region * WTSMGR_DW_REGION_SIZE;

	/* 2. the header and the copies, durably */
	hdr = (WtsmgrDwHeader *) header_area;
	memset(header_area, 0, WTSMGR_DW_HEADER_SIZE);
	hdr->magic = WTSMGR_DW_MAGIC;
	hdr->version = WTSMGR_DW_VERSION;
	hdr->region = region;
	hdr->nblocks = nblocks;
	hdr->sequence = pg_atomic_fetch_add_u64(&DwShared->sequence, 1);
	hdr->blcksz = BLCKSZ;
	iov[0].iov_base = header_area;
	iov[0].iov_len = WTSMGR_DW_HEADER_SIZE;
	for (int i = 0; i < nblocks; i++)
	{
		/*
		 * Copy the block first: without data checksums, hint bits may be set
		 * in a shared buffer while it is written, and the copy in the area,
		 * its CRC and the block written in place must be the same bytes.
		 */
		char	   *page = copy + (size_t) i * BLCKSZ;

		memcpy(page, buffers[i], BLCKSZ);
		hdr->entries[i].locator = target->locator;
		hdr->entries[i].forknum = target->forknum;
		hdr->entries[i].blocknum = target->blocknum + i;
		hdr->entries[i].page_crc = page_crc(page);
		iov[i + 1].iov_base = page;
		iov[i + 1].iov_len = BLCKSZ;
	}
	hdr->crc = header_crc(hdr);

	err = write_durably(fd, dw_direct, iov, nblocks + 1, region_offset,
						WTSMGR_DW_HEADER_SIZE + (size_t) nblocks * BLCKSZ,
						WAIT_EVENT_DATA_FILE_WRITE);
	if (err != 0)
	{
		/*
		 * The header may have reached the disk anyway; it must not outlive
		 * this call, or a later repair would copy back what may by then be an
		 * old version of the blocks.
		 */
		invalidate_region(region);
		LWLockRelease(&DwShared->locks[region].lock);
		errno = err;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write to doublewrite area \"%s\": %m",
						WTSMGR_DW_FILE),
				 errdetail_plural("%d block of file \"%s\" was to be written through it and was not written.",
								  "%d blocks of file \"%s\" were to be written through it and were not written.",
								  nblocks, nblocks, target->path),
				 errhint("Check the filesystem of the data directory.")));
	}

	/* lets tests crash here, with the copies durable and the blocks not */
	INJECTION_POINT("wtsmgr-doublewrite-copied", NULL);

	/*
	 * 3 and 4.  From here, the region must stay valid until the blocks are
	 * durable in place: nothing in between may raise an ERROR (which would
	 * release the region), and a failure of an overwrite can only be repaired
	 * at startup.  New blocks past the end of the file have no old contents
	 * to tear; a failure to write them (a full filesystem) is an ERROR as in
	 * md.c, once the region is invalid again.
	 */
	for (int i = 0; i < nblocks; i++)
	{
		iov[i].iov_base = iov[i + 1].iov_base;
		iov[i].iov_len = BLCKSZ;
	}
	err = write_durably(target->fd, target->direct, iov, nblocks,
						target->offset, (size_t) nblocks * BLCKSZ,
						target->new_blocks ? WAIT_EVENT_DATA_FILE_EXTEND :
						WAIT_EVENT_DATA_FILE_WRITE);
	if (err != 0 && !target->new_blocks)
	{
		errno = err;
		ereport(PANIC,
				(errcode_for_file_access(),
				 errmsg("could not write %d blocks to file \"%s\" at offset %lld after copying them to the doublewrite area: %m",
						nblocks, target->path, (long long) target->offset),
				 errdetail("The blocks may be torn; the startup process writes them again from the doublewrite area."),
				 errhint("Check the tablespace's filesystem and device.")));
	}
	invalidate_region(region);
	LWLockRelease(&DwShared->locks[region].lock);

	if (err != 0)
	{
		errno = err;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not extend file \"%s\": %m", target->path),
				 errdetail("The new blocks could not be written atomically, nor through the doublewrite area."),
				 errhint("Check free disk space.")));
	}
}

/*
 * wtsmgr_dw_write() -- Write blocks [target->blocknum, + nblocks) of one
 * segment file in place so that no crash can leave one torn.
 *
 * buffers must stay locked for I/O by the caller, as for any smgr write.
 * Raises an ERROR if nothing was written (the caller's buffers stay dirty),
 * and a PANIC if the blocks may have been written in part.
 */
void
wtsmgr_dw_write(const WtsmgrDwTarget *target, const void **buffers,
				int nblocks)
{
	WtsmgrDwTarget piece = *target;

	open_area();
	while (nblocks > 0)
	{
		int			n = Min(nblocks, WTSMGR_DW_BLOCKS);

		write_through_region(&piece, buffers, n);
		piece.blocknum += n;
		piece.offset += (off_t) n * BLCKSZ;
		buffers += n;
		nblocks -= n;
	}
}

/*
 * Is the region read into hdr, followed by its copies in pages, valid and
 * complete?  If not, say why in why.
 */
static bool
region_is_valid(const WtsmgrDwHeader *hdr, int region, const char *pages,
				const char **why)
{
	if (hdr->version != WTSMGR_DW_VERSION || hdr->blcksz != BLCKSZ)
		*why = gettext_noop("It was written by another version of wtsmgr.");
	else if (hdr->region != (uint32) region ||
			 hdr->nblocks < 1 || hdr->nblocks > WTSMGR_DW_BLOCKS ||
			 header_crc(hdr) != hdr->crc)
		*why = gettext_noop("Its header is incomplete, so none of its blocks had been written in place yet.");
	else
	{
		for (uint32 i = 0; i < hdr->nblocks; i++)
		{
			if (page_crc(pages + (size_t) i * BLCKSZ) != hdr->entries[i].page_crc)
			{
				*why = gettext_noop("A copy in it is incomplete, so none of its blocks had been written in place yet.");
				return false;
			}
		}
		return true;
	}
	return false;
}

/*
 * Write one block of a valid region back in place, durably.  Returns false
 * if the file is gone.
 */
static bool
restore_block(const WtsmgrDwEntry *entry, const char *page)
{
	RelPathStr	path = relpathperm(entry->locator, entry->forknum);
	BlockNumber segno = entry->blocknum / ((BlockNumber) RELSEG_SIZE);
	char		segpath[MAXPGPATH];
	off_t		offset;
	int			fd;

	if (segno == 0)
		strlcpy(segpath, path.str, sizeof(segpath));
	else
		snprintf(segpath, sizeof(segpath), "%s.%u", path.str, segno);
	offset = (off_t) (entry->blocknum % ((BlockNumber) RELSEG_SIZE)) * BLCKSZ;

	fd = OpenTransientFile(segpath, O_RDWR | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
		{
			ereport(LOG,
					(errmsg("did not restore block %u of file \"%s\" from the doublewrite area",
							entry->blocknum, segpath),
					 errdetail("The file does not exist: it was removed after the copy was made.")));
			return false;
		}
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" to restore block %u from the doublewrite area: %m",
						segpath, entry->blocknum),
				 errhint("Fix the file's permissions or its filesystem, and start the server again.")));
	}
	if (pg_pwrite(fd, page, BLCKSZ, offset) != BLCKSZ ||
		pg_fsync(fd) != 0)
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not restore block %u of file \"%s\" from the doublewrite area: %m",
						entry->blocknum, segpath),
				 errdetail("The block may be torn; recovery cannot start before it is restored."),
				 errhint("Fix the cause and start the server again; the doublewrite area keeps the copy until then.")));
	}
	CloseTransientFile(fd);
	return true;
}

/*
 * Make the area, or make sure it is whole: WTSMGR_DW_FILE_SIZE bytes of
 * allocated, written blocks, so that overwriting them never needs space.
 */
static void
ensure_area(void)
{
	struct stat st;
	const char *tmp = WTSMGR_DW_FILE ".tmp";
	char	   *zeros;
	int			fd;

	if (stat(WTSMGR_DW_FILE, &st) == 0 && st.st_size == WTSMGR_DW_FILE_SIZE)
		return;

	if (MakePGDirectory(WTSMGR_DW_DIR) != 0 && errno != EEXIST)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", WTSMGR_DW_DIR),
				 errhint("wtsmgr keeps its doublewrite area there; check the data directory's permissions.")));

	fd = OpenTransientFile(tmp, O_RDWR | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp),
				 errhint("wtsmgr keeps its doublewrite area there; check the data directory's permissions.")));
	zeros = palloc0(WTSMGR_DW_REGION_SIZE);
	for (int r = 0; r < WTSMGR_DW_REGIONS; r++)
	{
		errno = 0;
		if (pg_pwrite(fd, zeros, WTSMGR_DW_REGION_SIZE,
					  (off_t) r * WTSMGR_DW_REGION_SIZE) != WTSMGR_DW_REGION_SIZE)
		{
			if (errno == 0)
				errno = ENOSPC;
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", tmp),
					 errdetail("wtsmgr needs %lld bytes in the data directory for its doublewrite area.",
							   (long long) WTSMGR_DW_FILE_SIZE),
					 errhint("Free space on the data directory's filesystem.")));
		}
	}
	pfree(zeros);
	if (pg_fsync(fd) != 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", tmp),
				 errhint("Check the filesystem of the data directory.")));
	CloseTransientFile(fd);

	/* durable_rename() fsyncs the file, the directory and the new name */
	(void) durable_rename(tmp, WTSMGR_DW_FILE, FATAL);
	fsync_fname(".", true);
	ereport(LOG,
			(errmsg("created doublewrite area \"%s\" (%lld bytes)",
					WTSMGR_DW_FILE, (long long) WTSMGR_DW_FILE_SIZE)));
}

/*
 * wtsmgr_dw_startup() -- Before recovery: make the area if it is missing,
 * then write back every block of its valid regions and invalidate them.
 *
 * Called by the startup process and a single-user backend, as the first
 * thing they do with storage (from smgr_init), before any other process
 * could write through the area.
 */
void
wtsmgr_dw_startup(void)
{
	char	   *region_buf;
	int			fd;
	int			restored = 0;
	int			regions = 0;
	bool		any_valid = false;

	ensure_area();

	fd = OpenTransientFile(WTSMGR_DW_FILE, O_RDWR | PG_BINARY);
	if (fd < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not open doublewrite area \"%s\": %m",
						WTSMGR_DW_FILE),
				 errhint("Check the filesystem of the data directory.")));
	region_buf = palloc(WTSMGR_DW_REGION_SIZE);

	for (int r = 0; r < WTSMGR_DW_REGIONS; r++)
	{
		WtsmgrDwHeader *hdr = (WtsmgrDwHeader *) region_buf;
		const char *pages = region_buf + WTSMGR_DW_HEADER_SIZE;
		const char *why;
		off_t		offset = (off_t) r * WTSMGR_DW_REGION_SIZE;

		if (pg_pread(fd, region_buf, WTSMGR_DW_REGION_SIZE, offset) !=
			WTSMGR_DW_REGION_SIZE)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not read doublewrite area \"%s\": %m",
							WTSMGR_DW_FILE),
					 errhint("Check the filesystem of the data directory.")));
		if (hdr->magic != WTSMGR_DW_MAGIC)
			continue;
		any_valid = true;
		if (!region_is_valid(hdr, r, pages, &why))
		{
			/* torn before any block of it was written in place */
			ereport(LOG,
					(errmsg("ignored region %d of doublewrite area \"%s\"",
							r, WTSMGR_DW_FILE),
					 errdetail_internal("%s", _(why))));
			continue;
		}
		regions++;
		for (uint32 i = 0; i < hdr->nblocks; i++)
		{
			if (restore_block(&hdr->entries[i], pages + (size_t) i * BLCKSZ))
				restored++;
		}
	}

	/* everything is durable in place: forget it */
	if (any_valid)
	{
		char	   *zeros = palloc0(WTSMGR_DW_HEADER_SIZE);

		for (int r = 0; r < WTSMGR_DW_REGIONS; r++)
		{
			if (pg_pwrite(fd, zeros, WTSMGR_DW_HEADER_SIZE,
						  (off_t) r * WTSMGR_DW_REGION_SIZE) !=
				WTSMGR_DW_HEADER_SIZE)
				ereport(FATAL,
						(errcode_for_file_access(),
						 errmsg("could not write doublewrite area \"%s\": %m",
								WTSMGR_DW_FILE),
						 errhint("Check the filesystem of the data directory.")));
		}
		if (pg_fsync(fd) != 0)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not fsync doublewrite area \"%s\": %m",
							WTSMGR_DW_FILE),
					 errhint("Check the filesystem of the data directory.")));
		pfree(zeros);
	}
	CloseTransientFile(fd);
	pfree(region_buf);

	if (regions > 0)
		ereport(LOG,
				(errmsg_plural("restored %d block from doublewrite area \"%s\"",
							   "restored %d blocks from doublewrite area \"%s\"",
							   restored, restored, WTSMGR_DW_FILE),
				 errdetail_plural("The copies were in %d region, whose writes were in progress when the server stopped.",
								  "The copies were in %d regions, whose writes were in progress when the server stopped.",
								  regions, regions)));
}
