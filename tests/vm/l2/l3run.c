/*
 * The L3 guest of `make check-nested` (issue 15): run inside the L2 guest
 * (scripts/l2-boot.sh, variant nested) on /dev/kvm of the in-tree kvm.ko +
 * kvm-amd.ko that L2 loaded, which works only when L1's kvm-amd gives L2
 * SVM (nested=1). Built static on the host by scripts/l2-initramfs.sh
 * --nested, with the real-mode guest of the in-VM suite
 * (tests/vm/guests/real16.S, assembled there as tests/vm/vmtest/build.rs
 * does) beside it and its symbols compiled in (l3syms.h, from nm).
 *
 *   l3run [REAL16.BIN]                 default /l3/real16.bin
 *   l3run loop SECONDS [STOP-FILE [REAL16.BIN]]
 *
 * Each row runs one or two routines of guests/exits.inc in a fresh VM
 * (one vCPU, real mode, slot 0 = RAM over [0, LOW_RAM_END), the guest at
 * CODE_ADDR, nothing at MMIO_ADDR) and checks the exact exits the routine
 * documents, as tests/vm/vmtest/src/suites/exits.rs does:
 *   pio    pio_out: OUT of sizes 1, 2, 4 to PORT_OUT and of size 1 to
 *          PORT_HI, then HLT; pio_in: IN of sizes 1, 2, 4 (answered here),
 *          each value echoed to PORT_ECHO, then HLT
 *   mmio   mmio_write: writes of sizes 1, 2, 4 to MMIO_ADDR + 0, 2, 4,
 *          then HLT; mmio_read: reads of sizes 1, 2, 4 (answered here),
 *          each value echoed to PORT_ECHO, then HLT
 *   hlt    hlt_once: KVM_EXIT_HLT with RIP just past the HLT
 * Output, one line each:
 *   RKVM-L3 PASS <row> <exits> exits <ms> ms
 *   RKVM-L3 FAIL <row>: <what> (the exits seen so far)
 * then RKVM-L3-DONE <failures>. Exit status 1 when a row failed. Every
 * KVM_RUN is bounded (RUN_TIMEOUT s, SIGALRM): a guest that does not exit
 * is a FAIL, not a hang.
 *
 * Mode loop (the migration leg of `make check-nested`: L2 is live-migrated
 * while this runs) repeats, in one VM (each routine started with
 * KVM_SET_REGS) and every exit checked as above, until SECONDS have passed
 * or STOP-FILE exists:
 *   pio_out, pio_in, mmio_write, mmio_read, hlt_once,
 *   count_out  EBX = the iteration (low 16 bits), ECX = COUNT_N: OUT of
 *              (tag << 16 | i) for i = 1..COUNT_N, then HLT (L3's own
 *              registers carry the count from exit to exit)
 *   spin       L3 counts at SCRATCH without exits until a SPIN_MS timer
 *              signal: KVM_RUN fails with EINTR (KVM_EXIT_INTR) and the
 *              count is not 0 -- L3 busy in guest mode, so that a
 *              migration often stops L2's vCPU while it runs L3
 * Output: RKVM-L3-LOOP <iterations> <exits> <spin count> <seconds>
 * (progress, after the first iteration and then at most every 0.5 s),
 * then RKVM-L3 PASS loop <iterations> iterations <exits> exits <ms> ms, <ms>
 * ms spinning (<why it ended>) or RKVM-L3 FAIL loop: iteration <n>, <routine>: <what>
 * (the routine's exits), and RKVM-L3-DONE <failures>.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "l3syms.h"

#define RUN_TIMEOUT 10
#define MEM_LEN 0x10000
/* Mode loop: count_out's count, spin's time. */
#define COUNT_N 8
#define SPIN_MS 300

static const char *bin_path = "/l3/real16.bin";
static uint8_t bin[0x4000];
static size_t bin_len;

/* One VM with one vCPU. */
static int kvm_fd = -1, vm_fd = -1, vcpu_fd = -1;
static struct kvm_run *run;
static size_t run_len;
static uint8_t *mem;

/* The row being run: its failure text, the exits seen (for the report). */
static char why[512];
static char seen[1024];
static int nexits;

static int failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failf(const char *fmt, ...)
{
	va_list ap;

	if (!why[0]) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void vm_close(void)
{
	if (run)
		munmap(run, run_len);
	if (mem)
		munmap(mem, MEM_LEN);
	if (vcpu_fd >= 0)
		close(vcpu_fd);
	if (vm_fd >= 0)
		close(vm_fd);
	if (kvm_fd >= 0)
		close(kvm_fd);
	run = NULL, mem = NULL;
	kvm_fd = vm_fd = vcpu_fd = -1;
}

/* Mode loop: one VM for every routine (vm_open only sets the registers). */
static int keep_vm;

/* vm_open: a fresh VM in real mode at routine RIP. */
static int vm_open(uint64_t rip)
{
	struct kvm_userspace_memory_region r = { 0 };
	struct kvm_sregs s;
	struct kvm_regs regs = { 0 };
	struct kvm_segment *segs[] = { &s.ds, &s.es, &s.fs, &s.gs, &s.ss };
	int v;
	long n;

	if (keep_vm && vcpu_fd >= 0)
		goto set_regs;
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		return failf("open /dev/kvm: %s", strerror(errno));
	v = ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return failf("KVM_GET_API_VERSION: %d, want %d", v, KVM_API_VERSION);
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		return failf("KVM_CREATE_VM: %s", strerror(errno));
	mem = mmap(NULL, MEM_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		mem = NULL;
		return failf("mmap guest memory: %s", strerror(errno));
	}
	memcpy(mem + CODE_ADDR, bin, bin_len);
	r.slot = 0;
	r.guest_phys_addr = 0;
	r.memory_size = LOW_RAM_END;
	r.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return failf("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		return failf("KVM_CREATE_VCPU: %s", strerror(errno));
	n = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (n < (long)sizeof(*run))
		return failf("KVM_GET_VCPU_MMAP_SIZE: %ld (%s)", n, n < 0 ? strerror(errno) : "too small");
	run_len = n;
	run = mmap(NULL, run_len, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED) {
		run = NULL;
		return failf("mmap kvm_run: %s", strerror(errno));
	}
	/* Real mode, CS = DS = ES = SS = 0 with 64 KiB limits (exits.rs's
	 * Cpu::set_mode), the real-mode IVT at 0. */
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
		return failf("KVM_GET_SREGS: %s", strerror(errno));
	s.cs = (struct kvm_segment){ .limit = 0xffff, .type = 0xb, .present = 1, .s = 1 };
	for (v = 0; v < 5; v++)
		*segs[v] = (struct kvm_segment){ .limit = 0xffff, .type = 3, .present = 1, .s = 1 };
	s.idt.base = 0;
	s.idt.limit = 0x3ff;
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &s) < 0)
		return failf("KVM_SET_SREGS: %s", strerror(errno));
set_regs:
	regs.rip = rip;
	regs.rsp = STACK_TOP;
	regs.rflags = 2;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return failf("KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

/* describe: the current exit, in words, into BUF. */
static void describe(char *buf, size_t len)
{
	const uint8_t *d;
	unsigned i;
	int o;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		d = (const uint8_t *)run + run->io.data_offset;
		o = snprintf(buf, len, "io %s port %#x size %u count %u", run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
			     run->io.port, run->io.size, run->io.count);
		if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size <= 8 && run->io.count == 1)
			for (i = 0; i < run->io.size && o > 0 && (size_t)o < len; i++)
				o += snprintf(buf + o, len - o, "%s%02x", i ? " " : " [", d[i]);
		if (run->io.direction == KVM_EXIT_IO_OUT && o > 0 && (size_t)o < len && run->io.count == 1)
			snprintf(buf + o, len - o, "]");
		break;
	case KVM_EXIT_MMIO:
		o = snprintf(buf, len, "mmio %s %#llx len %u", run->mmio.is_write ? "write" : "read",
			     (unsigned long long)run->mmio.phys_addr, run->mmio.len);
		if (run->mmio.is_write && run->mmio.len <= 8)
			for (i = 0; i < run->mmio.len && o > 0 && (size_t)o < len; i++)
				o += snprintf(buf + o, len - o, "%s%02x", i ? " " : " [", run->mmio.data[i]);
		if (run->mmio.is_write && o > 0 && (size_t)o < len)
			snprintf(buf + o, len - o, "]");
		break;
	case KVM_EXIT_HLT:
		snprintf(buf, len, "hlt");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(buf, len, "internal error %u", run->internal.suberror);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(buf, len, "failed entry %#llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_SHUTDOWN:
		snprintf(buf, len, "shutdown");
		break;
	default:
		snprintf(buf, len, "exit reason %u", run->exit_reason);
	}
}

/* run_once: one KVM_RUN, bounded; the exit is in *run. */
static int run_once(void)
{
	char d[160];
	int r, e;
	size_t l;

	alarm(RUN_TIMEOUT);
	r = ioctl(vcpu_fd, KVM_RUN, 0);
	e = errno;
	alarm(0);
	if (r < 0 && e == EINTR)
		return failf("KVM_RUN did not return within %d s (guest stuck or exit lost)", RUN_TIMEOUT);
	if (r < 0)
		return failf("KVM_RUN: %s", strerror(e));
	nexits++;
	describe(d, sizeof(d));
	l = strlen(seen);
	if (l + strlen(d) + 3 < sizeof(seen))
		snprintf(seen + l, sizeof(seen) - l, "%s%s", l ? "; " : "", d);
	return 0;
}

static int want_reason(unsigned reason, const char *what)
{
	char d[160];

	if (run->exit_reason == reason)
		return 0;
	describe(d, sizeof(d));
	return failf("got %s, want %s", d, what);
}

/* expect_out PORT SIZE VALUE: KVM_EXIT_IO, OUT of SIZE bytes of VALUE. */
static int expect_out(uint16_t port, uint8_t size, uint32_t value)
{
	char w[64];

	snprintf(w, sizeof(w), "io out port %#x size %u [%#x]", port, size, value);
	if (run_once() || want_reason(KVM_EXIT_IO, w))
		return -1;
	if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != port || run->io.size != size || run->io.count != 1 ||
	    memcmp((uint8_t *)run + run->io.data_offset, &value, size))
		return want_reason(~0u, w);
	return 0;
}

/* expect_in PORT SIZE VALUE: KVM_EXIT_IO, IN of SIZE bytes; answers VALUE. */
static int expect_in(uint16_t port, uint8_t size, uint32_t value)
{
	char w[64];

	snprintf(w, sizeof(w), "io in port %#x size %u", port, size);
	if (run_once() || want_reason(KVM_EXIT_IO, w))
		return -1;
	if (run->io.direction != KVM_EXIT_IO_IN || run->io.port != port || run->io.size != size || run->io.count != 1)
		return want_reason(~0u, w);
	memcpy((uint8_t *)run + run->io.data_offset, &value, size);
	return 0;
}

/* expect_mmio WRITE ADDR LEN VALUE: KVM_EXIT_MMIO; a write of VALUE, or a
 * read answered with VALUE. */
static int expect_mmio(int write, uint64_t addr, uint32_t len, uint32_t value)
{
	char w[80];

	snprintf(w, sizeof(w), "mmio %s %#llx len %u%s", write ? "write" : "read", (unsigned long long)addr, len,
		 write ? " (the routine's value)" : "");
	if (run_once() || want_reason(KVM_EXIT_MMIO, w))
		return -1;
	if (!run->mmio.is_write != !write || run->mmio.phys_addr != addr || run->mmio.len != len ||
	    (write && memcmp(run->mmio.data, &value, len)))
		return want_reason(~0u, w);
	if (!write)
		memcpy(run->mmio.data, &value, len);
	return 0;
}

/* expect_hlt [RIP]: KVM_EXIT_HLT, with RIP there when it is not 0. */
static int expect_hlt(uint64_t rip)
{
	struct kvm_regs regs;

	if (run_once() || want_reason(KVM_EXIT_HLT, "hlt"))
		return -1;
	if (!rip)
		return 0;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return failf("KVM_GET_REGS: %s", strerror(errno));
	if (regs.rip != rip)
		return failf("rip after hlt %#llx, want %#llx", (unsigned long long)regs.rip, (unsigned long long)rip);
	return 0;
}

static int pio_out(void)
{
	return vm_open(SYM_pio_out) || expect_out(PORT_OUT, 1, 0x12) || expect_out(PORT_OUT, 2, 0x3456) ||
	       expect_out(PORT_OUT, 4, 0x789abcde) || expect_out(PORT_HI, 1, 0xab) || expect_hlt(0);
}

static int pio_in(void)
{
	return vm_open(SYM_pio_in) || expect_in(PORT_IN, 1, 0xa5) || expect_out(PORT_ECHO, 4, 0x112233a5) ||
	       expect_in(PORT_IN, 2, 0xbeef) || expect_out(PORT_ECHO, 4, 0x1122beef) ||
	       expect_in(PORT_HI, 4, 0xdeadbeef) || expect_out(PORT_ECHO, 4, 0xdeadbeef) || expect_hlt(0);
}

static int mmio_write(void)
{
	return vm_open(SYM_mmio_write) || expect_mmio(1, MMIO_ADDR, 1, 0x5a) || expect_mmio(1, MMIO_ADDR + 2, 2, 0x1234) ||
	       expect_mmio(1, MMIO_ADDR + 4, 4, 0x89abcdef) || expect_hlt(0);
}

static int mmio_read(void)
{
	return vm_open(SYM_mmio_read) || expect_mmio(0, MMIO_ADDR, 1, 0x81) || expect_out(PORT_ECHO, 4, 0x81) ||
	       expect_mmio(0, MMIO_ADDR + 2, 2, 0x8283) || expect_out(PORT_ECHO, 4, 0x8283) ||
	       expect_mmio(0, MMIO_ADDR + 4, 4, 0x84858687) || expect_out(PORT_ECHO, 4, 0x84858687) || expect_hlt(0);
}

static int hlt_once(void)
{
	return vm_open(SYM_hlt_once) || expect_hlt(SYM_after_hlt);
}

/* Mode loop: the iteration (count_out's tag), spin's total count. */
static unsigned long loop_iter;
static unsigned long long spin_total;
static double spin_ms;

static int count_out(void)
{
	struct kvm_regs regs;
	uint32_t tag = loop_iter & 0xffff, i;

	if (vm_open(SYM_count_out))
		return -1;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs) < 0)
		return failf("KVM_GET_REGS: %s", strerror(errno));
	regs.rbx = tag;
	regs.rcx = COUNT_N;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		return failf("KVM_SET_REGS: %s", strerror(errno));
	for (i = 1; i <= COUNT_N; i++)
		if (expect_out(PORT_OUT, 4, tag << 16 | i))
			return -1;
	return expect_hlt(0);
}

/* spin: L3 runs without exits until the SPIN_MS timer's signal (repeating,
 * should one arrive before KVM_RUN). */
static int spin(void)
{
	struct itimerval it = { .it_interval = { 0, SPIN_MS * 1000 }, .it_value = { 0, SPIN_MS * 1000 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	uint32_t count;
	char d[160];
	double t;
	int r, e;

	if (vm_open(SYM_spin))
		return -1;
	memset(mem + SCRATCH, 0, sizeof(count));
	t = now_ms();
	setitimer(ITIMER_REAL, &it, NULL);
	r = ioctl(vcpu_fd, KVM_RUN, 0);
	e = errno;
	setitimer(ITIMER_REAL, &off, NULL);
	spin_ms += now_ms() - t;
	nexits++;
	if (r >= 0) {
		describe(d, sizeof(d));
		return failf("got %s, want KVM_RUN interrupted by the %d ms timer (EINTR)", d, SPIN_MS);
	}
	if (e != EINTR)
		return failf("KVM_RUN: %s", strerror(e));
	if (run->exit_reason != KVM_EXIT_INTR)
		return failf("KVM_RUN: EINTR with exit_reason %u, want KVM_EXIT_INTR", run->exit_reason);
	memcpy(&count, mem + SCRATCH, sizeof(count));
	if (!count)
		return failf("EINTR, but the guest's count at SCRATCH is 0: it never ran");
	spin_total += count;
	snprintf(seen, sizeof(seen), "intr (count %u)", count);
	return 0;
}

struct part {
	const char *name;
	int (*fn)(void);
};

/* loop SECONDS STOP: mode loop; 0 when every exit was right. */
static int loop(double seconds, const char *stop)
{
	static const struct part parts[] = {
		{ "pio_out", pio_out }, { "pio_in", pio_in },       { "mmio_write", mmio_write }, { "mmio_read", mmio_read },
		{ "hlt_once", hlt_once }, { "count_out", count_out }, { "spin", spin },
	};
	unsigned long long exits = 0;
	double t0 = now_ms(), last = 0, t;
	const char *end;
	unsigned p;

	keep_vm = 1;
	for (loop_iter = 1;; loop_iter++) {
		for (p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
			why[0] = seen[0] = 0;
			nexits = 0;
			if (parts[p].fn()) {
				if (!why[0])
					failf("unexpected exit");
				printf("RKVM-L3 FAIL loop: iteration %lu, %s: %s (exits: %s)\n", loop_iter, parts[p].name, why,
				       seen[0] ? seen : "none");
				printf("RKVM-L3-DONE 1\n");
				vm_close();
				return 1;
			}
			exits += nexits;
		}
		t = now_ms();
		if (!last || t - last >= 500) {
			printf("RKVM-L3-LOOP %lu %llu %llu %.1f\n", loop_iter, exits, spin_total, (t - t0) / 1e3);
			last = t;
		}
		end = NULL;
		if (stop && access(stop, F_OK) == 0)
			end = "stopped by the stop file";
		else if (t - t0 >= seconds * 1e3)
			end = "time up";
		if (end)
			break;
	}
	vm_close();
	printf("RKVM-L3 PASS loop %lu iterations %llu exits %.1f ms, %.1f ms spinning (%s)\n", loop_iter, exits,
	       now_ms() - t0, spin_ms, end);
	printf("RKVM-L3-DONE 0\n");
	return 0;
}

struct row {
	const char *name;
	int (*parts[2])(void);
	const char *part_names[2];
};

static const struct row rows[] = {
	{ "pio", { pio_out, pio_in }, { "pio_out", "pio_in" } },
	{ "mmio", { mmio_write, mmio_read }, { "mmio_write", "mmio_read" } },
	{ "hlt", { hlt_once, NULL }, { "hlt_once", NULL } },
};

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	unsigned i, p;
	int failures = 0, fd;
	ssize_t n;
	double t, seconds = 0;
	const char *stop = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "loop")) {
		if (argc < 3 || (seconds = strtod(argv[2], NULL)) <= 0) {
			printf("RKVM-L3-DONE error: usage: %s loop SECONDS [STOP-FILE [REAL16.BIN]]\n", argv[0]);
			return 2;
		}
		if (argc > 3)
			stop = argv[3];
		if (argc > 4)
			bin_path = argv[4];
	} else if (argc > 1) {
		bin_path = argv[1];
	}
	/* No SA_RESTART: the alarm interrupts a KVM_RUN that does not return. */
	sigaction(SIGALRM, &sa, NULL);
	fd = open(bin_path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, bin, sizeof(bin));
	if (n <= 0 || n >= (ssize_t)sizeof(bin) || n > LOW_RAM_END - CODE_ADDR) {
		printf("RKVM-L3-DONE error: cannot read %s (%s)\n", bin_path, n < 0 ? strerror(errno) : "size");
		return 2;
	}
	bin_len = n;
	close(fd);
	if (seconds > 0)
		return loop(seconds, stop);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		why[0] = 0;
		nexits = 0;
		t = now_ms();
		for (p = 0; p < 2 && rows[i].parts[p]; p++) {
			seen[0] = 0;
			if (rows[i].parts[p]()) {
				if (!why[0])
					failf("unexpected exit");
				break;
			}
			vm_close();
		}
		if (why[0]) {
			failures++;
			printf("RKVM-L3 FAIL %s: %s: %s (exits: %s)\n", rows[i].name, rows[i].part_names[p], why,
			       seen[0] ? seen : "none");
			vm_close();
		} else {
			printf("RKVM-L3 PASS %s %d exits %.1f ms\n", rows[i].name, nexits, now_ms() - t);
		}
	}
	printf("RKVM-L3-DONE %d\n", failures);
	return failures ? 1 : 0;
}
