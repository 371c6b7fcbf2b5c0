#!/bin/bash
# The capability table (issue 11): compares KVM_CHECK_EXTENSION as our
# modules and the in-tree modules answer it in the test VM, as the
# caps/table-recorded test of rkvm-vmtest writes it (caps.txt in each
# column's results directory: "<scope> <number> <value>", scopes sys, vm,
# vm-split).
#
#   scripts/caps-compare.sh OURS_CAPS_TXT INTREE_CAPS_TXT [EXCEPTIONS]
#
# Prints every capability whose answers differ (name, ours and in-tree
# as sys/vm/vm-split, and the listed reason if any), then PASS/FAIL rows:
#   caps/table/recorded                   both files exist and cover the same numbers
#   caps/table/no-unexplained-difference  every difference is listed in EXCEPTIONS
#   caps/table/exceptions-still-needed    every listed capability still differs
# EXCEPTIONS (default tests/vm/caps-exceptions.txt) has one line per
# capability, "KVM_CAP_NAME: reason"; '#' starts a comment.
# Exit status: 0 when all rows pass.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
ours=${1:?usage: caps-compare.sh OURS_CAPS_TXT INTREE_CAPS_TXT [EXCEPTIONS]}
intree=${2:?usage: caps-compare.sh OURS_CAPS_TXT INTREE_CAPS_TXT [EXCEPTIONS]}
exceptions=${3:-$here/tests/vm/caps-exceptions.txt}
header=$here/usr/include/linux/kvm.h

if [ ! -s "$ours" ] || [ ! -s "$intree" ]; then
	echo "FAIL caps/table/recorded: missing or empty: $( [ -s "$ours" ] || echo "$ours ")$( [ -s "$intree" ] || echo "$intree")"
	exit 1
fi

awk -v ours="$ours" -v intree="$intree" -v exc="$exceptions" -v header="$header" '
BEGIN {
	while ((getline line < header) > 0) {
		n = split(line, f, /[ \t]+/)
		if (f[1] == "#define" && f[2] ~ /^KVM_CAP_/ && f[3] ~ /^[0-9]+$/)
			name[f[3] + 0] = f[2]
	}
	while ((getline line < exc) > 0) {
		sub(/#.*/, "", line)
		if (line !~ /:/)
			continue
		cap = line; sub(/:.*/, "", cap); gsub(/[ \t]/, "", cap)
		why = line; sub(/^[^:]*:[ \t]*/, "", why)
		reason[cap] = why
		listed[++nlisted] = cap
	}
	while ((getline line < ours) > 0) {
		split(line, f, " ")
		o[f[1] " " f[2]] = f[3]
		key[f[1] " " f[2]] = 1
	}
	while ((getline line < intree) > 0) {
		split(line, f, " ")
		t[f[1] " " f[2]] = f[3]
		key[f[1] " " f[2]] = 1
	}
	bad_rec = ""
	for (k in key)
		if (!(k in o) || !(k in t))
			bad_rec = bad_rec " " k
	printf "%-36s %-26s %-26s %s\n", "capability (sys/vm/vm-split)", "ours", "in-tree", "reason"
	for (n = 0; n < 1000; n++) {
		d = 0; ov = ""; tv = ""
		for (s = 1; s <= 3; s++) {
			scope = s == 1 ? "sys" : s == 2 ? "vm" : "vm-split"
			k = scope " " n
			if (!(k in o) || !(k in t))
				continue
			ov = ov (ov == "" ? "" : "/") o[k]
			tv = tv (tv == "" ? "" : "/") t[k]
			if (o[k] != t[k])
				d = 1
		}
		if (!d)
			continue
		nm = (n in name) ? name[n] : "KVM_CAP_" n
		differs[nm] = 1
		why = (nm in reason) ? reason[nm] : "UNEXPLAINED"
		if (!(nm in reason))
			unexplained = unexplained " " nm
		printf "%-36s %-26s %-26s %s\n", nm, ov, tv, why
	}
	rc = 0
	if (bad_rec == "") {
		print "PASS caps/table/recorded"
	} else {
		print "FAIL caps/table/recorded: scope/number in one file only:" bad_rec
		rc = 1
	}
	if (unexplained == "") {
		print "PASS caps/table/no-unexplained-difference"
	} else {
		print "FAIL caps/table/no-unexplained-difference: not in " exc ":" unexplained
		rc = 1
	}
	stale = ""
	for (i = 1; i <= nlisted; i++)
		if (!(listed[i] in differs))
			stale = stale " " listed[i]
	if (stale == "") {
		print "PASS caps/table/exceptions-still-needed"
	} else {
		print "FAIL caps/table/exceptions-still-needed: listed but answered as in-tree:" stale
		rc = 1
	}
	exit rc
}'
