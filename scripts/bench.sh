#!/bin/bash
# `make bench [QUICK=1]`: our modules against the in-tree KVM modules of
# the same kernel, row by row, as a report (never a pass/fail test).
#
# Two tables, each from one VM in which the two module sets take turns,
# round after round (RKVM_BENCH_ROUNDS, default 3) and row after row (ours,
# in-tree, ours, in-tree, ... for each row; tests/vm/bench-rounds.sh):
# each turn loads the set, runs the row and unloads the set again (the
# lifecycle tests prove unload and reload clean), so the two numbers of a
# round are taken seconds apart, under the same load of the shared host:
#   SVM: a QEMU TCG VM (nested SVM, kvm-amd; scripts/vm.sh), every row;
#   VMX: then a Bochs VM (corei7_skylake_x, kvm-intel; scripts/bochs.sh
#   bench, the in-tree set with irqbypass.ko and pml=0 as scripts/vmx.sh
#   loads it): the exit, irqchip and memory rows of RKVM_BENCH_VMX_ROWS
#   at RKVM_BENCH_VMX_ITERS. Bochs runs in emulated time: its numbers do
#   not depend on the host's load (which stretches its wall time only).
#   With the defaults the Bochs run takes about 2 minutes of CPU time
#   (112-122 s: the boot 25 s, 3 rounds of 11 rows and 2 sets): 2
#   minutes of wall time at host load 4, 13 minutes at load 12 (2 cores).
#
# Each row's result is the ratio ours/in-tree of the same round; the
# table gives per row the median ratio over the rounds and its min-max
# spread, and flags a row ("~") whose spread is wider than its distance
# from 1.00: the noise of
# this shared machine covers the difference. The host's load average is
# sampled during the run and printed: absolute times under TCG on a busy
# 2-core host are noisy, which is what the alternation and medians are for.
#
# Rows (tests/vm/vmtest/src/bench.rs, tests/vm/guests/bench.inc, irq.inc;
# scripts/l2-boot.sh bench):
#   exits: CPUID and VMMCALL (VMCALL on Intel: vmcall-*) handled inside
#   KVM, VMMCALL forwarded to userspace (KVM_EXIT_HYPERCALL), OUT, MMIO
#   write and HLT exits to userspace (ns per exit); in-kernel irqchip:
#   IPI round trip between 2 vCPUs, LAPIC timer interrupt, irqfd MSI into a halted vCPU (n/20
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
# for the npt=0 ones; SVM table), RKVM_BENCH_L2=0 (no L2 rows, npt=0 ones
# included), RKVM_BENCH_NPT0=0 (no npt0/ rows), RKVM_BENCH_SETS (order
# within a round, default "ours intree"), RKVM_NO_BUILD=1 (do not build
# the modules),
# RKVM_BENCH_OUT (results directory, default build/bench; the tables'
# rounds in OUT/vm and OUT/vmx), RKVM_BENCH_SVM=0 (no SVM table),
# RKVM_BENCH_VMX=0 (no VMX table), RKVM_BENCH_VMX_ITERS (the VMX table's
# exit loops, default 1,000; QUICK=1: 200), RKVM_BENCH_VMX_ROWS (its rows,
# comma-separated; default below: not first-touch, whose 65536 EPT faults
# take a quarter of a minute of Bochs CPU time per turn, nor mem-per-vm
# and mem-per-vcpu, 5-15 s per turn, nor tlb-walk (Bochs' TLB costs no
# emulated time: 1.8 ns per load with either set), nor timer-irq (its 1 us
# one-shot LAPIC timer re-armed from the handler hangs under Bochs 2.7,
# with either set); empty: all), RKVM_BENCH_VMX_TIMEOUT (s, the Bochs
# run's limit), BOCHS_* as scripts/bochs.sh. RKVM_BENCH_ROUNDS and
# RKVM_BENCH_SETS apply to both tables.
#
# Exit status: non-zero only when something failed to run: a VM (did
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
nsets=$(echo "$sets" | wc -w)
rows=${RKVM_BENCH_ROWS:-}
svm=1
[ "${RKVM_BENCH_SVM:-1}" = 0 ] && svm=0
l2=$svm
[ "${RKVM_BENCH_L2:-1}" = 0 ] && l2=0
vmx=1
[ "${RKVM_BENCH_VMX:-1}" = 0 ] && vmx=0
vmx_iters=${RKVM_BENCH_VMX_ITERS:-1000}
[ -n "${QUICK:-}" ] && [ "${QUICK}" != 0 ] && vmx_iters=200
vmx_rows=${RKVM_BENCH_VMX_ROWS-cpuid,vmcall-user,vmcall-kernel,pio-out,mmio-write,hlt,ipi-roundtrip,irqfd-msi,ioeventfd-pio,ioeventfd-mmio,first-touch-thp}
out=${RKVM_BENCH_OUT:-$here/build/bench}
mkdir -p "$out"
bad=()
notes=()
# problem WHAT: a reason for a non-zero exit, said now and in the end.
problem() { bad+=("$1"); echo "bench: $1" >&2; }

# bench_judge DIR LABEL: the problems (our rows failing, runs crashing,
# rounds without results) and notes (the in-tree module failing a row) of
# the rounds in DIR (tests/vm/bench-rounds.sh's files), said as LABEL.
bench_judge() {
	local dir=$1 label=$2 r set f what rc l
	for ((r = 1; r <= rounds; r++)); do
		for set in $sets; do
			f=$dir/bench-$set-$r.txt
			# 1: rows failed (BENCH-FAIL lines, judged below); else it crashed.
			while read -r what rc; do
				[ "$rc" = 0 ] || [ "$rc" = 1 ] || problem "$label$set round $r: $what exit status $rc (see $dir/$what-$set-$r.err)"
			done < <(cat "$dir/rc-$set-$r.txt" 2>/dev/null)
			grep -q '^BENCH ' "$f" 2>/dev/null || { problem "$label$set round $r: no results (see $dir/vmtest-$set-$r.err and the console log)"; continue; }
			while IFS= read -r l; do
				if [ "$set" = intree ]; then
					notes+=("${label}in-tree (reference) round $r: ${l#BENCH-FAIL }: no ratio this round")
				else
					problem "$label$set round $r: ${l#BENCH-FAIL }"
				fi
			done < <(grep -h '^BENCH-FAIL' "$f")
		done
	done
}

# bench_table DIR WHAT: the table of the rounds in DIR: per row, the
# median over the rounds of each set's value and of the ratio ours/in-tree
# of the same round, the ratios' min-max; WHAT says where it ran.
bench_table() {
	echo
	echo "$2: ours/in-tree per row, median over $rounds alternating rounds"
	echo "spread: min-max of the per-round ratios; ~: the spread is wider than the distance from 1.00 (noise covers it)"
	awk -v rounds="$rounds" -v dir="$1" '
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
}

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

# The host's load average, sampled while the VMs run.
(while :; do cut -d' ' -f1-3 /proc/loadavg; sleep 15; done) > "$out/load.txt" &
sampler=$!
echo "bench: host load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the SVM table: one QEMU TCG VM (nested SVM, kvm-amd) --------------------
vmout=$out/vm
if [ "$svm" = 1 ]; then
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
	# Per set and round: the exit loops (about 1 ms per iteration in all
	# under a loaded TCG), the memory rows, the L2 boot; then boot and slack.
	# npt=0: the memory rows and an L2 boot on the shadow MMU, slower.
	tmo=$((300 + rounds * nsets * (240 + iters / 1000 + 300 * l2 + 120 + 400 * npt0_l2)))
	echo "bench: SVM: $rounds rounds of: $sets; $iters iterations per exit loop${rows:+; rows: $rows}; L2 rows: $([ $l2 = 1 ] && echo yes || echo no); npt=0 rows: ${npt0_rows:-none}$([ $npt0_l2 = 1 ] && echo ", $npt0_l2rows"); time limit ${tmo}s"
	s=$(date +%s)
	if ! scripts/vm.sh bench both "$vmout" "$tmo" > "$out/vm.console.log" 2>&1; then
		tail -n 20 "$out/vm.console.log"
		problem "the VM failed (see $out/vm.console.log)"
	fi
	echo "bench: SVM: the VM took $(($(date +%s) - s)) s"
	bench_judge "$vmout" ""
fi

# ---- the VMX table: one Bochs VM (kvm-intel, scripts/bochs.sh bench) ---------
# The same rounds and sets as the SVM table, after it. Bochs runs in
# emulated time (clock sync=none): its numbers are instruction counts in
# effect, the same on a busy host, whose load stretches the wall time only.
vmxout=$out/vmx
if [ "$vmx" = 1 ]; then
	rm -rf "$vmxout"
	mkdir -p "$vmxout"
	nrows=$(RKVM_BENCH_ROWS=$vmx_rows build/vmtest/release/rkvm-vmtest --bench-list --vendor intel | wc -l)
	# A hang is caught sooner: scripts/bochs.sh's stall watchdog (600 s
	# without a progress line). Each row and set takes 1-4 s of Bochs CPU
	# time (first-touch-thp 4 s), the boot 25 s; a loaded host stretches
	# that (tenfold at load 13 on 2 cores).
	vtmo=${RKVM_BENCH_VMX_TIMEOUT:-$((1800 + rounds * nsets * nrows * (60 + vmx_iters / 20)))}
	echo "bench: VMX: $rounds rounds of: $sets; $vmx_iters iterations per exit loop; $nrows rows: ${vmx_rows:-all}; time limit ${vtmo}s"
	s=$(date +%s)
	if ! BENCH_ROUNDS=$rounds BENCH_SETS=$sets BENCH_ITERS=$vmx_iters BENCH_ROWS=$vmx_rows \
		scripts/bochs.sh bench both "$vmxout" "$vtmo" > "$out/vmx.bochs.log" 2>&1; then
		tail -n 5 "$out/vmx.bochs.log"
		tail -n 20 "$vmxout/console.log" 2>/dev/null
		problem "vmx: the Bochs VM failed (see $out/vmx.bochs.log, $vmxout/console.log)"
	fi
	echo "bench: VMX: Bochs took $(($(date +%s) - s)) s; $(grep -o 'Bochs ran .*' "$out/vmx.bochs.log")"
	bench_judge "$vmxout" "vmx: "
fi
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null

[ "$svm" = 0 ] || bench_table "$vmout" "SVM (QEMU TCG, nested SVM, kvm-amd; $iters iterations per exit loop)"
[ "$vmx" = 0 ] || bench_table "$vmxout" "VMX (Bochs, kvm-intel; emulated time; $vmx_iters iterations per exit loop)"
echo
awk '{ print $1 }' "$out/load.txt" 2>/dev/null | sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "bench: host load average (1 min) during the run: min %s, median %s, max %s (%d samples)\n", a[1], a[int((NR + 1) / 2)], a[NR], NR }'
# The rounds' start (tests/vm/bench-rounds.sh's phases.txt; the Bochs VM
# sends it as bench-phases.txt).
for f in "$vmout/phases.txt" "$vmxout/bench-phases.txt"; do
	t=SVM
	[ "$f" = "$vmout/phases.txt" ] || t=VMX
	grep ' round ' "$f" 2>/dev/null |
		awk -v t="$t" '{ printf "bench: %s round %s started at %ss (L1 load %s)\n", t, $3, $1, $4 }'
done
[ ${#notes[@]} = 0 ] || printf 'bench: %s\n' "${notes[@]}"
if [ ${#bad[@]} -gt 0 ]; then
	echo "bench: FAILED to run: ${#bad[@]} problem(s):"
	printf '  %s\n' "${bad[@]}"
	exit 1
fi
