/*-------------------------------------------------------------------------
 *
 * wtsmgr_registry.c
 *	  The tablespace registry: what wtsmgr knows about each tablespace, in
 *	  shared memory.
 *
 * This file owns the shared table of tablespaces, its lock and its size
 * (wtsmgr.max_tablespaces), and decides when a tablespace is probed
 * (wtsmgr_statx.c does the probing): the postmaster probes every tablespace
 * at startup, before recovery runs; a tablespace created later is probed on
 * first use; any can be probed again on demand.  No other file sees an
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

#include "catalog/pg_tablespace_d.h"
#include "common/file_utils.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "wtsmgr_registry.h"

struct WtsmgrTablespace
{
	Oid			spcoid;
	pg_atomic_uint32 state;		/* a WtsmgrTablespaceState */

	/*
	 * Set once a probe has found the tablespace untorn, and never cleared
	 * while the server runs: from then on every write there is atomic, even
	 * if a later probe disagrees, because pages whose images were left out
	 * must never be written otherwise (see wtsmgr_fpi.c).  The one exception
	 * is a tablespace dropped and created again under the same OID, in
	 * another directory: none of the old one's pages is left to write.
	 */
	pg_atomic_uint32 atomic_path;

	/* a WtsmgrFpiDecision, published by the announcer (wtsmgr_fpi.c) */
	pg_atomic_uint32 decision;

	/*
	 * The redo pointer whose checkpoint cycle the latest announcement of this
	 * tablespace covers (wtsmgr_fpi.c); 0 for none.
	 */
	pg_atomic_uint64 announced_redo;

	/* set when replayed WAL lacked images although we are not untorn */
	pg_atomic_uint32 replay_unsafe;

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
 * the table.
 */
void
wtsmgr_registry_init(void)
{
	DefineCustomIntVariable("wtsmgr.max_tablespaces",
							"Number of tablespaces wtsmgr tracks.",
							"Tablespaces beyond it, pg_default and pg_global included, keep their full-page images and are written by md.c.",
							&max_tablespaces,
							256, 2, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
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
 * wtsmgr_ts_writes_atomically() -- Are this tablespace's blocks written with
 * atomic writes?  Yes once a probe has found it untorn, until the server
 * stops, whatever later probes say (see atomic_path).  The write path and
 * the views both ask this.
 */
bool
wtsmgr_ts_writes_atomically(WtsmgrTablespace *ts)
{
	return ts != NULL && pg_atomic_read_u32(&ts->atomic_path) != 0;
}

uint32
wtsmgr_ts_decision(WtsmgrTablespace *ts)
{
	return pg_atomic_read_u32(&ts->decision);
}

void
wtsmgr_ts_set_decision(WtsmgrTablespace *ts, uint32 decision)
{
	pg_atomic_write_u32(&ts->decision, decision);
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
 * wtsmgr_ts_note_replay_unsafe() -- Remember that replayed WAL lacked images
 * of this tablespace although its blocks may tear here.  Returns true the
 * first time, so that the caller warns once.
 */
bool
wtsmgr_ts_note_replay_unsafe(WtsmgrTablespace *ts)
{
	return pg_atomic_exchange_u32(&ts->replay_unsafe, 1) == 0;
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
	info->atomic_path = pg_atomic_read_u32(&ts->atomic_path) != 0;
	info->replay_unsafe = pg_atomic_read_u32(&ts->replay_unsafe) != 0;
	info->probe = ts->probe;
	LWLockRelease(Registry->lock);
}

/*
 * Store a probe's result in a tablespace's entry, which is made if ts is
 * NULL.  The caller holds the lock exclusively, or is the postmaster before
 * any other process exists.  Returns the entry, or NULL if there is no room
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
					 errdetail("wtsmgr tracks at most %d tablespaces. The tablespace keeps its full-page images.",
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
		pg_atomic_write_u32(&ts->atomic_path, 0);
		pg_atomic_write_u32(&ts->replay_unsafe, 0);
	}

	ts->probe = *probe;
	if (result->untorn)
	{
		/* from now on, every write there is atomic: see wtsmgr_fpi.c */
		pg_atomic_write_u32(&ts->atomic_path, 1);
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
				(errmsg("wtsmgr: tablespace %u (\"%s\"): blocks are written untorn",
						spcoid, dir),
				 errdetail("%s", result->reason)));
	else
		ereport(LOG,
				(errmsg("wtsmgr: tablespace %u (\"%s\"): blocks may tear; full-page images are kept",
						spcoid, dir),
				 errdetail("%s", result->reason)));

	return ts;
}

/*
 * Probe a tablespace and publish the result, from the postmaster before any
 * other process exists.
 */
static void
store_probe(Oid spcoid)
{
	WtsmgrProbe probe;

	wtsmgr_remove_stale_probe_files(spcoid);
	wtsmgr_probe_tablespace(spcoid, &probe);
	(void) publish_probe(spcoid, NULL, &probe);
}

/*
 * Probe pg_default, pg_global and every tablespace in pg_tblspc.
 */
static void
probe_all_tablespaces(void)
{
	DIR		   *dir;
	struct dirent *de;

	store_probe(DEFAULTTABLESPACE_OID);
	store_probe(GLOBALTABLESPACE_OID);

	dir = AllocateDir(PG_TBLSPC_DIR);
	while ((de = ReadDir(dir, PG_TBLSPC_DIR)) != NULL)
	{
		char	   *end;
		unsigned long oid;

		errno = 0;
		oid = strtoul(de->d_name, &end, 10);
		if (errno != 0 || *end != '\0' || end == de->d_name ||
			oid == InvalidOid || oid > PG_UINT32_MAX)
			continue;
		store_probe((Oid) oid);
	}
	FreeDir(dir);
}

/*
 * wtsmgr_registry_shmem_startup() -- Create or attach to the table.
 *
 * Whoever creates it probes the tablespaces: the postmaster, at startup and
 * after a crash, before the startup process runs recovery, or a single-user
 * backend.  No other process exists yet.
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
			pg_atomic_init_u32(&ts->atomic_path, 0);
			pg_atomic_init_u32(&ts->decision, 0);
			pg_atomic_init_u64(&ts->announced_redo, InvalidXLogRecPtr);
			pg_atomic_init_u32(&ts->replay_unsafe, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);

	if (!found)
		probe_all_tablespaces();
}

/*
 * wtsmgr_get_tablespace() -- The entry for a tablespace, probing it first if
 * it is new.  With verify, a known tablespace whose directory is not the one
 * it was probed in (dropped, and another created with its OID) is probed
 * again.  Must not be called in a critical section.
 */
WtsmgrTablespace *
wtsmgr_get_tablespace(Oid spcoid, bool verify)
{
	static bool warned_full = false;
	WtsmgrTablespace *ts = wtsmgr_find_tablespace(spcoid);
	WtsmgrProbe probe;

	if (Registry == NULL)
		return NULL;
	if (ts != NULL)
	{
		uint64		dev;
		uint64		ino;
		bool		same;

		if (!verify)
			return ts;
		wtsmgr_tablespace_dir_identity(spcoid, &dev, &ino);
		LWLockAcquire(Registry->lock, LW_SHARED);
		same = (ts->probe.dir_dev == dev && ts->probe.dir_ino == ino);
		LWLockRelease(Registry->lock);
		if (same || (dev == 0 && ino == 0))
			return ts;
		return wtsmgr_reprobe_tablespace(spcoid);
	}

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
					 errdetail("wtsmgr tracks at most %d tablespaces. The tablespace keeps its full-page images, and its blocks are written by md.c. This process does not say it again for this or other untracked tablespaces.",
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
