/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rkvm: x86 part of the /dev/kvm userspace ABI.
 *
 * Written for rkvm; binary compatible with <asm/kvm.h> of Linux 7.3 on
 * x86-64 (every struct layout, ioctl number and constant is checked
 * against the kernel's own header by scripts/uapi-check.sh).  The
 * identifiers are the kernel's so that existing userspace builds
 * against this file unchanged.
 *
 * This file is normally reached through <linux/kvm.h>.
 */
#ifndef _ASM_X86_KVM_H
#define _ASM_X86_KVM_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/stddef.h>

/* Older <linux/stddef.h> lack it; same expansion as the kernel's. */
#ifndef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME)	\
	struct {				\
		struct { } __empty_ ## NAME;	\
		TYPE NAME[];			\
	}
#endif

/* ------------------------------------------------------------------ */
/* Page offsets inside the mmap of a vCPU fd (page 0 is struct kvm_run) */

#define KVM_PIO_PAGE_OFFSET		1
#define KVM_COALESCED_MMIO_PAGE_OFFSET	2
#define KVM_DIRTY_LOG_PAGE_OFFSET	64

/* ------------------------------------------------------------------ */
/* Architectural exception vectors */

#define DE_VECTOR 0	/* divide error */
#define DB_VECTOR 1	/* debug */
#define BP_VECTOR 3	/* int3 */
#define OF_VECTOR 4	/* overflow */
#define BR_VECTOR 5	/* bound range */
#define UD_VECTOR 6	/* invalid opcode */
#define NM_VECTOR 7	/* device not available */
#define DF_VECTOR 8	/* double fault */
#define TS_VECTOR 10	/* invalid TSS */
#define NP_VECTOR 11	/* segment not present */
#define SS_VECTOR 12	/* stack fault */
#define GP_VECTOR 13	/* general protection */
#define PF_VECTOR 14	/* page fault */
#define MF_VECTOR 16	/* x87 floating point */
#define AC_VECTOR 17	/* alignment check */
#define MC_VECTOR 18	/* machine check */
#define XM_VECTOR 19	/* SIMD floating point */
#define VE_VECTOR 20	/* virtualization exception */
#define CP_VECTOR 21	/* control protection */
#define HV_VECTOR 28	/* hypervisor injection */
#define VC_VECTOR 29	/* VMM communication */
#define SX_VECTOR 30	/* security exception */

/* ------------------------------------------------------------------ */
/* Optional parts of <linux/kvm.h> that exist on x86 */

#define __KVM_HAVE_PIT
#define __KVM_HAVE_IOAPIC
#define __KVM_HAVE_IRQ_LINE
#define __KVM_HAVE_MSI
#define __KVM_HAVE_USER_NMI
#define __KVM_HAVE_MSIX
#define __KVM_HAVE_MCE
#define __KVM_HAVE_PIT_STATE2
#define __KVM_HAVE_XEN_HVM
#define __KVM_HAVE_VCPU_EVENTS
#define __KVM_HAVE_DEBUGREGS
#define __KVM_HAVE_XSAVE
#define __KVM_HAVE_XCRS

/* Number of interrupt vectors of the architecture. */
#define KVM_NR_INTERRUPTS 256

/* ------------------------------------------------------------------ */
/* In-kernel interrupt controllers (KVM_GET_IRQCHIP / KVM_SET_IRQCHIP) */

/* One 8259A. */
struct kvm_pic_state {
	__u8 last_irr;			/* IRR at the last edge check */
	__u8 irr;			/* request register */
	__u8 imr;			/* mask register */
	__u8 isr;			/* in-service register */
	__u8 priority_add;		/* rotating priority base */
	__u8 irq_base;			/* ICW2 vector base */
	__u8 read_reg_select;
	__u8 poll;
	__u8 special_mask;
	__u8 init_state;
	__u8 auto_eoi;
	__u8 rotate_on_auto_eoi;
	__u8 special_fully_nested_mode;
	__u8 init4;			/* ICW4 expected */
	__u8 elcr;			/* edge/level control */
	__u8 elcr_mask;
};

#define KVM_IOAPIC_NUM_PINS  24

struct kvm_ioapic_state {
	__u64 base_address;
	__u32 ioregsel;
	__u32 id;
	__u32 irr;
	__u32 pad;
	union {
		__u64 bits;
		struct {
			__u8 vector;
			__u8 delivery_mode:3;
			__u8 dest_mode:1;
			__u8 delivery_status:1;
			__u8 polarity:1;
			__u8 remote_irr:1;
			__u8 trig_mode:1;
			__u8 mask:1;
			__u8 reserve:7;
			__u8 reserved[4];
			__u8 dest_id;
		} fields;
	} redirtbl[KVM_IOAPIC_NUM_PINS];
};

/* kvm_irqchip.chip_id */
#define KVM_IRQCHIP_PIC_MASTER   0
#define KVM_IRQCHIP_PIC_SLAVE    1
#define KVM_IRQCHIP_IOAPIC       2
#define KVM_NR_IRQCHIPS          3

/* kvm_run.flags */
#define KVM_RUN_X86_SMM		(1 << 0)
#define KVM_RUN_X86_BUS_LOCK	(1 << 1)
#define KVM_RUN_X86_GUEST_MODE	(1 << 2)

/* ------------------------------------------------------------------ */
/* Register state */

/* KVM_GET_REGS / KVM_SET_REGS */
struct kvm_regs {
	__u64 rax, rbx, rcx, rdx;
	__u64 rsi, rdi, rsp, rbp;
	__u64 r8,  r9,  r10, r11;
	__u64 r12, r13, r14, r15;
	__u64 rip, rflags;
};

/* KVM_GET_LAPIC / KVM_SET_LAPIC: the 4 KiB APIC page, first 1 KiB */
#define KVM_APIC_REG_SIZE 0x400
struct kvm_lapic_state {
	char regs[KVM_APIC_REG_SIZE];
};

/* A segment register with its hidden descriptor cache. */
struct kvm_segment {
	__u64 base;
	__u32 limit;
	__u16 selector;
	__u8  type;
	__u8  present, dpl, db, s, l, g, avl;
	__u8  unusable;
	__u8  padding;
};

/* GDTR / IDTR */
struct kvm_dtable {
	__u64 base;
	__u16 limit;
	__u16 padding[3];
};

/* KVM_GET_SREGS / KVM_SET_SREGS */
struct kvm_sregs {
	struct kvm_segment cs, ds, es, fs, gs, ss;
	struct kvm_segment tr, ldt;
	struct kvm_dtable gdt, idt;
	__u64 cr0, cr2, cr3, cr4, cr8;
	__u64 efer;
	__u64 apic_base;
	/* bitmap of the pending external interrupt (at most one bit set) */
	__u64 interrupt_bitmap[(KVM_NR_INTERRUPTS + 63) / 64];
};

/* KVM_GET_SREGS2 / KVM_SET_SREGS2 */
struct kvm_sregs2 {
	struct kvm_segment cs, ds, es, fs, gs, ss;
	struct kvm_segment tr, ldt;
	struct kvm_dtable gdt, idt;
	__u64 cr0, cr2, cr3, cr4, cr8;
	__u64 efer;
	__u64 apic_base;
	__u64 flags;
	__u64 pdptrs[4];
};
#define KVM_SREGS2_FLAGS_PDPTRS_VALID 1

/* KVM_GET_FPU / KVM_SET_FPU, in FXSAVE terms */
struct kvm_fpu {
	__u8  fpr[8][16];
	__u16 fcw;
	__u16 fsw;
	__u8  ftwx;		/* abridged tag word */
	__u8  pad1;
	__u16 last_opcode;
	__u64 last_ip;
	__u64 last_dp;
	__u8  xmm[16][16];
	__u32 mxcsr;
	__u32 pad2;
};

/* ------------------------------------------------------------------ */
/* MSRs */

struct kvm_msr_entry {
	__u32 index;
	__u32 reserved;
	__u64 data;
};

/* KVM_GET_MSRS / KVM_SET_MSRS */
struct kvm_msrs {
	__u32 nmsrs;		/* entries that follow */
	__u32 pad;
	__DECLARE_FLEX_ARRAY(struct kvm_msr_entry, entries);
};

/* KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST */
struct kvm_msr_list {
	__u32 nmsrs;		/* in: room, out: count */
	__DECLARE_FLEX_ARRAY(__u32, indices);
};

/* Largest bitmap of one filter range, in bytes. */
#define KVM_MSR_FILTER_MAX_BITMAP_SIZE 0x600

/* KVM_X86_SET_MSR_FILTER */
#define KVM_MSR_FILTER_READ		(1 << 0)
#define KVM_MSR_FILTER_WRITE		(1 << 1)
#define KVM_MSR_FILTER_RANGE_VALID_MASK	(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)

struct kvm_msr_filter_range {
	__u32 flags;		/* KVM_MSR_FILTER_READ/WRITE */
	__u32 nmsrs;		/* bits in bitmap */
	__u32 base;		/* first MSR index covered */
	__u8 *bitmap;		/* set bit: access allowed */
};

#define KVM_MSR_FILTER_MAX_RANGES 16

#define KVM_MSR_FILTER_DEFAULT_ALLOW	(0 << 0)
#define KVM_MSR_FILTER_DEFAULT_DENY	(1 << 0)
#define KVM_MSR_FILTER_VALID_MASK	(KVM_MSR_FILTER_DEFAULT_DENY)

struct kvm_msr_filter {
	__u32 flags;
	struct kvm_msr_filter_range ranges[KVM_MSR_FILTER_MAX_RANGES];
};

/* ------------------------------------------------------------------ */
/* CPUID */

/* KVM_SET_CPUID (legacy) */
struct kvm_cpuid_entry {
	__u32 function;
	__u32 eax;
	__u32 ebx;
	__u32 ecx;
	__u32 edx;
	__u32 padding;
};

struct kvm_cpuid {
	__u32 nent;
	__u32 padding;
	__DECLARE_FLEX_ARRAY(struct kvm_cpuid_entry, entries);
};

/* KVM_SET_CPUID2 / KVM_GET_CPUID2 / KVM_GET_SUPPORTED_CPUID */
struct kvm_cpuid_entry2 {
	__u32 function;
	__u32 index;
	__u32 flags;		/* KVM_CPUID_FLAG_* */
	__u32 eax;
	__u32 ebx;
	__u32 ecx;
	__u32 edx;
	__u32 padding[3];
};

/* (sic: the misspelling is the established name) */
#define KVM_CPUID_FLAG_SIGNIFCANT_INDEX		(1 << 0)
#define KVM_CPUID_FLAG_STATEFUL_FUNC		(1 << 1)
#define KVM_CPUID_FLAG_STATE_READ_NEXT		(1 << 2)

struct kvm_cpuid2 {
	__u32 nent;
	__u32 padding;
	__DECLARE_FLEX_ARRAY(struct kvm_cpuid_entry2, entries);
};

/* ------------------------------------------------------------------ */
/* i8254 PIT (KVM_GET_PIT / KVM_SET_PIT / KVM_GET_PIT2 / KVM_SET_PIT2) */

struct kvm_pit_channel_state {
	__u32 count;		/* 1..65536 */
	__u16 latched_count;
	__u8 count_latched;
	__u8 status_latched;
	__u8 status;
	__u8 read_state;
	__u8 write_state;
	__u8 write_latch;
	__u8 rw_mode;
	__u8 mode;
	__u8 bcd;
	__u8 gate;
	__s64 count_load_time;
};

struct kvm_pit_state {
	struct kvm_pit_channel_state channels[3];
};

#define KVM_PIT_FLAGS_HPET_LEGACY     0x00000001
#define KVM_PIT_FLAGS_SPEAKER_DATA_ON 0x00000002

struct kvm_pit_state2 {
	struct kvm_pit_channel_state channels[3];
	__u32 flags;
	__u32 reserved[9];
};

/* KVM_REINJECT_CONTROL */
struct kvm_reinject_control {
	__u8 pit_reinject;
	__u8 reserved[31];
};

/* ------------------------------------------------------------------ */
/* Guest debugging */

/* kvm_run.debug.arch on KVM_EXIT_DEBUG */
struct kvm_debug_exit_arch {
	__u32 exception;
	__u32 pad;
	__u64 pc;
	__u64 dr6;
	__u64 dr7;
};

/* kvm_guest_debug.control, x86 bits */
#define KVM_GUESTDBG_USE_SW_BP		0x00010000
#define KVM_GUESTDBG_USE_HW_BP		0x00020000
#define KVM_GUESTDBG_INJECT_DB		0x00040000
#define KVM_GUESTDBG_INJECT_BP		0x00080000
#define KVM_GUESTDBG_BLOCKIRQ		0x00100000

/* kvm_guest_debug.arch for KVM_SET_GUEST_DEBUG: DR0..DR7 */
struct kvm_guest_debug_arch {
	__u64 debugreg[8];
};

/* ------------------------------------------------------------------ */
/* Pending events (KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS) */

/* kvm_vcpu_events.flags: which optional fields KVM_SET_VCPU_EVENTS uses */
#define KVM_VCPUEVENT_VALID_NMI_PENDING		0x00000001
#define KVM_VCPUEVENT_VALID_SIPI_VECTOR		0x00000002
#define KVM_VCPUEVENT_VALID_SHADOW		0x00000004
#define KVM_VCPUEVENT_VALID_SMM			0x00000008
#define KVM_VCPUEVENT_VALID_PAYLOAD		0x00000010
#define KVM_VCPUEVENT_VALID_TRIPLE_FAULT	0x00000020

/* kvm_vcpu_events.interrupt.shadow */
#define KVM_X86_SHADOW_INT_MOV_SS	0x01
#define KVM_X86_SHADOW_INT_STI		0x02

struct kvm_vcpu_events {
	struct {
		__u8 injected;
		__u8 nr;
		__u8 has_error_code;
		__u8 pending;
		__u32 error_code;
	} exception;
	struct {
		__u8 injected;
		__u8 nr;
		__u8 soft;
		__u8 shadow;
	} interrupt;
	struct {
		__u8 injected;
		__u8 pending;
		__u8 masked;
		__u8 pad;
	} nmi;
	__u32 sipi_vector;
	__u32 flags;
	struct {
		__u8 smm;
		__u8 pending;
		__u8 smm_inside_nmi;
		__u8 latched_init;
	} smi;
	struct {
		__u8 pending;
	} triple_fault;
	__u8 reserved[26];
	__u8 exception_has_payload;
	__u64 exception_payload;
};

/* KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS */
struct kvm_debugregs {
	__u64 db[4];
	__u64 dr6;
	__u64 dr7;
	__u64 flags;
	__u64 reserved[9];
};

/* ------------------------------------------------------------------ */
/* Extended state */

/*
 * KVM_GET_XSAVE / KVM_SET_XSAVE / KVM_GET_XSAVE2: an XSAVE image laid out
 * as CPUID leaf 0xD of the host says.  4096 bytes minimum; with
 * KVM_CAP_XSAVE2 the real size is KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on
 * the VM fd and "extra" covers the rest.
 */
struct kvm_xsave {
	__u32 region[1024];
	__DECLARE_FLEX_ARRAY(__u32, extra);
};

#define KVM_MAX_XCRS	16

struct kvm_xcr {
	__u32 xcr;
	__u32 reserved;
	__u64 value;
};

/* KVM_GET_XCRS / KVM_SET_XCRS */
struct kvm_xcrs {
	__u32 nr_xcrs;
	__u32 flags;
	struct kvm_xcr xcrs[KVM_MAX_XCRS];
	__u64 padding[16];
};

/* ------------------------------------------------------------------ */
/* KVM_GET_ONE_REG / KVM_SET_ONE_REG register ids for x86 */

#define KVM_X86_REG_TYPE_MSR		2
#define KVM_X86_REG_TYPE_KVM		3

/* KVM-defined registers, numbered from 0 */
#define KVM_REG_GUEST_SSP		0

#define KVM_X86_KVM_REG_SIZE(reg)					\
	((reg) == KVM_REG_GUEST_SSP ? KVM_REG_SIZE_U64 : 0)

#define KVM_X86_REG_TYPE_SIZE(type, reg)				\
	(((__u64)(type) << 32) |					\
	 ((type) == KVM_X86_REG_TYPE_MSR ? KVM_REG_SIZE_U64 :		\
	  (type) == KVM_X86_REG_TYPE_KVM ? KVM_X86_KVM_REG_SIZE(reg) :	\
	  0))

#define KVM_X86_REG_ID(type, index)					\
	(KVM_REG_X86 | KVM_X86_REG_TYPE_SIZE(type, index) | (index))

#define KVM_X86_REG_MSR(index)	KVM_X86_REG_ID(KVM_X86_REG_TYPE_MSR, index)
#define KVM_X86_REG_KVM(index)	KVM_X86_REG_ID(KVM_X86_REG_TYPE_KVM, index)

/* ------------------------------------------------------------------ */
/* Register state shared through kvm_run (KVM_CAP_SYNC_REGS) */

#define KVM_SYNC_X86_REGS	(1UL << 0)
#define KVM_SYNC_X86_SREGS	(1UL << 1)
#define KVM_SYNC_X86_EVENTS	(1UL << 2)

#define KVM_SYNC_X86_VALID_FIELDS \
	(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)

/*
 * kvm_run.s.regs.  Userspace may change any of this at any time, so the
 * kernel side reads every field exactly once.
 */
struct kvm_sync_regs {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
};

/* ------------------------------------------------------------------ */
/* KVM_CAP_DISABLE_QUIRKS / KVM_CAP_DISABLE_QUIRKS2 */

#define KVM_X86_QUIRK_LINT0_REENABLED			(1 << 0)
#define KVM_X86_QUIRK_CD_NW_CLEARED			(1 << 1)
#define KVM_X86_QUIRK_LAPIC_MMIO_HOLE			(1 << 2)
#define KVM_X86_QUIRK_OUT_7E_INC_RIP			(1 << 3)
#define KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT		(1 << 4)
#define KVM_X86_QUIRK_FIX_HYPERCALL_INSN		(1 << 5)
#define KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS		(1 << 6)
#define KVM_X86_QUIRK_SLOT_ZAP_ALL			(1 << 7)
#define KVM_X86_QUIRK_STUFF_FEATURE_MSRS		(1 << 8)
#define KVM_X86_QUIRK_IGNORE_GUEST_PAT			(1 << 9)
#define KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM	(1 << 10)
#define KVM_X86_QUIRK_NESTED_SVM_SHARED_PAT		(1 << 11)

/* ------------------------------------------------------------------ */
/* Nested virtualization state (KVM_GET_NESTED_STATE / KVM_SET_NESTED_STATE) */

/* kvm_nested_state.format */
#define KVM_STATE_NESTED_FORMAT_VMX	0
#define KVM_STATE_NESTED_FORMAT_SVM	1

/* kvm_nested_state.flags */
#define KVM_STATE_NESTED_GUEST_MODE	0x00000001
#define KVM_STATE_NESTED_RUN_PENDING	0x00000002
#define KVM_STATE_NESTED_EVMCS		0x00000004
#define KVM_STATE_NESTED_MTF_PENDING	0x00000008
#define KVM_STATE_NESTED_GIF_SET	0x00000100

/* kvm_vmx_nested_state_hdr.smm.flags */
#define KVM_STATE_NESTED_SMM_GUEST_MODE	0x00000001
#define KVM_STATE_NESTED_SMM_VMXON	0x00000002

#define KVM_STATE_NESTED_VMX_VMCS_SIZE	0x1000
#define KVM_STATE_NESTED_SVM_VMCB_SIZE	0x1000

/* kvm_vmx_nested_state_hdr.flags */
#define KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE	0x00000001

struct kvm_vmx_nested_state_data {
	__u8 vmcs12[KVM_STATE_NESTED_VMX_VMCS_SIZE];
	__u8 shadow_vmcs12[KVM_STATE_NESTED_VMX_VMCS_SIZE];
};

struct kvm_vmx_nested_state_hdr {
	__u64 vmxon_pa;
	__u64 vmcs12_pa;
	struct {
		__u16 flags;
	} smm;
	__u16 pad;
	__u32 flags;
	__u64 preemption_timer_deadline;
};

struct kvm_svm_nested_state_data {
	/* VMCB12 save area; meaningful with KVM_STATE_NESTED_RUN_PENDING */
	__u8 vmcb12[KVM_STATE_NESTED_SVM_VMCB_SIZE];
};

struct kvm_svm_nested_state_hdr {
	__u64 vmcb_pa;
	__u64 gpat;
};

struct kvm_nested_state {
	__u16 flags;
	__u16 format;
	__u32 size;		/* whole buffer including data */

	union {
		struct kvm_vmx_nested_state_hdr vmx;
		struct kvm_svm_nested_state_hdr svm;
		__u8 pad[120];	/* header is 128 bytes in all */
	} hdr;

	/*
	 * Zero-sized so that sizeof() -- and with it the ioctl numbers --
	 * stay what they were before the data area existed.
	 */
	union {
		__DECLARE_FLEX_ARRAY(struct kvm_vmx_nested_state_data, vmx);
		__DECLARE_FLEX_ARRAY(struct kvm_svm_nested_state_data, svm);
	} data;
};

/* ------------------------------------------------------------------ */
/* Device attributes of the system fd and of vCPU fds */

/* group 0 of the system fd: vendor independent */
#define KVM_X86_GRP_SYSTEM		0
#  define KVM_X86_XCOMP_GUEST_SUPP	0

/* group 1 of the system fd: SEV */
#define KVM_X86_GRP_SEV			1
#  define KVM_X86_SEV_VMSA_FEATURES	0
#  define KVM_X86_SNP_POLICY_BITS	1
#  define KVM_X86_SEV_SNP_REQ_CERTS	2

/* vCPU fd: TSC control group */
#define KVM_VCPU_TSC_CTRL	0
#define   KVM_VCPU_TSC_OFFSET	0

/* ------------------------------------------------------------------ */
/* PMU event filter (KVM_SET_PMU_EVENT_FILTER) */

struct kvm_pmu_event_filter {
	__u32 action;		/* KVM_PMU_EVENT_ALLOW / _DENY */
	__u32 nevents;
	__u32 fixed_counter_bitmap;
	__u32 flags;
	__u32 pad[4];
	__DECLARE_FLEX_ARRAY(__u64, events);
};

#define KVM_PMU_EVENT_ALLOW 0
#define KVM_PMU_EVENT_DENY  1

#define KVM_PMU_EVENT_FLAG_MASKED_EVENTS	(1UL << 0)
#define KVM_PMU_EVENT_FLAGS_VALID_MASK		(KVM_PMU_EVENT_FLAG_MASKED_EVENTS)

/*
 * Masked event encoding (KVM_PMU_EVENT_FLAG_MASKED_EVENTS):
 *   bits  7:0   event select, low part
 *   bits 15:8   unit-mask match value
 *   bits 35:32  event select, high part
 *   bit  55     exclude
 *   bits 63:56  unit-mask mask
 */
#define KVM_PMU_ENCODE_MASKED_ENTRY(event_select, mask, match, exclude) \
	(((event_select) & 0xFFULL) |					\
	 (((event_select) & 0xF00ULL) << 24) |				\
	 (((mask) & 0xFFULL) << 56) |					\
	 (((match) & 0xFFULL) << 8) |					\
	 ((__u64)(!!(exclude)) << 55))

#define KVM_PMU_MASKED_ENTRY_EVENT_SELECT	(0x00000000000000FFULL | 0x0000000F00000000ULL)
#define KVM_PMU_MASKED_ENTRY_UMASK_MASK		(0xFF00000000000000ULL)
#define KVM_PMU_MASKED_ENTRY_UMASK_MATCH	(0x000000000000FF00ULL)
#define KVM_PMU_MASKED_ENTRY_EXCLUDE		(1ULL << 55)
#define KVM_PMU_MASKED_ENTRY_UMASK_MASK_SHIFT	(56)

/* ------------------------------------------------------------------ */
/* Machine check injection (KVM_X86_SET_MCE) */

struct kvm_x86_mce {
	__u64 status;
	__u64 addr;
	__u64 misc;
	__u64 mcg_status;
	__u8 bank;
	__u8 pad1[7];
	__u64 pad2[3];
};

/* ------------------------------------------------------------------ */
/* Xen HVM emulation (KVM_CAP_XEN_HVM) */

/* bits returned by KVM_CHECK_EXTENSION(KVM_CAP_XEN_HVM) */
#define KVM_XEN_HVM_CONFIG_HYPERCALL_MSR	(1 << 0)
#define KVM_XEN_HVM_CONFIG_INTERCEPT_HCALL	(1 << 1)
#define KVM_XEN_HVM_CONFIG_SHARED_INFO		(1 << 2)
#define KVM_XEN_HVM_CONFIG_RUNSTATE		(1 << 3)
#define KVM_XEN_HVM_CONFIG_EVTCHN_2LEVEL	(1 << 4)
#define KVM_XEN_HVM_CONFIG_EVTCHN_SEND		(1 << 5)
#define KVM_XEN_HVM_CONFIG_RUNSTATE_UPDATE_FLAG	(1 << 6)
#define KVM_XEN_HVM_CONFIG_PVCLOCK_TSC_UNSTABLE	(1 << 7)
#define KVM_XEN_HVM_CONFIG_SHARED_INFO_HVA	(1 << 8)

#define KVM_XEN_MSR_MIN_INDEX			0x40000000u
#define KVM_XEN_MSR_MAX_INDEX			0x4fffffffu

/* KVM_XEN_HVM_CONFIG */
struct kvm_xen_hvm_config {
	__u32 flags;
	__u32 msr;
	__u64 blob_addr_32;
	__u64 blob_addr_64;
	__u8 blob_size_32;
	__u8 blob_size_64;
	__u8 pad2[30];
};

#define KVM_XEN_INVALID_GFN	((__u64)-1)
#define KVM_XEN_INVALID_GPA	((__u64)-1)

/* kvm_xen_hvm_attr.u.evtchn.flags */
#define KVM_XEN_EVTCHN_DEASSIGN		(1 << 0)
#define KVM_XEN_EVTCHN_UPDATE		(1 << 1)
#define KVM_XEN_EVTCHN_RESET		(1 << 2)

/* KVM_XEN_HVM_GET_ATTR / KVM_XEN_HVM_SET_ATTR */
struct kvm_xen_hvm_attr {
	__u16 type;		/* KVM_XEN_ATTR_TYPE_* */
	__u16 pad[3];
	union {
		__u8 long_mode;
		__u8 vector;
		__u8 runstate_update_flag;
		union {
			__u64 gfn;
			__u64 hva;
		} shared_info;
		struct {
			__u32 send_port;
			__u32 type;	/* EVTCHNSTAT_ipi or _interdomain */
			__u32 flags;	/* KVM_XEN_EVTCHN_* */
			/* where a guest send on send_port is delivered */
			union {
				struct {
					__u32 port;
					__u32 vcpu;
					__u32 priority;
				} port;
				struct {
					__u32 port;	/* 0 when eventfd */
					__s32 fd;
				} eventfd;
				__u32 padding[4];
			} deliver;
		} evtchn;
		__u32 xen_version;
		__u64 pad[8];
	} u;
};

#define KVM_XEN_ATTR_TYPE_LONG_MODE		0x0
#define KVM_XEN_ATTR_TYPE_SHARED_INFO		0x1
#define KVM_XEN_ATTR_TYPE_UPCALL_VECTOR		0x2
#define KVM_XEN_ATTR_TYPE_EVTCHN		0x3
#define KVM_XEN_ATTR_TYPE_XEN_VERSION		0x4
#define KVM_XEN_ATTR_TYPE_RUNSTATE_UPDATE_FLAG	0x5
#define KVM_XEN_ATTR_TYPE_SHARED_INFO_HVA	0x6

/* KVM_XEN_VCPU_GET_ATTR / KVM_XEN_VCPU_SET_ATTR */
struct kvm_xen_vcpu_attr {
	__u16 type;		/* KVM_XEN_VCPU_ATTR_TYPE_* */
	__u16 pad[3];
	union {
		__u64 gpa;
		__u64 hva;
		__u64 pad[8];
		struct {
			__u64 state;
			__u64 state_entry_time;
			__u64 time_running;
			__u64 time_runnable;
			__u64 time_blocked;
			__u64 time_offline;
		} runstate;
		__u32 vcpu_id;
		struct {
			__u32 port;
			__u32 priority;
			__u64 expires_ns;
		} timer;
		__u8 vector;
	} u;
};

#define KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO	0x0
#define KVM_XEN_VCPU_ATTR_TYPE_VCPU_TIME_INFO	0x1
#define KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADDR	0x2
#define KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_CURRENT	0x3
#define KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_DATA	0x4
#define KVM_XEN_VCPU_ATTR_TYPE_RUNSTATE_ADJUST	0x5
#define KVM_XEN_VCPU_ATTR_TYPE_VCPU_ID		0x6
#define KVM_XEN_VCPU_ATTR_TYPE_TIMER		0x7
#define KVM_XEN_VCPU_ATTR_TYPE_UPCALL_VECTOR	0x8
#define KVM_XEN_VCPU_ATTR_TYPE_VCPU_INFO_HVA	0x9

/* ------------------------------------------------------------------ */
/* AMD SEV / SEV-ES / SEV-SNP (KVM_MEMORY_ENCRYPT_OP) */

/* kvm_sev_cmd.id */
enum sev_cmd_id {
	KVM_SEV_INIT = 0,
	KVM_SEV_ES_INIT,
	KVM_SEV_LAUNCH_START,
	KVM_SEV_LAUNCH_UPDATE_DATA,
	KVM_SEV_LAUNCH_UPDATE_VMSA,
	KVM_SEV_LAUNCH_SECRET,
	KVM_SEV_LAUNCH_MEASURE,
	KVM_SEV_LAUNCH_FINISH,
	KVM_SEV_SEND_START,
	KVM_SEV_SEND_UPDATE_DATA,
	KVM_SEV_SEND_UPDATE_VMSA,
	KVM_SEV_SEND_FINISH,
	KVM_SEV_RECEIVE_START,
	KVM_SEV_RECEIVE_UPDATE_DATA,
	KVM_SEV_RECEIVE_UPDATE_VMSA,
	KVM_SEV_RECEIVE_FINISH,
	KVM_SEV_GUEST_STATUS,
	KVM_SEV_DBG_DECRYPT,
	KVM_SEV_DBG_ENCRYPT,
	KVM_SEV_CERT_EXPORT,
	KVM_SEV_GET_ATTESTATION_REPORT,
	KVM_SEV_SEND_CANCEL,
	KVM_SEV_INIT2,

	KVM_SEV_SNP_LAUNCH_START = 100,
	KVM_SEV_SNP_LAUNCH_UPDATE,
	KVM_SEV_SNP_LAUNCH_FINISH,
	KVM_SEV_SNP_ENABLE_REQ_CERTS,

	KVM_SEV_NR_MAX,
};

struct kvm_sev_cmd {
	__u32 id;		/* enum sev_cmd_id */
	__u32 pad0;
	__u64 data;		/* address of the command's struct */
	__u32 error;		/* firmware status */
	__u32 sev_fd;		/* /dev/sev */
};

struct kvm_sev_init {
	__u64 vmsa_features;
	__u32 flags;
	__u16 ghcb_version;
	__u16 pad1;
	__u32 pad2[8];
};

struct kvm_sev_launch_start {
	__u32 handle;
	__u32 policy;
	__u64 dh_uaddr;
	__u32 dh_len;
	__u32 pad0;
	__u64 session_uaddr;
	__u32 session_len;
	__u32 pad1;
};

struct kvm_sev_launch_update_data {
	__u64 uaddr;
	__u32 len;
	__u32 pad0;
};

struct kvm_sev_launch_secret {
	__u64 hdr_uaddr;
	__u32 hdr_len;
	__u32 pad0;
	__u64 guest_uaddr;
	__u32 guest_len;
	__u32 pad1;
	__u64 trans_uaddr;
	__u32 trans_len;
	__u32 pad2;
};

struct kvm_sev_launch_measure {
	__u64 uaddr;
	__u32 len;
	__u32 pad0;
};

struct kvm_sev_guest_status {
	__u32 handle;
	__u32 policy;
	__u32 state;
};

struct kvm_sev_dbg {
	__u64 src_uaddr;
	__u64 dst_uaddr;
	__u32 len;
	__u32 pad0;
};

struct kvm_sev_attestation_report {
	__u8 mnonce[16];
	__u64 uaddr;
	__u32 len;
	__u32 pad0;
};

struct kvm_sev_send_start {
	__u32 policy;
	__u32 pad0;
	__u64 pdh_cert_uaddr;
	__u32 pdh_cert_len;
	__u32 pad1;
	__u64 plat_certs_uaddr;
	__u32 plat_certs_len;
	__u32 pad2;
	__u64 amd_certs_uaddr;
	__u32 amd_certs_len;
	__u32 pad3;
	__u64 session_uaddr;
	__u32 session_len;
	__u32 pad4;
};

struct kvm_sev_send_update_data {
	__u64 hdr_uaddr;
	__u32 hdr_len;
	__u32 pad0;
	__u64 guest_uaddr;
	__u32 guest_len;
	__u32 pad1;
	__u64 trans_uaddr;
	__u32 trans_len;
	__u32 pad2;
};

struct kvm_sev_receive_start {
	__u32 handle;
	__u32 policy;
	__u64 pdh_uaddr;
	__u32 pdh_len;
	__u32 pad0;
	__u64 session_uaddr;
	__u32 session_len;
	__u32 pad1;
};

struct kvm_sev_receive_update_data {
	__u64 hdr_uaddr;
	__u32 hdr_len;
	__u32 pad0;
	__u64 guest_uaddr;
	__u32 guest_len;
	__u32 pad1;
	__u64 trans_uaddr;
	__u32 trans_len;
	__u32 pad2;
};

struct kvm_sev_snp_launch_start {
	__u64 policy;
	__u8 gosvw[16];
	__u16 flags;
	__u8 pad0[6];
	__u64 pad1[4];
};

/* kvm_sev_snp_launch_update.type (the firmware's page types) */
#define KVM_SEV_PAGE_TYPE_INVALID		0x0
#define KVM_SEV_SNP_PAGE_TYPE_NORMAL		0x1
#define KVM_SEV_SNP_PAGE_TYPE_ZERO		0x3
#define KVM_SEV_SNP_PAGE_TYPE_UNMEASURED	0x4
#define KVM_SEV_SNP_PAGE_TYPE_SECRETS		0x5
#define KVM_SEV_SNP_PAGE_TYPE_CPUID		0x6

struct kvm_sev_snp_launch_update {
	__u64 gfn_start;
	__u64 uaddr;
	__u64 len;
	__u8 type;
	__u8 pad0;
	__u16 flags;
	__u32 pad1;
	__u64 pad2[4];
};

#define KVM_SEV_SNP_ID_BLOCK_SIZE	96
#define KVM_SEV_SNP_ID_AUTH_SIZE	4096
#define KVM_SEV_SNP_FINISH_DATA_SIZE	32

struct kvm_sev_snp_launch_finish {
	__u64 id_block_uaddr;
	__u64 id_auth_uaddr;
	__u8 id_block_en;
	__u8 auth_key_en;
	__u8 vcek_disabled;
	__u8 host_data[KVM_SEV_SNP_FINISH_DATA_SIZE];
	__u8 pad0[3];
	__u16 flags;
	__u64 pad1[4];
};

/* ------------------------------------------------------------------ */
/* KVM_CAP_X2APIC_API */

#define KVM_X2APIC_API_USE_32BIT_IDS			(1ULL << 0)
#define KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK		(1ULL << 1)
#define KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST	(1ULL << 2)
#define KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST	(1ULL << 3)

/* ------------------------------------------------------------------ */
/* Hyper-V event channels (KVM_HYPERV_EVENTFD) */

struct kvm_hyperv_eventfd {
	__u32 conn_id;
	__s32 fd;
	__u32 flags;
	__u32 padding[3];
};

#define KVM_HYPERV_CONN_ID_MASK		0x00ffffff
#define KVM_HYPERV_EVENTFD_DEASSIGN	(1 << 0)

/* kvm_run.hypercall.flags */
#define KVM_EXIT_HYPERCALL_LONG_MODE	(1ULL << 0)

/* ------------------------------------------------------------------ */
/* VM types (argument of KVM_CREATE_VM, bits of KVM_CAP_VM_TYPES) */

#define KVM_X86_DEFAULT_VM	0
#define KVM_X86_SW_PROTECTED_VM	1
#define KVM_X86_SEV_VM		2
#define KVM_X86_SEV_ES_VM	3
#define KVM_X86_SNP_VM		4
#define KVM_X86_TDX_VM		5

/* ------------------------------------------------------------------ */
/* Intel TDX (KVM_MEMORY_ENCRYPT_OP on a KVM_X86_TDX_VM) */

enum kvm_tdx_cmd_id {
	KVM_TDX_CAPABILITIES = 0,
	KVM_TDX_INIT_VM,
	KVM_TDX_INIT_VCPU,
	KVM_TDX_INIT_MEM_REGION,
	KVM_TDX_FINALIZE_VM,
	KVM_TDX_GET_CPUID,

	KVM_TDX_CMD_NR_MAX,
};

struct kvm_tdx_cmd {
	__u32 id;		/* enum kvm_tdx_cmd_id */
	__u32 flags;		/* per command; 0 if unused */
	__u64 data;		/* immediate or user pointer; 0 if unused */
	__u64 hw_error;		/* out: TDX module status, if any */
};

struct kvm_tdx_capabilities {
	__u64 supported_attrs;
	__u64 supported_xfam;

	__u64 kernel_tdvmcallinfo_1_r11;
	__u64 user_tdvmcallinfo_1_r11;
	__u64 kernel_tdvmcallinfo_1_r12;
	__u64 user_tdvmcallinfo_1_r12;

	__u64 reserved[250];

	/* CPUID bits userspace may configure */
	struct kvm_cpuid2 cpuid;
};

struct kvm_tdx_init_vm {
	__u64 attributes;
	__u64 xfam;
	__u64 mrconfigid[6];		/* SHA-384 */
	__u64 mrowner[6];		/* SHA-384 */
	__u64 mrownerconfig[6];		/* SHA-384 */

	__u64 reserved[12];		/* TD_PARAMS up to here: 256 bytes */

	/* takes precedence over KVM_SET_CPUID2 of the TD's vCPUs */
	struct kvm_cpuid2 cpuid;
};

#define KVM_TDX_MEASURE_MEMORY_REGION	(1ULL << 0)

struct kvm_tdx_init_mem_region {
	__u64 source_addr;
	__u64 gpa;
	__u64 nr_pages;
};

#endif /* _ASM_X86_KVM_H */
