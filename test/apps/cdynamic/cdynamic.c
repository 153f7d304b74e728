// cdynamic is a C program linked dynamically, against glibc (gcc) or musl (musl-gcc):
// what the dynamic linker, a thread, dlopen, a large allocation and stdio do inside pith
// is compared with a native run in a chroot.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __GLIBC__
#define LIBM "libm.so.6"
#else
#define LIBM "libm.so" // musl's libc, which has libm in it
#endif

static void *worker(void *arg) { return (void *)(strlen((char *)arg) * 2); }

int main(int argc, char **argv) {
	pthread_t th;
	void *res;
	if (pthread_create(&th, NULL, worker, "thread") != 0)
		return 3;
	pthread_join(th, &res);
	void *m = dlopen(LIBM, RTLD_NOW);
	double (*cosine)(double) = m ? (double (*)(double))dlsym(m, "cos") : NULL;
	printf("thread %ld, cos(0) %.1f, HOME %s\n", (long)res, cosine ? cosine(0) : -1.0, getenv("HOME"));
	char *big = malloc(64 << 20); // past the C library's mmap threshold, then grown by mremap
	big[0] = 1;
	big = realloc(big, 128 << 20);
	printf("malloc %s\n", big && big[0] == 1 ? "ok" : "failed");
	FILE *f = fopen("/etc/os-release", "r");
	char line[64] = "";
	if (f && fgets(line, sizeof line, f))
		printf("os %s", line);
	char cwd[256];
	printf("cwd %s\n", getcwd(cwd, sizeof cwd));
	for (int i = 1; i < argc; i++)
		printf("arg %s\n", argv[i]);
	return argc == 1 ? 0 : 7;
}
