/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of rust/helpers.c: static inline kernel functions and macros
 * that bindgen cannot see as symbols. Rust calls these through
 * rust/bindings.rs.
 */
#ifndef RKVM_HELPERS_H
#define RKVM_HELPERS_H
#include <linux/types.h>

struct page;
struct rcuwait;

u64 rkvm_rdmsr(u32 msr);
int rkvm_rdmsr_safe(u32 msr, u64 *val);
void rkvm_wrmsr(u32 msr, u64 val);
bool rkvm_cpu_has(unsigned int feature);
u64 rkvm_page_to_phys(struct page *page);
void *rkvm_page_address(struct page *page);
int rkvm_smp_processor_id(void);

void rkvm_preempt_disable(void);
void rkvm_preempt_enable(void);
void rkvm_local_irq_disable(void);
void rkvm_local_irq_enable(void);
bool rkvm_need_resched(void);
void rkvm_smp_send_reschedule(int cpu);

void rkvm_put_page(struct page *page);
bool rkvm_hva_mapped_huge(unsigned long hva);
int rkvm_rcuwait_block(struct rcuwait *w, u64 *word);
void rkvm_rcuwait_wake_up(struct rcuwait *w);
void *rkvm_phys_to_virt(u64 pa);
u64 rkvm_virt_to_phys(void *va);

u64 rkvm_xgetbv(u32 index);
void rkvm_xsetbv(u32 index, u64 value);
void rkvm_switch_fpu_return(void);
void rkvm_guest_enter_irqoff(void);
void rkvm_guest_exit_irqoff(void);
void rkvm_guest_timing_exit_irqoff(void);
void rkvm_hw_breakpoint_restore(void);

int rkvm_cmpxchg_user(u64 hva, void *old, const void *new_val, unsigned int len);
void rkvm_read_xmm(unsigned int n, void *val);
void rkvm_write_xmm(unsigned int n, const void *val);
void rkvm_read_ymm(unsigned int n, void *val);
void rkvm_write_ymm(unsigned int n, const void *val);
void rkvm_read_mmx(unsigned int n, u64 *val);
void rkvm_write_mmx(unsigned int n, const u64 *val);
bool rkvm_fwait_faults(void);
u64 rkvm_task_size_max(void);
void rkvm_cond_resched(void);
struct page *rkvm_alloc_pages_zeroed(unsigned int order);
struct page *rkvm_alloc_page_dma32_zeroed(void);
void rkvm_free_pages(struct page *page, unsigned int order);
u64 rkvm_rdtsc(void);
unsigned int rkvm_num_online_cpus(void);
u64 rkvm_ktime_get_boottime_ns(void);
u64 rkvm_ktime_get_real_ns(void);
u64 rkvm_ktime_get_ns(void);
unsigned int rkvm_tsc_khz(void);
void rkvm_sigset_activate(u64 mask);
void rkvm_sigset_deactivate(void);
struct file;
struct poll_table_struct;
unsigned int rkvm_vfs_poll(struct file *file, struct poll_table_struct *pt);
struct workqueue_struct;
struct workqueue_struct *rkvm_alloc_workqueue(const char *name);

#endif
