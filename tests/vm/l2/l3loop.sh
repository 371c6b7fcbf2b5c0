#!/bin/sh
# L2's side of the migration leg of `make check-nested` (issue 15;
# scripts/l2-boot.sh, variant nested): the L3 loop that runs while L1
# migrates L2, typed as /l3/loop.sh by the driver.
#   /l3/loop.sh start          /l3/l3run loop 900 /tmp/l3.stop in the
#                              background, its output in /tmp/l3loop.out
#                              and then "RKVM-L3-LOOP-RC <exit status>"
#   /l3/loop.sh after ITER [S] wait (up to S s of L2 time, default 60) until
#                              the loop's iteration count is past ITER or
#                              it ended
#   /l3/loop.sh stop [S]       create the stop file and wait (S s, default
#                              60) for the loop's end
# after and stop print the last progress line (RKVM-L3-LOOP <iterations>
# <exits> <spin count> <seconds>) and every other line of the loop
# (RKVM-L3 PASS/FAIL loop ..., RKVM-L3-DONE, RKVM-L3-LOOP-RC).
out=/tmp/l3loop.out stop=/tmp/l3.stop

# iter: the iteration count of the last progress line (0: none yet).
iter() {
	it=$(grep '^RKVM-L3-LOOP ' "$out" 2>/dev/null | tail -n 1 | cut -d' ' -f2)
	echo "${it:-0}"
}
ended() { grep -q '^RKVM-L3-LOOP-RC ' "$out" 2>/dev/null; }
report() {
	grep '^RKVM-L3-LOOP ' "$out" 2>/dev/null | tail -n 1
	grep -v '^RKVM-L3-LOOP ' "$out" 2>/dev/null
}
# wait_until S TEST...: poll TEST every 0.2 s for up to S s.
wait_until() {
	w_i=0 w_n=$(($1 * 5))
	shift
	while ! "$@" && [ $w_i -lt $w_n ]; do
		sleep 0.2
		w_i=$((w_i + 1))
	done
}
past() { [ "$(iter)" -gt "$1" ] || ended; }

case ${1:-} in
start)
	rm -f "$stop" "$out"
	(/l3/l3run loop 900 "$stop" > "$out" 2>&1; echo "RKVM-L3-LOOP-RC $?" >> "$out") < /dev/null > /dev/null 2>&1 &
	;;
after)
	wait_until "${3:-60}" past "${2:-0}"
	report
	;;
stop)
	touch "$stop"
	wait_until "${2:-60}" ended
	report
	;;
*)
	echo "usage: $0 start | after ITER [SECONDS] | stop [SECONDS]" >&2
	exit 2
	;;
esac
