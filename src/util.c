/* SPDX-License-Identifier: MIT */
/* Shapes, hashing, a small hash multimap and file writing shared by the core. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "onnxhook.h"
#include "util.h"

int64_t onnxhook_shape_numel(const struct onnxhook_shape *s, size_t elem_size)
{
	int64_t n = 1;

	if (s->rank < 0 || s->rank > ONNXHOOK_MAX_RANK)
		return -1;
	for (int i = 0; i < s->rank; i++) {
		if (s->dims[i] < 0 || __builtin_mul_overflow(n, s->dims[i], &n))
			return -1;
	}
	if (elem_size && (uint64_t)n > SIZE_MAX / elem_size)
		return -1;
	return n;
}

bool onnxhook_shape_eq(const struct onnxhook_shape *a, const struct onnxhook_shape *b)
{
	return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof(a->dims[0]));
}

struct onnxhook_shape onnxhook_shape_make(int rank, const int64_t *dims)
{
	struct onnxhook_shape s = {.rank = rank};

	if (rank < 0 || rank > ONNXHOOK_MAX_RANK) {
		s.rank = -1;
		return s;
	}
	if (rank)
		memcpy(s.dims, dims, (size_t)rank * sizeof(dims[0]));
	return s;
}

void onnxhook_shape_str(const struct onnxhook_shape *s, char *buf, size_t len)
{
	size_t o = 0;

	if (len)
		buf[0] = '\0';
	for (int i = 0; i < s->rank && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "x" : "", (long long)s->dims[i]);
	if (s->rank == 0 && len > 7)
		strcpy(buf, "scalar");
}

size_t onnxhook_dtype_size(enum onnxhook_dtype t)
{
	return t == ONNXHOOK_INT64 ? 8 : 4;
}

uint64_t onnxhook_hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;

	/* Weights are hashed once each and every layer's output twice (checksums) while recording:
	 * four independent 8-byte lanes keep the multiplier busy instead of waiting on one chain. */
	if (len >= 64) {
		uint64_t l[4] = {h, h ^ 0x9e3779b97f4a7c15ULL, h ^ 0xc2b2ae3d27d4eb4fULL, h ^ 0x165667b19e3779f9ULL};
		for (; i + 32 <= len; i += 32) {
			for (int k = 0; k < 4; k++) {
				uint64_t w;
				memcpy(&w, p + i + 8 * k, 8);
				l[k] = (l[k] ^ w) * 0x100000001b3ULL;
				l[k] ^= l[k] >> 29;
			}
		}
		h = l[0];
		for (int k = 1; k < 4; k++) {
			h = (h ^ l[k]) * 0x100000001b3ULL;
			h ^= h >> 29;
		}
	}
	/* 8 bytes a step (FNV-1a style mixing) for the rest. */
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

uint64_t onnxhook_hash_u64(uint64_t h, uint64_t v)
{
	return onnxhook_hash_bytes(h, &v, sizeof(v));
}

static size_t slot(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

int onnxhook_hmap_put(struct onnxhook_hmap *m, uint64_t key, uint32_t val)
{
	if ((m->n + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		uint64_t *keys = onnxhook_mem_alloc(cap * sizeof(*keys));
		uint32_t *vals = onnxhook_mem_alloc(cap * sizeof(*vals));
		if (!keys || !vals) {
			onnxhook_mem_free(keys);
			onnxhook_mem_free(vals);
			return -ENOMEM;
		}
		for (size_t i = 0; i < cap; i++)
			vals[i] = ONNXHOOK_NONE;
		for (size_t i = 0; i < m->cap; i++) {
			if (m->vals[i] == ONNXHOOK_NONE)
				continue;
			size_t s = slot(m->keys[i], cap);
			while (vals[s] != ONNXHOOK_NONE)
				s = (s + 1) & (cap - 1);
			keys[s] = m->keys[i];
			vals[s] = m->vals[i];
		}
		onnxhook_mem_free(m->keys);
		onnxhook_mem_free(m->vals);
		m->keys = keys;
		m->vals = vals;
		m->cap = cap;
	}
	size_t s = slot(key, m->cap);
	while (m->vals[s] != ONNXHOOK_NONE)
		s = (s + 1) & (m->cap - 1);
	m->keys[s] = key;
	m->vals[s] = val;
	m->n++;
	return 0;
}

uint32_t onnxhook_hmap_find(const struct onnxhook_hmap *m, uint64_t key, size_t *iter)
{
	if (!m->cap)
		return ONNXHOOK_NONE;
	size_t s = *iter == SIZE_MAX ? slot(key, m->cap) : (*iter + 1) & (m->cap - 1);
	for (; m->vals[s] != ONNXHOOK_NONE; s = (s + 1) & (m->cap - 1)) {
		if (m->keys[s] == key) {
			*iter = s;
			return m->vals[s];
		}
	}
	return ONNXHOOK_NONE;
}

void onnxhook_hmap_free(struct onnxhook_hmap *m)
{
	onnxhook_mem_free(m->keys);
	onnxhook_mem_free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* A pipe or socket whose reader is gone is not the program's problem when we write to it: our
 * write must not kill it (nor run its handler) with SIGPIPE. So SIGPIPE is blocked around the
 * write, and the one the write raised is taken back, unless one was pending already: that one
 * is the program's. The write raises it on the calling thread, where only we can take it. */
int onnxhook_write_all(int fd, const uint8_t *p, size_t len)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	int r = 0;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	while (len) {
		ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0) {
			r = -EIO;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (r == -EPIPE && !was_pending) {
		const struct timespec now = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

size_t onnxhook_append(char *buf, size_t len, size_t o, const char *s)
{
	if (!len)
		return 0;
	while (*s && o + 1 < len)
		buf[o++] = *s++;
	buf[o < len ? o : len - 1] = '\0';
	return o;
}

size_t onnxhook_append_u(char *buf, size_t len, size_t o, uint64_t v)
{
	char digits[21];
	int n = 0;

	do
		digits[sizeof(digits) - 2 - n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 20);
	digits[sizeof(digits) - 1] = '\0';
	return onnxhook_append(buf, len, o, digits + sizeof(digits) - 1 - n);
}

const char *onnxhook_format_fixed(char *buf, size_t len, double v, int decimals)
{
	uint64_t scale = decimals >= 3 ? 1000 : decimals == 2 ? 100 : 10, x;
	size_t o;

	if (!(v >= 0 && v < 1e15))
		v = 0;
	x = (uint64_t)(v * (double)scale + 0.5);
	o = onnxhook_append_u(buf, len, 0, x / scale);
	o = onnxhook_append(buf, len, o, ".");
	for (uint64_t d = scale / 10; d; d /= 10)
		o = onnxhook_append_u(buf, len, o, x / d % 10);
	return buf;
}

/* fixed(v, decimals) then unit: no printf of a double (these run in signal handlers). */
static const char *scaled(char *buf, size_t len, double v, int decimals, const char *unit)
{
	onnxhook_format_fixed(buf, len, v, decimals);
	onnxhook_append(buf, len, strlen(buf), unit);
	return buf;
}

const char *onnxhook_format_count(uint64_t n, char *buf, size_t len)
{
	/* Thresholds where the rounded figure would reach 1000 of the smaller unit. */
	if (n >= 999995000ull)
		return scaled(buf, len, (double)n / 1e9, 2, "G");
	if (n >= 1000000ull)
		return scaled(buf, len, (double)n / 1e6, 2, "M");
	onnxhook_append_u(buf, len, 0, n);
	return buf;
}

const char *onnxhook_format_bytes(uint64_t n, char *buf, size_t len)
{
	if (n >= 999995000000ull)
		return scaled(buf, len, (double)n / 1e12, 2, " TB");
	if (n >= 999950000ull)
		return scaled(buf, len, (double)n / 1e9, 2, " GB");
	if (n >= 999950ull)
		return scaled(buf, len, (double)n / 1e6, 1, " MB");
	if (n >= 1000ull)
		return scaled(buf, len, (double)n / 1e3, 1, " KB");
	onnxhook_append(buf, len, onnxhook_append_u(buf, len, 0, n), " B");
	return buf;
}
