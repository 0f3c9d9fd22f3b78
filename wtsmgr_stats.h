/*-------------------------------------------------------------------------
 *
 * wtsmgr_stats.h
 *	  wtsmgr's cumulative statistics, per tablespace.
 *
 * Depends on wtsmgr_registry.h.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_STATS_H
#define WTSMGR_STATS_H

#include "common/relpath.h"
#include "pgstat.h"
#include "storage/relfilelocator.h"

#include "wtsmgr_registry.h"

/*
 * What is counted per tablespace.  The order is the order of the columns of
 * wtsmgr_smgr_counters and wtsmgr_stat_io (wtsmgr--1.0.sql).
 */
typedef enum WtsmgrStat
{
	/* calls the storage manager received: wtsmgr_smgr_counters */
	WTSMGR_STAT_OPENS,			/* SMgrRelations opened */
	WTSMGR_STAT_CREATES,		/* forks created */
	WTSMGR_STAT_UNLINKS,		/* forks unlinked */
	WTSMGR_STAT_WRITEV_CALLS,	/* smgr_writev calls */
	WTSMGR_STAT_WRITEV_BLOCKS,	/* blocks written by smgr_writev */
	WTSMGR_STAT_EXTEND_BLOCKS,	/* blocks added by smgr_extend */
	WTSMGR_STAT_ZEROEXTEND_BLOCKS,	/* blocks added by smgr_zeroextend */
	WTSMGR_STAT_TRUNCATES,		/* forks truncated */

	/* I/O: wtsmgr_stat_io */
	WTSMGR_STAT_WRITES,			/* blocks written by writev */
	WTSMGR_STAT_WRITE_BYTES,	/* bytes written by writev and extend */
	WTSMGR_STAT_EXTENDS,		/* blocks added by extend and zeroextend */
	WTSMGR_STAT_ATOMIC_WRITES,	/* blocks written with RWF_ATOMIC */
	WTSMGR_STAT_ATOMIC_UNITS,	/* atomic units written */
	WTSMGR_STAT_BATCHES,		/* runs cut into more than one unit */
	WTSMGR_STAT_FPI_SKIPPED,	/* full-page images left out of records */
	WTSMGR_STAT_REFUSALS,		/* atomic writes refused, or written short */
	WTSMGR_STAT_ERRORS,			/* writes that failed */
	WTSMGR_STAT_NONATOMIC_FILES,	/* files whose statx denied atomic writes */
	WTSMGR_STAT_DOUBLEWRITES,	/* blocks written through the doublewrite area */
} WtsmgrStat;

#define WTSMGR_NUM_SMGR_STATS (WTSMGR_STAT_TRUNCATES + 1)
#define WTSMGR_FIRST_IO_STAT WTSMGR_STAT_WRITES
#define WTSMGR_LAST_STAT WTSMGR_STAT_DOUBLEWRITES
#define WTSMGR_NUM_IO_STATS (WTSMGR_LAST_STAT - WTSMGR_FIRST_IO_STAT + 1)
#define WTSMGR_NUM_STATS (WTSMGR_LAST_STAT + 1)

/* The statistics of one tablespace, as the views show them */
typedef struct WtsmgrStats
{
	PgStat_Counter counters[WTSMGR_NUM_STATS];
	TimestampTz stat_reset_timestamp;	/* 0 if never reset */
} WtsmgrStats;

extern void wtsmgr_stats_init(void);
extern void wtsmgr_stats_backend_init(void);

/* counting: no locks, no errors, safe in critical sections */
extern void wtsmgr_stat_count(WtsmgrTablespace *ts, WtsmgrStat stat,
							  uint64 n);
extern void wtsmgr_stat_image_question(WtsmgrTablespace *ts,
									   const RelFileLocator *rlocator,
									   ForkNumber forknum, BlockNumber blkno,
									   bool omitted);
extern void wtsmgr_stats_flush_if_due(bool force);

/* reading and resetting */
extern void wtsmgr_stats_fetch(Oid spcoid, WtsmgrStats *stats);
extern void wtsmgr_stats_reset(void);

#endif							/* WTSMGR_STATS_H */
