#!/usr/bin/env bash
# scripts/check-patches.sh -- check patches/ against pristine PostgreSQL.
#
# Usage: scripts/check-patches.sh ORIG_TARBALL
#
# Unpacks the pristine source (e.g. Debian's postgresql-18_18.6.orig.tar.bz2
# that scripts/build-server.sh caches) into a temporary directory and, for
# each patch in order, checks that it is one git format-patch commit and
# that "git apply --check" accepts it on top of the ones before.  Prints one
# TAP line per check.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
orig=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xjf "$orig" -C "$tmp" --strip-components=1

n=0
status=0
for p in "$root"/patches/*.patch; do
	name=$(basename "$p")
	n=$((n + 1))
	if [ "$(grep -c '^From [0-9a-f]\{40\} ' "$p")" -eq 1 ] && grep -q '^Subject: \[PATCH' "$p"; then
		echo "ok $n - $name is one format-patch commit"
	else
		echo "not ok $n - $name is not one format-patch commit"
		status=1
	fi
	n=$((n + 1))
	if git -C "$tmp" apply --check "$p" 2>"$tmp/err"; then
		echo "ok $n - $name applies to $(basename "$orig")"
		git -C "$tmp" apply "$p"
	else
		echo "not ok $n - $name does not apply to $(basename "$orig")"
		sed 's/^/# /' "$tmp/err"
		status=1
	fi
done
echo "1..$n"
exit $status
