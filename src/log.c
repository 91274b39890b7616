/* SPDX-License-Identifier: MIT */
/* Prefixed log lines on a descriptor the host app does not own. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "onnxhook.h"
#include "util.h"

static int log_fd = 2;
static enum onnxhook_log_level log_level = ONNXHOOK_LOG_INFO;

void onnxhook_log_init(int fd, enum onnxhook_log_level level)
{
	log_fd = fd;
	log_level = level;
}

enum onnxhook_log_level onnxhook_log_level(void)
{
	return log_level;
}

void onnxhook_log(enum onnxhook_log_level level, const char *fmt, ...)
{
	char line[1024];
	int saved_errno = errno;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	memcpy(line, "onnxhook: ", 10);
	va_start(ap, fmt);
	n = vsnprintf(line + 10, sizeof(line) - 11, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	n += 10;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write(2) per line (it fits a pipe's atomic size): lines from several threads or
	 * processes never interleave. Never a SIGPIPE in the program (see write_all). */
	onnxhook_write_all(log_fd, (const uint8_t *)line, (size_t)n);
	errno = saved_errno;
}
