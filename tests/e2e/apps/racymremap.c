/* SPDX-License-Identifier: MIT */
/* mremap for the moverace app: the system call, then the app's callback, run after the old
 * place is free and before mremap returns (the moment another thread can map there). Loaded
 * after the preload (a DT_NEEDED library of the app), it is the "real" mremap onnxhook calls. */
#include <stdarg.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((visibility("default"))) void (*moverace_after_mremap)(void *old, void *new);

__attribute__((visibility("default"))) void *mremap(void *p, size_t old, size_t new, int flags,
						    ...)
{
	void *want = NULL;

	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	void *q = (void *)syscall(SYS_mremap, p, old, new, flags, want);
	if (q != MAP_FAILED && moverace_after_mremap)
		moverace_after_mremap(p, q);
	return q;
}
