/*-------------------------------------------------------------------------
 *
 * untorn_test.c
 *	  Test-only module: declares every block of one tablespace untorn.
 *
 * This owns nothing of wtsmgr.  It sets the core xlog_untorn_block_hook so
 * that the TAP tests can show what the hook does on its own: blocks of the
 * tablespace whose OID is untorn_test.tablespace_oid get no full-page images
 * for torn-page protection, all other blocks keep them, and images come back
 * while a base backup runs.  It writes nothing atomically, so it must never
 * be used outside tests.  Load it by absolute path through
 * shared_preload_libraries; it is built for the tests and never installed.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xloginsert.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#ifndef XLOG_HAS_UNTORN_BLOCK_HOOK
#error "untorn_test needs a server with xlog_untorn_block_hook"
#endif

PG_MODULE_MAGIC;

static int	untorn_tablespace_oid = 0;

/*
 * The hook runs inside critical sections: it reads one integer and does
 * nothing that could allocate or fail.
 */
static bool
untorn_test_block_is_untorn(const RelFileLocator *rlocator,
							ForkNumber forknum, BlockNumber blkno)
{
	return untorn_tablespace_oid != 0 &&
		rlocator->spcOid == (Oid) untorn_tablespace_oid;
}

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("untorn_test must be loaded via \"shared_preload_libraries\""),
				 errhint("It is a test-only module for wtsmgr's TAP tests.")));

	DefineCustomIntVariable("untorn_test.tablespace_oid",
							"OID of the tablespace whose blocks are declared untorn.",
							"0 declares none.",
							&untorn_tablespace_oid,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("untorn_test");

	xlog_untorn_block_hook = untorn_test_block_is_untorn;
}
