#!/bin/bash
# Boot the rkvm test VM: our 7.3 kernel under QEMU TCG with nested SVM,
# the host's / as a read-only 9p root (so host-built test binaries, QEMU
# and udev just work inside), and OUTDIR as a writable 9p share at /mnt.
# PID 1 is tests/vm/init.sh, which runs MODE for module SET.
#
#   scripts/vm.sh MODE SET OUTDIR [TIMEOUT_SECONDS]
#     MODE: check | run | bench | exec (runs $RKVM_CMD, no spaces)
#           | fuzz (scripts/fuzz.sh: steps in $RKVM_FUZZ)
#           | l2 (scripts/l2-boot.sh check alone, L2_VARIANTS: make check-nested)
#     SET: ours | intree
#   Environment: RKVM_CPU (QEMU -cpu), RKVM_TEST_FILTER (guest tests to
#   run), RKVM_ONLY_VMTEST=1 (no peer suite, no L2), RKVM_L1_INSMOD=KO and
#   RKVM_L1_INSMOD_ARGS (no spaces: a test-only module init.sh loads first,
#   e.g. tests/vm/warnmod), RKVM_MODULE_PARAMS (parameters of the KVM
#   modules the tests load: NAME.ko=PARAMS[;NAME.ko=PARAMS], "+" for a
#   space, e.g. RKVM_MODULE_PARAMS='kvm-amd.ko=npt=0'), L2_VARIANTS (the
#   nested QEMU variants, default all), L2_MIGRATE_LEGS (the legs of the
#   migrate variant, default 1 2 3), L2_BOOT_TIMEOUT, L2_CMD_TIMEOUT,
#   L2_BUDGET (scripts/l2-boot.sh's limits), L2_NESTED_CPU, L2_NESTED_PARAMS,
#   L2_NESTED_TRACE (its variant nested), RKVM_NO_PEER=1 (no peer suite and
#   no fuzzer run; L2 still), RKVM_VM_MONITOR=PATH (the QEMU human monitor
#   on a unix socket at PATH, to read a stuck VM's state: socat - UNIX:PATH).
#
# A WARN does not stop the VM (panic_on_warn stays 0): the run goes on and
# scripts/check.sh fails on the report in the streamed kernel log. A panic
# reboots at once (panic=-1), which -no-reboot turns into QEMU's exit.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/config.mak"
mode=$1 set=$2 out=$3 tmo=${4:-600}
mkdir -p "$out"
rm -f "$out"/results.txt "$out"/l2-results.txt "$out"/dmesg.txt "$out"/done "$out"/phases.txt "$out"/*.rc

cpu=${RKVM_CPU:-EPYC,+svm,+npt}
append="console=ttyS0 panic=-1 no_timer_check root=hostroot rootfstype=9p \
rootflags=trans=virtio,version=9p2000.L,msize=524288,cache=loose ro \
init=$here/tests/vm/init.sh rkvm.mode=$mode rkvm.set=$set rkvm.repo=$here \
rkvm.kdir=$KERNELDIR rkvm.krel=$KERNELRELEASE${RKVM_CMD:+ rkvm.cmd=$RKVM_CMD}${RKVM_TEST_FILTER:+ rkvm.filter=$RKVM_TEST_FILTER}${RKVM_ONLY_VMTEST:+ rkvm.only_vmtest=1}\
${RKVM_L1_INSMOD:+ rkvm.l1_insmod=$RKVM_L1_INSMOD}${RKVM_L1_INSMOD_ARGS:+ rkvm.l1_insmod_args=$RKVM_L1_INSMOD_ARGS}\
${RKVM_FUZZ:+ rkvm.fuzz=$RKVM_FUZZ}${RKVM_FUZZ_SECS:+ rkvm.fuzzsecs=$RKVM_FUZZ_SECS}\
${RKVM_MODULE_PARAMS:+ rkvm.module_params=$RKVM_MODULE_PARAMS}${RKVM_NO_PEER:+ rkvm.no_peer=1}\
${L2_VARIANTS:+ rkvm.l2_variants=${L2_VARIANTS// /,}}${L2_MIGRATE_LEGS:+ rkvm.l2_migrate_legs=${L2_MIGRATE_LEGS// /,}}\
${L2_BOOT_TIMEOUT:+ rkvm.l2_boot_timeout=$L2_BOOT_TIMEOUT}${L2_CMD_TIMEOUT:+ rkvm.l2_cmd_timeout=$L2_CMD_TIMEOUT}${L2_BUDGET:+ rkvm.l2_budget=$L2_BUDGET}\
${L2_NESTED_CPU:+ rkvm.l2_nested_cpu=$L2_NESTED_CPU}${L2_NESTED_PARAMS:+ rkvm.l2_nested_params=${L2_NESTED_PARAMS// /,}}\
${L2_NESTED_TRACE:+ rkvm.l2_nested_trace=$L2_NESTED_TRACE}"

monitor=none
[ -z "${RKVM_VM_MONITOR:-}" ] || monitor=unix:$RKVM_VM_MONITOR,server,nowait
rc=0
timeout --foreground -k 10 "$tmo" "${QEMU:-qemu-system-x86_64}" \
	-machine q35 -nodefaults -vga none -accel tcg,thread=multi -cpu "$cpu" -smp 2 -m 3G \
	-display none -no-reboot -monitor "$monitor" -serial stdio \
	-kernel "$KERNELDIR/arch/x86/boot/bzImage" -append "$append" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs local,path="$out",mount_tag=out,security_model=none,multidevs=remap \
	-device virtio-rng-pci || rc=$?
if [ ! -f "$out/done" ]; then
	[ "$rc" != 124 ] || echo "vm.sh: time limit of ${tmo}s reached; QEMU killed" >&2
	echo "vm.sh: the VM did not finish (qemu exit status $rc)" >&2
	exit 1
fi
