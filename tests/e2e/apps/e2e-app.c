/* SPDX-License-Identifier: MIT */
/* Shared scaffolding of the e2e apps: CLI (--in/--out/--runs), seeded weights, I/O, summary. */
#include "e2e-app.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "app";

static _Noreturn void usage(const char *msg)
{
    fprintf(stderr, "%s: %s\nusage: %s [--in FILE] [--out FILE] [--runs N]\n", prog, msg, prog);
    exit(2);
}

void e2e_parse_args(int argc, char **argv, struct e2e_args *args)
{
    const char *slash = strrchr(argv[0], '/');

    prog = slash ? slash + 1 : argv[0];
    args->in = NULL;
    args->out = NULL;
    args->runs = 1;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];

        if (i + 1 >= argc)
            usage("missing value or unknown option");
        if (!strcmp(opt, "--in")) {
            args->in = argv[++i];
        } else if (!strcmp(opt, "--out")) {
            args->out = argv[++i];
        } else if (!strcmp(opt, "--runs")) {
            char *end;
            long n = strtol(argv[++i], &end, 10);

            if (*end || n < 1 || n > 100000)
                usage("--runs wants a number from 1 to 100000");
            args->runs = (int)n;
        } else {
            usage("unknown option");
        }
    }
}

void e2e_rng_seed(struct e2e_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
}

/* splitmix64: tiny, good enough, and identical everywhere */
static uint64_t next(struct e2e_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float e2e_uniform(struct e2e_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(next(r) >> 40) / 16777216.0);
}

float *e2e_alloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);

    if (!p) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    return p;
}

float *e2e_values(struct e2e_rng *r, size_t n, float lo, float hi)
{
    float *p = e2e_alloc(n);

    for (size_t i = 0; i < n; i++)
        p[i] = e2e_uniform(r, lo, hi);
    return p;
}

float *e2e_weights(struct e2e_rng *r, size_t n, size_t fan_in)
{
    float a = sqrtf(6.0f / (float)fan_in);

    return e2e_values(r, n, -a, a);
}

size_t e2e_count(const tnn_dims *d)
{
    return (size_t)d->n * d->c * d->h * d->w;
}

tnn_conv2d_params e2e_conv(int32_t k, int32_t stride, int32_t pad, int32_t dilation, int32_t groups)
{
    return (tnn_conv2d_params){k, k, stride, stride, pad, pad, pad, pad, dilation, dilation, groups};
}

tnn_pool2d_params e2e_pool(int32_t k, int32_t stride, int32_t pad)
{
    return (tnn_pool2d_params){k, k, stride, stride, pad, pad, pad, pad};
}

void e2e_conv_init(struct e2e_conv_layer *l, struct e2e_rng *r, tnn_conv2d_params p, int32_t cin,
                   int32_t cout, int with_bias)
{
    size_t fan_in = (size_t)(cin / p.groups) * p.kernel_h * p.kernel_w;

    l->p = p;
    l->cin = cin;
    l->cout = cout;
    l->weight = e2e_weights(r, (size_t)cout * fan_in, fan_in);
    l->bias = with_bias ? e2e_values(r, (size_t)cout, -0.1f, 0.1f) : NULL;
}

tnn_dims e2e_conv_out(const struct e2e_conv_layer *l, const tnn_dims *in)
{
    const tnn_conv2d_params *p = &l->p;
    int32_t eh = (p->kernel_h - 1) * p->dilation_h + 1, ew = (p->kernel_w - 1) * p->dilation_w + 1;

    return (tnn_dims){in->n, l->cout, (in->h + p->pad_top + p->pad_bottom - eh) / p->stride_h + 1,
                      (in->w + p->pad_left + p->pad_right - ew) / p->stride_w + 1};
}

void e2e_bn_init(struct e2e_bn *bn, struct e2e_rng *r, int32_t c)
{
    bn->scale = e2e_values(r, (size_t)c, 0.5f, 1.5f);
    bn->bias = e2e_values(r, (size_t)c, -0.2f, 0.2f);
    bn->mean = e2e_values(r, (size_t)c, -0.2f, 0.2f);
    bn->var = e2e_values(r, (size_t)c, 0.5f, 1.5f);
}

float *e2e_load_input(const struct e2e_args *args, int count, const size_t sizes[])
{
    size_t total = 0;
    float *staged;

    for (int i = 0; i < count; i++)
        total += sizes[i];
    staged = e2e_alloc(total);
    if (!args->in) {
        /* a smooth deterministic pattern, different for every element */
        for (size_t i = 0; i < total; i++)
            staged[i] = sinf(0.37f * (float)i) * 0.8f + 0.1f * cosf(0.011f * (float)i);
        return staged;
    }

    FILE *f = fopen(args->in, "rb");
    size_t got;
    int extra;

    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, args->in, strerror(errno));
        exit(1);
    }
    got = fread(staged, sizeof *staged, total, f);
    extra = fgetc(f);
    fclose(f);
    if (got != total || extra != EOF) {
        fprintf(stderr, "%s: %s: expected exactly %zu float32 values\n", prog, args->in, total);
        exit(1);
    }
    return staged;
}

void e2e_fill(const float *staged, int count, float *const bufs[], const size_t sizes[])
{
    for (int i = 0; i < count; i++) {
        memcpy(bufs[i], staged, sizes[i] * sizeof *staged);
        staged += sizes[i];
    }
}

void e2e_write_output(const struct e2e_args *args, int count, const float *const bufs[],
                      const size_t sizes[])
{
    FILE *f;

    if (!args->out)
        return;
    f = fopen(args->out, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, args->out, strerror(errno));
        exit(1);
    }
    for (int i = 0; i < count; i++) {
        if (fwrite(bufs[i], sizeof *bufs[i], sizes[i], f) != sizes[i]) {
            fprintf(stderr, "%s: %s: write failed\n", prog, args->out);
            exit(1);
        }
    }
    if (fclose(f)) {
        fprintf(stderr, "%s: %s: %s\n", prog, args->out, strerror(errno));
        exit(1);
    }
}

void e2e_summary(const char *app, int index, const float *p, size_t n)
{
    double sum = 0;
    size_t amin = 0, amax = 0;

    for (size_t i = 0; i < n; i++) {
        sum += p[i];
        if (p[i] < p[amin])
            amin = i;
        if (p[i] > p[amax])
            amax = i;
    }
    printf("%s: output %d: %zu values, sum %.6g, min %.6g at %zu, max %.6g at %zu\n", app, index,
           n, sum, n ? p[amin] : 0.0f, amin, n ? p[amax] : 0.0f, amax);
}

void e2e_tnn_fail(const char *what, tnn_status st, const char *file, int line)
{
    fprintf(stderr, "%s: %s:%d: %s failed with status %d\n", prog, file, line, what, (int)st);
    exit(1);
}
