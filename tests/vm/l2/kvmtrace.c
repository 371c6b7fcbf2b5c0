// kvmtrace: an LD_PRELOAD shim that logs what a VMM asks of /dev/kvm, with
// the arguments strace does not decode: KVM_CHECK_EXTENSION results per fd
// kind, GET/SET_MSRS entries (and which one failed), the MSR index lists,
// SET_CPUID2 / GET_SUPPORTED_CPUID entries, ENABLE_CAP arguments.
// Built by tests/vm/l2/kvmtrace.sh; names come from the generated
// kvmtrace-names.h (our usr/include uapi headers).
//
//   KVMTRACE_OUT=/tmp/qemu.kvmtrace LD_PRELOAD=build/l2/kvmtrace.so qemu-system-x86_64 ...
//
// Every ioctl on a KVM fd is logged the first KVMTRACE_MAX (default 40)
// times per request, failures always; a count per request is written when
// the process exits normally.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

struct name { unsigned long nr; const char *name; };
static const struct name ioctls[] = {
#define X(n) { n, #n },
#include "kvmtrace-ioctls.h"
#undef X
};
static const struct name caps[] = {
#define X(n) { n, #n },
#include "kvmtrace-caps.h"
#undef X
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static int (*real_ioctl)(int, unsigned long, ...);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int out = 2;
static unsigned max_each = 40;
static unsigned counts[N(ioctls) + 1], fails[N(ioctls) + 1];
/* fd kinds: 0 unknown, 1 /dev/kvm, 2 VM, 3 vCPU, 4 other KVM fd (device, ...) */
static unsigned char kind[4096];
static const char *kinds[] = { "?", "sys", "vm", "vcpu", "dev" };
/* Each vCPU's kvm_run (its mmap), for the exit profile. */
static struct kvm_run *runs[4096];
/* Exit profile: (reason, port or MMIO page, direction) -> count. */
struct exitkey { unsigned reason; unsigned long long where; unsigned dir; unsigned long n; };
static struct exitkey exits[512];
static unsigned nexits;
static const char *exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION", [KVM_EXIT_IO] = "IO",
	[KVM_EXIT_HYPERCALL] = "HYPERCALL", [KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT",
	[KVM_EXIT_MMIO] = "MMIO", [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
	[KVM_EXIT_SHUTDOWN] = "SHUTDOWN", [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY", [KVM_EXIT_INTR] = "INTR",
	[KVM_EXIT_SET_TPR] = "SET_TPR", [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
	[KVM_EXIT_NMI] = "NMI", [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
	[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT", [KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
	[KVM_EXIT_X86_RDMSR] = "X86_RDMSR", [KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
};

static void count_exit(struct kvm_run *r)
{
	unsigned long long where = 0;
	unsigned dir = 0;
	switch (r->exit_reason) {
	case KVM_EXIT_IO: where = r->io.port; dir = r->io.direction; break;
	case KVM_EXIT_MMIO: where = r->mmio.phys_addr & ~0xfULL; dir = r->mmio.is_write; break;
	case KVM_EXIT_X86_RDMSR: case KVM_EXIT_X86_WRMSR: where = r->msr.index; break;
	case KVM_EXIT_SYSTEM_EVENT: where = r->system_event.type; break;
	case KVM_EXIT_INTERNAL_ERROR: where = r->internal.suberror; break;
	case KVM_EXIT_FAIL_ENTRY: where = r->fail_entry.hardware_entry_failure_reason; break;
	}
	for (unsigned i = 0; i < nexits; i++)
		if (exits[i].reason == r->exit_reason && exits[i].where == where && exits[i].dir == dir) {
			exits[i].n++;
			return;
		}
	if (nexits < sizeof(exits) / sizeof(exits[0]))
		exits[nexits++] = (struct exitkey){ r->exit_reason, where, dir, 1 };
}

static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!real_mmap)
		real_mmap = dlsym(RTLD_NEXT, "mmap");
	void *p = real_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && fd >= 0 && fd < 4096 && kind[fd] == 3 && off == 0)
		runs[fd] = p;
	return p;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

static void say(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (write(out, buf, n) < 0) { /* nothing to do */ }
}

static int find(const struct name *t, size_t n, unsigned long v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].nr == v)
			return i;
	return -1;
}

static const char *cap_name(unsigned long c)
{
	int i = find(caps, N(caps), c);
	return i < 0 ? "KVM_CAP_?" : caps[i].name;
}

__attribute__((constructor)) static void init(void)
{
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	const char *p = getenv("KVMTRACE_OUT");
	if (p) {
		int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0)
			out = fd;
	}
	if ((p = getenv("KVMTRACE_MAX")))
		max_each = atoi(p);
}

__attribute__((destructor)) static void fini(void)
{
	say("== KVM_RUN exits to userspace (reason, port/MMIO address/MSR, dir: count)\n");
	for (unsigned i = 0; i < nexits; i++) {
		unsigned r = exits[i].reason;
		const char *nm = r < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[r] ? exit_names[r] : "?";
		say("exit %-14s 0x%-10llx %s %lu\n", nm, exits[i].where,
		    r == KVM_EXIT_IO ? (exits[i].dir ? "out" : "in ") : r == KVM_EXIT_MMIO ? (exits[i].dir ? "wr " : "rd ") : "   ",
		    exits[i].n);
	}
	say("== counts\n");
	for (size_t i = 0; i <= N(ioctls); i++)
		if (counts[i])
			say("count %s %u (failed %u)\n", i < N(ioctls) ? ioctls[i].name : "?", counts[i], fails[i]);
}

static void dump_msrs(const char *what, struct kvm_msrs *m, long ret)
{
	say("  %s nmsrs=%u ->", what, m->nmsrs);
	for (unsigned i = 0; i < m->nmsrs; i++) {
		if ((long)i == ret)
			say("\n  !! entry %u (msr 0x%x data 0x%llx) not processed: the first refused", i,
			    m->entries[i].index, (unsigned long long)m->entries[i].data);
		say("%s 0x%x=0x%llx", i % 4 ? "" : "\n   ", m->entries[i].index,
		    (unsigned long long)m->entries[i].data);
	}
	say("\n");
}

static void dump_cpuid(struct kvm_cpuid2 *c)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		say("   0x%08x.%u flags=%u: %08x %08x %08x %08x\n", e->function, e->index, e->flags,
		    e->eax, e->ebx, e->ecx, e->edx);
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	/* QEMU passes the request as an int: sign-extended. */
	req &= 0xffffffffUL;
	if (!real_ioctl)
		real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	if (_IOC_TYPE(req) != KVMIO)
		return real_ioctl(fd, req, arg);

	struct kvm_msrs *in_msrs = NULL;
	int ret = real_ioctl(fd, req, arg);
	int err = errno;

	pthread_mutex_lock(&lock);
	int i = find(ioctls, N(ioctls), req);
	size_t slot = i < 0 ? N(ioctls) : (size_t)i;
	unsigned n = ++counts[slot];
	if (ret < 0)
		fails[slot]++;
	if (req == KVM_RUN && ret == 0 && fd >= 0 && fd < 4096 && runs[fd])
		count_exit(runs[fd]);
	if (req == KVM_GET_API_VERSION && fd < 4096)
		kind[fd] = 1;
	if (ret >= 0 && ret < 4096) {
		if (req == KVM_CREATE_VM) kind[ret] = 2;
		else if (req == KVM_CREATE_VCPU) kind[ret] = 3;
		else if (req == KVM_CREATE_DEVICE) kind[((struct kvm_create_device *)arg)->fd & 4095] = 4;
	}
	int quiet = n > max_each && ret >= 0;
	if (req == KVM_RUN && (ret >= 0 || err == EINTR || err == EAGAIN))
		quiet = n > 4;
	if (!quiet) {
		const char *name = i < 0 ? NULL : ioctls[i].name;
		char rbuf[64];
		if (ret < 0)
			snprintf(rbuf, sizeof(rbuf), "-1 %s", strerrorname_np(err) ?: "?");
		else
			snprintf(rbuf, sizeof(rbuf), "%d", ret);
		if (!name)
			say("[%s fd%d] ioctl 0x%lx (nr 0x%lx) = %s\n", kinds[fd < 4096 ? kind[fd] : 0], fd, req,
			    (unsigned long)_IOC_NR(req), rbuf);
		else if (req == KVM_CHECK_EXTENSION)
			say("[%s fd%d] KVM_CHECK_EXTENSION %s (%lu) = %s\n", kinds[fd < 4096 ? kind[fd] : 0], fd,
			    cap_name((unsigned long)arg), (unsigned long)arg, rbuf);
		else if (req == KVM_ENABLE_CAP) {
			struct kvm_enable_cap *c = arg;
			say("[%s fd%d] KVM_ENABLE_CAP %s (%u) flags=%u args=0x%llx,0x%llx,0x%llx,0x%llx = %s\n",
			    kinds[fd < 4096 ? kind[fd] : 0], fd, cap_name(c->cap), c->cap, c->flags,
			    (unsigned long long)c->args[0], (unsigned long long)c->args[1],
			    (unsigned long long)c->args[2], (unsigned long long)c->args[3], rbuf);
		} else
			say("[%s fd%d] %s (arg 0x%lx) = %s\n", kinds[fd < 4096 ? kind[fd] : 0], fd, name,
			    (unsigned long)arg, rbuf);
		if (req == KVM_GET_MSRS || req == KVM_SET_MSRS)
			in_msrs = arg;
		if (in_msrs)
			dump_msrs(req == KVM_GET_MSRS ? "GET" : "SET", in_msrs, ret);
		if ((req == KVM_GET_MSR_INDEX_LIST || req == KVM_GET_MSR_FEATURE_INDEX_LIST) && ret >= 0) {
			struct kvm_msr_list *l = arg;
			say("  %u MSRs:", l->nmsrs);
			for (unsigned k = 0; k < l->nmsrs; k++)
				say("%s 0x%x", k % 8 ? "" : "\n   ", l->indices[k]);
			say("\n");
		}
		if ((req == KVM_SET_CPUID2 && n <= 3) || ((req == KVM_GET_SUPPORTED_CPUID ||
		     req == KVM_GET_EMULATED_CPUID) && ret >= 0))
			dump_cpuid(arg);
		if (req == KVM_SET_TSC_KHZ || req == KVM_SET_TSS_ADDR || req == KVM_SET_BOOT_CPU_ID)
			say("  value %lu (0x%lx)\n", (unsigned long)arg, (unsigned long)arg);
		if (req == KVM_SET_IDENTITY_MAP_ADDR)
			say("  value 0x%llx\n", (unsigned long long)*(__u64 *)arg);
		if (req == KVM_SET_USER_MEMORY_REGION) {
			struct kvm_userspace_memory_region *r = arg;
			say("  slot %u flags %u gpa 0x%llx size 0x%llx\n", r->slot, r->flags,
			    (unsigned long long)r->guest_phys_addr, (unsigned long long)r->memory_size);
		}
	}
	pthread_mutex_unlock(&lock);
	errno = err;
	return ret;
}
