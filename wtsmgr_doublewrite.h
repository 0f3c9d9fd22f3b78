/*-------------------------------------------------------------------------
 *
 * wtsmgr_doublewrite.h
 *	  The doublewrite area: protected writes of blocks that cannot be
 *	  written atomically.
 *
 * This module depends on nothing else of wtsmgr's.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_DOUBLEWRITE_H
#define WTSMGR_DOUBLEWRITE_H

#include "storage/block.h"
#include "storage/relfilelocator.h"
#include "common/relpath.h"

/* The doublewrite area, relative to the data directory */
#define WTSMGR_DW_DIR		"pg_wtsmgr"
#define WTSMGR_DW_FILE		"pg_wtsmgr/doublewrite"

/* Blocks one doublewrite holds; longer runs are written in pieces */
#define WTSMGR_DW_BLOCKS	16

/* Where a protected write goes: a run of blocks of one segment file */
typedef struct WtsmgrDwTarget
{
	RelFileLocator locator;
	ForkNumber	forknum;
	BlockNumber blocknum;		/* the run's first block, in the relation */
	int			fd;				/* the segment file, open for writing */
	bool		direct;			/* ... with O_DIRECT */
	off_t		offset;			/* the run's offset in the segment file */
	bool		new_blocks;		/* ... which lies past the end of the file */
	const char *path;			/* the segment file's name, for messages */
} WtsmgrDwTarget;

extern void wtsmgr_dw_shmem_request(void);
extern void wtsmgr_dw_shmem_startup(void);
extern void wtsmgr_dw_startup(void);
extern void wtsmgr_dw_write(const WtsmgrDwTarget *target,
							const void **buffers, int nblocks);

#endif							/* WTSMGR_DOUBLEWRITE_H */
