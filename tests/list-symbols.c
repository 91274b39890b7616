/* SPDX-License-Identifier: MIT */
/* Prints the hooked symbols, one per line, from the same lists the preload is built from. */
#include <stdio.h>

#include "hook.h"
#include "tinynn.h"
#include "tinynn-hooks.h"

#define PRINT(name, params, args) puts(#name);
#define PRINT_NAME(name) puts(#name);

int main(void)
{
	TINYNN_HOOKS(PRINT)
	ONNXHOOK_PROCESS_HOOKS(PRINT_NAME)
	return 0;
}
