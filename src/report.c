/* SPDX-License-Identifier: MIT */
/* The ONNXHOOK_REPORT line, written by the preload and read by the onnxhook command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "util.h"

/* s with %, tab, newline and other control bytes as %XX; to ops' syntax when ops. */
static size_t append_value(char *buf, size_t len, size_t o, const char *s, bool ops)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char c[4] = {(char)*p, '\0'};
		if (ops && p[0] == ',' && p[1] == ' ') /* "Conv 20, Relu 17" -> "Conv:20,Relu:17" */
			p++;
		else if (ops && *p == ' ')
			c[0] = ':';
		else if (*p < 0x20 || *p == 0x7f || *p == '%')
			c[0] = '%', c[1] = hex[*p >> 4], c[2] = hex[*p & 15];
		o = onnxhook_append(buf, len, o, c);
	}
	return o;
}

int onnxhook_report_format(const struct onnxhook_report *r, char *buf, size_t len)
{
	char secs[32];
	size_t o;

	o = onnxhook_append(buf, len, 0, "v=1\tpid=");
	o = onnxhook_append_u(buf, len, o, (uint64_t)r->pid);
	o = append_value(buf, len, onnxhook_append(buf, len, o, "\tpath="), r->path, false);
	o = onnxhook_append_u(buf, len, onnxhook_append(buf, len, o, "\tnodes="), r->nodes);
	o = append_value(buf, len, onnxhook_append(buf, len, o, "\tops="), r->ops, true);
	o = onnxhook_append_u(buf, len, onnxhook_append(buf, len, o, "\tinputs="), r->inputs);
	o = onnxhook_append_u(buf, len, onnxhook_append(buf, len, o, "\toutputs="), r->outputs);
	o = onnxhook_append_u(buf, len, onnxhook_append(buf, len, o, "\tparameters="), r->parameters);
	o = onnxhook_append_u(buf, len, onnxhook_append(buf, len, o, "\tbytes="), r->bytes);
	o = onnxhook_append_u(buf, len, onnxhook_append(buf, len, o, "\tdata_bytes="), r->data_bytes);
	o = onnxhook_append(buf, len, o, "\tseconds=");
	o = onnxhook_append(buf, len, o, onnxhook_format_fixed(secs, sizeof(secs), r->seconds, 3));
	o = onnxhook_append(buf, len, o, r->incomplete ? "\tincomplete=1\n" : "\tincomplete=0\n");
	/* Truncated: the newline did not fit. */
	return o > 0 && buf[o - 1] == '\n' ? (int)o : -1;
}

/* %XX back to its byte, in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		unsigned v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

static void copy_ops(char *out, size_t len, const char *ops)
{
	size_t o = 0;

	/* "Conv:20,Relu:17" -> "Conv 20, Relu 17" */
	for (; *ops; ops++)
		o = onnxhook_append(out, len, o, *ops == ':' ? " " : *ops == ',' ? ", " : (char[2]){*ops, '\0'});
	if (len && !o)
		out[0] = '\0';
}

bool onnxhook_report_parse(char *line, struct onnxhook_report *r)
{
	char *save = NULL;
	bool v1 = false;

	memset(r, 0, sizeof(*r));
	line[strcspn(line, "\n")] = '\0';
	for (char *f = strtok_r(line, "\t", &save); f; f = strtok_r(NULL, "\t", &save)) {
		char *val = strchr(f, '=');
		if (!val)
			continue;
		*val++ = '\0';
		unescape(val);
		if (!strcmp(f, "v"))
			v1 = !strcmp(val, "1");
		else if (!strcmp(f, "path"))
			snprintf(r->path, sizeof(r->path), "%s", val);
		else if (!strcmp(f, "ops"))
			copy_ops(r->ops, sizeof(r->ops), val);
		else if (!strcmp(f, "pid"))
			r->pid = strtol(val, NULL, 10);
		else if (!strcmp(f, "nodes"))
			r->nodes = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(f, "inputs"))
			r->inputs = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(f, "outputs"))
			r->outputs = (uint32_t)strtoul(val, NULL, 10);
		else if (!strcmp(f, "parameters"))
			r->parameters = strtoull(val, NULL, 10);
		else if (!strcmp(f, "bytes"))
			r->bytes = strtoull(val, NULL, 10);
		else if (!strcmp(f, "data_bytes"))
			r->data_bytes = strtoull(val, NULL, 10);
		else if (!strcmp(f, "seconds"))
			r->seconds = strtod(val, NULL);
		else if (!strcmp(f, "incomplete"))
			r->incomplete = !strcmp(val, "1");
	}
	return v1 && r->path[0];
}
