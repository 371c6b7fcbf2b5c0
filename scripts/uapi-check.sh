#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Check that rkvm's userspace headers (usr/include/linux/kvm.h and
# usr/include/asm/kvm.h) have exactly the ABI of a kernel's KVM uapi headers
# on x86-64.
#
#   scripts/uapi-check.sh [--make-headers] [-v] KERNEL_DIR
#
# KERNEL_DIR is one of
#   - a kernel source tree (has include/uapi/linux/kvm.h).  By default the
#     uapi headers are prepared in a temporary directory the way
#     scripts/headers_install.sh does it (same sed edits; __KERNEL__ parts
#     are simply not compiled), which takes about a second.  With
#     --make-headers, `make O=<tmp> ARCH=x86 headers` runs instead (about 20
#     seconds).  Nothing is ever written into KERNEL_DIR;
#   - a kernel build directory: its usr/include if it has one, else the
#     source tree its "source" link points to;
#   - an installed header tree (INSTALL_HDR_PATH or INSTALL_HDR_PATH/include).
#
# What is compared, always on the rkvm side against the kernel side:
#   - every struct/union our headers define: sizeof, _Alignof, and the full
#     member layout as pahole prints it from DWARF (type, name, offset and
#     size of every member, bit offsets of bit-fields, nested anonymous
#     structs/unions and arrays of them expanded in place; named member
#     types are checked as structs of their own);
#   - every object-like macro our headers define that is an integer constant
#     expression (ioctl numbers, capabilities, exit reasons, flags, ...):
#     value, size and signedness of its type; every enumerator likewise;
#     every function-like macro evaluated on three argument vectors; macros
#     that are not integer expressions (empty macros, PAGE_SIZE users) by
#     their normalized replacement text;
#   - anything we define that the kernel does not is an error.
# What the kernel defines and we do not is listed (not an error), split into
# x86-relevant and other-architecture names.
#
# The last line is the summary; the exit status is non-zero on any mismatch.
# Environment: CC (default cc), PAHOLE (default pahole).

set -eu

me=uapi-check
make_headers=0
verbose=0
while [ $# -gt 0 ]; do
	case $1 in
	--make-headers) make_headers=1; shift ;;
	-v|--verbose) verbose=1; shift ;;
	-h|--help) sed -n '4,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "$me: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--make-headers] [-v] KERNEL_DIR" >&2; exit 2; }

kdir=$(cd "$1" && pwd) || exit 2
repo=$(cd "$(dirname "$0")/.." && pwd)
ours=$repo/usr/include
CC=${CC:-cc}
PAHOLE=${PAHOLE:-pahole}

for t in "$CC" "$PAHOLE" awk sed sort; do
	command -v "$t" >/dev/null 2>&1 || { echo "$me: $t not found" >&2; exit 2; }
done
[ -f "$ours/linux/kvm.h" ] && [ -f "$ours/asm/kvm.h" ] ||
	{ echo "$me: $ours/{linux,asm}/kvm.h missing" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/uapi-check.XXXXXX")
[ -n "${UAPI_CHECK_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT INT TERM

# ---------------------------------------------------------------------------
# The kernel's userspace headers
# ---------------------------------------------------------------------------

# Like scripts/headers_install.sh, for a whole source tree, into $1.
prepare_uapi() {
	dst=$1
	mkdir -p "$dst/asm"
	cp -R "$kdir/include/uapi/." "$dst/"
	cp -R "$kdir/arch/x86/include/uapi/asm/." "$dst/asm/"
	# asm/ wrappers Kbuild generates for headers x86 takes from asm-generic
	for h in $(sed -n 's/^mandatory-y[[:space:]]*+=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
			"$kdir/include/uapi/asm-generic/Kbuild" \
			"$kdir/arch/x86/include/uapi/asm/Kbuild" 2>/dev/null) \
		 $(sed -n 's/^generic-y[[:space:]]*+=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
			"$kdir/arch/x86/include/uapi/asm/Kbuild" 2>/dev/null); do
		[ -e "$dst/asm/$h" ] || [ ! -e "$dst/asm-generic/$h" ] ||
			echo "#include <asm-generic/$h>" > "$dst/asm/$h"
	done
	find "$dst" -name '*.h' -type f -exec sed -E -i \
		-e 's/([[:space:](])(__user|__force|__iomem)[[:space:]]/\1/g' \
		-e 's/__attribute_const__([[:space:]]|$)/\1/g' \
		-e 's@^#include <linux/compiler.h>@@' \
		-e 's/(^|[^a-zA-Z0-9])__packed([^a-zA-Z0-9_]|$)/\1__attribute__((packed))\2/g' \
		-e 's/(^|[[:space:](])(inline|asm|volatile)([[:space:](]|$)/\1__\2__\3/g' \
		-e 's@#(ifndef|define|endif[[:space:]]*/[*])[[:space:]]*_UAPI@#\1 @' \
		-e 's/__ASSEMBLY__/__ASSEMBLER__/g' {} +
}

if [ -f "$kdir/linux/kvm.h" ] && [ -f "$kdir/asm/kvm.h" ]; then
	kinc=$kdir
elif [ -f "$kdir/include/linux/kvm.h" ] && [ -f "$kdir/include/asm/kvm.h" ]; then
	kinc=$kdir/include
elif [ -f "$kdir/usr/include/linux/kvm.h" ] && [ -f "$kdir/usr/include/asm/kvm.h" ]; then
	kinc=$kdir/usr/include
elif [ -f "$kdir/include/uapi/linux/kvm.h" ] || [ -f "$kdir/source/include/uapi/linux/kvm.h" ]; then
	# a build directory made with O= links its source tree as "source"
	[ -f "$kdir/include/uapi/linux/kvm.h" ] || kdir=$(cd "$kdir/source" && pwd)
	if [ $make_headers = 1 ]; then
		make -s -C "$kdir" O="$work/o" ARCH=x86 headers >"$work/make.log" 2>&1 ||
			{ cat "$work/make.log" >&2; echo "$me: make headers failed" >&2; exit 2; }
		kinc=$work/o/usr/include
	else
		prepare_uapi "$work/kinc"
		kinc=$work/kinc
	fi
else
	echo "$me: no KVM uapi headers found under $kdir" >&2
	exit 2
fi

# -D__EXPORTED_HEADERS__ as headers_install's unifdef step does (it only
# silences the raw-tree warning in linux/types.h).
cflags="-D__EXPORTED_HEADERS__ -w"
inc_ours="-I$ours -I$kinc"
inc_kern="-I$kinc"

# ---------------------------------------------------------------------------
# What each side defines: macros, enumerators, structs/unions
# ---------------------------------------------------------------------------

# defs SIDE INCLUDES: one line per definition found in that side's two
# headers:  O<TAB>name<TAB>body | F<TAB>name<TAB>params<TAB>body |
#           E<TAB>name | R<TAB>struct|union<TAB>name
defs() {
	side=$1; shift
	printf '#include <linux/kvm.h>\n' > "$work/defs-$side.c"
	$CC -E -dD $cflags "$@" "$work/defs-$side.c" > "$work/defs-$side.i"
	awk -v side="$side" -v pfx="$ours/" -v kf1="$kinc/linux/kvm.h" -v kf2="$kinc/asm/kvm.h" '
	function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
	/^# [0-9]+ "/ {
		f = $3; gsub(/"/, "", f)
		keep = (side == "ours") ? (index(f, pfx) == 1) : (f == kf1 || f == kf2)
		next
	}
	!keep { next }
	/^#define / {
		line = substr($0, 9)
		match(line, /^[A-Za-z_][A-Za-z_0-9]*/)
		name = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
		if (substr(rest, 1, 1) == "(") {
			p = index(rest, ")")
			printf "F\t%s\t%s\t%s\n", name, substr(rest, 2, p - 2), trim(substr(rest, p + 1))
		} else
			printf "O\t%s\t%s\n", name, trim(rest)
		next
	}
	/^#/ { next }
	{ text = text " " $0 }
	END {
		# attributes may sit between the keyword and the tag
		while (match(text, /__attribute__[ \t]*\(\(([^()]|\([^()]*\))*\)\)/))
			text = substr(text, 1, RSTART - 1) " " substr(text, RSTART + RLENGTH)
		t = text
		while (match(t, /(struct|union)[ \t]+[A-Za-z_][A-Za-z_0-9]*[ \t]*\{/)) {
			m = substr(t, RSTART, RLENGTH); t = substr(t, RSTART + RLENGTH)
			sub(/[ \t]*\{$/, "", m); split(m, w, /[ \t]+/)
			printf "R\t%s\t%s\n", w[1], w[2]
		}
		t = text
		while (match(t, /enum[ \t]*([A-Za-z_][A-Za-z_0-9]*)?[ \t]*\{[^}]*\}/)) {
			m = substr(t, RSTART, RLENGTH); t = substr(t, RSTART + RLENGTH)
			tag = m; sub(/[ \t]*\{.*/, "", tag); sub(/^enum[ \t]*/, "", tag)
			if (tag != "") printf "R\tenum\t%s\n", tag
			sub(/^[^{]*\{/, "", m); sub(/\}$/, "", m)
			n = split(m, e, ",")
			for (i = 1; i <= n; i++) {
				x = trim(e[i])
				if (match(x, /^[A-Za-z_][A-Za-z_0-9]*/))
					printf "E\t%s\n", substr(x, 1, RLENGTH)
			}
		}
	}' "$work/defs-$side.i" | sort -u > "$work/defs-$side"
}

defs ours $inc_ours
defs kern $inc_kern

# key<TAB>kind for every name (macros and enumerators share one namespace)
for side in ours kern; do
	awk -F'\t' '$1 == "R" { print "R:" $3 "\t" $2; next } { print $2 "\t" $1 }' \
		"$work/defs-$side" | sort -u > "$work/names-$side"
done

# ---------------------------------------------------------------------------
# Probe program: evaluates the common names and prints record sizes
# ---------------------------------------------------------------------------

# Entries: one per line, "key<TAB>C expression" or "key<TAB>S kind name".
awk -F'\t' -v kernnames="$work/names-kern" '
BEGIN { while ((getline l < kernnames) > 0) { split(l, a, "\t"); kn[a[1]] = 1 } }
$1 == "R" { if (("R:" $3) in kn) printf "R:%s\tS %s %s\n", $3, $2, $3; next }
!($2 in kn) { next }
$1 == "E" { printf "%s\tC %s\n", $2, $2; next }
$1 == "O" { if ($3 != "") printf "%s\tC %s\n", $2, $2; next }
$1 == "F" {
	np = ($3 ~ /^[ \t]*$/) ? 0 : split($3, pp, ",")
	for (v = 1; v <= 3; v++) {
		args = ""
		for (i = 1; i <= np; i++) {
			if (v == 1) x = "0"
			else if (v == 2) x = i
			else x = (i % 2) ? "0x0030000000000123ULL" : "0xc0000080"
			args = args (i > 1 ? ", " : "") x
		}
		printf "%s(%s)\tC %s(%s)\n", $2, args, $2, args
	}
}' "$work/defs-ours" > "$work/entries"

# probe SIDE INCLUDES: compile and run; drop entries that are not integer
# constant expressions on this side (recorded as "N key").
probe() {
	side=$1; shift
	cp "$work/entries" "$work/entries-$side"
	: > "$work/noeval-$side"
	for round in 1 2 3 4 5 6 7 8; do
		awk -F'\t' '
		BEGIN {
			print "#include <stdio.h>"
			print "#include <linux/kvm.h>"
			print "#define UAPI_C(k, x) printf(\"C\\t%s\\t%d %d %llx\\n\", k, (int)sizeof(x), (int)(((x) * 0 - 1) < 0), (unsigned long long)(x))"
			print "#define UAPI_S(k, t) printf(\"S\\t%s\\t%zu %zu\\n\", k, sizeof(t), _Alignof(t))"
			print "/* one function per entry: diagnostics map to entries by line */"
		}
		{
			split($2, w, " ")
			if (w[1] == "S")
				printf "static void u%d(void) { UAPI_S(\"%s\", %s %s); }\n", NR, $1, w[2], w[3]
			else
				printf "static void u%d(void) { UAPI_C(\"%s\", (%s)); }\n", NR, $1, substr($2, 3)
		}
		END {
			print "int main(void)"; print "{"
			for (i = 1; i <= NR; i++) printf "\tu%d();\n", i
			print "\treturn 0;"; print "}"
		}' "$work/entries-$side" > "$work/probe-$side.c"
		if $CC $cflags "$@" -g -fno-eliminate-unused-debug-types -O0 -c \
			"$work/probe-$side.c" -o "$work/probe-$side.o" 2> "$work/probe-$side.err"; then
			$CC "$work/probe-$side.o" -o "$work/probe-$side"
			"$work/probe-$side" > "$work/values-$side"
			return 0
		fi
		# probe.c lines named by any diagnostic -> entries (entry i is on
		# line i + 5; gcc and clang both name the expansion point)
		sed -n "s|^$work/probe-$side\.c:\([0-9][0-9]*\):[0-9]*: .*|\1|p" \
			"$work/probe-$side.err" | sort -un > "$work/badlines"
		if [ ! -s "$work/badlines" ]; then
			cat "$work/probe-$side.err" >&2
			echo "$me: probe program for the $side headers does not compile" >&2
			exit 2
		fi
		awk -v bad="$work/badlines" -v out="$work/noeval-$side" '
		BEGIN { while ((getline l < bad) > 0) b[l - 5] = 1 }
		(NR in b) { split($0, a, "\t"); print "N\t" a[1] >> out; next }
		{ print }' "$work/entries-$side" > "$work/entries-$side.new"
		mv "$work/entries-$side.new" "$work/entries-$side"
	done
	echo "$me: probe program for the $side headers: too many rounds" >&2
	cat "$work/probe-$side.err" >&2
	exit 2
}

probe ours $inc_ours
probe kern $inc_kern

# ---------------------------------------------------------------------------
# Record layouts from DWARF
# ---------------------------------------------------------------------------

# layout SIDE: "name<TAB>depth<TAB>member text" for each top-level record,
# pure comment lines (holes, cachelines, size summary) dropped.
layout() {
	"$PAHOLE" "$work/probe-$1.o" | awk '
	/^(struct|union) [A-Za-z_0-9]+ \{/ { name = $2; inrec = 1; next }
	inrec && /^\};/ { inrec = 0; next }
	!inrec { next }
	{
		line = $0
		d = 0; while (substr(line, d + 1, 1) == "\t") d++
		t = line; gsub(/[ \t]+/, " ", t); sub(/^ /, "", t); sub(/ $/, "", t)
		if (t == "" || t ~ /^\/\*.*\*\/$/) next
		printf "%s\t%d\t%s\n", name, d, t
	}' > "$work/layout-$1"
}
layout ours
layout kern

# ---------------------------------------------------------------------------
# Compare
# ---------------------------------------------------------------------------

awk -F'\t' -v verbose=$verbose \
	-v f_dours="$work/defs-ours" -v f_dkern="$work/defs-kern" \
	-v f_nours="$work/names-ours" -v f_nkern="$work/names-kern" \
	-v f_vours="$work/values-ours" -v f_vkern="$work/values-kern" \
	-v f_xours="$work/noeval-ours" \
	-v f_lours="$work/layout-ours" -v f_lkern="$work/layout-kern" '
function bad(msg) { mism++; print "MISMATCH " msg }
function norm(s) { gsub(/[ \t]+/, "", s); return s }
# names that exist only for other architectures (coverage report only)
function foreign(n) {
	return n ~ /(^|[_:])(S390|PPC|ARM|ARM64|RISCV|MIPS|LOONGARCH|SPAPR|FSL|BOOKE|IA64)(_|$)/ ||
	       n ~ /^R:kvm_(s390|ppc|arm|riscv|mips|loongarch|vfio_spapr|config_tlb|dirty_tlb|rtas|get_htab|allocate_rma|create_spapr|vcpu_init|pv_cmd|pv_)/ ||
	       n ~ /^(KVM_DIRTY_TLB|KVM_ALLOCATE_RMA|KVM_CREATE_SPAPR_TCE(_64)?|KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE|KVM_MMU_FSL_BOOKE_(NO)?HV)$/
}
BEGIN {
	while ((getline l < f_nours) > 0) { split(l, a, "\t"); ours[a[1]] = a[2] }
	while ((getline l < f_nkern) > 0) { split(l, a, "\t"); kern[a[1]] = a[2] }
	while ((getline l < f_dours) > 0) { n = split(l, a, "\t")
		if (a[1] == "O") obody[a[2]] = a[3]; if (a[1] == "F") ofun[a[2]] = a[3] "\t" a[4] }
	while ((getline l < f_dkern) > 0) { n = split(l, a, "\t")
		if (a[1] == "O") kbody[a[2]] = a[3]; if (a[1] == "F") kfun[a[2]] = a[3] "\t" a[4] }
	while ((getline l < f_vours) > 0) { split(l, a, "\t"); vo[a[2]] = a[3]; if (a[1] == "C") ckeys[a[2]] = 1 }
	while ((getline l < f_vkern) > 0) { split(l, a, "\t"); vk[a[2]] = a[3] }
	while ((getline l < f_xours) > 0) { split(l, a, "\t"); ckeys[a[2]] = 1 }
	while ((getline l < f_lours) > 0) { split(l, a, "\t"); lo[a[1], ++nlo[a[1]]] = a[2] " " a[3] }
	while ((getline l < f_lkern) > 0) { split(l, a, "\t"); lk[a[1], ++nlk[a[1]]] = a[2] " " a[3] }

	# 1. defined by us, unknown to the kernel
	for (k in ours) if (!(k in kern)) {
		bad((k ~ /^R:/ ? ours[k] " " substr(k, 3) : k) ": defined by rkvm, not by the kernel")
	}

	# 2. records: size/alignment and member layout
	for (k in ours) {
		if (k !~ /^R:/ || !(k in kern)) continue
		r = substr(k, 3)
		if (!(k in vo) || !(k in vk)) { bad(ours[k] " " r ": not measurable on both sides"); continue }
		if (vo[k] != vk[k]) bad(ours[k] " " r ": size/align " vo[k] " vs kernel " vk[k])
		if (ours[k] == "enum") { nenum++; continue }
		nrec++
		no = nlo[r] + 0; nk = nlk[r] + 0
		for (i = 1; i <= no; i++) if (lo[r, i] ~ /\/\* *[0-9]/) nfields++
		if (no == 0) { bad(ours[k] " " r ": no layout from pahole"); continue }
		diff = ""
		for (i = 1; i <= (no > nk ? no : nk); i++) {
			a1 = (i <= no) ? lo[r, i] : "(none)"; b1 = (i <= nk) ? lk[r, i] : "(none)"
			if (a1 != b1) { diff = "member line " i ": rkvm [" a1 "] kernel [" b1 "]"; break }
		}
		if (diff != "") bad(ours[k] " " r ": " diff)
	}

	# 3. constants: macros, enumerators, function-like macro samples
	for (k in ckeys) {
		nconst++
		if ((k in vo) && (k in vk)) {
			if (vo[k] != vk[k]) bad(k ": rkvm " vo[k] " vs kernel " vk[k] " (size signed hex)")
		} else if ((k in vo) != (k in vk)) {
			bad(k ": integer constant on one side only (rkvm " ((k in vo) ? vo[k] : "-") ", kernel " ((k in vk) ? vk[k] : "-") ")")
		} else {
			n = k; sub(/\(.*/, "", n)
			ntext++
			if (n in obody) { if (norm(obody[n]) != norm(kbody[n])) bad(k ": text [" obody[n] "] vs kernel [" kbody[n] "]") }
			else if (norm(ofun[n]) != norm(kfun[n])) bad(k ": text [" ofun[n] "] vs kernel [" kfun[n] "]")
		}
	}
	# empty object-like macros: presence and emptiness
	for (n in obody) if (obody[n] == "" && (n in kern)) {
		nconst++; nempty++
		if (kbody[n] != "") bad(n ": empty in rkvm, [" kbody[n] "] in the kernel")
	}

	# 4. coverage: what the kernel has and we do not
	for (k in kern) if (!(k in ours)) {
		if (k == "HINT_UNSAFE_IN_KVM") { ninternal++; internal = internal " " k }
		else if (foreign(k)) nforeign++
		else { nmiss++; miss = miss " " (k ~ /^R:/ ? kern[k] " " substr(k, 3) : k) }
	}
	nk = 0; for (k in kern) nk++
	printf "uapi: coverage: the kernel headers define %d names; rkvm omits %d x86-relevant%s, %d of other architectures, %d kernel-internal%s\n",
		nk, nmiss + 0, (nmiss ? " (" substr(miss, 2) ")" : ""), nforeign + 0, ninternal + 0, (ninternal ? " (" substr(internal, 2) ")" : "")
	if (verbose) for (k in kern) if (!(k in ours) && foreign(k)) print "  omitted (other arch): " k
	printf "uapi: checked %d integer values, %d macro texts, %d empty macros, %d enum type sizes\n",
		nconst - ntext - nempty, ntext + 0, nempty + 0, nenum + 0
	printf "uapi: %d structs (%d fields), %d constants checked, %d mismatches\n",
		nrec, nfields, nconst, mism + 0
	exit(mism ? 1 : 0)
}'
