#!/bin/sh
# The L2 guest's side of the live-migration variants (scripts/l2-boot.sh,
# variants migrate and migrate-q10), typed at its shell:
#
#   /l2/migrate.sh start N   before a migration: starts the ticker (once per
#                            boot: a 0.1 s sleep loop, so a timer is always
#                            armed, writing CLOCK_BOOTTIME to /tmp/tick) and
#                            /l2/workload.sh in the background (directory
#                            /tmp/migN), which the migration interrupts.
#                            Prints RKVM-MIG-UPTIME <seconds>.
#   /l2/migrate.sh check N   after the restore: prints
#                            RKVM-MIG-UPTIME <s>      (first thing: monotonic?)
#                            RKVM-MIG-ONLINE <cpus>   (/sys/.../cpu/online)
#                            RKVM-MIG-ONCPU <cpu>     (taskset to each online
#                                                      vCPU: it runs code)
#                            RKVM-MIG-TICK <t0> <t1>  (the ticker 1 s apart:
#                                                      timers still fire)
#                            RKVM-MIG-WL-RC <status>  (the workload finished)
#                            RKVM-L2-SHA256 <sum>     (its result)
d=/tmp/mig${2:-0}
case ${1:-} in
start)
	if [ ! -f /tmp/ticker.pid ]; then
		(while :; do
			sleep 0.1
			cut -d' ' -f1 /proc/uptime > /tmp/tick.new
			mv /tmp/tick.new /tmp/tick
		done) < /dev/null > /dev/null 2>&1 &
		echo $! > /tmp/ticker.pid
	fi
	rm -rf /tmp/mig*
	mkdir -p "$d"
	(/l2/workload.sh "$d/wl" > "$d/res" 2>&1; echo $? > "$d/rc") < /dev/null > /dev/null 2>&1 &
	echo "RKVM-MIG-UPTIME $(cut -d' ' -f1 /proc/uptime)"
	;;
check)
	echo "RKVM-MIG-UPTIME $(cut -d' ' -f1 /proc/uptime)"
	on=$(cat /sys/devices/system/cpu/online)
	echo "RKVM-MIG-ONLINE $on"
	c=0
	while [ $c -lt "$(nproc)" ]; do
		taskset -c $c awk '{ print "RKVM-MIG-ONCPU", $39 }' /proc/self/stat
		c=$((c + 1))
	done
	t0=$(cat /tmp/tick)
	sleep 1
	echo "RKVM-MIG-TICK $t0 $(cat /tmp/tick)"
	i=0
	while [ ! -f "$d/rc" ] && [ $i -lt 900 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo "RKVM-MIG-WL-RC $(cat "$d/rc" 2>/dev/null)"
	cat "$d/res" 2>/dev/null
	;;
*)
	echo "usage: $0 start N | check N" >&2
	exit 2
	;;
esac
