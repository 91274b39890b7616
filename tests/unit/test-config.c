/* SPDX-License-Identifier: MIT */
/* Unit tests: ONNXHOOK_* parsing and output path templates. */
#include "unit.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"

static const char *env_names[16];
static const char *env_values[16];
static int env_n;

static char *fake_getenv(const char *name)
{
	for (int i = 0; i < env_n; i++)
		if (!strcmp(env_names[i], name))
			return (char *)env_values[i];
	return NULL;
}

static void env_set(const char *name, const char *value)
{
	env_names[env_n] = name;
	env_values[env_n++] = value;
}

static void reset(void)
{
	env_n = 0;
}

START_TEST(defaults)
{
	struct onnxhook_config cfg;
	char err[256];

	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.output, "%e.%p.onnx");
	ck_assert(!cfg.output_explicit);
	ck_assert_int_eq(cfg.log, ONNXHOOK_LOG_INFO);
	ck_assert_int_eq(cfg.opset, 17);
	ck_assert_uint_eq(cfg.pass, 1);
	ck_assert(!cfg.dynamic_batch);
	ck_assert_int_eq(cfg.external_data, ONNXHOOK_EXTERNAL_AUTO);
	ck_assert(cfg.stack);
	ck_assert(!cfg.test_data);
	ck_assert(!cfg.layer_data);
	ck_assert(cfg.provenance);
	ck_assert_str_eq(cfg.dot, "");
	ck_assert_str_eq(cfg.report, "");
	ck_assert(!cfg.dump_after_pass);
}
END_TEST

START_TEST(export_values)
{
	struct onnxhook_config cfg;
	char err[256];

	env_set("ONNXHOOK_BATCH", "dynamic");
	env_set("ONNXHOOK_EXTERNAL_DATA", "always");
	env_set("ONNXHOOK_STACK", "0");
	env_set("ONNXHOOK_TEST_DATA", "1");
	env_set("ONNXHOOK_DOT", "g-%p.dot");
	env_set("ONNXHOOK_REPORT", "/tmp/report");
	env_set("ONNXHOOK_DUMP_AFTER_PASS", "1");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert(cfg.dump_after_pass);
	ck_assert(cfg.dynamic_batch);
	ck_assert_int_eq(cfg.external_data, ONNXHOOK_EXTERNAL_ALWAYS);
	ck_assert(!cfg.stack);
	ck_assert(cfg.test_data);
	ck_assert_str_eq(cfg.dot, "g-%p.dot");
	ck_assert_str_eq(cfg.report, "/tmp/report");
	reset();
	env_set("ONNXHOOK_BATCH", "static");
	env_set("ONNXHOOK_EXTERNAL_DATA", "never");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert(!cfg.dynamic_batch);
	ck_assert_int_eq(cfg.external_data, ONNXHOOK_EXTERNAL_NEVER);
}
END_TEST

START_TEST(pass_values)
{
	struct onnxhook_config cfg;
	char err[256];

	env_set("ONNXHOOK_PASS", "all");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.pass, ONNXHOOK_PASS_ALL);
	reset();
	env_set("ONNXHOOK_PASS", "3");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.pass, 3);
}
END_TEST

START_TEST(empty_means_unset)
{
	struct onnxhook_config cfg;
	char err[256];

	env_set("ONNXHOOK_OUTPUT", "");
	env_set("ONNXHOOK_LOG", "");
	env_set("ONNXHOOK_OPSET", "");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.output, "%e.%p.onnx");
	ck_assert_int_eq(cfg.opset, 17);
}
END_TEST

START_TEST(valid_values)
{
	struct onnxhook_config cfg;
	char err[256];

	env_set("ONNXHOOK_OUTPUT", "/tmp/m-%p.onnx");
	env_set("ONNXHOOK_LOG", "debug");
	env_set("ONNXHOOK_OPSET", "13");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.output, "/tmp/m-%p.onnx");
	ck_assert(cfg.output_explicit);
	ck_assert_int_eq(cfg.log, ONNXHOOK_LOG_DEBUG);
	ck_assert_int_eq(cfg.opset, 13);
	reset();
	env_set("ONNXHOOK_LOG", "quiet");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert_int_eq(cfg.log, ONNXHOOK_LOG_QUIET);
	/* every layer's result goes in the test data set: there is no set without it */
	reset();
	env_set("ONNXHOOK_LAYER_DATA", "1");
	env_set("ONNXHOOK_TEST_DATA", "0");
	env_set("ONNXHOOK_PROVENANCE", "0");
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), 0);
	ck_assert(cfg.layer_data);
	ck_assert(cfg.test_data);
	ck_assert(!cfg.provenance);
}
END_TEST

static void expect_invalid(const char *name, const char *value, const char *mention)
{
	struct onnxhook_config cfg;
	char err[256];

	reset();
	env_set(name, value);
	ck_assert_int_eq(onnxhook_config_read(&cfg, fake_getenv, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, name), "'%s' does not name %s", err, name);
	ck_assert_msg(strstr(err, mention), "'%s' does not say '%s'", err, mention);
	ck_assert(!strchr(err, '\n'));
	/* defaults stay in place */
	ck_assert_int_eq(cfg.opset, 17);
}

START_TEST(invalid_values_name_variable_and_choices)
{
	expect_invalid("ONNXHOOK_LOG", "verbose", "info, quiet or debug");
	expect_invalid("ONNXHOOK_LOG", "INFO", "info, quiet or debug");
	expect_invalid("ONNXHOOK_OPSET", "12", "13 to 17");
	expect_invalid("ONNXHOOK_OPSET", "18", "13 to 17");
	expect_invalid("ONNXHOOK_OPSET", "17x", "13 to 17");
	expect_invalid("ONNXHOOK_OPSET", "-17", "13 to 17");
	expect_invalid("ONNXHOOK_OPSET", "99999999999999999999", "13 to 17");
	expect_invalid("ONNXHOOK_PASS", "0", "pass number from 1, or all");
	expect_invalid("ONNXHOOK_PASS", "ALL", "pass number from 1, or all");
	expect_invalid("ONNXHOOK_PASS", "1.5", "pass number from 1, or all");
	expect_invalid("ONNXHOOK_DEBUG_OUTPUTS", "yes", "0 or 1");
	expect_invalid("ONNXHOOK_OUTPUT", "m-%d.onnx", "%");
	expect_invalid("ONNXHOOK_OUTPUT", "m.onnx%", "%");
	expect_invalid("ONNXHOOK_OUTPUT", "out/", "directory");
	expect_invalid("ONNXHOOK_BATCH", "4", "static or dynamic");
	expect_invalid("ONNXHOOK_EXTERNAL_DATA", "yes", "auto, always or never");
	expect_invalid("ONNXHOOK_STACK", "on", "0 or 1");
	expect_invalid("ONNXHOOK_TEST_DATA", "true", "0 or 1");
	expect_invalid("ONNXHOOK_LAYER_DATA", "yes", "0 or 1");
	expect_invalid("ONNXHOOK_PROVENANCE", "off", "0 or 1");
	expect_invalid("ONNXHOOK_DOT", "g-%x.dot", "%");
	expect_invalid("ONNXHOOK_DOT", "dir/", "directory");
	expect_invalid("ONNXHOOK_REPORT", "r%", "%");
	expect_invalid("ONNXHOOK_DUMP_AFTER_PASS", "yes", "0 or 1");
	expect_invalid("ONNXHOOK_DUMP_AFTER_PASS", "2", "0 or 1");
}
END_TEST

START_TEST(path_templates)
{
	char out[64];

	ck_assert_int_eq(onnxhook_path_expand("%e.%p.onnx", 42, "app", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "app.42.onnx");
	ck_assert_int_eq(onnxhook_path_expand("100%%/%e", 1, "x", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "100%/x");
	ck_assert_int_eq(onnxhook_path_expand("plain", 1, "x", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "plain");
	ck_assert_int_eq(onnxhook_path_expand("%q", 1, "x", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(onnxhook_path_expand("a%", 1, "x", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(onnxhook_path_expand("%e%e%e", 1, "0123456789012345678901", out, sizeof(out)),
			 -ENAMETOOLONG);
	ck_assert_int_eq(onnxhook_path_expand("0123456789", 1, "x", out, 10), -ENAMETOOLONG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_checked_fixture(tc, reset, NULL);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, empty_means_unset);
	tcase_add_test(tc, pass_values);
	tcase_add_test(tc, valid_values);
	tcase_add_test(tc, export_values);
	tcase_add_test(tc, invalid_values_name_variable_and_choices);
	tcase_add_test(tc, path_templates);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
