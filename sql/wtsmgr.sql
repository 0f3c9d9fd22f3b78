--
-- wtsmgr: loading, the storage-manager registry, and the SQL surface
--
CREATE EXTENSION wtsmgr;

-- The loaded library, the extension and the server's list of loaded
-- modules all report the version wtsmgr.control declares, written out here
-- (it is not read from the control file, as the library's own is).
SELECT wtsmgr_version();
SELECT extversion FROM pg_extension WHERE extname = 'wtsmgr';
SELECT module_name, version, file_name
FROM pg_get_loaded_modules() WHERE module_name = 'wtsmgr';
SHOW shared_preload_libraries;

-- Every relation with storage is opened through wtsmgr.
SELECT wtsmgr_relation_smgr(oid) AS smgr, count(*) > 100 AS many
FROM pg_class
WHERE relkind IN ('r', 'i', 'S', 't', 'm') AND relpersistence <> 't'
GROUP BY 1;
CREATE TEMP TABLE wt_temp (x int);
SELECT wtsmgr_relation_smgr('wt_temp');

-- Writes, extensions, truncation and unlinking go through wtsmgr.  The
-- counters are cumulative statistics: a backend's own counts are visible
-- once it has flushed them, which pg_stat_force_next_flush() asks for at
-- the end of the statement.
SELECT creates AS creates0, writev_blocks AS writes0,
       extend_blocks + zeroextend_blocks AS extends0,
       truncates AS truncates0, unlinks AS unlinks0
FROM wtsmgr_smgr_counters \gset
CREATE TABLE wt_t (id int, pad text);
INSERT INTO wt_t SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g;
CHECKPOINT;
SELECT pg_stat_force_next_flush();
SELECT creates > :creates0 AS created,
       extend_blocks + zeroextend_blocks - :extends0 >=
         pg_relation_size('wt_t') / current_setting('block_size')::int AS extended,
       writev_blocks - :writes0 >=
         pg_relation_size('wt_t') / current_setting('block_size')::int AS written
FROM wtsmgr_smgr_counters;
DELETE FROM wt_t WHERE id > 10;
VACUUM wt_t;
DROP TABLE wt_t;
SELECT pg_stat_force_next_flush();
SELECT truncates > :truncates0 AS truncated, unlinks > :unlinks0 AS unlinked
FROM wtsmgr_smgr_counters;

-- statx figures of a file in the data directory.
SELECT fs_type <> '' AS has_fs_type,
       atomic_write IS NOT NULL AS has_atomic_write,
       atomic_unit_min <= atomic_unit_max AS units_ordered
FROM wtsmgr_statx(current_setting('data_directory') || '/PG_VERSION');

-- Errors
SELECT wtsmgr_relation_smgr('pg_tables');
SELECT wtsmgr_relation_smgr(0);
SELECT * FROM wtsmgr_statx('/nonexistent/wtsmgr');
CREATE ROLE regress_wtsmgr_nobody;
SET ROLE regress_wtsmgr_nobody;
SELECT * FROM wtsmgr_statx('/');
RESET ROLE;
DROP ROLE regress_wtsmgr_nobody;

-- Settings are checked when set.
ALTER SYSTEM SET wtsmgr.keep_full_page_images_tablespaces = 'a,,b';
ALTER SYSTEM SET wtsmgr.skip_full_page_images = 'maybe';
SET wtsmgr.no_such_setting = 1;
SHOW wtsmgr.skip_full_page_images;
SHOW wtsmgr.keep_full_page_images_tablespaces;
-- There is no choice of I/O method to pretend to make: writes are O_DIRECT.
SHOW wtsmgr.io_method;

-- The DBA's views: their shape.
SELECT * FROM wtsmgr_tablespaces WHERE false;
SELECT * FROM wtsmgr_stat_io WHERE false;
SELECT * FROM wtsmgr_relation('pg_class') WHERE false;
SELECT * FROM wtsmgr_wal_savings WHERE false;

-- Nothing here is untorn (the temporary instance lives on the root
-- filesystem), so the WAL must carry the images of a page changed after a
-- checkpoint, as pg_walinspect sees them, and wtsmgr must claim no saving.
CREATE EXTENSION pg_walinspect;
CREATE TABLE wt_fpi (x int);
INSERT INTO wt_fpi SELECT generate_series(1, 1000);
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS fpi_lsn0 \gset
UPDATE wt_fpi SET x = x + 1 WHERE x <= 10;
SELECT count(*) > 0 AS image_in_wal
FROM pg_get_wal_block_info(:'fpi_lsn0', pg_current_wal_insert_lsn(), false)
WHERE relfilenode = pg_relation_filenode('wt_fpi') AND block_fpi_length > 0;
SELECT fpi_skipped, est_bytes_saved, est_saved_pct FROM wtsmgr_wal_savings;
DROP TABLE wt_fpi;
DROP EXTENSION pg_walinspect;

-- pg_default and pg_global were probed (by the prober at startup, or by
-- their first write); the decision and the reason always come together.
SELECT tablespace, path, probed_at IS NOT NULL AS probed,
       untorn_blocks = (reason LIKE 'RWF_ATOMIC write of 8192 bytes proven%') AS reason_matches,
       full_page_images LIKE 'kept: %' AS images_kept,
       write_path = CASE WHEN untorn_blocks THEN 'atomic' ELSE 'md' END
         AS write_path_matches
FROM wtsmgr_tablespaces WHERE tablespace IN ('pg_default', 'pg_global')
ORDER BY 1;
SELECT fork, tablespace FROM wtsmgr_relation('pg_class') ORDER BY 1;
SELECT fork, full_page_images FROM wtsmgr_relation('wt_temp');

-- The counters move with writes, and reset.
CREATE TABLE wt_io (x int);
INSERT INTO wt_io SELECT generate_series(1, 10000);
CHECKPOINT;
SELECT pg_stat_force_next_flush();
SELECT writes > 0 AS written, write_bytes >= writes * 8192 AS bytes_counted,
       extends > 0 AS extended
FROM wtsmgr_stat_io WHERE tablespace = 'pg_default';
SELECT clock_timestamp() AS before_reset \gset
SELECT wtsmgr_stat_reset();
SELECT writes, extends,
       stats_reset BETWEEN :'before_reset' AND clock_timestamp() AS reset_by_this_call
FROM wtsmgr_stat_io WHERE tablespace = 'pg_default';
DROP TABLE wt_io;

-- Re-probing on demand.
SELECT probed_at AS probed_before, clock_timestamp() AS before_probe
FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default' \gset
SELECT tablespace, probed_at > :'probed_before'
         AND probed_at BETWEEN :'before_probe' AND clock_timestamp() AS probed_by_this_call
FROM wtsmgr_probe('pg_default');

-- Errors
SELECT * FROM wtsmgr_probe('no_such_tablespace');
SELECT * FROM wtsmgr_relation('pg_tables');

-- Privileges come from the extension script's GRANTs: probing and
-- resetting are for pg_maintain, statx of any path for
-- pg_read_server_files, the views for everyone.
SELECT p.fn, r.role, has_function_privilege(r.role, p.fn, 'execute')
FROM (VALUES ('wtsmgr_probe(name)'), ('wtsmgr_stat_reset()'),
             ('wtsmgr_statx(text)'), ('wtsmgr_tablespaces()'))
       AS p(fn),
     (VALUES ('public'), ('pg_maintain'), ('pg_read_server_files'))
       AS r(role)
ORDER BY 1, 2;
CREATE ROLE regress_wtsmgr_user;
CREATE ROLE regress_wtsmgr_maintainer IN ROLE pg_maintain;
SET ROLE regress_wtsmgr_user;
SELECT * FROM wtsmgr_probe('pg_default');
SELECT wtsmgr_stat_reset();
SELECT count(*) > 0 AS can_read_views FROM wtsmgr_tablespaces;
RESET ROLE;
SET ROLE regress_wtsmgr_maintainer;
SELECT tablespace FROM wtsmgr_probe('pg_default');
SELECT wtsmgr_stat_reset();
RESET ROLE;
DROP ROLE regress_wtsmgr_user;
DROP ROLE regress_wtsmgr_maintainer;

DROP EXTENSION wtsmgr;
