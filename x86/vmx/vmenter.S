/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Why this file exists: the VMX world switch must control every register
 * (load all guest GPRs, VMLAUNCH/VMRESUME, save them at the VM exit, whose
 * RIP and RSP come from the VMCS), which neither Rust nor C inline
 * assembly can express around a function body.
 *
 *   int rkvm_vmx_vcpu_run(u64 *gprs, u64 resume);
 *
 * gprs: the 16 guest GPRs in x86 encoding order (RAX, RCX, RDX, RBX, RSP,
 * RBP, RSI, RDI, R8..R15); RSP is switched by the hardware through the
 * VMCS, so its slot is ignored. resume: VMRESUME if non-zero, else
 * VMLAUNCH. Sets HOST_RSP and HOST_RIP of the current VMCS itself.
 * Returns 0 after a VM exit, 1 if the VM entry failed (VMfail; the VMCS's
 * VM-instruction error field says why). Called with interrupts off, on
 * the CPU whose current VMCS it runs.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>

#define G_RAX	(0 * 8)
#define G_RCX	(1 * 8)
#define G_RDX	(2 * 8)
#define G_RBX	(3 * 8)
#define G_RBP	(5 * 8)
#define G_RSI	(6 * 8)
#define G_RDI	(7 * 8)
#define G_R8	(8 * 8)
#define G_R9	(9 * 8)
#define G_R10	(10 * 8)
#define G_R11	(11 * 8)
#define G_R12	(12 * 8)
#define G_R13	(13 * 8)
#define G_R14	(14 * 8)
#define G_R15	(15 * 8)

/* VMCS field encodings (x86/vmx/vmcs.rs has the rest). */
#define VMCS_HOST_RSP	0x6c14
#define VMCS_HOST_RIP	0x6c16

.section .noinstr.text, "ax"

SYM_FUNC_START(rkvm_vmx_vcpu_run)
	push %rbp
	mov  %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx

	/* After the exit: (%rsp) = gprs. */
	push %rdi

	mov $VMCS_HOST_RSP, %eax
	vmwrite %rsp, %rax
	jbe .Lvmfail
	mov $VMCS_HOST_RIP, %eax
	lea rkvm_vmx_vmexit(%rip), %rdx
	vmwrite %rdx, %rax
	jbe .Lvmfail

	/* MOVs keep the flags: ZF says VMLAUNCH or VMRESUME. */
	test %rsi, %rsi

	mov G_RAX(%rdi), %rax
	mov G_RCX(%rdi), %rcx
	mov G_RDX(%rdi), %rdx
	mov G_RBX(%rdi), %rbx
	mov G_RBP(%rdi), %rbp
	mov G_RSI(%rdi), %rsi
	mov G_R8(%rdi),  %r8
	mov G_R9(%rdi),  %r9
	mov G_R10(%rdi), %r10
	mov G_R11(%rdi), %r11
	mov G_R12(%rdi), %r12
	mov G_R13(%rdi), %r13
	mov G_R14(%rdi), %r14
	mov G_R15(%rdi), %r15
	mov G_RDI(%rdi), %rdi

	jz .Lvmlaunch

	/*
	 * After a successful VMRESUME/VMLAUNCH, execution continues at
	 * rkvm_vmx_vmexit (HOST_RIP) with the stack as it is here.
	 */
	UNWIND_HINT_SAVE
	vmresume
	jmp .Lvmfail

.Lvmlaunch:
	vmlaunch
	jmp .Lvmfail

SYM_INNER_LABEL(rkvm_vmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR

	/* Guest RAX to the stack, gprs to RAX. */
	push %rax
	mov 8(%rsp), %rax
	mov %rcx, G_RCX(%rax)
	mov %rdx, G_RDX(%rax)
	mov %rbx, G_RBX(%rax)
	mov %rbp, G_RBP(%rax)
	mov %rsi, G_RSI(%rax)
	mov %rdi, G_RDI(%rax)
	mov %r8,  G_R8(%rax)
	mov %r9,  G_R9(%rax)
	mov %r10, G_R10(%rax)
	mov %r11, G_R11(%rax)
	mov %r12, G_R12(%rax)
	mov %r13, G_R13(%rax)
	mov %r14, G_R14(%rax)
	mov %r15, G_R15(%rax)
	pop %rcx
	mov %rcx, G_RAX(%rax)

	xor %ebx, %ebx
	jmp .Lout

.Lvmfail:
	/* VMfail: RSP is ours, the other registers may hold guest values. */
	mov $1, %ebx

.Lout:
	/* Leave no guest values in registers. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	mov %ebx, %eax

	add $8, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(rkvm_vmx_vcpu_run)
