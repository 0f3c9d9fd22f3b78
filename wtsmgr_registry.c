/*-------------------------------------------------------------------------
 *
 * wtsmgr_registry.c
 *	  The tablespace registry: what wtsmgr knows about each tablespace, in
 *	  shared memory.
 *
 * This file owns the shared table of tablespaces, its lock and its size
 * (wtsmgr.max_tablespaces), and decides when a tablespace is probed
 * (wtsmgr_statx.c does the probing): on first use, by whichever process
 * needs it, or by the prober, a background worker that probes every
 * tablespace once the server starts; any can be probed again on demand.  No other file sees an
 * entry's layout.
 *
 * The lock protocol.  Entries are appended under the lock and never
 * removed, so a pointer to one stays valid; an entry is published by
 * incrementing ntablespaces after its OID is set.  The fields that the
 * full-page-image hook and the write path read in critical sections are
 * atomics, read without the lock by the wtsmgr_ts_*() accessors; the last
 * probe's findings are read and written under the lock only, and handed
 * out as copies (wtsmgr_ts_info()).
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr_registry.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dirent.h>

#include "access/xlog.h"
#include "catalog/pg_tablespace_d.h"
#include "common/file_utils.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "wtsmgr_registry.h"

struct WtsmgrTablespace
{
	Oid			spcoid;
	pg_atomic_uint32 state;		/* a WtsmgrTablespaceState */

	/*
	 * Set once a probe has found the tablespace untorn, or replayed WAL said
	 * that its images were left out, and never cleared while the server runs:
	 * from then on every write there is protected (atomic, or through the
	 * doublewrite area), even if a later probe disagrees, because pages whose
	 * images were left out must never be written otherwise (see
	 * wtsmgr_fpi.c).  The one exception is a tablespace dropped and created
	 * again under the same OID, in another directory: none of the old one's
	 * pages is left to write.  A WtsmgrProtection.
	 */
	pg_atomic_uint32 protected_path;

	/*
	 * Set when replay has met an announcement of the tablespace (see
	 * wtsmgr_fpi.c), and never cleared while the server runs.  In recovery,
	 * only that makes its writes protected.
	 */
	pg_atomic_uint32 replay_announced;

	/* set when the kernel broke its promise there: wtsmgr_ts_mark_torn() */
	pg_atomic_uint32 distrusted;

	/* the last write that took the way out: when, and why (see below) */
	pg_atomic_uint64 last_fallback;
	pg_atomic_uint32 fallback_cause;

	/* a WtsmgrFpiPolicy, published by the announcer (wtsmgr_fpi.c) */
	pg_atomic_uint32 policy;

	/*
	 * The redo pointer whose checkpoint cycle the latest announcement of this
	 * tablespace covers (wtsmgr_fpi.c); 0 for none.
	 */
	pg_atomic_uint64 announced_redo;

	WtsmgrProbe probe;			/* the last probe; under the lock */
};

typedef struct WtsmgrRegistry
{
	LWLock	   *lock;			/* protects the entries' probe fields */
	pg_atomic_uint32 ntablespaces;	/* published entries */
	/* wtsmgr.max_tablespaces entries */
	WtsmgrTablespace tablespaces[FLEXIBLE_ARRAY_MEMBER];
} WtsmgrRegistry;

/* wtsmgr.max_tablespaces */
static int	max_tablespaces = 256;

static WtsmgrRegistry *Registry = NULL;

/* told when an entry is published or probed again */
static void (*change_callback) (void) = NULL;

static Size
registry_size(void)
{
	return add_size(offsetof(WtsmgrRegistry, tablespaces),
					mul_size(max_tablespaces, sizeof(WtsmgrTablespace)));
}

/*
 * wtsmgr_registry_init() -- Called from _PG_init(): the setting that sizes
 * the table, and the prober.
 */
void
wtsmgr_registry_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("wtsmgr.max_tablespaces",
							"Number of tablespaces wtsmgr tracks.",
							"Tablespaces beyond it, pg_default and pg_global included, keep their full-page images and are written by md.c.",
							&max_tablespaces,
							256, 2, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_PostmasterStart;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "wtsmgr", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "wtsmgr_prober_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "wtsmgr prober", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "wtsmgr prober", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

void
wtsmgr_registry_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(registry_size()));
	RequestNamedLWLockTranche("wtsmgr", 1);
}

/*
 * wtsmgr_registry_on_change() -- Call callback whenever a tablespace is
 * published or probed again.  It must be safe in any process, outside
 * critical sections, with the registry's lock held.
 */
void
wtsmgr_registry_on_change(void (*callback) (void))
{
	change_callback = callback;
}

int
wtsmgr_registry_capacity(void)
{
	return max_tablespaces;
}

/*
 * wtsmgr_registry_count() -- The number of published entries; slots
 * [0, count) may be passed to wtsmgr_registry_entry().
 */
uint32
wtsmgr_registry_count(void)
{
	uint32		n;

	if (Registry == NULL)
		return 0;
	n = pg_atomic_read_u32(&Registry->ntablespaces);
	/* pairs with the write barrier in publish_probe() */
	pg_read_barrier();
	return n;
}

WtsmgrTablespace *
wtsmgr_registry_entry(uint32 slot)
{
	Assert(slot < pg_atomic_read_u32(&Registry->ntablespaces));
	return &Registry->tablespaces[slot];
}

/*
 * wtsmgr_find_tablespace() -- The entry for a tablespace, or NULL if it has
 * not been probed.  Takes no lock: safe in critical sections.
 */
WtsmgrTablespace *
wtsmgr_find_tablespace(Oid spcoid)
{
	uint32		n = wtsmgr_registry_count();

	for (uint32 i = 0; i < n; i++)
	{
		if (Registry->tablespaces[i].spcoid == spcoid)
			return &Registry->tablespaces[i];
	}
	return NULL;
}

Oid
wtsmgr_ts_oid(const WtsmgrTablespace *ts)
{
	return ts->spcoid;
}

uint32
wtsmgr_ts_slot(const WtsmgrTablespace *ts)
{
	return (uint32) (ts - Registry->tablespaces);
}

WtsmgrTablespaceState
wtsmgr_ts_state(WtsmgrTablespace *ts)
{
	return ts ? (WtsmgrTablespaceState) pg_atomic_read_u32(&ts->state) :
		WTSMGR_TS_UNPROBED;
}

/*
 * wtsmgr_ts_writes_protected() -- Are this tablespace's writes protected
 * against tearing (atomic, or through the doublewrite area)?  Yes once
 * replay has called wtsmgr_ts_set_protected(), until the server stops.
 * Outside recovery, also once a probe has found it untorn, whatever later
 * probes say (see protected_path).  In recovery, WAL before the first
 * announcement of a tablespace has all its images (wtsmgr_fpi.c), so its
 * blocks need no protection until replay meets one: a block torn by a
 * crash meanwhile is restored from its image when recovery starts over.
 * The write path and the views both ask this.
 */
bool
wtsmgr_ts_writes_protected(WtsmgrTablespace *ts)
{
	if (ts == NULL)
		return false;
	if (pg_atomic_read_u32(&ts->replay_announced) != 0)
		return true;
	if (RecoveryInProgress())
		return false;
	return pg_atomic_read_u32(&ts->protected_path) != WTSMGR_UNPROTECTED;
}

/*
 * wtsmgr_ts_set_protected() -- Replay has met an announcement of this
 * tablespace: protect every write there from now until the server stops.
 * Returns true the first time.
 */
bool
wtsmgr_ts_set_protected(WtsmgrTablespace *ts)
{
	uint32		expected = WTSMGR_UNPROTECTED;

	(void) pg_atomic_compare_exchange_u32(&ts->protected_path, &expected,
										  WTSMGR_PROTECTED_BY_REPLAY);
	return pg_atomic_exchange_u32(&ts->replay_announced, 1) == 0;
}

uint32
wtsmgr_ts_policy(WtsmgrTablespace *ts)
{
	return pg_atomic_read_u32(&ts->policy);
}

void
wtsmgr_ts_set_policy(WtsmgrTablespace *ts, uint32 policy)
{
	pg_atomic_write_u32(&ts->policy, policy);
}

XLogRecPtr
wtsmgr_ts_announced_redo(WtsmgrTablespace *ts)
{
	return (XLogRecPtr) pg_atomic_read_u64(&ts->announced_redo);
}

void
wtsmgr_ts_set_announced_redo(WtsmgrTablespace *ts, XLogRecPtr redo)
{
	pg_atomic_write_u64(&ts->announced_redo, (uint64) redo);
}

/*
 * wtsmgr_ts_atomic_distrusted() -- Must protected writes there go through
 * the doublewrite area, even where atomic writes seem possible?  See
 * wtsmgr_ts_mark_torn().
 */
bool
wtsmgr_ts_atomic_distrusted(WtsmgrTablespace *ts)
{
	return pg_atomic_read_u32(&ts->distrusted) != 0;
}

/*
 * wtsmgr_ts_note_fallback() -- Remember that a write there took the way out
 * (an atomic write was refused, or the file cannot take one), and why: an
 * errno, or a WTSMGR_FALLBACK_* code.  Returns the time of the one before, or
 * 0.  Lock-free.
 */
TimestampTz
wtsmgr_ts_note_fallback(WtsmgrTablespace *ts, int cause)
{
	pg_atomic_write_u32(&ts->fallback_cause, (uint32) cause);
	return (TimestampTz) pg_atomic_exchange_u64(&ts->last_fallback,
												(uint64) GetCurrentTimestamp());
}

/*
 * wtsmgr_ts_mark_torn() -- The kernel broke its promise of atomic writes
 * there (reason says how): the tablespace keeps its images from now on, as
 * if a probe had found it torn, and its writes stay protected, but no
 * longer by atomic writes (wtsmgr_ts_atomic_distrusted()) until a probe
 * finds it untorn again.
 */
void
wtsmgr_ts_mark_torn(WtsmgrTablespace *ts, const char *reason)
{
	LWLockAcquire(Registry->lock, LW_EXCLUSIVE);
	ts->probe.result.untorn = false;
	strlcpy(ts->probe.result.reason, reason, sizeof(ts->probe.result.reason));
	pg_atomic_write_u32(&ts->distrusted, 1);
	pg_atomic_write_u32(&ts->state, WTSMGR_TS_TORN);
	pg_atomic_write_u64(&ts->announced_redo, InvalidXLogRecPtr);
	if (change_callback)
		change_callback();
	LWLockRelease(Registry->lock);
}

/*
 * wtsmgr_ts_info() -- Copy what the registry knows about a tablespace.
 */
void
wtsmgr_ts_info(WtsmgrTablespace *ts, WtsmgrTablespaceInfo *info)
{
	LWLockAcquire(Registry->lock, LW_SHARED);
	info->spcoid = ts->spcoid;
	info->state = (WtsmgrTablespaceState) pg_atomic_read_u32(&ts->state);
	info->protection = (WtsmgrProtection) pg_atomic_read_u32(&ts->protected_path);
	info->distrusted = pg_atomic_read_u32(&ts->distrusted) != 0;
	info->last_fallback = (TimestampTz) pg_atomic_read_u64(&ts->last_fallback);
	info->fallback_cause = (int) pg_atomic_read_u32(&ts->fallback_cause);
	info->probe = ts->probe;
	LWLockRelease(Registry->lock);
}

/*
 * Store a probe's result in a tablespace's entry, which is made if ts is
 * NULL.  The caller holds the lock exclusively.  Returns the entry, or NULL if there is no room
 * for another.
 */
static WtsmgrTablespace *
publish_probe(Oid spcoid, WtsmgrTablespace *ts, const WtsmgrProbe *probe)
{
	char		dir[MAXPGPATH];
	const WtsmgrProbeResult *result = &probe->result;
	bool		is_new = (ts == NULL);
	uint32		n = pg_atomic_read_u32(&Registry->ntablespaces);

	wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));

	if (is_new)
	{
		if (n >= max_tablespaces)
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("wtsmgr cannot track tablespace %u (\"%s\")",
							spcoid, dir),
					 errdetail("wtsmgr tracks at most %d tablespaces; the tablespace keeps its full-page images.",
							   max_tablespaces),
					 errhint("Raise wtsmgr.max_tablespaces and restart the server.")));
			return NULL;
		}
		ts = &Registry->tablespaces[n];
		ts->spcoid = spcoid;
	}
	else if (ts->probe.dir_dev != probe->dir_dev ||
			 ts->probe.dir_ino != probe->dir_ino)
	{
		/*
		 * Another directory under the same OID: the tablespace was dropped
		 * and a new one got its OID.  Nothing of the old one is left to be
		 * written, so the new one starts afresh, off the atomic path unless
		 * this probe puts it there.
		 */
		pg_atomic_write_u32(&ts->state, WTSMGR_TS_UNPROBED);
		pg_atomic_write_u64(&ts->announced_redo, InvalidXLogRecPtr);
		pg_write_barrier();
		pg_atomic_write_u32(&ts->protected_path, WTSMGR_UNPROTECTED);
		pg_atomic_write_u32(&ts->replay_announced, 0);
		pg_atomic_write_u32(&ts->distrusted, 0);
		pg_atomic_write_u64(&ts->last_fallback, 0);
		pg_atomic_write_u32(&ts->fallback_cause, 0);
	}

	ts->probe = *probe;
	if (result->untorn)
	{
		/* from now on, every write there is protected: see wtsmgr_fpi.c */
		pg_atomic_write_u32(&ts->protected_path, WTSMGR_PROTECTED_BY_PROBE);
		pg_atomic_write_u32(&ts->distrusted, 0);
		pg_write_barrier();
		pg_atomic_write_u32(&ts->state, WTSMGR_TS_UNTORN);
	}
	else
	{
		/* images come back at once; the WAL announces again if need be */
		pg_atomic_write_u32(&ts->state, WTSMGR_TS_TORN);
		pg_atomic_write_u64(&ts->announced_redo, InvalidXLogRecPtr);
	}

	if (is_new)
	{
		/* publish the entry only once it is filled in */
		pg_write_barrier();
		pg_atomic_write_u32(&Registry->ntablespaces, n + 1);
	}

	if (change_callback)
		change_callback();

	if (result->untorn)
		ereport(LOG,
				(errmsg("blocks of tablespace %u (\"%s\") are written untorn",
						spcoid, dir),
				 errdetail("The probe reported: %s.", result->reason)));
	else
		ereport(LOG,
				(errmsg("blocks of tablespace %u (\"%s\") may tear; its full-page images are kept",
						spcoid, dir),
				 errdetail("The probe reported: %s.", result->reason)));

	return ts;
}

/*
 * The prober: a background worker that probes pg_default, pg_global and
 * every tablespace in pg_tblspc once the server starts, and exits.
 *
 * Probes write and fsync a file in each tablespace, and a tablespace whose
 * filesystem hangs must not stop the server from starting; so the
 * postmaster probes nothing itself, and neither does the startup process
 * ahead of recovery.  A tablespace is probed by whichever process needs it
 * first (wtsmgr_enter_tablespace()): the prober, a process writing to it,
 * or the startup process replaying WAL that says its images were left out
 * (wtsmgr_fpi.c), which is all crash recovery needs.  After a crash restart
 * the prober does not run again; its probes of the tablespaces in use are
 * made on first use.
 */
PGDLLEXPORT void wtsmgr_prober_main(Datum main_arg);

void
wtsmgr_prober_main(Datum main_arg)
{
	DIR		   *dir;
	struct dirent *de;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	(void) wtsmgr_enter_tablespace(DEFAULTTABLESPACE_OID);
	(void) wtsmgr_enter_tablespace(GLOBALTABLESPACE_OID);

	dir = AllocateDir(PG_TBLSPC_DIR);
	while ((de = ReadDir(dir, PG_TBLSPC_DIR)) != NULL)
	{
		char	   *end;
		unsigned long oid;

		CHECK_FOR_INTERRUPTS();
		errno = 0;
		oid = strtoul(de->d_name, &end, 10);
		if (errno != 0 || *end != '\0' || end == de->d_name ||
			oid == InvalidOid || oid > PG_UINT32_MAX)
			continue;
		(void) wtsmgr_enter_tablespace((Oid) oid);
	}
	FreeDir(dir);
	proc_exit(0);
}

/*
 * wtsmgr_registry_shmem_startup() -- Create or attach to the table, empty:
 * see wtsmgr_prober_main() for who probes.
 */
void
wtsmgr_registry_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Registry = ShmemInitStruct("wtsmgr tablespaces", registry_size(), &found);
	if (!found)
	{
		memset(Registry, 0, registry_size());
		Registry->lock = &(GetNamedLWLockTranche("wtsmgr"))->lock;
		pg_atomic_init_u32(&Registry->ntablespaces, 0);
		for (int t = 0; t < max_tablespaces; t++)
		{
			WtsmgrTablespace *ts = &Registry->tablespaces[t];

			pg_atomic_init_u32(&ts->state, WTSMGR_TS_UNPROBED);
			pg_atomic_init_u32(&ts->protected_path, WTSMGR_UNPROTECTED);
			pg_atomic_init_u32(&ts->replay_announced, 0);
			pg_atomic_init_u32(&ts->distrusted, 0);
			pg_atomic_init_u64(&ts->last_fallback, 0);
			pg_atomic_init_u32(&ts->fallback_cause, 0);
			pg_atomic_init_u32(&ts->policy, 0);
			pg_atomic_init_u64(&ts->announced_redo, InvalidXLogRecPtr);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * wtsmgr_recheck_tablespace() -- The entry for a tablespace, as
 * wtsmgr_enter_tablespace() gives it, but a known tablespace whose directory
 * is not the one it was probed in (dropped, and another created with its
 * OID) is probed again first.  Must not be called in a critical section.
 */
WtsmgrTablespace *
wtsmgr_recheck_tablespace(Oid spcoid)
{
	WtsmgrTablespace *ts = wtsmgr_find_tablespace(spcoid);
	uint64		dev;
	uint64		ino;
	bool		same;

	if (ts == NULL)
		return wtsmgr_enter_tablespace(spcoid);

	wtsmgr_tablespace_dir_identity(spcoid, &dev, &ino);
	LWLockAcquire(Registry->lock, LW_SHARED);
	same = (ts->probe.dir_dev == dev && ts->probe.dir_ino == ino);
	LWLockRelease(Registry->lock);
	if (same || (dev == 0 && ino == 0))
		return ts;
	return wtsmgr_reprobe_tablespace(spcoid);
}

/*
 * wtsmgr_enter_tablespace() -- The entry for a tablespace, entering it if it
 * is new: that probes it, which writes and fsyncs a file in its directory.
 * Returns NULL if the tablespace is new and the table is full.  Must not be
 * called in a critical section.
 */
WtsmgrTablespace *
wtsmgr_enter_tablespace(Oid spcoid)
{
	static bool warned_full = false;
	WtsmgrTablespace *ts = wtsmgr_find_tablespace(spcoid);
	WtsmgrProbe probe;

	if (Registry == NULL || ts != NULL)
		return ts;

	/*
	 * Entries are never removed, so once every one is taken no tablespace can
	 * get one: answer without the lock, which every write of a relation there
	 * would otherwise take exclusively, and warn once per process rather than
	 * at every write.
	 */
	if (pg_atomic_read_u32(&Registry->ntablespaces) >= max_tablespaces)
	{
		if (!warned_full)
		{
			char		dir[MAXPGPATH];

			warned_full = true;
			wtsmgr_tablespace_dir(spcoid, dir, sizeof(dir));
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("wtsmgr cannot track tablespace %u (\"%s\")",
							spcoid, dir),
					 errdetail("wtsmgr tracks at most %d tablespaces; the tablespace keeps its full-page images. This process does not say so again.",
							   max_tablespaces),
					 errhint("Raise wtsmgr.max_tablespaces and restart the server.")));
		}
		return NULL;
	}

	/*
	 * Probe without the lock, so that a slow filesystem stalls only us; if
	 * another process published the tablespace meanwhile, its probe wins.
	 */
	Assert(CritSectionCount == 0);
	wtsmgr_probe_tablespace(spcoid, &probe);
	LWLockAcquire(Registry->lock, LW_EXCLUSIVE);
	ts = wtsmgr_find_tablespace(spcoid);
	if (ts == NULL)
		ts = publish_probe(spcoid, NULL, &probe);
	LWLockRelease(Registry->lock);

	return ts;
}

/*
 * wtsmgr_reprobe_tablespace() -- Probe a tablespace again, without holding
 * the lock while the probe does its I/O.  Returns NULL if the tablespace is
 * new and the table is full.
 */
WtsmgrTablespace *
wtsmgr_reprobe_tablespace(Oid spcoid)
{
	WtsmgrTablespace *ts;
	WtsmgrProbe probe;

	wtsmgr_probe_tablespace(spcoid, &probe);
	LWLockAcquire(Registry->lock, LW_EXCLUSIVE);
	ts = publish_probe(spcoid, wtsmgr_find_tablespace(spcoid), &probe);
	LWLockRelease(Registry->lock);

	return ts;
}
