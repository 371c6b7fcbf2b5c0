#!/bin/bash
# Boot the rkvm test kernel under Bochs: an Intel CPU (corei7_skylake_x)
# with VMX, EPT, VPID and unrestricted guest, for the VMX column (QEMU TCG
# has no VMX). Bochs has no 9p and boots no bzImage directly, so this packs
# an isolinux ISO: the test kernel ($KERNELDIR, config.mak) and an
# initramfs holding busybox, rkvm-vmtest and its libraries, both module
# sets (ours: x86/kvm.ko, kvm-amd.ko, kvm-intel.ko; in-tree: irqbypass.ko,
# kvm.ko, kvm-amd.ko, kvm-intel.ko of the same kernel build), udev with
# scripts/65-kvm.rules, and in l2 mode QEMU and the L2 guest. PID 1 is
# tests/vm/bochs-init.sh. The kernel console goes to OUTDIR/console.log
# (COM1); results come back framed on COM2 and are cut into OUTDIR/<file>
# (results.txt, vmtest.err, vmtest.rc, dmesg.txt, phases.txt, l2-*...).
#
#   scripts/bochs.sh MODE SET OUTDIR [TIMEOUT_SECONDS]
#     MODE: check (rkvm-vmtest) | l2 (nested QEMU, scripts/l2-boot.sh) |
#           full (both, one boot) | exec (one command: RKVM_CMD, @ for spaces) |
#           bench (make bench's VMX table: both sets take turns in one boot,
#           tests/vm/bench-rounds.sh; OUTDIR/bench-SET-ROUND.txt, rc-*, ...)
#     SET: ours | intree (bench: both)
#   Exit status 0 when the VM finished (OUTDIR/done), 1 otherwise.
#
# Environment:
#   RKVM_TEST_FILTER    vmtest's guest-suite filter ('|' separated substrings)
#   RKVM_TEST_EXCLUDE   guest tests not to run, SKIP rows ("substring=why|...")
#   BENCH_ROUNDS, BENCH_SETS, BENCH_ITERS, BENCH_ROWS   bench mode: as
#                       tests/vm/bench-rounds.sh reads them (scripts/bench.sh)
#   BOCHS_INTREE_PARAMS, BOCHS_OURS_PARAMS   module parameters (see below)
#   BOCHS_STALL         s without serial output that count as a hang (600)
#   BOCHS_IPS           Bochs' ips= (100000000): converts its microsecond
#                       timers (PIT, RTC, HPET, UART pacing, disk) to
#                       instructions; the guest's clock is TSC/LAPIC based
#   BOCHS_SYNC          clock sync= (none: emulated time, reproducible)
#   BOCHS_CPUS          emulated CPUs (1; Bochs runs them in turn on one
#                       host thread)
#   BOCHS_MEGS          guest RAM in MiB (1024)
#   BOCHS_INITRD_COMP   initramfs compression (none; see pack below)
#   BOCHS_UDEV          0: no udev in the VM (the dev/ rows then fail)
#   BOCHS_RC            the debugger's script (default: continue, quit)
#   BOCHS_APPEND        more kernel parameters (loglevel=7: boot messages)
#   L2_VARIANTS         l2/full modes: l2-boot.sh's variants ("default";
#                       make check-vmx: "default split off")
#   L2_QEMU             the QEMU packed as qemu-system-x86_64
#                       (/usr/bin/qemu-system-x86_64)
#   L2_SMP, L2_APPEND_EXTRA, L2_QEMU_EXTRA, L2_BOOT_TIMEOUT,
#   L2_CMD_TIMEOUT, L2_BUDGET, L2_CPU   passed to scripts/l2-boot.sh
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC1091
. "$here/config.mak"
mode=${1:?usage: $0 check|l2|full|exec|bench ours|intree|both OUTDIR [TIMEOUT]} set=${2:?} out=${3:?} tmo=${4:-1200}
case $mode,$set in *,ours|*,intree|bench,both) ;; *) echo "bochs.sh: SET is ours or intree (bench: both)" >&2; exit 2 ;; esac
case $mode in check|l2|full|exec|bench) ;; *) echo "bochs.sh: MODE is check, l2, full, exec or bench" >&2; exit 2 ;; esac
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/{dmesg.gz.b64,results.txt,vmtest.err,vmtest.rc,dmesg.txt,phases.txt,done,exec.txt,l2*,console.log,ttyS1.log,bochs.log,stalled,timed.txt,times.txt,*.wall,bench-*,rc-*,vmtest-*-*.err}

# ---- Bochs and the ISO tools (Debian bookworm's bochs 2.7 has VMX) --------
need=()
command -v bochs-bin >/dev/null || need+=(bochs bochsbios vgabios)
[ -f /usr/lib/ISOLINUX/isolinux.bin ] || need+=(isolinux)
[ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || need+=(syslinux-common)
command -v xorriso >/dev/null || need+=(xorriso)
command -v cpio >/dev/null || need+=(cpio)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
	echo "bochs.sh: installing ${need[*]}" >&2
	sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	# Stale or missing package lists on a fresh machine: update once, retry.
	$sudo apt-get install -y "${need[@]}" >&2 ||
		{ $sudo apt-get update -qq >&2 && $sudo apt-get install -y "${need[@]}" >&2; }
fi

vmtest=$here/build/vmtest/release/rkvm-vmtest
intree=$KERNELDIR/modinst/lib/modules/$KERNELRELEASE/kernel
for f in "$vmtest" "$here"/x86/{kvm,kvm-amd,kvm-intel}.ko "$intree"/virt/lib/irqbypass.ko \
	"$intree"/arch/x86/kvm/{kvm,kvm-amd,kvm-intel}.ko "$KERNELDIR/arch/x86/boot/bzImage"; do
	[ -f "$f" ] || { echo "bochs.sh: $f missing (make modules; cargo build of tests/vm/vmtest)" >&2; exit 1; }
done

# ---- initramfs ----------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/rkvm-bochs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,rkvm/ours,rkvm/intree,rkvm/scripts,usr/bin,lib/udev/rules.d}

# add FILE [DEST]: FILE (at DEST, default its own path) and the shared
# libraries it needs (ldd), at their own paths.
add() {
	local f=$1 d=${2:-$1} l
	mkdir -p "$root$(dirname "$d")"
	cp -L "$f" "$root$d"
	ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' |
	while read -r l; do
		[ -e "$root$l" ] && continue
		mkdir -p "$root$(dirname "$l")"
		cp -L "$l" "$root$l"
	done
}
cp /bin/busybox "$root/bin/busybox"
install -m 0755 "$here/tests/vm/bochs-init.sh" "$root/init"
cp "$here/tests/vm/bench-rounds.sh" "$root/rkvm/bench-rounds.sh"
add "$vmtest" /rkvm/vmtest
cp "$here"/x86/{kvm,kvm-amd,kvm-intel}.ko "$root/rkvm/ours/"
cp "$intree"/virt/lib/irqbypass.ko "$intree"/arch/x86/kvm/{kvm,kvm-amd,kvm-intel}.ko "$root/rkvm/intree/"
# udev (its own binary as udevadm and systemd-udevd) with our rule only.
if [ -x /bin/udevadm ] && [ "${BOCHS_UDEV:-1}" != 0 ]; then
	add /bin/udevadm /bin/udevadm.real
	mkdir -p "$root/lib/systemd"
	ln -s /bin/udevadm.real "$root/lib/systemd/systemd-udevd"
	ln -s /bin/udevadm.real "$root/usr/bin/udevadm"
	cp "$here/scripts/65-kvm.rules" "$root/lib/udev/rules.d/"
fi
# rkvm-vmtest runs dmesg and udevadm through PATH; busybox supplies dmesg.

# pack DIR NAME: DIR as a newc cpio, compressed with BOCHS_INITRD_COMP:
# none (the default), lz4, gzip, zstd. Measured under Bochs (7.5 MB
# gzip -1 base initramfs): loading a bigger ISO costs isolinux next to
# nothing, the kernel's unpacking is what counts: gzip 76 s, lz4 35 s,
# none 25 s (wall, on a loaded host).
pack() {
	local c
	case ${BOCHS_INITRD_COMP:-none} in
	lz4) c=(lz4 -l -9 -q -c) ;;
	gzip) c=(gzip -1 -c) ;;
	zstd) c=(zstd -q -19 -c) ;;
	none) c=(cat) ;;
	esac
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc --owner 0:0) | "${c[@]}" > "$work/$2"
}
initrds=/base.cpio
pack "$root" base.cpio

if [ "$mode" = l2 ] || [ "$mode" = full ]; then
	# QEMU, its firmware and the L2 guest (scripts/l2-initramfs.sh's
	# output, build/l2), bash and coreutils date for scripts/l2-boot.sh;
	# a second initrd, so check runs do not pay for it.
	l2root=$work/l2root
	root=$l2root
	mkdir -p "$root"/{rkvm/l2,rkvm/scripts,usr/bin,usr/share/qemu}
	[ -s "$here/build/l2/initramfs.cpio.gz" ] && [ -s "$here/build/l2/expected-paging.txt" ] || "$here/scripts/l2-initramfs.sh" >&2
	cp "$here/build/l2/initramfs.cpio.gz" "$here/build/l2/expected.txt" "$here/build/l2/expected-paging.txt" "$root/rkvm/l2/"
	cp "$KERNELDIR/arch/x86/boot/bzImage" "$root/rkvm/l2/bzImage"
	install -m 0755 "$here/scripts/l2-boot.sh" "$root/rkvm/scripts/l2-boot.sh"
	echo "KERNELRELEASE=$KERNELRELEASE" > "$root/rkvm/config.mak"
	add "${L2_QEMU:-/usr/bin/qemu-system-x86_64}" /usr/bin/qemu-system-x86_64
	mkdir -p "$root/usr/share/seabios"
	for f in qemu/linuxboot_dma.bin qemu/kvmvapic.bin qemu/bios-microvm.bin qemu/pvh.bin seabios/bios-256k.bin; do
		[ ! -e "/usr/share/$f" ] || cp -L "/usr/share/$f" "$root/usr/share/$f"
	done
	add /bin/bash /bin/bash
	add /bin/date /usr/bin/date
	command -v pkill >/dev/null && add "$(command -v pkill)" /usr/bin/pkill
	pack "$root" l2.cpio
	initrds=$initrds,/l2.cpio
fi

# ---- ISO ------------------------------------------------------------------------
iso=$work/iso
mkdir -p "$iso/isolinux"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
cp "$KERNELDIR/arch/x86/boot/bzImage" "$iso/bzImage"
mv "$work"/*.cpio "$iso/"
# tsc=reliable, no_timer_check: no clocksource watchdog or timer checks
# under an emulator; mitigations=off: no page-table isolation or L1D
# flushes on VM entry (each costs millions of emulated instructions);
# clearcpuid=xsavec,xsaves: Bochs 2.7 reports the standard XSAVE size
# (2688) in CPUID 0xd.1 EBX for the compacted format (2432 with AVX-512),
# which makes the kernel WARN ("XSAVE consistency problem") and turn
# XSAVE off altogether; the standard format is consistent.
# quiet: every console line costs emulated UART time (the whole log comes
# back at the end, as dmesg.txt).
append="console=ttyS0,115200 quiet panic=-1 rdinit=/init tsc=reliable no_timer_check mitigations=off \
clearcpuid=xsavec,xsaves \
rkvm.mode=$mode rkvm.set=$set${RKVM_TEST_FILTER:+ rkvm.filter=$RKVM_TEST_FILTER}\
${RKVM_CMD:+ rkvm.cmd=$RKVM_CMD}${L2_VARIANTS:+ rkvm.l2=${L2_VARIANTS// /,}} ${BOCHS_APPEND:-}"
# Parameters of scripts/l2-boot.sh ride along as rkvm.env.NAME=VALUE (no
# spaces; @ stands for a space).
# Module parameters rkvm-vmtest loads the set with (RKVM_MODULE_PARAMS,
# "FILE.ko=PARAMS;...", as rkvm-vmtest reads it): the in-tree kvm-intel without PML, whose Bochs
# 2.7 emulation logs unaligned GPAs (the module WARNs in
# vmx_flush_pml_buffer as soon as dirty logging runs).
# bench mode loads both sets in one boot: each set's parameters ride along
# as RKVM_PARAMS_ours / RKVM_PARAMS_intree, bochs-init.sh's params_of.
RKVM_PARAMS_intree=${BOCHS_INTREE_PARAMS-kvm-intel.ko=pml=0}
RKVM_PARAMS_ours=${BOCHS_OURS_PARAMS-}
case $set in
intree) RKVM_MODULE_PARAMS=$RKVM_PARAMS_intree ;;
ours) RKVM_MODULE_PARAMS=$RKVM_PARAMS_ours ;;
both) RKVM_MODULE_PARAMS= ;;
esac
bench_env=
[ "$mode" != bench ] || bench_env="RKVM_PARAMS_intree RKVM_PARAMS_ours BENCH_ROUNDS BENCH_SETS BENCH_ITERS BENCH_ROWS"
for v in RKVM_MODULE_PARAMS RKVM_TEST_EXCLUDE RKVM_TEST_EXCLUDE_WHY L2_APPEND_EXTRA L2_QEMU_EXTRA L2_SMP L2_BOOT_TIMEOUT L2_CMD_TIMEOUT L2_BUDGET L2_CPU $bench_env; do
	[ -z "${!v:-}" ] || append+=" rkvm.env.$v=${!v// /@}"
done
cat > "$iso/isolinux/isolinux.cfg" <<EOF
default rkvm
prompt 0
timeout 0
label rkvm
  kernel /bzImage
  append initrd=$initrds $append
EOF
xorriso -as mkisofs -quiet -o "$work/rkvm.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
	-no-emul-boot -boot-load-size 4 -boot-info-table "$iso" 2>/dev/null

# ---- Bochs ---------------------------------------------------------------------
# The CPUs' error-level messages are off: Bochs logs every RDMSR of an MSR
# it lacks (DEBUGCTL on each VM entry, APERF/MPERF on each tick), which
# costs more than the work around it.
cat > "$work/bochsrc" <<EOF
megs: ${BOCHS_MEGS:-1024}
cpu: model=corei7_skylake_x, count=${BOCHS_CPUS:-1}, ips=${BOCHS_IPS:-100000000}, reset_on_triple_fault=0, ignore_bad_msrs=1
clock: sync=${BOCHS_SYNC:-none}, time0=local
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0-master: type=cdrom, path=$work/rkvm.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$out/console.log
com2: enabled=1, mode=file, dev=$out/ttyS1.log
display_library: rfb, options="timeout=0"
log: $out/bochs.log
panic: action=fatal
error: action=report$(for ((i = 0; i < ${BOCHS_CPUS:-1}; i++)); do printf ', cpu%d=ignore' $i; done)
info: action=ignore
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
speaker: enabled=0
EOF
# The debugger's script: continue, quit at the end (BOCHS_RC: another
# script, e.g. time breakpoints "sba TICKS" with "info cpu" for a hang).
if [ -n "${BOCHS_RC:-}" ]; then cp "$BOCHS_RC" "$work/bochs.rc"; else printf 'c\nquit\n' > "$work/bochs.rc"; fi
cp "$work/bochsrc" "$out/bochsrc"
cp "$iso/isolinux/isolinux.cfg" "$out/isolinux.cfg"
echo "bochs.sh: $mode $set: ISO $(du -k "$work/rkvm.iso" | cut -f1) KiB, ips ${BOCHS_IPS:-100000000}" >&2
t0=$(date +%s)
T0=${EPOCHREALTIME/./}
# Wall-clock stamps (s since Bochs started) of the lines Bochs writes to the
# two serial files, as they appear: OUTDIR/console.wall (phase lines; the
# kernel's with BOCHS_APPEND=loglevel=7), OUTDIR/ttyS1.wall (result lines).
: > "$out/console.log"
: > "$out/ttyS1.log"
stamp() {
	local l d
	while IFS= read -r l; do
		d=$(( (${EPOCHREALTIME/./} - T0) / 100000 ))
		printf '%d.%d %s\n' $((d / 10)) $((d % 10)) "${l%$'\r'}"
	done
}
tail -n +1 -F "$out/console.log" 2>/dev/null > >(stamp > "$out/console.wall") &
tail_c=$!
tail -n +1 -F "$out/ttyS1.log" 2>/dev/null > >(stamp > "$out/ttyS1.wall") &
tail_r=$!
# Bochs in the background, watched: when neither serial file grows for
# BOCHS_STALL seconds (default 600; 0: off) while rkvm-vmtest runs, the VM
# is taken for hung
# (Bochs 2.7 never leaves a VMX guest that spins with interrupts disabled,
# for one) and killed; OUTDIR/stalled says after which result line.
# Bochs' own CPU time (user + sys of the waited-for children, before and
# after): what the run costs on an idle core, whatever else the host runs.
# (`times` in this shell, not in a command substitution's subshell.)
cpu_s() { times > "$work/times"; awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.1f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$work/times"; }
cpu_s > "$work/cpu0"
stall=${BOCHS_STALL:-600}
timeout --foreground -k 10 "$tmo" bochs-bin -q -f "$work/bochsrc" -rc "$work/bochs.rc" \
	> "$out/bochs.stdout" 2>&1 < /dev/null &
bochs=$!
size=-1 since=$SECONDS
while kill -0 "$bochs" 2>/dev/null; do
	sleep 5
	n=$(( $(stat -c %s "$out/console.log") + $(stat -c %s "$out/ttyS1.log") ))
	# Armed while rkvm-vmtest runs (its result lines; in bench mode its
	# progress lines on the console): the boot and the nested test are
	# quiet for long stretches (the overall timeout covers them).
	if [ "$n" != "$size" ] || ! grep -qE '^rkvm-bochs: .* (vmtest|bench)' "$out/console.log" ||
		grep -q '^rkvm-bochs: .* l2' "$out/console.log"; then
		size=$n since=$SECONDS
	elif [ "$stall" -gt 0 ] && [ $((SECONDS - since)) -ge "$stall" ]; then
		echo "no serial output for ${stall}s after: $(grep -E '^(PASS|FAIL|SKIP|bench:) ' "$out/ttyS1.log" "$out/console.log" -h | tail -n 1 | cut -c1-100)" > "$out/stalled"
		echo "bochs.sh: $mode $set: $(cat "$out/stalled"); killing Bochs" >&2
		kill "$bochs" 2>/dev/null
		break
	fi
done
rc=0
wait "$bochs" || rc=$?
sleep 1
kill "$tail_c" "$tail_r" 2>/dev/null
wait "$tail_c" "$tail_r" 2>/dev/null || true
wall=$(( $(date +%s) - t0 ))
cpu_s > "$work/cpu1"
cpu=$(awk -v a="$(cat "$work/cpu0")" -v b="$(cat "$work/cpu1")" 'BEGIN { printf "%.0f", b - a }')
echo "bochs.sh: $mode $set: Bochs ran $wall s wall, $cpu s CPU (exit $rc)" >&2

# ---- results: cut the framed files out of COM2's stream -----------------------
if [ -f "$out/ttyS1.log" ]; then
	tr -d '\r' < "$out/ttyS1.log" | awk -v dir="$out" '
		/^@@RKVM-FILE / { f = dir "/" $2; printf "" > f; next }
		/^@@RKVM-END / { close(f); f = ""; next }
		/^@@RKVM-DONE/ { printf "" > (dir "/done"); next }
		f != "" { print > f }'
	if [ -s "$out/dmesg.gz.b64" ]; then
		base64 -d "$out/dmesg.gz.b64" | gunzip > "$out/dmesg.txt" 2>/dev/null || true
	fi
fi
# Times (OUTDIR/times.txt): Bochs' wall and CPU time (the CPU time is
# what the run takes on an idle core), and per phase of bochs-init.sh the
# wall seconds since Bochs started (from console.wall), the same scaled to
# an idle core, and the guest's uptime; the results' wall times are in
# OUTDIR/ttyS1.wall. With BOCHS_APPEND=loglevel=7 also when the kernel
# printed its first line (before it: BIOS, isolinux, unxz) and ran /init.
awk -v wall="$wall" -v cpu="$cpu" '
FNR == 1 { file++ }
file == 1 && !kstart && / Linux version / { kstart = $1 }
file == 1 && !istart && / Run \/init / { istart = $1 }
file == 1 && $2 == "rkvm-bochs:" { at[$4] = $1 }
file == 2 { up[$3] = $1; name[$3] = $2; np = $3 + 1 }
END {
	r = wall > 0 ? cpu / wall : 1
	printf "Bochs ran %d s wall, %d s CPU (its time on an idle core)\n", wall, cpu
	if (kstart) printf "%-34s %7.1f s wall\n", "kernel console (BIOS, isolinux, unxz)", kstart
	if (istart) printf "%-34s %7.1f s wall\n", "/init starts", istart
	for (i = 0; i < np; i++)
		printf "%-34s %7.1f s wall (~%5.1f s idle-core), guest uptime %6.2f s\n", "phase " name[i], at[name[i]], at[name[i]] * r, up[i]
}' "$out/console.wall" "$out/phases.txt" > "$out/times.txt" 2>/dev/null || true
[ -f "$out/done" ] || { echo "bochs.sh: the VM did not finish (Bochs exit $rc; see $out/console.log)" >&2; exit 1; }
