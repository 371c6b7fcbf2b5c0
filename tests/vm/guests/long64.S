# 64-bit long-mode guest (EFER.LME/LMA, 4-level paging with 2 MiB pages,
# SEL_CODE64), loaded at CODE_ADDR.
	.equ BITS, 64
	.code64
	.include "common.inc"
	.include "exits.inc"
	.include "paging.inc"
	.include "state64.inc"
	.include "hypercall.inc"
	.include "bench.inc"
	.include "emul.inc"
	.include "irq.inc"
	.include "reliability.inc"
	.include "caps.inc"
	.include "arch.inc"
