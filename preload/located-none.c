/* SPDX-License-Identifier: MIT */
/* A build without inline hooks (not x86-64, or no Zydis): a host linked into the program is out
 * of reach; the hooks and the provenance see no located function. */
#include "hook.h"

void onnxhook_located_init(const struct onnxhook_config *cfg)
{
}

bool onnxhook_located_object(const void *fn, struct onnxhook_object *o, struct onnxhook_object *ref)
{
	return false;
}

const char *onnxhook_located_summary(void)
{
	return "";
}
