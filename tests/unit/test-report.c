/* SPDX-License-Identifier: MIT */
/* The ONNXHOOK_REPORT line: what the preload writes, the command reads back. */
#include "report.h"
#include "unit.h"

static struct onnxhook_report sample(void)
{
	struct onnxhook_report r = {.pid = 4242, .nodes = 71, .inputs = 1, .outputs = 2,
				    .parameters = 11689512, .bytes = 46827000, .data_bytes = 0,
				    .seconds = 0.0735, .incomplete = false};

	snprintf(r.path, sizeof(r.path), "/tmp/run 1/resnet%%18\tx.onnx");
	snprintf(r.ops, sizeof(r.ops), "Conv 20, BatchNormalization 20, Relu 17");
	return r;
}

START_TEST(test_format_exact)
{
	struct onnxhook_report r = sample();
	char line[1024];
	int n = onnxhook_report_format(&r, line, sizeof(line));

	ck_assert_str_eq(line, "v=1\tpid=4242\tpath=/tmp/run 1/resnet%2518%09x.onnx\tnodes=71\t"
			       "ops=Conv:20,BatchNormalization:20,Relu:17\tinputs=1\toutputs=2\t"
			       "parameters=11689512\tbytes=46827000\tdata_bytes=0\tseconds=0.074\t"
			       "incomplete=0\n");
	ck_assert_int_eq(n, (int)strlen(line));
}
END_TEST

START_TEST(test_round_trip)
{
	struct onnxhook_report r = sample(), back;
	char line[1024];

	r.data_bytes = 3000000000ull;
	r.incomplete = true;
	ck_assert_int_gt(onnxhook_report_format(&r, line, sizeof(line)), 0);
	ck_assert(onnxhook_report_parse(line, &back));
	ck_assert_int_eq(back.pid, r.pid);
	ck_assert_str_eq(back.path, r.path);
	ck_assert_str_eq(back.ops, r.ops);
	ck_assert_uint_eq(back.nodes, r.nodes);
	ck_assert_uint_eq(back.inputs, r.inputs);
	ck_assert_uint_eq(back.outputs, r.outputs);
	ck_assert_uint_eq(back.parameters, r.parameters);
	ck_assert_uint_eq(back.bytes, r.bytes);
	ck_assert_uint_eq(back.data_bytes, r.data_bytes);
	ck_assert_double_eq_tol(back.seconds, 0.074, 1e-9);
	ck_assert(back.incomplete);
}
END_TEST

START_TEST(test_too_long)
{
	struct onnxhook_report r = sample();
	char line[64];

	ck_assert_int_eq(onnxhook_report_format(&r, line, sizeof(line)), -1);
	/* Control bytes and % take three bytes each. */
	memset(r.path, '\n', sizeof(r.path) - 1);
	r.path[sizeof(r.path) - 1] = '\0';
	char big[3 * sizeof(r.path) + 512];
	ck_assert_int_gt(onnxhook_report_format(&r, big, sizeof(big)), 3 * (int)sizeof(r.path) - 3);
	ck_assert_ptr_eq(strchr(big, '\n'), big + strlen(big) - 1);
}
END_TEST

START_TEST(test_parse_other_lines)
{
	struct onnxhook_report r;
	char future[] = "v=1\tpid=7\tnew_field=x\tpath=/m.onnx\tnodes=3\n";
	char v2[] = "v=2\tpid=7\tpath=/m.onnx\n";
	char no_path[] = "v=1\tpid=7\tnodes=3\n";
	char junk[] = "not a report line";

	ck_assert(onnxhook_report_parse(future, &r));
	ck_assert_str_eq(r.path, "/m.onnx");
	ck_assert_uint_eq(r.nodes, 3);
	ck_assert_int_eq(r.pid, 7);
	ck_assert(!onnxhook_report_parse(v2, &r));
	ck_assert(!onnxhook_report_parse(no_path, &r));
	ck_assert(!onnxhook_report_parse(junk, &r));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_add_test(tc, test_format_exact);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_parse_other_lines);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
