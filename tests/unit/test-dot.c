/* SPDX-License-Identifier: MIT */
/* Unit tests: the Graphviz writer — labels, escaping, counts that dot itself reports, atomic files. */
#include "unit.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnxhook.h"

static struct onnxhook_graph g;
static float x[2 * 3 * 4 * 4], y[2 * 4 * 4 * 4], z[2 * 4 * 4 * 4];
static float w[4 * 3 * 3 * 3] = {0.5f, -1.0f, 2.0f}, b[4];
static char dir[64];

/* conv(x) named by the host with every awkward byte -> relu in place -> add(relu, conv) into z:
 * one input, two initializers, three nodes, one output, five edges. */
static void build_graph(const char *host_name)
{
	const int64_t xs[4] = {2, 3, 4, 4}, ws[4] = {4, 3, 3, 3}, ys[4] = {2, 4, 4, 4};
	const int64_t k[2] = {3, 3}, ones[2] = {1, 1}, pads[4] = {1, 1, 1, 1};
	const struct onnxhook_attr attrs[4] = {
		onnxhook_attr_ints("kernel_shape", 2, k), onnxhook_attr_ints("strides", 2, ones),
		onnxhook_attr_ints("pads", 4, pads), onnxhook_attr_ints("dilations", 2, ones)};
	const int64_t nb = 4;
	struct onnxhook_call c;

	onnxhook_graph_init(&g);
	onnxhook_call_begin(&c, &g, "conv");
	onnxhook_call_set_name(&c, host_name);
	uint32_t in[3] = {onnxhook_call_read(&c, x, ONNXHOOK_FLOAT, 4, xs),
			  onnxhook_call_weight(&c, w, ONNXHOOK_FLOAT, 4, ws, "weight"),
			  onnxhook_call_weight(&c, b, ONNXHOOK_FLOAT, 1, &nb, "bias")};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Conv", 3, in, 4, attrs, 4, ys), y);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	onnxhook_call_begin(&c, &g, "relu");
	uint32_t r = onnxhook_call_read(&c, y, ONNXHOOK_FLOAT, 4, ys);
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Relu", 1, &r, 0, NULL, 4, ys), y);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	onnxhook_call_begin(&c, &g, "add");
	/* the relu's output and the conv's (value ids are stable): a second edge from the conv */
	uint32_t ab[2] = {onnxhook_call_read(&c, y, ONNXHOOK_FLOAT, 4, ys), r};
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Add", 2, ab, 0, NULL, 4, ys), z);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
}

static void setup(void)
{
	unit_tmpdir(dir, sizeof(dir), "dot");
}

static void teardown(void)
{
	onnxhook_graph_free(&g);
	unit_tmpdir_remove(dir);
}

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

/* dot itself parses the file and lays it out: the SVG has one group per node and per edge. */
static void check_with_graphviz(const char *path, int nodes, int edges)
{
	ck_assert_msg(sh("dot -Tsvg '%s' -o '%s.svg' 2>'%s.err'", path, path, path) == 0,
		      "dot -Tsvg rejected %s", path);
	ck_assert_int_eq(sh("exit $(grep -c 'class=\"node\"' '%s.svg')", path), nodes);
	ck_assert_int_eq(sh("exit $(grep -c 'class=\"edge\"' '%s.svg')", path), edges);
	/* and it had nothing to say about it (no warnings about bad labels or encodings) */
	ck_assert_int_eq(sh("test ! -s '%s.err'", path), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[1 << 16];
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(labels_shapes_and_initializers)
{
	char path[128], *s;

	build_graph(NULL);
	snprintf(path, sizeof(path), "%s/g.dot", dir);
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", path), 0);
	s = slurp(path);
	ck_assert_ptr_nonnull(strstr(s, "rankdir=TB"));
	ck_assert_ptr_nonnull(strstr(s, "label=\"app: 3 nodes, 1 input, 1 output, 112 parameters\""));
	/* the op, its name, its key attributes (dilation 1 is the default: left out), its weights */
	ck_assert_ptr_nonnull(strstr(s, "n0 [fillcolor=\"#cfe2f3\", label=\"Conv\\nConv_0\\nkernel 3x3, "
					"stride 1, pad 1\\nweight 4x3x3x3 (432 B)\\nbias 4 (16 B)\"]"));
	ck_assert_ptr_null(strstr(s, "dilation"));
	ck_assert_ptr_nonnull(strstr(s, "i0 [shape=oval, fillcolor=\"#b7e1b0\", label=\"input_0\\n2x3x4x4\"]"));
	ck_assert_ptr_nonnull(strstr(s, "o0 [shape=oval, fillcolor=\"#f4b6b0\", label=\"output_0\\n2x4x4x4\"]"));
	ck_assert_ptr_nonnull(strstr(s, "i0 -> n0 [label=\"2x3x4x4\"]"));
	ck_assert_ptr_nonnull(strstr(s, "n0 -> n1 [label=\"2x4x4x4\"]"));
	ck_assert_ptr_nonnull(strstr(s, "n0 -> n2 [label=\"2x4x4x4\"]"));
	ck_assert_ptr_nonnull(strstr(s, "n1 -> n2 [label=\"2x4x4x4\"]"));
	ck_assert_ptr_nonnull(strstr(s, "n2 -> o0 [label=\"2x4x4x4\"]"));
	/* initializers are inside labels, never boxes of their own */
	check_with_graphviz(path, 3 + 1 + 1, 5);
}
END_TEST

START_TEST(awkward_names_are_escaped)
{
	char path[128], *s;

	/* a quote, a backslash (dot's escape character: \N would print the node id), a line
	 * break, a tab, broken UTF-8, and valid UTF-8 that must survive */
	build_graph("q\"b\\Nl\nt\tbad\xff\xc3x ok\xc3\xa9");
	snprintf(path, sizeof(path), "%s/g.dot", dir);
	ck_assert_int_eq(onnxhook_dot_write(&g, "ti\"tle", path), 0);
	s = slurp(path);
	ck_assert_ptr_nonnull(strstr(s, "\\nq\\\"b\\\\Nl\\nt?bad??x ok\xc3\xa9_Conv\\n"));
	ck_assert_ptr_nonnull(strstr(s, "label=\"ti\\\"tle: 3 nodes"));
	check_with_graphviz(path, 5, 5);
	/* dot read the name back as we meant it: in the SVG, as text */
	ck_assert_int_eq(sh("grep -q 'q&quot;b\\\\Nl' '%s.svg'", path), 0);
}
END_TEST

START_TEST(small_constants_by_value)
{
	const int64_t xs[4] = {1, 2, 2, 2}, flat[2] = {1, 8};
	struct onnxhook_call c;
	char *buf;
	size_t len;
	float in[8], out[8];

	onnxhook_graph_init(&g);
	onnxhook_call_begin(&c, &g, "softmax");
	uint32_t v = onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, 4, xs);
	uint32_t r[2] = {v, onnxhook_call_const_i64(&c, 2, flat, "shape")};
	uint32_t s = onnxhook_call_node(&c, "Reshape", 2, r, 0, NULL, 2, flat);
	struct onnxhook_attr axis = onnxhook_attr_int("axis", 1);
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Softmax", 1, &s, 1, &axis, 2, flat), out);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_int_eq(onnxhook_dot_mem(&g, NULL, &buf, &len), 0);
	ck_assert_uint_eq(strlen(buf), len);
	ck_assert_ptr_nonnull(strstr(buf, "label=\"Reshape\\nReshape_0\\nshape [1,8]\"]"));
	ck_assert_ptr_nonnull(strstr(buf, "label=\"Softmax\\nSoftmax_0\\naxis=1\"]"));
	ck_assert_ptr_nonnull(strstr(buf, "label=\"2 nodes, 1 input, 1 output"));
	free(buf);
}
END_TEST

static int count_entries(void)
{
	return sh("exit $(ls -A %s | wc -l)", dir);
}

START_TEST(written_atomically_like_the_model)
{
	char path[128], target[128];
	struct stat sb;

	build_graph(NULL);
	/* a symlink at the path is replaced, its target untouched; no temporary left */
	snprintf(path, sizeof(path), "%s/g.dot", dir);
	snprintf(target, sizeof(target), "%s/victim", dir);
	FILE *f = fopen(target, "w");
	fputs("precious", f);
	fclose(f);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", path), 0);
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	ck_assert_int_eq(stat(target, &sb), 0);
	ck_assert_int_eq(sb.st_size, 8);
	ck_assert_int_eq(count_entries(), 2);
	/* unwritable places fail with the reason, and leave nothing behind */
	snprintf(path, sizeof(path), "%s/missing/g.dot", dir);
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", path), -ENOENT);
	snprintf(path, sizeof(path), "%s/d", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", path), -EISDIR);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(count_entries(), 2);
	/* a device is written into, not replaced */
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", "/dev/null"), 0);
	ck_assert_int_eq(stat("/dev/null", &sb), 0);
	ck_assert(S_ISCHR(sb.st_mode));
}
END_TEST

/* The picture and the model follow one rule for what is at the path (onnxhook_output_kind). */
START_TEST(the_models_rule_for_the_path)
{
	char path[128], fifo[128], final[256];
	struct onnxhook_write_opts o = {.opset = 17, .producer_version = "test", .graph_name = "g"};
	struct onnxhook_write_stats st;

	build_graph(NULL);
	snprintf(path, sizeof(path), "%s/new", dir);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_FILE);
	ck_assert_int_eq(onnxhook_output_kind("/dev/null"), ONNXHOOK_OUTPUT_INTO);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	/* a FIFO is written into (streamed to its reader), both the picture and the model */
	ck_assert_int_eq(onnxhook_output_kind(fifo), ONNXHOOK_OUTPUT_INTO);
	int reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(reader, 0);
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", fifo), 0);
	char head[16] = "";
	ck_assert_int_gt(read(reader, head, sizeof(head) - 1), 0);
	ck_assert_ptr_nonnull(strstr(head, "digraph"));
	while (read(reader, head, sizeof(head)) > 0)
		;
	ck_assert_int_eq(onnxhook_write(&g, &o, fifo, true, final, sizeof(final), &st), 0);
	ck_assert_int_eq(read(reader, head, sizeof(head)), sizeof(head));
	close(reader);
	ck_assert_str_eq(final, fifo);
	ck_assert_int_eq(onnxhook_output_kind(dir), -EISDIR);
	ck_assert_int_eq(onnxhook_write(&g, &o, dir, true, final, sizeof(final), &st), -EISDIR);
	/* a symlink to a file: replaced (a file); one to a directory: refused like the directory */
	ck_assert_int_eq(symlink(dir, path), 0);
	ck_assert_int_eq(onnxhook_output_kind(path), -EISDIR);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(fifo, path), 0);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_INTO);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(onnxhook_dot_write(&g, "app", path), 0);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_FILE);
	ck_assert_int_eq(count_entries(), 2); /* fifo, new */
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dot");
	TCase *tc = tcase_create("dot");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, labels_shapes_and_initializers);
	tcase_add_test(tc, awkward_names_are_escaped);
	tcase_add_test(tc, small_constants_by_value);
	tcase_add_test(tc, written_atomically_like_the_model);
	tcase_add_test(tc, the_models_rule_for_the_path);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
