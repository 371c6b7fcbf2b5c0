/*
 * The L2 guest's paging stress (issue 12): many processes changing their
 * address spaces, so that L1's MMU (the shadow MMU under kvm-amd npt=0)
 * sees page tables built, copied, write-protected and torn down at a high
 * rate. Built static on the host by scripts/l2-initramfs.sh, run there once
 * for the expected line, and typed as `/l2/pagestress` by scripts/l2-boot.sh
 * (row l2/paging-stress).
 *
 *   pagestress [WORKERS [ROUNDS [EXECS]]]     defaults 4 4 6
 *
 * WORKERS processes run at once (fork); each does ROUNDS rounds of:
 *   - mmap of 8..39 fresh anonymous pages, every word written (first-touch
 *     faults), hashed;
 *   - a MAP_SHARED anonymous page shared with the child below;
 *   - mprotect of a few of its pages to PROT_READ, a write to each of them
 *     must raise SIGSEGV with si_addr the written address (the guest's #PF
 *     with a write on a read-only page), then PROT_READ|PROT_WRITE again;
 *   - fork: the child checks it sees the parent's data (shared copy-on-
 *     write pages), writes every page (COW break), writes the shared page
 *     and reports its hash through a pipe; the parent meanwhile writes
 *     every other page itself, and after the child exits must still see
 *     its own data only, and the child's word in the shared page;
 *   - munmap of one page in the middle: a read of it must raise SIGSEGV;
 *     the rest is unmapped.
 * Then EXECS times fork + execve of itself ("--exec I FD": a fresh process
 * maps, fills and hashes 16 pages and writes the hash to FD).
 * Everything written is a function of the arguments only (never of
 * addresses or pids), so the result is the same on every machine:
 *   RKVM-L2-PAGING <hash> workers=W rounds=R execs=E faults=F
 * F counts the SIGSEGVs seen (each one checked). Any mismatch prints
 *   RKVM-L2-PAGING-FAIL <what>
 * and exits 1 (then the hash line is not printed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
#define WPP (PG / sizeof(uint64_t)) /* words per page */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

static uint64_t rng_state;
static uint64_t rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return rng_state >> 17;
}

static void die(const char *what, long a, long b)
{
	printf("RKVM-L2-PAGING-FAIL %s (%ld, %ld) errno %d\n", what, a, b, errno);
	fflush(stdout);
	_exit(1);
}

static sigjmp_buf fault_jmp;
static volatile void *fault_addr;
static volatile int faults_expected;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (!faults_expected) {
		printf("RKVM-L2-PAGING-FAIL unexpected SIGSEGV\n");
		fflush(stdout);
		_exit(1);
	}
	fault_addr = si->si_addr;
	siglongjmp(fault_jmp, 1);
}

/* A write (or read) of *p must fault with si_addr == p. */
static void expect_fault(volatile uint64_t *p, int write)
{
	fault_addr = NULL;
	faults_expected = 1;
	if (!sigsetjmp(fault_jmp, 1)) {
		if (write)
			*p = 1;
		else
			(void)*p;
		faults_expected = 0;
		die(write ? "write to a read-only page did not fault" : "read of an unmapped page did not fault", 0, 0);
	}
	faults_expected = 0;
	if (fault_addr != (void *)p)
		die("SIGSEGV at the wrong address", (long)((char *)fault_addr - (char *)p), write);
}

static uint64_t hash_pages(const uint64_t *a, size_t pages)
{
	uint64_t h = 0;
	for (size_t i = 0; i < pages * WPP; i += 7)
		h = mix(h, a[i]);
	return h;
}

static void fill_page(uint64_t *p, uint64_t seed)
{
	for (size_t i = 0; i < WPP; i++)
		p[i] = mix(seed, i);
}

static int check_page(const uint64_t *p, uint64_t seed)
{
	for (size_t i = 0; i < WPP; i++)
		if (p[i] != mix(seed, i))
			return 0;
	return 1;
}

static void xwrite(int fd, const void *b, size_t n)
{
	if (write(fd, b, n) != (ssize_t)n)
		die("pipe write", (long)n, 0);
}

static void xread(int fd, void *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)b + got, n - got);
		if (r <= 0)
			die("pipe read", (long)r, (long)got);
		got += r;
	}
}

static void wait_ok(pid_t pid, const char *what)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid", pid, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("RKVM-L2-PAGING-FAIL %s: status 0x%x\n", what, st);
		fflush(stdout);
		_exit(1);
	}
}

/* One worker: returns its hash; counts its faults in *nf. */
static uint64_t worker(int w, int rounds, unsigned *nf)
{
	uint64_t h = mix(0, (uint64_t)w);
	rng_state = 0x1234 + (uint64_t)w;
	for (int r = 0; r < rounds; r++) {
		size_t n = 8 + rng() % 32, i;
		uint64_t base = mix((uint64_t)w, (uint64_t)r), child_h, shared_want;
		uint64_t *a = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t *sh = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		int pfd[2];
		pid_t pid;

		if (a == MAP_FAILED || sh == MAP_FAILED)
			die("mmap", (long)n, r);
		for (i = 0; i < n; i++)
			fill_page(a + i * WPP, base + i);
		h = mix(h, hash_pages(a, n));

		/* Read-only pages: a write faults; then writable again. */
		size_t ro = 1 + rng() % (n - 2), nro = 1 + rng() % 3;
		if (ro + nro > n)
			nro = n - ro;
		if (mprotect(a + ro * WPP, nro * PG, PROT_READ))
			die("mprotect read-only", (long)ro, (long)nro);
		for (i = ro; i < ro + nro; i++) {
			volatile uint64_t *p = a + i * WPP + rng() % WPP;
			expect_fault(p, 1);
			(*nf)++;
			if (!check_page(a + i * WPP, base + i))
				die("read-only page changed", (long)i, r);
		}
		if (mprotect(a + ro * WPP, nro * PG, PROT_READ | PROT_WRITE))
			die("mprotect read-write", (long)ro, (long)nro);

		/* Copy-on-write across fork, and a shared page. */
		sh[0] = 0;
		shared_want = mix(base, 0x5a5a);
		if (pipe(pfd))
			die("pipe", r, 0);
		pid = fork();
		if (pid < 0)
			die("fork", r, 0);
		if (pid == 0) {
			close(pfd[0]);
			for (i = 0; i < n; i++)
				if (!check_page(a + i * WPP, base + i))
					die("child: parent data not seen after fork", (long)i, r);
			for (i = 0; i < n; i++)
				fill_page(a + i * WPP, base + 1000 + i);
			uint64_t ch = hash_pages(a, n);
			sh[0] = shared_want;
			xwrite(pfd[1], &ch, sizeof(ch));
			_exit(0);
		}
		close(pfd[1]);
		for (i = 0; i < n; i += 2)
			fill_page(a + i * WPP, base + 2000 + i);
		xread(pfd[0], &child_h, sizeof(child_h));
		close(pfd[0]);
		wait_ok(pid, "COW child");
		for (i = 0; i < n; i++)
			if (!check_page(a + i * WPP, base + (i % 2 ? 0 : 2000) + i))
				die("parent: own data changed by the child's writes", (long)i, r);
		if (sh[0] != shared_want)
			die("parent: child's write to the shared page not seen", r, 0);
		h = mix(mix(h, child_h), hash_pages(a, n));

		/* A hole: reading it faults; then the rest goes. */
		size_t hole = n / 2;
		if (munmap(a + hole * WPP, PG))
			die("munmap hole", (long)hole, r);
		expect_fault(a + hole * WPP + rng() % WPP, 0);
		(*nf)++;
		h = mix(h, a[(hole - 1) * WPP] ^ a[(hole + 1) * WPP]);
		if (munmap(a, hole * PG) || munmap(a + (hole + 1) * WPP, (n - hole - 1) * PG) || munmap(sh, PG))
			die("munmap", (long)n, r);
	}
	return h;
}

/* "--exec I FD": the exec'd image's work. */
static int exec_child(int idx, int fd)
{
	size_t n = 16;
	uint64_t *a = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		die("exec child mmap", idx, 0);
	for (size_t i = 0; i < n; i++)
		fill_page(a + i * WPP, mix(0xe8ec, (uint64_t)idx) + i);
	uint64_t h = hash_pages(a, n);
	xwrite(fd, &h, sizeof(h));
	return 0;
}

int main(int argc, char **argv)
{
	int workers = 4, rounds = 4, execs = 6;
	unsigned faults = 0;
	uint64_t h = 0;
	struct sigaction sa;

	if (argc == 4 && !strcmp(argv[1], "--exec"))
		return exec_child(atoi(argv[2]), atoi(argv[3]));
	if (argc > 1)
		workers = atoi(argv[1]);
	if (argc > 2)
		rounds = atoi(argv[2]);
	if (argc > 3)
		execs = atoi(argv[3]);
	if (workers < 1 || workers > 64 || rounds < 1 || execs < 0) {
		fprintf(stderr, "usage: pagestress [WORKERS [ROUNDS [EXECS]]]\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* The workers at once; each reports (hash, faults) through a pipe. */
	int fds[64];
	pid_t pids[64];
	for (int w = 0; w < workers; w++) {
		int p[2];
		if (pipe(p))
			die("pipe", w, 0);
		pids[w] = fork();
		if (pids[w] < 0)
			die("fork worker", w, 0);
		if (pids[w] == 0) {
			uint64_t rep[2];
			unsigned nf = 0;
			close(p[0]);
			rep[0] = worker(w, rounds, &nf);
			rep[1] = nf;
			xwrite(p[1], rep, sizeof(rep));
			_exit(0);
		}
		close(p[1]);
		fds[w] = p[0];
	}
	for (int w = 0; w < workers; w++) {
		uint64_t rep[2];
		xread(fds[w], rep, sizeof(rep));
		close(fds[w]);
		wait_ok(pids[w], "worker");
		h = mix(h, rep[0]);
		faults += (unsigned)rep[1];
	}

	/* fork + exec of this program, one after the other. */
	for (int e = 0; e < execs; e++) {
		int p[2];
		char is[16], fs[16];
		uint64_t eh;
		if (pipe(p))
			die("pipe", e, 0);
		pid_t pid = fork();
		if (pid < 0)
			die("fork exec child", e, 0);
		if (pid == 0) {
			close(p[0]);
			snprintf(is, sizeof(is), "%d", e);
			snprintf(fs, sizeof(fs), "%d", p[1]);
			execl("/proc/self/exe", argv[0], "--exec", is, fs, (char *)NULL);
			die("execl /proc/self/exe", e, 0);
		}
		close(p[1]);
		xread(p[0], &eh, sizeof(eh));
		close(p[0]);
		wait_ok(pid, "exec child");
		h = mix(h, eh);
	}
	printf("RKVM-L2-PAGING %016llx workers=%d rounds=%d execs=%d faults=%u\n", (unsigned long long)h, workers,
	       rounds, execs, faults);
	return 0;
}
