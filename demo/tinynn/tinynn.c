/* SPDX-License-Identifier: MIT */
/* tinynn: argument validation and the layer functions of the demo host library. */
#include "tinynn.h"

#include "gemm.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TNN_API __attribute__((visibility("default")))

/* Largest element count of one tensor: its byte size, and so every index into it, fits in ptrdiff_t. */
#define MAX_ELEMS ((uint64_t)PTRDIFF_MAX / sizeof(float))

static bool mul_elems(uint64_t a, uint64_t b, uint64_t *r)
{
    if (b != 0 && a > MAX_ELEMS / b)
        return false;
    *r = a * b;
    return true;
}

static bool dims_count(const tnn_dims *d, size_t *count)
{
    uint64_t n;

    if (d->n <= 0 || d->c <= 0 || d->h <= 0 || d->w <= 0)
        return false;
    if (!mul_elems((uint64_t)d->n, (uint64_t)d->c, &n) || !mul_elems(n, (uint64_t)d->h, &n) ||
        !mul_elems(n, (uint64_t)d->w, &n))
        return false;
    *count = n;
    return true;
}

/* A usable range: not NULL and not wrapping around the address space (the overlap tests rely on it). */
static bool range_ok(const float *p, size_t count)
{
    return p && (uintptr_t)p <= UINTPTR_MAX - count * sizeof(float);
}

static bool disjoint(const float *out, size_t out_count, const float *p, size_t count)
{
    uintptr_t o = (uintptr_t)out, q = (uintptr_t)p;

    return o + out_count * sizeof(float) <= q || q + count * sizeof(float) <= o;
}

/* Output extent of a sliding window, or -1 when the window does not fit even once. */
static int64_t window_extent(int32_t in, int32_t kernel, int32_t stride, int32_t pad_before,
                             int32_t pad_after, int32_t dilation)
{
    int64_t span = (int64_t)(kernel - 1) * dilation + 1;
    int64_t room = (int64_t)in + pad_before + pad_after - span;

    return room < 0 ? -1 : room / stride + 1;
}

TNN_API tnn_status tnn_relu(const tnn_dims *dims, const float *in, float *out)
{
    size_t count;

    if (!dims || !dims_count(dims, &count) || !range_ok(in, count) || !range_ok(out, count) ||
        !(out == in || disjoint(out, count, in, count)))
        return TNN_EINVAL;
    for (size_t i = 0; i < count; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
    return TNN_OK;
}

TNN_API tnn_status tnn_add(const tnn_dims *dims, const float *a, const float *b, float *out)
{
    size_t count;

    if (!dims || !dims_count(dims, &count) || !range_ok(a, count) || !range_ok(b, count) ||
        !range_ok(out, count) || !(out == a || disjoint(out, count, a, count)) ||
        !(out == b || disjoint(out, count, b, count)))
        return TNN_EINVAL;
#ifdef TINYNN_CHANGED_ADD
    /* A variant for onnxhook's tests: another build of tnn_add, whose code the locator must not
     * take for the reference's (the same sums, last element first). */
    for (size_t i = count; i-- > 0;)
        out[i] = a[i] + b[i];
#else
    for (size_t i = 0; i < count; i++)
        out[i] = a[i] + b[i];
#endif
    return TNN_OK;
}

TNN_API tnn_status tnn_batch_norm(const tnn_dims *dims, const float *in, const float *scale,
                                  const float *bias, const float *mean, const float *var, float epsilon,
                                  float *out)
{
    size_t count, channels;

    if (!dims || !dims_count(dims, &count) || !range_ok(in, count) || !range_ok(out, count))
        return TNN_EINVAL;
    channels = (size_t)dims->c;
    if (!range_ok(scale, channels) || !range_ok(bias, channels) || !range_ok(mean, channels) ||
        !range_ok(var, channels) || !(out == in || disjoint(out, count, in, count)) ||
        !disjoint(out, count, scale, channels) || !disjoint(out, count, bias, channels) ||
        !disjoint(out, count, mean, channels) || !disjoint(out, count, var, channels))
        return TNN_EINVAL;

    size_t plane = (size_t)dims->h * (size_t)dims->w;
    for (size_t n = 0; n < (size_t)dims->n; n++) {
        for (size_t c = 0; c < channels; c++) {
            const float k = scale[c] / sqrtf(var[c] + epsilon), m = mean[c], b = bias[c];
            const float *x = in + (n * channels + c) * plane;
            float *y = out + (n * channels + c) * plane;
            for (size_t i = 0; i < plane; i++)
                y[i] = (x[i] - m) * k + b;
        }
    }
    return TNN_OK;
}

static bool pool_check(const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,
                       const tnn_dims *out_dims, const float *out)
{
    size_t in_count, out_count;

    if (!p || !in_dims || !out_dims)
        return false;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return false;
    /* A window made only of padding has no maximum and no average. */
    if (p->pad_top >= p->kernel_h || p->pad_bottom >= p->kernel_h || p->pad_left >= p->kernel_w ||
        p->pad_right >= p->kernel_w)
        return false;
    if (!dims_count(in_dims, &in_count) || !dims_count(out_dims, &out_count))
        return false;
    if (out_dims->n != in_dims->n || out_dims->c != in_dims->c ||
        out_dims->h != window_extent(in_dims->h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom, 1) ||
        out_dims->w != window_extent(in_dims->w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right, 1))
        return false;
    return range_ok(in, in_count) && range_ok(out, out_count) && disjoint(out, out_count, in, in_count);
}

/* The in-bounds part [*lo, *hi) of the window of output position o along one axis; never empty. */
static void pool_window(int64_t o, int32_t stride, int32_t pad, int32_t kernel, int32_t in,
                        int64_t *lo, int64_t *hi)
{
    int64_t start = o * stride - pad;

    *lo = start < 0 ? 0 : start;
    *hi = start + kernel > in ? in : start + kernel;
}

static void pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,
                   const tnn_dims *out_dims, float *out, bool max)
{
    const size_t planes = (size_t)in_dims->n * (size_t)in_dims->c;
    const size_t ih = (size_t)in_dims->h, iw = (size_t)in_dims->w;
    const size_t oh = (size_t)out_dims->h, ow = (size_t)out_dims->w;

    for (size_t pl = 0; pl < planes; pl++) {
        const float *x = in + pl * ih * iw;
        float *y = out + pl * oh * ow;
        for (size_t oy = 0; oy < oh; oy++) {
            int64_t y0, y1;
            pool_window((int64_t)oy, p->stride_h, p->pad_top, p->kernel_h, in_dims->h, &y0, &y1);
            for (size_t ox = 0; ox < ow; ox++) {
                int64_t x0, x1;
                pool_window((int64_t)ox, p->stride_w, p->pad_left, p->kernel_w, in_dims->w, &x0, &x1);
                float acc = max ? x[y0 * (int64_t)iw + x0] : 0.0f;
                for (int64_t iy = y0; iy < y1; iy++) {
                    const float *row = x + iy * (int64_t)iw;
                    for (int64_t ix = x0; ix < x1; ix++) {
                        if (!max)
                            acc += row[ix];
                        else if (row[ix] > acc)
                            acc = row[ix];
                    }
                }
                y[oy * ow + ox] = max ? acc : acc / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
}

TNN_API tnn_status tnn_max_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,
                                  const tnn_dims *out_dims, float *out)
{
    if (!pool_check(p, in_dims, in, out_dims, out))
        return TNN_EINVAL;
    pool2d(p, in_dims, in, out_dims, out, true);
    return TNN_OK;
}

TNN_API tnn_status tnn_avg_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,
                                  const tnn_dims *out_dims, float *out)
{
    if (!pool_check(p, in_dims, in, out_dims, out))
        return TNN_EINVAL;
    pool2d(p, in_dims, in, out_dims, out, false);
    return TNN_OK;
}

TNN_API tnn_status tnn_global_avg_pool(const tnn_dims *in_dims, const float *in, float *out)
{
    size_t count, planes, plane;

    if (!in_dims || !dims_count(in_dims, &count))
        return TNN_EINVAL;
    planes = (size_t)in_dims->n * (size_t)in_dims->c;
    if (!range_ok(in, count) || !range_ok(out, planes) || !disjoint(out, planes, in, count))
        return TNN_EINVAL;
    plane = (size_t)in_dims->h * (size_t)in_dims->w;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *x = in + pl * plane;
        float acc = 0.0f;
        for (size_t i = 0; i < plane; i++)
            acc += x[i];
        out[pl] = acc / (float)plane;
    }
    return TNN_OK;
}

TNN_API tnn_status tnn_softmax(const tnn_dims *dims, const float *in, float *out)
{
    size_t count;

    if (!dims || !dims_count(dims, &count) || !range_ok(in, count) || !range_ok(out, count) ||
        !disjoint(out, count, in, count))
        return TNN_EINVAL;

    const size_t channels = (size_t)dims->c, plane = (size_t)dims->h * (size_t)dims->w;
    for (size_t n = 0; n < (size_t)dims->n; n++) {
        for (size_t i = 0; i < plane; i++) {
            const float *x = in + n * channels * plane + i;
            float *y = out + n * channels * plane + i;
            float max = x[0];
            double sum = 0.0;
            for (size_t c = 1; c < channels; c++)
                if (x[c * plane] > max)
                    max = x[c * plane];
            for (size_t c = 0; c < channels; c++) {
                y[c * plane] = expf(x[c * plane] - max);
                sum += y[c * plane];
            }
            for (size_t c = 0; c < channels; c++)
                y[c * plane] = (float)(y[c * plane] / sum);
        }
    }
    return TNN_OK;
}

TNN_API tnn_status tnn_concat(int32_t count, const tnn_dims *const in_dims[], const float *const in[],
                              float *out)
{
    int64_t channels = 0;
    size_t out_count;

    if (count <= 0 || !in_dims || !in || !in_dims[0])
        return TNN_EINVAL;
    for (int32_t i = 0; i < count; i++) {
        const tnn_dims *d = in_dims[i];
        size_t n;
        if (!d || !dims_count(d, &n) || !range_ok(in[i], n) || d->n != in_dims[0]->n ||
            d->h != in_dims[0]->h || d->w != in_dims[0]->w)
            return TNN_EINVAL;
        channels += d->c;
    }
    /* The output must itself be describable by a tnn_dims. */
    if (channels > INT32_MAX)
        return TNN_EINVAL;
    const tnn_dims od = {in_dims[0]->n, (int32_t)channels, in_dims[0]->h, in_dims[0]->w};
    if (!dims_count(&od, &out_count) || !range_ok(out, out_count))
        return TNN_EINVAL;
    for (int32_t i = 0; i < count; i++) {
        size_t n;
        if (!dims_count(in_dims[i], &n) || !disjoint(out, out_count, in[i], n))
            return TNN_EINVAL;
    }

    const size_t plane = (size_t)od.h * (size_t)od.w;
    float *y = out;
    for (size_t n = 0; n < (size_t)od.n; n++) {
        for (int32_t i = 0; i < count; i++) {
            size_t block = (size_t)in_dims[i]->c * plane;
            memcpy(y, in[i] + n * block, block * sizeof(float));
            y += block;
        }
    }
    return TNN_OK;
}

TNN_API tnn_status tnn_fully_connected(const tnn_dims *in_dims, const float *in, const float *weight,
                                       const float *bias, int32_t out_features, float *out)
{
    size_t in_count;
    uint64_t k, weight_count, out_count;

    if (!in_dims || out_features <= 0 || !dims_count(in_dims, &in_count))
        return TNN_EINVAL;
    k = in_count / (size_t)in_dims->n;
    if (!mul_elems(k, (uint64_t)out_features, &weight_count) ||
        !mul_elems((uint64_t)in_dims->n, (uint64_t)out_features, &out_count))
        return TNN_EINVAL;
    if (!range_ok(in, in_count) || !range_ok(weight, weight_count) || !range_ok(out, out_count) ||
        (bias && !range_ok(bias, (size_t)out_features)) || !disjoint(out, out_count, in, in_count) ||
        !disjoint(out, out_count, weight, weight_count) ||
        (bias && !disjoint(out, out_count, bias, (size_t)out_features)))
        return TNN_EINVAL;

    const size_t m = (size_t)in_dims->n, n = (size_t)out_features;
    size_t scratch_count;
    float *scratch;
    if (!tinynn_gemm_scratch(m, n, k, &scratch_count) || scratch_count > MAX_ELEMS ||
        !(scratch = malloc(scratch_count * sizeof(float))))
        return TNN_ENOMEM;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            out[i * n + j] = bias ? bias[j] : 0.0f;
    /* out = in · weightᵀ: B(p, j) = weight[j][p]. */
    tinynn_gemm(m, n, k, in, k, 1, weight, 1, k, out, n, scratch);
    free(scratch);
    return TNN_OK;
}

static bool conv_check(const tnn_conv2d_params *p, const tnn_dims *in_dims, const float *in,
                       const float *weight, const float *bias, const tnn_dims *out_dims, const float *out)
{
    size_t in_count, out_count;
    uint64_t weight_count;

    if (!p || !in_dims || !out_dims)
        return false;
    if (p->kernel_h <= 0 || p->kernel_w <= 0 || p->stride_h <= 0 || p->stride_w <= 0 ||
        p->dilation_h <= 0 || p->dilation_w <= 0 || p->groups <= 0 || p->pad_top < 0 ||
        p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return false;
    if (!dims_count(in_dims, &in_count) || !dims_count(out_dims, &out_count))
        return false;
    if (out_dims->n != in_dims->n || in_dims->c % p->groups != 0 || out_dims->c % p->groups != 0 ||
        out_dims->h != window_extent(in_dims->h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom,
                                     p->dilation_h) ||
        out_dims->w != window_extent(in_dims->w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right,
                                     p->dilation_w))
        return false;
    if (!mul_elems((uint64_t)out_dims->c, (uint64_t)(in_dims->c / p->groups), &weight_count) ||
        !mul_elems(weight_count, (uint64_t)p->kernel_h, &weight_count) ||
        !mul_elems(weight_count, (uint64_t)p->kernel_w, &weight_count))
        return false;
    if (!range_ok(in, in_count) || !range_ok(weight, weight_count) || !range_ok(out, out_count) ||
        (bias && !range_ok(bias, (size_t)out_dims->c)))
        return false;
    return disjoint(out, out_count, in, in_count) && disjoint(out, out_count, weight, weight_count) &&
           (!bias || disjoint(out, out_count, bias, (size_t)out_dims->c));
}

/*
 * cols[(c*kh + ki)*kw + kj][oy*ow + ox] = x[c][oy*sh - pad_top + ki*dh][ox*sw - pad_left + kj*dw],
 * zero where that falls in the padding.
 */
static void im2col(const tnn_conv2d_params *p, size_t channels, const tnn_dims *in_dims, const float *x,
                   const tnn_dims *out_dims, float *cols)
{
    const int64_t ih = in_dims->h, iw = in_dims->w, oh = out_dims->h, ow = out_dims->w;

    for (size_t c = 0; c < channels; c++) {
        const float *plane = x + c * (size_t)(ih * iw);
        for (int64_t ki = 0; ki < p->kernel_h; ki++) {
            for (int64_t kj = 0; kj < p->kernel_w; kj++) {
                /* Input column of ox is x0 + ox*sw; [lo, hi) are the ox that land inside the row. */
                const int64_t x0 = kj * p->dilation_w - p->pad_left, sw = p->stride_w;
                int64_t lo = x0 >= 0 ? 0 : (-x0 + sw - 1) / sw;
                int64_t hi = x0 >= iw ? 0 : (iw - 1 - x0) / sw + 1;
                if (lo > ow)
                    lo = ow;
                if (hi > ow)
                    hi = ow;
                if (hi < lo)
                    hi = lo;
                for (int64_t oy = 0; oy < oh; oy++) {
                    const int64_t iy = oy * p->stride_h - p->pad_top + ki * p->dilation_h;
                    float *dst = cols;
                    cols += ow;
                    if (iy < 0 || iy >= ih) {
                        memset(dst, 0, (size_t)ow * sizeof(float));
                        continue;
                    }
                    const float *row = plane + iy * iw;
                    for (int64_t ox = 0; ox < lo; ox++)
                        dst[ox] = 0.0f;
                    if (sw == 1)
                        memcpy(dst + lo, row + x0 + lo, (size_t)(hi - lo) * sizeof(float));
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] = row[x0 + ox * sw];
                    for (int64_t ox = hi; ox < ow; ox++)
                        dst[ox] = 0.0f;
                }
            }
        }
    }
}

TNN_API tnn_status tnn_conv2d(const tnn_conv2d_params *p, const tnn_dims *in_dims, const float *in,
                              const float *weight, const float *bias, const tnn_dims *out_dims, float *out)
{
    if (!conv_check(p, in_dims, in, weight, bias, out_dims, out))
        return TNN_EINVAL;

    const size_t groups = (size_t)p->groups;
    const size_t in_c = (size_t)in_dims->c, out_c = (size_t)out_dims->c;
    const size_t cg = in_c / groups, mg = out_c / groups;
    const size_t in_plane = (size_t)in_dims->h * (size_t)in_dims->w;
    const size_t out_plane = (size_t)out_dims->h * (size_t)out_dims->w;
    const size_t k = cg * (size_t)p->kernel_h * (size_t)p->kernel_w;
    /* A 1×1, stride-1, unpadded convolution reads the input as the GEMM's B directly. */
    const bool direct = p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
                        p->pad_top == 0 && p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0;
    uint64_t cols_count = 0;
    size_t gemm_count;
    float *scratch;

    /* Every allocation happens before out is touched: ENOMEM leaves it as it was. */
    if ((!direct && !mul_elems(k, out_plane, &cols_count)) ||
        !tinynn_gemm_scratch(mg, out_plane, k, &gemm_count) || gemm_count > MAX_ELEMS - cols_count ||
        !(scratch = malloc((cols_count + gemm_count) * sizeof(float))))
        return TNN_ENOMEM;

    for (size_t n = 0; n < (size_t)in_dims->n; n++) {
        for (size_t g = 0; g < groups; g++) {
            const float *x = in + (n * in_c + g * cg) * in_plane;
            float *y = out + (n * out_c + g * mg) * out_plane;
            const float *cols = x;
            if (!direct) {
                im2col(p, cg, in_dims, x, out_dims, scratch);
                cols = scratch;
            }
            for (size_t i = 0; i < mg; i++) {
                const float b = bias ? bias[g * mg + i] : 0.0f;
                for (size_t j = 0; j < out_plane; j++)
                    y[i * out_plane + j] = b;
            }
            tinynn_gemm(mg, out_plane, k, weight + g * mg * k, k, 1, cols, out_plane, 1, y, out_plane,
                        scratch + cols_count);
        }
    }
    free(scratch);
    return TNN_OK;
}
