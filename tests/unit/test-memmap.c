/* SPDX-License-Identifier: MIT */
/* Unit tests: the interval map behind versioned memory. */
#include "unit.h"
#include <stdlib.h>

#include "onnxhook.h"

static struct onnxhook_memmap m;

static void setup(void)
{
	onnxhook_memmap_init(&m);
}

static void teardown(void)
{
	onnxhook_memmap_free(&m);
}

static void expect(size_t i, uintptr_t lo, uintptr_t hi, uint32_t value, uint64_t offset)
{
	ck_assert_uint_lt(i, m.n);
	ck_assert_uint_eq(m.v[i].lo, lo);
	ck_assert_uint_eq(m.v[i].hi, hi);
	ck_assert_uint_eq(m.v[i].value, value);
	ck_assert_uint_eq(m.v[i].offset, offset);
}

START_TEST(disjoint_ranges_stay_sorted)
{
	ck_assert_int_eq(onnxhook_memmap_assign(&m, 300, 400, 3, 0), 0);
	ck_assert_int_eq(onnxhook_memmap_assign(&m, 100, 200, 1, 0), 0);
	ck_assert_int_eq(onnxhook_memmap_assign(&m, 200, 300, 2, 0), 0);
	ck_assert_uint_eq(m.n, 3);
	expect(0, 100, 200, 1, 0);
	expect(1, 200, 300, 2, 0);
	expect(2, 300, 400, 3, 0);
	ck_assert_uint_eq(onnxhook_memmap_first(&m, 250), 1);
	ck_assert_uint_eq(onnxhook_memmap_first(&m, 200), 1);
	ck_assert_uint_eq(onnxhook_memmap_first(&m, 400), 3);
	ck_assert(onnxhook_memmap_overlaps(&m, 399, 500));
	ck_assert(!onnxhook_memmap_overlaps(&m, 400, 500));
	ck_assert(!onnxhook_memmap_overlaps(&m, 0, 100));
}
END_TEST

START_TEST(rewrite_same_range_replaces_value)
{
	/* in-place op / ping-pong buffer: same address, new version */
	onnxhook_memmap_assign(&m, 100, 200, 1, 0);
	onnxhook_memmap_assign(&m, 100, 200, 2, 0);
	ck_assert_uint_eq(m.n, 1);
	expect(0, 100, 200, 2, 0);
}
END_TEST

START_TEST(write_inside_splits_with_offsets)
{
	onnxhook_memmap_assign(&m, 100, 400, 1, 0);
	onnxhook_memmap_assign(&m, 200, 300, 2, 0);
	ck_assert_uint_eq(m.n, 3);
	expect(0, 100, 200, 1, 0);
	expect(1, 200, 300, 2, 0);
	expect(2, 300, 400, 1, 200); /* the tail keeps its offset in value 1 */
}
END_TEST

START_TEST(write_over_several_trims_neighbours)
{
	onnxhook_memmap_assign(&m, 100, 200, 1, 0);
	onnxhook_memmap_assign(&m, 200, 300, 2, 0);
	onnxhook_memmap_assign(&m, 300, 400, 3, 0);
	onnxhook_memmap_assign(&m, 500, 600, 4, 0);
	onnxhook_memmap_assign(&m, 150, 350, 9, 0);
	ck_assert_uint_eq(m.n, 4);
	expect(0, 100, 150, 1, 0);
	expect(1, 150, 350, 9, 0);
	expect(2, 350, 400, 3, 50);
	expect(3, 500, 600, 4, 0);
	/* covering everything collapses to one */
	onnxhook_memmap_assign(&m, 0, 1000, 7, 0);
	ck_assert_uint_eq(m.n, 1);
	expect(0, 0, 1000, 7, 0);
}
END_TEST

START_TEST(empty_range_rejected)
{
	ck_assert_int_eq(onnxhook_memmap_assign(&m, 100, 100, 1, 0), -22);
	ck_assert_uint_eq(m.n, 0);
}
END_TEST

START_TEST(many_ranges_random_against_model)
{
	/* Compare with a byte-per-cell model over a small address space. */
	enum { SPACE = 512 };
	uint32_t model[SPACE];
	uint64_t off[SPACE];
	srand(7);
	for (int i = 0; i < SPACE; i++)
		model[i] = ONNXHOOK_NONE;
	for (uint32_t step = 0; step < 2000; step++) {
		uintptr_t lo = (uintptr_t)(rand() % SPACE), hi = lo + 1 + (uintptr_t)(rand() % 64);
		if (hi > SPACE)
			hi = SPACE;
		ck_assert_int_eq(onnxhook_memmap_assign(&m, lo, hi, step, 1000), 0);
		for (uintptr_t a = lo; a < hi; a++) {
			model[a] = step;
			off[a] = 1000 + (a - lo);
		}
	}
	for (size_t i = 0; i + 1 < m.n; i++)
		ck_assert_uint_le(m.v[i].hi, m.v[i + 1].lo);
	for (uintptr_t a = 0; a < SPACE; a++) {
		size_t i = onnxhook_memmap_first(&m, a);
		if (model[a] == ONNXHOOK_NONE) {
			ck_assert(i == m.n || m.v[i].lo > a);
			continue;
		}
		ck_assert_uint_lt(i, m.n);
		ck_assert_uint_le(m.v[i].lo, a);
		ck_assert_uint_eq(m.v[i].value, model[a]);
		ck_assert_uint_eq(m.v[i].offset + (a - m.v[i].lo), off[a]);
	}
}
END_TEST


START_TEST(clear_trims_and_marks_the_rest)
{
	onnxhook_memmap_assign(&m, 100, 400, 1, 0);
	ck_assert_int_eq(onnxhook_memmap_clear(&m, 200, 300), 0);
	ck_assert_uint_eq(m.n, 2);
	expect(0, 100, 200, 1, 0);
	expect(1, 300, 400, 1, 200);
	ck_assert(m.v[0].resum && m.v[1].resum);
	ck_assert_int_eq(onnxhook_memmap_clear(&m, 0, 1000), 0);
	ck_assert_uint_eq(m.n, 0);
}
END_TEST

START_TEST(move_carries_values_and_offsets)
{
	onnxhook_memmap_assign(&m, 100, 200, 1, 0);
	onnxhook_memmap_assign(&m, 200, 300, 2, 0);
	m.v[0].sum = 11;
	onnxhook_memmap_assign(&m, 1000, 1100, 9, 0); /* stale, where the block goes */
	/* realloc shrinking while moving: [100, 250) to 1000 */
	ck_assert_int_eq(onnxhook_memmap_move(&m, 100, 250, 1000), 0);
	ck_assert_uint_eq(m.n, 3);
	expect(0, 250, 300, 2, 50); /* the old block's tail stays until released */
	expect(1, 1000, 1100, 1, 0);
	expect(2, 1100, 1150, 2, 0);
	ck_assert_uint_eq(m.v[1].sum, 11);
	ck_assert(!m.v[1].resum); /* moved whole: its checksum still holds */
	ck_assert(m.v[2].resum);  /* cut */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memmap");
	TCase *tc = tcase_create("memmap");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, disjoint_ranges_stay_sorted);
	tcase_add_test(tc, rewrite_same_range_replaces_value);
	tcase_add_test(tc, write_inside_splits_with_offsets);
	tcase_add_test(tc, write_over_several_trims_neighbours);
	tcase_add_test(tc, empty_range_rejected);
	tcase_add_test(tc, many_ranges_random_against_model);
	tcase_add_test(tc, clear_trims_and_marks_the_rest);
	tcase_add_test(tc, move_carries_values_and_offsets);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
