#!/bin/bash
# The rows of the check targets, sourced by scripts/check.sh (`make check`,
# `make check-migrate`) and scripts/check-nested.sh (`make check-nested`):
# counting, one PASS/FAIL/SKIP line per row, the processes and kernel logs
# of a test VM as rows, and the closing line "N passed, N failed,
# N skipped". The caller sets t0 (date +%s at its start) and out (its
# logs).
# shellcheck disable=SC2154

# Oopses, warnings, lockdep and sanitizer reports in a kernel log.
log_bad='Oops|WARNING:|BUG:|Call Trace|general protection fault|Kernel panic|UBSAN|KASAN|panicked at|circular locking|inconsistent lock|rcu_.*stall|blocked for more than'

# ---- counting -----------------------------------------------------------------
passed=0 failed=0 skipped=0
failures=()
# pass ROW: count a pass.
pass() { passed=$((passed + 1)); echo "PASS $1"; }
# fail ROW WHY: count a failure, remembered for the summary.
fail() { failed=$((failed + 1)); failures+=("$1: $2"); echo "FAIL $1: $2"; }
# skip ROW WHY: count a skip; WHY is required.
skip() { skipped=$((skipped + 1)); echo "SKIP $1: $2"; }
# step TITLE: a section header with the time since the start.
step() { echo; echo "== $* == (at +$(($(date +%s) - t0)) s)"; }

# status_text RC: an exit status in words ("none": none was recorded).
status_text() {
	case $1 in
	none|'') echo "no exit status recorded (it did not finish)" ;;
	124) echo "timed out (exit status 124)" ;;
	126|127) echo "could not be run (exit status $1: not found or not executable)" ;;
	*)
		if [ "$1" -gt 128 ] 2>/dev/null; then
			echo "killed by signal SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo "$(($1 - 128))") (exit status $1)"
		else
			echo "exit status $1"
		fi
		;;
	esac
}

# build_step ROW LOG CMD...: run a build command; PASS, or FAIL with the
# log's tail. Returns CMD's status.
build_step() {
	local row=$1 log=$2 rc=0
	shift 2
	"$@" > "$log" 2>&1 || rc=$?
	if [ $rc = 0 ]; then
		pass "$row"
	else
		tail -n 30 "$log"
		fail "$row" "$(status_text $rc); see $log"
	fi
	return $rc
}

# proc_row ROW RCFILE OKS WHAT LOG: a process of the VM run: PASS when its
# recorded exit status is one of OKS ("0 1": 1 = failures reported as rows).
proc_row() {
	local row=$1 rc ok
	rc=$(cat "$2" 2>/dev/null || echo none)
	for ok in $3; do
		[ "$rc" = "$ok" ] && { pass "$row"; return; }
	done
	[ -s "$5" ] && tail -n 20 "$5"
	fail "$row" "$4: $(status_text "$rc"); see $5"
}

# kernel_log ROW FILE: no Oops/WARNING/BUG/lockdep report in FILE.
kernel_log() {
	if [ ! -s "$2" ]; then
		fail "$1" "no kernel log in $2"
	elif grep -Eq "$log_bad" "$2"; then
		grep -E -B 2 -A 12 "$log_bad" "$2" | head -n 40
		fail "$1" "$(grep -E -m 1 "$log_bad" "$2" | sed 's/^\[ *[0-9.]*\] //'); see $2"
	else
		pass "$1"
	fi
}

# summary WHAT: the time taken, the failures, then the closing line
# "N passed, N failed, N skipped"; returns 1 when anything failed.
summary() {
	echo
	echo "$1 took $(($(date +%s) - t0)) s; logs in $out"
	if [ ${#failures[@]} -gt 0 ]; then
		echo "failures:"
		printf '  %s\n' "${failures[@]:0:40}"
		[ ${#failures[@]} -le 40 ] || echo "  ... and $((${#failures[@]} - 40)) more (above)"
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" = 0 ]
}
