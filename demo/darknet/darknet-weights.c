/* SPDX-License-Identifier: MIT */
/* darknet-weights: a deterministic .weights file with sane statistics for any darknet cfg. */
#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dn-common.h"

/*
 * Weights are He-scaled normals from a seeded PRNG, biases small, batch-norm scales U[0.5, 1.5].
 * Batch-norm statistics are then *calibrated* the way training would leave them: the network runs
 * layer by layer on the default input (the one darknet-run uses) and each batch-norm gets the mean
 * and variance its channels really have there, perturbed a little. Fixed made-up statistics cannot
 * keep activations O(1) through residual nets: a shortcut adds a block's output to its input, and
 * with fixed statistics every block scales with its input, so the growth is exponential in depth
 * (resnet152 has 50 blocks). With calibrated statistics each normalised output is O(1) and a
 * residual sum grows only like sqrt(depth).
 */

struct opts {
    const char *cfg, *out;
    uint64_t seed;
    long zero_var;   /* first K channels of every batch-norm get (almost) zero variance */
    float zero_value; /* their variance; < 0: the cycle 0, 1e-12, 1e-8, 1e-5 */
    float bn_scale;  /* batch-norm scales ~ U[0.5, 1.5] * bn_scale */
    bool calibrate;
    bool verbose;
};

struct fill_ctx {
    struct dn_rng rng;
    float bn_scale;
};

static _Noreturn void usage(const char *why)
{
    if (why)
        fprintf(stderr, "%s: %s\n", dn_prog, why);
    fprintf(stderr,
            "usage: %s CFG OUT.weights [--seed S] [--zero-var-channels K [--zero-var-value V]]\n"
            "       %*s [--bn-scale S] [--no-calibrate] [--verbose]\n"
            "  --seed S               PRNG seed (default 1)\n"
            "  --zero-var-channels K  the first K channels of every batch-norm get variance\n"
            "                         0, 1e-12, 1e-8, 1e-5, 0, ... (darknet's epsilon trap)\n"
            "  --zero-var-value V     ... or all variance V instead\n"
            "  --bn-scale S           multiply batch-norm scales by S (default 1): S = 4 spreads\n"
            "                         activation inputs over about +-12, to reach every branch\n"
            "  --no-calibrate         keep the made-up batch-norm statistics (mean ~N(0, 0.1),\n"
            "                         variance ~U[0.5, 1.5]) instead of measuring them\n"
            "  --verbose              per-layer activation statistics on stderr\n",
            dn_prog, (int)strlen(dn_prog), "");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"seed", required_argument, NULL, 's'},
        {"zero-var-channels", required_argument, NULL, 'z'},
        {"zero-var-value", required_argument, NULL, 'V'},
        {"bn-scale", required_argument, NULL, 'b'},
        {"no-calibrate", no_argument, NULL, 'n'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct opts){.seed = 1, .calibrate = true, .bn_scale = 1, .zero_value = -1};
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->seed = (uint64_t)dn_parse_long("--seed", optarg, 0, 0x7fffffffL);
            break;
        case 'z':
            o->zero_var = dn_parse_long("--zero-var-channels", optarg, 0, 1L << 20);
            break;
        case 'V': {
            char *end;
            errno = 0;
            o->zero_value = strtof(optarg, &end);
            if (errno || end == optarg || *end || !(o->zero_value >= 0 && o->zero_value < 1))
                dn_die("--zero-var-value wants a number in [0, 1), not '%s'", optarg);
            break;
        }
        case 'b': {
            char *end;
            errno = 0;
            o->bn_scale = strtof(optarg, &end);
            if (errno || end == optarg || *end || !(o->bn_scale > 0 && o->bn_scale < 1e6f))
                dn_die("--bn-scale wants a positive number, not '%s'", optarg);
            break;
        }
        case 'n':
            o->calibrate = false;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            usage(NULL);
        default:
            usage(optopt ? "bad or incomplete option" : "unknown option");
        }
    }
    if (argc - optind != 2)
        usage("want CFG and OUT.weights");
    o->cfg = argv[optind];
    o->out = argv[optind + 1];
}

/* Inputs feeding one output of the layer that owns a weights array (He: std = sqrt(2 / fan_in)). */
static double fan_in(const layer *l)
{
    double f;

    switch (l->type) {
    case CONVOLUTIONAL:
        f = (double)(l->c / (l->groups > 0 ? l->groups : 1)) * l->size * l->size;
        break;
    case DECONVOLUTIONAL: /* each output sees about (size/stride)^2 positions of every channel */
        f = (double)l->c * l->size * l->size / ((double)l->stride * l->stride);
        break;
    case LOCAL:
        f = (double)l->c * l->size * l->size;
        break;
    default: /* connected, and the connected parts of rnn/gru/lstm */
        f = l->inputs;
        break;
    }
    return f >= 1 ? f : 1;
}

static void fill_array(void *vctx, layer *owner, int index, const char *what, float *arr, size_t count)
{
    struct fill_ctx *ctx = vctx;
    (void)index;

    if (!strcmp(what, "weights")) {
        float std = (float)sqrt(2.0 / fan_in(owner));
        for (size_t i = 0; i < count; i++)
            arr[i] = std * dn_normal(&ctx->rng);
    } else if (!strcmp(what, "biases")) {
        for (size_t i = 0; i < count; i++)
            arr[i] = 0.1f * dn_normal(&ctx->rng);
    } else if (!strcmp(what, "scales")) {
        for (size_t i = 0; i < count; i++)
            arr[i] = dn_uniform(&ctx->rng, 0.5f, 1.5f) * ctx->bn_scale;
    } else if (!strcmp(what, "rolling_mean")) {
        for (size_t i = 0; i < count; i++)
            arr[i] = 0.1f * dn_normal(&ctx->rng);
    } else if (!strcmp(what, "rolling_variance")) {
        for (size_t i = 0; i < count; i++)
            arr[i] = dn_uniform(&ctx->rng, 0.5f, 1.5f);
    }
}

static float zero_value = -1;

static void zero_variance(float *var, int channels, long k)
{
    static const float tiny[] = {0.0f, 1e-12f, 1e-8f, 1e-5f};

    for (long j = 0; j < k && j < channels; j++)
        var[j] = zero_value >= 0 ? zero_value : tiny[j % 4];
}

struct stats {
    double mean, std, maxabs;
    size_t nans;
};

static struct stats array_stats(const float *x, size_t n)
{
    struct stats s = {0};
    double sum = 0, sq = 0;
    size_t finite = 0;

    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        if (v != v) {
            s.nans++;
            continue;
        }
        sum += v;
        sq += v * v;
        finite++;
        if (v < 0)
            v = -v;
        if (v > s.maxabs)
            s.maxabs = v;
    }
    if (finite) {
        s.mean = sum / (double)finite;
        double var = sq / (double)finite - s.mean * s.mean;
        s.std = (float)sqrt(var > 0 ? var : 0);
    }
    return s;
}

/*
 * Batch-norm statistics from the pre-normalisation output of a convolutional/connected layer:
 * per channel when the channel has enough positions, else the layer-wide ones (a connected layer
 * has one position per channel at batch 1). A dead channel gets a floor, so an input where it
 * comes alive does not blow up.
 */
static void set_bn_stats(layer *l, const float *x, struct dn_rng *rng)
{
    int ch = l->out_c, spatial = l->out_h * l->out_w;
    size_t total = (size_t)ch * (size_t)spatial;
    double lsum = 0, lsq = 0, lmean, lvar;

    for (size_t i = 0; i < total; i++) {
        lsum += x[i];
        lsq += (double)x[i] * x[i];
    }
    lmean = lsum / (double)total;
    lvar = lsq / (double)total - lmean * lmean;
    if (!(lvar > 1e-12))
        lvar = 1;
    for (int c = 0; c < ch; c++) {
        double m = lmean, v = lvar;
        if (spatial >= 16) {
            double s = 0, q = 0;
            for (int i = 0; i < spatial; i++) {
                double t = x[(size_t)c * spatial + i];
                s += t;
                q += t * t;
            }
            m = s / spatial;
            v = q / spatial - m * m;
        }
        if (!(v >= 1e-2 * lvar))
            v = 1e-2 * lvar;
        /* normalize_cpu divides by sqrt(var) + 1e-6 of an output it scaled by 1/(1 + 1e-6) */
        m *= 1.000001;
        v *= 1.000001 * 1.000001;
        l->rolling_mean[c] = (float)(m + 0.1 * (float)sqrt(v) * dn_normal(rng));
        l->rolling_variance[c] = (float)(v * dn_uniform(rng, 0.7f, 1.4f));
    }
}

/* Runs the network as forward_network does, calibrating each batch-norm on the way. */
static void calibrate(network *net, const struct opts *o)
{
    network run = *net;
    struct dn_rng rng;
    float *input = calloc((size_t)net->inputs, sizeof(float));
    float *ones = NULL, *zeros = NULL;
    int maxc = 1, worst = -1;
    double worst_abs = 0;

    if (!input)
        dn_die("out of memory");
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        if (l->out_c > maxc)
            maxc = l->out_c;
        if (l->outputs > maxc)
            maxc = l->outputs;
    }
    ones = malloc((size_t)maxc * sizeof(float));
    zeros = calloc((size_t)maxc, sizeof(float));
    if (!ones || !zeros)
        dn_die("out of memory");
    for (int i = 0; i < maxc; i++)
        ones[i] = 1;

    dn_rng_seed(&rng, o->seed ^ 0x5bd1e995u);
    dn_fill_pattern(input, net->w > 0 ? net->w : net->inputs, net->w > 0 ? net->h : 1,
                    net->w > 0 ? net->c : 1, 1, 1);
    run.input = input;
    run.truth = 0;
    run.train = 0;
    run.delta = 0;
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        bool bn = (l->type == CONVOLUTIONAL || l->type == CONNECTED || l->type == DECONVOLUTIONAL) &&
                  l->batch_normalize && !l->dontload && !l->dontloadscales;

        if (!l->forward)
            dn_die("layer %d has no forward function (a section darknet does not know?)", i);
        run.index = i;
        if (l->delta)
            memset(l->delta, 0, (size_t)l->outputs * (size_t)l->batch * sizeof(float));
        if (bn) {
            /* the same layer with an identity batch-norm and a linear activation: its raw output */
            layer t = *l;
            t.activation = LINEAR;
            t.scales = ones;
            t.biases = zeros;
            t.rolling_mean = zeros;
            t.rolling_variance = ones;
            t.forward(t, run);
            set_bn_stats(l, l->output, &rng);
        }
        if ((bn || l->type == BATCHNORM) && o->zero_var)
            zero_variance(l->rolling_variance, l->type == BATCHNORM ? l->c : l->out_c, o->zero_var);
        l->forward(*l, run);
        run.input = l->output;
        if (l->output && l->outputs > 0) {
            struct stats s = array_stats(l->output, (size_t)l->outputs);
            if (o->verbose)
                fprintf(stderr, "%s: layer %3d %-14s %6d values  mean %10.4g  std %10.4g  max|x| %10.4g%s\n",
                        dn_prog, i, dn_layer_name(l->type), l->outputs, s.mean, s.std, s.maxabs,
                        s.nans ? "  NaN!" : "");
            if (l->type != COST && (s.maxabs > worst_abs || s.nans)) {
                worst_abs = s.nans ? 1.0 / 0.0 : s.maxabs;
                worst = i;
            }
        }
    }
    printf("%s: calibrated on the default input: largest |activation| %.4g at layer %d (%s)\n", dn_prog,
           worst_abs, worst, worst >= 0 ? dn_layer_name(net->layers[worst].type) : "-");
    free(input);
    free(ones);
    free(zeros);
}

static void apply_zero_var(void *vctx, layer *owner, int index, const char *what, float *arr, size_t count)
{
    const long *k = vctx;
    (void)owner;
    (void)index;
    if (!strcmp(what, "rolling_variance"))
        zero_variance(arr, (int)count, *k);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct fill_ctx ctx;
    network *net;
    size_t floats, want;
    char *tmp;
    struct stat st;
    FILE *f;

    dn_prog = "darknet-weights";
    parse(argc, argv, &o);
    zero_value = o.zero_value;
    dn_check_file(o.cfg, "cfg");

    net = parse_network_cfg((char *)o.cfg);
    if (!net || net->n < 1)
        dn_die("%s: no layers", o.cfg);
    set_batch_network(net, 1);
    dn_fix_network(net);

    dn_rng_seed(&ctx.rng, o.seed);
    ctx.bn_scale = o.bn_scale;
    floats = dn_weights_layout(net, fill_array, &ctx);
    if (o.calibrate)
        calibrate(net, &o);
    else if (o.zero_var)
        dn_weights_layout(net, apply_zero_var, &o.zero_var);
    *net->seen = 0;

    /* save_weights exit(0)s when it cannot open the file: open it ourselves first, then rename */
    if (asprintf(&tmp, "%s.tmp.%ld", o.out, (long)getpid()) < 0)
        dn_die("out of memory");
    f = fopen(tmp, "wb");
    if (!f)
        dn_die("cannot write %s: %s", tmp, strerror(errno));
    fclose(f);
    save_weights(net, tmp);
    want = DN_WEIGHTS_HEADER_BYTES + floats * sizeof(float);
    if (stat(tmp, &st) != 0 || (size_t)st.st_size != want) {
        unlink(tmp);
        dn_die("save_weights wrote %lld bytes but load_weights reads %zu for %s "
               "(dontsave/dontload/dontloadscales/numload in the cfg?)",
               (long long)st.st_size, want, o.cfg);
    }
    if (rename(tmp, o.out) != 0) {
        int e = errno;
        unlink(tmp);
        dn_die("cannot rename %s to %s: %s", tmp, o.out, strerror(e));
    }
    printf("%s: wrote %s: %zu floats (%.1f MB), %d layers, seed %llu%s\n", dn_prog, o.out, floats,
           (double)want / 1e6, net->n, (unsigned long long)o.seed,
           o.calibrate ? ", batch-norm calibrated" : "");
    free(tmp);
    free_network(net);
    return 0;
}
