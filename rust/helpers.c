// SPDX-License-Identifier: GPL-2.0
/*
 * Why this file exists: these kernel APIs are static inline functions or
 * macros (rdmsrq/wrmsrq, boot_cpu_has, page_to_phys, ...), so Rust has no
 * symbol to call. Each helper is a one-line wrapper; keep it that way.
 * Helpers used by the vendor modules are exported to them.
 */
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/rcuwait.h>
#include <linux/sched.h>
#include <linux/smp.h>
#include <trace/events/ipi.h>
#include <asm/cpufeature.h>
#include <asm/debugreg.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>
#include <asm/fpu/api.h>
#include <linux/uaccess.h>
#include <linux/signal.h>
#include <linux/poll.h>
#include <linux/workqueue.h>
#include <linux/timekeeping.h>
#include <asm/tsc.h>
#include <asm/msr.h>
#include <asm/asm.h>
#include <linux/version.h>
#include "helpers.h"
#include "kvm-kmod-config.h"

/* ./configure's kernel must be the one we are built against. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(RKVM_KERNEL_VERSION, RKVM_KERNEL_PATCHLEVEL, 0) || \
	LINUX_VERSION_CODE >= KERNEL_VERSION(RKVM_KERNEL_VERSION, RKVM_KERNEL_PATCHLEVEL + 1, 0)
#error "built against another kernel than ./configure found: re-run ./configure"
#endif

u64 rkvm_rdmsr(u32 msr)
{
	u64 val;

	rdmsrq(msr, val);
	return val;
}
EXPORT_SYMBOL_GPL(rkvm_rdmsr);

int rkvm_rdmsr_safe(u32 msr, u64 *val)
{
	return rdmsrq_safe(msr, val);
}
EXPORT_SYMBOL_GPL(rkvm_rdmsr_safe);

void rkvm_wrmsr(u32 msr, u64 val)
{
	wrmsrq(msr, val);
}
EXPORT_SYMBOL_GPL(rkvm_wrmsr);

bool rkvm_cpu_has(unsigned int feature)
{
	return boot_cpu_has(feature);
}
EXPORT_SYMBOL_GPL(rkvm_cpu_has);

u64 rkvm_page_to_phys(struct page *page)
{
	return page_to_phys(page);
}
EXPORT_SYMBOL_GPL(rkvm_page_to_phys);

void *rkvm_page_address(struct page *page)
{
	return page_address(page);
}
EXPORT_SYMBOL_GPL(rkvm_page_address);

int rkvm_smp_processor_id(void)
{
	return smp_processor_id();
}
EXPORT_SYMBOL_GPL(rkvm_smp_processor_id);

void rkvm_preempt_disable(void)
{
	preempt_disable();
}
EXPORT_SYMBOL_GPL(rkvm_preempt_disable);

void rkvm_preempt_enable(void)
{
	preempt_enable();
}
EXPORT_SYMBOL_GPL(rkvm_preempt_enable);

void rkvm_local_irq_disable(void)
{
	local_irq_disable();
}
EXPORT_SYMBOL_GPL(rkvm_local_irq_disable);

void rkvm_local_irq_enable(void)
{
	local_irq_enable();
}
EXPORT_SYMBOL_GPL(rkvm_local_irq_enable);

bool rkvm_need_resched(void)
{
	return need_resched();
}
EXPORT_SYMBOL_GPL(rkvm_need_resched);

void rkvm_smp_send_reschedule(int cpu)
{
	smp_send_reschedule(cpu);
}
EXPORT_SYMBOL_GPL(rkvm_smp_send_reschedule);

void rkvm_put_page(struct page *page)
{
	put_page(page);
}
EXPORT_SYMBOL_GPL(rkvm_put_page);

/*
 * Whether the current process maps userspace address `hva` with a leaf of
 * at least 2 MiB (a PMD- or PUD-mapped huge page), as upstream's
 * host_pfn_mapping_level(): a lockless walk with interrupts off, so the
 * page tables cannot be freed under it (x86 frees them after an IPI or an
 * RCU grace period). The answer may be stale at once: the caller maps only
 * if no MMU notifier invalidation ran since it pinned the page.
 */
bool rkvm_hva_mapped_huge(unsigned long hva)
{
	struct mm_struct *mm = current->mm;
	unsigned long flags;
	bool huge = false;
	pgd_t pgd;
	p4d_t p4d;
	pud_t pud;
	pmd_t pmd;

	if (!mm)
		return false;
	local_irq_save(flags);
	pgd = READ_ONCE(*pgd_offset(mm, hva));
	if (pgd_none(pgd))
		goto out;
	p4d = READ_ONCE(*p4d_offset(&pgd, hva));
	if (p4d_none(p4d) || !p4d_present(p4d))
		goto out;
	pud = READ_ONCE(*pud_offset(&p4d, hva));
	if (pud_none(pud) || !pud_present(pud))
		goto out;
	if (pud_leaf(pud)) {
		huge = true;
		goto out;
	}
	pmd = pmdp_get_lockless(pmd_offset(&pud, hva));
	if (pmd_none(pmd) || !pmd_present(pmd))
		goto out;
	huge = pmd_leaf(pmd);
out:
	local_irq_restore(flags);
	return huge;
}
EXPORT_SYMBOL_GPL(rkvm_hva_mapped_huge);

/*
 * Sleeps on `w` (interruptibly) until `*word` is non-zero, as upstream's
 * kvm_vcpu_block(): set_current_state() orders the check with a waker's
 * store and rcuwait_wake_up(). Returns 0 if `*word` was non-zero without
 * sleeping, 1 if it slept and `*word` became non-zero, -EINTR if a signal
 * is pending. One task at a time may wait on `w`.
 */
int rkvm_rcuwait_block(struct rcuwait *w, u64 *word)
{
	int ret = 0;

	prepare_to_rcuwait(w);
	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (READ_ONCE(*word))
			break;
		if (signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		ret = 1;
		schedule();
	}
	finish_rcuwait(w);
	return ret;
}
EXPORT_SYMBOL_GPL(rkvm_rcuwait_block);

/* Wakes the task waiting on `w`, if any; any context. */
void rkvm_rcuwait_wake_up(struct rcuwait *w)
{
	rcuwait_wake_up(w);
}
EXPORT_SYMBOL_GPL(rkvm_rcuwait_wake_up);

void *rkvm_phys_to_virt(u64 pa)
{
	return phys_to_virt(pa);
}
EXPORT_SYMBOL_GPL(rkvm_phys_to_virt);

u64 rkvm_virt_to_phys(void *va)
{
	return virt_to_phys(va);
}
EXPORT_SYMBOL_GPL(rkvm_virt_to_phys);

u64 rkvm_xgetbv(u32 index)
{
	return xgetbv(index);
}
EXPORT_SYMBOL_GPL(rkvm_xgetbv);

void rkvm_xsetbv(u32 index, u64 value)
{
	xsetbv(index, value);
}
EXPORT_SYMBOL_GPL(rkvm_xsetbv);

/* Before entering the guest: reload the (guest) FPU registers if a context
 * switch saved them since fpu_swap_kvm_fpstate(). */
void rkvm_switch_fpu_return(void)
{
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
}
EXPORT_SYMBOL_GPL(rkvm_switch_fpu_return);

/* Context tracking, RCU and time accounting around guest execution. */
void rkvm_guest_enter_irqoff(void)
{
	guest_timing_enter_irqoff();
	guest_state_enter_irqoff();
}
EXPORT_SYMBOL_GPL(rkvm_guest_enter_irqoff);

void rkvm_guest_exit_irqoff(void)
{
	guest_state_exit_irqoff();
}
EXPORT_SYMBOL_GPL(rkvm_guest_exit_irqoff);

void rkvm_guest_timing_exit_irqoff(void)
{
	guest_timing_exit_irqoff();
}
EXPORT_SYMBOL_GPL(rkvm_guest_timing_exit_irqoff);

/* VMRUN does not preserve the host's debug registers. */
void rkvm_hw_breakpoint_restore(void)
{
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
}
EXPORT_SYMBOL_GPL(rkvm_hw_breakpoint_restore);

/*
 * Atomic compare-and-exchange on guest memory mapped at user address
 * `hva` (the emulator's LOCK CMPXCHG and friends), as upstream's
 * emulator_cmpxchg_emulated(): 0 = exchanged, 1 = memory differed (`old`
 * now holds its value), -EFAULT, or -EINVAL for an unsupported size.
 */
int rkvm_cmpxchg_user(u64 hva, void *old, const void *new_val, unsigned int len)
{
	int r;

	switch (len) {
	case 1:
		r = __try_cmpxchg_user((u8 __user *)hva, (u8 *)old, *(const u8 *)new_val, efault1);
		break;
	case 2:
		r = __try_cmpxchg_user((u16 __user *)hva, (u16 *)old, *(const u16 *)new_val, efault2);
		break;
	case 4:
		r = __try_cmpxchg_user((u32 __user *)hva, (u32 *)old, *(const u32 *)new_val, efault4);
		break;
	case 8:
		r = __try_cmpxchg_user((u64 __user *)hva, (u64 *)old, *(const u64 *)new_val, efault8);
		break;
	default:
		return -EINVAL;
	}
	return r;
}
EXPORT_SYMBOL_GPL(rkvm_cmpxchg_user);

/*
 * The emulator's view of the guest's XMM registers. Only called in
 * KVM_RUN, while the guest FPU state is the current one: reload it into
 * the registers if a context switch saved it, then access them with
 * preemption held off.
 */
#define RKVM_XMM_CASE(i, op) case i: asm volatile(op " %%xmm" #i ", %0" : "=m"(*(u8 (*)[16])val)); break;
#define RKVM_XMM_CASE_W(i, op) case i: asm volatile(op " %0, %%xmm" #i :: "m"(*(const u8 (*)[16])val)); break;

void rkvm_read_xmm(unsigned int n, void *val)
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	switch (n) {
	RKVM_XMM_CASE(0, "movdqu") RKVM_XMM_CASE(1, "movdqu") RKVM_XMM_CASE(2, "movdqu")
	RKVM_XMM_CASE(3, "movdqu") RKVM_XMM_CASE(4, "movdqu") RKVM_XMM_CASE(5, "movdqu")
	RKVM_XMM_CASE(6, "movdqu") RKVM_XMM_CASE(7, "movdqu") RKVM_XMM_CASE(8, "movdqu")
	RKVM_XMM_CASE(9, "movdqu") RKVM_XMM_CASE(10, "movdqu") RKVM_XMM_CASE(11, "movdqu")
	RKVM_XMM_CASE(12, "movdqu") RKVM_XMM_CASE(13, "movdqu") RKVM_XMM_CASE(14, "movdqu")
	RKVM_XMM_CASE(15, "movdqu")
	default: memset(val, 0, 16);
	}
	fpregs_unlock();
}
EXPORT_SYMBOL_GPL(rkvm_read_xmm);

void rkvm_write_xmm(unsigned int n, const void *val)
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	switch (n) {
	RKVM_XMM_CASE_W(0, "movdqu") RKVM_XMM_CASE_W(1, "movdqu") RKVM_XMM_CASE_W(2, "movdqu")
	RKVM_XMM_CASE_W(3, "movdqu") RKVM_XMM_CASE_W(4, "movdqu") RKVM_XMM_CASE_W(5, "movdqu")
	RKVM_XMM_CASE_W(6, "movdqu") RKVM_XMM_CASE_W(7, "movdqu") RKVM_XMM_CASE_W(8, "movdqu")
	RKVM_XMM_CASE_W(9, "movdqu") RKVM_XMM_CASE_W(10, "movdqu") RKVM_XMM_CASE_W(11, "movdqu")
	RKVM_XMM_CASE_W(12, "movdqu") RKVM_XMM_CASE_W(13, "movdqu") RKVM_XMM_CASE_W(14, "movdqu")
	RKVM_XMM_CASE_W(15, "movdqu")
	default: break;
	}
	fpregs_unlock();
}
EXPORT_SYMBOL_GPL(rkvm_write_xmm);

/*
 * The emulator's view of the guest's YMM and MMX registers, under the
 * same rules as rkvm_read_xmm. YMM is only touched when the guest's XCR0
 * enables it (so the host has AVX); MMX only after rkvm_fwait_faults()
 * said no x87 exception is pending, as an MMX access would raise it.
 */
#define RKVM_YMM_CASE(i, op) case i: asm volatile(op " %%ymm" #i ", %0" : "=m"(*(u8 (*)[32])val)); break;
#define RKVM_YMM_CASE_W(i, op) case i: asm volatile(op " %0, %%ymm" #i :: "m"(*(const u8 (*)[32])val)); break;
#define RKVM_MM_CASE(i) case i: asm volatile("movq %%mm" #i ", %0" : "=m"(*val)); break;
#define RKVM_MM_CASE_W(i) case i: asm volatile("movq %0, %%mm" #i :: "m"(*val)); break;

void rkvm_read_ymm(unsigned int n, void *val)
{
	if (!boot_cpu_has(X86_FEATURE_AVX)) {
		memset(val, 0, 32);
		return;
	}
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	switch (n) {
	RKVM_YMM_CASE(0, "vmovdqu") RKVM_YMM_CASE(1, "vmovdqu") RKVM_YMM_CASE(2, "vmovdqu")
	RKVM_YMM_CASE(3, "vmovdqu") RKVM_YMM_CASE(4, "vmovdqu") RKVM_YMM_CASE(5, "vmovdqu")
	RKVM_YMM_CASE(6, "vmovdqu") RKVM_YMM_CASE(7, "vmovdqu") RKVM_YMM_CASE(8, "vmovdqu")
	RKVM_YMM_CASE(9, "vmovdqu") RKVM_YMM_CASE(10, "vmovdqu") RKVM_YMM_CASE(11, "vmovdqu")
	RKVM_YMM_CASE(12, "vmovdqu") RKVM_YMM_CASE(13, "vmovdqu") RKVM_YMM_CASE(14, "vmovdqu")
	RKVM_YMM_CASE(15, "vmovdqu")
	default: memset(val, 0, 32);
	}
	fpregs_unlock();
}

void rkvm_write_ymm(unsigned int n, const void *val)
{
	if (!boot_cpu_has(X86_FEATURE_AVX))
		return;
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	switch (n) {
	RKVM_YMM_CASE_W(0, "vmovdqu") RKVM_YMM_CASE_W(1, "vmovdqu") RKVM_YMM_CASE_W(2, "vmovdqu")
	RKVM_YMM_CASE_W(3, "vmovdqu") RKVM_YMM_CASE_W(4, "vmovdqu") RKVM_YMM_CASE_W(5, "vmovdqu")
	RKVM_YMM_CASE_W(6, "vmovdqu") RKVM_YMM_CASE_W(7, "vmovdqu") RKVM_YMM_CASE_W(8, "vmovdqu")
	RKVM_YMM_CASE_W(9, "vmovdqu") RKVM_YMM_CASE_W(10, "vmovdqu") RKVM_YMM_CASE_W(11, "vmovdqu")
	RKVM_YMM_CASE_W(12, "vmovdqu") RKVM_YMM_CASE_W(13, "vmovdqu") RKVM_YMM_CASE_W(14, "vmovdqu")
	RKVM_YMM_CASE_W(15, "vmovdqu")
	default: break;
	}
	fpregs_unlock();
}

void rkvm_read_mmx(unsigned int n, u64 *val)
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	switch (n) {
	RKVM_MM_CASE(0) RKVM_MM_CASE(1) RKVM_MM_CASE(2) RKVM_MM_CASE(3)
	RKVM_MM_CASE(4) RKVM_MM_CASE(5) RKVM_MM_CASE(6) RKVM_MM_CASE(7)
	default: *val = 0;
	}
	fpregs_unlock();
}

void rkvm_write_mmx(unsigned int n, const u64 *val)
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	switch (n) {
	RKVM_MM_CASE_W(0) RKVM_MM_CASE_W(1) RKVM_MM_CASE_W(2) RKVM_MM_CASE_W(3)
	RKVM_MM_CASE_W(4) RKVM_MM_CASE_W(5) RKVM_MM_CASE_W(6) RKVM_MM_CASE_W(7)
	default: break;
	}
	fpregs_unlock();
}

/*
 * FWAIT on the guest's x87 state: true if it faulted (#MF), i.e. an
 * unmasked x87 exception is pending. The exception table entry turns the
 * kernel-mode #MF into a return value, as upstream's asm_safe() does.
 */
bool rkvm_fwait_faults(void)
{
	int fault = 0;

	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
	asm volatile("1: fwait\n"
		     "2:\n"
		     _ASM_EXTABLE_TYPE_REG(1b, 2b, EX_TYPE_ONE_REG, %[fault])
		     : [fault] "+r"(fault));
	fpregs_unlock();
	return fault != 0;
}

u64 rkvm_task_size_max(void)
{
	return TASK_SIZE_MAX;
}
EXPORT_SYMBOL_GPL(rkvm_task_size_max);

void rkvm_cond_resched(void)
{
	cond_resched();
}
EXPORT_SYMBOL_GPL(rkvm_cond_resched);

/* Physically contiguous, zeroed 2^order pages (SVM's IOPM and MSRPM). */
struct page *rkvm_alloc_pages_zeroed(unsigned int order)
{
	return alloc_pages(GFP_KERNEL_ACCOUNT | __GFP_ZERO, order);
}
EXPORT_SYMBOL_GPL(rkvm_alloc_pages_zeroed);

/*
 * A zeroed page below 4 GiB: a PAE root of the shadow MMU, which the
 * hardware finds through a 32-bit CR3 when the guest is not in long mode.
 */
struct page *rkvm_alloc_page_dma32_zeroed(void)
{
	return alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_DMA32);
}
EXPORT_SYMBOL_GPL(rkvm_alloc_page_dma32_zeroed);

void rkvm_free_pages(struct page *page, unsigned int order)
{
	__free_pages(page, order);
}
EXPORT_SYMBOL_GPL(rkvm_free_pages);

u64 rkvm_rdtsc(void)
{
	return rdtsc();
}
EXPORT_SYMBOL_GPL(rkvm_rdtsc);

unsigned int rkvm_num_online_cpus(void)
{
	return num_online_cpus();
}
EXPORT_SYMBOL_GPL(rkvm_num_online_cpus);

u64 rkvm_ktime_get_boottime_ns(void)
{
	return ktime_get_boottime_ns();
}
EXPORT_SYMBOL_GPL(rkvm_ktime_get_boottime_ns);

u64 rkvm_ktime_get_real_ns(void)
{
	return ktime_get_real_ns();
}
EXPORT_SYMBOL_GPL(rkvm_ktime_get_real_ns);

unsigned int rkvm_tsc_khz(void)
{
	return tsc_khz;
}
EXPORT_SYMBOL_GPL(rkvm_tsc_khz);

/*
 * KVM_SET_SIGNAL_MASK: the signal mask that applies while KVM_RUN runs,
 * as upstream's kvm_sigset_activate()/deactivate(): the task's own mask is
 * parked in ->real_blocked, which only current changes.
 */
void rkvm_sigset_activate(u64 mask)
{
	sigset_t set;

	set.sig[0] = mask;
	sigprocmask(SIG_SETMASK, &set, &current->real_blocked);
}
EXPORT_SYMBOL_GPL(rkvm_sigset_activate);

void rkvm_sigset_deactivate(void)
{
	sigprocmask(SIG_SETMASK, &current->real_blocked, NULL);
	sigemptyset(&current->real_blocked);
}
EXPORT_SYMBOL_GPL(rkvm_sigset_deactivate);

u64 rkvm_ktime_get_ns(void)
{
	return ktime_get_ns();
}
EXPORT_SYMBOL_GPL(rkvm_ktime_get_ns);

unsigned int rkvm_vfs_poll(struct file *file, struct poll_table_struct *pt)
{
	return vfs_poll(file, pt);
}
EXPORT_SYMBOL_GPL(rkvm_vfs_poll);

struct workqueue_struct *rkvm_alloc_workqueue(const char *name)
{
	return alloc_workqueue("%s", WQ_UNBOUND, 0, name);
}
