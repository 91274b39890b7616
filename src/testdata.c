/* SPDX-License-Identifier: MIT */
/* Test data beside the model, the model zoo's way: test_data_set_0/input_N.pb, output_N.pb.
 * Several models share a directory (a launcher's processes, numbered names), so a set says
 * whose it is: every tensor's doc_string names the model's file. The runners read only the
 * tensors' names, types, dims and data, and the set keeps exactly the zoo's files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnxhook.h"
#include "util.h"

#define SET_NAME "test_data_set_0"

int onnxhook_tensor_pack(const struct onnxhook_value *v, const char *name, const char *doc,
			 const void *data, uint8_t **buf, size_t *len)
{
	Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
	int64_t dims[ONNXHOOK_MAX_RANK];

	*buf = NULL;
	*len = 0;
	if (v->shape.rank < 0 || v->shape.rank > ONNXHOOK_MAX_RANK)
		return -EINVAL;
	memcpy(dims, v->shape.dims, (size_t)v->shape.rank * sizeof(dims[0]));
	t.n_dims = (size_t)v->shape.rank;
	t.dims = dims;
	t.has_data_type = 1;
	t.data_type = (int32_t)v->dtype;
	t.name = (char *)name;
	t.doc_string = (char *)doc;
	t.has_raw_data = 1;
	t.raw_data.len = v->nbytes;
	t.raw_data.data = (uint8_t *)data;
	*len = onnx__tensor_proto__get_packed_size(&t);
	if (!(*buf = malloc(*len ? *len : 1)))
		return -ENOMEM;
	onnx__tensor_proto__pack(&t, *buf);
	return 0;
}

static bool ours(const char *name)
{
	unsigned k;
	int end = 0;

	return (sscanf(name, "input_%u.pb%n", &k, &end) == 1 || sscanf(name, "output_%u.pb%n", &k, &end) == 1) &&
	       end > 0 && name[end] == '\0';
}

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(why);

	if (n >= whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why + n, whylen - n, fmt, ap);
	va_end(ap);
}

/* Removes the entry name in dirfd: a symlink or file is unlinked (never followed), a directory
 * loses its files and then itself. only_ours: leave a directory that holds anything but
 * input_N.pb/output_N.pb alone (-ENOTEMPTY): it is not a set we wrote. */
static int remove_entry(int dirfd, const char *name, bool only_ours)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (fd < 0) {
		if (errno != ENOTDIR && errno != ELOOP)
			return -errno;
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	}
	if (!(d = fdopendir(fd))) {
		r = -errno;
		close(fd);
		return r;
	}
	for (int round = only_ours ? 0 : 1; round < 2 && r == 0; round++) {
		rewinddir(d);
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (round == 0 && !ours(e->d_name)) {
				r = -ENOTEMPTY;
				break;
			}
			if (round == 1 && unlinkat(fd, e->d_name, 0) < 0 && r == 0)
				r = -errno;
		}
	}
	closedir(d);
	if (r == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	return r;
}

/* Whether the entry name in dirfd is this model's set: a directory of input_N.pb/output_N.pb
 * files only, whose tensors' doc_string is doc (the smallest file is read). 1: ours; 0: anything
 * else (another model's set, a set of unknown origin, a file, a symlink); -ENOENT: nothing. */
static int owned(int dirfd, const char *name, const char *doc)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 1;
	char best[64] = "";
	off_t best_size = 0;
	struct dirent *e;
	struct stat sb;
	DIR *d;

	if (fd < 0)
		return errno == ENOENT ? -ENOENT : 0;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while (r == 1 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!ours(e->d_name) || strlen(e->d_name) >= sizeof(best) ||
		    fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
			r = 0;
		else if (!best[0] || sb.st_size < best_size) {
			strcpy(best, e->d_name);
			best_size = sb.st_size;
		}
	}
	if (r == 1 && best[0]) {
		int pb = openat(fd, best, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		uint8_t *buf = pb < 0 ? NULL : malloc((size_t)best_size + 1);
		ssize_t n = buf ? pread(pb, buf, (size_t)best_size, 0) : -1;
		Onnx__TensorProto *t = n == best_size ? onnx__tensor_proto__unpack(NULL, (size_t)n, buf) : NULL;
		r = t && t->doc_string && !strcmp(t->doc_string, doc);
		if (t)
			onnx__tensor_proto__free_unpacked(t, NULL);
		free(buf);
		if (pb >= 0)
			close(pb);
	} else {
		r = 0; /* empty: nothing says whose it is */
	}
	closedir(d);
	return r;
}

/* Why the graph cannot give a true test data set, or "" when it can. */
static void missing(const struct onnxhook_graph *g, char *why, size_t whylen)
{
	for (size_t i = 0; i < g->n_values && !why[0]; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind == ONNXHOOK_VALUE_INPUT && v->clobbered)
			say(why, whylen, "input_%u was overwritten in place by %s, the call that first read it, "
			    "before its bytes could be copied", v->ordinal,
			    v->first_consumer != ONNXHOOK_NONE ? g->nodes[v->first_consumer].label : "a host call");
		else if (v->kind == ONNXHOOK_VALUE_INPUT && !v->snapshot)
			say(why, whylen, "no copy of input_%u (out of memory, or test data not enabled)", v->ordinal);
		else if (v->kind == ONNXHOOK_VALUE_NODE && !v->consumers && !v->snapshot)
			say(why, whylen, "no copy of output_%u: %s", v->ordinal,
			    v->written ? "out of memory" : "no host call wrote it to memory");
		else if (g->debug_outputs && v->kind == ONNXHOOK_VALUE_NODE && v->written &&
			 (!v->snapshot || !v->debug_name))
			say(why, whylen, "no copy of the debug output %s (out of memory)",
			    v->debug_name ? v->debug_name : "of a layer");
	}
}

/* Both kinds of tensor into the directory tfd, doc in each; 0 or a negative errno. */
static int write_tensors(const struct onnxhook_graph *g, int tfd, const char *doc)
{
	unsigned n_outputs = 0;

	for (size_t i = 0; i < g->n_values; i++) {
		const struct onnxhook_value *v = &g->values[i];
		bool in = v->kind == ONNXHOOK_VALUE_INPUT;
		if (!in && !(v->kind == ONNXHOOK_VALUE_NODE && !v->consumers))
			continue;
		char name[32], file[40];
		uint8_t *buf;
		size_t len;
		snprintf(name, sizeof(name), "%s_%u", in ? "input" : "output", v->ordinal);
		snprintf(file, sizeof(file), "%s.pb", name);
		int r = onnxhook_tensor_pack(v, name, doc, v->snapshot, &buf, &len);
		if (r < 0)
			return r;
		struct onnxhook_bytes b = {buf, len};
		r = onnxhook_write_new(tfd, file, onnxhook_write_bytes, &b);
		free(buf);
		if (r < 0)
			return r;
		n_outputs += !in;
	}
	/* The debug outputs (every written value, in the model's order after output_N): the bytes
	 * each host call left, under the name the model gives it. */
	for (size_t i = 0; i < g->n_values && g->debug_outputs; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind != ONNXHOOK_VALUE_NODE || !v->written)
			continue;
		char file[40];
		uint8_t *buf;
		size_t len;
		snprintf(file, sizeof(file), "output_%u.pb", n_outputs++);
		int r = onnxhook_tensor_pack(v, v->debug_name, doc, v->snapshot, &buf, &len);
		if (r < 0)
			return r;
		struct onnxhook_bytes b = {buf, len};
		r = onnxhook_write_new(tfd, file, onnxhook_write_bytes, &b);
		free(buf);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The new set tmp takes the place of set atomically when nothing is there or this model's set
 * (doc) is, which is exchanged out and then removed; -EEXIST when anything else is there. */
static int publish(int dirfd, const char *tmp, const char *set, const char *doc, char *why,
		   size_t whylen)
{
	char old[4200];
	int r;

	if (renameat2(dirfd, tmp, dirfd, set, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST) {
		if (owned(dirfd, set, doc) != 1)
			return -EEXIST;
		if (renameat2(dirfd, tmp, dirfd, set, RENAME_EXCHANGE) == 0) {
			/* Another process may have put its set there since the check: only ours is
			 * removed, theirs goes back. */
			if (owned(dirfd, tmp, doc) != 1) {
				if (renameat2(dirfd, tmp, dirfd, set, RENAME_EXCHANGE) == 0)
					return -EEXIST;
				say(why, whylen, "%sanother model's %s is left in %s: %s", why[0] ? "; " : "", set,
				    tmp, strerror(errno));
				return 0;
			}
			if ((r = remove_entry(dirfd, tmp, true)) < 0)
				say(why, whylen, "%sthe earlier %s is left in %s: %s", why[0] ? "; " : "", set, tmp,
				    strerror(-r));
			return 0;
		}
	}
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* File systems without renameat2's flags: move our old set aside first. A reader may find
	 * no set for a moment, never a half-written one. */
	if ((r = owned(dirfd, set, doc)) == -ENOENT)
		return renameat(dirfd, tmp, dirfd, set) < 0 ? -errno : 0;
	if (r != 1)
		return -EEXIST;
	if (snprintf(old, sizeof(old), "%s.old.%ld", set, (long)getpid()) >= (int)sizeof(old))
		return -ENAMETOOLONG;
	if (renameat(dirfd, set, dirfd, old) < 0)
		return -errno;
	if (renameat(dirfd, tmp, dirfd, set) < 0) {
		r = -errno;
		renameat(dirfd, old, dirfd, set);
		return r;
	}
	if ((r = owned(dirfd, old, doc)) != 1 || (r = remove_entry(dirfd, old, true)) < 0)
		say(why, whylen, "%sthe earlier %s is left in %s%s%s", why[0] ? "; " : "", set, old,
		    r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
	return 0;
}

int onnxhook_test_data_write(struct onnxhook_graph *g, const char *dir, const char *model, char *set,
			     size_t setlen, char *why, size_t whylen)
{
	char tmp[64], doc[4200], alt[4200];
	const char *names[2] = {SET_NAME, alt};
	int dirfd, tfd = -1, r;

	if (whylen)
		why[0] = '\0';
	if (setlen)
		set[0] = '\0';
	onnxhook_graph_finish(g);
	if (snprintf(doc, sizeof(doc), "onnxhook test data of %s", model) >= (int)sizeof(doc) ||
	    snprintf(alt, sizeof(alt), "%s.%s", model, SET_NAME) >= (int)sizeof(alt))
		return -ENAMETOOLONG;
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	missing(g, why, whylen);
	if (why[0]) {
		/* This model's earlier set beside the new model would be a wrong one: it goes.
		 * Another model's stays. */
		for (int i = 0; i < 2; i++) {
			int own = owned(dirfd, names[i], doc);
			if (own == 1 && (r = remove_entry(dirfd, names[i], true)) == 0)
				say(why, whylen, "; the earlier %s there was removed", names[i]);
			else if (own == 1)
				say(why, whylen, "; the earlier %s there stays: %s", names[i], strerror(-r));
			else if (own == 0 && i == 0)
				say(why, whylen, "; the %s there is not from this model: left alone", names[i]);
		}
		close(dirfd);
		return -ENODATA;
	}
	if ((tfd = onnxhook_make_temp(dirfd, SET_NAME, true, tmp, sizeof(tmp))) < 0) {
		r = tfd;
		goto out;
	}
	if ((r = write_tensors(g, tfd, doc)) < 0)
		goto out;
	/* The model zoo's place, unless another model's set holds it: then one that cannot
	 * collide, named after the model's file. */
	for (int i = 0; i < 2; i++) {
		if ((r = publish(dirfd, tmp, names[i], doc, why, whylen)) == -EEXIST)
			continue;
		if (r == 0 && setlen)
			snprintf(set, setlen, "%s", names[i]);
		if (r == 0 && i == 1)
			say(why, whylen, "%s%s/%s holds another model's test data (or some of unknown origin): "
			    "left alone; this model's went to %s/%s", why[0] ? "; " : "", dir, SET_NAME, dir, alt);
		/* Back in the zoo's place: this model's set from a time it was taken is stale. */
		else if (r == 0 && owned(dirfd, alt, doc) == 1)
			remove_entry(dirfd, alt, true);
		break;
	}
out:
	if (r < 0 && tfd >= 0)
		remove_entry(dirfd, tmp, false); /* never leave a half-written set behind */
	if (tfd >= 0)
		close(tfd);
	close(dirfd);
	return r;
}
