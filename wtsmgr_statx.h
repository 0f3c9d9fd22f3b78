/*-------------------------------------------------------------------------
 *
 * wtsmgr_statx.h
 *	  What the kernel promises about atomic writes, and probes that prove it.
 *
 * This module depends on nothing else of wtsmgr's.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_STATX_H
#define WTSMGR_STATX_H

#include "datatype/timestamp.h"

/* Kernel ABI that Debian bookworm's headers lack (Linux 6.11) */
#ifndef RWF_ATOMIC
#define RWF_ATOMIC 0x00000040
#endif

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

/* What a probe of a directory found out */
typedef struct WtsmgrProbeResult
{
	WtsmgrAtomicLimits limits;
	bool		untorn;			/* BLCKSZ writes proven untorn */
	uint32		extent_size_hint;	/* bytes; proven with atomic writes, or 0 */
	char		reason[256];	/* why (not) untorn, in words */
} WtsmgrProbeResult;

/*
 * A probe of a tablespace: the result, when it was taken, and the identity
 * of the directory it examined, so that a tablespace dropped and created
 * again under the same OID (another directory) can be told apart.
 */
typedef struct WtsmgrProbe
{
	WtsmgrProbeResult result;
	TimestampTz probed_at;
	uint64		dir_dev;
	uint64		dir_ino;
} WtsmgrProbe;

extern void wtsmgr_statx_init(void);
extern int	wtsmgr_read_atomic_limits(const char *path,
									  WtsmgrAtomicLimits *limits);
extern bool wtsmgr_check_segment_file(const char *path,
									  WtsmgrAtomicLimits *limits,
									  char *reason, size_t size);
extern bool wtsmgr_set_extent_size_hint(int fd, uint32 bytes);
extern bool wtsmgr_set_cow_extent_size_hint(int fd);
extern void wtsmgr_tablespace_dir(Oid spcoid, char *buf, size_t size);
extern void wtsmgr_tablespace_dir_identity(Oid spcoid, uint64 *dev,
										   uint64 *ino);
extern void wtsmgr_probe_tablespace(Oid spcoid, WtsmgrProbe *probe);

#endif							/* WTSMGR_STATX_H */
