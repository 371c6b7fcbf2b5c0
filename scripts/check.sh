#!/bin/bash
# `make check`: build, host tests, uapi ABI check, then the in-VM tests
# against our modules and against the in-tree modules of the same kernel
# (one boot each), compared row by row. Last line: "N passed, N failed,
# N skipped"; the exit status is non-zero when anything failed.
#
# What fails the run:
# - a process of the run exiting non-zero or killed: the module build,
#   each host test binary (FAIL host/<crate>/<binary>: killed by signal
#   SIGABRT ...), uapi-check, each VM (vm/<set>/boot-and-finish), vmtest
#   (vm/<set>/vmtest-ran), the peer suite's runner (vm/<set>/peer-ran; its
#   test results are reported, not counted), tests/vm/install.sh
#   (vm/<set>/install-ran), scripts/l2-boot.sh (vm/<set>/l2-ran);
# - a row of the manifest (what `rkvm-vmtest --list` and `scripts/l2-boot.sh
#   list` say a run prints) missing from either column, a row reported that
#   is not in the manifest, a row reported twice, a SKIP without a reason;
# - a FAIL row in either column;
# - ours not PASS (SKIP, FAIL) where the in-tree module PASSes, unless
#   tests/exceptions.txt lists the row with its reason (printed in the
#   summary); an exception for a row ours passes is stale, and fails;
# - an Oops/WARNING/BUG/lockdep report in a kernel log: L1's (streamed to
#   the results share from boot on by tests/vm/init.sh), the L2 guest's
#   (every variant, scripts/l2-boot.sh), the in-tree retry VM's.
# The in-tree column's failed rows that tests/reference-flakes.txt lists
# (known flakes of the reference under TCG) run once more in a fresh VM
# (rkvm-vmtest rows; L2 rows in a VM of mode l2 that runs their variants);
# a pass there counts, marked as a retry. Nothing else is retried.
#
# Shadow paging (issue 12): each column boots once more with kvm-amd
# npt=0 and runs the guest suites (RKVM_NPT0_FILTER, default
# guest/|emul/|run/|memslot/|dirty-log/) and the L2 QEMU boot (not with
# RKVM_ONLY_VMTEST), as rows npt0/<row>, judged like the others (an
# exception for <row> covers npt0/<row> too). RKVM_NPT0_FILTER=none
# leaves them out.
#
# RKVM_TEST_FILTER (guest tests to run) and RKVM_ONLY_VMTEST=1 (no peer
# suite, no L2) narrow the run and its manifest alike.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck disable=SC1091
. ./config.mak
export PATH=$HOME/.cargo/bin:$PATH
out=$here/build/check
rm -rf "$out"
mkdir -p "$out"
# shellcheck disable=SC2034 # t0: the start, for check-lib.sh (step, summary)
t0=$(date +%s)
vmtest=$here/build/vmtest/release/rkvm-vmtest
npt0_filter=${RKVM_NPT0_FILTER:-guest/|emul/|run/|memslot/|dirty-log/}
# The nested QEMU variants of the npt=0 boots (RKVM_NPT0_L2): the default
# one (split/off irqchip and QEMU 10 exercise nothing paging-specific, and
# every L2 session is one more chance for TCG's rare stalls).
npt0_l2=${RKVM_NPT0_L2:-default}
# The time limit of each test VM (RKVM_VM_TIMEOUT seconds; check-debug's
# KASAN kernel needs far more).
vm_tmo=${RKVM_VM_TIMEOUT:-1200}

# The rows, their counting and the summary line: scripts/check-lib.sh
# (pass, fail, skip, step, status_text, build_step, proc_row, kernel_log,
# summary, log_bad).
# shellcheck source=scripts/check-lib.sh disable=SC1091
. "$here/scripts/check-lib.sh"

# ---- host tests -------------------------------------------------------------
hp=0 hf=0 hs=0
# run_host_binary ROW DIR EXE: one test binary of tests/host, run in its
# package directory (as cargo does) with its own exit status and time limit.
run_host_binary() {
	local row=$1 dir=$2 exe=$3 base log skips rc=0 res p f t w ns=0
	base=$out/host/${row//\//_}
	log=$base.log skips=$base.skips
	(cd "$dir" && RKVM_HOST_SKIPS=$skips timeout -k 10 600 "$exe" --show-output) > "$log" 2>&1 || rc=$?
	res=$(grep '^test result:' "$log" | tail -n 1)
	if [ -z "$res" ]; then
		tail -n 20 "$log"
		hf=$((hf + 1))
		fail "$row" "no test result: $(status_text $rc); see $log"
		return
	fi
	p=$(sed -n 's/.* \([0-9]*\) passed;.*/\1/p' <<< "$res")
	f=$(sed -n 's/.* \([0-9]*\) failed;.*/\1/p' <<< "$res")
	while read -r t; do
		hf=$((hf + 1))
		fail "$row/$t" "see $log"
	done < <(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log")
	while read -r t w; do
		hs=$((hs + 1))
		skip "$row/$t" "#[ignore]${w:+ $w}"
	done < <(sed -n 's/^test \(.*\) \.\.\. ignored,\{0,1\}\(.*\)$/\1 \2/p' "$log")
	# Tests that could not run here (tests/host/skip.rs) passed for libtest.
	if [ -f "$skips" ]; then
		while IFS=$'\t' read -r t w; do
			ns=$((ns + 1))
			hs=$((hs + 1))
			skip "$row/$t" "${w:-no reason given}"
		done < "$skips"
	fi
	hp=$((hp + p - ns))
	passed=$((passed + p - ns))
	if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
		hf=$((hf + 1))
		fail "$row" "$(status_text $rc) although its tests passed ($res); see $log"
	fi
}

# host_tests: every test binary of the tests/host workspace, as cargo lists
# them, each one run and judged on its own.
host_tests() {
	local json=$out/host-build.json list=$out/host-tests.list rc=0 line mp tn exe row dir n=0
	mkdir -p "$out/host"
	(cd tests/host && cargo test --release --no-run --message-format=json) > "$json" 2> "$out/host-build.log" || rc=$?
	if [ $rc != 0 ]; then
		tail -n 30 "$out/host-build.log"
		fail host/build "cargo test --no-run: $(status_text $rc); see $out/host-build.log"
		return
	fi
	# "<row> <package dir> <executable>" per test binary.
	grep '"reason":"compiler-artifact"' "$json" | grep '"profile":{[^}]*"test":true' |
		while IFS= read -r line; do
			mp=$(sed -n 's/.*"manifest_path":"\([^"]*\)".*/\1/p' <<< "$line")
			tn=$(sed -n 's/.*"target":{[^}]*"name":"\([^"]*\)".*/\1/p' <<< "$line")
			exe=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' <<< "$line")
			[ -n "$exe" ] && echo "host/$(basename "$(dirname "$mp")")/$tn $(dirname "$mp") $exe"
		done | sort > "$list"
	if [ ! -s "$list" ]; then
		fail host/list "cargo listed no test binaries; see $json"
		return
	fi
	while read -r row dir exe; do
		n=$((n + 1))
		run_host_binary "$row" "$dir" "$exe"
	done < "$list"
	grep -h -E '^(decodes|VEX decodes|executions|vector executions|fuzz|differential)' "$out"/host/*.log | head -n 10
	echo "host tests: $hp passed, $hf failed, $hs skipped ($n test binaries)"
}

# ---- the manifest -------------------------------------------------------------
declare -A in_manifest=() exception=() flake=() status=() why=() seen=() retried=()
manifest=() extra=()
# make_manifest: the rows each column must report, from the test sources
# themselves (rkvm-vmtest --list; scripts/l2-boot.sh list).
make_manifest() {
	local rc=0 n dups
	"$vmtest" --list > "$out/manifest-vmtest.txt" 2> "$out/manifest.err" || rc=$?
	if [ $rc != 0 ] || ! grep -q '^ROW ' "$out/manifest-vmtest.txt"; then
		fail manifest/vmtest "rkvm-vmtest --list: $(status_text $rc); see $out/manifest.err"
	fi
	: > "$out/manifest-l2.txt"
	if [ -z "${RKVM_ONLY_VMTEST:-}" ]; then
		rc=0
		scripts/l2-boot.sh list > "$out/manifest-l2.txt" 2>> "$out/manifest.err" || rc=$?
		if [ $rc != 0 ] || ! grep -q '^ROW ' "$out/manifest-l2.txt"; then
			fail manifest/l2 "scripts/l2-boot.sh list: $(status_text $rc); see $out/manifest.err"
		fi
	fi
	# The short fuzzer run after vmtest (tests/vm/init.sh), when built.
	: > "$out/manifest-fuzz.txt"
	if [ -z "${RKVM_ONLY_VMTEST:-}" ] && [ -x build/ioctlfuzz/release/rkvm-ioctlfuzz ]; then
		printf 'ROW %s\n' fuzz-short/no-kernel-reports fuzz-short/no-hang \
			fuzz-short/modules-unload-after fuzz-short/modules-reload-after > "$out/manifest-fuzz.txt"
	fi
	# The install test after it (tests/vm/init.sh).
	: > "$out/manifest-install.txt"
	[ -n "${RKVM_ONLY_VMTEST:-}" ] || tests/vm/install.sh list > "$out/manifest-install.txt"
	# The npt=0 rows (run_vm_npt0).
	: > "$out/manifest-npt0.txt"
	if [ "$npt0_filter" != none ]; then
		rc=0
		RKVM_TEST_FILTER=$npt0_filter "$vmtest" --list 2>> "$out/manifest.err" |
			sed -n 's|^ROW |ROW npt0/|p' > "$out/manifest-npt0.txt" || rc=$?
		if [ $rc != 0 ] || ! grep -q '^ROW ' "$out/manifest-npt0.txt"; then
			fail manifest/npt0 "RKVM_TEST_FILTER=$npt0_filter rkvm-vmtest --list: $(status_text $rc); see $out/manifest.err"
		fi
		[ -n "${RKVM_ONLY_VMTEST:-}" ] ||
			L2_VARIANTS=$npt0_l2 scripts/l2-boot.sh list 2>> "$out/manifest.err" |
			sed -n 's|^ROW |ROW npt0/|p' >> "$out/manifest-npt0.txt"
	fi
	sed -n 's/^ROW //p' "$out/manifest-vmtest.txt" "$out/manifest-l2.txt" "$out/manifest-fuzz.txt" \
		"$out/manifest-install.txt" "$out/manifest-npt0.txt" > "$out/manifest.txt"
	dups=$(sort "$out/manifest.txt" | uniq -d | tr '\n' ' ')
	[ -z "$dups" ] || fail manifest/unique "rows listed twice: $dups"
	while read -r n; do
		[ -n "${in_manifest[$n]:-}" ] && continue
		in_manifest[$n]=1
		manifest+=("$n")
	done < "$out/manifest.txt"
	echo "manifest: ${#manifest[@]} rows per column ($(grep -c '^ROW ' "$out/manifest-vmtest.txt") rkvm-vmtest, $(grep -c '^ROW ' "$out/manifest-l2.txt") L2)${RKVM_TEST_FILTER:+, filtered by RKVM_TEST_FILTER=$RKVM_TEST_FILTER}"
}

# read_list FILE ARRAY: "ROW REASON" lines (# comments) into ARRAY[ROW].
read_list() {
	local file=$1 row reason
	local -n into=$2
	while read -r row reason; do
		case $row in '#'*|'') continue ;; esac
		if [ -z "$reason" ]; then
			fail "${file#"$here"/}" "$row: no reason given"
			reason="(no reason given)"
		fi
		into[$row]=$reason
	done < "$file"
}

# ---- one VM -----------------------------------------------------------------
# read_results SET FILE...: the PASS/FAIL/SKIP lines of a column.
read_results() {
	local set=$1 line st rest name w
	shift
	while IFS= read -r line; do
		st=${line%% *}
		case $st in PASS|FAIL|SKIP) ;; *) continue ;; esac
		rest=${line#* }
		name=${rest%%: *}
		w=
		[ "$name" = "$rest" ] || w=${rest#*: }
		if [ -n "${status[$set|$name]:-}" ]; then
			fail "$set: $name" "reported twice (${status[$set|$name]}, then $st)"
			continue
		fi
		if [ "$st" = SKIP ] && [ -z "$w" ]; then
			st=FAIL w="SKIP without a reason"
		fi
		status[$set|$name]=$st
		why[$set|$name]=$w
		[ -n "${seen[$name]:-}" ] || { seen[$name]=1; [ -n "${in_manifest[$name]:-}" ] || extra+=("$name"); }
	done < <(cat "$@" 2>/dev/null)
}

# peer_rows SET DIR: the peer suite's runner finished and reported every
# binary of build/peer/tests.list; its results go to the report only.
peer_rows() {
	local set=$1 d=$2 rc name exe missing=
	if [ -n "${RKVM_ONLY_VMTEST:-}" ]; then
		skip "vm/$set/peer-ran" "RKVM_ONLY_VMTEST is set"
		return
	elif [ ! -s build/peer/tests.list ]; then
		skip "vm/$set/peer-ran" "the peer suite was not built (build/peer failed)"
		return
	fi
	rc=$(cat "$d/peer.rc" 2>/dev/null || echo none)
	while read -r name exe; do
		grep -q "^peer $name: " "$d/peer-summary.txt" 2>/dev/null || missing="$missing $name"
	done < build/peer/tests.list
	if [ "$rc" = 0 ] && [ -z "$missing" ]; then
		pass "vm/$set/peer-ran"
	else
		tail -n 20 "$d/peer.log" 2>/dev/null
		fail "vm/$set/peer-ran" "scripts/peer.sh vm: $(status_text "$rc")${missing:+; no summary for$missing}; see $d/peer.log"
	fi
	sed "s/^peer /$set: /" "$d/peer-summary.txt" 2>/dev/null >> "$out/peer.txt"
	grep -h '^PEER-FAIL ' "$d"/peer-*.txt 2>/dev/null | sed "s/^PEER-FAIL /  $set failed: /" >> "$out/peer.txt"
}

declare -A vm_ran=() l2_info=()
# run_vm SET: boot the test VM for a module set; its rows into status/why,
# its processes and kernel log as rows of their own.
run_vm() {
	local set=$1 d=$out/vm-$1 s k rc=0
	step "VM tests: $set modules (QEMU TCG, -cpu EPYC,+svm,+npt, 2 vCPUs)"
	vm_ran[$set]=1
	s=$(date +%s)
	scripts/vm.sh check "$set" "$d" "$vm_tmo" > "$d.console.log" 2>&1 || rc=$?
	if [ $rc = 0 ]; then
		pass "vm/$set/boot-and-finish"
	else
		tail -n 40 "$d.console.log"
		fail "vm/$set/boot-and-finish" "scripts/vm.sh: $(status_text $rc); see $d.console.log"
	fi
	echo "($set: $(($(date +%s) - s)) s)"
	read_results "$set" "$d/results.txt" "$d/l2-results.txt"
	proc_row "vm/$set/vmtest-ran" "$d/vmtest.rc" "0 1" rkvm-vmtest "$d/vmtest.err"
	if [ -n "${RKVM_ONLY_VMTEST:-}" ]; then
		skip "vm/$set/l2-ran" "RKVM_ONLY_VMTEST is set"
	else
		proc_row "vm/$set/install-ran" "$d/install.rc" 0 tests/vm/install.sh "$d/install.err"
		proc_row "vm/$set/l2-ran" "$d/l2.rc" "0 1" scripts/l2-boot.sh "$d/l2.log"
	fi
	peer_rows "$set" "$d"
	kernel_log "vm/$set/kernel-log-clean" "$d/dmesg.txt"
	# Nested QEMU timings (INFO lines of scripts/l2-boot.sh): reported, not counted.
	for k in boot-seconds workload-seconds paging-stress-seconds kernel-irqchip-split kernel-irqchip-off qemu10-boot-seconds qemu10-workload-seconds qemu10-kernel-irqchip-split qemu10-kernel-irqchip-off \
		migrate-seconds migrate-q10-seconds; do
		l2_info[$set,$k]=$(sed -n "s|^INFO l2/$k ||p" "$d/l2-results.txt" 2>/dev/null | head -n 1)
	done
}

# run_vm_npt0 SET: the guest suites (RKVM_NPT0_FILTER) with kvm-amd npt=0,
# rows prefixed npt0/; the VM, vmtest and the kernel log as rows too.
run_vm_npt0() {
	local set=$1 d=$out/vm-$1-npt0 s rc=0
	step "VM tests: $set modules with kvm-amd npt=0 (shadow paging), RKVM_TEST_FILTER=$npt0_filter"
	s=$(date +%s)
	RKVM_MODULE_PARAMS='kvm-amd.ko=npt=0' RKVM_TEST_FILTER=$npt0_filter RKVM_NO_PEER=1 \
		L2_VARIANTS=$npt0_l2 scripts/vm.sh check "$set" "$d" "$vm_tmo" > "$d.console.log" 2>&1 || rc=$?
	if [ $rc = 0 ]; then
		pass "vm/$set-npt0/boot-and-finish"
	else
		tail -n 40 "$d.console.log"
		fail "vm/$set-npt0/boot-and-finish" "scripts/vm.sh: $(status_text $rc); see $d.console.log"
	fi
	echo "($set npt=0: $(($(date +%s) - s)) s)"
	cat "$d/results.txt" "$d/l2-results.txt" 2>/dev/null |
		sed -E 's#^(PASS|FAIL|SKIP) #\1 npt0/#' > "$d/results-npt0.txt"
	read_results "$set" "$d/results-npt0.txt"
	proc_row "vm/$set-npt0/vmtest-ran" "$d/vmtest.rc" "0 1" rkvm-vmtest "$d/vmtest.err"
	if [ -n "${RKVM_ONLY_VMTEST:-}" ]; then
		skip "vm/$set-npt0/l2-ran" "RKVM_ONLY_VMTEST is set"
	else
		proc_row "vm/$set-npt0/l2-ran" "$d/l2.rc" "0 1" scripts/l2-boot.sh "$d/l2.log"
	fi
	for k in boot-seconds workload-seconds paging-stress-seconds; do
		l2_info[$set-npt0,$k]=$(sed -n "s|^INFO l2/$k ||p" "$d/l2-results.txt" 2>/dev/null | head -n 1)
	done
	kernel_log "vm/$set-npt0/kernel-log-clean" "$d/dmesg.txt"
}

# retry_outcome NAME RC CONSOLE: the retry VM's boot-and-finish row.
retry_outcome() {
	if [ "$2" = 0 ]; then
		pass "vm/$1/boot-and-finish"
	else
		tail -n 40 "$3"
		fail "vm/$1/boot-and-finish" "scripts/vm.sh: $(status_text "$2"); see $3"
	fi
}

# retry_credit SET ROW...: a row that passed in the retry VM's results
# (SET) counts as an in-tree pass, marked; otherwise its reason grows by
# the retry's.
retry_credit() {
	local set=$1 n
	shift
	for n in "$@"; do
		if [ "${status[$set|$n]:-}" = PASS ]; then
			echo "  in-tree $n: failed (${why[intree|$n]}), passed on retry"
			status[intree|$n]=PASS
			why[intree|$n]="passed on retry; first run: ${why[intree|$n]}"
			retried[$n]=1
		else
			why[intree|$n]="${why[intree|$n]}; on retry: ${status[$set|$n]:-missing} ${why[$set|$n]:-}"
		fi
	done
}

# retry_intree: the in-tree column's failed rows that are known reference
# flakes (tests/reference-flakes.txt) run once more in a fresh VM, whose
# every row, process and kernel log counts too.
retry_intree() {
	local d=$out/vm-intree-retry n rows=() rc=0
	for n in "${manifest[@]}"; do
		[ "${status[intree|$n]:-}" = FAIL ] && [ -n "${flake[$n]:-}" ] && rows+=("$n")
	done
	[ ${#rows[@]} -gt 0 ] || return 0
	step "in-tree retry of known reference flakes: ${rows[*]}"
	RKVM_TEST_FILTER=$(IFS='|'; echo "${rows[*]}") RKVM_ONLY_VMTEST=1 \
		scripts/vm.sh check intree "$d" 600 > "$d.console.log" 2>&1 || rc=$?
	retry_outcome intree-retry "$rc" "$d.console.log"
	read_results intree-retry "$d/results.txt"
	proc_row vm/intree-retry/vmtest-ran "$d/vmtest.rc" "0 1" rkvm-vmtest "$d/vmtest.err"
	kernel_log vm/intree-retry/kernel-log-clean "$d/dmesg.txt"
	retry_credit intree-retry "${rows[@]}"
	# The retry VM's other rows (module lifecycle) count as rows of their own.
	while read -r n; do
		case ${status[intree-retry|$n]:-} in
		PASS) pass "intree-retry: $n" > /dev/null ;;
		FAIL) fail "intree-retry: $n" "${why[intree-retry|$n]}" ;;
		SKIP) skip "intree-retry: $n" "${why[intree-retry|$n]}" ;;
		esac
	done < <(sed -n 's/^\(PASS\|FAIL\|SKIP\) \([^:]*\).*/\2/p' "$d/results.txt" 2>/dev/null | grep -vxF -f <(printf '%s\n' "${rows[@]}"))
}

# retry_intree_l2: the same for rows of the L2 sessions: the variants of
# the failed listed rows (scripts/l2-boot.sh list per variant) run once
# more in a fresh VM in mode l2; a pass of the row there counts.
retry_intree_l2() {
	local d=$out/vm-intree-l2retry n v rows=() vars=() rc=0
	for n in "${manifest[@]}"; do
		case $n in l2/*) ;; *) continue ;; esac
		[ "${status[intree|$n]:-}" = FAIL ] && [ -n "${flake[$n]:-}" ] && rows+=("$n")
	done
	[ ${#rows[@]} -gt 0 ] || return 0
	for v in $(sed -n "s/^all_variants='\(.*\)'/\1/p" scripts/l2-boot.sh); do
		for n in "${rows[@]}"; do
			if L2_VARIANTS=$v scripts/l2-boot.sh list 2>/dev/null | grep -qxF "ROW $n"; then
				vars+=("$v")
				break
			fi
		done
	done
	step "in-tree retry of known reference flakes of the L2 sessions: ${rows[*]} (variants ${vars[*]})"
	L2_VARIANTS="${vars[*]}" scripts/vm.sh l2 intree "$d" 900 > "$d.console.log" 2>&1 || rc=$?
	retry_outcome intree-l2retry "$rc" "$d.console.log"
	read_results intree-l2retry "$d/l2-results.txt"
	retry_credit intree-l2retry "${rows[@]}"
}

# ---- row by row ---------------------------------------------------------------
# judge ROW: count both columns of a row: every manifest row present in
# both; FAIL fails; ours must PASS where in-tree PASSes unless excepted.
judge() {
	local n=$1 o i ow iw ex
	o=${status[ours|$n]:-} i=${status[intree|$n]:-}
	ow=${why[ours|$n]:-} iw=${why[intree|$n]:-}
	ex=${exception[$n]:-${exception[${n#npt0/}]:-}}
	if [ -z "${in_manifest[$n]:-}" ]; then
		fail "$n" "reported (ours ${o:-none}, in-tree ${i:-none}) but not in the manifest (rkvm-vmtest --list / scripts/l2-boot.sh list)"
		return
	fi
	case $i in
	PASS) pass "intree: $n" > /dev/null ;;
	FAIL) fail "intree: $n" "$iw" ;;
	SKIP) skip "intree: $n" "$iw" ;;
	'') fail "intree: $n" "missing: the manifest lists it, the in-tree run did not report it" ;;
	esac
	case $o in
	PASS)
		if [ -n "$ex" ]; then
			fail "ours: $n" "passes, but tests/exceptions.txt still excuses it ($ex): remove the stale exception"
		else
			pass "ours: $n" > /dev/null
		fi
		;;
	'') fail "ours: $n" "missing: the manifest lists it, our run did not report it" ;;
	FAIL|SKIP)
		if [ -n "$ex" ]; then
			skip "ours: $n" "exception (tests/exceptions.txt): $ex; ours: $o $ow"
		elif [ "$o" = FAIL ]; then
			fail "ours: $n" "$ow"
		elif [ "$i" = PASS ]; then
			fail "ours: $n" "SKIP for ours ($ow) but PASS for in-tree"
		else
			skip "ours: $n" "$ow"
		fi
		;;
	esac
}

# compare: judge every row; check the exceptions name real rows.
compare() {
	local n
	for n in "${manifest[@]}" "${extra[@]}"; do
		judge "$n"
	done
	if [ -z "${RKVM_TEST_FILTER:-}" ] && [ -z "${RKVM_ONLY_VMTEST:-}" ]; then
		for n in "${!exception[@]}"; do
			[ -n "${in_manifest[$n]:-}" ] || fail tests/exceptions.txt "$n: no such row in the manifest"
		done
	fi
}

# print_table: both columns side by side.
print_table() {
	local n mark
	printf '%-56s %-6s %-6s\n' test ours in-tree
	for n in "${manifest[@]}" "${extra[@]}"; do
		mark=
		[ -z "${exception[$n]:-${exception[${n#npt0/}]:-}}" ] || mark=" (exception)"
		[ -z "${retried[$n]:-}" ] || mark="$mark (in-tree: passed on retry)"
		printf '%-56s %-6s %-6s%s\n' "$n" "${status[ours|$n]:--}" "${status[intree|$n]:--}" "$mark"
	done
}

# ---- the run ----------------------------------------------------------------
step "build: modules"
modules_ok=
build_step build/modules "$out/build.log" make -s modules && modules_ok=1

step "style: rustfmt, clippy (kernel lints), unsafe budget, constants (scripts/style.sh)"
while read -r status name rest; do
	case $status in
	PASS) pass "$name${rest:+ $rest}" ;;
	FAIL) fail "${name%:}" "$rest" ;;
	esac
done < <(scripts/style.sh "$out/style")

step "host tests (tests/host: every test binary on its own)"
host_tests

step "uapi: usr/include/linux/kvm.h against $KERNELSRC"
if build_step uapi/abi-matches-kernel "$out/uapi.log" scripts/uapi-check.sh "$KERNELSRC"; then
	tail -n 3 "$out/uapi.log"
fi

step "build: in-VM test program"
vmtest_ok=
build_step build/vmtest "$out/vmtest-build.log" \
	env -C tests/vm/vmtest CARGO_TARGET_DIR="$here/build/vmtest" cargo build --release --quiet && vmtest_ok=1

step "build: ioctl fuzzer (tests/vm/ioctlfuzz; a short run per column, issue 17)"
if ! build_step build/ioctlfuzz "$out/ioctlfuzz-build.log" \
	env -C tests/vm/ioctlfuzz CARGO_TARGET_DIR="$here/build/ioctlfuzz" cargo build --release --quiet; then
	rm -f build/ioctlfuzz/release/rkvm-ioctlfuzz
fi

step "build: L2 guest for the nested QEMU test (scripts/l2-initramfs.sh)"
build_step build/l2-initramfs "$out/l2-initramfs.log" scripts/l2-initramfs.sh

step "fetch: QEMU 10 for the L2 rows of variant qemu10 (scripts/qemu10.sh; bookworm-backports, private apt config)"
build_step build/qemu10 "$out/qemu10.log" scripts/qemu10.sh && tail -n 1 "$out/qemu10.log"

step "build: peer suite (rust-vmm kvm-ioctls' own tests)"
build_step build/peer "$out/peer-build.log" scripts/peer.sh
: > "$out/peer.txt"

step "manifest, exceptions, reference flakes"
read_list tests/exceptions.txt exception
read_list tests/reference-flakes.txt flake
if [ -n "$vmtest_ok" ]; then
	make_manifest
fi
echo "exceptions: ${#exception[@]} (tests/exceptions.txt); known reference flakes: ${!flake[*]}"

# The VMX column (issue 18): kvm-intel, ours and in-tree side by side
# under Bochs (scripts/vmx.sh, the make-check part; make check-vmx runs
# all of it). Its two Bochs runs start here, in the background at nice 10,
# and overlap the SVM column's VMs; they are reported at the end.
# RKVM_VMX=0 leaves it out.
vmx_on=
if [ "${RKVM_VMX:-1}" != 0 ] && [ -n "$modules_ok" ] && [ -n "$vmtest_ok" ]; then
	# shellcheck disable=SC1091
	. scripts/vmx.sh
	vmx_start quick "$out" && vmx_on=1
fi

for set in ours intree; do
	if [ -z "$modules_ok" ] || [ -z "$vmtest_ok" ]; then
		step "VM tests: $set modules"
		skip "vm/$set" "not run: build/modules or build/vmtest failed (counted above)"
		continue
	fi
	run_vm "$set"
	[ "$npt0_filter" = none ] || run_vm_npt0 "$set"
done
[ -z "${vm_ran[intree]:-}" ] || retry_intree
[ -z "${vm_ran[intree]:-}" ] || retry_intree_l2

# The capability table (issue 11): KVM_CHECK_EXTENSION 0..300 as each
# column recorded it (caps/table-recorded), compared; every difference
# needs its reason in tests/vm/caps-exceptions.txt.
if [ -n "${in_manifest[caps/table-recorded]:-}" ] && [ -n "${vm_ran[ours]:-}" ] && [ -n "${vm_ran[intree]:-}" ]; then
	step "capability table: ours vs in-tree (scripts/caps-compare.sh, tests/vm/caps-exceptions.txt)"
	while IFS= read -r l; do
		case $l in
		"PASS "*) pass "${l#PASS }" ;;
		"FAIL "*) l=${l#FAIL }; fail "${l%%: *}" "${l#*: }" ;;
		*) printf '%s\n' "$l" ;;
		esac
	done < <(scripts/caps-compare.sh "$out/vm-ours/caps.txt" "$out/vm-intree/caps.txt")
fi

step "VM tests row by row (ours must PASS where in-tree PASSes)"
if [ -n "${vm_ran[ours]:-}" ] || [ -n "${vm_ran[intree]:-}" ]; then
	compare
	echo
	print_table
fi

echo
echo "ioctl fuzzer, short run (report only; scripts/fuzz.sh for long runs):"
sed -n 's/^INFO fuzz-short\/stats /  /p' "$out"/vm-ours/results.txt "$out"/vm-intree/results.txt 2>/dev/null
echo " errno differences ours vs in-tree on the same seed:"
DIFF_LINES=20 scripts/fuzz.sh --diff "$out/vm-ours/fuzz-short-trace.*.txt" "$out/vm-intree/fuzz-short-trace.*.txt"

echo
echo "nested QEMU 7.2 and 10 -accel kvm, L2 guest (report only; see build/check/vm-*/l2-*.console.log):"
printf '  %-40s %-12s %-12s\n' '' ours in-tree
printf '  %-40s %-12s %-12s\n' 'boot to shell (s)' "${l2_info[ours,boot-seconds]:--}" "${l2_info[intree,boot-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'workload (s)' "${l2_info[ours,workload-seconds]:--}" "${l2_info[intree,workload-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'paging stress (s)' "${l2_info[ours,paging-stress-seconds]:--}" "${l2_info[intree,paging-stress-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'boot to shell, npt=0 (s)' "${l2_info[ours-npt0,boot-seconds]:--}" "${l2_info[intree-npt0,boot-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'workload, npt=0 (s)' "${l2_info[ours-npt0,workload-seconds]:--}" "${l2_info[intree-npt0,workload-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'paging stress, npt=0 (s)' "${l2_info[ours-npt0,paging-stress-seconds]:--}" "${l2_info[intree-npt0,paging-stress-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'QEMU 10: boot to shell (s)' "${l2_info[ours,qemu10-boot-seconds]:--}" "${l2_info[intree,qemu10-boot-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'QEMU 10: workload (s)' "${l2_info[ours,qemu10-workload-seconds]:--}" "${l2_info[intree,qemu10-workload-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'live migration, 3 legs, QEMU 7.2 (s)' "${l2_info[ours,migrate-seconds]:--}" "${l2_info[intree,migrate-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'live migration, QEMU 10 (s)' "${l2_info[ours,migrate-q10-seconds]:--}" "${l2_info[intree,migrate-q10-seconds]:--}"
for k in kernel-irqchip-split kernel-irqchip-off qemu10-kernel-irqchip-split qemu10-kernel-irqchip-off; do
	for set in ours intree; do
		[ -z "${l2_info[$set,$k]:-}" ] || echo "  $set $k: ${l2_info[$set,$k]}"
	done
done

echo
echo "peer suite (rust-vmm kvm-ioctls 0.25.1 tests; report only):"
cat "$out/peer.txt"

echo
echo "exceptions (tests/exceptions.txt: ours may fall short of in-tree here):"
if [ ${#exception[@]} = 0 ]; then
	echo "  none"
else
	for n in "${!exception[@]}"; do
		printf '  %s [ours %s, in-tree %s]: %s\n' "$n" "${status[ours|$n]:--}" "${status[intree|$n]:--}" "${exception[$n]}"
	done | sort
fi

# ---- VMX column (issue 18): the Bochs runs started before the SVM VMs -------
if [ -n "$vmx_on" ]; then
	vmx_finish
elif [ "${RKVM_VMX:-1}" != 0 ]; then
	skip vmx "not run: build/modules or build/vmtest failed (counted above)"
fi

summary check
