/* SPDX-License-Identifier: MIT */
/* Shared by the benchmark programs: a monotonic clock and argument parsing. */
#ifndef ONNXHOOK_BENCH_H
#define ONNXHOOK_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* An integer in lo..hi, or a usage error (exit 2) naming the program and the argument. */
static inline long bench_parse_long(const char *prog, const char *what, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: %s wants an integer in %ld..%ld, not '%s'\n", prog, what, lo, hi, s);
		exit(2);
	}
	return v;
}

#endif
