/*-------------------------------------------------------------------------
 *
 * wtsmgr.c
 *	  Module entry point of wtsmgr, a storage manager that writes relation
 *	  blocks with untorn (atomic) writes.
 *
 * This file owns loading: wtsmgr must be in shared_preload_libraries,
 * because it registers a storage manager with the server (smgr_register(),
 * from wtsmgr's core patches) and makes it the one smgropen() gives to
 * every relation.  It also owns the write path's GUCs, the shared memory and
 * the SQL functions; the settings of the image decision are wtsmgr_fpi.c's.
 *
 * The storage manager wraps md.c.  Reads, sizes, truncation and unlinking
 * are md's; writes and extensions go through wtsmgr_atomic.c, which for
 * now hands them to md.c too.  What wtsmgr knows about each tablespace comes
 * from wtsmgr_statx.c and is shown by the views defined here.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_class.h"
#include "catalog/pg_tablespace.h"
#include "commands/tablespace.h"
#include "common/relpath.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/md.h"
#include "storage/procnumber.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "wtsmgr.h"

#ifndef WTSMGR_VERSION
#error "WTSMGR_VERSION must be defined by the Makefile"
#endif

PG_MODULE_MAGIC_EXT(
					.name = "wtsmgr",
					.version = WTSMGR_VERSION
);

static const struct config_enum_entry wtsmgr_durability_options[] = {
	{"fsync", WTSMGR_DURABILITY_FSYNC, false},
	{"dsync", WTSMGR_DURABILITY_DSYNC, false},
	{NULL, 0, false}
};

/* GUC variables */
int			wtsmgr_durability = WTSMGR_DURABILITY_FSYNC;
int			wtsmgr_io_uring_entries = 64;
int			wtsmgr_extent_size_hint = 64;
int			wtsmgr_max_tablespaces = 256;

WtsmgrShared *WtsmgrState = NULL;

static SMgrId wtsmgr_smgr_id;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void wtsmgr_shmem_request(void);
static void wtsmgr_shmem_startup(void);
static void wtsmgr_init(void);
static void wtsmgr_open(SMgrRelation reln);
static void wtsmgr_close(SMgrRelation reln, ForkNumber forknum);
static void wtsmgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo);
static void wtsmgr_unlink(RelFileLocatorBackend rlocator, ForkNumber forknum,
						  bool isRedo);
static void wtsmgr_truncate(SMgrRelation reln, ForkNumber forknum,
							BlockNumber old_blocks, BlockNumber nblocks);

/*
 * The storage manager.  What wtsmgr does not change is md.c's, called
 * directly.  Its SMgrRelation entries are WtSMgrRelationData.
 */
static const f_smgr wtsmgr_smgr = {
	.name = "wtsmgr",
	.smgr_init = wtsmgr_init,
	.smgr_shutdown = NULL,
	.smgr_open = wtsmgr_open,
	.smgr_close = wtsmgr_close,
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

	DefineCustomEnumVariable("wtsmgr.durability",
							 "How atomic writes are made durable.",
							 "fsync: plain atomic direct writes, fsynced by the checkpointer as md.c's are; dsync: every atomic write carries RWF_DSYNC and needs no fsync.",
							 &wtsmgr_durability,
							 WTSMGR_DURABILITY_FSYNC,
							 wtsmgr_durability_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("wtsmgr.io_uring_entries",
							"Size of each backend's io_uring submission queue.",
							"A batch of atomic units larger than this is submitted in several rounds.",
							&wtsmgr_io_uring_entries,
							64, 1, 4096,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("wtsmgr.extent_size_hint",
							"XFS extent size hint given to new relation files in tablespaces with atomic writes.",
							"0 gives none.",
							&wtsmgr_extent_size_hint,
							64, 0, 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("wtsmgr.max_tablespaces",
							"Number of tablespaces wtsmgr tracks.",
							"Tablespaces beyond it, pg_default and pg_global included, keep their full-page images and are written by md.c.",
							&wtsmgr_max_tablespaces,
							256, 2, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	wtsmgr_fpi_init();

	MarkGUCPrefixReserved("wtsmgr");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wtsmgr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wtsmgr_shmem_startup;

	wtsmgr_smgr_id = smgr_register(&wtsmgr_smgr, sizeof(WtSMgrRelationData));
	storage_manager_id = wtsmgr_smgr_id;
}

static Size
wtsmgr_shmem_size(void)
{
	return add_size(offsetof(WtsmgrShared, tablespaces),
					mul_size(wtsmgr_max_tablespaces, sizeof(WtsmgrTablespace)));
}

static void
wtsmgr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(MAXALIGN(wtsmgr_shmem_size()));
	RequestNamedLWLockTranche("wtsmgr", 1);
}

static void
wtsmgr_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	WtsmgrState = ShmemInitStruct("wtsmgr", wtsmgr_shmem_size(), &found);
	if (!found)
	{
		memset(WtsmgrState, 0, wtsmgr_shmem_size());
		for (int i = 0; i < WTSMGR_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&WtsmgrState->counters[i], 0);
		WtsmgrState->lock = &(GetNamedLWLockTranche("wtsmgr"))->lock;
		pg_atomic_init_u32(&WtsmgrState->ntablespaces, 0);
		pg_atomic_init_u32(&WtsmgrState->announcer_procno,
						   (uint32) INVALID_PROC_NUMBER);
		pg_atomic_init_u32(&WtsmgrState->announcer_wakeup, 0);
		for (int t = 0; t < wtsmgr_max_tablespaces; t++)
		{
			WtsmgrTablespace *ts = &WtsmgrState->tablespaces[t];

			pg_atomic_init_u32(&ts->state, WTSMGR_TS_UNPROBED);
			pg_atomic_init_u32(&ts->atomic_path, 0);
			pg_atomic_init_u32(&ts->decision, WTSMGR_FPI_UNDECIDED);
			pg_atomic_init_u64(&ts->announced_redo, InvalidXLogRecPtr);
			pg_atomic_init_u32(&ts->replay_unsafe, 0);
			for (int i = 0; i < WTSMGR_NUM_IO_COUNTERS; i++)
				pg_atomic_init_u64(&ts->io[i], 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);

	/*
	 * Whoever creates shared memory probes the tablespaces: the postmaster,
	 * at startup and after a crash, before the startup process runs recovery,
	 * or a single-user backend.  No other process exists yet.
	 */
	if (!found)
		wtsmgr_probe_all_tablespaces();
}

/*
 * Storage manager callbacks around md.c's.
 */
static void
wtsmgr_init(void)
{
	mdinit();
	wtsmgr_atomic_init();
}

static void
wtsmgr_open(SMgrRelation reln)
{
	wtsmgr_count(WTSMGR_COUNT_OPEN, 1);
	mdopen(reln);
	wtsmgr_atomic_open(reln);
}

static void
wtsmgr_close(SMgrRelation reln, ForkNumber forknum)
{
	mdclose(reln, forknum);
	wtsmgr_atomic_close(reln, forknum);
}

/*
 * Creating a fork is the first use of a new tablespace: probe it now, so
 * that it is known before any of its relations is written.
 */
static void
wtsmgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
	mdcreate(reln, forknum, isRedo);
	wtsmgr_count(WTSMGR_COUNT_CREATE, 1);
	/* a tablespace re-created under the same OID is probed anew here */
	if (CritSectionCount == 0)
		(void) wtsmgr_get_tablespace(reln->smgr_rlocator.locator.spcOid, true);
	(void) wtsmgr_relation_tablespace(reln);
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
	/* forget our descriptors of segments that may be gone */
	wtsmgr_atomic_close(reln, forknum);
	wtsmgr_count(WTSMGR_COUNT_TRUNCATE, 1);
}

/*
 * Open a relation that has files, for the SQL functions that look at them.
 */
static Relation
open_relation_with_storage(Oid relid)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

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
	return rel;
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

	rel = open_relation_with_storage(relid);
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

	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read atomic write limits of \"%s\"", path),
				 errhint("Only superusers and roles with privileges of the \"%s\" role may look at arbitrary paths.",
						 "pg_read_server_files")));

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

static void
require_maintain_privilege(const char *what, const char *spcname)
{
	if (!has_privs_of_role(GetUserId(), ROLE_PG_MAINTAIN))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 spcname ?
				 errmsg("permission denied to %s tablespace \"%s\"", what, spcname) :
				 errmsg("permission denied to %s", what),
				 errhint("Only superusers and roles with privileges of the \"%s\" role may do this.",
						 "pg_maintain")));
}

#define WTSMGR_TABLESPACES_COLS 20

/*
 * Build the row of wtsmgr_tablespaces for one tablespace.
 */
static void
tablespace_row(Oid spcoid, const char *spcname, Datum *values, bool *nulls)
{
	WtsmgrTablespace *ts = wtsmgr_find_tablespace(spcoid);
	WtsmgrProbeResult probe;
	TimestampTz probed_at = 0;
	bool		probed;
	bool		untorn;
	char		dir[MAXPGPATH];

	memset(nulls, 0, sizeof(bool) * WTSMGR_TABLESPACES_COLS);
	wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));

	probed = ts != NULL &&
		pg_atomic_read_u32(&ts->state) != WTSMGR_TS_UNPROBED;
	untorn = ts != NULL &&
		pg_atomic_read_u32(&ts->state) == WTSMGR_TS_UNTORN;
	if (probed)
	{
		LWLockAcquire(WtsmgrState->lock, LW_SHARED);
		probe = ts->probe;
		probed_at = ts->probed_at;
		LWLockRelease(WtsmgrState->lock);
	}

	values[0] = CStringGetDatum(spcname);
	values[1] = ObjectIdGetDatum(spcoid);
	values[2] = CStringGetTextDatum(dir);
	if (probed)
	{
		values[3] = CStringGetTextDatum(probe.limits.fs_type);
		values[4] = CStringGetTextDatum(psprintf("%u:%u", probe.limits.dev_major,
												 probe.limits.dev_minor));
		values[5] = BoolGetDatum(probe.limits.atomic_supported);
		values[6] = Int64GetDatum(probe.limits.unit_min);
		values[7] = Int64GetDatum(probe.limits.unit_max);
		values[8] = Int64GetDatum(probe.limits.unit_max_opt);
		values[9] = Int64GetDatum(probe.limits.segments_max);
		values[10] = Int64GetDatum(probe.limits.dio_mem_align);
		values[11] = Int64GetDatum(probe.limits.dio_offset_align);
	}
	else
	{
		for (int c = 3; c <= 11; c++)
			nulls[c] = true;
	}

	/*
	 * How the write path writes relation blocks there: once a tablespace was
	 * found untorn, with O_DIRECT RWF_ATOMIC writes until the server stops
	 * (see atomic_path), otherwise through md.c's buffered writes.  Buffered
	 * atomic writes would need RWF_WRITETHROUGH, which no released kernel
	 * header defines yet.
	 */
	if (ts != NULL && pg_atomic_read_u32(&ts->atomic_path) != 0)
		values[12] = CStringGetTextDatum("direct");
	else
		values[12] = CStringGetTextDatum("buffered");

	/*
	 * Who makes a block's write atomic: the device, when it does atomic
	 * writes of a block in hardware; XFS without that does them by
	 * copy-on-write in software, which needs free space for every overwrite
	 * (see the README).  ext4 has no software fallback.
	 */
	if (!probed || !probe.limits.atomic_supported ||
		probe.limits.unit_max < BLCKSZ)
		nulls[13] = true;
	else if (probe.limits.unit_max_opt >= BLCKSZ ||
			 strcmp(probe.limits.fs_type, "ext4") == 0)
		values[13] = CStringGetTextDatum("device");
	else if (strcmp(probe.limits.fs_type, "xfs") == 0)
		values[13] = CStringGetTextDatum("filesystem copy-on-write");
	else
		values[13] = CStringGetTextDatum("unknown");

	/* the extent size hint new files get there, in kB */
	if (untorn)
		values[14] = Int32GetDatum(probe.extent_size_hint / 1024);
	else
		nulls[14] = true;

	values[15] = BoolGetDatum(untorn);
	values[16] = CStringGetTextDatum(wtsmgr_fpi_decision(ts));
	if (probed)
	{
		values[17] = CStringGetTextDatum(probe.reason);
		values[18] = TimestampTzGetDatum(probed_at);
	}
	else
	{
		values[17] = CStringGetTextDatum("not probed yet: it is probed when its first relation is created or written");
		nulls[18] = true;
	}
	/* replayed WAL lacked images although blocks may tear here */
	values[19] = BoolGetDatum(ts != NULL &&
							  pg_atomic_read_u32(&ts->replay_unsafe) != 0);
}

/*
 * SQL: wtsmgr_tablespaces() returns one row per tablespace in
 * pg_tablespace, with what the last probe found and what wtsmgr decided.
 */
PG_FUNCTION_INFO_V1(wtsmgr_tablespaces);

Datum
wtsmgr_tablespaces(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	InitMaterializedSRF(fcinfo, 0);

	rel = table_open(TableSpaceRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_tablespace spc = (Form_pg_tablespace) GETSTRUCT(tuple);
		Datum		values[WTSMGR_TABLESPACES_COLS];
		bool		nulls[WTSMGR_TABLESPACES_COLS];

		tablespace_row(spc->oid, NameStr(spc->spcname), values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);

	return (Datum) 0;
}

/*
 * SQL: wtsmgr_probe(tablespace) probes a tablespace again and returns its
 * new row of wtsmgr_tablespaces.
 */
PG_FUNCTION_INFO_V1(wtsmgr_probe);

Datum
wtsmgr_probe(PG_FUNCTION_ARGS)
{
	char	   *spcname = NameStr(*PG_GETARG_NAME(0));
	Oid			spcoid;
	TupleDesc	tupdesc;
	Datum		values[WTSMGR_TABLESPACES_COLS];
	bool		nulls[WTSMGR_TABLESPACES_COLS];

	spcoid = get_tablespace_oid(spcname, true);
	if (!OidIsValid(spcoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tablespace \"%s\" does not exist", spcname),
				 errhint("The tablespaces are listed in pg_tablespace and in the wtsmgr_tablespaces view.")));
	require_maintain_privilege("probe", spcname);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (wtsmgr_reprobe_tablespace(spcoid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not probe tablespace \"%s\": wtsmgr tracks at most %d tablespaces",
						spcname, wtsmgr_max_tablespaces),
				 errhint("The tablespace keeps its full-page images. Raise wtsmgr.max_tablespaces and restart to track more.")));

	tablespace_row(spcoid, spcname, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * SQL: wtsmgr_relation(regclass) returns, per existing fork of a relation,
 * its tablespace, whether its blocks are untorn and written atomically,
 * and what happens to its full-page images.
 */
PG_FUNCTION_INFO_V1(wtsmgr_relation);

Datum
wtsmgr_relation(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	SMgrRelation reln;
	Oid			spcoid;
	char	   *spcname;
	WtsmgrTablespace *ts;
	char		relpersistence;

	InitMaterializedSRF(fcinfo, 0);

	rel = open_relation_with_storage(relid);
	reln = RelationGetSmgr(rel);
	spcoid = reln->smgr_rlocator.locator.spcOid;
	spcname = get_tablespace_name(spcoid);
	ts = wtsmgr_find_tablespace(spcoid);
	relpersistence = rel->rd_rel->relpersistence;

	for (ForkNumber fork = MAIN_FORKNUM; fork <= MAX_FORKNUM; fork++)
	{
		Datum		values[5];
		bool		nulls[5] = {0};
		const char *fpi;

		if (!smgrexists(reln, fork))
			continue;

		/* Temporary and unlogged relations are not WAL-logged... */
		if (relpersistence == RELPERSISTENCE_TEMP)
			fpi = "none: temporary relation";
		else if (relpersistence == RELPERSISTENCE_UNLOGGED &&
				 fork != INIT_FORKNUM)
			fpi = "none: unlogged relation";
		else					/* ...but an unlogged relation's init fork is */
			fpi = wtsmgr_fpi_decision(ts);

		values[0] = CStringGetTextDatum(forkNames[fork]);
		if (spcname)
			values[1] = CStringGetDatum(spcname);
		else
			nulls[1] = true;
		values[2] = BoolGetDatum(ts != NULL &&
								 pg_atomic_read_u32(&ts->state) == WTSMGR_TS_UNTORN);
		/* wtsmgr_atomic.c writes these atomically; temporary ones go to md */
		values[3] = BoolGetDatum(ts != NULL &&
								 pg_atomic_read_u32(&ts->state) == WTSMGR_TS_UNTORN &&
								 relpersistence != RELPERSISTENCE_TEMP);
		values[4] = CStringGetTextDatum(fpi);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	relation_close(rel, AccessShareLock);

	return (Datum) 0;
}

/*
 * SQL: wtsmgr_stat_io() returns the I/O counters of every tablespace wtsmgr
 * has probed.
 */
PG_FUNCTION_INFO_V1(wtsmgr_stat_io);

Datum
wtsmgr_stat_io(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint32		n;

	InitMaterializedSRF(fcinfo, 0);

	n = pg_atomic_read_u32(&WtsmgrState->ntablespaces);
	pg_read_barrier();
	for (uint32 t = 0; t < n; t++)
	{
		WtsmgrTablespace *ts = &WtsmgrState->tablespaces[t];
		Datum		values[WTSMGR_NUM_IO_COUNTERS + 3];
		bool		nulls[WTSMGR_NUM_IO_COUNTERS + 3] = {0};
		char	   *spcname = get_tablespace_name(ts->spcoid);
		int			i = 0;

		/* a dropped tablespace has nothing more to show */
		if (spcname == NULL)
			continue;
		values[i++] = CStringGetDatum(spcname);
		values[i++] = ObjectIdGetDatum(ts->spcoid);
		for (int c = 0; c < WTSMGR_NUM_IO_COUNTERS; c++)
			values[i++] = Int64GetDatum((int64) pg_atomic_read_u64(&ts->io[c]));
		LWLockAcquire(WtsmgrState->lock, LW_SHARED);
		values[i++] = TimestampTzGetDatum(ts->stats_reset);
		LWLockRelease(WtsmgrState->lock);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

/*
 * SQL: wtsmgr_stat_reset() sets all counters of wtsmgr_stat_io to zero.
 */
PG_FUNCTION_INFO_V1(wtsmgr_stat_reset);

Datum
wtsmgr_stat_reset(PG_FUNCTION_ARGS)
{
	uint32		n;
	TimestampTz now = GetCurrentTimestamp();

	require_maintain_privilege("reset wtsmgr's statistics", NULL);

	n = pg_atomic_read_u32(&WtsmgrState->ntablespaces);
	pg_read_barrier();
	LWLockAcquire(WtsmgrState->lock, LW_EXCLUSIVE);
	for (uint32 t = 0; t < n; t++)
	{
		WtsmgrTablespace *ts = &WtsmgrState->tablespaces[t];

		for (int c = 0; c < WTSMGR_NUM_IO_COUNTERS; c++)
			pg_atomic_write_u64(&ts->io[c], 0);
		ts->stats_reset = now;
	}
	LWLockRelease(WtsmgrState->lock);

	PG_RETURN_VOID();
}
