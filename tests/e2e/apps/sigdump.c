/* SPDX-License-Identifier: MIT */
/* Signals that end a program at awkward moments, for the dumps made from signal handlers.
 * Usage: sigdump MODE [SEED]
 *   altstack-exit     its own SIGTERM handler, SA_ONSTACK on a 16 KiB sigaltstack, ends it
 *                     with _exit(3)
 *   altstack-default  the same handler restores the default action and raises SIGTERM again
 *   overflow          a 16 KiB sigaltstack, no handler: a runaway recursion overflows the stack
 *   return            returns 2 (the reference: a model written at exit)
 *   stress SEED       loops over hooked calls and malloc/realloc/free until a timer sends
 *                     SIGTERM at a moment chosen by SEED (0 to 20 ms after two passes)
 * In every mode the allocator refuses to be called inside a signal handler (while SIGTERM or
 * SIGSEGV is blocked): a dump from a handler must not use malloc, which the signal may have
 * interrupted. Such a call prints one line and ends the process with status 99. */
#include <dlfcn.h>
#include <signal.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "e2e-app.h"

/* ---- the allocator, refused inside signal handlers ---------------------------------------- */

static volatile sig_atomic_t armed;

static void guard(void)
{
	static const char msg[] = "sigdump: the allocator was called inside a signal handler\n";
	sigset_t blocked;

	if (!armed || sigprocmask(SIG_BLOCK, NULL, &blocked) != 0)
		return;
	if (sigismember(&blocked, SIGTERM) || sigismember(&blocked, SIGSEGV)) {
		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing more to say */
		}
		syscall(SYS_exit_group, 99); /* not _exit: the hook would dump from here */
	}
}

#ifdef __SANITIZE_ADDRESS__
/* ASan's allocator comes first and initialises before anything of ours runs: it calls hooks
 * (declared in sanitizer/allocator_interface.h, which not every compiler installs). */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					       void (*free_hook)(const volatile void *));

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	(void)n;
	guard();
}

static void on_free(const volatile void *p)
{
	(void)p;
	guard();
}

static void guard_allocator(void)
{
	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
#else
/* The allocator itself, forwarding to the next one (glibc's). */
static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
/* dlsym may ask for memory while the next allocator is being looked up. */
static alignas(max_align_t) char boot[16384];
static size_t boot_used;
static int resolving;

static void guard_allocator(void)
{
}

static void *boot_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(boot) - boot_used)
		return NULL;
	boot_used += n;
	return boot + boot_used - n; /* zeroed: static */
}

static void resolve(void)
{
	if (next_malloc)
		return;
	resolving = 1;
	next_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	next_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	resolving = 0;
}

/* Exported (the build hides symbols by default): every library's calls come here. */
#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n)
{
	if (resolving)
		return boot_alloc(n);
	guard();
	resolve();
	return next_malloc(n);
}

EXPORT void *calloc(size_t k, size_t n)
{
	if (resolving)
		return n && k > SIZE_MAX / n ? NULL : boot_alloc(k * n);
	guard();
	resolve();
	return next_calloc(k, n);
}

EXPORT void *realloc(void *p, size_t n)
{
	guard();
	resolve();
	return next_realloc(p, n);
}

EXPORT void free(void *p)
{
	if ((char *)p >= boot && (char *)p < boot + sizeof(boot))
		return;
	guard();
	resolve();
	next_free(p);
}
#endif

/* ---- the program ---------------------------------------------------------------------------- */

static const tnn_dims dims = {1, 3, 8, 8};
static struct e2e_conv_layer conv;
static alignas(16) char altstack[16384];

/* One pass: conv, relu, on buffers fresh from malloc. */
static void infer(struct e2e_rng *r)
{
	const tnn_dims out = e2e_conv_out(&conv, &dims);
	float *x = malloc(e2e_count(&dims) * sizeof(float)), *y = malloc(e2e_count(&out) * sizeof(float));

	if (!x || !y)
		exit(10);
	for (size_t i = 0; i < e2e_count(&dims); i++)
		x[i] = e2e_uniform(r, -1.0f, 1.0f);
	E2E_TNN(tnn_conv2d(&conv.p, &dims, x, conv.weight, conv.bias, &out, y));
	E2E_TNN(tnn_relu(&out, y, y));
	free(x);
	free(y);
}

static void use_altstack(void)
{
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};

	if (sigaltstack(&ss, NULL) < 0)
		exit(11);
}

/* Uninstrumented: before a call that does not return, ASan unpoisons the stack, and on an
 * alternate stack that reads /proc/self/maps with fopen (malloc) in the handler. */
__attribute__((no_sanitize("address"))) static void exit_3(int sig)
{
	(void)sig;
	_exit(3);
}

static void default_again(int sig)
{
	signal(sig, SIG_DFL);
	raise(sig);
}

static void on_altstack(void (*handler)(int))
{
	struct sigaction sa = {.sa_handler = handler, .sa_flags = SA_ONSTACK};

	use_altstack();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		exit(12);
	raise(SIGTERM);
}

static volatile int stop_depth = -1;

/* 1 KiB a frame until the stack runs out. */
static int recurse(volatile char *outer, int depth)
{
	volatile char frame[1024];

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = outer ? outer[0] : 0;
	if (depth == stop_depth)
		return frame[0];
	return recurse(frame, depth + 1) + frame[sizeof(frame) - 1];
}

/* Hooked calls, malloc, realloc and free in a loop, until the timer's SIGTERM. */
static void stress(struct e2e_rng *r, unsigned long seed)
{
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGTERM};
	unsigned long us = seed * 2654435761u % 20000;
	struct itimerspec when = {.it_value = {0, (long)us * 1000 + 1}};
	void *blocks[64] = {0};
	timer_t t;

	if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0 || timer_settime(t, 0, &when, NULL) < 0)
		exit(13);
	for (unsigned long i = 0;; i++) {
		size_t k = i % 64, n = (size_t)1 << (i * 7 % 19); /* 1 B to 256 KiB */
		void *p = i % 3 ? malloc(n) : realloc(blocks[k], n);
		if (!p)
			exit(14);
		if (i % 3)
			free(blocks[k]);
		memset(p, (int)i, n < 64 ? n : 64);
		blocks[k] = p;
		if (i % 8 == 0)
			infer(r);
	}
}

int main(int argc, char **argv)
{
	struct e2e_rng r;
	const char *mode = argc > 1 ? argv[1] : "";

	e2e_rng_seed(&r, 11);
	e2e_conv_init(&conv, &r, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
	/* Two passes: the first is recorded, the second's first call completes it. */
	infer(&r);
	infer(&r);
	printf("mode %s\n", mode);
	fflush(stdout);
	guard_allocator();
	armed = 1;
	if (!strcmp(mode, "altstack-exit"))
		on_altstack(exit_3);
	else if (!strcmp(mode, "altstack-default"))
		on_altstack(default_again);
	else if (!strcmp(mode, "overflow")) {
		use_altstack();
		return recurse(NULL, 0);
	} else if (!strcmp(mode, "stress") && argc > 2)
		stress(&r, strtoul(argv[2], NULL, 10));
	return 2;
}
