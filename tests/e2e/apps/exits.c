/* SPDX-License-Identifier: MIT */
/* One small inference, then the process ends the way argv[1] says: every exit path a real
 * program takes, exec included. Usage: exits MODE (see the table in main). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e-app.h"

static const tnn_dims dims = {1, 3, 4, 4};
static float *x, *y;
static struct e2e_conv_layer conv;
static volatile sig_atomic_t stop;

static void infer(void)
{
	const tnn_dims out = e2e_conv_out(&conv, &dims);

	for (size_t i = 0; i < e2e_count(&dims); i++)
		x[i] = (float)i / 48.0f;
	E2E_TNN(tnn_conv2d(&conv.p, &dims, x, conv.weight, conv.bias, &out, y));
	E2E_TNN(tnn_relu(&out, y, y));
}

static void exit_in_handler(int sig)
{
	(void)sig;
	_exit(3);
}

static void set_flag(int sig)
{
	(void)sig;
	stop = 1;
}

static void child_then_wait(int child_infers, int use_vfork)
{
	pid_t pid = use_vfork ? vfork() : fork();
	int status;

	if (pid < 0)
		exit(10);
	if (pid == 0) {
		if (child_infers)
			infer();
		_exit(child_infers ? 4 : 5);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		exit(11);
	printf("child status %d\n", WEXITSTATUS(status));
}

extern char **environ;

/* The exec family, each entry point: /bin/true replaces this image. */
static void exec_true(const char *how)
{
	char *const argv[] = {"true", NULL};

	if (!strcmp(how, "execv"))
		execv("/bin/true", argv);
	else if (!strcmp(how, "execve"))
		execve("/bin/true", argv, environ);
	else if (!strcmp(how, "execvp"))
		execvp("true", argv);
	else if (!strcmp(how, "execvpe"))
		execvpe("true", argv, environ);
	else if (!strcmp(how, "execl"))
		execl("/bin/true", "true", (char *)NULL);
	else if (!strcmp(how, "execle"))
		execle("/bin/true", "true", (char *)NULL, environ);
	else if (!strcmp(how, "execlp"))
		execlp("true", "true", (char *)NULL);
	else if (!strcmp(how, "fexecve"))
		fexecve(open("/bin/true", O_RDONLY | O_CLOEXEC), argv, environ);
	else if (!strcmp(how, "execveat"))
		execveat(AT_FDCWD, "/bin/true", argv, environ, 0);
	else
		return;
	exit(17); /* the exec failed */
}

int main(int argc, char **argv)
{
	struct e2e_rng r;
	const char *mode = argc > 1 ? argv[1] : "return";

	if (!strcmp(mode, "exec-done")) { /* the image exec-self started: no inference */
		printf("exec done\n");
		return 5;
	}

	e2e_rng_seed(&r, 5);
	e2e_conv_init(&conv, &r, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
	x = e2e_alloc(e2e_count(&dims));
	y = e2e_alloc(4 * 16);
	infer();
	/* What onnxruntime must reproduce from the model, whichever way the process ends. */
	FILE *f = fopen("exits-in.bin", "wb"), *g = fopen("exits-out.bin", "wb");
	if (!f || !g || fwrite(x, sizeof(float), e2e_count(&dims), f) != e2e_count(&dims) ||
	    fwrite(y, sizeof(float), 4 * 16, g) != 4 * 16 || fclose(f) || fclose(g))
		return 14;
	printf("mode %s\n", mode);
	fflush(stdout);

	if (!strcmp(mode, "return"))
		return 0;
	if (!strcmp(mode, "exit"))
		exit(7);
	if (!strcmp(mode, "_exit"))
		_exit(8);
	if (!strcmp(mode, "_Exit"))
		_Exit(9);
	if (!strcmp(mode, "quick_exit"))
		quick_exit(6);
	if (!strcmp(mode, "sigterm")) /* default action: killed by SIGTERM */
		raise(SIGTERM);
	if (!strcmp(mode, "sigterm-handler")) { /* the app's handler ends it with _exit(3) */
		struct sigaction sa = {.sa_handler = exit_in_handler};
		sigaction(SIGTERM, &sa, NULL);
		raise(SIGTERM);
	}
	if (!strcmp(mode, "sigint-flag")) { /* graceful shutdown: a flag, then return */
		signal(SIGINT, set_flag);
		raise(SIGINT);
		return stop ? 12 : 13;
	}
	if (!strcmp(mode, "segv"))
		raise(SIGSEGV);
	if (!strcmp(mode, "fault")) { /* a real invalid access */
		volatile int *volatile nowhere = NULL;
		*nowhere = 1;
	}
	if (!strcmp(mode, "abort"))
		abort();
	if (!strcmp(mode, "fork-infer")) /* the child writes its own model */
		child_then_wait(1, 0);
	if (!strcmp(mode, "fork-quiet")) /* the child records nothing: writes nothing */
		child_then_wait(0, 0);
	if (!strcmp(mode, "vfork")) /* a vfork child that calls _exit writes nothing */
		child_then_wait(0, 1);
	exec_true(mode); /* execv, execl, …: the model is written before the image goes */
	if (!strcmp(mode, "exec-self")) /* the same program again, told to stop at once */
		execl("/proc/self/exe", argv[0], "exec-done", (char *)NULL);
	if (!strcmp(mode, "exec-fail")) { /* the program goes on: its calls pass through */
		execv("/nonexistent/onnxhook-exits", argv);
		int err = errno;
		infer();
		return err == ENOENT ? 15 : 16;
	}
	if (!strcmp(mode, "vfork-exec")) { /* the vfork child's exec leaves the recorder alone */
		int status;
		pid_t pid = vfork();
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
			return 11;
		printf("child status %d\n", WEXITSTATUS(status));
	}
	if (!strcmp(mode, "fork-exec")) { /* a child that recorded writes its own model at exec */
		int status;
		pid_t pid = fork();
		if (pid == 0) {
			infer();
			execv("/bin/true", (char *const[]){"true", NULL});
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
			return 11;
		printf("child status %d\n", WEXITSTATUS(status));
	}
	if (!strcmp(mode, "sigkill")) /* killed before a second pass: nothing can catch SIGKILL */
		raise(SIGKILL);
	if (!strcmp(mode, "pass2-sigkill")) { /* the second pass begins (the first has ended), then SIGKILL */
		infer();
		raise(SIGKILL);
	}
	if (!strcmp(mode, "pass2")) /* two passes, then return */
		infer();
	return 0;
}
