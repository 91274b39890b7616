/* SPDX-License-Identifier: MIT */
/* onnxhook core: host-neutral recorder (versioned memory map, graph) and ONNX writer. */
#ifndef ONNXHOOK_H
#define ONNXHOOK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Host files may be C or C++. */
#ifdef __cplusplus
extern "C" {
#endif

#define ONNXHOOK_MAX_RANK 8
#define ONNXHOOK_NONE UINT32_MAX /* "no value" */

/* ---- logging ----------------------------------------------------------------------------- */

enum onnxhook_log_level {
	ONNXHOOK_LOG_QUIET, /* errors only */
	ONNXHOOK_LOG_INFO,  /* + warnings and one summary line at exit */
	ONNXHOOK_LOG_DEBUG, /* + one line per recorded call */
};

/* Where log lines go (a file descriptor the host app does not own) and how much is said. */
void onnxhook_log_init(int fd, enum onnxhook_log_level level);
enum onnxhook_log_level onnxhook_log_level(void);
/* One line, prefixed "onnxhook: "; printed when level <= the configured level. Errors are
 * printed at every level, so a bad configuration is never silent. */
void onnxhook_log(enum onnxhook_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define onnxhook_error(...) onnxhook_log(ONNXHOOK_LOG_QUIET, "error: " __VA_ARGS__)
#define onnxhook_warn(...) onnxhook_log(ONNXHOOK_LOG_INFO, "warning: " __VA_ARGS__)
#define onnxhook_info(...) onnxhook_log(ONNXHOOK_LOG_INFO, __VA_ARGS__)
#define onnxhook_debug(...) onnxhook_log(ONNXHOOK_LOG_DEBUG, __VA_ARGS__)

/* ---- memory ------------------------------------------------------------------------------ */

/* Where the writer and the hash maps get memory on the calling thread: libc's malloc and free
 * unless set. A dump from a signal handler points them at memory of its own (malloc may be
 * what the signal interrupted). alloc returns NULL when out of memory; free may do nothing.
 * NULL restores malloc and free. */
struct onnxhook_allocator {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p);
	void *ctx;
};
void onnxhook_set_allocator(const struct onnxhook_allocator *a);

/* ---- configuration ----------------------------------------------------------------------- */

/* Where initializers' bytes go (ONNXHOOK_EXTERNAL_DATA). */
enum onnxhook_external {
	ONNXHOOK_EXTERNAL_AUTO,   /* inside the model, unless it would pass protobuf's 2 GiB limit */
	ONNXHOOK_EXTERNAL_ALWAYS, /* every initializer above the size threshold in <model>.data */
	ONNXHOOK_EXTERNAL_NEVER,  /* inside the model; a model past 2 GiB cannot be written */
};

struct onnxhook_config {
	char output[4096];   /* output path template (%p, %e, %%) */
	bool output_explicit; /* ONNXHOOK_OUTPUT was given: replace atomically */
	enum onnxhook_log_level log;
	int opset;
	unsigned pass; /* the pass to capture, 1-based; ONNXHOOK_PASS_ALL unrolls every pass */
	bool debug_outputs;
	bool dump_on_signal; /* SIGTERM, SIGINT, SIGHUP */
	bool dump_on_crash;  /* SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT (best effort) */
	bool dump_after_pass; /* write the model when the captured pass ends, not at exit */
	uint64_t max_nodes;  /* 0: the default */
	uint64_t max_bytes;  /* weights held; 0: the default */
	bool dynamic_batch;  /* ONNXHOOK_BATCH=dynamic: dim 0 of inputs and outputs is "batch" */
	enum onnxhook_external external_data; /* ONNXHOOK_EXTERNAL_DATA */
	bool stack;          /* ONNXHOOK_STACK: caller frames name nodes and fill doc_string */
	bool test_data;      /* ONNXHOOK_TEST_DATA: test_data_set_0/ beside the model */
	bool layer_data;     /* ONNXHOOK_LAYER_DATA: the set also holds every layer's result
			      * (implies test_data) */
	bool provenance;     /* ONNXHOOK_PROVENANCE: the command line, paths and build-ids go in
			      * the model's metadata (default) */
	char dot[4096];      /* ONNXHOOK_DOT: Graphviz path template (%p, %e, %%), or "" */
	char report[4096];   /* ONNXHOOK_REPORT (set by the onnxhook command): a file that gets one
			      * line per model written, instead of the summary on stderr; or "" */
	char host_code[4096]; /* ONNXHOOK_HOST_CODE: reference libraries (locate.h), path[:path...],
			       * for hosts linked into a program; or "" */
};
#define ONNXHOOK_PASS_ALL 0u

/* Reads the ONNXHOOK_* variables through getenv_fn (secure_getenv in the preload). An empty
 * value means unset. Returns 0, or -EINVAL with one human-readable line in err (naming the
 * variable and what it accepts); cfg then holds defaults. */
int onnxhook_config_read(struct onnxhook_config *cfg, char *(*getenv_fn)(const char *), char *err,
			 size_t errlen);

/* Expands %p (pid), %e (exe basename), %% in tmpl. Returns 0 or -EINVAL (unknown or trailing
 * %) / -ENAMETOOLONG. */
int onnxhook_path_expand(const char *tmpl, pid_t pid, const char *exe, char *out, size_t outlen);

/* ---- shapes ------------------------------------------------------------------------------ */

struct onnxhook_shape {
	int rank;
	int64_t dims[ONNXHOOK_MAX_RANK];
};

/* Element count of a shape, or -1 if a dim is negative or the product overflows int64 or
 * the byte size (count * elem_size) would not fit in size_t. */
int64_t onnxhook_shape_numel(const struct onnxhook_shape *s, size_t elem_size);
bool onnxhook_shape_eq(const struct onnxhook_shape *a, const struct onnxhook_shape *b);
struct onnxhook_shape onnxhook_shape_make(int rank, const int64_t *dims);
/* "1x3x224x224" */
void onnxhook_shape_str(const struct onnxhook_shape *s, char *buf, size_t len);

/* ---- versioned memory map ---------------------------------------------------------------- */

/* An interval map: address range -> (value, byte offset of the range's start in that value).
 * Ranges never overlap; assigning a range replaces whatever it covers (trimming neighbours). */
struct onnxhook_mapping {
	uintptr_t lo, hi; /* [lo, hi) */
	uint32_t value;
	uint64_t offset;
	uint64_t sum; /* hash of the bytes [lo, hi) held when mapped (the graph's; 0 in the map) */
	bool resum;   /* trimmed or moved in part since: sum no longer covers [lo, hi) */
};

struct onnxhook_memmap {
	struct onnxhook_mapping *v;
	size_t n, cap;
};

void onnxhook_memmap_init(struct onnxhook_memmap *m);
void onnxhook_memmap_free(struct onnxhook_memmap *m);
int onnxhook_memmap_assign(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi, uint32_t value,
			   uint64_t offset);
/* Index of the first mapping with hi > lo (may be m->n). Mappings from there on overlap
 * [lo, hi) while their lo < hi. */
size_t onnxhook_memmap_first(const struct onnxhook_memmap *m, uintptr_t lo);
/* [lo, hi) maps nothing any more (memory released). Trimmed neighbours are marked resum. */
int onnxhook_memmap_clear(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi);
/* What [lo, hi) maps now lives at [to, to + (hi - lo)) (memory moved); whatever that range
 * mapped is gone. Pieces cut at the range's ends are marked resum. */
int onnxhook_memmap_move(struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi, uintptr_t to);
bool onnxhook_memmap_overlaps(const struct onnxhook_memmap *m, uintptr_t lo, uintptr_t hi);

/* ---- graph ------------------------------------------------------------------------------- */

enum onnxhook_dtype { ONNXHOOK_FLOAT = 1, ONNXHOOK_INT64 = 7 };
size_t onnxhook_dtype_size(enum onnxhook_dtype t);

enum onnxhook_value_kind {
	ONNXHOOK_VALUE_INPUT,       /* graph input: memory no recorded op wrote */
	ONNXHOOK_VALUE_NODE,        /* output of a node */
	ONNXHOOK_VALUE_INITIALIZER, /* weights and constants, owned copy in data */
};

struct onnxhook_value {
	enum onnxhook_value_kind kind;
	enum onnxhook_dtype dtype;
	struct onnxhook_shape shape;
	size_t nbytes;
	uint32_t producer;       /* node index (NODE) */
	uint32_t first_consumer; /* node index or ONNXHOOK_NONE */
	uint32_t consumers;
	uint32_t ordinal;  /* input_N / output_N number, per kind */
	const char *role;  /* initializer: "weight", "bias", "shape", ... (static string) */
	void *data;        /* initializer bytes (owned) */
	uint64_t hash;     /* initializer content hash */
	uintptr_t origin;  /* initializer: host pointer it was copied from (0 for constants) */
	uint32_t view_src; /* derived view (Slice/Reshape of a value): its source, else NONE */
	uint64_t view_off; /* byte offset of the view in view_src */
	bool written;      /* a host call wrote it to memory (a layer's result) */
	bool changed;      /* its memory changed behind our back before a read (warned once) */
	bool batched;      /* dim 0 is the batch (onnxhook_graph_dynamic_batch) */
	char *name;        /* host-supplied name of a written value ("layer_12"), or NULL */
	void *snapshot;    /* graph->test_data: an input's bytes when first read, a written
			    * value's when written; freed once a node consumes the value */
	bool clobbered;    /* an input the call that first read it overwrote (in place) */
};

enum onnxhook_attr_type {
	ONNXHOOK_ATTR_INT,
	ONNXHOOK_ATTR_INTS,
	ONNXHOOK_ATTR_FLOAT,
	ONNXHOOK_ATTR_STRING,
};

#define ONNXHOOK_MAX_ATTR_INTS 8

struct onnxhook_attr {
	const char *name; /* static string */
	enum onnxhook_attr_type type;
	int n;             /* INTS: count */
	int64_t i;         /* INT */
	int64_t ints[ONNXHOOK_MAX_ATTR_INTS];
	float f;           /* FLOAT */
	const char *s;     /* STRING: static string */
};

/* Attribute constructors for hook code. */
struct onnxhook_attr onnxhook_attr_int(const char *name, int64_t v);
struct onnxhook_attr onnxhook_attr_float(const char *name, float v);
struct onnxhook_attr onnxhook_attr_ints(const char *name, int n, const int64_t *v);
struct onnxhook_attr onnxhook_attr_string(const char *name, const char *v);

struct onnxhook_node {
	const char *op_type; /* static string, an ONNX op */
	const char *domain;  /* static string; NULL: the default ai.onnx domain */
	char *name;          /* unique: "<op>_<k>" */
	uint32_t *inputs;    /* value ids; ONNXHOOK_NONE = omitted optional input */
	int n_inputs;
	uint32_t output;     /* every op we emit has one output */
	struct onnxhook_attr *attrs;
	int n_attrs;
	const char *label;   /* the host symbol whose call produced it (static string) */
	const char *doc;     /* the call stack that made it (outlives the graph), or NULL */
};

/* Hash multimap uint64 -> uint32 (open addressing). */
struct onnxhook_hmap {
	uint64_t *keys;
	uint32_t *vals;
	size_t n, cap; /* cap: power of two or 0 */
};

struct onnxhook_graph {
	struct onnxhook_value *values;
	size_t n_values, cap_values;
	struct onnxhook_node *nodes;
	size_t n_nodes, cap_nodes;
	struct onnxhook_memmap mem;
	struct onnxhook_hmap inits;  /* hash(origin, nbytes, shape, content) -> initializer id */
	struct onnxhook_hmap views;  /* hash(value, offset, shape) -> derived value */
	struct onnxhook_hmap names;  /* hash(node name) -> node: names stay unique */
	uint32_t n_inputs;
	uint32_t n_initializers;
	uint64_t weight_bytes;       /* bytes held in initializer copies */
	uint32_t op_counter[64];     /* per op type name slot, for node names */
	const char *op_names[64];
	size_t n_op_names;
	bool failed;                 /* a recording error happened: the graph is frozen */
	/* Pass segmentation: the signature of the current pass's first call, and how many calls
	 * the pass holds. A call with that signature whose data reads are all fresh (memory no op
	 * of this pass wrote) starts the next pass. */
	uint64_t pass_sig;
	uint64_t pass_calls;
	uint64_t max_nodes, max_bytes; /* bounds (0: none): past them recording stops */
	char warnings[1024];         /* for the model's metadata: what makes the graph doubtful */
	bool boundary;       /* the host marked a pass boundary: the next call starts a pass */
	bool host_passes;    /* the host marks boundaries: signatures are not needed */
	bool test_data;      /* snapshot inputs and unconsumed outputs (ONNXHOOK_TEST_DATA) */
	bool layer_data;     /* with test_data: keep every written value's snapshot too */
	uint32_t epoch;      /* moves on when values or the memory map start over (new passes) */
};

void onnxhook_graph_init(struct onnxhook_graph *g);
void onnxhook_graph_free(struct onnxhook_graph *g);

/* One host call being recorded: a transaction. Reads resolve against the memory map as it was
 * before the call; writes take effect at commit; on error nothing of the call stays. */
#define ONNXHOOK_CALL_MAX_PENDING 16
struct onnxhook_call {
	struct onnxhook_graph *g;
	const char *label;
	size_t mark_values, mark_nodes;
	uint32_t mark_inputs, mark_inits;
	uint64_t mark_weight_bytes;
	int err; /* first error (negative errno); later operations are no-ops */
	char prefix[64];   /* host-supplied name of the call ("layer_12"), or "" */
	char scope[96];    /* the caller's name ("basic_block_2"), or "": nodes "<scope>/<Op>_<k>" */
	const char *doc;   /* the call stack, for the nodes' doc_string (outlives the graph) */
	uintptr_t result;  /* the address of the call's result (carries the name), or 0 */
	uint64_t read_sig; /* addresses and sizes of the data reads */
	bool read_written; /* some data read found memory an op of this pass wrote */
	bool foreign;      /* another thread than the recording one: kept only if it reads
			    * memory the recorded graph wrote (a buffer handed across threads) */
	int n_pending;
	struct onnxhook_pending {
		uintptr_t lo, hi;
		uint32_t value;
		bool is_input; /* an input discovered by a read (vs. an output write) */
	} pending[ONNXHOOK_CALL_MAX_PENDING];
	bool check;        /* onnxhook_call_begin_check: the operands are only checked */
	struct onnxhook_stash *stash; /* the bytes the check kept for this call's inputs, or NULL */
	int n_checked;     /* mappings (by lo) whose bytes this call has checked already */
	uintptr_t checked[ONNXHOOK_CALL_MAX_PENDING];
};

/* What a check leaves for the recording after the call. Bytes it copied (graph->test_data)
 * because the call may overwrite them (an in-place op on memory that changed behind the hook):
 * the inputs the recording finds there take these as their test data. And the values it found
 * changed: the recording warns about them once it keeps the call (a call that starts the next
 * pass, or another thread's call that is dropped, reads nothing of this model). One per
 * thread; onnxhook_stash_clear frees it. */
#define ONNXHOOK_STASH_MAX 8
struct onnxhook_stash {
	int n;
	struct onnxhook_stashed {
		uintptr_t lo, hi;
		void *bytes;
	} v[ONNXHOOK_STASH_MAX];
	int n_changed;
	uint32_t changed[ONNXHOOK_STASH_MAX];
	uint32_t epoch; /* graph->epoch of the check: the ids are stale once it moved on */
};
void onnxhook_stash_clear(struct onnxhook_stash *s);

void onnxhook_call_begin(struct onnxhook_call *c, struct onnxhook_graph *g, const char *label);
/* The same call before the real function runs (an in-place op destroys the evidence): the
 * same reads and weights, described the same way, are only checked against the bytes their
 * producers left. A mapping whose bytes changed since is dropped from the memory map, so the
 * recording after the call finds fresh memory there: a graph input (a data read: one warning
 * through onnxhook_graph_on_changed when a recorded op wrote it, said by the recording that
 * takes the stash, or by the check itself without one) or an initializer (a weight).
 * Nodes, constants and writes do nothing in a check; onnxhook_call_end commits nothing. With
 * graph->test_data the bytes of the dropped ranges a read covers go to stash. Checks only touch
 * memory the graph mapped, so arguments the host would reject cannot make them fault. */
void onnxhook_call_begin_check(struct onnxhook_call *c, struct onnxhook_graph *g, const char *label,
			       struct onnxhook_stash *stash);
/* Data read of a dense tensor at ptr with the reader's shape: returns the value holding those
 * bytes now (inserting Slice / Concat / Reshape as needed, or creating a graph input). */
uint32_t onnxhook_call_read(struct onnxhook_call *c, const void *ptr, enum onnxhook_dtype dtype,
			    int rank, const int64_t *dims);
/* Weight read: an initializer copied when first seen, deduplicated by (pointer, size, shape,
 * content). Memory written by a recorded op is followed as data instead. */
uint32_t onnxhook_call_weight(struct onnxhook_call *c, const void *ptr, enum onnxhook_dtype dtype,
			      int rank, const int64_t *dims, const char *role);
/* A constant (copied, deduplicated by content). */
uint32_t onnxhook_call_const(struct onnxhook_call *c, enum onnxhook_dtype dtype, int rank,
			     const int64_t *dims, const void *data, const char *role);
uint32_t onnxhook_call_const_i64(struct onnxhook_call *c, int n, const int64_t *v, const char *role);
uint32_t onnxhook_call_const_f32(struct onnxhook_call *c, float v, const char *role);
/* A node; returns its output value. inputs may contain ONNXHOOK_NONE for omitted optionals. */
uint32_t onnxhook_call_node(struct onnxhook_call *c, const char *op_type, int n_inputs,
			    const uint32_t *inputs, int n_attrs, const struct onnxhook_attr *attrs,
			    int out_rank, const int64_t *out_dims);
/* Host-supplied name: the call's nodes become "<prefix>_<Op>" and the value it writes
 * "<prefix>" (darknet: "layer_12"). Without it nodes are "<Op>_<k>". */
void onnxhook_call_set_name(struct onnxhook_call *c, const char *prefix);
/* The caller's scope (the function instance that made the call, "basic_block_2"): the call's
 * nodes become "<scope>/<Op>_<k>" unless the host named the call. doc, which must outlive the
 * graph, becomes their doc_string. */
void onnxhook_call_set_scope(struct onnxhook_call *c, const char *scope, const char *doc);
/* The write at ptr is the call's result (darknet: l.output) and carries the host's name; the
 * call's other writes (sub-layers, recurrent state) are "<prefix>_out<k>". Without it, the
 * first write is the result. */
void onnxhook_call_set_result(struct onnxhook_call *c, const void *ptr);
/* A node in a custom domain (an op no standard ONNX op reproduces); the writer imports the
 * domain at version 1. */
uint32_t onnxhook_call_node_domain(struct onnxhook_call *c, const char *domain, const char *op_type,
				   int n_inputs, const uint32_t *inputs, int n_attrs,
				   const struct onnxhook_attr *attrs, int out_rank, const int64_t *out_dims);
/* value now lives at ptr (its whole byte size). */
void onnxhook_call_write(struct onnxhook_call *c, uint32_t value, void *ptr);
/* The host gives up its mapping of the call (arguments it cannot map): everything the call
 * added is undone, its error cleared, and it records nothing unless the host maps it again (a
 * fallback). A check, or a call on a failed graph, is left as it is. */
void onnxhook_call_abandon(struct onnxhook_call *c);
/* Commit (0) or, if any step failed, roll back and return the error. Returns
 * ONNXHOOK_NEW_PASS, with nothing committed, when the call is the first call of the current
 * pass recurring on fresh data: the caller decides (start over, keep it, or stop) and may
 * record the call again after onnxhook_graph_reset() or onnxhook_graph_new_pass(). */
#define ONNXHOOK_NEW_PASS 1
/* A foreign call that reads nothing of the graph: dropped, nothing committed. */
#define ONNXHOOK_SKIPPED 2
int onnxhook_call_end(struct onnxhook_call *c);

/* The host saw a pass boundary (darknet's forward_network): the next recorded call starts a
 * new pass. From then on only such marks end passes. */
void onnxhook_graph_mark_boundary(struct onnxhook_graph *g);

/* Forget everything recorded (keeps nothing but an empty graph). */
void onnxhook_graph_reset(struct onnxhook_graph *g);
/* Unroll another pass into the same graph: memory forgets what it held, so the new pass's
 * reads become new graph inputs; weights stay shared. */
void onnxhook_graph_new_pass(struct onnxhook_graph *g);

/* Values whose memory changed between their write and a read (unhooked code): the caller
 * warns; the graph keeps a note of each for the model's metadata. Called by checks, or by
 * the recording after the call that takes their stash. */
typedef void (*onnxhook_changed_fn)(const struct onnxhook_graph *g, uint32_t value, const char *reader);
void onnxhook_graph_on_changed(onnxhook_changed_fn fn);

/* The program released [lo, hi) (free, munmap): what it held is no value any more, and the
 * block's next life is fresh memory. */
void onnxhook_graph_forget(struct onnxhook_graph *g, uintptr_t lo, uintptr_t hi);
/* The program moved [lo, hi) to [to, to + hi - lo) (realloc, mremap): the values there are
 * followed at their new address. */
void onnxhook_graph_move(struct onnxhook_graph *g, uintptr_t lo, uintptr_t hi, uintptr_t to);

/* ONNXHOOK_BATCH=dynamic: marks the values whose dim 0 is the traced batch (graph inputs and
 * what is computed from them along dim 0) and rewrites the shape constants of Reshape and
 * Expand so the model runs at any batch size. 0, or -ENOTSUP with the node that mixes the batch
 * into other axes named in why (the graph is then left static). Idempotent. */
int onnxhook_graph_dynamic_batch(struct onnxhook_graph *g, char *why, size_t whylen);

/* Graph outputs: node values never consumed, in production order. Fills ordinals. */
uint32_t onnxhook_graph_finish(struct onnxhook_graph *g);

/* ---- ELF symbols (call-stack names) ------------------------------------------------------ */

struct onnxhook_elfsym {
	uint64_t addr, size;
	uint32_t name; /* offset in strings */
};

/* The defined functions of one ELF file, sorted by address. */
struct onnxhook_elfsyms {
	struct onnxhook_elfsym *syms;
	size_t n;
	char *strings;
};

/* Reads .symtab (or, in a stripped file, .dynsym). 0, or a negative errno (-ENOENT: no
 * function symbols at all). */
int onnxhook_elfsyms_load(struct onnxhook_elfsyms *t, const char *path);
/* The function containing addr (a link-time virtual address), its start in *start; or NULL. */
const char *onnxhook_elfsyms_find(const struct onnxhook_elfsyms *t, uint64_t addr, uint64_t *start);
void onnxhook_elfsyms_free(struct onnxhook_elfsyms *t);

/* ---- writer ------------------------------------------------------------------------------ */

struct onnxhook_write_opts {
	int opset;
	bool debug_outputs; /* every written value is also a graph output (after output_N) */
	const char *producer_version;
	const char *graph_name;
	enum onnxhook_external external_data; /* AUTO (0) unless set */
	uint64_t inline_limit; /* largest model written inline; 0: protobuf's 2 GiB (tests lower it) */
	/* metadata_props, in this order, before onnxhook.warnings (provenance: the preload's
	 * onnxhook.version, onnxhook.command, onnxhook.host_library, …); strings outlive the write */
	const struct onnxhook_metadata {
		const char *key, *value;
	} *metadata;
	size_t n_metadata;
};

/* Initializers of at least this many bytes go to the external data file (onnx's own
 * convert_model_to_external_data threshold); their offsets are multiples of the alignment. */
#define ONNXHOOK_EXTERNAL_MIN 1024
#define ONNXHOOK_EXTERNAL_ALIGN 4096

struct onnxhook_write_stats {
	uint64_t bytes;       /* file size */
	uint64_t parameters;  /* float elements in initializers */
	uint32_t n_nodes, n_inputs, n_outputs;
	uint64_t inline_bytes;  /* the model's size with every initializer inside it */
	uint32_t n_external;    /* initializers in the external data file (0: none written) */
	uint64_t data_bytes;    /* its size */
	bool external_forced;   /* NEVER asked, but the model could not be written inline */
	/* External data was due (ALWAYS, or past the limit) but no data file can be: the model is
	 * inline, or (past the limit) onnxhook_write fails with -EFBIG / -ENAMETOOLONG. */
	enum onnxhook_data_refused {
		ONNXHOOK_DATA_PLACED,
		ONNXHOOK_DATA_NO_PLACE,       /* written into a device, FIFO or descriptor */
		ONNXHOOK_DATA_NAME_TOO_LONG,  /* "<name>.data" would pass NAME_MAX */
	} data_refused;
};

/* Writes the model to path atomically: a temporary file beside it (O_EXCL, no symlink
 * following), then rename. replace=false never replaces an existing file: the name gets
 * ".1", ".2", … before the extension instead. final_path receives the name written.
 * With external data (o->external_data, or AUTO past the limit) the initializers of at least
 * ONNXHOOK_EXTERNAL_MIN bytes go to "<final_path>.data", published just before the model and
 * named with it (a default name takes a number free for both). What onnxhook_output_kind()
 * says is written into gets the model inline, or -EFBIG past the limit; so does a name whose
 * "<name>.data" would pass NAME_MAX (-ENAMETOOLONG past the limit); st->data_refused says so.
 * A path refused by onnxhook_output_kind() (replace), or in /dev, /proc or /sys (default
 * names), fails with its error and nothing written. */
int onnxhook_write(struct onnxhook_graph *g, const struct onnxhook_write_opts *o, const char *path,
		   bool replace, char *final_path, size_t final_len,
		   struct onnxhook_write_stats *st);

/* The name each value gets in the model (names[i] for values[i]; NULL for a value the model does
 * not hold), in one malloc'd block: free(*names). Fills the outputs' ordinals. 0 or -ENOMEM. */
int onnxhook_value_names(struct onnxhook_graph *g, char ***names);

/* For tests: serialise to a memory buffer (malloc'd), every initializer inline. */
int onnxhook_write_mem(struct onnxhook_graph *g, const struct onnxhook_write_opts *o, uint8_t **buf,
		       size_t *len);

/* Sizes as the summaries show them: a count exactly below a million ("855"), then "1.23M",
 * "4.56G"; bytes as "512 B", "4.6 KB", "46.8 MB", "2.47 GB" (decimal units). Return buf. */
#define ONNXHOOK_FORMAT_MAX 32
/* None prints a double with printf: they run in signal handlers too. fixed: v >= 0 with 1 to 3
 * decimals, as "%.*f" prints it (rounding half up). */
const char *onnxhook_format_fixed(char *buf, size_t len, double v, int decimals);
const char *onnxhook_format_count(uint64_t n, char *buf, size_t len);
const char *onnxhook_format_bytes(uint64_t n, char *buf, size_t len);

/* "Conv 20, Relu 17, ..." ordered by first appearance. */
void onnxhook_graph_op_summary(const struct onnxhook_graph *g, char *buf, size_t len);

/* ---- beside the model: Graphviz picture, test data ----------------------------------------- */

/* Writes data to path atomically: a temporary file beside it (O_EXCL, no symlink following),
 * then rename, so a reader never finds it half-written; what onnxhook_output_kind() says is
 * written into (/dev/stdout, a FIFO) is written into. 0 or a negative errno (the temporary is
 * removed). */
int onnxhook_file_replace(const char *path, const void *data, size_t len);

/* How an output (the model, its picture) goes to path, by what is there now:
 * ONNXHOOK_OUTPUT_FILE (nothing, or a regular file or a symlink to one, in an ordinary
 * directory: replaced by rename, which replaces a symlink and never writes through it);
 * ONNXHOOK_OUTPUT_INTO (written into, never replaced: a character device such as /dev/null, a
 * FIFO, or an open descriptor of this process named as /dev/stdout, /dev/fd/N,
 * /proc/self/fd/N or by a symlink leading there, whatever it is open on: a file, a pipe, a
 * socket). Refused: -EISDIR (a directory), -ENOTSUP (a block device, a socket by path), -EPERM
 * (a new or regular file in /dev, /proc or /sys: no file is ever created or renamed over
 * there; /dev/shm is an ordinary directory), -EBADF (a descriptor not open for writing),
 * -ENOTTY (a terminal), or the error opening a character device. onnxhook_output_strerror()
 * says so in words. */
enum { ONNXHOOK_OUTPUT_FILE, ONNXHOOK_OUTPUT_INTO };
int onnxhook_output_kind(const char *path);
const char *onnxhook_output_strerror(int r);
/* Whether path's directory (resolved) is /dev, /proc, /sys or below (but /dev/shm), or on procfs,
 * sysfs or devpts: no file is created there. */
bool onnxhook_output_in_system_dir(const char *path);
/* Writes into path (ONNXHOOK_OUTPUT_INTO): a descriptor as it is (a file at its offset), a path
 * opened for writing (a FIFO waits for its reader). write_fn(fd, ctx) writes; SIGPIPE is blocked
 * meanwhile and the one a gone reader raised is taken back, so the program is not killed (the
 * result is -EPIPE). 0 or a negative errno. */
int onnxhook_output_into(const char *path, int (*write_fn)(int fd, void *ctx), void *ctx);

/* The graph as Graphviz dot source: a box per node (op, name, key attributes, its initializers
 * as "weight 64x3x7x7 (37.6 KB)"), ovals for input_N and output_N, each edge labelled with its
 * tensor's shape. title (the graph name) heads the picture; may be NULL. Fills the outputs'
 * ordinals (onnxhook_graph_finish). dot_mem: a malloc'd, NUL-terminated buffer. */
int onnxhook_dot_mem(struct onnxhook_graph *g, const char *title, char **buf, size_t *len);
int onnxhook_dot_write(struct onnxhook_graph *g, const char *title, const char *path);

/* v as a serialized onnx TensorProto (name, doc_string = doc unless NULL, dims, data_type,
 * raw_data = data), malloc'd. */
int onnxhook_tensor_pack(const struct onnxhook_value *v, const char *name, const char *doc,
			 const void *data, uint8_t **buf, size_t *len);

/* Writes the test data set of the model file named model (its file name) in dir, input_N.pb and
 * output_N.pb from the snapshots the graph took (graph->test_data), each tensor's doc_string
 * "onnxhook test data of <model>" saying whose set it is. It goes to dir/test_data_set_0 when
 * nothing is there or this model's set is (replaced atomically: a temporary directory, then
 * renamed into place); another model's set, or one of unknown origin, is left alone and this
 * model's goes to dir/<model>.test_data_set_0 instead (why says so). set gets the name of the
 * set written. 0 or a negative errno; -ENODATA when an input or output's bytes are not known
 * (why says which, and this model's earlier set there is removed). why may also hold a note on
 * success (an earlier set that could not be removed). With graph->layer_data the set also holds
 * every other layer's result after output_N (output_<N+k>.pb named as the model names the value),
 * and each written tensor's doc_string a second line, "host call: <symbol>" (onnxhook verify). */
int onnxhook_test_data_write(struct onnxhook_graph *g, const char *dir, const char *model, char *set,
			     size_t setlen, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif

#endif /* ONNXHOOK_H */
