/* SPDX-License-Identifier: MIT */
/* onnxhook(1): runs a program with libonnxhook.so preloaded, then says what was written. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli-config.h"
#include "host-list.h"
#include "elfread.h"
#include "locate.h"
#include "onnxhook.h"
#include "report.h"

/* Exit statuses of onnxhook's own failures, as env(1) and timeout(1) have them. */
enum { EXIT_OWN = 125, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

/* ---- the hosts ------------------------------------------------------------------------------ */

struct host {
	const char *name;
	const char *soname; /* as it appears in DT_NEEDED (a prefix: libtinynn.so.0 matches) */
	const char *symbols;
};

/* From the host registry (host-list.h is generated from it: cli/meson.build). */
#define HOST(name, soname, symbols) {name, soname, symbols},
static const struct host hosts[] = {ONNXHOOK_HOST_LIST(HOST)};
#define N_HOSTS (sizeof(hosts) / sizeof(hosts[0]))

static void list_symbols(void)
{
	for (size_t i = 0; i < N_HOSTS; i++)
		printf("%s (%s):\n%s", hosts[i].name, hosts[i].soname, hosts[i].symbols);
	printf("process (libc: exit paths, exec, signals, dlsym, the allocator's release and move):\n%s",
	       ONNXHOOK_PROCESS_SYMBOLS);
}

/* "libtinynn.so.0 or libdarknet.so" */
static void host_sonames(char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_HOSTS && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i == 0 ? "" : i + 1 == N_HOSTS ? " or " : ", ",
				      hosts[i].soname);
}

/* ---- messages ------------------------------------------------------------------------------- */

static bool quiet; /* ONNXHOOK_LOG=quiet: errors only */

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fputs("onnxhook: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((format(printf, 2, 3), noreturn)) static void die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("onnxhook: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

#define usage_error(...)                                                                         \
	do {                                                                                     \
		fprintf(stderr, "onnxhook: error: " __VA_ARGS__);                                \
		fputs("\nTry 'onnxhook --help' for more information.\n", stderr);                \
		exit(EXIT_OWN);                                                                  \
	} while (0)

/* One source for --help and, through help2man, for onnxhook(1): keep the layout help2man
 * reads (sections "Options:", "Environment:", "Examples:"; tags and text two spaces apart). */
static void help(void)
{
	char sonames[256];

	host_sonames(sonames, sizeof(sonames));
	printf("Usage: onnxhook [OPTION]... [--] PROGRAM [ARGUMENT]...\n"
	       "  or:  onnxhook verify [OPTION]... [--] PROGRAM [ARGUMENT]...\n"
	       "  or:  onnxhook [--host-code=LIB]... --list-symbols [PROGRAM]\n"
	       "Run PROGRAM with libonnxhook.so preloaded and write what it computed as an ONNX model;\n"
	       "verify: also run the model in onnxruntime and hold every layer against PROGRAM's own.\n"
	       "\n"
	       "Every call PROGRAM makes to a layer function of a host inference library (%s,\n"
	       "linked dynamically or opened with dlopen) is recorded, and the real function runs: the\n"
	       "program behaves as it would without onnxhook. At exit the recorded inference pass is\n"
	       "written as an ONNX model, graph and weights, and onnxhook prints a summary of it. Programs\n"
	       "that PROGRAM starts (a launcher script's commands) are traced too; a process that records\n"
	       "nothing writes nothing.\n"
	       "\n"
	       "PROGRAM is refused when LD_PRELOAD cannot reach it: a statically linked program, or a\n"
	       "set-user-ID, set-group-ID or file-capability one (the dynamic linker ignores LD_PRELOAD\n"
	       "for those). An existing LD_PRELOAD is kept; libonnxhook.so comes after it.\n"
	       "\n"
	       "The exit status is PROGRAM's; when a signal N killed PROGRAM, onnxhook dies of N too (a\n"
	       "shell shows 128+N), without a core dump of its own. 127 when PROGRAM is not found, 126\n"
	       "when it cannot be run or traced, 125 when onnxhook itself fails (a usage error, an invalid\n"
	       "value, libonnxhook.so not found).\n"
	       "\n"
	       "onnxhook verify runs PROGRAM the same way with every layer's result captured (the test\n"
	       "data set with --layer-data), runs the model in onnxruntime-node on the captured inputs and\n"
	       "prints one line per layer in graph order: the node's name (the call-stack scope), op, shape,\n"
	       "the largest absolute and relative difference from PROGRAM's own buffer, and ok or DRIFT\n"
	       "(ok: max|ort - program| <= atol + rtol * max|program|). The first layer that drifts is\n"
	       "named with its host call, with what it read, and is run again alone on PROGRAM's own\n"
	       "values of its inputs: still off, the op's mapping is wrong; right, the drift came in with\n"
	       "its inputs. Its exit status is 0 when every layer is within tolerance, 1 on drift, and\n"
	       "otherwise as above (PROGRAM's own status when it fails, unverified). It needs node\n"
	       "(ONNXHOOK_NODE, or node on PATH) and the onnxruntime-node package (ONNXHOOK_ORT, or\n"
	       "node's module resolution); without them it says how to install them (status 125). The\n"
	       "model goes to a temporary directory, removed afterwards, unless --output names it.\n"
	       "\n"
	       "With --list-symbols PROGRAM, onnxhook runs nothing: for each host it says whether\n"
	       "PROGRAM links the host library dynamically, or else which of its hooked functions\n"
	       "PROGRAM carries linked in (a stripped program too), found by comparing PROGRAM's x86-64\n"
	       "code with the host library's (the reference: the installed host library, or one given\n"
	       "with --host-code or ONNXHOOK_HOST_CODE); where each is, or why not (not found, found in\n"
	       "more than one place, or its calls go elsewhere). When PROGRAM does not carry them, the\n"
	       "libraries it loads are searched (as onnxhook's own dynamic linker lists them, running\n"
	       "none of their code; not when PROGRAM names another dynamic linker): a\n"
	       "vendor's library may carry a host's code without exporting it. PROGRAM may be a library\n"
	       "itself. Results for PROGRAM are cached by both files' build-ids in $XDG_CACHE_HOME/onnxhook (default\n"
	       "~/.cache/onnxhook). The exit status is 0 when PROGRAM or a library it loads carries a\n"
	       "host's code, 1 when none does, 126 when PROGRAM is not an x86-64 ELF file it can read,\n"
	       "127 when it is not found.\n"
	       "\n"
	       "Options:\n"
	       "  -o, --output=PATH         write the model to PATH: %%p is the pid, %%e the program's\n"
	       "                            name, %%%% a %%; an existing file is replaced atomically\n"
	       "                            (default: %%e.%%p.onnx in the working directory, never\n"
	       "                            replacing a file); a device, FIFO or descriptor\n"
	       "                            (/dev/stdout, /dev/fd/N) is written into\n"
	       "      --pass=N|all          capture inference pass N (default 1), or unroll every pass\n"
	       "      --dynamic-batch       make dim 0 of graph inputs and outputs symbolic (batch)\n"
	       "      --opset=N             ai.onnx opset of the model, 13 to 17 (default 17)\n"
	       "      --external-data=WHEN  auto, always or never: put big weights in an external data\n"
	       "                            file beside the model (auto: when the model would pass 2 GiB)\n"
	       "      --no-stack            do not name nodes after their callers' functions\n"
	       "      --dot=PATH            also write the graph as Graphviz to PATH (%%p, %%e as above)\n"
	       "      --test-data           also write the captured inputs and outputs beside the model\n"
	       "                            (test_data_set_0/input_N.pb, output_N.pb)\n"
	       "      --layer-data          the test data set also holds every layer's result, after\n"
	       "                            output_N (implies --test-data)\n"
	       "      --no-provenance       keep the command line, paths and build-ids out of the model\n"
	       "      --dump-on-signal      also write the model when SIGTERM, SIGINT or SIGHUP ends\n"
	       "                            PROGRAM\n"
	       "      --dump-on-crash       also write the model when PROGRAM crashes (best effort)\n"
	       "      --dump-after-pass     write the model as soon as the captured pass ends, not at\n"
	       "                            exit: a program killed later (SIGKILL) loses nothing\n"
	       "      --rtol=R              verify: relative tolerance (default 1e-4)\n"
	       "      --atol=A              verify: absolute tolerance (default 1e-6)\n"
	       "      --json                verify: print the comparison as JSON, one line per model\n"
	       "  -q, --quiet               print errors only: no summary, no notes\n"
	       "  -v, --verbose             print one line per recorded call and per pass\n"
	       "      --list-symbols        list the hooked symbols per host library, and exit; with a\n"
	       "                            PROGRAM, which of them PROGRAM carries and where (above)\n"
	       "      --host-code=LIB       a host library to compare programs' code with, kept\n"
	       "                            elsewhere than installed (repeatable; added to\n"
	       "                            ONNXHOOK_HOST_CODE)\n"
	       "      --print-library       print the path of the libonnxhook.so it preloads, and exit\n"
	       "  -h, --help                display this help and exit\n"
	       "  -V, --version             output version information and exit\n"
	       "\n"
	       "Environment:\n"
	       "The options set these variables; they can also be set directly, for onnxhook or for a\n"
	       "program started with LD_PRELOAD=libonnxhook.so. An empty value means unset; an invalid\n"
	       "one is an error.\n"
	       "\n"
	       "  ONNXHOOK_OUTPUT=PATH      --output (an explicit path is replaced atomically; a path\n"
	       "                            written by another process of the same run gets -PID)\n"
	       "  ONNXHOOK_LOG=LEVEL        info (default: the summary), quiet (--quiet) or debug\n"
	       "                            (--verbose)\n"
	       "  ONNXHOOK_PASS=N|all       --pass\n"
	       "  ONNXHOOK_OPSET=N          --opset\n"
	       "  ONNXHOOK_BATCH=MODE       static (default) or dynamic (--dynamic-batch)\n"
	       "  ONNXHOOK_EXTERNAL_DATA=WHEN\n"
	       "                            auto (default), always or never (--external-data)\n"
	       "  ONNXHOOK_STACK=0|1        1 (default): name nodes by the call stack; 0: --no-stack\n"
	       "  ONNXHOOK_DOT=PATH         --dot\n"
	       "  ONNXHOOK_TEST_DATA=0|1    --test-data\n"	       "  ONNXHOOK_LAYER_DATA=0|1   --layer-data\n"
	       "  ONNXHOOK_PROVENANCE=0|1   1 (default): the command line, host library paths and\n"
	       "                            build-ids in the model's metadata; 0: --no-provenance\n"
	       "  ONNXHOOK_DUMP_ON_SIGNAL=0|1\n"
	       "                            --dump-on-signal: on SIGTERM, SIGINT or SIGHUP whose action\n"
	       "                            is the default, write the model, then die of the signal\n"
	       "  ONNXHOOK_DUMP_ON_CRASH=0|1\n"
	       "                            --dump-on-crash: the same on SIGSEGV, SIGBUS, SIGFPE,\n"
	       "                            SIGILL and SIGABRT\n"
	       "  ONNXHOOK_DUMP_AFTER_PASS=0|1\n"
	       "                            --dump-after-pass: write the model when the next pass\n"
	       "                            begins (the captured one has ended), once\n"
	       "  ONNXHOOK_MAX_NODES=N      stop recording a pass that never ends at N nodes (default\n"
	       "                            1000000): one warning, and the model holds the graph so far\n"
	       "  ONNXHOOK_MAX_BYTES=N      the same bound on the bytes of weights copied (default: half\n"
	       "                            the machine's memory)\n"
	       "  ONNXHOOK_DEBUG_OUTPUTS=0|1\n"
	       "                            1: every layer's result is also a graph output\n"
	       "  ONNXHOOK_REPORT=FILE      append one line per model written to FILE instead of the\n"
	       "                            summary on stderr (onnxhook sets its own, and copies the\n"
	       "                            lines to this FILE when it is set)\n"
	       "  ONNXHOOK_HOST_CODE=LIB[:LIB]...\n"
	       "                            --host-code: reference host libraries, tried before the\n"
	       "                            installed ones\n"
	       "  ONNXHOOK_LIBRARY=PATH     the libonnxhook.so to preload (default: the one installed\n"
	       "                            with onnxhook, found relative to it)\n"
	       "  ONNXHOOK_NODE=PATH        verify: the node to run onnxruntime-node with (default: node\n"
	       "                            on PATH)\n"
	       "  ONNXHOOK_ORT=DIR          verify: a directory holding node_modules/onnxruntime-node, or\n"
	       "                            the package's own directory\n"
	       "\n"
	       "Examples:\n"
	       "  $ onnxhook -o resnet18.onnx ./resnet18 --size 224\n"
	       "  $ onnxhook --pass=all --dot=graph.dot -- ./run.sh input.jpg\n"
	       "  $ onnxhook --list-symbols\n"
	       "  $ onnxhook verify ./resnet18 --size 64\n"
	       "  $ onnxhook verify --json -o net.onnx --layer-data -- ./darknet-run yolov3-tiny.cfg\n"
	       "  $ onnxhook --list-symbols /usr/bin/darknet\n"
	       "  $ onnxhook --host-code=./lib/libtinynn.so.0 --list-symbols ./resnet18-static\n",
	       sonames);
}

static void version(void)
{
	printf("onnxhook " ONNXHOOK_VERSION "\n");
}

/* ---- options -------------------------------------------------------------------------------- */

static const char *check_name, *check_value;

static char *only_checked(const char *name)
{
	return strcmp(name, check_name) ? NULL : (char *)check_value;
}

/* Sets the variable the preload reads, after validating the value with the preload's parser. */
static void set_var(const char *option, const char *name, const char *value)
{
	struct onnxhook_config cfg;
	char err[512];

	if (!*value)
		usage_error("%s needs a value", option);
	check_name = name;
	check_value = value;
	if (onnxhook_config_read(&cfg, only_checked, err, sizeof(err)) < 0) {
		const char *expected = strstr(err, ": expected ");
		usage_error("invalid %s '%s'%s", option, value, expected ? expected : "");
	}
	if (setenv(name, value, 1) < 0)
		die(EXIT_OWN, "setenv %s: %s", name, strerror(errno));
}

/* ---- the library ---------------------------------------------------------------------------- */

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of this executable, resolved. */
static void exe_dir(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		die(EXIT_OWN, "cannot read /proc/self/exe: %s (is /proc mounted?)", strerror(errno));
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(buf, len, "%s", exe[0] ? exe : "/");
}

static void find_library(char *out)
{
	const char *env = getenv("ONNXHOOK_LIBRARY");
	char dir[PATH_MAX], build_dir[PATH_MAX], candidate[PATH_MAX + 64];

	if (env && *env) {
		if (!is_file(env) || !realpath(env, out))
			die(EXIT_OWN, "ONNXHOOK_LIBRARY=%s: %s", env, errno ? strerror(errno) : "not a file");
		return;
	}
	exe_dir(dir, sizeof(dir));
	/* Run from the build directory: that build's library (the build dir is never installed). */
	if (realpath(ONNXHOOK_BUILD_DIR, build_dir) && !strcmp(dir, build_dir) &&
	    is_file(ONNXHOOK_BUILD_LIBRARY) && realpath(ONNXHOOK_BUILD_LIBRARY, out))
		return;
	snprintf(candidate, sizeof(candidate), "%s/%s/libonnxhook.so", dir, ONNXHOOK_BIN_TO_LIB);
	if (is_file(candidate) && realpath(candidate, out))
		return;
	die(EXIT_OWN, "cannot find libonnxhook.so: not at %s (installed beside this command); set "
		      "ONNXHOOK_LIBRARY to its path", candidate);
}

/* ---- the program: ELF headers --------------------------------------------------------------- */

struct elf_info {
	bool elf;       /* an ELF file of this machine's class and byte order */
	bool is64;      /* ELFCLASS64 */
	uint16_t type, machine; /* e_type (ET_DYN: a shared object or PIE), e_machine */
	char soname[64]; /* DT_SONAME, if any */
	bool interp;    /* PT_INTERP: the dynamic linker runs, so LD_PRELOAD works */
	char interp_path[256]; /* its path */
	bool host;      /* DT_NEEDED names a host library */
	uint32_t needed_hosts; /* which: bit i for hosts[i] */
	char asan[256]; /* DT_NEEDED's libasan.so.N, if any */
};

static void note_needed(struct elf_info *info, const char *name)
{
	const char *base = strrchr(name, '/');

	base = base ? base + 1 : name;
	for (size_t i = 0; i < N_HOSTS; i++) {
		/* libdarknet.so has no SONAME: a link gives its file name, maybe with a path. */
		size_t n = strlen(hosts[i].soname);
		if (!strncmp(base, hosts[i].soname, n) && (base[n] == '\0' || base[n] == '.')) {
			info->host = true;
			info->needed_hosts |= 1u << (i & 31);
		}
	}
	if (!strncmp(base, "libasan.so", 10))
		snprintf(info->asan, sizeof(info->asan), "%s", base);
}

/* Reads what decides whether LD_PRELOAD reaches the file. A file that is not ELF (a script)
 * leaves info->elf false; a truncated or odd one stops early with what was read. */
static void elf_inspect(const char *path, struct elf_info *info)
{
	struct onnxhook_elf e;
	struct onnxhook_elf_phdr ph, dyn = {0};
	uint64_t strtab = 0, strsz = 0, needed[64], soname = UINT64_MAX, base, val;
	size_t n_needed = 0, n;
	int64_t tag;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return;
	if (onnxhook_elf_open(&e, onnxhook_elf_pread, &fd) < 0)
		goto out;
	info->elf = true;
	info->is64 = e.is64;
	info->type = e.type;
	info->machine = e.machine;
	for (unsigned i = 0; i < e.phnum; i++) {
		if (!onnxhook_elf_phdr_at(&e, i, &ph))
			goto out;
		if (ph.type == PT_INTERP) {
			info->interp = true;
			n = e.read(e.ctx, ph.offset, info->interp_path,
				   ph.filesz < sizeof(info->interp_path) ? ph.filesz : sizeof(info->interp_path) - 1);
			info->interp_path[n < sizeof(info->interp_path) ? n : 0] = '\0';
		}
		else if (ph.type == PT_DYNAMIC)
			dyn = ph;
	}
	for (uint64_t i = 0; dyn.type == PT_DYNAMIC && onnxhook_elf_dyn(&e, &dyn, i, &tag, &val); i++) {
		if (tag == DT_NULL)
			break;
		if (tag == DT_STRTAB)
			strtab = val;
		else if (tag == DT_STRSZ)
			strsz = val;
		else if (tag == DT_NEEDED && n_needed < sizeof(needed) / sizeof(needed[0]))
			needed[n_needed++] = val;
		else if (tag == DT_SONAME)
			soname = val;
	}
	/* DT_NEEDED are offsets into DT_STRTAB, an address: mapped to the file by PT_LOAD. */
	if (!onnxhook_elf_offset(&e, strtab, &base))
		goto out;
	for (size_t k = 0; k < n_needed; k++) {
		char name[256];
		if (needed[k] < strsz && (n = e.read(e.ctx, base + needed[k], name, sizeof(name) - 1))) {
			name[n] = '\0';
			note_needed(info, name);
		}
	}
	if (soname < strsz && (n = e.read(e.ctx, base + soname, info->soname, sizeof(info->soname) - 1)))
		info->soname[n] = '\0';
out:
	close(fd);
}

/* The library about to be preloaded is ours: an ELF shared object of this machine named
 * libonnxhook.so (its DT_SONAME). Anything else (ONNXHOOK_LIBRARY=/etc/passwd) would only make
 * ld.so print an error of its own and the run record nothing. */
static void check_library(const char *library)
{
	const char *env = getenv("ONNXHOOK_LIBRARY");
	struct elf_info lib, self;
	char why[160];

	elf_inspect(library, &lib);
	elf_inspect("/proc/self/exe", &self);
	if (!lib.elf || lib.type != ET_DYN)
		snprintf(why, sizeof(why), "not an ELF shared object");
	else if (self.elf && (lib.is64 != self.is64 || lib.machine != self.machine))
		snprintf(why, sizeof(why), "an ELF shared object for another machine");
	else if (strcmp(lib.soname, "libonnxhook.so"))
		snprintf(why, sizeof(why), "an ELF shared object whose soname is %s%s%s, not libonnxhook.so",
			 lib.soname[0] ? "'" : "", lib.soname[0] ? lib.soname : "missing", lib.soname[0] ? "'" : "");
	else
		return;
	die(EXIT_OWN, "%s%s: %s; set ONNXHOOK_LIBRARY to onnxhook's libonnxhook.so", env && *env ? "ONNXHOOK_LIBRARY=" : "",
	    env && *env ? env : library, why);
}

/* ---- the program: finding and checking it --------------------------------------------------- */

/* PATH search as execvp does it; the error is the one a shell would report. */
static int resolve(const char *name, char *out, size_t len)
{
	char deflt[256];
	const char *path = getenv("PATH");
	int err = ENOENT;

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, F_OK) == 0 ? 0 : -errno;
	}
	if (!path) {
		size_t n = confstr(_CS_PATH, deflt, sizeof(deflt));
		path = n > 0 && n <= sizeof(deflt) ? deflt : "/bin:/usr/bin";
	}
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		struct stat st;
		int dlen = (int)(end - p);
		/* An empty element is the working directory. */
		if (snprintf(out, len, "%.*s%s%s", dlen, p, dlen ? "/" : "", name) < (int)len &&
		    stat(out, &st) == 0 && !S_ISDIR(st.st_mode)) {
			if (access(out, X_OK) == 0)
				return 0;
			err = EACCES;
		}
		if (!*end)
			break;
		p = end;
	}
	return -err;
}

/* The hosts whose code a program carries linked in (defined with the locator's helpers below);
 * for the program traced, filled by check_program. */
static void linked_in_hosts(const char *path, char *buf, size_t len);
static char linked_in[512];

/* Refuses what LD_PRELOAD cannot reach; notes a program that links no host library. */
static void check_program(const char *name, const char *path, struct elf_info *info)
{
	struct stat st;
	char sonames[256];

	if (stat(path, &st) < 0)
		die(EXIT_NOT_FOUND, "%s: %s", name, strerror(errno));
	if (S_ISDIR(st.st_mode))
		die(EXIT_CANNOT_RUN, "%s: is a directory", name);
	if (access(path, X_OK) < 0)
		die(EXIT_CANNOT_RUN, "%s: %s", name, strerror(errno));
	if (st.st_mode & (S_ISUID | S_ISGID))
		die(EXIT_CANNOT_RUN,
		    "%s is set-%s-ID: the dynamic linker ignores LD_PRELOAD for secure-execution programs; "
		    "trace a copy without the bit",
		    name, st.st_mode & S_ISUID ? "user" : "group");
	if (getxattr(path, "security.capability", NULL, 0) > 0)
		die(EXIT_CANNOT_RUN,
		    "%s has file capabilities: the dynamic linker ignores LD_PRELOAD for secure-execution "
		    "programs; trace a copy without them",
		    name);
	elf_inspect(path, info);
	if (!info->elf)
		return; /* a script (its interpreter inherits LD_PRELOAD), or for exec to judge */
	if (!info->interp)
		die(EXIT_CANNOT_RUN,
		    "%s is statically linked: LD_PRELOAD cannot reach it (no dynamic linker runs); "
		    "trace a build that links the host library dynamically",
		    name);
	if (!info->host && (linked_in_hosts(path, linked_in, sizeof(linked_in)), linked_in[0])) {
		say("note: %s carries the code of %s linked in: those functions are hooked inline", name,
		    linked_in);
	} else if (!info->host) {
		host_sonames(sonames, sizeof(sonames));
		say("note: %s does not link %s; tracing anyway (it may load one at run time, or be a "
		    "launcher script)", name, sonames);
	}
}

/* Refuses, before the program runs, an output the preload would refuse at exit (it would fall
 * back to $TMPDIR then): a directory, a terminal, a socket, a new file in /dev, /proc or /sys. A
 * descriptor (/dev/stdout, /dev/fd/N) is judged here as the program inherits it. */
static void check_outputs(const struct onnxhook_config *cfg, const char *program)
{
	const char *base = strrchr(program, '/');
	char path[4096];
	int r;

	base = base ? base + 1 : program;
	/* (%p is the program's pid, not known yet: ours stands in; it names no directory.) */
	if (onnxhook_path_expand(cfg->output, getpid(), base, path, sizeof(path)) == 0) {
		if (cfg->output_explicit && (r = onnxhook_output_kind(path)) < 0)
			die(EXIT_OWN, "cannot write the model to %s: %s", path, onnxhook_output_strerror(r));
		if (!cfg->output_explicit && onnxhook_output_in_system_dir(path))
			die(EXIT_OWN, "the working directory is in /dev, /proc or /sys, where onnxhook creates no "
				      "file: run it elsewhere, or give --output");
	}
	if (cfg->dot[0] && onnxhook_path_expand(cfg->dot, getpid(), base, path, sizeof(path)) == 0 &&
	    (r = onnxhook_output_kind(path)) < 0)
		die(EXIT_OWN, "cannot write the Graphviz file to %s: %s", path, onnxhook_output_strerror(r));
}

/* ---- --list-symbols PROGRAM: hosts linked into a program ----------------------------------- */

struct reference {
	const char *name, *installed, *build;
};
#define REFERENCE(name, installed, build) {name, installed, build},
static const struct reference references[] = {ONNXHOOK_HOST_REFERENCE_LIST(REFERENCE)};

static bool from_build_dir(void)
{
	char dir[PATH_MAX], build_dir[PATH_MAX];

	exe_dir(dir, sizeof(dir));
	return realpath(ONNXHOOK_BUILD_DIR, build_dir) && !strcmp(dir, build_dir);
}

/* Every ONNXHOOK_HOST_CODE entry is a library the locator reads. */
static void check_host_code(const char *value)
{
	char copy[4096], err[512];

	snprintf(copy, sizeof(copy), "%s", value ? value : "");
	for (char *save = NULL, *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
		if (onnxhook_locate_check(t, err, sizeof(err)) < 0)
			die(EXIT_OWN, "ONNXHOOK_HOST_CODE: %s", err);
}

/* --host-code LIB: added to ONNXHOOK_HOST_CODE (the preload reads it too), as an absolute path. */
static void add_host_code(const char *lib)
{
	char real[PATH_MAX], err[512], *value;
	const char *old = getenv("ONNXHOOK_HOST_CODE");

	if (!*lib)
		usage_error("--host-code needs a value");
	if (!realpath(lib, real))
		die(EXIT_OWN, "--host-code %s: %s", lib, strerror(errno));
	if (strchr(real, ':'))
		die(EXIT_OWN, "--host-code %s: a path with ':' cannot go in ONNXHOOK_HOST_CODE", lib);
	if (onnxhook_locate_check(real, err, sizeof(err)) < 0)
		die(EXIT_OWN, "--host-code %s", err);
	if (asprintf(&value, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "", real) < 0)
		die(EXIT_OWN, "out of memory");
	set_var("--host-code", "ONNXHOOK_HOST_CODE", value);
	free(value);
}

/* The host's hooked symbols: its list "  name\n  name\n..." split in place. */
static size_t split_symbols(const char *list, char *buf, size_t len, const char **names, size_t max)
{
	size_t n = 0;

	snprintf(buf, len, "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t && n < max; t = strtok_r(NULL, " \n", &save))
		names[n++] = t;
	return n;
}

static void print_found(const struct onnxhook_found *f, int width)
{
	switch (f->status) {
	case ONNXHOOK_FOUND:
		printf("  %-*s found at 0x%" PRIx64 " (%" PRIu64 " bytes, %s)\n", width, f->name, f->vaddr, f->size,
		       f->why);
		break;
	case ONNXHOOK_EXPORTED:
		printf("  %-*s exported at 0x%" PRIx64 " (LD_PRELOAD hooks it)\n", width, f->name, f->vaddr);
		break;
	default:
		printf("  %-*s %s: %s\n", width, f->name, onnxhook_found_status_name(f->status), f->why);
	}
}

/* One line per function of out[0..n), names aligned. */
static void print_founds(const struct onnxhook_found *out, size_t n)
{
	int width = 0;

	for (size_t i = 0; i < n; i++)
		width = (int)strlen(out[i].name) > width ? (int)strlen(out[i].name) : width;
	for (size_t i = 0; i < n; i++)
		print_found(&out[i], width);
}

/* Host h's hooked functions located in the program at path, with the first reference library
 * that has them: ONNXHOOK_HOST_CODE's (and --host-code's), then the registry's (this build
 * tree's first when run from it). names (max 256) and out get the functions; *located how many
 * were found; *tried the last candidate looked for; flags are onnxhook_locate's. Returns the
 * reference used, or NULL when none has them. */
static const char *locate_host(size_t h, const char *path, unsigned flags, char *buf, size_t len,
			       const char **names, size_t *n, struct onnxhook_found *out, size_t *located,
			       const char **tried)
{
	static char codes[4096];
	const char *env = getenv("ONNXHOOK_HOST_CODE"), *cands[66];
	bool build = from_build_dir();
	size_t nc = 0;
	char err[512];

	*n = split_symbols(hosts[h].symbols, buf, len, names, 256);
	*located = 0;
	*tried = "none";
	snprintf(codes, sizeof(codes), "%s", env ? env : "");
	for (char *save = NULL, *t = strtok_r(codes, ":", &save); t && nc < 64; t = strtok_r(NULL, ":", &save))
		cands[nc++] = t;
	for (size_t k = 0; k < N_HOSTS; k++) {
		if (strcmp(references[k].name, hosts[h].name))
			continue;
		cands[nc++] = build ? references[k].build : references[k].installed;
		cands[nc++] = build ? references[k].installed : references[k].build;
	}
	for (size_t c = 0; c < nc; c++) {
		if (c > 0 && !strcmp(cands[c], cands[c - 1]))
			continue;
		*tried = cands[c];
		if (onnxhook_locate(cands[c], path, names, *n, flags, out, err, sizeof(err)) < 0)
			continue; /* not this host's library (or not there) */
		size_t with_ref = 0;
		for (size_t i = 0; i < *n; i++) {
			*located += out[i].status == ONNXHOOK_FOUND || out[i].status == ONNXHOOK_EXPORTED;
			with_ref += out[i].status != ONNXHOOK_NO_REFERENCE;
		}
		if (with_ref)
			return cands[c];
		*located = 0;
	}
	return NULL;
}

/* Whether the dynamic linker the program names (its PT_INTERP) is this process's own, whose real
 * path goes to own: the only one program_libraries runs (by that path, not the name the file
 * gives), so that a crafted file cannot have a program of its choice run. */
static bool same_dynamic_linker(const char *interp, char own_path[PATH_MAX])
{
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
	size_t n = getauxval(AT_PHNUM);
	uintptr_t bias = 0;
	const char *own = NULL;
	char b[PATH_MAX];

	for (size_t i = 0; ph && i < n; i++)
		if (ph[i].p_type == PT_PHDR)
			bias = (uintptr_t)ph - ph[i].p_vaddr;
	for (size_t i = 0; ph && i < n; i++)
		if (ph[i].p_type == PT_INTERP)
			own = (const char *)(bias + ph[i].p_vaddr);
	return own && realpath(own, own_path) && realpath(interp, b) && !strcmp(own_path, b);
}

/* The libraries the dynamic linker would load for the program at path (`LD --list PROGRAM`: it
 * maps them and prints where, running none of their code), one path a line into buf; their count.
 * 0 for a program without a dynamic linker, one that names another dynamic linker than ours, or
 * when it cannot say. */
static size_t program_libraries(const char *path, const char *interp, char *buf, size_t len)
{
	int fd[2];
	size_t used = 0, n = 0;
	char ld[PATH_MAX];

	buf[0] = '\0';
	if (!interp[0] || !same_dynamic_linker(interp, ld) || pipe2(fd, O_CLOEXEC) < 0)
		return 0;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		dup2(fd[1], STDOUT_FILENO);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDERR_FILENO);
		}
		unsetenv("LD_PRELOAD");
		execl(ld, ld, "--list", path, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		return 0;
	}
	char out[65536];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(out) - 1 && ((r = read(fd[0], out + got, sizeof(out) - 1 - got)) > 0 || (r < 0 && errno == EINTR)))
		got += r > 0 ? (size_t)r : 0;
	out[got] = '\0';
	close(fd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	/* "\tlibfoo.so.1 => /path/libfoo.so.1 (0x...)" or "\t/lib64/ld-linux-x86-64.so.2 (0x...)" */
	for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *arrow = strstr(line, "=> "), *lib = arrow ? arrow + 3 : line + strspn(line, " \t");
		char *end = strstr(lib, " (");
		if (*lib != '/' || !end)
			continue;
		*end = '\0';
		int k = snprintf(buf + used, len - used, "%s\n", lib);
		if (k < 0 || (size_t)k >= len - used)
			break;
		used += (size_t)k;
		n++;
	}
	return n;
}

/* Host h's functions in the libraries the program loads (a vendor's library that carries its
 * code without exporting it), against the reference ref: one block per library that has some.
 * True when one has. */
static bool list_libraries(size_t h, const char *arg, const char *libs, const char *ref, const char **names,
			   size_t n, struct onnxhook_found *out)
{
	char err[512];
	bool any = false;

	for (const char *l = libs; *l; l += strcspn(l, "\n") + 1) {
		char lib[PATH_MAX];
		size_t k = strcspn(l, "\n");
		if (k >= sizeof(lib))
			continue;
		memcpy(lib, l, k);
		lib[k] = '\0';
		/* not cached: an entry per library a program loads, most of them holding nothing */
		if (onnxhook_locate(ref, lib, names, n, ONNXHOOK_LOCATE_NO_CACHE, out, err, sizeof(err)) < 0)
			continue;
		size_t located = 0;
		for (size_t i = 0; i < n; i++)
			located += out[i].status == ONNXHOOK_FOUND;
		if (!located)
			continue;
		printf("%s: %zu of %zu hooked functions found in %s, a library %s loads (reference %s):\n",
		       hosts[h].name, located, n, lib, arg, ref);
		print_founds(out, n);
		any = true;
	}
	return any;
}

/* Locates each host's hooked functions in PROGRAM (locate_host). 0 when a host's code is in
 * PROGRAM (located or linked dynamically), 1 when none is; PROGRAM not found 127, unreadable
 * or not x86-64 ELF 126. */
static int list_program(const char *arg)
{
	char path[PATH_MAX], err[512], buf[8192];
	const char *names[256], *env = getenv("ONNXHOOK_HOST_CODE");
	struct onnxhook_found out[256];
	struct elf_info info;
	bool any = false, libs_read = false;
	static char libs[65536];
	size_t n_libs = 0;
	int r;

	if ((r = resolve(arg, path, sizeof(path))) < 0)
		die(r == -ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN, "%s: %s", arg,
		    r == -ENOENT && !strchr(arg, '/') ? "command not found" : strerror(-r));
	if (onnxhook_locate_check(path, err, sizeof(err)) < 0)
		die(EXIT_CANNOT_RUN, "%s", err);
	elf_inspect(path, &info);
	for (size_t h = 0; h < N_HOSTS; h++) {
		if (info.needed_hosts & (1u << (h & 31))) {
			printf("%s: %s links %s dynamically: LD_PRELOAD hooks its functions\n", hosts[h].name, arg,
			       hosts[h].soname);
			any = true;
			continue;
		}
		if (!hosts[h].symbols[0]) { /* torch: an observer, no function hooked by name */
			printf("%s: hooks no function by name: nothing to look for in %s\n", hosts[h].name,
			       arg);
			continue;
		}
		size_t n, located;
		const char *tried;
		const char *used = locate_host(h, path, 0, buf, sizeof(buf), names, &n, out, &located, &tried);
		if (!used) {
			printf("%s: no reference library to compare %s with (looked for %s%s%s): give one with "
			       "--host-code or ONNXHOOK_HOST_CODE\n",
			       hosts[h].name, arg, env && *env ? env : "", env && *env ? ", " : "", tried);
			continue;
		}
		size_t missing = 0;
		for (size_t i = 0; i < n; i++)
			missing += out[i].status == ONNXHOOK_NOT_FOUND;
		/* Not in the program: maybe in a library it loads (as the preload searches them). */
		if (missing == n) {
			if (!libs_read) {
				n_libs = program_libraries(path, info.interp_path, libs, sizeof(libs));
				libs_read = true;
			}
			if (n_libs && list_libraries(h, arg, libs, used, names, n, out)) {
				any = true;
				continue;
			}
		}
		printf("%s: %zu of %zu hooked functions found in %s (reference %s):\n", hosts[h].name, located,
		       n, arg, used);
		if (missing == n)
			printf("  none of their code is in %s%s (built from other sources, or with other "
			       "flags)\n", arg, n_libs ? " or the libraries it loads" : "");
		else
			print_founds(out, n);
		any |= located > 0;
	}
	return any ? 0 : 1;
}

/* The hosts whose code the program at path carries linked in, as "darknet (28 of 28 functions)"
 * into buf ("" when none: then a host linked statically is out of reach). */
static void linked_in_hosts(const char *path, char *buf, size_t len)
{
	char names_buf[8192];
	const char *names[256], *tried;
	static struct onnxhook_found out[256];
	size_t n, located, used = 0;

	buf[0] = '\0';
	for (size_t h = 0; h < N_HOSTS; h++) {
		/* Not cached: tracing any program must not write in the user's home. */
		if (!locate_host(h, path, ONNXHOOK_LOCATE_NO_CACHE, names_buf, sizeof(names_buf), names, &n,
				 out, &located, &tried) ||
		    !located)
			continue;
		used += (size_t)snprintf(buf + used, used < len ? len - used : 0, "%s%s (%zu of %zu functions)",
					 used ? ", " : "", hosts[h].name, located, n);
	}
}

/* ---- LD_PRELOAD ----------------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* ld.so splits LD_PRELOAD at spaces and colons. Ours goes after the existing entries (a
 * sanitizer runtime insists on being first); a sanitized libonnxhook.so brings its libasan. */
static void set_preload(const char *library)
{
	const char *old = getenv("LD_PRELOAD");
	struct elf_info lib;
	char *value;
	bool have_ours = false, have_asan = false;

	if (strpbrk(library, ": \t\n"))
		die(EXIT_OWN, "%s: a path with ':' or a space cannot go in LD_PRELOAD; set ONNXHOOK_LIBRARY "
			      "to another path of it", library);
	old = old ? old : "";
	char *copy = strdup(old), *save = NULL;
	if (!copy)
		die(EXIT_OWN, "out of memory");
	for (char *e = strtok_r(copy, ": \t\n", &save); e; e = strtok_r(NULL, ": \t\n", &save)) {
		const char *base = strrchr(e, '/');
		if (strstr(base ? base + 1 : e, "libasan"))
			have_asan = true;
		if (same_file(e, library))
			have_ours = true;
	}
	free(copy);
	if (have_ours)
		return;
	elf_inspect(library, &lib);
	if (asprintf(&value, "%s%s%s%s%s", lib.asan[0] && !have_asan ? lib.asan : "",
		     lib.asan[0] && !have_asan ? ":" : "", old, old[0] ? ":" : "", library) < 0)
		die(EXIT_OWN, "out of memory");
	if (setenv("LD_PRELOAD", value, 1) < 0)
		die(EXIT_OWN, "setenv LD_PRELOAD: %s", strerror(errno));
	free(value);
}

/* ---- the report ----------------------------------------------------------------------------- */

static void print_model(const struct onnxhook_report *m, const char *cwd, bool show_pid)
{
	size_t n = strlen(cwd);
	const char *shown = m->path;
	char a[ONNXHOOK_FORMAT_MAX], b[ONNXHOOK_FORMAT_MAX];

	/* Shown relative to where onnxhook was started, when it is below it. */
	if (n > 1 && !strncmp(m->path, cwd, n) && m->path[n] == '/')
		shown = m->path + n + 1;
	if (show_pid)
		say("wrote %s (pid %ld)", shown, m->pid);
	else
		say("wrote %s", shown);
	/* "Conv 20, Relu 17", wrapped. */
	char line[160];
	int col = snprintf(line, sizeof(line), "  %" PRIu32 " node%s:", m->nodes, m->nodes == 1 ? "" : "s");
	const int indent = col;
	char ops[sizeof(m->ops)];
	snprintf(ops, sizeof(ops), "%s", m->ops);
	bool first = true;
	for (char *op = ops, *next; op && *op; op = next) {
		char item[160];
		if ((next = strstr(op, ", ")))
			*next = '\0', next += 2;
		int k = snprintf(item, sizeof(item), " %s%s", op, next ? "," : "");
		k = k < (int)sizeof(item) ? k : (int)sizeof(item) - 1;
		if (!first && col + k > 78) {
			say("%s", line);
			col = snprintf(line, sizeof(line), "%*s", indent, "");
		}
		col += snprintf(line + col, sizeof(line) - (size_t)col, "%s", item);
		first = false;
	}
	say("%s", line);
	say("  %" PRIu32 " input%s, %" PRIu32 " output%s", m->inputs, m->inputs == 1 ? "" : "s", m->outputs,
	    m->outputs == 1 ? "" : "s");
	/* The preload's summary line's sizes: "855 parameters, 4.6 KB", "11.70M parameters, 46.8 MB". */
	onnxhook_format_count(m->parameters, a, sizeof(a));
	onnxhook_format_bytes(m->bytes, b, sizeof(b));
	if (m->data_bytes) {
		char d[ONNXHOOK_FORMAT_MAX];
		say("  %s parameters, %s + %s in %s.data, written in %.2f s", a, b,
		    onnxhook_format_bytes(m->data_bytes, d, sizeof(d)), shown, m->seconds);
	} else {
		say("  %s parameters, %s, written in %.2f s", a, b, m->seconds);
	}
	if (m->incomplete)
		say("  incomplete: recording stopped early (see the warning above)");
}

/* Reads the report, copies it to the user's ONNXHOOK_REPORT if one was set, prints the summary.
 * Returns the number of models; their paths in *paths when paths is not NULL (malloc'd). */
static int summarize(int fd, const char *user_report, char ***paths)
{
	char cwd[PATH_MAX];
	FILE *f, *copy = NULL;
	char *line = NULL;
	size_t cap = 0;
	struct onnxhook_report m, *models = NULL;
	int n = 0;
	bool pids_differ = false;

	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	if (lseek(fd, 0, SEEK_SET) < 0 || !(f = fdopen(dup(fd), "r")))
		return 0;
	if (user_report && *user_report && !(copy = fopen(user_report, "ae")))
		fprintf(stderr, "onnxhook: error: cannot append to ONNXHOOK_REPORT=%s: %s\n", user_report,
			strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		if (copy)
			fputs(line, copy);
		if (!onnxhook_report_parse(line, &m))
			continue;
		struct onnxhook_report *grown = realloc(models, (size_t)(n + 1) * sizeof(*models));
		if (!grown)
			break;
		models = grown;
		models[n++] = m;
		pids_differ |= models[0].pid != m.pid;
	}
	for (int i = 0; i < n; i++)
		print_model(&models[i], cwd, pids_differ);
	if (paths && (*paths = calloc((size_t)n + 1, sizeof(char *))))
		for (int i = 0; i < n; i++)
			if (!((*paths)[i] = strdup(models[i].path)))
				die(EXIT_OWN, "out of memory");
	if (copy)
		fclose(copy);
	free(models);
	free(line);
	fclose(f);
	return n;
}

/* ---- running it ----------------------------------------------------------------------------- */

static volatile pid_t child;

/* A signal sent to onnxhook (kill, timeout(1)) goes on to the program. One the terminal sent
 * reached the program already: it is in the same foreground process group. */
static void forward(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (child > 0 && si->si_code != SI_KERNEL)
		kill(child, sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
/* SIGPIPE as the program gets it: ours is ignored while it runs (below). */
static struct sigaction program_sigpipe;

static int run(const char *path, char **argv)
{
	struct sigaction sa = {.sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigset_t set, old;
	int pipefd[2], err = 0, status;
	pid_t pid;

	struct sigaction saved[sizeof(forwarded) / sizeof(forwarded[0])];

	/* An ignored signal (nohup, a background job's SIGINT) stays ignored, for the program too. */
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		sigaction(forwarded[i], NULL, &saved[i]);
		sigaddset(&set, forwarded[i]);
		if (saved[i].sa_handler != SIG_IGN)
			sigaction(forwarded[i], &sa, NULL);
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die(EXIT_OWN, "pipe: %s", strerror(errno));
	/* Blocked until child is set: a signal before that would be lost. */
	sigprocmask(SIG_BLOCK, &set, &old);
	pid = fork();
	if (pid < 0)
		die(EXIT_OWN, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
			sigaction(forwarded[i], &saved[i], NULL);
		sigaction(SIGPIPE, &program_sigpipe, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(pipefd[0]);
		/* execvp: a file without #! and not ELF runs under /bin/sh, as a shell does. */
		execvp(path, argv);
		err = errno;
		if (write(pipefd[1], &err, sizeof(err)) < 0)
			_exit(EXIT_CANNOT_RUN);
		_exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
	}
	child = pid;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(pipefd[1]);
	while (read(pipefd[0], &err, sizeof(err)) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			die(EXIT_OWN, "waitpid: %s", strerror(errno));
	}
	child = 0;
	if (err)
		die(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN, "cannot run %s: %s", argv[0], strerror(err));
	return status;
}

/* Die of the signal that killed the program, as timeout(1) does, so that the parent sees what it
 * would have seen without us: a shell's loop stops on a Ctrl-C (bash takes a normal exit for "the
 * program handled the SIGINT"), a supervisor sees a SIGTERM'd job. No second core for a crash.
 * Returns only if the signal did not end us (it always should). */
static int die_of(int sig)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	struct rlimit none = {0, 0};
	sigset_t set;

	fflush(NULL);
	setrlimit(RLIMIT_CORE, &none);
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	return 128 + sig;
}

/* The report file is private to this run; '%' is escaped, the preload expands templates. */
static int make_report(char *path, size_t len, char *escaped, size_t elen)
{
	const char *tmp = getenv("TMPDIR");
	int fd;
	size_t o = 0;

	if (!tmp || !*tmp || access(tmp, W_OK) < 0)
		tmp = "/tmp";
	snprintf(path, len, "%s/onnxhook-report.XXXXXX", tmp);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		die(EXIT_OWN, "cannot create a report file in %s: %s", tmp, strerror(errno));
	for (const char *p = path; *p && o + 2 < elen; p++) {
		if (*p == '%')
			escaped[o++] = '%';
		escaped[o++] = *p;
	}
	escaped[o] = '\0';
	return fd;
}

/* ---- verify --------------------------------------------------------------------------------- */

/* What onnxhook verify needs besides the program: node, its runner (verify.js, installed with the
 * command like libonnxhook.so), onnxruntime-node (the runner finds it), and where the model goes. */
struct verify {
	bool on;
	const char *rtol, *atol;
	bool json;
	char node[PATH_MAX], runner[PATH_MAX + 64];
	char workdir[PATH_MAX]; /* a temporary directory for the model and its set, or "" (--output) */
	char *preload;          /* LD_PRELOAD as it was before ours (node must not get the hook) */
	bool had_preload;
	bool keep_set;          /* --layer-data asked for: the set beside --output stays */
};

static void find_runner(struct verify *v)
{
	const char *env = getenv("ONNXHOOK_NODE");
	char dir[PATH_MAX], build_dir[PATH_MAX];
	int r;

	if (env && *env) {
		if (!is_file(env) || access(env, X_OK) < 0)
			die(EXIT_OWN, "ONNXHOOK_NODE=%s: %s", env, errno ? strerror(errno) : "not a file");
		snprintf(v->node, sizeof(v->node), "%s", env);
	} else if ((r = resolve("node", v->node, sizeof(v->node))) < 0) {
		die(EXIT_OWN, "node not found on PATH: onnxhook verify runs the model in onnxruntime-node; "
			      "install Node.js (apt-get install nodejs) or set ONNXHOOK_NODE to it");
	}
	exe_dir(dir, sizeof(dir));
	if (realpath(ONNXHOOK_BUILD_DIR, build_dir) && !strcmp(dir, build_dir) && is_file(ONNXHOOK_BUILD_RUNNER)) {
		snprintf(v->runner, sizeof(v->runner), "%s", ONNXHOOK_BUILD_RUNNER);
		return;
	}
	snprintf(v->runner, sizeof(v->runner), "%s/%s/onnxhook/verify.js", dir, ONNXHOOK_BIN_TO_LIB);
	if (!is_file(v->runner))
		die(EXIT_OWN, "cannot find onnxhook's verify.js: not at %s (installed with this command)", v->runner);
}

/* node RUNNER ARGS..., with the environment the program had before ours: no hook in node. Returns
 * its exit status (125 when it could not run or was killed). */
static int run_runner(const struct verify *v, const char *const *args)
{
	const char *argv[24] = {v->node, v->runner};
	int n = 2, status;
	pid_t pid;

	for (; *args && n + 1 < (int)(sizeof(argv) / sizeof(argv[0])); args++)
		argv[n++] = *args;
	argv[n] = NULL;
	fflush(NULL);
	if ((pid = fork()) < 0)
		die(EXIT_OWN, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (v->had_preload)
			setenv("LD_PRELOAD", v->preload, 1);
		else
			unsetenv("LD_PRELOAD");
		sigaction(SIGPIPE, &program_sigpipe, NULL);
		execv(v->node, (char *const *)argv);
		fprintf(stderr, "onnxhook: error: cannot run %s: %s\n", v->node, strerror(errno));
		_exit(EXIT_OWN);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die(EXIT_OWN, "waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_OWN;
}

/* Before the program runs: node, the runner and onnxruntime-node are there, and the model goes to a
 * file (its test data set beside it, with every layer). */
static void verify_prepare(struct verify *v)
{
	const char *check[] = {"--check-ort", "--ort-version", ONNXHOOK_ORT_VERSION, NULL};
	const char *out = getenv("ONNXHOOK_OUTPUT");
	char tmpl[2 * PATH_MAX + 32];
	size_t o = 0;

	find_runner(v);
	if (run_runner(v, check) != 0)
		exit(EXIT_OWN); /* the runner said why, in one line */
	if (out && *out && onnxhook_output_kind(out) == ONNXHOOK_OUTPUT_INTO)
		die(EXIT_OWN, "verify reads the model back: give --output a file, not %s", out);
	if (!out || !*out) {
		const char *tmp = getenv("TMPDIR");
		if (!tmp || !*tmp || access(tmp, W_OK) < 0)
			tmp = "/tmp";
		snprintf(v->workdir, sizeof(v->workdir), "%s/onnxhook-verify.XXXXXX", tmp);
		if (!mkdtemp(v->workdir))
			die(EXIT_OWN, "cannot create a directory in %s: %s", tmp, strerror(errno));
		for (const char *p = v->workdir; *p && o + 3 < sizeof(tmpl); p++) {
			if (*p == '%')
				tmpl[o++] = '%';
			tmpl[o++] = *p;
		}
		snprintf(tmpl + o, sizeof(tmpl) - o, "/%%e.%%p.onnx");
		if (setenv("ONNXHOOK_OUTPUT", tmpl, 1) < 0)
			die(EXIT_OWN, "setenv ONNXHOOK_OUTPUT: %s", strerror(errno));
	}
	const char *layer_data = getenv("ONNXHOOK_LAYER_DATA");
	v->keep_set = layer_data && !strcmp(layer_data, "1") && !v->workdir[0];
	if (setenv("ONNXHOOK_LAYER_DATA", "1", 1) < 0)
		die(EXIT_OWN, "setenv ONNXHOOK_LAYER_DATA: %s", strerror(errno));
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void verify_cleanup(const struct verify *v)
{
	if (v->workdir[0])
		nftw(v->workdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each model the run wrote, held against its layers: 0 all within tolerance, 1 drift, 125 when
 * one could not be verified. */
static int verify_models(const struct verify *v, char **paths, bool keep_set)
{
	int worst = 0;

	for (char **p = paths; p && *p; p++) {
		const char *args[12] = {"--model", *p, "--ort-version", ONNXHOOK_ORT_VERSION, "--rtol", v->rtol,
					"--atol", v->atol};
		int n = 8;
		if (v->json)
			args[n++] = "--json";
		if (!keep_set)
			args[n++] = "--remove-set";
		args[n] = NULL;
		int r = run_runner(v, args);
		if (r != 0 && r != 1)
			r = EXIT_OWN;
		worst = r > worst ? r : worst;
	}
	return worst;
}

int main(int argc, char **argv)
{
	enum { OPT_PASS = 256, OPT_DYNAMIC_BATCH, OPT_OPSET, OPT_EXTERNAL_DATA, OPT_NO_STACK, OPT_DOT,
	       OPT_TEST_DATA, OPT_DUMP_ON_SIGNAL, OPT_DUMP_ON_CRASH, OPT_DUMP_AFTER_PASS, OPT_LIST_SYMBOLS,
	       OPT_PRINT_LIBRARY, OPT_LAYER_DATA, OPT_NO_PROVENANCE, OPT_RTOL, OPT_ATOL, OPT_JSON,
	       OPT_HOST_CODE };
	static const struct option options[] = {
		{"output", required_argument, NULL, 'o'},
		{"pass", required_argument, NULL, OPT_PASS},
		{"dynamic-batch", no_argument, NULL, OPT_DYNAMIC_BATCH},
		{"opset", required_argument, NULL, OPT_OPSET},
		{"external-data", required_argument, NULL, OPT_EXTERNAL_DATA},
		{"no-stack", no_argument, NULL, OPT_NO_STACK},
		{"dot", required_argument, NULL, OPT_DOT},
		{"test-data", no_argument, NULL, OPT_TEST_DATA},
		{"layer-data", no_argument, NULL, OPT_LAYER_DATA},
		{"no-provenance", no_argument, NULL, OPT_NO_PROVENANCE},
		{"rtol", required_argument, NULL, OPT_RTOL},
		{"atol", required_argument, NULL, OPT_ATOL},
		{"json", no_argument, NULL, OPT_JSON},
		{"dump-on-signal", no_argument, NULL, OPT_DUMP_ON_SIGNAL},
		{"dump-on-crash", no_argument, NULL, OPT_DUMP_ON_CRASH},
		{"dump-after-pass", no_argument, NULL, OPT_DUMP_AFTER_PASS},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"list-symbols", no_argument, NULL, OPT_LIST_SYMBOLS},
		{"host-code", required_argument, NULL, OPT_HOST_CODE},
		{"print-library", no_argument, NULL, OPT_PRINT_LIBRARY},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char library[PATH_MAX], program[PATH_MAX], report[PATH_MAX], report_tmpl[2 * PATH_MAX];
	char user_report[PATH_MAX] = "", err[512];
	struct onnxhook_config cfg;
	struct elf_info info;
	bool print_library = false, list = false;
	int c, r, status, fd;
	struct verify verify = {.rtol = "1e-4", .atol = "1e-6"};
	char **paths = NULL;

	/* onnxhook verify ...: the same options and a few of its own. */
	if (argc > 1 && !strcmp(argv[1], "verify")) {
		verify.on = true;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	opterr = 0;
	/* '+': options stop at PROGRAM, whose own options are its business. */
	while ((c = getopt_long(argc, argv, "+:o:qvhV", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			set_var("--output", "ONNXHOOK_OUTPUT", optarg);
			break;
		case OPT_PASS:
			set_var("--pass", "ONNXHOOK_PASS", optarg);
			break;
		case OPT_DYNAMIC_BATCH:
			set_var("--dynamic-batch", "ONNXHOOK_BATCH", "dynamic");
			break;
		case OPT_OPSET:
			set_var("--opset", "ONNXHOOK_OPSET", optarg);
			break;
		case OPT_EXTERNAL_DATA:
			set_var("--external-data", "ONNXHOOK_EXTERNAL_DATA", optarg);
			break;
		case OPT_NO_STACK:
			set_var("--no-stack", "ONNXHOOK_STACK", "0");
			break;
		case OPT_DOT:
			set_var("--dot", "ONNXHOOK_DOT", optarg);
			break;
		case OPT_TEST_DATA:
			set_var("--test-data", "ONNXHOOK_TEST_DATA", "1");
			break;
		case OPT_LAYER_DATA:
			set_var("--layer-data", "ONNXHOOK_LAYER_DATA", "1");
			break;
		case OPT_NO_PROVENANCE:
			set_var("--no-provenance", "ONNXHOOK_PROVENANCE", "0");
			break;
		case OPT_RTOL:
		case OPT_ATOL:
		case OPT_JSON: {
			const char *name = c == OPT_RTOL ? "--rtol" : c == OPT_ATOL ? "--atol" : "--json";
			char *end;
			double x;
			if (!verify.on)
				usage_error("%s is an option of 'onnxhook verify'", name);
			if (c == OPT_JSON) {
				verify.json = true;
				break;
			}
			errno = 0;
			x = strtod(optarg, &end);
			if (!*optarg || *end || errno || !(x >= 0) || x > 1e300)
				usage_error("invalid %s '%s': expected a number >= 0", name, optarg);
			*(c == OPT_RTOL ? &verify.rtol : &verify.atol) = optarg;
			break;
		}
		case OPT_DUMP_ON_SIGNAL:
			set_var("--dump-on-signal", "ONNXHOOK_DUMP_ON_SIGNAL", "1");
			break;
		case OPT_DUMP_ON_CRASH:
			set_var("--dump-on-crash", "ONNXHOOK_DUMP_ON_CRASH", "1");
			break;
		case OPT_DUMP_AFTER_PASS:
			set_var("--dump-after-pass", "ONNXHOOK_DUMP_AFTER_PASS", "1");
			break;
		case 'q':
			set_var("--quiet", "ONNXHOOK_LOG", "quiet");
			break;
		case 'v':
			set_var("--verbose", "ONNXHOOK_LOG", "debug");
			break;
		case OPT_LIST_SYMBOLS:
			list = true;
			break;
		case OPT_HOST_CODE:
			add_host_code(optarg);
			break;
		case OPT_PRINT_LIBRARY:
			print_library = true;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			version();
			return 0;
		case ':':
			usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt >= 256 || (optopt && strchr("oqvhV", optopt) && argv[optind - 1][1] == '-'))
				usage_error("option '%s' takes no value", argv[optind - 1]);
			else if (optopt)
				usage_error("unknown option '-%c'", optopt);
			else
				usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (list) {
		if (optind >= argc) {
			list_symbols();
			return 0;
		}
		if (onnxhook_config_read(&cfg, getenv, err, sizeof(err)) < 0)
			die(EXIT_OWN, "%s (from the environment)", err);
		check_host_code(cfg.host_code);
		return list_program(argv[optind]);
	}
	find_library(library);
	check_library(library);
	if (print_library) {
		puts(library);
		return 0;
	}
	if (optind >= argc)
		usage_error("no PROGRAM to run");
	if (verify.on)
		verify_prepare(&verify);

	/* From here on our stderr lines must not kill us when their reader is gone (a closed pipe
	 * is not the program's problem), or the exit status would not be the program's. */
	struct sigaction ignore = {.sa_handler = SIG_IGN};
	sigemptyset(&ignore.sa_mask);
	sigaction(SIGPIPE, &ignore, &program_sigpipe);

	/* The inherited ONNXHOOK_* too: an invalid one would switch tracing off silently later. */
	if (onnxhook_config_read(&cfg, getenv, err, sizeof(err)) < 0)
		die(EXIT_OWN, "%s (from the environment)", err);
	quiet = cfg.log == ONNXHOOK_LOG_QUIET;
	check_host_code(cfg.host_code);

	if ((r = resolve(argv[optind], program, sizeof(program))) < 0 && !strcmp(argv[optind], "verify"))
		usage_error("'verify' comes first: onnxhook verify [OPTION]... [--] PROGRAM [ARGUMENT]...");
	if (r < 0)
		die(r == -ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN, "%s: %s", argv[optind],
		    r == -ENOENT && !strchr(argv[optind], '/') ? "command not found" : strerror(-r));
	check_outputs(&cfg, program);
	check_program(argv[optind], program, &info);

	if ((verify.had_preload = getenv("LD_PRELOAD") != NULL) && !(verify.preload = strdup(getenv("LD_PRELOAD"))))
		die(EXIT_OWN, "out of memory");
	set_preload(library);
	if (cfg.report[0])
		snprintf(user_report, sizeof(user_report), "%s", getenv("ONNXHOOK_REPORT"));
	fd = make_report(report, sizeof(report), report_tmpl, sizeof(report_tmpl));
	if (setenv("ONNXHOOK_REPORT", report_tmpl, 1) < 0)
		die(EXIT_OWN, "setenv ONNXHOOK_REPORT: %s", strerror(errno));

	status = run(program, argv + optind);
	int models = summarize(fd, user_report, verify.on ? &paths : NULL);
	unlink(report);
	close(fd);
	if (verify.on && WIFEXITED(status) && WEXITSTATUS(status) == 0 && models > 0) {
		/* With --output the set beside the model stays only when asked for (--layer-data). */
		r = verify_models(&verify, paths, verify.keep_set);
		verify_cleanup(&verify);
		return r;
	}
	if (verify.on) {
		verify_cleanup(&verify);
		if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			say("not verified: %s exited with status %d", argv[optind], WEXITSTATUS(status));
	}

	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig != SIGINT && sig != SIGPIPE)
			say("%s was killed by SIG%s%s", argv[optind], sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
			    WCOREDUMP(status) ? " (core dumped)" : "");
		if (!models && (info.host || !info.elf)) {
			bool end = sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
			bool crash = sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT;
			if (end && !cfg.dump_on_signal)
				say("no model written: --dump-on-signal writes one when SIGTERM, SIGINT or SIGHUP ends the program");
			else if (crash && !cfg.dump_on_crash)
				say("no model written: --dump-on-crash writes one when the program crashes (best effort)");
			else if (!end && !crash && !cfg.dump_after_pass)
				/* SIGKILL cannot be caught, and the others are no end onnxhook dumps on. */
				say("no model written: %s SIG%s; --dump-after-pass writes the model as soon as the "
				    "captured pass ends, so that a later kill loses nothing",
				    sig == SIGKILL ? "nothing can catch" : "onnxhook writes no model on",
				    sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
			else
				say("no model written (the program recorded nothing%s, or died while writing)",
				    cfg.dump_after_pass ? ", or was killed before its captured pass ended" : "");
		} else if (!models) {
			say("no model written: %s made no call to a hooked function", argv[optind]);
		}
		return die_of(sig);
	}
	if (!models && linked_in[0])
		say("no model written: %s made no call to a hooked function (its code of %s was located "
		    "and hooked)", argv[optind], linked_in);
	else if (!models && info.elf && !info.host)
		say("no model written: %s made no call to a hooked function (a host library linked "
		    "statically is out of reach without a reference library, see --host-code; or it was "
		    "called without the dynamic linker)", argv[optind]);
	else if (!models)
		say("no model written: %s recorded no call to a hooked function (see any 'onnxhook: "
		    "error:' above)", argv[optind]);
	if (verify.on && !models && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return EXIT_CANNOT_RUN; /* nothing to verify: it could not be traced */
	return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_OWN;
}
