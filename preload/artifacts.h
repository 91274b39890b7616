/* SPDX-License-Identifier: MIT */
/* What the preload writes with the model: provenance metadata, the Graphviz picture, test data. */
#ifndef ONNXHOOK_PRELOAD_ARTIFACTS_H
#define ONNXHOOK_PRELOAD_ARTIFACTS_H

#include "onnxhook.h"

/* Reads the command line (/proc/self/cmdline) at start-up: the program may rewrite its
 * arguments later, and a dump from a signal handler cannot allocate. */
void onnxhook_provenance_init(void);

/* The model's provenance for metadata_props: onnxhook.version, onnxhook.command (the command
 * line at start-up, shell-quoted), onnxhook.host_library and onnxhook.host_build_id (the
 * libraries whose real functions the graph's nodes called). Called with the recorder lock held,
 * once per model; the strings stay valid until the next call. in_signal: from a signal handler,
 * the libraries are found without the dynamic linker's lock or malloc (/proc/self/maps). */
const struct onnxhook_metadata *onnxhook_provenance(const struct onnxhook_graph *g, size_t *n,
						    bool in_signal);

/* After the model was written to model_path: the Graphviz file (cfg->dot) and the test data set
 * beside the model (cfg->test_data). A failure is one error line; the model stays. */
void onnxhook_write_artifacts(struct onnxhook_graph *g, const struct onnxhook_config *cfg,
			      const char *exe, const char *model_path);

#endif
