/* SPDX-License-Identifier: MIT */
/* The hooked symbols of every host this build has, from the host registry (hosts.h). */
#include <link.h>

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

/* Optional: a host that attaches when its library appears defines onnxhook_<name>_loaded(). */
#define LOADED(name, library, hooks) extern void onnxhook_##name##_loaded(void) __attribute__((weak));
ONNXHOOK_HOSTS(LOADED)

static int load_count(struct dl_phdr_info *info, size_t size, void *data)
{
	*(unsigned long long *)data = info->dlpi_adds;
	return 1;
}

void onnxhook_hosts_loaded(void)
{
	static unsigned long long seen;
	unsigned long long adds = 0;

	dl_iterate_phdr(load_count, &adds);
	if (__atomic_exchange_n(&seen, adds, __ATOMIC_ACQ_REL) == adds)
		return;
#define CALL(name, library, hooks)                                                               \
	if (onnxhook_##name##_loaded)                                                            \
		onnxhook_##name##_loaded();
	ONNXHOOK_HOSTS(CALL)
}
