#!/bin/bash
# Boot the rkvm test VM: our 7.3 kernel under QEMU TCG with nested SVM,
# the host's / as a read-only 9p root (so host-built test binaries, QEMU
# and udev just work inside), and OUTDIR as a writable 9p share at /mnt.
# PID 1 is tests/vm/init.sh, which runs MODE for module SET.
#
#   scripts/vm.sh MODE SET OUTDIR [TIMEOUT_SECONDS]
#     MODE: check | run | bench | exec (runs $RKVM_CMD, no spaces)
#           | fuzz (scripts/fuzz.sh: steps in $RKVM_FUZZ)
#     SET: ours | intree
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/config.mak"
mode=$1 set=$2 out=$3 tmo=${4:-600}
mkdir -p "$out"
rm -f "$out"/results.txt "$out"/dmesg.txt "$out"/done "$out"/phases.txt

cpu=${RKVM_CPU:-EPYC,+svm,+npt}
append="console=ttyS0 panic=-1 oops=panic_on_warn=0 no_timer_check root=hostroot rootfstype=9p \
rootflags=trans=virtio,version=9p2000.L,msize=524288,cache=loose ro \
init=$here/tests/vm/init.sh rkvm.mode=$mode rkvm.set=$set rkvm.repo=$here \
rkvm.kdir=$KERNELDIR rkvm.krel=$KERNELRELEASE${RKVM_CMD:+ rkvm.cmd=$RKVM_CMD}${RKVM_TEST_FILTER:+ rkvm.filter=$RKVM_TEST_FILTER}${RKVM_ONLY_VMTEST:+ rkvm.only_vmtest=1}\
${RKVM_FUZZ:+ rkvm.fuzz=$RKVM_FUZZ}${RKVM_FUZZ_SECS:+ rkvm.fuzzsecs=$RKVM_FUZZ_SECS}"

timeout --foreground -k 10 "$tmo" "${QEMU:-qemu-system-x86_64}" \
	-machine q35 -nodefaults -vga none -accel tcg,thread=multi -cpu "$cpu" -smp 2 -m 3G \
	-display none -no-reboot -monitor none -serial stdio \
	-kernel "$KERNELDIR/arch/x86/boot/bzImage" -append "$append" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs local,path="$out",mount_tag=out,security_model=none,multidevs=remap \
	-device virtio-rng-pci
rc=$?
[ -f "$out/done" ] || { echo "vm.sh: the VM did not finish (qemu exit $rc)" >&2; exit 1; }
