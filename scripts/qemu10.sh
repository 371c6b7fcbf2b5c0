#!/bin/sh
# Fetch QEMU 10 (Debian bookworm-backports' qemu-system-x86, -common and
# -data) with a private apt configuration and extract it into the cache,
# for the L2 rows that run a second, newer QEMU (scripts/l2-boot.sh, variant
# qemu10). Nothing is installed: the packages are unpacked with dpkg-deb -x
# into $RKVM_CACHE/qemu-X.Y and run from there against the system's
# libraries (those of bookworm's own qemu-system-x86, which ./configure
# installs), with -L PREFIX/usr/share/qemu for the firmware. The system's
# apt sources are not touched. Prints the prefix on the last line.
#
#   scripts/qemu10.sh
#
# Environment: RKVM_CACHE (default ~/.cache/rkvm).
set -eu

cache=${RKVM_CACHE:-$HOME/.cache/rkvm}
log() { echo "qemu10.sh: $*" >&2; }

# usable PREFIX: PREFIX's QEMU runs here and is a 10.x.
usable() {
	"$1/usr/bin/qemu-system-x86_64" --version 2>/dev/null | head -n 1 | grep -q '^QEMU emulator version 10\.'
}

# The newest extracted QEMU 10 (qemu-10.Y, highest Y first).
found() {
	for d in $(ls -d "$cache"/qemu-10.* 2>/dev/null | sort -rV); do
		if usable "$d"; then echo "$d"; return; fi
	done
}

d=$(found)
if [ -n "$d" ]; then
	echo "$d"
	exit 0
fi

# Serialised against other runs sharing the cache (as scripts/kernel.sh).
mkdir -p "$cache/locks"
exec 9>"$cache/locks/qemu10.lock"
if ! flock -n 9; then
	log "waiting for $cache/locks/qemu10.lock (another run fetches QEMU 10)"
	flock 9
fi
d=$(found)
if [ -n "$d" ]; then
	echo "$d"
	exit 0
fi

apt_dir=$cache/apt-bookworm-backports
mkdir -p "$apt_dir/etc" "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" \
	> "$apt_dir/etc/sources.list"
apt_opts="-o Dir::Etc::SourceList=$apt_dir/etc/sources.list -o Dir::Etc::SourceParts=/dev/null \
 -o Dir::State::Lists=$apt_dir/lists -o Dir::Cache::Archives=$apt_dir/archives \
 -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o APT::Sandbox::User=root \
 -o Debug::NoLocking=1"
pkgs="qemu-system-x86 qemu-system-common qemu-system-data"
log "downloading $pkgs from bookworm-backports (private apt config in $apt_dir)"
# shellcheck disable=SC2086
apt-get $apt_opts -qq update >&2
rm -f "$apt_dir"/archives/*.deb
# shellcheck disable=SC2086
(cd "$apt_dir/archives" && apt-get $apt_opts -qq download $pkgs >&2)

ver=$(dpkg-deb -f "$(ls "$apt_dir"/archives/qemu-system-x86_*.deb | head -n 1)" Version)
# 1:10.0.2+ds-2+deb13u1~bpo12+1 -> 10.0
short=$(echo "$ver" | sed 's/^[0-9]*://; s/^\([0-9]*\.[0-9]*\).*/\1/')
case $short in
10.*) ;;
*) log "bookworm-backports has qemu-system-x86 $ver, not a 10.x"; exit 1 ;;
esac
tmp=$(mktemp -d "$cache/.qemu-unpack.XXXXXX")
for p in $pkgs; do
	dpkg-deb -x "$(ls "$apt_dir"/archives/"${p}"_*.deb | head -n 1)" "$tmp"
done
if ! usable "$tmp"; then
	log "the extracted QEMU $ver does not run here:"
	"$tmp/usr/bin/qemu-system-x86_64" --version >&2 || true
	rm -rf "$tmp"
	exit 1
fi
rm -rf "$cache/qemu-$short"
mv "$tmp" "$cache/qemu-$short"
log "QEMU $ver in $cache/qemu-$short"
echo "$cache/qemu-$short"
