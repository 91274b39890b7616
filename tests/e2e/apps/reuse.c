/* SPDX-License-Identifier: MIT */
/* e2e app: the program does things with its memory between two hooked calls, as real programs
 * do; the model must compute what the program computed whatever it does (--case NAME):
 *   free-malloc  an activation freed, the same block back from malloc, refilled with input data
 *   realloc      an activation grown with realloc: the block moves, the next layer reads it there
 *   reallocarray the same with reallocarray
 *   mmap         an activation in an mmap'd block, unmapped, mapped again at the same address,
 *                refilled with input data
 *   mremap-fixed  an activation's page moved (MREMAP_FIXED) and grown over a block holding a
 *                layer output: the grown part, refilled with input data, is that output no more
 *   weights      weights staged (memcpy) into a buffer a layer wrote earlier
 *   input        a buffer a layer wrote refilled with fresh input data (no free)
 *   inplace      a live activation copied out (an output of the program's own) and
 *                overwritten by the program, then an in-place op on it
 *   pool         a pool that hands blocks back without free: layers write into recycled blocks,
 *                and one is refilled with input data by the program
 * Graph inputs in first-read order: x, then (all but realloc, reallocarray and weights) the
 * refill r. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "e2e-app.h"

/* Built with ASan, the app's freed blocks would wait in its quarantine: this case needs them
 * back at once, as from glibc. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
}

static const tnn_dims xd = {1, 3, 8, 8}, hd = {1, 4, 8, 8};

static void usage(void)
{
    fprintf(stderr, "usage: reuse --case free-malloc|realloc|reallocarray|mmap|mremap-fixed|"
                    "weights|input|inplace|pool [--in F] [--out F] [--runs N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *which = NULL;
    char *rest[16];
    int n_rest = 0;

    /* --case is ours; the rest is the common command line */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--case") && i + 1 < argc)
            which = argv[++i];
        else if (n_rest < 15)
            rest[n_rest++] = argv[i];
    }
    rest[n_rest] = NULL;
    if (!which)
        usage();
    struct e2e_args args;
    e2e_parse_args(n_rest, rest, &args);

    struct e2e_rng rng;
    struct e2e_conv_layer c1, c2;
    e2e_rng_seed(&rng, 7007);
    e2e_conv_init(&c1, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
    e2e_conv_init(&c2, &rng, e2e_conv(3, 1, 1, 1, 1), 4, 4, 1);

    const size_t nx = e2e_count(&xd), nh = e2e_count(&hd);
    const bool refill = strncmp(which, "realloc", 7) && strcmp(which, "weights");
    const size_t sizes[2] = {nx, nh};
    float *staged = e2e_load_input(&args, refill ? 2 : 1, sizes);
    float *x = e2e_alloc(nx), *y = e2e_alloc(nh), *a = NULL, *kept = NULL;

    for (int run = 0; run < args.runs; run++) {
        float *bufs[2] = {x, NULL};
        e2e_fill(staged, 1, bufs, sizes);
        if (!strcmp(which, "free-malloc")) {
            a = e2e_alloc(nh);
            float *b = e2e_alloc(nh);
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, a));
            E2E_TNN(tnn_relu(&hd, a, b));
            free(a);
            float *r = malloc(nh * sizeof(float)); /* glibc hands the same block back */
            if (r != a) {
                fprintf(stderr, "reuse: malloc did not reuse the freed block\n");
                return 3;
            }
            memcpy(r, staged + nx, nh * sizeof(float));
            E2E_TNN(tnn_add(&hd, b, r, y));
            free(r);
            free(b);
        } else if (!strcmp(which, "realloc") || !strcmp(which, "reallocarray")) {
            a = e2e_alloc(nh);
            float *blocker = e2e_alloc(16); /* the block cannot grow where it is */
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, a));
            float *moved = !strcmp(which, "realloc") ? realloc(a, 64 * nh * sizeof(float))
                                                     : reallocarray(a, 64 * nh, sizeof(float));
            if (!moved || moved == a) {
                fprintf(stderr, "reuse: realloc did not move the block\n");
                return 3;
            }
            E2E_TNN(tnn_relu(&hd, moved, y));
            free(moved);
            free(blocker);
        } else if (!strcmp(which, "mmap")) {
            size_t len = nh * sizeof(float);
            float *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            float *b = e2e_alloc(nh);
            if (m == MAP_FAILED)
                return 3;
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, m));
            E2E_TNN(tnn_relu(&hd, m, b));
            munmap(m, len);
            float *m2 = mmap(m, len, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (m2 != m) {
                fprintf(stderr, "reuse: the mapping did not come back at the same address\n");
                return 3;
            }
            memcpy(m2, staged + nx, len);
            E2E_TNN(tnn_add(&hd, b, m2, y));
            munmap(m2, len);
            free(b);
        } else if (!strcmp(which, "mremap-fixed")) {
            size_t page = (size_t)sysconf(_SC_PAGESIZE), len = nh * sizeof(float);
            char *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            char *t = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            float *b = e2e_alloc(nh), *tail = (float *)(t + page);
            if (m == MAP_FAILED || t == MAP_FAILED || len > page)
                return 3;
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, (float *)m));
            E2E_TNN(tnn_relu(&hd, (float *)m, tail));
            E2E_TNN(tnn_relu(&hd, tail, b));
            /* m's page replaces t's two pages: its second page is new (zeros) */
            if (mremap(m, page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, t) != t) {
                fprintf(stderr, "reuse: mremap did not move the page\n");
                return 3;
            }
            memcpy(tail, staged + nx, len);
            E2E_TNN(tnn_add(&hd, (float *)t, tail, y));
            E2E_TNN(tnn_add(&hd, y, b, y));
            munmap(t, 2 * page);
            free(b);
        } else if (!strcmp(which, "weights")) {
            /* one scratch buffer: first an activation, then the next conv's weights */
            size_t nw = (size_t)4 * 4 * 3 * 3;
            float *scratch = e2e_alloc(nh > nw ? nh : nw), *b = e2e_alloc(nh);
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, scratch));
            E2E_TNN(tnn_relu(&hd, scratch, b));
            memcpy(scratch, c2.weight, nw * sizeof(float));
            E2E_TNN(tnn_conv2d(&c2.p, &hd, b, scratch, c2.bias, &hd, y));
            free(scratch);
            free(b);
        } else if (!strcmp(which, "input")) {
            float *h = e2e_alloc(nh), *b = e2e_alloc(nh);
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, h));
            E2E_TNN(tnn_relu(&hd, h, b));
            memcpy(h, staged + nx, nh * sizeof(float)); /* the next input, into a live buffer */
            E2E_TNN(tnn_conv2d(&c2.p, &hd, h, c2.weight, c2.bias, &hd, y));
            E2E_TNN(tnn_add(&hd, y, b, y));
            free(h);
            free(b);
        } else if (!strcmp(which, "inplace")) {
            float *h = e2e_alloc(nh);
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, h));
            if (!kept)
                kept = e2e_alloc(nh);
            memcpy(kept, h, nh * sizeof(float)); /* what no layer reads: a graph output */
            for (size_t i = 0; i < nh; i++) /* the program's own code overwrites it */
                h[i] = staged[nx + i];
            E2E_TNN(tnn_relu(&hd, h, h));
            E2E_TNN(tnn_conv2d(&c2.p, &hd, h, c2.weight, c2.bias, &hd, y));
            free(h);
        } else if (!strcmp(which, "pool")) {
            /* three blocks recycled in turn, never freed while the pass runs */
            float *pool[3] = {e2e_alloc(nh), e2e_alloc(nh), e2e_alloc(nh)};
            E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, pool[0]));
            E2E_TNN(tnn_relu(&hd, pool[0], pool[1]));
            E2E_TNN(tnn_conv2d(&c2.p, &hd, pool[1], c2.weight, c2.bias, &hd, pool[2]));
            /* pool[0] and pool[1] go back to the pool: pool[0] comes out for the program's own
             * data, pool[1] for the next layer's output */
            memcpy(pool[0], staged + nx, nh * sizeof(float));
            E2E_TNN(tnn_add(&hd, pool[2], pool[0], pool[1]));
            E2E_TNN(tnn_relu(&hd, pool[1], y));
            for (int i = 0; i < 3; i++)
                free(pool[i]);
        } else {
            usage();
        }
    }

    const float *outs[] = {kept ? kept : y, y};
    const size_t outn[] = {nh, nh};
    e2e_write_output(&args, kept ? 2 : 1, outs, outn);
    e2e_summary(which, 0, y, nh);
    free(c1.weight), free(c1.bias), free(c2.weight), free(c2.bias);
    free(staged), free(x), free(y), free(kept);
    return 0;
}
