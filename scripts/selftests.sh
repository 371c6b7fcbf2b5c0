#!/bin/bash
# Upstream's KVM selftests (tools/testing/selftests/kvm of the 7.3 source
# the test kernel is built from) against both module sets, row by row:
# `make check-selftests`. Too slow for `make check` under TCG (about 10
# minutes for both columns on 2 cores, plus about 5 for the first build),
# hence a target of its own.
#
#   scripts/selftests.sh            build (cached), run in the test VM with
#                                   ours and with the in-tree modules, compare.
#                                   Last line: "N passed, N failed, N skipped"
#                                   (ours); exit status 1 when ours does not
#                                   PASS where in-tree PASSes and
#                                   tests/selftests-exceptions.txt does not
#                                   list the test with its reason.
#   scripts/selftests.sh build      only the build (build/selftests/kvm).
#   scripts/selftests.sh vm         in the VM (scripts/vm.sh exec, modules
#                                   loaded): run the list, results to
#                                   /mnt/selftests-results.txt.
#
# The list: tests/selftests.txt (one test a line, path below
# tools/testing/selftests/kvm; '#' comments). Each runs with a time limit
# (SELFTESTS_TIMEOUT, default 30 s): exit 0 PASS, 4 (KSFT_SKIP) SKIP with
# its last output line, anything else FAIL with its exit status and last
# line. Logs: build/selftests/run-<set>/<test>.log.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
# shellcheck disable=SC1091
. ./config.mak
bdir=$here/build/selftests
list=$here/tests/selftests.txt
exc=$here/tests/selftests-exceptions.txt
tmo=${SELFTESTS_TIMEOUT:-30}

# SELFTESTS_FILTER (an extended regex without spaces; in the VM from
# rkvm.filter): only the tests of the list that match it. SELFTESTS_SETS:
# the columns to run (default "ours intree").
filter=${SELFTESTS_FILTER:-$(sed -n 's/.*rkvm\.filter=\([^ ]*\).*/\1/p' /proc/cmdline 2>/dev/null)}
# tests: the list without comments.
tests() { sed 's/#.*//; s/[[:space:]]*$//; /^$/d' "$list" | grep -E -- "${filter:-.}"; }

build() {
	local key
	key=$(basename "$KERNELSRC")
	if [ -f "$bdir/.built" ] && [ "$(cat "$bdir/.built")" = "$key" ]; then
		echo "selftests: built for $key (build/selftests)"
		return 0
	fi
	rm -rf "$bdir"
	mkdir -p "$bdir"
	# uapi headers into our build directory (O=: the cached source tree
	# stays clean), then the selftests with OUTPUT= there too.
	echo "selftests: make headers ($KERNELSRC, O=build/selftests/hdr)"
	make -s -C "$KERNELSRC" O="$bdir/hdr" headers > "$bdir/headers.log" 2>&1 ||
		{ tail -n 20 "$bdir/headers.log"; return 1; }
	echo "selftests: make -C tools/testing/selftests/kvm (OUTPUT=build/selftests/kvm)"
	make -C "$KERNELSRC/tools/testing/selftests/kvm" OUTPUT="$bdir/kvm" ARCH=x86_64 \
		KHDR_INCLUDES="-isystem $bdir/hdr/usr/include" -j"$(nproc)" > "$bdir/build.log" 2>&1 ||
		{ tail -n 20 "$bdir/build.log"; return 1; }
	echo "$key" > "$bdir/.built"
}

# vm: inside the test VM, modules loaded (tests/vm/init.sh exec mode).
vm() {
	local set out=/mnt t log rc t0 last
	set=$(sed -n 's/.*rkvm\.set=\([^ ]*\).*/\1/p' /proc/cmdline)
	# What a normal system offers and the selftests' helpers use.
	[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
	[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
	[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
	[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr
	mkdir -p "$out/selftests"
	: > "$out/selftests-results.txt"
	for t in $(tests); do
		log=$out/selftests/${t//\//_}.log
		t0=$(date +%s.%N)
		rc=0
		(cd "$bdir/kvm/$(dirname "$t")" && timeout -k 5 "$tmo" "./$(basename "$t")") > "$log" 2>&1 < /dev/null || rc=$?
		last=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | tr -d '\r' | cut -c1-160)
		case $rc in
		0) echo "PASS selftests/$t" ;;
		4) echo "SKIP selftests/$t: ${last:-exit 4}" ;;
		124) echo "FAIL selftests/$t: timed out after ${tmo}s; ${last}" ;;
		*) echo "FAIL selftests/$t: exit $rc; ${last}" ;;
		esac >> "$out/selftests-results.txt"
		echo "INFO selftests/$t seconds $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" \
			>> "$out/selftests-results.txt"
	done
	echo "selftests ($set): $(grep -c '^PASS' "$out/selftests-results.txt") passed," \
		"$(grep -c '^FAIL' "$out/selftests-results.txt") failed, $(grep -c '^SKIP' "$out/selftests-results.txt") skipped"
}

# compare: ours against in-tree, row by row.
compare() {
	local o=$bdir/run-ours/selftests-results.txt i=$bdir/run-intree/selftests-results.txt
	local t so si why bad=0 p=0 f=0 s=0
	declare -A ex=()
	if [ -f "$exc" ]; then
		while read -r t why; do
			ex[$t]=$why
		done < <(sed '/^#/d; /^[[:space:]]*$/d' "$exc")
	fi
	printf '%-52s %-6s %-6s\n' test ours in-tree
	for t in $(tests); do
		so=$(grep -m1 -E "^(PASS|FAIL|SKIP) selftests/$t(:|$)" "$o" 2>/dev/null | cut -d' ' -f1)
		si=$(grep -m1 -E "^(PASS|FAIL|SKIP) selftests/$t(:|$)" "$i" 2>/dev/null | cut -d' ' -f1)
		printf '%-52s %-6s %-6s' "$t" "${so:--}" "${si:--}"
		case ${so:-} in PASS) p=$((p + 1)) ;; SKIP) s=$((s + 1)) ;; *) f=$((f + 1)) ;; esac
		if [ "${si:-}" = PASS ] && [ "${so:-}" != PASS ]; then
			if [ -n "${ex[$t]:-}" ]; then
				printf '  exception: %s' "${ex[$t]}"
			else
				printf '  REGRESSION: %s' "$(grep -m1 -E "^(FAIL|SKIP) selftests/$t:" "$o" | cut -d' ' -f3-)"
				bad=$((bad + 1))
			fi
		elif [ -n "${ex[$t]:-}" ] && [ "${so:-}" = PASS ]; then
			printf '  stale exception (ours passes)'
			bad=$((bad + 1))
		fi
		echo
	done
	echo
	for set in ours intree; do
		local r=$bdir/run-$set/selftests-results.txt
		echo "$set: $(grep -c '^PASS' "$r" 2>/dev/null) passed, $(grep -c '^FAIL' "$r" 2>/dev/null) failed, $(grep -c '^SKIP' "$r" 2>/dev/null) skipped"
	done
	echo "rows where in-tree passes and ours does not, unexplained or stale: $bad"
	echo "$p passed, $f failed, $s skipped"
	[ "$bad" = 0 ]
}

mode=${1:-all}
# Started by tests/vm/init.sh's exec mode (RKVM_CMD takes no arguments).
[ $# = 0 ] && grep -q 'rkvm\.mode=exec' /proc/cmdline && mode=vm
case $mode in
build) build ;;
vm) vm ;;
compare) compare ;;
all)
	build || exit 1
	for set in ${SELFTESTS_SETS:-ours intree}; do
		echo "selftests: $set modules (scripts/vm.sh exec; logs in build/selftests/run-$set)"
		RKVM_CMD="$here/scripts/selftests.sh" RKVM_TEST_FILTER=$filter scripts/vm.sh exec "$set" "$bdir/run-$set" \
			"${SELFTESTS_VM_TIMEOUT:-2400}" > "$bdir/run-$set.console.log" 2>&1 ||
			echo "selftests: the $set VM did not finish; see $bdir/run-$set.console.log"
	done
	compare
	;;
*) echo "usage: $0 [build|vm|compare]" >&2; exit 2 ;;
esac
