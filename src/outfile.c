/* SPDX-License-Identifier: MIT */
/* Files written beside the model (the Graphviz picture): never half-written, replaced atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnxhook.h"
#include "util.h"

int onnxhook_output_kind(const char *path)
{
	struct stat sb;

	/* A device (/dev/stdout) is written into, a directory or a pipe, socket or block device is
	 * refused, anything else is replaced by rename(2), which never follows a symlink. */
	if (stat(path, &sb) < 0 || S_ISREG(sb.st_mode))
		return ONNXHOOK_OUTPUT_FILE;
	if (S_ISCHR(sb.st_mode))
		return ONNXHOOK_OUTPUT_DEVICE;
	return S_ISDIR(sb.st_mode) ? -EISDIR : -ENOTSUP;
}

int onnxhook_file_replace(const char *path, const void *data, size_t len)
{
	char tmp[4200];
	int fd = -1, r = onnxhook_output_kind(path);

	if (r < 0)
		return r;
	if (r == ONNXHOOK_OUTPUT_DEVICE) {
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
