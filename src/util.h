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
/* Creates "<dir of base>/.onnxhook.<pid>.<k>.tmp" (k = 0, 1, … the first free) exclusively,
 * never through a symlink; its name in tmp. The name is short whatever base's length, so any
 * valid final name works. The descriptor, or a negative errno. */
int onnxhook_open_temp(const char *base, char *tmp, size_t len);
/* The same name rule relative to dirfd (AT_FDCWD: as open_temp), a file opened for writing or
 * (dir) a directory opened O_DIRECTORY: the descriptor, or a negative errno. */
int onnxhook_make_temp(int dirfd, const char *base, bool dir, char *tmp, size_t len);

/* malloc and free, or the calling thread's allocator (onnxhook_set_allocator). The writer's
 * memory and the hash maps' come from here. */
void *onnxhook_mem_alloc(size_t size);
void onnxhook_mem_free(void *p);

int onnxhook_hmap_put(struct onnxhook_hmap *m, uint64_t key, uint32_t val);
/* Iterate values stored under key: start with *iter = SIZE_MAX; ONNXHOOK_NONE ends. */
uint32_t onnxhook_hmap_find(const struct onnxhook_hmap *m, uint64_t key, size_t *iter);
void onnxhook_hmap_free(struct onnxhook_hmap *m);

#endif
