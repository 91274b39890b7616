/* SPDX-License-Identifier: MIT */
/* darknet host, inside: what its layer mappings (preload/darknet/<family>.c) share with each
 * other and with the hooks (preload/darknet.c). A mapping turns one forward_<type>_layer call
 * into the standard ONNX ops that reproduce darknet's arithmetic, through the operand builder. */
#ifndef ONNXHOOK_DARKNET_LAYERS_H
#define ONNXHOOK_DARKNET_LAYERS_H

#include <errno.h>
#include <stdint.h>

#include "hook.h"
#include "operands.h"

/* darknet.h declares a few functions with "()". */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include "darknet.h"
#pragma GCC diagnostic pop

#include "darknet-hooks.h"

/* The layout the mappings were written against: a CPU build of 61c9d02e on LP64. Another
 * darknet.h means another darknet: its semantics need checking before these are trusted. */
#if defined(__x86_64__)
_Static_assert(sizeof(layer) == 1184 && sizeof(network) == 272,
	       "darknet.h is not the pjreddie/darknet 61c9d02e CPU header this adapter maps");
#else
#error "the darknet adapter's entry stubs are written for x86-64"
#endif

/* Records one call of forward_<type>_layer(l, net): reads, ops, writes on c. */
typedef void dn_record_fn(struct onnxhook_call *c, const layer *l, const network *net);

/* One per hooked layer function, each in its family's file. */
#define DN_RECORD_DECL(name, type) dn_record_fn record_##name;
DARKNET_HOOKS(DN_RECORD_DECL)
#undef DN_RECORD_DECL

/* ---- shared pieces (ops.c) ---------------------------------------------------------------- */

/* What a layer reads at net.input / leaves at l.output: batch × c × h × w when an image,
 * batch × n otherwise. */
struct onnxhook_shape dn_in_shape(const layer *l);
struct onnxhook_shape dn_out_shape(const layer *l);

/* The layer's fields contradict each other: stop recording (the model keeps what came before)
 * rather than write a graph that computes something else. Returns a placeholder. */
struct onnxhook_tensor dn_bad(struct onnxhook_call *c, const layer *l, const char *why);

/* dn_bad(), then return from the (void) record function. */
#define FAIL(c, l, why)                                                                          \
	do {                                                                                     \
		dn_bad(c, l, why);                                                               \
		return;                                                                          \
	} while (0)

/* A node in the "darknet" domain: what no standard op reproduces. */
struct onnxhook_tensor dn_unmapped(struct onnxhook_call *c, const char *what,
				   struct onnxhook_tensor x, struct onnxhook_shape out);

/* activate_array(x, n, a) as standard ops; x itself for LINEAR. */
struct onnxhook_tensor dn_activate(struct onnxhook_call *c, struct onnxhook_tensor x, ACTIVATION a);

/* Batch normalization with darknet's epsilon (on the standard deviation). */
struct onnxhook_tensor dn_batchnorm(struct onnxhook_call *c, const layer *l,
				    struct onnxhook_tensor x);

/* forward_convolutional_layer / forward_connected_layer on x, activation included. */
struct onnxhook_tensor dn_conv(struct onnxhook_call *c, const layer *l, struct onnxhook_tensor x);
struct onnxhook_tensor dn_connected(struct onnxhook_call *c, const layer *l,
				    struct onnxhook_tensor x);

#endif
