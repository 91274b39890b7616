/* SPDX-License-Identifier: MIT */
/* darknet-run: run a darknet cfg (+ weights) through libdarknet.so and write every output head. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dn-common.h"

struct opts {
    const char *cfg, *weights, *in, *out, *dump;
    long runs, batch;
    uint64_t seed;
};

static _Noreturn void usage(const char *why)
{
    if (why)
        fprintf(stderr, "%s: %s\n", dn_prog, why);
    fprintf(stderr,
            "usage: %s CFG [--weights FILE] [--in FILE] [--out FILE] [--runs N] [--batch N]\n"
            "       %*s [--seed S] [--dump-layers DIR]\n"
            "  --weights FILE     darknet .weights (default: the cfg's random init; batch-norm\n"
            "                     variances are 0: outputs blow up; see darknet-weights)\n"
            "  --in FILE          raw little-endian float32 input, batch * w*h*c values\n"
            "                     (default: an image-like pattern in [0, 1], see --seed)\n"
            "  --out FILE         every output head as raw float32, in the order produced\n"
            "  --runs N           run network_predict N times (default 1)\n"
            "  --batch N          batch size, at most the cfg's batch/subdivisions (default 1)\n"
            "  --seed S           seed of the default input pattern (default 1)\n"
            "  --dump-layers DIR  after the last run, write each layer i's l.output to DIR/layer_<i>.bin\n",
            dn_prog, (int)strlen(dn_prog), "");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"weights", required_argument, NULL, 'w'},
        {"in", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {"runs", required_argument, NULL, 'r'},
        {"batch", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},
        {"dump-layers", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *o = (struct opts){.runs = 1, .batch = 1, .seed = 1};
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'w':
            o->weights = optarg;
            break;
        case 'i':
            o->in = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'r':
            o->runs = dn_parse_long("--runs", optarg, 1, 1000000);
            break;
        case 'b':
            o->batch = dn_parse_long("--batch", optarg, 1, 4096);
            break;
        case 's':
            o->seed = (uint64_t)dn_parse_long("--seed", optarg, 0, 0x7fffffffL);
            break;
        case 'd':
            o->dump = optarg;
            break;
        case 'h':
            usage(NULL);
        default:
            usage(optopt ? "bad or incomplete option" : "unknown option");
        }
    }
    if (argc - optind != 1)
        usage("want exactly one CFG");
    o->cfg = argv[optind];
}

static float *read_input(const char *path, size_t count)
{
    FILE *f;
    struct stat st;
    float *buf;

    dn_check_file(path, "input");
    if (stat(path, &st) != 0)
        dn_die("input %s: %s", path, strerror(errno));
    if ((size_t)st.st_size != count * sizeof(float))
        dn_die("input %s holds %lld bytes; the network takes %zu float32 values (%zu bytes)", path,
               (long long)st.st_size, count, count * sizeof(float));
    buf = malloc(count * sizeof(float));
    f = fopen(path, "rb");
    if (!buf || !f)
        dn_die("cannot read input %s: %s", path, strerror(errno));
    if (fread(buf, sizeof(float), count, f) != count)
        dn_die("short read from input %s", path);
    fclose(f);
    return buf;
}

static void write_floats(FILE *f, const char *path, const float *x, size_t n)
{
    if (n && fwrite(x, sizeof(float), n, f) != n)
        dn_die("cannot write %s: %s", path, strerror(errno));
}

static void close_out(FILE *f, const char *path)
{
    if (fflush(f) != 0 || ferror(f) || fclose(f) != 0)
        dn_die("cannot write %s: %s", path, strerror(errno));
}

/*
 * The heads are the layer outputs nothing else reads, in production (layer) order: exactly the
 * graph outputs the tracer makes (values never consumed). A layer reads the previous layer's
 * output, except a route (it reads its listed layers), a shortcut (previous + `from`), and a cost
 * layer, which has no node in the graph: the layer before it stays a head. So yolo/region/detection
 * layers and the last layer are heads; a softmax + cost tail gives the softmax.
 */
static int find_heads(network *net, int *heads)
{
    bool *read = calloc((size_t)net->n, sizeof(bool));
    int nheads = 0;

    if (!read)
        dn_die("out of memory");
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];

        switch (l->type) {
        case COST:
            break;
        case ROUTE:
            for (int k = 0; k < l->n; k++)
                if (l->input_layers[k] >= 0 && l->input_layers[k] < net->n)
                    read[l->input_layers[k]] = true;
            break;
        case SHORTCUT:
            if (l->index >= 0 && l->index < net->n)
                read[l->index] = true;
            if (i > 0)
                read[i - 1] = true;
            break;
        default:
            if (i > 0)
                read[i - 1] = true;
            break;
        }
    }
    for (int i = 0; i < net->n; i++)
        if (!read[i] && net->layers[i].type != COST && net->layers[i].output && net->layers[i].outputs > 0)
            heads[nheads++] = i;
    free(read);
    return nheads;
}

static void dump_layers(network *net, const char *dir, long batch)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        dn_die("cannot create %s: %s", dir, strerror(errno));
    for (int i = 0; i < net->n; i++) {
        layer *l = &net->layers[i];
        char *path;
        FILE *f;

        if (!l->output || l->outputs <= 0)
            continue;
        if (asprintf(&path, "%s/layer_%d.bin", dir, i) < 0)
            dn_die("out of memory");
        f = fopen(path, "wb");
        if (!f)
            dn_die("cannot write %s: %s", path, strerror(errno));
        write_floats(f, path, l->output, (size_t)l->outputs * (size_t)batch);
        close_out(f, path);
        free(path);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    network *net;
    float *src, *input;
    size_t n_in;
    int *heads, nheads;
    const char *base;

    dn_prog = "darknet-run";
    parse(argc, argv, &o);
    /* darknet exit(0)s on a file it cannot open: check everything first */
    dn_check_file(o.cfg, "cfg");
    if (o.weights)
        dn_check_file(o.weights, "weights");

    net = parse_network_cfg((char *)o.cfg);
    if (!net || net->n < 1)
        dn_die("%s: no layers", o.cfg);
    for (int i = 0; i < net->n; i++)
        if (!net->layers[i].forward)
            dn_die("%s: layer %d is of a type darknet does not know", o.cfg, i);
    /* layer buffers are allocated for the cfg's batch (batch / subdivisions * time_steps) */
    if (o.batch > net->batch)
        dn_die("--batch %ld: %s allocates buffers for batch %d only (set batch= in its [net])", o.batch,
               o.cfg, net->batch);
    set_batch_network(net, (int)o.batch);
    dn_fix_network(net);
    if (o.weights) {
        struct stat st;
        size_t want = DN_WEIGHTS_HEADER_BYTES + dn_weights_layout(net, NULL, NULL) * sizeof(float);
        /* load_weights does not check its reads: a short file would leave random weights behind */
        if (stat(o.weights, &st) != 0 || (size_t)st.st_size < want)
            dn_die("weights %s: %lld bytes, but %s needs %zu", o.weights, (long long)st.st_size, o.cfg, want);
        load_weights(net, (char *)o.weights);
    }

    n_in = (size_t)net->inputs * (size_t)o.batch;
    if (n_in == 0)
        dn_die("%s: the network takes no input", o.cfg);
    if (o.in) {
        src = read_input(o.in, n_in);
    } else {
        src = malloc(n_in * sizeof(float));
        if (!src)
            dn_die("out of memory");
        if (net->w > 0 && net->h > 0 && net->c > 0 && (size_t)net->w * net->h * net->c == (size_t)net->inputs)
            dn_fill_pattern(src, net->w, net->h, net->c, (int)o.batch, o.seed);
        else
            dn_fill_pattern(src, net->inputs, 1, 1, (int)o.batch, o.seed);
    }
    input = malloc(n_in * sizeof(float));
    heads = malloc((size_t)net->n * sizeof(int));
    if (!input || !heads)
        dn_die("out of memory");
    nheads = find_heads(net, heads);

    for (long r = 0; r < o.runs; r++) {
        /* plain stores, as an app refilling its input buffer would: the tracer does not see them */
        for (size_t i = 0; i < n_in; i++)
            input[i] = src[i];
        network_predict(net, input);
    }

    base = strrchr(o.cfg, '/') ? strrchr(o.cfg, '/') + 1 : o.cfg;
    printf("darknet-run: %s: %d layers, input %dx%dx%d (%d values), batch %ld, %ld run(s), %d head(s)\n",
           base, net->n, net->w, net->h, net->c, net->inputs, o.batch, o.runs, nheads);
    for (int k = 0; k < nheads; k++) {
        layer *l = &net->layers[heads[k]];
        size_t count = (size_t)l->outputs * (size_t)o.batch;
        double sum = 0;

        for (size_t i = 0; i < count; i++)
            sum += l->output[i];
        printf("head %d: layer %d %s", k, heads[k], dn_layer_name(l->type));
        if ((long)l->out_w * l->out_h * l->out_c == l->outputs)
            printf(" %dx%dx%d", l->out_w, l->out_h, l->out_c);
        printf(", %zu values, sum %.6f, first", count, sum);
        for (size_t i = 0; i < count && i < 4; i++)
            printf(" %.6f", l->output[i]);
        printf("\n");
    }
    if (o.out) {
        FILE *f = fopen(o.out, "wb");
        if (!f)
            dn_die("cannot write %s: %s", o.out, strerror(errno));
        for (int k = 0; k < nheads; k++) {
            layer *l = &net->layers[heads[k]];
            write_floats(f, o.out, l->output, (size_t)l->outputs * (size_t)o.batch);
        }
        close_out(f, o.out);
    }
    if (o.dump)
        dump_layers(net, o.dump, o.batch);

    free(heads);
    free(input);
    free(src);
    free_network(net);
    if (fflush(stdout) != 0)
        dn_die("cannot write stdout: %s", strerror(errno));
    return 0;
}
