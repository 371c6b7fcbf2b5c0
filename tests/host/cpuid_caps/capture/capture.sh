#!/bin/bash
# Boot the rkvm test VM (same kernel and CPU model as scripts/vm.sh) with
# the in-tree kvm-amd module and record KVM_GET_SUPPORTED_CPUID & co.
#
#   tests/host/cpuid_caps/capture/capture.sh OUTDIR [TIMEOUT_SECONDS]
#   RKVM_CPU overrides the CPU model (default EPYC,+svm,+npt).
# Result: OUTDIR/capture.txt (copy it to ../fixtures/ to use it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
# shellcheck disable=SC1091
. "$repo/config.mak"
out=$(mkdir -p "$1" && cd "$1" && pwd) tmo=${2:-600}
rm -f "$out"/capture.txt "$out"/done
gcc -O1 -Wall -static -o "$out/capture" "$here/capture.c"

cpu=${RKVM_CPU:-EPYC,+svm,+npt}
append="console=ttyS0 panic=-1 root=hostroot rootfstype=9p \
rootflags=trans=virtio,version=9p2000.L,msize=524288,cache=loose ro \
init=$here/init.sh cap.kdir=$KERNELDIR cap.krel=$KERNELRELEASE"

timeout --foreground -k 10 "$tmo" "${QEMU:-qemu-system-x86_64}" \
	-machine q35 -nodefaults -vga none -accel tcg,thread=multi -cpu "$cpu" -smp 2 -m 1G \
	-display none -no-reboot -monitor none -serial stdio \
	-kernel "$KERNELDIR/arch/x86/boot/bzImage" -append "$append" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs local,path="$out",mount_tag=out,security_model=none,multidevs=remap \
	> "$out/console.log" 2>&1 || true
[ -f "$out/done" ] || { echo "capture.sh: the VM did not finish; see $out/console.log" >&2; exit 1; }
echo "capture.sh: $out/capture.txt"
