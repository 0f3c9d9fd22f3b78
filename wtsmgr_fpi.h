/*-------------------------------------------------------------------------
 *
 * wtsmgr_fpi.h
 *	  Leaving full-page images out for blocks that are written untorn.
 *
 * Depends on wtsmgr_registry.h and wtsmgr_stats.h.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef WTSMGR_FPI_H
#define WTSMGR_FPI_H

#include "wtsmgr_registry.h"

/*
 * What happens to the full-page images of a tablespace's blocks, and why:
 * the answer of wtsmgr_fpi_decide().  Every value but WTSMGR_FPI_SKIPPED
 * keeps the images (or has none to keep); wtsmgr_fpi_decision_text() gives
 * the words the views show.  WTSMGR_FPI_SKIPPED is deliberately not zero, so
 * that a value nobody set never reads as "skipped".
 */
typedef enum WtsmgrFpiDecision
{
	WTSMGR_FPI_KEPT_NOT_PROBED = 0, /* not tracked or not probed yet */
	WTSMGR_FPI_KEPT_MAY_TEAR,	/* probed torn, or the kernel broke its word */
	WTSMGR_FPI_KEPT_LISTED,		/* in wtsmgr.keep_full_page_images_tablespaces */
	WTSMGR_FPI_KEPT_DROPPED,	/* dropped: its directory is gone */
	WTSMGR_FPI_KEPT_UNRESOLVED, /* the keep-list cannot be looked up */
	WTSMGR_FPI_KEPT_SWITCHED_OFF,	/* wtsmgr.skip_full_page_images is off */
	WTSMGR_FPI_KEPT_UNDECIDED,	/* the announcer has not decided yet */
	WTSMGR_FPI_KEPT_BACKUP,		/* a base backup runs */
	WTSMGR_FPI_KEPT_UNANNOUNCED,	/* no announcement for this redo pointer */
	WTSMGR_FPI_NONE_FPW_OFF,	/* full_page_writes is off: no images at all */
	WTSMGR_FPI_NONE_TEMP,		/* temporary relation: not WAL-logged */
	WTSMGR_FPI_NONE_UNLOGGED,	/* unlogged relation's fork: not WAL-logged */
	WTSMGR_FPI_SKIPPED,			/* left out: the block is written untorn */
} WtsmgrFpiDecision;

extern void wtsmgr_fpi_init(void);
extern void wtsmgr_fpi_shmem_request(void);
extern void wtsmgr_fpi_shmem_startup(void);
extern WtsmgrFpiDecision wtsmgr_fpi_decide(WtsmgrTablespace *ts,
										   XLogRecPtr redo,
										   bool torn_pages_only);
extern const char *wtsmgr_fpi_decision_text(WtsmgrFpiDecision decision);

#endif							/* WTSMGR_FPI_H */
