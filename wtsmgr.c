/*-------------------------------------------------------------------------
 *
 * wtsmgr.c
 *	  Module entry point of wtsmgr, a storage manager that writes relation
 *	  blocks with untorn (atomic) writes.
 *
 * This file owns loading: wtsmgr must be in shared_preload_libraries,
 * because it registers a storage manager with the server (smgr_register(),
 * from wtsmgr's core patches) and makes it the one smgropen() gives to
 * every relation.  It also owns the GUCs, the shared memory and the SQL
 * functions.
 *
 * The storage manager wraps md.c.  Reads, sizes, truncation and unlinking
 * are md's; writes and extensions go through wtsmgr_atomic.c, which for
 * now hands them to md.c too.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/md.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "wtsmgr.h"

#ifndef WTSMGR_VERSION
#error "WTSMGR_VERSION must be defined by the Makefile"
#endif

PG_MODULE_MAGIC_EXT(
					.name = "wtsmgr",
					.version = WTSMGR_VERSION
);

/* How relation writes reach the disk; see wtsmgr.io_method */
typedef enum WtsmgrIoMethod
{
	WTSMGR_IO_AUTO,
	WTSMGR_IO_DIRECT,
	WTSMGR_IO_WRITETHROUGH,
} WtsmgrIoMethod;

static const struct config_enum_entry wtsmgr_io_method_options[] = {
	{"auto", WTSMGR_IO_AUTO, false},
	{"direct", WTSMGR_IO_DIRECT, false},
	{"writethrough", WTSMGR_IO_WRITETHROUGH, false},
	{NULL, 0, false}
};

/* GUC variables */
static bool wtsmgr_skip_full_page_images = true;
static char *wtsmgr_keep_fpi_tablespaces = NULL;
static int	wtsmgr_io_method = WTSMGR_IO_AUTO;

WtsmgrShared *WtsmgrState = NULL;

static SMgrId wtsmgr_smgr_id;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void wtsmgr_shmem_request(void);
static void wtsmgr_shmem_startup(void);
static bool check_keep_fpi_tablespaces(char **newval, void **extra,
									   GucSource source);
static void wtsmgr_open(SMgrRelation reln);
static void wtsmgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo);
static void wtsmgr_unlink(RelFileLocatorBackend rlocator, ForkNumber forknum,
						  bool isRedo);
static void wtsmgr_truncate(SMgrRelation reln, ForkNumber forknum,
							BlockNumber old_blocks, BlockNumber nblocks);

/*
 * The storage manager.  What wtsmgr does not change is md.c's, called
 * directly; md.c keeps its private fields in SMgrRelationData, so wtsmgr
 * needs no larger SMgrRelation entries yet.
 */
static const f_smgr wtsmgr_smgr = {
	.name = "wtsmgr",
	.smgr_init = mdinit,
	.smgr_shutdown = NULL,
	.smgr_open = wtsmgr_open,
	.smgr_close = mdclose,
	.smgr_create = wtsmgr_create,
	.smgr_exists = mdexists,
	.smgr_unlink = wtsmgr_unlink,
	.smgr_extend = wtsmgr_extend,
	.smgr_zeroextend = wtsmgr_zeroextend,
	.smgr_prefetch = mdprefetch,
	.smgr_maxcombine = mdmaxcombine,
	.smgr_readv = mdreadv,
	.smgr_startreadv = mdstartreadv,
	.smgr_writev = wtsmgr_writev,
	.smgr_writeback = mdwriteback,
	.smgr_nblocks = mdnblocks,
	.smgr_truncate = wtsmgr_truncate,
	.smgr_immedsync = mdimmedsync,
	.smgr_registersync = mdregistersync,
	.smgr_fd = mdfd,
};

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	/*
	 * The storage manager table must be the same in every process, and the
	 * choice of storage manager must be made before any relation is opened:
	 * both are only possible while shared_preload_libraries are loaded.
	 */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wtsmgr must be loaded via \"shared_preload_libraries\""),
				 errhint("Add wtsmgr to \"shared_preload_libraries\" in postgresql.conf and restart the server, then run CREATE EXTENSION wtsmgr.")));

	if (storage_manager_id != MdSMgrId)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wtsmgr cannot be loaded because another storage manager is already in use"),
				 errhint("Remove the other storage manager's library from \"shared_preload_libraries\"; wtsmgr writes through md.c and cannot be stacked on another storage manager.")));

	DefineCustomBoolVariable("wtsmgr.skip_full_page_images",
							 "Leaves full-page images out of WAL for relations whose blocks are written untorn.",
							 "Takes effect only in tablespaces where atomic writes were proven.",
							 &wtsmgr_skip_full_page_images,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("wtsmgr.keep_full_page_images_tablespaces",
							   "Tablespaces that keep full-page images whatever their storage promises.",
							   "A comma-separated list of tablespace names.",
							   &wtsmgr_keep_fpi_tablespaces,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   check_keep_fpi_tablespaces, NULL, NULL);

	DefineCustomEnumVariable("wtsmgr.io_method",
							 "How relation blocks reach the disk in tablespaces with atomic writes.",
							 "auto picks the best method the startup probe proved; direct uses O_DIRECT atomic writes; writethrough uses buffered writethrough atomic writes.",
							 &wtsmgr_io_method,
							 WTSMGR_IO_AUTO,
							 wtsmgr_io_method_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("wtsmgr");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wtsmgr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wtsmgr_shmem_startup;

	wtsmgr_smgr_id = smgr_register(&wtsmgr_smgr, 0);
	storage_manager_id = wtsmgr_smgr_id;
}

static void
wtsmgr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(MAXALIGN(sizeof(WtsmgrShared)));
}

static void
wtsmgr_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	WtsmgrState = ShmemInitStruct("wtsmgr", sizeof(WtsmgrShared), &found);
	if (!found)
	{
		for (int i = 0; i < WTSMGR_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&WtsmgrState->counters[i], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * GUC check hook for wtsmgr.keep_full_page_images_tablespaces: a list of
 * identifiers.  Whether the tablespaces exist cannot be checked here (no
 * catalog access in the postmaster); unknown names simply match nothing.
 */
static bool
check_keep_fpi_tablespaces(char **newval, void **extra, GucSource source)
{
	char	   *rawstring;
	List	   *elemlist;
	bool		ok;

	rawstring = pstrdup(*newval);
	ok = SplitIdentifierString(rawstring, ',', &elemlist);
	if (!ok)
		GUC_check_errdetail("List syntax is invalid: expected tablespace names separated by commas.");
	list_free(elemlist);
	pfree(rawstring);

	return ok;
}

/*
 * Storage manager callbacks that only count before handing over to md.c.
 */
static void
wtsmgr_open(SMgrRelation reln)
{
	wtsmgr_count(WTSMGR_COUNT_OPEN, 1);
	mdopen(reln);
}

static void
wtsmgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
	mdcreate(reln, forknum, isRedo);
	wtsmgr_count(WTSMGR_COUNT_CREATE, 1);
}

static void
wtsmgr_unlink(RelFileLocatorBackend rlocator, ForkNumber forknum, bool isRedo)
{
	mdunlink(rlocator, forknum, isRedo);
	wtsmgr_count(WTSMGR_COUNT_UNLINK, 1);
}

static void
wtsmgr_truncate(SMgrRelation reln, ForkNumber forknum,
				BlockNumber old_blocks, BlockNumber nblocks)
{
	mdtruncate(reln, forknum, old_blocks, nblocks);
	wtsmgr_count(WTSMGR_COUNT_TRUNCATE, 1);
}

/*
 * SQL: wtsmgr_version() returns the version compiled into the loaded
 * library, to compare with the extension's version in pg_extension.
 */
PG_FUNCTION_INFO_V1(wtsmgr_version);

Datum
wtsmgr_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(WTSMGR_VERSION));
}

/*
 * SQL: wtsmgr_relation_smgr(regclass) names the storage manager through
 * which this backend opened the relation's files.
 */
PG_FUNCTION_INFO_V1(wtsmgr_relation_smgr);

Datum
wtsmgr_relation_smgr(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	SMgrId		which;
	const char *name;

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Pass an existing table, index, sequence or materialized view.")));

	if (!RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" has no storage",
						RelationGetRelationName(rel)),
				 errhint("Only tables, indexes, sequences and materialized views have files that a storage manager opens.")));

	which = RelationGetSmgr(rel)->smgr_which;
	relation_close(rel, AccessShareLock);

	if (which == wtsmgr_smgr_id)
		name = "wtsmgr";
	else if (which == MdSMgrId)
		name = "md";
	else
		name = "other";

	PG_RETURN_TEXT_P(cstring_to_text(name));
}

/*
 * SQL: wtsmgr_smgr_counters() returns the shared counters of calls the
 * storage manager received since the server started.
 */
PG_FUNCTION_INFO_V1(wtsmgr_smgr_counters);

Datum
wtsmgr_smgr_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[WTSMGR_NUM_COUNTERS];
	bool		nulls[WTSMGR_NUM_COUNTERS] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (tupdesc->natts != WTSMGR_NUM_COUNTERS)
		elog(ERROR, "wtsmgr_smgr_counters() returns %d columns, the library has %d counters",
			 tupdesc->natts, WTSMGR_NUM_COUNTERS);

	for (int i = 0; i < WTSMGR_NUM_COUNTERS; i++)
		values[i] = Int64GetDatum((int64)
								  pg_atomic_read_u64(&WtsmgrState->counters[i]));

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * SQL: wtsmgr_statx(path) reports what statx() says about atomic writes to
 * a file or directory, the figures wtsmgr bases its decisions on.
 */
PG_FUNCTION_INFO_V1(wtsmgr_statx);

Datum
wtsmgr_statx(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	WtsmgrAtomicLimits limits;
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (wtsmgr_read_atomic_limits(path, &limits) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read atomic write limits of \"%s\": %m", path),
				 errhint("The path must exist and be readable by the server's operating system user.")));

	values[0] = CStringGetTextDatum(limits.fs_type);
	values[1] = BoolGetDatum(limits.atomic_supported);
	values[2] = Int64GetDatum(limits.unit_min);
	values[3] = Int64GetDatum(limits.unit_max);
	values[4] = Int64GetDatum(limits.unit_max_opt);
	values[5] = Int64GetDatum(limits.segments_max);
	values[6] = Int64GetDatum(limits.dio_mem_align);
	values[7] = Int64GetDatum(limits.dio_offset_align);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
