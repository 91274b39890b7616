/* SPDX-License-Identifier: MIT */
/* Files written beside the model (the Graphviz picture): never half-written, replaced atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnxhook.h"
#include "util.h"

int onnxhook_file_replace(const char *path, const void *data, size_t len)
{
	char tmp[4200];
	struct stat sb;
	int fd = -1, r;

	/* The model's rules: a device (/dev/stdout) is written into, a directory or a pipe is
	 * refused, anything else is replaced by rename(2), which never follows a symlink. */
	if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		if (!S_ISCHR(sb.st_mode))
			return S_ISDIR(sb.st_mode) ? -EISDIR : -ENOTSUP;
		if ((fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY)) < 0)
			return -errno;
		r = onnxhook_write_all(fd, data, len);
		if (close(fd) < 0 && r == 0)
			r = -errno;
		return r;
	}
	if ((fd = onnxhook_open_temp(path, tmp, sizeof(tmp))) < 0)
		return fd;
	r = onnxhook_write_all(fd, data, len);
	if (close(fd) < 0 && r == 0)
		r = -errno; /* a delayed ENOSPC or EIO */
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
