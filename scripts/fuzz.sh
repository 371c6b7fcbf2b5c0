#!/bin/bash
# The ioctl fuzzer (tests/vm/ioctlfuzz), fault injection and module
# lifecycle tests in the test VM, one boot per module set; then the kernel
# log and kmemleak checks, and the errno differences between the sets on
# the same seed (a report, not a failure). Last line: "N passed, N failed".
#
#   scripts/fuzz.sh [--calls N] [--seconds S] [--seed N] [--races PERMILLE]
#                   [--faults] [--lifecycle N] [--replay FILE [--repeat N]] [--no-fuzz]
#                   [--sets "ours intree"] [--out DIR] [--timeout S]
#                   [--first-prog P] [--last-prog P] [--workers N]
#                   [--nested-guest-mode] (SET_NESTED_STATE into L2, then
#                   KVM_RUN: wedges QEMU 7.2 TCG with either module set,
#                   tests/vm/ioctlfuzz/repros/nested-guest-mode-tcg-wedge.txt)
#
# Uses config.mak (the release kernel; `make check-debug` runs it on the
# debug kernel). Examples:
#   scripts/fuzz.sh --seconds 60                      # a minute per module set
#   scripts/fuzz.sh --calls 1000000 --faults --lifecycle 100
#   scripts/fuzz.sh --replay build/fuzz/vm-ours/repro-ours-1-42.txt --sets ours
#   scripts/fuzz.sh --diff 'DIR1/fuzz-trace.*.txt' 'DIR2/fuzz-trace.*.txt'  # the errno report
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

# Errno differences between the traces of two runs of the same seed ("P.I
# label result" per call; one file per worker, given as globs): joined on
# the call's key P.I, grouped by label and results.
errno_diff() {
	# shellcheck disable=SC2086
	if ! ls $1 > /dev/null 2>&1 || ! ls $2 > /dev/null 2>&1; then
		echo "  (no traces to compare)"
		return 0
	fi
	# shellcheck disable=SC2086
	{ cat $1 | sed 's/^/A /'; cat $2 | sed 's/^/B /'; } | awk '
		$1 == "A" { a[$2] = $3 " " $4; next }
		!($2 in a) { next }
		{
			split(a[$2], x, " ")
			if (x[1] != $3) next
			n++
			if ($3 == "RUN" || $3 ~ /^race\// || $3 == "fork") next
			if (x[2] == $4) next
			k = $3 " ours=" x[2] " in-tree=" $4; c[k]++; if (!(k in first)) first[k] = $2; d++
			# The first difference of each program: the root causes (later
			# ones in the same program are often its consequences).
			split($2, pi, "."); if (!(pi[1] in seen) || pi[2] + 0 < seen[pi[1]] + 0) seen[pi[1]] = pi[2]
			at[$2] = k
		}
		END {
			for (p in seen) { r[at[p "." seen[p]]]++; progs++ }
			printf "  %d calls compared, %d differ, in %d programs (count, first-in-program count, call, results):\n", n, d, progs
			for (k in c) printf "  %7d %5d  %s  (first at %s)\n", c[k], r[k], k, first[k]
		}' | sort -k1,1nr -s | head -n "${DIFF_LINES:-60}"
}
if [ "${1:-}" = --diff ]; then
	errno_diff "$2" "$3"
	exit 0
fi

# shellcheck disable=SC1091
. ./config.mak
export PATH=$HOME/.cargo/bin:$PATH
calls=100000 seconds=0 seed=1 races=100 faults= lifecycle= replay= repeat=1 nofuzz= tmo= extra=
sets="ours intree"
out=$here/build/fuzz
while [ $# -gt 0 ]; do
	case $1 in
	--calls) calls=$2; shift ;;
	--seconds) seconds=$2; shift ;;
	--seed) seed=$2; shift ;;
	--races) races=$2; shift ;;
	--faults) faults=1 ;;
	--lifecycle) lifecycle=$2; shift ;;
	--replay) replay=$(realpath "$2"); shift ;;
	--repeat) repeat=$2; shift ;;
	--no-fuzz) nofuzz=1 ;;
	--sets) sets=$2; shift ;;
	--first-prog|--last-prog|--workers) extra="$extra+$1+$2"; shift ;;
	--nested-guest-mode) extra="$extra+$1" ;;
	--out) out=$2; shift ;;
	--timeout) tmo=$2; shift ;;
	*) sed -n '2,17p' "$0"; exit 2 ;;
	esac
	shift
done

passed=0 failed=0 skipped=0
t0=$(date +%s)
rm -rf "$out"
mkdir -p "$out"

echo "== build: tests/vm/ioctlfuzz =="
if ! (cd tests/vm/ioctlfuzz && CARGO_TARGET_DIR=$here/build/ioctlfuzz cargo build --release --quiet) > "$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log"
	echo "FAIL build/ioctlfuzz"
	echo "0 passed, 1 failed"
	exit 1
fi
make -s modules > "$out/modules.log" 2>&1 || { tail -n 30 "$out/modules.log"; echo "FAIL build/modules"; echo "0 passed, 1 failed"; exit 1; }

steps=
if [ -n "$replay" ]; then
	steps=replay:$replay+--repeat+$repeat
elif [ -z "$nofuzz" ]; then
	steps="fuzz:--seed+$seed+--calls+$calls+--races+$races$extra"
	[ "$seconds" != 0 ] && steps="$steps+--seconds+$seconds"
	[ "$seconds" = 0 ] && steps="$steps+--min-calls+$calls"
fi
[ -n "$faults" ] && steps="$steps${steps:+,}faults"
[ -n "$lifecycle" ] && steps="$steps${steps:+,}lifecycle:$lifecycle"
# Bound each step and the whole VM: the fuzzer itself stops at its budget;
# the watchdog in it reports a hang after 60 s without progress.
step_secs=${tmo:-$(( seconds > 0 ? seconds + 600 : 3000 ))}
nsteps=$(echo "$steps" | tr , '\n' | wc -l)
vm_secs=$(( step_secs * nsteps + 300 ))
# A kernel that stalls or locks up never finishes: stop its VM after a
# minute of such reports (a hung task is the fuzzer watchdog's business).
wedged='rcu_sched detected stalls|rcu: INFO: rcu_|soft lockup|NMI watchdog: Watchdog detected hard LOCKUP'
run_vm() { # SET DIR
	RKVM_FUZZ=$steps RKVM_FUZZ_SECS=$step_secs scripts/vm.sh fuzz "$1" "$2" "$vm_secs" > "$2.console.log" 2>&1 &
	local vmpid=$! since=
	while kill -0 $vmpid 2>/dev/null; do
		sleep 5
		if [ -z "$since" ] && grep -Eq "$wedged" "$2.console.log"; then
			since=$(date +%s)
		fi
		if [ -n "$since" ] && [ $(( $(date +%s) - since )) -ge 60 ]; then
			echo "(the test VM's kernel is wedged: stopping it)"
			# vm.sh's child is timeout(1), which passes SIGTERM on to QEMU.
			for c in $(pgrep -P $vmpid); do kill "$c"; done
			wait $vmpid
			return 2
		fi
	done
	wait $vmpid
}

log_bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|possible recursive locking|rcu_.*stall|blocked for more than|soft lockup|ODEBUG'
# The kernel log the checks read: the allocator's own report of a failure
# the fault-injection step made it inject (warn_alloc(): "vmalloc error:" or
# "page allocation failure:" and a stack dump whose first frame below
# dump_stack is warn_alloc, e.g. vmalloc's vm_struct allocation failing
# under fpu_alloc_guest_fpstate(), which does not pass __GFP_NOWARN; the
# in-tree module gets the same report) is dropped between the fuzzer's
# "fault injection start" and "fault injection end" lines. Its header line
# does not match $log_bad, so only its Call Trace block is dropped; any
# other report keeps its own WARNING:/BUG:/... line and fails the row.
checked_log() {
	awk '
		/rkvm-ioctlfuzz: fault injection start/ { inj = 1 }
		/rkvm-ioctlfuzz: fault injection end/ { inj = 0 }
		inj && /Call Trace:/ { blk = $0; inblk = 1; alloc = 0; next }
		inblk {
			blk = blk "\n" $0
			if ($0 ~ /\] +warn_alloc\+/) alloc = 1
			if ($0 ~ /<\/TASK>/) { inblk = 0; if (!alloc) print blk }
			next
		}
		{ print }
		END { if (inblk && !alloc) print blk }' "$1"
}
for set in $sets; do
	d=$out/vm-$set
	echo
	echo "== $set modules: $steps (QEMU TCG, $(basename "$KERNELDIR")) =="
	s=$(date +%s)
	run_vm "$set" "$d"
	rc=$?
	echo "($set: $(( $(date +%s) - s )) s)"
	if [ $rc != 0 ] || [ ! -f "$d/done" ]; then
		grep -E -A 30 "$wedged|Kernel panic|BUG:|Oops" "$d.console.log" | head -n 50
		tail -n 10 "$d.console.log"
		echo "FAIL $set: vm/boot-and-finish (see $d.console.log)"
		failed=$((failed + 1))
		# The programs the fuzzer's workers were running: regenerate them.
		for c in "$d"/fuzz-current.*; do
			[ -f "$c" ] || continue
			p=$(tr -d ' \n' < "$c")
			f=$d/repro-$set-wedged-$seed-$p.txt
			build/ioctlfuzz/release/rkvm-ioctlfuzz --seed "$seed" --races "$races" --dump-prog "$p" > "$f"
			echo "  reproducer (program running when the kernel wedged): $f"
		done
	fi
	grep -E '^INFO ' "$d/fuzz-results.txt" 2>/dev/null | sed "s/^/  $set: /"
	while read -r status name rest; do
		case $status in
		PASS) passed=$((passed + 1)) ;;
		FAIL) failed=$((failed + 1)); echo "FAIL $set: $name $rest" ;;
		SKIP) skipped=$((skipped + 1)) ;;
		*) continue ;;
		esac
		[ "$status" = FAIL ] || echo "$status $set: ${name%:}"
	done < <(cat "$d/fuzz-results.txt" 2>/dev/null)
	# Fuzzer crashes or early exits leave a status other than 0/1.
	for f in "$d"/fuzz-*.rc; do
		[ -f "$f" ] || continue
		r=$(cat "$f")
		if [ "$r" != 0 ] && [ "$r" != 1 ]; then
			echo "FAIL $set: $(basename "$f" .rc)/exit-status $r (see $d/fuzz.err)"
			head -n 5 "$d/fuzz.err"
			failed=$((failed + 1))
		fi
	done
	if [ -f "$d/dmesg.txt" ] && ! checked_log "$d/dmesg.txt" | grep -Eq "$log_bad"; then
		echo "PASS $set: fuzz/kernel-log-clean"
		passed=$((passed + 1))
	else
		[ -f "$d/dmesg.txt" ] && checked_log "$d/dmesg.txt" | grep -E -B 2 -A 20 "$log_bad" | head -n 60
		echo "FAIL $set: fuzz/kernel-log-clean (see $d/dmesg.txt)"
		failed=$((failed + 1))
	fi
	if [ -f "$d/kmemleak.txt" ]; then
		if scripts/kmemleak-check.sh "$d/kmemleak.txt"; then
			echo "PASS $set: fuzz/no-kmemleak-in-kvm"
			passed=$((passed + 1))
		else
			echo "FAIL $set: fuzz/no-kmemleak-in-kvm (see $d/kmemleak.txt)"
			failed=$((failed + 1))
		fi
	fi
	ls "$d"/repro-*.txt 2>/dev/null | sed "s/^/  reproducer: /"
done

if [ -d "$out/vm-ours" ] && [ -d "$out/vm-intree" ] && [ -z "$replay" ]; then
	echo
	echo "errno differences, ours vs in-tree, same seed (report only):"
	errno_diff "$out/vm-ours/fuzz-trace.*.txt" "$out/vm-intree/fuzz-trace.*.txt"
fi
echo
echo "fuzz.sh took $(( $(date +%s) - t0 )) s; logs in $out"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
