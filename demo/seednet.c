/* SPDX-License-Identifier: MIT */
/* seednet: the reference notebook's last network, y = conv2(relu(conv1(x)) + conv_right(x)), on tinynn. */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const prog = "seednet";

enum { IN_C = 3, MID_C = 3, OUT_C = 1, SIDE = 3 };

struct conv1x1 {
    int32_t in_c, out_c;
    float *weight, *bias;
};

static void conv_init(struct conv1x1 *l, int32_t in_c, int32_t out_c, struct demo_rng *rng)
{
    /* PyTorch's default Conv2d init range: ±1/sqrt(fan_in). */
    const float bound = 1.0f / sqrtf((float)in_c);

    l->in_c = in_c;
    l->out_c = out_c;
    l->weight = demo_alloc(prog, (size_t)(in_c * out_c));
    l->bias = demo_alloc(prog, (size_t)out_c);
    for (int32_t i = 0; i < in_c * out_c; i++)
        l->weight[i] = demo_uniform(rng, -bound, bound);
    for (int32_t i = 0; i < out_c; i++)
        l->bias[i] = demo_uniform(rng, -bound, bound);
}

static void conv(const struct conv1x1 *l, const tnn_dims *in_dims, const float *in, tnn_dims *out_dims,
                 float *out)
{
    const tnn_conv2d_params p = {
        .kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1, .dilation_w = 1,
        .groups = 1,
    };

    *out_dims = (tnn_dims){in_dims->n, l->out_c, in_dims->h, in_dims->w};
    DEMO_TRY(tnn_conv2d, &p, in_dims, in, l->weight, l->bias, out_dims, out);
}

int main(int argc, char **argv)
{
    struct demo_opts opts;
    struct demo_rng rng;
    struct conv1x1 conv_right, conv1, conv2;

    demo_parse(prog, argc, argv, false, &opts);

    const tnn_dims in_dims = {(int32_t)opts.batch, IN_C, SIDE, SIDE};
    const size_t in_count = (size_t)opts.batch * IN_C * SIDE * SIDE;
    const size_t mid_count = (size_t)opts.batch * MID_C * SIDE * SIDE;
    float *source = demo_alloc(prog, in_count), *x = demo_alloc(prog, in_count);
    float *r = demo_alloc(prog, mid_count), *t = demo_alloc(prog, mid_count);
    float *y = demo_alloc(prog, (size_t)opts.batch * OUT_C * SIDE * SIDE);
    tnn_dims r_dims, t_dims, y_dims = {0, 0, 0, 0};

    if (opts.in_path) {
        demo_read_input(prog, opts.in_path, source, in_count);
    } else {
        for (size_t i = 0; i < in_count; i++)
            source[i] = 0.55f;
    }
    demo_rng_seed(&rng, 31);
    conv_init(&conv_right, IN_C, MID_C, &rng);
    conv_init(&conv1, IN_C, MID_C, &rng);
    conv_init(&conv2, MID_C, OUT_C, &rng);

    for (long run = 0; run < opts.runs; run++) {
        demo_refill(x, source, in_count);
        conv(&conv_right, &in_dims, x, &r_dims, r);
        conv(&conv1, &in_dims, x, &t_dims, t);
        DEMO_TRY(tnn_relu, &t_dims, t, t);
        DEMO_TRY(tnn_add, &t_dims, t, r, t);
        conv(&conv2, &t_dims, t, &y_dims, y);
    }

    const size_t out_count = (size_t)y_dims.n * (size_t)y_dims.c * (size_t)y_dims.h * (size_t)y_dims.w;
    double sum = 0.0;
    for (size_t i = 0; i < out_count; i++)
        sum += y[i];
    printf("output %dx%dx%dx%d sum %.6f\n", y_dims.n, y_dims.c, y_dims.h, y_dims.w, sum);
    for (size_t i = 0; i < out_count && i < 9; i++)
        printf("%s%.6f", i ? " " : "", y[i]);
    printf("\n");
    if (opts.out_path)
        demo_write_output(prog, opts.out_path, y, out_count);

    free(conv2.weight);
    free(conv2.bias);
    free(conv1.weight);
    free(conv1.bias);
    free(conv_right.weight);
    free(conv_right.bias);
    free(y);
    free(t);
    free(r);
    free(x);
    free(source);
    return 0;
}
