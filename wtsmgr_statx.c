/*-------------------------------------------------------------------------
 *
 * wtsmgr_statx.c
 *	  Atomic-write discovery: what the kernel promises for a file or a
 *	  tablespace, and probes that prove it.
 *
 * This file owns wtsmgr's view of the kernel's atomic-write interface,
 * statx(STATX_WRITE_ATOMIC | STATX_DIOALIGN) and the filesystem type, the
 * probe built on it, and the setting that the probe proves
 * (wtsmgr.extent_size_hint).  A probe creates a scratch file in a
 * tablespace's directory, reads its statx limits, proves them with a real
 * RWF_ATOMIC write of one block, and removes the file.  Which tablespaces
 * are probed when, and what is done with the result, is the tablespace
 * registry's business (wtsmgr_registry.c); the write path checks each
 * segment file it writes with wtsmgr_check_segment_file().
 *
 * Debian bookworm's C library and kernel headers predate the statx fields
 * for atomic writes (Linux 6.11) and for the hardware limit (6.16), so the
 * structure is defined here as the kernel's uapi lays it out, and the system
 * call is made directly.  A kernel that does not know a field leaves its bit
 * out of stx_mask, and we then report the feature as absent.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_statx.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "catalog/pg_tablespace_d.h"
#include "common/file_perm.h"
#include "common/file_utils.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/injection_point.h"
#include "utils/timestamp.h"

#include "wtsmgr_statx.h"

/*
 * Name of probe files, followed by the prober's PID.  The pgsql_tmp prefix
 * keeps a file left by a crash out of base backups, and tells a DBA what it
 * is.
 */
#define WTSMGR_PROBE_PREFIX PG_TEMP_FILE_PREFIX "_wtsmgr_probe."

/* wtsmgr.extent_size_hint, in kB */
static int	extent_size_hint_kb = 0;

/* statx mask bits and attributes, from the kernel's uapi/linux/stat.h */
#define WTSMGR_STATX_BASIC_STATS		0x000007ffU
#define WTSMGR_STATX_DIOALIGN			0x00002000U
#define WTSMGR_STATX_WRITE_ATOMIC		0x00010000U
#define WTSMGR_STATX_ATTR_WRITE_ATOMIC	0x00400000ULL

/* uapi struct statx_timestamp */
typedef struct WtsmgrStatxTimestamp
{
	int64		tv_sec;
	uint32		tv_nsec;
	int32		reserved;
} WtsmgrStatxTimestamp;

/* uapi struct statx, as of Linux 6.16: 256 bytes */
typedef struct WtsmgrStatx
{
	uint32		stx_mask;
	uint32		stx_blksize;
	uint64		stx_attributes;
	uint32		stx_nlink;
	uint32		stx_uid;
	uint32		stx_gid;
	uint16		stx_mode;
	uint16		spare0;
	uint64		stx_ino;
	uint64		stx_size;
	uint64		stx_blocks;
	uint64		stx_attributes_mask;
	WtsmgrStatxTimestamp stx_atime;
	WtsmgrStatxTimestamp stx_btime;
	WtsmgrStatxTimestamp stx_ctime;
	WtsmgrStatxTimestamp stx_mtime;
	uint32		stx_rdev_major;
	uint32		stx_rdev_minor;
	uint32		stx_dev_major;
	uint32		stx_dev_minor;
	uint64		stx_mnt_id;
	uint32		stx_dio_mem_align;
	uint32		stx_dio_offset_align;
	uint64		stx_subvol;
	uint32		stx_atomic_write_unit_min;
	uint32		stx_atomic_write_unit_max;
	uint32		stx_atomic_write_segments_max;
	uint32		stx_dio_read_offset_align;
	uint32		stx_atomic_write_unit_max_opt;
	uint32		spare2;
	uint64		spare3[8];
} WtsmgrStatx;

StaticAssertDecl(sizeof(WtsmgrStatx) == 256, "struct statx is 256 bytes");
StaticAssertDecl(offsetof(WtsmgrStatx, stx_attributes) == 0x08,
				 "stx_attributes at 0x08");
StaticAssertDecl(offsetof(WtsmgrStatx, stx_dio_mem_align) == 0x98,
				 "stx_dio_mem_align at 0x98");
StaticAssertDecl(offsetof(WtsmgrStatx, stx_atomic_write_unit_min) == 0xa8,
				 "stx_atomic_write_unit_min at 0xa8");
StaticAssertDecl(offsetof(WtsmgrStatx, stx_atomic_write_segments_max) == 0xb0,
				 "stx_atomic_write_segments_max at 0xb0");
StaticAssertDecl(offsetof(WtsmgrStatx, stx_atomic_write_unit_max_opt) == 0xb8,
				 "stx_atomic_write_unit_max_opt at 0xb8");

/* Filesystem magic numbers, from the kernel's uapi/linux/magic.h */
typedef struct WtFsType
{
	long		magic;
	const char *name;
} WtFsType;

static const WtFsType fs_types[] = {
	{0x58465342, "xfs"},
	{0xEF53, "ext4"},			/* also ext2 and ext3 */
	{0x9123683E, "btrfs"},
	{0x01021994, "tmpfs"},
	{0xF2F52010, "f2fs"},
	{0x65735546, "fuse"},
	{0x6969, "nfs"},
	{0x794c7630, "overlayfs"},
	{0x2FC12FC1, "zfs"},
	{0x42465331, "bcachefs"},
};

static void
fs_type_name(long magic, char *buf, size_t size)
{
	for (int i = 0; i < lengthof(fs_types); i++)
	{
		if (fs_types[i].magic == magic)
		{
			strlcpy(buf, fs_types[i].name, size);
			return;
		}
	}
	snprintf(buf, size, "unknown (0x%lx)", magic);
}

/*
 * Fill *limits from statx() of dirfd/path (path "" with AT_EMPTY_PATH for
 * an open file) and from the filesystem type of fd, or of path if fd < 0.
 */
static int
read_limits(int dirfd, const char *path, int flags, int fd,
			WtsmgrAtomicLimits *limits)
{
	WtsmgrStatx stx;
	struct statfs sfs;

	memset(limits, 0, sizeof(*limits));
	memset(&stx, 0, sizeof(stx));

	if (syscall(SYS_statx, dirfd, path, flags,
				WTSMGR_STATX_BASIC_STATS | WTSMGR_STATX_DIOALIGN | WTSMGR_STATX_WRITE_ATOMIC,
				&stx) != 0)
		return -1;
	if ((fd >= 0 ? fstatfs(fd, &sfs) : statfs(path, &sfs)) != 0)
		return -1;

	fs_type_name((long) sfs.f_type, limits->fs_type, sizeof(limits->fs_type));
	limits->dev_major = stx.stx_dev_major;
	limits->dev_minor = stx.stx_dev_minor;

	if (stx.stx_mask & WTSMGR_STATX_DIOALIGN)
	{
		limits->dio_mem_align = stx.stx_dio_mem_align;
		limits->dio_offset_align = stx.stx_dio_offset_align;
	}

	if ((stx.stx_mask & WTSMGR_STATX_WRITE_ATOMIC) &&
		(stx.stx_attributes & WTSMGR_STATX_ATTR_WRITE_ATOMIC))
	{
		limits->atomic_supported = true;
		limits->unit_min = stx.stx_atomic_write_unit_min;
		limits->unit_max = stx.stx_atomic_write_unit_max;
		limits->segments_max = stx.stx_atomic_write_segments_max;
		/* 0 where the kernel predates the field (6.16) or has no hardware */
		limits->unit_max_opt = stx.stx_atomic_write_unit_max_opt;
	}

	return 0;
}

/*
 * wtsmgr_read_atomic_limits() -- Fill *limits for the file or directory at
 * path.
 *
 * Returns 0, or -1 with errno set if statx() or statfs() failed.  A kernel
 * or filesystem without atomic writes is not a failure: atomic_supported is
 * then false and the units are 0.
 */
int
wtsmgr_read_atomic_limits(const char *path, WtsmgrAtomicLimits *limits)
{
	return read_limits(AT_FDCWD, path, 0, -1, limits);
}

/*
 * Can limits hold BLCKSZ writes untorn?  If not, say why in reason.
 */
static bool
limits_allow_untorn_blocks(const WtsmgrAtomicLimits *limits,
						   char *reason, size_t size)
{
	if (!limits->atomic_supported)
		snprintf(reason, size, "statx reports no atomic write support on %s",
				 limits->fs_type);
	else if (limits->unit_max < BLCKSZ)
		snprintf(reason, size, "atomic unit max %u < block size %d",
				 limits->unit_max, BLCKSZ);
	else if (limits->unit_min > BLCKSZ)
		snprintf(reason, size, "atomic unit min %u > block size %d",
				 limits->unit_min, BLCKSZ);
	else if (limits->dio_offset_align == 0)
		snprintf(reason, size, "statx reports no O_DIRECT support on %s",
				 limits->fs_type);
	else if (limits->dio_offset_align > BLCKSZ ||
			 limits->dio_mem_align > BLCKSZ)
		snprintf(reason, size,
				 "O_DIRECT alignment (memory %u, offset %u) exceeds block size %d",
				 limits->dio_mem_align, limits->dio_offset_align, BLCKSZ);
	else
		return true;
	return false;
}

/*
 * wtsmgr_set_cow_extent_size_hint() -- Give a file on XFS a copy-on-write
 * extent size hint of BLCKSZ, unless it has it.  Returns whether the
 * file has it now.
 *
 * XFS does an atomic write in software by writing new blocks and swapping
 * them in, and it allocates those blocks aligned to the file's
 * copy-on-write extent size hint: the larger of the cowextsize hint and
 * the extent size hint, or 32 blocks (128 kB) if the file has neither
 * (xfs_get_cowextsz_hint(), XFS_BMAPI_EXTSZALIGN in
 * xfs_atomic_write_cow_iomap_begin()).  The allocator never gives up that
 * alignment, so when free space is fragmented into pieces smaller than the
 * hint, every atomic write fails with ENOSPC, however much is free.  A
 * hint of BLCKSZ needs only free extents of BLCKSZ, aligned to it, and
 * keeps each block in one extent (a hint of one 4 kB filesystem block would
 * do with less, but would split blocks across extents).  Unlike the extent
 * size hint, XFS takes this one on a file that has data; it has no effect
 * on a file with a larger extent size hint.
 */
bool
wtsmgr_set_cow_extent_size_hint(int fd)
{
	struct fsxattr fsx;

	if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0)
		return false;
	if ((fsx.fsx_xflags & FS_XFLAG_COWEXTSIZE) &&
		fsx.fsx_cowextsize == BLCKSZ)
		return true;
	fsx.fsx_xflags |= FS_XFLAG_COWEXTSIZE;
	fsx.fsx_cowextsize = BLCKSZ;
	return ioctl(fd, FS_IOC_FSSETXATTR, &fsx) == 0;
}

/*
 * wtsmgr_set_extent_size_hint() -- Give an empty file on XFS an extent size
 * hint of bytes, so that direct writes growing many files at once allocate
 * in large extents.  XFS takes the hint only before the file has data.
 * Returns whether the hint was set.
 */
bool
wtsmgr_set_extent_size_hint(int fd, uint32 bytes)
{
	struct fsxattr fsx;

	if (bytes == 0 || ioctl(fd, FS_IOC_FSGETXATTR, &fsx) != 0 ||
		fsx.fsx_nextents != 0)
		return false;
	fsx.fsx_xflags |= FS_XFLAG_EXTSIZE;
	fsx.fsx_extsize = bytes;
	return ioctl(fd, FS_IOC_FSSETXATTR, &fsx) == 0;
}

/*
 * Remove the probe files that processes which died while probing left in
 * a directory: PostgreSQL's own clean-up of temporary files does not look
 * there, and DROP TABLESPACE would trip over them.  A probe file is named
 * after its prober's PID, so a file whose process no longer exists is left
 * over; other probes of the same directory may be running meanwhile, and
 * their files are left alone.
 */
static void
remove_stale_probe_files(const char *dir)
{
	DIR		   *d;
	struct dirent *de;

	d = AllocateDir(dir);
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char		path[MAXPGPATH];
		char	   *end;
		long		pid;

		if (strncmp(de->d_name, WTSMGR_PROBE_PREFIX,
					strlen(WTSMGR_PROBE_PREFIX)) != 0)
			continue;
		errno = 0;
		pid = strtol(de->d_name + strlen(WTSMGR_PROBE_PREFIX), &end, 10);
		if (errno == 0 && *end == '\0' && pid > 0 && pid <= INT_MAX &&
			(kill((pid_t) pid, 0) == 0 || errno != ESRCH))
			continue;			/* its prober is alive, or it is ours */
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not remove left-over wtsmgr probe file \"%s\": %m",
							path),
					 errdetail("The file holds no data."),
					 errhint("Remove the file by hand.")));
		else
			ereport(LOG,
					(errmsg("removed left-over wtsmgr probe file \"%s\"", path),
					 errdetail("A process that died while probing the tablespace left it behind.")));
	}
	FreeDir(d);
}

/*
 * Find out whether BLCKSZ writes to files in dir are untorn.
 *
 * Never fails: every problem becomes a reason in *result, and the
 * tablespace is then not untorn.  Runs in the postmaster at startup, so it
 * uses plain system calls rather than fd.c, and cleans up after itself.
 */
static void
probe_directory(const char *dir, WtsmgrProbeResult *result)
{
	char		path[MAXPGPATH];
	int			fd;
	void	   *page;
	struct iovec iov;
	ssize_t		rc;

	memset(result, 0, sizeof(*result));

	snprintf(path, sizeof(path), "%s/" WTSMGR_PROBE_PREFIX "%d",
			 dir, MyProcPid);

	/*
	 * A file of this name can only be left by a process that died with our
	 * PID (containers reuse PIDs): probes of one directory never run at the
	 * same time.  Without this, O_EXCL would fail and call the tablespace
	 * torn.
	 */
	(void) unlink(path);

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT | PG_BINARY,
			  pg_file_create_mode);
	if (fd < 0)
	{
		int			save_errno = errno;

		/* Report what we can about the directory's filesystem anyway. */
		(void) wtsmgr_read_atomic_limits(dir, &result->limits);
		errno = save_errno;
		snprintf(result->reason, sizeof(result->reason),
				 "could not create probe file \"%s\" with O_DIRECT: %m", path);
		return;
	}

	if (read_limits(fd, "", AT_EMPTY_PATH, fd, &result->limits) != 0)
	{
		snprintf(result->reason, sizeof(result->reason),
				 "could not read atomic write limits of probe file \"%s\": %m",
				 path);
	}
	else if (limits_allow_untorn_blocks(&result->limits, result->reason,
										sizeof(result->reason)))
	{
		/* statx says yes: prove it with a real atomic write of one block. */
		uint32		hint = 0;
		int			hint_errno = 0;
		bool		is_xfs;

		page = palloc_aligned(BLCKSZ, PG_IO_ALIGN_SIZE, MCXT_ALLOC_ZERO);
		iov.iov_base = page;
		iov.iov_len = BLCKSZ;

		/*
		 * Relation files get the copy-on-write extent size hint, and new ones
		 * the extent size hint if one is set, so prove the write with them.
		 * An extent size hint larger than a block makes XFS align its
		 * copy-on-write allocations to it (see
		 * wtsmgr_set_cow_extent_size_hint()), so it fails where free space is
		 * fragmented; then prove the write without it, and give files none.
		 */
		is_xfs = strcmp(result->limits.fs_type, "xfs") == 0;
		if (is_xfs)
			(void) wtsmgr_set_cow_extent_size_hint(fd);
		if (extent_size_hint_kb > 0 && is_xfs &&
			wtsmgr_set_extent_size_hint(fd, (uint32) extent_size_hint_kb * 1024))
			hint = (uint32) extent_size_hint_kb * 1024;
		rc = pwritev2(fd, &iov, 1, 0, RWF_ATOMIC);
		if (rc < 0 && hint != 0)
		{
			hint_errno = errno;
			hint = 0;
			close(fd);
			unlink(path);
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_DIRECT | PG_BINARY,
					  pg_file_create_mode);
			if (fd >= 0)
				(void) wtsmgr_set_cow_extent_size_hint(fd);
			rc = fd < 0 ? -1 : pwritev2(fd, &iov, 1, 0, RWF_ATOMIC);
		}
		result->extent_size_hint = hint;

		if (rc == BLCKSZ)
		{
			result->untorn = true;
			snprintf(result->reason, sizeof(result->reason),
					 "RWF_ATOMIC write of %d bytes proven; atomic units %u to %u bytes on %s",
					 BLCKSZ, result->limits.unit_min, result->limits.unit_max,
					 result->limits.fs_type);
			if (hint_errno != 0)
			{
				size_t		len = strlen(result->reason);

				errno = hint_errno;
				snprintf(result->reason + len, sizeof(result->reason) - len,
						 "; no extent size hint (%d kB made atomic writes fail: %m)",
						 extent_size_hint_kb);
			}
		}
		else if (rc < 0)
			snprintf(result->reason, sizeof(result->reason),
					 "probe write failed: %m");
		else
			snprintf(result->reason, sizeof(result->reason),
					 "probe write was short: %zd of %d bytes", rc, BLCKSZ);

		pfree(page);
	}

	if (fd >= 0)
		close(fd);
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove wtsmgr probe file \"%s\": %m", path),
				 errdetail("The file holds no data."),
				 errhint("Remove the file by hand.")));
}

/*
 * wtsmgr_tablespace_dir() -- The directory, relative to the data directory,
 * that holds a tablespace's relation files.
 */
void
wtsmgr_tablespace_dir(Oid spcoid, char *buf, size_t size)
{
	if (spcoid == DEFAULTTABLESPACE_OID)
		strlcpy(buf, "base", size);
	else if (spcoid == GLOBALTABLESPACE_OID)
		strlcpy(buf, "global", size);
	else
		snprintf(buf, size, "%s/%u/%s", PG_TBLSPC_DIR, spcoid,
				 TABLESPACE_VERSION_DIRECTORY);
}

/*
 * wtsmgr_tablespace_dir_identity() -- Identity (device, inode) of a
 * tablespace's directory; zeros if it cannot be examined.
 */
void
wtsmgr_tablespace_dir_identity(Oid spcoid, uint64 *dev, uint64 *ino)
{
	char		dir[MAXPGPATH];
	struct stat st;

	wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));
	if (stat(dir, &st) != 0)
	{
		*dev = 0;
		*ino = 0;
		return;
	}
	*dev = (uint64) st.st_dev;
	*ino = (uint64) st.st_ino;
}

/*
 * wtsmgr_probe_tablespace() -- Probe a tablespace.
 *
 * Never fails, and takes no lock: probing does file I/O, which may be slow
 * or hang on a sick filesystem.
 */
void
wtsmgr_probe_tablespace(Oid spcoid, WtsmgrProbe *probe)
{
	char		dir[MAXPGPATH];

	wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));
	wtsmgr_tablespace_dir_identity(spcoid, &probe->dir_dev, &probe->dir_ino);

	/* lets tests stall a probe, to see that it blocks nobody else */
	INJECTION_POINT("wtsmgr-probe", NULL);

	remove_stale_probe_files(dir);
	probe_directory(dir, &probe->result);
	probe->probed_at = GetCurrentTimestamp();
}

/*
 * wtsmgr_check_segment_file() -- Can a segment file in a protected
 * tablespace itself take atomic writes of a block?
 *
 * Limits are per file: a file may, for instance, have been copied in from
 * elsewhere or sit on another filesystem behind a link.  *limits gets the
 * file's own limits, with which the write path plans its units; if the file
 * cannot take atomic writes, false is returned and reason says why.
 */
bool
wtsmgr_check_segment_file(const char *path, WtsmgrAtomicLimits *limits,
						  char *reason, size_t size)
{
	if (wtsmgr_read_atomic_limits(path, limits) != 0)
	{
		snprintf(reason, size, "statx failed: %m");
		return false;
	}
	return limits_allow_untorn_blocks(limits, reason, size);
}

/*
 * wtsmgr_statx_init() -- Called from _PG_init(): the setting the probe
 * proves.
 */
void
wtsmgr_statx_init(void)
{
	DefineCustomIntVariable("wtsmgr.extent_size_hint",
							"XFS extent size hint given to new relation files in tablespaces with atomic writes.",
							"0 gives none.  A hint larger than a block makes XFS's copy-on-write atomic writes need free extents of that size, which fragmented free space lacks.  A probe proves atomic writes with it, and drops it if they fail.",
							&extent_size_hint_kb,
							0, 0, 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
}
