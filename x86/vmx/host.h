/* SPDX-License-Identifier: GPL-2.0 */
/* kvm-intel's host-state helpers (host.c), called from Rust. */
#ifndef RKVM_VMX_HOST_H
#define RKVM_VMX_HOST_H
#include <linux/types.h>

/* The host state a VM exit does not restore, saved before the entry. */
struct rkvm_vmx_host {
	u64 fs_base;
	u64 kernel_gs_base;
	u16 fs_sel;
	u16 gs_sel;
	u16 ds_sel;
	u16 es_sel;
	u16 ldt_sel;
};

void rkvm_vmx_host_save(struct rkvm_vmx_host *h);
void rkvm_vmx_host_restore(const struct rkvm_vmx_host *h);
u64 rkvm_vmx_host_tr_base(int cpu);
u64 rkvm_vmx_host_gdt_base(int cpu);
u64 rkvm_vmx_host_gs_base(int cpu);
u64 rkvm_vmx_host_sysenter_esp(int cpu);
void rkvm_vmx_host_nmi(void);
void rkvm_vmx_host_mce(void);

/* User-return MSRs: STAR, LSTAR, CSTAR, SYSCALL_MASK, TSC_AUX (slots 0-4). */
#define RKVM_VMX_NR_URET 5
void rkvm_vmx_uret_cpu_init(void);
void rkvm_vmx_uret_cpu_exit(void);
void rkvm_vmx_uret_set(unsigned int slot, u64 val);
#endif
