/* SPDX-License-Identifier: MIT */
/* Our writes (log lines, files) to a pipe whose reader is gone raise no SIGPIPE in the program,
 * whatever its disposition, mask or pending signals. Each case runs in a child (the bug kills
 * it), on the write end of a pipe whose read end is closed. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "util.h"

static volatile sig_atomic_t handled;

static void on_sigpipe(int sig)
{
	(void)sig;
	handled = 1;
}

static bool sigpipe_pending(void)
{
	sigset_t set;

	return sigpending(&set) == 0 && sigismember(&set, SIGPIPE);
}

static bool sigpipe_blocked(void)
{
	sigset_t set;

	return pthread_sigmask(SIG_BLOCK, NULL, &set) == 0 && sigismember(&set, SIGPIPE);
}

static void block_sigpipe(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(how, &set, NULL);
}

/* What each child does with the write end of a pipe without reader; its exit status says what
 * went wrong (0: nothing). */
enum mode { LOG_DEFAULT, WRITE_DEFAULT, LOG_HANDLER, LOG_BLOCKED, LOG_PENDING };

static int child(enum mode mode, int fd)
{
	struct sigaction sa = {.sa_handler = mode == LOG_HANDLER ? on_sigpipe : SIG_DFL};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
	block_sigpipe(mode == LOG_BLOCKED || mode == LOG_PENDING ? SIG_BLOCK : SIG_UNBLOCK);
	if (mode == LOG_PENDING)
		raise(SIGPIPE); /* the program's own, blocked: it must stay pending */
	if (mode == WRITE_DEFAULT)
		return onnxhook_write_all(fd, (const uint8_t *)"abc", 3) == -EPIPE ? 0 : 2;
	onnxhook_log_init(fd, ONNXHOOK_LOG_INFO);
	errno = 1234;
	onnxhook_info("a line nobody reads");
	if (errno != 1234)
		return 3;
	if (handled)
		return 4;
	if ((mode == LOG_BLOCKED || mode == LOG_PENDING) != sigpipe_blocked())
		return 5; /* the program's mask changed */
	if (sigpipe_pending() != (mode == LOG_PENDING))
		return 6;
	return 0;
}

static int run(enum mode mode)
{
	int fds[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child(mode, fds[1]));
	close(fds[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(!WIFSIGNALED(status), "killed by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

START_TEST(log_default_action)
{
	ck_assert_int_eq(run(LOG_DEFAULT), 0);
}
END_TEST

START_TEST(write_all_default_action)
{
	ck_assert_int_eq(run(WRITE_DEFAULT), 0);
}
END_TEST

START_TEST(log_handler_not_called)
{
	ck_assert_int_eq(run(LOG_HANDLER), 0);
}
END_TEST

START_TEST(log_blocked_left_clean)
{
	ck_assert_int_eq(run(LOG_BLOCKED), 0);
}
END_TEST

START_TEST(log_pending_kept)
{
	ck_assert_int_eq(run(LOG_PENDING), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("sigpipe");

	tcase_add_test(tc, log_default_action);
	tcase_add_test(tc, write_all_default_action);
	tcase_add_test(tc, log_handler_not_called);
	tcase_add_test(tc, log_blocked_left_clean);
	tcase_add_test(tc, log_pending_kept);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
