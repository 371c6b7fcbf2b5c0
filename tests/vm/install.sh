#!/bin/bash
# In-VM install test (tests/vm/init.sh runs it after rkvm-vmtest, which
# leaves no KVM module loaded). Prints PASS/FAIL/SKIP rows like the other
# tests; leaves no module loaded.
#
#   tests/vm/install.sh SET REPO KDIR KRELEASE
#   tests/vm/install.sh list     the rows it prints (ROW lines, for
#                                scripts/check.sh's manifest)
#
# ours:   `make install INSTALL_MOD_PATH=<tmpfs root>` (the Makefile's own
#         recipe; `-o modules` because the host built the modules and the
#         repository is read-only here) into a root that also holds the
#         in-tree modules (a copy of the kernel build's modinst), then
#         `modprobe -d <root>` by the CPU's modalias must pick kvm-amd and
#         kvm from updates/, not the in-tree ones from kernel/.
# intree: the same modprobe/modinfo rows against the kernel build's modinst.
set -u
rows="make-install updates-preferred alias-resolves modprobe-by-alias load-messages unload
	modinfo-aliases modinfo-parameters dkms-conf"
if [ "$1" = list ]; then
	for r in $rows; do echo "ROW install/$r"; done
	exit 0
fi
set=$1 repo=$2 kdir=$3 krel=$4
modinst=$kdir/modinst
intree_kvm=$modinst/lib/modules/$krel/kernel/arch/x86/kvm

# upstream's MODULE_DEVICE_TABLE(x86cpu, ...) aliases: X86_FEATURE_SVM
# (6*32+2 = 0xc2), X86_FEATURE_VMX (4*32+5 = 0x85).
want_amd='cpu:type:x86,ven*fam*mod*:feature:*00C2*'
want_intel='cpu:type:x86,ven*fam*mod*:feature:*0085*'

pass() { echo "PASS install/$1"; }
fail() { echo "FAIL install/$1: $2"; }
skip() { echo "SKIP install/$1: $2"; }
row() { # row NAME ERROR-TEXT-OR-EMPTY
	if [ -z "$2" ]; then pass "$1"; else fail "$1" "$2"; fi
}
loaded() { [ -d "/sys/module/$1" ]; }

for m in kvm_intel kvm_amd kvm irqbypass; do
	loaded "$m" && rmmod "$m" 2>/dev/null
done
if loaded kvm; then
	for r in $rows; do
		fail "$r" "kvm still loaded before the test"
	done
	exit 0
fi

# mi KEY MODULE: the KEY values of modinfo MODULE (a name, resolved in
# $root as modprobe does, or a file) in the array $vals and joined by
# spaces in $val. One modinfo run per module, the rest in bash builtins
# (every process costs a lot under TCG).
mi() {
	local f=/tmp/rkvm-modinfo.${2//\//_} l
	[ -f "$f" ] || modinfo -b "$root" -k "$krel" "$2" > "$f" 2>&1
	vals=()
	while IFS= read -r l; do
		[[ $l == "$1:"* ]] || continue
		l=${l#"$1:"}
		vals+=("${l#"${l%%[! ]*}"}")
	done < "$f"
	val="${vals[*]}"
}
rm -f /tmp/rkvm-modinfo.*

case $set in
ours)
	root=/tmp/rkvm-install
	rm -rf "$root" && mkdir -p "$root" && cp -a "$modinst/lib" "$root/"
	err=
	if ! make -C "$repo" -s -o modules install INSTALL_MOD_PATH="$root" \
		> /tmp/rkvm-install.log 2>&1; then
		err="make install failed: $(grep -v '^make' /tmp/rkvm-install.log | tail -n 3 | paste -sd '|')"
	fi
	for ko in kvm kvm-amd kvm-intel; do
		[ -n "$err" ] || cmp -s "$repo/x86/$ko.ko" "$root/lib/modules/$krel/updates/x86/$ko.ko" ||
			err="updates/x86/$ko.ko missing or not the built module"
	done
	[ -n "$err" ] || cmp -s "$repo/scripts/65-kvm.rules" "$root/etc/udev/rules.d/65-kvm.rules" ||
		err="etc/udev/rules.d/65-kvm.rules missing or different"
	[ -n "$err" ] || [ "$(uname -r)" = "$krel" ] || err="running $(uname -r), installed for $krel"
	row make-install "$err"
	err=
	for m in kvm kvm_amd kvm_intel; do
		mi filename "$m"
		case $val in
		"$root/lib/modules/$krel/updates/x86/"*) ;;
		*) err="${err:+$err; }$m resolves to '${val#"$root"}'" ;;
		esac
	done
	row updates-preferred "$err"
	;;
intree)
	root=$modinst
	skip make-install "the in-tree modules come with the kernel"
	skip updates-preferred "the in-tree modules come with the kernel"
	;;
esac

# The CPU's modalias resolves to the vendor module alone (the VM's CPU has
# SVM, not VMX).
modalias=$(cat /sys/devices/system/cpu/modalias)
got=$(modprobe -d "$root" -S "$krel" -R "$modalias" 2>&1 | paste -sd ' ')
if [ "$got" = kvm_amd ]; then pass alias-resolves; else fail alias-resolves "got '$got', want 'kvm_amd'"; fi

# Load by modalias (what udev does at boot); kvm comes in as kvm-amd's
# dependency from modules.dep. Ours are out of tree (taint O), the in-tree
# ones are not: that tells which copy modprobe took.
dmesg_before=$(dmesg | wc -l)
err=
if ! out=$(modprobe -d "$root" -S "$krel" "$modalias" 2>&1); then
	err="modprobe failed: $out"
fi
udevadm settle -t 10 2>/dev/null
for m in kvm kvm_amd; do
	[ -n "$err" ] || loaded "$m" || err="/sys/module/$m missing"
done
if [ -z "$err" ]; then
	t=$(cat /sys/module/kvm_amd/taint /sys/module/kvm/taint 2>/dev/null | paste -sd '')
	case $set,$t in
	ours,*O*O* | intree,) ;;
	*) err="taint of kvm_amd, kvm: '$t' (ours: O, in-tree: none)" ;;
	esac
fi
[ -n "$err" ] || [ "$(stat -c '%F %t:%T' /dev/kvm 2>/dev/null)" = "character special file a:e8" ] ||
	err="no /dev/kvm (10:232)"
row modprobe-by-alias "$err"

# One load line per module, with the version (the in-tree module prints
# its own "Nested Paging enabled" etc.).
if [ "$set" = ours ]; then
	read -r v < "$repo/VERSION"
	declare -A lines=([kvm]=0 [kvm_amd]=0)
	err=
	while IFS= read -r l; do
		for m in kvm kvm_amd; do
			[[ $l == *"] $m: "* && $l != *"taints kernel"* ]] || continue
			lines[$m]=$((lines[$m] + 1))
			[[ $l == *"] $m: rkvm $v"* ]] || err="${err:+$err; }not rkvm $v: '$l'"
			[[ $m != kvm_amd || $l == *": SVM, NPT"* ]] || err="${err:+$err; }no SVM, NPT: '$l'"
		done
	done <<< "$(dmesg | tail -n +"$((dmesg_before + 1))")"  # (no /dev/fd here for <(...))
	for m in kvm kvm_amd; do
		[ "${lines[$m]}" = 1 ] || err="${err:+$err; }${lines[$m]} lines from $m, want 1"
	done
	row load-messages "$err"
else
	skip load-messages "rkvm's load line"
fi

err=
modprobe -v -d "$root" -S "$krel" -r kvm_amd > /tmp/rkvm-rmmod.log 2>&1 ||
	err="modprobe -r: $(paste -sd ' ' /tmp/rkvm-rmmod.log)"
for m in kvm_amd kvm; do
	loaded "$m" && err="${err:+$err; }$m still loaded ($(paste -sd ' ' /tmp/rkvm-rmmod.log))" &&
		rmmod "$m" 2>/dev/null
done
# kmod removes kvm_amd's holders, not the in-tree kvm's irqbypass.
loaded irqbypass && rmmod irqbypass
row unload "$err"

# modinfo of the installed modules: the CPU-feature aliases (the in-tree
# modules' exactly), kvm's device aliases (ours only: x86's in-tree kvm.ko
# has none), and parameters with upstream's names.
err=
mi alias kvm_amd
[ "$val" = "$want_amd" ] || err="kvm_amd alias '$val', want '$want_amd'"
mi alias kvm_intel
[ "$val" = "$want_intel" ] || err="${err:+$err; }kvm_intel alias '$val', want '$want_intel'"
case $set in
ours)
	want_kvm='devname:kvm char-major-10-232'
	for m in kvm_amd kvm_intel; do
		mi alias "$intree_kvm/${m/_/-}.ko"
		a=$val
		mi alias "$m"
		[ "$val" = "$a" ] || err="${err:+$err; }$m alias '$val' differs from the in-tree '$a'"
	done
	;;
intree) want_kvm= ;;
esac
mi alias kvm
[ "$val" = "$want_kvm" ] || err="${err:+$err; }kvm aliases '$val', want '$want_kvm'"
row modinfo-aliases "$err"

# parm_names MODULE: " name1 name2 ... " in $names.
parm_names() {
	local v
	mi parm "$1"
	names=" "
	for v in "${vals[@]}"; do names+="${v%%:*} "; done
}
err=
for p in kvm:halt_poll_ns kvm:ignore_msrs kvm:tdp_mmu kvm_amd:npt kvm_amd:nested kvm_amd:avic kvm_amd:nrips; do
	parm_names "${p%%:*}"
	[[ $names == *" ${p#*:} "* ]] || err="${err:+$err; }no parameter $p"
done
if [ "$set" = ours ]; then
	for m in kvm kvm_amd; do
		parm_names "$intree_kvm/${m/_/-}.ko"
		intree_names=$names
		parm_names "$m"
		for n in $names; do
			[[ $intree_names == *" $n "* ]] || err="${err:+$err; }$m parameter $n is not in-tree's"
		done
	done
fi
row modinfo-parameters "$err"

# dkms.conf: valid shell, three modules into /updates, the version of VERSION.
if [ "$set" = ours ]; then
	err=$(cd "$repo" && bash -c '
		set -u
		kernel_source_dir=/lib/modules/'"$krel"'/build
		. ./dkms.conf || { echo "does not source"; exit; }
		[ "$PACKAGE_NAME" = rkvm ] || echo "PACKAGE_NAME $PACKAGE_NAME"
		[ "$PACKAGE_VERSION" = "$(cat VERSION)" ] || echo "PACKAGE_VERSION $PACKAGE_VERSION != VERSION $(cat VERSION)"
		[ "${BUILT_MODULE_NAME[*]}" = "kvm kvm-amd kvm-intel" ] || echo "modules: ${BUILT_MODULE_NAME[*]}"
		for i in 0 1 2; do
			[ -f "${BUILT_MODULE_LOCATION[i]}${BUILT_MODULE_NAME[i]}.ko" ] || echo "no ${BUILT_MODULE_LOCATION[i]}${BUILT_MODULE_NAME[i]}.ko"
			[ "${DEST_MODULE_LOCATION[i]}" = /updates ] || echo "DEST_MODULE_LOCATION[$i] ${DEST_MODULE_LOCATION[i]}"
		done
		case ${MAKE[0]} in *"--kerneldir=$kernel_source_dir"*"make modules"*) ;; *) echo "MAKE[0] ${MAKE[0]}" ;; esac
		[ "$AUTOINSTALL" = yes ] || echo "AUTOINSTALL $AUTOINSTALL"
	' 2>&1 | paste -sd ';')
	row dkms-conf "$err"
else
	skip dkms-conf "rkvm's dkms.conf"
fi
[ "$set" = intree ] || rm -rf "$root"
rm -f /tmp/rkvm-modinfo.*
exit 0
