/* SPDX-License-Identifier: MIT */
/* Views: a read that finds another shape, part of a value or several values one after another in
 * memory gets the value it means by Reshape, Slice and Concat nodes (util.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"
#include "util.h"

static uint64_t view_key(uint32_t src, uint64_t off, size_t nbytes)
{
	return onnxhook_hash_u64(onnxhook_hash_u64(onnxhook_hash_u64(ONNXHOOK_HASH_SEED, src), off), nbytes);
}

/* A value is immutable, so a view of it made once serves every later read of the same bytes
 * with the same shape: no duplicate Slice/Reshape nodes. */
static uint32_t find_view(struct onnxhook_graph *g, uint32_t src, uint64_t off, size_t nbytes,
			  const struct onnxhook_shape *shape)
{
	size_t it = SIZE_MAX;
	uint32_t id;

	while ((id = onnxhook_hmap_find(&g->views, view_key(src, off, nbytes), &it)) != ONNXHOOK_NONE) {
		if (id >= g->n_values)
			continue;
		struct onnxhook_value *v = &g->values[id];
		if (v->view_src == src && v->view_off == off && v->nbytes == nbytes &&
		    (!shape || onnxhook_shape_eq(&v->shape, shape)))
			return id;
	}
	return ONNXHOOK_NONE;
}

static uint32_t remember_view(struct onnxhook_call *c, uint32_t src, uint64_t off, uint32_t view)
{
	if (view == ONNXHOOK_NONE)
		return view;
	struct onnxhook_value *v = &c->g->values[view];
	v->view_src = src;
	v->view_off = off;
	if (onnxhook_hmap_put(&c->g->views, view_key(src, off, v->nbytes), view) < 0)
		return onnxhook_call_fail(c, -ENOMEM);
	return view;
}

uint32_t onnxhook_view_reshape(struct onnxhook_call *c, uint32_t src,
			       const struct onnxhook_shape *shape)
{
	struct onnxhook_graph *g = c->g;

	if (c->err || src == ONNXHOOK_NONE)
		return onnxhook_call_fail(c, c->err ? c->err : -EINVAL);
	struct onnxhook_value *v = &g->values[src];
	if (onnxhook_shape_eq(&v->shape, shape))
		return src;
	if (onnxhook_shape_numel(&v->shape, 0) != onnxhook_shape_numel(shape, 0))
		return onnxhook_call_fail(c, -EINVAL);
	uint32_t cached = find_view(g, src, 0, v->nbytes, shape);
	if (cached != ONNXHOOK_NONE)
		return cached;
	uint32_t in[2] = {src, onnxhook_call_const_i64(c, shape->rank, shape->dims, "shape")};
	return remember_view(c, src, 0,
			     onnxhook_call_node(c, "Reshape", 2, in, 0, NULL, shape->rank, shape->dims));
}

/* The bytes [off, off+len) of value src as a tensor of their own: a Slice along the outermost
 * axis on which the range is a contiguous block (a batch item, a channel range, rows), else a
 * Slice of the flattened value. */
uint32_t onnxhook_view_slice(struct onnxhook_call *c, uint32_t src, uint64_t off, uint64_t len)
{
	struct onnxhook_graph *g = c->g;
	struct onnxhook_value *v = &g->values[src];
	size_t es = onnxhook_dtype_size(v->dtype);

	if (off % es || len % es || len == 0 || v->nbytes == 0)
		return onnxhook_call_fail(c, -EINVAL);
	uint32_t cached = find_view(g, src, off, len, NULL);
	if (cached != ONNXHOOK_NONE)
		return cached;

	const struct onnxhook_shape V = v->shape;
	const uint32_t whole = src;
	int64_t e0 = (int64_t)(off / es), n = (int64_t)(len / es);
	int64_t total = onnxhook_shape_numel(&V, 0), stride = total;
	int64_t starts[ONNXHOOK_MAX_RANK], ends[ONNXHOOK_MAX_RANK], axes[ONNXHOOK_MAX_RANK];
	struct onnxhook_shape out = V;
	int na = 0, k;

	/* stride: elements per index of axis k (product of the dims after k). */
	for (k = 0; k < V.rank; k++) {
		stride /= V.dims[k] ? V.dims[k] : 1;
		int64_t block = stride * V.dims[k];
		if (stride && e0 % stride == 0 && n % stride == 0 && e0 / block == (e0 + n - 1) / block)
			break;
	}
	if (k < V.rank) {
		int64_t block = stride * V.dims[k];
		int64_t p = e0 / block; /* flat index over the axes before k */
		for (int i = k - 1; i >= 0; i--) {
			int64_t idx = p % V.dims[i];
			p /= V.dims[i];
			out.dims[i] = 1;
			if (V.dims[i] != 1) {
				axes[na] = i;
				starts[na] = idx;
				ends[na++] = idx + 1;
			}
		}
		axes[na] = k;
		starts[na] = (e0 % block) / stride;
		ends[na] = starts[na] + n / stride;
		out.dims[k] = n / stride;
		na++;
	} else {
		struct onnxhook_shape flat = {.rank = 1, .dims = {total}};
		src = onnxhook_view_reshape(c, src, &flat);
		out = (struct onnxhook_shape){.rank = 1, .dims = {n}};
		axes[0] = 0;
		starts[0] = e0;
		ends[0] = e0 + n;
		na = 1;
	}
	uint32_t in[4] = {
		src,
		onnxhook_call_const_i64(c, na, starts, "starts"),
		onnxhook_call_const_i64(c, na, ends, "ends"),
		onnxhook_call_const_i64(c, na, axes, "axes"),
	};
	uint32_t view = onnxhook_call_node(c, "Slice", 4, in, 0, NULL, out.rank, out.dims);
	/* Cached under the value the bytes came from, whatever Reshape was needed on the way. */
	return remember_view(c, whole, off, view);
}

/* Several tensors that lie one after another in memory, read as one tensor of shape `shape`:
 * a Concat along the one axis where they differ when that is their memory order (the axes
 * before it all 1), else a Concat of their flattened forms; then a Reshape if needed. */
uint32_t onnxhook_view_concat(struct onnxhook_call *c, int n, const uint32_t *parts,
			  const struct onnxhook_shape *shape)
{
	struct onnxhook_graph *g = c->g;
	const struct onnxhook_shape s0 = g->values[parts[0]].shape;
	struct onnxhook_shape cat = {.rank = -1};
	int axis = -1;

	/* Axes along which the parts, in memory order, concatenate: all dims but that one equal,
	 * the ones before it 1. Prefer the axis that gives the reader's shape directly. */
	for (int a = 0; a < s0.rank; a++) {
		struct onnxhook_shape r = s0;
		bool ok = true;
		for (int j = 0; j < a && ok; j++)
			ok = s0.dims[j] == 1;
		for (int i = 1; i < n && ok; i++) {
			const struct onnxhook_shape *s = &g->values[parts[i]].shape;
			ok = s->rank == s0.rank;
			for (int j = 0; j < s0.rank && ok; j++)
				ok = j == a || s->dims[j] == s0.dims[j];
			r.dims[a] += ok ? s->dims[a] : 0;
		}
		if (!ok)
			continue;
		if (axis < 0 || onnxhook_shape_eq(&r, shape)) {
			axis = a;
			cat = r;
		}
		if (onnxhook_shape_eq(&r, shape))
			break;
	}
	uint32_t *in = calloc((size_t)n, sizeof(*in));
	if (!in)
		return onnxhook_call_fail(c, -ENOMEM);
	if (axis >= 0) {
		memcpy(in, parts, (size_t)n * sizeof(*in));
	} else {
		axis = 0;
		cat = (struct onnxhook_shape){.rank = 1};
		for (int i = 0; i < n; i++) {
			struct onnxhook_shape flat = {.rank = 1};
			flat.dims[0] = onnxhook_shape_numel(&g->values[parts[i]].shape, 0);
			in[i] = onnxhook_view_reshape(c, parts[i], &flat);
			cat.dims[0] += flat.dims[0];
		}
	}
	struct onnxhook_attr attr = onnxhook_attr_int("axis", axis);
	uint32_t out = onnxhook_call_node(c, "Concat", n, in, 1, &attr, cat.rank, cat.dims);
	free(in);
	return onnxhook_view_reshape(c, out, shape);
}
