/*-------------------------------------------------------------------------
 *
 * wtsmgr_fpi.c
 *	  Leaving full-page images out for blocks that are written untorn.
 *
 * This file owns the decision that is wtsmgr's payoff: the answer to the
 * core xlog_untorn_block_hook, the settings that steer it
 * (wtsmgr.skip_full_page_images, wtsmgr.keep_full_page_images_tablespaces,
 * wtsmgr.database), the announcer that makes
 * the decision, and what the WAL tells other servers about it.  It keeps
 * its per-tablespace state in the tablespace registry, through its
 * accessors.
 *
 * Why it is safe.  A full-page image protects a block against a write torn
 * by a crash: replay starts from the image instead of from the torn block.
 * The hook answers "untorn" for a block only when (wtsmgr_fpi_decide(), the
 * one function that decides it, has the whole truth table)
 *
 *	(a) the tablespace was proven untorn by a probe (wtsmgr_statx.c),
 *	(b) the published decision says its images may be left out:
 *		wtsmgr.skip_full_page_images is on and the tablespace is not in
 *		wtsmgr.keep_full_page_images_tablespaces, and
 *	(c) a WAL record written after the redo pointer that the record's images
 *		are decided against has announced that they may be left out.
 *
 * The core asks only when torn pages are the sole reason for an image: not
 * for forced images, not while a base backup runs.  Invariant 1 of the
 * design demands that every write of such a block be atomic from then until
 * at least the next checkpoint completes.  wtsmgr_atomic.c protects every
 * write of a tablespace as soon as a probe has found it untorn
 * (wtsmgr_ts_writes_protected()): it writes each block atomically, or, where
 * the kernel refuses an atomic write, through the doublewrite area, which no
 * crash can leave torn either; and it never goes back to md.c's plain writes
 * while the server runs, whatever later probes say or settings change.  So
 * the settings in (b) may change at any reload, both ways, and a probe that
 * finds the tablespace no longer untorn makes (a) false at once; neither can
 * make a block that lost its image be written unprotected.
 *
 * (b) is decided in one place, the announcer below, and published in shared
 * memory: the hook of every backend reads it, including backends busy with
 * a long statement that will not look at their own settings until it ends,
 * and the views show the same decision.  The announcer decides again at each
 * reload and at the start of each checkpoint cycle, and then reads the
 * configuration files itself before it announces the cycle (see
 * announcer_read_settings()): a checkpoint that begins after the files say
 * "keep" (ALTER SYSTEM has returned, say) runs its whole cycle with every
 * image, whether or not the reload has reached any process yet.
 *
 * (c) is what makes the WAL self-describing.  What ends the atomic path is a
 * restart without wtsmgr, or on other storage, and the WAL written until
 * then lacks images.  An announcement is a record of wtsmgr's own resource
 * manager, so replaying one needs wtsmgr, and its redo protects the writes
 * of every announced tablespace on this server too, before the first record
 * without an image is replayed: atomically where this server's storage is
 * untorn, otherwise through the doublewrite area, with a warning (see
 * wtsmgr_redo()).  That holds for crash recovery, for a standby, and for a
 * restored backup alike, and across their own crashes, since every write
 * they made of such blocks was protected too.  Until replay meets the
 * first announcement of a tablespace, recovery writes its blocks as md.c
 * does, even where a probe found it untorn (wtsmgr_ts_writes_protected()):
 * the WAL before that announcement has every image, and a block torn by a
 * crash meanwhile is restored from its image when recovery starts over from
 * the same redo point, as with stock PostgreSQL.  The redo also tells the core
 * (XLogNoteImagesOmitted()), which refuses backups taken on a standby
 * while such WAL is replayed.  All of that works only if WAL from any
 * redo point carries an announcement before its first record without an
 * image, so the hook is told the redo pointer of each decision (the core
 * asks again if it moves before the record is inserted), and answers
 * "untorn" only if the announcer has written an announcement for that very
 * redo pointer.  In the moments after a checkpoint begins and before the
 * announcer has written the new cycle's announcement, images are kept; the
 * first hook call that finds the announcement missing wakes the announcer.
 *
 * Temporary and unlogged relations write no WAL for their pages (an
 * unlogged relation's init fork aside, which is treated like any other), so
 * the hook is never asked about them.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_fpi.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "catalog/pg_tablespace_d.h"
#include "commands/tablespace.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/proc.h"
#include "storage/procnumber.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "wtsmgr_fpi.h"
#include "wtsmgr_stats.h"

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

/* How often the announcer looks for work when nobody wakes it, ms */
#define ANNOUNCER_NAPTIME 200L

/*
 * What the announcer decided about a tablespace from the settings, (b)
 * above: its policy, kept in its registry entry and readable without locks.
 * wtsmgr_fpi_decide() combines it with the rest.
 */
typedef enum WtsmgrFpiPolicy
{
	WTSMGR_POLICY_UNDECIDED = 0,	/* not decided yet: keeps images */
	WTSMGR_POLICY_SKIP,			/* may be left out where blocks are untorn */
	WTSMGR_POLICY_SWITCHED_OFF, /* wtsmgr.skip_full_page_images is off */
	WTSMGR_POLICY_LISTED,		/* in wtsmgr.keep_full_page_images_tablespaces */
	WTSMGR_POLICY_DROPPED,		/* dropped: its directory is gone */
	WTSMGR_POLICY_UNRESOLVED,	/* the keep-list cannot be looked up */
} WtsmgrFpiPolicy;

/* the longest wait between two attempts to connect to wtsmgr.database */
#define ANNOUNCER_MAX_CONNECT_DELAY 60000L

/* The announcer, in shared memory */
typedef struct WtsmgrAnnouncer
{
	pg_atomic_uint32 procno;	/* its ProcNumber, or INVALID_PROC_NUMBER */
	pg_atomic_uint32 wakeup;	/* its latch is set already */
	pg_atomic_uint32 connect_failures;	/* attempts to connect that failed */
} WtsmgrAnnouncer;

static WtsmgrAnnouncer *Announcer = NULL;

/* GUC variables */
static bool skip_full_page_images = true;
static char *keep_fpi_tablespaces = NULL;
static char *announcer_database = NULL;

/*
 * In the announcer: the two settings that decide (b) as it last reloaded
 * them on SIGHUP (see announcer_read_settings()).
 */
static bool reloaded_skip = true;
static char *reloaded_keep = NULL;

/* the announcer's scratch memory for each decision */
static MemoryContext decision_cxt = NULL;

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
 * Ask the announcer to look at the tablespaces now.  Safe in critical
 * sections and signal handlers: it only sets a latch, and only once until
 * the announcer has woken up.
 */
static void
wake_announcer(void)
{
	uint32		procno;

	if (Announcer == NULL ||
		pg_atomic_read_u32(&Announcer->wakeup) != 0 ||
		pg_atomic_exchange_u32(&Announcer->wakeup, 1) != 0)
		return;
	procno = pg_atomic_read_u32(&Announcer->procno);
	if (procno != (uint32) INVALID_PROC_NUMBER)
		SetLatch(&GetPGProcByNumber(procno)->procLatch);
}

void
wtsmgr_fpi_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(WtsmgrAnnouncer)));
}

void
wtsmgr_fpi_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Announcer = ShmemInitStruct("wtsmgr announcer", sizeof(WtsmgrAnnouncer),
								&found);
	if (!found)
	{
		pg_atomic_init_u32(&Announcer->procno, (uint32) INVALID_PROC_NUMBER);
		pg_atomic_init_u32(&Announcer->wakeup, 0);
		pg_atomic_init_u32(&Announcer->connect_failures, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * wtsmgr_fpi_decide() -- What happens to the full-page images of a
 * tablespace's blocks, decided against redo, and why.  This is the only
 * place that decides it: the hook returns "untorn" exactly when this says
 * WTSMGR_FPI_SKIPPED, and the views show its answer in words
 * (wtsmgr_fpi_decision_text()), so they cannot tell another story than the
 * hook's.  Lock-free and allocation-free: the hook calls it in critical
 * sections.
 *
 * ts is the tablespace's registry entry, or NULL where wtsmgr tracks none
 * (never probed, or no room in the registry).  torn_pages_only says that the
 * caller has found XLogImagesOnlyForTornPages() true (full_page_writes on,
 * no base backup running), so the rows marked [tpo] below are not checked
 * again: the core does so before it calls the hook (XLogBlockIsUntorn()),
 * and rechecks it with the redo pointer under the insertion lock before it
 * inserts the record; announce() does so before it announces.  The views
 * pass false and the current redo pointer.
 *
 * The rows are checked in this order; the first that holds gives the answer
 * (and the reason the views show), so an image is left out only where none
 * holds:
 *
 *	    condition                                    answer (WTSMGR_FPI_...)
 *	 1. full_page_writes is off in this process      NONE_FPW_OFF
 *	    (its setting) [tpo]
 *	 2. ts is NULL, or its state is UNPROBED         KEPT_NOT_PROBED
 *	 3. its state is anything but UNTORN: probed     KEPT_MAY_TEAR
 *	    torn, or distrusted (the kernel broke its
 *	    word, wtsmgr_ts_mark_torn() set it TORN)
 *	 4. policy LISTED (in the keep-list)             KEPT_LISTED
 *	 5. policy DROPPED                               KEPT_DROPPED
 *	 6. policy UNRESOLVED (keep-list not looked up)  KEPT_UNRESOLVED
 *	 7. policy SWITCHED_OFF (skip setting off)       KEPT_SWITCHED_OFF
 *	 8. policy UNDECIDED, or any value but SKIP      KEPT_UNDECIDED
 *	 9. a base backup runs, or full_page_writes is   KEPT_BACKUP
 *	    off in shared memory [tpo]
 *	10. its announcement is not for redo             KEPT_UNANNOUNCED
 *	11. none of the above                            SKIPPED
 *
 * So SKIPPED needs all of: a tracked tablespace probed UNTORN, (a) above;
 * policy SKIP, (b); images taken for torn pages only; and an announcement
 * for redo, (c).  Every other answer keeps the image; the order of the rows
 * only chooses the reason the views show.  In recovery no WAL is inserted
 * and the hook is never asked; the announcer, a background worker started
 * once recovery has finished, has not decided yet, so the views show rows
 * 2, 3 or 8.  The hook counts rows 10 and 11 in the statistics, and wakes
 * the announcer at row 10.
 */
pg_attribute_always_inline WtsmgrFpiDecision
wtsmgr_fpi_decide(WtsmgrTablespace *ts, XLogRecPtr redo, bool torn_pages_only)
{
	WtsmgrTablespaceState state;

	if (!torn_pages_only && !fullPageWrites)
		return WTSMGR_FPI_NONE_FPW_OFF;
	if (ts == NULL)
		return WTSMGR_FPI_KEPT_NOT_PROBED;
	state = wtsmgr_ts_state(ts);
	if (state == WTSMGR_TS_UNPROBED)
		return WTSMGR_FPI_KEPT_NOT_PROBED;
	if (state != WTSMGR_TS_UNTORN)
		return WTSMGR_FPI_KEPT_MAY_TEAR;
	switch ((WtsmgrFpiPolicy) wtsmgr_ts_policy(ts))
	{
		case WTSMGR_POLICY_SKIP:
			break;
		case WTSMGR_POLICY_LISTED:
			return WTSMGR_FPI_KEPT_LISTED;
		case WTSMGR_POLICY_DROPPED:
			return WTSMGR_FPI_KEPT_DROPPED;
		case WTSMGR_POLICY_UNRESOLVED:
			return WTSMGR_FPI_KEPT_UNRESOLVED;
		case WTSMGR_POLICY_SWITCHED_OFF:
			return WTSMGR_FPI_KEPT_SWITCHED_OFF;
		case WTSMGR_POLICY_UNDECIDED:
		default:
			return WTSMGR_FPI_KEPT_UNDECIDED;
	}
	if (!torn_pages_only && !XLogImagesOnlyForTornPages())
		return WTSMGR_FPI_KEPT_BACKUP;
	if (wtsmgr_ts_announced_redo(ts) != redo)
		return WTSMGR_FPI_KEPT_UNANNOUNCED;
	return WTSMGR_FPI_SKIPPED;
}

/*
 * wtsmgr_fpi_decision_text() -- A decision in the words of the views'
 * full_page_images column.
 */
const char *
wtsmgr_fpi_decision_text(WtsmgrFpiDecision decision)
{
	switch (decision)
	{
		case WTSMGR_FPI_KEPT_NOT_PROBED:
			return "kept: not probed yet";
		case WTSMGR_FPI_KEPT_MAY_TEAR:
			return "kept: blocks may tear";
		case WTSMGR_FPI_KEPT_LISTED:
			return "kept: listed in wtsmgr.keep_full_page_images_tablespaces";
		case WTSMGR_FPI_KEPT_DROPPED:
			return "kept: tablespace dropped";
		case WTSMGR_FPI_KEPT_UNRESOLVED:
			return "kept: cannot connect to wtsmgr.database";
		case WTSMGR_FPI_KEPT_SWITCHED_OFF:
			return "kept: wtsmgr.skip_full_page_images is off";
		case WTSMGR_FPI_KEPT_UNDECIDED:
		case WTSMGR_FPI_KEPT_UNANNOUNCED:
			return "kept: not yet announced in WAL";
		case WTSMGR_FPI_KEPT_BACKUP:
			return "kept: backup running";
		case WTSMGR_FPI_NONE_FPW_OFF:
			return "none: full_page_writes is off";
		case WTSMGR_FPI_NONE_TEMP:
			return "none: temporary relation";
		case WTSMGR_FPI_NONE_UNLOGGED:
			return "none: unlogged relation";
		case WTSMGR_FPI_SKIPPED:
			return "skipped";
	}
	elog(ERROR, "unrecognized full-page image decision: %d", (int) decision);
	return NULL;				/* keep compiler quiet */
}

/*
 * The hook.  Runs in critical sections: reads shared state without locks
 * and allocates nothing.  redo is the redo pointer that the image is decided
 * against.  Its answer is wtsmgr_fpi_decide()'s.
 */
static bool
wtsmgr_block_is_untorn(const RelFileLocator *rlocator, ForkNumber forknum,
					   BlockNumber blkno, XLogRecPtr redo)
{
	WtsmgrTablespace *ts = wtsmgr_find_tablespace(rlocator->spcOid);
	WtsmgrFpiDecision decision = wtsmgr_fpi_decide(ts, redo, true);

	switch (decision)
	{
		case WTSMGR_FPI_SKIPPED:
			break;
		case WTSMGR_FPI_KEPT_UNANNOUNCED:
			/* only once this checkpoint cycle has its announcement */
			wake_announcer();
			break;
		default:
			/* the tablespace or its policy says no: not counted */
			return false;
	}

	/*
	 * A "no" here counts too: the record may be assembled again, after the
	 * redo pointer moved, and its new answer replaces the earlier "yes".
	 */
	wtsmgr_stat_image_question(ts, rlocator, forknum, blkno,
							   decision == WTSMGR_FPI_SKIPPED);
	return decision == WTSMGR_FPI_SKIPPED;
}

/*
 * Redo of an announcement: the server that wrote the WAL (the primary, or
 * this server before a crash) left images of these tablespaces out from here
 * on.
 *
 * Replaying the records that follow writes their blocks, and a crash of
 * this server could tear such a write, with no image left to repair it
 * from: not even at the next start, which replays the same WAL.  So from
 * now until this server stops, every write of these tablespaces here is
 * protected, whatever this server's storage is.  Where it was proven
 * untorn, that is the case already; elsewhere (a standby or restored backup
 * on storage that tears, a data directory moved there, or a probe that
 * failed) the blocks go through the doublewrite area wherever their files
 * cannot take atomic writes, which is slow: warn.
 */
static void
wtsmgr_redo(XLogReaderState *record)
{
	xl_wtsmgr_untorn *xlrec = (xl_wtsmgr_untorn *) XLogRecGetData(record);

	if ((XLogRecGetInfo(record) & ~XLR_INFO_MASK) != XLOG_WTSMGR_UNTORN)
		elog(PANIC, "wtsmgr_redo: unknown op code %u",
			 XLogRecGetInfo(record) & ~XLR_INFO_MASK);

	/* a backup taken on this standby from now on would lack the images */
	XLogNoteImagesOmitted(record->ReadRecPtr);

	for (int i = 0; i < xlrec->ntablespaces; i++)
	{
		Oid			spcoid = xlrec->spcoids[i];
		WtsmgrTablespace *ts;
		WtsmgrTablespaceInfo info;
		char		dir[MAXPGPATH];
		struct stat st;

		/*
		 * A tablespace dropped later in the WAL has no directory any more,
		 * and replay writes nothing there.
		 */
		wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));
		if (stat(dir, &st) != 0 && errno == ENOENT)
			continue;

		ts = wtsmgr_enter_tablespace(spcoid);
		if (ts == NULL)
			ereport(FATAL,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("cannot replay WAL without full-page images for tablespace %u (\"%s\")",
							spcoid, dir),
					 errdetail("Its writes must be protected, but wtsmgr tracks at most %d tablespaces.",
							   wtsmgr_registry_capacity()),
					 errhint("Raise wtsmgr.max_tablespaces and start the server again.")));

		/* the first time only: replay may write its blocks from now on */
		if (!wtsmgr_ts_set_protected(ts) ||
			wtsmgr_ts_state(ts) == WTSMGR_TS_UNTORN)
			continue;

		wtsmgr_ts_info(ts, &info);
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("WAL being replayed lacks full-page images for tablespace %u (\"%s\"), whose blocks may tear on this server",
						spcoid, dir),
				 errdetail("On this server the probe reported: %s. Until this server stops, its blocks are written with atomic writes where its files take them, and through the doublewrite area where they do not.",
						   info.probe.result.reason),
				 errhint("Put this server's copy of the tablespace on storage with atomic writes (see wtsmgr_tablespaces), or set wtsmgr.skip_full_page_images = off on the primary and take a new base backup.")));
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
 * Split a keep-list into its tablespace names (in the caller's memory
 * context).  Returns false if its syntax is invalid.  The only parser of
 * wtsmgr.keep_full_page_images_tablespaces: its check hook and the
 * announcer both use it.
 */
static bool
parse_keep_list(const char *value, List **names)
{
	return SplitIdentifierString(pstrdup(value), ',', names);
}

/*
 * Read the configuration files in the announcer: because of a reload
 * (SIGHUP), or because a checkpoint cycle begins.
 *
 * pg_reload_conf() returns once it has signalled the postmaster, which
 * re-reads the files and signals its children when it gets to it; a
 * checkpoint requested just after it may begin before any process has
 * reloaded.  Decided from the settings loaded before, that cycle would be
 * announced, and images left out, although the files already keep them.
 * So once the announcer has seen a new redo pointer, it reads the files
 * again before deciding and announcing that cycle: a checkpoint that begins
 * after the files changed (ALTER SYSTEM has returned, or postgresql.conf was
 * saved) is decided from the changed files.  No signal is involved, so no
 * delay needs to be allowed for.
 *
 * Reading the files outside a reload must not let a change that nobody has
 * reloaded leave images out that the reloaded settings keep:
 * publish_decisions() keeps an image if either the files read last or the
 * settings reloaded last say so.  Towards leaving images out, the settings
 * change only at a reload, as every setting does.
 */
static void
announcer_read_settings(bool reload)
{
	ProcessConfigFile(PGC_SIGHUP);
	if (reload)
	{
		reloaded_skip = skip_full_page_images;
		if (reloaded_keep != NULL)
			pfree(reloaded_keep);
		reloaded_keep = MemoryContextStrdup(TopMemoryContext,
											keep_fpi_tablespaces);
	}
}

/*
 * The tablespace names that keep their images: those of the keep-list read
 * last and those of the keep-list reloaded last (in the caller's memory
 * context).  Both passed the GUC check hook.
 */
static List *
keep_list_names(void)
{
	List	   *names;
	List	   *reloaded = NIL;

	(void) parse_keep_list(keep_fpi_tablespaces, &names);
	if (reloaded_keep != NULL)
		(void) parse_keep_list(reloaded_keep, &reloaded);
	return list_concat(names, reloaded);
}

/*
 * Is spcoid among the keep-list's tablespaces, resolved to OIDs?
 */
static bool
oid_listed(Oid spcoid, const Oid *oids, int noids)
{
	for (int i = 0; i < noids; i++)
	{
		if (oids[i] == spcoid)
			return true;
	}
	return false;
}

/*
 * Before the announcer connects to wtsmgr.database, for resolve_keep_list().
 *
 * A connection that fails ends the process (FATAL), and the postmaster
 * starts it again.  Until one succeeds, the keep-list cannot be read, so
 * every tablespace keeps its images, whatever was decided before; the
 * decision is set to say so before each attempt.  The attempts after a
 * failure are spaced out, doubling up to a minute, so that a missing
 * database does not fill the log, and each one says what is going on.  The
 * settings may be reloaded while we wait.
 */
static void
announcer_wait_to_connect(void)
{
	uint32		failures = pg_atomic_read_u32(&Announcer->connect_failures);
	uint32		n = wtsmgr_registry_count();
	long		delay;
	TimestampTz until;

	for (uint32 t = 0; t < n; t++)
		wtsmgr_ts_set_policy(wtsmgr_registry_entry(t),
							 WTSMGR_POLICY_UNRESOLVED);
	if (failures == 0)
		return;

	delay = Min(1000L << Min(failures - 1, 6), ANNOUNCER_MAX_CONNECT_DELAY);
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("could not connect to database \"%s\" to look up the tablespaces in \"%s\"",
					announcer_database,
					"wtsmgr.keep_full_page_images_tablespaces"),
			 errdetail_plural("%u attempt has failed; the next one is in %ld s. Until one succeeds, every tablespace keeps its full-page images.",
							  "%u attempts have failed; the next one is in %ld s. Until one succeeds, every tablespace keeps its full-page images.",
							  failures, failures, delay / 1000),
			 errhint("The server log says why the last attempt failed. Create the database, or set \"%s\" to an existing database and restart the server.",
					 "wtsmgr.database")));

	/* SIGTERM ends the wait; the latch is set for other reasons too */
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
	while (GetCurrentTimestamp() < until)
	{
		CHECK_FOR_INTERRUPTS();
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(1, TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																until)),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		announcer_read_settings(true);
	}
}

/*
 * Connect this process to wtsmgr.database, counting the attempt as failed
 * until it has succeeded (a failure does not return).
 */
static void
announcer_connect(void)
{
	uint32		failures = pg_atomic_fetch_add_u32(&Announcer->connect_failures, 1);

	BackgroundWorkerInitializeConnection(announcer_database, NULL, 0);
	pg_atomic_write_u32(&Announcer->connect_failures, 0);
	if (failures > 0)
		ereport(LOG,
				(errmsg("connected to database \"%s\" to look up the tablespaces in \"%s\"",
						announcer_database,
						"wtsmgr.keep_full_page_images_tablespaces")));
}

/*
 * Resolve the keep-list's names to tablespace OIDs, into *oids (allocated in
 * the caller's memory context).  Names are looked up in pg_tablespace, a
 * shared catalog that is readable only with a database connection (unlike
 * pg_database, it has no relation cache entry built without one), so the
 * first non-empty keep-list connects this process to wtsmgr.database.
 */
static int
resolve_keep_list(Oid **oids)
{
	static bool connected = false;
	MemoryContext cxt = CurrentMemoryContext;
	List	   *names;
	ListCell   *lc;
	int			noids = 0;

	names = keep_list_names();
	if (names != NIL && !connected)
	{
		/* the list may be emptied while we wait */
		announcer_wait_to_connect();
		list_free(names);
		names = keep_list_names();
		if (names != NIL)
		{
			announcer_connect();
			connected = true;
		}
	}
	*oids = palloc(sizeof(Oid) * Max(list_length(names), 1));
	if (names == NIL)
		return 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "resolving wtsmgr.keep_full_page_images_tablespaces");
	foreach(lc, names)
	{
		/* a name that matches no tablespace matches nothing */
		Oid			oid = get_tablespace_oid((char *) lfirst(lc), true);

		if (OidIsValid(oid))
			(*oids)[noids++] = oid;
	}
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(cxt);

	return noids;
}

/*
 * Decide, for every tracked tablespace, whether its images may be left out,
 * and publish the decision for the hook and the views.  This is the only
 * place that reads wtsmgr.skip_full_page_images and the keep-list, each both
 * as reloaded and as read from the files last (announcer_read_settings()):
 * images are kept if either says so.  A dropped tablespace, whose directory
 * is gone, is no longer announced.
 */
static void
publish_decisions(void)
{
	uint32		n = wtsmgr_registry_count();
	MemoryContext oldcxt;
	Oid		   *oids;
	int			noids;

	oldcxt = MemoryContextSwitchTo(decision_cxt);
	noids = resolve_keep_list(&oids);

	for (uint32 t = 0; t < n; t++)
	{
		WtsmgrTablespace *ts = wtsmgr_registry_entry(t);
		WtsmgrFpiPolicy policy;
		char		dir[MAXPGPATH];
		struct stat st;

		wtsmgr_tablespace_dir(wtsmgr_ts_oid(ts), dir, sizeof(dir));
		if (stat(dir, &st) != 0 && errno == ENOENT)
			policy = WTSMGR_POLICY_DROPPED;
		else if (oid_listed(wtsmgr_ts_oid(ts), oids, noids))
			policy = WTSMGR_POLICY_LISTED;
		else if (!skip_full_page_images || !reloaded_skip)
			policy = WTSMGR_POLICY_SWITCHED_OFF;
		else
			policy = WTSMGR_POLICY_SKIP;
		wtsmgr_ts_set_policy(ts, policy);
	}

	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(decision_cxt);
}

/*
 * Write an announcement for the tablespaces whose images may be left out, if
 * one of them has none for redo, the redo pointer that the published
 * decisions were made for.
 */
static void
announce(XLogRecPtr redo)
{
	static Oid *spcoids = NULL;
	static WtsmgrTablespace **listed = NULL;
	uint32		n = wtsmgr_registry_count();
	int			nlisted = 0;
	bool		news = false;
	xl_wtsmgr_untorn hdr;
	XLogRecPtr	recptr;

	/*
	 * While a base backup runs, every image is taken whatever the hook says;
	 * announce the cycle once it has ended, so that the WAL that a backup
	 * needs does not claim images are missing.
	 */
	if (!XLogImagesOnlyForTornPages())
		return;

	/*
	 * A checkpoint began after the decisions were made: they do not hold for
	 * its cycle, for which the caller decides again at once.
	 */
	if (GetRedoRecPtr() != redo)
		return;

	if (spcoids == NULL)
	{
		spcoids = MemoryContextAlloc(TopMemoryContext,
									 sizeof(Oid) * wtsmgr_registry_capacity());
		listed = MemoryContextAlloc(TopMemoryContext,
									sizeof(WtsmgrTablespace *) * wtsmgr_registry_capacity());
	}

	for (uint32 t = 0; t < n; t++)
	{
		WtsmgrTablespace *ts = wtsmgr_registry_entry(t);

		WtsmgrFpiDecision decision = wtsmgr_fpi_decide(ts, redo, true);

		/* those whose images the hook leaves out, or would once announced */
		if (decision != WTSMGR_FPI_SKIPPED &&
			decision != WTSMGR_FPI_KEPT_UNANNOUNCED)
			continue;
		listed[nlisted] = ts;
		spcoids[nlisted++] = wtsmgr_ts_oid(ts);
		if (decision == WTSMGR_FPI_KEPT_UNANNOUNCED)
			news = true;
	}
	if (!news)
		return;

	hdr.ntablespaces = nlisted;
	XLogBeginInsert();
	XLogSetRecordFlags(XLOG_MARK_UNIMPORTANT);
	XLogRegisterData(&hdr, offsetof(xl_wtsmgr_untorn, spcoids));
	XLogRegisterData(spcoids, sizeof(Oid) * nlisted);
	recptr = XLogInsert(RM_WTSMGR_ID, XLOG_WTSMGR_UNTORN);

	/*
	 * Only now may the hook leave their images out, in records decided
	 * against this redo pointer: they come after the announcement in WAL. (If
	 * a checkpoint began since we checked, the announcement lands in its
	 * cycle, but claims only the older one, whose records XLogInsertRecord()
	 * sends back to be assembled again; the caller decides about the new
	 * cycle.)
	 */
	pg_write_barrier();
	for (int i = 0; i < nlisted; i++)
		wtsmgr_ts_set_announced_redo(listed[i], redo);
	elog(DEBUG1, "wtsmgr announced %d tablespaces at %X/%X for the checkpoint cycle from redo %X/%X",
		 nlisted, LSN_FORMAT_ARGS(recptr), LSN_FORMAT_ARGS(redo));
}

/*
 * The background worker that decides and announces.
 */
PGDLLEXPORT void wtsmgr_announcer_main(Datum main_arg);

static void
announcer_exit(int code, Datum arg)
{
	pg_atomic_write_u32(&Announcer->procno,
						(uint32) INVALID_PROC_NUMBER);
}

void
wtsmgr_announcer_main(Datum main_arg)
{
	uint32		known = 0;
	XLogRecPtr	decided_redo = InvalidXLogRecPtr;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	decision_cxt = AllocSetContextCreate(TopMemoryContext,
										 "wtsmgr announcer decisions",
										 ALLOCSET_SMALL_SIZES);

	pg_atomic_write_u32(&Announcer->procno, MyProcNumber);
	on_shmem_exit(announcer_exit, (Datum) 0);
	pg_atomic_write_u32(&Announcer->wakeup, 0);

	/* decide at once: the decisions are undecided until we do */
	ConfigReloadPending = true;

	for (;;)
	{
		uint32		n;
		XLogRecPtr	redo;

		CHECK_FOR_INTERRUPTS();

		/* a new tablespace, new settings or a new checkpoint cycle */
		n = wtsmgr_registry_count();
		redo = GetRedoRecPtr();
		if (ConfigReloadPending || n != known || redo != decided_redo)
		{
			/*
			 * The files are read after the redo pointer, so that they are at
			 * least as new as the checkpoint's start.
			 */
			if (ConfigReloadPending || redo != decided_redo)
			{
				bool		reload = ConfigReloadPending;

				ConfigReloadPending = false;
				announcer_read_settings(reload);
			}
			publish_decisions();
			known = n;
			decided_redo = redo;
		}

		if (!RecoveryInProgress())
			announce(decided_redo);

		/* a checkpoint began meanwhile: decide about its cycle at once */
		if (GetRedoRecPtr() != decided_redo)
			continue;

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ANNOUNCER_NAPTIME, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		pg_atomic_write_u32(&Announcer->wakeup, 0);
	}
}

/*
 * GUC check hook for wtsmgr.keep_full_page_images_tablespaces: a list of
 * identifiers.  Whether the tablespaces exist is not checked here (no
 * catalog access in the postmaster); unknown names simply match nothing.
 */
static bool
check_keep_fpi_tablespaces(char **newval, void **extra, GucSource source)
{
	List	   *names;

	if (!parse_keep_list(*newval, &names))
	{
		GUC_check_errdetail("List syntax is invalid: expected tablespace names separated by commas.");
		return false;
	}
	list_free(names);
	return true;
}

/*
 * wtsmgr_fpi_init() -- Called from _PG_init(): the settings, the hook, the
 * resource manager and the announcer.
 */
void
wtsmgr_fpi_init(void)
{
	BackgroundWorker worker;

	DefineCustomBoolVariable("wtsmgr.skip_full_page_images",
							 "Leaves full-page images out of WAL for relations whose blocks are written untorn.",
							 "Takes effect only in tablespaces where atomic writes were proven.",
							 &skip_full_page_images,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("wtsmgr.keep_full_page_images_tablespaces",
							   "Tablespaces that keep full-page images whatever their storage promises.",
							   "A comma-separated list of tablespace names.",
							   &keep_fpi_tablespaces,
							   "",
							   PGC_SIGHUP,
							   GUC_LIST_INPUT,
							   check_keep_fpi_tablespaces, NULL, NULL);

	DefineCustomStringVariable("wtsmgr.database",
							   "Database that wtsmgr's announcer connects to, to look up the tablespaces in wtsmgr.keep_full_page_images_tablespaces.",
							   "It connects only once that list is not empty.",
							   &announcer_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	if (xlog_untorn_block_hook != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wtsmgr cannot be loaded because another module already decides which full-page images to leave out"),
				 errhint("Remove the other module from \"shared_preload_libraries\".")));
	xlog_untorn_block_hook = wtsmgr_block_is_untorn;

	/* a tablespace probed anew is decided about without waiting */
	wtsmgr_registry_on_change(wake_announcer);

	RegisterCustomRmgr(RM_WTSMGR_ID, &wtsmgr_rmgr);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "wtsmgr", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "wtsmgr_announcer_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "wtsmgr announcer", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "wtsmgr announcer", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}
