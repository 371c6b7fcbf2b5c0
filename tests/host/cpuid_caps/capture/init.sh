#!/bin/sh
# PID 1 of the capture VM (started by capture.sh): load the in-tree KVM
# modules, run the capture program, write its output to the share, power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
for p in $(cat /proc/cmdline); do
	case $p in
	cap.*=*) k=${p%%=*}; eval "${k#cap.}=\${p#*=}" ;;
	esac
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out /mnt
m=$kdir/modinst/lib/modules/$krel/kernel
{
	insmod $m/virt/lib/irqbypass.ko
	insmod $m/arch/x86/kvm/kvm.ko
	insmod $m/arch/x86/kvm/kvm-amd.ko
} > /mnt/insmod.log 2>&1
/mnt/capture > /mnt/capture.txt 2> /mnt/capture.err
dmesg > /mnt/dmesg.txt
touch /mnt/done
sync
busybox poweroff -f
