/* SPDX-License-Identifier: MIT */
/* e2e app: shared weights, in-place ops, free + malloc address reuse, two graph outputs. */
#include <stdlib.h>

#include "e2e-app.h"

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims xd = {1, 4, 16, 16};
    const tnn_dims pd = {1, 4, 8, 8};
    const tnn_pool2d_params mp = e2e_pool(2, 2, 0);
    struct e2e_conv_layer cw, cv;
    struct e2e_bn bn;

    e2e_parse_args(argc, argv, &args);
    e2e_rng_seed(&rng, 2002);
    e2e_conv_init(&cw, &rng, e2e_conv(3, 1, 1, 1, 1), 4, 4, 1);
    e2e_conv_init(&cv, &rng, e2e_conv(1, 1, 0, 1, 1), 4, 4, 1);
    e2e_bn_init(&bn, &rng, 4);

    const size_t n = e2e_count(&xd);
    float *x = e2e_alloc(n), *a = e2e_alloc(n), *o1 = e2e_alloc(e2e_count(&pd));
    float *o2 = e2e_alloc(n);
    float *c = NULL;
    float *staged = e2e_load_input(&args, 1, &n);

    for (int run = 0; run < args.runs; run++) {
        float *b = malloc(n * sizeof *b);

        if (!b)
            return 1;
        e2e_fill(staged, 1, &x, &n);
        E2E_TNN(tnn_conv2d(&cw.p, &xd, x, cw.weight, cw.bias, &xd, a));
        E2E_TNN(tnn_relu(&xd, a, a));
        /* the same weight pointer again, on a value this pass wrote: not a new pass */
        E2E_TNN(tnn_conv2d(&cw.p, &xd, a, cw.weight, cw.bias, &xd, b));
        E2E_TNN(tnn_batch_norm(&xd, b, bn.scale, bn.bias, bn.mean, bn.var, 1e-3f, b));
        E2E_TNN(tnn_add(&xd, a, b, a)); /* out = a */
        E2E_TNN(tnn_max_pool2d(&mp, &xd, a, &pd, o1)); /* output 0: never read */
        /* b dies; the allocator usually hands the same block back for c */
        free(b);
        c = malloc(n * sizeof *c);
        if (!c)
            return 1;
        E2E_TNN(tnn_conv2d(&cv.p, &xd, a, cv.weight, cv.bias, &xd, c));
        E2E_TNN(tnn_add(&xd, a, c, c)); /* out = b operand */
        E2E_TNN(tnn_relu(&xd, c, o2)); /* output 1 */
        free(c);
    }

    const float *outs[] = {o1, o2};
    const size_t outn[] = {e2e_count(&pd), n};
    e2e_write_output(&args, 2, outs, outn);
    e2e_summary("shared", 0, o1, outn[0]);
    e2e_summary("shared", 1, o2, outn[1]);
    return 0;
}
