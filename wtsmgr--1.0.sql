/* wtsmgr--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION wtsmgr" to load this file. \quit

-- Version of the loaded library; equals the extension's version when the
-- library and the SQL objects belong together.
CREATE FUNCTION wtsmgr_version()
RETURNS text
AS 'MODULE_PATHNAME', 'wtsmgr_version'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

-- Storage manager through which this backend opened a relation's files:
-- 'wtsmgr' when wtsmgr is active, 'md' for PostgreSQL's own.
CREATE FUNCTION wtsmgr_relation_smgr(rel regclass)
RETURNS text
AS 'MODULE_PATHNAME', 'wtsmgr_relation_smgr'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- Calls the storage manager received, summed over all processes and the
-- tablespaces wtsmgr tracks: cumulative statistics, kept across a clean
-- restart and set to zero by wtsmgr_stat_reset().
CREATE FUNCTION wtsmgr_smgr_counters(
    OUT opens bigint,
    OUT creates bigint,
    OUT unlinks bigint,
    OUT writev_calls bigint,
    OUT writev_blocks bigint,
    OUT extend_blocks bigint,
    OUT zeroextend_blocks bigint,
    OUT truncates bigint)
AS 'MODULE_PATHNAME', 'wtsmgr_smgr_counters'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

CREATE VIEW wtsmgr_smgr_counters AS
    SELECT * FROM wtsmgr_smgr_counters();

-- What statx() reports about atomic writes to a file.  It can test the
-- existence of any path the server can reach, so it is not for PUBLIC (see
-- the grants at the end).
CREATE FUNCTION wtsmgr_statx(path text,
    OUT fs_type text,
    OUT atomic_write bool,
    OUT atomic_unit_min bigint,
    OUT atomic_unit_max bigint,
    OUT atomic_unit_max_opt bigint,
    OUT atomic_segments_max bigint,
    OUT dio_mem_align bigint,
    OUT dio_offset_align bigint)
AS 'MODULE_PATHNAME', 'wtsmgr_statx'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE;

-- One row per tablespace: what the last probe found and what wtsmgr decided.
-- write_path: 'atomic', 'doublewrite' (every write through the doublewrite
-- area) or 'md'; last_fallback and fallback_cause: when writes last went
-- through the doublewrite area instead of atomic writes, and why.
CREATE FUNCTION wtsmgr_tablespaces(
    OUT tablespace name,
    OUT spcoid oid,
    OUT path text,
    OUT fs_type text,
    OUT device text,
    OUT atomic_write bool,
    OUT atomic_unit_min bigint,
    OUT atomic_unit_max bigint,
    OUT atomic_unit_max_opt bigint,
    OUT atomic_segments_max bigint,
    OUT dio_mem_align bigint,
    OUT dio_offset_align bigint,
    OUT write_path text,
    OUT atomic_writes_by text,
    OUT extent_size_hint int,
    OUT untorn_blocks bool,
    OUT full_page_images text,
    OUT reason text,
    OUT probed_at timestamptz,
    OUT last_fallback timestamptz,
    OUT fallback_cause text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'wtsmgr_tablespaces'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW wtsmgr_tablespaces AS
    SELECT * FROM wtsmgr_tablespaces();

-- Probe a tablespace again; returns its new row of wtsmgr_tablespaces.
CREATE FUNCTION wtsmgr_probe(tablespace name)
RETURNS wtsmgr_tablespaces
AS 'MODULE_PATHNAME', 'wtsmgr_probe'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Per existing fork of a relation: its tablespace, whether its blocks are
-- untorn and written atomically, and what happens to its full-page images.
CREATE FUNCTION wtsmgr_relation(rel regclass,
    OUT fork text,
    OUT tablespace name,
    OUT untorn_blocks bool,
    OUT atomic_writes bool,
    OUT full_page_images text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'wtsmgr_relation'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- I/O statistics per tracked tablespace, shaped like pg_stat_io: cumulative
-- statistics, kept across a clean restart; stats_reset is null until the
-- first reset.
CREATE FUNCTION wtsmgr_stat_io(
    OUT tablespace name,
    OUT spcoid oid,
    OUT writes bigint,
    OUT write_bytes bigint,
    OUT extends bigint,
    OUT atomic_writes bigint,
    OUT atomic_units bigint,
    OUT batches bigint,
    OUT fpi_skipped bigint,
    OUT refusals bigint,
    OUT errors bigint,
    OUT nonatomic_files bigint,
    OUT doublewrites bigint,
    OUT stats_reset timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'wtsmgr_stat_io'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW wtsmgr_stat_io AS
    SELECT * FROM wtsmgr_stat_io();

-- Set wtsmgr's statistics to zero: wtsmgr_stat_io and wtsmgr_smgr_counters.
CREATE FUNCTION wtsmgr_stat_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'wtsmgr_stat_reset'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Like pg_stat_io and pg_tablespace, the views are for everyone.
GRANT SELECT ON wtsmgr_smgr_counters, wtsmgr_tablespaces, wtsmgr_stat_io
    TO PUBLIC;

-- Probing writes to a tablespace and resetting statistics are maintenance;
-- statx() of an arbitrary path is reading server files.
REVOKE ALL ON FUNCTION wtsmgr_probe(name), wtsmgr_stat_reset() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wtsmgr_probe(name), wtsmgr_stat_reset()
    TO pg_maintain;
REVOKE ALL ON FUNCTION wtsmgr_statx(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wtsmgr_statx(text) TO pg_read_server_files;

-- WAL that leaving images out saved, next to pg_stat_wal.  The saving is
-- estimated as skipped images x 8192 bytes, an upper bound: a logged image
-- leaves out its page's hole and may be compressed (wal_compression).
-- fpi_skipped counts each image left out of a WAL record once.
CREATE VIEW wtsmgr_wal_savings AS
    SELECT w.wal_records, w.wal_fpi, w.wal_bytes,
           s.fpi_skipped,
           current_setting('block_size')::int AS image_bytes_max,
           s.fpi_skipped * current_setting('block_size')::bigint
               AS est_bytes_saved,
           round(100.0 * s.fpi_skipped * current_setting('block_size')::bigint
                 / nullif(w.wal_bytes + s.fpi_skipped
                          * current_setting('block_size')::bigint, 0), 1)
               AS est_saved_pct,
           w.stats_reset AS wal_stats_reset
    FROM pg_stat_wal w,
         (SELECT coalesce(sum(fpi_skipped), 0)::bigint AS fpi_skipped
          FROM wtsmgr_stat_io()) s;

GRANT SELECT ON wtsmgr_wal_savings TO PUBLIC;
