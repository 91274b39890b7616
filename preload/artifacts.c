/* SPDX-License-Identifier: MIT */
/* Provenance of the model (which program, which host library) and the files written beside it. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts.h"
#include "elfread.h"
#include "hook.h"

/* ---- provenance -------------------------------------------------------------------------- */

/* s appended to the growing string *out, shell-quoted when it holds anything but plain word
 * characters, so the command can be pasted back into a shell. */
static int append_quoted(char **out, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + 4 * strlen(s) + 4;
	bool plain = *s != '\0';

	for (const char *p = s; *p && plain; p++)
		plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			strchr("_@%+=:,./-", *p);
	if (need > *cap) {
		size_t cap2 = need * 2;
		char *p = realloc(*out, cap2);
		if (!p)
			return -ENOMEM;
		*out = p;
		*cap = cap2;
	}
	char *o = *out + *len;
	if (*len)
		*o++ = ' ';
	if (plain) {
		o = stpcpy(o, s);
	} else {
		*o++ = '\'';
		for (const char *p = s; *p; p++)
			o = *p == '\'' ? stpcpy(o, "'\\''") : (*o = *p, o + 1);
		*o++ = '\'';
	}
	*o = '\0';
	*len = (size_t)(o - *out);
	return 0;
}

/* /proc/self/cmdline: the arguments, NUL-separated. */
static char *command_line(void)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	char *raw = NULL, *out = NULL;
	size_t n = 0, cap = 0, len = 0, ocap = 0;
	ssize_t k;

	if (fd < 0)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			char *p = realloc(raw, cap = n + 65536);
			if (!p)
				goto out;
			raw = p;
		}
		k = read(fd, raw + n, 4096);
		if (k > 0)
			n += (size_t)k;
	} while (k > 0 || (k < 0 && errno == EINTR));
	if (k < 0 || n == 0)
		goto out;
	raw[n] = '\0';
	for (size_t i = 0; i < n; i += strlen(raw + i) + 1) {
		if (append_quoted(&out, &len, &ocap, raw + i) < 0) {
			free(out);
			out = NULL;
			break;
		}
	}
out:
	close(fd);
	free(raw);
	return out;
}

struct object {
	uintptr_t addr;
	struct onnxhook_object *out;
};

/* The loaded object holding o->addr: its path and the build-id of its PT_NOTE segments. */
static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct object *q = data;
	struct onnxhook_object *o = q->out;
	bool mine = false;
	uintptr_t span_lo = UINTPTR_MAX, span_hi = 0;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + p->p_vaddr;
		if (p->p_type != PT_LOAD)
			continue;
		mine = mine || (q->addr >= lo && q->addr - lo < p->p_memsz);
		span_lo = lo < span_lo ? lo : span_lo;
		span_hi = lo + p->p_memsz > span_hi ? lo + p->p_memsz : span_hi;
	}
	if (!mine)
		return 0;
	o->lo = span_lo;
	o->hi = span_hi;
	/* The canonical path: the same library reached through an rpath with ".." or a symlink
	 * is named the same in every trace. The main program has no name here. */
	const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
	if (!realpath(name, o->path))
		snprintf(o->path, sizeof(o->path), "%s", name);
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type == PT_NOTE && !o->build_id[0])
			onnxhook_elf_build_id((const void *)(info->dlpi_addr + p->p_vaddr), p->p_memsz,
					      p->p_align == 8 ? 8 : 4, o->build_id, sizeof(o->build_id));
	}
	return 1;
}

bool onnxhook_object_of(const void *addr, struct onnxhook_object *o)
{
	struct object q = {(uintptr_t)addr, o};

	memset(o, 0, sizeof(*o));
	if (addr)
		dl_iterate_phdr(find_object, &q);
	return o->hi != 0;
}

/* The same from a signal handler, for provenance: dl_iterate_phdr takes the dynamic linker's
 * lock and realpath may allocate, and the handler may have interrupted either. The kernel's
 * list of mappings names each one's file by its canonical path (what realpath gives), and the
 * object's ELF header and notes are in its mappings: reading both takes no lock of ours. */
struct maps_reader {
	int fd;
	bool eof;
	size_t len, pos;
	char buf[8192];
};

struct maps_entry {
	uintptr_t lo, hi, off;
	bool readable;
	uintptr_t dev, inode; /* dev: major << 32 | minor */
	char *path;           /* "" for anonymous memory */
};

/* The next line, NUL-terminated in place; false at the end. A line longer than the buffer is
 * dropped (its tail does not parse as a mapping). */
static bool maps_line(struct maps_reader *r, char **line)
{
	for (;;) {
		char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl) {
			*nl = '\0';
			*line = r->buf + r->pos;
			r->pos = (size_t)(nl + 1 - r->buf);
			return true;
		}
		if (r->eof)
			return false;
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
		if (r->len == sizeof(r->buf))
			r->len = 0;
		ssize_t k = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (k > 0)
			r->len += (size_t)k;
		else if (k == 0 || errno != EINTR)
			r->eof = true;
	}
}

static char *hex(char *p, uintptr_t *v)
{
	char *start = p;

	*v = 0;
	for (;; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
		if (d < 0)
			return p > start ? p : NULL;
		*v = *v << 4 | (uintptr_t)d;
	}
}

/* "lo-hi perms offset major:minor inode   path" */
static bool maps_parse(char *p, struct maps_entry *e)
{
	uintptr_t major, minor;

	if (!(p = hex(p, &e->lo)) || *p++ != '-' || !(p = hex(p, &e->hi)) || *p++ != ' ')
		return false;
	e->readable = *p == 'r';
	while (*p && *p != ' ')
		p++;
	if (*p++ != ' ' || !(p = hex(p, &e->off)) || *p++ != ' ' || !(p = hex(p, &major)) ||
	    *p++ != ':' || !(p = hex(p, &minor)) || *p++ != ' ')
		return false;
	e->dev = major << 32 | minor;
	e->inode = 0;
	for (; *p >= '0' && *p <= '9'; p++)
		e->inode = e->inode * 10 + (uintptr_t)(*p - '0');
	while (*p == ' ')
		p++;
	e->path = p;
	return true;
}

static bool maps_open(struct maps_reader *r)
{
	r->fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	r->eof = false;
	r->len = r->pos = 0;
	return r->fd >= 0;
}

#define MAX_RANGES 16

/* Whether [p, p + len) lies in one of the object's readable mappings. */
static bool readable(const uintptr_t (*ranges)[2], int n, uintptr_t p, size_t len)
{
	for (int i = 0; i < n; i++)
		if (p >= ranges[i][0] && len <= ranges[i][1] - p)
			return true;
	return false;
}

/* The object's image from its first byte: read only where it is mapped readable. */
struct image {
	uintptr_t base;
	const uintptr_t (*ranges)[2];
	int n;
};

static size_t image_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	const struct image *im = ctx;

	if (off > UINTPTR_MAX - im->base || !readable(im->ranges, im->n, im->base + (uintptr_t)off, len))
		return 0;
	memcpy(buf, (const void *)(im->base + (uintptr_t)off), len);
	return len;
}

/* The build-id from the object's own ELF header and PT_NOTE segments, as they are mapped. */
static void mapped_build_id(struct onnxhook_object *o, uintptr_t base, const uintptr_t (*ranges)[2],
			    int n)
{
	struct image im = {base, ranges, n};
	struct onnxhook_elf e;
	struct onnxhook_elf_phdr ph;
	uintptr_t bias = 0;
	bool found = false;

	if (onnxhook_elf_open(&e, image_read, &im) < 0)
		return;
	for (unsigned i = 0; i < e.phnum && !found; i++) {
		/* At file offset 0, its address is page-aligned: the mapping starts there. */
		if (onnxhook_elf_phdr_at(&e, i, &ph) && ph.type == PT_LOAD && ph.offset == 0) {
			bias = base - (uintptr_t)ph.vaddr;
			found = true;
		}
	}
	for (unsigned i = 0; found && i < e.phnum && !o->build_id[0]; i++) {
		if (!onnxhook_elf_phdr_at(&e, i, &ph) || ph.type != PT_NOTE)
			continue;
		uintptr_t at = bias + (uintptr_t)ph.vaddr;
		if (readable(ranges, n, at, ph.memsz))
			onnxhook_elf_build_id((const void *)at, ph.memsz, ph.align == 8 ? 8 : 4, o->build_id,
					      sizeof(o->build_id));
	}
}

static bool object_of_signal_safe(const void *addr, struct onnxhook_object *o)
{
	struct maps_reader r;
	struct maps_entry e;
	uintptr_t a = (uintptr_t)addr, dev = 0, inode = 0, base = 0, ranges[MAX_RANGES][2];
	int n = 0;
	char *line;

	memset(o, 0, sizeof(*o));
	if (!addr || !maps_open(&r))
		return false;
	while (!inode && maps_line(&r, &line)) {
		if (maps_parse(line, &e) && a >= e.lo && a < e.hi && e.inode && e.path[0] == '/') {
			size_t len = strlen(e.path), del = strlen(" (deleted)");
			if (len > del && !strcmp(e.path + len - del, " (deleted)"))
				len -= del;
			if (len >= sizeof(o->path))
				break;
			memcpy(o->path, e.path, len);
			dev = e.dev;
			inode = e.inode;
		}
	}
	close(r.fd);
	if (!inode || !maps_open(&r))
		return false;
	/* Every mapping of that file: the one at file offset 0 holds the ELF header. */
	while (maps_line(&r, &line)) {
		if (!maps_parse(line, &e) || e.dev != dev || e.inode != inode)
			continue;
		if (!o->lo || e.lo < o->lo)
			o->lo = e.lo;
		if (e.hi > o->hi)
			o->hi = e.hi;
		if (e.off == 0 && !base)
			base = e.lo;
		if (e.readable && n < MAX_RANGES) {
			ranges[n][0] = e.lo;
			ranges[n++][1] = e.hi;
		}
	}
	close(r.fd);
	if (base)
		mapped_build_id(o, base, (const uintptr_t(*)[2])ranges, n);
	return o->hi != 0;
}

/* The real function a node's host call went to, from the hosts' symbol tables. */
static void *real_function(const char *label)
{
	const struct onnxhook_symbol *s = label ? onnxhook_host_symbol(label) : NULL;

	return s ? __atomic_load_n(s->real, __ATOMIC_ACQUIRE) : NULL;
}

/* s appended to a ", "-separated list unless listed already: whether it was appended. */
static bool list_add(char *list, size_t len, const char *s, bool dedup)
{
	size_t n = strlen(list), k = strlen(s);

	for (const char *p = list; dedup && (p = strstr(p, s)); p += k)
		if ((p == list || (p - list >= 2 && p[-2] == ',')) && (p[k] == ',' || p[k] == '\0'))
			return false;
	snprintf(list + n, len - n, "%s%s", n ? ", " : "", s);
	return true;
}

static char *command; /* the command line, read at start-up */

void onnxhook_provenance_init(void)
{
	free(command);
	command = command_line();
}

const struct onnxhook_metadata *onnxhook_provenance(const struct onnxhook_graph *g, size_t *n,
						    bool in_signal)
{
	static struct onnxhook_metadata meta[5];
	static char libraries[2048], build_ids[1024];
	const void *seen[256]; /* more than the hosts hook: beyond, lookups repeat */
	size_t n_seen = 0;
	const char *last = NULL;

	libraries[0] = build_ids[0] = '\0';
	/* Usually one host; a program using two gets both, in the order the graph first calls them.
	 * Each real function is looked up once (a walk of the loaded objects and a realpath), and
	 * a library's build-id ("none" without one) is listed with it, so the lists pair up. */
	for (size_t i = 0; i < g->n_nodes; i++) {
		if (g->nodes[i].label == last)
			continue;
		last = g->nodes[i].label;
		const void *fn = real_function(last);
		size_t k = 0;
		while (k < n_seen && seen[k] != fn)
			k++;
		if (k < n_seen)
			continue;
		if (n_seen < sizeof(seen) / sizeof(seen[0]))
			seen[n_seen++] = fn;
		struct onnxhook_object o;
		if ((onnxhook_located_object(fn, &o, NULL) ||
		     (in_signal ? object_of_signal_safe(fn, &o) : onnxhook_object_of(fn, &o))) &&
		    list_add(libraries, sizeof(libraries), o.path, true))
			list_add(build_ids, sizeof(build_ids), o.build_id[0] ? o.build_id : "none", false);
	}
	meta[0] = (struct onnxhook_metadata){"onnxhook.version", ONNXHOOK_VERSION};
	meta[1] = (struct onnxhook_metadata){"onnxhook.command", command ? command : ""};
	meta[2] = (struct onnxhook_metadata){"onnxhook.host_library", libraries};
	meta[3] = (struct onnxhook_metadata){"onnxhook.host_build_id", build_ids};
	*n = 4;
	/* A host linked into the program: what was located and hooked, and what was not. */
	if (onnxhook_located_summary()[0])
		meta[(*n)++] = (struct onnxhook_metadata){"onnxhook.host_code", onnxhook_located_summary()};
	return meta;
}

/* ---- files beside the model -------------------------------------------------------------- */

static void write_dot(struct onnxhook_graph *g, const struct onnxhook_config *cfg, const char *exe)
{
	char path[4096];
	int r;

	if (onnxhook_path_expand(cfg->dot, getpid(), exe, path, sizeof(path)) < 0) {
		onnxhook_error("ONNXHOOK_DOT='%s' expands to an overlong path; no Graphviz file written", cfg->dot);
		return;
	}
	r = onnxhook_dot_write(g, exe, path);
	if (r < 0)
		onnxhook_error("cannot write the Graphviz file %s: %s (the model is written)", path,
			       onnxhook_output_strerror(r));
	else
		onnxhook_debug("wrote %s", path);
}

static void write_test_data(struct onnxhook_graph *g, const char *model_path)
{
	char dir[4096], why[1024], set[4200];
	const char *slash = strrchr(model_path, '/');
	struct stat sb;
	int r;

	/* Not beside what is written into (/dev/stdout on a file is a regular file, in /dev). */
	if (onnxhook_output_kind(model_path) != ONNXHOOK_OUTPUT_FILE || stat(model_path, &sb) < 0 ||
	    !S_ISREG(sb.st_mode)) {
		onnxhook_warn("no test data written: the model went to %s, not a file in a directory",
			      model_path);
		return;
	}
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash == model_path ? 1 : slash - model_path), model_path);
	r = onnxhook_test_data_write(g, dir, slash ? slash + 1 : model_path, set, sizeof(set), why, sizeof(why));
	if (r == -ENODATA)
		onnxhook_warn("no test data written beside %s: %s", model_path, why);
	else if (r < 0)
		onnxhook_error("cannot write the test data set beside %s: %s (the model is written)", model_path,
			       strerror(-r));
	else if (why[0])
		onnxhook_warn("%s", why);
	else
		onnxhook_debug("wrote %s/%s", dir, set);
}

void onnxhook_write_artifacts(struct onnxhook_graph *g, const struct onnxhook_config *cfg,
			      const char *exe, const char *model_path)
{
	if (cfg->dot[0])
		write_dot(g, cfg, exe);
	if (cfg->test_data)
		write_test_data(g, model_path);
}
