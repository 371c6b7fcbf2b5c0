// SPDX-License-Identifier: GPL-2.0
/*
 * Why this file exists: what a VMX world switch leaves to software on the
 * host side is done with static inline kernel functions (the task's FS/GS
 * selectors and bases, the TSS limit, the per-CPU GDT and entry area) and
 * the NMI re-entry of the kernel (x86_entry_from_kvm), which Rust cannot
 * reach. These are upstream's vmx_prepare_switch_to_guest()/_to_host() and
 * vmx_handle_nmi(), for a 64-bit host. The user-return MSRs (upstream's
 * kvm_set_user_return_msr()) are here too: a DEFINE_PER_CPU variable
 * holding a user_return_notifier, whose callback finds its slot with
 * container_of(), neither of which the 7.3 kernel crate offers.
 */
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/user-return-notifier.h>
#include <asm/cpu_entry_area.h>
#include <asm/desc.h>
#include <asm/entry-common.h>
#include <asm/gsseg.h>
#include <asm/mce.h>
#include <asm/msr.h>
#include <asm/percpu.h>
#include <asm/processor.h>
#include <asm/segment.h>
#include <asm/trapnr.h>
#include "host.h"

static u16 rkvm_vmx_store_ldt(void)
{
	u16 sel;

	asm("sldt %0" : "=g"(sel));
	return sel;
}

/* Before VM entry, interrupts off: what HOST_FS_* need and the exit undoes. */
void rkvm_vmx_host_save(struct rkvm_vmx_host *h)
{
	h->ldt_sel = rkvm_vmx_store_ldt();
	savesegment(ds, h->ds_sel);
	savesegment(es, h->es_sel);
	current_save_fsgs();
	h->fs_sel = current->thread.fsindex;
	h->gs_sel = current->thread.gsindex;
	h->fs_base = current->thread.fsbase;
	h->kernel_gs_base = current->thread.gsbase;
}

/*
 * After VM exit, interrupts off: the selectors the exit nulled, the TSS
 * limit and GDT limit it cut, and the user's GS base (the guest's
 * KERNEL_GS_BASE was in the MSR).
 */
void rkvm_vmx_host_restore(const struct rkvm_vmx_host *h)
{
	if (h->ldt_sel || (h->gs_sel & 7)) {
		asm volatile("lldt %0" : : "rm"(h->ldt_sel));
		load_gs_index(h->gs_sel);
	}
	if (h->fs_sel & 7)
		loadsegment(fs, h->fs_sel);
	if (unlikely(h->ds_sel | h->es_sel)) {
		loadsegment(ds, h->ds_sel);
		loadsegment(es, h->es_sel);
	}
	invalidate_tss_limit();
	wrmsrq(MSR_KERNEL_GS_BASE, h->kernel_gs_base);
	load_fixmap_gdt(raw_smp_processor_id());
}

/* HOST_TR_BASE of `cpu`: its TSS in the entry area. */
u64 rkvm_vmx_host_tr_base(int cpu)
{
	return (u64)&get_cpu_entry_area(cpu)->tss.x86_tss;
}

/* HOST_GDTR_BASE of `cpu`: its read-only GDT mapping. */
u64 rkvm_vmx_host_gdt_base(int cpu)
{
	return (u64)get_cpu_gdt_ro(cpu);
}

/* HOST_GS_BASE of `cpu`: the kernel's per-CPU base. */
u64 rkvm_vmx_host_gs_base(int cpu)
{
	return cpu_kernelmode_gs_base(cpu);
}

/* HOST_IA32_SYSENTER_ESP of `cpu` (0: no 32-bit syscalls configured). */
u64 rkvm_vmx_host_sysenter_esp(int cpu)
{
	if (IS_ENABLED(CONFIG_IA32_EMULATION))
		return (u64)(cpu_entry_stack(cpu) + 1);
	return 0;
}

/* An NMI caused the VM exit: run the host's NMI handler now. */
void rkvm_vmx_host_nmi(void)
{
	x86_entry_from_kvm(EVENT_TYPE_NMI, NMI_VECTOR);
}

/*
 * A machine check exited the guest (or hit the VM entry): the host's
 * handler runs now, interrupts still off (upstream's kvm_machine_check()).
 */
void rkvm_vmx_host_mce(void)
{
#if IS_ENABLED(CONFIG_X86_MCE)
	struct pt_regs regs = {
		.cs = 3, /* Fake ring 3 no matter what the guest ran on */
		.flags = X86_EFLAGS_IF,
	};

	do_machine_check(&regs);
#endif
}

/*
 * The SYSCALL MSRs and TSC_AUX hold the guest's values from the first VM
 * entry until the CPU next returns to userspace (upstream's user-return
 * MSRs): the kernel does not use them itself (its per-CPU base comes from
 * the GDT, never RDPID), so the host's are put back only then, or when
 * VMX is disabled on the CPU.
 */
static const u32 rkvm_vmx_uret_msrs[RKVM_VMX_NR_URET] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_TSC_AUX,
};

struct rkvm_vmx_uret {
	struct user_return_notifier urn;
	bool registered;
	u64 host[RKVM_VMX_NR_URET];
	u64 curr[RKVM_VMX_NR_URET];
};

static DEFINE_PER_CPU(struct rkvm_vmx_uret, rkvm_vmx_uret);

static void rkvm_vmx_on_user_return(struct user_return_notifier *urn)
{
	struct rkvm_vmx_uret *u = container_of(urn, struct rkvm_vmx_uret, urn);
	unsigned long flags;
	int i;

	local_irq_save(flags);
	if (u->registered) {
		u->registered = false;
		user_return_notifier_unregister(urn);
	}
	for (i = 0; i < RKVM_VMX_NR_URET; i++) {
		if (u->curr[i] != u->host[i]) {
			wrmsrq(rkvm_vmx_uret_msrs[i], u->host[i]);
			u->curr[i] = u->host[i];
		}
	}
	local_irq_restore(flags);
}

/* On each CPU as VMX is enabled there: the host's values. */
void rkvm_vmx_uret_cpu_init(void)
{
	struct rkvm_vmx_uret *u = this_cpu_ptr(&rkvm_vmx_uret);
	int i;

	for (i = 0; i < RKVM_VMX_NR_URET; i++) {
		if (rdmsrq_safe(rkvm_vmx_uret_msrs[i], &u->host[i]))
			u->host[i] = 0;
		u->curr[i] = u->host[i];
	}
}

/* On each CPU as VMX is disabled there: the host's values back. */
void rkvm_vmx_uret_cpu_exit(void)
{
	rkvm_vmx_on_user_return(&this_cpu_ptr(&rkvm_vmx_uret)->urn);
}

/*
 * Before a VM entry, interrupts off: user-return MSR `slot` holds `val`
 * until the CPU returns to userspace.
 */
void rkvm_vmx_uret_set(unsigned int slot, u64 val)
{
	struct rkvm_vmx_uret *u = this_cpu_ptr(&rkvm_vmx_uret);

	if (slot >= RKVM_VMX_NR_URET || u->curr[slot] == val)
		return;
	wrmsrq(rkvm_vmx_uret_msrs[slot], val);
	u->curr[slot] = val;
	if (!u->registered) {
		u->urn.on_user_return = rkvm_vmx_on_user_return;
		user_return_notifier_register(&u->urn);
		u->registered = true;
	}
}
