/* SPDX-License-Identifier: MIT */
/* dlsym: apps (and ctypes, plugin loaders) that dlopen a host library and look its functions up
 * by handle get our hooks; every other lookup behaves exactly as before. */
#include <dlfcn.h>
#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "hook.h"

static const struct onnxhook_symbol *const hosts[] = {
	onnxhook_tinynn_symbols,
#ifdef ONNXHOOK_HAVE_DARKNET
	onnxhook_darknet_symbols,
#endif
	NULL,
};

typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn real_dlsym;

/* glibc's own dlsym, by version: dlsym itself would find ours. The version names differ per
 * architecture; dlvsym is not interposed, so this cannot recurse. */
static dlsym_fn get_real_dlsym(void)
{
	static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17",
					       "GLIBC_2.0", "GLIBC_2.27", "GLIBC_2.1"};
	dlsym_fn f = __atomic_load_n(&real_dlsym, __ATOMIC_ACQUIRE);

	for (size_t i = 0; !f && i < sizeof(versions) / sizeof(versions[0]); i++)
		f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
	__atomic_store_n(&real_dlsym, f, __ATOMIC_RELEASE);
	return f;
}

static const struct onnxhook_symbol *find_hooked(const char *symbol)
{
	for (size_t h = 0; hosts[h]; h++)
		for (const struct onnxhook_symbol *s = hosts[h]; s->name; s++)
			if (!strcmp(s->name, symbol))
				return s;
	return NULL;
}

/* dlsym(RTLD_NEXT, …) means "after the object that called it". Called through us, glibc would
 * take *our* object as the caller, so walk the objects after the real caller ourselves and
 * take the first that defines the symbol. */
static void *next_after(const void *caller, const char *symbol, dlsym_fn real)
{
	struct link_map *self = NULL;
	Dl_info info;

	if (!dladdr1(caller, &info, (void **)&self, RTLD_DL_LINKMAP) || !self)
		return real(RTLD_NEXT, symbol);
	for (struct link_map *l = self->l_next; l; l = l->l_next) {
		/* A lookup through an object's handle searches that object first, so a definition
		 * in it is the one returned. RTLD_NOLOAD: objects loaded already (not the vdso). */
		void *h = l->l_name && *l->l_name ? dlopen(l->l_name, RTLD_LAZY | RTLD_NOLOAD) : NULL;
		if (!h)
			continue;
		void *p = real(h, symbol);
		struct link_map *owner = NULL;
		bool found = p && dladdr1(p, &info, (void **)&owner, RTLD_DL_LINKMAP) && owner == l;
		dlclose(h);
		if (found)
			return p;
	}
	return NULL;
}

ONNXHOOK_EXPORT void *dlsym(void *handle, const char *symbol)
{
	const void *caller = __builtin_return_address(0);
	dlsym_fn real = get_real_dlsym();
	void *p;

	if (!real)
		return NULL;
	if (handle == RTLD_NEXT)
		return next_after(caller, symbol, real);
	p = real(handle, symbol);
	if (p && handle != RTLD_DEFAULT) {
		const struct onnxhook_symbol *s = find_hooked(symbol);
		if (s && p != s->hook) {
			/* The host's function, found through its handle: ours calls it. */
			void *expected = NULL;
			__atomic_compare_exchange_n(s->real, &expected, p, false, __ATOMIC_RELEASE,
						    __ATOMIC_RELAXED);
			return s->hook;
		}
	}
	return p;
}
