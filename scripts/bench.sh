#!/bin/bash
# `make bench [QUICK=1]`: our modules against the in-tree KVM modules of
# the same kernel, row by row, as a report (never a pass/fail test).
#
# One test VM boots; in it the two module sets take turns, round after
# round (RKVM_BENCH_ROUNDS, default 3) and row after row (ours, in-tree,
# ours, in-tree, ... for each row): each turn loads the set, runs the row
# and unloads the set again (the lifecycle tests prove unload and reload
# clean), so the two numbers of a round are taken seconds apart, under
# the same load of the shared host. Each row's result is
# the ratio ours/in-tree of the same round; the table gives per row the
# median ratio over the rounds and its min-max spread, and flags a row
# ("~") whose spread is wider than its distance from 1.00: the noise of
# this shared machine covers the difference. The host's load average is
# sampled during the run and printed: absolute times under TCG on a busy
# 2-core host are noisy, which is what the alternation and medians are for.
#
# Rows (tests/vm/vmtest/src/bench.rs, tests/vm/guests/bench.inc, irq.inc;
# scripts/l2-boot.sh bench):
#   exits: CPUID and VMMCALL handled inside KVM, VMMCALL forwarded to
#   userspace (KVM_EXIT_HYPERCALL), OUT, MMIO write and HLT exits to
#   userspace (ns per exit); in-kernel irqchip: IPI round trip between 2
#   vCPUs, LAPIC timer interrupt, irqfd MSI into a halted vCPU (n/20
#   iterations each), OUT / MMIO writes swallowed by an ioeventfd (ns per
#   event); memory: first touch of 256 MiB (ns per 4 KiB page; with and
#   without THP backing), loads over 64 MiB of pages (ns per load: TLB
#   misses and nested walks), kernel memory per VM and per vCPU (bytes,
#   /proc/meminfo deltas over 32 objects); L2 Linux (Debian's QEMU
#   -accel kvm): boot to shell (s) and a fork+exec loop in its shell (ms).
#   Shadow paging (issue 12): rows npt0/first-touch, npt0/tlb-walk,
#   npt0/l2-boot and npt0/l2-fork-exec are those rows again with kvm-amd
#   loaded with npt=0 (both sets: RKVM_MODULE_PARAMS in the VM), in the
#   same alternation: every guest page fault is a shadow-MMU fault then,
#   and the L2 Linux's page tables are shadowed. npt0/l2-fork-exec runs
#   RKVM_BENCH_NPT0_FORKS (default 50) fork+execs, not 200: each costs
#   several times more there (the value is per exec all the same).
#
# Environment: RKVM_BENCH_ITERS (iterations of the exit loops, default
# 100,000; QUICK=1: 20,000), RKVM_BENCH_ROUNDS (default 3),
# RKVM_BENCH_ROWS (row names, comma-separated: only these; npt0/<row>
# for the npt=0 ones), RKVM_BENCH_L2=0 (no L2 rows, npt=0 ones included),
# RKVM_BENCH_NPT0=0 (no npt0/ rows), RKVM_BENCH_SETS (order within a round,
# default "ours intree"), RKVM_NO_BUILD=1 (do not build the modules),
# RKVM_BENCH_OUT (results directory, default build/bench).
#
# Exit status: non-zero only when something failed to run: the VM (did
# not finish), rkvm-vmtest (crashed: an exit status other than 0 or 1), a
# round without results, or one of our rows (BENCH-FAIL, or no number).
# A row the in-tree module fails (under TCG's nested SVM it now and then
# loses an interrupt, e.g. in ipi-roundtrip) loses that round's ratio and
# is noted; the exit status stays 0. Ratios never fail the run.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck disable=SC1091
. ./config.mak
export PATH=$HOME/.cargo/bin:$PATH

iters=${RKVM_BENCH_ITERS:-100000}
[ -n "${QUICK:-}" ] && [ "${QUICK}" != 0 ] && iters=20000
rounds=${RKVM_BENCH_ROUNDS:-3}
sets=${RKVM_BENCH_SETS:-ours intree}
rows=${RKVM_BENCH_ROWS:-}
l2=1
[ "${RKVM_BENCH_L2:-1}" = 0 ] && l2=0
out=${RKVM_BENCH_OUT:-$here/build/bench}
mkdir -p "$out"
bad=()
notes=()
# problem WHAT: a reason for a non-zero exit, said now and in the end.
problem() { bad+=("$1"); echo "bench: $1" >&2; }

if [ -z "${RKVM_NO_BUILD:-}" ]; then
	make -s modules > "$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; echo "bench: module build failed" >&2; exit 1; }
fi
(cd tests/vm/vmtest && CARGO_TARGET_DIR=$here/build/vmtest cargo build --release --quiet) > "$out/vmtest-build.log" 2>&1 ||
	{ tail -n 30 "$out/vmtest-build.log"; echo "bench: vmtest build failed" >&2; exit 1; }
if [ "$l2" = 1 ] && ! scripts/l2-initramfs.sh > "$out/l2-initramfs.log" 2>&1; then
	notes+=("no L2 rows: scripts/l2-initramfs.sh failed (see $out/l2-initramfs.log)")
	l2=0
fi
# rkvm-vmtest reads its iteration count from here when none is given.
echo "$iters" > "$out/iters"

# The npt=0 rows: npt0/<row> of RKVM_BENCH_ROWS, or all of them.
npt0_rows= npt0_l2=0 npt0_l2rows=
if [ "${RKVM_BENCH_NPT0:-1}" != 0 ]; then
	for r in first-touch tlb-walk l2-boot l2-fork-exec; do
		[ -z "$rows" ] || echo ",$rows," | tr ' ' , | grep -q ",npt0/$r," || continue
		case $r in
		l2-*) [ "$l2" = 0 ] || { npt0_l2=1; npt0_l2rows="$npt0_l2rows${npt0_l2rows:+,}$r"; } ;;
		*) npt0_rows="${npt0_rows:+$npt0_rows }$r" ;;
		esac
	done
fi

vmout=$out/vm
rm -rf "$vmout"
mkdir -p "$vmout"
cat > "$vmout/bench-params" <<EOF
BENCH_ROUNDS=$rounds
BENCH_SETS="$sets"
BENCH_ITERS=$iters
BENCH_ROWS="$rows"
BENCH_L2=$l2
BENCH_NPT0="$npt0_rows"
BENCH_NPT0_L2=$npt0_l2
BENCH_NPT0_L2ROWS="$npt0_l2rows"
BENCH_NPT0_FORKS=${RKVM_BENCH_NPT0_FORKS:-50}
EOF
nsets=$(echo "$sets" | wc -w)
# Per set and round: the exit loops (about 1 ms per iteration in all under
# a loaded TCG), the memory rows, the L2 boot; then boot and slack.
# npt=0: the memory rows and an L2 boot on the shadow MMU, slower.
tmo=$((300 + rounds * nsets * (240 + iters / 1000 + 300 * l2 + 120 + 400 * npt0_l2)))

# The host's load average, sampled while the VM runs.
(while :; do cut -d' ' -f1-3 /proc/loadavg; sleep 15; done) > "$out/load.txt" &
sampler=$!
echo "bench: $rounds rounds of: $sets; $iters iterations per exit loop${rows:+; rows: $rows}; L2 rows: $([ $l2 = 1 ] && echo yes || echo no); npt=0 rows: ${npt0_rows:-none}$([ $npt0_l2 = 1 ] && echo ", $npt0_l2rows"); time limit ${tmo}s"
echo "bench: host load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
s=$(date +%s)
if ! scripts/vm.sh bench both "$vmout" "$tmo" > "$out/vm.console.log" 2>&1; then
	tail -n 20 "$out/vm.console.log"
	problem "the VM failed (see $out/vm.console.log)"
fi
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
echo "bench: the VM took $(($(date +%s) - s)) s"

for ((r = 1; r <= rounds; r++)); do
	for set in $sets; do
		f=$vmout/bench-$set-$r.txt
		# 1: rows failed (BENCH-FAIL lines, judged below); else it crashed.
		while read -r what rc; do
			[ "$rc" = 0 ] || [ "$rc" = 1 ] || problem "$set round $r: $what exit status $rc (see $vmout/$what-$set-$r.err)"
		done < <(cat "$vmout/rc-$set-$r.txt" 2>/dev/null)
		grep -q '^BENCH ' "$f" 2>/dev/null || { problem "$set round $r: no results (see $vmout/vmtest-$set-$r.err, $out/vm.console.log)"; continue; }
		while IFS= read -r l; do
			if [ "$set" = intree ]; then
				notes+=("in-tree (reference) round $r: ${l#BENCH-FAIL }: no ratio this round")
			else
				problem "$set round $r: ${l#BENCH-FAIL }"
			fi
		done < <(grep -h '^BENCH-FAIL' "$f")
	done
done

# The table: per row, the median over the rounds of each set's value and
# of the ratio ours/in-tree of the same round, the ratios' min-max.
echo
echo "ours/in-tree per row: median over $rounds alternating rounds (QEMU TCG, nested SVM; $iters iterations per exit loop)"
echo "spread: min-max of the per-round ratios; ~: the spread is wider than the distance from 1.00 (noise covers it)"
awk -v rounds="$rounds" -v dir="$vmout" '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	if (n == 0) return ""
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(v) { return v == "" ? "-" : (v >= 1000 ? sprintf("%.0f", v) : sprintf("%.1f", v)) }
BEGIN {
	n = 0
	for (r = 1; r <= rounds; r++) for (s = 0; s < 2; s++) {
		set = s ? "intree" : "ours"
		f = dir "/bench-" set "-" r ".txt"
		while ((getline l < f) > 0) {
			split(l, w, " ")
			if (w[1] != "BENCH") continue
			name = w[2]
			if (!(name in seen)) { seen[name] = 1; order[++n] = name; unit[name] = w[7]; what[name] = l; sub(/^[^#]*# /, "", what[name]); if (name ~ /^npt0\//) what[name] = "kvm-amd npt=0: " what[name] }
			val[name, set, r] = w[5]
		}
		close(f)
	}
	printf "%-20s %-9s %12s %12s %7s %13s  %s\n", "row", "unit", "in-tree", "ours", "ratio", "spread", "what"
	for (i = 1; i <= n; i++) {
		name = order[i]; k = 0; ko = 0; ki = 0
		delete ra; delete vo; delete vi
		for (r = 1; r <= rounds; r++) {
			if ((name, "ours", r) in val) vo[++ko] = val[name, "ours", r]
			if ((name, "intree", r) in val) vi[++ki] = val[name, "intree", r]
			if (((name, "ours", r) in val) && ((name, "intree", r) in val) && val[name, "intree", r] > 0)
				ra[++k] = val[name, "ours", r] / val[name, "intree", r]
		}
		mo = median(vo, ko); mi = median(vi, ki)
		if (k == 0) { m = "-"; sp = "-"; flag = "" }
		else {
			lo = ra[1]; hi = ra[1]
			for (j = 2; j <= k; j++) { if (ra[j] < lo) lo = ra[j]; if (ra[j] > hi) hi = ra[j] }
			med = median(ra, k)
			m = sprintf("%.2f", med); sp = sprintf("%.2f-%.2f", lo, hi)
			gap = med - 1; if (gap < 0) gap = -gap
			flag = (hi - lo > gap) ? "~" : " "
			if (k < rounds) sp = sp "(" k ")"
		}
		printf "%-20s %-9s %12s %12s %6s%s %13s  %s\n", name, unit[name], fmt(mi), fmt(mo), m, flag, sp, what[name]
	}
}'
echo
awk '{ print $1 }' "$out/load.txt" 2>/dev/null | sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "bench: host load average (1 min) during the run: min %s, median %s, max %s (%d samples)\n", a[1], a[int((NR + 1) / 2)], a[NR], NR }'
grep ' round ' "$vmout/phases.txt" 2>/dev/null | awk '{ printf "bench: round %s started at %ss (L1 load %s)\n", $3, $1, $4 }'
[ ${#notes[@]} = 0 ] || printf 'bench: %s\n' "${notes[@]}"
if [ ${#bad[@]} -gt 0 ]; then
	echo "bench: FAILED to run: ${#bad[@]} problem(s):"
	printf '  %s\n' "${bad[@]}"
	exit 1
fi
