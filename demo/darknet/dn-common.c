/* SPDX-License-Identifier: MIT */
/* Helpers shared by darknet-run and darknet-weights: messages, files, a seeded PRNG, the weights layout. */
#include "dn-common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *dn_prog = "darknet";

_Noreturn void dn_die(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "%s: ", dn_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void dn_check_file(const char *path, const char *what)
{
    struct stat st;
    FILE *f;

    if (stat(path, &st) != 0)
        dn_die("%s %s: %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        dn_die("%s %s is not a regular file", what, path);
    f = fopen(path, "rb");
    if (!f)
        dn_die("%s %s: %s", what, path, strerror(errno));
    fclose(f);
}

long dn_parse_long(const char *opt, const char *arg, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > hi)
        dn_die("%s wants an integer in %ld..%ld, not '%s'", opt, lo, hi, arg);
    return v;
}

void dn_rng_seed(struct dn_rng *rng, uint64_t seed)
{
    rng->state = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
}

/* splitmix64 */
uint64_t dn_next(struct dn_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

float dn_uniform(struct dn_rng *rng, float lo, float hi)
{
    /* 24 random bits: exactly representable, strictly below 1 */
    float u = (float)(dn_next(rng) >> 40) * (1.0f / 16777216.0f);

    return lo + (hi - lo) * u;
}

float dn_normal(struct dn_rng *rng)
{
    /* Irwin-Hall: four 32-bit uniforms from two draws, centred and scaled to unit variance */
    uint64_t a = dn_next(rng), b = dn_next(rng);
    double s = (double)(uint32_t)a + (double)(a >> 32) + (double)(uint32_t)b + (double)(b >> 32);

    return (float)((s / 4294967296.0 - 2.0) * 1.7320508075688772);
}

void dn_fill_pattern(float *dst, int w, int h, int c, int batch, uint64_t seed)
{
    struct dn_rng rng;
    size_t k = 0;

    dn_rng_seed(&rng, seed);
    for (int b = 0; b < batch; b++) {
        /* per item and channel: a gradient direction and an offset, like lighting on a scene */
        for (int ch = 0; ch < c; ch++) {
            float gx = dn_uniform(&rng, -0.5f, 0.5f), gy = dn_uniform(&rng, -0.5f, 0.5f);
            float base = dn_uniform(&rng, 0.3f, 0.7f);
            int cell = 2 + (int)(dn_next(&rng) % 7); /* blocky "objects" of this size */
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    float fx = w > 1 ? (float)x / (float)(w - 1) - 0.5f : 0;
                    float fy = h > 1 ? (float)y / (float)(h - 1) - 0.5f : 0;
                    float v = base + gx * fx + gy * fy;
                    if (((x / cell) + (y / cell)) % 3 == 0)
                        v += 0.2f;
                    v += dn_uniform(&rng, -0.15f, 0.15f);
                    dst[k++] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            }
        }
    }
}

struct layout {
    network *net;
    dn_array_fn fn;
    void *ctx;
    size_t total;
};

static void visit(struct layout *lo, layer *owner, int index, const char *what, float *arr, size_t count)
{
    if (lo->fn)
        lo->fn(lo->ctx, owner, index, what, arr, count);
    lo->total += count;
}

/* load_convolutional_weights (deconvolutional layers: see darknet-run, which sets groups to 1) */
static void conv_layout(struct layout *lo, layer *l, int index)
{
    size_t n = (size_t)(l->numload ? l->numload : l->n);
    int groups = l->groups > 0 ? l->groups : 1;
    size_t num = (size_t)(l->c / groups) * n * (size_t)l->size * (size_t)l->size;

    visit(lo, l, index, "biases", l->biases, n);
    if (l->batch_normalize && !l->dontloadscales) {
        visit(lo, l, index, "scales", l->scales, n);
        visit(lo, l, index, "rolling_mean", l->rolling_mean, n);
        visit(lo, l, index, "rolling_variance", l->rolling_variance, n);
    }
    visit(lo, l, index, "weights", l->weights, num);
}

/* load_connected_weights */
static void connected_layout(struct layout *lo, layer *l, int index)
{
    size_t out = (size_t)l->outputs;

    visit(lo, l, index, "biases", l->biases, out);
    visit(lo, l, index, "weights", l->weights, out * (size_t)l->inputs);
    if (l->batch_normalize && !l->dontloadscales) {
        visit(lo, l, index, "scales", l->scales, out);
        visit(lo, l, index, "rolling_mean", l->rolling_mean, out);
        visit(lo, l, index, "rolling_variance", l->rolling_variance, out);
    }
}

size_t dn_weights_layout(network *net, dn_array_fn fn, void *ctx)
{
    struct layout lo = {net, fn, ctx, 0};

    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];

        if (l->dontload)
            continue;
        switch (l->type) {
        case CONVOLUTIONAL:
        case DECONVOLUTIONAL:
            conv_layout(&lo, l, i);
            break;
        case CONNECTED:
            connected_layout(&lo, l, i);
            break;
        case BATCHNORM:
            visit(&lo, l, i, "scales", l->scales, (size_t)l->c);
            visit(&lo, l, i, "rolling_mean", l->rolling_mean, (size_t)l->c);
            visit(&lo, l, i, "rolling_variance", l->rolling_variance, (size_t)l->c);
            break;
        case CRNN:
            conv_layout(&lo, l->input_layer, i);
            conv_layout(&lo, l->self_layer, i);
            conv_layout(&lo, l->output_layer, i);
            break;
        case RNN:
            connected_layout(&lo, l->input_layer, i);
            connected_layout(&lo, l->self_layer, i);
            connected_layout(&lo, l->output_layer, i);
            break;
        case LSTM: {
            layer *subs[] = {l->wi, l->wf, l->wo, l->wg, l->ui, l->uf, l->uo, l->ug};
            for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++)
                connected_layout(&lo, subs[k], i);
            break;
        }
        case GRU: {
            layer *subs[] = {l->wz, l->wr, l->wh, l->uz, l->ur, l->uh};
            for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++)
                connected_layout(&lo, subs[k], i);
            break;
        }
        case LOCAL: {
            size_t locations = (size_t)l->out_w * (size_t)l->out_h;
            visit(&lo, l, i, "biases", l->biases, (size_t)l->outputs);
            visit(&lo, l, i, "weights", l->weights,
                  (size_t)l->size * (size_t)l->size * (size_t)l->c * (size_t)l->n * locations);
            break;
        }
        default:
            break;
        }
    }
    return lo.total;
}

void dn_fix_network(network *net)
{
    size_t have = 0, need = 0;

    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        size_t ws = l->workspace_size;

        if (ws > have)
            have = ws;
        if (l->type == LOCAL)
            ws *= sizeof(float);
        if (ws > need)
            need = ws;
    }
    if (need > have) {
        free(net->workspace);
        net->workspace = calloc(1, need);
        if (!net->workspace)
            dn_die("out of memory");
    }
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];

        if (l->type == DECONVOLUTIONAL && l->groups < 1)
            l->groups = 1;
        if (l->type == BATCHNORM && !l->x) {
            l->x = calloc((size_t)l->outputs * (size_t)(l->batch > 0 ? l->batch : 1), sizeof(float));
            if (!l->x)
                dn_die("out of memory");
        }
    }
}

const char *dn_layer_name(LAYER_TYPE type)
{
    static const char *const names[] = {
        [CONVOLUTIONAL] = "convolutional", [DECONVOLUTIONAL] = "deconvolutional",
        [CONNECTED] = "connected",         [MAXPOOL] = "maxpool",
        [SOFTMAX] = "softmax",             [DETECTION] = "detection",
        [DROPOUT] = "dropout",             [CROP] = "crop",
        [ROUTE] = "route",                 [COST] = "cost",
        [NORMALIZATION] = "normalization", [AVGPOOL] = "avgpool",
        [LOCAL] = "local",                 [SHORTCUT] = "shortcut",
        [ACTIVE] = "activation",           [RNN] = "rnn",
        [GRU] = "gru",                     [LSTM] = "lstm",
        [CRNN] = "crnn",                   [BATCHNORM] = "batchnorm",
        [NETWORK] = "net",                 [XNOR] = "xnor",
        [REGION] = "region",               [YOLO] = "yolo",
        [ISEG] = "iseg",                   [REORG] = "reorg",
        [UPSAMPLE] = "upsample",           [LOGXENT] = "logistic",
        [L2NORM] = "l2norm",               [BLANK] = "blank",
    };

    if ((unsigned)type < sizeof(names) / sizeof(names[0]) && names[type])
        return names[type];
    return "unknown";
}
