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

/* [lo, hi) ends up covered by `with` (or by nothing): ranges it overlaps are trimmed, and their
 * surviving parts are marked stale (their checksum covered bytes they no longer hold). */
static int replace(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi,
		   const struct onnxhook_mapping *with)
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
			left.resum = true;
			has_left = true;
		}
		if (e->hi > hi) {
			right = *e;
			right.offset += hi - e->lo;
			right.lo = hi;
			right.resum = true;
			has_right = true;
		}
		j++;
	}
	size_t removed = j - i;
	size_t added = (with != NULL) + has_left + has_right;
	if (added != removed)
		memmove(&m->v[i + added], &m->v[j], (m->n - j) * sizeof(*m->v));
	m->n = m->n - removed + added;
	if (has_left)
		m->v[i++] = left;
	if (with)
		m->v[i++] = *with;
	if (has_right)
		m->v[i] = right;
	return 0;
}

int onnxhook_memmap_assign(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi, uint32_t value,
			   uint64_t offset)
{
	const struct onnxhook_mapping e = {.lo = lo, .hi = hi, .value = value, .offset = offset};

	return replace(m, lo, hi, &e);
}

int onnxhook_memmap_clear(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi)
{
	return replace(m, lo, hi, NULL);
}

int onnxhook_memmap_move(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi, uintptr_t to)
{
	size_t i = onnxhook_memmap_first(m, lo), n = 0;
	uintptr_t to_hi;

	if (lo >= hi || __builtin_add_overflow(to, hi - lo, &to_hi))
		return -EINVAL;
	if (to == lo)
		return 0;
	while (i + n < m->n && m->v[i + n].lo < hi)
		n++;
	struct onnxhook_mapping *moved = n ? malloc(n * sizeof(*moved)) : NULL;
	if (n && !moved)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		struct onnxhook_mapping e = m->v[i + k];
		if (e.lo < lo) {
			e.offset += lo - e.lo;
			e.lo = lo;
			e.resum = true;
		}
		if (e.hi > hi) {
			e.hi = hi;
			e.resum = true;
		}
		e.lo = e.lo - lo + to;
		e.hi = e.hi - lo + to;
		moved[k] = e;
	}
	int r = replace(m, lo, hi, NULL);
	if (!r)
		r = replace(m, to, to_hi, NULL);
	for (size_t k = 0; k < n && !r; k++)
		r = replace(m, moved[k].lo, moved[k].hi, &moved[k]);
	free(moved);
	return r;
}
