#!/bin/bash
# The peer suite: rust-vmm's kvm-ioctls crate (crates.io 0.25.1, the version
# tests/vm/vmtest uses, with its kvm-bindings) runs its own test suite
# against our modules and the in-tree ones.
#
#   scripts/peer.sh            on the host, before the VMs boot: build the
#                              crate's test binaries into build/peer/target
#                              and list them in build/peer/tests.list
#                              ("<name> <absolute path>" per line)
#   scripts/peer.sh vm OUT MODULE-ARGS...
#                              inside the test VM (tests/vm/init.sh, check
#                              mode, after rkvm-vmtest): load the modules
#                              (MODULE-ARGS as passed to rkvm-vmtest:
#                              --pre KO --kvm KO --amd KO --intel KO), run
#                              every test of every listed binary on its own
#                              (--exact --test-threads=1, 30 s limit each, so
#                              a hung KVM_RUN costs one test, not the suite;
#                              after 3 timeouts the rest count as failed
#                              without running)
#                              and write OUT/peer-<name>.txt (all output,
#                              then "PEER-FAIL <test>" lines) and
#                              OUT/peer-summary.txt, one line per binary:
#                                peer <name>: N passed, M failed, K ignored
#
# Doctests are not run (they need rustdoc in the VM); the unit tests of
# src/ are the crate's whole suite otherwise (it has no tests/ directory).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
crate=kvm-ioctls
version=0.25.1
peer=$here/build/peer

build() {
	export PATH=$HOME/.cargo/bin:$PATH
	mkdir -p "$peer"
	rm -f "$peer/tests.list"
	# tests/vm/vmtest's Cargo.lock pins kvm-ioctls 0.25.1: fetching its
	# dependencies puts the crate's source into the cargo registry.
	if ! (cd "$here/tests/vm/vmtest" && cargo fetch --locked --quiet) > "$peer/fetch.log" 2>&1; then
		echo "peer: cargo fetch failed (offline?); trying the local registry" >&2
	fi
	src=
	for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate-$version"; do
		[ -f "$d/Cargo.toml" ] && src=$d
	done
	if [ -z "$src" ]; then
		echo "peer: $crate-$version not found in the cargo registry (see $peer/fetch.log)" >&2
		return 1
	fi
	# Build from a copy: the registry's sources are shared and read-only.
	rm -rf "$peer/src"
	mkdir -p "$peer/src"
	cp -r "$src" "$peer/src/$crate"
	if ! (cd "$peer/src/$crate" && CARGO_TARGET_DIR=$peer/target \
		cargo test --no-run --locked -j "${RKVM_JOBS:-2}" --message-format=json) \
		> "$peer/build.json" 2> "$peer/build.log"; then
		# Without Cargo.lock's exact versions (e.g. yanked), resolve afresh.
		if ! (cd "$peer/src/$crate" && CARGO_TARGET_DIR=$peer/target \
			cargo test --no-run -j "${RKVM_JOBS:-2}" --message-format=json) \
			> "$peer/build.json" 2> "$peer/build.log"; then
			tail -n 20 "$peer/build.log" >&2
			echo "peer: building the $crate tests failed (see $peer/build.log)" >&2
			return 1
		fi
	fi
	# One line per test binary (artifacts with an executable and profile.test).
	grep '"profile":{[^}]*"test":true' "$peer/build.json" |
		sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | sort -u |
		while read -r exe; do
			name=$(basename "$exe" | sed 's/-[0-9a-f]*$//; s/_/-/g')
			echo "$name $exe"
		done > "$peer/tests.list.new"
	if [ ! -s "$peer/tests.list.new" ]; then
		echo "peer: no test binaries in $peer/build.json" >&2
		return 1
	fi
	mv "$peer/tests.list.new" "$peer/tests.list"
	echo "peer: $crate $version test binaries listed in $peer/tests.list:"
	sed 's/^/  /' "$peer/tests.list"
}

# Inside the VM.
vm() {
	out=$1
	shift
	# Load what rkvm-vmtest loads (it unloads everything at its end).
	while [ $# -ge 2 ]; do
		case $1 in
		--pre|--kvm|--amd)
			m=$(basename "$2" .ko | tr - _)
			[ -d "/sys/module/$m" ] || insmod "$2" || echo "peer: insmod $2 failed" >&2
			;;
		esac
		shift 2
	done
	udevadm settle --timeout=10 2>/dev/null
	: > "$out/peer-summary.txt"
	while read -r name exe; do
		[ -n "$name" ] || continue
		log=$out/peer-$name.txt
		: > "$log"
		p=0 f=0 i=0 timeouts=0
		failed=
		tests=$("$exe" --list --format terse 2>>"$log" | sed -n 's/: test$//p')
		# Fast path: the whole binary once (one process start instead of
		# one per test). If it does not finish (a hang, a crash), every
		# test runs on its own below, with its own timeout.
		res=$(cd /tmp && timeout -k 5 120 "$exe" --test-threads=1 2>&1)
		if printf '%s\n' "$res" | grep -q '^test result: '; then
			printf '%s\n' "$res" >> "$log"
			p=$(printf '%s\n' "$res" | grep -c '^test .* \.\.\. ok$')
			i=$(printf '%s\n' "$res" | grep -c '^test .* \.\.\. ignored')
			failed=$(printf '%s\n' "$res" | sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p')
			f=$(printf '%s\n' "$failed" | grep -c .)
			tests=
		else
			printf '%s\n' "$res" | tail -n 20 >> "$log"
			echo "peer: one-process run did not finish; running tests one by one" >> "$log"
		fi
		for t in $tests; do
			if [ $timeouts -ge 3 ]; then
				echo "test $t ... not run (3 tests timed out)" >> "$log"
				f=$((f + 1))
				failed="$failed $t"
				continue
			fi
			res=$(cd /tmp && timeout -k 5 30 "$exe" --exact --test-threads=1 "$t" 2>&1)
			rc=$?
			printf '%s\n' "$res" >> "$log"
			if printf '%s\n' "$res" | grep -q '^test result: .* 1 passed'; then
				p=$((p + 1))
			elif printf '%s\n' "$res" | grep -q '^test result: .* 1 ignored'; then
				i=$((i + 1))
			else
				f=$((f + 1))
				if [ $rc = 124 ] || [ $rc = 137 ]; then
					echo "test $t ... timed out after 30 s" >> "$log"
					timeouts=$((timeouts + 1))
				fi
				failed="$failed $t"
			fi
		done
		for t in $failed; do echo "PEER-FAIL $t" >> "$log"; done
		echo "peer $name: $p passed, $f failed, $i ignored" >> "$out/peer-summary.txt"
	done < "$peer/tests.list"
	rmmod kvm_amd kvm 2>/dev/null
	rmmod irqbypass 2>/dev/null
	true
}

case ${1:-build} in
build) build ;;
vm) shift; vm "$@" ;;
*) echo "usage: $0 [build] | vm OUTDIR MODULE-ARGS..." >&2; exit 2 ;;
esac
