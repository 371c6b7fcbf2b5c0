#!/bin/sh
# PID 1 of the rkvm test VM (started by scripts/vm.sh). The root file system
# is the host's / over 9p, read-only; /mnt is the writable results share.
# Parameters come on the kernel command line: rkvm.mode, rkvm.set,
# rkvm.repo, rkvm.kdir, rkvm.krel (and optional ones, below).
#
# Results in /mnt: dmesg.txt (the kernel log, streamed from boot to
# poweroff), and in check mode results.txt, peer-*.txt, l2-results.txt,
# phases.txt and the exit status of each step: vmtest.rc, peer.rc, l2.rc
# (128 + N: killed by signal N).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Statistics and tracepoints (kvm_stat, tracefs events): issue 13.
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm

for p in $(cat /proc/cmdline); do
	case $p in
	rkvm.*=*) k=${p%%=*}; eval "${k#rkvm.}=\${p#*=}" ;;
	esac
done
# rkvm.filter (RKVM_TEST_FILTER on the host): run only matching guest tests.
[ -n "$filter" ] && export RKVM_TEST_FILTER=$filter
# rkvm.module_params (RKVM_MODULE_PARAMS on the host): parameters of the
# KVM modules rkvm-vmtest loads, e.g. kvm-amd.ko=npt=0.
[ -n "${module_params:-}" ] && export RKVM_MODULE_PARAMS=$module_params
# rkvm.l2_variants (L2_VARIANTS on the host, commas for spaces): the
# nested QEMU variants scripts/l2-boot.sh runs.
[ -n "${l2_variants:-}" ] && export L2_VARIANTS="$(echo "$l2_variants" | tr , " ")"
[ -n "${l2_migrate_legs:-}" ] && export L2_MIGRATE_LEGS="$(echo "$l2_migrate_legs" | tr , " ")"
# rkvm.l2_boot_timeout, l2_cmd_timeout, l2_budget: scripts/l2-boot.sh's
# time limits (check-debug's KASAN kernel is much slower).
[ -n "${l2_boot_timeout:-}" ] && export L2_BOOT_TIMEOUT=$l2_boot_timeout
[ -n "${l2_cmd_timeout:-}" ] && export L2_CMD_TIMEOUT=$l2_cmd_timeout
[ -n "${l2_budget:-}" ] && export L2_BUDGET=$l2_budget
# rkvm.l2_nested_cpu, l2_nested_params (commas for spaces), l2_nested_trace:
# scripts/l2-boot.sh's variant nested (make check-nested).
[ -n "${l2_nested_cpu:-}" ] && export L2_NESTED_CPU="$l2_nested_cpu"
[ -n "${l2_nested_params:-}" ] && L2_NESTED_PARAMS=$(echo "$l2_nested_params" | tr , " ") && export L2_NESTED_PARAMS
[ -n "${l2_nested_trace:-}" ] && export L2_NESTED_TRACE="$l2_nested_trace"

# Writable /tmp and /run over the read-only root; host paths we need that
# live below them (a clone in /tmp, say) are bound back on top.
mkdir -p /dev/shm/host
mount --bind / /dev/shm/host
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
for d in "$repo" "$kdir"; do
	case $d in
	/tmp/*|/run/*) mkdir -p "$d" && mount --bind "/dev/shm/host$d" "$d" ;;
	esac
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out /mnt
out=/mnt

# A kmemleak scan (debug kernel only), for `make check-debug`: objects
# must be 5 s old to be reported, so wait, and scan twice to confirm.
leakscan() {
	[ -e /sys/kernel/debug/kmemleak ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[ -w /sys/kernel/debug/kmemleak ] || return 0
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	echo scan > /sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak > $out/kmemleak.txt 2>&1
}

# Runs a command in the background and stops waiting for it after $1
# seconds (a task stuck in the kernel cannot be killed, so never `wait`
# for it then); its exit status goes to $2.
bounded() {
	t=$1 rcf=$2
	shift 2
	( "$@"; echo $? > "$rcf" ) &
	p=$!
	i=0
	while kill -0 $p 2>/dev/null; do
		sleep 1
		i=$((i + 1))
		if [ $i -ge "$t" ]; then
			echo "timeout after $t s" > "$rcf"
			kill -9 $p 2>/dev/null
			return 1
		fi
	done
}

# The kernel log, streamed to the results share as it is written: nothing
# is lost when the ring buffer wraps, and what came before a crash is there.
stdbuf -oL dmesg --follow > $out/dmesg.txt 2>&1 &
kmsg_pid=$!
export RKVM_L1_KMSG=$out/dmesg.txt

# finish: stop the kernel log stream, mark the run complete, power off.
finish() {
	leakscan
	sleep 1
	kill $kmsg_pid
	wait $kmsg_pid 2>/dev/null
	touch $out/done
	sync
	busybox poweroff -f
}

# rkvm.l1_insmod=KO [rkvm.l1_insmod_args=ARGS]: a test-only module loaded
# first (tests/vm/warnmod: a deliberate WARN early in boot, to show that
# scripts/check.sh catches it).
if [ -n "${l1_insmod:-}" ]; then
	insmod "$l1_insmod" ${l1_insmod_args:-} || echo "init: insmod $l1_insmod failed" >&2
fi

# udev with nothing but our rule, so the test proves scripts/65-kvm.rules
# (Debian's default rules would also set group kvm on /dev/kvm).
if ! grep -q '^kvm:' /etc/group; then
	cp /etc/group /tmp/group && echo 'kvm:x:108:' >> /tmp/group
	mount --bind /tmp/group /etc/group
fi
mkdir -p /tmp/no-rules /run/udev/rules.d
cp "$repo/scripts/65-kvm.rules" /run/udev/rules.d/
mount --bind /tmp/no-rules /usr/lib/udev/rules.d
[ -d /etc/udev/rules.d ] && mount --bind /tmp/no-rules /etc/udev/rules.d
/lib/systemd/systemd-udevd --daemon --resolve-names=early 2>/dev/null

vmtest=$repo/build/vmtest/release/rkvm-vmtest
intree=$kdir/modinst/lib/modules/$krel/kernel
# mods_of SET: rkvm-vmtest's module arguments for SET.
mods_of() {
	case $1 in
	ours) echo "--kvm $repo/x86/kvm.ko --amd $repo/x86/kvm-amd.ko --intel $repo/x86/kvm-intel.ko" ;;
	intree) echo "--pre $intree/virt/lib/irqbypass.ko --kvm $intree/arch/x86/kvm/kvm.ko \
		--amd $intree/arch/x86/kvm/kvm-amd.ko --intel $intree/arch/x86/kvm/kvm-intel.ko" ;;
	esac
}
mods=$(mods_of "$set")

case $mode in
check)
	# Phase timings (uptime), for finding where the time goes.
	phase() { read -r up _ < /proc/uptime; echo "$up $1" >> $out/phases.txt; }
	phase vmtest
	# shellcheck disable=SC2086
	$vmtest --set "$set" $mods > $out/results.txt 2> $out/vmtest.err
	echo $? > $out/vmtest.rc
	# A short run of the ioctl fuzzer (issue 17; scripts/fuzz.sh runs the
	# long ones): its PASS/FAIL lines join the results.
	phase fuzz
	fz=$repo/build/ioctlfuzz/release/rkvm-ioctlfuzz
	# shellcheck disable=SC2086
	[ -x "$fz" ] && [ -z "${only_vmtest:-}" ] && [ -z "${no_peer:-}" ] && bounded 180 $out/fuzz.rc $fz --set "$set" $mods \
		--seconds "${fuzzsecs:-5}" --calls 1000000 --out $out --name fuzz-short >> $out/results.txt 2> $out/fuzz.err
	# rkvm.only_vmtest (a re-run of single tests): no install test, no
	# peer suite, no L2.
	if [ -n "${only_vmtest:-}" ]; then phase end; finish; fi
	# `make install` into a tmpfs root, modprobe by the CPU's modalias,
	# modinfo (install/* rows); leaves no module loaded. rkvm.no_peer
	# (RKVM_NO_PEER=1): neither it, the fuzzer nor the peer suite; L2 still.
	phase install
	[ -z "${no_peer:-}" ] &&
		bounded 180 $out/install.rc "$repo/tests/vm/install.sh" "$set" "$repo" "$kdir" "$krel" \
			>> $out/results.txt 2> $out/install.err
	phase peer
	# Peer suite (kvm-ioctls' own tests), when scripts/peer.sh built it.
	if [ -s "$repo/build/peer/tests.list" ] && [ -z "${no_peer:-}" ]; then
		# shellcheck disable=SC2086
		"$repo/scripts/peer.sh" vm "$out" $mods > $out/peer.log 2>&1
		echo $? > $out/peer.rc
	fi
	# Nested guest (issue 6): unmodified QEMU -accel kvm boots the L2 guest
	# (build/l2, made on the host by scripts/l2-initramfs.sh); reloads the
	# modules, writes $out/l2-results.txt.
	phase l2
	# The live-migration variant's cross legs swap the column's set for
	# the in-tree one and back (in the in-tree column: reload it).
	# shellcheck disable=SC2086
	RKVM_L2_PEER_MODS="$(mods_of intree)" "$repo/scripts/l2-boot.sh" check "$out" $mods > $out/l2.log 2>&1
	echo $? > $out/l2.rc
	phase end
	;;
l2)
	# Only the nested QEMU test (scripts/check-nested.sh: L2_VARIANTS=nested
	# with kvm-amd nested=1): no rkvm-vmtest, fuzzer, install test or peer
	# suite. scripts/l2-boot.sh loads the set itself (with
	# RKVM_MODULE_PARAMS) and writes $out/l2-results.txt.
	echo "$(cut -d' ' -f1 /proc/uptime) l2" >> $out/phases.txt
	# shellcheck disable=SC2086
	"$repo/scripts/l2-boot.sh" check "$out" $mods > $out/l2.log 2>&1
	echo $? > $out/l2.rc
	echo "$(cut -d' ' -f1 /proc/uptime) end" >> $out/phases.txt
	;;
run)
	# shellcheck disable=SC2086
	$vmtest --set "$set" $mods --demo 2>&1
	# shellcheck disable=SC2086
	"$repo/scripts/l2-demo.sh" $mods 2>&1
	;;
bench)
	# scripts/bench.sh: /mnt/bench-params sets BENCH_ROUNDS, BENCH_SETS
	# (the order within a round), BENCH_ITERS, BENCH_ROWS, BENCH_L2,
	# BENCH_NPT0 (rkvm-vmtest rows to run again with kvm-amd npt=0) and
	# BENCH_NPT0_L2 (1: the L2 rows too, fork+exec BENCH_NPT0_FORKS times;
	# rows npt0/<row>); the rounds are tests/vm/bench-rounds.sh's (shared
	# with the VMX table's Bochs VM): OUT/bench-SET-ROUND.txt,
	# OUT/rc-SET-ROUND.txt.
	# shellcheck disable=SC1091
	. $out/bench-params
	# Both sets load with the boot's module parameters.
	params_of() { echo "${RKVM_MODULE_PARAMS:-}"; }
	# shellcheck disable=SC1091
	. "$repo/tests/vm/bench-rounds.sh"
	bench_rounds $out
	;;
fuzz)
	# scripts/fuzz.sh: rkvm.fuzz lists the steps, comma-separated, "+" for
	# spaces in their arguments: fuzz:ARGS (the ioctl fuzzer), faults
	# (fault injection), lifecycle:N, replay:FILE. rkvm.fuzzsecs bounds
	# each step. Results (PASS/FAIL/INFO lines) go to fuzz-results.txt.
	fz=$repo/build/ioctlfuzz/release/rkvm-ioctlfuzz
	[ -e /sys/kernel/debug/kmemleak ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	# Leak suspects from boot are not ours: scan, then forget them.
	if [ -w /sys/kernel/debug/kmemleak ]; then
		echo scan > /sys/kernel/debug/kmemleak
		cat /sys/kernel/debug/kmemleak > $out/kmemleak-boot.txt
		echo clear > /sys/kernel/debug/kmemleak
	fi
	: > $out/fuzz-results.txt
	for step in $(echo "$fuzz" | tr , ' '); do
		a=$(echo "${step#*:}" | tr + ' ')
		case $step in
		fuzz:*) a="--out $out $a" ;;
		faults*) a="--faults --out $out --name faults" ;;
		lifecycle:*) a="--lifecycle $a --name lifecycle" ;;
		replay:*) a="--replay $a --out $out --name replay" ;;
		*) echo "FAIL fuzz/step: unknown step $step" >> $out/fuzz-results.txt; continue ;;
		esac
		echo "$(cut -d' ' -f1 /proc/uptime) ${step%%:*}" >> $out/phases.txt
		# shellcheck disable=SC2086
		bounded "${fuzzsecs:-3000}" $out/fuzz-${step%%:*}.rc $fz --set "$set" $mods $a \
			>> $out/fuzz-results.txt 2>> $out/fuzz.err ||
			echo "FAIL ${step%%:*}/finished: still running after ${fuzzsecs:-3000} s (stuck in the kernel?)" >> $out/fuzz-results.txt
	done
	;;
shell)
	setsid sh -c 'exec sh </dev/ttyS0 >/dev/ttyS0 2>&1'
	;;
exec)
	# Debugging aid (scripts/vm.sh exec SET OUT, with RKVM_CMD): load the
	# module set, run one command, show its output on the console.
	case $set in
	ours) insmod $repo/x86/kvm.ko && insmod $repo/x86/kvm-amd.ko ;;
	intree) insmod $intree/virt/lib/irqbypass.ko; insmod $intree/arch/x86/kvm/kvm.ko &&
		insmod $intree/arch/x86/kvm/kvm-amd.ko ;;
	esac
	udevadm settle
	sh -c "$cmd" 2>&1 | tee $out/exec.txt
	;;
esac
finish
