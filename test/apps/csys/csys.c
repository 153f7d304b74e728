/* csys: signal and system-call corners that C programs reach and Go's runtime does not;
   test/e2e compares each mode's exit status and output with a native run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
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

/* await_signals waits until sig has been handled (handler) count times. */
static void await_signals(int sig, int count) {
	for (int n = 0; n < count;) {
		got = 0;
		pause();
		n += got == sig;
	}
}

static int alarm_pipe = -1;
static pid_t alarm_parent;
static void alarm_in_child(int sig) {
	if (getpid() != alarm_parent)
		write(alarm_pipe, "c", 1);
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

/* A blocking call in the main thread and a signal from a second thread, which blocks it
   itself so that the main thread takes it, after 100 ms; then, unless late_write is -1,
   a byte to late_write 100 ms later, for a call that restarts to find. */
static int late_write = -1;
static int late_signal;
static void *signal_later(void *arg) {
	block(late_signal, SIG_BLOCK);
	usleep(100000);
	kill(getpid(), late_signal);
	if (late_write >= 0) {
		usleep(100000);
		write(late_write, "x", 1);
	}
	return 0;
}

static void interrupt_later(int sig, int flags, int write_fd) {
	struct sigaction sa = { .sa_handler = handler, .sa_flags = flags };
	if (sig != SIGTERM)
		sigaction(sig, &sa, 0);
	late_signal = sig;
	late_write = write_fd;
	pthread_t th;
	pthread_create(&th, 0, signal_later, 0);
}

/* A loopback TCP listener on a port the kernel chose. */
/* Milliseconds from a to b. */
static long ms_between(struct timespec a, struct timespec b) {
	return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

/* Runs for ms milliseconds of CLOCK_MONOTONIC without waiting. */
static void *spin(void *ms) {
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while (ms_between(a, b) < (long)ms);
	return 0;
}

static int tcp_listener(void) {
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 1);
	return l;
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
	} else if (!strcmp(m, "eintr-pipe") || !strcmp(m, "restart-pipe")) {
		/* a read of an empty pipe ends with EINTR for a handler without SA_RESTART, and
		   is made again (finding the byte written later) with it */
		int p[2];
		pipe(p);
		int restart = !strcmp(m, "restart-pipe");
		interrupt_later(SIGUSR1, restart ? SA_RESTART : 0, restart ? p[1] : -1);
		char c;
		long r = read(p[0], &c, 1);
		printf("read %ld errno %s, handler ran: %d\n", r, r < 0 ? strerror(errno) : "-", got == SIGUSR1);
	} else if (!strcmp(m, "pause")) {
		/* pause waits for a signal and answers EINTR, even with SA_RESTART */
		interrupt_later(SIGUSR1, SA_RESTART, -1);
		long r = pause();
		printf("pause %ld errno %s, handler ran: %d\n", r, strerror(errno), got == SIGUSR1);
	} else if (!strcmp(m, "sigsuspend")) {
		/* sigsuspend waits with its mask in place of the thread's: a signal blocked
		   before and pending is taken at once; the handler runs with the mask given
		   (plus its own signal), and the thread's own mask is back after */
		sigset_t none, cur;
		sigemptyset(&none);
		block(SIGUSR2, SIG_BLOCK);
		struct sigaction sa = { .sa_handler = handler };
		sigaction(SIGUSR2, &sa, 0);
		raise(SIGUSR2);
		long r = sigsuspend(&none);
		sigprocmask(SIG_BLOCK, 0, &cur);
		printf("pending: sigsuspend %ld errno %s, handler ran: %d, USR2 blocked again: %d\n", r, strerror(errno), got == SIGUSR2, sigismember(&cur, SIGUSR2));
		got = 0;
		block(SIGUSR1, SIG_BLOCK);
		interrupt_later(SIGUSR1, SA_RESTART, -1);
		r = sigsuspend(&none);
		sigprocmask(SIG_BLOCK, 0, &cur);
		printf("later: sigsuspend %ld errno %s, handler ran: %d, USR1 blocked again: %d\n", r, strerror(errno), got == SIGUSR1, sigismember(&cur, SIGUSR1));
	} else if (!strcmp(m, "eintr-accept") || !strcmp(m, "eintr-unix-recv")) {
		/* accept on a TCP listener, recv on an AF_UNIX socket: EINTR without SA_RESTART */
		int fd, sv[2];
		if (!strcmp(m, "eintr-accept")) {
			fd = tcp_listener();
		} else {
			socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
			fd = sv[0];
		}
		interrupt_later(SIGUSR1, 0, -1);
		char c;
		long r = !strcmp(m, "eintr-accept") ? accept(fd, 0, 0) : recv(fd, &c, 1, 0);
		printf("%s %ld errno %s, handler ran: %d\n", m, r, r < 0 ? strerror(errno) : "-", got == SIGUSR1);
	} else if (!strcmp(m, "rcvtimeo")) {
		/* SO_RCVTIMEO: recv and accept give up with EAGAIN; bad values are refused */
		int u = socket(AF_INET, SOCK_DGRAM, 0), l = tcp_listener();
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		bind(u, (struct sockaddr *)&a, sizeof a);
		struct timeval tv = { 0, 200000 }, bad = { 0, 1000000 }, got_tv;
		socklen_t n = sizeof got_tv;
		int r1 = setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad), e1 = errno;
		int r2 = setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, 8), e2 = errno;
		int r3 = setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		printf("bad usec %d %s, short %d %s, set %d\n", r1, strerror(e1), r2, strerror(e2), r3);
		getsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &got_tv, &n);
		printf("get %ld.%06ld (%d bytes)\n", (long)got_tv.tv_sec, (long)got_tv.tv_usec, (int)n);
		setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		for (int i = 0; i < 2; i++) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			char c;
			long r = i == 0 ? recv(u, &c, 1, 0) : accept(l, 0, 0);
			int e = errno;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
			printf("%s %ld errno %s, waited 150-2000 ms: %d\n", i == 0 ? "recv" : "accept", r, strerror(e), ms >= 150 && ms < 2000);
		}
	} else if (!strcmp(m, "unix-timeo")) {
		/* SO_RCVTIMEO and SO_SNDTIMEO on AF_UNIX sockets: recv, accept, a send to a full
		   buffer and a connect to a full backlog give up with EAGAIN; a signal during a
		   timed wait is EINTR even with SA_RESTART */
		int sv[2], l = socket(AF_UNIX, SOCK_STREAM, 0), c1 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		strcpy(a.sun_path + 1, "csys-unix-timeo"); /* abstract */
		socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen("csys-unix-timeo");
		bind(l, (struct sockaddr *)&a, alen);
		listen(l, 0);
		connect(c1, (struct sockaddr *)&a, alen); /* a backlog of 0 takes one */
		struct timeval tv = { 0, 200000 }, got_tv;
		socklen_t n = sizeof got_tv;
		int s1 = accept(l, 0, 0); /* c1's connection: the backlog is empty again */
		setsockopt(s1, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(c2, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		getsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &got_tv, &n);
		printf("get %ld.%06ld (%d bytes)\n", (long)got_tv.tv_sec, (long)got_tv.tv_usec, (int)n);
		static char big[1 << 20];
		long sent = 0, r;
		while ((r = send(sv[1], big, sizeof big, 0)) > 0)
			sent += r;
		printf("filled: %d\n", sent > 0);
		for (int i = 0; i < 4; i++) {
			struct timespec t0, t1;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			char c;
			const char *what[] = { "recv", "accept", "send", "connect" };
			switch (i) {
			case 0: r = recv(s1, &c, 1, 0); break;
			case 1: r = accept(l, 0, 0); break;
			case 2: r = send(sv[1], "x", 1, 0); break;
			default:
				connect(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&a, alen); /* fills it */
				r = connect(c2, (struct sockaddr *)&a, alen);
			}
			int e = errno;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
			printf("%s %ld errno %s, waited 150-2000 ms: %d\n", what[i], r, strerror(e), ms >= 150 && ms < 2000);
		}
		tv.tv_sec = 10;
		setsockopt(s1, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		interrupt_later(SIGUSR1, SA_RESTART, -1);
		char c;
		r = recv(s1, &c, 1, 0);
		printf("recv with a handler %ld errno %s, handler ran: %d\n", r, r < 0 ? strerror(errno) : "-", got == SIGUSR1);
	} else if (!strcmp(m, "term-blocked")) {
		/* SIGTERM with its default action ends a process blocked in a read: 143 */
		int p[2];
		pipe(p);
		fflush(stdout);
		interrupt_later(SIGTERM, 0, -1);
		char c;
		read(p[0], &c, 1);
		printf("read returned\n");
	} else if (!strcmp(m, "fork-clock")) {
		/* a fork's child goes on with its parent's clock, even a parent forking as it
		   starts: CLOCK_MONOTONIC never goes back across the fork */
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		pid_t pid = fork();
		if (pid == 0) {
			clock_gettime(CLOCK_MONOTONIC, &b);
			long long d = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
			printf("the child's clock went on: %d\n", d >= 0);
			if (d < 0)
				fprintf(stderr, "the child's clock is %lld us behind the parent's\n", -d / 1000);
			fflush(stdout);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("child exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	} else if (!strcmp(m, "cpu-clocks")) {
		/* the CPU-time clocks count running, not waiting: a sleep adds next to nothing
		   to the process's or the thread's, a spin its length to both, another thread's
		   spin to the process's only; getrusage(RUSAGE_THREAD) has the thread's */
		struct timespec p[4], t[4];
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p[0]);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t[0]);
		usleep(500000);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p[1]);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t[1]);
		spin((void *)300);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p[2]);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t[2]);
		pthread_t th;
		pthread_create(&th, 0, spin, (void *)300);
		pthread_join(th, 0);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p[3]);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t[3]);
		struct rusage ru;
		getrusage(RUSAGE_THREAD, &ru);
		long ru_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
		printf("a 0.5 s sleep ran under 0.1 s: process %d, thread %d\n", ms_between(p[0], p[1]) < 100, ms_between(t[0], t[1]) < 100);
		printf("a 0.3 s spin ran over 0.15 s: process %d, thread %d\n", ms_between(p[1], p[2]) > 150, ms_between(t[1], t[2]) > 150);
		printf("another thread's spin: process over 0.15 s %d, this thread under 0.1 s %d\n", ms_between(p[2], p[3]) > 150, ms_between(t[2], t[3]) < 100);
		long t_ms = t[3].tv_sec * 1000 + t[3].tv_nsec / 1000000;
		printf("RUSAGE_THREAD has this thread's spin: %d, and agrees with its clock: %d\n", ru_ms > 150, ru_ms - t_ms < 50 && t_ms - ru_ms < 50);
		printf("the thread's clock counts from the program's start, its spin most of it: %d\n", t_ms > 150 && t_ms < 1000);
		fprintf(stderr, "process %ld %ld %ld ms, thread %ld %ld %ld ms (%ld in all), RUSAGE_THREAD %ld ms\n",
			ms_between(p[0], p[1]), ms_between(p[1], p[2]), ms_between(p[2], p[3]),
			ms_between(t[0], t[1]), ms_between(t[1], t[2]), ms_between(t[2], t[3]), t_ms, ru_ms);
	} else if (!strcmp(m, "alarm")) {
		/* alarm and setitimer(ITIMER_REAL): what they answer, SIGALRM when they expire
		   (once, then every interval), EINTR for a select it interrupts, none after fork */
		struct sigaction sa = {.sa_handler = handler};
		sigaction(SIGALRM, &sa, 0);
		unsigned a5 = alarm(5), a2 = alarm(2), a0 = alarm(0);
		printf("alarm(5) %u, alarm(2) %u, alarm(0) %u\n", a5, a2, a0);
		struct itimerval v = {.it_value = {0, 1000000}}, old;
		int r1 = setitimer(ITIMER_REAL, &v, 0), e1 = errno;
		int r2 = setitimer(7, &v, 0), e2 = errno;
		printf("usec 1000000: %d %s; which 7: %d %s\n", r1, strerror(e1), r2, strerror(e2));
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		v = (struct itimerval){.it_value = {0, 50000}, .it_interval = {0, 20000}};
		setitimer(ITIMER_REAL, &v, 0);
		await_signals(SIGALRM, 3);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		getitimer(ITIMER_REAL, &old);
		printf("three SIGALRMs after 50 ms then every 20: %d; still armed, interval %ld us\n",
			ms_between(t0, t1) >= 85, (long)old.it_interval.tv_usec);
		v = (struct itimerval){0};
		setitimer(ITIMER_REAL, &v, &old);
		getitimer(ITIMER_REAL, &v);
		printf("disarmed: old interval %ld us, now %ld %ld\n", (long)old.it_interval.tv_usec,
			(long)v.it_value.tv_sec, (long)v.it_value.tv_usec);
		int p[2];
		pipe(p);
		fd_set r;
		FD_ZERO(&r);
		FD_SET(p[0], &r);
		struct timeval five = {5, 0};
		got = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		alarm(1);
		int s = select(p[0] + 1, &r, 0, 0, &five);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("select: %d %s, SIGALRM %d, after about a second %d\n", s, strerror(errno), got == SIGALRM,
			ms_between(t0, t1) >= 900 && ms_between(t0, t1) < 3000);
		alarm(3);
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			printf("the fork's child has an alarm: %u\n", alarm(0));
			fflush(stdout);
			_exit(0);
		}
		waitpid(c, 0, 0);
		printf("the parent's alarm had 2 to 3 s left: %d\n", alarm(0) >= 1);
		/* forks while a fast timer fires: no child takes its parent's SIGALRM */
		pid_t parent = getpid();
		int took[2];
		pipe(took);
		alarm_pipe = took[1];
		alarm_parent = parent;
		sa.sa_handler = alarm_in_child;
		sigaction(SIGALRM, &sa, 0);
		v = (struct itimerval){.it_value = {0, 100}, .it_interval = {0, 100}};
		setitimer(ITIMER_REAL, &v, 0);
		for (int i = 0; i < 10; i++) {
			pid_t k = fork();
			if (k == 0) {
				usleep(20000);
				_exit(0);
			}
			while (waitpid(k, 0, 0) < 0 && errno == EINTR)
				;
		}
		v = (struct itimerval){0};
		setitimer(ITIMER_REAL, &v, 0);
		close(took[1]);
		char b;
		int children = 0;
		while (read(took[0], &b, 1) == 1)
			children++;
		printf("children of 10 forks under a 100 us timer that took SIGALRM: %d\n", children);
	} else if (!strcmp(m, "alarm-exec")) {
		/* an alarm survives execve: the new program dies of it */
		if (argc > 2) {
			sleep(3);
			printf("the alarm did not reach the new program\n");
			return 0;
		}
		alarm(1);
		execl("/proc/self/exe", "csys", "alarm-exec", "after", (char *)0);
		printf("execl: %s\n", strerror(errno));
	} else if (!strcmp(m, "posix-timers")) {
		/* timer_create and friends: a periodic timer's signals, one to a thread, an
		   absolute time past that expires at once, SIGEV_NONE's countdown, bad input */
		struct sigaction sa = {.sa_handler = handler};
		sigaction(SIGUSR1, &sa, 0);
		sigaction(SIGUSR2, &sa, 0);
		struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
		timer_t a, b, c;
		printf("create: %d\n", timer_create(CLOCK_MONOTONIC, &ev, &a));
		struct itimerspec v = {.it_value = {0, 50000000}, .it_interval = {0, 20000000}}, cur;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		timer_settime(a, 0, &v, 0);
		await_signals(SIGUSR1, 3);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		timer_gettime(a, &cur);
		printf("three signals after 50 ms then every 20: %d; interval %ld ns, next within it %d; overrun %d\n",
			ms_between(t0, t1) >= 85, cur.it_interval.tv_nsec, cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000,
			timer_getoverrun(a));
		int d1 = timer_delete(a), d2 = timer_delete(a), e = errno;
		printf("delete: %d, again: %d %s\n", d1, d2, strerror(e));
		ev = (struct sigevent){.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2};
		ev._sigev_un._tid = gettid(); /* sigev_notify_thread_id, which glibc 2.36 does not name */
		timer_create(CLOCK_REALTIME, &ev, &b);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		now.tv_sec -= 5;
		v = (struct itimerspec){.it_value = now};
		sigset_t usr2, old2;
		sigemptyset(&usr2);
		sigaddset(&usr2, SIGUSR2);
		sigprocmask(SIG_BLOCK, &usr2, &old2);
		got = 0;
		timer_settime(b, TIMER_ABSTIME, &v, 0);
		while (!got)
			sigsuspend(&old2); /* no signal lost between the look and the wait */
		sigprocmask(SIG_SETMASK, &old2, 0);
		printf("an absolute time past: signal %d to this thread\n", got == SIGUSR2);
		ev = (struct sigevent){.sigev_notify = SIGEV_NONE};
		timer_create(CLOCK_BOOTTIME, &ev, &c);
		v = (struct itimerspec){.it_value = {10, 0}};
		timer_settime(c, 0, &v, 0);
		usleep(100000);
		timer_gettime(c, &cur);
		printf("SIGEV_NONE counts down: %d\n", cur.it_value.tv_sec == 9);
		v.it_value.tv_nsec = 1000000000;
		int r1 = timer_settime(c, 0, &v, 0), e1 = errno;
		ev.sigev_notify = SIGEV_SIGNAL;
		ev.sigev_signo = 65;
		int r2 = timer_create(CLOCK_MONOTONIC, &ev, &a), e2 = errno;
		printf("nsec 1e9: %d %s; signal 65: %d %s\n", r1, strerror(e1), r2, strerror(e2));
	} else if (!strcmp(m, "sendfile-pipe")) {
		/* A pipe has no splice_read: sendfile from one answers EINVAL, empty or not,
		   and programs (Go's net) then copy themselves. (/dev/zero's answer depends on
		   the kernel: EINVAL on 6.1, 10 bytes on 6.18.) */
		int p[2], s[2];
		pipe2(p, O_NONBLOCK);
		socketpair(AF_UNIX, SOCK_STREAM, 0, s);
		long r = sendfile(s[0], p[0], 0, 10);
		printf("empty pipe: %ld %s\n", r, r < 0 ? strerror(errno) : "");
		write(p[1], "ab", 2);
		r = sendfile(s[0], p[0], 0, 10);
		printf("pipe with data: %ld %s\n", r, r < 0 ? strerror(errno) : "");
	} else {
		printf("csys: unknown mode %s\n", m);
		return 3;
	}
	return 0;
}
