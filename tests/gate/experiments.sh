#!/bin/bash
# The gate's own test (issue 16): break one thing at a time on purpose and
# check that `make check` then exits non-zero with the FAIL line that names
# it; restore the tree after each experiment.
#
#   tests/gate/experiments.sh [NAME...]     default: every experiment
#
# Experiments (NAME: breakage -> the FAIL line expected):
#   host-abort   a host test binary aborts        -> FAIL host/pvclock/scale: ... SIGABRT
#   l2-removed   scripts/l2-boot.sh is deleted     -> FAIL vm/ours/l2-ran: ... exit status 127
#   l2-insmod    kvm-amd.ko fails to load in L2    -> FAIL ours: l2/boot-to-shell: not run: insmod ...
#   skip-ours    a vmtest row SKIPs for ours only  -> FAIL ours: emul/long/avx-...: SKIP for ours (...) but PASS for in-tree
#   split-abort  QEMU aborts in the split variant  -> FAIL ours: l2/kernel-irqchip-split-clean: QEMU exited (134) ...
#   early-warn   a WARN early in L1's boot         -> FAIL vm/ours/kernel-log-clean: WARNING: ...
# and two of the in-tree retry (run them by name):
#   retry-flake  a listed reference flake fails in-tree's first VM only
#                -> exit 0, "in-tree irq/smp-init-sipi-sipi-and-ipis: failed (...), passed on retry"
#   retry-other  an unlisted row fails in-tree     -> FAIL intree: irq/signal-msi: ..., no retry VM
# Logs: build/gate/NAME.log, build/gate/NAME.check/ (its build/check). Needs a work tree without changes to tracked
# files (it restores them with git) and config.mak.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
out=$here/build/gate
mkdir -p "$out"
all="host-abort l2-removed l2-insmod skip-ours split-abort early-warn"

# break_host_abort: a test that aborts the whole test binary.
break_host_abort() {
	printf '\n#[test]\nfn gate_experiment_abort() {\n    std::process::abort();\n}\n' >> tests/host/pvclock/tests/scale.rs
	want='^FAIL host/pvclock/scale: .*SIGABRT'
}

# break_l2_removed: no nested-guest script at all.
break_l2_removed() {
	rm scripts/l2-boot.sh
	want='^FAIL vm/ours/l2-ran: .*exit status 127'
}

# break_l2_insmod: the L2 phase of our column gets a kvm-amd.ko that cannot load.
break_l2_insmod() {
	sed -i 's|"\$repo/scripts/l2-boot.sh" check "\$out" \$mods|"$repo/scripts/l2-boot.sh" check "$out" $(echo $mods \| sed "s,$repo/x86/kvm-amd.ko,$repo/x86/kvm-amd-missing.ko,")|' tests/vm/init.sh
	grep -q kvm-amd-missing tests/vm/init.sh || { echo "experiments: init.sh pattern not found" >&2; return 1; }
	want='^FAIL ours: l2/boot-to-shell: not run: insmod .*kvm-amd-missing.ko failed'
}

# break_skip_ours: the VEX test SKIPs when our modules are loaded (no irqbypass).
break_skip_ours() {
	sed -i 's|^fn avx() -> TestResult {$|&\n    if !std::path::Path::new("/sys/module/irqbypass").exists() {\n        return skip("gate experiment: SKIP for ours only");\n    }|' tests/vm/vmtest/src/suites/emulation.rs
	grep -q 'gate experiment' tests/vm/vmtest/src/suites/emulation.rs || { echo "experiments: emulation.rs pattern not found" >&2; return 1; }
	want='^FAIL ours: emul/long/avx-vmovdqu-ymm-split: SKIP for ours \(gate experiment'
}

# break_split_abort: in the split variant QEMU boots, then reports a failed
# KVM_RUN and aborts (what the old check counted as a pass).
break_split_abort() {
	cat > tests/gate/qemu-aborts.sh <<'EOS'
#!/bin/bash
# gate experiment: QEMU that aborts 5 s into the boot, like one whose KVM_RUN failed.
"${QEMU_REAL:-qemu-system-x86_64}" "$@" <&0 &
pid=$!
sleep 5
echo "error: kvm run failed Invalid argument" >&2
kill -ABRT $pid
wait $pid
EOS
	chmod +x tests/gate/qemu-aborts.sh
	sed -i 's|^\t\tsplit) irqchip_session |\t\tsplit) qemu=$here/tests/gate/qemu-aborts.sh irqchip_session |' scripts/l2-boot.sh
	grep -q qemu-aborts scripts/l2-boot.sh || { echo "experiments: l2-boot.sh pattern not found" >&2; return 1; }
	want='^FAIL ours: l2/kernel-irqchip-split-clean: QEMU exited \(134\)'
}

# break_early_warn: tests/vm/warnmod WARNs right after boot, before any test.
break_early_warn() {
	make -s -C tests/vm/warnmod > "$out/warnmod-build.log" 2>&1 || { cat "$out/warnmod-build.log" >&2; return 1; }
	export RKVM_L1_INSMOD=$here/tests/vm/warnmod/warnmod.ko RKVM_L1_INSMOD_ARGS=warn=1
	want='^FAIL vm/ours/kernel-log-clean: WARNING: .*warnmod'
}

# in_tree_fails ROUTINE WHEN: the vmtest function ROUTINE fails for the
# in-tree module (irqbypass loaded) when the shell condition WHEN holds.
in_tree_fails() {
	sed -i "s|^fn $1() -> TestResult {\$|&\n    if std::path::Path::new(\"/sys/module/irqbypass\").exists() \&\& $2 {\n        return Err(\"gate experiment: fails for in-tree\".into());\n    }|" tests/vm/vmtest/src/suites/irqchip.rs
	grep -q 'gate experiment' tests/vm/vmtest/src/suites/irqchip.rs || { echo "experiments: irqchip.rs pattern not found" >&2; return 1; }
}

# break_retry_flake: a listed reference flake fails in the first in-tree VM
# only (the retry VM's command line has rkvm.only_vmtest): not a failure.
break_retry_flake() {
	in_tree_fails smp '!std::fs::read_to_string("/proc/cmdline").unwrap_or_default().contains("rkvm.only_vmtest")' || return
	want='^  in-tree irq/smp-init-sipi-sipi-and-ipis: failed \(gate experiment: fails for in-tree\), passed on retry'
	want_rc=0
}

# break_retry_other: a row not on the list fails for in-tree: no retry.
break_retry_other() {
	in_tree_fails signal_msi_test true || return
	want='^FAIL intree: irq/signal-msi: gate experiment'
	unwanted='^== in-tree retry'
}

# restore: the tree as committed, no experiment environment.
restore() {
	git checkout -q -- .
	rm -f tests/gate/qemu-aborts.sh
	unset RKVM_L1_INSMOD RKVM_L1_INSMOD_ARGS
}

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	echo "experiments: the work tree has changes; commit or stash them first" >&2
	exit 2
fi
ok=0 bad=0
for name in ${*:-$all}; do
	want= want_rc=nonzero unwanted=
	echo "== experiment $name =="
	if ! "break_${name//-/_}"; then
		restore
		echo "experiment $name: could not be set up"
		bad=$((bad + 1))
		continue
	fi
	s=$(date +%s)
	make check > "$out/$name.log" 2>&1
	rc=$?
	restore
	# Its logs, for a post-mortem (the next run empties build/check).
	rm -rf "$out/$name.check" && cp -r build/check "$out/$name.check"
	line=$(grep -E -m 1 "$want" "$out/$name.log")
	echo "  make check: exit status $rc after $(($(date +%s) - s)) s; $(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out/$name.log" | tail -n 1)"
	if [ -n "$line" ] && { [ -z "$unwanted" ] || ! grep -Eq "$unwanted" "$out/$name.log"; } &&
		{ [ "$want_rc" = "$rc" ] || { [ "$want_rc" = nonzero ] && [ "$rc" != 0 ]; }; }; then
		ok=$((ok + 1))
		echo "  caught: $line"
	else
		bad=$((bad + 1))
		echo "  NOT CAUGHT: expected a line matching /$want/, none matching /$unwanted/, exit status $want_rc; see $out/$name.log"
	fi
	echo "  other FAIL lines:"
	grep '^FAIL ' "$out/$name.log" | grep -vxF "$line" | head -n 8 | sed 's/^/    /'
done
echo "experiments: $ok caught, $bad not caught"
[ "$bad" = 0 ]
