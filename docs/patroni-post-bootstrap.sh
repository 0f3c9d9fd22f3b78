#!/bin/sh
# Patroni's bootstrap.post_bootstrap script for wtsmgr (docs/patroni.md).
#
# Patroni runs it once, on the node that runs initdb, with a connection
# string as its only argument, before it creates its own roles.  It
# creates the rewind role (Patroni then sets its password and grants it
# pg_ls_dir, pg_stat_file and pg_read_binary_file) and grants it what
# wtsmgr's patched pg_rewind also calls on a running source:
# pg_backup_start() and pg_backup_stop().  The role's name must be
# postgresql.authentication.rewind.username.
set -eu
psql -X -q -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SET synchronous_commit = 'local';
CREATE ROLE rewind_user LOGIN;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_backup_start(text, boolean) TO rewind_user;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_backup_stop(boolean) TO rewind_user;
SQL
