/* SPDX-License-Identifier: MIT */
/* Host: darknet (Debian's libdarknet.so, pjreddie/darknet 61c9d02e): the hooks. Each
 * forward_*_layer call becomes the standard ONNX ops that reproduce darknet's own arithmetic,
 * written per layer family in preload/darknet/ (layers.h); see docs/darknet.md. */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet/layers.h"
#include "stub-x86_64.h"

#ifndef ONNXHOOK_DARKNET_BUILD_ID
#error "ONNXHOOK_DARKNET_BUILD_ID: the build-id of the libdarknet.so darknet.h belongs to"
#endif

/* ---- is this the darknet we were built for? ---------------------------------------------- */

static int dn_state; /* 0 not checked yet, 1 the expected build, -1 another one */
static pthread_mutex_t dn_state_lock = PTHREAD_MUTEX_INITIALIZER;

/* The layer structs are passed by value: their layout is trusted only in the libdarknet.so
 * darknet.h came with, recognized by its build-id. Any other: one warning, no recording. */
static bool darknet_ok(const void *real_fn)
{
	int s = __atomic_load_n(&dn_state, __ATOMIC_ACQUIRE);

	if (s)
		return s > 0;
	pthread_mutex_lock(&dn_state_lock);
	if (!dn_state) {
		struct onnxhook_object b;
		/* A copy located in the program is trusted as the reference it matched. */
		bool object = onnxhook_located_object(real_fn, NULL, &b) ||
			      onnxhook_object_of(real_fn, &b);
		s = object && !strcmp(b.build_id, ONNXHOOK_DARKNET_BUILD_ID) ? 1 : -1;
		/* Another darknet build deserves a warning; another library that merely
		 * exports one of these names (forward_network is generic) does not. */
		const char *base = object ? strrchr(b.path, '/') : NULL;
		bool named = object && strstr(base ? base + 1 : b.path, "darknet");
		if (s < 0)
			onnxhook_log(named ? ONNXHOOK_LOG_INFO : ONNXHOOK_LOG_DEBUG,
				     "%sdarknet: %s (build-id %s) is not the libdarknet.so onnxhook "
				     "was built against (build-id %s): its layers run unrecorded",
				     named ? "warning: " : "", object ? b.path : "the library",
				     b.build_id[0] ? b.build_id : "none", ONNXHOOK_DARKNET_BUILD_ID);
		__atomic_store_n(&dn_state, s, __ATOMIC_RELEASE);
	}
	s = dn_state;
	pthread_mutex_unlock(&dn_state_lock);
	return s > 0;
}

/* ---- the hooks ----------------------------------------------------------------------------- */

typedef void dn_layer_fn(layer, network);

static void record(const char *symbol, LAYER_TYPE type, dn_record_fn *fn, const layer *l,
		   const network *net)
{
	struct onnxhook_call c;
	char name[32];

	do {
		if (!onnxhook_record_begin(&c, symbol))
			return;
		snprintf(name, sizeof(name), "layer_%d", net->index);
		onnxhook_call_set_name(&c, name);
		onnxhook_call_set_result(&c, l->output); /* the layer_<i> value is l.output */
		if (l->type != type)
			dn_bad(&c, NULL, "l.type does not match the function");
		else
			fn(&c, l, net);
		onnxhook_record_end(&c);
	} while (onnxhook_record_again());
}

/* Each exported symbol is a stub that jumps through its slot: to hook_<symbol> for the build
 * we know, else straight to the library's own function. A C pass-through would copy the
 * structs with our idea of their size (and forward_network is a name other code may export
 * with another signature); the jump hands any caller's arguments over untouched. An empty slot
 * calls onnxhook_dn_resolve() first (stub-x86_64.h). */
#define DN_STUB(name) ONNXHOOK_JUMP_STUB(name, onnxhook_dn_slot_##name, onnxhook_dn_resolve)

#define DN_SLOT(name) __attribute__((visibility("hidden"), used)) void *onnxhook_dn_slot_##name;

#define DN_HOOK(name, type)                                                                      \
	ONNXHOOK_EXPORT void name(layer l, network net);                                         \
	DN_SLOT(name)                                                                            \
	static dn_layer_fn *real_##name;                                                         \
	static void hook_##name(layer l, network net)                                            \
	{                                                                                        \
		dn_layer_fn *real = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);             \
		if (!onnxhook_enter()) {                                                         \
			real(l, net);                                                            \
			return;                                                                  \
		}                                                                                \
		if (!net.train) { /* training passes are not inference */                        \
			onnxhook_checking(true);                                                 \
			record(#name, type, record_##name, &l, &net);                            \
			onnxhook_checking(false);                                                \
		}                                                                                \
		real(l, net);                                                                    \
		if (!net.train)                                                                  \
			record(#name, type, record_##name, &l, &net);                            \
		onnxhook_leave();                                                                \
	}                                                                                        \
	DN_STUB(name)
DARKNET_HOOKS(DN_HOOK)

/* forward_network only marks where a pass starts: the layers inside are what gets recorded
 * (it is not an enclosing op). Training passes record nothing. */
DN_SLOT(forward_network)
static void (*real_forward_network)(network *);

static void hook_forward_network(network *netp)
{
	void (*real)(network *) = __atomic_load_n(&real_forward_network, __ATOMIC_ACQUIRE);

	if (netp && !netp->train)
		onnxhook_pass_boundary();
	real(netp);
}
DN_STUB(forward_network)

struct dn_hook {
	const char *name;
	void **slot;
	void *hook;
	void **real;
};

#define DN_ENTRY(name, type)                                                                     \
	{#name, &onnxhook_dn_slot_##name, (void *)hook_##name, (void **)&real_##name},
static const struct dn_hook dn_hooks[] = {
	DARKNET_HOOKS(DN_ENTRY){"forward_network", &onnxhook_dn_slot_forward_network,
				(void *)hook_forward_network, (void **)&real_forward_network},
};

/* A libdarknet.so loaded with dlopen(RTLD_LOCAL) is out of RTLD_NEXT's reach, yet its own calls
 * (l.forward, forward_network through its PLT) bind to our stubs. Look through the objects
 * loaded after us: onnxhook's dlsym on an object's handle fills the real-function slot of a
 * hooked symbol that object defines. */
static void find_in_loaded(const char *name, void **real)
{
	struct link_map *self = NULL;
	Dl_info info;

	if (!dladdr1((void *)find_in_loaded, &info, (void **)&self, RTLD_DL_LINKMAP) || !self)
		return;
	for (struct link_map *l = self->l_next; l && !__atomic_load_n(real, __ATOMIC_ACQUIRE);
	     l = l->l_next) {
		void *h = l->l_name && *l->l_name ? dlopen(l->l_name, RTLD_LAZY | RTLD_NOLOAD) : NULL;
		if (!h)
			continue;
		(void)dlsym(h, name);
		dlclose(h);
	}
}

void *onnxhook_dn_resolve(void **slot);

/* First call of a stub: find the library's function and the slot's target. */
__attribute__((used)) void *onnxhook_dn_resolve(void **slot)
{
	for (size_t i = 0; i < sizeof(dn_hooks) / sizeof(dn_hooks[0]); i++) {
		const struct dn_hook *h = &dn_hooks[i];
		if (h->slot != slot)
			continue;
		/* dlsym on darknet's handle may have filled it (an RTLD_LOCAL library). */
		void *real = __atomic_load_n(h->real, __ATOMIC_ACQUIRE);
		if (!real && !(real = dlsym(RTLD_NEXT, h->name))) {
			find_in_loaded(h->name, h->real);
			real = __atomic_load_n(h->real, __ATOMIC_ACQUIRE);
		}
		if (!real) /* says so and exits as the dynamic linker would */
			real = onnxhook_resolve(h->name);
		__atomic_store_n(h->real, real, __ATOMIC_RELEASE);
		void *target = darknet_ok(real) ? h->hook : real;
		__atomic_store_n(slot, target, __ATOMIC_RELEASE);
		return target;
	}
	abort(); /* only the stubs call this, each with its own slot */
}

#define DN_SYMBOL(name, type) {#name, (void *)name, (void **)&real_##name},
const struct onnxhook_symbol onnxhook_darknet_symbols[] = {
	DARKNET_HOOKS(DN_SYMBOL){"forward_network", (void *)forward_network,
				 (void **)&real_forward_network},
	{NULL, NULL, NULL},
};
