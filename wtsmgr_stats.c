/*-------------------------------------------------------------------------
 *
 * wtsmgr_stats.c
 *	  wtsmgr's counters, as a custom kind of cumulative statistics.
 *
 * This file owns what wtsmgr counts: the calls its storage manager receives,
 * its writes, and the full-page images it leaves out, per tablespace.  They
 * are a variable-numbered kind of the cumulative statistics system
 * (pgstat_register_kind()), keyed by tablespace OID, so they are flushed
 * like pg_stat_io's, kept across a clean restart (written to the stats file
 * at shutdown, discarded after a crash) and reset with wtsmgr_stat_reset().
 *
 * Counting happens where the I/O is, in critical sections too (the image
 * decision runs inside XLogInsert()), so it only adds to this process's
 * pending counters, one set per registry slot.  They reach shared memory in
 * pgstat_report_stat() through our flush_static_cb, as a backend goes idle
 * or exits.  The checkpointer, the background writer and the startup
 * process never call pgstat_report_stat() while they run, so the write path
 * flushes for them (wtsmgr_stats_flush_if_due()): the checkpointer and the
 * startup process at most once a second, and again from the storage
 * manager's close callback after every checkpoint (CheckpointerMain() closes
 * every relation before it reports the checkpoint done); the background
 * writer, which writes a few blocks a round and then may sleep for long,
 * after every write.
 *
 * Images left out are counted once per WAL record.  The core asks the hook
 * about a block each time it assembles a record, again when it assembles
 * the record anew (XLogInsertRecord() sends it back when the redo pointer
 * moved), and also when pruning asks whether changing a page would take an
 * image (XLogCheckBufferNeedsBackup()), so the answers are held as questions
 * until this process inserts a record: a record holds each block once, so
 * a question about a block already asked starts the questions afresh, and
 * once ProcLastRecPtr has moved, the record that was inserted is the one
 * the questions were about.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlogrecord.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/pgstat_internal.h"
#include "utils/timestamp.h"

#include "wtsmgr_stats.h"

/*
 * wtsmgr's kind of cumulative statistics.  The id must not collide with
 * another extension's in the same cluster; see
 * https://wiki.postgresql.org/wiki/CustomCumulativeStats.
 */
#define PGSTAT_KIND_WTSMGR 29

/* How often processes that never report flush for themselves, ms */
#define WTSMGR_STATS_FLUSH_INTERVAL 1000

/* A tablespace's entry in the shared statistics */
typedef struct WtsmgrStatsShared
{
	PgStatShared_Common header;
	WtsmgrStats stats;
} WtsmgrStatsShared;

/* This process's counts for one registry slot, not flushed yet */
typedef struct PendingStats
{
	bool		dirty;
	PgStat_Counter counters[WTSMGR_NUM_STATS];
} PendingStats;

/* A question of the image decision, not yet known to be in a record */
typedef struct ImageQuestion
{
	RelFileLocator rlocator;
	ForkNumber	forknum;
	BlockNumber blkno;
	uint32		slot;
	bool		omitted;
} ImageQuestion;

static bool flush_pending(bool nowait);
static void reset_timestamp_cb(PgStatShared_Common *header, TimestampTz ts);

static const PgStat_KindInfo wtsmgr_stats_kind = {
	.name = "wtsmgr",
	.fixed_amount = false,
	/* tablespaces belong to no database */
	.accessed_across_databases = true,
	.write_to_file = true,

	.shared_size = sizeof(WtsmgrStatsShared),
	.shared_data_off = offsetof(WtsmgrStatsShared, stats),
	.shared_data_len = sizeof(((WtsmgrStatsShared *) 0)->stats),
	.pending_size = 0,			/* pending counts live in pending[] */

	.flush_static_cb = flush_pending,
	.reset_timestamp_cb = reset_timestamp_cb,
};

/* pending counts, indexed by registry slot; NULL where nothing was counted */
static PendingStats **pending = NULL;
static MemoryContext pending_cxt = NULL;
static bool have_pending = false;
static TimestampTz last_flush = 0;

/* questions asked since this process last inserted a record */
static ImageQuestion questions[XLR_MAX_BLOCK_ID + 1];
static int	nquestions = 0;
static XLogRecPtr questions_after = InvalidXLogRecPtr;

/*
 * wtsmgr_stats_init() -- Called from _PG_init().
 */
void
wtsmgr_stats_init(void)
{
	pgstat_register_kind(PGSTAT_KIND_WTSMGR, &wtsmgr_stats_kind);
}

/*
 * wtsmgr_stats_backend_init() -- Called when a process initializes its
 * storage managers.  Counting before that (the postmaster's probes at
 * startup) counts nothing.
 */
void
wtsmgr_stats_backend_init(void)
{
	/*
	 * The first count for a tablespace may happen in a critical section, so
	 * its pending counters may be allocated there: a few hundred bytes, once
	 * per tablespace and process.
	 */
	pending_cxt = AllocSetContextCreate(TopMemoryContext,
										"wtsmgr pending statistics",
										ALLOCSET_SMALL_SIZES);
	MemoryContextAllowInCriticalSection(pending_cxt, true);
	pending = MemoryContextAllocZero(pending_cxt,
									 sizeof(PendingStats *) *
									 wtsmgr_registry_capacity());
}

static PendingStats *
pending_for(uint32 slot)
{
	if (pending[slot] == NULL)
		pending[slot] = MemoryContextAllocZero(pending_cxt,
											   sizeof(PendingStats));
	return pending[slot];
}

static void
count_slot(uint32 slot, WtsmgrStat stat, uint64 n)
{
	PendingStats *p = pending_for(slot);

	p->counters[stat] += (PgStat_Counter) n;
	p->dirty = true;
	have_pending = true;
	/* makes pgstat_report_stat() call flush_pending() */
	pgstat_report_fixed = true;
}

/*
 * wtsmgr_stat_count() -- Add n to a counter of a tablespace.  Counts for a
 * tablespace the registry does not track are dropped.
 */
void
wtsmgr_stat_count(WtsmgrTablespace *ts, WtsmgrStat stat, uint64 n)
{
	if (ts == NULL || pending == NULL || n == 0)
		return;
	count_slot(wtsmgr_ts_slot(ts), stat, n);
}

/*
 * Count the images left out of the record this process inserted since the
 * questions were asked, if it did insert one.
 */
static void
settle_image_questions(void)
{
	if (nquestions == 0 || ProcLastRecPtr == questions_after)
		return;
	for (int i = 0; i < nquestions; i++)
	{
		if (questions[i].omitted)
			count_slot(questions[i].slot, WTSMGR_STAT_FPI_SKIPPED, 1);
	}
	nquestions = 0;
}

/*
 * wtsmgr_stat_image_question() -- The image decision was asked whether the
 * image of a block in tablespace ts may be left out, and answered omitted.
 * Counted once the record is inserted; see the file header.
 */
void
wtsmgr_stat_image_question(WtsmgrTablespace *ts, const RelFileLocator *rlocator,
						   ForkNumber forknum, BlockNumber blkno, bool omitted)
{
	ImageQuestion *q;

	if (ts == NULL || pending == NULL)
		return;

	settle_image_questions();

	/* asked again: the record is being assembled anew, or for real */
	for (int i = 0; i < nquestions; i++)
	{
		if (questions[i].blkno == blkno && questions[i].forknum == forknum &&
			RelFileLocatorEquals(questions[i].rlocator, *rlocator))
		{
			nquestions = 0;
			break;
		}
	}
	/* cannot happen: a record has at most XLR_MAX_BLOCK_ID + 1 blocks */
	if (nquestions == lengthof(questions))
		nquestions = 0;

	q = &questions[nquestions++];
	q->rlocator = *rlocator;
	q->forknum = forknum;
	q->blkno = blkno;
	q->slot = wtsmgr_ts_slot(ts);
	q->omitted = omitted;
	questions_after = ProcLastRecPtr;
}

/*
 * Add this process's pending counts to the shared statistics.  Returns true
 * if some could not be, because nowait was given and an entry was locked:
 * they stay pending.  pgstat_report_stat() calls this as our kind's
 * flush_static_cb.
 */
static bool
flush_pending(bool nowait)
{
	uint32		n;
	bool		partial = false;

	settle_image_questions();
	if (!have_pending)
		return false;

	have_pending = false;
	n = wtsmgr_registry_count();
	for (uint32 slot = 0; slot < n; slot++)
	{
		PendingStats *p = pending[slot];
		PgStat_EntryRef *entry_ref;
		WtsmgrStatsShared *shared;

		if (p == NULL || !p->dirty)
			continue;

		entry_ref = pgstat_get_entry_ref_locked(PGSTAT_KIND_WTSMGR, InvalidOid,
												wtsmgr_ts_oid(wtsmgr_registry_entry(slot)),
												nowait);
		if (entry_ref == NULL)
		{
			partial = true;
			have_pending = true;
			continue;
		}
		shared = (WtsmgrStatsShared *) entry_ref->shared_stats;
		for (int c = 0; c < WTSMGR_NUM_STATS; c++)
			shared->stats.counters[c] += p->counters[c];
		pgstat_unlock_entry(entry_ref);

		memset(p, 0, sizeof(PendingStats));
	}
	last_flush = GetCurrentTimestamp();
	return partial;
}

/*
 * wtsmgr_stats_flush_if_due() -- Flush for processes that never call
 * pgstat_report_stat() while they run (see the file header), or now if
 * force.  Others flush when they report.  Never in a critical section, nor
 * while the process exits (pgstat_report_stat() has flushed then).
 */
void
wtsmgr_stats_flush_if_due(bool force)
{
	if (!have_pending || CritSectionCount > 0 || proc_exit_inprogress)
		return;
	if (MyBackendType != B_CHECKPOINTER &&
		MyBackendType != B_BG_WRITER &&
		MyBackendType != B_STARTUP)
		return;

	if (!force && MyBackendType != B_BG_WRITER)
	{
		if (!TimestampDifferenceExceeds(last_flush, GetCurrentTimestamp(),
										WTSMGR_STATS_FLUSH_INTERVAL))
			return;
	}
	(void) flush_pending(!force);
}

/*
 * wtsmgr_stats_fetch() -- The statistics of a tablespace, zeros if it has
 * none yet.
 */
void
wtsmgr_stats_fetch(Oid spcoid, WtsmgrStats *stats)
{
	WtsmgrStats *found;

	found = (WtsmgrStats *) pgstat_fetch_entry(PGSTAT_KIND_WTSMGR, InvalidOid,
											   spcoid);
	if (found != NULL)
		*stats = *found;
	else
		memset(stats, 0, sizeof(WtsmgrStats));
}

static void
reset_timestamp_cb(PgStatShared_Common *header, TimestampTz ts)
{
	((WtsmgrStatsShared *) header)->stats.stat_reset_timestamp = ts;
}

/*
 * wtsmgr_stats_reset() -- Set every tablespace's counters to zero.
 */
void
wtsmgr_stats_reset(void)
{
	pgstat_reset_of_kind(PGSTAT_KIND_WTSMGR);
}
