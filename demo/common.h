/* SPDX-License-Identifier: MIT */
/* Command line, input/output files and a seeded PRNG shared by the demo apps. */
#ifndef DEMO_COMMON_H
#define DEMO_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tinynn.h"

struct demo_opts {
    const char *in_path;  /* raw little-endian float32, or NULL for the app's built-in input */
    const char *out_path; /* where to write the final output as raw float32, or NULL */
    long runs;
    long batch;
    long size; /* only with has_size */
    long threads; /* only with has_size: threads each running the inference on their own buffers */
};

/* Parses --in, --out, --runs, --batch (and --size, --threads when has_size); usage to stderr and exit 2 on error. */
void demo_parse(const char *prog, int argc, char **argv, bool has_size, struct demo_opts *opts);

/* "prog: call failed: status" to stderr and exit 1. */
_Noreturn void demo_fail(const char *prog, const char *call, tnn_status status);

/* malloc of count floats; a message and exit 1 when it fails. */
float *demo_alloc(const char *prog, size_t count);

/* Reads exactly count little-endian float32 values from path; a message and exit 2 otherwise. */
void demo_read_input(const char *prog, const char *path, float *dst, size_t count);

/* Writes count floats as little-endian float32 to path; a message and exit 1 on failure. */
void demo_write_output(const char *prog, const char *path, const float *src, size_t count);

/* dst[i] = src[i] with plain stores, as an app refilling its input buffer would. */
void demo_refill(float *dst, const float *src, size_t count);

struct demo_rng {
    uint64_t state;
};

void demo_rng_seed(struct demo_rng *rng, uint64_t seed);
/* Uniform in [lo, hi). */
float demo_uniform(struct demo_rng *rng, float lo, float hi);

/* Calls a tnn_* function; on failure reports it by name and exits 1. Needs a `prog` in scope. */
#define DEMO_TRY(fn, ...)                                                                          \
    do {                                                                                           \
        tnn_status demo_status_ = fn(__VA_ARGS__);                                                 \
        if (demo_status_ != TNN_OK)                                                                \
            demo_fail(prog, #fn, demo_status_);                                                    \
    } while (0)

#endif /* DEMO_COMMON_H */
