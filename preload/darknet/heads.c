/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: detection and classification heads: yolo, region, detection,
 * softmax (and its tree), cost and iseg. See docs/darknet.md. */
#include <float.h>
#include <stdlib.h>

#include "layers.h"

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
			return dn_bad(c, NULL, "too many entry kinds");
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
void record_forward_yolo_layer(struct onnxhook_call *c, const layer *l, const network *net)
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
void record_forward_region_layer(struct onnxhook_call *c, const layer *l,
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
		onnxhook_op_write(c, dn_unmapped(c, "region_tree", x, x.s), l->output);
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
void record_forward_detection_layer(struct onnxhook_call *c, const layer *l,
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
		return dn_bad(c, l, "softmax tree without groups");
	for (int g = 0; g < t->groups; g++) {
		if (t->group_size[g] < 0)
			return dn_bad(c, l, "softmax tree with a negative group");
		G += t->group_size[g] > 0;
		M = t->group_size[g] > M ? t->group_size[g] : M;
		total += t->group_size[g];
	}
	/* Groups that do not cover the input exactly leave stale memory in l.output (or read
	 * past the input): nothing a graph could reproduce. */
	if (total != I || G == 0)
		return dn_unmapped(c, "softmax_tree", x, x.s);
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
void record_forward_softmax_layer(struct onnxhook_call *c, const layer *l,
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

/* The loss against net.truth: nothing of the inference (network_predict passes no truth). */
void record_forward_cost_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
}

/* Segmentation head: its forward reads net.truth even at inference (network_predict passes
 * none), so darknet crashes before anything could be recorded. */
void record_forward_iseg_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	onnxhook_op_write(c,
			  dn_unmapped(c, "iseg", onnxhook_op_read(c, net->input, dn_in_shape(l)),
				   dn_out_shape(l)),
			  l->output);
}
