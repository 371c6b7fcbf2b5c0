#!/bin/bash
# `make check-debug`: the in-VM suites (both columns) on the debug kernel
# (config/kernel-debug.fragment: KASAN, lockdep, DEBUG_ATOMIC_SLEEP,
# kmemleak, debug objects, UBSAN, fault injection, hung-task and soft-lockup
# detectors), then the ioctl fuzzer for 10^6 calls per column, fault
# injection and 100 module load/run/unload cycles, then kmemleak. Any
# report or leak attributed to kvm/kvm_amd/kvm_intel fails it.
#
# The release configuration is left alone: the debug kernel is built (once,
# cached like the release one) by scripts/kernel.sh --debug, and everything
# runs in a mirror of this tree, build/debug/tree, whose config.mak names
# the debug kernel. Last line: "N passed, N failed, N skipped".
#
# Environment: CHECK_DEBUG_CALLS (fuzzer calls per column, default 1000000),
# CHECK_DEBUG_FUZZ_SECONDS (time limit per column, default 600; 0: none),
# CHECK_DEBUG_LIFECYCLE (cycles, default 100), CHECK_DEBUG_ONLY=check|fuzz,
# CHECK_DEBUG_FUZZ_ARGS (scripts/fuzz.sh's arguments instead of those),
# CHECK_DEBUG_VMX=1 (the Bochs VMX column too: impractically slow with
# KASAN), L2_VARIANTS (default: "default"), L2_BOOT_TIMEOUT,
# L2_CMD_TIMEOUT (default 900 s each), L2_BUDGET, RKVM_VM_TIMEOUT.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# shellcheck disable=SC1091
. ./config.mak
export PATH=$HOME/.cargo/bin:$PATH
dbg=$here/build/debug
tree=$dbg/tree
mkdir -p "$dbg"
t0=$(date +%s)
passed=0 failed=0 skipped=0
failures=()
step() { echo; echo "== $* == (at +$(( $(date +%s) - t0 )) s)"; }
add_summary() { # the "N passed, N failed[, N skipped]" line of a log
	local l
	l=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
	[ -n "$l" ] || { failed=$((failed + 1)); failures+=("$2: no summary line (see $1)"); return; }
	read -r p _ f _ s _ <<< "${l//,/}"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + ${s:-0}))
	[ "$f" = 0 ] || failures+=("$2: $f failed (see $1)")
}

step "debug kernel (scripts/kernel.sh --debug; cached)"
s=$(date +%s)
kdir=$(RKVM_CACHE=$RKVM_CACHE RUSTC=$RUSTC RUST_LIB_SRC=$RUST_LIB_SRC BINDGEN=$BINDGEN \
	nice -n 10 scripts/kernel.sh --debug 2> "$dbg/kernel.log" | tail -n 1)
if [ ! -f "$kdir/.rkvm-built" ]; then
	tail -n 30 "$dbg/kernel.log"
	echo "check-debug: the debug kernel build failed (see $dbg/kernel.log)"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "$kdir ($(( $(date +%s) - s )) s)"

step "mirror of the tree with the debug kernel: $tree"
mkdir -p "$tree/build"
# Sources (tracked and untracked, not ignored); unchanged files keep their
# mtime, so the module build there stays incremental.
if git rev-parse --git-dir > /dev/null 2>&1; then
	git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$tree" -xf -
else
	tar --exclude=./build --exclude=./target -cf - . | tar -C "$tree" -xf -
fi
sed -e "s|^KERNELDIR=.*|KERNELDIR=$kdir|" \
	-e "s|^KERNELRELEASE=.*|KERNELRELEASE=$(cat "$kdir/include/config/kernel.release")|" \
	-e "s|^KERNEL_VARIANT=.*|KERNEL_VARIANT=debug|" config.mak > "$tree/config.mak"
sed -e "s|^#define RKVM_KERNEL_RELEASE .*|#define RKVM_KERNEL_RELEASE \"$(cat "$kdir/include/config/kernel.release")\"|" \
	include/kvm-kmod-config.h > "$tree/include/kvm-kmod-config.h"
# Userspace builds do not depend on the kernel: share their cargo targets.
mkdir -p build/vmtest build/ioctlfuzz build/peer tests/host/target
for d in build/vmtest build/ioctlfuzz build/peer tests/host/target; do
	[ -L "$tree/$d" ] || { rm -rf "${tree:?}/$d"; ln -s "$here/$d" "$tree/$d"; }
done

if [ "${CHECK_DEBUG_ONLY:-check}" = check ] || [ -z "${CHECK_DEBUG_ONLY:-}" ]; then
	step "make check on the debug kernel (both columns)"
	# KASAN and lockdep make L1 several times slower under TCG: the first
	# full run on a loaded host (2026-12-06) had every L2 boot time out at
	# 120 s on both columns and Bochs not finish the VMX column at all.
	# Here: the SVM columns (npt=1 and npt=0) with the default L2 session
	# and long limits; the VMX column is `make check-vmx`'s (release
	# kernel) only. CHECK_DEBUG_VMX=1 puts it back.
	(cd "$tree" && RKVM_VMX=${CHECK_DEBUG_VMX:-0} L2_VARIANTS=${L2_VARIANTS:-default} \
		L2_BOOT_TIMEOUT=${L2_BOOT_TIMEOUT:-900} L2_CMD_TIMEOUT=${L2_CMD_TIMEOUT:-900} \
		L2_BUDGET=${L2_BUDGET:-3600} RKVM_VM_TIMEOUT=${RKVM_VM_TIMEOUT:-7200} \
		scripts/check.sh) > "$dbg/check.log" 2>&1
	sed -n '/== VM tests side by side ==/,$p' "$dbg/check.log"
	add_summary "$dbg/check.log" "check on the debug kernel"
	step "kmemleak after the in-VM suites"
	if scripts/kmemleak-check.sh "$tree"/build/check/vm-*/kmemleak.txt; then
		if ls "$tree"/build/check/vm-*/kmemleak.txt > /dev/null 2>&1; then
			echo "PASS check-debug/no-kmemleak-in-kvm"
			passed=$((passed + 1))
		else
			echo "FAIL check-debug/no-kmemleak-in-kvm: no kmemleak report written"
			failed=$((failed + 1)); failures+=("kmemleak: no report")
		fi
	else
		echo "FAIL check-debug/no-kmemleak-in-kvm"
		failed=$((failed + 1)); failures+=("kmemleak: leaks in kvm after the in-VM suites")
	fi
fi

if [ "${CHECK_DEBUG_ONLY:-fuzz}" = fuzz ] || [ -z "${CHECK_DEBUG_ONLY:-}" ]; then
	# At most CHECK_DEBUG_CALLS calls or CHECK_DEBUG_FUZZ_SECONDS seconds per
	# column, whichever comes first (0 seconds: the calls, however long).
	# Under TCG with KASAN a call costs milliseconds (VM creation and fork
	# far more; the in-tree module is the slower one): see the stats rows.
	calls=${CHECK_DEBUG_CALLS:-1000000} secs=${CHECK_DEBUG_FUZZ_SECONDS:-600}
	step "ioctl fuzzer ($calls calls or $secs s per column), fault injection, ${CHECK_DEBUG_LIFECYCLE:-100} lifecycles"
	# shellcheck disable=SC2086
	(cd "$tree" && scripts/fuzz.sh ${CHECK_DEBUG_FUZZ_ARGS:---calls $calls --seconds $secs --faults --lifecycle ${CHECK_DEBUG_LIFECYCLE:-100}} \
		--out "$dbg/fuzz") 2>&1 | tee "$dbg/fuzz.log" | grep -Ev '^(PASS|  (ours|intree): INFO)'
	add_summary "$dbg/fuzz.log" "fuzzer, fault injection, lifecycle"
fi

echo
echo "check-debug took $(( $(date +%s) - t0 )) s; logs in $dbg"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
