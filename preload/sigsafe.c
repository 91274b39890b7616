/* SPDX-License-Identifier: MIT */
/* What a dump from a signal handler runs on: a stack and memory of its own.
 *
 * The handler may run on a small stack (a program's sigaltstack, ASan's), and the signal may
 * have interrupted malloc, or anything else holding a lock the dump would wait for. So the
 * dump runs on a stack mapped for it, and the writer's memory comes from mappings of its own.
 * Both are mapped when first needed: mmap is a plain system call that takes no lock in user
 * space, so it is safe in a handler, and a process that never dumps from one pays nothing
 * (this also covers handlers of the program's own that end it with _exit while dumps on
 * signals are off). */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "hook.h"

/* Reserved, not committed: only the pages used count. A dump uses about 32 KiB (36 KiB under
 * ASan), whatever the graph's size: nothing on its path recurses deeper than protobuf-c's
 * nesting of messages. */
#define DUMP_STACK_SIZE ((size_t)1 << 20)
#define ARENA_CHUNK ((size_t)16 << 20)

/* ASan's fiber annotations, present when ASan is loaded: it must be told which stack is
 * current, or it reports the dump's frames as stack overflows or misses them. */
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size)
	__attribute__((weak));
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old, size_t *size_old)
	__attribute__((weak));

/* One dump at a time (the caller holds the recorder lock): plain statics. */
static char *stack_lo; /* [stack_lo, stack_lo + DUMP_STACK_SIZE), a guard page below */
static ucontext_t back, job;
static void (*job_fn)(void *);
static void *job_arg;
static void *fake_stack;
static const void *caller_bottom;
static size_t caller_size;

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

static void run_job(void)
{
	if (__sanitizer_finish_switch_fiber)
		__sanitizer_finish_switch_fiber(NULL, &caller_bottom, &caller_size);
	job_fn(job_arg);
	if (__sanitizer_start_switch_fiber)
		__sanitizer_start_switch_fiber(NULL, caller_bottom, caller_size); /* this one ends */
	/* Returning resumes `back` (uc_link). */
}

int onnxhook_run_on_own_stack(void (*fn)(void *), void *arg)
{
	volatile bool ran = false;

	if (!stack_lo) {
		size_t guard = page_size();
		char *p = mmap(NULL, DUMP_STACK_SIZE + guard, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		if (mprotect(p, guard, PROT_NONE) < 0) {
			int r = -errno;
			munmap(p, DUMP_STACK_SIZE + guard);
			return r;
		}
		stack_lo = p + guard;
	}
	job_fn = fn;
	job_arg = arg;
	/* getcontext returns twice: now, and when run_job has returned (uc_link). setcontext, not
	 * swapcontext: ASan's swapcontext interceptor would print a warning on our stderr. */
	if (getcontext(&back) < 0)
		return -errno;
	if (ran) {
		if (__sanitizer_finish_switch_fiber)
			__sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
		return 0;
	}
	ran = true;
	if (getcontext(&job) < 0)
		return -errno;
	job.uc_stack.ss_sp = stack_lo;
	job.uc_stack.ss_size = DUMP_STACK_SIZE;
	job.uc_link = &back;
	makecontext(&job, run_job, 0);
	if (__sanitizer_start_switch_fiber)
		__sanitizer_start_switch_fiber(&fake_stack, stack_lo, DUMP_STACK_SIZE);
	setcontext(&job);
	return -errno; /* not reached: setcontext fails only on a bad context */
}

/* ---- memory: a bump allocator over mappings of its own ----------------------------------- */

static struct {
	char *cur, *end;
} arena;

static void *arena_alloc(void *ctx, size_t size)
{
	const size_t align = alignof(max_align_t);

	(void)ctx;
	size = (size + align - 1) & ~(align - 1);
	if ((size_t)(arena.end - arena.cur) < size) {
		size_t page = page_size();
		size_t len = size > ARENA_CHUNK ? (size + page - 1) & ~(page - 1) : ARENA_CHUNK;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		arena.cur = p;
		arena.end = p + len;
	}
	void *p = arena.cur;
	arena.cur += size;
	return p;
}

/* Nothing is given back: the process ends right after the dump. */
static void arena_free(void *ctx, void *p)
{
	(void)ctx;
	(void)p;
}

void onnxhook_sigarena_use(bool on)
{
	static const struct onnxhook_allocator a = {arena_alloc, arena_free, NULL};

	onnxhook_set_allocator(on ? &a : NULL);
}
