#!/usr/bin/env bash
# scripts/build-server.sh -- build the patched PostgreSQL 18 that wtsmgr needs.
#
# Usage: scripts/build-server.sh [--flavor debug|release|stock|debug-smallseg|debug-asan]
#                                [--source DIR]
#                                [--refresh-source] [--print-prefix]
#
#   --flavor debug    cassert, injection points, TAP tests (default; tests)
#   --flavor release  optimized, no assertions (benchmarks)
#   --flavor stock    like release, but without wtsmgr's patches: stock
#                     PostgreSQL 18, the benchmarks' baseline
#   --flavor debug-smallseg
#                     test only: debug with 64 kB segment files
#                     (--with-segsize-blocks=8), so that tests cross
#                     segment boundaries with small relations; builds the
#                     server, its programs and amcheck, nothing else
#   --flavor debug-asan
#                     test only: debug built with AddressSanitizer and
#                     UndefinedBehaviorSanitizer (-fsanitize=address,undefined
#                     -fno-sanitize-recover=all), at -O1 to keep the build
#                     short; builds the server, its programs, amcheck and
#                     pg_walinspect (what scripts/test.sh's sanitize suite
#                     runs), nothing else; with -DUSE_VALGRIND, whose hooks
#                     test/asan/valgrind/memcheck.h turns into ASan
#                     poisoning, so that ASan sees overreads of palloc'd
#                     memory.  Its binaries need ASAN_OPTIONS with
#                     detect_leaks=0 (PostgreSQL does not free at exit)
#   --source DIR      build this PostgreSQL 18 source tree (e.g. a git
#                     checkout) instead of Debian's source package; if it
#                     lacks the hooks, patches/ are applied to a copy
#   --refresh-source  ask apt for the newest postgresql-18 source package
#                     even if one is cached
#   --print-prefix    print only the install prefix on stdout (progress
#                     goes to stderr)
#
# As root, installs the build dependencies from the machine's own
# (bookworm) package sources.  Without --source, fetches postgresql-18's
# source package from the newest Debian suite that carries it, through a
# private apt configuration built from the mirror this machine already
# uses; nothing is added to the machine's apt sources.  Builds into
# $WTSMGR_CACHE_DIR (see scripts/common.sh), keyed by source version, patch
# contents and flavor, so a second run only checks and prints the prefix.
set -euo pipefail
. "$(dirname "$0")/common.sh"

flavor=debug
source_dir=
refresh=0
print_prefix=0
while [ $# -gt 0 ]; do
	case $1 in
		--flavor) flavor=$2; shift 2 ;;
		--flavor=*) flavor=${1#*=}; shift ;;
		--source) source_dir=$2; shift 2 ;;
		--source=*) source_dir=${1#*=}; shift ;;
		--refresh-source) refresh=1; shift ;;
		--print-prefix) print_prefix=1; shift ;;
		-h|--help) sed -n '2,46p' "$0"; exit 0 ;;
		*) die "unknown option $1" "see $0 --help" ;;
	esac
done
[ -n "$source_dir" ] || source_dir=${WTSMGR_PG_SOURCE:-}

# With --print-prefix, stdout carries only the prefix.
if [ "$print_prefix" -eq 1 ]; then
	exec 3>&1 1>&2
else
	exec 3>&1
fi

ldflags=
cppflags=
asan_shim=
case $flavor in
	debug)
		configure_flags=(--enable-debug --enable-cassert --enable-tap-tests
			--enable-injection-points)
		cflags="-O2 -g" ;;
	debug-smallseg)
		configure_flags=(--enable-debug --enable-cassert --enable-tap-tests
			--enable-injection-points --with-segsize-blocks=8)
		cflags="-O2 -g" ;;
	debug-asan)
		configure_flags=(--enable-debug --enable-cassert --enable-tap-tests
			--enable-injection-points)
		# As PostgreSQL's own CI: every report is fatal, frames kept for
		# the stack traces.  -O1 rather than -O2: a shorter build, and
		# ASan's checks are no weaker for it.
		cflags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
		ldflags="-fsanitize=address,undefined"
		# PostgreSQL's Valgrind hooks (USE_VALGRIND) carried out by ASan
		# (test/asan/valgrind/memcheck.h): without them ASan cannot see
		# an overread of a palloc'd chunk, which lies inside a block
		# malloc'd whole.  The shim is copied into the build ($base).
		asan_shim=$WTSMGR_ROOT/test/asan/valgrind/memcheck.h
		[ -f "$asan_shim" ] || die "missing $asan_shim"
		cppflags="-DUSE_VALGRIND -I@BASE@/asan-include" ;;
	release|stock)
		configure_flags=(--enable-tap-tests)
		cflags="-O2" ;;
	*) die "unknown flavor '$flavor'" "use --flavor debug, release, stock, debug-smallseg or debug-asan" ;;
esac
configure_flags+=(--with-liburing --with-openssl --with-icu --with-lz4
	--with-zstd --with-readline)

# Build dependencies, all from bookworm's main archive (libfuse3-dev and
# fuse3 for test/tornsim, the torn-write simulator of scripts/torn-crash.sh;
# prometheus-postgres-exporter for scripts/exporter.sh; patroni,
# etcd-server, curl and iproute2 for scripts/patroni.sh: without
# recommends, patroni pulls in Python modules and libpq, no PostgreSQL
# server and no postgresql-common).
build_deps=(build-essential bison flex pkg-config bzip2 libreadline-dev
	zlib1g-dev libssl-dev libicu-dev liburing-dev liblz4-dev libzstd-dev
	libipc-run-perl xfsprogs strace util-linux-extra
	libfuse3-dev fuse3 prometheus-postgres-exporter patroni etcd-server curl
	iproute2)

install_deps()
{
	local missing=()
	for p in "${build_deps[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if ! is_root; then
		die "missing build dependencies: ${missing[*]}" \
			"as root: apt-get install ${missing[*]}"
	fi
	local codename
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ "$codename" = bookworm ] ||
		say "warning: this is '$codename', not bookworm; installing from its own suites"
	say "installing build dependencies: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || die "apt-get update failed"
	# Only the machine's own suite: a binary package from a newer suite
	# would drag in a newer libc.
	apt-get install -y -q --no-install-recommends ${codename:+-t "$codename"} \
		"${missing[@]}" >"$WTSMGR_CACHE_DIR/apt-install.log" 2>&1 ||
		die "apt-get install failed" "see $WTSMGR_CACHE_DIR/apt-install.log"
}

# The Debian mirror this machine already uses, from its apt configuration.
debian_mirror()
{
	local f uri=
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '
			/^URIs:/ { u = $2 }
			/^Suites:/ { if ($0 !~ /security/ && u != "") { print u; exit } }
		' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	[ -n "$uri" ] || die "no Debian mirror found in /etc/apt" \
		"add the machine's Debian mirror to /etc/apt/sources.list.d, or pass --source DIR"
	echo "$uri"
}

# Download postgresql-18's source package into $srcdir through a private
# apt configuration: deb-src entries for the suites that may carry it, kept
# in a temporary directory that is removed when done.
fetch_debian_source()
{
	local srcdir=$1 mirror tmp
	mirror=$(debian_mirror)
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
	cat >"$tmp/src.sources" <<-EOF
		Types: deb-src
		URIs: $mirror
		Suites: sid forky trixie-backports trixie
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	local aptopts=(-o "Dir::Etc::SourceList=$tmp/src.sources"
		-o "Dir::Etc::SourceParts=$tmp/none"
		-o "Dir::State::Lists=$tmp/lists"
		-o "Dir::Cache=$tmp/cache"
		-o "Debug::NoLocking=1"
		-o "APT::Sandbox::User=$(id -un)")
	say "looking up postgresql-18 in Debian's source suites at $mirror"
	apt-get "${aptopts[@]}" update -q >"$tmp/update.log" 2>&1 ||
		{ cat "$tmp/update.log" >&2; die "apt-get update of the private source list failed"; }
	mkdir -p "$srcdir"
	(cd "$srcdir" && apt-get "${aptopts[@]}" source --download-only postgresql-18) \
		>"$tmp/source.log" 2>&1 ||
		{ cat "$tmp/source.log" >&2; die "apt-get source postgresql-18 failed" \
			"no suite at $mirror carries postgresql-18; pass --source DIR instead"; }
}

has_hooks()
{
	grep -q SMGR_HAS_REGISTER "$1/src/include/storage/smgr.h" 2>/dev/null &&
		grep -q XLOG_HAS_UNTORN_BLOCK_HOOK "$1/src/include/access/xloginsert.h" 2>/dev/null
}

pg_source_version()
{
	sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" "$1/configure"
}

mkdir -p "$WTSMGR_CACHE_DIR"
exec 9>"$WTSMGR_CACHE_DIR/.build.lock"
flock 9

install_deps

patch_sum=$(cat "$WTSMGR_ROOT"/patches/*.patch | sha256sum | cut -c1-64)
# the stock build does not depend on the patches
[ "$flavor" = stock ] && patch_sum=none

# Identify the source: a cached Debian source package or the given tree.
if [ -z "$source_dir" ]; then
	dsc=$(ls -1 "$WTSMGR_CACHE_DIR"/src/postgresql-18_*.dsc 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$dsc" ] || [ "$refresh" -eq 1 ]; then
		fetch_debian_source "$WTSMGR_CACHE_DIR/src"
		dsc=$(ls -1 "$WTSMGR_CACHE_DIR"/src/postgresql-18_*.dsc | sort -V | tail -n 1)
	fi
	debver=$(sed -n 's/^Version: //p' "$dsc")
	upver=${debver%%-*}
	orig=$WTSMGR_CACHE_DIR/src/postgresql-18_$upver.orig.tar.bz2
	[ -f "$orig" ] || die "missing $orig" "run with --refresh-source"
	source_id="debian:$debver:$(sha256sum "$orig" | cut -c1-64)"
else
	source_dir=$(cd "$source_dir" && pwd) || die "no such directory: $source_dir"
	[ -f "$source_dir/configure" ] && [ -f "$source_dir/src/backend/storage/smgr/smgr.c" ] ||
		die "$source_dir is not a PostgreSQL source tree"
	upver=$(pg_source_version "$source_dir")
	case $upver in
		18*) ;;
		*) die "$source_dir is PostgreSQL $upver; wtsmgr needs PostgreSQL 18" ;;
	esac
	treeid=$(git -C "$source_dir" rev-parse HEAD 2>/dev/null || echo notgit)
	dirty=$(git -C "$source_dir" diff HEAD 2>/dev/null | sha256sum | cut -c1-16 || true)
	source_id="tree:$source_dir:$treeid:$dirty"
fi

key=$(printf '%s\n' "recipe 1" "$source_id" "$patch_sum" "$flavor" \
	"${configure_flags[*]}" "$cflags" ${ldflags:+"$ldflags"} ${cppflags:+"$cppflags"} \
	${asan_shim:+"$(sha256sum <"$asan_shim")"} | sha256sum | cut -c1-12)
base=$WTSMGR_CACHE_DIR/pg-$upver-$flavor-$key
prefix=$base/install
cppflags=${cppflags//@BASE@/$base}

if [ -f "$base/.complete" ]; then
	say "PostgreSQL $upver ($flavor) with wtsmgr's patches is cached in $prefix"
	echo "$prefix" >&3
	exit 0
fi

say "building PostgreSQL $upver ($flavor) into $base"
rm -rf "$base"
mkdir -p "$base"
src=$base/src

if [ -z "$source_dir" ]; then
	say "unpacking $(basename "$orig")"
	mkdir -p "$src"
	tar -xjf "$orig" -C "$src" --strip-components=1
elif has_hooks "$source_dir"; then
	say "$source_dir already has wtsmgr's hooks; building it as it is"
	src=$source_dir
else
	say "copying $source_dir to apply patches/ to the copy"
	mkdir -p "$src"
	tar -C "$source_dir" --exclude=.git -cf - . | tar -C "$src" -xf -
fi

if [ "$flavor" = stock ]; then
	say "stock flavor: building without wtsmgr's patches"
elif ! has_hooks "$src"; then
	for p in "$WTSMGR_ROOT"/patches/*.patch; do
		git -C "$src" apply --check "$p" 2>"$base/patch.log" ||
			{ cat "$base/patch.log" >&2; die "patch $(basename "$p") does not apply to PostgreSQL $upver" \
				"wtsmgr's patches are made against PostgreSQL 18.6; see patches/"; }
		git -C "$src" apply "$p"
		say "applied $(basename "$p")"
	done
fi

mkdir -p "$base/build"
if [ -n "$asan_shim" ]; then
	mkdir -p "$base/asan-include/valgrind"
	cp "$asan_shim" "$base/asan-include/valgrind/memcheck.h"
fi
cd "$base/build"
# The sanitized flavor's own programs run during the build (zic at
# install, configure's tests): without this, LeakSanitizer fails them.
[ -n "$ldflags" ] && export ASAN_OPTIONS=detect_leaks=0
run_logged "$base/configure.log" "configure" \
	env CFLAGS="$cflags" ${ldflags:+LDFLAGS="$ldflags"} ${cppflags:+CPPFLAGS="$cppflags"} \
	"$src/configure" --prefix="$prefix" "${configure_flags[@]}"
jobs=$(($(nproc) + 1))
if [ "$flavor" = debug-asan ]; then
	# only what the sanitize suite uses: the server, its programs,
	# amcheck and pg_walinspect (sql/ and t/016)
	run_logged "$base/make.log" "compile server, amcheck and pg_walinspect (make -j$jobs)" \
		sh -c "make -j$jobs && make -j$jobs -C contrib/amcheck && make -j$jobs -C contrib/pg_walinspect"
	run_logged "$base/install.log" "install into $prefix" \
		sh -c "make install && make -C contrib/amcheck install && make -C contrib/pg_walinspect install"
elif [ "$flavor" = debug-smallseg ]; then
	# only what its tests use: the server, its programs, amcheck
	run_logged "$base/make.log" "compile server and amcheck (make -j$jobs)" \
		sh -c "make -j$jobs && make -j$jobs -C contrib/amcheck"
	run_logged "$base/install.log" "install into $prefix" \
		sh -c "make install && make -C contrib/amcheck install"
else
	run_logged "$base/make.log" "compile server and contrib (make -j$jobs world-bin)" \
		make -j"$jobs" world-bin
	run_logged "$base/install.log" "install into $prefix" make install-world-bin
fi
if [ "$flavor" = debug ]; then
	run_logged "$base/modules.log" "build and install injection_points" \
		make -C src/test/modules/injection_points install
fi

# Record where the source and build trees are: the test harness runs
# PostgreSQL's own regression suite from them.
printf 'source=%s\nbuild=%s\nversion=%s\nflavor=%s\n' "$src" "$base/build" "$upver" "$flavor" \
	>"$prefix/wtsmgr-build.info"
chmod -R a+rX "$base"
touch "$base/.complete"

# Older builds of this flavor (other patches or source) are of no more use.
# The key is 12 hex digits, so "debug" does not match "debug-smallseg".
for old in "$WTSMGR_CACHE_DIR"/pg-*-"$flavor"-????????????; do
	[ "$old" = "$base" ] || [ ! -d "$old" ] && continue
	say "removing outdated build $old"
	rm -rf "$old"
done
say "PostgreSQL $upver ($flavor) installed in $prefix"
echo "$prefix" >&3
