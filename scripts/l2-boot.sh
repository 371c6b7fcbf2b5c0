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
#       lines) go to stdout and OUT/l2-results.txt, consoles and QEMU's
#       stderr to OUT/l2-<variant>.console.log / .stderr:
#         l2/boot-to-shell            RKVM-L2-SHELL-READY and the prompt
#         l2/both-vcpus-online        `cat /proc/cpuinfo | grep -c processor` -> 2
#         l2/workload-checksum        /l2/workload.sh's sha256 == the host's
#         l2/paging-stress            (default variant only) /l2/pagestress
#                                       (tests/vm/l2/pagestress.c: 4 processes
#                                       at once mmap, fill, mprotect, fault,
#                                       fork with copy-on-write, share and
#                                       munmap pages; then 6 fork+execs)
#                                       prints exactly the line it printed
#                                       on the host (expected-paging.txt)
#         l2/virtio-serial-transfer   the workload's file sent through a
#                                       virtio-serial port arrives intact in L1
#         l2/guest-kernel-log-clean   no WARNING/BUG/Oops in the guest's dmesg
#                                       (/l2/logcheck.sh before poweroff) nor
#                                       on its console (start to exit; warnings
#                                       shown there from the poweroff on)
#         l2/clean-poweroff           `poweroff -f` ends QEMU with status 0
#         l2/l1-kernel-log-clean      no new WARNING/BUG/Oops in L1's kernel log
#         l2/kernel-irqchip-split-clean, l2/kernel-irqchip-off-clean
#                                       QEMU with -accel kvm,kernel-irqchip=X
#                                       boots to the shell, sees its vCPUs,
#                                       powers off with status 0: PASS. QEMU
#                                       exiting at once with status 1 and
#                                       exactly the documented refusal (see
#                                       refusal_re): SKIP with the message.
#                                       Anything else (a hang, an abort,
#                                       "kvm run failed"): FAIL. =off runs
#                                       with -smp 1: QEMU 7.2's userspace
#                                       LAPIC livelocks with 2 vCPUs, on the
#                                       in-tree module too
#         l2/kernel-irqchip-X-guest-log-clean  as l2/guest-kernel-log-clean
#         l2/kernel-irqchip-X-l1-log-clean     no kernel warning in L1 during it
#         l2/qemu10-<row>             the rows of the default session
#                                       (boot-to-shell ... l1-log-clean),
#                                       run with QEMU 10 (variant qemu10:
#                                       bookworm-backports' qemu-system-x86
#                                       10.x, extracted into the cache by
#                                       scripts/qemu10.sh on the host) -- a
#                                       newer client, which checks more
#                                       capabilities at start
#         l2/qemu10-kernel-irqchip-X-clean (and -guest-log-clean,
#         -l1-log-clean)              the split and off sessions with
#                                       QEMU 10 (variants qemu10-split,
#                                       qemu10-off)
#         l2/migrate/same-set, l2/migrate/ours-to-intree,
#         l2/migrate/intree-to-ours   variant migrate: live migration of a
#                                       running guest with QEMU 7.2, the
#                                       column's set to itself, then across
#                                       a module swap to the in-tree set and
#                                       back (the in-tree column reloads its
#                                       own set); see "live migration" below
#         l2/migrate/qemu10           variant migrate-q10: one leg (the
#                                       column's set to itself), QEMU 10
#         l2/migrate/guest-kernel-log-clean, l2/migrate/l1-log-clean,
#         l2/migrate/qemu10-guest-kernel-log-clean,
#         l2/migrate/qemu10-l1-log-clean   as for the other variants
#         l2/nested/<row>             variant nested (make check-nested,
#                                       scripts/check-nested.sh): an L3
#                                       guest; see "nested SVM" below
#         INFO l2/boot-seconds N      QEMU start -> shell marker (wall)
#         INFO l2/workload-seconds N, INFO l2/paging-stress-seconds N,
#         INFO l2/<variant>-boot-seconds N,
#         INFO l2/<variant> <what happened>, INFO l2/qemu10-version V,
#         INFO l2/migrate-N-save (status, times, size),
#         INFO l2/migrate-N-restore-seconds, INFO l2/migrate-seconds and
#         l2/migrate-q10-seconds (the variant's wall time),
#         INFO l2/nested/<what> (variant nested: times, L1's nested
#         parameter, what L2's kvm-amd logged)
#       Every row of every variant is always printed: when the modules do
#       not load, the guest files are missing or the time budget is spent,
#       the rows that could not run FAIL ("not run: why"). Exit status: 0
#       all passed, 1 some failed (rows say which), 2 usage.
#
#   scripts/l2-boot.sh bench OUT [MODULE-ARGS...]
#       `make bench` (scripts/bench.sh): one session of the default
#       variant, timed; BENCH lines as rkvm-vmtest --bench prints them, on
#       stdout (logs in OUT):
#         l2-boot       QEMU start -> the shell marker, seconds
#         l2-fork-exec  L2_FORKS (default 200) fork+exec+wait of /bin/true
#                       by the guest's shell, ms each (L1 wall time from
#                       typing the command to the prompt)
#       RKVM_BENCH_ROWS (names, comma- or space-separated) picks rows.
#       Exit status 1 when a row could not be measured (BENCH-FAIL lines).
#
#   scripts/l2-boot.sh list
#       The rows check mode prints (ROW <name>), for the manifest of
#       scripts/check.sh; L2_VARIANTS applies.
#
#   scripts/l2-boot.sh demo [MODULE-ARGS...]
#       One session (-accel $L2_ACCEL, default kvm), the guest's console on
#       stdout: boot to the shell, a few boot messages (dmesg), `cat
#       /proc/cpuinfo | grep -c processor`, `uname -r`, the clocksource,
#       `poweroff -f` (scripts/l2-demo.sh).
#       MODULE-ARGS as for check.
#
# Environment: L2_SMP (vCPUs of the default, split and demo sessions, default 2),
# L2_CPU (-cpu, default qemu64: QEMU's own default; "host"
# and "EPYC" make the in-tree module's L2 warn "XSAVE consistency problem"
# under TCG; "host" with kernel-irqchip=off makes QEMU abort: KVM refuses
# MSR_KVM_ASYNC_PF_INT without an in-kernel LAPIC), L2_ACCEL (default kvm), L2_BOOT_TIMEOUT (s to the shell,
# default 120; the in-tree module needs ~5), L2_CMD_TIMEOUT (s per command,
# default 120), L2_BUDGET (check mode: no new variant starts after this
# many s, default 600; its tests FAIL as not run), L2_DIR
# (initramfs dir, default build/l2), L2_KERNEL (default the test bzImage),
# L2_APPEND_EXTRA (more kernel parameters; "loglevel=7" shows the guest's
# boot messages, which "quiet" hides), L2_QEMU_EXTRA (more QEMU
# arguments, split on spaces), L2_VARIANTS (check mode, default
# "default split off qemu10 qemu10-split qemu10-off"; `make check-migrate`:
# "migrate migrate-q10"; `make check-nested`: "nested"),
# L2_NESTED_CPU (variant nested: -cpu, default qemu64,+svm,+npt), L2_NESTED_PARAMS
# (variant nested: parameters of L2's kvm-amd, e.g. npt=0 or
# dump_invalid_vmcb=1; default none), L2_NESTED_TRACE=1 (variant nested:
# L1's kvm tracepoints during the L3 run, to LOGDIR/l2-nested.l1-trace.txt,
# and from each restore of its migration leg to L2's first answer, to
# LOGDIR/l2-nested-dstK.l1-trace.txt),
# L2_MIGRATE_LEGS (the legs of variant migrate, default "1 2 3"),
# RKVM_L2_PEER_MODS (the module arguments of the migration's peer set;
# tests/vm/init.sh: the in-tree set; default the column's own), L2_QEMU10 (QEMU 10's prefix, default the
# newest $RKVM_CACHE/qemu-10.*; its usr/bin/qemu-system-x86_64 runs with
# -L usr/share/qemu), L2_DEMO_COMMANDS (demo mode: the
# commands to type, one a line), L2_LOGDIR (demo mode: logs, default /tmp),
# L2_STRACE=1 (QEMU under strace -f -e trace=ioctl -e kvm=vcpu, to
# LOGDIR/l2-<variant>.strace), L2_KVMTRACE=path/kvmtrace.so (QEMU with that
# LD_PRELOAD shim, tests/vm/l2/kvmtrace.sh, to LOGDIR/l2-<variant>.kvmtrace),
# RKVM_L1_KMSG (L1's kernel log as tests/vm/init.sh streams it to a file;
# without it, `dmesg`).
set -u
# A write to a QEMU that already exited (its session timed out) must fail
# with EPIPE and let the remaining rows be reported, not kill the script.
trap '' PIPE
shopt -s extglob
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
[ "${1:-}" = list ] || . "$here/config.mak"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
qemu=${QEMU:-qemu-system-x86_64}
# QEMU 10 (variant qemu10): scripts/qemu10.sh extracted it on the host.
qemu10_prefix=${L2_QEMU10:-$(ls -d "${RKVM_CACHE:-$HOME/.cache/rkvm}"/qemu-10.* 2>/dev/null | sort -rV | head -n 1)}
qemu10=${qemu10_prefix:+$qemu10_prefix/usr/bin/qemu-system-x86_64}
l2dir=${L2_DIR:-$here/build/l2}
kernel=${L2_KERNEL:-${KERNELDIR:-}/arch/x86/boot/bzImage}
initrd=$l2dir/initramfs.cpio.gz
cpu=${L2_CPU:-qemu64}
accel=${L2_ACCEL:-kvm}
boot_tmo=${L2_BOOT_TIMEOUT:-120}
cmd_tmo=${L2_CMD_TIMEOUT:-120}
budget=${L2_BUDGET:-600}
append="console=ttyS0 quiet panic=-1 rdinit=/init tsc=reliable no_timer_check ${L2_APPEND_EXTRA:-}"
prompt='l2# '
# The exact messages with which QEMU 7.2 refuses a variant the module cannot
# do (target/i386/kvm/kvm.c, kvm_arch_irqchip_create; exit status 1): the
# only early exit that is not a failure (the row says SKIP with it, and
# scripts/check.sh fails ours where the in-tree module booted).
refusal_re_split='^qemu-system-x86_64: Could not enable split irqchip mode: [A-Za-z ]+$'
refusal_re_off=
# QEMU 10 has no userspace LAPIC with KVM any more (hw/i386 apic_get_class):
# it refuses kernel-irqchip=off on every KVM, the in-tree module's too.
refusal_re_qemu10_split=$refusal_re_split
refusal_re_qemu10_off='^qemu-system-x86_64: KVM does not support userspace APIC$'
# The variants of `make check`; the live-migration ones (migrate,
# migrate-q10: about 2 minutes per column) run in `make check-migrate`.
all_variants='default split off qemu10 qemu10-split qemu10-off'
# Oopses, warnings and lockdep reports in a kernel log (as scripts/check.sh).
log_bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|rcu_.*stall|blocked for more than'

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- one QEMU session, driven over its serial console ----------------------
# S_* is the state of the current session.
S_demo=
S_qemu= S_qemu_args=()

# s_start NAME ACCEL [CPU [SMP]]: start QEMU, console in and out through FIFOs.
s_start() {
	S_name=$1 S_accel=$2 S_cpu=${3:-$cpu} S_smp=${4:-${L2_SMP:-2}}
	# S_qemu, S_qemu_args: the QEMU of this session (full_session sets them).
	local bin=${S_qemu:-$qemu} qargs=("${S_qemu_args[@]}")
	S_log=$logdir/l2-$S_name.console.log
	S_err=$logdir/l2-$S_name.stderr
	S_vout=$logdir/l2-$S_name.virtio-out
	S_fifo=$(mktemp -d /tmp/l2-fifo.XXXXXX)
	S_line= S_eof= S_killed= S_hung= S_lines=() S_prompts=0 S_logcheck= S_hasmon=${S_mon:-}
	: > "$S_log"
	rm -f "$S_vout"
	mkfifo "$S_fifo/in" "$S_fifo/out"
	# S_mon=1 (the migration variants): a human monitor on a pipe chardev
	# (FIFOs mon.in, mon.out; mon_cmd); S_incoming=FILE: restore from FILE.
	local mon=(-monitor none)
	if [ -n "$S_hasmon" ]; then
		mkfifo "$S_fifo/mon.in" "$S_fifo/mon.out"
		mon=(-chardev "pipe,id=mon0,path=$S_fifo/mon" -mon chardev=mon0,mode=readline)
	fi
	[ -z "${S_incoming:-}" ] || mon+=(-incoming "exec:cat $S_incoming")
	# -k: QEMU gets TERM at the total limit, KILL 5 s later.
	local total=$((boot_tmo + 6 * cmd_tmo)) wrap=()
	# Investigation aids: strace, the kvmtrace LD_PRELOAD shim.
	[ -z "${L2_STRACE:-}" ] || wrap+=(strace -f -qq -e trace=ioctl -e kvm=vcpu -o "$logdir/l2-$S_name.strace")
	[ -z "${L2_KVMTRACE:-}" ] || wrap+=(env LD_PRELOAD="$L2_KVMTRACE" KVMTRACE_OUT="$logdir/l2-$S_name.kvmtrace")
	rm -f "$logdir/l2-$S_name.strace" "$logdir/l2-$S_name.kvmtrace"
	# shellcheck disable=SC2086
	timeout -k 5 "$total" "${wrap[@]}" "$bin" "${qargs[@]}" -accel "$S_accel" -machine pc -cpu "$S_cpu" -smp "$S_smp" -m "${S_mem:-256M}" \
		-nodefaults -display none "${mon[@]}" -no-reboot -serial stdio \
		-kernel "$kernel" -initrd "${S_initrd:-$initrd}" -append "$append" \
		-device "virtio-serial-pci,id=vser${S_vser_opts:-}" \
		-chardev file,id=rkvmout,path="$S_vout" \
		-device virtserialport,bus=vser.0,chardev=rkvmout,name=rkvm.out \
		${L2_QEMU_EXTRA:-} \
		< "$S_fifo/in" > "$S_fifo/out" 2> "$S_err" &
	S_pid=$!
	exec {S_w}> "$S_fifo/in" {S_r}< "$S_fifo/out"
	# Read-write opens of the monitor's FIFOs never block (QEMU may be gone).
	[ -z "$S_hasmon" ] || exec {S_mw}<> "$S_fifo/mon.in" {S_mr}<> "$S_fifo/mon.out"
	S_t0=$(now)
}

# mon_cmd COMMAND PATTERN TIMEOUT: type COMMAND at the monitor (S_mon=1),
# read its output until it matches the ERE PATTERN (0; the output so far in
# M_out) or TIMEOUT s pass (1).
mon_cmd() {
	local deadline=$((SECONDS + $3)) c
	M_out=
	printf '%s\n' "$1" >&"$S_mw" 2>/dev/null || return 1
	while [ $SECONDS -lt $deadline ]; do
		c=
		IFS= read -r -d '' -t 0.2 -N 4096 -u "$S_mr" c
		M_out+=${c//$'\r'/}
		[[ $M_out =~ $2 ]] && return 0
	done
	return 1
}

# s_emit LINE: a complete console line: log it (and show it in demo mode).
s_emit() {
	# Without terminal control sequences (ash asks for the cursor position).
	local l=${1//$'\e'\[+([0-9;])[A-Za-z]/}
	l=${l//$'\e'\[[A-Za-z]/}
	S_lines+=("$l")
	printf '%s\n' "$l" >> "$S_log"
	[ -z "$S_demo" ] || printf 'l2| %s\n' "$l"
}

# s_expect WHAT TIMEOUT: read the console until a complete line matches the
# ERE WHAT, or, with WHAT=PROMPT, until the shell prints its prompt at the
# start of a line. 0: seen (the line in S_match); 1: QEMU's output ended
# (it exited); 2: timed out.
s_expect() {
	local want=$1 deadline=$((SECONDS + $2)) c rc
	while [ $SECONDS -lt $deadline ]; do
		IFS= read -r -t 1 -N 1 -u "$S_r" c
		rc=$?
		# A timeout (> 128) can come with the character that arrived just
		# then: bash keeps it in c. Dropping it lost the first byte of
		# RKVM-L2-SHELL-READY now and then (a "hang" at a shell prompt).
		if [ $rc -gt 128 ]; then
			[ -n "$c" ] || continue
		elif [ $rc != 0 ]; then
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
# in S_out. 0: the prompt came back. After one command timed out the guest
# counts as hung: later commands fail at once.
s_cmd() {
	local mark=${#S_lines[@]} rc
	S_out=()
	[ -n "$S_eof" ] && return 1
	[ -n "$S_hung" ] && return 2
	printf '%s\n' "$1" >&"$S_w" 2>/dev/null || return 1
	s_expect PROMPT "${2:-$cmd_tmo}"
	rc=$?
	[ $rc != 2 ] || S_hung=1
	S_out=("${S_lines[@]:$((mark + 1))}")
	return $rc
}

# s_finish TIMEOUT: wait for QEMU to exit (after poweroff) up to TIMEOUT s,
# kill it otherwise. S_rc: QEMU's exit status (124: killed at the limit or
# here; 125: could not be killed).
s_finish() {
	[ -n "$S_eof" ] || s_expect '^\b$' "$1"
	if [ -z "$S_eof" ]; then
		S_killed=1
		kill "$S_pid" 2>/dev/null
		s_expect '^\b$' 10
	fi
	# A QEMU stuck in the kernel (D state) survives even SIGKILL: give up
	# on it after 20 s rather than hang the whole run.
	local i=0
	while kill -0 "$S_pid" 2>/dev/null && [ $i -lt 20 ]; do
		[ $i = 10 ] && pkill -KILL -P "$S_pid" 2>/dev/null
		sleep 1
		i=$((i + 1))
	done
	if kill -0 "$S_pid" 2>/dev/null; then
		S_rc=125
		s_emit "l2-boot: QEMU does not die (stuck in the kernel?); left behind"
	else
		wait "$S_pid"
		S_rc=$?
	fi
	[ -n "$S_eof" ] || [ "$S_rc" = 125 ] || S_rc=124
	exec {S_w}>&- {S_r}<&-
	[ -z "$S_hasmon" ] || exec {S_mw}>&- {S_mr}>&-
	rm -rf "$S_fifo"
	S_t1=$(now)
} 2>/dev/null   # no "Killed" job notices from bash

# Why a session did not reach the shell: QEMU's message or the console tail.
s_why() {
	if [ -n "$S_killed" ]; then
		echo "no shell after ${boot_tmo}s (hang; QEMU killed); console: $(tail -n 3 "$S_log" | tr '\n' '|')"
	elif [ -s "$S_err" ]; then
		echo "QEMU exited (${S_rc:-?}): $(grep -v '^$' "$S_err" | grep -v 'warning:' | tail -n 3 | tr '\n' '|')"
	else
		echo "QEMU exited (${S_rc:-?}) before the shell; console: $(tail -n 3 "$S_log" | tr '\n' '|')"
	fi
}

# ---- result lines -----------------------------------------------------------
nfail=0
res() { printf '%s\n' "$*" | tee -a "$results"; }
pass() { res "PASS $1"; }
fail() { nfail=$((nfail + 1)); res "FAIL $1: $(printf '%s' "$2" | tr '\n' ' ')"; }
skip() { res "SKIP $1: $2"; }
info() { res "INFO $1 $2"; }

# l1_log: L1's kernel log so far (the streamed file only grows: line
# numbers stay valid however much the ring buffer wraps).
l1_log() {
	if [ -n "${RKVM_L1_KMSG:-}" ]; then
		sleep 0.5   # what was just logged reaches the file
		cat "$RKVM_L1_KMSG"
	else
		dmesg
	fi
}
l1_log_mark() { L1_mark=$(l1_log | wc -l); }
# New L1 kernel log lines since l1_log_mark that match log_bad.
l1_log_bad() { l1_log | tail -n +"$((L1_mark + 1))" | grep -E -A 8 "$log_bad" | head -n 20; }

# guest_console_bad: lines of the session's console log matching log_bad.
guest_console_bad() { grep -E "$log_bad" "$S_log" | head -n 3 | tr '\n' '|'; }

# guest_logs NAME [CONSOLE-REPORT NO-SHELL-WHY]: one row for the guest
# kernel log of the session that just ended: the in-guest check
# (S_logcheck: the number of bad dmesg lines, empty when it did not run)
# and the console log, start to exit (CONSOLE-REPORT: the bad lines of
# several consoles instead; NO-SHELL-WHY: the SKIP reason).
guest_logs() {
	local name=$1 con
	if [ $# -ge 2 ]; then
		con=$2
	else
		con=$(guest_console_bad)
		[ -z "$con" ] || con="$con see $(basename "$S_log")"
	fi
	if [ -n "$con" ]; then
		fail "$name" "on the console: $con"
	elif [ "$S_logcheck" = 0 ]; then
		pass "$name"
	elif [ -n "$S_logcheck" ]; then
		fail "$name" "$S_logcheck_why"
	else
		skip "$name" "${3:-the guest reached no shell to run /l2/logcheck.sh; its console shows no report}"
	fi
}

# logcheck: run /l2/logcheck.sh in the guest: S_logcheck = number of bad
# dmesg lines ("?" when the command failed), S_logcheck_why = the report.
logcheck() {
	local bad
	S_logcheck='?' S_logcheck_why='/l2/logcheck.sh: no prompt'
	s_cmd /l2/logcheck.sh || return
	bad=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-L2-DMESG-BAD \([0-9]*\)$/\1/p')
	S_logcheck=${bad:-?}
	# The first lines: the message a report belongs to.
	S_logcheck_why="${bad:-?} dmesg lines: $(printf '%s\n' "${S_out[@]:0:3}" |
		sed 's/^\[ *[0-9.]*\] //' | tr '\n' '|')... see $(basename "$S_log")"
}

# s_poweroff: console warnings on from here (the shell's work is done, kernel
# output cannot garble a prompt any more), then power off.
s_poweroff() { printf '%s\n' 'dmesg -n 5; poweroff -f' >&"$S_w" 2>/dev/null; }

# full_session [VARIANT]: the full test with the default accelerator
# (kernel irqchip); VARIANT default (rows l2/<row>) or qemu10 (rows
# l2/qemu10-<row>, QEMU 10 instead of the system's QEMU).
full_session() {
	local t_ready t_wl sum want v=${1:-default} p=
	[ "$v" = default ] || p=$v-
	l1_log_mark
	s_start "$v" "$accel"
	if s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; then
		t_ready=$(now)
		pass l2/${p}boot-to-shell
		info l2/${p}boot-seconds "$(secs "$S_t0" "$t_ready")"
		info l2/${p}ready "$S_match"
	else
		s_finish 5
		fail l2/${p}boot-to-shell "$(s_why)"
		for t in both-vcpus-online workload-checksum $([ "$v" = default ] && echo paging-stress) virtio-serial-transfer; do
			skip "l2/$p$t" "no shell (l2/${p}boot-to-shell failed)"
		done
		guest_logs l2/${p}guest-kernel-log-clean
		skip l2/${p}clean-poweroff "no shell (l2/${p}boot-to-shell failed)"
		l1_check "$v"
		return
	fi

	# All of the session's vCPUs (2 unless L2_SMP says otherwise).
	if s_cmd 'cat /proc/cpuinfo | grep -c processor' && [ "${S_out[0]:-}" = "$S_smp" ]; then
		pass l2/${p}both-vcpus-online
	else
		fail l2/${p}both-vcpus-online "got '${S_out[*]:-}', want $S_smp"
	fi

	want=$(cat "$l2dir/expected.txt")
	t_wl=$(now)
	if s_cmd /l2/workload.sh; then
		info l2/${p}workload-seconds "$(secs "$t_wl" "$(now)")"
		sum=$(printf '%s\n' "${S_out[@]}" | grep '^RKVM-L2-SHA256 ' | head -n 1)
		if [ "$sum" = "$want" ]; then
			pass l2/${p}workload-checksum
		else
			fail l2/${p}workload-checksum "got '${sum:-${S_out[*]:-nothing}}', want '$want'"
		fi
	else
		fail l2/${p}workload-checksum "no prompt within ${cmd_tmo}s"
	fi

	# The paging stress (default variant): processes, faults, COW, munmap.
	[ "$v" != default ] || paging_stress

	# The workload's file, written to a virtio-serial port: QEMU writes it to
	# $S_vout in L1 (virtqueue, notifications, interrupts, MSI-X).
	local vio_ok=
	if s_cmd '/l2/send.sh /tmp/wl/out' &&
		printf '%s\n' "${S_out[@]}" | grep -qx 'RKVM-L2-VIRTIO-RC 0'; then
		vio_ok=1
	fi

	logcheck
	s_poweroff
	s_finish 120
	guest_logs l2/${p}guest-kernel-log-clean
	if [ "$S_rc" = 0 ]; then
		pass l2/${p}clean-poweroff
	else
		fail l2/${p}clean-poweroff "QEMU exit status $S_rc$([ "$S_rc" = 124 ] && echo ' (still running after poweroff; killed)')"
	fi
	info l2/${p}total-seconds "$(secs "$S_t0" "$S_t1")"

	# After QEMU exited its chardev file is complete.
	if [ -n "$vio_ok" ] && [ "RKVM-L2-SHA256 $(sha256sum < "$S_vout" | cut -d' ' -f1)" = "$want" ]; then
		pass l2/${p}virtio-serial-transfer
	else
		fail l2/${p}virtio-serial-transfer "$( [ -n "$vio_ok" ] || echo 'the guest could not write the port; ')received $(stat -c %s "$S_vout" 2>/dev/null || echo 0) bytes, sha256 $(sha256sum < "$S_vout" 2>/dev/null | cut -c1-16)..."
	fi
	l1_check "$v"
}

# paging_stress: row l2/paging-stress: /l2/pagestress prints the line it
# printed on the host (scripts/l2-initramfs.sh, expected-paging.txt).
paging_stress() {
	local got want t
	want=$(cat "$l2dir/expected-paging.txt")
	t=$(now)
	if s_cmd /l2/pagestress; then
		info l2/paging-stress-seconds "$(secs "$t" "$(now)")"
		got=$(printf '%s\n' "${S_out[@]}" | grep -E '^RKVM-L2-PAGING' | head -n 1)
		if [ "$got" = "$want" ]; then
			pass l2/paging-stress
		else
			fail l2/paging-stress "got '${got:-${S_out[*]:-nothing}}', want '$want'"
		fi
	else
		fail l2/paging-stress "no prompt within ${cmd_tmo}s"
	fi
}

# l1_check VARIANT [NAME]: no new kernel warnings in L1 since l1_log_mark
# (row NAME, default l2/l1-kernel-log-clean or l2/VARIANT-l1-log-clean).
l1_check() {
	local bad name=${2:-l2/l1-kernel-log-clean}
	[ -n "${2:-}" ] || [ "$1" = default ] || name=l2/$1-l1-log-clean
	bad=$(l1_log_bad)
	if [ -z "$bad" ]; then
		pass "$name"
	else
		printf '%s\n' "$bad" > "$logdir/l2-$1.l1-dmesg-bad.txt"
		fail "$name" "$(printf '%s\n' "$bad" | grep -E "$log_bad" | head -n 2 | tr '\n' '|')"
	fi
}

# irqchip_session VARIANT TEST ACCEL SMP: QEMU with ACCEL (a kernel-irqchip=
# setting) and SMP vCPUs boots to the shell, sees SMP vCPUs and powers off
# (PASS); or exits at once with status 1 and exactly the variant's documented
# refusal (SKIP, with the message); anything else FAILs. Then the guest's
# kernel log (VARIANT-guest-log-clean) and L1's (VARIANT-l1-log-clean).
irqchip_session() {
	local v=$1 name=$2 acc=$3 smp=$4 c=$cpu cpus msg re
	l1_log_mark
	s_start "$v" "$acc" "$c" "$smp"
	if s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; then
		info "l2/$v-boot-seconds" "$(secs "$S_t0" "$(now)")"
		s_cmd 'cat /proc/cpuinfo | grep -c processor'
		cpus=${S_out[0]:-}
		logcheck
		s_poweroff
		s_finish 120
		if [ "$cpus" = "$smp" ] && [ "$S_rc" = 0 ]; then
			pass "$name"
			info "l2/$v" "-accel $acc -smp $smp: booted to the shell, $smp vCPU(s), powered off"
		else
			fail "$name" "booted but cpus='$cpus' (want $smp), QEMU exit status $S_rc; see $(basename "$S_log")"
		fi
	else
		s_finish 5
		re=${v##*kernel-irqchip-}
		[ "$v" = "${v#qemu10-}" ] || re=qemu10_$re
		re=refusal_re_$re
		re=${!re:-}
		msg=$(grep -v '^$' "$S_err" | grep -v 'warning:')
		if [ -z "$S_killed" ] && [ "$S_rc" = 1 ] && [ -n "$re" ] &&
			[ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] && [[ $msg =~ $re ]]; then
			skip "$name" "refused by QEMU (documented): $msg"
			info "l2/$v" "-accel $acc -smp $smp: refused by QEMU: $msg"
		else
			fail "$name" "$(s_why)"
		fi
	fi
	guest_logs "l2/$v-guest-log-clean"
	rm -f "$S_vout"
	l1_check "$v"
}

# ---- live migration (variants migrate, migrate-q10) -------------------------
# A running L2 guest (the workload in the background, a timer always armed,
# virtio-serial in use) migrates with QEMU's own means: `migrate
# "exec:cat > FILE"` at the source's monitor until `info migrate` says
# completed, `quit`, then a second QEMU with the same arguments plus
# `-incoming "exec:cat FILE"` (it resumes the guest by itself). A leg
# passes when: the migration completed, the source QEMU exited with 0 after
# `quit`, the destination runs, and in the restored guest
# (/l2/migrate.sh check) all vCPUs are online and each runs a pinned task,
# CLOCK_BOOTTIME did not go back nor jump ahead of L1's wall clock, the
# ticker's timer still fires, the interrupted workload finishes with the
# host's checksum, and its output sent through the virtio-serial port
# arrives intact in L1.
#
# Variant migrate (QEMU 7.2) chains three legs on one guest: the column's
# set to itself (l2/migrate/same-set), then, across a module swap (source
# QEMU gone, set unloaded, the other loaded, restore), to the peer set
# (l2/migrate/ours-to-intree) and back (l2/migrate/intree-to-ours). The
# peer set is RKVM_L2_PEER_MODS (tests/vm/init.sh: the in-tree set, in
# both columns): the ours column migrates ours -> in-tree -> ours, the
# in-tree column in-tree -> in-tree -> in-tree across the same unload and
# reload (the reference of the procedure; an INFO line says which sets
# ran). The variant ends with the column's own set loaded.
# Variant migrate-q10: one leg with QEMU 10, the column's set to itself
# (l2/migrate/qemu10).

# kvm_of MODULE-ARGS...: the kvm.ko of a module set.
kvm_of() {
	while [ $# -ge 2 ]; do
		[ "$1" != --kvm ] || { echo "$2"; return; }
		shift 2
	done
}

# mig_load SET: unload the loaded KVM modules, load SET (col or peer).
mig_load() {
	local args
	unload_modules
	loaded=() load_err=
	if [ "$1" = col ]; then args=("${col_args[@]}"); else args=("${peer_args[@]}"); fi
	load_modules "${args[@]}"
	M_loaded=$1
	[ -z "$load_err" ]
}

# mig_end_session: power the live session off (after the guest log check).
mig_end_session() {
	[ -n "$M_live" ] || return 0
	logcheck
	M_logcheck=$S_logcheck M_logcheck_why=$S_logcheck_why
	s_poweroff
	s_finish 60
	M_live=
}

# mig_kill: end a session that is of no more use (a failed leg).
mig_kill() {
	[ -n "$M_live" ] || return 0
	s_finish 1
	M_live=
}

# mig_diag N: what QEMU's monitor and L1's kvm tracepoints say about a
# restored guest that does not answer; prints the file's name.
mig_diag() {
	local f=$logdir/l2-$M_v-$1.diag.txt c tr=/sys/kernel/tracing
	{
		for c in 'info status' 'info cpus' 'info registers -a' 'info lapic 0' 'info lapic 1' 'info pic' 'info irq'; do
			echo "== $c"
			mon_cmd "$c" '\(qemu\) $' 10
			printf '%s\n' "$M_out"
		done
		if [ -w "$tr/events/kvm/enable" ]; then
			echo "== 2 s of kvm tracepoints"
			: > "$tr/trace"
			echo 1 > "$tr/events/kvm/enable"
			sleep 2
			echo 0 > "$tr/events/kvm/enable"
			head -n 400 "$tr/trace"
		fi
	} > "$f" 2>&1
	echo "$f"
}

# mig_save FILE INFO: the live session (S_mon=1) migrates to FILE with
# `migrate "exec:cat > FILE"` until `info migrate` says it ended (INFO line
# INFO: the status, QEMU's times, seconds, size), then `quit`s. 0: completed
# (M_src_rc: the source QEMU's exit status; FILE complete: no process has it
# open); 1: not (M_why; session killed).
mig_save() {
	local f=$1 st line i tm
	tm=$(now)
	mon_cmd 'migrate_set_parameter downtime-limit 1000' '\(qemu\) $' 10
	mon_cmd 'migrate_set_parameter max-bandwidth 4096' '\(qemu\) $' 10
	mon_cmd "migrate \"exec:cat > $f\"" '\(qemu\) $' 300
	i=0
	until mon_cmd 'info migrate' 'Migration status: [a-z-]+' 10 &&
		[[ $M_out =~ Migration\ status:\ (completed|failed|cancelled|error) ]]; do
		i=$((i + 1))
		[ $i -lt 120 ] || break
		sleep 0.5
	done
	st=$(printf '%s\n' "$M_out" | grep -m 1 'Migration status:' | sed 's/^[^M]*//')
	line="$st; $(printf '%s\n' "$M_out" | grep -m 1 -E '^(total time|downtime):' | tr -d '\n'), $(secs "$tm" "$(now)") s"
	if [[ $st != *completed* ]]; then
		info "$2" "$line"
		M_why="migrate did not complete: '${st:-no status}'"
		mig_kill
		return 1
	fi
	mon_cmd quit '^$' 1
	s_finish 30
	M_src_rc=$S_rc M_live=
	# The stream's writer (`cat > FILE`, QEMU's child) may outlive QEMU
	# for a moment: wait until no process has FILE open.
	i=0
	while fuser -s "$f" 2>/dev/null && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ $i = 0 ] || line+=" (+$((i / 10)).$((i % 10)) s until cat closed the file)"
	info "$2" "$line, $(du -k "$f" 2>/dev/null | cut -f1) KiB"
}

# mig_restore FILE NAME INFO: session NAME, QEMU with the arguments of the
# session saved (S_accel, S_cpu, S_smp, S_initrd, ...) and -incoming
# "exec:cat FILE", until `info status` says running (INFO line INFO: seconds
# from its start). 0: it runs (M_live=1); 1: not (M_why; QEMU ended).
mig_restore() {
	local i
	S_incoming=$1
	s_start "$2" "$S_accel" "$S_cpu" "$S_smp"
	S_incoming=
	M_logs+=("$S_log")
	i=0
	until mon_cmd 'info status' 'VM status: [a-z-]+' 10 && [[ $M_out =~ VM\ status:\ running ]]; do
		i=$((i + 1))
		if [ $i -ge 120 ] || [ -n "$S_eof" ] || ! kill -0 "$S_pid" 2>/dev/null; then
			s_finish 5
			if [ "$S_rc" = 0 ]; then
				# -no-reboot: a guest reset (or poweroff) ends QEMU with 0.
				M_why="QEMU exited with 0 before \`info status\` said running: the restored guest reset or powered off at once; console: $(tail -n 3 "$S_log" | tr '\n' '|')"
			else
				M_why="the restored guest does not run: $(printf '%s' "$M_out" | grep -m 1 'VM status' | tr -d '\n') $(s_why)"
			fi
			return 1
		fi
		sleep 0.5
	done
	info "$3" "$(secs "$S_t0" "$(now)")"
	M_live=1
}

# mig_leg ROW N FROM TO: one migration from set FROM to set TO (col, peer).
mig_leg() {
	local row=$1 n=$2 from=$3 to=$4 f errs=() u0 u1 l0 tk on cpus sum want vout i
	want=$(cat "$l2dir/expected.txt")
	f=$M_dir/l2-$M_v-$n.mig
	# A source on FROM: the guest so far, or a fresh boot.
	if [ -z "$M_live" ] || [ "$M_on" != "$from" ]; then
		mig_kill
		if [ "$M_loaded" != "$from" ] && ! mig_load "$from"; then
			fail "$row" "loading the $from set: $load_err"
			return
		fi
		s_start "$M_v-$n-src" "$accel"
		M_logs+=("$S_log")
		if ! { s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; }; then
			s_finish 5
			fail "$row" "the source did not boot: $(s_why)"
			return
		fi
		info "l2/$M_v-boot-seconds" "$(secs "$S_t0" "$(now)")"
		M_live=1 M_on=$from
	fi
	# Interrupt the workload, with the ticker's timer armed.
	s_cmd "/l2/migrate.sh start $n" 60
	u0=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-MIG-UPTIME //p' | head -n 1)
	if [ -z "$u0" ]; then
		fail "$row" "/l2/migrate.sh start: no answer (${S_out[*]:-nothing})"
		mig_kill
		return
	fi
	l0=$(now)
	if ! mig_save "$f" "l2/$M_v-$n-save"; then
		fail "$row" "$M_why"
		return
	fi
	[ "$M_src_rc" = 0 ] || errs+=("the source QEMU exited with $M_src_rc after quit")
	# The destination, on TO: across a module unload and reload when the
	# sets differ by role (even when the peer is the same modules).
	if [ "$to" != "$from" ] && ! mig_load "$to"; then
		fail "$row" "loading the $to set: $load_err"
		rm -f "$f"
		return
	fi
	if ! mig_restore "$f" "$M_v-$n-dst" "l2/$M_v-$n-restore-seconds"; then
		fail "$row" "$M_why"
		rm -f "$f"
		return
	fi
	rm -f "$f"
	M_on=$to
	if ! s_cmd "/l2/migrate.sh check $n" 150; then
		fail "$row" "no prompt after the restore (/l2/migrate.sh check): console $(tail -n 3 "$S_log" | tr '\n' '|'); QEMU's view in $(basename "$(mig_diag "$n")")"
		mig_kill
		return
	fi
	u1=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-MIG-UPTIME //p' | head -n 1)
	on=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-MIG-ONLINE //p' | head -n 1)
	cpus=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-MIG-ONCPU //p' | sort -n | tr '\n' ' ')
	tk=$(printf '%s\n' "${S_out[@]}" | sed -n 's/^RKVM-MIG-TICK //p' | head -n 1)
	sum=$(printf '%s\n' "${S_out[@]}" | grep -m 1 '^RKVM-L2-SHA256 ')
	[ "$on" = "0-$((S_smp - 1))" ] || errs+=("cpu/online '$on', want 0-$((S_smp - 1))")
	[ "$cpus" = "$(seq 0 $((S_smp - 1)) | tr '\n' ' ')" ] || errs+=("tasks pinned to each vCPU ran on '$cpus'")
	# CLOCK_BOOTTIME: not back, and not ahead by more than L1's wall time
	# since the start command (+5 s).
	awk -v a="$u0" -v b="$u1" -v w="$(secs "$l0" "$(now)")" 'BEGIN { exit !(b != "" && b + 0 >= a + 0 && b - a <= w + 5) }' ||
		errs+=("guest clock: uptime $u0 before, '$u1' after, $(secs "$l0" "$(now)") s of L1 time between")
	# shellcheck disable=SC2086
	awk -v t="$tk" 'BEGIN { split(t, x, " "); exit !(x[2] != "" && x[2] + 0 > x[1] + 0) }' ||
		errs+=("the ticker's timer did not fire in 1 s: '$tk'")
	[ "$sum" = "$want" ] || errs+=("workload: '${sum:-$(printf '%s\n' "${S_out[@]}" | grep -m 1 RKVM-MIG-WL-RC)}', want '$want'")
	# virtio-serial on the destination: the workload's output to L1.
	vout=
	if s_cmd "/l2/send.sh /tmp/mig$n/wl/out" 60 && printf '%s\n' "${S_out[@]}" | grep -qx 'RKVM-L2-VIRTIO-RC 0'; then
		for i in $(seq 20); do
			vout="RKVM-L2-SHA256 $(sha256sum < "$S_vout" 2>/dev/null | cut -d' ' -f1)"
			[ "$vout" != "$want" ] || break
			sleep 0.5
		done
		[ "$vout" = "$want" ] || errs+=("virtio-serial: L1 received $(stat -c %s "$S_vout" 2>/dev/null || echo 0) bytes, sha256 ${vout#RKVM-L2-SHA256 }")
	else
		errs+=("virtio-serial: the guest could not write the port (${S_out[*]:-no prompt})")
	fi
	if [ ${#errs[@]} = 0 ]; then
		pass "$row"
	else
		fail "$row" "$(printf '%s; ' "${errs[@]}")see $(basename "$S_log")"
		mig_kill
	fi
}

# migrate_session VARIANT: the legs of VARIANT (migrate, migrate-q10).
migrate_session() {
	local c bad t0=$SECONDS
	M_v=$1 M_live= M_on= M_loaded=col M_logs=() M_logcheck= M_logcheck_why=
	M_dir=$(mktemp -d /tmp/l2-mig.XXXXXX)
	l1_log_mark
	# 128 MiB: half the RAM for QEMU to scan and send (the guest needs ~40).
	# A legacy virtio-serial (notifies are port writes): the in-tree module
	# under TCG often fails the restored guest's first MMIO notify of a
	# modern one with KVM internal error 3 (emulation during event
	# vectoring: TCG's nested SVM leaves EVENTINJ's type bits, without V,
	# in EXITINTINFO after delivering an event in L2, and 7.3's
	# svm_check_emulate_instruction() tests the type bits alone); ours
	# does not, and the default variant covers MMIO notifies.
	S_mon=1 S_mem=128M S_vser_opts=,disable-modern=on
	case $1 in
	migrate)
		info l2/migrate-sets "column kvm $(kvm_of "${col_args[@]}"), peer kvm $(kvm_of "${peer_args[@]}") ($([ "${col_args[*]}" = "${peer_args[*]}" ] && echo 'the same modules: the cross legs unload and reload them' || echo 'the cross legs swap the sets'))"
		# L2_MIGRATE_LEGS (a debugging aid): the legs to run, default 1 2 3.
		case " ${L2_MIGRATE_LEGS:-1 2 3} " in *" 1 "*) mig_leg l2/migrate/same-set 1 col col ;; esac
		case " ${L2_MIGRATE_LEGS:-1 2 3} " in *" 2 "*) mig_leg l2/migrate/ours-to-intree 2 col peer ;; esac
		case " ${L2_MIGRATE_LEGS:-1 2 3} " in *" 3 "*) mig_leg l2/migrate/intree-to-ours 3 peer col ;; esac
		;;
	migrate-q10) mig_leg l2/migrate/qemu10 1 col col ;;
	esac
	mig_end_session
	S_mon= S_mem= S_vser_opts=
	# The column's own set stays loaded for what follows.
	[ "$M_loaded" = col ] || mig_load col || echo "l2-boot: reloading the column's set: $load_err" >&2
	rm -rf "$M_dir"
	info "l2/$M_v-seconds" "$((SECONDS - t0))"
	local p=l2/migrate/ && [ "$1" = migrate ] || p=l2/migrate/qemu10-
	bad=
	for c in "${M_logs[@]}"; do
		bad+=$(grep -E "$log_bad" "$c" | head -n 2 | sed "s|^|$(basename "$c"): |" | tr '\n' '|')
	done
	S_logcheck=$M_logcheck S_logcheck_why=$M_logcheck_why
	guest_logs "${p}guest-kernel-log-clean" "$bad" \
		"no guest shell was left to run /l2/logcheck.sh; the consoles show no report"
	l1_check "$1" "${p}l1-log-clean"
}

# ---- nested SVM: an L3 guest (variant nested) -------------------------------
# `make check-nested` (issue 15; scripts/check-nested.sh loads the column's
# kvm-amd with nested=1): QEMU boots L2 with SVM in its CPUID (-cpu
# $L2_NESTED_CPU, default qemu64,+svm,+npt) and the initramfs of
# scripts/l2-initramfs.sh --nested. NPT is asked for, not required: QEMU
# (without "enforce") drops what L1 does not offer, with a warning, and
# L2's kvm-amd then runs L3 on its shadow MMU (INFO l2/nested/l2-npt says
# which). Under QEMU 7.2 TCG that shadow path cannot pass with the in-tree
# module as L1: a real-mode L3 runs on a PAE shadow root, TCG's page walk
# sets the accessed bit (bit 5, reserved there) in its PDPTEs, and L1's
# next nested VMRUN fails its PDPTE check (kvm_nested_vmenter_failed:
# !load_pdptrs; L3 sees KVM_EXIT_FAIL_ENTRY). In L2 the driver types:
#   grep -cw svm /proc/cpuinfo   row l2/nested/l2-cpuid-svm: every vCPU has
#                                SVM ("L2 CPUID has no SVM" otherwise, with
#                                L1's nested parameter and QEMU's warning;
#                                the rows below then SKIP at once)
#   /l3/load.sh                  row l2/nested/l3-boot-kvm: the in-tree
#                                irqbypass.ko, kvm.ko, kvm-amd.ko (of the
#                                same kernel build) load and /dev/kvm appears
#   /l3/l3run                    rows l2/nested/l3-pio, l3-mmio, l3-hlt:
#                                tests/vm/l2/l3run.c runs the in-VM suite's
#                                real-mode guest on L2's /dev/kvm and checks
#                                each exit (KVM_EXIT_IO port and data,
#                                KVM_EXIT_MMIO address and data, KVM_EXIT_HLT
#                                and RIP); every KVM_RUN bounded to 10 s
# then the migration leg, on the same modules (L2's QEMU has a monitor,
# 128 MiB and a legacy virtio-serial, as the migrate variants):
#   /l3/loop.sh start            /l3/l3run loop in the background in L2
#                                (tests/vm/l2/l3loop.sh): L3's PIO, MMIO,
#                                HLT and count_out exits round after round,
#                                each checked, and L3 spinning without exits
#                                (most of the time: L2's vCPU in guest mode)
#   mig_save, after 2 rounds     row l2/nested/migrate-save: `migrate
#                                "exec:cat > FILE"` completed and the source
#                                QEMU exited with 0 after `quit`
#   mig_restore                  row l2/nested/migrate-restore: a second
#                                QEMU with -incoming "exec:cat FILE" runs
#                                and L2's shell answers
#   /l3/loop.sh after            the loop's round count advances after the
#                                restore (row l2/nested/l3-after-restore)
# and again (at most nested_saves=4 saves) until a save caught a vCPU in
# guest mode, running L3: QEMU 7.2 sends a vCPU's cpu/nested_state
# subsection only when KVM_GET_NESTED_STATE gave more than the header, for
# SVM only in guest mode (INFO l2/nested/migrate-guest-mode: per save, how
# many, and the header's flags); L3 spins ~70% of the time, so the first
# save mostly does. Then /l3/loop.sh stop: row l3-after-restore also needs
# the loop to end with every exit right (RKVM-L3 PASS loop, status 0).
# Then /l2/logcheck.sh
# (l2/nested/l2-guest-log-clean; the consoles of both QEMUs), poweroff
# (l2/nested/l2-clean-poweroff) and L1's log (l2/nested/l1-log-clean).
nested_l3_rows='l3-pio l3-mmio l3-hlt'
nested_mig_rows='migrate-save migrate-restore l3-after-restore'

# nested_skip WHY ROW...: SKIP the rows (under l2/nested/) with WHY.
nested_skip() {
	local why=$1 r
	shift
	for r in "$@"; do skip "l2/nested/$r" "$why"; done
}

# mig_guest_mode FILE: "N FLAGS...": the cpu/nested_state subsections of
# the migration stream FILE (QEMU_VM_SUBSECTION 5, the name's length 16,
# the name, its version as a be32, then the kvm_nested_state header's
# flags as a be16), and their flags.
mig_guest_mode() {
	local off n=0 fl=
	for off in $(grep -obUaF cpu/nested_state "$1" | cut -d: -f1); do
		[ "$(od -An -tx1 -j "$((off - 2))" -N 2 "$1" | tr -d ' \n')" = 0510 ] || continue
		n=$((n + 1))
		fl+=" 0x$(od -An -tx1 -j "$((off + 20))" -N 2 "$1" | tr -d ' \n')"
	done
	echo "$n$fl"
}

# nested_loop LINES: the round count of the loop's last progress line.
nested_loop() { printf '%s\n' "$@" | sed -n 's/^RKVM-L3-LOOP \([0-9]*\) .*/\1/p' | tail -n 1; }

# nested_migrate: the migration leg (after the L3 rows, L2's KVM loaded):
# up to nested_saves migrations, until one caught L2 running L3.
nested_saves=4
nested_migrate() {
	local p=l2/nested/ f k c0 c1 c2 t gm fl n_gm=0 n_rest=0 errs=() out serr= rerr= modes=
	t=$SECONDS
	s_cmd '/l3/loop.sh start; /l3/loop.sh after 2 90' 120
	c0=$(nested_loop "${S_out[@]}")
	info ${p}l3-loop-before-save "${c0:-no} rounds: $(printf '%s\n' "${S_out[@]}" | grep '^RKVM-L3' | tr '\n' '|')"
	f=$(mktemp /tmp/l2-nested-mig.XXXXXX)
	for k in $(seq "$nested_saves"); do
		if ! mig_save "$f" ${p}migrate-save-$k; then
			serr="save $k: $M_why"
			break
		fi
		gm=$(mig_guest_mode "$f")
		fl=${gm#* }
		[ "$fl" != "$gm" ] || fl=
		modes+="${modes:+; }save $k: ${gm%% *}${fl:+ (flags $fl)}"
		[ "${gm%% *}" = 0 ] || n_gm=$((n_gm + 1))
		[ "$M_src_rc" = 0 ] || serr="save $k completed, but the source QEMU exited with $M_src_rc after quit"
		# L2_NESTED_TRACE=1: L1's kvm tracepoints from the restore to the
		# shell's first answer, to l2-nested-dstK.l1-trace.txt.
		nested_trace on
		if ! mig_restore "$f" nested-dst$k ${p}migrate-restore-$k-seconds; then
			rerr="restore $k (vCPUs in guest mode at save $k: ${gm%% *}): $M_why"
			nested_trace "$logdir/l2-nested-dst$k.l1-trace.txt"
			break
		fi
		if ! s_cmd '/l3/loop.sh after 0 10' 60; then
			rerr="restore $k (vCPUs in guest mode at save $k: ${gm%% *}) runs, but L2's shell does not answer: console $(tail -n 3 "$S_log" | tr '\n' '|'); QEMU's view in $(basename "$(mig_diag "$k")")"
			nested_trace "$logdir/l2-nested-dst$k.l1-trace.txt"
			mig_kill
			break
		fi
		nested_trace "$logdir/l2-nested-dst$k.l1-trace.txt"
		n_rest=$((n_rest + 1))
		c1=$(nested_loop "${S_out[@]}")
		if ! s_cmd "/l3/loop.sh after ${c1:-0} 60" 90; then
			errs+=("after restore $k (vCPUs in guest mode at save $k: ${gm%% *}) L2's shell answered once, then no more (/l3/loop.sh after: no prompt in 90 s): console $(tail -n 3 "$S_log" | tr '\n' '|'); QEMU's view in $(basename "$(mig_diag "$k")")")
			mig_kill
			break
		fi
		c2=$(nested_loop "${S_out[@]}")
		info ${p}l3-after-restore-$k "rounds ${c1:-none} at the restore, ${c2:-none} after"
		[ -n "$c1" ] && [ -n "$c2" ] && [ "$c2" -gt "$c1" ] ||
			errs+=("the loop did not advance after restore $k (rounds ${c1:-none} at the restore, ${c2:-none} up to 60 s later)")
		[ ${#errs[@]} = 0 ] && [ -z "$serr" ] && [ "$n_gm" = 0 ] || break
	done
	rm -f "$f"
	info ${p}migrate-guest-mode "$n_gm of $k saves caught L2 running L3; vCPUs in guest mode (cpu/nested_state in the stream; flags 0x1 GUEST_MODE, 0x100 GIF_SET): $modes"
	if [ -n "$serr" ]; then
		fail ${p}migrate-save "$serr"
	else
		pass ${p}migrate-save
	fi
	if [ -n "$rerr" ]; then
		fail ${p}migrate-restore "$rerr"
	elif [ "$n_rest" -gt 0 ]; then
		pass ${p}migrate-restore
	else
		skip ${p}migrate-restore "no restore (row migrate-save failed)"
	fi
	if [ -z "$M_live" ] && [ ${#errs[@]} != 0 ]; then
		fail ${p}l3-after-restore "$(printf '%s; ' "${errs[@]}")see $(basename "$S_log")"
	elif [ -z "$M_live" ]; then
		skip ${p}l3-after-restore "no L2 left to run L3 (row migrate-$([ -n "$rerr" ] && echo restore || echo save) failed)"
	fi
	if [ -z "$M_live" ]; then
		info ${p}migrate-seconds "$((SECONDS - t))"
		return
	fi
	s_cmd '/l3/loop.sh stop 60' 90
	out=$(printf '%s\n' "${S_out[@]}" | grep '^RKVM-L3')
	info ${p}l3-after-restore "rounds: ${c0:-?} before the first save; $(printf '%s\n' "$out" | grep -m 1 '^RKVM-L3 ')"
	printf '%s\n' "$out" | grep -q '^RKVM-L3 PASS loop ' ||
		errs+=("$(printf '%s\n' "$out" | grep -m 1 '^RKVM-L3 FAIL ' || echo "the loop did not end with RKVM-L3 PASS")")
	printf '%s\n' "$out" | grep -qx 'RKVM-L3-LOOP-RC 0' ||
		errs+=("l3run loop: $(printf '%s\n' "$out" | grep -m 1 '^RKVM-L3-LOOP-RC' || echo 'did not end after the stop file')")
	if [ ${#errs[@]} = 0 ]; then
		pass ${p}l3-after-restore
	else
		fail ${p}l3-after-restore "$(printf '%s; ' "${errs[@]}")see $(basename "$S_log")"
	fi
	info ${p}migrate-seconds "$((SECONDS - t))"
}

# nested_trace on|FILE: with L2_NESTED_TRACE=1, L1's kvm tracepoints on
# (the buffer emptied), or off and the buffer's first 100000 lines to FILE.
nested_trace() {
	local tr=/sys/kernel/tracing
	[ -n "${L2_NESTED_TRACE:-}" ] && [ -w "$tr/events/kvm/enable" ] || return 0
	if [ "$1" = on ]; then
		: > "$tr/trace"
		echo 1 > "$tr/events/kvm/enable"
	else
		echo 0 > "$tr/events/kvm/enable"
		head -n 100000 "$tr/trace" > "$1"
	fi
}

# nested_session: variant nested, with its QEMU settings.
nested_session() {
	S_initrd=$l2dir/initramfs-nested.cpio.gz S_mon=1 S_mem=128M S_vser_opts=,disable-modern=on
	M_v=nested M_live= M_logs=()
	nested_l2
	S_initrd= S_mon= S_mem= S_vser_opts=
}

nested_l2() {
	local p=l2/nested/ t0=$SECONDS par svm line r t bad c
	l1_log_mark
	par=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null || echo '?')
	info ${p}l1-kvm-amd "nested=$par (/sys/module/kvm_amd/parameters/nested in L1)"
	s_start nested "$accel" "${L2_NESTED_CPU:-qemu64,+svm,+npt}"
	M_logs+=("$S_log") M_live=1
	if s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; then
		pass ${p}l2-boot-to-shell
		info ${p}l2-boot-seconds "$(secs "$S_t0" "$(now)")"
	else
		s_finish 5
		fail ${p}l2-boot-to-shell "$(s_why)"
		# shellcheck disable=SC2086
		nested_skip "no L2 shell (row l2-boot-to-shell failed)" l2-cpuid-svm l3-boot-kvm $nested_l3_rows $nested_mig_rows
		guest_logs ${p}l2-guest-log-clean
		skip ${p}l2-clean-poweroff "no L2 shell (row l2-boot-to-shell failed)"
		l1_check nested ${p}l1-log-clean
		return
	fi

	s_cmd 'grep -cw svm /proc/cpuinfo; grep -cw npt /proc/cpuinfo' 60
	svm=${S_out[0]:-}
	info ${p}l2-npt "'npt' on ${S_out[1]:-?} of $S_smp vCPUs (none: L2's KVM runs L3 on shadow paging)"
	if [ "$svm" = "$S_smp" ]; then
		pass ${p}l2-cpuid-svm
	else
		# QEMU's own words on the feature it could not give (-cpu ...,+svm).
		line=$(grep -m 1 -i 'svm' "$S_err" | sed 's/^qemu-system-x86_64: //')
		fail ${p}l2-cpuid-svm "L2 CPUID has no SVM ('svm' on ${svm:-?} of $S_smp vCPUs; L1's kvm_amd nested=$par${line:+; QEMU: $line})"
		# shellcheck disable=SC2086
		nested_skip "L2 CPUID has no SVM (row l2-cpuid-svm failed)" l3-boot-kvm $nested_l3_rows $nested_mig_rows
		svm=
	fi

	if [ -n "$svm" ]; then
		t=$(now)
		s_cmd "/l3/load.sh ${L2_NESTED_PARAMS:-}" 90
		line=$(printf '%s\n' "${S_out[@]}" | grep -m 1 '^RKVM-L3-LOAD ')
		if [[ $line == 'RKVM-L3-LOAD ok '* ]]; then
			pass ${p}l3-boot-kvm
			line=${line#RKVM-L3-LOAD ok }
			info ${p}l3-load-seconds "${line%% *} in L2, $(secs "$t" "$(now)") L1 wall"
			info ${p}l2-kvm-amd "${line#* }"
		else
			fail ${p}l3-boot-kvm "${line:+${line#RKVM-L3-LOAD FAIL }}${line:-no answer from /l3/load.sh: ${S_out[*]:-nothing}; see $(basename "$S_log")}"
			# shellcheck disable=SC2086
			nested_skip "no /dev/kvm in L2 (row l3-boot-kvm failed)" $nested_l3_rows $nested_mig_rows
			svm=
		fi
	fi

	if [ -n "$svm" ]; then
		# L2_NESTED_TRACE=1: L1's kvm tracepoints during the run (e.g. the
		# in-tree module's kvm_nested_vmenter_failed) to l2-nested.l1-trace.txt.
		nested_trace on
		t=$(now)
		s_cmd /l3/l3run 120
		info ${p}l3-run-seconds "$(secs "$t" "$(now)") (L1 wall, the three rows)"
		nested_trace "$logdir/l2-nested.l1-trace.txt"
		for r in $nested_l3_rows; do
			line=$(printf '%s\n' "${S_out[@]}" | grep -m 1 -E "^RKVM-L3 (PASS|FAIL) ${r#l3-}[ :]")
			case $line in
			'RKVM-L3 PASS '*)
				pass "$p$r"
				info "$p$r" "${line#RKVM-L3 PASS "${r#l3-}" }"
				;;
			'RKVM-L3 FAIL '*) fail "$p$r" "${line#RKVM-L3 FAIL "${r#l3-}": }" ;;
			*) fail "$p$r" "no result from /l3/l3run ($(printf '%s\n' "${S_out[@]}" | tail -n 3 | tr '\n' '|')); see $(basename "$S_log")" ;;
			esac
		done
		# A failed row: L2's kernel log onto the console log, for the why
		# (with L2_NESTED_PARAMS=dump_invalid_vmcb=1, a refused VMCB).
		printf '%s\n' "${S_out[@]}" | grep -q '^RKVM-L3-DONE 0$' || s_cmd 'dmesg | tail -n 60' 30
		nested_migrate
	fi

	# L2's log when a shell is left; the consoles of all its QEMUs.
	if [ -n "$M_live" ]; then
		logcheck
		s_poweroff
		s_finish 60
		M_live=
		if [ "$S_rc" = 0 ]; then
			pass ${p}l2-clean-poweroff
		else
			fail ${p}l2-clean-poweroff "QEMU exit status $S_rc$([ "$S_rc" = 124 ] && echo ' (still running after poweroff; killed)')"
		fi
	else
		S_logcheck=
		skip ${p}l2-clean-poweroff "no L2 left after the migration leg (its rows failed)"
	fi
	bad=
	for c in "${M_logs[@]}"; do
		bad+=$(grep -E "$log_bad" "$c" | head -n 2 | sed "s|^|$(basename "$c"): |" | tr '\n' '|')
	done
	guest_logs ${p}l2-guest-log-clean "$bad" "no L2 shell was left to run /l2/logcheck.sh; the consoles show no report"
	info ${p}seconds "$((SECONDS - t0))"
	l1_check nested ${p}l1-log-clean
}

# ---- modules (check mode) ---------------------------------------------------
loaded=()
load_err=
# module_params KO: its parameters from RKVM_MODULE_PARAMS
# (NAME.ko=PARAMS[;...], "+" for a space; as rkvm-vmtest reads it).
module_params() {
	local e base
	base=$(basename "$1")
	local IFS=';'
	for e in ${RKVM_MODULE_PARAMS:-}; do
		[ "${e%%=*}" = "$base" ] && printf '%s ' "${e#*=}" | tr + ' '
	done
}
# The vendor module of this CPU: --amd, or --intel on Intel (the VMX column
# under Bochs, scripts/bochs.sh).
vendor_opt=--amd
grep -q '^vendor_id.*GenuineIntel' /proc/cpuinfo 2>/dev/null && vendor_opt=--intel
# load_modules MODULE-ARGS...: insmod what is not loaded; load_err says
# what failed (the rows then FAIL as not run).
load_modules() {
	local m err
	while [ $# -ge 2 ]; do
		case $1 in
		--pre|--kvm|"$vendor_opt")
			m=$(basename "$2" .ko | tr - _)
			if [ ! -d "/sys/module/$m" ]; then
				# shellcheck disable=SC2046
				if err=$(insmod "$2" $(module_params "$2") 2>&1); then
					loaded=("$m" "${loaded[@]}")
				else
					echo "l2-boot: insmod $2 failed: $err" >&2
					[ -n "$load_err" ] || load_err="insmod $2 failed: $(printf '%s' "$err" | tr '\n' ' ')"
				fi
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

# preflight: why the sessions cannot run (empty: they can).
preflight() {
	local why=
	if [ -n "$load_err" ]; then
		why=$load_err
	elif [ ! -s "$initrd" ] || [ ! -s "$l2dir/expected.txt" ] || [ ! -s "$l2dir/expected-paging.txt" ]; then
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

# variant_tests VARIANT: the rows of a variant (the manifest, and FAIL
# lines for variants that could not run).
variant_tests() {
	case $1 in
	default) echo boot-to-shell both-vcpus-online workload-checksum paging-stress virtio-serial-transfer \
		guest-kernel-log-clean clean-poweroff l1-kernel-log-clean ;;
	split|off|qemu10-split|qemu10-off)
		local k=kernel-irqchip-${1#qemu10-} p=
		[ "$1" = "${1#qemu10-}" ] || p=qemu10-
		echo "$p$k-clean $p$k-guest-log-clean $p$k-l1-log-clean" ;;
	qemu10) echo qemu10-boot-to-shell qemu10-both-vcpus-online qemu10-workload-checksum \
		qemu10-virtio-serial-transfer qemu10-guest-kernel-log-clean qemu10-clean-poweroff \
		qemu10-l1-log-clean ;;
	migrate)
		case " ${L2_MIGRATE_LEGS:-1 2 3} " in *" 1 "*) echo migrate/same-set ;; esac
		case " ${L2_MIGRATE_LEGS:-1 2 3} " in *" 2 "*) echo migrate/ours-to-intree ;; esac
		case " ${L2_MIGRATE_LEGS:-1 2 3} " in *" 3 "*) echo migrate/intree-to-ours ;; esac
		echo migrate/guest-kernel-log-clean migrate/l1-log-clean
		;;
	migrate-q10) echo migrate/qemu10 migrate/qemu10-guest-kernel-log-clean migrate/qemu10-l1-log-clean ;;
	nested)
		for t in l2-boot-to-shell l2-cpuid-svm l3-boot-kvm $nested_l3_rows $nested_mig_rows l2-guest-log-clean \
			l2-clean-poweroff l1-log-clean; do
			echo "nested/$t"
		done
		;;
	*) echo "l2-boot: unknown variant $1" >&2; return 1 ;;
	esac
}

case ${1:-} in
check)
	out=${2:?usage: $0 check OUT [MODULE-ARGS...]}
	shift 2
	logdir=$out results=$out/l2-results.txt
	mkdir -p "$out"
	: > "$results"
	variants=${L2_VARIANTS:-$all_variants}
	# The column's set, and the peer set of the migration's cross legs.
	col_args=("$@")
	# shellcheck disable=SC2206
	peer_args=(${RKVM_L2_PEER_MODS:-$*})
	load_modules "$@"
	why=$(preflight)
	start=$SECONDS
	[ -n "$why" ] || info l2/versions "$($qemu --version | head -n 1 | sed 's/^QEMU emulator version //'), -cpu $cpu"
	for v in $variants; do
		[ -n "$why" ] || [ $((SECONDS - start)) -lt "$budget" ] ||
			why="over the ${budget}s budget (L2_BUDGET) after earlier variants"
		vwhy=$why
		if [ -z "$vwhy" ] && { [ "$v" != "${v#qemu10}" ] || [ "$v" = migrate-q10 ]; }; then
			if [ -z "$qemu10" ]; then
				vwhy="no QEMU 10 in ${RKVM_CACHE:-$HOME/.cache/rkvm}/qemu-10.* (scripts/qemu10.sh runs on the host before the VM)"
			elif ! "$qemu10" --version > /dev/null 2>&1; then
				vwhy="$qemu10 does not run: $("$qemu10" --version 2>&1 | head -n 1)"
			fi
		fi
		[ -n "$vwhy" ] || [ "$v" != nested ] || [ -s "$l2dir/initramfs-nested.cpio.gz" ] ||
			vwhy="$l2dir/initramfs-nested.cpio.gz missing (scripts/l2-initramfs.sh --nested runs on the host before the VM)"
		if [ -n "$vwhy" ]; then
			for t in $(variant_tests "$v"); do fail "l2/$t" "not run: $vwhy"; done
			continue
		fi
		case $v in
		default) full_session ;;
		# The same session with QEMU 10 and its own firmware directory.
		qemu10)
			info l2/qemu10-version "$("$qemu10" --version | head -n 1 | sed 's/^QEMU emulator version //')"
			S_qemu=$qemu10 S_qemu_args=(-L "$qemu10_prefix/usr/share/qemu")
			full_session qemu10
			S_qemu= S_qemu_args=()
			;;
		migrate) migrate_session migrate ;;
		nested) nested_session ;;
		migrate-q10)
			S_qemu=$qemu10 S_qemu_args=(-L "$qemu10_prefix/usr/share/qemu")
			migrate_session migrate-q10
			S_qemu= S_qemu_args=()
			;;
		split) irqchip_session kernel-irqchip-split l2/kernel-irqchip-split-clean \
			"$accel,kernel-irqchip=split" "${L2_SMP:-2}" ;;
		# One vCPU: with two, QEMU 7.2's userspace LAPIC livelocks at the
		# AP's startup even on the in-tree module (a vCPU thread spins in
		# QEMU holding the BQL; the main loop and the other vCPU wait).
		off) irqchip_session kernel-irqchip-off l2/kernel-irqchip-off-clean \
			"$accel,kernel-irqchip=off" 1 ;;
		# The same two with QEMU 10 (=off with one vCPU as well; QEMU 10
		# refuses =off with KVM altogether: refusal_re_qemu10_off).
		qemu10-split|qemu10-off)
			k=kernel-irqchip-${v#qemu10-}
			S_qemu=$qemu10 S_qemu_args=(-L "$qemu10_prefix/usr/share/qemu")
			smp=${L2_SMP:-2}
			[ "$v" = qemu10-split ] || smp=1
			irqchip_session "qemu10-$k" "l2/qemu10-$k-clean" "$accel,kernel-irqchip=${v#qemu10-}" "$smp"
			S_qemu= S_qemu_args=()
			;;
		*) echo "l2-boot: unknown variant $v" >&2 ;;
		esac
	done
	unload_modules
	[ "$nfail" = 0 ]
	;;
bench)
	out=${2:?usage: $0 bench OUT [MODULE-ARGS...]}
	shift 2
	logdir=$out results=/dev/null
	mkdir -p "$out"
	# wanted ROW: RKVM_BENCH_ROWS lists it, or lists nothing.
	wanted() { [ -z "$(echo "${RKVM_BENCH_ROWS:-}" | tr -d ', ')" ] || echo ",${RKVM_BENCH_ROWS}," | tr ' ' , | grep -q ",$1,"; }
	rows=
	for r in l2-boot l2-fork-exec; do wanted $r && rows="$rows $r"; done
	[ -n "$rows" ] || exit 0
	bfail() { for r in $rows; do echo "BENCH-FAIL $r: $1"; done; unload_modules; exit 1; }
	load_modules "$@"
	why=$(preflight)
	[ -z "$why" ] || bfail "$why"
	s_start bench "$accel"
	if ! { s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; }; then
		s_finish 5
		bfail "no shell: $(s_why)"
	fi
	t=$(secs "$S_t0" "$(now)")
	wanted l2-boot && echo "BENCH l2-boot 1 $t $t 0 s # L2 Linux (2 vCPUs, 256 MiB) boot to its shell: QEMU start -> shell marker, L1 wall time"
	rc=0
	if wanted l2-fork-exec; then
		n=${L2_FORKS:-200}
		t0=$(now)
		if s_cmd "i=0; while [ \$i -lt $n ]; do /bin/true; i=\$((i + 1)); done; echo RKVM-FORKS-\$i" &&
			printf '%s\n' "${S_out[@]}" | grep -qx "RKVM-FORKS-$n"; then
			ms=$(awk -v a="$t0" -v b="$(now)" -v n="$n" 'BEGIN { printf "%.3f", (b - a) * 1000 }')
			echo "BENCH l2-fork-exec $n $ms $(awk -v t="$ms" -v n="$n" 'BEGIN { printf "%.3f", t / n }') 0 ms/exec # the L2 shell forks and execs /bin/true (busybox) $n times, 2 vCPUs"
		else
			echo "BENCH-FAIL l2-fork-exec: no RKVM-FORKS-$n (got '${S_out[*]:-}')"
			rc=1
		fi
	fi
	s_poweroff
	s_finish 120
	unload_modules
	exit $rc
	;;
list)
	for v in ${L2_VARIANTS:-$all_variants}; do
		t=$(variant_tests "$v") || exit 2
		for t in $t; do echo "ROW l2/$t"; done
	done
	;;
demo)
	shift
	logdir=${L2_LOGDIR:-/tmp} results=/dev/null
	S_demo=1
	load_modules "$@"
	why=$(preflight)
	[ -z "$why" ] || { echo "l2: $why" >&2; unload_modules; exit 1; }
	echo "l2: qemu-system-x86_64 -accel $accel -cpu $cpu -smp ${L2_SMP:-2} -m 256M -nodefaults -serial stdio" \
		"-kernel bzImage -initrd build/l2/initramfs.cpio.gz (the guest's console follows)"
	s_start demo "$accel"
	if ! { s_expect '^RKVM-L2-SHELL-READY' "$boot_tmo" && s_expect PROMPT 60; }; then
		s_finish 5
		echo "l2: the guest did not reach its shell: $(s_why)"
		unload_modules
		exit 1
	fi
	t_ready=$(now)
	# Type as a user would (the guest echoes each command after its prompt).
	cmds=${L2_DEMO_COMMANDS:-'dmesg | grep -E "Linux version|Hypervisor detected|smpboot: Total|Switched to clocksource|Run /init"
cat /proc/cpuinfo | grep -c processor
uname -r
cat /sys/devices/system/clocksource/clocksource0/current_clocksource'}
	while IFS= read -r c; do
		s_cmd "$c" "$cmd_tmo" || break
	done <<< "$cmds"
	printf '%s\n' 'poweroff -f' >&"$S_w" 2>/dev/null
	s_finish 120
	echo "l2: the guest reached its shell after $(secs "$S_t0" "$t_ready") s;" \
		"QEMU exited with status $S_rc after $(secs "$S_t0" "$S_t1") s"
	unload_modules
	[ "$S_rc" = 0 ]
	;;
*)
	echo "usage: $0 check OUT [MODULE-ARGS...] | bench OUT [MODULE-ARGS...] | list | demo [MODULE-ARGS...]" >&2
	exit 2
	;;
esac
