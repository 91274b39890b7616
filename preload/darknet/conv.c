/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: the layers with weights: convolutional, deconvolutional,
 * locally connected and connected. See docs/darknet.md. */
#include <stdlib.h>

#include "layers.h"

void record_forward_convolutional_layer(struct onnxhook_call *c, const layer *l,
					       const network *net)
{
	onnxhook_op_write(c,
			  dn_conv(c, l,
			       onnxhook_op_read(c, net->input,
						onnxhook_shape4(l->batch, l->c, l->h, l->w))),
			  l->output);
}

void record_forward_deconvolutional_layer(struct onnxhook_call *c, const layer *l,
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
		y = dn_batchnorm(c, l, y);
	onnxhook_op_write(c, dn_activate(c, y, l->activation), l->output);
}

void record_forward_connected_layer(struct onnxhook_call *c, const layer *l,
					   const network *net)
{
	onnxhook_op_write(c,
			  dn_connected(c, l,
				    onnxhook_op_read(c, net->input,
						     onnxhook_shape2(l->batch, l->inputs))),
			  l->output);
}

/* A convolution with its own weights at every output location (yolov1): the im2col patches
 * (a grouped Conv with one-hot kernels, in im2col's row order), one matrix product per
 * location, plus a bias per output element, then the activation. */
void record_forward_local_layer(struct onnxhook_call *c, const layer *l, const network *net)
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
		onnxhook_op_write(c, dn_unmapped(c, "local", x, dn_out_shape(l)), l->output);
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
	onnxhook_op_write(c, dn_activate(c, y, l->activation), l->output);
}
