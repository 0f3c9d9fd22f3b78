/*-------------------------------------------------------------------------
 *
 * wtsmgr_fpi.c
 *	  Leaving full-page images out for blocks that are written untorn.
 *
 * This file owns the decision that is wtsmgr's payoff: the answer to the
 * core xlog_untorn_block_hook, and what the WAL tells other servers about
 * it.
 *
 * Why it is safe.  A full-page image protects a block against a write torn
 * by a crash: replay starts from the image instead of from the torn block.
 * The hook answers "untorn" for a block only when
 *
 *	(a) wtsmgr.skip_full_page_images is on and the tablespace is not in
 *		wtsmgr.keep_full_page_images_tablespaces,
 *	(b) the tablespace was proven untorn by a probe (wtsmgr_statx.c), and
 *	(c) a WAL record has announced that its images may be left out.
 *
 * The core asks only when torn pages are the sole reason for an image: not
 * for forced images, not while a base backup runs.  Invariant 1 of the
 * design demands that every write of such a block be atomic from then until
 * at least the next checkpoint completes.  wtsmgr_atomic.c writes every block
 * of a tablespace atomically as soon as a probe has found it untorn
 * (WtsmgrTablespace.atomic_path), and it never goes back to md.c's plain
 * writes while the server runs, whatever later probes say or settings
 * change: a write it cannot do atomically fails with an ERROR and leaves the
 * buffer dirty.  So the settings in (a) may change at any reload, both ways,
 * and take effect at once; a probe that finds the tablespace no longer
 * untorn makes (b) false at once too.  Neither can make a block that lost
 * its image be written non-atomically.  What does end the atomic path is a
 * restart without wtsmgr, or on other storage; the WAL written until then
 * lacks images, so crash recovery without wtsmgr would replay it onto
 * blocks that a crash may tear.  That is what (c) is for: replaying an
 * announcement record needs wtsmgr (a custom resource manager), and its
 * redo checks that this server's storage is untorn too, warning loudly if
 * not.  It covers crash recovery, standbys and restored backups alike.
 *
 * Temporary and unlogged relations write no WAL for their pages (an
 * unlogged relation's init fork aside, which is treated like any other), so
 * the hook is never asked about them.
 *
 * The announcements are written by a background worker, when a tablespace
 * becomes untorn and again after every checkpoint, so that WAL starting at
 * any redo point carries one.  They are marked unimportant, so that an idle
 * server does not checkpoint for their sake.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_fpi.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "commands/tablespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "wtsmgr.h"

/*
 * wtsmgr's custom WAL resource manager.  The id must not collide with
 * another extension's in the same cluster; see
 * https://wiki.postgresql.org/wiki/CustomWALResourceManagers.
 */
#define RM_WTSMGR_ID 212
#define RM_WTSMGR_NAME "wtsmgr"

#define XLOG_WTSMGR_UNTORN 0x00

/* "images of these tablespaces may be left out from here on" */
typedef struct xl_wtsmgr_untorn
{
	int32		ntablespaces;
	Oid			spcoids[FLEXIBLE_ARRAY_MEMBER];
} xl_wtsmgr_untorn;

/* GUC variables */
bool		wtsmgr_skip_full_page_images = true;
char	   *wtsmgr_keep_fpi_tablespaces = NULL;

/*
 * The keep-list, resolved to OIDs in this process.  Names can only be looked
 * up in a transaction, which the hook (in a critical section) cannot start,
 * so each change is resolved at the next commit; until then the hook keeps
 * every image, which is always safe.
 */
static Oid *keep_oids = NULL;
static int	nkeep = 0;
static bool keep_resolved = true;

static void wtsmgr_redo(XLogReaderState *record);
static void wtsmgr_desc(StringInfo buf, XLogReaderState *record);
static const char *wtsmgr_identify(uint8 info);

static const RmgrData wtsmgr_rmgr = {
	.rm_name = RM_WTSMGR_NAME,
	.rm_redo = wtsmgr_redo,
	.rm_desc = wtsmgr_desc,
	.rm_identify = wtsmgr_identify,
};

/*
 * The hook.  Runs in critical sections: reads shared state without locks
 * and allocates nothing.
 */
static bool
wtsmgr_block_is_untorn(const RelFileLocator *rlocator, ForkNumber forknum,
					   BlockNumber blkno)
{
	WtsmgrTablespace *ts;
	bool		resolved;

	if (!wtsmgr_skip_full_page_images)
		return false;
	ts = wtsmgr_find_tablespace(rlocator->spcOid);
	if (ts == NULL ||
		pg_atomic_read_u32(&ts->state) != WTSMGR_TS_UNTORN ||
		!pg_atomic_read_u32(&ts->announced))
		return false;
	if (wtsmgr_keep_list_contains(rlocator->spcOid, &resolved) || !resolved)
		return false;

	/* counted where the core asks, including records assembled again */
	wtsmgr_count_io(ts, WTSMGR_IO_FPI_SKIPPED, 1);
	return true;
}

/*
 * wtsmgr_keep_list_changed() -- GUC assign hook of the keep-list: forget
 * the resolved OIDs.  An empty list needs no resolving.
 */
void
wtsmgr_keep_list_changed(const char *newval)
{
	nkeep = 0;
	keep_resolved = (newval == NULL || newval[0] == '\0');
}

/*
 * wtsmgr_keep_list_contains() -- Is spcoid in the resolved keep-list?
 * *resolved says whether the list is resolved at all.
 */
bool
wtsmgr_keep_list_contains(Oid spcoid, bool *resolved)
{
	*resolved = keep_resolved;
	for (int i = 0; i < nkeep; i++)
	{
		if (keep_oids[i] == spcoid)
			return true;
	}
	return false;
}

/*
 * Resolve the keep-list's names, at the end of a transaction.
 */
static void
resolve_keep_list(void)
{
	char	   *rawstring;
	List	   *names;
	ListCell   *lc;
	int			n = 0;

	rawstring = pstrdup(wtsmgr_keep_fpi_tablespaces);
	/* the GUC check hook has accepted the syntax */
	(void) SplitIdentifierString(rawstring, ',', &names);
	if (keep_oids != NULL)
		pfree(keep_oids);
	keep_oids = MemoryContextAlloc(TopMemoryContext,
								   sizeof(Oid) * Max(list_length(names), 1));
	foreach(lc, names)
	{
		/* a name that matches no tablespace matches nothing */
		Oid			oid = get_tablespace_oid((char *) lfirst(lc), true);

		if (OidIsValid(oid))
			keep_oids[n++] = oid;
	}
	list_free(names);
	pfree(rawstring);

	nkeep = n;
	keep_resolved = true;
}

static void
wtsmgr_xact_callback(XactEvent event, void *arg)
{
	/*
	 * Processes not connected to a database (launchers) cannot look up
	 * tablespaces; they write no page-changing WAL either.
	 */
	if (!keep_resolved && OidIsValid(MyDatabaseId) &&
		(event == XACT_EVENT_PRE_COMMIT ||
		 event == XACT_EVENT_PARALLEL_PRE_COMMIT))
		resolve_keep_list();
}

/*
 * wtsmgr_fpi_decision() -- What happens to full-page images of a
 * tablespace's blocks in this backend, and why, in the words the views
 * show.  Runs in a transaction, so the keep-list is compared by name.
 */
const char *
wtsmgr_fpi_decision(WtsmgrTablespace *ts, const char *spcname)
{
	WtsmgrTablespaceState state = ts ? pg_atomic_read_u32(&ts->state) :
		WTSMGR_TS_UNPROBED;
	char	   *rawstring;
	List	   *names;
	ListCell   *lc;
	bool		listed = false;

	if (!fullPageWrites)
		return "none: full_page_writes is off";
	if (state == WTSMGR_TS_UNPROBED)
		return "kept: not probed yet";
	if (state != WTSMGR_TS_UNTORN)
		return "kept: blocks may tear";

	rawstring = pstrdup(wtsmgr_keep_fpi_tablespaces);
	(void) SplitIdentifierString(rawstring, ',', &names);
	foreach(lc, names)
	{
		if (spcname && strcmp((char *) lfirst(lc), spcname) == 0)
			listed = true;
	}
	list_free(names);
	pfree(rawstring);
	if (listed)
		return "kept: listed in wtsmgr.keep_full_page_images_tablespaces";

	if (!wtsmgr_skip_full_page_images)
		return "kept: wtsmgr.skip_full_page_images is off";
	if (!XLogImagesOnlyForTornPages())
		return "kept: backup running";
	if (!pg_atomic_read_u32(&ts->announced))
		return "kept: not yet announced in WAL";
	return "skipped";
}

/*
 * Redo of an announcement: the primary (or this server before a crash) left
 * images of these tablespaces out.  Check that our storage is untorn too.
 */
static void
wtsmgr_redo(XLogReaderState *record)
{
	xl_wtsmgr_untorn *xlrec = (xl_wtsmgr_untorn *) XLogRecGetData(record);

	if ((XLogRecGetInfo(record) & ~XLR_INFO_MASK) != XLOG_WTSMGR_UNTORN)
		elog(PANIC, "wtsmgr_redo: unknown op code %u",
			 XLogRecGetInfo(record) & ~XLR_INFO_MASK);

	for (int i = 0; i < xlrec->ntablespaces; i++)
	{
		Oid			spcoid = xlrec->spcoids[i];
		WtsmgrTablespace *ts = wtsmgr_get_tablespace(spcoid);
		char		dir[MAXPGPATH];

		if (ts != NULL && pg_atomic_read_u32(&ts->state) == WTSMGR_TS_UNTORN)
			continue;
		/* warn once per tablespace while the server runs */
		if (ts != NULL && pg_atomic_exchange_u32(&ts->replay_unsafe, 1) != 0)
			continue;

		wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("WAL being replayed lacks full-page images for tablespace %u (\"%s\"), but its blocks may tear on this server",
						spcoid, dir),
				 errdetail("The server that wrote the WAL left the images out because its copy of the tablespace is written untorn; here: %s.",
						   ts ? ts->probe.reason : "the tablespace could not be probed"),
				 errhint("A crash of this server while it writes such blocks could corrupt them. Put this server's copy of the tablespace on storage with atomic writes (see wtsmgr_tablespaces), or set wtsmgr.skip_full_page_images = off on the primary and take a new base backup.")));
	}
}

static void
wtsmgr_desc(StringInfo buf, XLogReaderState *record)
{
	xl_wtsmgr_untorn *xlrec = (xl_wtsmgr_untorn *) XLogRecGetData(record);

	appendStringInfoString(buf, "images may be left out for tablespaces");
	for (int i = 0; i < xlrec->ntablespaces; i++)
		appendStringInfo(buf, " %u", xlrec->spcoids[i]);
}

static const char *
wtsmgr_identify(uint8 info)
{
	if ((info & ~XLR_INFO_MASK) == XLOG_WTSMGR_UNTORN)
		return "UNTORN";
	return NULL;
}

/*
 * Write an announcement if a tablespace became untorn since the last one,
 * or a checkpoint began.
 */
static void
announce(XLogRecPtr *last_redo)
{
	XLogRecPtr	redo = GetRedoRecPtr();
	uint32		n = pg_atomic_read_u32(&WtsmgrState->ntablespaces);
	Oid			spcoids[WTSMGR_MAX_TABLESPACES];
	WtsmgrTablespace *untorn[WTSMGR_MAX_TABLESPACES];
	int			nuntorn = 0;
	bool		news = false;
	xl_wtsmgr_untorn hdr;

	pg_read_barrier();
	for (uint32 t = 0; t < n; t++)
	{
		WtsmgrTablespace *ts = &WtsmgrState->tablespaces[t];

		if (pg_atomic_read_u32(&ts->state) != WTSMGR_TS_UNTORN)
			continue;
		untorn[nuntorn] = ts;
		spcoids[nuntorn++] = ts->spcoid;
		if (!pg_atomic_read_u32(&ts->announced))
			news = true;
	}
	if (nuntorn == 0 || (!news && redo == *last_redo))
		return;

	hdr.ntablespaces = nuntorn;
	XLogBeginInsert();
	XLogSetRecordFlags(XLOG_MARK_UNIMPORTANT);
	XLogRegisterData(&hdr, offsetof(xl_wtsmgr_untorn, spcoids));
	XLogRegisterData(spcoids, sizeof(Oid) * nuntorn);
	(void) XLogInsert(RM_WTSMGR_ID, XLOG_WTSMGR_UNTORN);

	/* Only now may the hook leave their images out. */
	for (int i = 0; i < nuntorn; i++)
		pg_atomic_write_u32(&untorn[i]->announced, 1);
	*last_redo = redo;
}

/*
 * The background worker that writes the announcements.
 */
PGDLLEXPORT void wtsmgr_announcer_main(Datum main_arg);

void
wtsmgr_announcer_main(Datum main_arg)
{
	XLogRecPtr	last_redo = InvalidXLogRecPtr;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	for (;;)
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 200L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (!RecoveryInProgress())
			announce(&last_redo);
	}
}

/*
 * wtsmgr_fpi_init() -- Called from _PG_init(): the hook, the resource
 * manager, the announcer and the keep-list's resolution.
 */
void
wtsmgr_fpi_init(void)
{
	BackgroundWorker worker;

	if (xlog_untorn_block_hook != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wtsmgr cannot be loaded because another module already decides which full-page images to leave out"),
				 errhint("Remove the other module from \"shared_preload_libraries\".")));
	xlog_untorn_block_hook = wtsmgr_block_is_untorn;

	RegisterCustomRmgr(RM_WTSMGR_ID, &wtsmgr_rmgr);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "wtsmgr", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "wtsmgr_announcer_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "wtsmgr announcer", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "wtsmgr announcer", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);

	RegisterXactCallback(wtsmgr_xact_callback, NULL);
}
