#!/bin/sh
# Fetch Debian's linux-source-7.3 with a private apt configuration and build
# the rkvm test kernel (tinyconfig + config/kernel.fragment [+ debug]) in a
# cache outside the repository, keyed by a hash of source version, config
# fragments and toolchain. Prints the build directory on the last line.
#
#   scripts/kernel.sh [--debug]
#
# Environment: RKVM_CACHE (default ~/.cache/rkvm), RUSTC, RUST_LIB_SRC,
# BINDGEN, LLVM_SUFFIX (default -19), JOBS.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${RKVM_CACHE:-$HOME/.cache/rkvm}
variant=release
[ "${1:-}" = "--debug" ] && variant=debug
rustc=${RUSTC:-/usr/bin/rustc}
rust_lib_src=${RUST_LIB_SRC:-$(ls -d /usr/src/rustc-*/library 2>/dev/null | sort -V | tail -n1)}
bindgen=${BINDGEN:-$cache/tools/bin/bindgen}
llvm=${LLVM_SUFFIX:--19}
jobs=${JOBS:-$(nproc)}

log() { echo "kernel.sh: $*" >&2; }

# --- source: trixie-backports linux-source-7.3 through a private apt config ---
apt_dir=$cache/apt
mkdir -p "$apt_dir/etc" "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" \
	> "$apt_dir/etc/sources.list"
apt_opts="-o Dir::Etc::SourceList=$apt_dir/etc/sources.list -o Dir::Etc::SourceParts=/dev/null \
 -o Dir::State::Lists=$apt_dir/lists -o Dir::Cache::Archives=$apt_dir/archives \
 -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root \
 -o Debug::NoLocking=1"

# Two runs sharing one cache (two clones, CI beside a developer) must not
# corrupt each other: every step that writes into the cache runs under an
# flock, and re-checks its "done" marker once it holds the lock. Partial
# states left by a killed run are recovered: a .deb that dpkg-deb cannot
# read is fetched again, a source tree is unpacked into a temporary
# directory and renamed into place (a tree without .rkvm-unpacked is never
# used), and a build directory without .rkvm-built is built again.
lock() { # lock NAME: hold $cache/locks/NAME on fd 9 until the next lock/unlock
	mkdir -p "$cache/locks"
	exec 9>"$cache/locks/$1.lock"
	if ! flock -n 9; then
		log "waiting for $cache/locks/$1.lock (another configure/kernel.sh uses the cache)"
		flock 9
	fi
}
unlock() { exec 9>&-; }

latest_deb() {
	for d in $(ls "$apt_dir"/archives/linux-source-7.3_*.deb 2>/dev/null | sort -rV); do
		if dpkg-deb -f "$d" Version >/dev/null 2>&1; then echo "$d"; return; fi
		log "removing unreadable $d (an interrupted download?)"
		rm -f "$d"
	done
}

deb=$(latest_deb)
if [ -z "$deb" ]; then
	lock apt
	deb=$(latest_deb)
	if [ -z "$deb" ]; then
		log "downloading linux-source-7.3 from trixie-backports (private apt config in $apt_dir)"
		# shellcheck disable=SC2086
		apt-get $apt_opts -qq update >&2
		# shellcheck disable=SC2086
		(cd "$apt_dir/archives" && apt-get $apt_opts -qq download linux-source-7.3 >&2)
		deb=$(latest_deb)
		[ -n "$deb" ] || { log "download of linux-source-7.3 failed"; exit 1; }
	fi
	unlock
fi
srcver=$(dpkg-deb -f "$deb" Version)
src=$cache/src/linux-source-$srcver
if [ ! -f "$src/.rkvm-unpacked" ]; then
	lock src
	if [ ! -f "$src/.rkvm-unpacked" ]; then
		log "unpacking $deb"
		mkdir -p "$cache/src"
		tmp=$(mktemp -d "$cache/src/.unpack.XXXXXX")
		dpkg-deb --fsys-tarfile "$deb" | tar -C "$tmp" -x --wildcards './usr/src/linux-source-7.3.tar.*'
		mkdir "$tmp/tree"
		tar -C "$tmp/tree" --strip-components=1 -xf "$tmp"/usr/src/linux-source-7.3.tar.*
		touch "$tmp/tree/.rkvm-unpacked"
		# A stale partial tree (an older kernel.sh unpacked in place) and
		# temporary directories of killed runs go; we hold the lock.
		rm -rf "$src" "$cache/src/tmp"
		mv "$tmp/tree" "$src"
		rm -rf "$tmp"
		find "$cache/src" -maxdepth 1 -name '.unpack.*' -mmin +1 -exec rm -rf {} + 2>/dev/null || true
	fi
	unlock
fi

# --- cache key ---
frags="$here/config/kernel.fragment"
[ "$variant" = debug ] && frags="$frags $here/config/kernel-debug.fragment"
key=$( {
	echo "$srcver $variant"
	cat $frags
	"$rustc" --version
	"clang$llvm" --version | head -n1
	"$bindgen" --version
} | sha256sum | cut -c1-16)
out=$cache/kbuild/$variant-$key

kmake() {
	make -C "$src" O="$out" LLVM="$llvm" RUSTC="$rustc" RUST_LIB_SRC="$rust_lib_src" \
		BINDGEN="$bindgen" "$@"
}

if [ -f "$out/.rkvm-built" ]; then
	log "reusing cached kernel build $out"
	echo "$out"
	exit 0
fi

lock "kbuild-$variant-$key"
if [ -f "$out/.rkvm-built" ]; then
	log "reusing cached kernel build $out (built by another run meanwhile)"
	echo "$out"
	exit 0
fi

build() {
	log "building kernel ($variant) in $out with $jobs jobs"
	# (called as `build || ...`, where set -e is off: every step checks)
	mkdir -p "$out" || return 1
	kmake -s tinyconfig >&2 || return 1
	# shellcheck disable=SC2086
	"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" $frags >/dev/null || return 1
	kmake -s olddefconfig >&2 || return 1

	# Every fragment line must have survived olddefconfig (a silently dropped
	# option, e.g. RUST when the toolchain is unusable, is a hard error here).
	missing=0
	for f in $frags; do
		grep -E '^CONFIG_' "$f" | while IFS= read -r line; do
			opt=${line%%=*}
			val=${line#*=}
			if [ "$val" = n ]; then
				grep -q "^$opt=" "$out/.config" && { log "config: $opt should be off"; echo x; }
			else
				grep -qxF "$line" "$out/.config" || { log "config: wanted $line, got: $(grep "^$opt=" "$out/.config" || echo unset)"; echo x; }
			fi
		done
	done | grep -q x && missing=1
	if [ "$missing" = 1 ]; then
		kmake -s rustavailable >&2 || true
		log "kernel config incomplete; see above"
		return 2
	fi

	kmake -j"$jobs" bzImage modules >&2 || return 1
	# The in-tree KVM modules are the reference column of `make check`.
	rm -rf "$out/modinst" || return 1
	kmake -s INSTALL_MOD_PATH="$out/modinst" modules_install >&2 || return 1
}

# A directory without .rkvm-built is a partial build (a killed or failed
# run): continue it incrementally, and if that fails start from scratch once.
[ -d "$out" ] && log "continuing the partial build in $out"
rc=0
build || rc=$?
if [ "$rc" = 1 ] && [ -d "$out" ]; then
	log "build failed; retrying from scratch"
	rm -rf "$out"
	rc=0
	build || rc=$?
fi
[ "$rc" = 0 ] || exit 1
touch "$out/.rkvm-built"
unlock
echo "$out"
