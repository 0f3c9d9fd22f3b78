/*-------------------------------------------------------------------------
 *
 * wtsmgr.c
 *	  Module entry point of wtsmgr, a storage manager that writes relation
 *	  blocks with untorn (atomic) writes.
 *
 * This file owns loading: wtsmgr must be in shared_preload_libraries,
 * because it registers a storage manager with the server (smgr_register(),
 * from wtsmgr's core patches) and makes it the one smgropen() gives to
 * every relation.  _PG_init() lets each module define its settings and
 * hooks, and the shared memory hooks call the modules that keep state
 * there; the list of modules is in wtsmgr.h.
 *
 * The storage manager wraps md.c.  Reads, sizes, truncation and unlinking
 * are md's; writes and extensions go through wtsmgr_atomic.c, which hands
 * those of tablespaces whose writes need no protection to md.c.  Before
 * recovery, smgr_init repairs interrupted doublewrites.
 *
 * Copyright (c) 2026, wtsmgr developers
 *
 * IDENTIFICATION
 *	  wtsmgr.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/md.h"
#include "storage/smgr.h"
#include "utils/guc.h"

#include "wtsmgr.h"
#include "wtsmgr_atomic.h"
#include "wtsmgr_doublewrite.h"
#include "wtsmgr_fpi.h"
#include "wtsmgr_registry.h"
#include "wtsmgr_stats.h"
#include "wtsmgr_statx.h"

#ifndef WTSMGR_VERSION
#error "WTSMGR_VERSION must be defined by the Makefile"
#endif

PG_MODULE_MAGIC_EXT(
					.name = "wtsmgr",
					.version = WTSMGR_VERSION
);

static SMgrId WtsmgrSMgrId;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void wtsmgr_shmem_request(void);
static void wtsmgr_shmem_startup(void);
static void wtsmgr_init(void);
static void wtsmgr_open(SMgrRelation reln);
static void wtsmgr_close(SMgrRelation reln, ForkNumber forknum);
static void wtsmgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo);
static void wtsmgr_unlink(RelFileLocatorBackend rlocator, ForkNumber forknum,
						  bool isRedo);
static void wtsmgr_truncate(SMgrRelation reln, ForkNumber forknum,
							BlockNumber old_blocks, BlockNumber nblocks);

/*
 * The storage manager.  What wtsmgr does not change is md.c's, called
 * directly.  Its SMgrRelation entries are WtsmgrRelationData.
 */
static const f_smgr wtsmgr_smgr = {
	.name = "wtsmgr",
	.smgr_init = wtsmgr_init,
	.smgr_shutdown = NULL,
	.smgr_open = wtsmgr_open,
	.smgr_close = wtsmgr_close,
	.smgr_create = wtsmgr_create,
	.smgr_exists = mdexists,
	.smgr_unlink = wtsmgr_unlink,
	.smgr_extend = wtsmgr_extend,
	.smgr_zeroextend = wtsmgr_zeroextend,
	.smgr_prefetch = mdprefetch,
	.smgr_maxcombine = mdmaxcombine,
	.smgr_readv = mdreadv,
	.smgr_startreadv = mdstartreadv,
	.smgr_writev = wtsmgr_writev,
	.smgr_writeback = mdwriteback,
	.smgr_nblocks = mdnblocks,
	.smgr_truncate = wtsmgr_truncate,
	.smgr_immedsync = mdimmedsync,
	.smgr_registersync = mdregistersync,
	.smgr_fd = mdfd,
};

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	/*
	 * The storage manager table must be the same in every process, and the
	 * choice of storage manager must be made before any relation is opened:
	 * both are only possible while shared_preload_libraries are loaded.
	 */
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wtsmgr must be loaded via \"shared_preload_libraries\""),
				 errhint("Add wtsmgr to \"shared_preload_libraries\" in postgresql.conf and restart the server, then run CREATE EXTENSION wtsmgr.")));

	if (storage_manager_id != MdSMgrId)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wtsmgr cannot be loaded because another storage manager is already in use"),
				 errdetail("wtsmgr writes through md.c and cannot be stacked on another storage manager."),
				 errhint("Remove the other storage manager's library from \"shared_preload_libraries\".")));

	wtsmgr_statx_init();
	wtsmgr_registry_init();
	wtsmgr_stats_init();
	wtsmgr_atomic_init();
	wtsmgr_fpi_init();

	MarkGUCPrefixReserved("wtsmgr");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wtsmgr_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wtsmgr_shmem_startup;

	WtsmgrSMgrId = smgr_register(&wtsmgr_smgr, sizeof(WtsmgrRelationData));
	storage_manager_id = WtsmgrSMgrId;
}

/*
 * wtsmgr_smgr_id() -- The id under which wtsmgr's storage manager is
 * registered.
 */
SMgrId
wtsmgr_smgr_id(void)
{
	return WtsmgrSMgrId;
}

static void
wtsmgr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	wtsmgr_fpi_shmem_request();
	wtsmgr_registry_shmem_request();
	wtsmgr_dw_shmem_request();
}

static void
wtsmgr_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	/* the registry's probes at startup wake the announcer */
	wtsmgr_fpi_shmem_startup();
	wtsmgr_registry_shmem_startup();
	wtsmgr_dw_shmem_startup();
}

/*
 * Storage manager callbacks around md.c's.
 */
static void
wtsmgr_init(void)
{
	mdinit();
	wtsmgr_stats_backend_init();
	wtsmgr_atomic_backend_init();

	/*
	 * Before recovery reads a block, the blocks whose protected writes a
	 * crash interrupted are made whole again.  The startup process (or a
	 * single-user backend) gets here before StartupXLOG(), and before any
	 * other process can write through the doublewrite area.
	 */
	if (MyBackendType == B_STARTUP ||
		(!IsUnderPostmaster && !IsBootstrapProcessingMode()))
		wtsmgr_dw_startup();
}

static void
wtsmgr_open(SMgrRelation reln)
{
	mdopen(reln);
	wtsmgr_atomic_open(reln);
	wtsmgr_stat_count(((WtsmgrRelation) reln)->wt_tablespace,
					  WTSMGR_STAT_OPENS, 1);
}

static void
wtsmgr_close(SMgrRelation reln, ForkNumber forknum)
{
	mdclose(reln, forknum);
	wtsmgr_atomic_close(reln, forknum);

	/*
	 * The checkpointer closes every relation after each checkpoint, before it
	 * reports the checkpoint done: its counts are visible once CHECKPOINT
	 * returns.
	 */
	wtsmgr_stats_flush_if_due(true);
}

/*
 * Creating a fork is the first use of a new tablespace: probe it now, so
 * that it is known before any of its relations is written.
 */
static void
wtsmgr_create(SMgrRelation reln, ForkNumber forknum, bool isRedo)
{
	/*
	 * Replay asks for every block it reads (XLogReadBufferExtended()); a fork
	 * that is open exists, and neither md.c nor we have anything to do.
	 */
	if (isRedo && reln->md_num_open_segs[forknum] > 0)
		return;

	mdcreate(reln, forknum, isRedo);
	/* a tablespace re-created under the same OID is probed anew here */
	if (CritSectionCount == 0)
		(void) wtsmgr_recheck_tablespace(reln->smgr_rlocator.locator.spcOid);
	wtsmgr_stat_count(wtsmgr_relation_tablespace(reln), WTSMGR_STAT_CREATES, 1);
}

static void
wtsmgr_unlink(RelFileLocatorBackend rlocator, ForkNumber forknum, bool isRedo)
{
	mdunlink(rlocator, forknum, isRedo);
	wtsmgr_stat_count(wtsmgr_find_tablespace(rlocator.locator.spcOid),
					  WTSMGR_STAT_UNLINKS, 1);
}

static void
wtsmgr_truncate(SMgrRelation reln, ForkNumber forknum,
				BlockNumber old_blocks, BlockNumber nblocks)
{
	mdtruncate(reln, forknum, old_blocks, nblocks);
	/* forget our descriptors of segments that may be gone */
	wtsmgr_atomic_close(reln, forknum);
	wtsmgr_stat_count(wtsmgr_find_tablespace(reln->smgr_rlocator.locator.spcOid),
					  WTSMGR_STAT_TRUNCATES, 1);
}
