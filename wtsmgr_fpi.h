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

extern void wtsmgr_fpi_init(void);
extern void wtsmgr_fpi_shmem_request(void);
extern void wtsmgr_fpi_shmem_startup(void);
extern const char *wtsmgr_fpi_decision(WtsmgrTablespace *ts);

#endif							/* WTSMGR_FPI_H */
