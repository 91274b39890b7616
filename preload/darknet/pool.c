/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: pooling and resampling: maxpool, avgpool, upsample, crop and
 * reorg. See docs/darknet.md. */
#include <float.h>
#include <string.h>

#include "layers.h"

/* Max over size × size windows; darknet's pad is the total padding, pad/2 of it before. */
void record_forward_maxpool_layer(struct onnxhook_call *c, const layer *l,
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

void record_forward_avgpool_layer(struct onnxhook_call *c, const layer *l,
					 const network *net)
{
	struct onnxhook_tensor x =
		onnxhook_op_read(c, net->input, onnxhook_shape4(l->batch, l->c, l->h, l->w));

	onnxhook_op_write(c,
			  onnxhook_op_node(c, "GlobalAveragePool", 1, &x, 0, NULL,
					   onnxhook_shape4(l->batch, l->c, 1, 1)),
			  l->output);
}

/* Nearest-neighbour upsampling times scale; with a negative stride (reverse), the sum of each
 * stride × stride block times scale. */
void record_forward_upsample_layer(struct onnxhook_call *c, const layer *l,
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

/* The centre crop, rescaled: x·2 - 1 (noadjust: x). */
void record_forward_crop_layer(struct onnxhook_call *c, const layer *l, const network *net)
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
void record_forward_reorg_layer(struct onnxhook_call *c, const layer *l, const network *net)
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
		onnxhook_op_write(c, onnxhook_op_reshape(c, y, dn_out_shape(l)), l->output);
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
		onnxhook_op_write(c, dn_unmapped(c, "reorg", x, dn_out_shape(l)), l->output);
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
	onnxhook_op_write(c, onnxhook_op_reshape(c, y, dn_out_shape(l)), l->output);
}
