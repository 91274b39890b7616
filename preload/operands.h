/* SPDX-License-Identifier: MIT */
/* The operand builder host files map their calls with: float32 tensors read, weights, constants
 * and nodes, each a recorded value with its shape (hosts never index the graph), composed into
 * the ONNX ops a call becomes, and the results written where the host wrote them. Every
 * function is a no-op once the call has failed (c->err): a mapping runs to its end and the
 * transaction rolls back. */
#ifndef ONNXHOOK_PRELOAD_OPERANDS_H
#define ONNXHOOK_PRELOAD_OPERANDS_H

#include <stdint.h>

#include "onnxhook.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A recorded value and its shape. */
struct onnxhook_tensor {
	uint32_t id; /* ONNXHOOK_NONE: an omitted optional input */
	struct onnxhook_shape s;
};

struct onnxhook_shape onnxhook_shape1(int64_t a);
struct onnxhook_shape onnxhook_shape2(int64_t a, int64_t b);
struct onnxhook_shape onnxhook_shape3(int64_t a, int64_t b, int64_t c);
struct onnxhook_shape onnxhook_shape4(int64_t a, int64_t b, int64_t c, int64_t d);

/* A dense float32 tensor the call reads at p (onnxhook_call_read). */
struct onnxhook_tensor onnxhook_op_read(struct onnxhook_call *c, const float *p,
					struct onnxhook_shape s);
/* Float32 parameters at p (onnxhook_call_weight); NULL: none (an omitted optional input). */
struct onnxhook_tensor onnxhook_op_weight(struct onnxhook_call *c, const float *p,
					  struct onnxhook_shape s, const char *role);
/* v is what the call left at p. */
void onnxhook_op_write(struct onnxhook_call *c, struct onnxhook_tensor v, float *p);

/* Constants: data of shape s (copied), a float scalar, n int64 values (rank 1). */
struct onnxhook_tensor onnxhook_op_const(struct onnxhook_call *c, enum onnxhook_dtype dtype,
					 struct onnxhook_shape s, const void *data,
					 const char *role);
struct onnxhook_tensor onnxhook_op_scalar(struct onnxhook_call *c, float v, const char *role);
struct onnxhook_tensor onnxhook_op_ints(struct onnxhook_call *c, int n, const int64_t *v,
					const char *role);

/* A node of op (in domain: a custom one; NULL: ai.onnx) on in[0..n), its output of shape out. */
struct onnxhook_tensor onnxhook_op_node(struct onnxhook_call *c, const char *op, int n,
					const struct onnxhook_tensor *in, int n_attrs,
					const struct onnxhook_attr *attrs,
					struct onnxhook_shape out);
struct onnxhook_tensor onnxhook_op_node_domain(struct onnxhook_call *c, const char *domain,
					       const char *op, int n,
					       const struct onnxhook_tensor *in, int n_attrs,
					       const struct onnxhook_attr *attrs,
					       struct onnxhook_shape out);
/* A node, its output written to p (the call's result there). */
struct onnxhook_tensor onnxhook_op_emit(struct onnxhook_call *c, const char *op, int n,
					const struct onnxhook_tensor *in, int n_attrs,
					const struct onnxhook_attr *attrs, struct onnxhook_shape out,
					float *p);

/* Compositions: an elementwise op of one input; of two, broadcast as numpy does; x·k, x + k;
 * clip(x, lo, hi); x reshaped (x itself when the shape is the same); x[start:end:step] along n
 * axes; x[start:end] along one (x itself when that is all of it); n tensors joined along axis
 * (xs[0] alone when n is 1); zeros appended at the end of each axis (x itself when none). */
struct onnxhook_tensor onnxhook_op_unary(struct onnxhook_call *c, const char *op,
					 struct onnxhook_tensor x);
struct onnxhook_tensor onnxhook_op_binary(struct onnxhook_call *c, const char *op,
					  struct onnxhook_tensor a, struct onnxhook_tensor b);
struct onnxhook_tensor onnxhook_op_mulk(struct onnxhook_call *c, struct onnxhook_tensor x, float k,
					const char *role);
struct onnxhook_tensor onnxhook_op_addk(struct onnxhook_call *c, struct onnxhook_tensor x, float k,
					const char *role);
struct onnxhook_tensor onnxhook_op_clip(struct onnxhook_call *c, struct onnxhook_tensor x, float lo,
					float hi);
struct onnxhook_tensor onnxhook_op_reshape(struct onnxhook_call *c, struct onnxhook_tensor x,
					   struct onnxhook_shape s);
struct onnxhook_tensor onnxhook_op_slices(struct onnxhook_call *c, struct onnxhook_tensor x, int n,
					  const int64_t *axes, const int64_t *starts,
					  const int64_t *ends, const int64_t *steps);
struct onnxhook_tensor onnxhook_op_slice(struct onnxhook_call *c, struct onnxhook_tensor x,
					 int64_t axis, int64_t start, int64_t end);
struct onnxhook_tensor onnxhook_op_concat(struct onnxhook_call *c, int n,
					  const struct onnxhook_tensor *xs, int axis);
struct onnxhook_tensor onnxhook_op_pad_end(struct onnxhook_call *c, struct onnxhook_tensor x,
					   const int64_t *extra);

#ifdef __cplusplus
}
#endif

#endif
