#!/bin/bash
# Build the L2 guest's initramfs (on the host, before the test VM boots):
# the nested guest that QEMU runs with -accel kvm inside the test VM.
#
#   scripts/l2-initramfs.sh [OUTDIR]     default OUTDIR: build/l2
#
# Writes OUTDIR/initramfs.cpio.gz: /init (tests/vm/l2/init), the host's
# static busybox as /bin/busybox, /l2/{workload,logcheck,send,migrate}.sh,
# /l2/pagestress (tests/vm/l2/pagestress.c, built here static with gcc);
# OUTDIR/expected.txt:
# "RKVM-L2-SHA256 <sum>", the workload's result computed here with the
# same busybox binary (so the guest must print exactly that line); and
# OUTDIR/expected-paging.txt: the line "RKVM-L2-PAGING <hash> ..." of the
# same pagestress binary run here (row l2/paging-stress).
# The kernel is the test kernel's own bzImage ($KERNELDIR, config.mak);
# its built-in initramfs supplies /dev/console.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/build/l2}
bb=/bin/busybox
if [ ! -x "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
	echo "l2-initramfs: $bb is missing or not static (apt-get install busybox-static)" >&2
	exit 1
fi
mkdir -p "$out"
root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,l2,etc,root}
cp "$bb" "$root/bin/busybox"
install -m 0755 "$here/tests/vm/l2/init" "$root/init"
for f in workload.sh logcheck.sh send.sh migrate.sh; do
	install -m 0755 "$here/tests/vm/l2/$f" "$root/l2/$f"
done
# The paging stress (issue 12): static, so it needs nothing in the guest.
"${CC:-gcc}" -static -O2 -Wall -Wextra -Werror -s -o "$root/l2/pagestress" "$here/tests/vm/l2/pagestress.c"
echo 'root:x:0:0:root:/tmp:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc --owner 0:0 --reproducible) | gzip -9n > "$out/initramfs.cpio.gz.new"
mv "$out/initramfs.cpio.gz.new" "$out/initramfs.cpio.gz"

# The expected workload result, from the same busybox and script.
wl=$(mktemp -d "$out/wl.XXXXXX")
BUSYBOX=$bb "$bb" sh "$here/tests/vm/l2/workload.sh" "$wl" > "$out/expected.txt.new"
rm -rf "$wl"
grep -Eq '^RKVM-L2-SHA256 [0-9a-f]{64}$' "$out/expected.txt.new" || {
	echo "l2-initramfs: the workload did not run on the host:" >&2
	cat "$out/expected.txt.new" >&2
	exit 1
}
mv "$out/expected.txt.new" "$out/expected.txt"

# The paging stress's expected line, from the same binary (its defaults).
"$root/l2/pagestress" > "$out/expected-paging.txt.new"
grep -Eq '^RKVM-L2-PAGING [0-9a-f]{16} ' "$out/expected-paging.txt.new" || {
	echo "l2-initramfs: /l2/pagestress did not run on the host:" >&2
	cat "$out/expected-paging.txt.new" >&2
	exit 1
}
mv "$out/expected-paging.txt.new" "$out/expected-paging.txt"
echo "l2-initramfs: $out/initramfs.cpio.gz ($(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB), $(cat "$out/expected.txt"), $(cat "$out/expected-paging.txt")"
