/* SPDX-License-Identifier: MIT */
/* The hooked symbols of every host this build has, from the host registry (hosts.h). */
#include "hook.h"
#include "hosts.h"

#define DECLARE(name, library, hooks) extern const struct onnxhook_symbol onnxhook_##name##_symbols[];
ONNXHOOK_HOSTS(DECLARE)

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
