// SPDX-License-Identifier: MIT
// The core's and the hooks' headers compiled as C++: a host written in C++ records a call as a C
// one does (the hook guard, a read, a node, a write), through the same C functions.
#include "elfread.h"
#include "hook.h"
#include "hosts.h"
#include "onnxhook.h"
#include "report.h"
#include "unit.h"

// The guard's state lives in the preload (hook.c): here, the test's own.
bool onnxhook_recording;
__thread int onnxhook_in_hook;

START_TEST(test_guard)
{
	__atomic_store_n(&onnxhook_recording, true, __ATOMIC_SEQ_CST);
	ck_assert(onnxhook_enter());
	ck_assert(!onnxhook_enter()); // the host's calls from inside a hooked call pass through
	onnxhook_leave();
	__atomic_store_n(&onnxhook_recording, false, __ATOMIC_SEQ_CST);
	ck_assert(!onnxhook_enter());
}
END_TEST

START_TEST(test_record_a_call)
{
	struct onnxhook_graph g;
	struct onnxhook_call c;
	float in[4] = {-1, 2, -3, 4}, out[4];
	const int64_t dims[2] = {1, 4};

	onnxhook_graph_init(&g);
	onnxhook_call_begin(&c, &g, "cxx_relu");
	uint32_t x = onnxhook_call_read(&c, in, ONNXHOOK_FLOAT, 2, dims);
	onnxhook_call_write(&c, onnxhook_call_node(&c, "Relu", 1, &x, 0, nullptr, 2, dims), out);
	ck_assert_int_eq(onnxhook_call_end(&c), 0);
	ck_assert_uint_eq(g.n_nodes, 1);
	ck_assert_str_eq(g.nodes[0].op_type, "Relu");
	onnxhook_graph_free(&g);
}
END_TEST

// The registry's X-macros expand in C++ too.
#define COUNT(name, ...) +1
#define HOST_COUNT(name, library, hooks) hooks(COUNT)
START_TEST(test_registry)
{
	ck_assert_int_gt(0 ONNXHOOK_HOSTS(HOST_COUNT), 0);
}
END_TEST

int main()
{
	Suite *s = suite_create("cxx");
	TCase *tc = tcase_create("cxx");

	tcase_add_test(tc, test_guard);
	tcase_add_test(tc, test_record_a_call);
	tcase_add_test(tc, test_registry);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
