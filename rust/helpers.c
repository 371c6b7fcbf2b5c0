// SPDX-License-Identifier: GPL-2.0
/*
 * Why this file exists: these kernel APIs are static inline functions or
 * macros (rdmsrq/wrmsrq, boot_cpu_has, page_to_phys, ...), so Rust has no
 * symbol to call. Each helper is a one-line wrapper; keep it that way.
 * Helpers used by the vendor modules are exported to them.
 */
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/smp.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include "helpers.h"

u64 rkvm_rdmsr(u32 msr)
{
	u64 val;

	rdmsrq(msr, val);
	return val;
}
EXPORT_SYMBOL_GPL(rkvm_rdmsr);

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
