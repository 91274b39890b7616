/* SPDX-License-Identifier: MIT */
/* Shared by the check-based unit tests: run a suite, exit status from its result. */
#ifndef ONNXHOOK_TEST_UNIT_H
#define ONNXHOOK_TEST_UNIT_H

#include <check.h>
#include <stdlib.h>

static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);

	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
