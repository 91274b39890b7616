/* SPDX-License-Identifier: MIT */
/* Shared by the check-based unit tests: run a suite, exit status from its result. */
#ifndef ONNXHOOK_TEST_UNIT_H
#define ONNXHOOK_TEST_UNIT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A fresh directory /tmp/onnxhook-<what>-XXXXXX for one test, and its removal. */
static inline void unit_tmpdir(char *dir, size_t len, const char *what)
{
	ck_assert_int_lt(snprintf(dir, len, "/tmp/onnxhook-%s-XXXXXX", what), (int)len);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void unit_tmpdir_remove(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

#endif
