// cmusl is a C program linked dynamically against musl, Alpine's C library: what musl's
// dynamic linker, a thread, dlopen, a large allocation and stdio do inside pith is
// compared with a native run in a chroot of a tree that holds only it and the linker.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg) { return (void *)(strlen((char *)arg) * 2); }

int main(int argc, char **argv) {
	pthread_t th;
	void *res;
	if (pthread_create(&th, NULL, worker, "thread") != 0)
		return 3;
	pthread_join(th, &res);
	void *m = dlopen("libm.so", RTLD_NOW); // musl's libc, which has libm in it
	double (*cosine)(double) = m ? (double (*)(double))dlsym(m, "cos") : NULL;
	printf("thread %ld, cos(0) %.1f, HOME %s\n", (long)res, cosine ? cosine(0) : -1.0, getenv("HOME"));
	char *big = malloc(64 << 20);
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
