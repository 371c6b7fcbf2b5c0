// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only module for the gate's own tests (not part of rkvm): loaded
 * first thing in the test VM (RKVM_L1_INSMOD, tests/vm/init.sh), it puts a
 * WARNING into L1's kernel log early in boot when warn=1, long before the
 * tests run. scripts/check.sh must then fail vm/<set>/kernel-log-clean.
 *
 *   make -C tests/vm/warnmod
 *   RKVM_L1_INSMOD=$PWD/tests/vm/warnmod/warnmod.ko RKVM_L1_INSMOD_ARGS=warn=1 make check
 */
#include <linux/bug.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

static bool warn;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN once when loaded");

static int __init warnmod_init(void)
{
	WARN(warn, "rkvm warnmod: deliberate warning (warn=1)\n");
	return 0;
}

static void __exit warnmod_exit(void)
{
}

module_init(warnmod_init);
module_exit(warnmod_exit);
MODULE_DESCRIPTION("rkvm gate test: a deliberate WARN early in boot");
MODULE_LICENSE("GPL");
