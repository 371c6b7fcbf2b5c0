#!/bin/bash
# `make bench [QUICK=1]`: per-exit costs of our modules against the in-tree
# KVM modules of the same kernel, and their ratio. Each module set runs in
# a test VM of its own (same VM configuration), one after the other
# (RKVM_BENCH_SETS order, in-tree first by default), once.
#
# Exit status: non-zero when a VM failed (did not finish, or rkvm-vmtest
# crashed: an exit status other than 0, or 1 for failed loops), a set
# printed no results, or a loop failed for our modules (BENCH-FAIL, or no
# number). A loop the in-tree module fails (the reference: under TCG's
# nested SVM it now and then loses an interrupt, e.g. in ipi-roundtrip) is
# reported as a missing ratio and does not change the exit status.
#
# Guest loops (tests/vm/guests/bench.inc, run by rkvm-vmtest --bench):
# CPUID and VMMCALL handled inside KVM, VMMCALL forwarded to userspace
# (KVM_EXIT_HYPERCALL via KVM_CAP_EXIT_HYPERCALL), OUT, MMIO write and HLT
# exits to userspace.  In-kernel irqchip loops (tests/vm/guests/irq.inc):
# IPI round trip between 2 vCPUs, LAPIC timer interrupt, irqfd MSI into a
# halted vCPU (1/20 of the iterations each: several exits and wake-ups per
# event), and OUT / MMIO writes swallowed by an ioeventfd; their "per
# exit" column is per event.  Iterations: RKVM_BENCH_ITERS, default
# 1,000,000 (minutes under TCG: each userspace exit costs ~75 us); QUICK=1
# uses 20,000.  RKVM_BENCH_SETS="intree ours" picks the sets;
# RKVM_NO_BUILD=1 skips building the modules.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck disable=SC1091
. ./config.mak
export PATH=$HOME/.cargo/bin:$PATH

iters=${RKVM_BENCH_ITERS:-1000000}
[ -n "${QUICK:-}" ] && [ "${QUICK}" != 0 ] && iters=20000
sets=${RKVM_BENCH_SETS:-intree ours}
out=$here/build/bench
mkdir -p "$out"
echo "$iters" > "$out/iters"
bad=()
notes=()
# problem WHAT: a reason for a non-zero exit, said now and in the end.
problem() { bad+=("$1"); echo "bench: $1" >&2; }
# loop_failed SET WHAT: a loop without a number: a problem for ours, a
# note (no ratio) for the reference.
loop_failed() {
	if [ "$1" = intree ]; then
		notes+=("in-tree (reference) $2: no ratio")
	else
		problem "$1: $2"
	fi
}

if [ -z "${RKVM_NO_BUILD:-}" ]; then
	make -s modules > "$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; echo "bench: module build failed" >&2; exit 1; }
fi
(cd tests/vm/vmtest && CARGO_TARGET_DIR=$here/build/vmtest cargo build --release --quiet) > "$out/vmtest-build.log" 2>&1 ||
	{ tail -n 30 "$out/vmtest-build.log"; echo "bench: vmtest build failed" >&2; exit 1; }

# 11 loops; allow 2 ms per iteration in total, plus boot.
tmo=$((300 + iters * 2 / 1000))
echo "bench: $iters iterations per loop, sets: $sets (time limit ${tmo}s per set)"
for set in $sets; do
	s=$(date +%s)
	rm -f "$out/vm-$set/bench.txt" "$out/vm-$set/vmtest.rc"
	if ! scripts/vm.sh bench "$set" "$out/vm-$set" "$tmo" > "$out/vm-$set.console.log" 2>&1; then
		tail -n 20 "$out/vm-$set.console.log"
		problem "the $set VM failed (see $out/vm-$set.console.log)"
	fi
	rc=$(cat "$out/vm-$set/vmtest.rc" 2>/dev/null || echo none)
	# 1: loops failed (BENCH-FAIL lines, judged below); else it crashed.
	[ "$rc" = 0 ] || [ "$rc" = 1 ] || problem "$set: rkvm-vmtest --bench exit status $rc (see $out/vm-$set/vmtest.err)"
	echo "bench: $set took $(($(date +%s) - s)) s"
done

# BENCH <name> <iters> <total ns> <ns per exit> <userspace exits> # what
ns() { awk -v n="$1" '$1 == "BENCH" && $2 == n { print $5 }' "$out/vm-$2/bench.txt" 2>/dev/null; }
what() { for s in $sets; do sed -n "s/^BENCH $1 .* # //p" "$out/vm-$s/bench.txt" 2>/dev/null; done | head -n 1; }
names=$(for s in $sets; do awk '$1 == "BENCH" { print $2 } $1 == "BENCH-FAIL" { sub(":", "", $2); print $2 }' "$out/vm-$s/bench.txt" 2>/dev/null; done | awk '!seen[$0]++')

echo
echo "per-exit (irqchip loops: per-event) cost, ns (QEMU TCG, nested SVM; $iters iterations per loop, irqchip event loops fewer)"
printf '%-16s %14s %14s %12s  %s\n' benchmark in-tree ours ours/in-tree what
for n in $names; do
	a=$(ns "$n" intree) b=$(ns "$n" ours)
	r=-
	[ -n "$a" ] && [ -n "$b" ] && r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')
	printf '%-16s %14s %14s %12s  %s\n' "$n" "${a:--}" "${b:--}" "$r" "$(what "$n")"
	for s in $sets; do
		[ -n "$(ns "$n" "$s")" ] || grep -q "^BENCH-FAIL $n:" "$out/vm-$s/bench.txt" 2>/dev/null ||
			loop_failed "$s" "$n: no number"
	done
done
for s in $sets; do
	while IFS= read -r l; do loop_failed "$s" "$l"; done < <(grep -h '^BENCH-FAIL' "$out/vm-$s/bench.txt" 2>/dev/null)
	grep -q '^BENCH ' "$out/vm-$s/bench.txt" 2>/dev/null ||
		problem "$s: no results (see $out/vm-$s/vmtest.err, $out/vm-$s.console.log)"
done
[ ${#notes[@]} = 0 ] || printf 'bench: %s\n' "${notes[@]}"
if [ ${#bad[@]} -gt 0 ]; then
	echo "bench: FAILED: ${#bad[@]} problem(s):"
	printf '  %s\n' "${bad[@]}"
	exit 1
fi
