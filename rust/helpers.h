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

u64 rkvm_rdmsr(u32 msr);
void rkvm_wrmsr(u32 msr, u64 val);
bool rkvm_cpu_has(unsigned int feature);
u64 rkvm_page_to_phys(struct page *page);
void *rkvm_page_address(struct page *page);
int rkvm_smp_processor_id(void);

#endif
