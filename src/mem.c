/* SPDX-License-Identifier: MIT */
/* Where the writer and the hash maps get their memory: libc's, or the caller's for one thread. */
#include <stdlib.h>

#include "onnxhook.h"
#include "util.h"

/* Per thread: a dump from a signal handler points its own thread at memory of its own, while
 * other threads (the preload's stack tables use hash maps outside the recorder lock) keep
 * malloc. initial-exec: no __tls_get_addr (which may allocate) from a signal handler. */
static __thread const struct onnxhook_allocator *allocator __attribute__((tls_model("initial-exec")));

void onnxhook_set_allocator(const struct onnxhook_allocator *a)
{
	allocator = a;
}

void *onnxhook_mem_alloc(size_t size)
{
	const struct onnxhook_allocator *a = allocator;

	return a ? a->alloc(a->ctx, size) : malloc(size);
}

void onnxhook_mem_free(void *p)
{
	const struct onnxhook_allocator *a = allocator;

	if (a)
		a->free(a->ctx, p);
	else
		free(p);
}
