# The rounds of `make bench` inside a test VM, sourced by its PID 1 (POSIX
# sh: tests/vm/init.sh for the SVM table, tests/vm/bochs-init.sh for the
# VMX table; scripts/bench.sh reads the files).
#
# bench_rounds OUT: round after round (BENCH_ROUNDS), row after row, each
# set in turn (BENCH_SETS, the order within a round) is loaded, runs the
# row (rkvm-vmtest --bench; the L2 rows with BENCH_L2=1: one
# scripts/l2-boot.sh bench session) and is unloaded, so the two
# measurements of a row in a round are seconds apart:
#   OUT/bench-SET-ROUND.txt   the BENCH lines
#   OUT/rc-SET-ROUND.txt      every exit status ("vmtest RC", "l2 RC")
#   OUT/vmtest-SET-ROUND.err, OUT/l2-SET-ROUND.err   their stderr
#   OUT/phases.txt            "UPTIME round N LOADAVG" per round, "UPTIME end"
# and a line per round, row and set on the console.
# Also BENCH_ITERS (iterations of the exit loops), BENCH_ROWS (only these
# rows; empty: all), BENCH_NPT0 (rkvm-vmtest rows to run again with
# kvm-amd npt=0) and BENCH_NPT0_L2 (1: the L2 rows too, fork+exec
# BENCH_NPT0_FORKS times, rows BENCH_NPT0_L2ROWS; rows npt0/<row>). The
# caller defines $vmtest (rkvm-vmtest), mods_of SET (its module
# arguments), params_of SET (its RKVM_MODULE_PARAMS) and, for the L2
# rows, $repo.
bench_rounds() {
	_out=$1
	export RKVM_BENCH_ITERS="$BENCH_ITERS"
	_units=$(RKVM_BENCH_ROWS="$BENCH_ROWS" $vmtest --bench-list)
	[ "${BENCH_L2:-0}" = 1 ] && _units="$_units l2"
	for _u in ${BENCH_NPT0:-}; do _units="$_units npt0:$_u"; done
	[ "${BENCH_NPT0_L2:-0}" = 1 ] && _units="$_units npt0:l2"
	_r=1
	while [ $_r -le "$BENCH_ROUNDS" ]; do
		echo "$(cut -d' ' -f1 /proc/uptime) round $_r $(cut -d' ' -f1 /proc/loadavg)" >> "$_out/phases.txt"
		for _u in $_units; do
			for _s in $BENCH_SETS; do
				# Progress on the console (its host side stamps the lines).
				echo "bench: $(cut -d' ' -f1 /proc/uptime) round $_r $_u $_s" > /dev/console
				_m=$(mods_of "$_s")
				_f=$_out/bench-$_s-$_r.txt
				if [ "$_u" = l2 ]; then
					# shellcheck disable=SC2086
					RKVM_MODULE_PARAMS=$(params_of "$_s") RKVM_BENCH_ROWS="$BENCH_ROWS" \
						"$repo/scripts/l2-boot.sh" bench "$_out/l2-$_s-$_r" $_m >> "$_f" 2>> "$_out/l2-$_s-$_r.err"
					echo "l2 $?" >> "$_out/rc-$_s-$_r.txt"
				elif [ "$_u" = npt0:l2 ]; then
					# The L2 rows with kvm-amd npt=0 (shadow paging). Fewer
					# forks, more time per command: a fork+exec costs
					# several times more on shadow pages.
					# shellcheck disable=SC2086
					RKVM_MODULE_PARAMS=kvm-amd.ko=npt=0 RKVM_BENCH_ROWS="$BENCH_NPT0_L2ROWS" \
						L2_FORKS=${BENCH_NPT0_FORKS:-50} L2_CMD_TIMEOUT=300 \
						"$repo/scripts/l2-boot.sh" bench "$_out/l2-npt0-$_s-$_r" $_m > /tmp/bench-npt0.txt 2>> "$_out/l2-$_s-$_r.err"
					echo "l2 $?" >> "$_out/rc-$_s-$_r.txt"
					bench_npt0ify "$_f"
				elif [ "${_u#npt0:}" != "$_u" ]; then
					# shellcheck disable=SC2086
					RKVM_MODULE_PARAMS=kvm-amd.ko=npt=0 RKVM_BENCH_ROWS=${_u#npt0:} $vmtest --set "$_s" $_m --bench \
						> /tmp/bench-npt0.txt 2>> "$_out/vmtest-$_s-$_r.err"
					echo "vmtest $?" >> "$_out/rc-$_s-$_r.txt"
					bench_npt0ify "$_f"
				else
					# shellcheck disable=SC2086
					RKVM_MODULE_PARAMS=$(params_of "$_s") RKVM_BENCH_ROWS=$_u \
						$vmtest --set "$_s" $_m --bench >> "$_f" 2>> "$_out/vmtest-$_s-$_r.err"
					echo "vmtest $?" >> "$_out/rc-$_s-$_r.txt"
				fi
			done
		done
		_r=$((_r + 1))
	done
	echo "$(cut -d' ' -f1 /proc/uptime) end" >> "$_out/phases.txt"
}

# bench_npt0ify FILE: the npt=0 unit's lines, row names prefixed npt0/.
bench_npt0ify() {
	sed 's#^BENCH #BENCH npt0/#; s#^BENCH-FAIL #BENCH-FAIL npt0/#' /tmp/bench-npt0.txt >> "$1"
}
