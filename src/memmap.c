/* SPDX-License-Identifier: MIT */
/* Versioned memory: a sorted interval map from address ranges to (value, offset). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"

void onnxhook_memmap_init(struct onnxhook_memmap *m)
{
	memset(m, 0, sizeof(*m));
}

void onnxhook_memmap_free(struct onnxhook_memmap *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

size_t onnxhook_memmap_first(const struct onnxhook_memmap *m, uintptr_t lo)
{
	size_t a = 0, b = m->n;

	/* Ranges are disjoint and sorted, so their ends are sorted too. */
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (m->v[mid].hi > lo)
			b = mid;
		else
			a = mid + 1;
	}
	return a;
}

bool onnxhook_memmap_overlaps(const struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi)
{
	size_t i = onnxhook_memmap_first(m, lo);

	return i < m->n && m->v[i].lo < hi;
}

static int reserve(struct onnxhook_memmap *m, size_t extra)
{
	if (m->n + extra <= m->cap)
		return 0;
	size_t cap = m->cap ? m->cap * 2 : 64;
	while (cap < m->n + extra)
		cap *= 2;
	void *v = realloc(m->v, cap * sizeof(*m->v));
	if (!v)
		return -ENOMEM;
	m->v = v;
	m->cap = cap;
	return 0;
}

int onnxhook_memmap_assign(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi, uint32_t value,
			   uint64_t offset)
{
	if (lo >= hi)
		return -EINVAL;
	/* At most one existing range is split in two, and one new range is added. */
	if (reserve(m, 2) < 0)
		return -ENOMEM;

	size_t i = onnxhook_memmap_first(m, lo);
	size_t j = i; /* first range after [i, j) that survives untouched */
	struct onnxhook_mapping left = {0}, right = {0};
	bool has_left = false, has_right = false;

	while (j < m->n && m->v[j].lo < hi) {
		struct onnxhook_mapping *e = &m->v[j];
		if (e->lo < lo) {
			left = *e;
			left.hi = lo;
			has_left = true;
		}
		if (e->hi > hi) {
			right = *e;
			right.offset += hi - e->lo;
			right.lo = hi;
			has_right = true;
		}
		j++;
	}
	size_t removed = j - i;
	size_t added = 1 + has_left + has_right;
	if (added != removed)
		memmove(&m->v[i + added], &m->v[j], (m->n - j) * sizeof(*m->v));
	m->n = m->n - removed + added;
	if (has_left)
		m->v[i++] = left;
	m->v[i++] = (struct onnxhook_mapping){.lo = lo, .hi = hi, .value = value, .offset = offset};
	if (has_right)
		m->v[i] = right;
	return 0;
}
