/* SPDX-License-Identifier: MIT */
/* runstat: runs a command and reports its wall time and peak RSS (the benchmarks and the
 * memory tests measure with it). Usage: runstat [-o FILE] [--] PROGRAM [ARGS…]
 * Prints "wall_s=<seconds> maxrss_kib=<KiB> status=<exit status or 128+signal>" on stderr, or
 * into FILE, and exits with the command's status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const char *out = NULL;
	int i = 1;

	if (i + 1 < argc && !strcmp(argv[i], "-o")) {
		out = argv[i + 1];
		i += 2;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		fprintf(stderr, "usage: runstat [-o FILE] [--] PROGRAM [ARGS...]\n");
		return 2;
	}
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0) {
		perror("runstat: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[i], argv + i);
		fprintf(stderr, "runstat: %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	int st;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("runstat: wait4");
			return 2;
		}
	}
	double wall = now() - t0;
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	FILE *f = out ? fopen(out, "w") : stderr;
	if (!f) {
		fprintf(stderr, "runstat: %s: %s\n", out, strerror(errno));
		return 2;
	}
	fprintf(f, "wall_s=%.6f maxrss_kib=%ld status=%d\n", wall, ru.ru_maxrss, status);
	if (out)
		fclose(f);
	return status;
}
