/* SPDX-License-Identifier: MIT */
/* The recorder: host calls become values and nodes; memory is versioned (SSA). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "onnxhook.h"
#include "util.h"

/* Weight copies: a big one gets a mapping of its own starting at a 2 MiB boundary, so the
 * kernel can back it with huge pages (THP "madvise"): one page fault per 2 MiB instead of 512
 * while copying, and fewer TLB misses when the dump writes it out. */
#define BIG_COPY ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static size_t page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

static void *copy_alloc(size_t n)
{
	if (n < BIG_COPY)
		return malloc(n);
	size_t len = page_round(n), span = len + HUGE_PAGE;
	char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	char *q = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	if (q > p)
		munmap(p, (size_t)(q - p));
	if (p + span > q + len)
		munmap(q + len, (size_t)(p + span - (q + len)));
	madvise(q, len, MADV_HUGEPAGE); /* a hint: without THP it is a plain mapping */
	return q;
}

static void copy_free(void *p, size_t n)
{
	if (n < BIG_COPY)
		free(p);
	else if (p)
		munmap(p, page_round(n));
}

void onnxhook_graph_init(struct onnxhook_graph *g)
{
	memset(g, 0, sizeof(*g));
	onnxhook_memmap_init(&g->mem);
}

static void free_node(struct onnxhook_node *n)
{
	free(n->name);
	free(n->inputs);
	free(n->attrs);
}

void onnxhook_graph_free(struct onnxhook_graph *g)
{
	for (size_t i = 0; i < g->n_values; i++) {
		copy_free(g->values[i].data, g->values[i].nbytes);
		free(g->values[i].name);
		free(g->values[i].snapshot);
	}
	for (size_t i = 0; i < g->n_nodes; i++)
		free_node(&g->nodes[i]);
	free(g->values);
	free(g->nodes);
	onnxhook_memmap_free(&g->mem);
	onnxhook_hmap_free(&g->inits);
	onnxhook_hmap_free(&g->views);
	onnxhook_hmap_free(&g->names);
	memset(g, 0, sizeof(*g));
}

struct onnxhook_attr onnxhook_attr_int(const char *name, int64_t v)
{
	return (struct onnxhook_attr){.name = name, .type = ONNXHOOK_ATTR_INT, .i = v};
}

struct onnxhook_attr onnxhook_attr_float(const char *name, float v)
{
	return (struct onnxhook_attr){.name = name, .type = ONNXHOOK_ATTR_FLOAT, .f = v};
}

struct onnxhook_attr onnxhook_attr_ints(const char *name, int n, const int64_t *v)
{
	struct onnxhook_attr a = {.name = name, .type = ONNXHOOK_ATTR_INTS};

	if (n < 0 || n > ONNXHOOK_MAX_ATTR_INTS)
		n = 0;
	a.n = n;
	memcpy(a.ints, v, (size_t)n * sizeof(*v));
	return a;
}

struct onnxhook_attr onnxhook_attr_string(const char *name, const char *v)
{
	return (struct onnxhook_attr){.name = name, .type = ONNXHOOK_ATTR_STRING, .s = v};
}

/* ---- call transactions ------------------------------------------------------------------- */

static onnxhook_changed_fn changed_fn;

void onnxhook_graph_on_changed(onnxhook_changed_fn fn)
{
	changed_fn = fn;
}

uint32_t onnxhook_call_fail(struct onnxhook_call *c, int err)
{
	if (!c->err)
		c->err = err;
	return ONNXHOOK_NONE;
}

void onnxhook_call_begin(struct onnxhook_call *c, struct onnxhook_graph *g, const char *label)
{
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->label = label;
	c->mark_values = g->n_values;
	c->mark_nodes = g->n_nodes;
	c->mark_inputs = g->n_inputs;
	c->mark_inits = g->n_initializers;
	c->mark_weight_bytes = g->weight_bytes;
	if (g->failed)
		c->err = -ECANCELED;
}

void onnxhook_call_begin_check(struct onnxhook_call *c, struct onnxhook_graph *g, const char *label,
			       struct onnxhook_stash *stash)
{
	onnxhook_call_begin(c, g, label);
	c->check = true;
	c->stash = stash;
}

void onnxhook_stash_clear(struct onnxhook_stash *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->v[i].bytes);
	s->n = 0;
	s->n_changed = 0;
}

static uint32_t new_value(struct onnxhook_call *c, enum onnxhook_value_kind kind,
			  enum onnxhook_dtype dtype, const struct onnxhook_shape *shape)
{
	struct onnxhook_graph *g = c->g;
	int64_t numel = onnxhook_shape_numel(shape, onnxhook_dtype_size(dtype));

	if (c->err)
		return ONNXHOOK_NONE;
	if (numel < 0)
		return onnxhook_call_fail(c, -EOVERFLOW);
	if (g->n_values >= UINT32_MAX - 1)
		return onnxhook_call_fail(c, -ENOSPC);
	if (g->n_values == g->cap_values) {
		size_t cap = g->cap_values ? g->cap_values * 2 : 256;
		void *v = realloc(g->values, cap * sizeof(*g->values));
		if (!v)
			return onnxhook_call_fail(c, -ENOMEM);
		g->values = v;
		g->cap_values = cap;
	}
	struct onnxhook_value *v = &g->values[g->n_values];
	*v = (struct onnxhook_value){
		.kind = kind,
		.dtype = dtype,
		.shape = *shape,
		.nbytes = (size_t)numel * onnxhook_dtype_size(dtype),
		.producer = ONNXHOOK_NONE,
		.first_consumer = ONNXHOOK_NONE,
		.view_src = ONNXHOOK_NONE,
	};
	return (uint32_t)g->n_values++;
}

static int op_slot(struct onnxhook_graph *g, const char *op_type)
{
	for (size_t i = 0; i < g->n_op_names; i++)
		if (g->op_names[i] == op_type || !strcmp(g->op_names[i], op_type))
			return (int)i;
	if (g->n_op_names == sizeof(g->op_names) / sizeof(g->op_names[0]))
		return -1;
	g->op_names[g->n_op_names] = op_type;
	return (int)g->n_op_names++;
}

void onnxhook_call_set_name(struct onnxhook_call *c, const char *prefix)
{
	snprintf(c->prefix, sizeof(c->prefix), "%s", prefix ? prefix : "");
}

void onnxhook_call_set_scope(struct onnxhook_call *c, const char *scope, const char *doc)
{
	onnxhook_append(c->scope, sizeof(c->scope), 0, scope ? scope : "");
	c->doc = doc;
}

void onnxhook_call_set_result(struct onnxhook_call *c, const void *ptr)
{
	c->result = (uintptr_t)ptr;
}

static uint64_t name_hash(const char *name)
{
	return onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, name, strlen(name));
}

static bool name_taken(const struct onnxhook_graph *g, const char *name)
{
	size_t it = SIZE_MAX;
	uint32_t id;

	/* Entries of rolled-back nodes point past the end or at another node: verify. */
	while ((id = onnxhook_hmap_find(&g->names, name_hash(name), &it)) != ONNXHOOK_NONE) {
		if (id < g->n_nodes && !strcmp(g->nodes[id].name, name))
			return true;
	}
	return false;
}

/* "<prefix>_<Op>" for named calls, "<scope>/<Op>_<k>" (k counting that op in the scope) for
 * calls with a scope, "<Op>_<k>" otherwise; "_2", "_3"… until unique. */
static char *node_name(struct onnxhook_call *c, const char *op_type, uint32_t k)
{
	char name[208];
	size_t base, n;

	/* Built by hand, not with snprintf: this runs for every node, and printf's machinery
	 * costs more than the rest of recording a small layer. */
	if (c->prefix[0]) {
		n = onnxhook_append(name, sizeof(name), 0, c->prefix);
		n = onnxhook_append(name, sizeof(name), n, "_");
		base = n = onnxhook_append(name, sizeof(name), n, op_type);
	} else if (c->scope[0]) {
		n = onnxhook_append(name, sizeof(name), 0, c->scope);
		n = onnxhook_append(name, sizeof(name), n, "/");
		n = onnxhook_append(name, sizeof(name), n, op_type);
		n = onnxhook_append(name, sizeof(name), n, "_");
		/* A scope holds a handful of nodes: the first free index is found by probing. */
		for (unsigned i = 0;; i++) {
			base = onnxhook_append_u(name, sizeof(name), n, i);
			if (!name_taken(c->g, name))
				break;
		}
	} else {
		n = onnxhook_append(name, sizeof(name), 0, op_type);
		n = onnxhook_append(name, sizeof(name), n, "_");
		base = onnxhook_append_u(name, sizeof(name), n, k);
	}
	for (unsigned i = 2; name_taken(c->g, name); i++)
		n = onnxhook_append_u(name, sizeof(name), onnxhook_append(name, sizeof(name), base, "_"), i);
	return strdup(name);
}

uint32_t onnxhook_call_node(struct onnxhook_call *c, const char *op_type, int n_inputs,
			    const uint32_t *inputs, int n_attrs, const struct onnxhook_attr *attrs,
			    int out_rank, const int64_t *out_dims)
{
	return onnxhook_call_node_domain(c, NULL, op_type, n_inputs, inputs, n_attrs, attrs, out_rank,
					 out_dims);
}

uint32_t onnxhook_call_node_domain(struct onnxhook_call *c, const char *domain, const char *op_type,
				   int n_inputs, const uint32_t *inputs, int n_attrs,
				   const struct onnxhook_attr *attrs, int out_rank, const int64_t *out_dims)
{
	struct onnxhook_graph *g = c->g;
	struct onnxhook_shape shape = onnxhook_shape_make(out_rank, out_dims);
	enum onnxhook_dtype dtype = ONNXHOOK_FLOAT;

	if (c->err || c->check)
		return ONNXHOOK_NONE;
	if (n_inputs < 0 || n_attrs < 0 || shape.rank < 0)
		return onnxhook_call_fail(c, -EINVAL);
	for (int i = 0; i < n_inputs; i++) {
		if (inputs[i] != ONNXHOOK_NONE && inputs[i] >= g->n_values)
			return onnxhook_call_fail(c, -EINVAL);
	}
	if (n_inputs > 0 && inputs[0] != ONNXHOOK_NONE)
		dtype = g->values[inputs[0]].dtype;
	int slot = op_slot(g, op_type);
	if (slot < 0)
		return onnxhook_call_fail(c, -ENOSPC);
	if (g->n_nodes == g->cap_nodes) {
		size_t cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
		void *v = realloc(g->nodes, cap * sizeof(*g->nodes));
		if (!v)
			return onnxhook_call_fail(c, -ENOMEM);
		g->nodes = v;
		g->cap_nodes = cap;
	}
	uint32_t out = new_value(c, ONNXHOOK_VALUE_NODE, dtype, &shape);
	if (out == ONNXHOOK_NONE)
		return ONNXHOOK_NONE;

	struct onnxhook_node n = {.op_type = op_type, .domain = domain, .n_inputs = n_inputs,
				  .n_attrs = n_attrs, .output = out, .label = c->label,
				  .doc = c->doc};
	n.name = node_name(c, op_type, g->op_counter[slot]);
	/* None for none: a Relu has no attributes (a hundred-odd bytes a node saved). */
	n.inputs = n_inputs ? malloc((size_t)n_inputs * sizeof(*n.inputs)) : NULL;
	n.attrs = n_attrs ? malloc((size_t)n_attrs * sizeof(*n.attrs)) : NULL;
	if (!n.name || (n_inputs && !n.inputs) || (n_attrs && !n.attrs) ||
	    onnxhook_hmap_put(&g->names, name_hash(n.name), (uint32_t)g->n_nodes) < 0) {
		free_node(&n);
		g->n_values--; /* the output value made above */
		return onnxhook_call_fail(c, -ENOMEM);
	}
	if (n_inputs)
		memcpy(n.inputs, inputs, (size_t)n_inputs * sizeof(*inputs));
	if (n_attrs)
		memcpy(n.attrs, attrs, (size_t)n_attrs * sizeof(*attrs));

	uint32_t idx = (uint32_t)g->n_nodes;
	for (int i = 0; i < n_inputs; i++) {
		if (inputs[i] == ONNXHOOK_NONE)
			continue;
		struct onnxhook_value *v = &g->values[inputs[i]];
		if (v->consumers++ == 0)
			v->first_consumer = idx;
	}
	g->values[out].producer = idx;
	g->op_counter[slot]++;
	g->nodes[g->n_nodes++] = n;
	return out;
}

static uint64_t shape_hash(uint64_t h, const struct onnxhook_shape *s)
{
	return onnxhook_hash_bytes(onnxhook_hash_u64(h, (uint64_t)s->rank), s->dims,
				   (size_t)s->rank * sizeof(s->dims[0]));
}

/* Initializers are keyed by origin pointer (0 for constants), size, shape and content. */
static uint32_t find_or_add_initializer(struct onnxhook_call *c, uintptr_t origin,
					enum onnxhook_dtype dtype,
					const struct onnxhook_shape *shape, const void *data,
					const char *role)
{
	struct onnxhook_graph *g = c->g;
	int64_t numel = onnxhook_shape_numel(shape, onnxhook_dtype_size(dtype));

	if (c->err || c->check)
		return ONNXHOOK_NONE;
	if (numel <= 0)
		return onnxhook_call_fail(c, numel < 0 ? -EOVERFLOW : -EINVAL);
	/* Don't copy the weights of another thread's unrelated call only to drop them. */
	if (c->foreign && !c->read_written)
		return onnxhook_call_fail(c, -EAGAIN);
	size_t nbytes = (size_t)numel * onnxhook_dtype_size(dtype);
	uint64_t content = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, data, nbytes);
	uint64_t key = shape_hash(onnxhook_hash_u64(onnxhook_hash_u64(content, origin), dtype), shape);
	size_t it = SIZE_MAX;
	uint32_t id;

	while ((id = onnxhook_hmap_find(&g->inits, key, &it)) != ONNXHOOK_NONE) {
		/* Entries of rolled-back calls point past the end or at another value: verify. */
		if (id >= g->n_values)
			continue;
		struct onnxhook_value *v = &g->values[id];
		if (v->kind == ONNXHOOK_VALUE_INITIALIZER && v->origin == origin && v->dtype == dtype &&
		    v->hash == content && onnxhook_shape_eq(&v->shape, shape) &&
		    !memcmp(v->data, data, nbytes))
			return id;
	}
	id = new_value(c, ONNXHOOK_VALUE_INITIALIZER, dtype, shape);
	if (id == ONNXHOOK_NONE)
		return id;
	struct onnxhook_value *v = &g->values[id];
	v->data = copy_alloc(nbytes);
	if (!v->data || onnxhook_hmap_put(&g->inits, key, id) < 0) {
		copy_free(v->data, nbytes);
		g->n_values--;
		return onnxhook_call_fail(c, -ENOMEM);
	}
	memcpy(v->data, data, nbytes);
	v->origin = origin;
	v->hash = content;
	v->role = role;
	v->ordinal = g->n_initializers++;
	g->weight_bytes += nbytes;
	return id;
}

uint32_t onnxhook_call_const(struct onnxhook_call *c, enum onnxhook_dtype dtype, int rank,
			     const int64_t *dims, const void *data, const char *role)
{
	struct onnxhook_shape shape = onnxhook_shape_make(rank, dims);

	if (shape.rank < 0)
		return onnxhook_call_fail(c, -EINVAL);
	return find_or_add_initializer(c, 0, dtype, &shape, data, role);
}

uint32_t onnxhook_call_const_i64(struct onnxhook_call *c, int n, const int64_t *v, const char *role)
{
	int64_t dims[1] = {n};

	return onnxhook_call_const(c, ONNXHOOK_INT64, 1, dims, v, role);
}

uint32_t onnxhook_call_const_f32(struct onnxhook_call *c, float v, const char *role)
{
	return onnxhook_call_const(c, ONNXHOOK_FLOAT, 0, NULL, &v, role);
}

static int add_pending(struct onnxhook_call *c, uintptr_t lo, uintptr_t hi, uint32_t value,
		       bool is_input)
{
	if (c->n_pending == ONNXHOOK_CALL_MAX_PENDING)
		return onnxhook_call_fail(c, -ENOSPC), -ENOSPC;
	c->pending[c->n_pending++] = (struct onnxhook_pending){lo, hi, value, is_input};
	return 0;
}

static uint32_t new_input(struct onnxhook_call *c, uintptr_t lo, uintptr_t hi,
			  enum onnxhook_dtype dtype, const struct onnxhook_shape *shape)
{
	uint32_t v = new_value(c, ONNXHOOK_VALUE_INPUT, dtype, shape);

	if (v == ONNXHOOK_NONE || add_pending(c, lo, hi, v, true) < 0)
		return ONNXHOOK_NONE;
	c->g->values[v].ordinal = c->g->n_inputs++;
	/* Bytes the check kept before the call (which may have overwritten them since). */
	for (int i = 0; c->stash && c->g->test_data && i < c->stash->n; i++) {
		const struct onnxhook_stashed *s = &c->stash->v[i];
		if (s->lo <= lo && hi <= s->hi && (c->g->values[v].snapshot = malloc(hi - lo))) {
			memcpy(c->g->values[v].snapshot, (const char *)s->bytes + (lo - s->lo), hi - lo);
			break;
		}
	}
	return v;
}

/* ---- checks before the real call -------------------------------------------------------- */

static uint64_t bytes_sum(uintptr_t lo, uintptr_t hi)
{
	return onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, (const void *)lo, hi - lo);
}

/* The mappings [lo, hi) cut: what is left of each holds its value's bytes as they are now
 * (intact as far as anyone knows), so its checksum covers those bytes from now on. Left to
 * the next check, a change made in between would pass for the value. neighbours: the pieces
 * around [lo, hi) too, else only those inside it. Only mapped memory is touched. */
static void resum(struct onnxhook_graph *g, uintptr_t lo, uintptr_t hi, bool neighbours)
{
	size_t i = onnxhook_memmap_first(&g->mem, lo);

	for (i = neighbours && i ? i - 1 : i; i < g->mem.n && g->mem.v[i].lo <= hi; i++) {
		struct onnxhook_mapping *e = &g->mem.v[i];
		if (e->resum && (neighbours || (lo <= e->lo && e->hi <= hi))) {
			e->sum = bytes_sum(e->lo, e->hi);
			e->resum = false;
		}
	}
}

static void stash_bytes(struct onnxhook_call *c, uintptr_t lo, uintptr_t hi)
{
	struct onnxhook_stash *s = c->stash;
	void *b;

	if (!s || !c->g->test_data || s->n == ONNXHOOK_STASH_MAX || !(b = malloc(hi - lo)))
		return; /* a missing copy leaves the input's test data to after the call */
	memcpy(b, (const void *)lo, hi - lo);
	s->v[s->n++] = (struct onnxhook_stashed){lo, hi, b};
}

static void note_changed(struct onnxhook_call *c, uint32_t id)
{
	struct onnxhook_graph *g = c->g;
	struct onnxhook_value *v = &g->values[id];
	size_t n = strlen(g->warnings);

	if (v->changed)
		return;
	v->changed = true;
	snprintf(g->warnings + n, sizeof(g->warnings) - n, "%s%s changed before %s", n ? "; " : "",
		 v->name ? v->name : g->nodes[v->producer].name, c->label);
	if (changed_fn)
		changed_fn(g, id, c->label);
}

/* A check found value id changed: said by the recording after the call, once it keeps the call. */
static void changed_later(struct onnxhook_call *c, uint32_t id)
{
	struct onnxhook_stash *s = c->stash;

	if (!s) {
		note_changed(c, id);
		return;
	}
	if (s->n_changed && s->epoch != c->g->epoch)
		s->n_changed = 0;
	s->epoch = c->g->epoch;
	if (s->n_changed < ONNXHOOK_STASH_MAX)
		s->changed[s->n_changed++] = id;
}

/* The mappings [lo, hi) overlaps, each hashed once per call: those whose bytes are not what
 * was there when they were mapped leave the map. Only mapped memory is touched. */
static void check_range(struct onnxhook_call *c, uintptr_t lo, uintptr_t hi, bool data)
{
	struct onnxhook_graph *g = c->g;
	size_t i = onnxhook_memmap_first(&g->mem, lo);

	while (i < g->mem.n && g->mem.v[i].lo < hi) {
		struct onnxhook_mapping *e = &g->mem.v[i];
		bool seen = false;
		for (int k = 0; k < c->n_checked && !seen; k++)
			seen = c->checked[k] == e->lo;
		if (seen) {
			i++;
			continue;
		}
		uint64_t sum = bytes_sum(e->lo, e->hi);
		if (e->resum) { /* cut by a move, on the side it left: taken as it is now */
			e->sum = sum;
			e->resum = false;
		}
		if (sum == e->sum) {
			if (c->n_checked < ONNXHOOK_CALL_MAX_PENDING)
				c->checked[c->n_checked++] = e->lo;
			i++;
			continue;
		}
		uint32_t id = e->value;
		uintptr_t elo = e->lo, ehi = e->hi;
		if (data)
			stash_bytes(c, elo > lo ? elo : lo, ehi < hi ? ehi : hi);
		if (onnxhook_memmap_clear(&g->mem, elo, ehi) < 0) {
			g->failed = true; /* a stale mapping cannot stay: stop recording */
			return;
		}
		/* A layer's result changed by code the hook does not see: worth a warning. A
		 * graph input refilled, or weights staged in a scratch buffer, are normal. */
		if (data && g->values[id].kind == ONNXHOOK_VALUE_NODE)
			changed_later(c, id);
	}
}

void onnxhook_graph_forget(struct onnxhook_graph *g, uintptr_t lo, uintptr_t hi)
{
	if (lo >= hi || !onnxhook_memmap_overlaps(&g->mem, lo, hi))
		return;
	if (onnxhook_memmap_clear(&g->mem, lo, hi) < 0)
		g->failed = true; /* released memory cannot stay mapped: stop recording */
	else
		resum(g, lo, hi, true); /* what is left of a block shrunk in place */
}

void onnxhook_graph_move(struct onnxhook_graph *g, uintptr_t lo, uintptr_t hi, uintptr_t to)
{
	uintptr_t to_hi;

	if (lo >= hi || __builtin_add_overflow(to, hi - lo, &to_hi))
		return;
	if (!onnxhook_memmap_overlaps(&g->mem, lo, hi) && !onnxhook_memmap_overlaps(&g->mem, to, to_hi))
		return;
	if (onnxhook_memmap_move(&g->mem, lo, hi, to) < 0) {
		/* Not followed: both ranges are fresh memory now (a graph input if read). */
		onnxhook_graph_forget(g, lo, hi);
		onnxhook_graph_forget(g, to, to_hi);
	} else {
		/* Pieces of values cut at the block's ends, in the new block; the old one may be
		 * gone already. */
		resum(g, to, to_hi, false);
	}
}

struct piece {
	uint32_t value;
	uint64_t off, len;
};

uint32_t onnxhook_call_read(struct onnxhook_call *c, const void *ptr, enum onnxhook_dtype dtype,
			    int rank, const int64_t *dims)
{
	struct onnxhook_graph *g = c->g;
	struct onnxhook_shape shape = onnxhook_shape_make(rank, dims);
	size_t es = onnxhook_dtype_size(dtype);

	if (c->err)
		return ONNXHOOK_NONE;
	int64_t numel = shape.rank < 0 ? -1 : onnxhook_shape_numel(&shape, es);
	uintptr_t lo = (uintptr_t)ptr, hi;
	if (numel <= 0 || !ptr || __builtin_add_overflow(lo, (uint64_t)numel * es, &hi))
		return onnxhook_call_fail(c, -EINVAL);
	if (c->check) {
		check_range(c, lo, hi, true);
		return ONNXHOOK_NONE;
	}

	/* Inputs found earlier in this same call (e.g. add(x, x) of a graph input). */
	for (int i = 0; i < c->n_pending; i++) {
		if (!c->pending[i].is_input || c->pending[i].hi <= lo || c->pending[i].lo >= hi)
			continue;
		if (c->pending[i].lo == lo && c->pending[i].hi == hi) {
			c->read_sig = onnxhook_hash_u64(onnxhook_hash_u64(c->read_sig, lo), hi);
			return onnxhook_view_reshape(c, c->pending[i].value, &shape);
		}
		/* overlapping fresh inputs in one call: not modelled */
		return onnxhook_call_fail(c, -ENOTSUP);
	}

	struct piece local[8], *pieces = local;
	size_t np = 0, cap = 8;
	uintptr_t cur = lo;
	uint32_t result = ONNXHOOK_NONE;

	c->read_sig = onnxhook_hash_u64(onnxhook_hash_u64(c->read_sig, lo), hi);

	for (size_t i = onnxhook_memmap_first(&g->mem, lo); cur < hi; i++) {
		const struct onnxhook_mapping *e = i < g->mem.n ? &g->mem.v[i] : NULL;
		uintptr_t s = e && e->lo < hi ? (e->lo > cur ? e->lo : cur) : hi;
		if (np + 2 > cap) {
			struct piece *p = malloc(cap * 2 * sizeof(*p));
			if (!p) {
				onnxhook_call_fail(c, -ENOMEM);
				goto out;
			}
			memcpy(p, pieces, np * sizeof(*p));
			if (pieces != local)
				free(pieces);
			pieces = p;
			cap *= 2;
		}
		if (s > cur) /* bytes no recorded op wrote: a graph input */
			pieces[np++] = (struct piece){ONNXHOOK_NONE, cur, s - cur};
		if (s >= hi)
			break;
		uintptr_t t = e->hi < hi ? e->hi : hi;
		pieces[np++] = (struct piece){e->value, e->offset + (s - e->lo), t - s};
		if (g->values[e->value].kind != ONNXHOOK_VALUE_INPUT)
			c->read_written = true;
		cur = t;
	}

	if (np == 1 && pieces[0].value == ONNXHOOK_NONE) {
		result = new_input(c, lo, hi, dtype, &shape);
		goto out;
	}
	uint32_t *parts = malloc(np * sizeof(*parts));
	if (!parts) {
		onnxhook_call_fail(c, -ENOMEM);
		goto out;
	}
	uintptr_t at = lo;
	for (size_t i = 0; i < np && !c->err; i++) {
		struct piece *p = &pieces[i];
		if (p->value == ONNXHOOK_NONE) {
			struct onnxhook_shape flat = {.rank = 1, .dims = {(int64_t)(p->len / es)}};
			if (p->len % es)
				onnxhook_call_fail(c, -EINVAL);
			parts[i] = new_input(c, at, at + p->len, dtype, &flat);
		} else if (g->values[p->value].dtype != dtype) {
			onnxhook_call_fail(c, -EINVAL);
		} else if (p->off == 0 && p->len == g->values[p->value].nbytes) {
			parts[i] = p->value;
		} else {
			parts[i] = onnxhook_view_slice(c, p->value, p->off, p->len);
		}
		at += p->len;
	}
	if (!c->err)
		result = np == 1 ? onnxhook_view_reshape(c, parts[0], &shape)
				 : onnxhook_view_concat(c, (int)np, parts, &shape);
	free(parts);
out:
	if (pieces != local)
		free(pieces);
	return c->err ? ONNXHOOK_NONE : result;
}

uint32_t onnxhook_call_weight(struct onnxhook_call *c, const void *ptr, enum onnxhook_dtype dtype,
			      int rank, const int64_t *dims, const char *role)
{
	struct onnxhook_shape shape = onnxhook_shape_make(rank, dims);
	int64_t numel = shape.rank < 0 ? -1 : onnxhook_shape_numel(&shape, onnxhook_dtype_size(dtype));
	uintptr_t lo = (uintptr_t)ptr, hi;

	if (c->err)
		return ONNXHOOK_NONE;
	if (numel <= 0 || !ptr ||
	    __builtin_add_overflow(lo, (uint64_t)numel * onnxhook_dtype_size(dtype), &hi))
		return onnxhook_call_fail(c, -EINVAL);
	if (c->check) {
		check_range(c, lo, hi, false);
		return ONNXHOOK_NONE;
	}
	/* Parameters computed by recorded ops at run time (and intact: checked before the call)
	 * are data, not constants. */
	if (onnxhook_memmap_overlaps(&c->g->mem, lo, hi))
		return onnxhook_call_read(c, ptr, dtype, rank, dims);
	return find_or_add_initializer(c, lo, dtype, &shape, ptr, role);
}

void onnxhook_call_write(struct onnxhook_call *c, uint32_t value, void *ptr)
{
	if (c->err || c->check)
		return;
	if (value >= c->g->n_values || !ptr)
		return (void)onnxhook_call_fail(c, -EINVAL);
	uintptr_t lo = (uintptr_t)ptr, hi;
	if (__builtin_add_overflow(lo, c->g->values[value].nbytes, &hi))
		return (void)onnxhook_call_fail(c, -EINVAL);
	add_pending(c, lo, hi, value, false);
}

static void rollback(struct onnxhook_call *c)
{
	struct onnxhook_graph *g = c->g;

	while (g->n_nodes > c->mark_nodes) {
		struct onnxhook_node *n = &g->nodes[--g->n_nodes];
		for (int i = 0; i < n->n_inputs; i++) {
			if (n->inputs[i] == ONNXHOOK_NONE || n->inputs[i] >= c->mark_values)
				continue;
			struct onnxhook_value *v = &g->values[n->inputs[i]];
			if (--v->consumers == 0)
				v->first_consumer = ONNXHOOK_NONE;
		}
		int slot = op_slot(g, n->op_type);
		if (slot >= 0)
			g->op_counter[slot]--;
		free_node(n);
	}
	while (g->n_values > c->mark_values) {
		struct onnxhook_value *v = &g->values[--g->n_values];
		copy_free(v->data, v->nbytes);
		free(v->name);
		free(v->snapshot);
	}
	g->n_inputs = c->mark_inputs;
	g->n_initializers = c->mark_inits;
	g->weight_bytes = c->mark_weight_bytes;
}

static uint64_t attr_hash(uint64_t h, const struct onnxhook_attr *a)
{
	uint32_t fbits;

	memcpy(&fbits, &a->f, sizeof(fbits));
	h = onnxhook_hash_bytes(h, a->name, strlen(a->name));
	h = onnxhook_hash_u64(onnxhook_hash_u64(onnxhook_hash_u64(h, a->type), (uint64_t)a->i), fbits);
	h = onnxhook_hash_bytes(h, a->ints, (size_t)a->n * sizeof(a->ints[0]));
	return a->s ? onnxhook_hash_bytes(h, a->s, strlen(a->s)) : h;
}

/* What makes a call "the same call": symbol, ops, attributes, weights (where they live and
 * what they hold), where its data comes from and where its results go. The write addresses
 * keep two identical weightless ops on one input (relu(x) twice) inside one pass. */
static uint64_t call_signature(const struct onnxhook_call *c)
{
	const struct onnxhook_graph *g = c->g;
	uint64_t h = onnxhook_hash_bytes(c->read_sig, c->label, strlen(c->label));

	for (int i = 0; i < c->n_pending; i++) {
		if (!c->pending[i].is_input)
			h = onnxhook_hash_u64(onnxhook_hash_u64(h, c->pending[i].lo), c->pending[i].hi);
	}
	/* With layer data every layer's result stays (onnxhook verify holds each against the model). */
	for (size_t i = c->mark_nodes; i < g->n_nodes && !g->layer_data; i++) {
		const struct onnxhook_node *n = &g->nodes[i];
		h = onnxhook_hash_bytes(h, n->op_type, strlen(n->op_type));
		for (int j = 0; j < n->n_attrs; j++)
			h = attr_hash(h, &n->attrs[j]);
		for (int j = 0; j < n->n_inputs; j++) {
			const struct onnxhook_value *v = n->inputs[j] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[j]];
			if (v && v->kind == ONNXHOOK_VALUE_INITIALIZER)
				h = shape_hash(onnxhook_hash_u64(onnxhook_hash_u64(h, v->origin), v->hash), &v->shape);
		}
	}
	return h;
}

/* Test data: the bytes the program had. The host call has returned, so a graph input is copied
 * now, on its first read, unless this same call wrote over it (an in-place op on the input): then
 * its bytes are gone and it is marked clobbered. A written value is copied now because its memory
 * may be reused later; once a node consumes it, it is no graph output and its copy goes, so the
 * copies held stay bounded by the values not consumed yet; with layer_data every copy stays
 * (onnxhook verify). Copies that fail for want of memory are simply missing: the test data set
 * is then not written (never a wrong one). */
static void snapshot_call(struct onnxhook_call *c)
{
	struct onnxhook_graph *g = c->g;

	for (int i = 0; i < c->n_pending; i++) {
		const struct onnxhook_pending *p = &c->pending[i];
		struct onnxhook_value *v = &g->values[p->value];
		if (v->snapshot || v->clobbered ||
		    v->kind != (p->is_input ? ONNXHOOK_VALUE_INPUT : ONNXHOOK_VALUE_NODE))
			continue;
		for (int j = 0; j < c->n_pending && p->is_input && !v->clobbered; j++)
			v->clobbered = !c->pending[j].is_input && c->pending[j].lo < p->hi &&
				       p->lo < c->pending[j].hi;
		if (!v->clobbered && (v->snapshot = malloc(v->nbytes ? v->nbytes : 1)))
			memcpy(v->snapshot, (const void *)p->lo, v->nbytes);
	}
	/* With layer data every layer's result stays (onnxhook verify holds each against the model). */
	for (size_t i = c->mark_nodes; i < g->n_nodes && !g->layer_data; i++) {
		const struct onnxhook_node *n = &g->nodes[i];
		for (int j = 0; j < n->n_inputs; j++) {
			struct onnxhook_value *v = n->inputs[j] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[j]];
			if (v && v->kind == ONNXHOOK_VALUE_NODE && v->snapshot) {
				free(v->snapshot);
				v->snapshot = NULL;
			}
		}
	}
}

void onnxhook_call_abandon(struct onnxhook_call *c)
{
	if (c->check || c->err == -ECANCELED)
		return;
	rollback(c);
	c->err = 0;
	c->n_pending = 0;
	c->read_sig = 0;
	c->read_written = false;
}

int onnxhook_call_end(struct onnxhook_call *c)
{
	struct onnxhook_graph *g = c->g;

	if (c->check) /* nothing to commit: the check's effects on the map are done */
		return c->err == -ECANCELED ? 0 : c->err;
	if (c->foreign && (c->err == -EAGAIN || (!c->err && !c->read_written))) {
		rollback(c);
		return ONNXHOOK_SKIPPED;
	}
	if (!c->err && g->n_nodes > c->mark_nodes && !c->foreign) {
		if (g->host_passes) {
			bool starts = g->boundary && g->pass_calls > 0;
			g->boundary = false;
			if (starts) {
				rollback(c);
				return ONNXHOOK_NEW_PASS;
			}
		} else {
			uint64_t sig = call_signature(c);
			if (g->pass_calls == 0) {
				g->pass_sig = sig;
			} else if (sig == g->pass_sig && !c->read_written) {
				rollback(c);
				return ONNXHOOK_NEW_PASS;
			}
		}
	}
	/* A pass that never ends stops at the bounds, with the graph so far. */
	if (!c->err && g->max_nodes && g->n_nodes > g->max_nodes)
		onnxhook_call_fail(c, -E2BIG);
	if (!c->err && g->max_bytes && g->weight_bytes > g->max_bytes)
		onnxhook_call_fail(c, -EFBIG);
	/* Inputs found by reads first, then the call's writes: an in-place op on a graph input
	 * leaves its output mapped there. */
	for (int pass = 0; pass < 2 && !c->err; pass++) {
		for (int i = 0; i < c->n_pending && !c->err; i++) {
			if (c->pending[i].is_input != (pass == 0))
				continue;
			const struct onnxhook_pending *p = &c->pending[i];
			int r = onnxhook_memmap_assign(&g->mem, p->lo, p->hi, p->value, 0);
			if (r < 0) {
				onnxhook_call_fail(c, r);
			} else { /* the bytes the call left: the next check compares against them */
				g->mem.v[onnxhook_memmap_first(&g->mem, p->lo)].sum = bytes_sum(p->lo, p->hi);
				resum(g, p->lo, p->hi, true);
			}
		}
	}
	if (c->err) {
		if (c->err != -ECANCELED) {
			rollback(c);
			/* The memory map may be half-updated (only on ENOMEM): stop recording. */
			g->failed = true;
		}
		return c->err;
	}
	/* The call's result carries the host's name: the write the host said, else the first. */
	int named = -1;
	for (int i = 0; i < c->n_pending && named < 0; i++) {
		if (!c->pending[i].is_input && (!c->result || c->pending[i].lo == c->result))
			named = i;
	}
	for (int i = 0, k = 1; i < c->n_pending; i++) {
		struct onnxhook_value *v = &g->values[c->pending[i].value];
		if (c->pending[i].is_input || v->kind != ONNXHOOK_VALUE_NODE)
			continue;
		v->written = true;
		if (c->prefix[0] && !v->name) {
			char name[96];
			if (i == named)
				snprintf(name, sizeof(name), "%s", c->prefix);
			else
				snprintf(name, sizeof(name), "%s_out%d", c->prefix, k++);
			v->name = strdup(name); /* best effort: unnamed falls back to its node */
		}
	}
	if (g->test_data)
		snapshot_call(c);
	if (g->n_nodes > c->mark_nodes)
		g->pass_calls++;
	if (c->stash) {
		for (int i = 0; c->stash->epoch == g->epoch && i < c->stash->n_changed; i++)
			note_changed(c, c->stash->changed[i]);
		c->stash->n_changed = 0;
	}
	return 0;
}

void onnxhook_graph_mark_boundary(struct onnxhook_graph *g)
{
	g->boundary = true;
	g->host_passes = true;
}

void onnxhook_graph_reset(struct onnxhook_graph *g)
{
	bool host_passes = g->host_passes, test_data = g->test_data, layer_data = g->layer_data;
	uint64_t max_nodes = g->max_nodes, max_bytes = g->max_bytes;
	uint32_t epoch = g->epoch;

	onnxhook_graph_free(g);
	onnxhook_graph_init(g);
	g->epoch = epoch + 1;
	g->host_passes = host_passes;
	g->test_data = test_data;
	g->layer_data = layer_data;
	g->max_nodes = max_nodes;
	g->max_bytes = max_bytes;
}

void onnxhook_graph_new_pass(struct onnxhook_graph *g)
{
	g->mem.n = 0;
	g->pass_calls = 0;
	g->epoch++;
}

uint32_t onnxhook_graph_finish(struct onnxhook_graph *g)
{
	uint32_t n = 0;

	for (size_t i = 0; i < g->n_values; i++) {
		struct onnxhook_value *v = &g->values[i];
		if (v->kind == ONNXHOOK_VALUE_NODE && v->consumers == 0)
			v->ordinal = n++;
	}
	return n;
}

void onnxhook_graph_op_summary(const struct onnxhook_graph *g, char *buf, size_t len)
{
	size_t o = 0;
	uint32_t counts[64] = {0};
	const char *names[64];
	size_t k = 0;

	if (len)
		buf[0] = '\0';
	/* By first appearance in the graph. */
	for (size_t i = 0; i < g->n_nodes; i++) {
		size_t j;
		for (j = 0; j < k; j++)
			if (!strcmp(names[j], g->nodes[i].op_type))
				break;
		if (j == k) {
			if (k == 64)
				continue;
			names[k++] = g->nodes[i].op_type;
		}
		counts[j]++;
	}
	for (size_t j = 0; j < k && o < len; j++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s %u", j ? ", " : "", names[j], counts[j]);
}
