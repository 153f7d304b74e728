/* csys: signal and system-call corners that C programs reach and Go's runtime does not;
   test/e2e compares each mode's exit status and output with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

static volatile int got;
static void handler(int sig) { got = sig; }

/* An address the program has had and given back. */
static void *unmapped(void) {
	void *p = mmap(0, 1 << 21, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(p, 1 << 21);
	return p;
}

static int vector_mode;
static void corrupt_vector_state(int sig, siginfo_t *si, void *arg) {
	ucontext_t *uc = arg;
	if (vector_mode == 0)
		uc->uc_mcontext.fpregs->mxcsr = 0xffffffff; /* reserved MXCSR bits */
	else
		*(unsigned long *)((char *)uc->uc_mcontext.fpregs + 512) = ~0UL; /* XSTATE_BV */
}

struct kernel_sigaction { void (*handler)(int); unsigned long flags; void (*restorer)(void); unsigned long mask; };
__asm__(".text\n.globl csys_restorer\ncsys_restorer: mov $15, %eax\nsyscall\n");
extern void csys_restorer(void);

static void block(int sig, int how) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(how, &s, 0);
}

int main(int argc, char **argv) {
	const char *m = argc > 1 ? argv[1] : "";
	if (!strcmp(m, "gettimeofday")) {
		struct timeval tv;
		struct timezone tz;
		long r = syscall(SYS_gettimeofday, &tv, &tz);
		long d = (long)tv.tv_sec - (long)time(0);
		printf("gettimeofday %ld, within a second of time(): %d, usec in range: %d\n", r, d >= -1 && d <= 1, tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	} else if (!strcmp(m, "blocked-ignored")) {
		/* blocked while ignored, raised, handled once unblocked: it stayed pending */
		block(SIGUSR1, SIG_BLOCK);
		signal(SIGUSR1, SIG_IGN);
		kill(getpid(), SIGUSR1);
		signal(SIGUSR1, handler);
		block(SIGUSR1, SIG_UNBLOCK);
		printf("handler ran: %d\n", got == SIGUSR1);
	} else if (!strcmp(m, "stop-default")) {
		/* a pending SIGTSTP whose action became SIG_DFL does not end the process */
		signal(SIGTSTP, handler);
		block(SIGTSTP, SIG_BLOCK);
		kill(getpid(), SIGTSTP);
		signal(SIGTSTP, SIG_DFL);
		kill(getpid(), SIGCONT);
		block(SIGTSTP, SIG_UNBLOCK);
		printf("still running\n");
	} else if (!strcmp(m, "bad-act")) {
		/* a new action in unmapped memory: EFAULT, and the old action stays */
		signal(SIGUSR1, handler);
		long r = syscall(SYS_rt_sigaction, SIGUSR1, unmapped(), 0, 8);
		printf("rt_sigaction %ld errno %d\n", r, errno);
		raise(SIGUSR1);
		printf("handler ran: %d\n", got == SIGUSR1);
	} else if (!strcmp(m, "bad-oldact")) {
		/* the old action to unmapped memory: EFAULT, with the new action in place */
		struct kernel_sigaction sa = { handler, 0x04000000 /* SA_RESTORER */, csys_restorer, 0 };
		long r = syscall(SYS_rt_sigaction, SIGUSR1, &sa, unmapped(), 8);
		printf("rt_sigaction %ld errno %d\n", r, errno);
		raise(SIGUSR1);
		printf("handler ran: %d\n", got == SIGUSR1);
	} else if (!strcmp(m, "bad-frame")) {
		/* rt_sigreturn with the stack pointer in unmapped memory: death by SIGSEGV */
		fflush(stdout);
		void *sp = (char *)unmapped() + (1 << 20);
		__asm__ volatile("mov %0, %%rsp; mov $15, %%eax; syscall" ::"r"(sp) : "memory");
	} else if (!strcmp(m, "bad-mxcsr") || !strcmp(m, "bad-xstate")) {
		/* a handler that corrupts the vector state it returns to: death by SIGSEGV */
		vector_mode = !strcmp(m, "bad-xstate");
		struct sigaction sa = { .sa_sigaction = corrupt_vector_state, .sa_flags = SA_SIGINFO };
		sigaction(SIGUSR1, &sa, 0);
		fflush(stdout);
		raise(SIGUSR1);
		printf("returned from the handler\n");
	} else {
		printf("csys: unknown mode %s\n", m);
		return 3;
	}
	return 0;
}
