/* SPDX-License-Identifier: MIT */
/* Unit tests: the ONNX writer — round trip through protobuf-c, atomic files, no clobbering. */
#include "unit.h"
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnxhook.h"

static struct onnxhook_graph g;
static float x[2 * 3 * 4 * 4], y[2 * 4 * 4 * 4];
static float w[4 * 3 * 3 * 3] = {0.5f, -1.0f, 2.0f};
static const struct onnxhook_write_opts opts = {.opset = 17, .producer_version = "test", .graph_name = "g"};
static char dir[64];

/* conv(x) -> relu in place: one input, two initializers, two nodes, one output */
static void build_graph(void)
{
	const int64_t xs[4] = {2, 3, 4, 4}, ws[4] = {4, 3, 3, 3}, ys[4] = {2, 4, 4, 4};
	const int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
	const struct onnxhook_attr attrs[2] = {onnxhook_attr_ints("kernel_shape", 2, k),
					       onnxhook_attr_ints("pads", 4, pads)};
	const int64_t nb = 4;
	struct onnxhook_call c;

	onnxhook_graph_init(&g);
	onnxhook_call_begin(&c, &g, "conv");
	uint32_t in[3] = {onnxhook_call_read(&c, x, ONNXHOOK_FLOAT, 4, xs),
			  onnxhook_call_weight(&c, w, ONNXHOOK_FLOAT, 4, ws, "weight"),
			  onnxhook_call_weight(&c, w, ONNXHOOK_FLOAT, 1, &nb, "bias")};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Conv", 3, in, 2, attrs, 4, ys), y);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	onnxhook_call_begin(&c, &g, "relu");
	uint32_t r = onnxhook_call_read(&c, y, ONNXHOOK_FLOAT, 4, ys);
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Relu", 1, &r, 0, NULL, 4, ys), y);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
}

static void setup(void)
{
	build_graph();
	unit_tmpdir(dir, sizeof(dir), "test");
}

static void teardown(void)
{
	onnxhook_graph_free(&g);
	unit_tmpdir_remove(dir);
}

static void check_shape(const Onnx__ValueInfoProto *vi, const char *name, int64_t d0, int64_t d1)
{
	ck_assert_str_eq(vi->name, name);
	ck_assert_int_eq(vi->type->value_case, ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE);
	ck_assert_int_eq(vi->type->tensor_type->elem_type, 1);
	const Onnx__TensorShapeProto *s = vi->type->tensor_type->shape;
	ck_assert_uint_eq(s->n_dim, 4);
	ck_assert_int_eq(s->dim[0]->value_case, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
	ck_assert_int_eq(s->dim[0]->dim_value, d0);
	ck_assert_int_eq(s->dim[1]->dim_value, d1);
}

START_TEST(round_trip)
{
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(onnxhook_write_mem(&g, &opts, &buf, &len), 0);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(m);
	ck_assert(m->has_ir_version);
	ck_assert_int_eq(m->ir_version, 8);
	ck_assert_uint_eq(m->n_opset_import, 1);
	ck_assert_str_eq(m->opset_import[0]->domain, "");
	ck_assert_int_eq(m->opset_import[0]->version, 17);
	ck_assert_str_eq(m->producer_name, "onnxhook");

	const Onnx__GraphProto *gr = m->graph;
	ck_assert_str_eq(gr->name, "g");
	ck_assert_uint_eq(gr->n_node, 2);
	ck_assert_str_eq(gr->node[0]->op_type, "Conv");
	ck_assert_str_eq(gr->node[0]->name, "Conv_0");
	ck_assert_uint_eq(gr->node[0]->n_input, 3);
	ck_assert_str_eq(gr->node[0]->input[0], "input_0");
	ck_assert_str_eq(gr->node[0]->input[1], "Conv_0.weight");
	ck_assert_str_eq(gr->node[0]->input[2], "Conv_0.bias");
	ck_assert_str_eq(gr->node[0]->output[0], "Conv_0");
	ck_assert_uint_eq(gr->node[0]->n_attribute, 2);
	ck_assert_str_eq(gr->node[0]->attribute[1]->name, "pads");
	ck_assert_int_eq(gr->node[0]->attribute[1]->type, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	ck_assert_uint_eq(gr->node[0]->attribute[1]->n_ints, 4);
	ck_assert_str_eq(gr->node[1]->input[0], "Conv_0");
	ck_assert_str_eq(gr->node[1]->output[0], "output_0");

	ck_assert_uint_eq(gr->n_initializer, 2);
	const Onnx__TensorProto *t = gr->initializer[0];
	ck_assert_str_eq(t->name, "Conv_0.weight");
	ck_assert_int_eq(t->data_type, 1);
	ck_assert_uint_eq(t->n_dims, 4);
	ck_assert_int_eq(t->dims[0], 4);
	ck_assert(t->has_raw_data);
	ck_assert_uint_eq(t->raw_data.len, sizeof(w));
	ck_assert_mem_eq(t->raw_data.data, w, sizeof(w));
	ck_assert_uint_eq(gr->initializer[1]->raw_data.len, 16);

	ck_assert_uint_eq(gr->n_input, 1);
	check_shape(gr->input[0], "input_0", 2, 3);
	ck_assert_uint_eq(gr->n_output, 1);
	check_shape(gr->output[0], "output_0", 2, 4);
	ck_assert_uint_eq(gr->n_value_info, 1);
	check_shape(gr->value_info[0], "Conv_0", 2, 4);

	onnx__model_proto__free_unpacked(m, NULL);
	free(buf);
}
END_TEST

START_TEST(debug_outputs_and_custom_domains)
{
	const int64_t ys[4] = {2, 4, 4, 4};
	struct onnxhook_write_opts dbg = opts;
	struct onnxhook_call c;
	uint8_t *buf;
	size_t len;

	/* a host layer no standard op reproduces, named by the host */
	onnxhook_call_begin(&c, &g, "rnn");
	onnxhook_call_set_name(&c, "layer_2");
	uint32_t in = onnxhook_call_read(&c, y, ONNXHOOK_FLOAT, 4, ys);
	onnxhook_call_write(&c, onnxhook_call_node_domain(&c, "darknet", "rnn", 1, &in, 0, NULL, 4, ys), y);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	dbg.debug_outputs = true;
	ck_assert_int_eq(onnxhook_write_mem(&g, &dbg, &buf, &len), 0);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->n_opset_import, 2);
	ck_assert_str_eq(m->opset_import[0]->domain, "");
	ck_assert_str_eq(m->opset_import[1]->domain, "darknet");
	ck_assert_int_eq(m->opset_import[1]->version, 1);
	const Onnx__GraphProto *gr = m->graph;
	ck_assert_str_eq(gr->node[2]->name, "layer_2_rnn");
	ck_assert_str_eq(gr->node[2]->domain, "darknet");
	/* real output first; then every written value: Conv_0, Relu_0 (consumed), layer_2 (an
	 * output already: an Identity copy under its own name) */
	ck_assert_uint_eq(gr->n_output, 4);
	ck_assert_str_eq(gr->output[0]->name, "output_0");
	ck_assert_str_eq(gr->output[1]->name, "Conv_0");
	ck_assert_str_eq(gr->output[2]->name, "Relu_0");
	ck_assert_str_eq(gr->output[3]->name, "layer_2");
	ck_assert_uint_eq(gr->n_node, 4);
	ck_assert_str_eq(gr->node[3]->op_type, "Identity");
	ck_assert_str_eq(gr->node[3]->input[0], "output_0");
	ck_assert_str_eq(gr->node[3]->output[0], "layer_2");
	onnx__model_proto__free_unpacked(m, NULL);
	free(buf);
}
END_TEST

static void slurp(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	*buf = malloc(*len);
	ck_assert_uint_eq(fread(*buf, 1, *len, f), *len);
	fclose(f);
}

static int count_entries(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "exit $(ls -A %s | wc -l)", dir);
	return WEXITSTATUS(system(cmd));
}

START_TEST(file_equals_memory_and_no_temp_left)
{
	char path[128], final[256];
	struct onnxhook_write_stats st;
	uint8_t *a, *b;
	size_t la, lb;

	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, true, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, path);
	ck_assert_uint_eq(st.n_nodes, 2);
	ck_assert_uint_eq(st.parameters, 4 * 3 * 3 * 3 + 4);
	slurp(path, &a, &la);
	ck_assert_int_eq(onnxhook_write_mem(&g, &opts, &b, &lb), 0);
	ck_assert_uint_eq(la, lb);
	ck_assert_uint_eq(st.bytes, la);
	ck_assert_mem_eq(a, b, la);
	free(a);
	free(b);
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* A bump allocator over a static buffer that fails after `limit` allocations; what it is given
 * back must be its own. */
static struct {
	size_t used, calls, limit;
	_Alignas(max_align_t) unsigned char buf[8 << 20];
} pool;

static void *pool_alloc(void *ctx, size_t size)
{
	(void)ctx;
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (pool.calls++ >= pool.limit || size > sizeof(pool.buf) - pool.used)
		return NULL;
	pool.used += size;
	return pool.buf + pool.used - size;
}

static void pool_free(void *ctx, void *p)
{
	(void)ctx;
	ck_assert(!p || ((unsigned char *)p >= pool.buf && (unsigned char *)p < pool.buf + sizeof(pool.buf)));
}

/* A dump from a signal handler gives the writer memory of its own: the same model comes out,
 * and when that memory runs out, at any allocation, the write fails with -ENOMEM and leaves
 * nothing behind. */
START_TEST(allocator_same_model_and_clean_failure)
{
	static const struct onnxhook_allocator alloc = {pool_alloc, pool_free, NULL};
	char a[128], b[128], c[128], final[256];
	struct onnxhook_write_stats st;
	uint8_t *ba, *bb;
	size_t la, lb, needed;

	snprintf(a, sizeof(a), "%s/a.onnx", dir);
	snprintf(b, sizeof(b), "%s/b.onnx", dir);
	snprintf(c, sizeof(c), "%s/c.onnx", dir);
	ck_assert_int_eq(onnxhook_write(&g, &opts, a, true, final, sizeof(final), &st), 0);
	pool.used = pool.calls = 0;
	pool.limit = SIZE_MAX;
	onnxhook_set_allocator(&alloc);
	ck_assert_int_eq(onnxhook_write(&g, &opts, b, true, final, sizeof(final), &st), 0);
	needed = pool.calls;
	ck_assert_uint_gt(needed, 1);
	for (size_t limit = 0; limit < needed; limit++) {
		pool.used = pool.calls = 0;
		pool.limit = limit;
		ck_assert_int_eq(onnxhook_write(&g, &opts, c, true, final, sizeof(final), &st), -ENOMEM);
		ck_assert_int_eq(count_entries(), 2);
	}
	onnxhook_set_allocator(NULL);
	slurp(a, &ba, &la);
	slurp(b, &bb, &lb);
	ck_assert_uint_eq(la, lb);
	ck_assert_mem_eq(ba, bb, la);
	free(ba);
	free(bb);
}
END_TEST

START_TEST(default_name_never_replaces)
{
	char path[128], final[256], p1[128], p2[128];
	struct onnxhook_write_stats st;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/app.7.onnx", dir);
	snprintf(p1, sizeof(p1), "%s/app.7.1.onnx", dir);
	snprintf(p2, sizeof(p2), "%s/app.7.2.onnx", dir);
	FILE *f = fopen(path, "w");
	fputs("precious", f);
	fclose(f);
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, false, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, p1);
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, false, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, p2);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, 8);
	ck_assert_int_eq(count_entries(), 3);
}
END_TEST

START_TEST(explicit_path_replaces_symlink_not_target)
{
	char path[128], target[128], final[256];
	struct onnxhook_write_stats st;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	snprintf(target, sizeof(target), "%s/victim", dir);
	FILE *f = fopen(target, "w");
	fputs("precious", f);
	fclose(f);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, true, final, sizeof(final), &st), 0);
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode)); /* the link itself was replaced */
	ck_assert_int_eq(stat(target, &sb), 0);
	ck_assert_int_eq(sb.st_size, 8);
}
END_TEST

START_TEST(unwritable_places_fail_cleanly)
{
	char path[128], final[256];
	struct onnxhook_write_stats st;

	snprintf(path, sizeof(path), "%s/missing/m.onnx", dir);
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, true, final, sizeof(final), &st), -ENOENT);
	/* a directory where the file should be: rename fails, the temp file goes away */
	snprintf(path, sizeof(path), "%s/d", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, true, final, sizeof(final), &st), -EISDIR);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* ---- external data ----------------------------------------------------------------------- */

static float w2[8 * 4 * 3 * 3], w3[8 * 8 * 3 * 3]; /* 1152 and 2304 bytes: both go outside */
static float z2[2 * 8 * 4 * 4], z3[2 * 8 * 4 * 4];

/* Two more convs after the relu: weights of 1152 and 2304 bytes (external when asked), while
 * Conv_0's 432-byte weight and every bias stay inline. */
static void add_big_convs(void)
{
	const int64_t ys[4] = {2, 4, 4, 4}, zs[4] = {2, 8, 4, 4};
	const int64_t w2s[4] = {8, 4, 3, 3}, w3s[4] = {8, 8, 3, 3};
	const int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
	const struct onnxhook_attr attrs[2] = {onnxhook_attr_ints("kernel_shape", 2, k),
					       onnxhook_attr_ints("pads", 4, pads)};
	struct onnxhook_call c;

	for (size_t i = 0; i < sizeof(w2) / sizeof(*w2); i++)
		w2[i] = (float)i * 0.25f - 7.0f;
	for (size_t i = 0; i < sizeof(w3) / sizeof(*w3); i++)
		w3[i] = 3.0f - (float)i * 0.125f;
	onnxhook_call_begin(&c, &g, "conv");
	uint32_t in[2] = {onnxhook_call_read(&c, y, ONNXHOOK_FLOAT, 4, ys),
			  onnxhook_call_weight(&c, w2, ONNXHOOK_FLOAT, 4, w2s, "weight")};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Conv", 2, in, 2, attrs, 4, zs), z2);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	onnxhook_call_begin(&c, &g, "conv");
	uint32_t in3[2] = {onnxhook_call_read(&c, z2, ONNXHOOK_FLOAT, 4, zs),
			   onnxhook_call_weight(&c, w3, ONNXHOOK_FLOAT, 4, w3s, "weight")};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Conv", 2, in3, 2, attrs, 4, zs), z3);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
}

static const char *entry_value(const Onnx__TensorProto *t, const char *key)
{
	for (size_t i = 0; i < t->n_external_data; i++)
		if (!strcmp(t->external_data[i]->key, key))
			return t->external_data[i]->value;
	return NULL;
}

static const Onnx__TensorProto *find_init(const Onnx__ModelProto *m, const char *name)
{
	for (size_t i = 0; i < m->graph->n_initializer; i++)
		if (!strcmp(m->graph->initializer[i]->name, name))
			return m->graph->initializer[i];
	ck_abort_msg("no initializer %s", name);
	return NULL;
}

/* The model at path: every initializer of at least 1 KiB in the data file named location,
 * at a 4096-aligned offset, holding exactly the recorded bytes; the others inline. Returns
 * how many are external. */
static size_t check_pair(const char *path, const char *location)
{
	const struct {
		const char *name;
		const void *data;
		size_t len;
	} want[] = {{"Conv_0.weight", w, sizeof(w)}, {"Conv_1.weight", w2, sizeof(w2)},
		    {"Conv_2.weight", w3, sizeof(w3)}};
	char data_path[256];
	uint8_t *buf, *data = NULL;
	size_t len, data_len = 0, n_ext = 0;

	slurp(path, &buf, &len);
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(m);
	if (location) {
		snprintf(data_path, sizeof(data_path), "%.*s/%s",
			 (int)(strrchr(path, '/') - path), path, location);
		slurp(data_path, &data, &data_len);
	}
	ck_assert(!find_init(m, "Conv_0.bias")->has_data_location);
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
		const Onnx__TensorProto *t = find_init(m, want[i].name);
		if (want[i].len < ONNXHOOK_EXTERNAL_MIN || !location) {
			ck_assert(t->has_raw_data);
			ck_assert(!t->has_data_location || t->data_location == 0);
			ck_assert_uint_eq(t->n_external_data, 0);
			ck_assert_uint_eq(t->raw_data.len, want[i].len);
			ck_assert_mem_eq(t->raw_data.data, want[i].data, want[i].len);
			continue;
		}
		n_ext++;
		ck_assert(!t->has_raw_data);
		ck_assert(t->has_data_location);
		ck_assert_int_eq(t->data_location, ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL);
		ck_assert_uint_eq(t->n_external_data, 3);
		ck_assert_str_eq(entry_value(t, "location"), location);
		unsigned long long off = strtoull(entry_value(t, "offset"), NULL, 10);
		unsigned long long n = strtoull(entry_value(t, "length"), NULL, 10);
		ck_assert_uint_eq(off % ONNXHOOK_EXTERNAL_ALIGN, 0);
		ck_assert_uint_eq(n, want[i].len);
		ck_assert_uint_le(off + n, data_len);
		ck_assert_mem_eq(data + off, want[i].data, n);
	}
	onnx__model_proto__free_unpacked(m, NULL);
	free(buf);
	free(data);
	return n_ext;
}

static bool exists(const char *name)
{
	char p[256];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &sb) == 0;
}

START_TEST(external_always_aligned_and_exact)
{
	struct onnxhook_write_opts o = opts;
	char path[128], final[256];
	struct onnxhook_write_stats st;
	struct stat sb;
	uint8_t *data;
	size_t len;

	add_big_convs();
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, path);
	ck_assert_uint_eq(st.n_external, 2);
	ck_assert(!st.external_forced);
	/* Conv_1.weight at 0, Conv_2.weight at the next 4096 boundary; zeros in between */
	ck_assert_uint_eq(st.data_bytes, 4096 + sizeof(w3));
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(st.bytes, (uint64_t)sb.st_size);
	ck_assert_uint_lt(st.bytes, st.inline_bytes - sizeof(w2) - sizeof(w3) + 256);
	ck_assert_uint_eq(check_pair(path, "m.onnx.data"), 2);
	slurp(strcat(path, ".data"), &data, &len);
	ck_assert_uint_eq(len, st.data_bytes);
	for (size_t i = sizeof(w2); i < 4096; i++)
		ck_assert_uint_eq(data[i], 0);
	free(data);
	ck_assert_int_eq(count_entries(), 2); /* the pair, no temporaries */
}
END_TEST

START_TEST(external_auto_and_never_choose_by_size)
{
	struct onnxhook_write_opts o = opts;
	char path[128], final[256];
	struct onnxhook_write_stats st;

	add_big_convs();
	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	/* auto (the default), small model: inline, one file */
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_uint_eq(st.n_external, 0);
	ck_assert_uint_eq(st.bytes, st.inline_bytes);
	ck_assert_uint_eq(check_pair(path, NULL), 0);
	ck_assert_int_eq(count_entries(), 1);
	/* never, small model: inline */
	o.external_data = ONNXHOOK_EXTERNAL_NEVER;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_uint_eq(st.n_external, 0);
	ck_assert(!st.external_forced);
	ck_assert_int_eq(count_entries(), 1);
	/* auto, a model past the limit (lowered to 4 KiB here): external */
	o.external_data = ONNXHOOK_EXTERNAL_AUTO;
	o.inline_limit = 4096;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_uint_gt(st.inline_bytes, 4096);
	ck_assert_uint_eq(st.n_external, 2);
	ck_assert(!st.external_forced);
	ck_assert_uint_eq(check_pair(path, "m.onnx.data"), 2);
	/* just under the limit: inline again; the explicit path replaces the old pair's model */
	o.inline_limit = st.inline_bytes;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_uint_eq(st.n_external, 0);
	ck_assert_uint_eq(check_pair(path, NULL), 0);
	/* never past the limit: written with external data all the same, and flagged */
	o.external_data = ONNXHOOK_EXTERNAL_NEVER;
	o.inline_limit = 4096;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert(st.external_forced);
	ck_assert_uint_eq(st.n_external, 2);
	ck_assert_uint_eq(check_pair(path, "m.onnx.data"), 2);
	/* still too big with the weights outside: refused, nothing left behind */
	o.inline_limit = 64;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), -EFBIG);
	ck_assert_int_eq(count_entries(), 2);
}
END_TEST

START_TEST(external_default_name_pairs_never_replace)
{
	struct onnxhook_write_opts o = opts;
	char path[128], final[256], want[256];
	struct onnxhook_write_stats st;
	uint8_t *old;
	size_t len;
	FILE *f;

	add_big_convs();
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	snprintf(path, sizeof(path), "%s/app.7.onnx", dir);
	/* app.7.onnx taken; app.7.1.onnx free but its data name taken by a stray file */
	f = fopen(path, "w");
	fputs("precious", f);
	fclose(f);
	snprintf(want, sizeof(want), "%s/app.7.1.onnx.data", dir);
	f = fopen(want, "w");
	fputs("stray", f);
	fclose(f);
	ck_assert_int_eq(onnxhook_write(&g, &o, path, false, final, sizeof(final), &st), 0);
	snprintf(want, sizeof(want), "%s/app.7.2.onnx", dir);
	ck_assert_str_eq(final, want);
	ck_assert_uint_eq(check_pair(final, "app.7.2.onnx.data"), 2);
	ck_assert(!exists("app.7.1.onnx"));
	ck_assert_int_eq(onnxhook_write(&g, &o, path, false, final, sizeof(final), &st), 0);
	snprintf(want, sizeof(want), "%s/app.7.3.onnx", dir);
	ck_assert_str_eq(final, want);
	ck_assert_uint_eq(check_pair(final, "app.7.3.onnx.data"), 2);
	/* precious, stray, two pairs: nothing replaced, no temporaries */
	ck_assert_int_eq(count_entries(), 6);
	slurp(path, &old, &len);
	ck_assert_uint_eq(len, 8);
	free(old);
	snprintf(want, sizeof(want), "%s/app.7.1.onnx.data", dir);
	slurp(want, &old, &len);
	ck_assert_uint_eq(len, 5);
	free(old);
}
END_TEST

START_TEST(external_explicit_path_replaces_links_and_cleans_up)
{
	struct onnxhook_write_opts o = opts;
	char path[128], data[160], target[192], final[256];
	struct onnxhook_write_stats st;
	struct stat sb;

	add_big_convs();
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	snprintf(data, sizeof(data), "%s.data", path);
	snprintf(target, sizeof(target), "%s/victim", dir);
	FILE *f = fopen(target, "w");
	fputs("precious", f);
	fclose(f);
	ck_assert_int_eq(symlink(target, data), 0);
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_int_eq(lstat(data, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode)); /* the link was replaced, not written through */
	ck_assert_int_eq(stat(target, &sb), 0);
	ck_assert_int_eq(sb.st_size, 8);
	ck_assert_uint_eq(check_pair(path, "m.onnx.data"), 2);
	/* a directory holding the data name: refused; the old model stays, no temporaries */
	ck_assert_int_eq(unlink(data), 0);
	ck_assert_int_eq(mkdir(data, 0700), 0);
	snprintf(target, sizeof(target), "%s/x", data);
	ck_assert_int_eq(mkdir(target, 0700), 0);
	ck_assert_int_lt(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_int_eq(count_entries(), 3); /* victim, m.onnx, m.onnx.data/ */
	ck_assert_int_eq(rmdir(target), 0);
	ck_assert_int_eq(rmdir(data), 0);
}
END_TEST

START_TEST(external_never_to_a_device)
{
	struct onnxhook_write_opts o = opts;
	char final[256];
	struct onnxhook_write_stats st;

	add_big_convs();
	/* no file beside /dev/null: inline even when always is asked */
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	ck_assert_int_eq(onnxhook_write(&g, &o, "/dev/null", true, final, sizeof(final), &st), 0);
	ck_assert_uint_eq(st.n_external, 0);
	ck_assert_uint_eq(st.bytes, st.inline_bytes);
	/* past the limit it cannot be written there at all (the caller falls back to $TMPDIR) */
	o.inline_limit = 4096;
	ck_assert_int_eq(onnxhook_write(&g, &o, "/dev/null", true, final, sizeof(final), &st), -EFBIG);
}
END_TEST

/* Faults for publishing a pair: rename(2) of a temporary (not the old data put back) onto
 * fail_rename_to fails with EACCES, link(2) fails with fail_link when set (a file system without
 * hard links: EPERM). The writer is linked in statically, so its calls come here. */
static const char *fail_rename_to;
static int fail_link;

int rename(const char *from, const char *to)
{
	size_t n = strlen(from);

	if (fail_rename_to && !strcmp(to, fail_rename_to) && strstr(from, "/.onnxhook.") &&
	    !(n > 4 && !strcmp(from + n - 4, ".old"))) {
		errno = EACCES;
		return -1;
	}
	return renameat(AT_FDCWD, from, AT_FDCWD, to);
}

int link(const char *from, const char *to)
{
	if (fail_link) {
		errno = fail_link;
		return -1;
	}
	return linkat(AT_FDCWD, from, AT_FDCWD, to, 0);
}

static void put(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(s, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void check_holds(const char *path, const char *s)
{
	uint8_t *buf;
	size_t len;

	slurp(path, &buf, &len);
	ck_assert_msg(len == strlen(s) && !memcmp(buf, s, len), "%s: %.*s, not %s", path, (int)len, buf, s);
	free(buf);
}

START_TEST(external_replace_keeps_the_old_pair_on_failure)
{
	struct onnxhook_write_opts o = opts;
	char path[128], data[160], stale[224], final[256];
	struct onnxhook_write_stats st;

	add_big_convs();
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	snprintf(data, sizeof(data), "%s.data", path);
	put(path, "old model");
	put(data, "old data");
	/* a stale link name from a crashed run of the same pid, then the model's rename fails */
	snprintf(stale, sizeof(stale), "%s/.onnxhook.%ld.0.tmp.old", dir, (long)getpid());
	put(stale, "stale");
	fail_rename_to = path;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), -EACCES);
	check_holds(path, "old model");
	check_holds(data, "old data");
	ck_assert_int_eq(count_entries(), 2); /* the old pair, no temporaries */
	/* no hard links on this file system: the model's rename fails, or the data's */
	fail_link = EPERM;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), -EACCES);
	check_holds(path, "old model");
	check_holds(data, "old data");
	ck_assert_int_eq(count_entries(), 2);
	fail_rename_to = data;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), -EACCES);
	check_holds(path, "old model");
	check_holds(data, "old data");
	ck_assert_int_eq(count_entries(), 2);
	/* and without faults (still no hard links) the new pair replaces it, nothing left over */
	fail_rename_to = NULL;
	put(stale, "stale");
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_uint_eq(check_pair(path, "m.onnx.data"), 2);
	ck_assert_int_eq(count_entries(), 2);
}
END_TEST

/* "dir/zzz…<n bytes in all>…" */
static void long_name(char *path, size_t len, size_t n, const char *ext)
{
	int o = snprintf(path, len, "%s/", dir);

	ck_assert_uint_lt(o + n, len);
	memset(path + o, 'z', n - strlen(ext));
	strcpy(path + o + n - strlen(ext), ext);
}

/* Any valid file name works: the temporary names are short whatever the final name's length
 * ("<name>.tmp.<pid>" passed NAME_MAX from 246 bytes on). */
START_TEST(names_up_to_name_max_work)
{
	static const size_t lengths[] = {246, 250, 255};
	char path[512], final[512], dot[512];
	struct onnxhook_write_stats st;
	struct stat sb;

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		long_name(path, sizeof(path), lengths[i], ".onnx");
		ck_assert_int_eq(onnxhook_write(&g, &opts, path, true, final, sizeof(final), &st), 0);
		ck_assert_str_eq(final, path);
		ck_assert_int_eq(stat(path, &sb), 0);
		ck_assert_uint_eq(st.bytes, (uint64_t)sb.st_size);
		ck_assert_int_eq(onnxhook_write(&g, &opts, path, true, final, sizeof(final), &st), 0);
		long_name(dot, sizeof(dot), lengths[i], ".dot");
		ck_assert_int_eq(onnxhook_dot_write(&g, "g", dot), 0);
		ck_assert_int_eq(stat(dot, &sb), 0);
		ck_assert_int_eq(unlink(dot), 0);
		ck_assert_int_eq(unlink(path), 0);
	}
	/* the default name (never replacing) too */
	long_name(path, sizeof(path), 255, ".onnx");
	ck_assert_int_eq(onnxhook_write(&g, &opts, path, false, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, path);
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* "<name>.data" of a name over 250 bytes passes NAME_MAX: the weights stay inside the model
 * (st->data_refused says why); past the inline limit nothing can be written there at all (the
 * caller falls back to $TMPDIR), and nothing is left behind. */
START_TEST(no_data_file_name_past_name_max)
{
	struct onnxhook_write_opts o = opts;
	char path[512], final[512];
	struct onnxhook_write_stats st;

	add_big_convs();
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	long_name(path, sizeof(path), 250, ".onnx"); /* its .data: 255 bytes, still valid */
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_uint_eq(st.n_external, 2);
	ck_assert_int_eq(st.data_refused, ONNXHOOK_DATA_PLACED);
	ck_assert_int_eq(count_entries(), 2);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(unlink(strcat(path, ".data")), 0);

	long_name(path, sizeof(path), 251, ".onnx");
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, path);
	ck_assert_uint_eq(st.n_external, 0);
	ck_assert_int_eq(st.data_refused, ONNXHOOK_DATA_NAME_TOO_LONG);
	ck_assert_uint_eq(st.bytes, st.inline_bytes);
	ck_assert_int_eq(count_entries(), 1);
	/* auto below the limit: no data file was due, nothing refused */
	o.external_data = ONNXHOOK_EXTERNAL_AUTO;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_int_eq(st.data_refused, ONNXHOOK_DATA_PLACED);
	ck_assert_int_eq(unlink(path), 0);
	o.inline_limit = 4096;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), -ENAMETOOLONG);
	ck_assert_int_eq(st.data_refused, ONNXHOOK_DATA_NAME_TOO_LONG);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* /dev/stdout on a file, a pipe: the model is written into the descriptor, whole, inline. */
START_TEST(written_into_a_descriptor)
{
	struct onnxhook_write_opts o = opts;
	char path[64], final[256];
	struct onnxhook_write_stats st;
	uint8_t *mem, *got;
	size_t len;
	int p[2];

	add_big_convs();
	ck_assert_int_eq(onnxhook_write_mem(&g, &o, &mem, &len), 0);
	ck_assert_uint_lt(len, 65536); /* fits in the pipe */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
	o.external_data = ONNXHOOK_EXTERNAL_ALWAYS;
	ck_assert_int_eq(onnxhook_write(&g, &o, path, true, final, sizeof(final), &st), 0);
	ck_assert_str_eq(final, path);
	ck_assert_int_eq(st.data_refused, ONNXHOOK_DATA_NO_PLACE);
	ck_assert_uint_eq(st.bytes, len);
	got = malloc(len + 1);
	ck_assert_int_eq(read(p[0], got, len + 1), (ssize_t)len);
	ck_assert_mem_eq(got, mem, len);
	close(p[0]);
	close(p[1]);
	free(got);
	free(mem);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* The summaries' sizes: small counts exactly (an 855-parameter model is not "0.00M"). */
START_TEST(sizes_as_the_summaries_show_them)
{
	static const struct {
		uint64_t n;
		const char *count, *bytes;
	} cases[] = {
		{0, "0", "0 B"},
		{855, "855", "855 B"},
		{999, "999", "999 B"},
		{1000, "1000", "1.0 KB"},
		{4620, "4620", "4.6 KB"},
		{999949, "999949", "999.9 KB"},
		{999950, "999950", "1.0 MB"},
		{1000000, "1.00M", "1.0 MB"},
		{1234567, "1.23M", "1.2 MB"},
		{11689512, "11.69M", "11.7 MB"},
		{46842048, "46.84M", "46.8 MB"},
		{999994999, "999.99M", "1.00 GB"},
		{2470000000ull, "2.47G", "2.47 GB"},
		{3000000000000ull, "3000.00G", "3.00 TB"},
	};
	char a[ONNXHOOK_FORMAT_MAX], b[ONNXHOOK_FORMAT_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_str_eq(onnxhook_format_count(cases[i].n, a, sizeof(a)), cases[i].count);
		ck_assert_str_eq(onnxhook_format_bytes(cases[i].n, b, sizeof(b)), cases[i].bytes);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, debug_outputs_and_custom_domains);
	tcase_add_test(tc, file_equals_memory_and_no_temp_left);
	tcase_add_test(tc, allocator_same_model_and_clean_failure);
	tcase_add_test(tc, default_name_never_replaces);
	tcase_add_test(tc, explicit_path_replaces_symlink_not_target);
	tcase_add_test(tc, unwritable_places_fail_cleanly);
	tcase_add_test(tc, external_always_aligned_and_exact);
	tcase_add_test(tc, external_auto_and_never_choose_by_size);
	tcase_add_test(tc, external_default_name_pairs_never_replace);
	tcase_add_test(tc, external_explicit_path_replaces_links_and_cleans_up);
	tcase_add_test(tc, external_never_to_a_device);
	tcase_add_test(tc, external_replace_keeps_the_old_pair_on_failure);
	tcase_add_test(tc, names_up_to_name_max_work);
	tcase_add_test(tc, no_data_file_name_past_name_max);
	tcase_add_test(tc, written_into_a_descriptor);
	tcase_add_test(tc, sizes_as_the_summaries_show_them);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
