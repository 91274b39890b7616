/* SPDX-License-Identifier: MIT */
/* resnet18: ResNet-18 with seeded random weights on tinynn, its buffers reused like a real engine's. */
#include "common.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static const char *const prog = "resnet18";

/* One frame per layer function (and no clones with suffixed names): call-stack node names use them. */
#if defined(__has_attribute)
#if __has_attribute(noclone)
#define LAYER __attribute__((noinline, noclone))
#endif
#endif
#ifndef LAYER
#define LAYER __attribute__((noinline))
#endif

enum { STAGES = 4, BLOCKS = 2, POOL = 3, FEATURES = 512, CLASSES = 1000 };

struct conv_bn {
    tnn_conv2d_params p;
    int32_t out_c;
    float *weight; /* [out_c][in_c][k][k], no bias: the batch norm has one */
    float *scale, *bias, *mean, *var;
};

struct block {
    struct conv_bn conv1, conv2, down;
    bool has_down;
};

struct net {
    struct conv_bn stem;
    struct block blocks[STAGES][BLOCKS];
    float *fc_weight, *fc_bias;
};

static int32_t extent(int32_t in, int32_t kernel, int32_t stride, int32_t pad)
{
    return (in + 2 * pad - kernel) / stride + 1;
}

static void fill(float *p, size_t count, struct demo_rng *rng, float lo, float hi)
{
    for (size_t i = 0; i < count; i++)
        p[i] = demo_uniform(rng, lo, hi);
}

static void conv_bn_init(struct conv_bn *l, int32_t in_c, int32_t out_c, int32_t kernel, int32_t stride,
                         struct demo_rng *rng)
{
    const int32_t pad = kernel / 2;
    const size_t fan_in = (size_t)in_c * (size_t)kernel * (size_t)kernel;
    /* He init: uniform with std sqrt(2 / fan_in). */
    const float bound = sqrtf(6.0f / (float)fan_in);

    l->p = (tnn_conv2d_params){
        .kernel_h = kernel, .kernel_w = kernel, .stride_h = stride, .stride_w = stride,
        .pad_top = pad, .pad_left = pad, .pad_bottom = pad, .pad_right = pad,
        .dilation_h = 1, .dilation_w = 1, .groups = 1,
    };
    l->out_c = out_c;
    l->weight = demo_alloc(prog, (size_t)out_c * fan_in);
    l->scale = demo_alloc(prog, (size_t)out_c);
    l->bias = demo_alloc(prog, (size_t)out_c);
    l->mean = demo_alloc(prog, (size_t)out_c);
    l->var = demo_alloc(prog, (size_t)out_c);
    fill(l->weight, (size_t)out_c * fan_in, rng, -bound, bound);
    fill(l->scale, (size_t)out_c, rng, 0.5f, 1.0f);
    fill(l->bias, (size_t)out_c, rng, -0.1f, 0.1f);
    fill(l->mean, (size_t)out_c, rng, -0.1f, 0.1f);
    fill(l->var, (size_t)out_c, rng, 0.5f, 1.5f);
}

static void conv_bn_free(struct conv_bn *l)
{
    free(l->weight);
    free(l->scale);
    free(l->bias);
    free(l->mean);
    free(l->var);
}

static void net_init(struct net *net, struct demo_rng *rng)
{
    int32_t in_c = 64;

    conv_bn_init(&net->stem, 3, 64, 7, 2, rng);
    for (int s = 0; s < STAGES; s++) {
        const int32_t out_c = 64 << s;
        for (int b = 0; b < BLOCKS; b++) {
            struct block *blk = &net->blocks[s][b];
            const int32_t stride = s > 0 && b == 0 ? 2 : 1;
            conv_bn_init(&blk->conv1, in_c, out_c, 3, stride, rng);
            conv_bn_init(&blk->conv2, out_c, out_c, 3, 1, rng);
            blk->has_down = stride != 1 || in_c != out_c;
            if (blk->has_down)
                conv_bn_init(&blk->down, in_c, out_c, 1, stride, rng);
            in_c = out_c;
        }
    }
    /* He-scaled too: the softmax comes out peaked but far from one-hot (top-1 ≈ 0.15 at 224). */
    const float bound = sqrtf(6.0f / (float)FEATURES);
    net->fc_weight = demo_alloc(prog, (size_t)CLASSES * FEATURES);
    net->fc_bias = demo_alloc(prog, CLASSES);
    fill(net->fc_weight, (size_t)CLASSES * FEATURES, rng, -bound, bound);
    fill(net->fc_bias, CLASSES, rng, -bound, bound);
}

static void net_free(struct net *net)
{
    conv_bn_free(&net->stem);
    for (int s = 0; s < STAGES; s++) {
        for (int b = 0; b < BLOCKS; b++) {
            conv_bn_free(&net->blocks[s][b].conv1);
            conv_bn_free(&net->blocks[s][b].conv2);
            if (net->blocks[s][b].has_down)
                conv_bn_free(&net->blocks[s][b].down);
        }
    }
    free(net->fc_weight);
    free(net->fc_bias);
}

/* Floats in the largest activation of a batch×3×size×size pass; every pool buffer has this size. */
static size_t max_activation(const struct net *net, long batch, int32_t size)
{
    int32_t h = extent(size, 7, 2, 3);
    size_t most = (size_t)64 * (size_t)h * (size_t)h;

    h = extent(h, 3, 2, 1);
    for (int s = 0; s < STAGES; s++) {
        const size_t c = (size_t)net->blocks[s][0].conv1.out_c;
        h = extent(h, 3, net->blocks[s][0].conv1.p.stride_h, 1);
        if (c * (size_t)h * (size_t)h > most)
            most = c * (size_t)h * (size_t)h;
    }
    if (most < CLASSES)
        most = CLASSES;
    return (size_t)batch * most;
}

/* conv (no bias) + batch norm in place; always inlined so it adds no frame of its own. */
static inline __attribute__((always_inline)) void conv_bn(const struct conv_bn *l, const tnn_dims *in_dims,
                                                          const float *in, tnn_dims *out_dims, float *out)
{
    *out_dims = (tnn_dims){in_dims->n, l->out_c, extent(in_dims->h, l->p.kernel_h, l->p.stride_h, l->p.pad_top),
                           extent(in_dims->w, l->p.kernel_w, l->p.stride_w, l->p.pad_left)};
    DEMO_TRY(tnn_conv2d, &l->p, in_dims, in, l->weight, NULL, out_dims, out);
    DEMO_TRY(tnn_batch_norm, out_dims, out, l->scale, l->bias, l->mean, l->var, 1e-5f, out);
}

/* Input → pool[0] (conv, bn, relu) → pool[1] (max pool). Returns the output's pool index. */
static LAYER int stem(const struct net *net, const tnn_dims *in_dims, const float *in, float *const pool[],
                      tnn_dims *dims)
{
    const tnn_pool2d_params mp = {
        .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2,
        .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
    };
    tnn_dims c;

    conv_bn(&net->stem, in_dims, in, &c, pool[0]);
    DEMO_TRY(tnn_relu, &c, pool[0], pool[0]);
    *dims = (tnn_dims){c.n, c.c, extent(c.h, 3, 2, 1), extent(c.w, 3, 2, 1)};
    DEMO_TRY(tnn_max_pool2d, &mp, &c, pool[0], dims, pool[1]);
    return 1;
}

/*
 * x in pool[x]; conv1 → pool[t], conv2 → pool[u]. The residual add writes into one of its inputs: the
 * shortcut pool[x] (out == b) for identity blocks, the main path pool[u] (out == a) for downsampling
 * blocks, whose 1×1 shortcut reuses pool[t]. Returns the output's pool index.
 */
static LAYER int basic_block(const struct block *blk, float *const pool[], int x, tnn_dims *dims)
{
    const int t = (x + 1) % POOL, u = (x + 2) % POOL;
    tnn_dims mid, res, sc;

    conv_bn(&blk->conv1, dims, pool[x], &mid, pool[t]);
    DEMO_TRY(tnn_relu, &mid, pool[t], pool[t]);
    conv_bn(&blk->conv2, &mid, pool[t], &res, pool[u]);
    if (blk->has_down) {
        conv_bn(&blk->down, dims, pool[x], &sc, pool[t]);
        DEMO_TRY(tnn_add, &res, pool[u], pool[t], pool[u]);
        DEMO_TRY(tnn_relu, &res, pool[u], pool[u]);
        *dims = res;
        return u;
    }
    DEMO_TRY(tnn_add, &res, pool[u], pool[x], pool[x]);
    DEMO_TRY(tnn_relu, &res, pool[x], pool[x]);
    *dims = res;
    return x;
}

static LAYER int stage(const struct block blocks[BLOCKS], float *const pool[], int x, tnn_dims *dims)
{
    for (int b = 0; b < BLOCKS; b++)
        x = basic_block(&blocks[b], pool, x, dims);
    return x;
}

/* Global average pool → pool[t], fully connected → pool[u] (n×1000), softmax of it as n×1000×1×1 → pool[x]. */
static LAYER int head(const struct net *net, float *const pool[], int x, const tnn_dims *dims,
                      tnn_dims *out_dims)
{
    const int t = (x + 1) % POOL, u = (x + 2) % POOL;
    const tnn_dims pooled = {dims->n, dims->c, 1, 1};

    DEMO_TRY(tnn_global_avg_pool, dims, pool[x], pool[t]);
    DEMO_TRY(tnn_fully_connected, &pooled, pool[t], net->fc_weight, net->fc_bias, CLASSES, pool[u]);
    *out_dims = (tnn_dims){dims->n, CLASSES, 1, 1};
    DEMO_TRY(tnn_softmax, out_dims, pool[u], pool[x]);
    return x;
}

static LAYER int forward(const struct net *net, const tnn_dims *in_dims, const float *in, float *const pool[],
                         tnn_dims *out_dims)
{
    tnn_dims dims;
    int x = stem(net, in_dims, in, pool, &dims);

    for (int s = 0; s < STAGES; s++)
        x = stage(net->blocks[s], pool, x, &dims);
    return head(net, pool, x, &dims, out_dims);
}

static void print_summary(const tnn_dims *dims, const float *out)
{
    const size_t classes = (size_t)dims->c;
    double sum = 0.0;

    for (size_t i = 0; i < (size_t)dims->n * classes; i++)
        sum += out[i];
    printf("output %dx%dx%dx%d sum %.6f\n", dims->n, dims->c, dims->h, dims->w, sum);
    for (size_t n = 0; n < (size_t)dims->n; n++) {
        const float *p = out + n * classes;
        size_t top[5];
        printf("top5[%zu]:", n);
        for (size_t k = 0; k < 5 && k < classes; k++) {
            size_t best = classes;
            for (size_t i = 0; i < classes; i++) {
                bool taken = false;
                for (size_t j = 0; j < k; j++)
                    taken |= top[j] == i;
                if (!taken && (best == classes || p[i] > p[best]))
                    best = i;
            }
            top[k] = best;
            printf(" %zu:%.6f", best, p[best]);
        }
        printf("\n");
    }
}

/* One inference thread: its own input and activation buffers, the shared read-only weights. */
struct worker {
    pthread_t thread;
    const struct net *net;
    const struct demo_opts *opts;
    const float *source;
    size_t in_count, activation;
    float *input, *pool[POOL];
    tnn_dims out_dims;
    int out;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    const int32_t size = (int32_t)w->opts->size;
    const tnn_dims in_dims = {(int32_t)w->opts->batch, 3, size, size};

    for (long run = 0; run < w->opts->runs; run++) {
        demo_refill(w->input, w->source, w->in_count);
        w->out = forward(w->net, &in_dims, w->input, w->pool, &w->out_dims);
    }
    return NULL;
}

#ifdef RESNET18_VENDOR /* inside libresnet18-vendor.so: main is that library's entry point */
#define main resnet18_vendor_main
__attribute__((visibility("default"))) int main(int argc, char **argv);
#endif

int main(int argc, char **argv)
{
    struct demo_opts opts;
    struct demo_rng rng;
    struct net net;

    demo_parse(prog, argc, argv, true, &opts);

    const int32_t size = (int32_t)opts.size;
    const size_t in_count = (size_t)opts.batch * 3 * (size_t)size * (size_t)size;
    float *source = demo_alloc(prog, in_count);

    if (opts.in_path) {
        demo_read_input(prog, opts.in_path, source, in_count);
    } else {
        demo_rng_seed(&rng, 224);
        fill(source, in_count, &rng, -1.0f, 1.0f);
    }
    demo_rng_seed(&rng, 18);
    net_init(&net, &rng);
    const size_t activation = max_activation(&net, opts.batch, size);

    struct worker *w = calloc((size_t)opts.threads, sizeof(*w));
    if (!w)
        demo_fail(prog, "calloc", TNN_ENOMEM);
    for (long t = 0; t < opts.threads; t++) {
        w[t] = (struct worker){.net = &net, .opts = &opts, .source = source, .in_count = in_count,
                               .activation = activation};
        w[t].input = demo_alloc(prog, in_count);
        for (int i = 0; i < POOL; i++)
            w[t].pool[i] = demo_alloc(prog, activation);
    }
    if (opts.threads == 1) {
        work(&w[0]);
    } else {
        for (long t = 0; t < opts.threads; t++)
            if (pthread_create(&w[t].thread, NULL, work, &w[t]) != 0)
                demo_fail(prog, "pthread_create", TNN_ENOMEM);
        for (long t = 0; t < opts.threads; t++)
            pthread_join(w[t].thread, NULL);
    }
    /* Same input, same weights: every thread must have computed the same bytes. */
    const size_t out_count = (size_t)w[0].out_dims.n * (size_t)w[0].out_dims.c;
    for (long t = 1; t < opts.threads; t++) {
        if (memcmp(w[t].pool[w[t].out], w[0].pool[w[0].out], out_count * sizeof(float))) {
            fprintf(stderr, "%s: thread %ld computed other numbers than thread 0\n", prog, t);
            return 1;
        }
    }

    print_summary(&w[0].out_dims, w[0].pool[w[0].out]);
    if (opts.out_path)
        demo_write_output(prog, opts.out_path, w[0].pool[w[0].out], out_count);

    for (long t = 0; t < opts.threads; t++) {
        for (int i = 0; i < POOL; i++)
            free(w[t].pool[i]);
        free(w[t].input);
    }
    free(w);
    net_free(&net);
    free(source);
    return 0;
}
