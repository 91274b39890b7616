/* SPDX-License-Identifier: MIT */
/* Where an output goes: a file replaced atomically, or a device, FIFO or descriptor written into;
 * never a file created or renamed over in /dev, /proc or /sys. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "onnxhook.h"
#include "util.h"

#define PROC_SUPER_MAGIC 0x9fa0
#define SYSFS_MAGIC 0x62656572
#define DEVPTS_SUPER_MAGIC 0x1cd1

/* path's directory part ("." or "/" when it has none) in dir. false if it does not fit. */
static bool dir_part(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(dir, len, ".") < (int)len;
	if (slash == path)
		return snprintf(dir, len, "/") < (int)len;
	return snprintf(dir, len, "%.*s", (int)(slash - path), path) < (int)len;
}

static bool under(const char *path, const char *top)
{
	size_t n = strlen(top);

	return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

/* rdir (resolved) is this process's descriptor directory, /proc/<pid>/fd or
 * /proc/<pid>/task/<tid>/fd, and name a decimal descriptor number in it: the number, else -1. */
static int fd_in(const char *rdir, const char *name)
{
	char mine[32];
	int n = snprintf(mine, sizeof(mine), "/proc/%ld/", (long)getpid());
	const char *rest = rdir + n;
	long fd = 0;

	if (strncmp(rdir, mine, (size_t)n))
		return -1;
	if (!strncmp(rest, "task/", 5)) {
		rest += 5;
		if (*rest < '0' || *rest > '9')
			return -1;
		while (*rest >= '0' && *rest <= '9')
			rest++;
		rest++; /* the '/' checked below */
		if (rest[-1] != '/')
			return -1;
	}
	if (strcmp(rest, "fd") || !*name || strlen(name) > 9)
		return -1;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		fd = fd * 10 + (*p - '0');
	}
	return (int)fd;
}

/* The descriptor a path names, /dev/stdout, /dev/fd/3, /proc/self/fd/1 or a symlink that leads
 * to one, or -1. The symlinks are followed one at a time up to the descriptor directory: its
 * entries are the kernel's links to whatever the descriptor is open on (a file, a pipe, a
 * socket), which a path cannot always reopen and rename(2) must never replace. */
static int descriptor_of(const char *path)
{
	/* (Three path buffers, no more: this also runs in the signal handlers' dump.) */
	char cur[PATH_MAX], rdir[PATH_MAX], link[PATH_MAX];

	if (snprintf(cur, sizeof(cur), "%s", path) >= (int)sizeof(cur))
		return -1;
	for (int hop = 0; hop < 40; hop++) {
		char *slash = strrchr(cur, '/');
		const char *dir = !slash ? "." : slash == cur ? "/" : cur;
		bool resolved;
		int fd;
		ssize_t n;

		if (slash && slash != cur)
			*slash = '\0'; /* cur is its directory for a moment */
		resolved = realpath(dir, rdir) != NULL;
		if (slash && slash != cur)
			*slash = '/';
		if (!resolved)
			return -1;
		if ((fd = fd_in(rdir, slash ? slash + 1 : cur)) >= 0)
			return fd;
		if ((n = readlink(cur, link, sizeof(link) - 1)) < 0)
			return -1; /* not a symlink */
		link[n] = '\0';
		if (link[0] == '/')
			memcpy(cur, link, (size_t)n + 1);
		else if (snprintf(cur, sizeof(cur), "%s/%s", rdir, link) >= (int)sizeof(cur))
			return -1;
	}
	return -1;
}

bool onnxhook_output_in_system_dir(const char *path)
{
	char dir[PATH_MAX], rdir[PATH_MAX];
	struct statfs fs;

	/* The directory the entry would be created in (rename(2) replaces a final symlink, so it
	 * is the directory of path itself, not of where a link there points). */
	if (!dir_part(path, dir, sizeof(dir)) || !realpath(dir, rdir))
		return false; /* nothing can be created there anyway */
	if ((under(rdir, "/dev") && !under(rdir, "/dev/shm")) || under(rdir, "/proc") || under(rdir, "/sys"))
		return true;
	return statfs(rdir, &fs) == 0 && (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC ||
					  fs.f_type == DEVPTS_SUPER_MAGIC);
}

int onnxhook_output_kind(const char *path)
{
	struct stat sb;
	int fd = descriptor_of(path), fl;

	if (fd >= 0) {
		if ((fl = fcntl(fd, F_GETFL)) < 0 || (fl & O_ACCMODE) == O_RDONLY)
			return -EBADF;
		return isatty(fd) ? -ENOTTY : ONNXHOOK_OUTPUT_INTO;
	}
	if (stat(path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			return -EISDIR;
		if (S_ISFIFO(sb.st_mode))
			return ONNXHOOK_OUTPUT_INTO; /* (opening it would wait for a reader) */
		if (S_ISCHR(sb.st_mode)) {
			/* One that cannot be opened (/dev/tty without a terminal) says so now; a
			 * terminal is never what a binary model is for. */
			int t = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
			bool tty;
			if (t < 0)
				return -errno;
			tty = isatty(t);
			close(t);
			return tty ? -ENOTTY : ONNXHOOK_OUTPUT_INTO;
		}
		if (!S_ISREG(sb.st_mode))
			return -ENOTSUP; /* a block device, a socket */
	}
	return onnxhook_output_in_system_dir(path) ? -EPERM : ONNXHOOK_OUTPUT_FILE;
}

const char *onnxhook_output_strerror(int r)
{
	switch (r) {
	case -EISDIR:
		return "is a directory";
	case -ENOTSUP:
		return "is a block device or a socket: a model goes to a file, a character device, a FIFO "
		       "or an open descriptor";
	case -EPERM:
		return "is in /dev, /proc or /sys, where onnxhook creates or replaces no file (a device, "
		       "FIFO or descriptor there is written into)";
	case -EBADF:
		return "is a descriptor that is not open for writing";
	case -ENOTTY:
		return "is a terminal: redirect it to a file (> model.onnx) or a pipe";
	default: /* not strerror: no locale, no buffer (this runs in signal handlers too) */
		return strerrordesc_np(-r) ? strerrordesc_np(-r) : "unknown error";
	}
}

int onnxhook_output_into(const char *path, int (*write_fn)(int fd, void *ctx), void *ctx)
{
	int fd = descriptor_of(path), r;
	sigset_t pipe_set, old, pending;
	bool was_pending;

	/* A descriptor is written as it is (a file at its offset, after what the program wrote);
	 * a path is opened, a FIFO waiting for its reader. */
	fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	/* A pipe whose reader has gone must not kill the program: EPIPE is an error like any other.
	 * SIGPIPE is blocked meanwhile, and the one the write raised is taken back. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	r = write_fn(fd, ctx);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == -EPIPE && !was_pending) {
		const struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}
