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
 * - wtsmgr_test_fail_writes(errno_name, library) attaches a callback to the
 *   same injection point that stays attached: every atomic write, in every
 *   process, fails with that errno (ENOSPC is what XFS's copy-on-write
 *   atomic writes return on fragmented free space), so that every write of
 *   a protected tablespace goes through the doublewrite area, until
 *   wtsmgr_test_clear_write_failure() detaches it (it returns whether one
 *   was attached).  The injection point lives in shared memory: a server
 *   restarted after a crash has none attached.
 *
 * - wtsmgr_test_fault_unit(unit, what, once, library) attaches a callback to
 *   wtsmgr's injection point "wtsmgr-atomic-unit" that makes one unit of
 *   multi-unit atomic writes (unit -1: the last) fail with an errno (what =
 *   EINVAL, EOPNOTSUPP, ENOSPC or EIO) or complete half written ("short"),
 *   without writing it; once, or every time until
 *   wtsmgr_test_clear_unit_fault() detaches it.  what = "torn" is a torn
 *   write for real: the unit's first 4 kB are written (a plain write) and
 *   the rest is not, the write is reported short, and if the unit is then
 *   written again atomically, the process kills itself first (SIGKILL), as
 *   a crash right before that write would.  Each firing is logged.
 *
 * - wtsmgr_test_atomic_overwrite(path) overwrites the first 8 kB of a file
 *   with one RWF_ATOMIC O_DIRECT write, after giving it the copy-on-write
 *   extent size hint wtsmgr gives relation files on XFS, and returns "ok" or
 *   the error: what the kernel does with such a write right now, asked
 *   without wtsmgr.  wtsmgr_test_plain_overwrite(path) does the same with a
 *   plain O_DIRECT write, as md.c's writes of allocated blocks would be.
 *
 * - wtsmgr_test_crash_at(point, library) makes the next process that
 *   reaches an injection point of wtsmgr's kill itself (SIGKILL): a crash
 *   there.
 *
 * - wtsmgr_test_write_bench(rel, batch, total, aligned) writes total blocks
 *   of a relation's main fork with smgrwritev() calls of batch blocks each,
 *   at random positions (batch-aligned if aligned), and returns the seconds
 *   it took: the
 *   storage manager's write path measured from inside the server, for
 *   bench/atomic_writes.sh.  It overwrites the relation with zero pages, so
 *   it is for scratch tables only.
 *
 * The TAP tests and the benchmark load it by absolute path.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <signal.h>
#include <unistd.h>

#include "access/relation.h"
#include "access/xloginsert.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/guc.h"
#include "utils/injection_point.h"

#include "../../wtsmgr_atomic.h"
#include "../../wtsmgr_statx.h"

#ifndef XLOG_HAS_UNTORN_BLOCK_HOOK
#error "wtsmgr_test needs a server with xlog_untorn_block_hook"
#endif

PG_MODULE_MAGIC;

/*
 * The prototype of an injection point callback of this module, exported so
 * that InjectionPointAttach() finds it by name.
 */
#define INJECTION_CALLBACK(fn) \
	extern PGDLLEXPORT void fn(const char *name, const void *private_data, \
							   void *arg)

static int	untorn_tablespace_oid = 0;

/*
 * The hook runs inside critical sections: it reads one integer and does
 * nothing that could allocate or fail.
 */
static bool
wtsmgr_test_block_is_untorn(const RelFileLocator *rlocator,
							ForkNumber forknum, BlockNumber blkno,
							XLogRecPtr redo)
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

static int
errno_from_name(const char *errname)
{
	if (strcmp(errname, "EINVAL") == 0)
		return EINVAL;
	if (strcmp(errname, "EOPNOTSUPP") == 0)
		return EOPNOTSUPP;
	if (strcmp(errname, "ENOSPC") == 0)
		return ENOSPC;
	if (strcmp(errname, "EIO") == 0)
		return EIO;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported errno name \"%s\"", errname),
			 errhint("Use EINVAL, EOPNOTSUPP, ENOSPC or EIO.")));
	return 0;
}

/*
 * What wtsmgr_test_fail_next_write() and wtsmgr_test_fail_writes() share:
 * attach callback, from the library named by SQL argument 1, to
 * "wtsmgr-atomic-write", with the errno named by SQL argument 0.
 */
static void
attach_write_failure(FunctionCallInfo fcinfo, const char *callback)
{
	char	   *errname = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *library = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			err = errno_from_name(errname);

	InjectionPointAttach("wtsmgr-atomic-write", library, callback,
						 &err, sizeof(err));
}

/*
 * Injection point callback: fail this atomic write with the errno given at
 * attach time, once.
 */
INJECTION_CALLBACK(wtsmgr_test_fail_write);

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
	attach_write_failure(fcinfo, "wtsmgr_test_fail_write");
	PG_RETURN_VOID();
}

/*
 * Injection point callback: fail this atomic write with the errno given at
 * attach time, and stay attached for the next one.
 */
INJECTION_CALLBACK(wtsmgr_test_fail_every_write);

void
wtsmgr_test_fail_every_write(const char *name, const void *private_data,
							 void *arg)
{
	*(int *) arg = *(const int *) private_data;
}

PG_FUNCTION_INFO_V1(wtsmgr_test_fail_writes);

Datum
wtsmgr_test_fail_writes(PG_FUNCTION_ARGS)
{
	attach_write_failure(fcinfo, "wtsmgr_test_fail_every_write");
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(wtsmgr_test_clear_write_failure);

Datum
wtsmgr_test_clear_write_failure(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(InjectionPointDetach("wtsmgr-atomic-write"));
}

/* what wtsmgr_test_fault_unit() attaches */
typedef struct UnitFaultSpec
{
	int			unit;			/* -1: the last */
	int			err;			/* 0: short */
	bool		once;
	bool		torn;			/* write the first 4 kB for real */
} UnitFaultSpec;

/* set once a torn unit was written, in the process that wrote it */
static bool torn_written = false;

INJECTION_CALLBACK(wtsmgr_test_unit_fault);

void
wtsmgr_test_unit_fault(const char *name, const void *private_data, void *arg)
{
	const UnitFaultSpec *spec = (const UnitFaultSpec *) private_data;
	WtsmgrUnitFault *fault = (WtsmgrUnitFault *) arg;
	int			unit = spec->unit < 0 ? fault->nunits - 1 : spec->unit;

	if (fault->unit != unit)
		return;
	if (spec->torn)
	{
		if (torn_written)
		{
			/* the unit is written again: crash before it */
			elog(LOG, "wtsmgr_test: unit %d of %d written again after a torn write: crashing",
				 fault->unit, fault->nunits);
			kill(getpid(), SIGKILL);
			pg_usleep(10000000L);
		}
		if (pwrite(fault->fd, fault->iov[0].iov_base, 4096,
				   (off_t) fault->offset) != 4096)
			elog(ERROR, "wtsmgr_test: could not write a torn unit: %m");
		torn_written = true;
		fault->result = 4096;
		elog(LOG, "wtsmgr_test: unit %d of %d (%d bytes) torn: 4096 bytes written",
			 fault->unit, fault->nunits, fault->len);
		return;
	}
	fault->result = spec->err != 0 ? -spec->err : fault->len / 2;
	elog(LOG, "wtsmgr_test: unit %d of %d (%d bytes) %s",
		 fault->unit, fault->nunits, fault->len,
		 spec->err != 0 ? strerror(spec->err) : "written short");
	if (spec->once)
		InjectionPointDetach(name);
}

PG_FUNCTION_INFO_V1(wtsmgr_test_fault_unit);

Datum
wtsmgr_test_fault_unit(PG_FUNCTION_ARGS)
{
	UnitFaultSpec spec;
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *library = text_to_cstring(PG_GETARG_TEXT_PP(3));

	memset(&spec, 0, sizeof(spec));
	spec.unit = PG_GETARG_INT32(0);
	spec.torn = strcmp(what, "torn") == 0;
	spec.err = (spec.torn || strcmp(what, "short") == 0) ? 0 :
		errno_from_name(what);
	spec.once = PG_GETARG_BOOL(2);
	InjectionPointAttach("wtsmgr-atomic-unit", library,
						 "wtsmgr_test_unit_fault", &spec, sizeof(spec));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(wtsmgr_test_clear_unit_fault);

Datum
wtsmgr_test_clear_unit_fault(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(InjectionPointDetach("wtsmgr-atomic-unit"));
}

INJECTION_CALLBACK(wtsmgr_test_crash);

void
wtsmgr_test_crash(const char *name, const void *private_data, void *arg)
{
	elog(LOG, "wtsmgr_test: crashing at injection point \"%s\"", name);
	kill(getpid(), SIGKILL);
	pg_usleep(10000000L);
}

PG_FUNCTION_INFO_V1(wtsmgr_test_crash_at);

Datum
wtsmgr_test_crash_at(PG_FUNCTION_ARGS)
{
	char	   *point = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *library = text_to_cstring(PG_GETARG_TEXT_PP(1));

	InjectionPointAttach(point, library, "wtsmgr_test_crash", NULL, 0);
	PG_RETURN_VOID();
}

/*
 * Injection point callback: drop the fsync request of a segment file that
 * wtsmgr wrote, so that no checkpoint makes the write durable.
 */
INJECTION_CALLBACK(wtsmgr_test_drop_sync);

void
wtsmgr_test_drop_sync(const char *name, const void *private_data, void *arg)
{
	*(bool *) arg = true;
}

PG_FUNCTION_INFO_V1(wtsmgr_test_drop_sync_requests);

Datum
wtsmgr_test_drop_sync_requests(PG_FUNCTION_ARGS)
{
	char	   *library = text_to_cstring(PG_GETARG_TEXT_PP(0));

	InjectionPointAttach("wtsmgr-register-sync", library,
						 "wtsmgr_test_drop_sync", NULL, 0);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(wtsmgr_test_write_bench);

Datum
wtsmgr_test_write_bench(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int32		batch = PG_GETARG_INT32(1);
	int64		total = PG_GETARG_INT64(2);
	bool		aligned = PG_GETARG_BOOL(3);
	const void *buffers[MAX_IO_COMBINE_LIMIT];
	char	   *area;
	Relation	rel;
	SMgrRelation reln;
	BlockNumber nblocks;
	pg_prng_state rng;
	instr_time	start;
	instr_time	duration;

	if (batch < 1 || batch > MAX_IO_COMBINE_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be between 1 and %d blocks", MAX_IO_COMBINE_LIMIT),
				 errhint("io_combine_limit cannot exceed that either.")));

	rel = relation_open(relid, AccessExclusiveLock);
	reln = RelationGetSmgr(rel);
	nblocks = smgrnblocks(reln, MAIN_FORKNUM);
	if (nblocks < (BlockNumber) batch)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("relation \"%s\" has fewer than %d blocks",
						RelationGetRelationName(rel), batch),
				 errhint("Fill the scratch table first.")));

	/* one contiguous area, as a read stream's buffers often are */
	area = palloc_aligned((Size) batch * BLCKSZ, PG_IO_ALIGN_SIZE,
						  MCXT_ALLOC_ZERO);
	for (int i = 0; i < batch; i++)
		buffers[i] = area + (Size) i * BLCKSZ;

	pg_prng_seed(&rng, 42);
	INSTR_TIME_SET_CURRENT(start);
	for (int64 done = 0; done < total; done += batch)
	{
		BlockNumber blkno = aligned ?
			(BlockNumber) pg_prng_uint64_range(&rng, 0, nblocks / batch - 1) * batch :
			(BlockNumber) pg_prng_uint64_range(&rng, 0, nblocks - batch);

		smgrwritev(reln, MAIN_FORKNUM, blkno, buffers, batch, false);
		CHECK_FOR_INTERRUPTS();
	}
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);

	relation_close(rel, AccessExclusiveLock);
	pfree(area);

	PG_RETURN_FLOAT8(INSTR_TIME_GET_DOUBLE(duration));
}

/*
 * Overwrite the first BLCKSZ bytes of a file with one O_DIRECT pwritev2()
 * with the given flags, and say what the kernel made of it.
 */
static text *
overwrite_first_block(const char *path, int flags)
{
	struct fsxattr fsx;
	struct iovec iov;
	char	   *page;
	int			fd;
	ssize_t		rc;
	const char *result;

	fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fsx) == 0)
	{
		fsx.fsx_xflags |= FS_XFLAG_COWEXTSIZE;
		fsx.fsx_cowextsize = BLCKSZ;
		(void) ioctl(fd, FS_IOC_FSSETXATTR, &fsx);
	}
	page = palloc_aligned(BLCKSZ, PG_IO_ALIGN_SIZE, MCXT_ALLOC_ZERO);
	iov.iov_base = page;
	iov.iov_len = BLCKSZ;
	rc = pwritev2(fd, &iov, 1, 0, flags);
	if (rc == BLCKSZ)
		result = "ok";
	else if (rc < 0)
		result = strerror(errno);
	else
		result = "short";
	close(fd);
	pfree(page);
	return cstring_to_text(result);
}

PG_FUNCTION_INFO_V1(wtsmgr_test_atomic_overwrite);

Datum
wtsmgr_test_atomic_overwrite(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(overwrite_first_block(path, RWF_ATOMIC));
}

PG_FUNCTION_INFO_V1(wtsmgr_test_plain_overwrite);

Datum
wtsmgr_test_plain_overwrite(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_TEXT_P(overwrite_first_block(path, 0));
}
