/* SPDX-License-Identifier: MIT */
/* Host: tinynn (demo/tinynn). Each layer call becomes ONNX nodes; see DESIGN.md's mapping. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "hook.h"
#include "operands.h"
#include "tinynn.h"
#include "tinynn-hooks.h"

static struct onnxhook_shape nchw(const tnn_dims *d)
{
	return onnxhook_shape4(d->n, d->c, d->h, d->w);
}

static void record_unary(const char *symbol, const char *op, const tnn_dims *dims, const float *in,
			 float *out)
{
	struct onnxhook_call c;

	if (!onnxhook_record_begin(&c, symbol))
		return;
	struct onnxhook_tensor x = onnxhook_op_read(&c, in, nchw(dims));
	onnxhook_op_emit(&c, op, 1, &x, 0, NULL, nchw(dims), out);
	onnxhook_record_end(&c);
}

static void record_pool(const char *symbol, const char *op, const tnn_pool2d_params *p,
			const tnn_dims *in_dims, const float *in, const tnn_dims *out_dims, float *out)
{
	struct onnxhook_call c;
	const int64_t kernel[2] = {p->kernel_h, p->kernel_w}, strides[2] = {p->stride_h, p->stride_w};
	const int64_t pads[4] = {p->pad_top, p->pad_left, p->pad_bottom, p->pad_right};
	/* tinynn never counts padding; MaxPool ignores padding by definition. */
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel),
		onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),
		onnxhook_attr_int("count_include_pad", 0),
	};
	int n_attrs = op[0] == 'A' ? 4 : 3;

	if (!onnxhook_record_begin(&c, symbol))
		return;
	struct onnxhook_tensor x = onnxhook_op_read(&c, in, nchw(in_dims));
	onnxhook_op_emit(&c, op, 1, &x, n_attrs, attrs, nchw(out_dims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_conv2d(const tnn_conv2d_params *p, const tnn_dims *in_dims, const float *in,
			      const float *weight, const float *bias, const tnn_dims *out_dims,
			      float *out)
{
	struct onnxhook_call c;
	const int64_t kernel[2] = {p->kernel_h, p->kernel_w}, strides[2] = {p->stride_h, p->stride_w};
	const int64_t dilations[2] = {p->dilation_h, p->dilation_w};
	/* ONNX pads: all begins, then all ends: [top, left, bottom, right]. */
	const int64_t pads[4] = {p->pad_top, p->pad_left, p->pad_bottom, p->pad_right};
	const struct onnxhook_shape wshape =
		onnxhook_shape4(out_dims->c, in_dims->c / p->groups, p->kernel_h, p->kernel_w);
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel),
		onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),
		onnxhook_attr_ints("dilations", 2, dilations),
		onnxhook_attr_int("group", p->groups),
	};

	if (!onnxhook_record_begin(&c, "tnn_conv2d"))
		return;
	struct onnxhook_tensor x[3] = {
		onnxhook_op_read(&c, in, nchw(in_dims)),
		onnxhook_op_weight(&c, weight, wshape, "weight"),
		onnxhook_op_weight(&c, bias, onnxhook_shape1(out_dims->c), "bias"),
	};
	onnxhook_op_emit(&c, "Conv", bias ? 3 : 2, x, 5, attrs, nchw(out_dims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_relu(const tnn_dims *dims, const float *in, float *out)
{
	record_unary("tnn_relu", "Relu", dims, in, out);
}

static void record_tnn_add(const tnn_dims *dims, const float *a, const float *b, float *out)
{
	struct onnxhook_call c;

	if (!onnxhook_record_begin(&c, "tnn_add"))
		return;
	struct onnxhook_tensor x[2] = {onnxhook_op_read(&c, a, nchw(dims)),
				       onnxhook_op_read(&c, b, nchw(dims))};
	onnxhook_op_emit(&c, "Add", 2, x, 0, NULL, nchw(dims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_batch_norm(const tnn_dims *dims, const float *in, const float *scale,
				  const float *bias, const float *mean, const float *var,
				  float epsilon, float *out)
{
	struct onnxhook_call c;
	const struct onnxhook_attr eps = onnxhook_attr_float("epsilon", epsilon);

	if (!onnxhook_record_begin(&c, "tnn_batch_norm"))
		return;
#ifdef ONNXHOOK_TEST_WRONG_MAPPING
	/* onnxhook verify's test build only (preload/meson.build): scale and bias swapped. */
	const float *t = scale;
	scale = bias;
	bias = t;
#endif
	struct onnxhook_tensor x[5] = {
		onnxhook_op_read(&c, in, nchw(dims)),
		onnxhook_op_weight(&c, scale, onnxhook_shape1(dims->c), "scale"),
		onnxhook_op_weight(&c, bias, onnxhook_shape1(dims->c), "bias"),
		onnxhook_op_weight(&c, mean, onnxhook_shape1(dims->c), "mean"),
		onnxhook_op_weight(&c, var, onnxhook_shape1(dims->c), "var"),
	};
	onnxhook_op_emit(&c, "BatchNormalization", 5, x, 1, &eps, nchw(dims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_max_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims,
				  const float *in, const tnn_dims *out_dims, float *out)
{
	record_pool("tnn_max_pool2d", "MaxPool", p, in_dims, in, out_dims, out);
}

static void record_tnn_avg_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims,
				  const float *in, const tnn_dims *out_dims, float *out)
{
	record_pool("tnn_avg_pool2d", "AveragePool", p, in_dims, in, out_dims, out);
}

static void record_tnn_global_avg_pool(const tnn_dims *in_dims, const float *in, float *out)
{
	const tnn_dims out_dims = {in_dims->n, in_dims->c, 1, 1};
	struct onnxhook_call c;

	if (!onnxhook_record_begin(&c, "tnn_global_avg_pool"))
		return;
	struct onnxhook_tensor x = onnxhook_op_read(&c, in, nchw(in_dims));
	onnxhook_op_emit(&c, "GlobalAveragePool", 1, &x, 0, NULL, nchw(&out_dims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_fully_connected(const tnn_dims *in_dims, const float *in,
				       const float *weight, const float *bias,
				       int32_t out_features, float *out)
{
	struct onnxhook_call c;
	const int64_t k = (int64_t)in_dims->c * in_dims->h * in_dims->w;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);
	const struct onnxhook_attr trans_b = onnxhook_attr_int("transB", 1);
	const struct onnxhook_shape ydims = onnxhook_shape2(in_dims->n, out_features);

	if (!onnxhook_record_begin(&c, "tnn_fully_connected"))
		return;
	struct onnxhook_tensor x = onnxhook_op_read(&c, in, nchw(in_dims));
	struct onnxhook_tensor g[3] = {
		onnxhook_op_node(&c, "Flatten", 1, &x, 1, &axis, onnxhook_shape2(in_dims->n, k)),
		onnxhook_op_weight(&c, weight, onnxhook_shape2(out_features, k), "weight"),
		onnxhook_op_weight(&c, bias, onnxhook_shape1(out_features), "bias"),
	};
	onnxhook_op_emit(&c, "Gemm", bias ? 3 : 2, g, 1, &trans_b, ydims, out);
	onnxhook_record_end(&c);
}

static void record_tnn_softmax(const tnn_dims *dims, const float *in, float *out)
{
	struct onnxhook_call c;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);

	if (!onnxhook_record_begin(&c, "tnn_softmax"))
		return;
	struct onnxhook_tensor x = onnxhook_op_read(&c, in, nchw(dims));
	onnxhook_op_emit(&c, "Softmax", 1, &x, 1, &axis, nchw(dims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_concat(int32_t count, const tnn_dims *const in_dims[],
			      const float *const in[], float *out)
{
	struct onnxhook_call c;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);
	tnn_dims out_dims = *in_dims[0];
	struct onnxhook_tensor stack[16];
	struct onnxhook_tensor *x = count <= 16 ? stack : malloc((size_t)count * sizeof(*x));

	if (!x || !onnxhook_record_begin(&c, "tnn_concat")) {
		if (x != stack)
			free(x);
		return;
	}
	out_dims.c = 0;
	for (int32_t i = 0; i < count; i++) {
		x[i] = onnxhook_op_read(&c, in[i], nchw(in_dims[i]));
		out_dims.c += in_dims[i]->c;
	}
	onnxhook_op_emit(&c, "Concat", count, x, 1, &axis, nchw(&out_dims), out);
	onnxhook_record_end(&c);
	if (x != stack)
		free(x);
}

/* What the record functions dereference before the host has validated anything: the check
 * before the real call runs only where this holds (tinynn rejects the rest itself). */
static bool plausible_tnn_conv2d(const tnn_conv2d_params *p, const tnn_dims *in_dims,
				 const float *in, const float *weight, const float *bias,
				 const tnn_dims *out_dims, float *out)
{
	return p && in_dims && out_dims && p->groups > 0;
}

static bool plausible_dims(const tnn_dims *dims)
{
	return dims;
}

static bool plausible_tnn_relu(const tnn_dims *dims, const float *in, float *out)
{
	return plausible_dims(dims);
}

static bool plausible_tnn_add(const tnn_dims *dims, const float *a, const float *b, float *out)
{
	return plausible_dims(dims);
}

static bool plausible_tnn_batch_norm(const tnn_dims *dims, const float *in, const float *scale,
				     const float *bias, const float *mean, const float *var,
				     float epsilon, float *out)
{
	return plausible_dims(dims);
}

static bool plausible_pool(const tnn_pool2d_params *p, const tnn_dims *in_dims,
			   const tnn_dims *out_dims)
{
	return p && in_dims && out_dims;
}

static bool plausible_tnn_max_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims,
				     const float *in, const tnn_dims *out_dims, float *out)
{
	return plausible_pool(p, in_dims, out_dims);
}

static bool plausible_tnn_avg_pool2d(const tnn_pool2d_params *p, const tnn_dims *in_dims,
				     const float *in, const tnn_dims *out_dims, float *out)
{
	return plausible_pool(p, in_dims, out_dims);
}

static bool plausible_tnn_global_avg_pool(const tnn_dims *in_dims, const float *in, float *out)
{
	return plausible_dims(in_dims);
}

static bool plausible_tnn_fully_connected(const tnn_dims *in_dims, const float *in,
					  const float *weight, const float *bias,
					  int32_t out_features, float *out)
{
	return plausible_dims(in_dims);
}

static bool plausible_tnn_softmax(const tnn_dims *dims, const float *in, float *out)
{
	return plausible_dims(dims);
}

static bool plausible_tnn_concat(int32_t count, const tnn_dims *const in_dims[],
				 const float *const in[], float *out)
{
	if (count <= 0 || !in_dims || !in)
		return false;
	for (int32_t i = 0; i < count; i++)
		if (!in_dims[i])
			return false;
	return true;
}

/* The hooks: check the call's reads (before an in-place op overwrites them), call the real
 * function, record the call if it succeeded, return its status. */
/* The exported hook is a fast path only: once the real function is known and nothing records
 * (the capture over) it is two loads, two tests and a tail jump to the real function, with no
 * frame of its own; everything else is in slow_<name>, out of line. */
#define HOOK(name, params, args)                                                                 \
	static tnn_status(*real_##name) params;                                                  \
	static __attribute__((noinline)) tnn_status slow_##name params                           \
	{                                                                                        \
		tnn_status (*real) params = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);     \
		if (!real) {                                                                     \
			real = (tnn_status(*) params)onnxhook_resolve(#name);                    \
			__atomic_store_n(&real_##name, real, __ATOMIC_RELAXED);                  \
		}                                                                                \
		if (!onnxhook_enter())                                                           \
			return real args;                                                        \
		if (plausible_##name args) {                                                     \
			onnxhook_checking(true);                                                 \
			record_##name args;                                                      \
			onnxhook_checking(false);                                                \
		}                                                                                \
		tnn_status st = real args;                                                       \
		while (st == TNN_OK) {                                                           \
			record_##name args;                                                      \
			if (!onnxhook_record_again())                                            \
				break;                                                           \
		}                                                                                \
		onnxhook_leave();                                                                \
		return st;                                                                       \
	}                                                                                        \
	ONNXHOOK_EXPORT tnn_status name params                                                   \
	{                                                                                        \
		tnn_status (*real) params = __atomic_load_n(&real_##name, __ATOMIC_RELAXED);     \
		if (__builtin_expect(real && !onnxhook_is_recording(), 1))                       \
			return real args;                                                        \
		return slow_##name args;                                                         \
	}                                                                                        \
	ONNXHOOK_LOCAL_ALIAS(name)
TINYNN_HOOKS(HOOK)

#define ENTRY(name, params, args) {#name, (void *)onnxhook_local_##name, (void **)&real_##name},
const struct onnxhook_symbol onnxhook_tinynn_symbols[] = {TINYNN_HOOKS(ENTRY){NULL, NULL, NULL}};
