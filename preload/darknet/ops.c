/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: the pieces layers share: shapes, the activations, batch
 * normalization, convolution and the fully connected product as darknet computes them. See
 * docs/darknet.md. */
#include <math.h>
#include <stdlib.h>

#include "layers.h"

/* What a layer reads at net.input: batch × c × h × w when its input is an image. */
struct onnxhook_shape dn_in_shape(const layer *l)
{
	if (l->c > 0 && l->h > 0 && l->w > 0 && (int64_t)l->c * l->h * l->w == l->inputs)
		return onnxhook_shape4(l->batch, l->c, l->h, l->w);
	return onnxhook_shape2(l->batch, l->inputs);
}

/* What a layer leaves at l.output: batch × out_c × out_h × out_w when it is an image. */
struct onnxhook_shape dn_out_shape(const layer *l)
{
	if (l->out_c > 0 && l->out_h > 0 && l->out_w > 0 &&
	    (int64_t)l->out_c * l->out_h * l->out_w == l->outputs)
		return onnxhook_shape4(l->batch, l->out_c, l->out_h, l->out_w);
	return onnxhook_shape2(l->batch, l->outputs);
}

/* The layer's fields contradict each other: stop recording (the model keeps what came before)
 * rather than write a graph that computes something else. */
struct onnxhook_tensor dn_bad(struct onnxhook_call *c, const layer *l, const char *why)
{
	if (!c->err) {
		if (!c->check) /* said once, by the recording after the call */
			onnxhook_warn("darknet: %s: %s", c->label, why);
		c->err = -EINVAL;
	}
	return (struct onnxhook_tensor){ONNXHOOK_NONE, l ? dn_out_shape(l) : onnxhook_shape1(1)};
}

/* A node in the "darknet" domain: what no standard op reproduces. The model still holds the
 * rest of the network; the preload's exit warning names what onnxruntime cannot run. */
struct onnxhook_tensor dn_unmapped(struct onnxhook_call *c, const char *what,
				       struct onnxhook_tensor x, struct onnxhook_shape out)
{
	onnxhook_note_unmapped(what);
	return onnxhook_op_node_domain(c, "darknet", what, 1, &x, 0, NULL, out);
}

static struct onnxhook_tensor leaky(struct onnxhook_call *c, struct onnxhook_tensor x, float alpha)
{
	const struct onnxhook_attr a = onnxhook_attr_float("alpha", alpha);

	return onnxhook_op_node(c, "LeakyRelu", 1, &x, 1, &a, x.s);
}

/* Darknet's activate_array(x, n, a) as standard ops; x itself for linear. The piecewise ones
 * are written with Clip instead of comparisons: exact, and no boolean tensors. */
struct onnxhook_tensor dn_activate(struct onnxhook_call *c, struct onnxhook_tensor x,
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
	return dn_unmapped(c, "activation", x, x.s);
}

/* Darknet normalizes with (x - mean) / (sqrt(var) + .000001f): epsilon on the standard
 * deviation, where ONNX takes sqrt(var + epsilon). BatchNormalization with epsilon 0 and
 * var' = (sqrt(var) + 1e-6)² is the same function, also where var is 0 (1e6, not 316). */
struct onnxhook_tensor dn_batchnorm(struct onnxhook_call *c, const layer *l,
					struct onnxhook_tensor x)
{
	const int64_t ch = l->out_c;
	const struct onnxhook_attr eps = onnxhook_attr_float("epsilon", 0.f);
	float *var;

	if (ch <= 0 || x.s.rank < 2 || x.s.dims[1] != ch || !l->scales || !l->biases ||
	    !l->rolling_mean || !l->rolling_variance)
		return dn_bad(c, l, "batch normalization without its statistics");
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
struct onnxhook_tensor dn_conv(struct onnxhook_call *c, const layer *l,
				   struct onnxhook_tensor x)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, N = l->n, G = l->groups;
	const int64_t OH = l->out_h, OW = l->out_w;
	int64_t K = l->size, S = l->stride, P = l->pad;

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || N <= 0 || G <= 0 || C % G || N % G || K <= 0 ||
	    S <= 0 || P < 0 || l->out_c != N || OH != (H + 2 * P - K) / S + 1 ||
	    OW != (W + 2 * P - K) / S + 1 || OH <= 0 || OW <= 0 || !l->weights || !l->biases)
		return dn_bad(c, l, "inconsistent convolution");
	if (l->xnor) {
		if (!l->binary_weights)
			return dn_bad(c, l, "xnor convolution without binary weights");
		x = binarize(c, x);
	}
	if (K == 1 && (S != 1 || P != 0)) {
		/* A 1×1 kernel skips im2col: each group's input is read as a (c/g) × (out_h·out_w)
		 * matrix straight from its (c/g)·h·w floats, so stride and padding reinterpret the
		 * memory rather than subsample it. Reproduce that reading, then convolve 1×1. */
		if (OH * OW > H * W)
			return dn_unmapped(c, "convolutional_1x1_padded", x,
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
		y = dn_batchnorm(c, l, y);
	return dn_activate(c, y, l->activation);
}

/* forward_connected_layer on x: x·Wᵀ, then batch norm or bias, then the activation. Also the
 * fully connected pieces of rnn, gru and lstm. */
struct onnxhook_tensor dn_connected(struct onnxhook_call *c, const layer *l,
					struct onnxhook_tensor x)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs;
	const struct onnxhook_attr trans_b = onnxhook_attr_int("transB", 1);

	if (B <= 0 || I <= 0 || O <= 0 || !l->weights || !l->biases)
		return dn_bad(c, l, "inconsistent connected layer");
	x = onnxhook_op_reshape(c, x, onnxhook_shape2(B, I));
	struct onnxhook_tensor in[3] = {x, onnxhook_op_weight(c, l->weights, onnxhook_shape2(O, I),
							      "weight")};
	if (!l->batch_normalize)
		in[2] = onnxhook_op_weight(c, l->biases, onnxhook_shape1(O), "bias");
	struct onnxhook_tensor y = onnxhook_op_node(c, "Gemm", l->batch_normalize ? 2 : 3, in, 1,
						    &trans_b, onnxhook_shape2(B, O));
	if (l->batch_normalize)
		y = dn_batchnorm(c, l, y);
	return dn_activate(c, y, l->activation);
}
