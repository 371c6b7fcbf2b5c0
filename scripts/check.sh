#!/bin/bash
# `make check`: build, host tests, uapi ABI check, then the in-VM tests
# against our modules and against the in-tree modules of the same kernel
# (one boot each), side by side. Last line: "N passed, N failed, N skipped".
# Exit status is non-zero on any failure, including an Oops/WARNING/BUG in
# a guest kernel log.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck disable=SC1091
. ./config.mak
export PATH=$HOME/.cargo/bin:$PATH
out=$here/build/check
rm -rf "$out"
mkdir -p "$out"

passed=0 failed=0 skipped=0
failures=()
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1${2:+: $2}"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $1${2:+: $2}"; }
step() { echo; echo "== $* == (at +$(( $(date +%s) - t0 )) s)"; }
t0=$(date +%s)

step "build: modules"
if make -s modules > "$out/build.log" 2>&1; then
	pass build/modules
	modules_ok=1
else
	tail -n 30 "$out/build.log"
	fail build/modules "see $out/build.log"
	modules_ok=
fi

step "host tests (cargo test in tests/host)"
if (cd tests/host && cargo test --release 2>&1) > "$out/host-tests.log"; then :; fi
# One line per test binary: "test result: ok. 12 passed; 0 failed; 1 ignored; ..."
read -r hp hf < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) {
	if ($(i) ~ /^passed/) p += $(i - 1); if ($(i) ~ /^failed/) f += $(i - 1) } }
	END { print p + 0, f + 0 }' "$out/host-tests.log")
grep -E '^(test .* FAILED|error(\[|:))' "$out/host-tests.log" | head -n 20
grep -E '^(decodes|executions|fuzz|differential)' "$out/host-tests.log" | head -n 10
passed=$((passed + hp))
failed=$((failed + hf))
[ "$hf" = 0 ] || failures+=("host tests: $hf failed (see $out/host-tests.log)")
if ! grep -q '^test result:' "$out/host-tests.log"; then
	tail -n 30 "$out/host-tests.log"
	fail host/cargo-test "did not run; see $out/host-tests.log"
fi
echo "host tests: $hp passed, $hf failed"

step "uapi: usr/include/linux/kvm.h against $KERNELSRC"
if scripts/uapi-check.sh "$KERNELSRC" > "$out/uapi.log" 2>&1; then
	tail -n 3 "$out/uapi.log"
	pass uapi/abi-matches-kernel
else
	tail -n 30 "$out/uapi.log"
	fail uapi/abi-matches-kernel "see $out/uapi.log"
fi

step "build: in-VM test program"
if (cd tests/vm/vmtest && CARGO_TARGET_DIR=$here/build/vmtest cargo build --release --quiet) \
	> "$out/vmtest-build.log" 2>&1; then
	pass build/vmtest
	vmtest_ok=1
else
	tail -n 30 "$out/vmtest-build.log"
	fail build/vmtest "see $out/vmtest-build.log"
	vmtest_ok=
fi

step "build: ioctl fuzzer (tests/vm/ioctlfuzz; a short run per column, issue 17)"
if (cd tests/vm/ioctlfuzz && CARGO_TARGET_DIR=$here/build/ioctlfuzz cargo build --release --quiet) \
	> "$out/ioctlfuzz-build.log" 2>&1; then
	pass build/ioctlfuzz
else
	tail -n 30 "$out/ioctlfuzz-build.log"
	fail build/ioctlfuzz "see $out/ioctlfuzz-build.log"
	rm -f build/ioctlfuzz/release/rkvm-ioctlfuzz
fi

step "build: L2 guest for the nested QEMU test (scripts/l2-initramfs.sh)"
if scripts/l2-initramfs.sh > "$out/l2-initramfs.log" 2>&1; then
	pass build/l2-initramfs
else
	tail -n 20 "$out/l2-initramfs.log"
	fail build/l2-initramfs "see $out/l2-initramfs.log"
fi

step "build: peer suite (rust-vmm kvm-ioctls' own tests)"
if scripts/peer.sh > "$out/peer-build.log" 2>&1; then
	pass build/peer
else
	tail -n 20 "$out/peer-build.log"
	fail build/peer "see $out/peer-build.log"
fi
: > "$out/peer.txt"

# Oopses, warnings, lockdep and sanitizer reports in a guest kernel log.
log_bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|rcu_.*stall|blocked for more than'

declare -A result names_seen l2_info
names=()
for set in ours intree; do
	step "VM tests: $set modules (QEMU TCG, -cpu EPYC,+svm,+npt, 2 vCPUs)"
	if [ -z "$modules_ok" ] || [ -z "$vmtest_ok" ]; then
		skip "vm/$set" "build failed"
		continue
	fi
	d=$out/vm-$set
	s=$(date +%s)
	if scripts/vm.sh check "$set" "$d" 1200 > "$d.console.log" 2>&1; then
		pass "vm/$set/boot-and-finish"
	else
		tail -n 40 "$d.console.log"
		fail "vm/$set/boot-and-finish" "see $d.console.log"
	fi
	echo "($set: $(($(date +%s) - s)) s)"
	# The in-tree module is the reference, not the product: under TCG's
	# nested SVM it now and then loses an interrupt that arrives just
	# before the guest's `sti; hlt` (seen on irq/smp-* and irq/irqfd-*,
	# a few percent of runs; never on ours). Its failed guest tests run
	# once more in a fresh VM (at most 5; the module-lifecycle tests always
	# run again), and a pass there counts, marked as a retry.
	# Our modules get no second chance.
	: > "$d/retried.txt"
	retry=$(sed -n 's/^FAIL \([^:]*\):.*/\1/p' "$d/results.txt" 2>/dev/null | head -n 6)
	if [ "$set" = intree ] && [ -n "$retry" ] && [ "$(printf '%s\n' "$retry" | wc -l)" -le 5 ]; then
		echo "(in-tree: re-running $(echo $retry))"
		RKVM_TEST_FILTER=$(printf '%s\n' "$retry" | paste -sd '|') RKVM_ONLY_VMTEST=1 \
			scripts/vm.sh check "$set" "$d-retry" 600 > "$d-retry.console.log" 2>&1
		for n in $retry; do
			grep -qx "PASS $n" "$d-retry/results.txt" 2>/dev/null && echo "$n" >> "$d/retried.txt"
		done
	fi
	while read -r status name rest; do
		case $status in PASS|FAIL|SKIP) ;; *) continue ;; esac
		name=${name%:}
		if [ "$status" = FAIL ] && grep -qx "$name" "$d/retried.txt" 2>/dev/null; then
			echo "  in-tree $name: failed ($rest), passed on retry"
			status=PASS
		fi
		[ -n "${names_seen[$name]:-}" ] || { names+=("$name"); names_seen[$name]=1; }
		result[$set,$name]=$status
		case $status in
		PASS) pass "$set: $name" >/dev/null ;;
		FAIL) fail "$set: $name" "$rest" ;;
		SKIP) skip "$set: $name" >/dev/null ;;
		esac
	done < <(cat "$d/results.txt" "$d/l2-results.txt" 2>/dev/null)
	# Nested QEMU timings (INFO lines of scripts/l2-boot.sh): reported, not counted.
	for k in boot-seconds workload-seconds kernel-irqchip-split kernel-irqchip-off; do
		l2_info[$set,$k]=$(sed -n "s|^INFO l2/$k ||p" "$d/l2-results.txt" 2>/dev/null | head -n 1)
	done
	# vmtest exits 0 (all passed) or 1 (failures reported); anything else,
	# or no results at all, means it crashed or never ran.
	rc=$(cat "$d/vmtest.rc" 2>/dev/null || echo none)
	if ! grep -qE '^(PASS|FAIL) ' "$d/results.txt" 2>/dev/null || { [ "$rc" != 0 ] && [ "$rc" != 1 ]; }; then
		head -n 20 "$d/vmtest.err" 2>/dev/null
		fail "vm/$set/vmtest-ran" "exit status $rc; see $d/vmtest.err"
	fi
	if [ -f "$d/dmesg.txt" ] && ! grep -Eq "$log_bad" "$d/dmesg.txt"; then
		pass "vm/$set/kernel-log-clean"
	else
		grep -E -A 12 "$log_bad" "$d/dmesg.txt" 2>/dev/null | head -n 40
		fail "vm/$set/kernel-log-clean" "see $d/dmesg.txt"
	fi
	# The peer suite is reported, not counted: it covers later issues too.
	if [ -s "$d/peer-summary.txt" ]; then
		sed "s/^peer /$set: /" "$d/peer-summary.txt" | tee -a "$out/peer.txt"
		grep -h '^PEER-FAIL ' "$d"/peer-*.txt 2>/dev/null | sed "s/^PEER-FAIL /  $set failed: /" >> "$out/peer.txt"
	elif [ -s build/peer/tests.list ]; then
		fail "vm/$set/peer-ran" "no peer-summary.txt; see $d"
	fi
done

step "VM tests side by side"
printf '%-52s %-6s %-6s\n' test ours in-tree
for n in "${names[@]}"; do
	printf '%-52s %-6s %-6s\n' "$n" "${result[ours,$n]:--}" "${result[intree,$n]:--}"
done

echo
echo "ioctl fuzzer, short run (report only; scripts/fuzz.sh for long runs):"
sed -n 's/^INFO fuzz-short\/stats /  /p' "$out"/vm-ours/results.txt "$out"/vm-intree/results.txt 2>/dev/null
echo " errno differences ours vs in-tree on the same seed:"
DIFF_LINES=20 scripts/fuzz.sh --diff "$out/vm-ours/fuzz-short-trace.*.txt" "$out/vm-intree/fuzz-short-trace.*.txt"

echo
echo "nested QEMU 7.2 -accel kvm, L2 guest (report only; see build/check/vm-*/l2-*.console.log):"
printf '  %-40s %-12s %-12s\n' '' ours in-tree
printf '  %-40s %-12s %-12s\n' 'boot to shell (s)' "${l2_info[ours,boot-seconds]:--}" "${l2_info[intree,boot-seconds]:--}"
printf '  %-40s %-12s %-12s\n' 'workload (s)' "${l2_info[ours,workload-seconds]:--}" "${l2_info[intree,workload-seconds]:--}"
for k in kernel-irqchip-split kernel-irqchip-off; do
	for set in ours intree; do
		[ -z "${l2_info[$set,$k]}" ] || echo "  $set $k: ${l2_info[$set,$k]}"
	done
done

echo
echo "peer suite (rust-vmm kvm-ioctls 0.25.1 tests; report only):"
cat "$out/peer.txt"
echo
echo "check took $(($(date +%s) - t0)) s; logs in $out"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
