/* SPDX-License-Identifier: MIT */
/* e2e app: fc -> relu -> fc -> relu -> fc; --size big: 3 x 822 MB of weights, past 2 GiB. */
#include "e2e-app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 1, LAYERS = 3 };

/* He-uniform weights from a 32-bit LCG, converted without libm: 2.5 G values must be quick. */
static float *fill(size_t n, size_t fan_in, uint32_t seed)
{
    float *p = e2e_alloc(n);
    const float scale = sqrtf(6.0f / (float)fan_in) / 2147483648.0f;
    uint32_t s = seed;

    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(int32_t)s * scale;
    }
    return p;
}

int main(int argc, char **argv)
{
    struct e2e_args args;
    size_t width = 256;
    char *rest[16];
    int nrest = 0;

    /* --size small|big is ours; the rest is the shared --in/--out/--runs */
    for (int i = 0; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--size")) {
            const char *v = argv[++i];
            if (strcmp(v, "small") && strcmp(v, "big")) {
                fprintf(stderr, "bigfc: --size wants small or big\n");
                return 2;
            }
            width = strcmp(v, "big") ? 256 : 14336;
        } else if (nrest < 15) {
            rest[nrest++] = argv[i];
        }
    }
    rest[nrest] = NULL;
    e2e_parse_args(nrest, rest, &args);

    const int32_t w = (int32_t)width;
    const tnn_dims d = {N, w, 1, 1};
    float *weight[LAYERS], *bias[LAYERS], *act[LAYERS + 1];
    struct e2e_rng rng;

    e2e_rng_seed(&rng, 9009);
    for (int l = 0; l < LAYERS; l++) {
        weight[l] = fill(width * width, width, 0x9e3779b9u * (uint32_t)(l + 1));
        bias[l] = e2e_values(&rng, width, -0.1f, 0.1f);
    }
    for (int l = 0; l <= LAYERS; l++)
        act[l] = e2e_alloc(N * width);
    const size_t xn = N * width;
    float *staged = e2e_load_input(&args, 1, &xn);

    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 1, &act[0], &xn);
        for (int l = 0; l < LAYERS; l++) {
            E2E_TNN(tnn_fully_connected(&d, act[l], weight[l], bias[l], w, act[l + 1]));
            if (l + 1 < LAYERS)
                E2E_TNN(tnn_relu(&d, act[l + 1], act[l + 1]));
        }
    }

    const float *outs[] = {act[LAYERS]};
    const size_t outn[] = {N * width};
    e2e_write_output(&args, 1, outs, outn);
    e2e_summary("bigfc", 0, act[LAYERS], outn[0]);
    return 0;
}
