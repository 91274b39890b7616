/* SPDX-License-Identifier: MIT */
/* Hosts linked into the program: their functions located by code and patched (hook.h). */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "elfread.h"
#include "hook.h"
#include "hosts.h"
#include "locate.h"
#include "patch-x86_64.h"

#define DECLARE(name, library, hooks) extern const struct onnxhook_symbol onnxhook_##name##_symbols[];
ONNXHOOK_HOSTS(DECLARE)

struct host {
	const char *name, *library, *reference, *reference_build;
	const struct onnxhook_symbol *symbols;
};

#define REFERENCE(name, installed, build)                                                        \
	static const char reference_##name[] = installed, reference_build_##name[] = build;
ONNXHOOK_HOST_REFERENCES(REFERENCE)
#define HOST(name, library, hooks)                                                               \
	{#name, library, reference_##name, reference_build_##name, onnxhook_##name##_symbols},
static const struct host hosts[] = {ONNXHOOK_HOSTS(HOST)};
#define N_HOSTS (sizeof(hosts) / sizeof(hosts[0]))

/* What was patched: read by the hooks' trust checks and the provenance (maybe in a signal
 * handler), written once before main. objects[]: the objects located code was hooked in. */
#define MAX_LOCATED 256
#define MAX_OBJECTS 8
static const void *trampolines[MAX_LOCATED];
static unsigned char trampoline_host[MAX_LOCATED], trampoline_object[MAX_LOCATED];
static size_t n_located, n_objects;
static struct onnxhook_object objects[MAX_OBJECTS];
static struct onnxhook_object refs[N_HOSTS];
static char summary[4096];

bool onnxhook_located_object(const void *fn, struct onnxhook_object *o, struct onnxhook_object *ref)
{
	for (size_t i = 0; fn && i < n_located; i++) {
		if (trampolines[i] != fn)
			continue;
		if (o)
			*o = objects[trampoline_object[i]];
		if (ref)
			*ref = refs[trampoline_host[i]];
		return true;
	}
	return false;
}

const char *onnxhook_located_summary(void)
{
	return summary;
}

/* "libdarknet" of "libdarknet.so" or "/x/libtinynn.so.0.1.0": the name up to ".so". */
static size_t stem_len(const char *base)
{
	const char *so = strstr(base, ".so");

	return so ? (size_t)(so - base) : strlen(base);
}

static const char *base_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The file's name starts with the host library's stem (libtinynn.so.0 → libtinynn). */
static bool names_host(const char *path, const struct host *h)
{
	size_t n = stem_len(h->library);

	return n && !strncmp(base_of(path), h->library, n);
}

/* The objects loaded at start-up, the main program first; those the preload needs are never
 * searched. A host whose own library is among them is marked loaded and not looked for (the usual
 * interposition serves its exports). */
struct target {
	const char *path; /* the library's dlpi_name; NULL for the main program */
	uintptr_t bias, text_lo, text_hi;
	const ElfW(Phdr) *phdr;
	unsigned phnum;
	bool ours; /* the preload itself or a library it needs (libc, its decoder): never searched */
};

struct scan {
	struct target *t;
	size_t n, cap;
	uintptr_t self; /* an address in the preload's code */
	bool loaded[N_HOSTS];
};

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *s = arg;
	struct target t = {s->n ? info->dlpi_name : NULL, info->dlpi_addr, UINTPTR_MAX, 0, info->dlpi_phdr,
			   info->dlpi_phnum, false};

	(void)size;
	for (size_t h = 0; s->n && h < N_HOSTS; h++)
		if (t.path && names_host(t.path, &hosts[h]))
			s->loaded[h] = true;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_LOAD || !(p->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + p->p_vaddr;
		t.text_lo = lo < t.text_lo ? lo : t.text_lo;
		t.text_hi = lo + p->p_memsz > t.text_hi ? lo + p->p_memsz : t.text_hi;
	}
	/* (the vDSO and objects without a file have no path to read; the preload itself is kept,
	 * never searched, whatever its path: LD_PRELOAD may name it relative to the directory) */
	bool skip = s->n && (!t.path || t.path[0] != '/');
	t.ours = s->n && s->self >= t.text_lo && s->self < t.text_hi;
	if (!s->n || t.ours || (!skip && t.text_lo < t.text_hi)) {
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 32;
			struct target *m = realloc(s->t, cap * sizeof(*m));
			if (!m)
				return 1;
			s->t = m;
			s->cap = cap;
		}
		s->t[s->n++] = t;
	}
	return 0;
}

/* The names an object needs (DT_NEEDED), from its dynamic section in memory: fn(name, arg) each. */
static void each_needed(const struct target *t, void (*fn)(const char *name, void *arg), void *arg)
{
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t strtab = 0;

	for (unsigned i = 0; i < t->phnum; i++)
		if (t->phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(t->bias + t->phdr[i].p_vaddr);
	for (const ElfW(Dyn) *d = dyn; d && d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_STRTAB)
			strtab = d->d_un.d_ptr;
	if (!dyn || !strtab)
		return;
	/* The dynamic linker relocates DT_STRTAB in place on x86-64; an address below the load
	 * bias is still the link-time one. */
	if (strtab < t->bias)
		strtab += t->bias;
	for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_NEEDED)
			fn((const char *)strtab + d->d_un.d_val, arg);
}

struct closure {
	struct scan *s;
	bool grew;
};

/* The libraries named name (by file name) are the preload's too. */
static void mark_ours(const char *name, void *arg)
{
	struct closure *c = arg;

	for (size_t k = 1; k < c->s->n; k++)
		if (!c->s->t[k].ours && c->s->t[k].path && !strcmp(base_of(c->s->t[k].path), name))
			c->s->t[k].ours = c->grew = true;
}

/* Marks what the preload needs, and what that needs, as ours: system libraries it chose, which
 * carry no host's code. A library found by another name (a symlink) is searched as usual. */
static void mark_closure(struct scan *s)
{
	struct closure c = {s, true};

	while (c.grew) {
		c.grew = false;
		for (size_t k = 1; k < s->n; k++)
			if (s->t[k].ours)
				each_needed(&s->t[k], mark_ours, &c);
	}
}

/* The GNU build-id of an ELF file, "" if none. */
static void file_build_id(const char *path, char *hex, size_t len)
{
	struct onnxhook_elf e;
	struct onnxhook_elf_phdr ph;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	hex[0] = '\0';
	if (fd < 0)
		return;
	if (onnxhook_elf_open(&e, onnxhook_elf_pread, &fd) == 0)
		for (unsigned i = 0; i < e.phnum && !hex[0]; i++) {
			uint8_t notes[1024];
			if (!onnxhook_elf_phdr_at(&e, i, &ph) || ph.type != PT_NOTE)
				continue;
			size_t n = ph.filesz < sizeof(notes) ? ph.filesz : sizeof(notes);
			n = e.read(e.ctx, ph.offset, notes, n);
			onnxhook_elf_build_id(notes, n, ph.align == 8 ? 8 : 4, hex, len);
		}
	close(fd);
}

/* The next entry of the colon-separated list at *p into buf (empty entries and entries too long
 * for buf skipped); false at the list's end. */
static bool next_entry(const char **p, char *buf, size_t len)
{
	while (*p && **p) {
		const char *at = *p;
		size_t k = strcspn(at, ":");
		*p += k + (at[k] == ':');
		if (k && k < len) {
			memcpy(buf, at, k);
			buf[k] = '\0';
			return true;
		}
	}
	return false;
}

/* Host h's hooked functions' names (calloc'ed, *n of them; NULL when none or out of memory). */
static const char **host_names(const struct host *host, size_t *n)
{
	*n = 0;
	while (host->symbols[*n].name)
		(*n)++;
	const char **names = *n ? calloc(*n, sizeof(*names)) : NULL;
	for (size_t i = 0; names && i < *n; i++)
		names[i] = host->symbols[i].name;
	return names;
}

/* ONNXHOOK_HOST_CODE's entries that cannot be read: one error line each; the others serve. */
static void check_host_code(const char *list)
{
	char path[PATH_MAX];

	for (const char *p = list; next_entry(&p, path, sizeof(path));)
		if (access(path, R_OK) < 0)
			onnxhook_error("ONNXHOOK_HOST_CODE: %s: %s; it is not used", path, strerror(errno));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* s appended to summary. */
static void add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add(const char *fmt, ...)
{
	size_t n = strlen(summary);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(summary + n, sizeof(summary) - n, fmt, ap);
	va_end(ap);
}

/* onnxhook_locate in the program, saying under ONNXHOOK_LOG=debug how it decided. */
static int locate_logged(const struct host *host, const char *ref, const char *target, const char **names,
			 size_t n, struct onnxhook_found *found, char *err, size_t errlen)
{
	struct onnxhook_locate_how how;
	const char *base = base_of(target);
	int r = onnxhook_locate_ex(ref, target, names, n, ONNXHOOK_LOCATE_NO_CACHE, found, &how, err, errlen);

	if (r == 0 && how.by == ONNXHOOK_LOCATE_BY_QUICK_REJECT)
		onnxhook_debug("locate: %s: quick reject in %s (%zu candidates)", host->name, base,
			       how.candidates);
	else if (r == 0)
		onnxhook_debug("locate: %s: whole-code sweep of %s (%zu candidates of the quick reject)",
			       host->name, base, how.candidates);
	return r;
}

/* The first reference that has host h's functions: ONNXHOOK_HOST_CODE's entries in order, then
 * the registry's (installed, then this build tree's). found[] gets what it located; false when
 * no reference is there. */
static bool locate_with(const struct host *host, const char *list, const char *target, const char **names,
			size_t n, struct onnxhook_found *found, char *ref, size_t reflen)
{
	char err[256];

	for (const char *p = list; next_entry(&p, ref, reflen);) {
		if (access(ref, R_OK) < 0 || locate_logged(host, ref, target, names, n, found, err, sizeof(err)) < 0)
			continue; /* not there (said at start-up), or no library of this host */
		for (size_t i = 0; i < n; i++)
			if (found[i].status != ONNXHOOK_NO_REFERENCE)
				return true;
	}
	const char *registry[2] = {host->reference, host->reference_build};
	for (int k = 0; k < 2; k++) {
		if (!registry[k][0] || (k && !strcmp(registry[1], registry[0])) ||
		    access(registry[k], R_OK) < 0)
			continue;
		snprintf(ref, reflen, "%s", registry[k]);
		int r = locate_logged(host, ref, target, names, n, found, err, sizeof(err));
		if (r < 0) {
			onnxhook_debug("%s: not looked for in %s: %s", host->name, target, err);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (found[i].status != ONNXHOOK_NO_REFERENCE)
				return true;
	}
	return false;
}

/* Locates host h's functions in the object t (o: its path and build-id) and patches those found;
 * true when some were hooked (a host's functions are hooked in one object: their real-function
 * slots are one). */
static bool locate_host(size_t h, const char *list, const struct target *t, const struct onnxhook_object *o)
{
	const struct host *host = &hosts[h];
	size_t n;
	char missing[2048] = "", ref[PATH_MAX];
	double t0 = now();
	bool hooked = false;
	/* none for a host that hooks no symbol by name (torch's observer): nothing to locate */
	const char **names = host_names(host, &n);
	if (!names)
		return false;
	struct onnxhook_found *found = calloc(n, sizeof(*found));
	struct onnxhook_patch *patch = calloc(n, sizeof(*patch));
	size_t *which = calloc(n, sizeof(*which));
	if (!found || !patch || !which)
		goto out;
	/* No results cache: every process the preload enters would write one in the user's home. */
	if (!locate_with(host, list, o->path, names, n, found, ref, sizeof(ref)))
		goto out;
	size_t n_patch = 0;
	for (size_t i = 0; i < n; i++) {
		if (found[i].status != ONNXHOOK_FOUND)
			continue;
		struct onnxhook_patch *p = &patch[n_patch];
		p->name = names[i];
		p->entry = t->bias + (uintptr_t)found[i].vaddr;
		p->size = (size_t)found[i].size;
		p->hook = host->symbols[i].hook;
		p->real = host->symbols[i].real;
		which[n_patch++] = i;
	}
	double t_locate = now() - t0;
	if (!n_patch) {
		onnxhook_debug("%s: none of its %zu functions in %s (%.3f s)", host->name, n, o->path,
			       t_locate);
		goto out;
	}
	size_t obj = n_objects && !strcmp(objects[n_objects - 1].path, o->path) ? n_objects - 1 : n_objects;
	if (n_located + n_patch > MAX_LOCATED || obj == MAX_OBJECTS) {
		onnxhook_error("%s: more located functions or objects than onnxhook keeps; nothing patched in %s",
			       host->name, o->path);
		goto out;
	}
	/* Refusals are per entry; the others go ahead. */
	onnxhook_patch_install(patch, n_patch, t->text_lo, t->text_hi);
	size_t n_done = 0;
	for (size_t k = 0; k < n_patch; k++) {
		if (patch[k].trampoline) {
			trampolines[n_located] = patch[k].trampoline;
			trampoline_object[n_located] = (unsigned char)obj;
			trampoline_host[n_located++] = (unsigned char)h;
			n_done++;
		} else {
			found[which[k]].status = ONNXHOOK_NOT_FOUND;
			snprintf(found[which[k]].why, sizeof(found[which[k]].why), "not patched: %s",
				 patch[k].why);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (found[i].status == ONNXHOOK_FOUND)
			continue;
		size_t len = strlen(missing);
		const char *st = onnxhook_found_status_name(found[i].status);
		snprintf(missing + len, sizeof(missing) - len, "%s%s (%s%s%s)", len ? ", " : "", names[i],
			 strncmp(found[i].why, "not patched", 11) ? st : "",
			 found[i].why[0] && strncmp(found[i].why, "not patched", 11) ? ": " : "",
			 found[i].why);
	}
	if (n_done) {
		if (obj == n_objects)
			objects[n_objects++] = *o;
		snprintf(refs[h].path, sizeof(refs[h].path), "%s", ref);
		file_build_id(ref, refs[h].build_id, sizeof(refs[h].build_id));
	}
	add("%s%s: %zu of %zu functions of %s (build-id %s) located in %s (build-id %s) and hooked%s%s",
	    summary[0] ? "; " : "", host->name, n_done, n, ref, refs[h].build_id[0] ? refs[h].build_id : "none",
	    o->path, o->build_id[0] ? o->build_id : "none", missing[0] ? "; not hooked: " : "", missing);
	if (missing[0])
		onnxhook_warn("%s: %zu of %zu hooked functions located in %s and hooked; not hooked: %s",
			      host->name, n_done, n, o->path, missing);
	else
		onnxhook_debug("%s: all %zu functions located in %s and hooked (%.3f s)", host->name, n,
			       o->path, now() - t0);
	hooked = n_done > 0;
out:
	free(names);
	free(found);
	free(patch);
	free(which);
	return hooked;
}

/* Adds host h's functions to the in-memory reject's key, from the first reference that has some,
 * in locate_with's order; false when none has. */
static bool host_key(const struct host *host, const char *list, struct onnxhook_locate_key **key)
{
	char path[PATH_MAX], err[256];
	size_t n;
	bool got = false;
	const char **names = host_names(host, &n);

	if (!names)
		return false;
	/* ONNXHOOK_HOST_CODE's entries, then the registry's: installed, this build tree's */
	const char *registry[2] = {host->reference, host->reference_build};
	for (const char *p = list; !got && next_entry(&p, path, sizeof(path));)
		got = access(path, R_OK) == 0 && onnxhook_locate_key_add(key, path, names, n, err, sizeof(err)) > 0;
	for (int k = 0; !got && k < 2; k++)
		got = registry[k][0] && access(registry[k], R_OK) == 0 &&
		      onnxhook_locate_key_add(key, registry[k], names, n, err, sizeof(err)) > 0;
	free(names);
	return got;
}

void onnxhook_located_init(const struct onnxhook_config *cfg)
{
	struct scan s = {.self = (uintptr_t)onnxhook_located_init};
	const char *list = cfg->host_code;
	bool done[N_HOSTS] = {false};
	struct onnxhook_locate_key *key = NULL;
	struct onnxhook_object *o = malloc(sizeof(*o));
	size_t in_memory = 0, searched = 0, ours = 0;
	double t0 = now();

	check_host_code(list);
	dl_iterate_phdr(scan_object, &s);
	mark_closure(&s);
	/* One key for every host looked for: their functions' sizes and first instructions, from
	 * their references (a host loaded as a library, or without a reference at hand, is not). */
	size_t looked_for = 0;
	for (size_t h = 0; h < N_HOSTS; h++) {
		done[h] = s.loaded[h] || !hosts[h].symbols[0].name || !host_key(&hosts[h], list, &key);
		looked_for += !done[h];
	}
	double t_keys = now() - t0;
	for (size_t k = 0; k < s.n; k++)
		ours += s.t[k].ours;
	for (size_t k = 0; o && looked_for && k < s.n; k++) {
		const struct target *t = &s.t[k];
		if (t->ours)
			continue;
		searched++;
		/* Rejected in memory from its unwind tables and code, its file unread; else located
		 * from its file, host by host. */
		/* (the main program's file is /proc/self/exe unless the dynamic linker was run with
		 * the program as its argument) */
		const char *file = t->path ? t->path
				   : (const void *)getauxval(AT_PHDR) == (const void *)t->phdr ? "/proc/self/exe" : NULL;
		if (!onnxhook_locate_loaded_may_hold(t->phdr, t->phnum, t->bias, file, key)) {
			in_memory++;
			if (!k && onnxhook_log_level() >= ONNXHOOK_LOG_DEBUG) {
				char exe[256];
				onnxhook_exe_name(exe, sizeof(exe));
				for (size_t h = 0; h < N_HOSTS; h++)
					if (!done[h])
						onnxhook_debug("locate: %s: quick reject in %s (unwind tables)",
							       hosts[h].name, exe);
			}
			continue;
		}
		if (t->text_lo >= t->text_hi || !onnxhook_object_of((const void *)t->text_lo, o))
			continue;
		for (size_t h = 0; h < N_HOSTS; h++)
			if (!done[h] && locate_host(h, list, t, o)) {
				done[h] = true;
				looked_for--;
			}
	}
	if (in_memory)
		onnxhook_debug("locate: %zu of %zu objects rejected from their unwind tables (%zu the preload's own, not searched; "
			       "%.3f ms in all, %.3f ms the keys)",
			       in_memory, searched, ours, (now() - t0) * 1e3, t_keys * 1e3);
	onnxhook_locate_key_free(key);
	free(o);
	free(s.t);
}
