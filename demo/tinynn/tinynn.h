/* SPDX-License-Identifier: MIT */
/* tinynn: a small float32 NCHW inference library, the demo host that onnxhook traces. */
#ifndef TINYNN_H
#define TINYNN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tnn_status { TNN_OK = 0, TNN_EINVAL = -1, TNN_ENOMEM = -2 } tnn_status;
typedef struct tnn_dims { int32_t n, c, h, w; } tnn_dims;          /* dense float32 NCHW */
typedef struct tnn_conv2d_params {
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t dilation_h, dilation_w, groups;
} tnn_conv2d_params;
typedef struct tnn_pool2d_params {
    int32_t kernel_h, kernel_w, stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
} tnn_pool2d_params;

/* weight: [out_dims->c][in_dims->c / groups][kernel_h][kernel_w]; bias: [out_dims->c] or NULL */
tnn_status tnn_conv2d(const tnn_conv2d_params *p, const tnn_dims *in_dims, const float *in,
                      const float *weight, const float *bias, const tnn_dims *out_dims, float *out);
tnn_status tnn_relu(const tnn_dims *dims, const float *in, float *out);              /* in == out ok */
tnn_status tnn_add(const tnn_dims *dims, const float *a, const float *b, float *out); /* out may be a or b */
tnn_status tnn_batch_norm(const tnn_dims *dims, const float *in, const float *scale, const float *bias,
                          const float *mean, const float *var, float epsilon, float *out); /* in == out ok */
tnn_status tnn_max_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,
                          const tnn_dims *out_dims, float *out);      /* padding never wins the max */
tnn_status tnn_avg_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,
                          const tnn_dims *out_dims, float *out);      /* padding not counted */
tnn_status tnn_global_avg_pool(const tnn_dims *in_dims, const float *in, float *out); /* out n×c×1×1 */
/* in flattened per batch item (k = c*h*w); weight: [out_features][k]; bias or NULL; out: n×out_features */
tnn_status tnn_fully_connected(const tnn_dims *in_dims, const float *in, const float *weight,
                               const float *bias, int32_t out_features, float *out);
tnn_status tnn_softmax(const tnn_dims *dims, const float *in, float *out);  /* over c, per n,h,w */
tnn_status tnn_concat(int32_t count, const tnn_dims *const in_dims[], const float *const in[],
                      float *out);                                     /* along c */

#ifdef __cplusplus
}
#endif

#endif /* TINYNN_H */
