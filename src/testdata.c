/* SPDX-License-Identifier: MIT */
/* Test data beside the model, the model zoo's way: test_data_set_0/input_N.pb, output_N.pb. */
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

int onnxhook_tensor_pack(const struct onnxhook_value *v, const char *name, const void *data,
			 uint8_t **buf, size_t *len)
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
	}
}

/* Both kinds of tensor into the directory tfd; 0 or a negative errno. */
static int write_tensors(const struct onnxhook_graph *g, int tfd)
{
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
		int r = onnxhook_tensor_pack(v, name, v->snapshot, &buf, &len);
		if (r < 0)
			return r;
		int fd = openat(tfd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		r = fd < 0 ? -errno : onnxhook_write_all(fd, buf, len);
		if (fd >= 0 && close(fd) < 0 && r == 0)
			r = -errno; /* a delayed ENOSPC or EIO */
		free(buf);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The new set tmp takes the place of SET_NAME atomically: a set there already (or whatever else
 * is there: a symlink is replaced, not followed) is exchanged out and then removed. */
static int publish(int dirfd, const char *tmp, char *why, size_t whylen)
{
	char old[64];

	if (renameat2(dirfd, tmp, dirfd, SET_NAME, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST && renameat2(dirfd, tmp, dirfd, SET_NAME, RENAME_EXCHANGE) == 0) {
		int r = remove_entry(dirfd, tmp, false);
		if (r < 0)
			say(why, whylen, "the earlier %s is left in %s: %s", SET_NAME, tmp, strerror(-r));
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* File systems without renameat2's flags: move the old set aside first. A reader may
	 * find no set for a moment, never a half-written one. */
	if (renameat(dirfd, tmp, dirfd, SET_NAME) == 0)
		return 0;
	if (errno != EEXIST && errno != ENOTEMPTY)
		return -errno;
	snprintf(old, sizeof(old), "%s.old.%ld", SET_NAME, (long)getpid());
	if (renameat(dirfd, SET_NAME, dirfd, old) < 0)
		return -errno;
	if (renameat(dirfd, tmp, dirfd, SET_NAME) < 0) {
		int r = -errno;
		renameat(dirfd, old, dirfd, SET_NAME);
		return r;
	}
	int r = remove_entry(dirfd, old, false);
	if (r < 0)
		say(why, whylen, "the earlier %s is left in %s: %s", SET_NAME, old, strerror(-r));
	return 0;
}

int onnxhook_test_data_write(struct onnxhook_graph *g, const char *dir, char *why, size_t whylen)
{
	char tmp[64];
	int dirfd, tfd = -1, r;

	if (whylen)
		why[0] = '\0';
	onnxhook_graph_finish(g);
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	missing(g, why, whylen);
	if (why[0]) {
		/* An earlier run's set beside a new model would be a wrong one: it goes too. */
		r = remove_entry(dirfd, SET_NAME, true);
		if (r == 0)
			say(why, whylen, "; the earlier %s there was removed", SET_NAME);
		else if (r != -ENOENT)
			say(why, whylen, "; %s there is not from this model: %s", SET_NAME, strerror(-r));
		close(dirfd);
		return -ENODATA;
	}
	for (unsigned k = 0;; k++) {
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld%s%.0u", SET_NAME, (long)getpid(), k ? "." : "", k);
		if (mkdirat(dirfd, tmp, 0777) == 0)
			break;
		if (errno != EEXIST || k == 100) {
			r = -errno;
			goto out;
		}
	}
	if ((tfd = openat(dirfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = -errno;
		goto out_remove;
	}
	r = write_tensors(g, tfd);
	if (r == 0)
		r = publish(dirfd, tmp, why, whylen);
out_remove:
	if (r < 0)
		remove_entry(dirfd, tmp, false); /* never leave a half-written set behind */
out:
	if (tfd >= 0)
		close(tfd);
	close(dirfd);
	return r;
}
