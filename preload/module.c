/* SPDX-License-Identifier: MIT */
/* The entry point of a host built as its own module (module.h), compiled into each with
 * -DONNXHOOK_MODULE_HOST=<name>: the only symbol the module exports. */
#include <string.h>

#include "module.h"

#define ONNXHOOK_LOADED_(name) onnxhook_##name##_loaded
#define ONNXHOOK_LOADED(name) ONNXHOOK_LOADED_(name)
/* The host's attach function (hosts.c calls it for a host linked in). */
void ONNXHOOK_LOADED(ONNXHOOK_MODULE_HOST)(void);

const struct onnxhook_module_api *onnxhook_api;

__attribute__((visibility("default"))) onnxhook_module_loaded_fn
onnxhook_module_init(const struct onnxhook_module_api *api);

onnxhook_module_loaded_fn onnxhook_module_init(const struct onnxhook_module_api *api)
{
	/* The preload says so when this returns NULL: nothing of api may be called unless its
	 * layout is this build's. */
	if (!api || api->abi != ONNXHOOK_MODULE_ABI || api->size != sizeof(*api) ||
	    api->call_size != sizeof(struct onnxhook_call) ||
	    api->graph_size != sizeof(struct onnxhook_graph) || !api->version ||
	    strcmp(api->version, ONNXHOOK_VERSION))
		return NULL;
	onnxhook_api = api;
	return ONNXHOOK_LOADED(ONNXHOOK_MODULE_HOST);
}
