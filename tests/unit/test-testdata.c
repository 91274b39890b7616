/* SPDX-License-Identifier: MIT */
/* Unit tests: test data — snapshots of the bytes the program had, TensorProto files, safe
 * replacing, whose set is whose. */
#include "unit.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnxhook.h"

#define N_X (2 * 3 * 4 * 4)
#define N_Y (2 * 4 * 4 * 4)
static struct onnxhook_graph g;
static float x[N_X], y[N_Y], w[4 * 3 * 3 * 3];
static const int64_t xs[4] = {2, 3, 4, 4}, ws[4] = {4, 3, 3, 3}, ys[4] = {2, 4, 4, 4};
static char dir[64], why[1024];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void setup(void)
{
	for (int i = 0; i < N_X; i++)
		x[i] = (float)(i % 7) - 3.0f;
	for (int i = 0; i < (int)(sizeof(w) / sizeof(w[0])); i++)
		w[i] = (float)(i % 5) * 0.25f - 0.5f;
	onnxhook_graph_init(&g);
	g.test_data = true;
	unit_tmpdir(dir, sizeof(dir), "testdata");
}

static void teardown(void)
{
	onnxhook_graph_free(&g);
	unit_tmpdir_remove(dir);
}

/* "The host ran conv": y gets some bytes that depend on x. */
static uint32_t conv(void)
{
	struct onnxhook_call c;
	const int64_t k[2] = {3, 3}, pads[4] = {1, 1, 1, 1};
	const struct onnxhook_attr attrs[2] = {onnxhook_attr_ints("kernel_shape", 2, k),
					       onnxhook_attr_ints("pads", 4, pads)};

	for (int i = 0; i < N_Y; i++)
		y[i] = x[i % N_X] * 2.0f - 1.0f;
	onnxhook_call_begin(&c, &g, "conv");
	uint32_t in[2] = {onnxhook_call_read(&c, x, ONNXHOOK_FLOAT, 4, xs),
			  onnxhook_call_weight(&c, w, ONNXHOOK_FLOAT, 4, ws, "weight")};
	uint32_t out = onnxhook_call_node(&c, "Conv", 2, in, 2, attrs, 4, ys);
	onnxhook_call_write(&c, out, y);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	return out;
}

/* "The host ran relu" from src to dst (in place when they are the same buffer). */
static uint32_t relu(const float *src, float *dst, int n, const int64_t *dims)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "relu");
	uint32_t r = onnxhook_call_read(&c, src, ONNXHOOK_FLOAT, 4, dims);
	for (int i = 0; i < n; i++)
		dst[i] = src[i] > 0 ? src[i] : 0;
	uint32_t out = onnxhook_call_node(&c, "Relu", 1, &r, 0, NULL, 4, dims);
	onnxhook_call_write(&c, out, dst);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	return out;
}

static Onnx__TensorProto *load_from(const char *set, const char *name)
{
	char path[256];
	static uint8_t buf[1 << 16];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, set, name);
	ck_assert_msg((f = fopen(path, "rb")) != NULL, "%s is missing", path);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, n, buf);
	ck_assert_ptr_nonnull(t);
	return t;
}

static Onnx__TensorProto *load(const char *name)
{
	return load_from("test_data_set_0", name);
}

static void check_tensor(const char *file, const char *name, const int64_t *dims, const void *data,
			 size_t nbytes)
{
	Onnx__TensorProto *t = load(file);

	ck_assert_str_eq(t->name, name);
	ck_assert(t->has_data_type);
	ck_assert_int_eq(t->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
	ck_assert_uint_eq(t->n_dims, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(t->dims[i], dims[i]);
	ck_assert(t->has_raw_data);
	ck_assert_uint_eq(t->raw_data.len, nbytes);
	ck_assert_mem_eq(t->raw_data.data, data, nbytes);
	onnx__tensor_proto__free_unpacked(t, NULL);
}

/* Whose the set dir/sub says it is: the model named in its file's doc_string. */
static void check_owner(const char *sub, const char *file, const char *model)
{
	char want[256];
	Onnx__TensorProto *t = load_from(sub, file);

	snprintf(want, sizeof(want), "onnxhook test data of %s", model);
	ck_assert_ptr_nonnull(t->doc_string);
	ck_assert_str_eq(t->doc_string, want);
	onnx__tensor_proto__free_unpacked(t, NULL);
}

static int entries(const char *sub)
{
	return sh("exit $(ls -A %s/%s | wc -l)", dir, sub);
}

static char set[256];

static int write_for(const char *model)
{
	return onnxhook_test_data_write(&g, dir, model, set, sizeof(set), why, sizeof(why));
}

/* dir/sub made a set of model (NULL: no doc_string) holding the files named, each a small
 * TensorProto, as an earlier run would have left it. */
static void fake_set(const char *sub, const char *model, const char *files)
{
	struct onnxhook_value v = {.kind = ONNXHOOK_VALUE_INPUT, .dtype = ONNXHOOK_FLOAT,
				   .shape = {.rank = 1, .dims = {2}}, .nbytes = 8};
	const float data[2] = {1, 2};
	char doc[256], path[512], list[256], *save = NULL;
	uint8_t *buf;
	size_t len;

	snprintf(doc, sizeof(doc), "onnxhook test data of %s", model ? model : "");
	ck_assert_int_eq(sh("mkdir -p %s/%s", dir, sub), 0);
	snprintf(list, sizeof(list), "%s", files);
	for (char *f = strtok_r(list, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
		ck_assert_int_eq(onnxhook_tensor_pack(&v, "old", model ? doc : NULL, data, &buf, &len), 0);
		snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, f);
		FILE *out = fopen(path, "wb");
		ck_assert_ptr_nonnull(out);
		ck_assert_uint_eq(fwrite(buf, 1, len, out), len);
		fclose(out);
		free(buf);
	}
}

START_TEST(bytes_as_the_program_had_them)
{
	float expect[N_Y];

	uint32_t c = conv();
	ck_assert_ptr_nonnull(g.values[c].snapshot); /* unconsumed for now: kept */
	relu(y, y, N_Y, ys);                        /* in place on the conv's output */
	ck_assert_ptr_null(g.values[c].snapshot);   /* consumed: its copy went */
	memcpy(expect, y, sizeof(y));
	/* the program reuses the memory afterwards: the output is what the relu wrote */
	memset(y, 0x7f, sizeof(y));
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_str_eq(why, "");
	ck_assert_str_eq(set, "test_data_set_0");
	check_tensor("input_0.pb", "input_0", xs, x, sizeof(x));
	check_tensor("output_0.pb", "output_0", ys, expect, sizeof(expect));
	check_owner("test_data_set_0", "input_0.pb", "m.onnx");
	check_owner("test_data_set_0", "output_0.pb", "m.onnx");
	ck_assert_int_eq(entries("test_data_set_0"), 2);
	ck_assert_int_eq(entries(""), 1); /* no temporary directory left */
}
END_TEST

START_TEST(two_inputs_two_outputs_in_graph_order)
{
	static float a[N_Y], bb[N_Y], ra[N_Y], rb[N_Y];

	for (int i = 0; i < N_Y; i++) {
		a[i] = (float)i - 60;
		bb[i] = 60 - (float)i;
	}
	relu(bb, rb, N_Y, ys); /* bb is read first: input_0 */
	relu(a, ra, N_Y, ys);
	ck_assert_int_eq(write_for("m.onnx"), 0);
	check_tensor("input_0.pb", "input_0", ys, bb, sizeof(bb));
	check_tensor("input_1.pb", "input_1", ys, a, sizeof(a));
	check_tensor("output_0.pb", "output_0", ys, rb, sizeof(rb));
	check_tensor("output_1.pb", "output_1", ys, ra, sizeof(ra));
	ck_assert_int_eq(entries("test_data_set_0"), 4);
}
END_TEST

START_TEST(an_input_overwritten_in_place_gives_no_set)
{
	/* this model's earlier set is there (and one from when the place was taken): beside the
	 * new model they would be wrong, so they go */
	fake_set("test_data_set_0", "m.onnx", "input_0.pb output_3.pb");
	fake_set("m.onnx.test_data_set_0", "m.onnx", "input_0.pb");
	relu(x, x, N_X, xs); /* the input's bytes are gone when the hook sees the call */
	ck_assert(g.values[0].clobbered);
	ck_assert_ptr_null(g.values[0].snapshot);
	ck_assert_int_eq(write_for("m.onnx"), -ENODATA);
	ck_assert_msg(strstr(why, "input_0 was overwritten in place by relu") != NULL, "%s", why);
	ck_assert_msg(strstr(why, "the earlier test_data_set_0 there was removed") != NULL, "%s", why);
	ck_assert_msg(strstr(why, "the earlier m.onnx.test_data_set_0 there was removed") != NULL, "%s", why);
	ck_assert_str_eq(set, "");
	ck_assert_int_eq(entries(""), 0);
}
END_TEST

START_TEST(an_input_overwritten_in_place_leaves_another_models_set)
{
	/* a.onnx's set, and one of unknown origin (no doc_string): neither is b.onnx's to remove */
	fake_set("test_data_set_0", "a.onnx", "input_0.pb output_0.pb");
	fake_set("b.onnx.test_data_set_0", NULL, "input_0.pb");
	relu(x, x, N_X, xs);
	ck_assert_int_eq(write_for("b.onnx"), -ENODATA);
	ck_assert_msg(strstr(why, "input_0 was overwritten in place by relu") != NULL, "%s", why);
	ck_assert_msg(strstr(why, "the test_data_set_0 there is not from this model: left alone") != NULL,
		      "%s", why);
	ck_assert_msg(strstr(why, "removed") == NULL, "%s", why);
	ck_assert_int_eq(entries("test_data_set_0"), 2);
	check_owner("test_data_set_0", "output_0.pb", "a.onnx");
	ck_assert_int_eq(entries("b.onnx.test_data_set_0"), 1);
}
END_TEST

START_TEST(a_foreign_directory_is_left_alone)
{
	ck_assert_int_eq(sh("mkdir %s/test_data_set_0 && echo mine >%s/test_data_set_0/notes.txt", dir, dir), 0);
	relu(x, x, N_X, xs);
	ck_assert_int_eq(write_for("m.onnx"), -ENODATA);
	ck_assert_msg(strstr(why, "is not from this model") != NULL, "%s", why);
	ck_assert_int_eq(sh("grep -q mine %s/test_data_set_0/notes.txt", dir), 0);
}
END_TEST

START_TEST(an_output_no_call_wrote_gives_no_set)
{
	struct onnxhook_call c;

	onnxhook_call_begin(&c, &g, "conv");
	uint32_t r = onnxhook_call_read(&c, x, ONNXHOOK_FLOAT, 4, xs);
	onnxhook_call_node(&c, "Relu", 1, &r, 0, NULL, 4, xs); /* never written to memory */
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_int_eq(write_for("m.onnx"), -ENODATA);
	ck_assert_msg(strstr(why, "no copy of output_0: no host call wrote it") != NULL, "%s", why);
}
END_TEST

START_TEST(an_earlier_set_is_replaced_whole)
{
	char other[128];

	conv();
	/* this model's earlier set, with a file this pass does not have: replaced, nothing stale */
	fake_set("test_data_set_0", "m.onnx", "input_0.pb input_7.pb");
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_str_eq(why, "");
	ck_assert_str_eq(set, "test_data_set_0");
	ck_assert_int_eq(entries("test_data_set_0"), 2); /* input_0.pb, output_0.pb: nothing stale */
	ck_assert_int_eq(entries(""), 1);
	check_tensor("output_0.pb", "output_0", ys, y, sizeof(y));
	/* an unwritable place: the error, and nothing half-written */
	snprintf(other, sizeof(other), "%s/missing", dir);
	ck_assert_int_eq(onnxhook_test_data_write(&g, other, "m.onnx", set, sizeof(set), why, sizeof(why)),
			 -ENOENT);
	ck_assert_int_eq(entries(""), 1);
}
END_TEST

START_TEST(two_models_in_one_directory)
{
	conv();
	/* a launcher's processes: app.1.onnx, then app.2.onnx beside it */
	ck_assert_int_eq(write_for("app.1.onnx"), 0);
	ck_assert_str_eq(set, "test_data_set_0");
	ck_assert_int_eq(write_for("app.2.onnx"), 0);
	ck_assert_str_eq(set, "app.2.onnx.test_data_set_0");
	ck_assert_msg(strstr(why, "/test_data_set_0 holds another model's test data") != NULL, "%s", why);
	ck_assert_msg(strstr(why, "this model's went to ") && strstr(why, "/app.2.onnx.test_data_set_0"),
		      "%s", why);
	check_owner("test_data_set_0", "input_0.pb", "app.1.onnx");
	check_owner("app.2.onnx.test_data_set_0", "input_0.pb", "app.2.onnx");
	ck_assert_int_eq(entries("test_data_set_0"), 2);
	ck_assert_int_eq(entries("app.2.onnx.test_data_set_0"), 2);
	ck_assert_int_eq(entries(""), 2);
	/* each model again: its own set replaced, the other's untouched */
	ck_assert_int_eq(write_for("app.1.onnx"), 0);
	ck_assert_str_eq(why, "");
	ck_assert_str_eq(set, "test_data_set_0");
	ck_assert_int_eq(write_for("app.2.onnx"), 0);
	ck_assert_str_eq(set, "app.2.onnx.test_data_set_0");
	check_owner("test_data_set_0", "output_0.pb", "app.1.onnx");
	check_owner("app.2.onnx.test_data_set_0", "output_0.pb", "app.2.onnx");
	ck_assert_int_eq(entries(""), 2);
	/* the zoo's place free again: app.2's set goes there, its other one (stale now) goes */
	ck_assert_int_eq(sh("rm -r %s/test_data_set_0", dir), 0);
	ck_assert_int_eq(write_for("app.2.onnx"), 0);
	ck_assert_str_eq(why, "");
	ck_assert_str_eq(set, "test_data_set_0");
	check_owner("test_data_set_0", "input_0.pb", "app.2.onnx");
	ck_assert_int_eq(entries(""), 1);
}
END_TEST

START_TEST(a_set_of_unknown_origin_is_left_alone)
{
	char other[128];
	struct stat sb;

	conv();
	/* the zoo's files, but nothing says whose (an older onnxhook, a downloaded model) */
	fake_set("test_data_set_0", NULL, "input_0.pb input_7.pb");
	ck_assert_int_eq(sh("echo mine >%s/test_data_set_0/notes.txt", dir), 0);
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_str_eq(set, "m.onnx.test_data_set_0");
	ck_assert_msg(strstr(why, "holds another model's test data (or some of unknown origin)") != NULL, "%s", why);
	ck_assert_int_eq(entries("test_data_set_0"), 3);
	ck_assert_int_eq(entries("m.onnx.test_data_set_0"), 2);
	/* a symlink there is neither followed nor replaced */
	snprintf(other, sizeof(other), "%s/elsewhere", dir);
	ck_assert_int_eq(sh("rm -rf %s/test_data_set_0 %s/m.onnx.test_data_set_0 && mkdir %s && "
			    "touch %s/keep && ln -s %s %s/test_data_set_0", dir, dir, other, other, other, dir), 0);
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_str_eq(set, "m.onnx.test_data_set_0");
	ck_assert_int_eq(entries("elsewhere"), 1);
	snprintf(other, sizeof(other), "%s/test_data_set_0", dir);
	ck_assert_int_eq(lstat(other, &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
	ck_assert_int_eq(entries("m.onnx.test_data_set_0"), 2);
	ck_assert_int_eq(entries(""), 3);
}
END_TEST

/* renameat2 for the next tests: race_set (a set to put in the zoo's place just before our
 * exchange, as another process would), or no_flags (a file system without renameat2's flags).
 * The core is linked in statically, so its calls come here. */
static const char *race_set;
static bool no_flags;

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
	if (no_flags && flags) {
		errno = EINVAL;
		return -1;
	}
	if (race_set && (flags & RENAME_EXCHANGE)) {
		ck_assert_int_eq(sh("rm -r %s/%s", dir, newpath), 0);
		fake_set(newpath, race_set, "input_0.pb output_0.pb output_1.pb");
		race_set = NULL;
	}
	return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

START_TEST(a_set_swapped_out_is_removed_only_if_ours)
{
	conv();
	fake_set("test_data_set_0", "m.onnx", "input_0.pb");
	race_set = "other.onnx"; /* between our check and our exchange, other.onnx's set lands */
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_str_eq(set, "m.onnx.test_data_set_0"); /* it went back; ours went aside */
	ck_assert_int_eq(entries("test_data_set_0"), 3);
	check_owner("test_data_set_0", "output_1.pb", "other.onnx");
	check_owner("m.onnx.test_data_set_0", "output_0.pb", "m.onnx");
	ck_assert_int_eq(entries(""), 2);
}
END_TEST

START_TEST(without_rename_flags_the_same_rules)
{
	conv();
	no_flags = true;
	ck_assert_int_eq(write_for("a.onnx"), 0);
	ck_assert_str_eq(set, "test_data_set_0");
	fake_set("test_data_set_0", "a.onnx", "input_7.pb");
	ck_assert_int_eq(write_for("a.onnx"), 0); /* replaced whole */
	ck_assert_str_eq(why, "");
	ck_assert_int_eq(entries("test_data_set_0"), 2);
	ck_assert_int_eq(write_for("b.onnx"), 0); /* another model's: left alone */
	ck_assert_str_eq(set, "b.onnx.test_data_set_0");
	check_owner("test_data_set_0", "input_0.pb", "a.onnx");
	ck_assert_int_eq(entries(""), 2);
}
END_TEST

START_TEST(copies_held_stay_bounded)
{
	static float p[N_Y], q[N_Y];
	size_t held = 0;

	for (int i = 0; i < N_Y; i++)
		p[i] = (float)i;
	/* 200 ping-pong relus: the input and the newest result are all that is held */
	for (int k = 0; k < 200; k++) {
		relu(k % 2 ? q : p, k % 2 ? p : q, N_Y, ys);
		held = 0;
		for (size_t i = 0; i < g.n_values; i++)
			held += g.values[i].snapshot != NULL;
		ck_assert_uint_le(held, 2);
	}
	ck_assert_uint_eq(held, 2);
	/* off (the default): nothing is copied at all */
	onnxhook_graph_free(&g);
	onnxhook_graph_init(&g);
	relu(p, q, N_Y, ys);
	ck_assert_ptr_null(g.values[0].snapshot);
	ck_assert_ptr_null(g.values[1].snapshot);
	/* and a graph started over keeps the setting */
	g.test_data = true;
	onnxhook_graph_reset(&g);
	ck_assert(g.test_data);
	relu(p, q, N_Y, ys);
	ck_assert_ptr_nonnull(g.values[0].snapshot);
}
END_TEST

/* Layer data: every layer's result after output_N, named as the model names it, with its host
 * call; the copies stay although consumed, and the set still counts as this model's. */
START_TEST(layer_data_after_the_outputs)
{
	float after_conv[N_Y], expect[N_Y];
	char **names;

	g.layer_data = true;
	uint32_t c = conv();
	memcpy(after_conv, y, sizeof(y));
	relu(y, y, N_Y, ys); /* in place: the conv's result must be the bytes right after the conv */
	ck_assert_ptr_nonnull(g.values[c].snapshot);
	memcpy(expect, y, sizeof(y));
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_int_eq(entries("test_data_set_0"), 3);
	ck_assert_int_eq(onnxhook_value_names(&g, &names), 0);
	check_tensor("output_0.pb", "output_0", ys, expect, sizeof(expect));
	check_tensor("output_1.pb", names[c], ys, after_conv, sizeof(after_conv));
	Onnx__TensorProto *t = load("output_1.pb");
	ck_assert_str_eq(t->doc_string, "onnxhook test data of m.onnx\nhost call: conv");
	onnx__tensor_proto__free_unpacked(t, NULL);
	t = load("output_0.pb");
	ck_assert_str_eq(t->doc_string, "onnxhook test data of m.onnx\nhost call: relu");
	onnx__tensor_proto__free_unpacked(t, NULL);
	check_owner("test_data_set_0", "input_0.pb", "m.onnx");
	free(names);
	/* written again: the set with the longer doc_strings is this model's, replaced */
	ck_assert_int_eq(write_for("m.onnx"), 0);
	ck_assert_str_eq(set, "test_data_set_0");
	ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(tensor_proto_round_trip)
{
	struct onnxhook_value v = {.kind = ONNXHOOK_VALUE_INPUT, .dtype = ONNXHOOK_INT64,
				   .shape = {.rank = 1, .dims = {3}}, .nbytes = 24};
	const int64_t data[3] = {1, -2, 3};
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(onnxhook_tensor_pack(&v, "idx", "why", data, &buf, &len), 0);
	Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->name, "idx");
	ck_assert_str_eq(t->doc_string, "why");
	ck_assert_int_eq(t->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
	ck_assert_uint_eq(t->n_dims, 1);
	ck_assert_int_eq(t->dims[0], 3);
	ck_assert_uint_eq(t->raw_data.len, 24);
	ck_assert_mem_eq(t->raw_data.data, data, 24);
	onnx__tensor_proto__free_unpacked(t, NULL);
	free(buf);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("testdata");
	TCase *tc = tcase_create("testdata");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, bytes_as_the_program_had_them);
	tcase_add_test(tc, two_inputs_two_outputs_in_graph_order);
	tcase_add_test(tc, an_input_overwritten_in_place_gives_no_set);
	tcase_add_test(tc, a_foreign_directory_is_left_alone);
	tcase_add_test(tc, an_output_no_call_wrote_gives_no_set);
	tcase_add_test(tc, an_input_overwritten_in_place_leaves_another_models_set);
	tcase_add_test(tc, an_earlier_set_is_replaced_whole);
	tcase_add_test(tc, two_models_in_one_directory);
	tcase_add_test(tc, a_set_of_unknown_origin_is_left_alone);
	tcase_add_test(tc, a_set_swapped_out_is_removed_only_if_ours);
	tcase_add_test(tc, without_rename_flags_the_same_rules);
	tcase_add_test(tc, copies_held_stay_bounded);
	tcase_add_test(tc, tensor_proto_round_trip);
	tcase_add_test(tc, layer_data_after_the_outputs);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
