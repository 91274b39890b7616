/* SPDX-License-Identifier: MIT */
/* Unit tests: the ONNX writer — round trip through protobuf-c, atomic files, no clobbering. */
#include "unit.h"
#include <errno.h>
#include <fcntl.h>
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
	strcpy(dir, "/tmp/onnxhook-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	onnxhook_graph_free(&g);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
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

int main(void)
{
	Suite *s = suite_create("writer");
	TCase *tc = tcase_create("writer");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, debug_outputs_and_custom_domains);
	tcase_add_test(tc, file_equals_memory_and_no_temp_left);
	tcase_add_test(tc, default_name_never_replaces);
	tcase_add_test(tc, explicit_path_replaces_symlink_not_target);
	tcase_add_test(tc, unwritable_places_fail_cleanly);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
