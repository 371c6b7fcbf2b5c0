#!/bin/bash
# `make check-nested` (issue 15): nested SVM, an L3 run. For each column
# (ours, intree) the test VM (scripts/vm.sh mode l2: QEMU TCG, -cpu
# EPYC,+svm,+npt) loads the column's kvm.ko + kvm-amd.ko with nested=1,
# unmodified QEMU -accel kvm boots the L2 Linux guest with SVM in its CPUID
# (scripts/l2-boot.sh, variant nested: -cpu qemu64,+svm,+npt; NPT where
# L1 offers it, else shadow paging in L2), L2 loads
# the in-tree kvm.ko + kvm-amd.ko of the same kernel build, and
# /l3/l3run (tests/vm/l2/l3run.c) runs the in-VM suite's real-mode guest
# on L2's /dev/kvm: L3, checked exit by exit. Rows nested/<set>/<row>:
#   vm-boot-and-finish    the test VM ran to its end (scripts/vm.sh)
#   l2-ran                scripts/l2-boot.sh finished (0, or 1: failed rows)
#   l2-boot-to-shell, l2-cpuid-svm, l3-boot-kvm, l3-pio, l3-mmio, l3-hlt,
#   migrate-save, migrate-restore, l3-after-restore,
#   l2-guest-log-clean, l2-clean-poweroff, l1-log-clean
#                         scripts/l2-boot.sh's rows of variant nested (there
#                         l2/nested/<row>; what each checks is said there):
#                         L2 boots, has SVM ("L2 CPUID has no SVM" fails at
#                         once, the L3 rows SKIP), loads KVM (/dev/kvm), L3's
#                         PIO, MMIO and HLT exits; then L2 is live-migrated
#                         (QEMU 7.2, the column's set to itself) while an L3
#                         loop runs, which must go on after the restore and
#                         end with every exit right; the logs
#   l1-kernel-log-clean   no report in L1's whole kernel log
# Every row scripts/l2-boot.sh lists for the variant must be reported, once.
# Then the columns side by side with their times. Last line: "N passed,
# N failed, N skipped"; the exit status is non-zero when anything failed.
# Each column is judged on its own (no exceptions list). The in-tree L1
# offers L2 NPT, ours does not (L2 then runs L3 on shadow paging; INFO
# l2-npt in the times says which).
#
# Environment: CHECK_NESTED_SETS (the columns, default "ours intree";
# CHECK_NESTED_SETS=intree runs the in-tree column alone),
# CHECK_NESTED_PARAMS (the columns' RKVM_MODULE_PARAMS, default
# kvm-amd.ko=nested=1), CHECK_NESTED_TIMEOUT (s per test VM, default 600),
# and scripts/l2-boot.sh's L2_NESTED_CPU, L2_NESTED_PARAMS,
# L2_BOOT_TIMEOUT, L2_CMD_TIMEOUT.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
# shellcheck disable=SC1091
. ./config.mak
out=$here/build/check-nested
rm -rf "$out"
mkdir -p "$out"
# shellcheck disable=SC2034 # t0: the start, for check-lib.sh (step, summary)
t0=$(date +%s)
# shellcheck source=scripts/check-lib.sh disable=SC1091
. "$here/scripts/check-lib.sh"
sets=${CHECK_NESTED_SETS:-ours intree}
params=${CHECK_NESTED_PARAMS:-kvm-amd.ko=nested=1}
tmo=${CHECK_NESTED_TIMEOUT:-600}
l2cpu=${L2_NESTED_CPU:-qemu64,+svm,+npt}

declare -A st=() vm_secs=()
rows=()

# info SET KEY: the value of scripts/l2-boot.sh's "INFO l2/nested/KEY" line.
info() {
	sed -n "s|^INFO l2/nested/$2 ||p" "$out/$1/l2-results.txt" 2>/dev/null | head -n 1
}

# column SET: one test VM; its rows, renamed l2/nested/ROW -> nested/SET/ROW.
column() {
	local set=$1 d=$out/$1 s rc=0 line state rest name w r n
	local -A got=()
	step "nested: $set modules with $params (L1: QEMU TCG -cpu EPYC,+svm,+npt; L2: QEMU -accel kvm -cpu $l2cpu; L3 on L2's in-tree KVM)"
	s=$(date +%s)
	RKVM_MODULE_PARAMS=$params L2_VARIANTS=nested scripts/vm.sh l2 "$set" "$d" "$tmo" > "$d.console.log" 2>&1 || rc=$?
	vm_secs[$set]=$(($(date +%s) - s))
	if [ $rc = 0 ]; then
		pass "nested/$set/vm-boot-and-finish"
	else
		tail -n 40 "$d.console.log"
		fail "nested/$set/vm-boot-and-finish" "scripts/vm.sh: $(status_text $rc); see $d.console.log"
	fi
	proc_row "nested/$set/l2-ran" "$d/l2.rc" "0 1" scripts/l2-boot.sh "$d/l2.log"
	while IFS= read -r line; do
		state=${line%% *}
		case $state in PASS|FAIL|SKIP) ;; *) continue ;; esac
		rest=${line#* }
		name=${rest%%: *}
		w=
		[ "$name" = "$rest" ] || w=${rest#*: }
		r=${name#l2/nested/}
		n=nested/$set/$r
		if [ "$name" = "$r" ]; then
			fail "nested/$set/$name" "$state, but not a row of variant nested"
			continue
		elif [ -n "${got[$n]:-}" ]; then
			fail "$n" "reported twice (${got[$n]}, then $state)"
			continue
		fi
		got[$n]=$state
		st[$set|$r]=$state
		case $state in
		PASS) pass "$n" ;;
		FAIL) fail "$n" "$w" ;;
		SKIP) if [ -n "$w" ]; then skip "$n" "$w"; else fail "$n" "SKIP without a reason"; fi ;;
		esac
	done < <(cat "$d/l2-results.txt" 2>/dev/null)
	for name in "${rows[@]}"; do
		[ -n "${got[nested/$set/$name]:-}" ] ||
			fail "nested/$set/$name" "not reported (the run ended before it; see $d/l2.log, $d.console.log)"
	done
	kernel_log "nested/$set/l1-kernel-log-clean" "$d/dmesg.txt"
	echo "($set: ${vm_secs[$set]} s; logs: $d.console.log, $d/l2.log, $d/l2-nested.console.log)"
}

step "build: modules"
modules_ok=
build_step build/modules "$out/build.log" make -s modules && modules_ok=1

step "build: L2 guest with the L3 payload (scripts/l2-initramfs.sh --nested)"
l2_ok=
build_step build/l2-initramfs "$out/l2-initramfs.log" scripts/l2-initramfs.sh --nested && l2_ok=1
tail -n 1 "$out/l2-initramfs.log"

# The manifest: the rows of variant nested.
while read -r _ name; do
	rows+=("${name#l2/nested/}")
done < <(L2_VARIANTS=nested scripts/l2-boot.sh list)
[ ${#rows[@]} -gt 0 ] || fail manifest/nested "scripts/l2-boot.sh list: no rows for variant nested"

for set in $sets; do
	case $set in
	ours|intree) ;;
	*) fail "nested/$set" "unknown column in CHECK_NESTED_SETS (ours, intree)"; continue ;;
	esac
	if [ -z "$modules_ok" ] || [ -z "$l2_ok" ]; then
		step "nested: $set modules"
		skip "nested/$set" "not run: build/modules or build/l2-initramfs failed (counted above)"
		continue
	fi
	column "$set"
done

step "nested SVM side by side (L3 on L2's in-tree KVM on L1's nested SVM)"
printf '%-34s' row
for set in $sets; do printf ' %-8s' "$set"; done
echo
for name in "${rows[@]}"; do
	printf '%-34s' "$name"
	for set in $sets; do printf ' %-8s' "${st[$set|$name]:--}"; done
	echo
done
echo
echo "times (s; L1 wall time under TCG, report only):"
printf '  %-40s' ''
for set in $sets; do printf ' %-8s' "$set"; done
echo
for k in vm l2-boot-seconds l3-load-seconds l3-run-seconds migrate-seconds seconds; do
	case $k in
	vm) printf '  %-40s' 'test VM, start to poweroff' ;;
	l2-boot-seconds) printf '  %-40s' 'L2: QEMU start to shell' ;;
	l3-load-seconds) printf '  %-40s' 'L2: insmod kvm, kvm-amd (L2 time)' ;;
	l3-run-seconds) printf '  %-40s' 'L3: l3run, the three rows' ;;
	migrate-seconds) printf '  %-40s' 'migration leg: L3 loop, save, restore' ;;
	seconds) printf '  %-40s' 'L2 session, start to poweroff' ;;
	esac
	for set in $sets; do
		if [ $k = vm ]; then
			line=${vm_secs[$set]:-}
		else
			line=$(info "$set" "$k")
		fi
		line=${line%% *}
		printf ' %-8s' "${line:--}"
	done
	echo
done
for set in $sets; do
	echo "  $set:"
	for k in l1-kvm-amd l2-npt l2-kvm-amd l3-load-seconds l3-pio l3-mmio l3-hlt; do
		line=$(info "$set" "$k")
		[ -z "$line" ] || echo "    $k: $line"
	done
	# The migration leg's (one line per save and restore).
	sed -n 's#^INFO l2/nested/\(l3-loop-[^ ]*\|migrate-[^ ]*\|l3-after-restore[^ ]*\) #    \1: #p' \
		"$out/$set/l2-results.txt" 2>/dev/null | grep -v '^    migrate-seconds: '
done

summary check-nested
