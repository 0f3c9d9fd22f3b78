/*-------------------------------------------------------------------------
 *
 * wtsmgr_test.c
 *	  Test-only module for wtsmgr's TAP tests.  Never installed.
 *
 * It owns two test helpers, neither of which is any part of wtsmgr:
 *
 * - Loaded through shared_preload_libraries, it sets the core
 *   xlog_untorn_block_hook so that the blocks of the tablespace whose OID is
 *   wtsmgr_test.untorn_tablespace_oid get no full-page images.  That shows
 *   what the hook does on its own.  It writes nothing atomically, so it must
 *   never be used outside tests.
 *
 * - wtsmgr_test_fail_next_write(errno_name) attaches a callback to wtsmgr's
 *   injection point "wtsmgr-atomic-write" that makes the next atomic write,
 *   in whichever process comes first, fail with EINVAL, EOPNOTSUPP, ENOSPC
 *   or EIO, and then detaches itself.  Needs a server built with
 *   --enable-injection-points.
 *
 * The TAP tests load it by absolute path; see t/.
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
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/injection_point.h"

#ifndef XLOG_HAS_UNTORN_BLOCK_HOOK
#error "wtsmgr_test needs a server with xlog_untorn_block_hook"
#endif

PG_MODULE_MAGIC;

static int	untorn_tablespace_oid = 0;

/*
 * The hook runs inside critical sections: it reads one integer and does
 * nothing that could allocate or fail.
 */
static bool
wtsmgr_test_block_is_untorn(const RelFileLocator *rlocator,
							ForkNumber forknum, BlockNumber blkno)
{
	return untorn_tablespace_oid != 0 &&
		rlocator->spcOid == (Oid) untorn_tablespace_oid;
}

void
_PG_init(void)
{
	/* The hook only when preloaded; the SQL helpers work either way. */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("wtsmgr_test.untorn_tablespace_oid",
							"OID of the tablespace whose blocks are declared untorn.",
							"0 declares none.",
							&untorn_tablespace_oid,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("wtsmgr_test");

	xlog_untorn_block_hook = wtsmgr_test_block_is_untorn;
}

/*
 * Injection point callback: fail this atomic write with the errno given at
 * attach time, once.
 */
extern PGDLLEXPORT void wtsmgr_test_fail_write(const char *name,
											   const void *private_data,
											   void *arg);

void
wtsmgr_test_fail_write(const char *name, const void *private_data, void *arg)
{
	*(int *) arg = *(const int *) private_data;
	InjectionPointDetach(name);
}

PG_FUNCTION_INFO_V1(wtsmgr_test_fail_next_write);

Datum
wtsmgr_test_fail_next_write(PG_FUNCTION_ARGS)
{
	char	   *errname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *library = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			err;

	if (strcmp(errname, "EINVAL") == 0)
		err = EINVAL;
	else if (strcmp(errname, "EOPNOTSUPP") == 0)
		err = EOPNOTSUPP;
	else if (strcmp(errname, "ENOSPC") == 0)
		err = ENOSPC;
	else if (strcmp(errname, "EIO") == 0)
		err = EIO;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsupported errno name \"%s\"", errname),
				 errhint("Use EINVAL, EOPNOTSUPP, ENOSPC or EIO.")));

	InjectionPointAttach("wtsmgr-atomic-write", library,
						 "wtsmgr_test_fail_write", &err, sizeof(err));
	PG_RETURN_VOID();
}
