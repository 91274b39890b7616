/* SPDX-License-Identifier: MIT */
/* e2e app: conv -> gap -> fc -> relu -> fc (no bias) -> softmax at batch 2, + an fc on a flat conv output. */
#include "e2e-app.h"

enum { N = 2, HID = 16, CLASSES = 10 };

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims xd = {N, 3, 8, 8};
    struct e2e_conv_layer conv;

    e2e_parse_args(argc, argv, &args);
    e2e_rng_seed(&rng, 5005);
    e2e_conv_init(&conv, &rng, e2e_conv(3, 2, 1, 1, 1), 3, 6, 1); /* stride 2 */
    const tnn_dims cd = e2e_conv_out(&conv, &xd);                 /* N x 6 x 4 x 4 */
    const tnn_dims gd = {N, 6, 1, 1};
    const tnn_dims hd = {N, HID, 1, 1};
    const tnn_dims pd = {N, CLASSES, 1, 1};
    const size_t flat = (size_t)cd.c * cd.h * cd.w;
    float *w1 = e2e_weights(&rng, (size_t)HID * 6, 6), *b1 = e2e_values(&rng, HID, -0.1f, 0.1f);
    float *w2 = e2e_weights(&rng, (size_t)CLASSES * HID, HID);
    float *w3 = e2e_weights(&rng, CLASSES * flat, flat), *b3 = e2e_values(&rng, CLASSES, -0.1f, 0.1f);

    const size_t xn = e2e_count(&xd);
    float *x = e2e_alloc(xn), *c = e2e_alloc(e2e_count(&cd)), *g = e2e_alloc(e2e_count(&gd));
    float *f1 = e2e_alloc(N * HID), *r = e2e_alloc(N * HID);
    float *f2 = e2e_alloc(N * CLASSES), *f3 = e2e_alloc(N * CLASSES), *s = e2e_alloc(N * CLASSES);
    float *prob = e2e_alloc(N * CLASSES);
    float *staged = e2e_load_input(&args, 1, &xn);

    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 1, &x, &xn);
        E2E_TNN(tnn_conv2d(&conv.p, &xd, x, conv.weight, conv.bias, &cd, c));
        E2E_TNN(tnn_global_avg_pool(&cd, c, g));
        E2E_TNN(tnn_fully_connected(&gd, g, w1, b1, HID, f1));
        E2E_TNN(tnn_relu(&hd, f1, r));                             /* N x HID read as N x HID x 1 x 1 */
        E2E_TNN(tnn_fully_connected(&hd, r, w2, NULL, CLASSES, f2)); /* no bias */
        E2E_TNN(tnn_fully_connected(&cd, c, w3, b3, CLASSES, f3));  /* conv output, flattened */
        E2E_TNN(tnn_add(&pd, f2, f3, s));
        E2E_TNN(tnn_softmax(&pd, s, prob));
    }

    const float *outs[] = {prob};
    const size_t outn[] = {N * CLASSES};
    e2e_write_output(&args, 1, outs, outn);
    e2e_summary("fc_chain", 0, prob, outn[0]);
    return 0;
}
