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

deb=$(ls "$apt_dir"/archives/linux-source-7.3_*.deb 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$deb" ]; then
	log "downloading linux-source-7.3 from trixie-backports (private apt config in $apt_dir)"
	# shellcheck disable=SC2086
	apt-get $apt_opts -qq update >&2
	# shellcheck disable=SC2086
	(cd "$apt_dir/archives" && apt-get $apt_opts -qq download linux-source-7.3 >&2)
	deb=$(ls "$apt_dir"/archives/linux-source-7.3_*.deb | sort -V | tail -n1)
fi
srcver=$(dpkg-deb -f "$deb" Version)
src=$cache/src/linux-source-$srcver
if [ ! -f "$src/.rkvm-unpacked" ]; then
	log "unpacking $deb"
	rm -rf "$src" "$cache/src/tmp"
	mkdir -p "$cache/src/tmp"
	dpkg-deb --fsys-tarfile "$deb" | tar -C "$cache/src/tmp" -x --wildcards './usr/src/linux-source-7.3.tar.*'
	mkdir -p "$src"
	tar -C "$src" --strip-components=1 -xf "$cache"/src/tmp/usr/src/linux-source-7.3.tar.*
	rm -rf "$cache/src/tmp"
	touch "$src/.rkvm-unpacked"
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

log "building kernel ($variant) in $out with $jobs jobs"
mkdir -p "$out"
kmake -s tinyconfig >&2
# shellcheck disable=SC2086
"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" $frags >/dev/null
kmake -s olddefconfig >&2

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
	exit 1
fi

kmake -j"$jobs" bzImage modules >&2
# The in-tree KVM modules are the reference column of `make check`.
rm -rf "$out/modinst"
kmake -s INSTALL_MOD_PATH="$out/modinst" modules_install >&2
touch "$out/.rkvm-built"
echo "$out"
