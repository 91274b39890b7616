/* SPDX-License-Identifier: MIT */
/* Unit tests: where an output goes (src/outfile.c): descriptors and devices are written into,
 * /dev, /proc and /sys never get a file, a terminal is refused. Nothing here writes outside the
 * test's own directory: the system places are only classified, never written. */
#include "unit.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnxhook.h"

static char dir[64];

static void setup(void)
{
	unit_tmpdir(dir, sizeof(dir), "outfile");
}

static void teardown(void)
{
	unit_tmpdir_remove(dir);
}

static int count_entries(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "exit $(ls -A %s | wc -l)", dir);
	return WEXITSTATUS(system(cmd));
}

static void read_back(int fd, off_t at, const char *want)
{
	char buf[64] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, at);

	ck_assert_int_ge(n, 0);
	ck_assert_str_eq(buf, want);
}

/* /dev/stdout on a file (the shell's "> reg.bin") is a symlink to /proc/self/fd/1, which the
 * kernel resolves to the file: it used to look like a file, and rename(2) replaced the link. */
START_TEST(descriptor_paths_are_written_into)
{
	char file[128], link[128], path[64];
	struct stat sb;
	int fd;

	snprintf(file, sizeof(file), "%s/reg.bin", dir);
	snprintf(link, sizeof(link), "%s/stdout", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "app;", 4), 4); /* what the program printed before */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_int_eq(onnxhook_output_kind(link), ONNXHOOK_OUTPUT_INTO);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_INTO);
	snprintf(path, sizeof(path), "/dev/fd/%d", fd);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_INTO);
	snprintf(path, sizeof(path), "/proc/thread-self/fd/%d", fd);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_INTO);

	/* written at the descriptor's offset, after what was there; the link stays a link */
	ck_assert_int_eq(onnxhook_file_replace(link, "model", 5), 0);
	ck_assert_int_eq(lstat(link, &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
	int rfd = open(file, O_RDONLY | O_CLOEXEC);
	read_back(rfd, 0, "app;model");
	close(rfd);
	ck_assert_int_eq(count_entries(), 2); /* reg.bin, stdout: no temporary */
	close(fd);
}
END_TEST

/* A pipe (| cat, | python3 …) is streamed into; one whose reader left gives EPIPE, and the
 * SIGPIPE it raised does not kill the program. */
START_TEST(pipes_are_streamed_and_a_gone_reader_kills_nobody)
{
	char path[64];
	int p[2];
	sigset_t pending;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	snprintf(path, sizeof(path), "/dev/fd/%d", p[1]);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_INTO);
	ck_assert_int_eq(onnxhook_file_replace(path, "model", 5), 0);
	char buf[8] = "";
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "model");
	/* the read end as output: not open for writing */
	snprintf(path, sizeof(path), "/dev/fd/%d", p[0]);
	ck_assert_int_eq(onnxhook_output_kind(path), -EBADF);
	close(p[0]);
	snprintf(path, sizeof(path), "/dev/fd/%d", p[1]);
	ck_assert_int_eq(onnxhook_file_replace(path, "model", 5), -EPIPE); /* alive: no SIGPIPE */
	sigpending(&pending);
	ck_assert(!sigismember(&pending, SIGPIPE));
	close(p[1]);
	/* a descriptor that is not open */
	ck_assert_int_eq(onnxhook_output_kind(path), -EBADF);
	ck_assert_int_eq(onnxhook_file_replace(path, "model", 5), -EBADF);
	ck_assert_int_eq(count_entries(), 0);
}
END_TEST

/* A FIFO by name is written into (its reader gets the model), never replaced. */
START_TEST(a_fifo_is_written_into)
{
	char fifo[128], buf[8] = "";
	struct stat sb;

	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(onnxhook_output_kind(fifo), ONNXHOOK_OUTPUT_INTO);
	int r = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* the reader is there first */
	ck_assert_int_ge(r, 0);
	ck_assert_int_eq(onnxhook_file_replace(fifo, "model", 5), 0);
	ck_assert_int_eq(read(r, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "model");
	close(r);
	ck_assert_int_eq(lstat(fifo, &sb), 0);
	ck_assert(S_ISFIFO(sb.st_mode));
	ck_assert_int_eq(count_entries(), 1);
}
END_TEST

/* No file is ever created or renamed over in /dev, /proc or /sys, whatever leads there. Only
 * classified here: the write itself is tested in a private mount namespace (outputs.sh). */
START_TEST(system_directories_get_no_file)
{
	char link[128], path[160];

	ck_assert_int_eq(onnxhook_output_kind("/dev/onnxhook-unit-no-such-file"), -EPERM);
	ck_assert_int_eq(onnxhook_output_kind("/dev/pts/onnxhook-unit-no-such-file"), -EPERM);
	ck_assert_int_eq(onnxhook_output_kind("/proc/self/onnxhook-unit-no-such-file"), -EPERM);
	ck_assert_int_eq(onnxhook_output_kind("/proc/self/fd/onnxhook-unit"), -EPERM);
	ck_assert_int_eq(onnxhook_output_kind("/sys/onnxhook-unit-no-such-file"), -EPERM);
	snprintf(link, sizeof(link), "%s/devlink", dir);
	ck_assert_int_eq(symlink("/dev", link), 0);
	snprintf(path, sizeof(path), "%s/m.onnx", link);
	ck_assert_int_eq(onnxhook_output_kind(path), -EPERM);
	ck_assert(onnxhook_output_in_system_dir(path));
	/* /dev/shm is an ordinary (tmpfs) directory; the test's own is ordinary */
	ck_assert(!onnxhook_output_in_system_dir("/dev/shm/m.onnx"));
	snprintf(path, sizeof(path), "%s/m.onnx", dir);
	ck_assert(!onnxhook_output_in_system_dir(path));
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_FILE);
	/* a symlink in an ordinary directory to a new name in /dev: the link is what gets replaced */
	snprintf(path, sizeof(path), "%s/tonew", dir);
	ck_assert_int_eq(symlink("/dev/onnxhook-unit-no-such-file", path), 0);
	ck_assert_int_eq(onnxhook_output_kind(path), ONNXHOOK_OUTPUT_FILE);
	/* devices there are written into, as before */
	ck_assert_int_eq(onnxhook_output_kind("/dev/null"), ONNXHOOK_OUTPUT_INTO);
	ck_assert_str_eq(onnxhook_output_strerror(-EPERM),
			 "is in /dev, /proc or /sys, where onnxhook creates or replaces no file (a device, "
			 "FIFO or descriptor there is written into)");
}
END_TEST

/* A terminal never gets a binary model: refused, by its name or as a descriptor. */
START_TEST(a_terminal_is_refused)
{
	char path[64];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s;

	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	const char *name = ptsname(m);
	ck_assert_ptr_nonnull(name);
	ck_assert_int_eq(onnxhook_output_kind(name), -ENOTTY);
	s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(s, 0);
	snprintf(path, sizeof(path), "/dev/fd/%d", s);
	ck_assert_int_eq(onnxhook_output_kind(path), -ENOTTY);
	ck_assert_int_eq(onnxhook_file_replace(path, "model", 5), -ENOTTY);
	close(s);
	close(m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("outfile");
	TCase *tc = tcase_create("outfile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, descriptor_paths_are_written_into);
	tcase_add_test(tc, pipes_are_streamed_and_a_gone_reader_kills_nobody);
	tcase_add_test(tc, a_fifo_is_written_into);
	tcase_add_test(tc, system_directories_get_no_file);
	tcase_add_test(tc, a_terminal_is_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
