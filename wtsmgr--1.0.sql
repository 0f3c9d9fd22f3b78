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

-- Calls the storage manager received since the server started, summed
-- over all processes.
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
-- existence of any path the server can reach, so it is not for PUBLIC.
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

REVOKE ALL ON FUNCTION wtsmgr_statx(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wtsmgr_statx(text) TO pg_read_server_files;
