/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Why this file exists: the SVM world switch must control every register
 * (load all guest GPRs, VMRUN, save them, restore the host's), which
 * neither Rust nor C inline assembly can express around a function body.
 *
 *   void rkvm_svm_vcpu_run(u64 vmcb_pa, u64 *gprs, u64 host_save_pa);
 *
 * gprs: the 16 guest GPRs in x86 encoding order (RAX, RCX, RDX, RBX, RSP,
 * RBP, RSI, RDI, R8..R15); RAX and RSP are switched by the hardware through
 * the VMCB, so their slots are ignored. Called with interrupts off and
 * GIF clear. VMLOAD/VMSAVE switch FS, GS, TR, LDTR, KERNEL_GS_BASE and the
 * SYSCALL/SYSENTER MSRs, which VMRUN leaves alone: they are VMSAVEd to
 * host_save_pa first and VMLOADed back after the exit (GS base included,
 * so nothing may touch per-CPU data in between).
 */
#include <linux/linkage.h>
#include <asm/asm.h>

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

.section .noinstr.text, "ax"

SYM_FUNC_START(rkvm_svm_vcpu_run)
	push %rbp
	mov  %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx

	/* Needed after the exit: [rsp] vmcb, [rsp+8] gprs, [rsp+16] host area. */
	push %rdx
	push %rsi
	push %rdi

	/* Host FS/GS/TR/LDTR/syscall MSRs, for the VMLOAD after the exit. */
	mov %rdx, %rax
	vmsave %rax
	mov %rdi, %rax
	vmload %rax

	mov G_RCX(%rsi), %rcx
	mov G_RDX(%rsi), %rdx
	mov G_RBX(%rsi), %rbx
	mov G_RBP(%rsi), %rbp
	mov G_RDI(%rsi), %rdi
	mov G_R8(%rsi),  %r8
	mov G_R9(%rsi),  %r9
	mov G_R10(%rsi), %r10
	mov G_R11(%rsi), %r11
	mov G_R12(%rsi), %r12
	mov G_R13(%rsi), %r13
	mov G_R14(%rsi), %r14
	mov G_R15(%rsi), %r15
	mov G_RSI(%rsi), %rsi

	vmrun %rax

	/* The host RSP is back; everything else but RAX is the guest's. */
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

	pop %rax
	vmsave %rax
	add $8, %rsp
	pop %rax
	vmload %rax

	/* Leave no guest values in registers the caller may not overwrite. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d

	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(rkvm_svm_vcpu_run)
