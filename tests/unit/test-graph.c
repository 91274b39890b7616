/* SPDX-License-Identifier: MIT */
/* Unit tests: the recorder — versioned memory, views (Slice/Concat/Reshape), weights, rollback. */
#include "unit.h"
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"

static struct onnxhook_graph g;
static float mem[4096]; /* the "host's" memory: only addresses matter */

static void setup(void)
{
	onnxhook_graph_init(&g);
}

static void teardown(void)
{
	onnxhook_graph_free(&g);
}

/* One host call: y = op(x) with x read at in (shape xs) and y written at out (shape ys). */
static uint32_t unary(const char *op, const float *in, int xr, const int64_t *xs, float *out, int yr,
		      const int64_t *ys)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "test");
	uint32_t x = onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, xr, xs);
	uint32_t y = onnxhook_call_node(&c, op, 1, &x, 0, NULL, yr, ys);
	onnxhook_call_write(&c, y, out);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	return y;
}

static const struct onnxhook_node *producer(uint32_t v)
{
	ck_assert_int_eq(g.values[v].kind, ONNXHOOK_VALUE_NODE);
	return &g.nodes[g.values[v].producer];
}


/* The value a read of `at` with shape s resolves to, in its own call. */
static uint32_t read_as(const float *at, int rank, const int64_t *s)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "read");
	uint32_t v = onnxhook_call_read(&c, at, ONNXHOOK_FLOAT, rank, s);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	return v;
}

static const int64_t *const_data(uint32_t v)
{
	ck_assert_int_eq(g.values[v].kind, ONNXHOOK_VALUE_INITIALIZER);
	ck_assert_int_eq(g.values[v].dtype, ONNXHOOK_INT64);
	return g.values[v].data;
}

static const int64_t s1222[4] = {1, 2, 2, 2};

START_TEST(inplace_chain_versions_memory)
{
	uint32_t a = unary("Relu", mem, 4, s1222, mem, 4, s1222);
	uint32_t b = unary("Sigmoid", mem, 4, s1222, mem, 4, s1222);
	uint32_t c = unary("Relu", mem, 4, s1222, mem, 4, s1222);

	ck_assert_uint_eq(g.n_nodes, 3);
	ck_assert_uint_eq(g.n_inputs, 1);
	ck_assert_int_eq(g.values[g.nodes[0].inputs[0]].kind, ONNXHOOK_VALUE_INPUT);
	ck_assert_uint_eq(g.nodes[1].inputs[0], a); /* each read takes the newest version */
	ck_assert_uint_eq(g.nodes[2].inputs[0], b);
	ck_assert_uint_eq(onnxhook_graph_finish(&g), 1);
	ck_assert_uint_eq(g.values[c].consumers, 0);
	ck_assert_uint_eq(g.values[c].ordinal, 0);
}
END_TEST

START_TEST(pingpong_and_free_malloc_reuse)
{
	float *x = mem, *y = mem + 100;
	uint32_t v1 = unary("Relu", x, 4, s1222, y, 4, s1222);
	uint32_t v2 = unary("Relu", y, 4, s1222, x, 4, s1222);
	uint32_t v3 = unary("Relu", x, 4, s1222, y, 4, s1222);

	ck_assert_uint_eq(g.nodes[1].inputs[0], v1);
	ck_assert_uint_eq(g.nodes[2].inputs[0], v2);
	ck_assert_uint_eq(g.n_inputs, 1); /* x's first contents only */
	ck_assert_uint_eq(onnxhook_graph_finish(&g), 1);
	ck_assert_uint_eq(g.values[v3].ordinal, 0);
}
END_TEST

START_TEST(other_shape_of_same_bytes_is_reshape_once)
{
	const int64_t fc[2] = {1, 8};
	uint32_t y = unary("Gemm", mem, 2, fc, mem + 64, 2, fc);
	uint32_t r1 = read_as(mem + 64, 4, s1222);
	uint32_t r2 = read_as(mem + 64, 4, s1222);
	uint32_t same = read_as(mem + 64, 2, fc);

	ck_assert_uint_eq(same, y);
	ck_assert_uint_eq(r1, r2); /* no duplicate Reshape */
	const struct onnxhook_node *n = producer(r1);
	ck_assert_str_eq(n->op_type, "Reshape");
	ck_assert_uint_eq(n->inputs[0], y);
	const int64_t *shape = const_data(n->inputs[1]);
	ck_assert(shape[0] == 1 && shape[1] == 2 && shape[2] == 2 && shape[3] == 2);
	ck_assert_uint_eq(g.n_nodes, 2);
}
END_TEST

START_TEST(channel_slice_is_slice_on_channels)
{
	const int64_t s1422[4] = {1, 4, 2, 2};
	uint32_t y = unary("Relu", mem, 4, s1422, mem + 100, 4, s1422);
	/* channels 2 and 3: pointer arithmetic into the buffer */
	uint32_t v = read_as(mem + 100 + 2 * 4, 4, s1222);
	const struct onnxhook_node *n = producer(v);

	ck_assert_str_eq(n->op_type, "Slice");
	ck_assert_uint_eq(n->inputs[0], y);
	ck_assert_int_eq(const_data(n->inputs[1])[0], 2); /* starts */
	ck_assert_int_eq(const_data(n->inputs[2])[0], 4); /* ends */
	ck_assert_int_eq(const_data(n->inputs[3])[0], 1); /* axes */
	ck_assert_int_eq(g.values[n->inputs[3]].shape.dims[0], 1);
	struct onnxhook_shape want = onnxhook_shape_make(4, s1222);
	ck_assert(onnxhook_shape_eq(&g.values[v].shape, &want));
}
END_TEST

START_TEST(batch_item_is_slice_on_batch)
{
	const int64_t s2322[4] = {2, 3, 2, 2}, s1322[4] = {1, 3, 2, 2};
	unary("Relu", mem, 4, s2322, mem + 100, 4, s2322);
	uint32_t v = read_as(mem + 100 + 12, 4, s1322);
	const struct onnxhook_node *n = producer(v);

	ck_assert_str_eq(n->op_type, "Slice");
	ck_assert_int_eq(const_data(n->inputs[1])[0], 1);
	ck_assert_int_eq(const_data(n->inputs[2])[0], 2);
	ck_assert_int_eq(const_data(n->inputs[3])[0], 0);
}
END_TEST

START_TEST(unaligned_to_axes_slices_flat)
{
	const int64_t s1123[4] = {1, 1, 2, 3}, s3[1] = {3};
	uint32_t y = unary("Relu", mem, 4, s1123, mem + 100, 4, s1123);
	/* elements 2..4 cross a row boundary: no axis slice describes them */
	uint32_t v = read_as(mem + 102, 1, s3);
	const struct onnxhook_node *n = producer(v);

	ck_assert_str_eq(n->op_type, "Slice");
	ck_assert_int_eq(const_data(n->inputs[1])[0], 2);
	ck_assert_int_eq(const_data(n->inputs[2])[0], 5);
	const struct onnxhook_node *flat = producer(n->inputs[0]);
	ck_assert_str_eq(flat->op_type, "Reshape");
	ck_assert_uint_eq(flat->inputs[0], y);
}
END_TEST

START_TEST(adjacent_writes_read_whole_is_concat)
{
	const int64_t s1422[4] = {1, 4, 2, 2}, flat[2] = {1, 16};
	/* two ops write adjacent channel slices of one buffer: an in-place concat */
	uint32_t a = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	uint32_t b = unary("Sigmoid", mem, 4, s1222, mem + 108, 4, s1222);
	uint32_t v = read_as(mem + 100, 4, s1422);
	const struct onnxhook_node *n = producer(v);

	ck_assert_str_eq(n->op_type, "Concat");
	ck_assert_int_eq(n->n_inputs, 2);
	ck_assert_uint_eq(n->inputs[0], a);
	ck_assert_uint_eq(n->inputs[1], b);
	ck_assert_str_eq(n->attrs[0].name, "axis");
	ck_assert_int_eq(n->attrs[0].i, 1);
	ck_assert_uint_eq(g.n_inputs, 1); /* both read mem: one input */

	/* the same bytes as a flat vector: the concat, then a Reshape */
	uint32_t w = read_as(mem + 100, 2, flat);
	const struct onnxhook_node *r = producer(w);
	ck_assert_str_eq(r->op_type, "Reshape");
	ck_assert_str_eq(producer(r->inputs[0])->op_type, "Concat");
}
END_TEST

START_TEST(unwritten_gap_becomes_input)
{
	const int64_t s1122[4] = {1, 1, 2, 2};
	unary("Relu", mem, 4, s1122, mem + 104, 4, s1122);
	/* read [100, 108): first half never written by a recorded op */
	uint32_t v = read_as(mem + 100, 4, s1222);
	ck_assert_str_eq(producer(v)->op_type, "Reshape");
	const struct onnxhook_node *cat = producer(producer(v)->inputs[0]);
	ck_assert_str_eq(cat->op_type, "Concat");
	ck_assert_int_eq(g.values[cat->inputs[0]].kind, ONNXHOOK_VALUE_INPUT);
	ck_assert_uint_eq(g.n_inputs, 2);
	/* reading the gap again finds the same input */
	const int64_t s4[1] = {4};
	ck_assert_uint_eq(read_as(mem + 100, 1, s4), cat->inputs[0]);
}
END_TEST

static uint32_t weight(float *p, int64_t n)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "w");
	uint32_t v = onnxhook_call_weight(&c, p, ONNXHOOK_FLOAT, 1, &n, "weight");
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	return v;
}

START_TEST(weights_copied_once_and_deduplicated)
{
	float w[4] = {1, 2, 3, 4};
	uint32_t a = weight(w, 4);
	uint32_t b = weight(w, 4);

	ck_assert_uint_eq(a, b);
	ck_assert_uint_eq(g.n_initializers, 1);
	ck_assert_uint_eq(g.weight_bytes, 16);
	ck_assert_ptr_ne(g.values[a].data, w);
	ck_assert_mem_eq(g.values[a].data, w, 16);
	/* a scratch buffer streaming new weights: same pointer, new content, new initializer */
	w[2] = 30;
	uint32_t c = weight(w, 4);
	ck_assert_uint_ne(c, a);
	ck_assert_float_eq(((float *)g.values[a].data)[2], 3);
	ck_assert_float_eq(((float *)g.values[c].data)[2], 30);
	/* another shape of the same bytes is another initializer */
	ck_assert_uint_ne(weight(w, 2), c);
}
END_TEST

START_TEST(weight_in_recorded_memory_is_data)
{
	const int64_t s8[1] = {8};
	uint32_t y = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "w");
	uint32_t v = onnxhook_call_weight(&c, mem + 100, ONNXHOOK_FLOAT, 1, s8, "weight");
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_str_eq(producer(v)->op_type, "Reshape");
	ck_assert_uint_eq(producer(v)->inputs[0], y);
	ck_assert_uint_eq(g.n_initializers, 1); /* only the Reshape's shape constant */
}
END_TEST

START_TEST(same_fresh_input_twice_in_one_call)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "add");
	uint32_t x[2] = {onnxhook_call_read(&c, mem, ONNXHOOK_FLOAT, 4, s1222),
			 onnxhook_call_read(&c, mem, ONNXHOOK_FLOAT, 4, s1222)};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Add", 2, x, 0, NULL, 4, s1222), mem);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_uint_eq(x[0], x[1]);
	ck_assert_uint_eq(g.n_inputs, 1);
	ck_assert_uint_eq(g.values[x[0]].consumers, 2);
	/* the in-place write won over the input mapping */
	ck_assert_int_eq(g.values[read_as(mem, 4, s1222)].kind, ONNXHOOK_VALUE_NODE);
}
END_TEST

START_TEST(failed_call_rolls_back_and_freezes)
{
	uint32_t y = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	size_t values = g.n_values, nodes = g.n_nodes;
	struct onnxhook_call c;
	float w[2] = {1, 2};
	const int64_t two = 2;

	onnxhook_call_begin(&c, &g, "bad");
	uint32_t x[2] = {onnxhook_call_read(&c, mem + 100, ONNXHOOK_FLOAT, 4, s1222),
			 onnxhook_call_weight(&c, w, ONNXHOOK_FLOAT, 1, &two, "weight")};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Mul", 2, x, 0, NULL, 4, s1222), mem + 100);
	onnxhook_call_read(&c, NULL, ONNXHOOK_FLOAT, 4, s1222);
	ck_assert_int_eq(onnxhook_call_end(&c), -EINVAL);
	ck_assert_uint_eq(g.n_values, values);
	ck_assert_uint_eq(g.n_nodes, nodes);
	ck_assert_uint_eq(g.n_initializers, 0);
	ck_assert_uint_eq(g.weight_bytes, 0);
	ck_assert_uint_eq(g.values[y].consumers, 0);
	ck_assert(g.failed);
	/* memory still maps to the value before the failed call; later calls are refused */
	ck_assert_uint_eq(g.mem.n, 2);
	ck_assert_uint_eq(g.mem.v[1].value, y);
	onnxhook_call_begin(&c, &g, "later");
	ck_assert_uint_eq(onnxhook_call_read(&c, mem, ONNXHOOK_FLOAT, 4, s1222), ONNXHOOK_NONE);
	ck_assert_int_eq(onnxhook_call_end(&c), -ECANCELED);
}
END_TEST

START_TEST(huge_and_negative_dims_rejected)
{
	const int64_t huge[4] = {1 << 30, 1 << 30, 1 << 30, 1 << 30}, neg[4] = {1, -3, 2, 2};
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "huge");
	ck_assert_uint_eq(onnxhook_call_read(&c, mem, ONNXHOOK_FLOAT, 4, huge), ONNXHOOK_NONE);
	ck_assert_int_eq(onnxhook_call_end(&c), -EINVAL);
	onnxhook_graph_free(&g);
	onnxhook_graph_init(&g);
	onnxhook_call_begin(&c, &g, "neg");
	ck_assert_uint_eq(onnxhook_call_weight(&c, mem, ONNXHOOK_FLOAT, 4, neg, "w"), ONNXHOOK_NONE);
	ck_assert_int_eq(onnxhook_call_end(&c), -EINVAL);
	ck_assert_uint_eq(g.n_values, 0);
}
END_TEST

START_TEST(outputs_in_production_order)
{
	uint32_t a = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	uint32_t b = unary("Relu", mem, 4, s1222, mem + 200, 4, s1222);
	uint32_t c = unary("Relu", mem + 100, 4, s1222, mem + 300, 4, s1222);

	ck_assert_uint_eq(onnxhook_graph_finish(&g), 2);
	ck_assert_uint_eq(g.values[a].consumers, 1);
	ck_assert_uint_eq(g.values[b].ordinal, 0);
	ck_assert_uint_eq(g.values[c].ordinal, 1);
	ck_assert_str_eq(g.nodes[0].name, "Relu_0");
	ck_assert_str_eq(g.nodes[2].name, "Relu_2");
}
END_TEST

/* Same as unary() but returns call_end's result. */
static int unary_end(const char *op, const float *in, float *out)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "test");
	uint32_t x = onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, 4, s1222);
	onnxhook_call_write(&c, onnxhook_call_node(&c, op, 1, &x, 0, NULL, 4, s1222), out);
	return onnxhook_call_end(&c);
}

START_TEST(first_call_recurring_on_fresh_input_starts_a_pass)
{
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), 0);
	ck_assert_int_eq(unary_end("Sigmoid", mem + 100, mem + 200), 0);
	/* same op on the same input but another output: part of this pass */
	ck_assert_int_eq(unary_end("Relu", mem, mem + 300), 0);
	/* the first call again, on memory no op of this pass wrote: pass 2, nothing committed */
	size_t nodes = g.n_nodes, values = g.n_values;
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), ONNXHOOK_NEW_PASS);
	ck_assert_uint_eq(g.n_nodes, nodes);
	ck_assert_uint_eq(g.n_values, values);
	/* unrolled: the new pass reads its own input */
	onnxhook_graph_new_pass(&g);
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), 0);
	ck_assert_uint_eq(g.n_inputs, 2);
	ck_assert_int_eq(unary_end("Sigmoid", mem + 100, mem + 200), 0);
	ck_assert_uint_eq(g.n_nodes, 5);
	ck_assert_uint_eq(onnxhook_graph_finish(&g), 3);
}
END_TEST

START_TEST(first_call_on_written_memory_is_not_a_pass)
{
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), 0);
	ck_assert_int_eq(unary_end("Sigmoid", mem + 100, mem), 0); /* writes the input buffer */
	/* the same call as the first, but reading what the pass computed: a loop, not a pass */
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), 0);
	ck_assert_uint_eq(g.n_nodes, 3);
	ck_assert_uint_eq(g.n_inputs, 1);
}
END_TEST

START_TEST(host_names_are_unique_and_name_the_written_value)
{
	struct onnxhook_call c;

	for (int k = 0; k < 2; k++) {
		onnxhook_call_begin(&c, &g, "layer");
		onnxhook_call_set_name(&c, "layer_3");
		uint32_t x = onnxhook_call_read(&c, mem, ONNXHOOK_FLOAT, 4, s1222);
		uint32_t y = onnxhook_call_node(&c, "Sigmoid", 1, &x, 0, NULL, 4, s1222);
		uint32_t z = onnxhook_call_node(&c, "Sigmoid", 1, &y, 0, NULL, 4, s1222);
		onnxhook_call_write(&c, z, mem + 100 + 100 * k);
		ck_assert_int_eq(onnxhook_call_end(&c), 0);
		ck_assert_str_eq(g.values[z].name, "layer_3");
		ck_assert(g.values[z].written);
		ck_assert(!g.values[y].written);
	}
	ck_assert_str_eq(g.nodes[0].name, "layer_3_Sigmoid");
	ck_assert_str_eq(g.nodes[1].name, "layer_3_Sigmoid_2");
	ck_assert_str_eq(g.nodes[2].name, "layer_3_Sigmoid_3");
	ck_assert_str_eq(g.nodes[3].name, "layer_3_Sigmoid_4");
}
END_TEST

START_TEST(scoped_names_count_ops_per_scope_and_keep_the_stack)
{
	static const char stack[] = "block (app+0x10)\nmain (app+0x20)";
	struct onnxhook_call c;
	const char *scopes[3] = {"block_0", "block_0", "block_1"};

	for (int k = 0; k < 3; k++) {
		onnxhook_call_begin(&c, &g, "layer");
		onnxhook_call_set_scope(&c, scopes[k], stack);
		uint32_t x = onnxhook_call_read(&c, mem + 100 * k, ONNXHOOK_FLOAT, 4, s1222);
		uint32_t y = onnxhook_call_node(&c, "Relu", 1, &x, 0, NULL, 4, s1222);
		onnxhook_call_write(&c, y, mem + 100 * k + 50);
		ck_assert_int_eq(onnxhook_call_end(&c), 0);
	}
	ck_assert_str_eq(g.nodes[0].name, "block_0/Relu_0");
	ck_assert_str_eq(g.nodes[1].name, "block_0/Relu_1");
	ck_assert_str_eq(g.nodes[2].name, "block_1/Relu_0");
	ck_assert_ptr_eq(g.nodes[2].doc, stack);
	/* A host's own name wins over the scope. */
	onnxhook_call_begin(&c, &g, "layer");
	onnxhook_call_set_scope(&c, "block_1", stack);
	onnxhook_call_set_name(&c, "layer_7");
	uint32_t x = onnxhook_call_read(&c, mem + 400, ONNXHOOK_FLOAT, 4, s1222);
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Relu", 1, &x, 0, NULL, 4, s1222), mem + 450);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_str_eq(g.nodes[3].name, "layer_7_Relu");
}
END_TEST

/* The test executable's own symbol table names its own functions. */
START_TEST(elf_symbols_name_functions)
{
	struct onnxhook_elfsyms t;
	uint64_t start = 0;

	ck_assert_int_eq(onnxhook_elfsyms_load(&t, "/proc/self/exe"), 0);
	ck_assert(t.n > 0);
	bool found = false;
	for (size_t i = 0; i < t.n && !found; i++) {
		if (strcmp(t.strings + t.syms[i].name, "setup"))
			continue;
		found = true;
		const char *name = onnxhook_elfsyms_find(&t, t.syms[i].addr + 1, &start);
		ck_assert_ptr_nonnull(name);
		ck_assert_str_eq(name, "setup");
		ck_assert_uint_eq(start, t.syms[i].addr);
	}
	ck_assert(found);
	ck_assert_ptr_null(onnxhook_elfsyms_find(&t, 1, &start));
	onnxhook_elfsyms_free(&t);
	ck_assert_int_eq(onnxhook_elfsyms_load(&t, "/nonexistent"), -ENOENT);
	ck_assert_int_eq(onnxhook_elfsyms_load(&t, "/etc/hostname"), -EINVAL);
}
END_TEST

START_TEST(dynamic_batch_marks_batched_values_and_frees_reshapes)
{
	const int64_t fc[2] = {1, 8};
	uint32_t y = unary("Gemm", mem, 2, fc, mem + 64, 2, fc);
	uint32_t r = read_as(mem + 64, 4, s1222);
	uint32_t wv = weight(mem + 200, 64);
	char why[200];

	ck_assert_int_eq(onnxhook_graph_dynamic_batch(&g, why, sizeof(why)), 0);
	ck_assert(g.values[g.nodes[0].inputs[0]].batched); /* the graph input */
	ck_assert(g.values[y].batched);
	ck_assert(g.values[r].batched);
	ck_assert(!g.values[wv].batched);
	const struct onnxhook_node *n = producer(r);
	const int64_t *shape = const_data(n->inputs[1]);
	ck_assert(shape[0] == 0 && shape[1] == 2 && shape[2] == 2 && shape[3] == 2);
	uint32_t shape_id = n->inputs[1];
	/* Idempotent: the rewritten shape stays. */
	ck_assert_int_eq(onnxhook_graph_dynamic_batch(&g, why, sizeof(why)), 0);
	ck_assert_uint_eq(producer(r)->inputs[1], shape_id);
}
END_TEST

START_TEST(dynamic_batch_refuses_a_batch_slice)
{
	const int64_t s2322[4] = {2, 3, 2, 2}, s1322[4] = {1, 3, 2, 2};
	char why[200];

	unary("Relu", mem, 4, s2322, mem + 100, 4, s2322);
	unary("Relu", mem + 100 + 12, 4, s1322, mem + 300, 4, s1322);
	ck_assert_int_eq(onnxhook_graph_dynamic_batch(&g, why, sizeof(why)), -ENOTSUP);
	ck_assert_msg(strstr(why, "Slice_0 (Slice) depends on the traced batch size: it slices the batch axis"),
		      "%s", why);
	for (size_t i = 0; i < g.n_values; i++)
		ck_assert(!g.values[i].batched);
}
END_TEST

/* One call: node op over the data read at in (shape xs) and extra operand w, result at out. */
static void binary_node(const char *op, const float *in, int xr, const int64_t *xs, uint32_t w,
			int n_attrs, const struct onnxhook_attr *attrs, float *out, int yr, const int64_t *ys)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "test");
	uint32_t x[2] = {onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, xr, xs), w};
	uint32_t y = onnxhook_call_node(&c, op, w == ONNXHOOK_NONE ? 1 : 2, x, n_attrs, attrs, yr, ys);
	onnxhook_call_write(&c, y, out);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
}

static void expect_refused(const char *mention)
{
	char why[200];

	ck_assert_int_eq(onnxhook_graph_dynamic_batch(&g, why, sizeof(why)), -ENOTSUP);
	ck_assert_msg(strstr(why, mention), "'%s' does not say '%s'", why, mention);
	for (size_t i = 0; i < g.n_values; i++)
		ck_assert(!g.values[i].batched);
}

START_TEST(dynamic_batch_refuses_batch_bound_operands)
{
	const int64_t s24[2] = {2, 4}, s424[3] = {2, 2, 4}, s14[2] = {1, 4};
	int64_t n8 = 8;

	/* A constant partner of the traced batch size: broadcasting breaks at another batch. */
	uint32_t w = weight(mem + 500, n8);
	g.values[w].shape = onnxhook_shape_make(2, s24);
	binary_node("Add", mem, 2, s24, w, 0, NULL, mem + 100, 2, s24);
	expect_refused("Add_0 (Add) depends on the traced batch size: it combines the batch with a tensor");
	onnxhook_graph_reset(&g);
	/* A partner with dim 0 of 1 broadcasts: fine. */
	w = weight(mem + 600, 4);
	g.values[w].shape = onnxhook_shape_make(2, s14);
	binary_node("Mul", mem, 2, s24, w, 0, NULL, mem + 100, 2, s24);
	char why[200];
	ck_assert_int_eq(onnxhook_graph_dynamic_batch(&g, why, sizeof(why)), 0);
	onnxhook_graph_reset(&g);
	/* Expand adding an axis in front whose size happens to be the batch. */
	binary_node("Expand", mem, 2, s24, ONNXHOOK_NONE, 0, NULL, mem + 100, 3, s424);
	expect_refused("it adds axes in front of the batch");
	onnxhook_graph_reset(&g);
	/* A reduction over axis 0 that keeps the dim. */
	const int64_t axes0[1] = {0};
	const struct onnxhook_attr axes = onnxhook_attr_ints("axes", 1, axes0);
	binary_node("ReduceSum", mem, 2, s24, ONNXHOOK_NONE, 1, &axes, mem + 100, 2, s24);
	expect_refused("it works along the batch axis");
}
END_TEST

START_TEST(dynamic_batch_refused_leaves_shapes_static)
{
	const int64_t s2322[4] = {2, 3, 2, 2}, s1322[4] = {1, 3, 2, 2}, flat[2] = {2, 12};

	unary("Relu", mem, 4, s2322, mem + 100, 4, s2322);
	uint32_t r = read_as(mem + 100, 2, flat);            /* a Reshape keeping the batch */
	unary("Relu", mem + 100 + 12, 4, s1322, mem + 300, 4, s1322); /* a batch item: refused */
	expect_refused("it slices the batch axis");
	ck_assert_int_eq(const_data(producer(r)->inputs[1])[0], 2);
}
END_TEST

START_TEST(host_boundaries_replace_signatures)
{
	onnxhook_graph_mark_boundary(&g); /* before the first call: nothing to end */
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), 0);
	ck_assert_int_eq(unary_end("Sigmoid", mem + 100, mem + 200), 0);
	/* the first call recurring on fresh input no longer ends the pass by itself */
	ck_assert_int_eq(unary_end("Relu", mem, mem + 100), 0);
	onnxhook_graph_mark_boundary(&g);
	ck_assert_int_eq(unary_end("Tanh", mem + 100, mem + 300), ONNXHOOK_NEW_PASS);
	ck_assert_uint_eq(g.n_nodes, 3);
	/* the host's mode survives a reset */
	onnxhook_graph_reset(&g);
	ck_assert(g.host_passes);
	ck_assert_int_eq(unary_end("Tanh", mem + 100, mem + 300), 0);
}
END_TEST


/* ---- identity under memory reuse: checks before the call, the allocator's events ---------- */

static int changed_calls;
static uint32_t changed_value;

static void on_changed(const struct onnxhook_graph *gr, uint32_t value, const char *reader)
{
	(void)gr, (void)reader;
	changed_calls++;
	changed_value = value;
}

/* The check before the real call: reads (data) or a weight at p of shape s1222. */
static void check_read(const float *p, bool weight)
{
	struct onnxhook_call c;

	onnxhook_call_begin_check(&c, &g, "check", NULL);
	if (weight)
		ck_assert_uint_eq(onnxhook_call_weight(&c, p, ONNXHOOK_FLOAT, 4, s1222, "weight"), ONNXHOOK_NONE);
	else
		ck_assert_uint_eq(onnxhook_call_read(&c, p, ONNXHOOK_FLOAT, 4, s1222), ONNXHOOK_NONE);
	/* nodes, constants and writes do nothing in a check */
	ck_assert_uint_eq(onnxhook_call_node(&c, "Relu", 0, NULL, 0, NULL, 4, s1222), ONNXHOOK_NONE);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
}

START_TEST(intact_bytes_are_followed)
{
	size_t n_values;
	uint32_t y;

	onnxhook_graph_on_changed(on_changed);
	changed_calls = 0;
	y = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	n_values = g.n_values;
	check_read(mem + 100, false);
	ck_assert_uint_eq(g.n_values, n_values); /* a check adds nothing */
	unary("Relu", mem + 100, 4, s1222, mem + 200, 4, s1222);
	ck_assert_uint_eq(g.nodes[1].inputs[0], y);
	ck_assert_int_eq(changed_calls, 0);
	onnxhook_graph_on_changed(NULL);
}
END_TEST

START_TEST(changed_bytes_become_an_input_with_one_warning)
{
	onnxhook_graph_on_changed(on_changed);
	changed_calls = 0;
	uint32_t y = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	mem[101] = 42.0f; /* the program's own code */
	check_read(mem + 100, false);
	ck_assert_int_eq(changed_calls, 1);
	ck_assert_uint_eq(changed_value, y);
	ck_assert(!onnxhook_memmap_overlaps(&g.mem, (uintptr_t)(mem + 100), (uintptr_t)(mem + 108)));
	unary("Relu", mem + 100, 4, s1222, mem + 200, 4, s1222);
	ck_assert_int_eq(g.values[g.nodes[1].inputs[0]].kind, ONNXHOOK_VALUE_INPUT);
	ck_assert_uint_eq(g.n_inputs, 2);
	ck_assert_ptr_nonnull(strstr(g.warnings, "changed before check"));
	/* said once per value */
	unary("Tanh", mem, 4, s1222, mem + 100, 4, s1222);
	mem[101] = 43.0f;
	check_read(mem + 100, false);
	ck_assert_int_eq(changed_calls, 2); /* a new value: a new warning */
	mem[101] = 0.0f;
	onnxhook_graph_on_changed(NULL);
}
END_TEST

START_TEST(weights_staged_in_written_memory_are_an_initializer)
{
	struct onnxhook_call c;

	onnxhook_graph_on_changed(on_changed);
	changed_calls = 0;
	unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	mem[100] = 7.0f; /* staged weights */
	check_read(mem + 100, true);
	onnxhook_call_begin(&c, &g, "w");
	uint32_t w = onnxhook_call_weight(&c, mem + 100, ONNXHOOK_FLOAT, 4, s1222, "weight");
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_int_eq(g.values[w].kind, ONNXHOOK_VALUE_INITIALIZER);
	ck_assert_float_eq(((float *)g.values[w].data)[0], 7.0f);
	ck_assert_int_eq(changed_calls, 0); /* normal: no warning */
	mem[100] = 0.0f;
	onnxhook_graph_on_changed(NULL);
}
END_TEST

START_TEST(freed_memory_is_fresh_without_a_warning)
{
	onnxhook_graph_on_changed(on_changed);
	changed_calls = 0;
	unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	onnxhook_graph_forget(&g, (uintptr_t)(mem + 96), (uintptr_t)(mem + 108)); /* free */
	ck_assert(!onnxhook_memmap_overlaps(&g.mem, (uintptr_t)(mem + 96), (uintptr_t)(mem + 108)));
	mem[101] = 5.0f; /* the block's next life */
	check_read(mem + 100, false);
	unary("Relu", mem + 100, 4, s1222, mem + 200, 4, s1222);
	ck_assert_int_eq(changed_calls, 0);
	ck_assert_int_eq(g.values[g.nodes[1].inputs[0]].kind, ONNXHOOK_VALUE_INPUT);
	mem[101] = 0.0f;
	onnxhook_graph_on_changed(NULL);
}
END_TEST

START_TEST(moved_memory_is_followed)
{
	uint32_t y = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);

	onnxhook_graph_move(&g, (uintptr_t)(mem + 100), (uintptr_t)(mem + 108), (uintptr_t)(mem + 300));
	ck_assert(!onnxhook_memmap_overlaps(&g.mem, (uintptr_t)(mem + 100), (uintptr_t)(mem + 108)));
	check_read(mem + 300, false);
	unary("Relu", mem + 300, 4, s1222, mem + 400, 4, s1222);
	ck_assert_uint_eq(g.nodes[1].inputs[0], y);
	ck_assert_uint_eq(g.n_inputs, 1); /* no new graph input */
}
END_TEST

START_TEST(trimmed_values_are_followed_where_intact)
{
	const int64_t half[4] = {1, 1, 2, 2};
	/* a value of 8 floats, then an op writing over its first half */
	uint32_t y = unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	unary("Sigmoid", mem, 4, half, mem + 100, 4, half);
	check_read(mem + 104, false);
	struct onnxhook_call c;
	onnxhook_call_begin(&c, &g, "tail");
	uint32_t t = onnxhook_call_read(&c, mem + 104, ONNXHOOK_FLOAT, 4, half);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_str_eq(producer(t)->op_type, "Slice");
	ck_assert_uint_eq(producer(t)->inputs[0], y);
	ck_assert_uint_eq(g.n_inputs, 1);
}
END_TEST

START_TEST(an_inplace_op_on_changed_memory_keeps_the_bytes_read)
{
	struct onnxhook_stash stash = {0};
	struct onnxhook_call c;

	g.test_data = true;
	unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	for (int i = 0; i < 8; i++)
		mem[100 + i] = (float)i; /* the program's own code */
	onnxhook_call_begin_check(&c, &g, "inplace", &stash);
	onnxhook_call_read(&c, mem + 100, ONNXHOOK_FLOAT, 4, s1222);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_int_eq(stash.n, 1);
	for (int i = 0; i < 8; i++)
		mem[100 + i] = -1.0f; /* the real call, in place */
	onnxhook_call_begin(&c, &g, "inplace");
	c.stash = &stash;
	uint32_t x = onnxhook_call_read(&c, mem + 100, ONNXHOOK_FLOAT, 4, s1222);
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Relu", 1, &x, 0, NULL, 4, s1222), mem + 100);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_int_eq(g.values[x].kind, ONNXHOOK_VALUE_INPUT);
	ck_assert(!g.values[x].clobbered);
	ck_assert_ptr_nonnull(g.values[x].snapshot);
	for (int i = 0; i < 8; i++)
		ck_assert_float_eq(((float *)g.values[x].snapshot)[i], (float)i);
	onnxhook_stash_clear(&stash);
	ck_assert_int_eq(stash.n, 0);
	memset(mem + 100, 0, 8 * sizeof(float));
}
END_TEST

START_TEST(a_trimmed_value_changed_later_is_no_slice)
{
	const int64_t half[4] = {1, 1, 2, 2};

	onnxhook_graph_on_changed(on_changed);
	changed_calls = 0;
	/* a value of 8 floats, an op writing over its first half, then the program's code
	 * changes the other half: that half is not the value's any more */
	unary("Relu", mem, 4, s1222, mem + 100, 4, s1222);
	unary("Sigmoid", mem, 4, half, mem + 100, 4, half);
	mem[105] = 6.0f;
	check_read(mem + 104, false);
	ck_assert_int_eq(changed_calls, 1);
	ck_assert_int_eq(g.values[read_as(mem + 104, 4, half)].kind, ONNXHOOK_VALUE_INPUT);
	/* the same after a realloc that shrank the block in place (its tail released) */
	unary("Relu", mem, 4, s1222, mem + 200, 4, s1222);
	onnxhook_graph_forget(&g, (uintptr_t)(mem + 204), (uintptr_t)(mem + 208));
	mem[201] = 7.0f;
	check_read(mem + 200, false);
	ck_assert_int_eq(changed_calls, 2);
	ck_assert_int_eq(g.values[read_as(mem + 200, 4, half)].kind, ONNXHOOK_VALUE_INPUT);
	mem[105] = mem[201] = 0.0f;
	onnxhook_graph_on_changed(NULL);
}
END_TEST

/* A check, then the recording of the same call with the check's stash. */
static int checked_unary(const char *op, float *in, float *out, struct onnxhook_stash *stash)
{
	struct onnxhook_call c;

	onnxhook_stash_clear(stash);
	onnxhook_call_begin_check(&c, &g, op, stash);
	onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, 4, s1222);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	onnxhook_call_begin(&c, &g, op);
	c.stash = stash;
	uint32_t x = onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, 4, s1222);
	onnxhook_call_write(&c, onnxhook_call_node(&c, op, 1, &x, 0, NULL, 4, s1222), out);
	return onnxhook_call_end(&c);
}

START_TEST(a_change_before_the_next_pass_is_no_warning)
{
	struct onnxhook_stash stash = {0};

	onnxhook_graph_on_changed(on_changed);
	changed_calls = 0;
	/* pass 1: the first layer runs in place on the input buffer */
	ck_assert_int_eq(checked_unary("Relu", mem, mem, &stash), 0);
	ck_assert_int_eq(checked_unary("Tanh", mem, mem + 100, &stash), 0);
	mem[1] = 3.0f; /* the program loads its next input there */
	ck_assert_int_eq(checked_unary("Relu", mem, mem, &stash), ONNXHOOK_NEW_PASS);
	/* that read belongs to the next pass: nothing in this model changed */
	ck_assert_int_eq(changed_calls, 0);
	ck_assert_str_eq(g.warnings, "");
	/* a change inside the pass is still said, once, by the recording */
	ck_assert_int_eq(checked_unary("Tanh", mem + 100, mem + 200, &stash), 0);
	mem[201] = 4.0f;
	ck_assert_int_eq(checked_unary("Sigmoid", mem + 200, mem + 300, &stash), 0);
	ck_assert_int_eq(changed_calls, 1);
	ck_assert_ptr_nonnull(strstr(g.warnings, "changed before Sigmoid"));
	onnxhook_stash_clear(&stash);
	memset(mem, 0, 400 * sizeof(float));
	onnxhook_graph_on_changed(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("graph");
	TCase *tc = tcase_create("graph");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, inplace_chain_versions_memory);
	tcase_add_test(tc, pingpong_and_free_malloc_reuse);
	tcase_add_test(tc, other_shape_of_same_bytes_is_reshape_once);
	tcase_add_test(tc, channel_slice_is_slice_on_channels);
	tcase_add_test(tc, batch_item_is_slice_on_batch);
	tcase_add_test(tc, unaligned_to_axes_slices_flat);
	tcase_add_test(tc, adjacent_writes_read_whole_is_concat);
	tcase_add_test(tc, unwritten_gap_becomes_input);
	tcase_add_test(tc, weights_copied_once_and_deduplicated);
	tcase_add_test(tc, weight_in_recorded_memory_is_data);
	tcase_add_test(tc, same_fresh_input_twice_in_one_call);
	tcase_add_test(tc, failed_call_rolls_back_and_freezes);
	tcase_add_test(tc, huge_and_negative_dims_rejected);
	tcase_add_test(tc, outputs_in_production_order);
	tcase_add_test(tc, first_call_recurring_on_fresh_input_starts_a_pass);
	tcase_add_test(tc, first_call_on_written_memory_is_not_a_pass);
	tcase_add_test(tc, host_names_are_unique_and_name_the_written_value);
	tcase_add_test(tc, host_boundaries_replace_signatures);
	tcase_add_test(tc, scoped_names_count_ops_per_scope_and_keep_the_stack);
	tcase_add_test(tc, elf_symbols_name_functions);
	tcase_add_test(tc, dynamic_batch_marks_batched_values_and_frees_reshapes);
	tcase_add_test(tc, dynamic_batch_refuses_a_batch_slice);
	tcase_add_test(tc, dynamic_batch_refuses_batch_bound_operands);
	tcase_add_test(tc, dynamic_batch_refused_leaves_shapes_static);
	tcase_add_test(tc, intact_bytes_are_followed);
	tcase_add_test(tc, changed_bytes_become_an_input_with_one_warning);
	tcase_add_test(tc, weights_staged_in_written_memory_are_an_initializer);
	tcase_add_test(tc, freed_memory_is_fresh_without_a_warning);
	tcase_add_test(tc, moved_memory_is_followed);
	tcase_add_test(tc, trimmed_values_are_followed_where_intact);
	tcase_add_test(tc, an_inplace_op_on_changed_memory_keeps_the_bytes_read);
	tcase_add_test(tc, a_change_before_the_next_pass_is_no_warning);
	tcase_add_test(tc, a_trimmed_value_changed_later_is_no_slice);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
