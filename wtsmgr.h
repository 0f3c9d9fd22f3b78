/*-------------------------------------------------------------------------
 *
 * wtsmgr.h
 *	  The wtsmgr storage manager: module loading and the storage-manager
 *	  table.
 *
 * The modules of wtsmgr, each with its own header, from the bottom up
 * (each uses only those before it):
 *
 *	wtsmgr_split.h		cutting a run of blocks into atomic write units
 *	wtsmgr_statx.c		what the kernel promises, and probes that prove it
 *	wtsmgr_doublewrite.c	protected writes of blocks that cannot be atomic
 *	wtsmgr_registry.c	the tablespaces wtsmgr knows about, in shared memory
 *	wtsmgr_stats.c		cumulative statistics per tablespace
 *	wtsmgr_atomic.c		the write path
 *	wtsmgr_fpi.c		the decision to leave full-page images out
 *	wtsmgr.c			_PG_init() and the storage-manager table
 *	wtsmgr_sql.c		the SQL functions
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_H
#define WTSMGR_H

#include "storage/smgr.h"

#ifndef SMGR_HAS_REGISTER
#error "wtsmgr needs a PostgreSQL server with wtsmgr's core patches (smgr_register); build one with scripts/build-server.sh"
#endif

extern SMgrId wtsmgr_smgr_id(void);

#endif							/* WTSMGR_H */
