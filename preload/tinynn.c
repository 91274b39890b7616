/* SPDX-License-Identifier: MIT */
/* Host: tinynn (demo/tinynn). Each layer call becomes ONNX nodes; see DESIGN.md's mapping. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "hook.h"
#include "tinynn.h"
#include "tinynn-hooks.h"

#define NCHW(d) {(d)->n, (d)->c, (d)->h, (d)->w}

static uint32_t read4(struct onnxhook_call *c, const float *p, const tnn_dims *d)
{
	int64_t dims[4] = NCHW(d);

	return onnxhook_call_read(c, p, ONNXHOOK_FLOAT, 4, dims);
}

static uint32_t weight1(struct onnxhook_call *c, const float *p, int64_t n, const char *role)
{
	return p ? onnxhook_call_weight(c, p, ONNXHOOK_FLOAT, 1, &n, role) : ONNXHOOK_NONE;
}

/* One node reading inputs[], written to out with the shape of dims. */
static void emit(struct onnxhook_call *c, const char *op, int n_in, const uint32_t *in, int n_attrs,
		 const struct onnxhook_attr *attrs, const tnn_dims *dims, float *out)
{
	int64_t shape[4] = NCHW(dims);

	onnxhook_call_write(c, onnxhook_call_node(c, op, n_in, in, n_attrs, attrs, 4, shape), out);
}

static void record_unary(const char *symbol, const char *op, const tnn_dims *dims, const float *in,
			 float *out)
{
	struct onnxhook_call c;

	if (!onnxhook_record_begin(&c, symbol))
		return;
	uint32_t x = read4(&c, in, dims);
	emit(&c, op, 1, &x, 0, NULL, dims, out);
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
	uint32_t x = read4(&c, in, in_dims);
	emit(&c, op, 1, &x, n_attrs, attrs, out_dims, out);
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
	const int64_t wdims[4] = {out_dims->c, in_dims->c / p->groups, p->kernel_h, p->kernel_w};
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel),
		onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),
		onnxhook_attr_ints("dilations", 2, dilations),
		onnxhook_attr_int("group", p->groups),
	};

	if (!onnxhook_record_begin(&c, "tnn_conv2d"))
		return;
	uint32_t x[3] = {
		read4(&c, in, in_dims),
		onnxhook_call_weight(&c, weight, ONNXHOOK_FLOAT, 4, wdims, "weight"),
		weight1(&c, bias, out_dims->c, "bias"),
	};
	emit(&c, "Conv", bias ? 3 : 2, x, 5, attrs, out_dims, out);
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
	uint32_t x[2] = {read4(&c, a, dims), read4(&c, b, dims)};
	emit(&c, "Add", 2, x, 0, NULL, dims, out);
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
	uint32_t x[5] = {
		read4(&c, in, dims),
		weight1(&c, scale, dims->c, "scale"),
		weight1(&c, bias, dims->c, "bias"),
		weight1(&c, mean, dims->c, "mean"),
		weight1(&c, var, dims->c, "var"),
	};
	emit(&c, "BatchNormalization", 5, x, 1, &eps, dims, out);
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
	uint32_t x = read4(&c, in, in_dims);
	emit(&c, "GlobalAveragePool", 1, &x, 0, NULL, &out_dims, out);
	onnxhook_record_end(&c);
}

static void record_tnn_fully_connected(const tnn_dims *in_dims, const float *in,
				       const float *weight, const float *bias,
				       int32_t out_features, float *out)
{
	struct onnxhook_call c;
	const int64_t k = (int64_t)in_dims->c * in_dims->h * in_dims->w;
	const int64_t flat[2] = {in_dims->n, k}, wdims[2] = {out_features, k};
	const int64_t ydims[2] = {in_dims->n, out_features};
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);
	const struct onnxhook_attr trans_b = onnxhook_attr_int("transB", 1);

	if (!onnxhook_record_begin(&c, "tnn_fully_connected"))
		return;
	uint32_t x = read4(&c, in, in_dims);
	uint32_t g[3] = {
		onnxhook_call_node(&c, "Flatten", 1, &x, 1, &axis, 2, flat),
		onnxhook_call_weight(&c, weight, ONNXHOOK_FLOAT, 2, wdims, "weight"),
		weight1(&c, bias, out_features, "bias"),
	};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Gemm", bias ? 3 : 2, g, 1, &trans_b, 2, ydims), out);
	onnxhook_record_end(&c);
}

static void record_tnn_softmax(const tnn_dims *dims, const float *in, float *out)
{
	struct onnxhook_call c;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);

	if (!onnxhook_record_begin(&c, "tnn_softmax"))
		return;
	uint32_t x = read4(&c, in, dims);
	emit(&c, "Softmax", 1, &x, 1, &axis, dims, out);
	onnxhook_record_end(&c);
}

static void record_tnn_concat(int32_t count, const tnn_dims *const in_dims[],
			      const float *const in[], float *out)
{
	struct onnxhook_call c;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);
	tnn_dims out_dims = *in_dims[0];
	uint32_t stack[16], *x = count <= 16 ? stack : malloc((size_t)count * sizeof(*x));

	if (!x || !onnxhook_record_begin(&c, "tnn_concat")) {
		if (x != stack)
			free(x);
		return;
	}
	out_dims.c = 0;
	for (int32_t i = 0; i < count; i++) {
		x[i] = read4(&c, in[i], in_dims[i]);
		out_dims.c += in_dims[i]->c;
	}
	emit(&c, "Concat", count, x, 1, &axis, &out_dims, out);
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
#define HOOK(name, params, args)                                                                 \
	static tnn_status(*real_##name) params;                                                  \
	ONNXHOOK_EXPORT tnn_status name params                                                   \
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
	ONNXHOOK_LOCAL_ALIAS(name)
TINYNN_HOOKS(HOOK)

#define ENTRY(name, params, args) {#name, (void *)onnxhook_local_##name, (void **)&real_##name},
const struct onnxhook_symbol onnxhook_tinynn_symbols[] = {TINYNN_HOOKS(ENTRY){NULL, NULL, NULL}};
