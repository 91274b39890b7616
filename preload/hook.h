/* SPDX-License-Identifier: MIT */
/* Interposition machinery shared by the host files (one file per host library). */
#ifndef ONNXHOOK_PRELOAD_HOOK_H
#define ONNXHOOK_PRELOAD_HOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "onnxhook.h"

/* Host files may be C or C++. */
#ifdef __cplusplus
extern "C" {
#endif

#define ONNXHOOK_EXPORT __attribute__((visibility("default")))

/* The address of our own definition of an exported symbol: taking `&name` inside the module
 * goes through the GOT and finds whoever comes first (ASan interposes _exit, sigaction…). */
#define ONNXHOOK_LOCAL_ALIAS(name)                                                              \
	_Pragma("GCC diagnostic push")                                                           \
	_Pragma("GCC diagnostic ignored \"-Wpragmas\"")                                          \
	_Pragma("GCC diagnostic ignored \"-Wmissing-attributes\"")                               \
	extern __typeof(name) onnxhook_local_##name                                             \
		__attribute__((alias(#name), visibility("hidden")));                             \
	_Pragma("GCC diagnostic pop")

/* The real definition of a hooked symbol (next in lookup order after us). Missing means the
 * program could not have linked without us: say so and exit as the dynamic linker would. */
void *onnxhook_resolve(const char *symbol);

/* Guard around one hooked call. enter() is true only for the outermost hooked call on this
 * thread while recording is on; the host's calls of its own exported functions from inside a
 * layer pass through unrecorded. Call leave() iff enter() returned true. */
extern __thread int onnxhook_in_hook __attribute__((tls_model("initial-exec")));
/* Whether recording is on: a bool read and written atomically (__atomic builtins, which C and C++
 * share; hook.c). */
extern bool onnxhook_recording;
static inline bool onnxhook_is_recording(void)
{
	return __atomic_load_n(&onnxhook_recording, __ATOMIC_RELAXED);
}
/* Inline: after capture this is all a hook costs (one relaxed load) besides the real call. */
static inline bool onnxhook_enter(void)
{
	if (!onnxhook_is_recording() || onnxhook_in_hook)
		return false;
	onnxhook_in_hook = 1;
	return true;
}
static inline void onnxhook_leave(void)
{
	onnxhook_in_hook = 0;
}

/* Record one successful host call. begin() returns false when recording has stopped (then
 * do nothing); otherwise it holds the recorder lock until end(), which commits. The real
 * function has already returned: the lock is never held while host code runs. */
bool onnxhook_record_begin(struct onnxhook_call *c, const char *symbol);
void onnxhook_record_end(struct onnxhook_call *c);
/* The same for a host whose callers' frames name nothing (an interpreter's, or the library's
 * own dispatch: the torch host): no call stack is taken, nodes are "<Op>_<k>". */
bool onnxhook_record_begin_unnamed(struct onnxhook_call *c, const char *symbol);
/* Before the real call: record_begin() … record_end() between checking(true) and
 * checking(false) is a check of the call's reads (onnxhook_call_begin_check): memory that
 * changed since its producer wrote it leaves the map, before an in-place op overwrites the
 * evidence. Hosts run their record function so, only on arguments they can safely look at. */
void onnxhook_checking(bool on);

/* alloc.c → the recorder: the program released [p, p + n) / moved it to to. */
void onnxhook_memory_released(const void *p, size_t n);
void onnxhook_memory_moved(const void *from, size_t n, const void *to);
/* A move the allocator makes in its real call (realloc, mremap): begin() before it holds the
 * recorder when [p, p + n) may hold recorded values, so no other thread can be given the old
 * place and record into it before those values have followed the block; end() applies what
 * happened ([p, p + n) released, or moved to `to`) and lets go. With begin() false, end()
 * reports as the two functions above do. */
struct onnxhook_memory_note {
	const void *p;
	size_t n;
	const void *to; /* NULL: released */
};
bool onnxhook_memory_move_begin(const void *p, size_t n);
void onnxhook_memory_move_end(bool held, const struct onnxhook_memory_note *notes, size_t k);
/* False when [p, p + n) holds no recorded value for sure (a few loads, no lock). */
bool onnxhook_memory_followed(const void *p, size_t n);

/* True once after a record_end() that found the call starting a pass which is to be recorded
 * afresh: the hook records the same call again. */
bool onnxhook_record_again(void);

/* The host's network-level entry point was called: the next recorded call starts a pass. */
void onnxhook_pass_boundary(void);

/* A host layer was recorded as a custom-domain node: at exit, one warning lists them all. */
void onnxhook_note_unmapped(const char *what);

/* Every exit path: write the model once if this process recorded anything. Called from
 * inside a signal handler (an exit path the handler took), it does what finish_from_signal
 * does. */
void onnxhook_finish(void);
/* The same from a handler of signal sig (-1: a handler of an unknown signal), for a signal
 * that ends the process: it neither allocates with malloc nor waits for a lock, and runs on a
 * stack of its own (sigsafe.c). It gives up with one error line (false) if the recorder is busy
 * or memory runs out. Only the model is written (no dot file or test data; after a crash such
 * as SIGSEGV no provenance either), with its static batch. */
bool onnxhook_finish_from_signal(int sig);

/* stack.c (ONNXHOOK_STACK=1): call stacks name the nodes after the function instance that made
 * the call and give them the stack as doc_string. capture() unwinds the caller's stack; it must
 * run before the recorder lock is taken (it may wait for the dynamic linker's locks, see
 * stack.c). scope() applies it to the call, with the recorder lock held. reset() starts the
 * instance numbering over (a pass recorded afresh); atfork() is called from the recorder's fork
 * handlers after rec_lock (0 prepare, 1 parent, 2 child). */
#define ONNXHOOK_STACK_SHOWN 8 /* frames kept, innermost first */
struct onnxhook_stack {
	int n;
	uintptr_t ips[ONNXHOOK_STACK_SHOWN];
	uint32_t frames[ONNXHOOK_STACK_SHOWN];
	const char *doc; /* the doc_string (lives as long as the process) */
};
void onnxhook_stack_capture(struct onnxhook_stack *s);
void onnxhook_stack_scope(struct onnxhook_call *c, const struct onnxhook_stack *s);
void onnxhook_stack_reset(void);
void onnxhook_stack_atfork(int phase);

/* artifacts.c: the loaded object (library or executable) holding addr: its canonical path, GNU
 * build-id (hex, "" if it has none) and the span of its loaded segments [lo, hi). False if no
 * object holds addr. */
struct onnxhook_object {
	char path[4096];
	char build_id[129];
	uintptr_t lo, hi;
};
bool onnxhook_object_of(const void *addr, struct onnxhook_object *o);

/* hook.c: the main program's file name (its last path component; "onnxhook" when it cannot be
 * read). */
void onnxhook_exe_name(char *buf, size_t len);

/* located.c: a host's code linked into the program (no library of its own to interpose): for
 * each host not loaded as a library whose reference library is at hand (the registry's, or
 * ONNXHOOK_HOST_CODE's), its functions found by their code in the executable (src/locate.h) get
 * inline hooks (patch-x86_64.h) to the host's hooks, and its real-function slots the trampolines.
 * init() runs once, from the constructor, before main (no other thread yet). */
void onnxhook_located_init(const struct onnxhook_config *cfg);
/* fn is one of those trampolines: o gets the object its code is in (the executable) and ref the
 * reference library it was matched against (either may be NULL). Safe in a signal handler. */
bool onnxhook_located_object(const void *fn, struct onnxhook_object *o, struct onnxhook_object *ref);
/* For the model's metadata (onnxhook.host_code): per host located, what was and what was not;
 * "" when nothing was. */
const char *onnxhook_located_summary(void);

/* alloc.c: under a sanitizer that owns the allocator, its malloc and free hooks tell us. */
void onnxhook_alloc_init(void);

/* process.c: exit and signal hooks. */
void onnxhook_process_init(const struct onnxhook_config *cfg);
__attribute__((noreturn)) void onnxhook_real_exit(int status);
/* The signal whose handler this thread is running (an exit path called from inside it): the
 * handlers we chain to are known by their signal; any handler on an alternate signal stack
 * counts too (-1: which signal is unknown). 0 outside handlers. */
int onnxhook_in_signal_handler(void);
/* SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT: the process may be corrupt. */
bool onnxhook_is_crash_signal(int sig);

/* sigsafe.c: run_on_own_stack() calls fn(arg) on a stack of its own (1 MiB reserved, a guard
 * page below, mapped on first use) whatever stack the caller is on: 0, or a negative errno if
 * it cannot be mapped. sigarena_use(true) points this thread's core allocations
 * (onnxhook_set_allocator) at mappings of their own, never freed; false restores malloc. Both
 * are safe in a signal handler; one user at a time (the recorder lock). */
int onnxhook_run_on_own_stack(void (*fn)(void *), void *arg);
void onnxhook_sigarena_use(bool on);

#define ONNXHOOK_DEFAULT_MAX_NODES 1000000

/* The process-level symbols the preload defines (exit paths, exec, signals, dlsym, the
 * allocator's release and move). */
#define ONNXHOOK_PROCESS_HOOKS(X)                                                                \
	X(_exit) X(_Exit) X(quick_exit) X(execve) X(execv) X(execvp) X(execvpe) X(fexecve)       \
	X(execveat) X(execl) X(execlp) X(execle) X(signal) X(sigaction) X(dlsym) X(free)          \
	X(realloc) X(reallocarray) X(munmap) X(mremap)
#define ONNXHOOK_DECLARE_LOCAL(name) extern __typeof(name) onnxhook_local_##name;

/* A host's hooked symbols: our definition, and the slot holding the real one. dlsym() on a
 * host library's handle returns the hook and fills the slot (the library may be RTLD_LOCAL,
 * out of RTLD_NEXT's reach). Each host's file defines its table, onnxhook_<host>_symbols[],
 * ending with a NULL name; the host registry (preload/meson.build) lists the hosts. */
struct onnxhook_symbol {
	const char *name;
	void *hook;
	void **real;
};

/* Sanitizer runtimes (ASan) resolve their interceptors with dlsym(RTLD_NEXT, …) before they
 * are initialised: code on that path must run uninstrumented, and must not call functions they
 * intercept (dlopen, strcmp, …). */
#define ONNXHOOK_UNINSTRUMENTED __attribute__((no_sanitize("address", "undefined")))

ONNXHOOK_UNINSTRUMENTED static inline bool onnxhook_same_name(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

/* hosts.c: a library may have been loaded since the last call (the process started, a dlopen):
 * each host defining onnxhook_<name>_loaded() is told, so that one attaching at run time (the
 * torch host registers an observer with its library) does it once its library is there; a host
 * built as a module (module.h) is loaded first, when its library is there and we record. Cheap
 * when nothing was loaded since (one dl_iterate_phdr step). */
void onnxhook_hosts_loaded(void);

/* hosts.c: symbol's entry in the table of the host that hooks it, or NULL. On the
 * uninstrumented path above. */
const struct onnxhook_symbol *onnxhook_host_symbol(const char *symbol);

#ifdef __cplusplus
}
#endif

#endif
