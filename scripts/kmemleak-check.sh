#!/bin/bash
# Reads /sys/kernel/debug/kmemleak reports; prints every leak suspect whose
# allocation backtrace passes through kvm, kvm_amd or kvm_intel (a frame
# tagged [kvm], [kvm_amd], [kvm_intel], or an address in the module area,
# 0xffffffffa0000000 and up: an unloaded module's symbols are gone) and
# fails if there is one. Other suspects are counted, not failed.
#
#   scripts/kmemleak-check.sh KMEMLEAK.txt...
set -u
rc=0
for f in "$@"; do
	[ -f "$f" ] || continue
	awk -v file="$f" '
		function flush() {
			if (obj == "") return
			if (hit) { printf "kmemleak suspect in kvm (%s):\n%s", file, obj; n++ } else other++
			obj = ""; hit = 0
		}
		/^unreferenced object/ { flush(); obj = $0 "\n"; next }
		obj != "" {
			obj = obj $0 "\n"
			if ($0 ~ /\[kvm(_amd|_intel)?\]/ || $0 ~ /\[<ffffffff[a-f][0-9a-f]+>\]/) hit = 1
		}
		END {
			flush()
			if (other) printf "kmemleak (%s): %d suspect(s) outside kvm (not counted)\n", file, other
			exit n > 0
		}' "$f" || rc=1
done
exit $rc
