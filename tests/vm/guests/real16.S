# Real-mode guest (CS = DS = ES = SS = 0, 64 KiB limits), loaded at
# CODE_ADDR.  The host starts it at one of the routines below.
	.equ BITS, 16
	.code16
	.include "common.inc"
	.include "exits.inc"
	.include "modeswitch.inc"
	.include "emul.inc"
