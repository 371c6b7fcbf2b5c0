#!/bin/bash
# Style rows of `make check`: rustfmt, the kernel's clippy build of our
# crates (with its lints, undocumented_unsafe_blocks among them), the
# unsafe budget of the core, one definition per constant, and a stack
# budget per function.
# Prints one PASS/FAIL line per row; details go to OUTDIR.
#
#   scripts/style.sh OUTDIR
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1
# shellcheck disable=SC1091
. ./config.mak
out=${1:-build/style}
mkdir -p "$out"

# The tree's files matching git pathspec globs: git's list in a checkout;
# in a copy that is not its own checkout (check-debug's mirror under
# build/debug/tree, inside the clone's ignored build/), the files on disk.
checkout() { [ "$(git rev-parse --show-toplevel 2> /dev/null)" = "$here" ]; }
tracked() {
	if checkout; then
		git ls-files "$@"
	else
		local g
		for g in "$@"; do
			find . \( -path ./build -o -path ./target -o -path ./tests/host/target \) -prune \
				-o -type f -path "./$g" -print
		done | sed 's|^\./||' | sort -u
	fi
}

# Rust sources of the modules (not generated, not tests).
sources() {
	tracked '*.rs' | grep -v -e '^tests/' -e '_generated\.rs$'
}

# rustfmt --check with the kernel's .rustfmt.toml, over every source.
row_rustfmt() {
	if sources | xargs rustfmt --check --edition 2021 > "$out/rustfmt.log" 2>&1; then
		echo "PASS style/rustfmt"
	else
		echo "FAIL style/rustfmt: $(grep -c '^Diff in' "$out/rustfmt.log") hunks; see $out/rustfmt.log"
	fi
}

# The kernel's clippy build (CLIPPY=1) of the three crates: any warning
# fails (the kernel's flags warn on undocumented unsafe blocks). clippy-
# driver compiles like rustc, so its build is the one the tests use. The
# result is a function of the sources and the toolchain: when neither
# changed since the last clean run (build/clippy-clean.key), it is not
# redone (a warm `make check` then costs no extra compile).
row_clippy() {
	local driver=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
	if [ ! -x "$driver" ]; then
		echo "FAIL style/clippy: $driver missing (package rust-web-clippy)"
		return
	fi
	local key keyfile=build/clippy-clean.key
	key=$({
		if checkout; then
			git ls-files -co --exclude-standard Kbuild rust x86 virt pure include usr
		else
			find Kbuild rust x86 virt pure include usr -type f
		fi | grep -E '\.(rs|c|h|S)$|Kbuild$|_parameters$' | sort | xargs sha256sum
		"$driver" --version
		echo "$KERNELDIR"
	} 2> /dev/null | sha256sum | cut -d' ' -f1)
	if [ -f "$keyfile" ] && [ "$(cat "$keyfile")" = "$key" ]; then
		echo "PASS style/clippy (sources unchanged since the last clean run)"
		return
	fi
	rm -f x86/kvm_main.o x86/svm/kvm_amd.o x86/vmx/kvm_intel.o
	make -s -C "$KERNELDIR" M="$here" LLVM="$LLVM" RUSTC="$RUSTC" RUST_LIB_SRC="$RUST_LIB_SRC" \
		BINDGEN="$BINDGEN" CLIPPY=1 CLIPPY_DRIVER="$driver" modules > "$out/clippy.log" 2>&1
	local rc=$? n
	n=$(grep -c '^warning' "$out/clippy.log")
	if [ "$rc" = 0 ] && [ "$n" = 0 ]; then
		mkdir -p build && echo "$key" > "$keyfile"
		echo "PASS style/clippy"
	else
		rm -f "$keyfile"
		echo "FAIL style/clippy: exit $rc, $n warnings; see $out/clippy.log"
	fi
}

# At most 10 unsafe blocks in the generic + x86-common core (everything
# but rust/, the vendors, the pure components and tests).
row_unsafe() {
	local f n total=0
	: > "$out/unsafe.txt"
	for f in $(tracked 'virt/*.rs' 'x86/*.rs' | grep -v -e '^x86/svm/' -e '^x86/vmx/'); do
		n=$(grep -c 'unsafe {' "$f")
		[ "$n" -gt 0 ] && echo "$n $f" >> "$out/unsafe.txt"
		total=$((total + n))
	done
	local pure rust vendor
	pure=$(tracked 'pure/*.rs' | xargs cat | grep -cE '\bunsafe +(\{|fn|impl|trait)')
	rust=$(tracked 'rust/*.rs' | xargs cat | grep -c 'unsafe {')
	vendor=$(tracked 'x86/svm/*.rs' 'x86/vmx/*.rs' | xargs cat | grep -c 'unsafe {')
	echo "unsafe blocks: core $total, pure $pure, rust/ $rust, vendors $vendor" >> "$out/unsafe.txt"
	if [ "$total" -le 10 ] && [ "$pure" = 0 ]; then
		echo "PASS style/unsafe-in-core ($total in the core, $pure in pure/)"
	else
		echo "FAIL style/unsafe-in-core: $total in the core (max 10), $pure in pure/ (max 0); see $out/unsafe.txt"
	fi
}

# One definition per constant: no SCREAMING_CASE `const` is defined twice
# with the same name and value (a name reused for another value in another
# namespace, e.g. an intercept bit and an exit code, is not a duplicate).
row_constants() {
	sources | python3 -c '
import re, sys
seen = {}
pat = re.compile(r"^\s*(?:pub(?:\([a-z]+\))? )?const ([A-Z][A-Z0-9_]+): [^=]+= ([^;]+);")
for path in sys.stdin.read().split():
    for n, line in enumerate(open(path), 1):
        m = pat.match(line)
        if m:
            key = (m.group(1), re.sub(r"\s+", "", m.group(2)))
            seen.setdefault(key, []).append(f"{path}:{n}")
total = sum(len(v) for v in seen.values())
print(f"# {total} constants", file=sys.stderr)
for (name, value), where in sorted(seen.items()):
    if len(where) > 1:
        print(name, "=", value, ":", " ".join(where))
' > "$out/constants-twice.txt" 2> "$out/constants.txt"
	if grep -qx '# 0 constants' "$out/constants.txt"; then
		echo "FAIL style/constants-defined-once: no sources found"
	elif [ -s "$out/constants-twice.txt" ]; then
		echo "FAIL style/constants-defined-once: $(wc -l < "$out/constants-twice.txt") defined twice; see $out/constants-twice.txt"
	else
		echo "PASS style/constants-defined-once ($(sed 's/# //' "$out/constants.txt"))"
	fi
}

# No function of the modules reserves more than 4 KiB of the 16 KiB kernel
# stack (a 12 KiB frame once overflowed it: every arm of an ioctl
# dispatcher inlined, each with its own locals).
row_stack() {
	local max=4096
	objdump -d --no-show-raw-insn x86/kvm.ko x86/kvm-amd.ko x86/kvm-intel.ko 2> /dev/null |
		perl -ne 'if (/^[0-9a-f]+ <(.*)>:$/) { $fn = $1 }
			if (/sub\s+\$0x([0-9a-f]+),%rsp/) { print hex($1), " $fn\n" }' |
		sort -rn | head -n 20 > "$out/stack-frames.txt"
	local top
	top=$(head -n 1 "$out/stack-frames.txt" | cut -d' ' -f1)
	if [ -z "$top" ]; then
		echo "FAIL style/stack-frames: no frames found (modules not built?); see $out/stack-frames.txt"
	elif [ "$top" -le "$max" ]; then
		echo "PASS style/stack-frames (largest $top bytes, max $max)"
	else
		echo "FAIL style/stack-frames: $(awk -v m=$max '$1 > m' "$out/stack-frames.txt" | wc -l) functions over $max bytes; see $out/stack-frames.txt"
	fi
}

row_rustfmt
row_clippy
row_unsafe
row_constants
row_stack
