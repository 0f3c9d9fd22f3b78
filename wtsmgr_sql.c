/*-------------------------------------------------------------------------
 *
 * wtsmgr_sql.c
 *	  The SQL functions of wtsmgr, behind its views.
 *
 * This file owns what users see of wtsmgr in SQL: the functions that
 * wtsmgr--1.0.sql declares.  They read the other modules through their
 * accessors only and decide nothing themselves.  Who may call which
 * function is decided by GRANT and REVOKE in wtsmgr--1.0.sql, not here.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_sql.c
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
#include "catalog/pg_class.h"
#include "catalog/pg_tablespace.h"
#include "commands/tablespace.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/md.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "wtsmgr.h"
#include "wtsmgr_fpi.h"
#include "wtsmgr_registry.h"
#include "wtsmgr_stats.h"
#include "wtsmgr_statx.h"

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
				 errdetail("Only tables, indexes, sequences and materialized views have files that a storage manager opens."),
				 errhint("Pass a relation of one of those kinds.")));
	return rel;
}

/*
 * The number of result columns of each function, as wtsmgr--1.0.sql declares
 * them.  The row builders below fill values[] with a counted index and
 * Assert that they filled exactly this many; check_result_columns() refuses
 * to build rows for a declaration with another count.
 */
#define WTSMGR_SMGR_COUNTERS_COLS WTSMGR_NUM_SMGR_STATS
#define WTSMGR_STATX_COLS 8
#define WTSMGR_TABLESPACES_COLS 21
#define WTSMGR_RELATION_COLS 5
#define WTSMGR_STAT_IO_COLS (2 + WTSMGR_NUM_IO_STATS + 1)

/*
 * Does the function's result row, as the SQL objects declare it, have as
 * many columns as the library fills in?  They disagree when the library and
 * the extension's SQL objects come from different versions of wtsmgr.
 */
static void
check_result_columns(TupleDesc tupdesc, int ncols, const char *fname)
{
	if (tupdesc->natts != ncols)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("function %s returns %d columns, but the wtsmgr library fills in %d",
						fname, tupdesc->natts, ncols),
				 errhint("Install the wtsmgr library and SQL files of the same version and run ALTER EXTENSION wtsmgr UPDATE; compare wtsmgr_version() with pg_extension.extversion.")));
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

	if (which == wtsmgr_smgr_id())
		name = "wtsmgr";
	else if (which == MdSMgrId)
		name = "md";
	else
		name = "other";

	PG_RETURN_TEXT_P(cstring_to_text(name));
}

/*
 * SQL: wtsmgr_smgr_counters() returns the calls the storage manager
 * received, summed over the tablespaces wtsmgr tracks.
 */
PG_FUNCTION_INFO_V1(wtsmgr_smgr_counters);

Datum
wtsmgr_smgr_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[WTSMGR_SMGR_COUNTERS_COLS];
	bool		nulls[WTSMGR_SMGR_COUNTERS_COLS] = {0};
	int64		sums[WTSMGR_NUM_SMGR_STATS] = {0};
	uint32		n = wtsmgr_registry_count();
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	check_result_columns(tupdesc, WTSMGR_SMGR_COUNTERS_COLS,
						 "wtsmgr_smgr_counters()");

	for (uint32 slot = 0; slot < n; slot++)
	{
		WtsmgrStats stats;

		wtsmgr_stats_fetch(wtsmgr_ts_oid(wtsmgr_registry_entry(slot)), &stats);
		for (int c = 0; c < WTSMGR_NUM_SMGR_STATS; c++)
			sums[c] += stats.counters[c];
	}
	for (int c = 0; c < WTSMGR_NUM_SMGR_STATS; c++)
		values[i++] = Int64GetDatum(sums[c]);
	Assert(i == WTSMGR_SMGR_COUNTERS_COLS);

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
	Datum		values[WTSMGR_STATX_COLS];
	bool		nulls[WTSMGR_STATX_COLS] = {0};
	int			i = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	check_result_columns(tupdesc, WTSMGR_STATX_COLS, "wtsmgr_statx()");

	if (wtsmgr_read_atomic_limits(path, &limits) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read atomic write limits of \"%s\": %m", path),
				 errhint("Pass a path that exists and that the server's operating system user can read.")));

	values[i++] = CStringGetTextDatum(limits.fs_type);
	values[i++] = BoolGetDatum(limits.atomic_supported);
	values[i++] = Int64GetDatum(limits.unit_min);
	values[i++] = Int64GetDatum(limits.unit_max);
	values[i++] = Int64GetDatum(limits.unit_max_opt);
	values[i++] = Int64GetDatum(limits.segments_max);
	values[i++] = Int64GetDatum(limits.dio_mem_align);
	values[i++] = Int64GetDatum(limits.dio_offset_align);
	Assert(i == WTSMGR_STATX_COLS);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Why writes took the way out, in words: see wtsmgr_ts_note_fallback().
 */
static const char *
fallback_cause(int cause)
{
	switch (cause)
	{
		case WTSMGR_FALLBACK_SHORT:
			return "an atomic write completed short";
		case WTSMGR_FALLBACK_FILE:
			return "a file cannot take atomic writes";
		default:
			return psprintf("atomic write failed: %s", strerror(cause));
	}
}

/*
 * Build the row of wtsmgr_tablespaces for one tablespace.
 */
static void
tablespace_row(Oid spcoid, const char *spcname, Datum *values, bool *nulls)
{
	WtsmgrTablespace *ts = wtsmgr_find_tablespace(spcoid);
	WtsmgrTablespaceInfo info;
	const WtsmgrAtomicLimits *limits = &info.probe.result.limits;
	bool		probed;
	bool		untorn;
	char		dir[MAXPGPATH];
	Name		name = palloc(NAMEDATALEN);
	WtsmgrFpiDecision decision;
	int			i = 0;
	int			first_limit;

	memset(nulls, 0, sizeof(bool) * WTSMGR_TABLESPACES_COLS);
	namestrcpy(name, spcname);
	wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));

	if (ts != NULL)
		wtsmgr_ts_info(ts, &info);
	else
	{
		memset(&info, 0, sizeof(info));
		info.state = WTSMGR_TS_UNPROBED;
	}
	probed = info.state != WTSMGR_TS_UNPROBED;
	untorn = info.state == WTSMGR_TS_UNTORN;

	values[i++] = NameGetDatum(name);
	values[i++] = ObjectIdGetDatum(spcoid);
	values[i++] = CStringGetTextDatum(dir);

	/* what the last probe found: null until there is one */
	first_limit = i;
	values[i++] = CStringGetTextDatum(limits->fs_type);
	values[i++] = CStringGetTextDatum(psprintf("%u:%u", limits->dev_major,
											   limits->dev_minor));
	values[i++] = BoolGetDatum(limits->atomic_supported);
	values[i++] = Int64GetDatum(limits->unit_min);
	values[i++] = Int64GetDatum(limits->unit_max);
	values[i++] = Int64GetDatum(limits->unit_max_opt);
	values[i++] = Int64GetDatum(limits->segments_max);
	values[i++] = Int64GetDatum(limits->dio_mem_align);
	values[i++] = Int64GetDatum(limits->dio_offset_align);
	if (!probed)
	{
		for (int c = first_limit; c < i; c++)
			nulls[c] = true;
	}

	/*
	 * How the write path writes relation blocks there (the same answer it
	 * gets itself): once its writes are protected, until the server stops,
	 * with O_DIRECT RWF_ATOMIC writes where the storage takes them (and the
	 * kernel has not broken its promise), else through the doublewrite area;
	 * otherwise through md.c's buffered writes.  Buffered atomic writes would
	 * need RWF_WRITETHROUGH, which no released kernel header defines yet.
	 */
	if (!wtsmgr_ts_writes_protected(ts))
		values[i++] = CStringGetTextDatum("md");
	else if (info.protection == WTSMGR_PROTECTED_BY_PROBE && !info.distrusted)
		values[i++] = CStringGetTextDatum("atomic");
	else
		values[i++] = CStringGetTextDatum("doublewrite");

	/*
	 * Who makes a block's write atomic: the device, when it does atomic
	 * writes of a block in hardware; XFS without that does them by
	 * copy-on-write in software, which needs free space for every overwrite
	 * (see docs/design.md).  ext4 has no software fallback.
	 */
	if (!probed || !limits->atomic_supported || limits->unit_max < BLCKSZ)
		nulls[i++] = true;
	else if (limits->unit_max_opt >= BLCKSZ ||
			 strcmp(limits->fs_type, "ext4") == 0)
		values[i++] = CStringGetTextDatum("device");
	else if (strcmp(limits->fs_type, "xfs") == 0)
		values[i++] = CStringGetTextDatum("filesystem copy-on-write");
	else
		values[i++] = CStringGetTextDatum("unknown");

	/* the extent size hint new files get there, in kB */
	if (untorn)
		values[i++] = Int32GetDatum(info.probe.result.extent_size_hint / 1024);
	else
		nulls[i++] = true;

	values[i++] = BoolGetDatum(untorn);
	decision = wtsmgr_fpi_decide(ts, GetRedoRecPtr(), false);
	values[i++] = CStringGetTextDatum(wtsmgr_fpi_decision_text(decision));
	if (probed)
	{
		values[i++] = CStringGetTextDatum(info.probe.result.reason);
		values[i++] = TimestampTzGetDatum(info.probe.probed_at);
	}
	else
	{
		values[i++] = CStringGetTextDatum("not probed yet: it is probed when its first relation is created or written");
		nulls[i++] = true;
	}
	/* when writes last took the way out, and why */
	if (info.last_fallback != 0)
	{
		values[i++] = TimestampTzGetDatum(info.last_fallback);
		values[i++] = CStringGetTextDatum(fallback_cause(info.fallback_cause));
	}
	else
	{
		nulls[i++] = true;
		nulls[i++] = true;
	}
	Assert(i == WTSMGR_TABLESPACES_COLS);
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
	check_result_columns(rsinfo->setDesc, WTSMGR_TABLESPACES_COLS,
						 "wtsmgr_tablespaces()");

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

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	check_result_columns(tupdesc, WTSMGR_TABLESPACES_COLS, "wtsmgr_probe()");

	if (wtsmgr_reprobe_tablespace(spcoid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not probe tablespace \"%s\"", spcname),
				 errdetail("wtsmgr tracks at most %d tablespaces. The tablespace keeps its full-page images.",
						   wtsmgr_registry_capacity()),
				 errhint("Raise wtsmgr.max_tablespaces and restart the server.")));

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
	check_result_columns(rsinfo->setDesc, WTSMGR_RELATION_COLS,
						 "wtsmgr_relation()");

	rel = open_relation_with_storage(relid);
	reln = RelationGetSmgr(rel);
	spcoid = reln->smgr_rlocator.locator.spcOid;
	spcname = get_tablespace_name(spcoid);
	ts = wtsmgr_find_tablespace(spcoid);
	relpersistence = rel->rd_rel->relpersistence;

	for (ForkNumber fork = MAIN_FORKNUM; fork <= MAX_FORKNUM; fork++)
	{
		Datum		values[WTSMGR_RELATION_COLS];
		bool		nulls[WTSMGR_RELATION_COLS] = {0};
		WtsmgrFpiDecision decision;
		int			i = 0;

		if (!smgrexists(reln, fork))
			continue;

		/* Temporary and unlogged relations are not WAL-logged... */
		if (relpersistence == RELPERSISTENCE_TEMP)
			decision = WTSMGR_FPI_NONE_TEMP;
		else if (relpersistence == RELPERSISTENCE_UNLOGGED &&
				 fork != INIT_FORKNUM)
			decision = WTSMGR_FPI_NONE_UNLOGGED;
		else					/* ...but an unlogged relation's init fork is */
			decision = wtsmgr_fpi_decide(ts, GetRedoRecPtr(), false);

		values[i++] = CStringGetTextDatum(forkNames[fork]);
		if (spcname)
		{
			Name		name = palloc(NAMEDATALEN);

			namestrcpy(name, spcname);
			values[i++] = NameGetDatum(name);
		}
		else
			nulls[i++] = true;
		values[i++] = BoolGetDatum(wtsmgr_ts_state(ts) == WTSMGR_TS_UNTORN);
		/* the write path's own answer; temporary relations go to md */
		values[i++] = BoolGetDatum(wtsmgr_ts_writes_protected(ts) &&
								   relpersistence != RELPERSISTENCE_TEMP);
		values[i++] = CStringGetTextDatum(wtsmgr_fpi_decision_text(decision));
		Assert(i == WTSMGR_RELATION_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	relation_close(rel, AccessShareLock);

	return (Datum) 0;
}

/*
 * SQL: wtsmgr_stat_io() returns the I/O statistics of every tablespace
 * wtsmgr tracks that still exists.
 */
PG_FUNCTION_INFO_V1(wtsmgr_stat_io);

Datum
wtsmgr_stat_io(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint32		n = wtsmgr_registry_count();

	InitMaterializedSRF(fcinfo, 0);
	check_result_columns(rsinfo->setDesc, WTSMGR_STAT_IO_COLS,
						 "wtsmgr_stat_io()");

	for (uint32 slot = 0; slot < n; slot++)
	{
		Oid			spcoid = wtsmgr_ts_oid(wtsmgr_registry_entry(slot));
		Datum		values[WTSMGR_STAT_IO_COLS];
		bool		nulls[WTSMGR_STAT_IO_COLS] = {0};
		char	   *spcname = get_tablespace_name(spcoid);
		WtsmgrStats stats;
		NameData	name;
		int			i = 0;

		/* a dropped tablespace has nothing more to show */
		if (spcname == NULL)
			continue;
		wtsmgr_stats_fetch(spcoid, &stats);
		namestrcpy(&name, spcname);
		values[i++] = NameGetDatum(&name);
		values[i++] = ObjectIdGetDatum(spcoid);
		for (int c = WTSMGR_FIRST_IO_STAT; c < WTSMGR_NUM_STATS; c++)
			values[i++] = Int64GetDatum(stats.counters[c]);
		if (stats.stat_reset_timestamp != 0)
			values[i++] = TimestampTzGetDatum(stats.stat_reset_timestamp);
		else
			nulls[i++] = true;
		Assert(i == WTSMGR_STAT_IO_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}

/*
 * SQL: wtsmgr_stat_reset() sets all of wtsmgr's statistics to zero, those
 * of wtsmgr_smgr_counters too.
 */
PG_FUNCTION_INFO_V1(wtsmgr_stat_reset);

Datum
wtsmgr_stat_reset(PG_FUNCTION_ARGS)
{
	wtsmgr_stats_reset();
	PG_RETURN_VOID();
}
