#!/bin/bash
# `make run`'s nested-guest demo, inside the test VM (tests/vm/init.sh run
# mode): unmodified qemu-system-x86_64 -accel kvm on the loaded modules
# boots the L2 guest (the test kernel + build/l2/initramfs.cpio.gz, 2 vCPUs,
# 256 MiB) and its serial console is shown as it comes: the boot to a
# busybox shell, a few of its boot messages, `cat /proc/cpuinfo | grep -c
# processor` -> 2, `uname -r`, the clocksource (kvm-clock), `poweroff -f`.
#
#   scripts/l2-demo.sh [MODULE-ARGS...]
#       MODULE-ARGS as for rkvm-vmtest (--pre KO --kvm KO --amd KO ...):
#       loaded first when not loaded yet, unloaded at the end.
# Environment: as scripts/l2-boot.sh (L2_ACCEL=kvm,kernel-irqchip=off with
# L2_SMP=1 for QEMU's userspace irqchip, L2_DEMO_COMMANDS, L2_CPU, ...).
# Every line it prints starts with "l2": "l2: " from this script, "l2| " the
# guest's serial console (so run.sh can filter the test VM's own console).
exec "$(dirname "$0")/l2-boot.sh" demo "$@"
