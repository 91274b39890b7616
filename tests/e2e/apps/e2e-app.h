/* SPDX-License-Identifier: MIT */
/* Shared scaffolding of the e2e apps: CLI (--in/--out/--runs), seeded weights, I/O, summary. */
#ifndef E2E_APP_H
#define E2E_APP_H

#include <stddef.h>
#include <stdint.h>

#include "tinynn.h"

struct e2e_args {
    const char *in;  /* raw LE float32 input (all graph inputs, first-read order), or NULL */
    const char *out; /* where the final outputs go (production order), or NULL */
    int runs;        /* inference passes; the output is the last pass's */
};

struct e2e_rng {
    uint64_t s;
};

/* Parses argv; prints usage and exits 2 on a bad command line. */
void e2e_parse_args(int argc, char **argv, struct e2e_args *args);

void e2e_rng_seed(struct e2e_rng *r, uint64_t seed);
/* uniform in [lo, hi) */
float e2e_uniform(struct e2e_rng *r, float lo, float hi);

/* Zeroed float buffer of n elements; exits 1 when out of memory. */
float *e2e_alloc(size_t n);
/* n weights uniform in [-a, a] with a = sqrt(6 / fan_in) (He-uniform) */
float *e2e_weights(struct e2e_rng *r, size_t n, size_t fan_in);
/* n values uniform in [lo, hi) */
float *e2e_values(struct e2e_rng *r, size_t n, float lo, float hi);
size_t e2e_count(const tnn_dims *d);
/* square kernel, symmetric padding */
tnn_conv2d_params e2e_conv(int32_t k, int32_t stride, int32_t pad, int32_t dilation, int32_t groups);
tnn_pool2d_params e2e_pool(int32_t k, int32_t stride, int32_t pad);

/* A conv layer with seeded weights [cout][cin/groups][kh][kw] and, if asked, a small bias. */
struct e2e_conv_layer {
    tnn_conv2d_params p;
    int32_t cin, cout;
    float *weight, *bias;
};
void e2e_conv_init(struct e2e_conv_layer *l, struct e2e_rng *r, tnn_conv2d_params p, int32_t cin,
                   int32_t cout, int with_bias);
/* output dims of l on an input of dims in */
tnn_dims e2e_conv_out(const struct e2e_conv_layer *l, const tnn_dims *in);
/* batch-norm parameters for c channels: scale, bias, mean, var (var > 0) */
struct e2e_bn {
    float *scale, *bias, *mean, *var;
};
void e2e_bn_init(struct e2e_bn *bn, struct e2e_rng *r, int32_t c);

/*
 * The app's input for one pass: `count` buffers of `sizes[i]` floats, in first-read order. With
 * --in the file must hold exactly the sum of sizes; otherwise a deterministic pattern is used.
 * Returns a staging copy (one block); e2e_fill() copies it into the live buffers with plain
 * stores, as apps do between passes.
 */
float *e2e_load_input(const struct e2e_args *args, int count, const size_t sizes[]);
void e2e_fill(const float *staged, int count, float *const bufs[], const size_t sizes[]);

/* Writes the outputs (production order) to --out, if given; exits 1 on an I/O error. */
void e2e_write_output(const struct e2e_args *args, int count, const float *const bufs[],
                      const size_t sizes[]);
/* One deterministic stdout line per output tensor. */
void e2e_summary(const char *app, int index, const float *p, size_t n);

/* A tinynn error is fatal: message on stderr and exit 1. */
#define E2E_TNN(call)                                                                         \
    do {                                                                                      \
        tnn_status st_ = (call);                                                              \
        if (st_ != TNN_OK)                                                                    \
            e2e_tnn_fail(#call, st_, __FILE__, __LINE__);                                     \
    } while (0)
_Noreturn void e2e_tnn_fail(const char *what, tnn_status st, const char *file, int line);

#endif /* E2E_APP_H */
