// SPDX-License-Identifier: GPL-2.0
/*
 * Records what a KVM module set advertises on /dev/kvm, plus the raw CPUID
 * of the CPU it runs on, as a text fixture for tests/host/cpuid_caps.
 *
 * Output lines (all numbers hex):
 *   raw LEAF SUBLEAF EAX EBX ECX EDX     host CPUID
 *   xcr0 VALUE                           XGETBV(0)
 *   flags NAME...  / bugs NAME...        /proc/cpuinfo of cpu 0
 *   supported FUNC INDEX FLAGS EAX EBX ECX EDX
 *   supported_nent N / supported_e2big NENT ERRNO
 *   emulated ... / emulated_nent N / emulated_e2big NENT ERRNO
 *   msr INDEX / msr_nent N / feature_msr INDEX / feature_msr_nent N
 *   feature_msr_value INDEX VALUE | feature_msr_value INDEX none
 *   rdmsr INDEX VALUE | rdmsr INDEX fault   host RDMSR via /dev/cpu/0/msr
 * Everything runs on CPU 0, so per-CPU fields (APIC IDs) agree.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <sched.h>
#include <cpuid.h>
#include <linux/kvm.h>

static void raw(unsigned leaf, unsigned sub)
{
	unsigned a, b, c, d;

	__cpuid_count(leaf, sub, a, b, c, d);
	printf("raw %x %x %x %x %x %x\n", leaf, sub, a, b, c, d);
}

static int indexed(unsigned f)
{
	switch (f) {
	case 4: case 7: case 0xb: case 0xd: case 0xf: case 0x10: case 0x12:
	case 0x14: case 0x17: case 0x18: case 0x1d: case 0x1e: case 0x1f:
	case 0x23: case 0x24: case 0x8000001d: case 0x80000020: case 0x80000026:
		return 1;
	}
	return 0;
}

static void raw_range(unsigned base)
{
	unsigned a, b, c, d, max, f, s;

	__cpuid_count(base, 0, a, b, c, d);
	max = a;
	if (max < base || max > base + 0xff)
		max = base;
	for (f = base; f <= max; f++)
		for (s = 0; s < (indexed(f) ? 64 : 1); s++)
			raw(f, s);
}

static int get_cpuid(int kvm, unsigned long req, const char *tag, int nent, int print)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
	int i, r;

	c->nent = nent;
	r = ioctl(kvm, req, c);
	if (r < 0) {
		r = -errno;
		free(c);
		return r;
	}
	if (print) {
		for (i = 0; i < (int)c->nent; i++) {
			struct kvm_cpuid_entry2 *e = &c->entries[i];
			printf("%s %x %x %x %x %x %x %x\n", tag, e->function, e->index,
			       e->flags, e->eax, e->ebx, e->ecx, e->edx);
		}
		printf("%s_nent %x\n", tag, c->nent);
	}
	r = c->nent;
	free(c);
	return r;
}

static void cpuid_ioctl(int kvm, unsigned long req, const char *tag)
{
	int n = get_cpuid(kvm, req, tag, 256, 1), k, r;
	char e2big[64];

	snprintf(e2big, sizeof(e2big), "%s_e2big", tag);
	if (n < 0) {
		printf("%s_error %d\n", tag, -n);
		return;
	}
	/* Every size from 1 to n + 1: which ones fail and how. */
	for (k = 1; k <= n + 1; k++) {
		r = get_cpuid(kvm, req, tag, k, 0);
		printf("%s %x %x\n", e2big, k, r < 0 ? -r : 0);
	}
}

static unsigned msr_list(int kvm, unsigned long req, const char *tag, unsigned *out)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;
	unsigned i, n;

	if (ioctl(kvm, req, &probe) < 0 && errno != E2BIG) {
		printf("%s_error %d\n", tag, errno);
		return 0;
	}
	printf("%s_probe_errno %d\n", tag, errno);
	n = probe.nmsrs;
	l = calloc(1, sizeof(*l) + n * sizeof(unsigned));
	l->nmsrs = n;
	if (ioctl(kvm, req, l) < 0) {
		printf("%s_error %d\n", tag, errno);
		return 0;
	}
	for (i = 0; i < l->nmsrs; i++) {
		printf("%s %x\n", tag, l->indices[i]);
		if (out && i < 64)
			out[i] = l->indices[i];
	}
	printf("%s_nent %x\n", tag, l->nmsrs);
	n = l->nmsrs;
	free(l);
	return n;
}

static void feature_value(int kvm, unsigned idx)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m;
	int r;

	memset(&m, 0, sizeof(m));
	m.h.nmsrs = 1;
	m.e.index = idx;
	r = ioctl(kvm, KVM_GET_MSRS, &m);
	if (r == 1)
		printf("feature_msr_value %x %llx\n", idx, (unsigned long long)m.e.data);
	else
		printf("feature_msr_value %x none %d\n", idx, r < 0 ? -errno : r);
}

/* Candidates of upstream's msrs_to_save[] plus a few feature MSRs. */
static const unsigned probe_msrs[] = {
	0x174, 0x175, 0x176, 0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084,
	0xc0000082, 0x10, 0x277, 0xc0010117, 0x3a, 0xd90, 0xc0000103, 0x48,
	0x122, 0x570, 0x571, 0x572, 0x560, 0x561, 0x580, 0x581, 0x582, 0x583,
	0x584, 0x585, 0x586, 0x587, 0xe1, 0x1c4, 0x1c5, 0xda0, 0x6a0, 0x6a2,
	0x6a4, 0x6a5, 0x6a6, 0x6a7, 0x6a8, 0x1d9, 0x1db, 0x1dc, 0x1dd, 0x1de,
	0x8b, 0x10a, 0xc0011029, 0xc0011020, 0xc0010000, 0xc0010004,
	0xc0010200, 0xc0010201, 0xc0000300, 0xc0000301,
};

static void probe_rdmsr(void)
{
	int fd = open("/dev/cpu/0/msr", O_RDONLY);
	unsigned i;

	if (fd < 0) {
		printf("rdmsr_error %d\n", errno);
		return;
	}
	for (i = 0; i < sizeof(probe_msrs) / sizeof(probe_msrs[0]); i++) {
		unsigned long long v;

		if (pread(fd, &v, 8, probe_msrs[i]) == 8)
			printf("rdmsr %x %llx\n", probe_msrs[i], v);
		else
			printf("rdmsr %x fault\n", probe_msrs[i]);
	}
	close(fd);
}

int main(void)
{
	cpu_set_t set;
	unsigned feats[64], nf, i, lo, hi;
	char line[8192];
	FILE *f;
	int kvm;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);

	raw_range(0);
	raw_range(0x40000000);
	raw_range(0x80000000);
	raw_range(0xc0000000);
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	printf("xcr0 %llx\n", ((unsigned long long)hi << 32) | lo);

	f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "flags", 5) || !strncmp(line, "bugs", 4)) {
			char *colon = strchr(line, ':');
			int bugs = line[0] == 'b';

			printf("%s%s", bugs ? "bugs" : "flags", colon ? colon + 1 : "\n");
			if (bugs)
				break;
		}
	}

	probe_rdmsr();

	kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0) {
		printf("error open /dev/kvm %d\n", errno);
		return 1;
	}
	cpuid_ioctl(kvm, KVM_GET_SUPPORTED_CPUID, "supported");
	cpuid_ioctl(kvm, KVM_GET_EMULATED_CPUID, "emulated");
	msr_list(kvm, KVM_GET_MSR_INDEX_LIST, "msr", NULL);
	nf = msr_list(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST, "feature_msr", feats);
	for (i = 0; i < nf && i < 64; i++)
		feature_value(kvm, feats[i]);
	/* Not a feature MSR: what does /dev/kvm KVM_GET_MSRS say? */
	feature_value(kvm, 0x10);
	feature_value(kvm, 0x48);
	printf("end\n");
	return 0;
}
