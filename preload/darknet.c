/* SPDX-License-Identifier: MIT */
/* Host: darknet (Debian's libdarknet.so, pjreddie/darknet 61c9d02e). Each forward_*_layer call
 * becomes the standard ONNX ops that reproduce darknet's own arithmetic; see docs/darknet.md. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <float.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook.h"
#include "operands.h"
#include "stub-x86_64.h"

/* darknet.h declares a few functions with "()". */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include "darknet.h"
#pragma GCC diagnostic pop

#include "darknet-hooks.h"

#ifndef ONNXHOOK_DARKNET_BUILD_ID
#error "ONNXHOOK_DARKNET_BUILD_ID: the build-id of the libdarknet.so darknet.h belongs to"
#endif

/* The layout the hooks were written against: a CPU build of 61c9d02e on LP64. Another darknet.h
 * means another darknet: its semantics need checking before these mappings are trusted. */
#if defined(__x86_64__)
_Static_assert(sizeof(layer) == 1184 && sizeof(network) == 272,
	       "darknet.h is not the pjreddie/darknet 61c9d02e CPU header this adapter maps");
#else
#error "the darknet adapter's entry stubs are written for x86-64"
#endif

/* ---- values with their shapes ------------------------------------------------------------ */

/* What a layer reads at net.input: batch × c × h × w when its input is an image. */
static struct onnxhook_shape in_shape(const layer *l)
{
	if (l->c > 0 && l->h > 0 && l->w > 0 && (int64_t)l->c * l->h * l->w == l->inputs)
		return onnxhook_shape4(l->batch, l->c, l->h, l->w);
	return onnxhook_shape2(l->batch, l->inputs);
}

/* What a layer leaves at l.output: batch × out_c × out_h × out_w when it is an image. */
static struct onnxhook_shape out_shape(const layer *l)
{
	if (l->out_c > 0 && l->out_h > 0 && l->out_w > 0 &&
	    (int64_t)l->out_c * l->out_h * l->out_w == l->outputs)
		return onnxhook_shape4(l->batch, l->out_c, l->out_h, l->out_w);
	return onnxhook_shape2(l->batch, l->outputs);
}

/* The layer's fields contradict each other: stop recording (the model keeps what came before)
 * rather than write a graph that computes something else. */
static struct onnxhook_tensor bad(struct onnxhook_call *c, const layer *l, const char *why)
{
	if (!c->err) {
		if (!c->check) /* said once, by the recording after the call */
			onnxhook_warn("darknet: %s: %s", c->label, why);
		c->err = -EINVAL;
	}
	return (struct onnxhook_tensor){ONNXHOOK_NONE, l ? out_shape(l) : onnxhook_shape1(1)};
}

/* bad(), then return from the (void) record function. */
#define FAIL(c, l, why)                                                                          \
	do {                                                                                     \
		bad(c, l, why);                                                                  \
		return;                                                                          \
	} while (0)

/* A node in the "darknet" domain: what no standard op reproduces. The model still holds the
 * rest of the network; the preload's exit warning names what onnxruntime cannot run. */
static struct onnxhook_tensor unmapped(struct onnxhook_call *c, const char *what,
				       struct onnxhook_tensor x, struct onnxhook_shape out)
{
	onnxhook_note_unmapped(what);
	return onnxhook_op_node_domain(c, "darknet", what, 1, &x, 0, NULL, out);
}

/* ---- activations (activations.h) --------------------------------------------------------- */

static struct onnxhook_tensor leaky(struct onnxhook_call *c, struct onnxhook_tensor x, float alpha)
{
	const struct onnxhook_attr a = onnxhook_attr_float("alpha", alpha);

	return onnxhook_op_node(c, "LeakyRelu", 1, &x, 1, &a, x.s);
}

/* Darknet's activate_array(x, n, a) as standard ops; x itself for linear. The piecewise ones
 * are written with Clip instead of comparisons: exact, and no boolean tensors. */
static struct onnxhook_tensor activate(struct onnxhook_call *c, struct onnxhook_tensor x,
				       ACTIVATION a)
{
	struct onnxhook_tensor t;

	switch (a) {
	case LINEAR:
		return x;
	case LOGISTIC:
		return onnxhook_op_unary(c, "Sigmoid", x);
	case RELU:
		return onnxhook_op_unary(c, "Relu", x);
	case RELIE: /* x > 0 ? x : .01x */
		return leaky(c, x, .01f);
	case LEAKY: /* x > 0 ? x : .1x */
		return leaky(c, x, .1f);
	case RAMP: /* x·(x > 0) + .1x: relu(x) + .1x, not a leaky relu */
		return onnxhook_op_binary(c, "Add", onnxhook_op_unary(c, "Relu", x),
					  onnxhook_op_mulk(c, x, .1f, "ramp"));
	case TANH: {
		/* (e^2x - 1)/(e^2x + 1) in double: NaN from x = 354.891357 on, where e^2x
		 * overflows and Tanh saturates at 1. Tanh(x) + 0·log(clip(t - x, 0, 1)) is NaN
		 * exactly there (log 0 = -inf) and Tanh(x) elsewhere. */
		t = onnxhook_op_clip(c,
				     onnxhook_op_binary(c, "Sub",
							onnxhook_op_scalar(c, 0x1.62e430p+8f,
									   "tanh_overflow"),
							x),
				     0.f, 1.f);
		struct onnxhook_tensor nan =
			onnxhook_op_mulk(c, onnxhook_op_unary(c, "Log", t), 0.f, "zero");
		return onnxhook_op_binary(c, "Add", onnxhook_op_unary(c, "Tanh", x), nan);
	}
	case PLSE: {
		/* .01(x + 4) below -4, .01(x - 4) + 1 above 4, .125x + .5 between:
		 * .125·clip(x, -4, 4) + .5 + .01·(x - clip(x, -4, 4)). */
		t = onnxhook_op_clip(c, x, -4.f, 4.f);
		struct onnxhook_tensor mid =
			onnxhook_op_addk(c, onnxhook_op_mulk(c, t, .125f, "plse_slope"), .5f,
					 "plse_offset");
		return onnxhook_op_binary(c, "Add", mid,
					  onnxhook_op_mulk(c, onnxhook_op_binary(c, "Sub", x, t),
							   .01f, "plse_tail"));
	}
	case ELU: {
		const struct onnxhook_attr alpha = onnxhook_attr_float("alpha", 1.f);
		return onnxhook_op_node(c, "Elu", 1, &x, 1, &alpha, x.s);
	}
	case LOGGY: /* 2/(1 + e^-x) - 1 */
		return onnxhook_op_addk(c,
					onnxhook_op_mulk(c, onnxhook_op_unary(c, "Sigmoid", x), 2.f,
							 "loggy_scale"),
					-1.f, "loggy_offset");
	case STAIR: {
		/* n = floor(x); n even: floor(x/2); odd: (x - n) + floor(x/2). With the parity
		 * p = n - 2·floor(n/2) in {0, 1}: p·(x - n) + floor(x/2). */
		struct onnxhook_tensor n = onnxhook_op_unary(c, "Floor", x);
		struct onnxhook_tensor half =
			onnxhook_op_unary(c, "Floor", onnxhook_op_mulk(c, x, .5f, "stair_half"));
		struct onnxhook_tensor even =
			onnxhook_op_mulk(c,
					 onnxhook_op_unary(c, "Floor",
							   onnxhook_op_mulk(c, n, .5f,
									    "stair_half")),
					 2.f, "stair_two");
		struct onnxhook_tensor p = onnxhook_op_binary(c, "Sub", n, even);
		return onnxhook_op_binary(c, "Add",
					  onnxhook_op_binary(c, "Mul", p,
							     onnxhook_op_binary(c, "Sub", x, n)),
					  half);
	}
	case HARDTAN:
		return onnxhook_op_clip(c, x, -1.f, 1.f);
	case LHTAN: /* .001x below 0, .001(x - 1) + 1 above 1, x between */
		t = onnxhook_op_clip(c, x, 0.f, 1.f);
		return onnxhook_op_binary(c, "Add", t,
					  onnxhook_op_mulk(c, onnxhook_op_binary(c, "Sub", x, t),
							   .001f, "lhtan_tail"));
	case SELU: {
		/* darknet's constants, not the usual 1.0507009873554805 / 1.6732632423543772 */
		const struct onnxhook_attr sa[2] = {onnxhook_attr_float("alpha", 1.6732f),
						    onnxhook_attr_float("gamma", 1.0507f)};
		return onnxhook_op_node(c, "Selu", 1, &x, 2, sa, x.s);
	}
	}
	return unmapped(c, "activation", x, x.s);
}

/* ---- shared pieces of layers ------------------------------------------------------------- */

/* Darknet normalizes with (x - mean) / (sqrt(var) + .000001f): epsilon on the standard
 * deviation, where ONNX takes sqrt(var + epsilon). BatchNormalization with epsilon 0 and
 * var' = (sqrt(var) + 1e-6)² is the same function, also where var is 0 (1e6, not 316). */
static struct onnxhook_tensor batchnorm(struct onnxhook_call *c, const layer *l,
					struct onnxhook_tensor x)
{
	const int64_t ch = l->out_c;
	const struct onnxhook_attr eps = onnxhook_attr_float("epsilon", 0.f);
	float *var;

	if (ch <= 0 || x.s.rank < 2 || x.s.dims[1] != ch || !l->scales || !l->biases ||
	    !l->rolling_mean || !l->rolling_variance)
		return bad(c, l, "batch normalization without its statistics");
	if (!(var = malloc((size_t)ch * sizeof(*var)))) {
		if (!c->err)
			c->err = -ENOMEM;
		return x;
	}
	for (int64_t i = 0; i < ch; i++) {
		double sd = sqrt((double)l->rolling_variance[i]) + (double).000001f;
		var[i] = (float)(sd * sd);
	}
	int64_t n = ch;
	const struct onnxhook_tensor in[5] = {
		x,
		onnxhook_op_weight(c, l->scales, onnxhook_shape1(ch), "scale"),
		onnxhook_op_weight(c, l->biases, onnxhook_shape1(ch), "bias"),
		onnxhook_op_weight(c, l->rolling_mean, onnxhook_shape1(ch), "mean"),
		{onnxhook_call_const(c, ONNXHOOK_FLOAT, 1, &n, var, "var"), onnxhook_shape1(ch)},
	};
	free(var);
	return onnxhook_op_node(c, "BatchNormalization", 5, in, 1, &eps, x.s);
}

/* x > 0 ? 1 : -1 (binarize_cpu), as 2·ceil(clip(x, 0, 1)) - 1. */
static struct onnxhook_tensor binarize(struct onnxhook_call *c, struct onnxhook_tensor x)
{
	struct onnxhook_tensor up = onnxhook_op_unary(c, "Ceil", onnxhook_op_clip(c, x, 0.f, 1.f));

	return onnxhook_op_addk(c, onnxhook_op_mulk(c, up, 2.f, "binary_scale"), -1.f,
				"binary_offset");
}

/* forward_convolutional_layer on x (batch × c × h × w): Conv, then batch norm or bias, then
 * the activation. Also the convolutions inside crnn. */
static struct onnxhook_tensor conv(struct onnxhook_call *c, const layer *l,
				   struct onnxhook_tensor x)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, N = l->n, G = l->groups;
	const int64_t OH = l->out_h, OW = l->out_w;
	int64_t K = l->size, S = l->stride, P = l->pad;

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || N <= 0 || G <= 0 || C % G || N % G || K <= 0 ||
	    S <= 0 || P < 0 || l->out_c != N || OH != (H + 2 * P - K) / S + 1 ||
	    OW != (W + 2 * P - K) / S + 1 || OH <= 0 || OW <= 0 || !l->weights || !l->biases)
		return bad(c, l, "inconsistent convolution");
	if (l->xnor) {
		if (!l->binary_weights)
			return bad(c, l, "xnor convolution without binary weights");
		x = binarize(c, x);
	}
	if (K == 1 && (S != 1 || P != 0)) {
		/* A 1×1 kernel skips im2col: each group's input is read as a (c/g) × (out_h·out_w)
		 * matrix straight from its (c/g)·h·w floats, so stride and padding reinterpret the
		 * memory rather than subsample it. Reproduce that reading, then convolve 1×1. */
		if (OH * OW > H * W)
			return unmapped(c, "convolutional_1x1_padded", x,
					onnxhook_shape4(B, N, OH, OW));
		x = onnxhook_op_reshape(c, x, onnxhook_shape2(B * G, C / G * H * W));
		x = onnxhook_op_slice(c, x, 1, 0, C / G * OH * OW);
		x = onnxhook_op_reshape(c, x, onnxhook_shape4(B, C, OH, OW));
		S = 1;
		P = 0;
	}
	const int64_t kernel[2] = {K, K}, strides[2] = {S, S}, pads[4] = {P, P, P, P};
	const int64_t dil[2] = {1, 1};
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel), onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),           onnxhook_attr_ints("dilations", 2, dil),
		onnxhook_attr_int("group", G),
	};
	/* xnor: the binarized weights the call used are left in l.binary_weights. */
	struct onnxhook_tensor in[3] = {x,
					onnxhook_op_weight(c,
							   l->xnor ? l->binary_weights : l->weights,
							   onnxhook_shape4(N, C / G, K, K),
							   "weight")};
	if (!l->batch_normalize)
		in[2] = onnxhook_op_weight(c, l->biases, onnxhook_shape1(N), "bias");
	struct onnxhook_tensor y = onnxhook_op_node(c, "Conv", l->batch_normalize ? 2 : 3, in, 5,
						    attrs, onnxhook_shape4(B, N, OH, OW));
	if (l->batch_normalize)
		y = batchnorm(c, l, y);
	return activate(c, y, l->activation);
}

/* forward_connected_layer on x: x·Wᵀ, then batch norm or bias, then the activation. Also the
 * fully connected pieces of rnn, gru and lstm. */
static struct onnxhook_tensor connected(struct onnxhook_call *c, const layer *l,
					struct onnxhook_tensor x)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs;
	const struct onnxhook_attr trans_b = onnxhook_attr_int("transB", 1);

	if (B <= 0 || I <= 0 || O <= 0 || !l->weights || !l->biases)
		return bad(c, l, "inconsistent connected layer");
	x = onnxhook_op_reshape(c, x, onnxhook_shape2(B, I));
	struct onnxhook_tensor in[3] = {x, onnxhook_op_weight(c, l->weights, onnxhook_shape2(O, I),
							      "weight")};
	if (!l->batch_normalize)
		in[2] = onnxhook_op_weight(c, l->biases, onnxhook_shape1(O), "bias");
	struct onnxhook_tensor y = onnxhook_op_node(c, "Gemm", l->batch_normalize ? 2 : 3, in, 1,
						    &trans_b, onnxhook_shape2(B, O));
	if (l->batch_normalize)
		y = batchnorm(c, l, y);
	return activate(c, y, l->activation);
}

/* ---- layers ------------------------------------------------------------------------------ */

typedef void dn_record_fn(struct onnxhook_call *c, const layer *l, const network *net);

static void record_forward_convolutional_layer(struct onnxhook_call *c, const layer *l,
					       const network *net)
{
	onnxhook_op_write(c,
			  conv(c, l,
			       onnxhook_op_read(c, net->input,
						onnxhook_shape4(l->batch, l->c, l->h, l->w))),
			  l->output);
}

static void record_forward_deconvolutional_layer(struct onnxhook_call *c, const layer *l,
						 const network *net)
{
	const int64_t B = l->batch, C = l->c, N = l->n, K = l->size, S = l->stride, P = l->pad;
	const int64_t OH = l->out_h, OW = l->out_w;

	if (B <= 0 || C <= 0 || l->h <= 0 || l->w <= 0 || N <= 0 || K <= 0 || S <= 0 || P < 0 ||
	    l->out_c != N || OH != (l->h - 1) * S + K - 2 * P || OW != (l->w - 1) * S + K - 2 * P ||
	    OH <= 0 || OW <= 0 || !l->weights || !l->biases)
		FAIL(c, l, "inconsistent deconvolution");
	/* gemm(1, 0, …) of the c × (n·size·size) weights, then col2im: ConvTranspose's layout. */
	const int64_t kernel[2] = {K, K}, strides[2] = {S, S}, pads[4] = {P, P, P, P};
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel),
		onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),
	};
	struct onnxhook_tensor in[3] = {
		onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, l->h, l->w)),
		onnxhook_op_weight(c, l->weights, onnxhook_shape4(C, N, K, K), "weight"),
	};
	if (!l->batch_normalize)
		in[2] = onnxhook_op_weight(c, l->biases, onnxhook_shape1(N), "bias");
	struct onnxhook_tensor y = onnxhook_op_node(c, "ConvTranspose", l->batch_normalize ? 2 : 3,
						    in, 3, attrs, onnxhook_shape4(B, N, OH, OW));
	if (l->batch_normalize)
		y = batchnorm(c, l, y);
	onnxhook_op_write(c, activate(c, y, l->activation), l->output);
}

static void record_forward_connected_layer(struct onnxhook_call *c, const layer *l,
					   const network *net)
{
	onnxhook_op_write(c,
			  connected(c, l,
				    onnxhook_op_read(c, net->input,
						     onnxhook_shape2(l->batch, l->inputs))),
			  l->output);
}

/* A standalone [batchnorm] layer. Darknet itself crashes here on the CPU (it copies into l.x,
 * which make_batchnorm_layer never allocates), so this only runs for apps that fill l.x. */
static void record_forward_batchnorm_layer(struct onnxhook_call *c, const layer *l,
					   const network *net)
{
	onnxhook_op_write(c, batchnorm(c, l, onnxhook_op_read(c, net->input, out_shape(l))),
			  l->output);
}

static void record_forward_activation_layer(struct onnxhook_call *c, const layer *l,
					    const network *net)
{
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, in_shape(l));
	struct onnxhook_tensor y = activate(c, x, l->activation);

	onnxhook_op_write(c, y.id == x.id ? onnxhook_op_unary(c, "Identity", x) : y, l->output);
}

/* [logistic]: the logistic; its cross-entropy against net.truth is training-only output. */
static void record_forward_logistic_layer(struct onnxhook_call *c, const layer *l,
					  const network *net)
{
	onnxhook_op_write(c,
			  onnxhook_op_unary(c, "Sigmoid",
					    onnxhook_op_read(c, net->input, in_shape(l))),
			  l->output);
}

/* x / sqrt(Σ_c x²) at each pixel. */
static void record_forward_l2norm_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t axis = 1;
	const struct onnxhook_shape s = onnxhook_shape4(l->batch, l->out_c, l->out_h, l->out_w);
	struct onnxhook_shape r = s;
	const struct onnxhook_attr keep = onnxhook_attr_int("keepdims", 1);

	if ((int64_t)l->out_c * l->out_h * l->out_w != l->outputs || l->outputs <= 0)
		FAIL(c, l, "inconsistent l2norm layer");
	r.dims[1] = 1;
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, s);
	const struct onnxhook_tensor in[2] = {onnxhook_op_binary(c, "Mul", x, x),
					      onnxhook_op_ints(c, 1, &axis, "axes")};
	struct onnxhook_tensor sum = onnxhook_op_node(c, "ReduceSum", 2, in, 1, &keep, r);
	onnxhook_op_write(c, onnxhook_op_binary(c, "Div", x, onnxhook_op_unary(c, "Sqrt", sum)),
			  l->output);
}

/* Darknet's local response normalization keeps a running sum over channels that never adds
 * channel size/2 and later subtracts it: every norm lacks that channel's square. */
static void record_forward_normalization_layer(struct onnxhook_call *c, const layer *l,
					       const network *net)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, size = l->size;
	const struct onnxhook_shape s = onnxhook_shape4(B, C, H, W);

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || size <= 0 || !l->squared || !l->norms)
		FAIL(c, l, "inconsistent normalization layer");
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, s);
	if (size / 2 >= C) {
		onnxhook_op_write(c, unmapped(c, "normalization", x, s), l->output);
		return;
	}
	struct onnxhook_tensor sq = onnxhook_op_binary(c, "Mul", x, x);
	/* Σ over channels [k - (size-1)/2, k + size/2]: a size × 1 box filter on B × 1 × C × HW. */
	float *ones = malloc((size_t)size * sizeof(*ones));
	if (!ones) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	for (int64_t i = 0; i < size; i++)
		ones[i] = 1.f;
	const int64_t kdims[4] = {1, 1, size, 1}, kernel[2] = {size, 1};
	const int64_t pads[4] = {(size - 1) / 2, 0, size / 2, 0};
	const struct onnxhook_attr attrs[] = {onnxhook_attr_ints("kernel_shape", 2, kernel),
					      onnxhook_attr_ints("pads", 4, pads)};
	const struct onnxhook_tensor in[2] = {
		onnxhook_op_reshape(c, sq, onnxhook_shape4(B, 1, C, H * W)),
		{onnxhook_call_const(c, ONNXHOOK_FLOAT, 4, kdims, ones, "window"),
		 onnxhook_shape4(1, 1, size, 1)},
	};
	free(ones);
	struct onnxhook_tensor sum =
		onnxhook_op_reshape(c,
				    onnxhook_op_node(c, "Conv", 2, in, 2, attrs,
						     onnxhook_shape4(B, 1, C, H * W)),
				    s);
	sum = onnxhook_op_binary(c, "Sub", sum,
				 onnxhook_op_slice(c, sq, 1, size / 2, size / 2 + 1));
	struct onnxhook_tensor norms =
		onnxhook_op_addk(c, onnxhook_op_mulk(c, sum, l->alpha, "alpha"), l->kappa, "kappa");
	struct onnxhook_tensor p =
		onnxhook_op_binary(c, "Pow", norms, onnxhook_op_scalar(c, -l->beta, "beta"));
	onnxhook_op_write(c, onnxhook_op_binary(c, "Mul", x, p), l->output);
}

/* Max over size × size windows; darknet's pad is the total padding, pad/2 of it before. */
static void record_forward_maxpool_layer(struct onnxhook_call *c, const layer *l,
					 const network *net)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, K = l->size, S = l->stride;
	const int64_t OH = l->out_h, OW = l->out_w, P = l->pad, pb = P / 2;

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || K <= 0 || S <= 0 || P < 0 || l->out_c != C ||
	    OH != (H + P - K) / S + 1 || OW != (W + P - K) / S + 1 || OH <= 0 || OW <= 0)
		FAIL(c, l, "inconsistent maxpool");
	/* Only as much padding after as the last window reaches: ONNX wants pads below the
	 * kernel, and the output size stays darknet's. */
	int64_t peh = (OH - 1) * S + K - H - pb, pew = (OW - 1) * S + K - W - pb;
	peh = peh > 0 ? peh : 0;
	pew = pew > 0 ? pew : 0;
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, H, W));
	const int64_t kernel[2] = {K, K}, strides[2] = {S, S};
	int64_t pads[4] = {pb, pb, peh, pew};
	if (pb >= K || peh >= K || pew >= K) {
		/* Windows entirely in the padding give -FLT_MAX in darknet: pad explicitly. */
		const int64_t p8[8] = {0, 0, pb, pb, 0, 0, peh, pew};
		const struct onnxhook_tensor in[3] = {x, onnxhook_op_ints(c, 8, p8, "pads"),
						      onnxhook_op_scalar(c, -FLT_MAX, "value")};
		x = onnxhook_op_node(c, "Pad", 3, in, 0, NULL,
				     onnxhook_shape4(B, C, H + pb + peh, W + pb + pew));
		memset(pads, 0, sizeof(pads));
	}
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel),
		onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),
	};
	onnxhook_op_write(c,
			  onnxhook_op_node(c, "MaxPool", 1, &x, 3, attrs,
					   onnxhook_shape4(B, C, OH, OW)),
			  l->output);
}

static void record_forward_avgpool_layer(struct onnxhook_call *c, const layer *l,
					 const network *net)
{
	struct onnxhook_tensor x =
		onnxhook_op_read(c, net->input, onnxhook_shape4(l->batch, l->c, l->h, l->w));

	onnxhook_op_write(c,
			  onnxhook_op_node(c, "GlobalAveragePool", 1, &x, 0, NULL,
					   onnxhook_shape4(l->batch, l->c, 1, 1)),
			  l->output);
}

/* x[:, :nc, :nh*step:step, :nw*step:step] */
static struct onnxhook_tensor strided(struct onnxhook_call *c, struct onnxhook_tensor x, int64_t nc,
				      int64_t nh, int64_t nw, int64_t step)
{
	int64_t axes[3], starts[3] = {0, 0, 0}, ends[3], steps[3];
	const int64_t n[3] = {nc, nh, nw};
	int k = 0;

	for (int i = 0; i < 3; i++) {
		int64_t st = i ? step : 1;
		if (n[i] == x.s.dims[i + 1] && st == 1)
			continue;
		axes[k] = i + 1;
		ends[k] = n[i] * st;
		steps[k++] = st;
	}
	return onnxhook_op_slices(c, x, k, axes, starts, ends, steps);
}

/* A float constant of shape dims (rank 4) with 1 where keep(i) along the one axis that is not 1. */
static struct onnxhook_tensor mask_axis(struct onnxhook_call *c, int axis, int64_t len,
					int64_t limit, int64_t step)
{
	int64_t dims[4] = {1, 1, 1, 1};
	float *m = malloc((size_t)len * sizeof(*m));

	dims[axis] = len;
	if (!m) {
		c->err = c->err ? c->err : -ENOMEM;
		return (struct onnxhook_tensor){ONNXHOOK_NONE, onnxhook_shape4(1, 1, 1, 1)};
	}
	for (int64_t i = 0; i < len; i++)
		m[i] = i % step == 0 && i / step < limit ? 1.f : 0.f;
	struct onnxhook_tensor r = {onnxhook_call_const(c, ONNXHOOK_FLOAT, 4, dims, m, "mask"),
				    onnxhook_shape_make(4, dims)};
	free(m);
	return r;
}

/* out = input; where the layers overlap, out = alpha·input + beta·from, from read every
 * stride-th pixel when it is larger, written to every sample-th pixel when it is smaller
 * (shortcut_cpu); channels beyond the smaller count stay the input's. Then the activation. */
static void record_forward_shortcut_layer(struct onnxhook_call *c, const layer *l,
					  const network *net)
{
	const int64_t B = l->batch, w1 = l->w, h1 = l->h, c1 = l->c;
	const int64_t w2 = l->out_w, h2 = l->out_h, c2 = l->out_c;

	if (!net->layers || l->index < 0 || l->index >= net->n || B <= 0 || w1 <= 0 || h1 <= 0 ||
	    c1 <= 0 || w2 <= 0 || h2 <= 0 || c2 <= 0 || l->outputs != c2 * h2 * w2)
		FAIL(c, l, "inconsistent shortcut");
	const layer *from = &net->layers[l->index];
	int64_t stride = w1 / w2 < 1 ? 1 : w1 / w2, sample = w2 / w1 < 1 ? 1 : w2 / w1;
	int64_t minw = w1 < w2 ? w1 : w2, minh = h1 < h2 ? h1 : h2, minc = c1 < c2 ? c1 : c2;
	if ((minh - 1) * stride >= h1 || (minh - 1) * sample >= h2)
		FAIL(c, l, "shortcut between layers of unrelated heights");

	struct onnxhook_tensor a =
		onnxhook_op_read(c, from->output, onnxhook_shape4(B, c1, h1, w1));
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape4(B, c2, h2, w2));
	struct onnxhook_tensor xs = strided(c, x, minc, minh, minw, sample);
	struct onnxhook_tensor as = strided(c, a, minc, minh, minw, stride);
	if (l->alpha != 1.f)
		xs = onnxhook_op_mulk(c, xs, l->alpha, "alpha");
	if (l->beta != 1.f)
		as = onnxhook_op_mulk(c, as, l->beta, "beta");
	struct onnxhook_tensor u = onnxhook_op_binary(c, "Add", xs, as), y;
	if (sample == 1 && minh == h2 && minw == w2) {
		y = u;
		if (minc < c2) {
			struct onnxhook_tensor parts[2] = {u, onnxhook_op_slice(c, x, 1, minc, c2)};
			y = onnxhook_op_concat(c, 2, parts, 1);
		}
	} else {
		/* Scatter u to every sample-th pixel (zeros elsewhere); keep the input where the
		 * mask is 0: x·(1 - m) + u is exact for finite values. */
		if (sample > 1) {
			const int64_t e6[6] = {0, 0, 0, sample - 1, 0, sample - 1};
			u = onnxhook_op_reshape(c, u,
						(struct onnxhook_shape){6,
									{B, minc, minh, 1, minw,
									 1}});
			u = onnxhook_op_pad_end(c, u, e6);
			u = onnxhook_op_reshape(c, u,
						onnxhook_shape4(B, minc, minh * sample,
								minw * sample));
		}
		const int64_t e4[4] = {0, c2 - minc, h2 - minh * sample, w2 - minw * sample};
		u = onnxhook_op_pad_end(c, u, e4);
		struct onnxhook_tensor m =
			onnxhook_op_binary(c, "Mul",
					   onnxhook_op_binary(c, "Mul",
							      mask_axis(c, 1, c2, minc, 1),
							      mask_axis(c, 2, h2, minh, sample)),
					   mask_axis(c, 3, w2, minw, sample));
		struct onnxhook_tensor keep =
			onnxhook_op_binary(c, "Sub", onnxhook_op_scalar(c, 1.f, "one"), m);
		y = onnxhook_op_binary(c, "Add", onnxhook_op_binary(c, "Mul", x, keep), u);
	}
	y = activate(c, y, l->activation);
	onnxhook_op_write(c, y.id == x.id ? onnxhook_op_unary(c, "Identity", y) : y, l->output);
}

/* Each batch item: the inputs' items one after another. Same-size images concatenate along
 * channels; otherwise the concatenation is of flattened items (darknet's out_h = out_w = 0). */
static void record_forward_route_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const struct onnxhook_shape os = out_shape(l);
	struct onnxhook_tensor stack[8],
		*xs = l->n <= 8 ? stack : calloc((size_t)l->n, sizeof(*xs));
	bool image = os.rank == 4;
	int64_t total = 0;

	if (!xs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	if (l->n <= 0 || !l->input_layers || !l->input_sizes || !net->layers) {
		bad(c, l, "route without inputs");
		goto out;
	}
	for (int i = 0; i < l->n; i++) {
		int idx = l->input_layers[i];
		if (idx < 0 || idx >= net->n || l->input_sizes[i] <= 0) {
			bad(c, l, "route input out of range");
			goto out;
		}
		const layer *src = &net->layers[idx];
		image = image && src->out_h == os.dims[2] && src->out_w == os.dims[3] &&
			(int64_t)src->out_c * src->out_h * src->out_w == l->input_sizes[i];
		total += l->input_sizes[i];
	}
	if (total != l->outputs) {
		bad(c, l, "route sizes do not add up");
		goto out;
	}
	for (int i = 0; i < l->n; i++) {
		const layer *src = &net->layers[l->input_layers[i]];
		xs[i] = onnxhook_op_read(c, src->output,
					 image ? onnxhook_shape4(l->batch, src->out_c, src->out_h,
								 src->out_w)
					       : onnxhook_shape2(l->batch, l->input_sizes[i]));
	}
	onnxhook_op_write(c,
			  l->n == 1 ? onnxhook_op_unary(c, "Identity", xs[0])
				    : onnxhook_op_concat(c, l->n, xs, 1),
			  l->output);
out:
	if (xs != stack)
		free(xs);
}

/* Nearest-neighbour upsampling times scale; with a negative stride (reverse), the sum of each
 * stride × stride block times scale. */
static void record_forward_upsample_layer(struct onnxhook_call *c, const layer *l,
					  const network *net)
{
	const int64_t B = l->batch, C = l->c, s = l->stride;
	const int64_t ih = l->reverse ? l->out_h : l->h, iw = l->reverse ? l->out_w : l->w;

	if (B <= 0 || C <= 0 || s <= 0 || ih <= 0 || iw <= 0 || l->out_c != C ||
	    (l->reverse ? l->out_h * s > l->h || l->out_w * s > l->w
			: l->out_h != l->h * s || l->out_w != l->w * s))
		FAIL(c, l, "inconsistent upsample");
	if (!l->reverse) {
		struct onnxhook_tensor x =
			onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, ih, iw));
		if (l->scale != 1.f)
			x = onnxhook_op_mulk(c, x, l->scale, "scale");
		const int64_t big[6] = {B, C, ih, s, iw, s};
		const struct onnxhook_tensor in[2] =
			{onnxhook_op_reshape(c, x,
					     (struct onnxhook_shape){6, {B, C, ih, 1, iw, 1}}),
			 onnxhook_op_ints(c, 6, big, "shape")};
		struct onnxhook_tensor y =
			onnxhook_op_node(c, "Expand", 2, in, 0, NULL, onnxhook_shape_make(6, big));
		onnxhook_op_write(c,
				  onnxhook_op_reshape(c, y, onnxhook_shape4(B, C, ih * s, iw * s)),
				  l->output);
		return;
	}
	/* upsample_cpu backwards: the input is read as B × C × (out_h·s) × (out_w·s), a prefix
	 * of its real B × C × h × w when those do not divide by s. */
	struct onnxhook_tensor x =
		onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, ih * s, iw * s));
	x = onnxhook_op_mulk(c, x, l->scale, "scale");
	const int64_t axes[2] = {3, 5};
	const struct onnxhook_attr keep = onnxhook_attr_int("keepdims", 0);
	const struct onnxhook_tensor in[2] =
		{onnxhook_op_reshape(c, x, (struct onnxhook_shape){6, {B, C, ih, s, iw, s}}),
		 onnxhook_op_ints(c, 2, axes, "axes")};
	onnxhook_op_write(c,
			  onnxhook_op_node(c, "ReduceSum", 2, in, 1, &keep,
					   onnxhook_shape4(B, C, ih, iw)),
			  l->output);
}

/* What happens to each of the K entries of an anchor in a yolo/region head. */
enum dn_entry { E_KEEP, E_SIG1, E_SIG2, E_SIG3, E_SOFTMAX };

/* x (B × n·K × h × w) viewed as B × n × K × h·w; each run of entries sliced, transformed, and
 * concatenated back. */
static struct onnxhook_tensor head_entries(struct onnxhook_call *c, struct onnxhook_tensor x,
					   int64_t n, int64_t K, const uint8_t *kind)
{
	const int64_t B = x.s.dims[0], h = x.s.dims[2], w = x.s.dims[3];
	const struct onnxhook_attr axis2 = onnxhook_attr_int("axis", 2);
	struct onnxhook_tensor v = onnxhook_op_reshape(c, x, onnxhook_shape4(B, n, K, h * w)),
			       parts[16];
	int np = 0;

	for (int64_t s = 0, e; s < K; s = e) {
		for (e = s + 1; e < K && kind[e] == kind[s]; e++)
			;
		if (np == 16)
			return bad(c, NULL, "too many entry kinds");
		struct onnxhook_tensor p = onnxhook_op_slice(c, v, 2, s, e);
		if (kind[s] == E_SOFTMAX)
			p = onnxhook_op_node(c, "Softmax", 1, &p, 1, &axis2, p.s);
		for (int k = E_SIG1; k <= kind[s] && kind[s] <= E_SIG3; k++)
			p = onnxhook_op_unary(c, "Sigmoid", p);
		parts[np++] = p;
	}
	return onnxhook_op_reshape(c, onnxhook_op_concat(c, np, parts, 2),
				   onnxhook_shape4(B, n * K, h, w));
}

/* Logistic on x, y, objectness and classes of every anchor; w, h untouched. */
static void record_forward_yolo_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t K = 4 + 1 + (int64_t)l->classes;
	uint8_t *kind;

	if (l->n <= 0 || l->classes < 0 || (int64_t)l->n * K != l->c || l->outputs != l->c * l->h * l->w)
		FAIL(c, l, "inconsistent yolo layer");
	if (!(kind = malloc((size_t)K))) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	for (int64_t e = 0; e < K; e++)
		kind[e] = e == 2 || e == 3 ? E_KEEP : E_SIG1;
	struct onnxhook_tensor x =
		onnxhook_op_read(c, net->input, onnxhook_shape4(l->batch, l->c, l->h, l->w));
	onnxhook_op_write(c, head_entries(c, x, l->n, K, kind), l->output);
	free(kind);
}

/* Logistic on x, y and (without background) objectness; classes by softmax over the raw input
 * (background: objectness joins the softmax) or by logistic. */
static void record_forward_region_layer(struct onnxhook_call *c, const layer *l,
					const network *net)
{
	const int64_t K = (int64_t)l->coords + l->classes + 1;
	uint8_t *kind;

	if (l->n <= 0 || l->classes < 0 || l->coords < 0 || (int64_t)l->n * K != l->c ||
	    l->outputs != l->c * l->h * l->w)
		FAIL(c, l, "inconsistent region layer");
	struct onnxhook_tensor x =
		onnxhook_op_read(c, net->input, onnxhook_shape4(l->batch, l->c, l->h, l->w));
	if (l->softmax_tree) {
		/* softmax_cpu over tree groups with stride n·w·h from coords + 1: groups overlap
		 * across anchors; no standard op sequence was written for it. */
		onnxhook_op_write(c, unmapped(c, "region_tree", x, x.s), l->output);
		return;
	}
	if (!(kind = malloc((size_t)K))) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	for (int64_t e = 0; e < K; e++) {
		int k = (e < 2) + (e == l->coords && !l->background) + (e > l->coords && !l->softmax);
		kind[e] = k == 0 ? E_KEEP : (uint8_t)(E_SIG1 + k - 1);
		if (l->softmax && e >= l->coords + !l->background)
			kind[e] = E_SOFTMAX;
	}
	onnxhook_op_write(c, head_entries(c, x, l->n, K, kind), l->output);
	free(kind);
}

/* yolov1: a copy, with a softmax over the classes of each cell when softmax is set. */
static void record_forward_detection_layer(struct onnxhook_call *c, const layer *l,
					   const network *net)
{
	const int64_t B = l->batch, L = (int64_t)l->side * l->side, C = l->classes;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", 2);

	if (B <= 0 || l->inputs <= 0 || l->outputs != l->inputs || L * C > l->inputs || C < 0)
		FAIL(c, l, "inconsistent detection layer");
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape2(B, l->inputs));
	if (!l->softmax || C == 0) {
		onnxhook_op_write(c, onnxhook_op_unary(c, "Identity", x), l->output);
		return;
	}
	struct onnxhook_tensor p = onnxhook_op_reshape(c, onnxhook_op_slice(c, x, 1, 0, L * C),
						       onnxhook_shape3(B, L, C));
	p = onnxhook_op_reshape(c, onnxhook_op_node(c, "Softmax", 1, &p, 1, &axis, p.s),
				onnxhook_shape2(B, L * C));
	if (L * C < l->inputs) {
		struct onnxhook_tensor parts[2] = {p, onnxhook_op_slice(c, x, 1, L * C, l->inputs)};
		p = onnxhook_op_concat(c, 2, parts, 1);
	}
	onnxhook_op_write(c, p, l->output);
}

/* A softmax over each tree group, the groups one after another along x (B × inputs): the
 * groups gathered into a G × M table padded with -FLT_MAX (exp gives 0 there), one Softmax
 * along M, gathered back. */
static struct onnxhook_tensor softmax_tree(struct onnxhook_call *c, const layer *l,
					   struct onnxhook_tensor x)
{
	const tree *t = l->softmax_tree;
	const int64_t B = x.s.dims[0], I = x.s.dims[1];
	int64_t G = 0, M = 0, total = 0;

	if (t->groups < 0 || !t->group_size)
		return bad(c, l, "softmax tree without groups");
	for (int g = 0; g < t->groups; g++) {
		if (t->group_size[g] < 0)
			return bad(c, l, "softmax tree with a negative group");
		G += t->group_size[g] > 0;
		M = t->group_size[g] > M ? t->group_size[g] : M;
		total += t->group_size[g];
	}
	/* Groups that do not cover the input exactly leave stale memory in l.output (or read
	 * past the input): nothing a graph could reproduce. */
	if (total != I || G == 0)
		return unmapped(c, "softmax_tree", x, x.s);
	int64_t *idx = malloc((size_t)(G * M + I) * sizeof(*idx)), *inv = idx + G * M;
	if (!idx) {
		c->err = c->err ? c->err : -ENOMEM;
		return x;
	}
	for (int64_t g = 0, k = 0, off = 0; g < t->groups; off += t->group_size[g++]) {
		if (!t->group_size[g])
			continue;
		for (int64_t j = 0; j < M; j++)
			idx[k * M + j] = j < t->group_size[g] ? off + j : I;
		for (int64_t j = 0; j < t->group_size[g]; j++)
			inv[off + j] = k * M + j;
		k++;
	}
	const int64_t gdims[2] = {G, M}, one = 1, last = -1;
	const struct onnxhook_attr axis1 = onnxhook_attr_int("axis", 1);
	const struct onnxhook_attr axis_last = onnxhook_attr_int("axis", last);
	const int64_t pads[4] = {0, 0, 0, one};
	if (l->temperature != 1.f)
		x = onnxhook_op_binary(c, "Div", x,
				       onnxhook_op_scalar(c, l->temperature, "temperature"));
	const struct onnxhook_tensor pin[3] = {x, onnxhook_op_ints(c, 4, pads, "pads"),
					       onnxhook_op_scalar(c, -FLT_MAX, "value")};
	struct onnxhook_tensor xp =
		onnxhook_op_node(c, "Pad", 3, pin, 0, NULL, onnxhook_shape2(B, I + 1));
	const struct onnxhook_tensor gin[2] = {xp,
					       {onnxhook_call_const(c, ONNXHOOK_INT64, 2, gdims,
								    idx, "groups"),
						onnxhook_shape2(G, M)}};
	struct onnxhook_tensor s =
		onnxhook_op_node(c, "Gather", 2, gin, 1, &axis1, onnxhook_shape3(B, G, M));
	s = onnxhook_op_node(c, "Softmax", 1, &s, 1, &axis_last, s.s);
	const struct onnxhook_tensor bin[2] = {onnxhook_op_reshape(c, s, onnxhook_shape2(B, G * M)),
					       onnxhook_op_ints(c, (int)I, inv, "order")};
	free(idx);
	return onnxhook_op_node(c, "Gather", 2, bin, 1, &axis1, onnxhook_shape2(B, I));
}

/* A softmax over each of groups contiguous chunks, of x / temperature. */
static void record_forward_softmax_layer(struct onnxhook_call *c, const layer *l,
					 const network *net)
{
	const int64_t B = l->batch, I = l->inputs, G = l->groups;
	const struct onnxhook_attr axis = onnxhook_attr_int("axis", -1);

	if (B <= 0 || I <= 0 || G <= 0 || I % G || l->outputs != I)
		FAIL(c, l, "inconsistent softmax layer");
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape2(B, I));
	if (l->softmax_tree) {
		onnxhook_op_write(c, softmax_tree(c, l, x), l->output);
		return;
	}
	x = onnxhook_op_reshape(c, x,
				G == 1 ? onnxhook_shape2(B, I) : onnxhook_shape3(B, G, I / G));
	if (l->temperature != 1.f)
		x = onnxhook_op_binary(c, "Div", x,
				       onnxhook_op_scalar(c, l->temperature, "temperature"));
	x = onnxhook_op_node(c, "Softmax", 1, &x, 1, &axis, x.s);
	onnxhook_op_write(c, onnxhook_op_reshape(c, x, onnxhook_shape2(B, I)), l->output);
}

/* Inference does nothing: l.output is the previous layer's output (parse_network_cfg points it
 * there), so later readers already find that value. */
static void record_forward_dropout_layer(struct onnxhook_call *c, const layer *l,
					 const network *net)
{
	if (l->output && l->output != net->input)
		onnxhook_op_write(c,
				  onnxhook_op_read(c, net->input,
						   onnxhook_shape2(l->batch, l->inputs)),
				  l->output);
}

/* The loss against net.truth: nothing of the inference (network_predict passes no truth). */
static void record_forward_cost_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
}

/* The centre crop, rescaled: x·2 - 1 (noadjust: x). */
static void record_forward_crop_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, OH = l->out_h, OW = l->out_w;

	if (B <= 0 || C <= 0 || OH <= 0 || OW <= 0 || OH > H || OW > W || l->out_c != C)
		FAIL(c, l, "inconsistent crop");
	const int64_t dh = (H - OH) / 2, dw = (W - OW) / 2;
	const int64_t axes[2] = {2, 3}, starts[2] = {dh, dw}, ends[2] = {dh + OH, dw + OW};
	const int64_t steps[2] = {1, 1};
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, H, W));
	struct onnxhook_tensor y = onnxhook_op_slices(c, x, 2, axes, starts, ends, steps);
	if (!l->noadjust)
		y = onnxhook_op_addk(c, onnxhook_op_mulk(c, y, 2.f, "scale"), -1.f, "shift");
	onnxhook_op_write(c, y.id == x.id ? onnxhook_op_unary(c, "Identity", x) : y, l->output);
}

/* Reorg rewrites memory as reorg_cpu does: forward (stride s) reads its input as
 * B × c/s² × h·s × w·s and applies SpaceToDepth (so the result is not SpaceToDepth of the
 * input); reverse is DepthToSpace (DCR); flatten transposes C × HW; extra appends zeros. */
static void record_forward_reorg_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, s = l->stride;
	const struct onnxhook_attr bs = onnxhook_attr_int("blocksize", s);

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || s <= 0 || l->inputs != C * H * W)
		FAIL(c, l, "inconsistent reorg");
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, H, W)), y;
	if (l->flatten) {
		const int64_t perm[3] = {0, 2, 1};
		const struct onnxhook_attr p = onnxhook_attr_ints("perm", 3, perm);
		if (l->outputs != l->inputs)
			FAIL(c, l, "inconsistent reorg");
		/* forward: B × C × HW -> B × HW × C; reverse: the inverse */
		y = onnxhook_op_reshape(c, x,
					l->reverse ? onnxhook_shape3(B, H * W, C)
						   : onnxhook_shape3(B, C, H * W));
		y = onnxhook_op_node(c, "Transpose", 1, &y, 1, &p,
				     onnxhook_shape3(B, y.s.dims[2], y.s.dims[1]));
		onnxhook_op_write(c, onnxhook_op_reshape(c, y, out_shape(l)), l->output);
		return;
	}
	if (l->extra) {
		const int64_t e2[2] = {0, l->extra};
		if (l->extra < 0 || l->outputs != l->inputs + l->extra)
			FAIL(c, l, "inconsistent reorg");
		onnxhook_op_write(c,
				  onnxhook_op_pad_end(
					  c,
					  onnxhook_op_reshape(c, x, onnxhook_shape2(B, l->inputs)),
					  e2),
				  l->output);
		return;
	}
	if (C % (s * s) || (!l->reverse && (H % s || W % s)) || l->outputs != l->inputs) {
		onnxhook_op_write(c, unmapped(c, "reorg", x, out_shape(l)), l->output);
		return;
	}
	if (l->reverse) {
		const struct onnxhook_attr a[2] = {bs, onnxhook_attr_string("mode", "DCR")};
		y = onnxhook_op_node(c, "DepthToSpace", 1, &x, 2, a,
				     onnxhook_shape4(B, C / (s * s), H * s, W * s));
	} else {
		y = onnxhook_op_reshape(c, x, onnxhook_shape4(B, C / (s * s), H * s, W * s));
		y = onnxhook_op_node(c, "SpaceToDepth", 1, &y, 1, &bs, onnxhook_shape4(B, C, H, W));
	}
	onnxhook_op_write(c, onnxhook_op_reshape(c, y, out_shape(l)), l->output);
}

/* A convolution with its own weights at every output location (yolov1): the im2col patches
 * (a grouped Conv with one-hot kernels, in im2col's row order), one matrix product per
 * location, plus a bias per output element, then the activation. */
static void record_forward_local_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, N = l->n, K = l->size;
	const int64_t S = l->stride, P = l->pad, OH = l->out_h, OW = l->out_w, L = OH * OW;
	const int64_t KK = C * K * K;

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || N <= 0 || K <= 0 || S <= 0 || P < 0 || OH <= 0 ||
	    OW <= 0 || l->out_c != N || !l->weights || !l->biases)
		FAIL(c, l, "inconsistent local layer");
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, onnxhook_shape4(B, C, H, W));
	/* local_out_height and im2col disagree unless pad is size/2-like: then darknet's gemm
	 * reads columns of another width. */
	if (OH != (H + 2 * P - K) / S + 1 || OW != (W + 2 * P - K) / S + 1) {
		onnxhook_op_write(c, unmapped(c, "local", x, out_shape(l)), l->output);
		return;
	}
	float *eye = calloc((size_t)KK * K * K, sizeof(*eye));
	if (!eye) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	for (int64_t o = 0; o < KK; o++)
		eye[o * K * K + o % (K * K)] = 1.f;
	const int64_t edims[4] = {KK, 1, K, K}, kernel[2] = {K, K}, strides[2] = {S, S};
	const int64_t pads[4] = {P, P, P, P}, perm[3] = {2, 1, 0};
	const struct onnxhook_attr attrs[] = {
		onnxhook_attr_ints("kernel_shape", 2, kernel),
		onnxhook_attr_ints("strides", 2, strides),
		onnxhook_attr_ints("pads", 4, pads),
		onnxhook_attr_int("group", C),
	};
	const struct onnxhook_attr tp = onnxhook_attr_ints("perm", 3, perm);
	const struct onnxhook_tensor in[2] = {x,
					      {onnxhook_call_const(c, ONNXHOOK_FLOAT, 4, edims, eye,
								   "patches"),
					       onnxhook_shape4(KK, 1, K, K)}};
	free(eye);
	struct onnxhook_tensor cols =
		onnxhook_op_node(c, "Conv", 2, in, 4, attrs, onnxhook_shape4(B, KK, OH, OW));
	cols = onnxhook_op_reshape(c, cols, onnxhook_shape3(B, KK, L));
	cols = onnxhook_op_node(c, "Transpose", 1, &cols, 1, &tp, onnxhook_shape3(L, KK, B));
	const struct onnxhook_tensor mm[2] = {onnxhook_op_weight(c, l->weights,
								 onnxhook_shape3(L, N, KK),
								 "weight"),
					      cols};
	struct onnxhook_tensor y =
		onnxhook_op_node(c, "MatMul", 2, mm, 0, NULL, onnxhook_shape3(L, N, B));
	y = onnxhook_op_node(c, "Transpose", 1, &y, 1, &tp, onnxhook_shape3(B, N, L));
	y = onnxhook_op_binary(c, "Add", y,
			       onnxhook_op_weight(c, l->biases, onnxhook_shape2(N, L), "bias"));
	y = onnxhook_op_reshape(c, y, onnxhook_shape4(B, N, OH, OW));
	onnxhook_op_write(c, activate(c, y, l->activation), l->output);
}

/* Segmentation head: its forward reads net.truth even at inference (network_predict passes
 * none), so darknet crashes before anything could be recorded. */
static void record_forward_iseg_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	onnxhook_op_write(c,
			  unmapped(c, "iseg", onnxhook_op_read(c, net->input, in_shape(l)),
				   out_shape(l)),
			  l->output);
}

/* ---- recurrent layers: the steps unrolled, the state a graph input and output ------------- */

/* The input of every step: net.input holds steps × batch × inputs. */
static struct onnxhook_tensor step_input(struct onnxhook_call *c, struct onnxhook_tensor all,
					 int64_t i, struct onnxhook_shape one)
{
	struct onnxhook_tensor x = onnxhook_op_slice(c, all, 0, i, i + 1);

	return onnxhook_op_reshape(c, x, one);
}

static bool sub_ok(const layer *s, int64_t batch, int64_t inputs, int64_t outputs)
{
	return s && s->batch == batch && s->inputs == inputs && s->outputs == outputs;
}

/* state = [state +] in(x) + self(state); output = out(state) (connected layers). */
static void record_forward_rnn_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs, T = l->steps;
	const layer *in_l = l->input_layer, *self_l = l->self_layer, *out_l = l->output_layer;

	if (B <= 0 || I <= 0 || O <= 0 || T <= 0 || !l->state || !sub_ok(in_l, B, I, O) ||
	    !sub_ok(self_l, B, O, O) || !sub_ok(out_l, B, O, O))
		FAIL(c, l, "inconsistent rnn layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	struct onnxhook_tensor all = onnxhook_op_read(c, net->input, onnxhook_shape3(T, B, I));
	struct onnxhook_tensor state = onnxhook_op_read(c, l->state, onnxhook_shape2(B, O));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor a =
			connected(c, in_l, step_input(c, all, i, onnxhook_shape2(B, I)));
		struct onnxhook_tensor s = connected(c, self_l, state);
		state = onnxhook_op_binary(c, "Add",
					   l->shortcut ? onnxhook_op_binary(c, "Add", state, a) : a,
					   s);
		outs[i] = connected(c, out_l, state);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, state, l->state);
	}
	free(outs);
}

/* z = σ(uz·x + wz·h), r = σ(ur·x + wr·h), h~ = act(uh·x + wh·(r·h)), h = z·h + (1 - z)·h~. */
static void record_forward_gru_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs, T = l->steps;

	if (B <= 0 || I <= 0 || O <= 0 || T <= 0 || !l->state || !sub_ok(l->uz, B, I, O) ||
	    !sub_ok(l->ur, B, I, O) || !sub_ok(l->uh, B, I, O) || !sub_ok(l->wz, B, O, O) ||
	    !sub_ok(l->wr, B, O, O) || !sub_ok(l->wh, B, O, O))
		FAIL(c, l, "inconsistent gru layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	struct onnxhook_tensor all = onnxhook_op_read(c, net->input, onnxhook_shape3(T, B, I));
	struct onnxhook_tensor h = onnxhook_op_read(c, l->state, onnxhook_shape2(B, O));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor x = step_input(c, all, i, onnxhook_shape2(B, I));
		struct onnxhook_tensor z =
			onnxhook_op_unary(c, "Sigmoid",
					  onnxhook_op_binary(c, "Add", connected(c, l->uz, x),
							     connected(c, l->wz, h)));
		struct onnxhook_tensor r =
			onnxhook_op_unary(c, "Sigmoid",
					  onnxhook_op_binary(c, "Add", connected(c, l->ur, x),
							     connected(c, l->wr, h)));
		struct onnxhook_tensor hh =
			onnxhook_op_binary(c, "Add", connected(c, l->uh, x),
					   connected(c, l->wh, onnxhook_op_binary(c, "Mul", h, r)));
		hh = activate(c, hh, l->tanh ? TANH : LOGISTIC);
		struct onnxhook_tensor keep = onnxhook_op_binary(c, "Mul", z, h);
		struct onnxhook_tensor upd =
			onnxhook_op_binary(c, "Mul",
					   onnxhook_op_binary(c, "Sub",
							      onnxhook_op_scalar(c, 1.f, "one"), z),
					   hh);
		h = outs[i] = onnxhook_op_binary(c, "Add", keep, upd);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, h, l->state);
	}
	free(outs);
}

/* f, i, o = σ(w·h + u·x), g = tanh(w·h + u·x); c = c·f + i·g; h = tanh(c)·o. */
static void record_forward_lstm_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs, T = l->steps;
	const layer *w[4] = {l->wf, l->wi, l->wg, l->wo}, *u[4] = {l->uf, l->ui, l->ug, l->uo};

	for (int k = 0; k < 4; k++)
		if (!sub_ok(w[k], B, O, O) || !sub_ok(u[k], B, I, O))
			FAIL(c, l, "inconsistent lstm layer");
	if (B <= 0 || I <= 0 || O <= 0 || T <= 0 || !l->h_cpu || !l->c_cpu)
		FAIL(c, l, "inconsistent lstm layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	struct onnxhook_tensor all = onnxhook_op_read(c, net->input, onnxhook_shape3(T, B, I));
	struct onnxhook_tensor h = onnxhook_op_read(c, l->h_cpu, onnxhook_shape2(B, O)),
			       cell = onnxhook_op_read(c, l->c_cpu, onnxhook_shape2(B, O));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor x = step_input(c, all, i, onnxhook_shape2(B, I)), g[4];
		for (int k = 0; k < 4; k++) {
			g[k] = onnxhook_op_binary(c, "Add", connected(c, w[k], h),
						  connected(c, u[k], x));
			g[k] = activate(c, g[k], k == 2 ? TANH : LOGISTIC);
		}
		cell = onnxhook_op_binary(c, "Add", onnxhook_op_binary(c, "Mul", cell, g[0]),
					  onnxhook_op_binary(c, "Mul", g[1], g[2]));
		h = outs[i] = onnxhook_op_binary(c, "Mul", activate(c, cell, TANH), g[3]);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, h, l->h_cpu);
		onnxhook_op_write(c, cell, l->c_cpu);
	}
	free(outs);
}

/* The rnn with 3×3 convolutions. */
static void record_forward_crnn_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, T = l->steps;
	const layer *in_l = l->input_layer, *self_l = l->self_layer, *out_l = l->output_layer;

	if (B <= 0 || T <= 0 || !l->state || !in_l || !self_l || !out_l || in_l->batch != B ||
	    self_l->batch != B || out_l->batch != B || in_l->outputs != l->hidden ||
	    self_l->inputs != l->hidden || self_l->outputs != l->hidden ||
	    out_l->inputs != l->hidden || out_l->outputs != l->outputs || in_l->inputs != l->inputs)
		FAIL(c, l, "inconsistent crnn layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	const struct onnxhook_shape xs = onnxhook_shape4(B, in_l->c, in_l->h, in_l->w);
	struct onnxhook_tensor all =
		onnxhook_op_read(c, net->input,
				 (struct onnxhook_shape){5, {T, B, in_l->c, in_l->h, in_l->w}});
	struct onnxhook_tensor state =
		onnxhook_op_read(c, l->state, onnxhook_shape4(B, self_l->c, self_l->h, self_l->w));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor a = conv(c, in_l, step_input(c, all, i, xs));
		struct onnxhook_tensor s = conv(c, self_l, state);
		state = onnxhook_op_binary(c, "Add",
					   l->shortcut ? onnxhook_op_binary(c, "Add", state, a) : a,
					   s);
		outs[i] = conv(c, out_l, state);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, state, l->state);
	}
	free(outs);
}

/* ---- is this the darknet we were built for? ---------------------------------------------- */

static int dn_state; /* 0 not checked yet, 1 the expected build, -1 another one */
static pthread_mutex_t dn_state_lock = PTHREAD_MUTEX_INITIALIZER;

/* The layer structs are passed by value: their layout is trusted only in the libdarknet.so
 * darknet.h came with, recognized by its build-id. Any other: one warning, no recording. */
static bool darknet_ok(const void *real_fn)
{
	int s = __atomic_load_n(&dn_state, __ATOMIC_ACQUIRE);

	if (s)
		return s > 0;
	pthread_mutex_lock(&dn_state_lock);
	if (!dn_state) {
		struct onnxhook_object b;
		/* A copy located in the program is trusted as the reference it matched. */
		bool object = onnxhook_located_object(real_fn, NULL, &b) ||
			      onnxhook_object_of(real_fn, &b);
		s = object && !strcmp(b.build_id, ONNXHOOK_DARKNET_BUILD_ID) ? 1 : -1;
		/* Another darknet build deserves a warning; another library that merely
		 * exports one of these names (forward_network is generic) does not. */
		const char *base = object ? strrchr(b.path, '/') : NULL;
		bool named = object && strstr(base ? base + 1 : b.path, "darknet");
		if (s < 0)
			onnxhook_log(named ? ONNXHOOK_LOG_INFO : ONNXHOOK_LOG_DEBUG,
				     "%sdarknet: %s (build-id %s) is not the libdarknet.so onnxhook "
				     "was built against (build-id %s): its layers run unrecorded",
				     named ? "warning: " : "", object ? b.path : "the library",
				     b.build_id[0] ? b.build_id : "none", ONNXHOOK_DARKNET_BUILD_ID);
		__atomic_store_n(&dn_state, s, __ATOMIC_RELEASE);
	}
	s = dn_state;
	pthread_mutex_unlock(&dn_state_lock);
	return s > 0;
}

/* ---- the hooks ----------------------------------------------------------------------------- */

typedef void dn_layer_fn(layer, network);

static void record(const char *symbol, LAYER_TYPE type, dn_record_fn *fn, const layer *l,
		   const network *net)
{
	struct onnxhook_call c;
	char name[32];

	do {
		if (!onnxhook_record_begin(&c, symbol))
			return;
		snprintf(name, sizeof(name), "layer_%d", net->index);
		onnxhook_call_set_name(&c, name);
		onnxhook_call_set_result(&c, l->output); /* the layer_<i> value is l.output */
		if (l->type != type)
			bad(&c, NULL, "l.type does not match the function");
		else
			fn(&c, l, net);
		onnxhook_record_end(&c);
	} while (onnxhook_record_again());
}

/* Each exported symbol is a stub that jumps through its slot: to hook_<symbol> for the build
 * we know, else straight to the library's own function. A C pass-through would copy the
 * structs with our idea of their size (and forward_network is a name other code may export
 * with another signature); the jump hands any caller's arguments over untouched. An empty slot
 * calls onnxhook_dn_resolve() first (stub-x86_64.h). */
#define DN_STUB(name) ONNXHOOK_JUMP_STUB(name, onnxhook_dn_slot_##name, onnxhook_dn_resolve)

#define DN_SLOT(name) __attribute__((visibility("hidden"), used)) void *onnxhook_dn_slot_##name;

#define DN_HOOK(name, type)                                                                      \
	ONNXHOOK_EXPORT void name(layer l, network net);                                         \
	DN_SLOT(name)                                                                            \
	static dn_layer_fn *real_##name;                                                         \
	static void hook_##name(layer l, network net)                                            \
	{                                                                                        \
		dn_layer_fn *real = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);             \
		if (!onnxhook_enter()) {                                                         \
			real(l, net);                                                            \
			return;                                                                  \
		}                                                                                \
		if (!net.train) { /* training passes are not inference */                        \
			onnxhook_checking(true);                                                 \
			record(#name, type, record_##name, &l, &net);                            \
			onnxhook_checking(false);                                                \
		}                                                                                \
		real(l, net);                                                                    \
		if (!net.train)                                                                  \
			record(#name, type, record_##name, &l, &net);                            \
		onnxhook_leave();                                                                \
	}                                                                                        \
	DN_STUB(name)
DARKNET_HOOKS(DN_HOOK)

/* forward_network only marks where a pass starts: the layers inside are what gets recorded
 * (it is not an enclosing op). Training passes record nothing. */
DN_SLOT(forward_network)
static void (*real_forward_network)(network *);

static void hook_forward_network(network *netp)
{
	void (*real)(network *) = __atomic_load_n(&real_forward_network, __ATOMIC_ACQUIRE);

	if (netp && !netp->train)
		onnxhook_pass_boundary();
	real(netp);
}
DN_STUB(forward_network)

struct dn_hook {
	const char *name;
	void **slot;
	void *hook;
	void **real;
};

#define DN_ENTRY(name, type)                                                                     \
	{#name, &onnxhook_dn_slot_##name, (void *)hook_##name, (void **)&real_##name},
static const struct dn_hook dn_hooks[] = {
	DARKNET_HOOKS(DN_ENTRY){"forward_network", &onnxhook_dn_slot_forward_network,
				(void *)hook_forward_network, (void **)&real_forward_network},
};

/* A libdarknet.so loaded with dlopen(RTLD_LOCAL) is out of RTLD_NEXT's reach, yet its own calls
 * (l.forward, forward_network through its PLT) bind to our stubs. Look through the objects
 * loaded after us: onnxhook's dlsym on an object's handle fills the real-function slot of a
 * hooked symbol that object defines. */
static void find_in_loaded(const char *name, void **real)
{
	struct link_map *self = NULL;
	Dl_info info;

	if (!dladdr1((void *)find_in_loaded, &info, (void **)&self, RTLD_DL_LINKMAP) || !self)
		return;
	for (struct link_map *l = self->l_next; l && !__atomic_load_n(real, __ATOMIC_ACQUIRE);
	     l = l->l_next) {
		void *h = l->l_name && *l->l_name ? dlopen(l->l_name, RTLD_LAZY | RTLD_NOLOAD) : NULL;
		if (!h)
			continue;
		(void)dlsym(h, name);
		dlclose(h);
	}
}

void *onnxhook_dn_resolve(void **slot);

/* First call of a stub: find the library's function and the slot's target. */
__attribute__((used)) void *onnxhook_dn_resolve(void **slot)
{
	for (size_t i = 0; i < sizeof(dn_hooks) / sizeof(dn_hooks[0]); i++) {
		const struct dn_hook *h = &dn_hooks[i];
		if (h->slot != slot)
			continue;
		/* dlsym on darknet's handle may have filled it (an RTLD_LOCAL library). */
		void *real = __atomic_load_n(h->real, __ATOMIC_ACQUIRE);
		if (!real && !(real = dlsym(RTLD_NEXT, h->name))) {
			find_in_loaded(h->name, h->real);
			real = __atomic_load_n(h->real, __ATOMIC_ACQUIRE);
		}
		if (!real) /* says so and exits as the dynamic linker would */
			real = onnxhook_resolve(h->name);
		__atomic_store_n(h->real, real, __ATOMIC_RELEASE);
		void *target = darknet_ok(real) ? h->hook : real;
		__atomic_store_n(slot, target, __ATOMIC_RELEASE);
		return target;
	}
	abort(); /* only the stubs call this, each with its own slot */
}

#define DN_SYMBOL(name, type) {#name, (void *)name, (void **)&real_##name},
const struct onnxhook_symbol onnxhook_darknet_symbols[] = {
	DARKNET_HOOKS(DN_SYMBOL){"forward_network", (void *)forward_network,
				 (void **)&real_forward_network},
	{NULL, NULL, NULL},
};
