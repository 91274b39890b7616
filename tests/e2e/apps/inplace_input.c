/* SPDX-License-Identifier: MIT */
/* e2e app: the first layer runs in place on the input buffer, as engines that own their input do:
 * once the call returns, the input's bytes are gone (test data cannot hold them). */
#include "e2e-app.h"

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims xd = {1, 3, 8, 8}, yd = {1, 4, 8, 8};
    struct e2e_conv_layer conv;

    e2e_parse_args(argc, argv, &args);
    e2e_rng_seed(&rng, 5005);
    e2e_conv_init(&conv, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);

    const size_t n = e2e_count(&xd);
    float *x = e2e_alloc(n), *y = e2e_alloc(e2e_count(&yd));
    float *staged = e2e_load_input(&args, 1, &n);

    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 1, &x, &n);
        E2E_TNN(tnn_relu(&xd, x, x));
        E2E_TNN(tnn_conv2d(&conv.p, &xd, x, conv.weight, conv.bias, &yd, y));
    }

    const float *outs[] = {y};
    const size_t outn[] = {e2e_count(&yd)};
    e2e_write_output(&args, 1, outs, outn);
    e2e_summary("inplace_input", 0, y, outn[0]);
    return 0;
}
