/* SPDX-License-Identifier: MIT */
/* A stand-in libtinynn.so.0 that forwards every function to the real library, opened by path
 * and looked up with dlsym(handle, …): the pattern of loader stubs, version shims and vendor
 * wrappers. E2E_WRAP_EAGER=1 looks everything up in the constructor instead of at the first
 * call (which of the wrapper's and the app's lookups comes first then changes). At exit it
 * prints how many calls it forwarded, so a run that bypassed it differs from one that did not. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinynn.h"
#include "tinynn-hooks.h"

static void *real_lib;
static unsigned long forwarded;

static void *lookup(const char *name)
{
	void *p;

	if (!real_lib && !(real_lib = dlopen(WRAP_REAL_TINYNN, RTLD_NOW | RTLD_LOCAL))) {
		fprintf(stderr, "tinynn-wrap: %s\n", dlerror());
		abort();
	}
	if (!(p = dlsym(real_lib, name))) {
		fprintf(stderr, "tinynn-wrap: %s: %s\n", name, dlerror());
		abort();
	}
	return p;
}

/* A function that calls itself again is the bug this wrapper exists to catch: stop at once
 * rather than recurse until the stack runs out. */
#define FORWARD(name, params, args)                                                              \
	static tnn_status(*real_##name) params;                                                  \
	static __thread int depth_##name;                                                        \
	__attribute__((visibility("default"))) tnn_status name params                            \
	{                                                                                        \
		if (!real_##name)                                                                \
			real_##name = (tnn_status(*) params)lookup(#name);                       \
		if (depth_##name++) {                                                            \
			fprintf(stderr, "tinynn-wrap: %s re-entered itself\n", #name);           \
			abort();                                                                 \
		}                                                                                \
		tnn_status st = real_##name args;                                                \
		depth_##name--;                                                                  \
		__atomic_add_fetch(&forwarded, 1, __ATOMIC_RELAXED);                             \
		return st;                                                                       \
	}
TINYNN_HOOKS(FORWARD)

#define RESOLVE(name, params, args) real_##name = (tnn_status(*) params)lookup(#name);
__attribute__((constructor)) static void eager(void)
{
	const char *e = getenv("E2E_WRAP_EAGER");

	if (e && !strcmp(e, "1")) {
		TINYNN_HOOKS(RESOLVE)
	}
}

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "tinynn-wrap: forwarded %lu calls\n", forwarded);
}
