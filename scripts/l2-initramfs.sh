#!/bin/bash
# Build the L2 guest's initramfs (on the host, before the test VM boots):
# the nested guest that QEMU runs with -accel kvm inside the test VM.
#
#   scripts/l2-initramfs.sh [--nested] [OUTDIR]     default OUTDIR: build/l2
#
# Writes OUTDIR/initramfs.cpio.gz: /init (tests/vm/l2/init), the host's
# static busybox as /bin/busybox, /l2/{workload,logcheck,send,migrate}.sh,
# /l2/pagestress (tests/vm/l2/pagestress.c, built here static with gcc);
# OUTDIR/expected.txt:
# "RKVM-L2-SHA256 <sum>", the workload's result computed here with the
# same busybox binary (so the guest must print exactly that line); and
# OUTDIR/expected-paging.txt: the line "RKVM-L2-PAGING <hash> ..." of the
# same pagestress binary run here (row l2/paging-stress).
# The kernel is the test kernel's own bzImage ($KERNELDIR, config.mak);
# its built-in initramfs supplies /dev/console.
#
# --nested (`make check-nested`, issue 15): also
# OUTDIR/initramfs-nested.cpio.gz, the same guest plus /l3: the in-tree
# irqbypass.ko, kvm.ko and kvm-amd.ko of the test kernel build
# ($KERNELDIR/modinst, tests/vm/init.sh's in-tree set), /l3/load.sh
# (tests/vm/l2/l3load.sh), /l3/loop.sh (tests/vm/l2/l3loop.sh: the L3 loop
# of the migration leg), /l3/l3run (tests/vm/l2/l3run.c, static) and
# /l3/real16.bin, the real-mode guest of the in-VM suite
# (tests/vm/guests/real16.S, assembled and linked as
# tests/vm/vmtest/build.rs does; its symbols compiled into l3run).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
nested=
[ "${1:-}" != --nested ] || { nested=1; shift; }
out=${1:-$here/build/l2}
bb=/bin/busybox
if [ ! -x "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
	echo "l2-initramfs: $bb is missing or not static (apt-get install busybox-static)" >&2
	exit 1
fi
mkdir -p "$out"
root=$(mktemp -d "$out/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,l2,etc,root}
cp "$bb" "$root/bin/busybox"
install -m 0755 "$here/tests/vm/l2/init" "$root/init"
for f in workload.sh logcheck.sh send.sh migrate.sh; do
	install -m 0755 "$here/tests/vm/l2/$f" "$root/l2/$f"
done
# The paging stress (issue 12): static, so it needs nothing in the guest.
"${CC:-gcc}" -static -O2 -Wall -Wextra -Werror -s -o "$root/l2/pagestress" "$here/tests/vm/l2/pagestress.c"
echo 'root:x:0:0:root:/tmp:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
# pack NAME: the root as OUTDIR/NAME.
pack() {
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc --owner 0:0 --reproducible) | gzip -9n > "$out/$1.new"
	mv "$out/$1.new" "$out/$1"
}
pack initramfs.cpio.gz

# The expected workload result, from the same busybox and script.
wl=$(mktemp -d "$out/wl.XXXXXX")
BUSYBOX=$bb "$bb" sh "$here/tests/vm/l2/workload.sh" "$wl" > "$out/expected.txt.new"
rm -rf "$wl"
grep -Eq '^RKVM-L2-SHA256 [0-9a-f]{64}$' "$out/expected.txt.new" || {
	echo "l2-initramfs: the workload did not run on the host:" >&2
	cat "$out/expected.txt.new" >&2
	exit 1
}
mv "$out/expected.txt.new" "$out/expected.txt"

# The paging stress's expected line, from the same binary (its defaults).
"$root/l2/pagestress" > "$out/expected-paging.txt.new"
grep -Eq '^RKVM-L2-PAGING [0-9a-f]{16} ' "$out/expected-paging.txt.new" || {
	echo "l2-initramfs: /l2/pagestress did not run on the host:" >&2
	cat "$out/expected-paging.txt.new" >&2
	exit 1
}
mv "$out/expected-paging.txt.new" "$out/expected-paging.txt"
echo "l2-initramfs: $out/initramfs.cpio.gz ($(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB), $(cat "$out/expected.txt"), $(cat "$out/expected-paging.txt")"

[ -n "$nested" ] || exit 0
# shellcheck disable=SC1091
. "$here/config.mak"
intree=$KERNELDIR/modinst/lib/modules/$KERNELRELEASE/kernel
mkdir -p "$root/l3"
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
	[ -s "$intree/$m" ] || { echo "l2-initramfs: $intree/$m missing (the kernel build's modules_install)" >&2; exit 1; }
	cp "$intree/$m" "$root/l3/"
done
install -m 0755 "$here/tests/vm/l2/l3load.sh" "$root/l3/load.sh"
install -m 0755 "$here/tests/vm/l2/l3loop.sh" "$root/l3/loop.sh"
# The real-mode guest, as tests/vm/vmtest/build.rs builds it (linked at
# CODE_ADDR), and l3syms.h: its routines (SYM_<name>) and the UPPERCASE
# absolute symbols of guests/common.inc (ports, addresses) from nm.
g=$here/tests/vm/guests
as --64 -I "$g" -o "$root/real16.o" "$g/real16.S"
ld -m elf_x86_64 -N --build-id=none --no-warn-rwx-segments -Ttext=0x8000 -e 0x8000 \
	-o "$root/real16.elf" "$root/real16.o"
objcopy -O binary -j .text "$root/real16.elf" "$root/l3/real16.bin"
nm -n "$root/real16.elf" | awk '
	$2 ~ /^[tT]$/ && $3 !~ /^[._]/ { print "#define SYM_" $3 " 0x" $1 }
	$2 ~ /^[aA]$/ && $3 ~ /^[A-Z0-9_]+$/ && $3 != "BITS" { print "#define " $3 " 0x" $1 }' > "$root/l3syms.h"
"${CC:-gcc}" -static -O2 -Wall -Wextra -Werror -s -I "$root" -o "$root/l3/l3run" "$here/tests/vm/l2/l3run.c"
rm "$root/real16.o" "$root/real16.elf" "$root/l3syms.h"
pack initramfs-nested.cpio.gz
echo "l2-initramfs: $out/initramfs-nested.cpio.gz ($(du -k "$out/initramfs-nested.cpio.gz" | cut -f1) KiB; /l3: $(cd "$root/l3" && echo *))"
