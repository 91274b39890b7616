/* SPDX-License-Identifier: MIT */
/* Prints the hooked symbols, one per line, from the same lists the preload is built from. */
#include <stdio.h>

#include "hook.h"
#include "tinynn.h"
#include "tinynn-hooks.h"
#ifdef ONNXHOOK_HAVE_DARKNET
#include "darknet-hooks.h"
#endif

#define PRINT(name, params, args) puts(#name);
#define PRINT_NAME(name) puts(#name);
#define PRINT_LAYER(name, type) puts(#name);

int main(void)
{
	TINYNN_HOOKS(PRINT)
	ONNXHOOK_PROCESS_HOOKS(PRINT_NAME)
#ifdef ONNXHOOK_HAVE_DARKNET
	DARKNET_HOOKS(PRINT_LAYER)
	DARKNET_NETWORK_HOOKS(PRINT_NAME)
#endif
	return 0;
}
