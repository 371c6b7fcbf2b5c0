#!/bin/bash
# The nested-guest test (issue 6), run inside the test VM (L1): Debian's own
# qemu-system-x86_64, unmodified, with -accel kvm on the loaded kvm.ko +
# kvm-amd.ko boots the test kernel's bzImage with the L2 initramfs
# (scripts/l2-initramfs.sh, built on the host beforehand) on 2 vCPUs, and
# this script drives the guest's serial console like a user would: waits for
# its shell, types commands, powers it off.
#
#   scripts/l2-boot.sh check OUT [MODULE-ARGS...]
#       The test. MODULE-ARGS as passed to rkvm-vmtest (--pre KO --kvm KO
#       --amd KO --intel KO): loaded first when not loaded yet (rkvm-vmtest
#       and the peer suite unload everything), unloaded at the end. Result
#       lines (PASS/FAIL/SKIP as tests/vm/vmtest prints them, plus INFO
#       lines) go to stdout and OUT/qemu-results.txt, consoles and QEMU's
#       stderr to OUT/qemu-<variant>.console.log / .stderr:
#         qemu/boot-to-shell            RKVM-L2-SHELL-READY and the prompt
#         qemu/both-vcpus-online        `cat /proc/cpuinfo | grep -c processor` -> 2
#         qemu/workload-checksum        /l2/workload.sh's sha256 == the host's
#         qemu/virtio-serial-transfer   the workload's file sent through a
#                                       virtio-serial port arrives intact in L1
#         qemu/l2-kernel-log-clean      no WARNING/BUG/Oops in the guest's dmesg
#         qemu/clean-poweroff           `poweroff -f` ends QEMU with status 0
#         qemu/l1-kernel-log-clean      no new WARNING/BUG/Oops in L1's dmesg
#         qemu/kernel-irqchip-split-clean, qemu/kernel-irqchip-off-clean
#                                       QEMU with -accel kvm,kernel-irqchip=X
#                                       boots to the shell, 2 vCPUs, powers
#                                       off -- or exits at once with an error
#                                       message; never hangs, never a kernel
#                                       warning in L1
#         INFO qemu/boot-seconds N      QEMU start -> shell marker (wall)
#         INFO qemu/workload-seconds N, INFO qemu/kernel-irqchip-X ...
#
#   scripts/l2-boot.sh demo [ACCEL]
#       One session (ACCEL default "kvm"), the guest's console on stdout
#       (scripts/l2-demo.sh).
#
# Environment: L2_CPU (-cpu, default host), L2_BOOT_TIMEOUT (s to the shell,
# default 600), L2_CMD_TIMEOUT (s per command, default 300), L2_DIR
# (initramfs dir, default build/l2), L2_KERNEL (default the test bzImage),
# L2_APPEND_EXTRA (more kernel parameters), L2_QEMU_EXTRA (more QEMU
# arguments, split on spaces), L2_VARIANTS (check mode, default
# "default split off").
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/config.mak"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
qemu=${QEMU:-qemu-system-x86_64}
l2dir=${L2_DIR:-$here/build/l2}
kernel=${L2_KERNEL:-$KERNELDIR/arch/x86/boot/bzImage}
initrd=$l2dir/initramfs.cpio.gz
cpu=${L2_CPU:-host}
boot_tmo=${L2_BOOT_TIMEOUT:-600}
cmd_tmo=${L2_CMD_TIMEOUT:-300}
append="console=ttyS0 quiet panic=-1 rdinit=/init tsc=reliable no_timer_check ${L2_APPEND_EXTRA:-}"
prompt='l2# '
# Oopses, warnings and lockdep reports in a kernel log (as scripts/check.sh).
log_bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|rcu_.*stall|blocked for more than'

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- one QEMU session, driven over its serial console ----------------------
# S_* is the state of the current session.
S_demo=

# s_start NAME ACCEL: start QEMU, console in and out through FIFOs.
s_start() {
	S_name=$1 S_accel=$2
	S_log=$logdir/qemu-$S_name.console.log
	S_err=$logdir/qemu-$S_name.stderr
	S_vout=$logdir/qemu-$S_name.virtio-out
	S_fifo=$(mktemp -d /tmp/l2-fifo.XXXXXX)
	S_line= S_eof= S_lines=() S_prompts=0
	: > "$S_log"
	rm -f "$S_vout"
	mkfifo "$S_fifo/in" "$S_fifo/out"
	# -k: QEMU gets TERM at the total limit, KILL 5 s later.
	local total=$((boot_tmo + 6 * cmd_tmo))
	# shellcheck disable=SC2086
	timeout -k 5 "$total" "$qemu" -accel "$S_accel" -machine pc -cpu "$cpu" -smp 2 -m 256M \
		-nodefaults -display none -monitor none -no-reboot -serial stdio \
		-kernel "$kernel" -initrd "$initrd" -append "$append" \
		-device virtio-serial-pci,id=vser \
		-chardev file,id=rkvmout,path="$S_vout" \
		-device virtserialport,bus=vser.0,chardev=rkvmout,name=rkvm.out \
		${L2_QEMU_EXTRA:-} \
		< "$S_fifo/in" > "$S_fifo/out" 2> "$S_err" &
	S_pid=$!
	exec {S_w}> "$S_fifo/in" {S_r}< "$S_fifo/out"
	S_t0=$(now)
}

# s_emit LINE: a complete console line: log it (and show it in demo mode).
s_emit() {
	S_lines+=("$1")
	printf '%s\n' "$1" >> "$S_log"
	[ -z "$S_demo" ] || printf '%s\n' "$1"
}

# s_expect WHAT TIMEOUT: read the console until a complete line matches the
# ERE WHAT, or, with WHAT=PROMPT, until the shell prints its prompt at the
# start of a line. 0: seen (the line in S_match); 1: QEMU's output ended
# (it exited); 2: timed out.
s_expect() {
	local want=$1 deadline=$((SECONDS + $2)) c
	while [ $SECONDS -lt $deadline ]; do
		if ! IFS= read -r -t 1 -N 1 -u "$S_r" c; then
			[ $? -gt 128 ] && continue
			S_eof=1
			[ -z "$S_line" ] || { s_emit "$S_line"; S_line=; }
			return 1
		fi
		case $c in
		$'\r') ;;
		$'\n')
			s_emit "$S_line"
			if [ "$want" != PROMPT ] && [[ $S_line =~ $want ]]; then
				S_match=$S_line
				S_line=
				return 0
			fi
			S_line=
			;;
		*)
			S_line+=$c
			if [ "$want" = PROMPT ] && [ "$S_line" = "$prompt" ]; then
				S_prompts=$((S_prompts + 1))
				return 0
			fi
			;;
		esac
	done
	return 2
}

# s_cmd COMMAND [TIMEOUT]: type COMMAND at the prompt (already seen) and read
# until the next prompt; its output lines (without the echoed command line)
# in S_out. 0: the prompt came back.
s_cmd() {
	local mark=${#S_lines[@]} rc
	[ -n "$S_eof" ] && return 1
	printf '%s\n' "$1" >&"$S_w" 2>/dev/null || return 1
	s_expect PROMPT "${2:-$cmd_tmo}"
	rc=$?
	S_out=("${S_lines[@]:$((mark + 1))}")
	return $rc
}

# s_finish TIMEOUT: wait for QEMU to exit (after poweroff) up to TIMEOUT s,
# kill it otherwise. S_rc: QEMU's exit status (124: killed at the limit or
# here).
s_finish() {
	[ -n "$S_eof" ] || s_expect '^\b$' "$1"
	if [ -z "$S_eof" ]; then
		kill "$S_pid" 2>/dev/null
		s_expect '^\b$' 10
	fi
	wait "$S_pid"
	S_rc=$?
	[ -n "$S_eof" ] || S_rc=124
	exec {S_w}>&- {S_r}<&-
	rm -rf "$S_fifo"
	S_t1=$(now)
}

# Why a session did not reach the shell: QEMU's message or the console tail.
s_why() {
	if [ -n "$S_eof" ] && [ -s "$S_err" ]; then
		echo "QEMU exited ($S_rc): $(grep -v '^$' "$S_err" | tail -n 3 | tr '\n' '|')"
	elif [ -n "$S_eof" ]; then
		echo "QEMU exited ($S_rc) before the shell; console: $(tail -n 3 "$S_log" | tr '\n' '|')"
	else
		echo "no shell after ${boot_tmo}s (hang); console: $(tail -n 3 "$S_log" | tr '\n' '|')"
	fi
}

# ---- result lines -----------------------------------------------------------
nfail=0
res() { printf '%s\n' "$*" | tee -a "$results"; }
pass() { res "PASS $1"; }
fail() { nfail=$((nfail + 1)); res "FAIL $1: $(printf '%s' "$2" | tr '\n' ' ')"; }
skip() { res "SKIP $1: $2"; }
info() { res "INFO $1 $2"; }

l1_log_mark() { L1_mark=$(dmesg | wc -l); }
# New L1 kernel log lines since l1_log_mark that match log_bad.
l1_log_bad() { dmesg | tail -n +"$((L1_mark + 1))" | grep -E -A 8 "$log_bad" | head -n 20; }

# The full test with the default accelerator (kernel irqchip).
full_session() {
	local t_ready t_wl bad sum want
	l1_log_mark
	s_start default kvm
	if s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; then
		t_ready=$(now)
		pass qemu/boot-to-shell
		info qemu/boot-seconds "$(secs "$S_t0" "$t_ready")"
		info qemu/l2-ready "$S_match"
	else
		fail qemu/boot-to-shell "$(s_why)"
		s_finish 5
		for t in both-vcpus-online workload-checksum virtio-serial-transfer l2-kernel-log-clean clean-poweroff; do
			skip "qemu/$t" "no shell"
		done
		l1_check default
		return
	fi

	if s_cmd 'cat /proc/cpuinfo | grep -c processor' && [ "${S_out[0]:-}" = 2 ]; then
		pass qemu/both-vcpus-online
	else
		fail qemu/both-vcpus-online "got '${S_out[*]:-}'"
	fi

	want=$(cat "$l2dir/expected.txt")
	t_wl=$(now)
	if s_cmd /l2/workload.sh; then
		info qemu/workload-seconds "$(secs "$t_wl" "$(now)")"
		sum=$(printf '%s\n' "${S_out[@]}" | grep '^RKVM-L2-SHA256 ' | head -n 1)
		if [ "$sum" = "$want" ]; then
			pass qemu/workload-checksum
		else
			fail qemu/workload-checksum "got '${sum:-${S_out[*]:-nothing}}', want '$want'"
		fi
	else
		fail qemu/workload-checksum "no prompt within ${cmd_tmo}s"
	fi

	# The workload's file, written to a virtio-serial port: QEMU writes it to
	# $S_vout in L1 (virtqueue, notifications, interrupts, MSI-X).
	local vio_ok=
	if s_cmd 'test -c /dev/rkvm-out && cat /tmp/wl/out > /dev/rkvm-out; echo RKVM-L2-VIRTIO-RC $?' &&
		printf '%s\n' "${S_out[@]}" | grep -qx 'RKVM-L2-VIRTIO-RC 0'; then
		vio_ok=1
	fi

	if s_cmd "echo RKVM-L2-DMESG-BAD \$(dmesg | grep -cE '$log_bad')"; then
		bad=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-L2-DMESG-BAD \([0-9]*\)$/\1/p')
		if [ "$bad" = 0 ]; then
			pass qemu/l2-kernel-log-clean
		else
			s_cmd "dmesg | grep -E -A 8 '$log_bad' | head -n 30" >/dev/null
			fail qemu/l2-kernel-log-clean "${bad:-?} reports; see $S_log"
		fi
	else
		fail qemu/l2-kernel-log-clean "no prompt"
	fi

	printf '%s\n' 'poweroff -f' >&"$S_w" 2>/dev/null
	s_finish 120
	if [ "$S_rc" = 0 ]; then
		pass qemu/clean-poweroff
	else
		fail qemu/clean-poweroff "QEMU exit status $S_rc$([ "$S_rc" = 124 ] && echo ' (still running after poweroff; killed)')"
	fi
	info qemu/total-seconds "$(secs "$S_t0" "$S_t1")"

	# After QEMU exited its chardev file is complete.
	if [ -n "$vio_ok" ] && [ "RKVM-L2-SHA256 $(sha256sum < "$S_vout" | cut -d' ' -f1)" = "$want" ]; then
		pass qemu/virtio-serial-transfer
	else
		fail qemu/virtio-serial-transfer "$( [ -n "$vio_ok" ] || echo 'the guest could not write the port; ')received $(stat -c %s "$S_vout" 2>/dev/null || echo 0) bytes, sha256 $(sha256sum < "$S_vout" 2>/dev/null | cut -c1-16)..."
	fi
	l1_check default
}

# l1_check VARIANT: no new kernel warnings in L1 since l1_log_mark.
l1_check() {
	local bad name=qemu/l1-kernel-log-clean
	[ "$1" = default ] || name=qemu/kernel-irqchip-$1-l1-log-clean
	bad=$(l1_log_bad)
	if [ -z "$bad" ]; then
		pass "$name"
	else
		printf '%s\n' "$bad" > "$logdir/qemu-$1.l1-dmesg-bad.txt"
		fail "$name" "$(printf '%s\n' "$bad" | grep -E "$log_bad" | head -n 2 | tr '\n' '|')"
	fi
}

# -accel kvm,kernel-irqchip=X: boots (shell, 2 vCPUs, poweroff) or QEMU
# refuses at once with a message. A hang or an L1 warning fails.
irqchip_session() {
	local v=$1 name=qemu/kernel-irqchip-$1-clean cpus
	l1_log_mark
	s_start "$v" "kvm,kernel-irqchip=$v"
	if s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; then
		info "qemu/kernel-irqchip-$v-boot-seconds" "$(secs "$S_t0" "$(now)")"
		s_cmd 'cat /proc/cpuinfo | grep -c processor'
		cpus=${S_out[0]:-}
		printf '%s\n' 'poweroff -f' >&"$S_w" 2>/dev/null
		s_finish 120
		if [ "$cpus" = 2 ] && [ "$S_rc" = 0 ]; then
			pass "$name"
			info "qemu/kernel-irqchip-$v" "booted to the shell, 2 vCPUs, powered off"
		else
			fail "$name" "booted but cpus='$cpus', QEMU exit status $S_rc; see $S_log"
		fi
	else
		s_finish 5
		if [ -n "$S_eof" ] && [ "$S_rc" != 0 ] && [ "$S_rc" != 124 ] && [ -s "$S_err" ] &&
			[ "$(secs "$S_t0" "$S_t1" | cut -d. -f1)" -lt 120 ]; then
			pass "$name"
			info "qemu/kernel-irqchip-$v" "refused by QEMU: $(grep -v '^$' "$S_err" | tail -n 2 | tr '\n' ' ')"
		else
			fail "$name" "$(s_why)"
		fi
	fi
	l1_check "$v"
}

# ---- modules (check mode) ---------------------------------------------------
loaded=()
load_modules() {
	while [ $# -ge 2 ]; do
		case $1 in
		--pre|--kvm|--amd)
			m=$(basename "$2" .ko | tr - _)
			if [ ! -d "/sys/module/$m" ]; then
				if insmod "$2"; then loaded=("$m" "${loaded[@]}"); else echo "l2-boot: insmod $2 failed" >&2; fi
			fi
			;;
		esac
		shift 2
	done
	udevadm settle --timeout=10 2>/dev/null
	true
}
unload_modules() {
	local m
	for m in "${loaded[@]}"; do rmmod "$m" 2>/dev/null; done
	true
}

preflight() {
	local why=
	if [ ! -s "$initrd" ] || [ ! -s "$l2dir/expected.txt" ]; then
		why="$initrd missing (scripts/l2-initramfs.sh runs on the host before the VM)"
	elif [ ! -r "$kernel" ]; then
		why="$kernel missing"
	elif ! command -v "$qemu" >/dev/null; then
		why="$qemu not installed"
	elif [ ! -c /dev/kvm ]; then
		why="no /dev/kvm (modules not loaded?)"
	fi
	printf '%s' "$why"
}

case ${1:-} in
check)
	out=${2:?usage: $0 check OUT [MODULE-ARGS...]}
	shift 2
	logdir=$out results=$out/qemu-results.txt
	mkdir -p "$out"
	: > "$results"
	load_modules "$@"
	why=$(preflight)
	if [ -n "$why" ]; then
		for t in boot-to-shell both-vcpus-online workload-checksum virtio-serial-transfer \
			l2-kernel-log-clean clean-poweroff l1-kernel-log-clean \
			kernel-irqchip-split-clean kernel-irqchip-off-clean; do
			skip "qemu/$t" "$why"
		done
	else
		info qemu/versions "$($qemu --version | head -n 1 | sed 's/^QEMU emulator version //'), -cpu $cpu, kernel $(basename "$(dirname "$(dirname "$(dirname "$kernel")")")")"
		for v in ${L2_VARIANTS:-default split off}; do
			case $v in
			default) full_session ;;
			*) irqchip_session "$v" ;;
			esac
		done
	fi
	unload_modules
	[ "$nfail" = 0 ]
	;;
demo)
	logdir=${L2_LOGDIR:-/tmp} results=/dev/null
	S_demo=1
	why=$(preflight)
	[ -z "$why" ] || { echo "l2-demo: $why" >&2; exit 1; }
	accel=${2:-kvm}
	echo "l2: qemu-system-x86_64 -accel $accel -cpu $cpu -smp 2 -m 256M -kernel bzImage -initrd l2 initramfs (console below)"
	s_start demo "$accel"
	if ! { s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; }; then
		s_finish 5
		echo "l2: the guest did not reach its shell: $(s_why)"
		exit 1
	fi
	t_ready=$(now)
	# Type as a user would (the guest's echo shows each command after its prompt).
	for c in 'cat /proc/cpuinfo | grep -c processor' 'uname -r' 'cat /sys/devices/system/clocksource/clocksource0/current_clocksource'; do
		s_cmd "$c" 60 || break
	done
	printf '%s\n' 'poweroff -f' >&"$S_w" 2>/dev/null
	s_finish 120
	echo
	echo "l2: shell after $(secs "$S_t0" "$t_ready") s; QEMU exited with status $S_rc after $(secs "$S_t0" "$S_t1") s"
	[ "$S_rc" = 0 ]
	;;
*)
	echo "usage: $0 check OUT [MODULE-ARGS...] | demo [ACCEL]" >&2
	exit 2
	;;
esac
