/* SPDX-License-Identifier: MIT */
/* The graph as a Graphviz picture: one box per node, inputs and outputs as ovals, shapes on edges. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxhook.h"

/* Text inside a dot double-quoted string: '"' and '\' escaped ('\' starts escapes like \N, the
 * node's id, in labels), line breaks as \n, valid UTF-8 kept, anything else (control bytes,
 * broken UTF-8, which dot rejects) shown as '?'. Host names are arbitrary bytes. */
static void put_escaped(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		unsigned char ch = *p;
		int n = ch < 0x80 ? 0 : (ch & 0xe0) == 0xc0 ? 1 : (ch & 0xf0) == 0xe0 ? 2 : (ch & 0xf8) == 0xf0 ? 3 : -1;
		if (n > 0) {
			int k = 1;
			while (k <= n && (p[k] & 0xc0) == 0x80)
				k++;
			if (k == n + 1 && (ch != 0xc0 && ch != 0xc1)) {
				fwrite(p, 1, (size_t)k, f);
				p += k;
				continue;
			}
			n = -1;
		}
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (n < 0 || ch < 0x20 || ch == 0x7f)
			fputc('?', f);
		else
			fputc(ch, f);
		p++;
	}
}

static void put_bytes(FILE *f, uint64_t b)
{
	char s[ONNXHOOK_FORMAT_MAX];

	fputs(onnxhook_format_bytes(b, s, sizeof(s)), f); /* "37.6 KB", as the summary line */
}

static bool all_equal(const struct onnxhook_attr *a, int64_t *v)
{
	for (int i = 1; i < a->n; i++)
		if (a->ints[i] != a->ints[0])
			return false;
	*v = a->n ? a->ints[0] : 0;
	return true;
}

/* Key attributes, short: "kernel 7x7, stride 2, pad 3"; the defaults (dilation 1, group 1) are
 * left out, and any other attribute is shown as name=value. */
static void put_attrs(FILE *f, const struct onnxhook_node *n)
{
	const char *sep = "\\n";

	for (int i = 0; i < n->n_attrs; i++) {
		const struct onnxhook_attr *a = &n->attrs[i];
		int64_t same;
		if ((!strcmp(a->name, "dilations") && a->type == ONNXHOOK_ATTR_INTS && all_equal(a, &same) &&
		     same == 1) ||
		    (!strcmp(a->name, "group") && a->type == ONNXHOOK_ATTR_INT && a->i == 1))
			continue;
		fputs(sep, f);
		sep = ", ";
		if (a->type == ONNXHOOK_ATTR_INTS && !strcmp(a->name, "kernel_shape")) {
			fputs("kernel ", f);
			for (int j = 0; j < a->n; j++)
				fprintf(f, "%s%lld", j ? "x" : "", (long long)a->ints[j]);
			continue;
		}
		const char *word = !strcmp(a->name, "strides") ? "stride" : !strcmp(a->name, "pads") ? "pad"
				 : !strcmp(a->name, "dilations") ? "dilation" : NULL;
		if (a->type == ONNXHOOK_ATTR_INTS && word && all_equal(a, &same)) {
			fprintf(f, "%s %lld", word, (long long)same);
			continue;
		}
		put_escaped(f, word ? word : a->name);
		fputs(word ? " " : "=", f);
		switch (a->type) {
		case ONNXHOOK_ATTR_INT:
			fprintf(f, "%lld", (long long)a->i);
			break;
		case ONNXHOOK_ATTR_FLOAT:
			fprintf(f, "%g", (double)a->f);
			break;
		case ONNXHOOK_ATTR_INTS:
			for (int j = 0; j < a->n; j++)
				fprintf(f, "%s%lld", j ? "," : "", (long long)a->ints[j]);
			break;
		case ONNXHOOK_ATTR_STRING:
			put_escaped(f, a->s ? a->s : "");
			break;
		}
	}
}

static void put_shape(FILE *f, const struct onnxhook_shape *s)
{
	char buf[ONNXHOOK_MAX_RANK * 21 + 8];

	onnxhook_shape_str(s, buf, sizeof(buf));
	fputs(buf, f);
}

/* Small index constants by value ("shape [1,512]"), others by shape and size; consecutive
 * parameters of one shape share a line ("scale/bias/mean/var 64 (1.0 KB)"): the picture shows
 * what the weights are without a box for each. */
static void put_initializers(FILE *f, const struct onnxhook_graph *g, const struct onnxhook_node *n)
{
	for (int i = 0; i < n->n_inputs; i++) {
		const struct onnxhook_value *v = n->inputs[i] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[i]];
		if (!v || v->kind != ONNXHOOK_VALUE_INITIALIZER)
			continue;
		fputs("\\n", f);
		put_escaped(f, v->role ? v->role : "const");
		int64_t numel = onnxhook_shape_numel(&v->shape, 0);
		if (v->data && v->dtype == ONNXHOOK_INT64 && v->shape.rank <= 1 && numel <= 8) {
			const int64_t *d = v->data;
			fputs(" [", f);
			for (int64_t j = 0; j < numel; j++)
				fprintf(f, "%s%lld", j ? "," : "", (long long)d[j]);
			fputs("]", f);
			continue;
		}
		if (v->data && v->dtype == ONNXHOOK_FLOAT && numel == 1) {
			fprintf(f, " %g", (double)*(const float *)v->data);
			continue;
		}
		uint64_t bytes = v->nbytes;
		for (; i + 1 < n->n_inputs; i++) {
			const struct onnxhook_value *w =
				n->inputs[i + 1] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[i + 1]];
			if (!w || w->kind != ONNXHOOK_VALUE_INITIALIZER || !onnxhook_shape_eq(&w->shape, &v->shape))
				break;
			fputs("/", f);
			put_escaped(f, w->role ? w->role : "const");
			bytes += w->nbytes;
		}
		fputs(" ", f);
		put_shape(f, &v->shape);
		fputs(" (", f);
		put_bytes(f, bytes);
		fputs(")", f);
	}
}

/* A colour per kind of op, so the eye finds the convolutions and the joins. */
static const char *fill(const char *op)
{
	static const struct {
		const char *op, *colour;
	} t[] = {
		{"Conv", "#cfe2f3"}, {"ConvTranspose", "#cfe2f3"}, {"Gemm", "#b4d7f0"},
		{"MatMul", "#b4d7f0"}, {"BatchNormalization", "#e6d6ee"},
		{"InstanceNormalization", "#e6d6ee"}, {"Relu", "#fde5c8"}, {"LeakyRelu", "#fde5c8"},
		{"Sigmoid", "#fde5c8"}, {"Tanh", "#fde5c8"}, {"Softmax", "#f8cfc2"},
		{"MaxPool", "#d5ebd1"}, {"AveragePool", "#d5ebd1"}, {"GlobalAveragePool", "#d5ebd1"},
		{"GlobalMaxPool", "#d5ebd1"}, {"Add", "#fff4b8"}, {"Mul", "#fff4b8"}, {"Concat", "#fff4b8"},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(t[i].op, op))
			return t[i].colour;
	return "#eeeeee";
}

static int dot_to(FILE *f, struct onnxhook_graph *g, const char *title)
{
	uint32_t n_outputs = onnxhook_graph_finish(g);
	uint64_t params = 0;

	for (size_t i = 0; i < g->n_values; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind == ONNXHOOK_VALUE_INITIALIZER && v->consumers && v->dtype == ONNXHOOK_FLOAT)
			params += v->nbytes / 4;
	}
	fputs("digraph onnxhook {\n", f);
	fputs("\tgraph [rankdir=TB, labelloc=t, fontname=\"Helvetica\", fontsize=16, nodesep=0.3, "
	      "ranksep=0.35, label=\"", f);
	if (title && *title) {
		put_escaped(f, title);
		fputs(": ", f);
	}
	char count[ONNXHOOK_FORMAT_MAX];
	fprintf(f, "%zu nodes, %u input%s, %u output%s, %s parameters\"];\n", g->n_nodes,
		g->n_inputs, g->n_inputs == 1 ? "" : "s", n_outputs, n_outputs == 1 ? "" : "s",
		onnxhook_format_count(params, count, sizeof(count)));
	fputs("\tnode [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", fontname=\"Helvetica\", "
	      "fontsize=11, margin=\"0.12,0.04\"];\n", f);
	fputs("\tedge [fontname=\"Helvetica\", fontsize=9, color=\"#606060\", fontcolor=\"#404040\"];\n", f);

	/* Ids are ours (i<k>, n<k>, o<k>): names appear only inside escaped labels. */
	for (size_t i = 0; i < g->n_values; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind != ONNXHOOK_VALUE_INPUT)
			continue;
		fprintf(f, "\ti%u [shape=oval, fillcolor=\"#b7e1b0\", label=\"input_%u\\n", v->ordinal, v->ordinal);
		put_shape(f, &v->shape);
		fputs("\"];\n", f);
	}
	for (size_t i = 0; i < g->n_nodes; i++) {
		const struct onnxhook_node *n = &g->nodes[i];
		fprintf(f, "\tn%zu [fillcolor=\"%s\", label=\"", i, fill(n->op_type));
		if (n->domain && *n->domain) {
			put_escaped(f, n->domain);
			fputs(".", f);
		}
		put_escaped(f, n->op_type);
		fputs("\\n", f);
		put_escaped(f, n->name);
		put_attrs(f, n);
		put_initializers(f, g, n);
		fputs("\"];\n", f);
	}
	for (size_t i = 0; i < g->n_nodes; i++) {
		const struct onnxhook_node *n = &g->nodes[i];
		for (int j = 0; j < n->n_inputs; j++) {
			const struct onnxhook_value *v = n->inputs[j] == ONNXHOOK_NONE ? NULL : &g->values[n->inputs[j]];
			if (!v || v->kind == ONNXHOOK_VALUE_INITIALIZER)
				continue;
			if (v->kind == ONNXHOOK_VALUE_INPUT)
				fprintf(f, "\ti%u -> n%zu [label=\"", v->ordinal, i);
			else
				fprintf(f, "\tn%u -> n%zu [label=\"", v->producer, i);
			put_shape(f, &v->shape);
			fputs("\"];\n", f);
		}
	}
	for (size_t i = 0; i < g->n_values; i++) {
		const struct onnxhook_value *v = &g->values[i];
		if (v->kind != ONNXHOOK_VALUE_NODE || v->consumers)
			continue;
		fprintf(f, "\to%u [shape=oval, fillcolor=\"#f4b6b0\", label=\"output_%u\\n", v->ordinal, v->ordinal);
		put_shape(f, &v->shape);
		fprintf(f, "\"];\n\tn%u -> o%u [label=\"", v->producer, v->ordinal);
		put_shape(f, &v->shape);
		fputs("\"];\n", f);
	}
	fputs("}\n", f);
	return ferror(f) ? -EIO : 0;
}

int onnxhook_dot_mem(struct onnxhook_graph *g, const char *title, char **buf, size_t *len)
{
	FILE *f;
	int r;

	*buf = NULL;
	*len = 0;
	if (!(f = open_memstream(buf, len)))
		return -errno;
	r = dot_to(f, g, title);
	/* open_memstream reports a failed allocation only through fflush/fclose. */
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return r;
}

int onnxhook_dot_write(struct onnxhook_graph *g, const char *title, const char *path)
{
	char *buf;
	size_t len;
	int r = onnxhook_dot_mem(g, title, &buf, &len);

	if (r == 0)
		r = onnxhook_file_replace(path, buf, len);
	free(buf);
	return r;
}
