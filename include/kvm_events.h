/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rkvm's tracepoints: upstream's "kvm" trace system (arch/x86/kvm/trace.h
 * and include/trace/events/kvm.h), same event names, fields, field types
 * and output formats, so perf kvm stat, trace-cmd and kvm_stat read them
 * as upstream's. Only TP_PROTO differs: the callers are Rust, so every
 * argument is a plain value (upstream passes struct kvm_vcpu * and reads
 * the fields in TP_fast_assign). Rust calls them through rust/trace.rs;
 * x86/kvm_trace.c instantiates them (CREATE_TRACE_POINTS).
 *
 * C because trace events are C macros (as Rust Binder's
 * rust_binder_events.h in 7.3).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE kvm_events
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .

#if !defined(_RKVM_EVENTS_H) || defined(TRACE_HEADER_MULTI_READ)
#define _RKVM_EVENTS_H

#include <linux/tracepoint.h>
#include <linux/kvm.h>
#include <asm/apicdef.h>
#include <asm/svm.h>
#include <asm/vmx.h>

#define RKVM_KVM_ISA_VMX 1
#define RKVM_KVM_ISA_SVM 2

TRACE_EVENT(kvm_entry,
	TP_PROTO(unsigned int vcpu_id, unsigned long rip, bool immediate_exit,
		 u32 intr_info, u32 error_code),
	TP_ARGS(vcpu_id, rip, immediate_exit, intr_info, error_code),
	TP_STRUCT__entry(
		__field(unsigned int, vcpu_id)
		__field(unsigned long, rip)
		__field(bool, immediate_exit)
		__field(u32, intr_info)
		__field(u32, error_code)
	),
	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->rip = rip;
		__entry->immediate_exit = immediate_exit;
		__entry->intr_info = intr_info;
		__entry->error_code = error_code;
	),
	TP_printk("vcpu %u, rip 0x%lx intr_info 0x%08x error_code 0x%08x%s",
		  __entry->vcpu_id, __entry->rip,
		  __entry->intr_info, __entry->error_code,
		  __entry->immediate_exit ? "[immediate exit]" : "")
);

TRACE_EVENT(kvm_hypercall,
	TP_PROTO(unsigned long nr, unsigned long a0, unsigned long a1,
		 unsigned long a2, unsigned long a3),
	TP_ARGS(nr, a0, a1, a2, a3),
	TP_STRUCT__entry(
		__field(unsigned long, nr)
		__field(unsigned long, a0)
		__field(unsigned long, a1)
		__field(unsigned long, a2)
		__field(unsigned long, a3)
	),
	TP_fast_assign(
		__entry->nr = nr;
		__entry->a0 = a0;
		__entry->a1 = a1;
		__entry->a2 = a2;
		__entry->a3 = a3;
	),
	TP_printk("nr 0x%lx a0 0x%lx a1 0x%lx a2 0x%lx a3 0x%lx",
		  __entry->nr, __entry->a0, __entry->a1, __entry->a2,
		  __entry->a3)
);

TRACE_EVENT(kvm_pio,
	TP_PROTO(unsigned int rw, unsigned int port, unsigned int size,
		 unsigned int count, unsigned int val),
	TP_ARGS(rw, port, size, count, val),
	TP_STRUCT__entry(
		__field(unsigned int, rw)
		__field(unsigned int, port)
		__field(unsigned int, size)
		__field(unsigned int, count)
		__field(unsigned int, val)
	),
	TP_fast_assign(
		__entry->rw = rw;
		__entry->port = port;
		__entry->size = size;
		__entry->count = count;
		__entry->val = val;
	),
	TP_printk("pio_%s at 0x%x size %d count %d val 0x%x %s",
		  __entry->rw ? "write" : "read",
		  __entry->port, __entry->size, __entry->count, __entry->val,
		  __entry->count > 1 ? "(...)" : "")
);

TRACE_EVENT(kvm_cpuid,
	TP_PROTO(unsigned int function, unsigned int index, unsigned long rax,
		 unsigned long rbx, unsigned long rcx, unsigned long rdx,
		 bool found, bool used_max_basic),
	TP_ARGS(function, index, rax, rbx, rcx, rdx, found, used_max_basic),
	TP_STRUCT__entry(
		__field(unsigned int, function)
		__field(unsigned int, index)
		__field(unsigned long, rax)
		__field(unsigned long, rbx)
		__field(unsigned long, rcx)
		__field(unsigned long, rdx)
		__field(bool, found)
		__field(bool, used_max_basic)
	),
	TP_fast_assign(
		__entry->function = function;
		__entry->index = index;
		__entry->rax = rax;
		__entry->rbx = rbx;
		__entry->rcx = rcx;
		__entry->rdx = rdx;
		__entry->found = found;
		__entry->used_max_basic = used_max_basic;
	),
	TP_printk("func %x idx %x rax %lx rbx %lx rcx %lx rdx %lx, cpuid entry %s%s",
		  __entry->function, __entry->index, __entry->rax,
		  __entry->rbx, __entry->rcx, __entry->rdx,
		  __entry->found ? "found" : "not found",
		  __entry->used_max_basic ? ", used max basic" : "")
);

#define RKVM_AREG(x) { APIC_##x, "APIC_" #x }
#define rkvm_trace_symbol_apic						    \
	RKVM_AREG(ID), RKVM_AREG(LVR), RKVM_AREG(TASKPRI),		    \
	RKVM_AREG(ARBPRI), RKVM_AREG(PROCPRI), RKVM_AREG(EOI),		    \
	RKVM_AREG(RRR), RKVM_AREG(LDR), RKVM_AREG(DFR), RKVM_AREG(SPIV),    \
	RKVM_AREG(ISR), RKVM_AREG(TMR), RKVM_AREG(IRR), RKVM_AREG(ESR),	    \
	RKVM_AREG(ICR), RKVM_AREG(ICR2), RKVM_AREG(LVTT),		    \
	RKVM_AREG(LVTTHMR), RKVM_AREG(LVTPC), RKVM_AREG(LVT0),		    \
	RKVM_AREG(LVT1), RKVM_AREG(LVTERR), RKVM_AREG(TMICT),		    \
	RKVM_AREG(TMCCT), RKVM_AREG(TDCR), RKVM_AREG(SELF_IPI),		    \
	RKVM_AREG(EFEAT), RKVM_AREG(ECTRL)

TRACE_EVENT(kvm_apic,
	TP_PROTO(unsigned int rw, unsigned int reg, u64 val),
	TP_ARGS(rw, reg, val),
	TP_STRUCT__entry(
		__field(unsigned int, rw)
		__field(unsigned int, reg)
		__field(u64, val)
	),
	TP_fast_assign(
		__entry->rw = rw;
		__entry->reg = reg;
		__entry->val = val;
	),
	TP_printk("apic_%s %s = 0x%llx",
		  __entry->rw ? "write" : "read",
		  __print_symbolic(__entry->reg, rkvm_trace_symbol_apic),
		  __entry->val)
);

#define rkvm_print_exit_reason(exit_reason, isa)			\
	(isa == RKVM_KVM_ISA_VMX) ?					\
	__print_symbolic(exit_reason & 0xffff, VMX_EXIT_REASONS) :	\
	__print_symbolic_u64(exit_reason, SVM_EXIT_REASONS),		\
	(isa == RKVM_KVM_ISA_VMX && exit_reason & ~0xffff) ? " " : "",	\
	(isa == RKVM_KVM_ISA_VMX) ?					\
	__print_flags_u64(exit_reason & ~0xffff, " ", VMX_EXIT_REASON_FLAGS) : ""

TRACE_EVENT(kvm_exit,
	TP_PROTO(unsigned int exit_reason, unsigned long guest_rip, u32 isa,
		 u64 info1, u64 info2, u32 intr_info, u32 error_code,
		 unsigned int vcpu_id, u64 requests),
	TP_ARGS(exit_reason, guest_rip, isa, info1, info2, intr_info,
		error_code, vcpu_id, requests),
	TP_STRUCT__entry(
		__field(unsigned int, exit_reason)
		__field(unsigned long, guest_rip)
		__field(u32, isa)
		__field(u64, info1)
		__field(u64, info2)
		__field(u32, intr_info)
		__field(u32, error_code)
		__field(unsigned int, vcpu_id)
		__field(u64, requests)
	),
	TP_fast_assign(
		__entry->exit_reason = exit_reason;
		__entry->guest_rip = guest_rip;
		__entry->isa = isa;
		__entry->info1 = info1;
		__entry->info2 = info2;
		__entry->intr_info = intr_info;
		__entry->error_code = error_code;
		__entry->vcpu_id = vcpu_id;
		__entry->requests = requests;
	),
	TP_printk("vcpu %u reason %s%s%s rip 0x%lx info1 0x%016llx "
		  "info2 0x%016llx intr_info 0x%08x error_code 0x%08x "
		  "requests 0x%016llx",
		  __entry->vcpu_id,
		  rkvm_print_exit_reason(__entry->exit_reason, __entry->isa),
		  __entry->guest_rip, __entry->info1, __entry->info2,
		  __entry->intr_info, __entry->error_code,
		  __entry->requests)
);

TRACE_EVENT(kvm_inj_virq,
	TP_PROTO(unsigned int vector, bool soft, bool reinjected),
	TP_ARGS(vector, soft, reinjected),
	TP_STRUCT__entry(
		__field(unsigned int, vector)
		__field(bool, soft)
		__field(bool, reinjected)
	),
	TP_fast_assign(
		__entry->vector = vector;
		__entry->soft = soft;
		__entry->reinjected = reinjected;
	),
	TP_printk("%s 0x%x%s",
		  __entry->soft ? "Soft/INTn" : "IRQ", __entry->vector,
		  __entry->reinjected ? " [reinjected]" : "")
);

#define RKVM_EXS(x) { x##_VECTOR, "#" #x }
#define rkvm_trace_sym_exc						\
	RKVM_EXS(DE), RKVM_EXS(DB), RKVM_EXS(BP), RKVM_EXS(OF),		\
	RKVM_EXS(BR), RKVM_EXS(UD), RKVM_EXS(NM), RKVM_EXS(DF),		\
	RKVM_EXS(TS), RKVM_EXS(NP), RKVM_EXS(SS), RKVM_EXS(GP),		\
	RKVM_EXS(PF), RKVM_EXS(MF), RKVM_EXS(AC), RKVM_EXS(MC),		\
	RKVM_EXS(XM), RKVM_EXS(VE), RKVM_EXS(CP), RKVM_EXS(HV),		\
	RKVM_EXS(VC), RKVM_EXS(SX)

TRACE_EVENT(kvm_inj_exception,
	TP_PROTO(unsigned int exception, bool has_error, unsigned int error_code,
		 bool reinjected),
	TP_ARGS(exception, has_error, error_code, reinjected),
	TP_STRUCT__entry(
		__field(u8, exception)
		__field(u8, has_error)
		__field(u32, error_code)
		__field(bool, reinjected)
	),
	TP_fast_assign(
		__entry->exception = exception;
		__entry->has_error = has_error;
		__entry->error_code = error_code;
		__entry->reinjected = reinjected;
	),
	TP_printk("%s%s%s%s%s",
		  __print_symbolic(__entry->exception, rkvm_trace_sym_exc),
		  !__entry->has_error ? "" : " (",
		  !__entry->has_error ? "" : __print_symbolic(__entry->error_code),
		  !__entry->has_error ? "" : ")",
		  __entry->reinjected ? " [reinjected]" : "")
);

TRACE_EVENT(kvm_page_fault,
	TP_PROTO(unsigned int vcpu_id, unsigned long guest_rip,
		 u64 fault_address, u64 error_code),
	TP_ARGS(vcpu_id, guest_rip, fault_address, error_code),
	TP_STRUCT__entry(
		__field(unsigned int, vcpu_id)
		__field(unsigned long, guest_rip)
		__field(u64, fault_address)
		__field(u64, error_code)
	),
	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->guest_rip = guest_rip;
		__entry->fault_address = fault_address;
		__entry->error_code = error_code;
	),
	TP_printk("vcpu %u rip 0x%lx address 0x%016llx error_code 0x%llx",
		  __entry->vcpu_id, __entry->guest_rip,
		  __entry->fault_address, __entry->error_code)
);

TRACE_EVENT(kvm_msr,
	TP_PROTO(unsigned int write, u32 ecx, u64 data, bool exception),
	TP_ARGS(write, ecx, data, exception),
	TP_STRUCT__entry(
		__field(unsigned, write)
		__field(u32, ecx)
		__field(u64, data)
		__field(u8, exception)
	),
	TP_fast_assign(
		__entry->write = write;
		__entry->ecx = ecx;
		__entry->data = data;
		__entry->exception = exception;
	),
	TP_printk("msr_%s %x = 0x%llx%s",
		  __entry->write ? "write" : "read",
		  __entry->ecx, __entry->data,
		  __entry->exception ? " (#GP)" : "")
);

TRACE_EVENT(kvm_cr,
	TP_PROTO(unsigned int rw, unsigned int cr, unsigned long val),
	TP_ARGS(rw, cr, val),
	TP_STRUCT__entry(
		__field(unsigned int, rw)
		__field(unsigned int, cr)
		__field(unsigned long, val)
	),
	TP_fast_assign(
		__entry->rw = rw;
		__entry->cr = cr;
		__entry->val = val;
	),
	TP_printk("cr_%s %x = 0x%lx",
		  __entry->rw ? "write" : "read",
		  __entry->cr, __entry->val)
);

TRACE_EVENT(kvm_pic_set_irq,
	TP_PROTO(__u8 chip, __u8 pin, __u8 elcr, __u8 imr, bool coalesced),
	TP_ARGS(chip, pin, elcr, imr, coalesced),
	TP_STRUCT__entry(
		__field(__u8, chip)
		__field(__u8, pin)
		__field(__u8, elcr)
		__field(__u8, imr)
		__field(bool, coalesced)
	),
	TP_fast_assign(
		__entry->chip = chip;
		__entry->pin = pin;
		__entry->elcr = elcr;
		__entry->imr = imr;
		__entry->coalesced = coalesced;
	),
	TP_printk("chip %u pin %u (%s%s)%s",
		  __entry->chip, __entry->pin,
		  (__entry->elcr & (1 << __entry->pin)) ? "level" : "edge",
		  (__entry->imr & (1 << __entry->pin)) ? "|masked" : "",
		  __entry->coalesced ? " (coalesced)" : "")
);

#define rkvm_deliver_mode		\
	{0x0, "Fixed"},			\
	{0x1, "LowPrio"},		\
	{0x2, "SMI"},			\
	{0x3, "Res3"},			\
	{0x4, "NMI"},			\
	{0x5, "INIT"},			\
	{0x6, "SIPI"},			\
	{0x7, "ExtINT"}

#define rkvm_apic_dst_shorthand		\
	{0x0, "dst"},			\
	{0x1, "self"},			\
	{0x2, "all"},			\
	{0x3, "all-but-self"}

TRACE_EVENT(kvm_apic_ipi,
	TP_PROTO(__u32 icr_low, __u32 dest_id),
	TP_ARGS(icr_low, dest_id),
	TP_STRUCT__entry(
		__field(__u32, icr_low)
		__field(__u32, dest_id)
	),
	TP_fast_assign(
		__entry->icr_low = icr_low;
		__entry->dest_id = dest_id;
	),
	TP_printk("dst %x vec %u (%s|%s|%s|%s|%s)",
		  __entry->dest_id, (u8)__entry->icr_low,
		  __print_symbolic((__entry->icr_low >> 8 & 0x7), rkvm_deliver_mode),
		  (__entry->icr_low & (1 << 11)) ? "logical" : "physical",
		  (__entry->icr_low & (1 << 14)) ? "assert" : "de-assert",
		  (__entry->icr_low & (1 << 15)) ? "level" : "edge",
		  __print_symbolic((__entry->icr_low >> 18 & 0x3), rkvm_apic_dst_shorthand))
);

TRACE_EVENT(kvm_apic_accept_irq,
	TP_PROTO(__u32 apicid, __u16 dm, __u16 tm, __u8 vec),
	TP_ARGS(apicid, dm, tm, vec),
	TP_STRUCT__entry(
		__field(__u32, apicid)
		__field(__u16, dm)
		__field(__u16, tm)
		__field(__u8, vec)
	),
	TP_fast_assign(
		__entry->apicid = apicid;
		__entry->dm = dm;
		__entry->tm = tm;
		__entry->vec = vec;
	),
	TP_printk("apicid %x vec %u (%s|%s)",
		  __entry->apicid, __entry->vec,
		  __print_symbolic((__entry->dm >> 8 & 0x7), rkvm_deliver_mode),
		  __entry->tm ? "level" : "edge")
);

TRACE_EVENT(kvm_eoi,
	TP_PROTO(__u32 apicid, int vector),
	TP_ARGS(apicid, vector),
	TP_STRUCT__entry(
		__field(__u32, apicid)
		__field(int, vector)
	),
	TP_fast_assign(
		__entry->apicid = apicid;
		__entry->vector = vector;
	),
	TP_printk("apicid %x vector %d", __entry->apicid, __entry->vector)
);

TRACE_EVENT(kvm_msi_set_irq,
	TP_PROTO(__u64 address, __u64 data),
	TP_ARGS(address, data),
	TP_STRUCT__entry(
		__field(__u64, address)
		__field(__u64, data)
	),
	TP_fast_assign(
		__entry->address = address;
		__entry->data = data;
	),
	TP_printk("dst %llx vec %u (%s|%s|%s%s)",
		  (u8)(__entry->address >> 12) | ((__entry->address >> 32) & 0xffffff00),
		  (u8)__entry->data,
		  __print_symbolic((__entry->data >> 8 & 0x7), rkvm_deliver_mode),
		  (__entry->address & (1 << 2)) ? "logical" : "physical",
		  (__entry->data & (1 << 15)) ? "level" : "edge",
		  (__entry->address & (1 << 3)) ? "|rh" : "")
);

/* include/trace/events/kvm.h (generic) */

#define RKVM_ERSN(x) { KVM_EXIT_##x, "KVM_EXIT_" #x }
#define rkvm_trace_exit_reason						\
	RKVM_ERSN(UNKNOWN), RKVM_ERSN(EXCEPTION), RKVM_ERSN(IO),	\
	RKVM_ERSN(HYPERCALL), RKVM_ERSN(DEBUG), RKVM_ERSN(HLT),		\
	RKVM_ERSN(MMIO), RKVM_ERSN(IRQ_WINDOW_OPEN), RKVM_ERSN(SHUTDOWN),\
	RKVM_ERSN(FAIL_ENTRY), RKVM_ERSN(INTR), RKVM_ERSN(SET_TPR),	\
	RKVM_ERSN(TPR_ACCESS), RKVM_ERSN(S390_SIEIC), RKVM_ERSN(S390_RESET),\
	RKVM_ERSN(DCR), RKVM_ERSN(NMI), RKVM_ERSN(INTERNAL_ERROR),	\
	RKVM_ERSN(OSI), RKVM_ERSN(PAPR_HCALL), RKVM_ERSN(S390_UCONTROL),\
	RKVM_ERSN(WATCHDOG), RKVM_ERSN(S390_TSCH), RKVM_ERSN(EPR),	\
	RKVM_ERSN(SYSTEM_EVENT), RKVM_ERSN(S390_STSI),			\
	RKVM_ERSN(IOAPIC_EOI), RKVM_ERSN(HYPERV), RKVM_ERSN(ARM_NISV),	\
	RKVM_ERSN(X86_RDMSR), RKVM_ERSN(X86_WRMSR)

TRACE_EVENT(kvm_userspace_exit,
	TP_PROTO(__u32 reason, int errno),
	TP_ARGS(reason, errno),
	TP_STRUCT__entry(
		__field(__u32, reason)
		__field(int, errno)
	),
	TP_fast_assign(
		__entry->reason = reason;
		__entry->errno = errno;
	),
	TP_printk("reason %s (%d)",
		  __entry->errno < 0 ?
		  (__entry->errno == -EINTR ? "restart" : "error") :
		  __print_symbolic(__entry->reason, rkvm_trace_exit_reason),
		  __entry->errno < 0 ? -__entry->errno : __entry->reason)
);

TRACE_EVENT(kvm_vcpu_wakeup,
	TP_PROTO(__u64 ns, bool waited, bool valid),
	TP_ARGS(ns, waited, valid),
	TP_STRUCT__entry(
		__field(__u64, ns)
		__field(bool, waited)
		__field(bool, valid)
	),
	TP_fast_assign(
		__entry->ns = ns;
		__entry->waited = waited;
		__entry->valid = valid;
	),
	TP_printk("%s time %lld ns, polling %s",
		  __entry->waited ? "wait" : "poll",
		  __entry->ns,
		  __entry->valid ? "valid" : "invalid")
);

TRACE_EVENT(kvm_set_irq,
	TP_PROTO(unsigned int gsi, int level, int irq_source_id),
	TP_ARGS(gsi, level, irq_source_id),
	TP_STRUCT__entry(
		__field(unsigned int, gsi)
		__field(int, level)
		__field(int, irq_source_id)
	),
	TP_fast_assign(
		__entry->gsi = gsi;
		__entry->level = level;
		__entry->irq_source_id = irq_source_id;
	),
	TP_printk("gsi %u level %d source %d",
		  __entry->gsi, __entry->level, __entry->irq_source_id)
);

#define RKVM_TRACE_MMIO_READ_UNSATISFIED 0
#define RKVM_TRACE_MMIO_READ 1
#define RKVM_TRACE_MMIO_WRITE 2
#define rkvm_trace_symbol_mmio						\
	{ RKVM_TRACE_MMIO_READ_UNSATISFIED, "unsatisfied-read" },	\
	{ RKVM_TRACE_MMIO_READ, "read" },				\
	{ RKVM_TRACE_MMIO_WRITE, "write" }

TRACE_EVENT(kvm_mmio,
	TP_PROTO(u32 type, u32 len, u64 gpa, u64 val),
	TP_ARGS(type, len, gpa, val),
	TP_STRUCT__entry(
		__field(u32, type)
		__field(u32, len)
		__field(u64, gpa)
		__field(u64, val)
	),
	TP_fast_assign(
		__entry->type = type;
		__entry->len = len;
		__entry->gpa = gpa;
		__entry->val = val;
	),
	TP_printk("mmio %s len %u gpa 0x%llx val 0x%llx",
		  __print_symbolic(__entry->type, rkvm_trace_symbol_mmio),
		  __entry->len, __entry->gpa, __entry->val)
);

TRACE_EVENT(kvm_fpu,
	TP_PROTO(int load),
	TP_ARGS(load),
	TP_STRUCT__entry(
		__field(u32, load)
	),
	TP_fast_assign(
		__entry->load = load;
	),
	TP_printk("%s", __print_symbolic(__entry->load, {0, "unload"}, {1, "load"}))
);

#endif /* _RKVM_EVENTS_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
