/* SPDX-License-Identifier: MIT */
/* Call stacks of recorded calls (libunwind): node names from the calling function, the way
 * PyTorch names nodes by module path, and the whole stack in each node's doc_string. */
#include <dlfcn.h>
#define UNW_LOCAL_ONLY /* this process only: the small, fast local unwinder */
#include <libunwind.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "util.h"

#define STACK_DEPTH 16     /* frames captured, ours included */
#define STACK_SHOWN 8      /* frames kept in a doc_string */
#define SITES_PER_CALL 64 /* call sites remembered per function instance */

/* A function that made recorded calls, and the instance of it being recorded: a new instance
 * starts when it is called from elsewhere (its callers' frames differ) or a call site of it is
 * seen again (the next call of it, e.g. from a loop). */
struct stack_fn {
	char name[80];   /* "basic_block", or "resnet18+0x1a40" where the binary is stripped */
	uint32_t instance;
	bool used;
	uint64_t outer;  /* hash of the callers' frames of the current instance */
	int n_sites;
	uintptr_t sites[SITES_PER_CALL];
};

/* One return address: where it is, in text for a doc_string, and its function. */
struct stack_frame {
	uintptr_t ip;
	uint32_t fn;
	char *text; /* "basic_block (resnet18+0x1a2b)" */
};

/* A whole stack's doc_string, kept for the life of the process (nodes point at it). */
struct stack_doc {
	int n;
	uintptr_t ips[STACK_SHOWN];
	char *text;
};

struct stack_module {
	uintptr_t bias;
	struct onnxhook_elfsyms syms;
	bool loaded;
	char name[64]; /* file name, "resnet18" */
};

static struct {
	struct stack_frame *frames;
	size_t n_frames, cap_frames;
	struct onnxhook_hmap by_ip;
	struct stack_fn *fns;
	size_t n_fns, cap_fns;
	struct stack_doc *docs;
	size_t n_docs, cap_docs;
	struct onnxhook_hmap by_stack;
	struct stack_module modules[32];
	int n_modules;
	uintptr_t own_lo, own_hi; /* our own module's code: not the caller */
	bool ready, broken;
} st;

static int own_range(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t self = (uintptr_t)data, lo = UINTPTR_MAX, hi = 0;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		lo = a < lo ? a : lo;
		hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
	}
	if (self < lo || self >= hi)
		return 0;
	st.own_lo = lo;
	st.own_hi = hi;
	return 1;
}

static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return p;
	size_t c = *cap ? *cap * 2 : 64;
	void *q = realloc(p, c * size);
	if (q)
		*cap = c;
	return q;
}

static struct stack_module *module_of(struct link_map *lm)
{
	for (int i = 0; i < st.n_modules; i++)
		if (st.modules[i].bias == lm->l_addr)
			return &st.modules[i];
	if (st.n_modules == (int)(sizeof(st.modules) / sizeof(st.modules[0])))
		return NULL;
	struct stack_module *m = &st.modules[st.n_modules++];
	char exe[PATH_MAX];
	const char *path = lm->l_name;
	if (!path || !*path) { /* the main program */
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = '\0';
		path = exe;
	}
	const char *base = strrchr(path, '/');
	snprintf(m->name, sizeof(m->name), "%.63s", base ? base + 1 : path);
	m->bias = lm->l_addr;
	/* Read from the file itself: a stripped binary still has its exported names. */
	m->loaded = onnxhook_elfsyms_load(&m->syms, path[0] ? path : "/proc/self/exe") == 0;
	return m;
}

/* The function a return address lies in: its symbol (clone suffixes like ".constprop.0"
 * dropped), else its start from the unwind tables as "module+0xstart" (stable run to run). */
static uint32_t function_of(uintptr_t ip, char *text, size_t len)
{
	Dl_info info;
	struct link_map *lm = NULL;
	char name[80] = "";
	uint64_t start = 0;
	const char *sym = NULL;

	if (!dladdr1((void *)(ip - 1), &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm) {
		snprintf(name, sizeof(name), "unknown");
		snprintf(text, len, "unknown");
	} else {
		struct stack_module *m = module_of(lm);
		const char *mod = m ? m->name : "?";
		uint64_t vaddr = ip - lm->l_addr;
		if (m && m->loaded)
			sym = onnxhook_elfsyms_find(&m->syms, vaddr - 1, &start);
		if (!sym && info.dli_sname && info.dli_saddr) {
			sym = info.dli_sname;
			start = (uintptr_t)info.dli_saddr - lm->l_addr;
		}
		if (sym) {
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(sym, "."), sym);
			snprintf(text, len, "%s+0x%llx (%s+0x%llx)", sym, (unsigned long long)(vaddr - start),
				 mod, (unsigned long long)vaddr);
		} else {
			unw_proc_info_t pi;
			if (unw_get_proc_info_by_ip(unw_local_addr_space, ip - 1, &pi, NULL) == 0 && pi.start_ip)
				snprintf(name, sizeof(name), "%s+0x%llx", mod,
					 (unsigned long long)(pi.start_ip - lm->l_addr));
			else
				snprintf(name, sizeof(name), "%s+0x%llx", mod, (unsigned long long)vaddr);
			snprintf(text, len, "%s (%s+0x%llx)", name, mod, (unsigned long long)vaddr);
		}
	}
	for (size_t i = 0; i < st.n_fns; i++)
		if (!strcmp(st.fns[i].name, name))
			return (uint32_t)i;
	struct stack_fn *fns = grow(st.fns, &st.cap_fns, st.n_fns, sizeof(*fns));
	if (!fns)
		return ONNXHOOK_NONE;
	st.fns = fns;
	memset(&fns[st.n_fns], 0, sizeof(fns[0]));
	snprintf(fns[st.n_fns].name, sizeof(fns[0].name), "%s", name);
	return (uint32_t)st.n_fns++;
}

static struct stack_frame *frame_of(uintptr_t ip)
{
	size_t it = SIZE_MAX;
	uint32_t i;
	char text[256];

	while ((i = onnxhook_hmap_find(&st.by_ip, ip, &it)) != ONNXHOOK_NONE)
		if (st.frames[i].ip == ip)
			return &st.frames[i];
	struct stack_frame *frames = grow(st.frames, &st.cap_frames, st.n_frames, sizeof(*frames));
	if (!frames)
		return NULL;
	st.frames = frames;
	uint32_t fn = function_of(ip, text, sizeof(text));
	char *copy = strdup(text);
	if (fn == ONNXHOOK_NONE || !copy || onnxhook_hmap_put(&st.by_ip, ip, (uint32_t)st.n_frames) < 0) {
		free(copy);
		return NULL;
	}
	frames[st.n_frames] = (struct stack_frame){ip, fn, copy};
	return &frames[st.n_frames++];
}

/* One string per distinct stack: a loop calling the same layer makes it once. */
static const char *doc_of(const uintptr_t *ips, int n)
{
	uint64_t key = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, ips, (size_t)n * sizeof(*ips));
	size_t it = SIZE_MAX;
	uint32_t i;
	char text[STACK_SHOWN * 160];
	size_t o = 0;

	while ((i = onnxhook_hmap_find(&st.by_stack, key, &it)) != ONNXHOOK_NONE)
		if (st.docs[i].n == n && !memcmp(st.docs[i].ips, ips, (size_t)n * sizeof(*ips)))
			return st.docs[i].text;
	text[0] = '\0';
	for (int k = 0; k < n && o < sizeof(text); k++) {
		struct stack_frame *f = frame_of(ips[k]);
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s", k ? "\n" : "", f ? f->text : "?");
	}
	struct stack_doc *docs = grow(st.docs, &st.cap_docs, st.n_docs, sizeof(*docs));
	if (!docs)
		return NULL;
	st.docs = docs;
	struct stack_doc *d = &docs[st.n_docs];
	d->n = n;
	memcpy(d->ips, ips, (size_t)n * sizeof(*ips));
	if (!(d->text = strdup(text)) || onnxhook_hmap_put(&st.by_stack, key, (uint32_t)st.n_docs) < 0) {
		free(d->text);
		return NULL;
	}
	st.n_docs++;
	return d->text;
}

void onnxhook_stack_scope(struct onnxhook_call *c)
{
	void *raw[STACK_DEPTH];
	uintptr_t ips[STACK_DEPTH];
	int n = 0, got;

	if (st.broken)
		return;
	if (!st.ready) {
		dl_iterate_phdr(own_range, (void *)(uintptr_t)onnxhook_stack_scope);
		st.ready = true;
	}
	got = unw_backtrace(raw, STACK_DEPTH);
	for (int i = 0; i < got; i++) {
		uintptr_t ip = (uintptr_t)raw[i];
		if (n == 0 && ip >= st.own_lo && ip < st.own_hi)
			continue; /* our own frames: the hook is not the caller */
		if (n < STACK_SHOWN)
			ips[n++] = ip;
	}
	if (n == 0)
		return;
	struct stack_frame *f = frame_of(ips[0]);
	if (!f) {
		st.broken = true; /* out of memory: names fall back to "<Op>_<k>" */
		return;
	}
	struct stack_fn *fn = &st.fns[f->fn];
	uint64_t outer = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, ips + 1, (size_t)(n - 1) * sizeof(*ips));
	bool seen = false;
	for (int i = 0; i < fn->n_sites && !seen; i++)
		seen = fn->sites[i] == ips[0];
	if (!fn->used || fn->outer != outer || seen || fn->n_sites == SITES_PER_CALL) {
		fn->instance += fn->used;
		fn->used = true;
		fn->outer = outer;
		fn->n_sites = 0;
	}
	fn->sites[fn->n_sites++] = ips[0];

	char scope[sizeof(c->scope)];
	/* "<function>_<instance>" without printf: this runs on every recorded call. */
	size_t o = onnxhook_append(scope, sizeof(scope), 0, fn->name);
	onnxhook_append_u(scope, sizeof(scope), onnxhook_append(scope, sizeof(scope), o, "_"), fn->instance);
	onnxhook_call_set_scope(c, scope, doc_of(ips, n));
}

void onnxhook_stack_reset(void)
{
	for (size_t i = 0; i < st.n_fns; i++) {
		st.fns[i].instance = 0;
		st.fns[i].used = false;
		st.fns[i].n_sites = 0;
	}
}
