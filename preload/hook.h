/* SPDX-License-Identifier: MIT */
/* Interposition machinery shared by the host files (one file per host library). */
#ifndef ONNXHOOK_PRELOAD_HOOK_H
#define ONNXHOOK_PRELOAD_HOOK_H

#include <stdbool.h>

#include "onnxhook.h"

#define ONNXHOOK_EXPORT __attribute__((visibility("default")))

/* The real definition of a hooked symbol (next in lookup order after us). Missing means the
 * program could not have linked without us: say so and exit as the dynamic linker would. */
void *onnxhook_resolve(const char *symbol);

/* Guard around one hooked call. enter() is true only for the outermost hooked call on this
 * thread while recording is on; the host's calls of its own exported functions from inside a
 * layer pass through unrecorded. Call leave() iff enter() returned true. */
bool onnxhook_enter(void);
void onnxhook_leave(void);

/* Record one successful host call. begin() returns false when recording has stopped (then
 * do nothing); otherwise it holds the recorder lock until end(), which commits. The real
 * function has already returned: the lock is never held while host code runs. */
bool onnxhook_record_begin(struct onnxhook_call *c, const char *symbol);
void onnxhook_record_end(struct onnxhook_call *c);
/* True once after a record_end() that found the call starting a pass which is to be recorded
 * afresh: the hook records the same call again. */
bool onnxhook_record_again(void);

/* The host's network-level entry point was called: the next recorded call starts a pass. */
void onnxhook_pass_boundary(void);

/* A host layer was recorded as a custom-domain node: at exit, one warning lists them all. */
void onnxhook_note_unmapped(const char *what);

/* A host's table of hooked symbols, for --list-symbols and the export test. */
struct onnxhook_host {
	const char *name;     /* "tinynn" */
	const char *library;  /* "libtinynn.so.0" */
	const char *const *symbols;
};

#endif
