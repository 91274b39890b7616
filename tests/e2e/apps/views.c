/* SPDX-License-Identifier: MIT */
/* e2e app: views into buffers: batch items, adjacent channel slices (in-place concat), a split. */
#include "e2e-app.h"

enum { H = 12, W = 12, HW = H * W, CA = 4, CB = 6, CLASSES = 10 };

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims xd = {2, 3, H, W};          /* a batch of 2 */
    const tnn_dims yd = {2, 8, H, W};
    const tnn_dims itemd = {1, 8, H, W};       /* one batch item of y */
    const tnn_dims ad = {1, CA, H, W}, bd = {1, CB, H, W};
    const tnn_dims catd = {1, CA + CB, H, W}; /* conv A and conv B outputs, side by side */
    const tnn_dims sd = {1, 8, H, W};
    const tnn_dims halfd = {1, 4, H, W};
    const tnn_dims gd = {1, 4, 1, 1};
    const tnn_dims pd = {1, CLASSES, 1, 1};
    struct e2e_conv_layer c0, ca, cb, cc, cd;
    float *fc_w, *fc_b;

    e2e_parse_args(argc, argv, &args);
    e2e_rng_seed(&rng, 3003);
    e2e_conv_init(&c0, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 8, 1);
    e2e_conv_init(&ca, &rng, e2e_conv(3, 1, 1, 1, 1), 8, CA, 1);
    e2e_conv_init(&cb, &rng, e2e_conv(1, 1, 0, 1, 1), 8, CB, 1);
    e2e_conv_init(&cc, &rng, e2e_conv(3, 1, 1, 1, 1), CA + CB, 8, 1);
    e2e_conv_init(&cd, &rng, e2e_conv(1, 1, 0, 1, 1), 4, 4, 1);
    fc_w = e2e_weights(&rng, CLASSES * 4, 4);
    fc_b = e2e_values(&rng, CLASSES, -0.1f, 0.1f);

    const size_t xn = e2e_count(&xd);
    float *x = e2e_alloc(xn), *y = e2e_alloc(e2e_count(&yd)), *cat = e2e_alloc(e2e_count(&catd));
    float *s = e2e_alloc(e2e_count(&sd)), *d = e2e_alloc(e2e_count(&halfd));
    float *e = e2e_alloc(e2e_count(&halfd)), *g = e2e_alloc(4);
    float *logits = e2e_alloc(CLASSES), *prob = e2e_alloc(CLASSES);
    float *staged = e2e_load_input(&args, 1, &xn);

    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 1, &x, &xn);
        E2E_TNN(tnn_conv2d(&c0.p, &xd, x, c0.weight, c0.bias, &yd, y));
        /* (c) per-item ops on the two batch items of y; (a) their outputs are adjacent channel
         * slices of one buffer, the in-place concat real engines use (batch 1 keeps them
         * contiguous) */
        E2E_TNN(tnn_conv2d(&ca.p, &itemd, y, ca.weight, ca.bias, &ad, cat));
        E2E_TNN(tnn_conv2d(&cb.p, &itemd, y + 8 * HW, cb.weight, cb.bias, &bd, cat + CA * HW));
        /* ... then read as a whole */
        E2E_TNN(tnn_conv2d(&cc.p, &catd, cat, cc.weight, cc.bias, &sd, s));
        /* (b) a split: relu in place on the first half, conv on the (untouched) second half */
        E2E_TNN(tnn_relu(&halfd, s, s));
        E2E_TNN(tnn_conv2d(&cd.p, &halfd, s + 4 * HW, cd.weight, cd.bias, &halfd, d));
        E2E_TNN(tnn_add(&halfd, s, d, e));
        E2E_TNN(tnn_global_avg_pool(&halfd, e, g));
        /* (d) an n x c fully-connected output read by softmax as n x c x 1 x 1 */
        E2E_TNN(tnn_fully_connected(&gd, g, fc_w, fc_b, CLASSES, logits));
        E2E_TNN(tnn_softmax(&pd, logits, prob));
    }

    const float *outs[] = {prob};
    const size_t outn[] = {CLASSES};
    e2e_write_output(&args, 1, outs, outn);
    e2e_summary("views", 0, prob, CLASSES);
    return 0;
}
