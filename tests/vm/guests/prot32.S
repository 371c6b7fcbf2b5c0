# 32-bit protected-mode guest with paging (CR0.PG, CR4.PSE, 4 MiB pages;
# flat segments SEL_CODE32/SEL_DATA), loaded at CODE_ADDR.
	.equ BITS, 32
	.code32
	.include "common.inc"
	.include "exits.inc"
	.include "paging.inc"
	.include "emul.inc"
