/*-------------------------------------------------------------------------
 *
 * wtsmgr_registry.h
 *	  The tablespaces wtsmgr knows about, in shared memory.
 *
 * Depends on wtsmgr_statx.h only.  The entry's layout is private to
 * wtsmgr_registry.c; everyone else goes through the accessors below.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_REGISTRY_H
#define WTSMGR_REGISTRY_H

#include "access/xlogdefs.h"

#include "wtsmgr_statx.h"

/* A tracked tablespace; opaque outside wtsmgr_registry.c */
typedef struct WtsmgrTablespace WtsmgrTablespace;

/* What the probes found about a tablespace */
typedef enum WtsmgrTablespaceState
{
	WTSMGR_TS_UNPROBED = 0,		/* not probed yet: keeps images */
	WTSMGR_TS_TORN,				/* probed: blocks may tear */
	WTSMGR_TS_UNTORN,			/* probed: BLCKSZ writes are untorn */
} WtsmgrTablespaceState;

/*
 * Why writes took the way out (wtsmgr_ts_note_fallback()): an errno of a
 * refused atomic write, or one of these.
 */
#define WTSMGR_FALLBACK_SHORT (-1)	/* an atomic write completed short */
#define WTSMGR_FALLBACK_FILE (-2)	/* the file cannot take atomic writes */

/* Why a tablespace's writes are protected: see wtsmgr_ts_writes_protected() */
typedef enum WtsmgrProtection
{
	WTSMGR_UNPROTECTED = 0,		/* md.c writes them */
	WTSMGR_PROTECTED_BY_PROBE,	/* a probe found the tablespace untorn */
	WTSMGR_PROTECTED_BY_REPLAY, /* replayed WAL lacks its images, and no probe
								 * found it untorn */
} WtsmgrProtection;

/* A consistent copy of a tablespace's entry, for reports */
typedef struct WtsmgrTablespaceInfo
{
	Oid			spcoid;
	WtsmgrTablespaceState state;
	WtsmgrProtection protection;	/* see wtsmgr_ts_writes_protected() */
	bool		distrusted;		/* see wtsmgr_ts_atomic_distrusted() */
	TimestampTz last_fallback;	/* see wtsmgr_ts_note_fallback(); 0: never */
	int			fallback_cause; /* ... an errno or WTSMGR_FALLBACK_* */
	WtsmgrProbe probe;			/* the last probe; zeros if unprobed */
} WtsmgrTablespaceInfo;

/* set up, from _PG_init() and the shared memory hooks */
extern void wtsmgr_registry_init(void);
extern void wtsmgr_registry_shmem_request(void);
extern void wtsmgr_registry_shmem_startup(void);
extern void wtsmgr_registry_on_change(void (*callback) (void));

/* finding entries, without I/O: safe in critical sections */
extern int	wtsmgr_registry_capacity(void);
extern uint32 wtsmgr_registry_count(void);
extern WtsmgrTablespace *wtsmgr_registry_entry(uint32 slot);
extern WtsmgrTablespace *wtsmgr_find_tablespace(Oid spcoid);

/* entering and probing tablespaces: these write a probe file */
extern WtsmgrTablespace *wtsmgr_enter_tablespace(Oid spcoid);
extern WtsmgrTablespace *wtsmgr_recheck_tablespace(Oid spcoid);
extern WtsmgrTablespace *wtsmgr_reprobe_tablespace(Oid spcoid);

/* reading an entry: lock-free, safe in critical sections */
extern Oid	wtsmgr_ts_oid(const WtsmgrTablespace *ts);
extern uint32 wtsmgr_ts_slot(const WtsmgrTablespace *ts);
extern WtsmgrTablespaceState wtsmgr_ts_state(WtsmgrTablespace *ts);
extern bool wtsmgr_ts_writes_protected(WtsmgrTablespace *ts);
extern bool wtsmgr_ts_atomic_distrusted(WtsmgrTablespace *ts);
extern uint32 wtsmgr_ts_policy(WtsmgrTablespace *ts);
extern XLogRecPtr wtsmgr_ts_announced_redo(WtsmgrTablespace *ts);

/* reading an entry under the lock */
extern void wtsmgr_ts_info(WtsmgrTablespace *ts, WtsmgrTablespaceInfo *info);

/* what the image decision (wtsmgr_fpi.c) keeps per tablespace */
extern void wtsmgr_ts_set_policy(WtsmgrTablespace *ts, uint32 policy);
extern void wtsmgr_ts_set_announced_redo(WtsmgrTablespace *ts,
										 XLogRecPtr redo);

/* what the write path and replay change */
extern bool wtsmgr_ts_set_protected(WtsmgrTablespace *ts);
extern TimestampTz wtsmgr_ts_note_fallback(WtsmgrTablespace *ts, int cause);
extern void wtsmgr_ts_mark_torn(WtsmgrTablespace *ts, const char *reason);

#endif							/* WTSMGR_REGISTRY_H */
