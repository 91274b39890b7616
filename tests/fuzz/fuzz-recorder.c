/* SPDX-License-Identifier: MIT */
/* libFuzzer target: random sequences of host calls (random shapes, aliasing, in-place writes,
 * address reuse, weights, boundaries, checks before the call, memory freed and moved) through
 * the recorder; the written model must parse and
 * be a well-formed graph: unique names, every input defined before use, outputs defined. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "onnxhook.h"

#define ARENA 4096

struct input {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct input *in, unsigned mod)
{
	if (!in->n || !mod)
		return 0;
	in->n--;
	return *in->p++ % mod;
}

static float arena[ARENA];

/* A small dense shape whose elements fit the arena from offset off. */
static int shape(struct input *in, unsigned off, int64_t dims[4])
{
	int rank = 1 + (int)take(in, 4);
	int64_t n = 1;

	for (int i = 0; i < rank; i++) {
		dims[i] = 1 + take(in, 6);
		n *= dims[i];
	}
	while (off + n > ARENA) { /* shrink until it fits */
		for (int i = 0; i < rank && off + n > ARENA; i++) {
			if (dims[i] > 1) {
				n /= dims[i];
				dims[i] = 1;
			}
		}
		if (n == 1)
			break;
	}
	return off + n <= ARENA ? rank : 0;
}

static void check_at(int cond, const char *what, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz-recorder:%d: %s\n", line, what);
		abort();
	}
}
#define check(cond) check_at((cond), #cond, __LINE__)

static bool defined(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* Every value is defined once, before it is used. */
static void well_formed(const Onnx__ModelProto *m)
{
	const Onnx__GraphProto *g = m->graph;
	size_t cap = g->n_input + g->n_initializer + g->n_node + 1, n = 0;
	char **names = calloc(cap, sizeof(*names));

	check(names != NULL);
	for (size_t i = 0; i < g->n_input; i++) {
		check(!defined(names, n, g->input[i]->name));
		names[n++] = g->input[i]->name;
	}
	for (size_t i = 0; i < g->n_initializer; i++) {
		check(!defined(names, n, g->initializer[i]->name));
		check(g->initializer[i]->has_raw_data);
		names[n++] = g->initializer[i]->name;
	}
	for (size_t i = 0; i < g->n_node; i++) {
		const Onnx__NodeProto *node = g->node[i];
		for (size_t j = 0; j < node->n_input; j++)
			check(!*node->input[j] || defined(names, n, node->input[j]));
		check(node->n_output == 1 && !defined(names, n, node->output[0]));
		for (size_t k = 0; k < i; k++)
			check(strcmp(g->node[k]->name, node->name) != 0);
		names[n++] = node->output[0];
	}
	for (size_t i = 0; i < g->n_output; i++)
		check(defined(names, n, g->output[i]->name));
	free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ops[] = {"Relu", "Sigmoid", "Add", "Concat", "Mul"};
	struct input in = {data, size};
	struct onnxhook_graph g;
	struct onnxhook_call c;
	bool open = false;
	uint32_t vals[8];
	int nv = 0;

	onnxhook_graph_init(&g);
	g.max_nodes = 200;
	while (in.n) {
		int64_t dims[4];
		unsigned off = take(&in, 255) * 16 + take(&in, 16);
		int rank;
		switch (take(&in, 8)) {
		case 0:
			if (open && onnxhook_call_end(&c) == ONNXHOOK_NEW_PASS)
				onnxhook_graph_new_pass(&g);
			if (take(&in, 4) == 0)
				onnxhook_call_begin_check(&c, &g, "fuzz", NULL);
			else
				onnxhook_call_begin(&c, &g, "fuzz");
			if (take(&in, 4) == 0)
				onnxhook_call_set_name(&c, "layer");
			c.foreign = take(&in, 8) == 0;
			open = true;
			nv = 0;
			break;
		case 1:
		case 2:
			if (open && nv < 8 && (rank = shape(&in, off, dims)))
				vals[nv++] = onnxhook_call_read(&c, arena + off, ONNXHOOK_FLOAT, rank, dims);
			break;
		case 3:
			if (open && nv < 8 && (rank = shape(&in, off, dims)))
				vals[nv++] = onnxhook_call_weight(&c, arena + off, ONNXHOOK_FLOAT, rank, dims, "w");
			break;
		case 4:
			if (open && nv > 0 && nv < 8 && vals[0] != ONNXHOOK_NONE) {
				const struct onnxhook_shape *s = &g.values[vals[0]].shape;
				int n_in = 1 + (int)take(&in, (unsigned)nv);
				vals[nv] = onnxhook_call_node(&c, ops[take(&in, 5)], n_in, vals, 0, NULL, s->rank, s->dims);
				nv++;
			}
			break;
		case 5:
			if (open && nv > 0 && vals[nv - 1] != ONNXHOOK_NONE &&
			    off * 4 + g.values[vals[nv - 1]].nbytes <= sizeof(arena))
				onnxhook_call_write(&c, vals[nv - 1], arena + off);
			break;
		case 6:
			arena[off] += 1.0f; /* the app changes memory behind the hook */
			break;
		case 7: {
			unsigned what = take(&in, 4), len = 4 * (1 + take(&in, 64)), to = take(&in, 255) * 16;
			uintptr_t lo = (uintptr_t)(arena + off);
			if (what == 0)
				onnxhook_graph_mark_boundary(&g);
			/* the allocator's events come between calls (the recorder's lock orders them) */
			else if (!open && what == 1 && off * 4 + len <= sizeof(arena))
				onnxhook_graph_forget(&g, lo, lo + len);
			else if (!open && what == 2 && off * 4 + len <= sizeof(arena) && to * 4 + len <= sizeof(arena))
				onnxhook_graph_move(&g, lo, lo + len, (uintptr_t)(arena + to));
			break;
		}
		}
	}
	if (open)
		onnxhook_call_end(&c);

	uint8_t *buf;
	size_t len;
	struct onnxhook_write_opts opts = {.opset = 17, .debug_outputs = size % 2};
	check(onnxhook_write_mem(&g, &opts, &buf, &len) == 0);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	check(m != NULL);
	well_formed(m);
	onnx__model_proto__free_unpacked(m, NULL);
	free(buf);
	onnxhook_graph_free(&g);
	return 0;
}
