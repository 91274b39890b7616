/* SPDX-License-Identifier: MIT */
/* The tinynn symbols onnxhook interposes: X(symbol, parameters, arguments), listed once. */
#ifndef ONNXHOOK_TINYNN_HOOKS_H
#define ONNXHOOK_TINYNN_HOOKS_H

#define TINYNN_HOOKS(X)                                                                          \
	X(tnn_conv2d,                                                                            \
	  (const tnn_conv2d_params *p, const tnn_dims *in_dims, const float *in,                 \
	   const float *weight, const float *bias, const tnn_dims *out_dims, float *out),         \
	  (p, in_dims, in, weight, bias, out_dims, out))                                         \
	X(tnn_relu, (const tnn_dims *dims, const float *in, float *out), (dims, in, out))         \
	X(tnn_add, (const tnn_dims *dims, const float *a, const float *b, float *out),            \
	  (dims, a, b, out))                                                                     \
	X(tnn_batch_norm,                                                                        \
	  (const tnn_dims *dims, const float *in, const float *scale, const float *bias,          \
	   const float *mean, const float *var, float epsilon, float *out),                      \
	  (dims, in, scale, bias, mean, var, epsilon, out))                                      \
	X(tnn_max_pool2d,                                                                        \
	  (const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,                 \
	   const tnn_dims *out_dims, float *out),                                                \
	  (p, in_dims, in, out_dims, out))                                                       \
	X(tnn_avg_pool2d,                                                                        \
	  (const tnn_pool2d_params *p, const tnn_dims *in_dims, const float *in,                 \
	   const tnn_dims *out_dims, float *out),                                                \
	  (p, in_dims, in, out_dims, out))                                                       \
	X(tnn_global_avg_pool, (const tnn_dims *in_dims, const float *in, float *out),            \
	  (in_dims, in, out))                                                                    \
	X(tnn_fully_connected,                                                                   \
	  (const tnn_dims *in_dims, const float *in, const float *weight, const float *bias,      \
	   int32_t out_features, float *out),                                                    \
	  (in_dims, in, weight, bias, out_features, out))                                        \
	X(tnn_softmax, (const tnn_dims *dims, const float *in, float *out), (dims, in, out))      \
	X(tnn_concat,                                                                            \
	  (int32_t count, const tnn_dims *const in_dims[], const float *const in[], float *out),  \
	  (count, in_dims, in, out))

#endif
