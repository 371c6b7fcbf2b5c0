/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of our bindgen run over the uapi (see Kbuild): our
 * usr/include/linux/kvm.h, which comes first on the include path.
 *
 * bindgen cannot expand the _IO*() macros of ioctl numbers, but it does
 * evaluate enum constants: each number we use is mirrored here, and Kbuild
 * strips the RKVM_IOCTL_ prefix, so Rust sees e.g. `KVM_RUN` with exactly
 * the C header's value (which scripts/uapi-check.sh compares with the
 * kernel's).
 */
#include <linux/kvm.h>

#define RKVM_IOCTL(name) RKVM_IOCTL_##name = name

enum rkvm_ioctl {
	/* system */
	RKVM_IOCTL(KVM_GET_API_VERSION),
	RKVM_IOCTL(KVM_CREATE_VM),
	RKVM_IOCTL(KVM_GET_MSR_INDEX_LIST),
	RKVM_IOCTL(KVM_CHECK_EXTENSION),
	RKVM_IOCTL(KVM_GET_VCPU_MMAP_SIZE),
	RKVM_IOCTL(KVM_GET_SUPPORTED_CPUID),
	RKVM_IOCTL(KVM_GET_EMULATED_CPUID),
	RKVM_IOCTL(KVM_GET_MSR_FEATURE_INDEX_LIST),
	/* VM */
	RKVM_IOCTL(KVM_CREATE_VCPU),
	RKVM_IOCTL(KVM_GET_DIRTY_LOG),
	RKVM_IOCTL(KVM_SET_USER_MEMORY_REGION),
	RKVM_IOCTL(KVM_SET_TSS_ADDR),
};
