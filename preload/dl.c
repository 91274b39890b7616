/* SPDX-License-Identifier: MIT */
/* dlsym: apps (and ctypes, plugin loaders) that dlopen a host library and look its functions up
 * by handle get our hooks; every other lookup behaves exactly as before. */
#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>

#include "hook.h"

/* This file runs on the sanitizer runtimes' path (hook.h). */
#define UNINSTRUMENTED ONNXHOOK_UNINSTRUMENTED

typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn real_dlsym;

/* glibc's own dlsym, by version: dlsym itself would find ours. The version names differ per
 * architecture; dlvsym is not interposed, so this cannot recurse. */
UNINSTRUMENTED static dlsym_fn get_real_dlsym(void)
{
	static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17",
					       "GLIBC_2.0", "GLIBC_2.27", "GLIBC_2.1"};
	dlsym_fn f = __atomic_load_n(&real_dlsym, __ATOMIC_ACQUIRE);

	for (size_t i = 0; !f && i < sizeof(versions) / sizeof(versions[0]); i++)
		f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
	__atomic_store_n(&real_dlsym, f, __ATOMIC_RELEASE);
	return f;
}

/* Whether our hook of s calls p, the definition a handle gave. A hook calls one definition:
 * the global scope's next after us (what its own lookup finds), or, when none is there, the
 * first one taken through a handle (a library opened RTLD_LOCAL). The handle gets our hook only
 * if that is its own definition; otherwise its function itself. A wrapper that defines the name
 * and takes the real function through the real library's handle thus never gets our hook, which
 * would call the wrapper again. */
static bool calls(const struct onnxhook_symbol *s, void *p, dlsym_fn real)
{
	void *next = __atomic_load_n(s->real, __ATOMIC_ACQUIRE);

	if (!next) {
		void *expected = NULL, *global = real(RTLD_NEXT, s->name);
		if (__atomic_compare_exchange_n(s->real, &expected, global ? global : p, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			next = global ? global : p;
		else
			next = expected;
	}
	return next == p;
}

ONNXHOOK_PROCESS_HOOKS(ONNXHOOK_DECLARE_LOCAL)

/* Our own definition of symbol, if we export one. */
UNINSTRUMENTED static void *ours(const char *symbol)
{
	const struct onnxhook_symbol *s;

#define OURS(name)                                                                               \
	if (onnxhook_same_name(symbol, #name))                                                   \
		return (void *)onnxhook_local_##name;
	ONNXHOOK_PROCESS_HOOKS(OURS)
#undef OURS
	return (s = onnxhook_host_symbol(symbol)) ? s->hook : NULL;
}

/* The definition of symbol in object l itself, through a proper handle for it. This runs
 * while a sanitizer runtime preloaded before us is initialising (when another object sits
 * between it and us): so no instrumentation, and glibc's dlopen and dlclose taken from after
 * us, not the sanitizer's interceptors, which cannot run yet. */
UNINSTRUMENTED static void *defined_in(struct link_map *l, const char *symbol, dlsym_fn real)
{
	void *(*real_dlopen)(const char *, int) = (void *(*)(const char *, int))real(RTLD_NEXT, "dlopen");
	int (*real_dlclose)(void *) = (int (*)(void *))real(RTLD_NEXT, "dlclose");
	struct link_map *owner = NULL;
	Dl_info info;
	bool path = false;

	/* The main program has no name, the vDSO no path: neither can be opened by name. */
	for (const char *n = l->l_name; n && *n && !path; n++)
		path = *n == '/';
	if (!path || !real_dlopen || !real_dlclose)
		return NULL;
	void *h = real_dlopen(l->l_name, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return NULL;
	/* A lookup through an object's handle searches that object first. */
	void *p = real(h, symbol);
	bool found = p && dladdr1(p, &info, (void **)&owner, RTLD_DL_LINKMAP) && owner == l;
	real_dlclose(h);
	return found ? p : NULL;
}

/* dlsym(RTLD_NEXT, …) means "after the object that called it". Through us, glibc would take
 * *our* object for the caller. So: the objects between the caller and us one by one, then our
 * own definitions, then glibc's RTLD_NEXT from here (everything after us). A sanitizer runtime
 * preloaded just before us resolves its interceptors this way before it is initialised: that
 * path calls nothing but glibc's dlsym and dladdr1. */
UNINSTRUMENTED static void *next_after(const void *caller, const char *symbol, dlsym_fn real)
{
	struct link_map *from = NULL, *self = NULL;
	Dl_info info;
	void *p;

	if (!dladdr1(caller, &info, (void **)&from, RTLD_DL_LINKMAP) || !from ||
	    !dladdr1((void *)next_after, &info, (void **)&self, RTLD_DL_LINKMAP) || !self ||
	    from == self)
		return real(RTLD_NEXT, symbol);
	for (struct link_map *l = from->l_next; l; l = l->l_next) {
		if (l == self)
			return (p = ours(symbol)) ? p : real(RTLD_NEXT, symbol);
		if ((p = defined_in(l, symbol, real)))
			return p;
	}
	return NULL; /* the caller comes after us: the objects after it did not define it */
}

/* Whether code at addr belongs to the main program (the first object of the link map). */
static bool called_by_main(const void *addr)
{
	struct link_map *l = NULL;
	Dl_info info;

	return dladdr1(addr, &info, (void **)&l, RTLD_DL_LINKMAP) && l && !l->l_prev;
}

ONNXHOOK_EXPORT UNINSTRUMENTED void *dlsym(void *handle, const char *symbol)
{
	const void *caller = __builtin_return_address(0);
	dlsym_fn real = get_real_dlsym();
	void *p;

	if (!real)
		return NULL;
	if (handle == RTLD_NEXT)
		return next_after(caller, symbol, real);
	p = real(handle, symbol);
	/* Python looks its extension's init function up right after loading it (torch._C): a
	 * host library may have arrived. Only lookups by the main program: a library's constructor
	 * may look up while the dlopen that loaded it is still initialising the others (opening
	 * one of them then would run their constructors out of order); nor RTLD_DEFAULT: sanitizer
	 * runtimes may look up that way before they are ready. */
	if (handle != RTLD_DEFAULT && called_by_main(caller))
		onnxhook_hosts_loaded();
	if (p && handle != RTLD_DEFAULT) {
		const struct onnxhook_symbol *s = onnxhook_host_symbol(symbol);
		if (s && p != s->hook)
			return calls(s, p, real) ? s->hook : p;
	}
	return p;
}

ONNXHOOK_LOCAL_ALIAS(dlsym)
