/* SPDX-License-Identifier: MIT */
/* The ONNX writer: graph -> protobuf-c ModelProto -> streamed to a temporary file -> rename. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "onnxhook.h"
#include "util.h"

/* ---- a bump allocator for the message tree (freed in one go) ----------------------------- */
/* Its chunks, the output buffer and the name set come from onnxhook_mem_alloc: a dump from a
 * signal handler gives them memory that is not malloc's. */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head;
	int err;
};

static void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!a->head || a->head->cap - a->head->used < size) {
		size_t cap = size > 65536 ? size : 65536;
		struct arena_chunk *c = onnxhook_mem_alloc(sizeof(*c) + cap);
		if (!c) {
			a->err = -ENOMEM;
			return NULL;
		}
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	void *p = (char *)a->head->data + a->head->used;
	a->head->used += size;
	memset(p, 0, size);
	return p;
}

static char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char tmp[256];

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *s = arena_alloc(a, (size_t)n + 1);
	if (!s)
		return NULL;
	if ((size_t)n < sizeof(tmp)) {
		memcpy(s, tmp, (size_t)n + 1);
	} else {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return s;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *c = a->head;
		a->head = c->next;
		onnxhook_mem_free(c);
	}
}

/* A message copied from its generated initialiser (which sets the descriptor). */
static void *arena_copy(struct arena *a, const void *init, size_t size)
{
	void *p = arena_alloc(a, size);

	if (p)
		memcpy(p, init, size);
	return p;
}
#define NEW(a, type, INIT) ((type *)arena_copy(a, &(const type)INIT, sizeof(type)))
#define ARRAY(a, type, n) ((type *)arena_alloc(a, sizeof(type) * ((n) > 0 ? (size_t)(n) : 1)))

/* ---- model construction ------------------------------------------------------------------ */

static char *const_name(struct arena *a, const int64_t *v, int64_t n)
{
	char buf[8 * 24 + 8] = "const";
	size_t o = 5;

	for (int64_t i = 0; i < n; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, v[i] < 0 ? "_m%lld" : "_%lld",
				      (long long)(v[i] < 0 ? -(unsigned long long)v[i] : (unsigned long long)v[i]));
	return arena_printf(a, "%s", buf);
}

/* An intermediate value: the host's name for it, else its node's. */
static const char *display_name(const struct onnxhook_graph *g, const struct onnxhook_value *v)
{
	return v->name ? v->name : g->nodes[v->producer].name;
}

/* Value names must be unique in a graph: host names repeat (a layer recorded in several
 * passes), and so may "<node>.<role>". Later ones get "_2", "_3", … */
struct name_set {
	struct onnxhook_hmap map;
	char **names;
	uint32_t n;
};

static uint64_t str_hash(const char *s)
{
	return onnxhook_hash_bytes(ONNXHOOK_HASH_SEED, s, strlen(s));
}

static bool name_used(const struct name_set *set, const char *name)
{
	size_t it = SIZE_MAX;
	uint32_t i;

	while ((i = onnxhook_hmap_find(&set->map, str_hash(name), &it)) != ONNXHOOK_NONE)
		if (!strcmp(set->names[i], name))
			return true;
	return false;
}

static char *unique_name(struct arena *a, struct name_set *set, char *name)
{
	char *base = name;

	for (unsigned k = 2; name && name_used(set, name); k++)
		name = arena_printf(a, "%s_%u", base, k);
	if (!name || onnxhook_hmap_put(&set->map, str_hash(name), set->n) < 0)
		return NULL;
	return set->names[set->n++] = name;
}

static char *base_name(struct arena *a, const struct onnxhook_graph *g, const struct onnxhook_value *v)
{
	switch (v->kind) {
	case ONNXHOOK_VALUE_INPUT:
		return arena_printf(a, "input_%u", v->ordinal);
	case ONNXHOOK_VALUE_NODE:
		return !v->consumers ? arena_printf(a, "output_%u", v->ordinal)
				     : arena_printf(a, "%s", display_name(g, v));
	case ONNXHOOK_VALUE_INITIALIZER:
		/* Small index constants by value ("const_0_2"): unique since they are deduplicated
		 * by content. Weights after their first user ("Conv_3.weight"). */
		if (v->origin == 0 && v->dtype == ONNXHOOK_INT64 && v->shape.rank == 1 &&
		    v->shape.dims[0] <= 8)
			return const_name(a, v->data, v->shape.dims[0]);
		return v->first_consumer != ONNXHOOK_NONE
			       ? arena_printf(a, "%s.%s", g->nodes[v->first_consumer].name,
					      v->role ? v->role : "const")
			       : arena_printf(a, "unused_%u", v->ordinal);
	}
	return NULL;
}

/* names[i] for every value; aliases[i] for written values that are graph outputs (the name a
 * debug output gives them). Inputs and outputs are named first: input_N/output_N never move. */
static char **value_names(struct arena *a, const struct onnxhook_graph *g, char ***aliases)
{
	char **names = ARRAY(a, char *, g->n_values);
	struct name_set set = {.names = ARRAY(a, char *, 2 * g->n_values)};
	int ok = names && set.names;

	*aliases = ARRAY(a, char *, g->n_values);
	ok = ok && *aliases;
	for (int reserved = 1; reserved >= 0 && ok; reserved--) {
		for (size_t i = 0; i < g->n_values && ok; i++) {
			const struct onnxhook_value *v = &g->values[i];
			bool io = v->kind == ONNXHOOK_VALUE_INPUT ||
				  (v->kind == ONNXHOOK_VALUE_NODE && !v->consumers);
			if (io != reserved)
				continue;
			ok = (names[i] = unique_name(a, &set, base_name(a, g, v))) != NULL;
		}
	}
	for (size_t i = 0; i < g->n_values && ok; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind == ONNXHOOK_VALUE_NODE && !v->consumers && v->written)
			ok = ((*aliases)[i] = unique_name(a, &set, arena_printf(a, "%s", display_name(g, v)))) != NULL;
	}
	onnxhook_hmap_free(&set.map);
	return ok ? names : NULL;
}

static Onnx__ValueInfoProto *value_info(struct arena *a, const struct onnxhook_value *v, char *name)
{
	Onnx__ValueInfoProto *vi = NEW(a, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
	Onnx__TypeProto *tp = NEW(a, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT);
	Onnx__TypeProto__Tensor *tt = NEW(a, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT);
	Onnx__TensorShapeProto *sp = NEW(a, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
	Onnx__TensorShapeProto__Dimension **dims =
		ARRAY(a, Onnx__TensorShapeProto__Dimension *, v->shape.rank);

	if (!vi || !tp || !tt || !sp || !dims)
		return NULL;
	for (int d = 0; d < v->shape.rank; d++) {
		dims[d] = NEW(a, Onnx__TensorShapeProto__Dimension,
			      ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
		if (!dims[d])
			return NULL;
		if (d == 0 && v->batched) {
			dims[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
			dims[d]->dim_param = "batch";
		} else {
			dims[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
			dims[d]->dim_value = v->shape.dims[d];
		}
	}
	sp->n_dim = (size_t)v->shape.rank;
	sp->dim = dims;
	tt->has_elem_type = 1;
	tt->elem_type = (int32_t)v->dtype;
	tt->shape = sp;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	vi->name = name;
	vi->type = tp;
	return vi;
}

static Onnx__AttributeProto *attribute(struct arena *a, const struct onnxhook_attr *at)
{
	Onnx__AttributeProto *p = NEW(a, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);

	if (!p)
		return NULL;
	p->name = (char *)at->name;
	p->has_type = 1;
	switch (at->type) {
	case ONNXHOOK_ATTR_INT:
		p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
		p->has_i = 1;
		p->i = at->i;
		break;
	case ONNXHOOK_ATTR_FLOAT:
		p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
		p->has_f = 1;
		p->f = at->f;
		break;
	case ONNXHOOK_ATTR_INTS:
		p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
		p->n_ints = (size_t)at->n;
		p->ints = (int64_t *)at->ints;
		break;
	case ONNXHOOK_ATTR_STRING:
		p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
		p->has_s = 1;
		p->s.data = (uint8_t *)at->s;
		p->s.len = strlen(at->s);
		break;
	}
	return p;
}

static Onnx__NodeProto *node_proto(struct arena *a, const struct onnxhook_node *n, char **names)
{
	Onnx__NodeProto *p = NEW(a, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
	int n_in = n->n_inputs;

	if (!p)
		return NULL;
	while (n_in > 0 && n->inputs[n_in - 1] == ONNXHOOK_NONE)
		n_in--; /* trailing omitted optionals are simply absent */
	p->input = ARRAY(a, char *, n_in);
	p->output = ARRAY(a, char *, 1);
	p->attribute = ARRAY(a, Onnx__AttributeProto *, n->n_attrs);
	if (!p->input || !p->output || !p->attribute)
		return NULL;
	p->n_input = (size_t)n_in;
	for (int i = 0; i < n_in; i++)
		p->input[i] = n->inputs[i] == ONNXHOOK_NONE ? "" : names[n->inputs[i]];
	p->n_output = 1;
	p->output[0] = names[n->output];
	p->name = n->name;
	p->doc_string = (char *)n->doc;
	p->op_type = (char *)n->op_type;
	p->domain = (char *)n->domain;
	p->n_attribute = (size_t)n->n_attrs;
	for (int i = 0; i < n->n_attrs; i++) {
		if (!(p->attribute[i] = attribute(a, &n->attrs[i])))
			return NULL;
	}
	return p;
}

static Onnx__TensorProto *initializer(struct arena *a, const struct onnxhook_value *v, char *name)
{
	Onnx__TensorProto *t = NEW(a, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT);

	if (!t)
		return NULL;
	t->n_dims = (size_t)v->shape.rank;
	t->dims = ARRAY(a, int64_t, v->shape.rank);
	if (!t->dims)
		return NULL;
	memcpy(t->dims, v->shape.dims, (size_t)v->shape.rank * sizeof(int64_t));
	t->has_data_type = 1;
	t->data_type = (int32_t)v->dtype;
	t->name = name;
	/* raw_data points at the recorded copy: the weights are never copied again. */
	t->has_raw_data = 1;
	t->raw_data.len = v->nbytes;
	t->raw_data.data = v->data;
	return t;
}

/* Debug: every value a host call wrote becomes a graph output too, after output_N, so a test
 * can hold each layer against the host's own buffer. A written value that already is a real
 * output gets an Identity copy under its intermediate name. */
static int debug_outputs(struct arena *a, const struct onnxhook_graph *g, Onnx__GraphProto *graph,
			 char **names, char **aliases)
{
	for (size_t i = 0; i < g->n_values; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind != ONNXHOOK_VALUE_NODE || !v->written)
			continue;
		char *name = names[i];
		if (!v->consumers) {
			Onnx__NodeProto *id = NEW(a, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
			name = aliases[i];
			if (!id || !name || !(id->input = ARRAY(a, char *, 1)) ||
			    !(id->output = ARRAY(a, char *, 1)) ||
			    !(id->name = arena_printf(a, "%s_debug_output", name)))
				return -ENOMEM;
			id->op_type = "Identity";
			id->n_input = id->n_output = 1;
			id->input[0] = names[i];
			id->output[0] = name;
			graph->node[graph->n_node++] = id;
		}
		if (!(graph->output[graph->n_output++] = value_info(a, v, name)))
			return -ENOMEM;
	}
	return 0;
}

/* ai.onnx, and each custom domain the nodes use (version 1). */
static int opset_imports(struct arena *a, const struct onnxhook_graph *g, int opset,
			 Onnx__ModelProto *model)
{
	Onnx__OperatorSetIdProto **ops = ARRAY(a, Onnx__OperatorSetIdProto *, 8);
	size_t n = 0;

	if (!ops)
		return -ENOMEM;
	for (size_t i = 0; i <= g->n_nodes; i++) {
		const char *domain = i == 0 ? "" : g->nodes[i - 1].domain;
		size_t j;
		if (!domain || n == 8)
			continue;
		for (j = 0; j < n && strcmp(ops[j]->domain, domain); j++)
			;
		if (j < n)
			continue;
		if (!(ops[n] = NEW(a, Onnx__OperatorSetIdProto, ONNX__OPERATOR_SET_ID_PROTO__INIT)))
			return -ENOMEM;
		ops[n]->domain = (char *)domain;
		ops[n]->has_version = 1;
		ops[n++]->version = *domain ? 1 : opset;
	}
	model->opset_import = ops;
	model->n_opset_import = n;
	return 0;
}

static int build(struct arena *a, struct onnxhook_graph *g, const struct onnxhook_write_opts *o,
		 Onnx__ModelProto *model, struct onnxhook_write_stats *st)
{
	Onnx__GraphProto *graph = NEW(a, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT);
	uint32_t n_outputs = onnxhook_graph_finish(g);
	char **aliases;
	char **names = value_names(a, g, &aliases);
	size_t extra = o->debug_outputs ? g->n_values : 0;
	int r;

	if (!graph || !names)
		return -ENOMEM;
	memset(st, 0, sizeof(*st));

	graph->node = ARRAY(a, Onnx__NodeProto *, g->n_nodes + extra);
	graph->initializer = ARRAY(a, Onnx__TensorProto *, g->n_initializers);
	graph->input = ARRAY(a, Onnx__ValueInfoProto *, g->n_inputs);
	graph->output = ARRAY(a, Onnx__ValueInfoProto *, n_outputs + extra);
	graph->value_info = ARRAY(a, Onnx__ValueInfoProto *, g->n_values);
	if (!graph->node || !graph->initializer || !graph->input || !graph->output || !graph->value_info)
		return -ENOMEM;

	for (size_t i = 0; i < g->n_nodes; i++) {
		if (!(graph->node[graph->n_node++] = node_proto(a, &g->nodes[i], names)))
			return -ENOMEM;
	}
	/* Values in id order: inputs in first-read order, outputs in production order. */
	for (size_t i = 0; i < g->n_values; i++) {
		const struct onnxhook_value *v = &g->values[i];
		void *p = (void *)1;
		switch (v->kind) {
		case ONNXHOOK_VALUE_INPUT:
			p = graph->input[graph->n_input++] = value_info(a, v, names[i]);
			break;
		case ONNXHOOK_VALUE_NODE:
			if (v->consumers)
				p = graph->value_info[graph->n_value_info++] = value_info(a, v, names[i]);
			else
				p = graph->output[graph->n_output++] = value_info(a, v, names[i]);
			break;
		case ONNXHOOK_VALUE_INITIALIZER:
			if (!v->consumers)
				break;
			p = graph->initializer[graph->n_initializer++] = initializer(a, v, names[i]);
			if (v->dtype == ONNXHOOK_FLOAT)
				st->parameters += v->nbytes / 4;
			break;
		}
		if (!p)
			return -ENOMEM;
	}
	st->n_outputs = (uint32_t)graph->n_output;
	if (o->debug_outputs && (r = debug_outputs(a, g, graph, names, aliases)) < 0)
		return r;
	/* The debug outputs' names, for their test data (testdata.c). */
	for (size_t i = 0; i < g->n_values && o->debug_outputs; i++) {
		struct onnxhook_value *v = &g->values[i];
		if (v->kind != ONNXHOOK_VALUE_NODE || !v->written)
			continue;
		free(v->debug_name);
		if (!(v->debug_name = strdup(v->consumers ? names[i] : aliases[i])))
			return -ENOMEM;
	}
	if ((r = opset_imports(a, g, o->opset ? o->opset : 17, model)) < 0)
		return r;
	graph->name = (char *)(o->graph_name ? o->graph_name : "onnxhook");

	/* Provenance from the caller, then the warnings: nothing that changes between two traces
	 * of the same run (no time, pid or address), so their models are byte-identical. */
	if (!(model->metadata_props = ARRAY(a, Onnx__StringStringEntryProto *, o->n_metadata + 1)))
		return -ENOMEM;
	for (size_t i = 0; i <= o->n_metadata; i++) {
		const char *key = i < o->n_metadata ? o->metadata[i].key : "onnxhook.warnings";
		const char *value = i < o->n_metadata ? o->metadata[i].value : g->warnings;
		Onnx__StringStringEntryProto *w;
		if (!key || !value || !value[0])
			continue;
		if (!(w = NEW(a, Onnx__StringStringEntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT)))
			return -ENOMEM;
		w->key = (char *)key;
		w->value = (char *)value;
		model->metadata_props[model->n_metadata_props++] = w;
	}
	model->has_ir_version = 1;
	model->ir_version = 8;
	model->producer_name = "onnxhook";
	model->producer_version = (char *)(o->producer_version ? o->producer_version : "");
	model->graph = graph;
	st->n_nodes = (uint32_t)graph->n_node;
	st->n_inputs = (uint32_t)graph->n_input;
	return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

/* protobuf-c calls append() with small pieces and with whole weight blobs: gather the small
 * ones into a 1 MiB buffer and pass big ones straight to write(2). */
struct fd_buffer {
	ProtobufCBuffer base;
	int fd;
	int err;
	size_t len;
	uint64_t total;
	uint8_t data[1 << 20];
};

static void fd_buffer_flush(struct fd_buffer *b)
{
	if (b->len && !b->err)
		b->err = onnxhook_write_all(b->fd, b->data, b->len);
	b->len = 0;
}

static void fd_buffer_append(ProtobufCBuffer *base, size_t len, const uint8_t *data)
{
	struct fd_buffer *b = (struct fd_buffer *)base;

	b->total += len;
	if (b->err)
		return;
	if (len > sizeof(b->data) - b->len) {
		fd_buffer_flush(b);
		if (len >= sizeof(b->data) / 2) {
			if (!b->err)
				b->err = onnxhook_write_all(b->fd, data, len);
			return;
		}
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

static int pack_to_fd(const Onnx__ModelProto *model, int fd, uint64_t *bytes)
{
	struct fd_buffer *b = onnxhook_mem_alloc(sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	b->base.append = fd_buffer_append;
	b->fd = fd;
	b->err = 0;
	b->len = 0;
	b->total = 0;
	onnx__model_proto__pack_to_buffer(model, &b->base);
	fd_buffer_flush(b);
	r = b->err;
	*bytes = b->total;
	onnxhook_mem_free(b);
	return r;
}

/* ---- external data ----------------------------------------------------------------------- */

/* The initializers moved out of the model, in file order. Their bytes stay where the recorder
 * copied them: the data file is written straight from there. */
struct external {
	size_t n;
	const uint8_t **data;
	size_t *len;
	uint64_t *off;
	uint64_t size;  /* of the data file */
	char *location; /* shared by every tensor's "location" entry; set once the name is known */
};

#define LOCATION_MAX 4200

static Onnx__StringStringEntryProto *entry(struct arena *a, const char *key, char *value)
{
	Onnx__StringStringEntryProto *e = NEW(a, Onnx__StringStringEntryProto,
					      ONNX__STRING_STRING_ENTRY_PROTO__INIT);

	if (e && value) {
		e->key = (char *)key;
		e->value = value;
		return e;
	}
	return NULL;
}

/* Every initializer of at least ONNXHOOK_EXTERNAL_MIN bytes leaves the model for the data file,
 * at offsets aligned so that it can be mapped (onnxruntime mmaps external data). */
static int externalise(struct arena *a, Onnx__ModelProto *model, struct external *x)
{
	Onnx__GraphProto *gr = model->graph;
	size_t n = gr->n_initializer;

	x->data = ARRAY(a, const uint8_t *, n);
	x->len = ARRAY(a, size_t, n);
	x->off = ARRAY(a, uint64_t, n);
	x->location = arena_alloc(a, LOCATION_MAX);
	if (!x->data || !x->len || !x->off || !x->location)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		Onnx__TensorProto *t = gr->initializer[i];
		size_t len = t->raw_data.len;
		uint64_t off = (x->size + ONNXHOOK_EXTERNAL_ALIGN - 1) &
			       ~(uint64_t)(ONNXHOOK_EXTERNAL_ALIGN - 1);
		Onnx__StringStringEntryProto **e;

		if (!t->has_raw_data || len < ONNXHOOK_EXTERNAL_MIN)
			continue;
		if (!(e = ARRAY(a, Onnx__StringStringEntryProto *, 3)) ||
		    !(e[0] = entry(a, "location", x->location)) ||
		    !(e[1] = entry(a, "offset", arena_printf(a, "%llu", (unsigned long long)off))) ||
		    !(e[2] = entry(a, "length", arena_printf(a, "%zu", len))))
			return -ENOMEM;
		x->data[x->n] = t->raw_data.data;
		x->len[x->n] = len;
		x->off[x->n++] = off;
		x->size = off + len;
		t->has_raw_data = 0;
		t->raw_data.data = NULL;
		t->raw_data.len = 0;
		t->external_data = e;
		t->n_external_data = 3;
		t->has_data_location = 1;
		t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	}
	return 0;
}

static int write_external(int fd, void *ctx)
{
	const struct external *x = ctx;
	static const uint8_t zeros[ONNXHOOK_EXTERNAL_ALIGN];
	uint64_t pos = 0;
	int r = 0;

	for (size_t i = 0; i < x->n && r == 0; i++) {
		r = onnxhook_write_all(fd, zeros, (size_t)(x->off[i] - pos));
		if (r == 0)
			r = onnxhook_write_all(fd, x->data[i], x->len[i]);
		pos = x->off[i] + x->len[i];
	}
	return r;
}

/* Where the model goes and how: inline, or with its big initializers in an external file. */
static int plan(struct arena *a, Onnx__ModelProto *model, const struct onnxhook_write_opts *o,
		enum onnxhook_data_refused nowhere, struct external *x, struct onnxhook_write_stats *st)
{
	const uint64_t limit = o->inline_limit ? o->inline_limit : INT32_MAX;
	bool big;
	int r;

	/* Exact while each field is under 4 GiB; past that protobuf-c sizes length prefixes from
	 * 32 bits, a few bytes short: nothing against a 2 GiB limit. (It could not pack such a
	 * field: the prefix would wrap. With external data every packed field is small.) */
	st->inline_bytes = onnx__model_proto__get_packed_size(model);
	big = st->inline_bytes > limit;
	if (nowhere && (big || o->external_data == ONNXHOOK_EXTERNAL_ALWAYS)) {
		/* No data file possible: inline when it fits; else the caller writes elsewhere. */
		st->data_refused = nowhere;
		return !big ? 0 : nowhere == ONNXHOOK_DATA_NO_PLACE ? -EFBIG : -ENAMETOOLONG;
	}
	if (!big && o->external_data != ONNXHOOK_EXTERNAL_ALWAYS)
		return 0;
	/* NEVER past the limit: a file protobuf cannot read is no model; nothing may be lost,
	 * so the weights go outside anyway and the caller says so. */
	st->external_forced = big && o->external_data == ONNXHOOK_EXTERNAL_NEVER;
	if ((r = externalise(a, model, x)) < 0)
		return r;
	st->n_external = (uint32_t)x->n;
	st->data_bytes = x->size;
	/* Only a huge number of tiny initializers can still not fit. */
	return onnx__model_proto__get_packed_size(model) > limit ? -EFBIG : 0;
}

int onnxhook_write_mem(struct onnxhook_graph *g, const struct onnxhook_write_opts *o, uint8_t **buf,
		       size_t *len)
{
	struct arena a = {0};
	Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
	struct onnxhook_write_stats st;
	int r = build(&a, g, o, &model, &st);

	*buf = NULL;
	*len = 0;
	if (r == 0) {
		*len = onnx__model_proto__get_packed_size(&model);
		*buf = malloc(*len ? *len : 1);
		if (*buf)
			onnx__model_proto__pack(&model, *buf);
		else
			r = -ENOMEM;
	}
	arena_free(&a);
	return r;
}

/* "dir/app.12.onnx" + k -> "dir/app.12.k.onnx" (the extension stays last). */
static int numbered(const char *path, unsigned k, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash + 1 : path, '.');
	int n;

	if (k == 0)
		n = snprintf(out, len, "%s", path);
	else if (dot && dot != (slash ? slash + 1 : path))
		n = snprintf(out, len, "%.*s.%u%s", (int)(dot - path), path, k, dot);
	else
		n = snprintf(out, len, "%s.%u", path, k);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct into {
	const Onnx__ModelProto *model;
	uint64_t *bytes;
};

static int pack_into(int fd, void *ctx)
{
	struct into *i = ctx;

	return pack_to_fd(i->model, fd, i->bytes);
}

static int model_to_temp(const Onnx__ModelProto *model, const char *path, char *tmp, size_t len,
			 uint64_t *bytes)
{
	struct into i = {model, bytes};

	return onnxhook_write_temp(path, pack_into, &i, tmp, len);
}

static int publish(const char *tmp, const char *path, bool replace, char *final_path, size_t final_len)
{
	if (replace) {
		/* rename(2) replaces the directory entry: a symlink there is replaced, never followed. */
		if (rename(tmp, path) < 0)
			return -errno;
		return numbered(path, 0, final_path, final_len);
	}
	for (unsigned k = 0; k < 10000; k++) {
		char cand[4096];
		int r = numbered(path, k, cand, sizeof(cand));
		if (r < 0)
			return r;
		r = onnxhook_rename_new(tmp, cand);
		if (r == 0)
			return numbered(cand, 0, final_path, final_len);
		if (r != -EEXIST)
			return r;
	}
	return -EEXIST;
}

static int write_inline(const Onnx__ModelProto *model, const char *path, bool replace,
			char *final_path, size_t final_len, struct onnxhook_write_stats *st)
{
	char tmp[4200];
	int r = model_to_temp(model, path, tmp, sizeof(tmp), &st->bytes);

	if (r == 0 && (r = publish(tmp, path, replace, final_path, final_len)) < 0)
		unlink(tmp);
	return r;
}

/* Replaces the pair data, then model. The old data file is kept under a second name meanwhile
 * (a hard link, or, where link(2) fails, the file itself moved aside), so if a rename fails, it
 * goes back and the old pair stays whole. */
static int publish_pair_replace(const char *mtmp, const char *dtmp, const char *model,
				const char *data)
{
	char old[4400];
	bool kept = false, aside = false;
	int r = 0;

	if (snprintf(old, sizeof(old), "%s.old", dtmp) >= (int)sizeof(old))
		return -ENAMETOOLONG;
	if (link(data, old) == 0) {
		kept = true;
	} else if (errno != ENOENT) {
		/* A stale old name (rename replaces it) or no hard links here. A reader may find no
		 * data file for a moment, never the new data beside the old model. A directory is not
		 * moved: the data's rename refuses it. */
		struct stat sb;
		if (lstat(data, &sb) == 0 && S_ISDIR(sb.st_mode))
			return -EISDIR;
		if (rename(data, old) == 0)
			kept = aside = true;
		else if (errno != ENOENT)
			return -errno; /* nothing touched yet */
	} /* ENOENT: no old data */
	if (rename(dtmp, data) < 0) {
		r = -errno;
		if (aside) {
			rename(old, data); /* back; should that fail, it stays under old, not gone */
			kept = false;
		}
	} else if (rename(mtmp, model) < 0) {
		r = -errno;
		/* The old data goes back over the new; with none to go back, the new one goes. When
		 * even that fails, the old data stays under old and the new one goes: a missing data
		 * file fails loudly, a wrong one would not. */
		if (!kept || rename(old, data) < 0)
			unlink(data);
		kept = false;
	}
	if (kept)
		unlink(old);
	return r;
}

/* The model names its data file inside (location), so the pair's names are chosen before the
 * model is packed. The data is written once, to a temporary; then it is published, then the
 * model. A default name claims a free data name, then the model name: one taken meanwhile sends
 * the data back to its temporary, and the next name is tried. */
static int write_pair(const Onnx__ModelProto *model, struct external *x, const char *path,
		      bool replace, char *final_path, size_t final_len, struct onnxhook_write_stats *st)
{
	char dtmp[4300], mtmp[4200], cand[4096], data[4200];
	struct stat sb;
	int r;

	if (snprintf(data, sizeof(data), "%s.data", path) >= (int)sizeof(data))
		return -ENAMETOOLONG;
	if ((r = onnxhook_write_temp(data, write_external, x, dtmp, sizeof(dtmp))) < 0)
		return r;
	for (unsigned k = 0; r == 0; k++) {
		const char *slash;
		if (k == (replace ? 1u : 10000u)) {
			r = -EEXIST;
			break;
		}
		if ((r = numbered(path, k, cand, sizeof(cand))) < 0)
			break;
		if (!replace && lstat(cand, &sb) == 0)
			continue; /* taken: its data name need not be claimed */
		slash = strrchr(cand, '/');
		if (snprintf(data, sizeof(data), "%s.data", cand) >= (int)sizeof(data) ||
		    snprintf(x->location, LOCATION_MAX, "%s.data", slash ? slash + 1 : cand) >=
			    LOCATION_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		if ((r = model_to_temp(model, path, mtmp, sizeof(mtmp), &st->bytes)) < 0)
			break;
		if (replace) {
			r = publish_pair_replace(mtmp, dtmp, cand, data);
		} else if ((r = onnxhook_rename_new(dtmp, data)) == 0 && (r = onnxhook_rename_new(mtmp, cand)) < 0 &&
			   rename(data, dtmp) < 0) {
			r = -errno;
			unlink(data);
		}
		if (r == 0)
			return numbered(cand, 0, final_path, final_len);
		unlink(mtmp);
		if (r == -EEXIST && !replace)
			r = 0;
	}
	unlink(dtmp);
	return r;
}

/* A device, FIFO or descriptor (/dev/null, /dev/stdout, /dev/fd/3) is written into, never
 * replaced: renaming over it would put a regular file where the device or link was. */
static int write_into(const Onnx__ModelProto *model, const char *path, char *final_path,
		      size_t final_len, struct onnxhook_write_stats *st)
{
	struct into i = {model, &st->bytes};
	int r = onnxhook_output_into(path, pack_into, &i);

	return r < 0 ? r : numbered(path, 0, final_path, final_len);
}

/* "<name>.data" beside the model must be a valid name too. */
static bool data_name_too_long(const char *path)
{
	const char *slash = strrchr(path, '/');

	return strlen(slash ? slash + 1 : path) + strlen(".data") > NAME_MAX;
}

int onnxhook_write(struct onnxhook_graph *g, const struct onnxhook_write_opts *o, const char *path,
		   bool replace, char *final_path, size_t final_len, struct onnxhook_write_stats *st)
{
	struct arena a = {0};
	Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
	struct external x = {0};
	enum onnxhook_data_refused nowhere = ONNXHOOK_DATA_PLACED;
	bool into = false;
	int r;

	if (replace) {
		if ((r = onnxhook_output_kind(path)) < 0)
			return r;
		into = r == ONNXHOOK_OUTPUT_INTO;
	} else if (onnxhook_output_in_system_dir(path)) {
		return -EPERM;
	}
	if (into)
		nowhere = ONNXHOOK_DATA_NO_PLACE;
	else if (data_name_too_long(path))
		nowhere = ONNXHOOK_DATA_NAME_TOO_LONG;
	if ((r = build(&a, g, o, &model, st)) < 0 || (r = plan(&a, &model, o, nowhere, &x, st)) < 0)
		goto out;
	if (into)
		r = write_into(&model, path, final_path, final_len, st);
	else if (x.n)
		r = write_pair(&model, &x, path, replace, final_path, final_len, st);
	else
		r = write_inline(&model, path, replace, final_path, final_len, st);
out:
	arena_free(&a);
	return r;
}
