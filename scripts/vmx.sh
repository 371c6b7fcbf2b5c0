#!/bin/bash
# The VMX column: the in-VM tests under Bochs (Intel corei7_skylake_x with
# VMX+EPT+VPID, scripts/bochs.sh), once with our modules and once with the
# in-tree modules of the same kernel build, the two Bochs runs in parallel
# (Bochs is single-threaded), side by side.
#
# As a library (scripts/check.sh):
#     . scripts/vmx.sh
#     vmx_start quick OUTDIR      # make check: starts rkvm-vmtest's runs
#                                 # (VMX_QUICK_FILTER) in the background
#     ...                         # (check.sh: the SVM column meanwhile)
#     vmx_finish                  # waits for them, reports
#     vmx_section full OUTDIR     # both at once; make check-vmx: rkvm-vmtest,
#                                 # then nested QEMU (scripts/l2-boot.sh) in
#                                 # the same boot
# It reports through the caller's pass/fail/skip/step functions (the
# standalone mode below defines its own), with rows named "vmx-ours: NAME"
# / "vmx-intree: NAME", and prints the side-by-side table and the times.
#
# Standalone (make check-vmx): scripts/vmx.sh [quick|full]   (default full)
#     builds the modules and rkvm-vmtest, runs the section, prints
#     "N passed, N failed, N skipped"; exit status non-zero on a failure.
#
# Environment: VMX_QUICK_FILTER (guest-suite filter of the quick part),
# VMX_TIMEOUT (s per Bochs run, default 2400 quick / 5400 full: a loaded
# host stretches the wall time tenfold; hangs are caught sooner by
# BOCHS_STALL),
# VMX_L2 (full mode: 0 leaves the nested QEMU test out), L2_VARIANTS
# (default "default split off"), L2_SMP (the L2 guest's vCPUs, default 2),
# VMX_SETS (default "ours intree"), VMX_NICE (the Bochs runs' nice level,
# default 10), BOCHS_* as scripts/bochs.sh.
#
# Times on this 2-core host, as Bochs' CPU time (= wall time on an idle
# core; a loaded host stretches the wall time, 4x at load 10):
#   boot to /init        ~25 s (~56 s with the nested test's QEMU payload)
#   rkvm-vmtest, in-tree ~45 s (vm/ 16 s: 200 VMs; irq 8 s; the rest < 3 s
#                        per group), ours ~14 s (vm/ 2 s, irq 4 s)
#   nested QEMU, in-tree ~185 s for default + split + off, ours ~255 s
#                        (L2 boots to its shell in 0.8-0.9 s of L1 time)
#   sending results      ~5-8 s

# make check's part: rkvm-vmtest, every suite (about 80 s of Bochs CPU
# time for the in-tree set, 47 s for ours; the two sets run in parallel,
# one core each, started before check.sh's SVM VMs).
# VMX_QUICK_FILTER narrows the guest suites, e.g.
# 'guest/|run/|emul/|irq/' (about 15 s less); the lifecycle rows (load and
# refusal, dev/, sys/, vm/, unload, reload) always run.
VMX_QUICK_FILTER=${VMX_QUICK_FILTER:-}

# Guest tests Bochs cannot run, in both modes (SKIP rows with the reason
# after '='; vmtest's RKVM_TEST_EXCLUDE):
# - a VMX guest spinning with RFLAGS.IF=0 never takes the external-
#   interrupt VM exit under Bochs 2.7, so nothing (signal, watchdog,
#   scheduler tick) gets the one L1 CPU back: the whole VM hangs;
# - the Bochs VM has one CPU, the migration tests need two;
# - Bochs delivers the single-step #DB of a VM entry with RFLAGS.TF one
#   instruction early (the in-tree module's exit comes at the stepped
#   instruction, not after it);
# - the host's tools: the SVM column's VM has the host's / (python3 for
#   the kernel tree's kvm_stat, linux-perf's perf); the Bochs initramfs has
#   busybox and rkvm-vmtest.
vmx_spin='a VMX guest spinning with IF=0 never exits under Bochs 2.7 (hangs the VM)'
vmx_1cpu='needs 2 CPUs; the Bochs VM has 1'
vmx_step='Bochs 2.7 raises the single-step #DB of a VM entry one instruction early'
vmx_hlt='a VMX guest halted in non-root mode (HLT exiting off, KVM_X86_DISABLE_EXITS_HLT) is never woken under Bochs 2.7 (the in-tree kvm-intel run hung the VM)'
vmx_amd='expectations recorded on the SVM column (AMD guest CPUID, AMD MSRs); not yet recorded against the in-tree kvm-intel'
vmx_nested='the in-tree kvm-intel offers nested VMX (CPUID VMX, so CR4.VMXE is writable); rkvm has none yet: the row expects #GP'
vmx_tool='needs a host tool the Bochs initramfs lacks (python3 kvm_stat, perf); the SVM column runs it'
: "${VMX_EXCLUDE:=run/signal-interrupts-busy-guest=$vmx_spin|run/watchdog-ends-spinning-guest=$vmx_spin\
|run/migrate-between-exits=$vmx_1cpu|run/fpu-survives-preemption-and-migration=$vmx_1cpu\
|run/single-step/=$vmx_step\
|caps/disable-exits-hlt-stays-in-guest=$vmx_hlt\
|arch/msr-writes=$vmx_amd|arch/rdtscp-tsc-aux=$vmx_amd|arch/sysenter-esp-eip-64bit=$vmx_amd\
|arch/single-step-after-mov-ss=$vmx_step\
|arch/cr4-writes=$vmx_nested\
|stats/kvm-stat-once-debugfs-shows-exits=$vmx_tool|trace/perf-kvm-stat-record-report-io-exits=$vmx_tool}"

# The one tolerated kernel warning under Bochs: its CPUID topology leaves
# arch/x86/kernel/cpu/topology_common.c (parse_legacy) unhappy. Anything
# else is a failure.
vmx_log_bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|rcu_.*stall|blocked for more than'

# vmx_log_filter < dmesg: the log without the one tolerated warning (the
# first WARNING at topology_common.c parse_legacy, up to its end-trace
# line, at most 80 lines).
vmx_log_filter() {
	awk '
	!tol && /WARNING: .*arch\/x86\/kernel\/cpu\/topology_common\.c.*parse_legacy/ { tol = 1; skip = 80; next }
	skip > 0 { skip--; if ($0 ~ /---\[ end trace/) skip = 0; next }
	{ print }'
}

# vmx_log_check SET DMESG: pass/fail NAME kernel-log-clean.
vmx_log_check() {
	local set=$1 f=$2 bad
	if [ ! -s "$f" ]; then
		fail "vmx-$set: vm/kernel-log-clean" "no kernel log ($f)"
		return
	fi
	bad=$(vmx_log_filter < "$f" | grep -E -A 12 "$vmx_log_bad" | head -n 30)
	if [ -z "$bad" ]; then
		pass "vmx-$set: vm/kernel-log-clean"
	else
		printf '%s\n' "$bad"
		fail "vmx-$set: vm/kernel-log-clean" "see $f"
	fi
}

# vmx_times DIR: scripts/bochs.sh's times.txt (wall, Bochs ticks, guest
# phases), indented.
vmx_times() {
	sed 's/^/    /' "$1/times.txt" 2>/dev/null
}

# vmx_group_times DIR: per test group (guest/real, guest/long, run,
# emul/long, irq, ...): the wall seconds from bochs.sh's stamps of the
# result lines (ttyS1.wall; a test's time is the gap to the line before),
# the same scaled to an idle core (Bochs' CPU time / wall time of the
# run), and the guest's own seconds (timed.txt).
vmx_group_times() {
	local r
	r=$(awk '/^Bochs ran/ { if ($3 > 0) print $6 / $3 }' "$1/times.txt" 2>/dev/null)
	awk -v r="${r:-1}" '
	function group(n,  p) { sub(/:$/, "", n); split(n, p, "/"); return (p[1] == "guest" || p[1] == "emul") ? p[1] "/" p[2] : p[1] }
	FNR == 1 { file++ }
	file == 1 && $2 ~ /^(PASS|FAIL|SKIP)$/ {
		g = group($3); if (pw != "") { if (!(g in w)) order[k++] = g; w[g] += $1 - pw; c[g]++ } pw = $1 }
	file == 2 && $2 ~ /^(PASS|FAIL|SKIP)$/ {
		g = group($3); if (pu != "") u[g] += $1 - pu; pu = $1 }
	END {
		for (i = 0; i < k; i++) {
			g = order[i]; tw += w[g]; tu += u[g]
			printf "    %-14s %3d tests %6.1f s wall %6.1f s idle-core %6.2f s guest\n", g, c[g], w[g], w[g] * r, u[g]
		}
		printf "    %-14s           %6.1f s wall %6.1f s idle-core %6.2f s guest\n", "all tests", tw, tw * r, tu
	}' "$1/ttyS1.wall" "$1/timed.txt" 2>/dev/null
}

# vmx_start quick|full OUTDIR: starts the Bochs runs (one per set, each in a
# session of its own at nice VMX_NICE, default 10) in the background and
# returns; vmx_finish waits for them and reports. scripts/check.sh starts
# them before its SVM column, whose QEMU VMs leave idle CPU time that the
# emulated-time Bochs runs (clock sync=none: their results do not depend
# on the host's load) soak up, and reports them at its end. An exit
# before vmx_finish kills them (EXIT trap).
vmx_start() {
	local set d
	vmx_what=${1:-quick} vmx_out=${2:?vmx_start quick|full OUTDIR}
	vmx_sets=${VMX_SETS:-ours intree} vmx_l2v=${L2_VARIANTS:-default split off}
	mkdir -p "$vmx_out"
	# quick: rkvm-vmtest; full: rkvm-vmtest, then the nested QEMU test in
	# the same boot (scripts/bochs.sh full).
	case $vmx_what in
	quick) vmx_mode=check vmx_filter=$VMX_QUICK_FILTER vmx_tmo=${VMX_TIMEOUT:-2400} ;;
	full) vmx_mode=full vmx_filter= vmx_tmo=${VMX_TIMEOUT:-5400} ;;
	*) echo "vmx_start: quick or full" >&2; return 2 ;;
	esac
	[ "$vmx_what" = quick ] || [ "${VMX_L2:-1}" != 0 ] || vmx_mode=check
	vmx_t0=$(date +%s)
	for set in $vmx_sets; do
		d=$vmx_out/vmx-$set
		rm -f "$d.rc" "$d.secs" "$d.pgid"
		(
			s=$(date +%s)
			RKVM_TEST_FILTER=$vmx_filter RKVM_TEST_EXCLUDE=$VMX_EXCLUDE L2_VARIANTS=$vmx_l2v \
				L2_SMP=${L2_SMP:-2} setsid nice -n "${VMX_NICE:-10}" "$here/scripts/bochs.sh" \
				"$vmx_mode" "$set" "$d" "$vmx_tmo" > "$d.bochs.log" 2>&1 &
			echo $! > "$d.pgid"
			wait $!
			echo $? > "$d.rc"
			echo $(( $(date +%s) - s )) > "$d.secs"
		) &
		vmx_pids+=($!)
	done
	trap vmx_kill EXIT
}

# vmx_kill: stops the Bochs runs still going (their sessions).
vmx_kill() {
	local f
	for f in "$vmx_out"/vmx-*.pgid; do
		[ -s "$f" ] && kill -- "-$(cat "$f")" 2>/dev/null
		rm -f "$f"
	done
}

vmx_pids=()

# vmx_finish: waits for vmx_start's runs, then checks and prints them.
vmx_finish() {
	local out=$vmx_out sets=$vmx_sets mode=$vmx_mode filter=$vmx_filter l2v=$vmx_l2v set d n
	local -A vres vseen vsecs vman vexc
	local vnames=()
	n="guest suites ${filter:-(all)}"
	[ "$mode" != full ] || n+=", then nested QEMU ($l2v)"
	step "VMX column: Bochs (corei7_skylake_x, VMX+EPT, 1 CPU), $sets in parallel; $n"
	[ ${#vmx_pids[@]} = 0 ] || wait "${vmx_pids[@]}"
	vmx_pids=()
	trap - EXIT
	rm -f "$out"/vmx-*.pgid
	echo "(started at +$((vmx_t0 - ${t0:-$vmx_t0})) s, the runs ended at +$(($(date +%s) - ${t0:-$vmx_t0})) s)"

	# The manifest: the rows each column must report (as scripts/check.sh's,
	# for the Intel vendor and with the same filter and exclusions).
	RKVM_TEST_FILTER=$filter RKVM_TEST_EXCLUDE=$VMX_EXCLUDE \
		"$here/build/vmtest/release/rkvm-vmtest" --list --vendor intel > "$out/vmx-manifest.txt" 2>&1
	[ "$mode" != full ] || L2_VARIANTS=$l2v "$here/scripts/l2-boot.sh" list >> "$out/vmx-manifest.txt" 2>&1
	while read -r n; do
		[ -n "${vman[$n]:-}" ] || { vman[$n]=1; vnames+=("$n"); vseen[$n]=1; }
	done < <(sed -n 's/^ROW //p' "$out/vmx-manifest.txt")
	[ ${#vnames[@]} -gt 0 ] || fail vmx/manifest "rkvm-vmtest --list --vendor intel listed nothing; see $out/vmx-manifest.txt"

	# tests/exceptions.txt (rows where ours may fall short of in-tree, with
	# the reason), as scripts/check.sh reads it: an ours FAIL or SKIP of
	# such a row is a SKIP with the reason. Whether an exception is stale
	# is check.sh's call (the SVM column), not this one's. Ours must PASS
	# wherever in-tree PASSes: in-tree's results are read first.
	while read -r n rest; do
		case $n in '#'*|'') continue ;; esac
		vexc[$n]=${rest:-(no reason given)}
	done < "$here/tests/exceptions.txt"
	for set in $(printf '%s\n' $sets | sort); do
		d=$out/vmx-$set
		vsecs[$set]=$(cat "$d.secs" 2>/dev/null)
		if [ "$(cat "$d.rc" 2>/dev/null)" = 0 ]; then
			pass "vmx-$set: vm/boot-and-finish"
		else
			tail -n 5 "$d.bochs.log"
			tail -n 20 "$d/console.log" 2>/dev/null
			fail "vmx-$set: vm/boot-and-finish" "$(cat "$d/stalled" 2>/dev/null || echo "did not finish");" \
				"see $d/console.log, $d.bochs.log"
		fi
		while read -r status name rest; do
			case $status in PASS|FAIL|SKIP) ;; *) continue ;; esac
			name=${name%:}
			if [ -n "${vres[$set,$name]:-}" ]; then
				fail "vmx-$set: $name" "reported twice"
				continue
			fi
			[ -n "${vseen[$name]:-}" ] || { vnames+=("$name"); vseen[$name]=1; }
			vres[$set,$name]=$status
			if [ -z "${vman[$name]:-}" ]; then
				fail "vmx-$set: $name" "$status, but not in the manifest (rkvm-vmtest --list --vendor intel)"
				continue
			fi
			case $set,$status in
			*,PASS) pass "vmx-$set: $name" >/dev/null ;;
			ours,FAIL | ours,SKIP)
				if [ -n "${vexc[$name]:-}" ]; then
					skip "vmx-$set: $name" "exception (tests/exceptions.txt): ${vexc[$name]}; ours: $status $rest" >/dev/null
				elif [ "$status" = FAIL ]; then
					fail "vmx-$set: $name" "$rest"
				elif [ "${vres[intree,$name]:-}" = PASS ]; then
					fail "vmx-$set: $name" "SKIP for ours (${rest:-no reason given}) but PASS for in-tree"
				else
					skip "vmx-$set: $name" "${rest:-no reason given}" >/dev/null
				fi
				;;
			*,FAIL) fail "vmx-$set: $name" "$rest" ;;
			*,SKIP) skip "vmx-$set: $name" "${rest:-no reason given}" >/dev/null ;;
			esac
		done < <(cat "$d/results.txt" "$d/l2-results.txt" 2>/dev/null)
		# Rows the run never reported (it hung, crashed or stopped early).
		n=0
		for name in "${!vman[@]}"; do
			[ -n "${vres[$set,$name]:-}" ] && continue
			n=$((n + 1))
			fail "vmx-$set: $name" "not reported (the run ended before it; see $d.bochs.log)" >/dev/null
		done
		[ $n = 0 ] || echo "FAIL vmx-$set: $n manifest rows not reported (counted as failures)"
		n=$(cat "$d/vmtest.rc" 2>/dev/null || echo none)
		n=${n//[^0-9a-z]/}
		if ! grep -qE '^(PASS|FAIL) ' "$d/results.txt" 2>/dev/null || { [ "$n" != 0 ] && [ "$n" != 1 ]; }; then
			head -n 20 "$d/vmtest.err" 2>/dev/null
			fail "vmx-$set: vm/vmtest-ran" "exit status $n; see $d/vmtest.err"
		fi
		vmx_log_check "$set" "$d/dmesg.txt"
	done

	step "VMX column side by side (Bochs)"
	printf '%-52s %-6s %-6s\n' test ours in-tree
	for n in "${vnames[@]}"; do
		printf '%-52s %-6s %-6s%s\n' "$n" "${vres[ours,$n]:--}" "${vres[intree,$n]:--}" \
			"${vexc[$n]:+ (exception)}"
	done
	echo
	echo "VMX times (per set: Bochs' wall and CPU time, the phases, the test groups):"
	for set in $sets; do
		echo "  $set: ${vsecs[$set]:-?} s in all"
		vmx_times "$out/vmx-$set"
		vmx_group_times "$out/vmx-$set"
		grep -h '^INFO' "$out/vmx-$set/l2-results.txt" 2>/dev/null | sed 's/^/    /'
	done
}

# vmx_section quick|full OUTDIR: vmx_start, then vmx_finish.
vmx_section() {
	vmx_start "$@" && vmx_finish
}

# ---- standalone: make check-vmx ---------------------------------------------
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	here=$(cd "$(dirname "$0")/.." && pwd)
	cd "$here" || exit 1
	# shellcheck disable=SC1091
	. ./config.mak
	export PATH=$HOME/.cargo/bin:$PATH
	out=$here/build/check-vmx
	rm -rf "$out"
	mkdir -p "$out"
	passed=0 failed=0 skipped=0
	failures=()
	pass() { passed=$((passed + 1)); echo "PASS $1"; }
	fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1${2:+: $2}"; }
	skip() { skipped=$((skipped + 1)); echo "SKIP $1${2:+: $2}"; }
	step() { echo; echo "== $* == (at +$(( $(date +%s) - t0 )) s)"; }
	t0=$(date +%s)
	step "build: modules, in-VM test program, L2 guest"
	ok=1
	make -s modules > "$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; fail build/modules "see $out/build.log"; ok=; }
	(cd tests/vm/vmtest && CARGO_TARGET_DIR=$here/build/vmtest cargo build --release --quiet) \
		> "$out/vmtest-build.log" 2>&1 || { tail -n 30 "$out/vmtest-build.log"; fail build/vmtest "see $out/vmtest-build.log"; ok=; }
	scripts/l2-initramfs.sh > "$out/l2-initramfs.log" 2>&1 || { tail -n 20 "$out/l2-initramfs.log"; fail build/l2-initramfs "see $out/l2-initramfs.log"; }
	[ -z "$ok" ] || vmx_section "${1:-full}" "$out"
	echo
	echo "check-vmx took $(($(date +%s) - t0)) s; logs in $out"
	if [ ${#failures[@]} -gt 0 ]; then
		echo "failures:"
		printf '  %s\n' "${failures[@]}"
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" = 0 ]
fi
