/*-------------------------------------------------------------------------
 *
 * wtsmgr_statx.c
 *	  What the kernel reports about atomic writes to a file.
 *
 * This file owns wtsmgr's view of the kernel's atomic-write interface:
 * statx(STATX_WRITE_ATOMIC | STATX_DIOALIGN) and the filesystem type.
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

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "wtsmgr.h"

/* statx mask bits and attributes, from the kernel's uapi/linux/stat.h */
#define WT_STATX_BASIC_STATS		0x000007ffU
#define WT_STATX_DIOALIGN			0x00002000U
#define WT_STATX_WRITE_ATOMIC		0x00010000U
#define WT_STATX_ATTR_WRITE_ATOMIC	0x00400000ULL

/* uapi struct statx_timestamp */
typedef struct WtStatxTimestamp
{
	int64		tv_sec;
	uint32		tv_nsec;
	int32		reserved;
} WtStatxTimestamp;

/* uapi struct statx, as of Linux 6.16: 256 bytes */
typedef struct WtStatx
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
	WtStatxTimestamp stx_atime;
	WtStatxTimestamp stx_btime;
	WtStatxTimestamp stx_ctime;
	WtStatxTimestamp stx_mtime;
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
} WtStatx;

StaticAssertDecl(sizeof(WtStatx) == 256, "struct statx is 256 bytes");
StaticAssertDecl(offsetof(WtStatx, stx_attributes) == 0x08,
				 "stx_attributes at 0x08");
StaticAssertDecl(offsetof(WtStatx, stx_dio_mem_align) == 0x98,
				 "stx_dio_mem_align at 0x98");
StaticAssertDecl(offsetof(WtStatx, stx_atomic_write_unit_min) == 0xa8,
				 "stx_atomic_write_unit_min at 0xa8");
StaticAssertDecl(offsetof(WtStatx, stx_atomic_write_segments_max) == 0xb0,
				 "stx_atomic_write_segments_max at 0xb0");
StaticAssertDecl(offsetof(WtStatx, stx_atomic_write_unit_max_opt) == 0xb8,
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

static const char *
fs_type_name(long magic)
{
	for (int i = 0; i < lengthof(fs_types); i++)
	{
		if (fs_types[i].magic == magic)
			return fs_types[i].name;
	}
	return psprintf("unknown (0x%lx)", magic);
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
	WtStatx		stx;
	struct statfs sfs;

	memset(limits, 0, sizeof(*limits));
	memset(&stx, 0, sizeof(stx));

	if (syscall(SYS_statx, AT_FDCWD, path, 0,
				WT_STATX_BASIC_STATS | WT_STATX_DIOALIGN | WT_STATX_WRITE_ATOMIC,
				&stx) != 0)
		return -1;
	if (statfs(path, &sfs) != 0)
		return -1;

	limits->fs_type = fs_type_name((long) sfs.f_type);

	if (stx.stx_mask & WT_STATX_DIOALIGN)
	{
		limits->dio_mem_align = stx.stx_dio_mem_align;
		limits->dio_offset_align = stx.stx_dio_offset_align;
	}

	if ((stx.stx_mask & WT_STATX_WRITE_ATOMIC) &&
		(stx.stx_attributes & WT_STATX_ATTR_WRITE_ATOMIC))
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
