/* SPDX-License-Identifier: MIT */
/* ONNXHOOK_BATCH=dynamic: the traced batch size becomes the symbolic dim "batch" where the graph
 * allows it (onnxhook_graph_dynamic_batch). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"
#include "util.h"

static const struct onnxhook_attr *find_attr(const struct onnxhook_node *n, const char *name)
{
	for (int i = 0; i < n->n_attrs; i++)
		if (!strcmp(n->attrs[i].name, name))
			return &n->attrs[i];
	return NULL;
}

/* Input k of node n, an int64 constant of rank 1, or NULL. */
static const int64_t *const_input(const struct onnxhook_graph *g, const struct onnxhook_node *n,
				  int k, int64_t *len)
{
	if (k >= n->n_inputs || n->inputs[k] == ONNXHOOK_NONE)
		return NULL;
	const struct onnxhook_value *v = &g->values[n->inputs[k]];
	if (v->kind != ONNXHOOK_VALUE_INITIALIZER || v->dtype != ONNXHOOK_INT64 || v->shape.rank != 1)
		return NULL;
	*len = v->shape.dims[0];
	return v->data;
}

/* Replaces input k of node ni (a shape constant) by a copy whose first element is first. */
static int replace_shape(struct onnxhook_graph *g, uint32_t ni, int k, int64_t first)
{
	struct onnxhook_node *n = &g->nodes[ni];
	int64_t len, dims[ONNXHOOK_MAX_RANK];
	const int64_t *old = const_input(g, n, k, &len);
	struct onnxhook_call c;

	if (!old || len < 1 || len > ONNXHOOK_MAX_RANK)
		return -EINVAL;
	if (old[0] == first)
		return 0;
	memcpy(dims, old, (size_t)len * sizeof(*dims));
	dims[0] = first;
	/* The rewrite is ours, not the host's: a graph frozen by a recording stop takes it too. */
	bool failed = g->failed;
	g->failed = false;
	onnxhook_call_begin(&c, g, "dynamic-batch");
	uint32_t id = onnxhook_call_const_i64(&c, (int)len, dims, "shape");
	int r = onnxhook_call_end(&c);
	g->failed = failed;
	if (r < 0)
		return r;
	n = &g->nodes[ni]; /* the value array may have moved, the node array has not */
	struct onnxhook_value *was = &g->values[n->inputs[k]], *now = &g->values[id];
	if (--was->consumers == 0)
		was->first_consumer = ONNXHOOK_NONE;
	if (now->consumers++ == 0 || now->first_consumer > ni)
		now->first_consumer = ni;
	n->inputs[k] = id;
	return 0;
}

static bool has_axis_zero(const int64_t *axes, int64_t n, int rank)
{
	for (int64_t i = 0; i < n; i++)
		if (axes[i] == 0 || axes[i] == -rank)
			return true;
	return false;
}

/* Elementwise ops with numpy broadcasting: their operands must agree on the batch. */
static bool is_broadcasting(const char *op)
{
	static const char *const ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum",
					  "Mean", "PRelu", "Where", "Equal", "Greater", "Less"};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(op, ops[i]))
			return true;
	return false;
}

/* Why node n, reading a batched value, cannot run at another batch size; NULL if it can. Its
 * batched inputs must share one rank; *out_batched: its result keeps the batch as dim 0. */
static const char *batch_bound(const struct onnxhook_graph *g, const struct onnxhook_node *n,
			       int64_t batch, bool *out_batched)
{
	const struct onnxhook_value *out = &g->values[n->output];
	const struct onnxhook_attr *a;
	int rank = -1;
	int64_t len;
	const int64_t *v;

	if (n->domain && *n->domain)
		return "a custom-domain op";
	for (int k = 0; k < n->n_inputs; k++) {
		const struct onnxhook_value *x = n->inputs[k] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[k]];
		if (x && x->batched) {
			if (rank >= 0 && rank != x->shape.rank)
				return "it combines batched tensors of different ranks";
			rank = x->shape.rank;
		}
	}
	if (!strcmp(n->op_type, "Slice") && (v = const_input(g, n, 3, &len)) && has_axis_zero(v, len, rank))
		return "it slices the batch axis";
	bool broadcasts = is_broadcasting(n->op_type);
	for (int k = 0; k < n->n_inputs; k++) {
		const struct onnxhook_value *x = n->inputs[k] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[k]];
		/* A partner of an elementwise op follows the batch only if it broadcasts along it:
		 * of lower rank, or with dim 0 of 1. */
		if (x && !x->batched && broadcasts && x->shape.rank == out->shape.rank && x->shape.dims[0] != 1)
			return "it combines the batch with a tensor of the traced batch size";
		if (x && x->role && !strcmp(x->role, "axes") && x->dtype == ONNXHOOK_INT64 &&
		    (v = const_input(g, n, k, &len)) && has_axis_zero(v, len, rank))
			return "it works along the batch axis";
	}
	*out_batched = out->shape.rank >= 1 && out->shape.dims[0] == batch;
	if (!strcmp(n->op_type, "Expand") && out->shape.rank != rank)
		return "it adds axes in front of the batch";
	if (!strcmp(n->op_type, "Reshape") || !strcmp(n->op_type, "Expand"))
		return *out_batched ? NULL : "it moves the batch into other axes";
	if (!strcmp(n->op_type, "Transpose") && (a = find_attr(n, "perm")) && a->n > 0 && a->ints[0] != 0)
		return "it moves the batch axis";
	if ((a = find_attr(n, "axis")) && a->type == ONNXHOOK_ATTR_INT && (a->i == 0 || a->i == -rank))
		return "it works along the batch axis";
	if ((a = find_attr(n, "axes")) && a->type == ONNXHOOK_ATTR_INTS && has_axis_zero(a->ints, a->n, rank))
		return "it works along the batch axis";
	if (!*out_batched)
		return "its result has no batch axis";
	return NULL;
}

int onnxhook_graph_dynamic_batch(struct onnxhook_graph *g, char *why, size_t whylen)
{
	int64_t batch = -1;
	int r = 0;

	for (size_t i = 0; i < g->n_values; i++)
		g->values[i].batched = false;
	for (size_t i = 0; i < g->n_values && batch < 0; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind == ONNXHOOK_VALUE_INPUT && v->shape.rank >= 1)
			batch = v->shape.dims[0];
	}
	if (batch < 0) {
		snprintf(why, whylen, "the graph has no input with a batch axis");
		return -ENOTSUP;
	}
	for (size_t i = 0; i < g->n_values; i++) {
		struct onnxhook_value *v = &g->values[i];
		v->batched = v->kind == ONNXHOOK_VALUE_INPUT && v->shape.rank >= 1 && v->shape.dims[0] == batch;
	}
	/* First every check, then the rewrite: a refused graph is left exactly as it was. Nodes
	 * are in execution order: a value is batched when it is computed from batched data and
	 * keeps the batch as its dim 0. */
	for (size_t i = 0; i < g->n_nodes && r == 0; i++) {
		const struct onnxhook_node *n = &g->nodes[i];
		bool in_batched = false, out_batched = false;
		for (int k = 0; k < n->n_inputs; k++)
			in_batched |= n->inputs[k] != ONNXHOOK_NONE && g->values[n->inputs[k]].batched;
		if (!in_batched)
			continue;
		const char *bound = batch_bound(g, n, batch, &out_batched);
		g->values[n->output].batched = out_batched;
		if (bound) {
			snprintf(why, whylen, "%s (%s) depends on the traced batch size: %s", n->name,
				 n->op_type, bound);
			r = -ENOTSUP;
		}
	}
	for (size_t i = 0; i < g->n_nodes && r == 0; i++) {
		const struct onnxhook_node *n = &g->nodes[i];
		if (!g->values[n->output].batched)
			continue;
		if (!strcmp(n->op_type, "Reshape"))
			r = replace_shape(g, (uint32_t)i, 1, 0); /* 0: the input's own dim 0 */
		else if (!strcmp(n->op_type, "Expand"))
			r = replace_shape(g, (uint32_t)i, 1, 1); /* 1 broadcasts the input's dim 0 */
		if (r < 0)
			snprintf(why, whylen, "%s", strerror(-r));
	}
	if (r < 0) {
		for (size_t i = 0; i < g->n_values; i++)
			g->values[i].batched = false;
		return r;
	}
	return 0;
}
