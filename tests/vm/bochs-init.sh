#!/bin/busybox sh
# PID 1 of the Bochs test VM (scripts/bochs.sh; the VMX column): an Intel
# CPU with VMX+EPT, no 9p. The root is the initramfs that scripts/bochs.sh
# packs: /bin/busybox, rkvm-vmtest and its libraries, both module sets
# (/rkvm/ours, /rkvm/intree), udev with our rule, and in l2/full modes QEMU
# and the L2 guest. Results leave through the second serial port (ttyS1)
# as framed files, which scripts/bochs.sh cuts apart on the host:
#   @@RKVM-FILE <name>
#   ...content...
#   @@RKVM-END <name>
# and "@@RKVM-DONE" last. Parameters on the kernel command line:
#   rkvm.mode    check (rkvm-vmtest) | l2 (scripts/l2-boot.sh) | full (both)
#                | bench (make bench's rounds, run_bench)
#                | exec (rkvm.cmd, with @ for spaces)
#   rkvm.set     ours | intree (| both: bench)
#   rkvm.filter  rkvm-vmtest's guest-suite filter
#   rkvm.l2      the L2 variants, ',' separated
#   rkvm.env.NAME=VALUE   an environment variable (@ for spaces)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/tmp
/bin/busybox --install -s /bin 2>/dev/null

mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Statistics and tracepoints (stats/, trace/ rows), as tests/vm/init.sh.
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

mode= set= filter= cmd= l2=
for p in $(cat /proc/cmdline); do
	case $p in
	rkvm.env.*=*) k=${p%%=*}; export "${k#rkvm.env.}=$(echo "${p#*=}" | tr @ ' ')" ;;
	rkvm.*=*) k=${p%%=*}; eval "${k#rkvm.}=\${p#*=}" ;;
	esac
done

# Results port: 115200 baud (Bochs paces the UART at its baud rate in guest
# time), raw.
stty -F /dev/ttyS1 115200 raw -echo 2>/dev/null
exec 3>/dev/ttyS1
# phase NAME: guest uptime marks for the host's timing table (the host
# stamps the console line with the wall time).
nphase=0
phase() {
	read -r up _ < /proc/uptime
	echo "$up $1 $nphase" >> /tmp/phases.txt
	echo "rkvm-bochs: $up $1" > /dev/console
	nphase=$((nphase + 1))
}
# send NAME [FILE]: one framed file (stdin without FILE) to the host.
send() {
	echo "@@RKVM-FILE $1" >&3
	if [ -n "${2:-}" ]; then cat "$2" >&3 2>/dev/null; else cat >&3; fi
	echo "@@RKVM-END $1" >&3
}
finish() {
	phase end
	send phases.txt /tmp/phases.txt
	# The kernel log gzipped and in base64: a quarter of the bytes through
	# the UART (Bochs paces it at 115200 baud in emulated time).
	dmesg 2>&1 | gzip -9 | base64 > /tmp/dmesg.b64
	send dmesg.gz.b64 /tmp/dmesg.b64
	echo "@@RKVM-DONE" >&3
	# Let the UART drain (the guest idles meanwhile, which Bochs skips
	# through); then the ACPI soft power off ends Bochs.
	sleep 1
	exec 3>&-
	poweroff -f
	sleep 5
	echo "rkvm-bochs: poweroff failed" > /dev/console
	while :; do sleep 1000; done
}
phase init

# udev with nothing but our rule (as tests/vm/init.sh does), so the dev/*
# rows prove scripts/65-kvm.rules.
echo 'root:x:0:' > /etc/group
echo 'kvm:x:108:' >> /etc/group
echo 'root:x:0:0:root:/tmp:/bin/sh' > /etc/passwd
echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >> /etc/passwd
if [ -x /lib/systemd/systemd-udevd ]; then
	/lib/systemd/systemd-udevd --daemon --resolve-names=early 2>/dev/null
fi
phase udev

vmtest=/rkvm/vmtest
# mods_of SET: rkvm-vmtest's module arguments for SET.
mods_of() {
	case $1 in
	ours) echo "--kvm /rkvm/ours/kvm.ko --amd /rkvm/ours/kvm-amd.ko --intel /rkvm/ours/kvm-intel.ko" ;;
	intree) echo "--pre /rkvm/intree/irqbypass.ko --kvm /rkvm/intree/kvm.ko --amd /rkvm/intree/kvm-amd.ko \
		--intel /rkvm/intree/kvm-intel.ko" ;;
	esac
}
mods=$(mods_of "$set")
[ -n "$filter" ] && export RKVM_TEST_FILTER=$filter

# rkvm-vmtest (check and full modes).
run_vmtest() {
	phase vmtest
	# Each result line also goes to timed.txt with the guest uptime at which
	# it came (per-test and per-group times on the host).
	# shellcheck disable=SC2086
	{ $vmtest --set "$set" $mods 2> /tmp/vmtest.err; echo $? > /tmp/vmtest.rc; } |
		while IFS= read -r l; do
			read -r up _ < /proc/uptime
			echo "$up $l" >> /tmp/timed.txt
			echo "$l"
		done | tee /tmp/results.txt | send results.txt
	send timed.txt /tmp/timed.txt
	send vmtest.err /tmp/vmtest.err
	send vmtest.rc /tmp/vmtest.rc
}

# The nested QEMU test (scripts/l2-boot.sh, as in the SVM column; l2 and
# full modes), variants from rkvm.l2 (default: the default session only).
run_l2() {
	phase l2
	mkdir -p /tmp/l2out
	# shellcheck disable=SC2086
	L2_VARIANTS=$(echo "${l2:-default}" | tr , ' ') L2_DIR=/rkvm/l2 L2_KERNEL=/rkvm/l2/bzImage \
		L2_LOGDIR=/tmp/l2out /rkvm/scripts/l2-boot.sh check /tmp/l2out $mods > /tmp/l2.log 2>&1
	send l2.log /tmp/l2.log
	# Results, consoles, QEMU's stderr, L1 warnings; not the virtio-serial
	# payloads (megabytes: minutes at 115200 baud).
	for f in /tmp/l2out/*; do
		case $f in *.virtio-out) continue ;; esac
		[ -f "$f" ] && send "$(basename "$f")" "$f"
	done
}

# make bench's VMX table (bench mode, rkvm.set=both): both sets take
# turns, round after round and row after row (tests/vm/bench-rounds.sh;
# BENCH_ROUNDS, BENCH_SETS, BENCH_ITERS, BENCH_ROWS from rkvm.env.*, each
# set's module parameters in RKVM_PARAMS_ours / RKVM_PARAMS_intree), then
# every file of the rounds goes to the host.
run_bench() {
	phase bench
	mkdir -p /tmp/bench
	params_of() { eval "echo \"\${RKVM_PARAMS_$1:-}\""; }
	# shellcheck disable=SC1091
	. /rkvm/bench-rounds.sh
	bench_rounds /tmp/bench
	# The rounds' phases.txt as bench-phases.txt: finish() sends this
	# script's own phases.txt.
	mv /tmp/bench/phases.txt /tmp/bench/bench-phases.txt
	for f in /tmp/bench/*; do
		[ -f "$f" ] && send "$(basename "$f")" "$f"
	done
}

case $mode in
check) run_vmtest ;;
bench) run_bench ;;
l2) run_l2 ;;
full) run_vmtest; run_l2 ;;
exec)
	# Debugging aid: load the module set, run one command (rkvm.cmd, @ for
	# spaces), send its output.
	for a in $mods; do
		case $a in --*) ;; *) case $a in *kvm-amd.ko) ;; *) insmod "$a" ;; esac ;; esac
	done
	udevadm settle --timeout=10 2>/dev/null
	sh -c "$(echo "$cmd" | tr @ ' ')" > /tmp/exec.txt 2>&1
	send exec.txt /tmp/exec.txt
	;;
esac
finish
