/* SPDX-License-Identifier: MIT */
/* e2e app: an inception-like block of parallel conv/pool branches joined by tnn_concat. */
#include "e2e-app.h"

enum { NBR = 7, CLASSES = 10 };

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims xd = {1, 3, 32, 32};
    struct e2e_conv_layer stem, br[NBR];
    struct e2e_bn bn;
    float *fc_w, *fc_b;

    e2e_parse_args(argc, argv, &args);
    e2e_rng_seed(&rng, 1001);

    /* stem: 3x3 conv + relu + 3x3/2 max pool (pad 1: padding never wins the max) */
    e2e_conv_init(&stem, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 8, 1);
    const tnn_dims sd = e2e_conv_out(&stem, &xd);
    const tnn_pool2d_params mp = e2e_pool(3, 2, 1);
    const tnn_dims md = {1, 8, 16, 16};
    /* asymmetric pads top=1 left=1 bottom=0 right=0: a wrong pads order changes the shape */
    const tnn_conv2d_params asym = {2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1};

    e2e_conv_init(&br[0], &rng, e2e_conv(1, 1, 0, 1, 1), 8, 4, 1); /* 1x1 */
    e2e_conv_init(&br[1], &rng, e2e_conv(3, 1, 1, 1, 1), 8, 4, 1); /* 3x3 pad 1 */
    e2e_conv_init(&br[2], &rng, e2e_conv(5, 1, 2, 1, 1), 8, 2, 1); /* 5x5 pad 2 */
    e2e_conv_init(&br[3], &rng, e2e_conv(3, 1, 2, 2, 1), 8, 2, 1); /* 3x3 dilation 2 pad 2 */
    e2e_conv_init(&br[4], &rng, e2e_conv(3, 1, 1, 1, 2), 8, 4, 1); /* grouped, groups 2 */
    e2e_conv_init(&br[5], &rng, asym, 8, 2, 0);                    /* no bias, asymmetric pads */
    e2e_conv_init(&br[6], &rng, e2e_conv(1, 1, 0, 1, 1), 8, 4, 1); /* 1x1 after the avg pool */
    const tnn_pool2d_params ap = e2e_pool(3, 1, 1);               /* padding not counted */

    tnn_dims bd[NBR];
    int32_t ctot = 0;
    for (int i = 0; i < NBR; i++) {
        bd[i] = e2e_conv_out(&br[i], &md);
        ctot += bd[i].c;
    }
    const tnn_dims cd = {1, ctot, 16, 16};
    const tnn_dims gd = {1, ctot, 1, 1};
    const tnn_dims pd = {1, CLASSES, 1, 1};
    e2e_bn_init(&bn, &rng, ctot);
    fc_w = e2e_weights(&rng, (size_t)CLASSES * ctot, (size_t)ctot);
    fc_b = e2e_values(&rng, CLASSES, -0.1f, 0.1f);

    const size_t xn = e2e_count(&xd);
    float *x = e2e_alloc(xn), *s = e2e_alloc(e2e_count(&sd)), *m = e2e_alloc(e2e_count(&md));
    float *avg = e2e_alloc(e2e_count(&md)), *cat = e2e_alloc(e2e_count(&cd));
    float *g = e2e_alloc(e2e_count(&gd)), *logits = e2e_alloc(CLASSES), *prob = e2e_alloc(CLASSES);
    float *bo[NBR];
    const float *bin[NBR];
    const tnn_dims *bdp[NBR];
    for (int i = 0; i < NBR; i++) {
        bo[i] = e2e_alloc(e2e_count(&bd[i]));
        bin[i] = bo[i];
        bdp[i] = &bd[i];
    }
    float *staged = e2e_load_input(&args, 1, &xn);

    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 1, &x, &xn);
        E2E_TNN(tnn_conv2d(&stem.p, &xd, x, stem.weight, stem.bias, &sd, s));
        E2E_TNN(tnn_relu(&sd, s, s));
        E2E_TNN(tnn_max_pool2d(&mp, &sd, s, &md, m));
        for (int i = 0; i < 6; i++)
            E2E_TNN(tnn_conv2d(&br[i].p, &md, m, br[i].weight, br[i].bias, &bd[i], bo[i]));
        E2E_TNN(tnn_avg_pool2d(&ap, &md, m, &md, avg));
        E2E_TNN(tnn_conv2d(&br[6].p, &md, avg, br[6].weight, br[6].bias, &bd[6], bo[6]));
        E2E_TNN(tnn_concat(NBR, bdp, bin, cat));
        E2E_TNN(tnn_batch_norm(&cd, cat, bn.scale, bn.bias, bn.mean, bn.var, 1e-5f, cat));
        E2E_TNN(tnn_relu(&cd, cat, cat));
        E2E_TNN(tnn_global_avg_pool(&cd, cat, g));
        E2E_TNN(tnn_fully_connected(&gd, g, fc_w, fc_b, CLASSES, logits));
        E2E_TNN(tnn_softmax(&pd, logits, prob)); /* an n x c Gemm output read as n x c x 1 x 1 */
    }

    const float *outs[] = {prob};
    const size_t outn[] = {CLASSES};
    e2e_write_output(&args, 1, outs, outn);
    e2e_summary("branches", 0, prob, CLASSES);
    return 0;
}
