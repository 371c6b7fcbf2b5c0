#!/bin/sh
# The L2 guest's CPU/memory/IO workload (tests/vm/l2, run by the guest's
# shell as `/l2/workload.sh`, and on the host by scripts/l2-initramfs.sh
# with the very same busybox binary to compute the expected checksum).
#
#   workload.sh [DIR]   DIR: a scratch directory on tmpfs (default /tmp/wl)
#
# Deterministic: a seq of integers, an awk recurrence over it (CPU), the
# two concatenated 8 times (~5 MB of page-cache/tmpfs memory), copied with
# dd in 64 KiB blocks (IO through the page cache) and reversed in 4 KiB
# blocks (more memory traffic). Prints one line:
#   RKVM-L2-SHA256 <sha256 of DIR/out>
# and leaves DIR/out for the caller (e.g. to send it through virtio).
bb=${BUSYBOX:-busybox}
d=${1:-/tmp/wl}
$bb mkdir -p "$d"
$bb seq 1 40000 > "$d/a"
$bb awk '{ s = (s * 31 + $1 * 7) % 1000003; print s, $1 % 97 }' "$d/a" > "$d/b"
i=0
while [ $i -lt 8 ]; do
	$bb cat "$d/a" "$d/b"
	i=$((i + 1))
done > "$d/c"
$bb dd if="$d/c" of="$d/out" bs=65536 2>/dev/null
$bb sort -n -r -k 1,1 "$d/b" | $bb head -n 2000 >> "$d/out"
$bb rm -f "$d/a" "$d/b" "$d/c"
set -- $($bb sha256sum "$d/out")
echo "RKVM-L2-SHA256 $1"
