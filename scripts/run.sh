#!/bin/bash
# `make run`: set up as needed, build, boot the test VM (QEMU TCG with
# nested SVM) with our kvm.ko + kvm-amd.ko loaded and show /dev/kvm
# answering; then, inside it, unmodified QEMU -accel kvm boots the L2 guest
# to a shell on 2 vCPUs (scripts/l2-demo.sh), runs a few commands there and
# powers it off; then the VM powers off.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
export PATH=$HOME/.cargo/bin:$PATH
make -s modules
(cd tests/vm/vmtest && CARGO_TARGET_DIR=$here/build/vmtest cargo build --release --quiet)
scripts/l2-initramfs.sh > /dev/null
echo "rkvm: booting the test VM (our 7.3 kernel, QEMU TCG, -cpu EPYC,+svm,+npt, 2 vCPUs)"
# The console shows the kernel boot too; a newcomer wants the demo lines.
scripts/vm.sh run ours "$here/build/run" 600 2>&1 | tee "$here/build/run.console.log" |
	grep --line-buffered -E '^rkvm|/dev/kvm|^kvm|^l2' || true
[ -f build/run/done ] && echo "rkvm: the VM powered off cleanly"
