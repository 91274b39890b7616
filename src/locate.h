/* SPDX-License-Identifier: MIT */
/* The locator: finds a reference library's functions inside another x86-64 ELF file (a stripped
 * executable with the library's code linked in) by comparing their code.
 *
 * Each wanted function of the reference (by its .dynsym/.symtab entry: address and st_size) is
 * decoded into a normalized instruction stream: an instruction's bytes with its relative branch
 * target and its RIP-relative displacement masked (a GOT load `mov reg, [rip+X]` and the `lea` the
 * linker relaxes it to are one token; a call through the GOT and the direct call it relaxes to are
 * one token); immediates are kept (two functions that differ in one constant stay apart). The
 * target's executable sections are decoded by linear sweep; every instruction boundary whose first
 * instructions hash like a wanted function's is a candidate, verified by comparing the whole
 * function, instruction by instruction. A function is FOUND only when exactly one place matches
 * whole and starts where a function can start (after padding, a return, a jump or a call), and the
 * consistency check passes: every direct call or jump that leaves the function goes, in the
 * target, where the reference's goes: to the place found for the same callee when it was located,
 * to an import of the same name (through either file's PLT), or to code that decodes the same as
 * the reference callee's (its whole body when the reference gives its size, else its first
 * instructions). A target that calls a copy of what the reference imports (a static libc) cannot
 * be checked there: that call is skipped.
 *
 * The decoder is Zydis 4 (libzydis-dev): its decode without operands is fast, and it gives each
 * instruction's raw layout (prefixes, ModRM, the offset and size of its displacement and
 * immediates, which immediate is relative) — exactly what masking needs, with no text formatting.
 *
 * Nothing here takes a lock or touches stdio: it is safe in an LD_PRELOAD constructor before
 * main (it allocates with malloc, maps the files read-only and unmaps them before returning). */
#ifndef ONNXHOOK_LOCATE_H
#define ONNXHOOK_LOCATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum onnxhook_found_status {
	ONNXHOOK_FOUND,        /* one whole, consistent match at vaddr */
	ONNXHOOK_EXPORTED,     /* the target exports the name itself (vaddr is its symbol's) */
	ONNXHOOK_NOT_FOUND,    /* no place in the target matches the whole function */
	ONNXHOOK_AMBIGUOUS,    /* more than one place matches (why says how many) */
	ONNXHOOK_INCONSISTENT, /* one place matches, but a call out of it goes elsewhere */
	ONNXHOOK_NO_REFERENCE, /* the reference has no sized function of that name */
	ONNXHOOK_FOUND_STATUS_COUNT
};

struct onnxhook_found {
	const char *name; /* the caller's names[i] */
	uint64_t vaddr;   /* in the target file, link-time (add the load bias of a PIE / DSO) */
	uint64_t size;    /* the function's size in bytes (the reference's st_size) */
	enum onnxhook_found_status status;
	char why[96];     /* what was found or why not, for a person: "2 places: 0x1234, 0x5678" */
};

/* "found", "exported", "not found", "ambiguous", "inconsistent", "no reference". */
const char *onnxhook_found_status_name(enum onnxhook_found_status status);

enum {
	/* Neither read nor write the cache of results ($XDG_CACHE_HOME/onnxhook, else
	 * ~/.cache/onnxhook), keyed by both files' GNU build-ids. */
	ONNXHOOK_LOCATE_NO_CACHE = 1u << 0,
	/* No quick reject (below): always the sweep of the whole code. */
	ONNXHOOK_LOCATE_NO_QUICK = 1u << 1,
};

/* Looks for `names` (functions of the reference ELF `ref_path`) inside `target_path`'s executable
 * code: fills out[i] for names[i]. Returns 0, or a negative errno with `err` set (one line, naming
 * the file and what is wrong) when either file cannot be read or handled: not ELF (-ENOEXEC), not
 * x86-64 64-bit (-ENOEXEC), no executable section (-ENOEXEC), unreadable (-errno). Never crashes
 * on a malformed file. The results cache is written atomically and ignored when unreadable,
 * corrupt or stale (a file with no build-id is never cached). */
int onnxhook_locate(const char *ref_path, const char *target_path, const char *const *names,
		    size_t n, unsigned flags, struct onnxhook_found *out, char *err, size_t errlen);

/* How onnxhook_locate_ex decided.
 *
 * The quick reject: a function compiled into the target has an FDE in the target's .eh_frame
 * (kept by stripped programs, indexed by .eh_frame_hdr) whose range is its size, the reference's
 * st_size. Only the FDEs of a wanted function's size are compared whole; when none matches, every
 * wanted function is NOT_FOUND ("no function of PROGRAM has its size (N bytes) and code") without decoding
 * the rest of the target, in about a millisecond. When one matches, or the tables are missing,
 * damaged, in a rare encoding, or cover less than half of the code, the whole-code sweep decides
 * as before. */
enum onnxhook_locate_by {
	ONNXHOOK_LOCATE_BY_SWEEP,         /* the whole-code sweep (or nothing to look for) */
	ONNXHOOK_LOCATE_BY_QUICK_REJECT,  /* no wanted function's size and code among the FDEs */
	ONNXHOOK_LOCATE_BY_CACHE,         /* the results cache */
};
struct onnxhook_locate_how {
	enum onnxhook_locate_by by;
	size_t candidates; /* the quick reject's: FDEs of a wanted function's size compared */
};

/* onnxhook_locate, saying in *how (may be NULL) how it decided. */
int onnxhook_locate_ex(const char *ref_path, const char *target_path, const char *const *names,
		       size_t n, unsigned flags, struct onnxhook_found *out,
		       struct onnxhook_locate_how *how, char *err, size_t errlen);

/* Whether the locator can read path (an x86-64 ELF file with code): 0, or a negative errno with
 * err set as onnxhook_locate sets it. */
int onnxhook_locate_check(const char *path, char *err, size_t errlen);

/* The quick reject for objects already loaded (the libraries of a process at start-up), reading
 * their code and unwind tables in memory, no file: a key of the wanted functions (each one's size
 * and first instructions' tokens), from one or more references. */
struct onnxhook_locate_key;

/* Adds the reference's functions names[0..n) to *key (allocated when NULL). How many it added
 * (0: the reference has none of them), or a negative errno with err set (the key is left as it
 * was). */
int onnxhook_locate_key_add(struct onnxhook_locate_key **key, const char *ref_path,
			    const char *const *names, size_t n, char *err, size_t errlen);
void onnxhook_locate_key_free(struct onnxhook_locate_key *key);

/* Whether a loaded object (phdr: its Elf64_Phdr[phnum]; bias: its load bias, as dl_iterate_phdr
 * gives them; path: its file, or NULL) may hold one of the key's functions: false when its
 * .eh_frame_hdr is valid and no FDE in it has a wanted function's size, call-frame instructions and
 * first instructions, if the FDEs cover at least half its code or its code is over 256 KiB (code
 * compiled from C has FDEs where other code has them, when the references have FDEs for every
 * wanted function), or when it has no such table but its code is small (up to 256 KiB) and has no
 * wanted function's first instructions anywhere; true otherwise (onnxhook_locate on its file then
 * decides). The unwind tables are read from path through a mapping of its own, unmapped after
 * (the object's mapped pages would stay in the process's RSS), when its header is the object's;
 * else, and code, from memory. */
bool onnxhook_locate_loaded_may_hold(const void *phdr, unsigned phnum, uintptr_t bias, const char *path,
				     const struct onnxhook_locate_key *key);

/* --- the matcher's pieces, for the unit tests ------------------------------------------------ */

/* The normalized token of the x86-64 instruction at code[0..len): its length in *ilen (0 when it
 * does not decode). Two instructions have the same token when they are the same but for a
 * relative branch target or a RIP-relative displacement (and a GOT load vs its lea). */
uint64_t onnxhook_locate_token(const uint8_t *code, size_t len, unsigned *ilen);

/* Locates in memory: `ref` holds code at [ref_base, ref_base + ref_len), `target` likewise; each
 * wanted function is ref_funcs[i] = {vaddr, size} of the reference. No calls are checked (no
 * symbols). Fills out[i] (name left as given). For the unit tests of the matcher. */
struct onnxhook_locate_func {
	uint64_t vaddr, size;
};
int onnxhook_locate_code(const uint8_t *ref, uint64_t ref_base, size_t ref_len,
			 const uint8_t *target, uint64_t target_base, size_t target_len,
			 const struct onnxhook_locate_func *ref_funcs, size_t n,
			 struct onnxhook_found *out);

#ifdef __cplusplus
}
#endif

#endif
