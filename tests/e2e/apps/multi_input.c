/* SPDX-License-Identifier: MIT */
/* e2e app: two graph inputs, named in first-read order (not allocation order), joined by add. */
#include "e2e-app.h"

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims ad = {1, 5, 16, 16}, bd = {1, 3, 16, 16}, yd = {1, 8, 16, 16};
    struct e2e_conv_layer conv_a, conv_b;

    e2e_parse_args(argc, argv, &args);
    e2e_rng_seed(&rng, 4004);
    e2e_conv_init(&conv_b, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 8, 1);
    e2e_conv_init(&conv_a, &rng, e2e_conv(3, 1, 1, 1, 1), 5, 8, 1);

    /* xa is allocated first but read second: it must become input_1 */
    float *xa = e2e_alloc(e2e_count(&ad)), *xb = e2e_alloc(e2e_count(&bd));
    float *ya = e2e_alloc(e2e_count(&yd)), *yb = e2e_alloc(e2e_count(&yd));
    float *out = e2e_alloc(e2e_count(&yd));
    float *const in[] = {xb, xa};
    const size_t inn[] = {e2e_count(&bd), e2e_count(&ad)};
    float *staged = e2e_load_input(&args, 2, inn);

    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 2, in, inn);
        E2E_TNN(tnn_conv2d(&conv_b.p, &bd, xb, conv_b.weight, conv_b.bias, &yd, yb));
        E2E_TNN(tnn_conv2d(&conv_a.p, &ad, xa, conv_a.weight, conv_a.bias, &yd, ya));
        E2E_TNN(tnn_add(&yd, yb, ya, out));
    }

    const float *outs[] = {out};
    const size_t outn[] = {e2e_count(&yd)};
    e2e_write_output(&args, 1, outs, outn);
    e2e_summary("multi_input", 0, out, outn[0]);
    return 0;
}
