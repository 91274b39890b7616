/* SPDX-License-Identifier: MIT */
/* Command line, input/output files and a seeded PRNG shared by the demo apps. */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void usage(const char *prog, bool has_size, const char *why)
{
    if (why)
        fprintf(stderr, "%s: %s\n", prog, why);
    fprintf(stderr,
            "usage: %s [--in FILE] [--out FILE] [--runs N] [--batch N]%s\n"
            "  --in FILE    raw little-endian float32 input (default: built-in input)\n"
            "  --out FILE   write the final output tensor as raw float32\n"
            "  --runs N     run the whole inference N times (default 1)\n"
            "  --batch N    batch size (default 1)\n"
            "%s",
            prog, has_size ? " [--size N] [--threads N]" : "",
            has_size ? "  --size N     input height and width (default 224)\n"
                       "  --threads N  N threads each run the inference on their own buffers (default 1)\n"
                     : "");
    exit(2);
}

static long parse_count(const char *prog, bool has_size, const char *opt, const char *arg, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < 1 || v > max) {
        char why[128];
        snprintf(why, sizeof(why), "--%s wants an integer in 1..%ld, not '%s'", opt, max, arg);
        usage(prog, has_size, why);
    }
    return v;
}

void demo_parse(const char *prog, int argc, char **argv, bool has_size, struct demo_opts *opts)
{
    static const struct option longopts[] = {
        {"in", required_argument, NULL, 'i'},   {"out", required_argument, NULL, 'o'},
        {"runs", required_argument, NULL, 'r'}, {"batch", required_argument, NULL, 'b'},
        {"size", required_argument, NULL, 's'}, {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    *opts = (struct demo_opts){.runs = 1, .batch = 1, .size = 224, .threads = 1};
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            opts->in_path = optarg;
            break;
        case 'o':
            opts->out_path = optarg;
            break;
        case 'r':
            opts->runs = parse_count(prog, has_size, "runs", optarg, 1000000);
            break;
        case 'b':
            opts->batch = parse_count(prog, has_size, "batch", optarg, 4096);
            break;
        case 's':
            if (!has_size)
                usage(prog, has_size, "unknown option --size");
            opts->size = parse_count(prog, has_size, "size", optarg, 4096);
            break;
        case 't':
            if (!has_size)
                usage(prog, has_size, "unknown option --threads");
            opts->threads = parse_count(prog, has_size, "threads", optarg, 256);
            break;
        case 'h':
            usage(prog, has_size, NULL);
        default: {
            char why[160];
            /* optopt is the letter of an unknown short option; else argv[optind - 1] is the culprit. */
            if (optopt && !strchr("iorbsth", optopt))
                snprintf(why, sizeof(why), "unknown option '-%c'", optopt);
            else
                snprintf(why, sizeof(why), "unknown option or missing argument: '%s'", argv[optind - 1]);
            usage(prog, has_size, why);
        }
        }
    }
    if (optind < argc)
        usage(prog, has_size, "unexpected argument");
}

void demo_fail(const char *prog, const char *call, tnn_status status)
{
    fprintf(stderr, "%s: %s failed: %d\n", prog, call, (int)status);
    exit(1);
}

float *demo_alloc(const char *prog, size_t count)
{
    float *p = count <= SIZE_MAX / sizeof(float) ? malloc(count * sizeof(float)) : NULL;

    if (!p) {
        fprintf(stderr, "%s: out of memory (%zu floats)\n", prog, count);
        exit(1);
    }
    return p;
}

void demo_read_input(const char *prog, const char *path, float *dst, size_t count)
{
    unsigned char buf[4096];
    size_t done = 0;
    FILE *f = fopen(path, "rb");

    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        exit(2);
    }
    /* Decode byte by byte so the file format does not depend on the host's byte order. */
    while (done < count) {
        size_t want = count - done < sizeof(buf) / 4 ? (count - done) * 4 : sizeof(buf);
        size_t got = fread(buf, 1, want, f);
        for (size_t i = 0; i + 4 <= got; i += 4) {
            uint32_t u = (uint32_t)buf[i] | (uint32_t)buf[i + 1] << 8 | (uint32_t)buf[i + 2] << 16 |
                         (uint32_t)buf[i + 3] << 24;
            memcpy(&dst[done++], &u, sizeof(float));
        }
        if (got < want)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: %s: read error\n", prog, path);
        exit(2);
    }
    if (done < count || fgetc(f) != EOF) {
        fprintf(stderr, "%s: %s: the input must be exactly %zu bytes (%zu float32 values); the file is %s\n",
                prog, path, count * sizeof(float), count,
                done < count ? "shorter" : "longer");
        exit(2);
    }
    fclose(f);
}

void demo_write_output(const char *prog, const char *path, const float *src, size_t count)
{
    FILE *f = fopen(path, "wb");

    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        exit(1);
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof(u));
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                              (unsigned char)(u >> 24)};
        if (fwrite(b, 1, 4, f) != 4)
            break;
    }
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "%s: %s: write error\n", prog, path);
        exit(1);
    }
}

void demo_refill(float *dst, const float *src, size_t count)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = src[i];
}

void demo_rng_seed(struct demo_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

/* splitmix64: tiny, and the same sequence on every platform. */
static uint64_t next(struct demo_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

float demo_uniform(struct demo_rng *rng, float lo, float hi)
{
    float u = (float)(next(rng) >> 40) * 0x1p-24f;

    return lo + (hi - lo) * u;
}
