/* SPDX-License-Identifier: MIT */
/* Every registered host's hooked symbols as empty functions: one library standing in for all
 * the host libraries, for hosts-check. */
#include "hosts.h"

#define STUB(name, ...)                                                                          \
	__attribute__((visibility("default"))) void name(void);                                 \
	void name(void) {}
#define HOST(name, library, hooks) hooks(STUB)
ONNXHOOK_HOSTS(HOST)
