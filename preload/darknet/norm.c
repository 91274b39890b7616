/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: normalization and element-wise layers: batchnorm, activation,
 * logistic, l2norm, normalization (local response) and dropout. See docs/darknet.md. */
#include <math.h>
#include <stdlib.h>

#include "layers.h"

/* A standalone [batchnorm] layer. Darknet itself crashes here on the CPU (it copies into l.x,
 * which make_batchnorm_layer never allocates), so this only runs for apps that fill l.x. */
void record_forward_batchnorm_layer(struct onnxhook_call *c, const layer *l,
					   const network *net)
{
	onnxhook_op_write(c, dn_batchnorm(c, l, onnxhook_op_read(c, net->input, dn_out_shape(l))),
			  l->output);
}

void record_forward_activation_layer(struct onnxhook_call *c, const layer *l,
					    const network *net)
{
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, dn_in_shape(l));
	struct onnxhook_tensor y = dn_activate(c, x, l->activation);

	onnxhook_op_write(c, y.id == x.id ? onnxhook_op_unary(c, "Identity", x) : y, l->output);
}

/* [logistic]: the logistic; its cross-entropy against net.truth is training-only output. */
void record_forward_logistic_layer(struct onnxhook_call *c, const layer *l,
					  const network *net)
{
	onnxhook_op_write(c,
			  onnxhook_op_unary(c, "Sigmoid",
					    onnxhook_op_read(c, net->input, dn_in_shape(l))),
			  l->output);
}

/* x / sqrt(Σ_c x²) at each pixel. */
void record_forward_l2norm_layer(struct onnxhook_call *c, const layer *l, const network *net)
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
void record_forward_normalization_layer(struct onnxhook_call *c, const layer *l,
					       const network *net)
{
	const int64_t B = l->batch, C = l->c, H = l->h, W = l->w, size = l->size;
	const struct onnxhook_shape s = onnxhook_shape4(B, C, H, W);

	if (B <= 0 || C <= 0 || H <= 0 || W <= 0 || size <= 0 || !l->squared || !l->norms)
		FAIL(c, l, "inconsistent normalization layer");
	struct onnxhook_tensor x = onnxhook_op_read(c, net->input, s);
	if (size / 2 >= C) {
		onnxhook_op_write(c, dn_unmapped(c, "normalization", x, s), l->output);
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

/* Inference does nothing: l.output is the previous layer's output (parse_network_cfg points it
 * there), so later readers already find that value. */
void record_forward_dropout_layer(struct onnxhook_call *c, const layer *l,
					 const network *net)
{
	if (l->output && l->output != net->input)
		onnxhook_op_write(c,
				  onnxhook_op_read(c, net->input,
						   onnxhook_shape2(l->batch, l->inputs)),
				  l->output);
}
