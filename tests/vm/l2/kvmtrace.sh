#!/bin/bash
# Build the kvmtrace LD_PRELOAD shim (tests/vm/l2/kvmtrace.c) on the host:
#   tests/vm/l2/kvmtrace.sh [OUTDIR]      default OUTDIR: build/l2
# writes OUTDIR/kvmtrace.so. Use it in the test VM:
#   KVMTRACE_OUT=/mnt/qemu.kvmtrace LD_PRELOAD=$OUTDIR/kvmtrace.so qemu-system-x86_64 ...
# The ioctl and capability names come from our uapi headers (usr/include).
set -eu
here=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:-$here/build/l2}
gen=$out/kvmtrace-gen
mkdir -p "$gen"
inc=$here/usr/include
sed -nE 's/^#define (KVM_[A-Z0-9_]+)[[:space:]]+_IO.*/X(\1)/p' "$inc/linux/kvm.h" "$inc/asm/kvm.h" |
	sort -u > "$gen/kvmtrace-ioctls.h"
sed -nE 's/^#define (KVM_CAP_[A-Z0-9_]+)[[:space:]]+[0-9]+.*/X(\1)/p' "$inc/linux/kvm.h" |
	sort -u > "$gen/kvmtrace-caps.h"
cc=${CC:-gcc}
# Drop the names whose structs are not defined on x86 (they do not compile).
for _ in 1 2 3 4 5; do
	if "$cc" -fsyntax-only -I"$gen" -I"$inc" "$here/tests/vm/l2/kvmtrace.c" 2> "$gen/errs"; then
		break
	fi
	bad=$(grep -oE "kvmtrace-ioctls.h:[0-9]+" "$gen/errs" | cut -d: -f2 | sort -un)
	[ -n "$bad" ] || { cat "$gen/errs" >&2; exit 1; }
	sed -i "$(printf '%sd;' $bad)" "$gen/kvmtrace-ioctls.h"
done
"$cc" -O2 -Wall -shared -fPIC -I"$gen" -I"$inc" -o "$out/kvmtrace.so" "$here/tests/vm/l2/kvmtrace.c" -ldl -lpthread
echo "kvmtrace: $out/kvmtrace.so ($(wc -l < "$gen/kvmtrace-ioctls.h") ioctls, $(wc -l < "$gen/kvmtrace-caps.h") caps)"
