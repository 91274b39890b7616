/* SPDX-License-Identifier: MIT */
/* Process-wide state of the preload: configuration, guard, recorder lock, writing at exit. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifacts.h"
#include "hook.h"
#include "report.h"
#include "util.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
bool onnxhook_recording; /* hot path: one relaxed load (hook.h) */
static struct onnxhook_config config;
static struct onnxhook_graph graph;
static pid_t graph_pid;   /* the process whose calls the graph holds */
static bool finished;     /* the model was written (or recording gave up for good) */
static unsigned pass_no = 1; /* the pass being recorded */
static bool captured;     /* the chosen pass is complete: recording is off */
static char unmapped[256]; /* host layers recorded as custom-domain nodes, comma-separated */
/* What the explicit output path held when this process started: if that changes before we
 * write, another process of the same run wrote there. */
static struct stat output_at_start;
static bool output_existed;
static char tmpdir[4096] = "/tmp"; /* $TMPDIR at start-up: where a model goes if its path fails */

/* initial-exec: one TLS load, no __tls_get_addr call, on every hooked call. */
__thread int onnxhook_in_hook __attribute__((tls_model("initial-exec")));
static __thread bool record_again __attribute__((tls_model("initial-exec")));
static __thread pid_t my_tid __attribute__((tls_model("initial-exec")));
/* This thread holds rec_lock (or is taking or letting it go): the allocator hooks, reached from
 * our own frees (or from a signal handler that interrupted us), must not take it again. */
static __thread bool holding __attribute__((tls_model("initial-exec")));
/* The next record_begin is the check before the real call (onnxhook_checking). */
static __thread bool checking __attribute__((tls_model("initial-exec")));
/* Bytes the check kept for the recording after the call (test data of in-place ops). */
static __thread struct onnxhook_stash stash;
static pid_t owner; /* the thread whose passes are recorded (the first that records) */
/* getpid() of this process, refreshed in a fork child: glibc no longer caches the pid, and a
 * system call on every recorded call costs more than recording a small op. The exit paths
 * still ask the kernel (a vfork child runs no atfork handler). */
static pid_t self_pid;

/* holding is set before the lock is taken and cleared after it is let go: a signal handler
 * between the two would otherwise wait for this very thread. */
static void lock_recorder(void)
{
	holding = true;
	atomic_signal_fence(memory_order_seq_cst);
	pthread_mutex_lock(&rec_lock);
}

static bool trylock_recorder(void)
{
	if (holding)
		return false;
	holding = true;
	atomic_signal_fence(memory_order_seq_cst);
	if (pthread_mutex_trylock(&rec_lock) != 0) {
		holding = false;
		return false;
	}
	return true;
}

/* The span of the memory map, for the allocator hooks: a block outside it (most frees) needs
 * no lock. Kept up to date by whoever changed the map, before unlocking. */
static _Atomic uintptr_t mapped_lo, mapped_hi;

static void unlock_recorder(void)
{
	const struct onnxhook_memmap *m = &graph.mem;

	atomic_store_explicit(&mapped_lo, m->n ? m->v[0].lo : 0, memory_order_relaxed);
	atomic_store_explicit(&mapped_hi, m->n ? m->v[m->n - 1].hi : 0, memory_order_relaxed);
	pthread_mutex_unlock(&rec_lock);
	atomic_signal_fence(memory_order_seq_cst);
	holding = false;
}

static bool maybe_mapped(const void *p, size_t n)
{
	uintptr_t lo = (uintptr_t)p;

	return lo < atomic_load_explicit(&mapped_hi, memory_order_relaxed) &&
	       lo + n > atomic_load_explicit(&mapped_lo, memory_order_relaxed);
}

/* fork: the child must not inherit a lock held by a parent thread that was recording. */
static void fork_prepare(void)
{
	lock_recorder();
	onnxhook_stack_atfork(0);
}

static void fork_parent(void)
{
	onnxhook_stack_atfork(1);
	unlock_recorder();
}

static void fork_child(void)
{
	onnxhook_stack_atfork(2);
	holding = false;
	pthread_mutex_init(&rec_lock, NULL);
	my_tid = 0; /* the child's thread has its own id */
	self_pid = getpid();
}

/* Half the machine's memory: a pass that never ends must not take the host down with it. */
static uint64_t default_max_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size / 2 : (uint64_t)8 << 30;
}


static void warn_changed(const struct onnxhook_graph *g, uint32_t value, const char *reader)
{
	const struct onnxhook_value *v = &g->values[value];
	char shape[128];

	onnxhook_shape_str(&v->shape, shape, sizeof(shape));
	onnxhook_warn("the memory of %s (%s, written by %s) changed before %s read it: code the hook "
		      "does not see modified it, so the model takes what %s read as a new graph input",
		      v->name ? v->name : g->nodes[v->producer].name, shape,
		      g->nodes[v->producer].label, reader, reader);
}

static void init(void)
{
	char err[512];
	int fd;

	/* Our own descriptor for log lines: the app may close or redirect fd 2. Put it high so
	 * the app's own numbering is untouched. */
	fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 200);
	onnxhook_log_init(fd >= 0 ? fd : STDERR_FILENO, ONNXHOOK_LOG_INFO);
	if (onnxhook_config_read(&config, secure_getenv, err, sizeof(err)) < 0) {
		onnxhook_error("%s; tracing disabled", err);
		return;
	}
	onnxhook_log_init(fd >= 0 ? fd : STDERR_FILENO, config.log);
	if (config.output_explicit) {
		char exe[256], path[4096];
		onnxhook_exe_name(exe, sizeof(exe));
		output_existed = onnxhook_path_expand(config.output, getpid(), exe, path, sizeof(path)) == 0 &&
				 stat(path, &output_at_start) == 0;
	}
	const char *t = secure_getenv("TMPDIR");
	if (t && *t && strlen(t) < sizeof(tmpdir))
		strcpy(tmpdir, t);
	onnxhook_provenance_init();
	onnxhook_graph_init(&graph);
	graph.test_data = config.test_data; /* inputs and outputs are copied as they are recorded */
	graph.layer_data = config.layer_data; /* and every layer's result (onnxhook verify) */
	onnxhook_graph_on_changed(warn_changed);
	graph.max_nodes = config.max_nodes ? config.max_nodes : ONNXHOOK_DEFAULT_MAX_NODES;
	graph.max_bytes = config.max_bytes ? config.max_bytes : default_max_bytes();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	graph_pid = self_pid = getpid();
	onnxhook_process_init(&config);
	onnxhook_alloc_init();
	/* Before main: the patching needs the program to be the only thread. */
	onnxhook_located_init(&config);
	__atomic_store_n(&onnxhook_recording, true, __ATOMIC_SEQ_CST);
	onnxhook_hosts_loaded(); /* the host libraries the program is linked with */
}

__attribute__((constructor)) static void onnxhook_ctor(void)
{
	pthread_once(&init_once, init);
}

void *onnxhook_resolve(const char *symbol)
{
	void *p = dlsym(RTLD_NEXT, symbol);

	if (!p) {
		onnxhook_error("symbol lookup error: %s: no definition after libonnxhook.so", symbol);
		onnxhook_real_exit(127); /* as the dynamic linker would: exit status 127 */
	}
	return p;
}

static bool record_begin(struct onnxhook_call *c, const char *symbol, bool named);

bool onnxhook_record_begin(struct onnxhook_call *c, const char *symbol)
{
	return record_begin(c, symbol, true);
}

bool onnxhook_record_begin_unnamed(struct onnxhook_call *c, const char *symbol)
{
	return record_begin(c, symbol, false);
}

static bool record_begin(struct onnxhook_call *c, const char *symbol, bool named)
{
	struct onnxhook_stack stack = {0};
	pid_t who = __atomic_load_n(&owner, __ATOMIC_RELAXED);

	if (!my_tid)
		my_tid = gettid();

	/* Before the lock (see stack.c), and only for the thread whose passes are recorded: other
	 * threads' calls must not move its instance numbers. A check names nothing. */
	if (named && config.stack && !checking && (!who || who == my_tid))
		onnxhook_stack_capture(&stack);
	lock_recorder();
	/* A forked child starts with the parent's graph: it records its own from scratch. */
	if (graph_pid != self_pid && !finished) {
		onnxhook_graph_reset(&graph);
		onnxhook_stack_reset();
		graph_pid = self_pid;
		owner = 0;
		pass_no = 1;
	}
	if (finished || captured || graph.failed) {
		unlock_recorder();
		return false;
	}
	if (!owner)
		__atomic_store_n(&owner, my_tid, __ATOMIC_RELAXED);
	if (checking) {
		onnxhook_stash_clear(&stash);
		onnxhook_call_begin_check(c, &graph, symbol, &stash);
		return true;
	}
	onnxhook_call_begin(c, &graph, symbol);
	c->stash = &stash;
	/* Other threads' calls join only through buffers the recorded graph wrote. */
	c->foreign = my_tid != owner;
	if (!c->foreign && named)
		onnxhook_stack_scope(c, &stack);
	return true;
}

void onnxhook_checking(bool on)
{
	checking = on;
}

bool onnxhook_memory_followed(const void *p, size_t n)
{
	return maybe_mapped(p, n);
}

/* The allocator hooks (alloc.c): only while recording, and never from under our own lock. */
static void note_locked(const struct onnxhook_memory_note *m)
{
	if (graph_pid != self_pid || finished || !m->n)
		return;
	if (m->to)
		onnxhook_graph_move(&graph, (uintptr_t)m->p, (uintptr_t)m->p + m->n, (uintptr_t)m->to);
	else
		onnxhook_graph_forget(&graph, (uintptr_t)m->p, (uintptr_t)m->p + m->n);
}

void onnxhook_memory_released(const void *p, size_t n)
{
	if (!onnxhook_is_recording() || holding || !n || !maybe_mapped(p, n))
		return;
	lock_recorder();
	note_locked(&(struct onnxhook_memory_note){p, n, NULL});
	unlock_recorder();
}

void onnxhook_memory_moved(const void *from, size_t n, const void *to)
{
	if (!onnxhook_is_recording() || holding || !n ||
	    (!maybe_mapped(from, n) && !maybe_mapped(to, n)))
		return;
	lock_recorder();
	note_locked(&(struct onnxhook_memory_note){from, n, to});
	unlock_recorder();
}

bool onnxhook_memory_move_begin(const void *p, size_t n)
{
	if (!onnxhook_is_recording() || holding || !n || !maybe_mapped(p, n))
		return false;
	lock_recorder();
	return true;
}

void onnxhook_memory_move_end(bool held, const struct onnxhook_memory_note *notes, size_t k)
{
	if (!held) {
		for (size_t i = 0; i < k; i++)
			if (notes[i].to)
				onnxhook_memory_moved(notes[i].p, notes[i].n, notes[i].to);
			else
				onnxhook_memory_released(notes[i].p, notes[i].n);
		return;
	}
	for (size_t i = 0; i < k; i++)
		note_locked(&notes[i]);
	unlock_recorder();
}

bool onnxhook_record_again(void)
{
	bool again = record_again;

	record_again = false;
	return again;
}

static void dump_after_pass(void);

/* The call just made starts pass pass_no + 1 (nothing of it is recorded yet). */
static void new_pass(const char *symbol)
{
	pass_no++;
	onnxhook_debug("pass %u begins at %s", pass_no, symbol);
	if (config.pass == ONNXHOOK_PASS_ALL) {
		onnxhook_graph_new_pass(&graph);
		record_again = true;
	} else if (pass_no <= config.pass) {
		onnxhook_graph_reset(&graph); /* an earlier pass than the one wanted */
		onnxhook_stack_reset();
		record_again = true;
	} else {
		/* Captured: from now on every hook is a plain pass-through. */
		captured = true;
		__atomic_store_n(&onnxhook_recording, false, __ATOMIC_SEQ_CST);
		dump_after_pass();
	}
}

void onnxhook_record_end(struct onnxhook_call *c)
{
	int r = onnxhook_call_end(c);

	if (c->check) {
		/* Checks change the map only; their errors are the recording's to report. */
	} else if (r == ONNXHOOK_NEW_PASS) {
		new_pass(c->label);
	} else if (r == ONNXHOOK_SKIPPED) {
		/* another thread's own inference */
	} else if (r == -E2BIG || r == -EFBIG) {
		onnxhook_warn("recording stopped at %s: the pass passed ONNXHOOK_MAX_%s=%llu; the model "
			      "will hold the %zu nodes before it", c->label, r == -E2BIG ? "NODES" : "BYTES",
			      (unsigned long long)(r == -E2BIG ? graph.max_nodes : graph.max_bytes),
			      graph.n_nodes);
	} else if (r < 0) {
		onnxhook_warn("recording stopped at %s: %s; the model will hold the %zu nodes before it",
			      c->label, strerror(-r), graph.n_nodes);
	} else if (onnxhook_log_level() >= ONNXHOOK_LOG_DEBUG && graph.n_nodes > c->mark_nodes) {
		const struct onnxhook_node *n = &graph.nodes[graph.n_nodes - 1];
		char shape[128];
		onnxhook_shape_str(&graph.values[n->output].shape, shape, sizeof(shape));
		onnxhook_debug("%s -> %s (%s)", c->label, n->name, shape);
	}
	unlock_recorder();
}

void onnxhook_pass_boundary(void)
{
	if (!onnxhook_is_recording())
		return;
	lock_recorder();
	onnxhook_graph_mark_boundary(&graph);
	unlock_recorder();
}

/* Called with the recorder lock held (from a record function). */
void onnxhook_note_unmapped(const char *what)
{
	size_t n = strlen(what), len = strlen(unmapped);
	const char *p = unmapped;

	while ((p = strstr(p, what))) {
		if ((p == unmapped || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return; /* listed already */
		p += n;
	}
	if (len + n + 3 < sizeof(unmapped))
		snprintf(unmapped + len, sizeof(unmapped) - len, "%s%s", len ? ", " : "", what);
}

void onnxhook_exe_name(char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

	if (n <= 0) {
		snprintf(buf, len, "onnxhook");
		return;
	}
	path[n] = '\0';
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n_base = strlen(base) < len ? strlen(base) : len - 1;
	memcpy(buf, base, n_base);
	buf[n_base] = '\0';
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* An explicit path (without %p) used by several processes of one run: the later ones add
 * "-<pid>" before the extension instead of replacing the earlier model. A program run again
 * replaces its model, as cc -o does. */
static bool written_by_another(char *path, size_t len)
{
	struct stat now;
	char with_pid[4096];

	if (onnxhook_output_kind(path) != ONNXHOOK_OUTPUT_FILE || stat(path, &now) < 0)
		return false; /* nothing there yet, or written into (/dev/null, /dev/stdout) */
	if (output_existed && now.st_dev == output_at_start.st_dev &&
	    now.st_ino == output_at_start.st_ino && now.st_size == output_at_start.st_size &&
	    now.st_mtim.tv_sec == output_at_start.st_mtim.tv_sec &&
	    now.st_mtim.tv_nsec == output_at_start.st_mtim.tv_nsec)
		return false;
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash + 1 : path, '.');
	if (!dot || dot == (slash ? slash + 1 : path))
		dot = path + strlen(path);
	if (snprintf(with_pid, sizeof(with_pid), "%.*s-%ld%s", (int)(dot - path), path, (long)getpid(),
		     dot) >= (int)sizeof(with_pid))
		return false;
	snprintf(path, len, "%s", with_pid);
	return true;
}

/* A dump from a signal handler must not call what may allocate or take a lock: printf's
 * floating point (glibc's may allocate) and strerror (it may translate, under a lock) are out. */
static const char *errtext(int e)
{
	const char *s = strerrordesc_np(e);

	return s ? s : "unknown error";
}

/* ONNXHOOK_REPORT (the onnxhook command's summary): one line per model (src/report.h), appended
 * in one write so that the processes of one run never interleave. Called once, under
 * the recorder lock, maybe from a signal handler on a small stack: the buffers are static. */
static bool write_report(const char *final, const char *ops, const struct onnxhook_write_stats *st,
			 double seconds)
{
	static char path[4096], line[32768];
	static struct onnxhook_report rep;
	char exe[256], cwd[4096] = "";
	int fd, len;

	onnxhook_exe_name(exe, sizeof(exe));
	if (onnxhook_path_expand(config.report, getpid(), exe, path, sizeof(path)) < 0) {
		onnxhook_error("ONNXHOOK_REPORT='%s' expands to an overlong path", config.report);
		return false;
	}
	if (final[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	rep.pid = (long)getpid();
	rep.nodes = st->n_nodes;
	rep.inputs = st->n_inputs;
	rep.outputs = st->n_outputs;
	rep.parameters = st->parameters;
	rep.bytes = st->bytes;
	rep.data_bytes = st->n_external ? st->data_bytes : 0;
	rep.seconds = seconds;
	rep.incomplete = graph.failed;
	snprintf(rep.path, sizeof(rep.path), "%s%s%s", cwd, cwd[0] ? "/" : "", final);
	snprintf(rep.ops, sizeof(rep.ops), "%s", ops);
	if ((len = onnxhook_report_format(&rep, line, sizeof(line))) < 0)
		return false;
	/* One write of a few KB to an O_APPEND file: the processes' lines never interleave. Not a
	 * plain write: a FIFO given as the report must not raise SIGPIPE in the program. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	int r = fd < 0 ? -errno : onnxhook_write_all(fd, (const uint8_t *)line, (size_t)len);
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		onnxhook_error("cannot append to ONNXHOOK_REPORT=%s: %s", path, errtext(-r));
		return false;
	}
	return true;
}

/* Why the model got no external data file although one was due (st->data_refused). */
static const char *data_refused_why(const struct onnxhook_write_stats *st, const char *path)
{
	static char why[160];

	if (st->data_refused == ONNXHOOK_DATA_NO_PLACE)
		return "a device, FIFO or descriptor has no place beside it for a data file (external "
		       "data cannot go to a pipe)";
	snprintf(why, sizeof(why), "the data file's name, %zu bytes with \".data\", would pass NAME_MAX "
		 "(%d bytes)", strlen(strrchr(path, '/') ? strrchr(path, '/') + 1 : path) + 5, NAME_MAX);
	return why;
}

static bool st_data_refused_past_limit(int r, const struct onnxhook_write_stats *st)
{
	return (r == -EFBIG || r == -ENAMETOOLONG) && st->data_refused;
}

/* How the model is written: at an exit, or from a signal handler (see
 * onnxhook_finish_from_signal), after a crash without provenance. */
enum dump { DUMP_EXIT, DUMP_SIGNAL, DUMP_CRASH };

static void write_model(enum dump mode)
{
	char exe[256], path[4096], final[4096], ops[1024], num[3][32];
	struct onnxhook_write_stats st = {0};
	struct onnxhook_write_opts opts = {.opset = config.opset, .producer_version = ONNXHOOK_VERSION,
					   .debug_outputs = config.debug_outputs,
					   .external_data = config.external_data};
	char data[160] = "", count[ONNXHOOK_FORMAT_MAX], size[ONNXHOOK_FORMAT_MAX];
	double t0 = now();
	int r;

	onnxhook_exe_name(exe, sizeof(exe));
	opts.graph_name = exe;
	/* Without provenance only the version: no command line, path or build-id (secrets in a
	 * program's arguments stay out of a model that is shared). */
	if (mode != DUMP_CRASH && !config.provenance) {
		static const struct onnxhook_metadata version_only = {"onnxhook.version", ONNXHOOK_VERSION};
		opts.metadata = &version_only;
		opts.n_metadata = 1;
	} else if (mode != DUMP_CRASH)
		opts.metadata = onnxhook_provenance(&graph, &opts.n_metadata, mode == DUMP_SIGNAL);
	if (onnxhook_path_expand(config.output, getpid(), exe, path, sizeof(path)) < 0) {
		onnxhook_error("ONNXHOOK_OUTPUT='%s' expands to an overlong path", config.output);
		path[0] = '\0';
	}
	if (path[0] && config.output_explicit && written_by_another(path, sizeof(path)))
		onnxhook_warn("%s was written by another process since this one started; writing %s",
			      config.output, path);
	if (config.dynamic_batch && mode != DUMP_EXIT) {
		/* The rewrite adds constants to the graph, with malloc. */
		onnxhook_error("ONNXHOOK_BATCH=dynamic is not applied in a dump from a signal handler; "
			       "the model keeps the traced batch size");
	} else if (config.dynamic_batch) {
		char why[256];
		if (onnxhook_graph_dynamic_batch(&graph, why, sizeof(why)) < 0)
			onnxhook_error("ONNXHOOK_BATCH=dynamic: %s; the model keeps the traced batch size", why);
	}
	r = !path[0] ? -ENAMETOOLONG : config.output_explicit ? onnxhook_output_kind(path) : 0;
	if (r >= 0)
		r = onnxhook_write(&graph, &opts, path, config.output_explicit, final, sizeof(final), &st);
	if (r == -ENOMEM && mode != DUMP_EXIT) {
		/* The memory mapped for it ran out: another place would not help. */
		onnxhook_error("cannot write %s from a signal handler: %s; no model written", path, errtext(-r));
		return;
	}
	if (r < 0) {
		/* Nothing lost: the trace goes to the temporary directory instead. */
		char alt[4096];
		if (path[0] && st_data_refused_past_limit(r, &st))
			onnxhook_error("cannot write %s: past protobuf's 2 GiB limit its weights need a data "
				       "file, and %s", path, data_refused_why(&st, path));
		else
			onnxhook_error("cannot write %s: %s", path, onnxhook_output_strerror(r));
		if (snprintf(alt, sizeof(alt), "%s/%s.%ld.onnx", tmpdir, exe, (long)getpid()) >= (int)sizeof(alt))
			snprintf(alt, sizeof(alt), "/tmp/onnxhook.%ld.onnx", (long)getpid());
		r = onnxhook_write(&graph, &opts, alt, false, final, sizeof(final), &st);
		if (r < 0) {
			onnxhook_error("cannot write %s either: %s; no model written", alt, errtext(-r));
			return;
		}
	}
	if (st.data_refused && !st.n_external && opts.external_data == ONNXHOOK_EXTERNAL_ALWAYS)
		onnxhook_error("%s: ONNXHOOK_EXTERNAL_DATA=always not followed: %s; its weights are inside "
			       "the model", final, data_refused_why(&st, final));
	if (st.external_forced)
		onnxhook_error("%s: with its weights inside the model would be %s GB, past protobuf's "
			       "2 GiB limit: ONNXHOOK_EXTERNAL_DATA=never not followed, weights written to %s.data",
			       final, onnxhook_format_fixed(num[0], sizeof(num[0]), (double)st.inline_bytes / 1e9, 2), final);
	if (st.n_external) {
		const char *base = strrchr(final, '/');
		snprintf(data, sizeof(data), ", %s in %.100s.data",
			 onnxhook_format_bytes(st.data_bytes, size, sizeof(size)), base ? base + 1 : final);
	}
	onnxhook_graph_op_summary(&graph, ops, sizeof(ops));
	if (!config.report[0] || !write_report(final, ops, &st, now() - t0))
		onnxhook_info("wrote %s: %u nodes (%s), %u input%s, %u output%s, %s parameters, %s%s, %s s%s",
			      final, st.n_nodes, ops, st.n_inputs, st.n_inputs == 1 ? "" : "s", st.n_outputs,
			      st.n_outputs == 1 ? "" : "s", onnxhook_format_count(st.parameters, count, sizeof(count)),
			      onnxhook_format_bytes(st.bytes, size, sizeof(size)), data, onnxhook_format_fixed(num[2], sizeof(num[2]), now() - t0, 2),
			      graph.failed ? " (incomplete: recording stopped early)" : "");
	if (unmapped[0])
		onnxhook_warn("%s holds layers no standard ONNX op reproduces (%s): onnxruntime cannot run it",
			      final, unmapped);
	if (mode == DUMP_EXIT)
		onnxhook_write_artifacts(&graph, &config, exe, final);
	else if (config.dot[0] || config.test_data)
		onnxhook_warn("a dump from a signal handler writes the model only: no %s",
			      config.dot[0] && config.test_data ? "Graphviz file or test data"
			      : config.dot[0]			? "Graphviz file"
								: "test data");
}

/* Writes the model once, if this process recorded anything. Every exit path ends here. */
static void finish_locked(enum dump mode)
{
	if (!finished && graph_pid == getpid() && graph.n_nodes > 0) {
		if (config.pass != ONNXHOOK_PASS_ALL && pass_no < config.pass)
			onnxhook_error("ONNXHOOK_PASS=%u, but the program ran %u pass%s; no model written",
				       config.pass, pass_no, pass_no == 1 ? "" : "es");
		else
			write_model(mode);
	}
	finished = true;
}

/* ONNXHOOK_DUMP_AFTER_PASS: called from new_pass() (recorder lock held) when the captured pass has
 * ended. The model is written now rather than at exit, so a program killed later (SIGKILL, a
 * daemon that never exits) loses nothing; finished keeps the exit paths from writing it again. */
static void dump_after_pass(void)
{
	if (config.dump_after_pass)
		finish_locked(false);
}

void onnxhook_finish(void)
{
	int sig;

	/* A vfork child shares the parent's memory: it must not touch the recorder at all. */
	if (graph_pid != getpid())
		return;
	/* An exit path taken inside a signal handler (_exit from a SIGTERM handler). */
	if ((sig = onnxhook_in_signal_handler()) != 0) {
		onnxhook_finish_from_signal(sig);
		return;
	}
	/* Calls made from here on (other destructors, other threads) pass through. */
	__atomic_store_n(&onnxhook_recording, false, __ATOMIC_SEQ_CST);
	onnxhook_in_hook = 1;
	lock_recorder();
	finish_locked(DUMP_EXIT);
	unlock_recorder();
}

/* On the stack of its own, with memory of its own: malloc is what the signal may have
 * interrupted. */
static void dump_on_own_stack(void *arg)
{
	onnxhook_sigarena_use(true);
	finish_locked(*(const enum dump *)arg);
	onnxhook_sigarena_use(false);
}

bool onnxhook_finish_from_signal(int sig)
{
	char name[16] = "a signal";
	enum dump mode = onnxhook_is_crash_signal(sig) ? DUMP_CRASH : DUMP_SIGNAL;
	int r;

	if (graph_pid != getpid())
		return false;
	__atomic_store_n(&onnxhook_recording, false, __ATOMIC_SEQ_CST);
	onnxhook_in_hook = 1;
	if (sig > 0 && sigabbrev_np(sig))
		snprintf(name, sizeof(name), "SIG%s", sigabbrev_np(sig));
	/* Best effort: the signal may have interrupted a thread inside the recorder (this one, or
	 * another that may itself wait for a lock this one holds). */
	if (!trylock_recorder()) {
		/* Unlocked reads, for the message only. */
		if (!__atomic_load_n(&finished, __ATOMIC_RELAXED) && __atomic_load_n(&graph.n_nodes, __ATOMIC_RELAXED))
			onnxhook_error("%s arrived while the recorder was busy; no model written", name);
		return false;
	}
	if (!finished && graph_pid == getpid() && graph.n_nodes > 0 &&
	    (r = onnxhook_run_on_own_stack(dump_on_own_stack, &mode)) < 0)
		onnxhook_error("no stack to dump on after %s: %s; no model written", name, errtext(-r));
	finished = true;
	unlock_recorder();
	return true;
}

__attribute__((destructor)) static void onnxhook_dtor(void)
{
	onnxhook_finish();
}
