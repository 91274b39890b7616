/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: layers that merge or pick earlier outputs: shortcut and route.
 * See docs/darknet.md. */
#include <stdlib.h>
#include <stdbool.h>

#include "layers.h"

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
void record_forward_shortcut_layer(struct onnxhook_call *c, const layer *l,
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
	y = dn_activate(c, y, l->activation);
	onnxhook_op_write(c, y.id == x.id ? onnxhook_op_unary(c, "Identity", y) : y, l->output);
}

/* Each batch item: the inputs' items one after another. Same-size images concatenate along
 * channels; otherwise the concatenation is of flattened items (darknet's out_h = out_w = 0). */
void record_forward_route_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const struct onnxhook_shape os = dn_out_shape(l);
	struct onnxhook_tensor stack[8],
		*xs = l->n <= 8 ? stack : calloc((size_t)l->n, sizeof(*xs));
	bool image = os.rank == 4;
	int64_t total = 0;

	if (!xs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	if (l->n <= 0 || !l->input_layers || !l->input_sizes || !net->layers) {
		dn_bad(c, l, "route without inputs");
		goto out;
	}
	for (int i = 0; i < l->n; i++) {
		int idx = l->input_layers[i];
		if (idx < 0 || idx >= net->n || l->input_sizes[i] <= 0) {
			dn_bad(c, l, "route input out of range");
			goto out;
		}
		const layer *src = &net->layers[idx];
		image = image && src->out_h == os.dims[2] && src->out_w == os.dims[3] &&
			(int64_t)src->out_c * src->out_h * src->out_w == l->input_sizes[i];
		total += l->input_sizes[i];
	}
	if (total != l->outputs) {
		dn_bad(c, l, "route sizes do not add up");
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
