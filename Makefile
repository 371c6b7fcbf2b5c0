# rkvm: KVM in Rust as out-of-tree Rust-for-Linux modules.
#
#   make          build x86/kvm.ko, x86/kvm-amd.ko, x86/kvm-intel.ko
#   make run      set up if needed, boot the test VM with our modules, demo /dev/kvm
#   make check    set up if needed, run all tests; last line "N passed, N failed[, N skipped]"
#   make check-debug  the in-VM tests on the debug kernel (KASAN, lockdep, kmemleak, ...),
#                 the ioctl fuzzer (10^6 calls per column), fault injection, 100 lifecycles
#   make check-selftests  upstream's KVM selftests (7.3 source) on both columns, row by row
#   make fuzz     the ioctl fuzzer on both columns (FUZZ_ARGS="--seconds 60", see scripts/fuzz.sh)
#   make check-vmx the VMX column in full under Bochs (kvm-intel, ours and in-tree; nested QEMU)
#   make check-nested  nested SVM: L2 (QEMU -accel kvm on kvm-amd nested=1) runs an L3 guest
#                 on its in-tree KVM, both columns (CHECK_NESTED_SETS=intree: one)
#   make bench    benchmarks against the in-tree modules (ratios)
#   make install  build, then install the modules for $(KERNELRELEASE) into
#                 /lib/modules/$(KERNELRELEASE)/updates, depmod, the udev rule, the kvm group
#                 (DESTDIR=/INSTALL_MOD_PATH=: a staging root for packaging)
#
# ./configure (run automatically when config.mak is missing) finds or
# prepares the toolchain, the Linux 7.3 source and a kernel build.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

-include config.mak

# The toolchain is config.mak's LLVM= (a -N suffix), also against a CC= or
# LD= given to this make: DKMS appends CC=clang LD=ld.lld for a kernel built
# with clang, which would otherwise reach Kbuild through MAKEFLAGS.
KMAKE = $(MAKE) -C $(KERNELDIR) M=$(CURDIR) LLVM=$(LLVM) CC=clang$(LLVM) LD=ld.lld$(LLVM) \
	RUSTC=$(RUSTC) RUST_LIB_SRC=$(RUST_LIB_SRC) BINDGEN=$(BINDGEN)

MODULES := x86/kvm.ko x86/kvm-amd.ko x86/kvm-intel.ko

.PHONY: all modules check check-vmx check-debug check-selftests check-migrate check-nested fuzz run bench install clean distclean host-test uapi-check

all: modules

# Configure on first use, but not just to clean (DKMS runs `make clean` in
# a fresh tree).
ifneq ($(filter-out clean distclean,$(or $(MAKECMDGOALS),all)),)
config.mak:
	./configure
endif

modules: config.mak
	+$(KMAKE) modules

host-test:
	cd tests/host && cargo test --quiet

uapi-check: config.mak
	scripts/uapi-check.sh $(KERNELSRC)

check: config.mak
	+scripts/check.sh

check-vmx: config.mak
	+scripts/vmx.sh full

# Live migration of a running L2 guest (scripts/l2-boot.sh variants migrate,
# migrate-q10: QEMU 7.2 same set, ours -> in-tree, in-tree -> ours; QEMU 10
# same set), both columns, judged like make check; too slow for it.
check-migrate: config.mak
	+L2_VARIANTS='migrate migrate-q10' RKVM_TEST_FILTER='load/core' RKVM_NPT0_FILTER=none RKVM_VMX=0 \
		scripts/check.sh

# Nested SVM (issue 15): each column's kvm-amd with nested=1 runs L2 with SVM,
# whose in-tree KVM runs an L3 guest's PIO, MMIO and HLT exits, also while L2
# is live-migrated (scripts/check-nested.sh; CHECK_NESTED_SETS='intree' runs
# one column).
check-nested: config.mak
	+scripts/check-nested.sh

check-debug: config.mak
	+scripts/check-debug.sh

check-selftests: config.mak modules
	+scripts/selftests.sh

fuzz: config.mak
	+scripts/fuzz.sh $(FUZZ_ARGS)

run: config.mak
	+scripts/run.sh

bench: config.mak
	+scripts/bench.sh

# Install for the kernel the modules were built against ($(KERNELRELEASE)
# from config.mak, not `uname -r`), into updates/, which kmod searches
# before kernel/ (the in-tree modules). Kbuild's modules_install copies and,
# when the kernel build is configured to (CONFIG_MODULE_SIG_ALL, with its
# key), signs; its own depmod is skipped (DEPMOD=true) in favour of ours,
# which also runs when the build tree has no System.map.
# DESTDIR and INSTALL_MOD_PATH (Kbuild's name) both give a staging root for
# packaging (both set: concatenated): the modules, depmod's output (-b) and
# the udev rule go below it, and no group is created.
install_root = $(DESTDIR)$(INSTALL_MOD_PATH)
UDEV_RULES_DIR ?= /etc/udev/rules.d

# Installing compiles nothing: no toolchain variables (with LLVM=-19, Kbuild
# would start clang-19 just to read its version).
install: modules
	+$(MAKE) -C $(KERNELDIR) M=$(CURDIR) INSTALL_MOD_PATH=$(install_root) INSTALL_MOD_DIR=updates \
		DEPMOD=true modules_install
	depmod -a $(if $(wildcard $(KERNELDIR)/System.map),-e -F $(KERNELDIR)/System.map) \
		$(if $(install_root),-b $(install_root)) $(KERNELRELEASE)
	install -D -m 0644 scripts/65-kvm.rules $(install_root)$(UDEV_RULES_DIR)/65-kvm.rules
	$(if $(install_root),,getent group kvm >/dev/null || groupadd -r kvm)

clean:
	-[ -n "$(KERNELDIR)" ] && $(KMAKE) clean
	rm -f rust/*_generated.rs x86/libkvm_main.rmeta x86/exports_kvm_generated.h
	rm -rf build

distclean: clean
	rm -f config.mak include/kvm-kmod-config.h
