#!/bin/sh
# The L2 guest's kernel log check (typed as `/l2/logcheck.sh` by
# scripts/l2-boot.sh): the reports with context, if any, then one line
#   RKVM-L2-DMESG-BAD <number of matching lines>
# The pattern is scripts/check.sh's (Oopses, warnings, lockdep, sanitizers).
bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|rcu_.*stall|blocked for more than'
n=$(dmesg | grep -cE "$bad")
[ "$n" = 0 ] || dmesg | grep -E -B 2 -A 8 "$bad" | head -n 40
echo "RKVM-L2-DMESG-BAD $n"
