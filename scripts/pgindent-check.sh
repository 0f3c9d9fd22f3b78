#!/usr/bin/env bash
# scripts/pgindent-check.sh -- are wtsmgr's C files laid out as pgindent
# lays them out?
#
# Usage: scripts/pgindent-check.sh PREFIX WORKDIR
#
# PREFIX is a server built by scripts/build-server.sh; its wtsmgr-build.info
# names the PostgreSQL source tree it was built from, whose
# src/tools/pgindent/pgindent (Perl) and src/tools/pg_bsd_indent (C) are the
# versions that PostgreSQL's own code is indented with.  pg_bsd_indent is
# compiled into WORKDIR with the server's pg_config (compiler, flags,
# libpgport); nothing in the cached server or source is changed.
#
# The typedefs are the source's src/tools/pgindent/typedefs.list plus
# wtsmgr's own, collected from the typedef declarations of the C files
# checked (WORKDIR/typedefs.list): pg_bsd_indent lays out a declaration
# such as "WtsmgrTablespace *ts" right only if it knows the type's name, and
# a list kept by hand would fall behind.
#
# Prints TAP-style lines: one "ok N - FILE" / "not ok N - FILE" per C file
# of the tree (with pgindent's diff as "#" lines when it is not clean), and,
# last, a control: a copy of wtsmgr.c with one line indented wrong must be
# flagged, which shows that the check can fail.  Exits non-zero if a check
# failed.  To fix a file, run pgindent on it the same way (the "# fix:" line
# says how).
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ $# -eq 2 ] || die "usage: $0 PREFIX WORKDIR"
prefix=$1
workdir=$2
info=$prefix/wtsmgr-build.info
[ -f "$info" ] || die "$info is missing" "build the server with scripts/build-server.sh"
source=$(sed -n 's/^source=//p' "$info")
pgindent=$source/src/tools/pgindent/pgindent
bsd_src=$source/src/tools/pg_bsd_indent
[ -f "$pgindent" ] && [ -f "$bsd_src/indent.c" ] ||
	die "no pgindent or pg_bsd_indent in $source/src/tools" \
		"the server's source tree must be kept (scripts/build-server.sh keeps it)"
pg_config=$prefix/bin/pg_config
mkdir -p "$workdir"

# pg_bsd_indent, as src/tools/pg_bsd_indent/Makefile builds it, but in
# WORKDIR; -w because its warnings are not wtsmgr's to fix.
indent=$workdir/pg_bsd_indent
# shellcheck disable=SC2046
$("$pg_config" --cc) $("$pg_config" --cflags) -w -I"$bsd_src" \
	-I"$("$pg_config" --includedir-server)" "$bsd_src"/*.c \
	-L"$("$pg_config" --libdir)" -lpgcommon -lpgport -lm -o "$indent" \
	>"$workdir/pg_bsd_indent.log" 2>&1 ||
	{ cat "$workdir/pg_bsd_indent.log" >&2; die "could not compile pg_bsd_indent from $bsd_src"; }

# The C files of the tree, as paths relative to its top.
cd "$WTSMGR_ROOT"
mapfile -t files < <(find . \( -name .git -o -name tmp_check -o -name tmp_check_regress \) -prune -o \
	-type f -name '*.[ch]' -print | sed 's|^\./||' | sort)
[ ${#files[@]} -gt 0 ] || die "no C files found in $WTSMGR_ROOT"

# wtsmgr's typedefs: the name a "typedef ... ;" declares, the last word
# before the semicolon (after any braces), or (*name) for a function pointer.
typedefs=$workdir/typedefs.list
{
	cat "$source/src/tools/pgindent/typedefs.list"
	perl -0777 -ne '
		s{/\*.*?\*/}{}gs;
		while (/\btypedef\b([^;{]*(\{(?:[^{}]|(?2))*\})?[^;]*);/g) {
			my $t = $1;
			if ($t =~ /\(\s*\*\s*(\w+)\s*\)/) { print "$1\n" }
			elsif ($t =~ /(\w+)\s*(\[[^\]]*\]\s*)*$/) { print "$1\n" }
		}' "${files[@]}" | sort -u
} >"$typedefs"

# Is $1 pgindent-clean?  Prints pgindent's diff to $2.  pgindent --check
# exits 2 when the file would change, 3 when pg_bsd_indent failed on it.
is_clean()
{
	perl "$pgindent" --indent="$indent" --typedefs="$typedefs" --check --diff "$1" >"$2" 2>&1
}

for f in "${files[@]}"; do
	diff=$workdir/$(echo "$f" | tr / _).diff
	if is_clean "$f" "$diff"; then
		tap_check 1 "$f is pgindent-clean"
	else
		tap_check 0 "$f is not pgindent-clean"
		sed 's/^/# /' "$diff"
		echo "# fix: perl $pgindent --indent=$indent --typedefs=$typedefs $f"
	fi
done

# Control: one line of wtsmgr.c indented with two spaces instead of a tab
# must be flagged.
control=$workdir/control/wtsmgr.c
mkdir -p "$(dirname "$control")"
perl -pe 'if (!$done && s/^\t(?=\S)/  /) { $done = 1 }' wtsmgr.c >"$control"
if cmp -s wtsmgr.c "$control"; then
	tap_check 0 "control: could not mis-indent a line of wtsmgr.c"
elif is_clean "$control" "$workdir/control.diff"; then
	tap_check 0 "control: a copy of wtsmgr.c with a line mis-indented passed the check"
else
	tap_check 1 "control: a copy of wtsmgr.c with a line mis-indented is flagged ($(grep -c '^[-+][^-+]' "$workdir/control.diff") changed lines)"
fi

tap_done
