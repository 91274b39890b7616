/* SPDX-License-Identifier: MIT */
/* Exit paths and signals: the model is written however the process ends. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook.h"

static void (*real__exit)(int);
static void (*real_quick_exit)(int);
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);

/* Signals whose handler we keep installed (opt-in), and what the app believes is installed. */
static volatile sig_atomic_t ours[NSIG];
static struct sigaction app_action[NSIG];

static const int end_signals[] = {SIGTERM, SIGINT, SIGHUP};
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

/* The signal whose handler of the app's we are running on this thread, or 0. */
static __thread int handling __attribute__((tls_model("initial-exec")));

bool onnxhook_is_crash_signal(int sig)
{
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		if (crash_signals[i] == sig)
			return true;
	return false;
}

int onnxhook_in_signal_handler(void)
{
	sigset_t blocked;
	stack_t ss;

	/* Our handler blocks every signal while the app's runs: a handler left by siglongjmp
	 * unblocked its signal again, and `handling` is stale then. */
	if (handling > 0 && pthread_sigmask(SIG_BLOCK, NULL, &blocked) == 0 && sigismember(&blocked, handling))
		return handling;
	if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK))
		return -1;
	return 0;
}

void onnxhook_real_exit(int status)
{
	if (real__exit)
		real__exit(status);
	syscall(SYS_exit_group, status); /* what glibc's _exit does */
	__builtin_unreachable();
}

/* Signal handlers call these. Uninstrumented: an ASan build would call
 * __asan_handle_no_return before onnxhook_real_exit, which on an alternate signal stack reads
 * /proc/self/maps with fopen (malloc) in the handler. */
#define EXIT_PATH __attribute__((no_sanitize("address")))

/* _exit and _Exit skip destructors: write the model first. In a vfork child the pid differs
 * from the recording process, so nothing is touched. */
EXIT_PATH ONNXHOOK_EXPORT __attribute__((noreturn)) void _exit(int status)
{
	onnxhook_finish();
	onnxhook_real_exit(status);
}

EXIT_PATH ONNXHOOK_EXPORT __attribute__((noreturn)) void _Exit(int status)
{
	onnxhook_finish();
	onnxhook_real_exit(status);
}

/* quick_exit runs at_quick_exit handlers, then _exit from inside libc (not through us). Its
 * real one is looked up at start-up: dlsym is no call for a signal handler. */
EXIT_PATH ONNXHOOK_EXPORT __attribute__((noreturn)) void quick_exit(int status)
{
	onnxhook_finish();
	if (real_quick_exit)
		real_quick_exit(status);
	onnxhook_real_exit(status);
}

/* exec replaces the image whose calls were recorded: an exit path, so the model is written
 * first. glibc's exec functions reach the system call through its internal __execve, not the
 * PLT, so each public entry point is interposed. If the exec fails, the program goes on with
 * its recording finished: the model stays as written and later calls pass through. A vfork
 * child (another pid) leaves the recorder alone. posix_spawn replaces no image: not here. */
typedef int execve_fn(const char *, char *const[], char *const[]);
typedef int execv_fn(const char *, char *const[]);
typedef int fexecve_fn(int, char *const[], char *const[]);
typedef int execveat_fn(int, const char *, char *const[], char *const[], int);
static execve_fn *real_execve, *real_execvpe;
static execv_fn *real_execv, *real_execvp;
static fexecve_fn *real_fexecve;
static execveat_fn *real_execveat;

static bool exec_resolved;

/* Looked up before main: an exec in a vfork child must not need the dynamic linker's locks. */
__attribute__((constructor)) static void resolve_exec(void)
{
	real_execve = (execve_fn *)dlsym(RTLD_NEXT, "execve");
	real_execvpe = (execve_fn *)dlsym(RTLD_NEXT, "execvpe");
	real_execv = (execv_fn *)dlsym(RTLD_NEXT, "execv");
	real_execvp = (execv_fn *)dlsym(RTLD_NEXT, "execvp");
	real_fexecve = (fexecve_fn *)dlsym(RTLD_NEXT, "fexecve");
	real_execveat = (execveat_fn *)dlsym(RTLD_NEXT, "execveat");
	__atomic_store_n(&exec_resolved, true, __ATOMIC_RELEASE);
}

/* Writes the model. exec is async-signal-safe: called from a handler that interrupted this
 * thread inside a hook (maybe holding the recorder lock), the model is written only if the
 * lock is free, as for a signal dump. */
static void before_exec(void)
{
	if (!__atomic_load_n(&exec_resolved, __ATOMIC_ACQUIRE))
		resolve_exec(); /* exec'd from a constructor that ran before ours */
	if (onnxhook_in_hook)
		onnxhook_finish_from_signal(-1); /* a handler of an unknown signal */
	else
		onnxhook_finish();
}

#define CALL_REAL(fn, ...) (before_exec(), fn ? fn(__VA_ARGS__) : (errno = ENOSYS, -1))

ONNXHOOK_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return CALL_REAL(real_execve, path, argv, envp);
}

ONNXHOOK_EXPORT int execv(const char *path, char *const argv[])
{
	return CALL_REAL(real_execv, path, argv);
}

ONNXHOOK_EXPORT int execvp(const char *file, char *const argv[])
{
	return CALL_REAL(real_execvp, file, argv);
}

ONNXHOOK_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return CALL_REAL(real_execvpe, file, argv, envp);
}

ONNXHOOK_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return CALL_REAL(real_fexecve, fd, argv, envp);
}

ONNXHOOK_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
			     int flags)
{
	return CALL_REAL(real_execveat, dirfd, path, argv, envp, flags);
}

/* execl's arguments as glibc reads them: arg (never NULL, as declared), the variable ones up to
 * and with a NULL, then (execle) envp. The array goes on the caller's stack (no malloc: exec may
 * run in a vfork child), hence a macro. */
static size_t count_args(va_list ap)
{
	size_t n = 1;

	while (va_arg(ap, const char *))
		n++;
	return n;
}

#define ARGV_OF(argv, arg, envp_out)                                                             \
	va_list ap;                                                                              \
	char *const **envp_want = (envp_out);                                                    \
	va_start(ap, arg);                                                                       \
	size_t n_args = count_args(ap);                                                          \
	va_end(ap);                                                                              \
	char *argv[n_args + 1];                                                                  \
	va_start(ap, arg);                                                                       \
	argv[0] = (char *)arg;                                                                   \
	for (size_t i = 1; i <= n_args; i++) /* argv[n_args]: the NULL */                        \
		argv[i] = va_arg(ap, char *);                                                    \
	if (envp_want)                                                                           \
		*envp_want = va_arg(ap, char *const *);                                          \
	va_end(ap)

ONNXHOOK_EXPORT int execl(const char *path, const char *arg, ...)
{
	ARGV_OF(argv, arg, NULL);
	return CALL_REAL(real_execv, path, argv);
}

ONNXHOOK_EXPORT int execlp(const char *file, const char *arg, ...)
{
	ARGV_OF(argv, arg, NULL);
	return CALL_REAL(real_execvp, file, argv);
}

ONNXHOOK_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *const *envp;
	ARGV_OF(argv, arg, &envp);
	return CALL_REAL(real_execve, path, argv, envp);
}

static bool is_default(const struct sigaction *a)
{
	return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_DFL;
}

static bool is_ignored(const struct sigaction *a)
{
	return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_IGN;
}

static void on_signal(int sig, siginfo_t *info, void *uc)
{
	struct sigaction app = app_action[sig];

	if (is_ignored(&app))
		return;
	if (!is_default(&app)) {
		/* The app's own handler decides; its exit path (exit, _exit) writes the model. */
		int outer = handling;
		if (app.sa_flags & SA_RESETHAND)
			app_action[sig].sa_handler = SIG_DFL, app_action[sig].sa_flags = 0;
		handling = sig; /* an exit path it takes dumps as from a signal handler */
		if (app.sa_flags & SA_SIGINFO)
			app.sa_sigaction(sig, info, uc);
		else
			app.sa_handler(sig);
		handling = outer;
		return;
	}
	/* The default action ends the process: dump (best effort, see README), then let the
	 * default action happen so the exit status and any core dump stay as they were. */
	onnxhook_finish_from_signal(sig);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	ours[sig] = 0;
	real_sigaction(sig, &dfl, NULL);
	/* A fault re-executes the faulting instruction on return; anything else is re-sent and
	 * delivered as soon as the handler returns. */
	if (!(info && info->si_code > 0 && sig != SIGABRT))
		raise(sig);
}

static void install(int sig)
{
	struct sigaction current, ours_act = {.sa_sigaction = on_signal,
					      .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK};

	if (real_sigaction(sig, NULL, &current) < 0 || is_ignored(&current))
		return; /* e.g. SIGHUP under nohup stays ignored */
	sigfillset(&ours_act.sa_mask);
	app_action[sig] = current;
	if (real_sigaction(sig, &ours_act, NULL) == 0)
		ours[sig] = 1;
}

void onnxhook_process_init(const struct onnxhook_config *cfg)
{
	real__exit = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
	real_quick_exit = (void (*)(int))dlsym(RTLD_NEXT, "quick_exit");
	real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
	if (!real_sigaction)
		return;
	for (size_t i = 0; cfg->dump_on_signal && i < sizeof(end_signals) / sizeof(int); i++)
		install(end_signals[i]);
	for (size_t i = 0; cfg->dump_on_crash && i < sizeof(crash_signals) / sizeof(int); i++)
		install(crash_signals[i]);
}

/* While we keep a handler installed, the app's sigaction/signal calls change only what the
 * app believes is installed; ours chains to it. Other signals pass straight through. */
ONNXHOOK_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real_sigaction)
		real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
	if (sig <= 0 || sig >= NSIG || !ours[sig])
		return real_sigaction(sig, act, old);
	if (old)
		*old = app_action[sig];
	if (act)
		app_action[sig] = *act;
	return 0;
}

ONNXHOOK_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	if (!real_signal)
		real_signal = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
	if (sig <= 0 || sig >= NSIG || !ours[sig])
		return real_signal(sig, handler);
	/* glibc's signal(): BSD semantics, the handler stays and interrupted calls restart. */
	sighandler_t old = (app_action[sig].sa_flags & SA_SIGINFO) ? SIG_DFL : app_action[sig].sa_handler;
	struct sigaction act = {.sa_handler = handler, .sa_flags = SA_RESTART};
	sigemptyset(&act.sa_mask);
	app_action[sig] = act;
	return old;
}

ONNXHOOK_LOCAL_ALIAS(_exit)
ONNXHOOK_LOCAL_ALIAS(_Exit)
ONNXHOOK_LOCAL_ALIAS(quick_exit)
ONNXHOOK_LOCAL_ALIAS(sigaction)
ONNXHOOK_LOCAL_ALIAS(signal)
ONNXHOOK_LOCAL_ALIAS(execve)
ONNXHOOK_LOCAL_ALIAS(execv)
ONNXHOOK_LOCAL_ALIAS(execvp)
ONNXHOOK_LOCAL_ALIAS(execvpe)
ONNXHOOK_LOCAL_ALIAS(fexecve)
ONNXHOOK_LOCAL_ALIAS(execveat)
ONNXHOOK_LOCAL_ALIAS(execl)
ONNXHOOK_LOCAL_ALIAS(execlp)
ONNXHOOK_LOCAL_ALIAS(execle)
