/* SPDX-License-Identifier: MIT */
/* hosts-check PRELOAD STUBS: every symbol of every registered host (hosts.h) is in the preload's
 * own table: its dlsym, asked on the handle of a library defining the symbol (STUBS, opened
 * RTLD_LOCAL), hands out the preload's hook. Provenance searches the same table.
 * hosts-check --list: the hosts and their symbols as `onnxhook --list-symbols` prints them. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "hosts.h"

#define PRINT_SYMBOL(name, ...) printf("  %s\n", #name);
#define PRINT_HOST(name, library, hooks)                                                         \
	printf("%s (%s):\n", #name, library);                                                    \
	hooks(PRINT_SYMBOL)

static int failed;

static void check(void *preload, void *stubs, void *(*hooked_dlsym)(void *, const char *),
		  const char *host, const char *symbol)
{
	void *hook = dlsym(preload, symbol), *got = hooked_dlsym(stubs, symbol);

	if (!hook || got != hook) {
		fprintf(stderr, "hosts-check: %s: %s: %s\n", host, symbol,
			!hook ? "not exported by the preload" : "not in the preload's host table");
		failed = 1;
	}
}

#define CHECK_SYMBOL(name, ...) check(preload, stubs, hooked_dlsym, host, #name);
#define CHECK_HOST(name, library, hooks)                                                         \
	host = #name;                                                                            \
	hooks(CHECK_SYMBOL)

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--list")) {
		ONNXHOOK_HOSTS(PRINT_HOST)
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: hosts-check PRELOAD STUBS | --list\n");
		return 2;
	}
	void *preload = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	void *stubs = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
	if (!preload || !stubs) {
		fprintf(stderr, "hosts-check: %s\n", dlerror());
		return 1;
	}
	void *(*hooked_dlsym)(void *, const char *) = (void *(*)(void *, const char *))dlsym(preload, "dlsym");
	const char *host;
	ONNXHOOK_HOSTS(CHECK_HOST)
	return failed;
}
