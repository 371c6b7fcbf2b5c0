#!/bin/sh
# Load KVM in the L2 guest (`make check-nested`, issue 15): the in-tree
# irqbypass.ko, kvm.ko and kvm-amd.ko of the test kernel build, packed into
# /l3 by scripts/l2-initramfs.sh --nested; typed as `/l3/load.sh [PARAMS]`
# by scripts/l2-boot.sh (variant nested), PARAMS for kvm-amd. One line:
#   RKVM-L3-LOAD ok <seconds> <what kvm-amd logged>   (/dev/kvm is there)
#   RKVM-L3-LOAD FAIL <why>
# Kernel messages stay off the console (the driver reads it); a report in
# the guest's log is /l2/logcheck.sh's business.
dmesg -n 1
read -r t0 _ < /proc/uptime
for m in irqbypass kvm kvm-amd; do
	p=
	[ "$m" != kvm-amd ] || p="$*"
	# shellcheck disable=SC2086
	if ! err=$(insmod "/l3/$m.ko" $p 2>&1); then
		echo "RKVM-L3-LOAD FAIL insmod $m.ko $p: $err; kernel log: $(dmesg | grep -E 'kvm|SVM' | tail -n 3 | tr '\n' '|')"
		exit 1
	fi
done
i=0
while [ ! -c /dev/kvm ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
read -r t1 _ < /proc/uptime
if [ -c /dev/kvm ]; then
	echo "RKVM-L3-LOAD ok $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(dmesg | grep -E 'kvm_amd:' | sed 's/^\[[ 0-9.]*\] //' | tr '\n' '|')"
else
	echo "RKVM-L3-LOAD FAIL the modules loaded, but no /dev/kvm after 5 s"
	exit 1
fi
