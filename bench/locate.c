/* SPDX-License-Identifier: MIT */
/* The locator's time (src/locate.h): a host's hooked functions found in a program by their code,
 * uncached (every run compares anew) and cached (the results file keyed by both build-ids, each
 * place verified again). The cache lives in a temporary XDG_CACHE_HOME of its own. One row:
 * | host in program | found | uncached wall min / median | uncached CPU min | first cached run (writes)
 * | cached wall min / median | cached CPU min | uncached / cached (medians) |
 * usage: locate [--runs N] tinynn|darknet REFERENCE PROGRAM */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "darknet-hooks.h"
#include "locate.h"
#include "tinynn-hooks.h"

#define NAME(symbol, ...) #symbol,
static const char *const tinynn_names[] = {TINYNN_HOOKS(NAME)};
static const char *const darknet_names[] = {DARKNET_SYMBOLS(NAME)};

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs the locator `runs` times: min and median wall seconds, min CPU seconds (what the machine's
 * load changes least); how many functions were found. */
static int measure(const char *ref, const char *prog, const char *const *names, size_t n, unsigned flags,
		   int runs, double *min, double *med, double *cpu, size_t *found)
{
	double t[64];
	struct onnxhook_found out[64];
	char err[512];

	*cpu = 1e9;
	for (int i = 0; i < runs; i++) {
		double t0 = bench_now(), c0 = cpu_now();
		if (onnxhook_locate(ref, prog, names, n, flags, out, err, sizeof(err)) < 0) {
			fprintf(stderr, "locate: %s\n", err);
			return -1;
		}
		t[i] = bench_now() - t0;
		*cpu = cpu_now() - c0 < *cpu ? cpu_now() - c0 : *cpu;
	}
	*found = 0;
	for (size_t i = 0; i < n; i++)
		*found += out[i].status == ONNXHOOK_FOUND;
	qsort(t, (size_t)runs, sizeof(t[0]), by_value);
	*min = t[0];
	*med = t[runs / 2];
	return 0;
}

int main(int argc, char **argv)
{
	int runs = 5, a = 1;
	char cache[] = "/tmp/onnxhook-bench-locate-XXXXXX", cmd[128];
	double min, med, cpu, cmin, cmed, ccpu, first, fcpu;
	size_t found, cfound;

	if (argc > 2 && !strcmp(argv[1], "--runs")) {
		runs = (int)bench_parse_long("locate", "--runs", argv[2], 1, 63);
		a = 3;
	}
	if (argc - a != 3 || (strcmp(argv[a], "tinynn") && strcmp(argv[a], "darknet"))) {
		fprintf(stderr, "usage: locate [--runs N] tinynn|darknet REFERENCE PROGRAM\n");
		return 2;
	}
	bool dn = !strcmp(argv[a], "darknet");
	const char *const *names = dn ? darknet_names : tinynn_names;
	size_t n = dn ? sizeof(darknet_names) / sizeof(*names) : sizeof(tinynn_names) / sizeof(*names);
	const char *ref = argv[a + 1], *prog = argv[a + 2];

	if (!mkdtemp(cache) || setenv("XDG_CACHE_HOME", cache, 1) < 0) {
		perror("locate: cache directory");
		return 1;
	}
	int r = measure(ref, prog, names, n, ONNXHOOK_LOCATE_NO_CACHE, runs, &min, &med, &cpu, &found);
	if (r == 0)
		r = measure(ref, prog, names, n, 0, 1, &first, &first, &fcpu, &cfound); /* writes the cache */
	if (r == 0)
		r = measure(ref, prog, names, n, 0, runs, &cmin, &cmed, &ccpu, &cfound);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cache);
	if (system(cmd) != 0)
		fprintf(stderr, "locate: could not remove %s\n", cache);
	if (r < 0)
		return 1;
	printf("| %s in %s | %zu of %zu | %.4f / %.4f | %.4f | %.4f | %.4f / %.4f | %.4f | %.0f |\n", argv[a], prog,
	       found, n, min, med, cpu, first, cmin, cmed, ccpu, med / cmed);
	return found == cfound ? 0 : 1;
}
