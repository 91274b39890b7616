/* SPDX-License-Identifier: MIT */
/* Call stacks of recorded calls (libunwind): node names from the calling function, the way
 * PyTorch names nodes by module path, and the whole stack in each node's doc_string.
 *
 * Lock order: the dynamic linker's locks (taken by dladdr, dl_iterate_phdr and libunwind's
 * lookups) are never requested while one of ours is held. A library constructor running under
 * the loader's lock may call a hooked layer; if recording then waited for the loader while
 * holding rec_lock or stack_lock, the two threads would deadlock. So capture() unwinds and
 * resolves new addresses before the hook takes rec_lock, holding stack_lock only around table
 * lookups and inserts; scope() runs under rec_lock and only reads the tables. */
#include <dlfcn.h>
#define UNW_LOCAL_ONLY /* this process only: the small, fast local unwinder */
#include <libunwind.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hook.h"
#include "util.h"

#define STACK_DEPTH 12    /* frames unwound: ours (about four), then the ones shown */
#define SITES_PER_CALL 64 /* call sites remembered per function instance */

/* A function that made recorded calls, and the instance of it being recorded: a new instance
 * starts when it is called from elsewhere (its callers' frames differ) or a call site of it is
 * seen again (the next call of it, e.g. from a loop). */
struct stack_fn {
	char name[80];   /* "basic_block", or "resnet18+0x1a40" where the binary is stripped */
	char scope[96];  /* "basic_block_3": name and instance */
	uint32_t instance;
	uint64_t outer;  /* hash of the callers' frames of the current instance */
	int n_sites;     /* 0: no instance yet */
	uintptr_t sites[SITES_PER_CALL];
};

/* One return address: its function, its text in a doc_string, and whether the stack shown
 * ends there (main; the C runtime's start frames are dropped). */
struct stack_frame {
	uintptr_t ip;
	uint32_t fn;
	char *text; /* "basic_block+0xe3 (resnet18+0x1f43)" */
	bool last, runtime;
};

/* A whole stack's doc_string, kept for the life of the process (nodes point at it). */
struct stack_doc {
	int n;
	uintptr_t ips[ONNXHOOK_STACK_SHOWN];
	char *text;
};

/* A stack seen before, by its raw return addresses: the same loop iteration unwinds to the
 * same addresses, and then costs one lookup instead of one per frame. */
struct stack_known {
	int n_raw;
	uintptr_t raw[ONNXHOOK_STACK_SHOWN];
	struct onnxhook_stack s;
};

struct stack_module {
	uintptr_t bias;
	struct onnxhook_elfsyms syms;
	bool loaded;
	bool runtime;  /* libc or the dynamic linker: start-up frames, not the program's */
	char name[64]; /* file name, "resnet18" */
};

static pthread_mutex_t stack_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;
static struct {
	struct stack_frame *frames;
	size_t n_frames, cap_frames;
	struct onnxhook_hmap by_ip;
	struct stack_fn *fns;
	size_t n_fns, cap_fns;
	struct stack_doc *docs;
	size_t n_docs, cap_docs;
	struct onnxhook_hmap by_stack;
	struct stack_known *known;
	size_t n_known, cap_known;
	struct onnxhook_hmap by_raw;
	struct stack_module modules[32];
	int n_modules;
	uintptr_t own_lo, own_hi; /* our own module's code: not the caller */
} st;

static void find_own_range(void)
{
	struct onnxhook_object self;

	if (onnxhook_object_of((const void *)(uintptr_t)find_own_range, &self)) {
		st.own_lo = self.lo;
		st.own_hi = self.hi;
	}
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

/* With stack_lock held (it reads the file: no loader lock). */
static struct stack_module *module_of(const struct link_map *lm)
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
	m->runtime = !strncmp(m->name, "libc.so", 7) || !strncmp(m->name, "ld-linux", 8);
	m->bias = lm->l_addr;
	/* Read from the file itself: a stripped binary still has its exported names. */
	m->loaded = onnxhook_elfsyms_load(&m->syms, path[0] ? path : "/proc/self/exe") == 0;
	return m;
}

/* With stack_lock held. */
static uint32_t function_index(const char *name)
{
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

/* With stack_lock held. */
static uint32_t cached_frame(uintptr_t ip)
{
	size_t it = SIZE_MAX;
	uint32_t i;

	while ((i = onnxhook_hmap_find(&st.by_ip, ip, &it)) != ONNXHOOK_NONE)
		if (st.frames[i].ip == ip)
			return i;
	return ONNXHOOK_NONE;
}

/* A return address seen for the first time: its function's symbol (clone suffixes like
 * ".constprop.0" dropped), else its start from the unwind tables as "module+0xstart" (stable
 * from run to run). Called without any lock of ours: dladdr and libunwind take the loader's. */
static uint32_t resolve_frame(uintptr_t ip)
{
	Dl_info info;
	struct link_map *lm = NULL;
	char name[80] = "unknown", text[256] = "unknown", mod[64] = "?";
	uint64_t start = 0, vaddr = 0;
	const char *sym = NULL;
	bool runtime = false;
	unw_proc_info_t pi;

	bool found = dladdr1((void *)(ip - 1), &info, (void **)&lm, RTLD_DL_LINKMAP) && lm;
	if (found) {
		vaddr = ip - lm->l_addr;
		pthread_mutex_lock(&stack_lock);
		struct stack_module *m = module_of(lm);
		if (m) {
			snprintf(mod, sizeof(mod), "%s", m->name);
			runtime = m->runtime;
			if (m->loaded && (sym = onnxhook_elfsyms_find(&m->syms, vaddr - 1, &start)))
				snprintf(name, sizeof(name), "%.*s", (int)strcspn(sym, "."), sym);
			if (sym)
				snprintf(text, sizeof(text), "%s+0x%llx (%s+0x%llx)", sym,
					 (unsigned long long)(vaddr - start), mod, (unsigned long long)vaddr);
		}
		pthread_mutex_unlock(&stack_lock);
	}
	if (found && !sym && info.dli_sname && info.dli_saddr) {
		start = (uintptr_t)info.dli_saddr - lm->l_addr;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(info.dli_sname, "."), info.dli_sname);
		snprintf(text, sizeof(text), "%s+0x%llx (%s+0x%llx)", info.dli_sname,
			 (unsigned long long)(vaddr - start), mod, (unsigned long long)vaddr);
	} else if (found && !sym) {
		if (unw_get_proc_info_by_ip(unw_local_addr_space, ip - 1, &pi, NULL) == 0 && pi.start_ip)
			vaddr = pi.start_ip - lm->l_addr;
		snprintf(name, sizeof(name), "%s+0x%llx", mod, (unsigned long long)vaddr);
		snprintf(text, sizeof(text), "%s (%s+0x%llx)", name, mod, (unsigned long long)(ip - lm->l_addr));
	}

	char *copy = strdup(text);
	pthread_mutex_lock(&stack_lock);
	uint32_t i = cached_frame(ip); /* another thread may have been quicker */
	if (i == ONNXHOOK_NONE && copy) {
		uint32_t fn = function_index(name);
		struct stack_frame *frames = grow(st.frames, &st.cap_frames, st.n_frames, sizeof(*frames));
		if (fn != ONNXHOOK_NONE && frames &&
		    onnxhook_hmap_put(&st.by_ip, ip, (uint32_t)st.n_frames) == 0) {
			st.frames = frames;
			frames[st.n_frames] = (struct stack_frame){ip, fn, copy, !strcmp(name, "main"), runtime};
			i = (uint32_t)st.n_frames++;
			copy = NULL;
		} else if (frames) {
			st.frames = frames;
		}
	}
	pthread_mutex_unlock(&stack_lock);
	free(copy);
	return i;
}

/* One string per distinct stack, with stack_lock held: a loop calling the same layer makes it
 * once. */
static const char *doc_of(const struct onnxhook_stack *s)
{
	uint64_t key = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, s->ips, (size_t)s->n * sizeof(s->ips[0]));
	size_t it = SIZE_MAX, o = 0;
	uint32_t i;
	char text[ONNXHOOK_STACK_SHOWN * 260];

	while ((i = onnxhook_hmap_find(&st.by_stack, key, &it)) != ONNXHOOK_NONE)
		if (st.docs[i].n == s->n && !memcmp(st.docs[i].ips, s->ips, (size_t)s->n * sizeof(s->ips[0])))
			return st.docs[i].text;
	text[0] = '\0';
	for (int k = 0; k < s->n; k++) {
		o = onnxhook_append(text, sizeof(text), o, k ? "\n" : "");
		o = onnxhook_append(text, sizeof(text), o, st.frames[s->frames[k]].text);
	}
	struct stack_doc *docs = grow(st.docs, &st.cap_docs, st.n_docs, sizeof(*docs));
	if (!docs)
		return NULL;
	st.docs = docs;
	struct stack_doc *d = &docs[st.n_docs];
	d->n = s->n;
	memcpy(d->ips, s->ips, (size_t)s->n * sizeof(s->ips[0]));
	if (!(d->text = strdup(text)) || onnxhook_hmap_put(&st.by_stack, key, (uint32_t)st.n_docs) < 0) {
		free(d->text);
		return NULL;
	}
	st.n_docs++;
	return d->text;
}

/* The frames of a stack not seen before: each resolved once (resolve_frame), then cut at main
 * or the C runtime. */
static void resolve_stack(struct onnxhook_stack *s, const uintptr_t *raw, int n_raw)
{
	s->n = 0;
	for (int i = 0; i < n_raw; i++) {
		pthread_mutex_lock(&stack_lock);
		uint32_t f = cached_frame(raw[i]);
		pthread_mutex_unlock(&stack_lock);
		if (f == ONNXHOOK_NONE && (f = resolve_frame(raw[i])) == ONNXHOOK_NONE) {
			s->n = 0; /* out of memory: names fall back to "<Op>_<k>" */
			return;
		}
		pthread_mutex_lock(&stack_lock);
		bool runtime = st.frames[f].runtime, last = st.frames[f].last;
		pthread_mutex_unlock(&stack_lock);
		/* The C runtime's start frames (__libc_start_main, start_thread) say nothing. */
		if (runtime && s->n > 0)
			break;
		s->ips[s->n] = raw[i];
		s->frames[s->n++] = f;
		if (last)
			break;
	}
}

/* With stack_lock held. */
static const struct stack_known *known_stack(uint64_t key, const uintptr_t *raw, int n_raw)
{
	size_t it = SIZE_MAX;
	uint32_t i;

	while ((i = onnxhook_hmap_find(&st.by_raw, key, &it)) != ONNXHOOK_NONE)
		if (st.known[i].n_raw == n_raw && !memcmp(st.known[i].raw, raw, (size_t)n_raw * sizeof(*raw)))
			return &st.known[i];
	return NULL;
}

void onnxhook_stack_capture(struct onnxhook_stack *s)
{
	void *frames[STACK_DEPTH];
	uintptr_t raw[ONNXHOOK_STACK_SHOWN];
	int got = unw_backtrace(frames, STACK_DEPTH), n_raw = 0;

	pthread_once(&own_once, find_own_range);
	for (int i = 0; i < got && n_raw < ONNXHOOK_STACK_SHOWN; i++) {
		uintptr_t ip = (uintptr_t)frames[i];
		if (n_raw == 0 && ip >= st.own_lo && ip < st.own_hi)
			continue; /* our own frames: the hook is not the caller */
		raw[n_raw++] = ip;
	}
	s->n = 0;
	if (n_raw == 0)
		return;
	uint64_t key = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, raw, (size_t)n_raw * sizeof(*raw));
	pthread_mutex_lock(&stack_lock);
	const struct stack_known *k = known_stack(key, raw, n_raw);
	if (k)
		*s = k->s;
	pthread_mutex_unlock(&stack_lock);
	if (k)
		return;

	resolve_stack(s, raw, n_raw);
	if (s->n == 0)
		return;
	pthread_mutex_lock(&stack_lock);
	s->doc = doc_of(s);
	struct stack_known *known = grow(st.known, &st.cap_known, st.n_known, sizeof(*known));
	if (known) {
		st.known = known;
		if (!known_stack(key, raw, n_raw) &&
		    onnxhook_hmap_put(&st.by_raw, key, (uint32_t)st.n_known) == 0) {
			known[st.n_known].n_raw = n_raw;
			memcpy(known[st.n_known].raw, raw, (size_t)n_raw * sizeof(*raw));
			known[st.n_known++].s = *s;
		}
	}
	pthread_mutex_unlock(&stack_lock);
}

void onnxhook_stack_scope(struct onnxhook_call *c, const struct onnxhook_stack *s)
{
	if (s->n == 0)
		return;
	pthread_mutex_lock(&stack_lock);
	struct stack_fn *fn = &st.fns[st.frames[s->frames[0]].fn];
	uint64_t outer = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, s->ips + 1,
					     (size_t)(s->n - 1) * sizeof(s->ips[0]));
	bool seen = false;
	for (int i = 0; i < fn->n_sites && !seen; i++)
		seen = fn->sites[i] == s->ips[0];
	if (!fn->n_sites || fn->outer != outer || seen || fn->n_sites == SITES_PER_CALL) {
		if (fn->n_sites || fn->scope[0])
			fn->instance++;
		fn->outer = outer;
		fn->n_sites = 0;
		/* "<function>_<instance>", made once per instance, without printf. */
		size_t o = onnxhook_append(fn->scope, sizeof(fn->scope), 0, fn->name);
		onnxhook_append_u(fn->scope, sizeof(fn->scope),
				  onnxhook_append(fn->scope, sizeof(fn->scope), o, "_"), fn->instance);
	}
	fn->sites[fn->n_sites++] = s->ips[0];
	onnxhook_call_set_scope(c, fn->scope, s->doc);
	pthread_mutex_unlock(&stack_lock);
}

void onnxhook_stack_atfork(int phase)
{
	if (phase == 0)
		pthread_mutex_lock(&stack_lock);
	else if (phase == 1)
		pthread_mutex_unlock(&stack_lock);
	else
		pthread_mutex_init(&stack_lock, NULL);
}

void onnxhook_stack_reset(void)
{
	pthread_mutex_lock(&stack_lock);
	for (size_t i = 0; i < st.n_fns; i++) {
		st.fns[i].instance = 0;
		st.fns[i].n_sites = 0;
		st.fns[i].scope[0] = '\0';
	}
	pthread_mutex_unlock(&stack_lock);
}
