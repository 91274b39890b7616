/* SPDX-License-Identifier: MIT */
/* Publishing files atomically (util.h): a temporary beside the final name, written whole, then
 * renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnxhook.h"
#include "util.h"

int onnxhook_make_temp(int dirfd, const char *base, bool dir, char *tmp, size_t len)
{
	const char *slash = strrchr(base, '/');
	int dirlen = slash ? (int)(slash - base + 1) : 0;

	for (unsigned k = 0;; k++) {
		/* In base's directory (rename(2) cannot cross file systems), but a short name of its
		 * own: "<name>.tmp.<pid>" would pass NAME_MAX for a valid name of 246 bytes or more. */
		if (snprintf(tmp, len, "%.*s.onnxhook.%ld.%u.tmp", dirlen, base, (long)getpid(), k) >=
		    (int)len)
			return -ENAMETOOLONG;
		int fd = dir ? mkdirat(dirfd, tmp, 0777)
			     : openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd >= 0 && dir) {
			if ((fd = openat(dirfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
				int r = -errno;
				unlinkat(dirfd, tmp, AT_REMOVEDIR);
				return r;
			}
		}
		if (fd >= 0)
			return fd;
		if (errno != EEXIST || k == 100)
			return -errno;
	}
}

int onnxhook_write_bytes(int fd, void *ctx)
{
	const struct onnxhook_bytes *b = ctx;

	return onnxhook_write_all(fd, b->data, b->len);
}

/* fd written through fn, then closed: a delayed ENOSPC or EIO shows at close. */
static int write_close(int fd, onnxhook_write_fn *fn, void *ctx)
{
	int r = fn(fd, ctx);

	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

int onnxhook_write_temp(const char *path, onnxhook_write_fn *fn, void *ctx, char *tmp, size_t len)
{
	int fd = onnxhook_make_temp(AT_FDCWD, path, false, tmp, len), r;

	if (fd < 0)
		return fd;
	if ((r = write_close(fd, fn, ctx)) < 0)
		unlink(tmp); /* never leave a half-written file behind */
	return r;
}

int onnxhook_write_new(int dirfd, const char *name, onnxhook_write_fn *fn, void *ctx)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666), r;

	if (fd < 0)
		return -errno;
	if ((r = write_close(fd, fn, ctx)) < 0)
		unlinkat(dirfd, name, 0);
	return r;
}

/* rename(2) that never replaces: -EEXIST when to exists. */
int onnxhook_rename_new(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* File systems without RENAME_NOREPLACE: link(2) also refuses to replace. */
	if (link(from, to) < 0)
		return -errno;
	unlink(from);
	return 0;
}

int onnxhook_file_replace(const char *path, const void *data, size_t len)
{
	char tmp[4200];
	struct onnxhook_bytes b = {data, len};
	int r = onnxhook_output_kind(path);

	if (r < 0)
		return r;
	if (r == ONNXHOOK_OUTPUT_INTO)
		return onnxhook_output_into(path, onnxhook_write_bytes, &b);
	if ((r = onnxhook_write_temp(path, onnxhook_write_bytes, &b, tmp, sizeof(tmp))) < 0)
		return r;
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
	}
	return r;
}
