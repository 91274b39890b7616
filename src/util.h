/* SPDX-License-Identifier: MIT */
/* Internal helpers of the core (not used by hosts). */
#ifndef ONNXHOOK_UTIL_H
#define ONNXHOOK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnxhook.h"

#define ONNXHOOK_HASH_SEED 0xcbf29ce484222325ULL

uint64_t onnxhook_hash_bytes(uint64_t h, const void *data, size_t len);
uint64_t onnxhook_hash_u64(uint64_t h, uint64_t v);

/* Appends s (or v in decimal) to the string buf of size len at offset o, truncating, and
 * returns the new length: a cheap snprintf for names built on the recording path. */
size_t onnxhook_append(char *buf, size_t len, size_t o, const char *s);
size_t onnxhook_append_u(char *buf, size_t len, size_t o, uint64_t v);

/* write(2) all of it (in chunks of at most 1 GiB, retrying EINTR): 0 or a negative errno. A
 * reader gone is -EPIPE, never a SIGPIPE in the program. */
int onnxhook_write_all(int fd, const uint8_t *p, size_t len);
/* ---- publishing files (publish.c) ---------------------------------------------------------
 * Every file onnxhook writes (the model, its data file, the picture, the test data set) is
 * written whole under a temporary name, or into a temporary directory, then renamed into place:
 * a reader never finds it half-written, and a failure leaves nothing behind. */

/* Writes a file's bytes to fd: 0 or a negative errno. */
typedef int onnxhook_write_fn(int fd, void *ctx);
/* A write_fn for a buffer. */
struct onnxhook_bytes {
	const void *data;
	size_t len;
};
int onnxhook_write_bytes(int fd, void *ctx);

/* Creates "<dir of base>/.onnxhook.<pid>.<k>.tmp" (k = 0, 1, … the first free) relative to
 * dirfd (AT_FDCWD: the working directory) exclusively, never through a symlink: a file opened
 * for writing or (dir) a directory opened O_DIRECTORY; its name in tmp. The name is short
 * whatever base's length, so any valid final name works. The descriptor, or a negative errno. */
int onnxhook_make_temp(int dirfd, const char *base, bool dir, char *tmp, size_t len);
/* A temporary beside path (make_temp's), written whole through fn and closed (a delayed ENOSPC
 * or EIO shows there), its name in tmp, to be renamed into place: 0, or a negative errno with
 * the temporary removed. */
int onnxhook_write_temp(const char *path, onnxhook_write_fn *fn, void *ctx, char *tmp, size_t len);
/* The same as the new file name in dirfd (in a temporary directory). */
int onnxhook_write_new(int dirfd, const char *name, onnxhook_write_fn *fn, void *ctx);
/* rename(2) that never replaces: -EEXIST when to exists. */
int onnxhook_rename_new(const char *from, const char *to);

/* malloc and free, or the calling thread's allocator (onnxhook_set_allocator). The writer's
 * memory and the hash maps' come from here. */
void *onnxhook_mem_alloc(size_t size);
void onnxhook_mem_free(void *p);

/* ---- the recorder's parts (graph.c, views.c) ---------------------------------------------- */

/* The call failed with err (the first error is kept): ONNXHOOK_NONE. */
uint32_t onnxhook_call_fail(struct onnxhook_call *c, int err);
/* Value src read with another shape (Reshape); the bytes [off, off + len) of src (Slice); the
 * values parts[0..n), one after another in memory, read as one of shape (Concat, then Reshape).
 * A view made once serves every later read of the same bytes with the same shape. */
uint32_t onnxhook_view_reshape(struct onnxhook_call *c, uint32_t src,
			       const struct onnxhook_shape *shape);
uint32_t onnxhook_view_slice(struct onnxhook_call *c, uint32_t src, uint64_t off, uint64_t len);
uint32_t onnxhook_view_concat(struct onnxhook_call *c, int n, const uint32_t *parts,
			      const struct onnxhook_shape *shape);

int onnxhook_hmap_put(struct onnxhook_hmap *m, uint64_t key, uint32_t val);
/* Iterate values stored under key: start with *iter = SIZE_MAX; ONNXHOOK_NONE ends. */
uint32_t onnxhook_hmap_find(const struct onnxhook_hmap *m, uint64_t key, size_t *iter);
void onnxhook_hmap_free(struct onnxhook_hmap *m);

#endif
