/* SPDX-License-Identifier: MIT */
/* Unit tests of the tinynn demo library: hand-computed values, a reference convolution, argument checks. */
#include "unit.h"
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinynn.h"

#ifdef __SANITIZE_ADDRESS__
/* The ENOMEM test asks for an impossible allocation: ASan must return NULL rather than abort. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

#define SENTINEL 12345.5f

static void assert_floats(const float *got, const float *want, size_t count, float tol)
{
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol, "element %zu: got %.9g, want %.9g", i,
                      (double)got[i], (double)want[i]);
}

static void fill_sentinel(float *p, size_t count)
{
    for (size_t i = 0; i < count; i++)
        p[i] = SENTINEL;
}

static void assert_sentinel(const float *p, size_t count)
{
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(p[i] == SENTINEL, "element %zu was written", i);
}

static tnn_conv2d_params conv_params(int32_t kernel, int32_t stride, int32_t pad, int32_t dilation,
                                     int32_t groups)
{
    return (tnn_conv2d_params){kernel, kernel, stride, stride, pad, pad, pad, pad, dilation, dilation, groups};
}

/* 1 2 3 / 4 5 6 / 7 8 9 */
static const float nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float ones9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};

START_TEST(conv_pad_bias)
{
    const tnn_conv2d_params p = conv_params(3, 1, 1, 1, 1);
    const tnn_dims in = {1, 1, 3, 3}, out = {1, 1, 3, 3};
    const float bias = 0.5f;
    /* Sums of the 3×3 neighbourhoods, zero padding outside, plus the bias. */
    const float want[9] = {12.5f, 21.5f, 16.5f, 27.5f, 45.5f, 33.5f, 24.5f, 39.5f, 28.5f};
    float y[9];

    ck_assert_int_eq(tnn_conv2d(&p, &in, nine, ones9, &bias, &out, y), TNN_OK);
    assert_floats(y, want, 9, 0.0f);
}
END_TEST

START_TEST(conv_is_correlation)
{
    const tnn_conv2d_params p = conv_params(3, 1, 0, 1, 1);
    const tnn_dims in = {1, 1, 3, 3}, out = {1, 1, 1, 1};
    float y[1];

    /* Not flipped: 1·1 + 2·2 + … + 9·9. */
    ck_assert_int_eq(tnn_conv2d(&p, &in, nine, nine, NULL, &out, y), TNN_OK);
    ck_assert_float_eq(y[0], 285.0f);
}
END_TEST

START_TEST(conv_stride)
{
    const tnn_conv2d_params p = conv_params(3, 2, 1, 1, 1);
    const tnn_dims in = {1, 1, 3, 3}, out = {1, 1, 2, 2};
    const float want[4] = {12, 16, 24, 28};
    float y[4];

    ck_assert_int_eq(tnn_conv2d(&p, &in, nine, ones9, NULL, &out, y), TNN_OK);
    assert_floats(y, want, 4, 0.0f);
}
END_TEST

START_TEST(conv_dilation)
{
    const tnn_conv2d_params p = conv_params(3, 1, 0, 2, 1);
    const tnn_dims in = {1, 1, 5, 5}, out = {1, 1, 1, 1};
    float x[25], y[1];

    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    /* Rows and columns 0, 2, 4: 0+2+4 + 10+12+14 + 20+22+24. */
    ck_assert_int_eq(tnn_conv2d(&p, &in, x, ones9, NULL, &out, y), TNN_OK);
    ck_assert_float_eq(y[0], 108.0f);
}
END_TEST

START_TEST(conv_asymmetric_pads)
{
    /* Pads top 1, left 0, bottom 0, right 2 around 1 2 / 3 4; 2×2 kernel of ones. */
    const tnn_conv2d_params p = {2, 2, 1, 1, 1, 0, 0, 2, 1, 1, 1};
    const tnn_dims in = {1, 1, 2, 2}, out = {1, 1, 2, 3};
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 1, 1};
    const float want[6] = {3, 2, 0, 10, 6, 0};
    float y[6];

    ck_assert_int_eq(tnn_conv2d(&p, &in, x, w, NULL, &out, y), TNN_OK);
    assert_floats(y, want, 6, 0.0f);
}
END_TEST

START_TEST(conv_groups)
{
    /* 4 input channels in 2 groups, 2 outputs: y0 = 1·x0 + 2·x1, y1 = 3·x2 + 4·x3, plus bias. */
    const tnn_conv2d_params p = conv_params(1, 1, 0, 1, 2);
    const tnn_dims in = {2, 4, 1, 2}, out = {2, 2, 1, 2};
    const float x[16] = {1, 2, 10, 20, 100, 200, 1000, 2000, /* batch 1: */ -1, -2, -3, -4, -5, -6, -7, -8};
    const float w[4] = {1, 2, 3, 4}, b[2] = {0.25f, -0.25f};
    const float want[8] = {21.25f, 42.25f, 4299.75f, 8599.75f, -6.75f, -9.75f, -43.25f, -50.25f};
    float y[8];

    ck_assert_int_eq(tnn_conv2d(&p, &in, x, w, b, &out, y), TNN_OK);
    assert_floats(y, want, 8, 0.0f);
}
END_TEST

START_TEST(conv_depthwise_padded)
{
    /* groups == channels, 3×3 stride 1 pad 1: each channel its own kernel (ones, then 2×ones). */
    const tnn_conv2d_params p = conv_params(3, 1, 1, 1, 2);
    const tnn_dims in = {1, 2, 3, 3}, out = {1, 2, 3, 3};
    float x[18], w[18], y[18];
    const float want[18] = {12, 21, 16, 27, 45, 33, 24, 39, 28, 24, 42, 32, 54, 90, 66, 48, 78, 56};

    for (int i = 0; i < 18; i++) {
        x[i] = nine[i % 9];
        w[i] = i < 9 ? 1.0f : 2.0f;
    }
    ck_assert_int_eq(tnn_conv2d(&p, &in, x, w, NULL, &out, y), TNN_OK);
    assert_floats(y, want, 18, 0.0f);
}
END_TEST

START_TEST(relu_in_place)
{
    const tnn_dims d = {1, 2, 1, 3};
    float x[6] = {-1, 0, 2, -0.5f, 3.5f, -7};
    const float want[6] = {0, 0, 2, 0, 3.5f, 0};
    float y[6];

    ck_assert_int_eq(tnn_relu(&d, x, y), TNN_OK);
    assert_floats(y, want, 6, 0.0f);
    ck_assert_int_eq(tnn_relu(&d, x, x), TNN_OK);
    assert_floats(x, want, 6, 0.0f);
}
END_TEST

START_TEST(add_aliasing)
{
    const tnn_dims d = {2, 1, 1, 2};
    float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40}, y[4];
    const float sum[4] = {11, 22, 33, 44};

    ck_assert_int_eq(tnn_add(&d, a, b, y), TNN_OK);
    assert_floats(y, sum, 4, 0.0f);
    ck_assert_int_eq(tnn_add(&d, a, b, a), TNN_OK);
    assert_floats(a, sum, 4, 0.0f);
    ck_assert_int_eq(tnn_add(&d, a, b, b), TNN_OK); /* b = (a + b) + b */
    const float twice[4] = {21, 42, 63, 84};
    assert_floats(b, twice, 4, 0.0f);
    ck_assert_int_eq(tnn_add(&d, a, a, a), TNN_OK);
    const float doubled[4] = {22, 44, 66, 88};
    assert_floats(a, doubled, 4, 0.0f);
}
END_TEST

START_TEST(batch_norm_values)
{
    const tnn_dims d = {2, 2, 1, 2};
    /* sqrt(var + eps) is 2 for channel 0 and 1 for channel 1. */
    const float scale[2] = {2, 0.5f}, bias[2] = {1, -1}, mean[2] = {2, 1}, var[2] = {3.75f, 0.75f};
    float x[8] = {1, 3, -2, 4, /* batch 1: */ 2, 6, 1, 0};
    const float want[8] = {0, 2, -2.5f, 0.5f, 1, 5, -1, -1.5f};
    float y[8];

    ck_assert_int_eq(tnn_batch_norm(&d, x, scale, bias, mean, var, 0.25f, y), TNN_OK);
    assert_floats(y, want, 8, 1e-6f);
    ck_assert_int_eq(tnn_batch_norm(&d, x, scale, bias, mean, var, 0.25f, x), TNN_OK);
    assert_floats(x, want, 8, 1e-6f);
}
END_TEST

START_TEST(max_pool_padding_never_wins)
{
    /* 4×4 of -1 … -16, 3×3 stride 2 pad 1: the padding would be 0, larger than every input. */
    const tnn_pool2d_params p = {3, 3, 2, 2, 1, 1, 1, 1};
    const tnn_dims in = {1, 1, 4, 4}, out = {1, 1, 2, 2};
    const float want[4] = {-1, -2, -5, -6};
    float x[16], y[4];

    for (int i = 0; i < 16; i++)
        x[i] = -(float)(i + 1);
    ck_assert_int_eq(tnn_max_pool2d(&p, &in, x, &out, y), TNN_OK);
    assert_floats(y, want, 4, 0.0f);
}
END_TEST

START_TEST(max_pool_values)
{
    /* 2×2 stride 2 on 1 2 3 / 4 5 6 / 7 8 9 with bottom/right pad 1: windows clipped at the border. */
    const tnn_pool2d_params p = {2, 2, 2, 2, 0, 0, 1, 1};
    const tnn_dims in = {1, 1, 3, 3}, out = {1, 1, 2, 2};
    const float want[4] = {5, 6, 8, 9};
    float y[4];

    ck_assert_int_eq(tnn_max_pool2d(&p, &in, nine, &out, y), TNN_OK);
    assert_floats(y, want, 4, 0.0f);
}
END_TEST

START_TEST(avg_pool_padding_not_counted)
{
    const tnn_pool2d_params p = {3, 3, 1, 1, 1, 1, 1, 1};
    const tnn_dims in = {1, 1, 3, 3}, out = {1, 1, 3, 3};
    /* Corners average 4 values, edges 6, the centre 9. */
    const float want[9] = {3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7};
    float y[9];

    ck_assert_int_eq(tnn_avg_pool2d(&p, &in, nine, &out, y), TNN_OK);
    assert_floats(y, want, 9, 1e-6f);
}
END_TEST

START_TEST(avg_pool_stride)
{
    /* 2×2 stride 2 without padding over a 2-channel 4×5 input (last column dropped by floor). */
    const tnn_pool2d_params p = {2, 2, 2, 2, 0, 0, 0, 0};
    const tnn_dims in = {1, 2, 4, 5}, out = {1, 2, 2, 2};
    float x[40], y[8];
    const float want[8] = {3, 5, 13, 15, 23, 25, 33, 35};

    for (int i = 0; i < 40; i++)
        x[i] = (float)i;
    ck_assert_int_eq(tnn_avg_pool2d(&p, &in, x, &out, y), TNN_OK);
    assert_floats(y, want, 8, 0.0f);
}
END_TEST

START_TEST(global_avg_pool_values)
{
    const tnn_dims in = {2, 2, 2, 2};
    const float x[16] = {1, 2, 3, 4, -1, -1, 5, 5, 0, 0, 0, 8, 2, 2, 2, 2};
    const float want[4] = {2.5f, 2, 2, 2};
    float y[4];

    ck_assert_int_eq(tnn_global_avg_pool(&in, x, y), TNN_OK);
    assert_floats(y, want, 4, 0.0f);
}
END_TEST

START_TEST(fully_connected_values)
{
    /* Batch 2, each item 2×1×2 flattened to k = 4; 3 outputs. */
    const tnn_dims in = {2, 2, 1, 2};
    const float x[8] = {1, 2, 3, 4, -1, 0, 1, 0.5f};
    const float w[12] = {1, 0, 0, 0, 0, 1, 1, 0, 1, -1, 2, -2};
    const float b[3] = {0.5f, -1, 0};
    const float want[6] = {1.5f, 4, -3, -0.5f, 0, 0};
    const float want_nobias[6] = {1, 5, -3, -1, 1, 0};
    float y[6];

    ck_assert_int_eq(tnn_fully_connected(&in, x, w, b, 3, y), TNN_OK);
    assert_floats(y, want, 6, 0.0f);
    ck_assert_int_eq(tnn_fully_connected(&in, x, w, NULL, 3, y), TNN_OK);
    assert_floats(y, want_nobias, 6, 0.0f);
}
END_TEST

START_TEST(softmax_values)
{
    /* Over c for each (n, h, w): position 0 holds 1 2 3, position 1 holds 1000 1001 1002. */
    const tnn_dims d = {2, 3, 1, 2};
    const float x[12] = {1, 1000, 2, 1001, 3, 1002, /* batch 1: */ 5, -1, 5, -1, 5, -1};
    const float e1 = 0.09003057f, e2 = 0.24472847f, e3 = 0.66524096f, third = 1.0f / 3.0f;
    const float want[12] = {e1, e1, e2, e2, e3, e3, third, third, third, third, third, third};
    float y[12];

    ck_assert_int_eq(tnn_softmax(&d, x, y), TNN_OK);
    assert_floats(y, want, 12, 1e-6f);
}
END_TEST

START_TEST(concat_values)
{
    const tnn_dims da = {2, 1, 1, 2}, db = {2, 2, 1, 2};
    const float a[4] = {1, 2, 3, 4}, b[8] = {5, 6, 7, 8, 9, 10, 11, 12};
    const tnn_dims *const dims[3] = {&da, &db, &da};
    const float *const in[3] = {a, b, a};
    const float want[16] = {1, 2, 5, 6, 7, 8, 1, 2, 3, 4, 9, 10, 11, 12, 3, 4};
    float y[16];

    ck_assert_int_eq(tnn_concat(3, dims, in, y), TNN_OK);
    assert_floats(y, want, 16, 0.0f);
}
END_TEST

/* Deterministic xorshift so failures reproduce. */
static uint32_t rng_state = 12345;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int32_t rnd_range(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static float rnd_float(void)
{
    return (float)(rnd() >> 8) * 0x1p-23f - 1.0f;
}

static float *rnd_tensor(size_t count)
{
    float *p = malloc(count * sizeof(float));

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < count; i++)
        p[i] = rnd_float();
    return p;
}

static size_t count_of(const tnn_dims *d)
{
    return (size_t)d->n * (size_t)d->c * (size_t)d->h * (size_t)d->w;
}

/* Direct loops in double; also the sum of |terms| of every output, to scale the tolerance. */
static void reference_conv(const tnn_conv2d_params *p, const tnn_dims *id, const float *x, const float *w,
                           const float *b, const tnn_dims *od, double *y, double *mag)
{
    const int32_t cg = id->c / p->groups, mg = od->c / p->groups;

    for (int32_t n = 0; n < od->n; n++)
        for (int32_t oc = 0; oc < od->c; oc++)
            for (int32_t oy = 0; oy < od->h; oy++)
                for (int32_t ox = 0; ox < od->w; ox++) {
                    const int32_t g = oc / mg;
                    double acc = b ? b[oc] : 0.0, abs = b ? fabs(b[oc]) : 0.0;
                    for (int32_t ic = 0; ic < cg; ic++)
                        for (int32_t ky = 0; ky < p->kernel_h; ky++)
                            for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                                const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                                const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                                if (iy < 0 || iy >= id->h || ix < 0 || ix >= id->w)
                                    continue;
                                const double t =
                                    (double)x[(((size_t)n * id->c + g * cg + ic) * id->h + iy) * id->w + ix] *
                                    w[(((size_t)oc * cg + ic) * p->kernel_h + ky) * p->kernel_w + kx];
                                acc += t;
                                abs += fabs(t);
                            }
                    const size_t o = (((size_t)n * od->c + oc) * od->h + oy) * od->w + ox;
                    y[o] = acc;
                    mag[o] = abs;
                }
}

static int32_t extent(int32_t in, int32_t k, int32_t s, int32_t p0, int32_t p1, int32_t d)
{
    return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

static void check_conv(const tnn_conv2d_params *p, const tnn_dims *id, int32_t out_c)
{
    const tnn_dims od = {id->n, out_c, extent(id->h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom, p->dilation_h),
                         extent(id->w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right, p->dilation_w)};
    const size_t wcount = (size_t)out_c * (size_t)(id->c / p->groups) * (size_t)p->kernel_h * (size_t)p->kernel_w;
    const size_t ocount = count_of(&od);
    float *x = rnd_tensor(count_of(id)), *w = rnd_tensor(wcount), *b = rnd_tensor((size_t)out_c);
    float *y = malloc(ocount * sizeof(float)), *y2 = malloc(ocount * sizeof(float));
    double *ref = malloc(ocount * sizeof(double)), *mag = malloc(ocount * sizeof(double));
    const bool with_bias = rnd() & 1;

    ck_assert(y && y2 && ref && mag);
    ck_assert_int_eq(tnn_conv2d(p, id, x, w, with_bias ? b : NULL, &od, y), TNN_OK);
    reference_conv(p, id, x, w, with_bias ? b : NULL, &od, ref, mag);
    for (size_t i = 0; i < ocount; i++)
        ck_assert_msg(fabs(y[i] - ref[i]) <= 1e-5 * mag[i] + 1e-6,
                      "in %dx%dx%dx%d out_c %d k %dx%d s %dx%d pads %d,%d,%d,%d d %dx%d g %d: "
                      "element %zu got %.9g want %.9g",
                      id->n, id->c, id->h, id->w, out_c, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
                      p->pad_top, p->pad_left, p->pad_bottom, p->pad_right, p->dilation_h, p->dilation_w,
                      p->groups, i, (double)y[i], ref[i]);
    /* Same input, same bytes. */
    ck_assert_int_eq(tnn_conv2d(p, id, x, w, with_bias ? b : NULL, &od, y2), TNN_OK);
    ck_assert_int_eq(memcmp(y, y2, ocount * sizeof(float)), 0);
    free(mag);
    free(ref);
    free(y2);
    free(y);
    free(b);
    free(w);
    free(x);
}

START_TEST(conv_matches_reference_random)
{
    rng_state = 12345;
    for (int iter = 0; iter < 150; iter++) {
        const int32_t groups = rnd_range(1, 3);
        tnn_conv2d_params p = {
            .kernel_h = rnd_range(1, 4), .kernel_w = rnd_range(1, 4),
            .stride_h = rnd_range(1, 3), .stride_w = rnd_range(1, 3),
            .pad_top = rnd_range(0, 2), .pad_left = rnd_range(0, 2),
            .pad_bottom = rnd_range(0, 2), .pad_right = rnd_range(0, 2),
            .dilation_h = rnd_range(1, 2), .dilation_w = rnd_range(1, 2), .groups = groups,
        };
        if (iter % 5 == 0) /* the 1×1 path that skips im2col */
            p = conv_params(1, 1, 0, 1, groups);
        const tnn_dims id = {rnd_range(1, 2), groups * rnd_range(1, 5), rnd_range(1, 13), rnd_range(1, 13)};
        if (extent(id.h, p.kernel_h, p.stride_h, p.pad_top, p.pad_bottom, p.dilation_h) < 1 ||
            extent(id.w, p.kernel_w, p.stride_w, p.pad_left, p.pad_right, p.dilation_w) < 1 ||
            id.h + p.pad_top + p.pad_bottom < (p.kernel_h - 1) * p.dilation_h + 1 ||
            id.w + p.pad_left + p.pad_right < (p.kernel_w - 1) * p.dilation_w + 1)
            continue;
        check_conv(&p, &id, groups * rnd_range(1, 9));
    }
}
END_TEST

START_TEST(conv_matches_reference_blocks)
{
    /* Shapes that cross the GEMM's cache blocks: k > 256, m > 120, n > 4096, and odd edges everywhere. */
    const tnn_conv2d_params k3 = conv_params(3, 1, 1, 1, 1), k1 = conv_params(1, 1, 0, 1, 1);
    const tnn_conv2d_params k3s2 = conv_params(3, 2, 1, 1, 1);
    const tnn_dims deep = {1, 61, 7, 9}, wide = {1, 3, 61, 71}, batch = {3, 5, 9, 7};

    rng_state = 777;
    check_conv(&k3, &deep, 131);
    check_conv(&k1, &wide, 13);
    check_conv(&k3s2, &deep, 7);
    check_conv(&k3, &batch, 11);
}
END_TEST

START_TEST(fully_connected_matches_reference)
{
    const tnn_dims in = {3, 37, 3, 3};
    const int32_t of = 19;
    const size_t k = 37 * 9;
    float *x = rnd_tensor(3 * k), *w = rnd_tensor(of * k), *b = rnd_tensor(of), y[3 * 19];

    ck_assert_int_eq(tnn_fully_connected(&in, x, w, b, of, y), TNN_OK);
    for (size_t n = 0; n < 3; n++)
        for (size_t j = 0; j < (size_t)of; j++) {
            double acc = b[j], mag = fabs(b[j]);
            for (size_t p = 0; p < k; p++) {
                acc += (double)x[n * k + p] * w[j * k + p];
                mag += fabs((double)x[n * k + p] * w[j * k + p]);
            }
            ck_assert_msg(fabs(y[n * of + j] - acc) <= 1e-5 * mag, "(%zu, %zu): got %.9g want %.9g", n, j,
                          (double)y[n * of + j], acc);
        }
    free(b);
    free(w);
    free(x);
}
END_TEST

enum { BIG = 1 << 30 };

START_TEST(conv_einval)
{
    const tnn_conv2d_params ok = conv_params(3, 1, 1, 1, 1);
    const tnn_dims in = {1, 2, 3, 3}, out = {1, 2, 3, 3};
    float x[18] = {0}, w[36] = {0}, b[2] = {0}, y[18];
    tnn_conv2d_params p;
    tnn_dims d;

#define EXPECT_EINVAL(call)                                                                        \
    do {                                                                                           \
        fill_sentinel(y, 18);                                                                      \
        ck_assert_int_eq((call), TNN_EINVAL);                                                      \
        assert_sentinel(y, 18);                                                                    \
    } while (0)

    EXPECT_EINVAL(tnn_conv2d(NULL, &in, x, w, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, NULL, x, w, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, NULL, w, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, NULL, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, w, b, NULL, y));
    ck_assert_int_eq(tnn_conv2d(&ok, &in, x, w, b, &out, NULL), TNN_EINVAL);

    p = ok, p.kernel_h = 0;
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
    p = ok, p.stride_w = 0;
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
    p = ok, p.dilation_h = -1;
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
    p = ok, p.groups = 0;
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
    p = ok, p.pad_right = -1;
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
    p = ok, p.groups = 3; /* 2 channels are not divisible by 3 */
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
    p = conv_params(3, 1, 1, 1, 2);
    d = (tnn_dims){1, 3, 3, 3}; /* out channels not divisible by the groups */
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &d, y));

    d = out, d.h = 2; /* inconsistent with kernel, stride and pads */
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, w, b, &d, y));
    d = out, d.w = 4;
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, w, b, &d, y));
    d = out, d.n = 2;
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, w, b, &d, y));
    d = out, d.c = 0;
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, w, b, &d, y));
    p = conv_params(5, 1, 0, 1, 1); /* kernel larger than the input */
    d = (tnn_dims){1, 2, 1, 1};
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &d, y));
    d = (tnn_dims){1, 2, 0, 0};
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &d, y));

    /* Overlap of out with the input, the weight or the bias, even partial. */
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, y, w, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, y + 17, w, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, y, b, &out, y));
    EXPECT_EINVAL(tnn_conv2d(&ok, &in, x, w, y + 17, &out, y));

    /* Huge dims: overflow must be caught, nothing touched. */
    const tnn_dims huge = {BIG, BIG, BIG, BIG};
    p = conv_params(1, 1, 0, 1, 1);
    EXPECT_EINVAL(tnn_conv2d(&p, &huge, x, w, b, &huge, y));
    d = (tnn_dims){1, BIG, BIG, BIG};
    EXPECT_EINVAL(tnn_conv2d(&p, &d, x, w, b, &d, y));
    p = (tnn_conv2d_params){BIG, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}; /* 2^61 weights */
    d = (tnn_dims){1, 2, BIG, 1};
    {
        const tnn_dims o = {1, BIG, 1, 1};
        EXPECT_EINVAL(tnn_conv2d(&p, &d, x, w, b, &o, y));
    }
    p = conv_params(3, INT32_MAX, INT32_MAX, INT32_MAX, 1);
    EXPECT_EINVAL(tnn_conv2d(&p, &in, x, w, b, &out, y));
#undef EXPECT_EINVAL
}
END_TEST

START_TEST(conv_enomem)
{
    /*
     * A 1×1 kernel on one pixel with 2^29 of padding on every side: a valid call whose im2col buffer
     * (2^60 floats) cannot be allocated. The input and weight addresses are below out and never read.
     */
    const int32_t pad = 1 << 29;
    const tnn_conv2d_params p = {1, 1, 1, 1, pad, pad, pad, pad, 1, 1, 1};
    const tnn_dims in = {1, 1, 1, 1}, out = {1, 1, 2 * pad + 1, 2 * pad + 1};
    const float *x = (const float *)(uintptr_t)64, *w = (const float *)(uintptr_t)128;
    float y[16];

    fill_sentinel(y, 16);
    ck_assert_int_eq(tnn_conv2d(&p, &in, x, w, NULL, &out, y), TNN_ENOMEM);
    assert_sentinel(y, 16);
}
END_TEST

START_TEST(elementwise_einval)
{
    const tnn_dims d = {1, 2, 2, 2}, huge = {BIG, BIG, BIG, BIG}, big = {BIG, BIG, 4, 1};
    const tnn_dims bad[] = {{0, 2, 2, 2}, {1, -2, 2, 2}, {1, 2, 0, 2}, {1, 2, 2, INT32_MIN}, huge, big};
    float a[8] = {0}, b[8] = {0}, y[8];
    float p[4] = {1, 1, 1, 1}, p8[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    float buf[24];

#define EXPECT_EINVAL(call)                                                                        \
    do {                                                                                           \
        fill_sentinel(y, 8);                                                                       \
        ck_assert_int_eq((call), TNN_EINVAL);                                                      \
        assert_sentinel(y, 8);                                                                     \
    } while (0)

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EXPECT_EINVAL(tnn_relu(&bad[i], a, y));
        EXPECT_EINVAL(tnn_add(&bad[i], a, b, y));
        EXPECT_EINVAL(tnn_batch_norm(&bad[i], a, p, p, p, p, 1e-5f, y));
        EXPECT_EINVAL(tnn_softmax(&bad[i], a, y));
        EXPECT_EINVAL(tnn_global_avg_pool(&bad[i], a, y));
        EXPECT_EINVAL(tnn_fully_connected(&bad[i], a, b, NULL, 1, y));
    }

    EXPECT_EINVAL(tnn_relu(NULL, a, y));
    EXPECT_EINVAL(tnn_relu(&d, NULL, y));
    ck_assert_int_eq(tnn_relu(&d, a, NULL), TNN_EINVAL);
    EXPECT_EINVAL(tnn_add(NULL, a, b, y));
    EXPECT_EINVAL(tnn_add(&d, NULL, b, y));
    EXPECT_EINVAL(tnn_add(&d, a, NULL, y));
    EXPECT_EINVAL(tnn_batch_norm(NULL, a, p, p, p, p, 1e-5f, y));
    EXPECT_EINVAL(tnn_batch_norm(&d, NULL, p, p, p, p, 1e-5f, y));
    EXPECT_EINVAL(tnn_batch_norm(&d, a, NULL, p, p, p, 1e-5f, y));
    EXPECT_EINVAL(tnn_batch_norm(&d, a, p, NULL, p, p, 1e-5f, y));
    EXPECT_EINVAL(tnn_batch_norm(&d, a, p, p, NULL, p, 1e-5f, y));
    EXPECT_EINVAL(tnn_batch_norm(&d, a, p, p, p, NULL, 1e-5f, y));
    EXPECT_EINVAL(tnn_softmax(NULL, a, y));
    EXPECT_EINVAL(tnn_softmax(&d, NULL, y));
    EXPECT_EINVAL(tnn_global_avg_pool(NULL, a, y));
    EXPECT_EINVAL(tnn_global_avg_pool(&d, NULL, y));
    EXPECT_EINVAL(tnn_fully_connected(NULL, a, b, NULL, 1, y));
    EXPECT_EINVAL(tnn_fully_connected(&d, NULL, b, NULL, 1, y));
    EXPECT_EINVAL(tnn_fully_connected(&d, a, NULL, NULL, 1, y));
    EXPECT_EINVAL(tnn_fully_connected(&d, a, b, NULL, 0, y));
    EXPECT_EINVAL(tnn_fully_connected(&d, a, b, NULL, -3, y));
    EXPECT_EINVAL(tnn_fully_connected(&(tnn_dims){1, BIG, 4, 1}, a, b, NULL, BIG, y)); /* weight */
#undef EXPECT_EINVAL

    /* Overlap: out may be exactly an allowed input, nothing else; buf is the whole arena. */
    const tnn_dims one = {1, 1, 1, 8}, c8 = {1, 8, 1, 1};
    float before[24];
#define EXPECT_UNTOUCHED(call)                                                                     \
    do {                                                                                           \
        for (int i_ = 0; i_ < 24; i_++)                                                            \
            buf[i_] = before[i_] = (float)i_ - 11.5f;                                              \
        ck_assert_int_eq((call), TNN_EINVAL);                                                      \
        ck_assert_int_eq(memcmp(buf, before, sizeof(buf)), 0);                                     \
    } while (0)

    EXPECT_UNTOUCHED(tnn_relu(&one, buf, buf + 1));
    EXPECT_UNTOUCHED(tnn_relu(&one, buf + 7, buf));
    EXPECT_UNTOUCHED(tnn_add(&one, buf, buf + 8, buf + 4));
    EXPECT_UNTOUCHED(tnn_add(&one, buf, buf + 4, buf));      /* out == a, but b overlaps it */
    EXPECT_UNTOUCHED(tnn_add(&one, buf + 16, buf + 8, buf + 9));
    EXPECT_UNTOUCHED(tnn_batch_norm(&one, buf, p8, p8, p8, p8, 1e-5f, buf + 1));
    EXPECT_UNTOUCHED(tnn_batch_norm(&c8, buf, buf + 4, p8, p8, p8, 1e-5f, buf)); /* out == in, scale */
    EXPECT_UNTOUCHED(tnn_batch_norm(&c8, buf, p8, buf + 8, p8, p8, 1e-5f, buf + 8));
    EXPECT_UNTOUCHED(tnn_batch_norm(&c8, buf, p8, p8, buf + 15, p8, 1e-5f, buf + 8));
    EXPECT_UNTOUCHED(tnn_batch_norm(&c8, buf, p8, p8, p8, buf + 4, 1e-5f, buf + 8));
    EXPECT_UNTOUCHED(tnn_softmax(&one, buf, buf));
    EXPECT_UNTOUCHED(tnn_softmax(&one, buf, buf + 7));
    EXPECT_UNTOUCHED(tnn_global_avg_pool(&one, buf, buf + 7));
    EXPECT_UNTOUCHED(tnn_fully_connected(&one, buf, buf + 8, NULL, 1, buf + 8));
    EXPECT_UNTOUCHED(tnn_fully_connected(&one, buf, buf + 8, buf + 16, 2, buf + 17));
    EXPECT_UNTOUCHED(tnn_fully_connected(&one, buf, buf + 8, NULL, 1, buf + 7));
#undef EXPECT_UNTOUCHED

    /* The allowed aliasing still works. */
    ck_assert_int_eq(tnn_relu(&one, buf, buf), TNN_OK);
    ck_assert_int_eq(tnn_add(&one, buf, buf + 8, buf + 8), TNN_OK);
    ck_assert_int_eq(tnn_batch_norm(&c8, buf, buf + 8, buf + 8, buf + 8, buf + 16, 0.0f, buf), TNN_OK);
}
END_TEST

START_TEST(pool_einval)
{
    const tnn_pool2d_params ok = {3, 3, 2, 2, 1, 1, 1, 1};
    const tnn_dims in = {1, 1, 4, 4}, out = {1, 1, 2, 2};
    float x[16] = {0}, y[4];
    tnn_pool2d_params p;
    tnn_dims d;
    tnn_status (*const fns[2])(const tnn_pool2d_params *, const tnn_dims *, const float *,
                               const tnn_dims *, float *) = {tnn_max_pool2d, tnn_avg_pool2d};

    for (int f = 0; f < 2; f++) {
#define EXPECT_EINVAL(...)                                                                         \
    do {                                                                                           \
        fill_sentinel(y, 4);                                                                       \
        ck_assert_int_eq(fns[f](__VA_ARGS__), TNN_EINVAL);                                         \
        assert_sentinel(y, 4);                                                                     \
    } while (0)
        EXPECT_EINVAL(NULL, &in, x, &out, y);
        EXPECT_EINVAL(&ok, NULL, x, &out, y);
        EXPECT_EINVAL(&ok, &in, NULL, &out, y);
        EXPECT_EINVAL(&ok, &in, x, NULL, y);
        ck_assert_int_eq(fns[f](&ok, &in, x, &out, NULL), TNN_EINVAL);

        p = ok, p.kernel_w = 0;
        EXPECT_EINVAL(&p, &in, x, &out, y);
        p = ok, p.stride_h = -2;
        EXPECT_EINVAL(&p, &in, x, &out, y);
        p = ok, p.pad_left = -1;
        EXPECT_EINVAL(&p, &in, x, &out, y);
        /* A pad not smaller than the kernel on its axis, each side in turn. */
        const tnn_pool2d_params pads[4] = {
            {2, 2, 2, 2, 2, 0, 0, 0}, {2, 2, 2, 2, 0, 2, 0, 0}, {2, 2, 2, 2, 0, 0, 2, 0}, {2, 2, 2, 2, 0, 0, 0, 2},
        };
        for (int i = 0; i < 4; i++) {
            d = (tnn_dims){1, 1, pads[i].pad_top || pads[i].pad_bottom ? 3 : 2,
                           pads[i].pad_left || pads[i].pad_right ? 3 : 2};
            EXPECT_EINVAL(&pads[i], &in, x, &d, y);
        }
        /* Pads smaller on their own axis but not on the other: kernel 1×3 with top/bottom pad 1. */
        p = (tnn_pool2d_params){1, 3, 1, 1, 1, 0, 0, 0};
        d = (tnn_dims){1, 1, 5, 2};
        EXPECT_EINVAL(&p, &in, x, &d, y);

        d = out, d.h = 3;
        EXPECT_EINVAL(&ok, &in, x, &d, y);
        d = out, d.c = 2;
        EXPECT_EINVAL(&ok, &in, x, &d, y);
        d = out, d.n = 2;
        EXPECT_EINVAL(&ok, &in, x, &d, y);
        p = (tnn_pool2d_params){5, 5, 1, 1, 0, 0, 0, 0}; /* window larger than the input */
        d = (tnn_dims){1, 1, 0, 0};
        EXPECT_EINVAL(&p, &in, x, &d, y);
        d = (tnn_dims){1, 1, 1, 1};
        EXPECT_EINVAL(&p, &in, x, &d, y);

        const tnn_dims huge = {BIG, BIG, BIG, BIG}, hout = {BIG, BIG, BIG / 2, BIG / 2};
        EXPECT_EINVAL(&ok, &huge, x, &hout, y);
        const tnn_pool2d_params one = {1, 1, 1, 1, 0, 0, 0, 0};
        EXPECT_EINVAL(&one, &huge, x, &huge, y);

        /* out overlapping in */
        float buf[20];
        fill_sentinel(buf, 20);
        ck_assert_int_eq(fns[f](&ok, &in, buf, &out, buf + 14), TNN_EINVAL);
        ck_assert_int_eq(fns[f](&ok, &in, buf + 3, &out, buf), TNN_EINVAL);
        ck_assert_int_eq(fns[f](&one, &in, buf, &in, buf), TNN_EINVAL);
        assert_sentinel(buf, 20);
#undef EXPECT_EINVAL
    }
}
END_TEST

START_TEST(concat_einval)
{
    const tnn_dims da = {2, 1, 1, 2}, db = {2, 2, 1, 2}, dn = {1, 2, 1, 2}, dh = {2, 2, 2, 1};
    const tnn_dims dw = {2, 2, 1, 3}, dz = {2, 0, 1, 2}, huge = {BIG, BIG, BIG, BIG};
    const tnn_dims dc = {1, INT32_MAX, 1, 1}, dc2 = {1, 2, 1, 1};
    const float a[4] = {0}, b[8] = {0};
    float y[12];
    const tnn_dims *dims[2] = {&da, &db};
    const float *in[2] = {a, b};

#define EXPECT_EINVAL(call)                                                                        \
    do {                                                                                           \
        fill_sentinel(y, 12);                                                                      \
        ck_assert_int_eq((call), TNN_EINVAL);                                                      \
        assert_sentinel(y, 12);                                                                    \
    } while (0)

    EXPECT_EINVAL(tnn_concat(0, dims, in, y));
    EXPECT_EINVAL(tnn_concat(-1, dims, in, y));
    EXPECT_EINVAL(tnn_concat(2, NULL, in, y));
    EXPECT_EINVAL(tnn_concat(2, dims, NULL, y));
    ck_assert_int_eq(tnn_concat(2, dims, in, NULL), TNN_EINVAL);
    in[1] = NULL;
    EXPECT_EINVAL(tnn_concat(2, dims, in, y));
    in[1] = b;
    dims[1] = NULL;
    EXPECT_EINVAL(tnn_concat(2, dims, in, y));
    const tnn_dims *const mismatched[] = {&dn, &dh, &dw, &dz, &huge};
    for (size_t i = 0; i < sizeof(mismatched) / sizeof(mismatched[0]); i++) {
        dims[1] = mismatched[i];
        EXPECT_EINVAL(tnn_concat(2, dims, in, y));
    }
    /* The output's channels would not fit in a tnn_dims. */
    dims[0] = &dc;
    dims[1] = &dc2;
    EXPECT_EINVAL(tnn_concat(2, dims, in, y));
#undef EXPECT_EINVAL

    /* out overlapping any input */
    float buf[16];
    fill_sentinel(buf, 16);
    dims[0] = &da;
    dims[1] = &db;
    in[0] = buf;
    in[1] = buf + 4;
    ck_assert_int_eq(tnn_concat(2, dims, in, buf + 4), TNN_EINVAL);
    in[1] = b;
    ck_assert_int_eq(tnn_concat(2, dims, in, buf + 3), TNN_EINVAL);
    ck_assert_int_eq(tnn_concat(2, dims, in, buf), TNN_EINVAL);
    assert_sentinel(buf, 16);
}
END_TEST

static Suite *tinynn_suite(void)
{
    Suite *s = suite_create("tinynn");
    TCase *values = tcase_create("values"), *random = tcase_create("reference"),
          *einval = tcase_create("einval");

    tcase_add_test(values, conv_pad_bias);
    tcase_add_test(values, conv_is_correlation);
    tcase_add_test(values, conv_stride);
    tcase_add_test(values, conv_dilation);
    tcase_add_test(values, conv_asymmetric_pads);
    tcase_add_test(values, conv_groups);
    tcase_add_test(values, conv_depthwise_padded);
    tcase_add_test(values, relu_in_place);
    tcase_add_test(values, add_aliasing);
    tcase_add_test(values, batch_norm_values);
    tcase_add_test(values, max_pool_padding_never_wins);
    tcase_add_test(values, max_pool_values);
    tcase_add_test(values, avg_pool_padding_not_counted);
    tcase_add_test(values, avg_pool_stride);
    tcase_add_test(values, global_avg_pool_values);
    tcase_add_test(values, fully_connected_values);
    tcase_add_test(values, softmax_values);
    tcase_add_test(values, concat_values);
    suite_add_tcase(s, values);

    tcase_add_test(random, conv_matches_reference_random);
    tcase_add_test(random, conv_matches_reference_blocks);
    tcase_add_test(random, fully_connected_matches_reference);
    tcase_set_timeout(random, 120);
    suite_add_tcase(s, random);

    tcase_add_test(einval, conv_einval);
    tcase_add_test(einval, conv_enomem);
    tcase_add_test(einval, elementwise_einval);
    tcase_add_test(einval, pool_einval);
    tcase_add_test(einval, concat_einval);
    suite_add_tcase(s, einval);
    return s;
}

int main(void)
{
    return unit_run(tinynn_suite());
}
