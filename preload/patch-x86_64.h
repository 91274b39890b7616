/* SPDX-License-Identifier: MIT */
/* x86-64 inline hooks: a function's entry is overwritten with a jump to a hook, and a trampoline
 * holds the overwritten instructions, relocated, then a jump back: calling the trampoline runs
 * the original function unchanged. For a host's code linked into an executable, where no
 * symbol lookup reaches it (see DESIGN.md, "Finding a host's code inside an executable"). */
#ifndef ONNXHOOK_PRELOAD_PATCH_X86_64_H
#define ONNXHOOK_PRELOAD_PATCH_X86_64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if !defined(__x86_64__)
#error "the inline hooks are x86-64 code"
#endif

/* The bytes a jump at the entry takes: jmp rel32 to a thunk within ±2 GiB, or, when no memory
 * can be had that near, jmp [rip+0] followed by the absolute address. */
#define ONNXHOOK_PATCH_NEAR 5
#define ONNXHOOK_PATCH_FAR 14

/* One entry point to divert. */
struct onnxhook_patch {
	const char *name;  /* for messages */
	uintptr_t entry;   /* the function's first byte, at run time */
	size_t size;       /* the function's size in bytes */
	const void *hook;  /* where its callers go instead */
	void **real;       /* receives the trampoline before any entry is written (may be NULL) */
	/* out */
	void *trampoline;  /* the function as it was; NULL if refused */
	char why[160];     /* why it was refused ("" if patched) */
};

/* Patches what can be patched, each entry whole or not at all, before any other thread runs:
 * the pages are made writable (not executable), written, and made read+execute again, one
 * mprotect round per run of pages. text_lo..text_hi (0, 0: none), the executable code the
 * entries live in, is searched for branches into the bytes to be overwritten (they refuse the
 * entry). Returns the number patched, or a negative errno when nothing could be (the why of
 * each entry says more). */
int onnxhook_patch_install(struct onnxhook_patch *p, size_t n, uintptr_t text_lo, uintptr_t text_hi);

/* The relocation alone (tests): the instructions of a function of size bytes at code (to run at
 * pc) that cover at least need bytes from its start, rewritten for address out_pc into out (cap
 * bytes), then a jump back to pc + *covered. Refused (-1 and why) when the function is shorter
 * than need, an instruction cannot be decoded or moved (loop, jrcxz, xbegin, a RIP-relative
 * operand or a call that would land beyond ±2 GiB), or a branch in the function goes back into
 * the covered bytes. Returns the bytes written to out. */
ssize_t onnxhook_patch_relocate(const uint8_t *code, uintptr_t pc, size_t size, size_t need,
				uint8_t *out, uintptr_t out_pc, size_t cap, size_t *covered, char *why,
				size_t whylen);

#endif
