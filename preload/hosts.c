/* SPDX-License-Identifier: MIT */
/* The hooked symbols of every host this build has, from the host registry (hosts.h), and the
 * hosts built as modules of their own, loaded when their library arrives (module.h). */
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "hosts.h"
#include "module.h"

#define DECLARE(name, library, hooks) extern const struct onnxhook_symbol onnxhook_##name##_symbols[];
ONNXHOOK_HOSTS(DECLARE)

/* A module host's table is here (its file is not linked in): empty, as it hooks nothing by name. */
#define ONE(...) 1,
#define MODULE_TABLE(name, library, hooks)                                                       \
	_Static_assert(sizeof((int[]){hooks(ONE) 0}) == sizeof(int),                             \
		       "a host built as a module hooks no symbol by name: " #name);              \
	const struct onnxhook_symbol onnxhook_##name##_symbols[] = {{NULL, NULL, NULL}};
ONNXHOOK_HOST_MODULES(MODULE_TABLE)

#define TABLE(name, library, hooks) onnxhook_##name##_symbols,
static const struct onnxhook_symbol *const tables[] = {ONNXHOOK_HOSTS(TABLE) NULL};

ONNXHOOK_UNINSTRUMENTED const struct onnxhook_symbol *onnxhook_host_symbol(const char *symbol)
{
	for (size_t t = 0; tables[t]; t++)
		for (const struct onnxhook_symbol *s = tables[t]; s->name; s++)
			if (onnxhook_same_name(s->name, symbol))
				return s;
	return NULL;
}

/* Optional: a host that attaches when its library appears defines onnxhook_<name>_loaded(). */
#define LOADED(name, library, hooks) extern void onnxhook_##name##_loaded(void) __attribute__((weak));
ONNXHOOK_HOSTS(LOADED)

/* ---- hosts built as modules ----------------------------------------------------------------- */

/* hook.h's inline functions, out of line for the table. */
static bool api_onnxhook_enter(void) { return onnxhook_enter(); }
static void api_onnxhook_leave(void) { onnxhook_leave(); }
static bool api_onnxhook_is_recording(void) { return onnxhook_is_recording(); }
#define API_INIT(f) .f = f,
#define API_INIT_INLINE(f) .f = api_##f,
static const struct onnxhook_module_api api = {
	.abi = ONNXHOOK_MODULE_ABI,
	.size = sizeof(struct onnxhook_module_api),
	.call_size = sizeof(struct onnxhook_call),
	.graph_size = sizeof(struct onnxhook_graph),
	.version = ONNXHOOK_VERSION,
	ONNXHOOK_MODULE_API(API_INIT, API_INIT_INLINE)
};

struct module {
	const char *name, *library;
	int state; /* 0 not loaded, 1 loading or given up, 2 loaded */
	onnxhook_module_loaded_fn loaded;
};
#define MODULE(name, library, hooks) {#name, library, 0, NULL},
static struct module modules[] = {ONNXHOOK_HOST_MODULES(MODULE){NULL, NULL, 0, NULL}};

/* This library's file, absolute: taken at start-up (the program may change directory before
 * its host library arrives, and LD_PRELOAD may name us by a relative path). */
static char self_path[PATH_MAX];

static void find_self(void)
{
	Dl_info info;
	char cwd[PATH_MAX];

	if (!modules[0].name || !dladdr((void *)find_self, &info) || !info.dli_fname)
		return;
	size_t n = strlen(info.dli_fname);
	if (info.dli_fname[0] == '/') {
		if (n < sizeof(self_path))
			memcpy(self_path, info.dli_fname, n + 1);
	} else if (getcwd(cwd, sizeof(cwd)) && strlen(cwd) + 1 + n < sizeof(self_path)) {
		strcpy(self_path, cwd);
		strcat(self_path, "/");
		strcat(self_path, info.dli_fname);
	}
}

/* Whether a library whose file name starts with data (a soname prefix) is loaded. */
static int find_library(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *base = strrchr(info->dlpi_name, '/');
	const char *prefix = data;

	base = base ? base + 1 : info->dlpi_name;
	return !strncmp(base, prefix, strlen(prefix));
}

/* <our directory>/onnxhook/libonnxhook-<name>.so, the installed layout (libdir/onnxhook/) which
 * the build tree has too (preload/onnxhook/meson.build); symbolic links to us resolved. */
static void load_module(struct module *m)
{
	char real[PATH_MAX], path[PATH_MAX + 64];
	const char *from = realpath(self_path, real) ? real : self_path;
	const char *slash = strrchr(from, '/');

	if (!slash) {
		onnxhook_warn("%s is loaded, but the %s host's module cannot be found (where is "
			      "libonnxhook.so?); the %s host is off", m->library, m->name, m->name);
		return;
	}
	snprintf(path, sizeof(path), "%.*s/onnxhook/libonnxhook-%s.so", (int)(slash - from), from, m->name);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!h) {
		const char *e = dlerror();
		onnxhook_warn("%s is loaded, but the %s host's module is not: %s; the %s host is off",
			      m->library, m->name, e ? e : path, m->name);
		return;
	}
	onnxhook_module_init_fn init = (onnxhook_module_init_fn)dlsym(h, ONNXHOOK_MODULE_INIT);
	onnxhook_module_loaded_fn loaded = init ? init(&api) : NULL;
	if (!loaded) {
		onnxhook_warn("%s is not the %s host's module of this libonnxhook.so (%s); the %s host "
			      "is off", path, m->name, init ? "another build" : "no " ONNXHOOK_MODULE_INIT,
			      m->name);
		return;
	}
	onnxhook_debug("%s host: loaded %s", m->name, path);
	__atomic_store_n(&m->loaded, loaded, __ATOMIC_RELEASE);
	__atomic_store_n(&m->state, 2, __ATOMIC_RELEASE);
}

/* The modules of hosts whose library is there: loaded once (while recording: a process that
 * records nothing needs none), then told, as a host linked in is. */
static void modules_loaded(void)
{
	for (struct module *m = modules; m->name; m++) {
		int state = __atomic_load_n(&m->state, __ATOMIC_ACQUIRE), expected = 0;
		if (state == 0 && onnxhook_is_recording() &&
		    dl_iterate_phdr(find_library, (void *)m->library) &&
		    __atomic_compare_exchange_n(&m->state, &expected, 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			load_module(m);
		onnxhook_module_loaded_fn f = __atomic_load_n(&m->loaded, __ATOMIC_ACQUIRE);
		if (f)
			f();
	}
}

static int load_count(struct dl_phdr_info *info, size_t size, void *data)
{
	*(unsigned long long *)data = info->dlpi_adds;
	return 1;
}

void onnxhook_hosts_loaded(void)
{
	static unsigned long long seen;
	static int started;
	unsigned long long adds = 0;

	if (!__atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL))
		find_self(); /* the first call: the constructor's, before main */
	dl_iterate_phdr(load_count, &adds);
	if (__atomic_exchange_n(&seen, adds, __ATOMIC_ACQ_REL) == adds)
		return;
#define CALL(name, library, hooks)                                                               \
	if (onnxhook_##name##_loaded)                                                            \
		onnxhook_##name##_loaded();
	ONNXHOOK_HOSTS(CALL)
	modules_loaded();
}
