/* SPDX-License-Identifier: MIT */
/* The ONNXHOOK_REPORT line: the preload appends one per model it wrote, the onnxhook command
 * reads them for its summary. Tab-separated key=value fields, in this order:
 *   v=1 pid path nodes ops inputs outputs parameters bytes data_bytes seconds incomplete
 * ops as "Conv:20,Relu:17"; in values, %, tab, newline and other control bytes are %XX. */
#ifndef ONNXHOOK_REPORT_H
#define ONNXHOOK_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct onnxhook_report {
	long pid;
	char path[8194];  /* the model, absolute (a working directory and a name: 4096 each) */
	char ops[2048];   /* "Conv 20, Relu 17", as onnxhook_graph_op_summary() gives it */
	uint32_t nodes, inputs, outputs;
	uint64_t parameters, bytes;
	uint64_t data_bytes; /* the external data file's size; 0 without one */
	double seconds;      /* writing took; shown with 3 decimals */
	bool incomplete;     /* recording stopped early */
};

/* r as one line, its newline included, in buf: the line's length, or -1 if it does not fit. It
 * neither allocates nor formats with printf: a dump from a signal handler writes it. */
int onnxhook_report_format(const struct onnxhook_report *r, char *buf, size_t len);

/* One line (it ends at a newline or NUL; it is changed): true if it is a v=1 line naming a
 * model. Unknown fields (a later version's) are skipped. */
bool onnxhook_report_parse(char *line, struct onnxhook_report *r);

#ifdef __cplusplus
}
#endif

#endif
