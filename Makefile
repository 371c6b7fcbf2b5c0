# rkvm: KVM in Rust as out-of-tree Rust-for-Linux modules.
#
#   make          build x86/kvm.ko, x86/kvm-amd.ko, x86/kvm-intel.ko
#   make run      set up if needed, boot the test VM with our modules, demo /dev/kvm
#   make check    set up if needed, run all tests; last line "N passed, N failed[, N skipped]"
#   make check-vmx the VMX column in full under Bochs (kvm-intel, ours and in-tree; nested QEMU)
#   make bench    benchmarks against the in-tree modules (ratios)
#   make install  install the modules into /lib/modules/$(uname -r)/extra + udev rule
#
# ./configure (run automatically when config.mak is missing) finds or
# prepares the toolchain, the Linux 7.3 source and a kernel build.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

-include config.mak

KMAKE = $(MAKE) -C $(KERNELDIR) M=$(CURDIR) LLVM=$(LLVM) RUSTC=$(RUSTC) \
	RUST_LIB_SRC=$(RUST_LIB_SRC) BINDGEN=$(BINDGEN)

MODULES := x86/kvm.ko x86/kvm-amd.ko x86/kvm-intel.ko

.PHONY: all modules check check-vmx run bench install clean distclean host-test uapi-check

all: modules

config.mak:
	./configure

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

run: config.mak
	+scripts/run.sh

bench: config.mak
	+scripts/bench.sh

install: modules
	+$(KMAKE) INSTALL_MOD_DIR=extra modules_install
	install -D -m 0644 scripts/65-kvm.rules /etc/udev/rules.d/65-kvm.rules
	getent group kvm >/dev/null || groupadd -r kvm
	depmod -a $(KERNELRELEASE)

clean:
	-[ -n "$(KERNELDIR)" ] && $(KMAKE) clean
	rm -f rust/*_generated.rs x86/libkvm_main.rmeta x86/exports_kvm_generated.h
	rm -rf build

distclean: clean
	rm -f config.mak include/kvm-kmod-config.h
