/* SPDX-License-Identifier: MIT */
/* The operand builder (operands.h): float32 tensors and the ONNX ops composed from them. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "operands.h"

struct onnxhook_shape onnxhook_shape1(int64_t a)
{
	return (struct onnxhook_shape){.rank = 1, .dims = {a}};
}

struct onnxhook_shape onnxhook_shape2(int64_t a, int64_t b)
{
	return (struct onnxhook_shape){.rank = 2, .dims = {a, b}};
}

struct onnxhook_shape onnxhook_shape3(int64_t a, int64_t b, int64_t c)
{
	return (struct onnxhook_shape){.rank = 3, .dims = {a, b, c}};
}

struct onnxhook_shape onnxhook_shape4(int64_t a, int64_t b, int64_t c, int64_t d)
{
	return (struct onnxhook_shape){.rank = 4, .dims = {a, b, c, d}};
}

struct onnxhook_tensor onnxhook_op_read(struct onnxhook_call *c, const float *p,
					struct onnxhook_shape s)
{
	return (struct onnxhook_tensor){onnxhook_call_read(c, p, ONNXHOOK_FLOAT, s.rank, s.dims),
					s};
}

struct onnxhook_tensor onnxhook_op_weight(struct onnxhook_call *c, const float *p,
					  struct onnxhook_shape s, const char *role)
{
	if (!p)
		return (struct onnxhook_tensor){ONNXHOOK_NONE, s};
	return (struct onnxhook_tensor){
	    onnxhook_call_weight(c, p, ONNXHOOK_FLOAT, s.rank, s.dims, role), s};
}

void onnxhook_op_write(struct onnxhook_call *c, struct onnxhook_tensor v, float *p)
{
	onnxhook_call_write(c, v.id, p);
}

struct onnxhook_tensor onnxhook_op_const(struct onnxhook_call *c, enum onnxhook_dtype dtype,
					 struct onnxhook_shape s, const void *data,
					 const char *role)
{
	return (struct onnxhook_tensor){onnxhook_call_const(c, dtype, s.rank, s.dims, data, role),
					s};
}

struct onnxhook_tensor onnxhook_op_scalar(struct onnxhook_call *c, float v, const char *role)
{
	return (struct onnxhook_tensor){onnxhook_call_const_f32(c, v, role), {.rank = 0}};
}

struct onnxhook_tensor onnxhook_op_ints(struct onnxhook_call *c, int n, const int64_t *v,
					const char *role)
{
	return (struct onnxhook_tensor){onnxhook_call_const_i64(c, n, v, role), onnxhook_shape1(n)};
}

struct onnxhook_tensor onnxhook_op_node_domain(struct onnxhook_call *c, const char *domain,
					       const char *op, int n,
					       const struct onnxhook_tensor *in, int n_attrs,
					       const struct onnxhook_attr *attrs,
					       struct onnxhook_shape out)
{
	uint32_t stack[8] = {0}, *ids = n <= 8 ? stack : malloc((size_t)n * sizeof(*ids));
	struct onnxhook_tensor r = {ONNXHOOK_NONE, out};

	if (!ids) {
		if (!c->err)
			c->err = -ENOMEM;
		return r;
	}
	for (int i = 0; i < n; i++)
		ids[i] = in[i].id;
	r.id = onnxhook_call_node_domain(c, domain, op, n, ids, n_attrs, attrs, out.rank, out.dims);
	if (ids != stack)
		free(ids);
	return r;
}

struct onnxhook_tensor onnxhook_op_node(struct onnxhook_call *c, const char *op, int n,
					const struct onnxhook_tensor *in, int n_attrs,
					const struct onnxhook_attr *attrs,
					struct onnxhook_shape out)
{
	return onnxhook_op_node_domain(c, NULL, op, n, in, n_attrs, attrs, out);
}

struct onnxhook_tensor onnxhook_op_emit(struct onnxhook_call *c, const char *op, int n,
					const struct onnxhook_tensor *in, int n_attrs,
					const struct onnxhook_attr *attrs, struct onnxhook_shape out,
					float *p)
{
	struct onnxhook_tensor y = onnxhook_op_node(c, op, n, in, n_attrs, attrs, out);

	onnxhook_op_write(c, y, p);
	return y;
}

struct onnxhook_tensor onnxhook_op_unary(struct onnxhook_call *c, const char *op,
					 struct onnxhook_tensor x)
{
	return onnxhook_op_node(c, op, 1, &x, 0, NULL, x.s);
}

/* Numpy broadcasting of two shapes. */
static struct onnxhook_shape bcast(struct onnxhook_shape a, struct onnxhook_shape b)
{
	struct onnxhook_shape r = a.rank >= b.rank ? a : b;

	for (int i = 1; i <= a.rank && i <= b.rank; i++) {
		int64_t da = a.dims[a.rank - i], db = b.dims[b.rank - i];
		r.dims[r.rank - i] = da == 1 ? db : da;
	}
	return r;
}

struct onnxhook_tensor onnxhook_op_binary(struct onnxhook_call *c, const char *op,
					  struct onnxhook_tensor a, struct onnxhook_tensor b)
{
	const struct onnxhook_tensor in[2] = {a, b};

	return onnxhook_op_node(c, op, 2, in, 0, NULL, bcast(a.s, b.s));
}

struct onnxhook_tensor onnxhook_op_mulk(struct onnxhook_call *c, struct onnxhook_tensor x, float k,
					const char *role)
{
	return onnxhook_op_binary(c, "Mul", x, onnxhook_op_scalar(c, k, role));
}

struct onnxhook_tensor onnxhook_op_addk(struct onnxhook_call *c, struct onnxhook_tensor x, float k,
					const char *role)
{
	return onnxhook_op_binary(c, "Add", x, onnxhook_op_scalar(c, k, role));
}

struct onnxhook_tensor onnxhook_op_clip(struct onnxhook_call *c, struct onnxhook_tensor x, float lo,
					float hi)
{
	const struct onnxhook_tensor in[3] = {x, onnxhook_op_scalar(c, lo, "min"),
					      onnxhook_op_scalar(c, hi, "max")};

	return onnxhook_op_node(c, "Clip", 3, in, 0, NULL, x.s);
}

struct onnxhook_tensor onnxhook_op_reshape(struct onnxhook_call *c, struct onnxhook_tensor x,
					   struct onnxhook_shape s)
{
	if (onnxhook_shape_eq(&x.s, &s))
		return x;
	const struct onnxhook_tensor in[2] = {x, onnxhook_op_ints(c, s.rank, s.dims, "shape")};
	return onnxhook_op_node(c, "Reshape", 2, in, 0, NULL, s);
}

/* x[start:end:step] along each of n axes. */
struct onnxhook_tensor onnxhook_op_slices(struct onnxhook_call *c, struct onnxhook_tensor x, int n,
					  const int64_t *axes, const int64_t *starts,
					  const int64_t *ends, const int64_t *steps)
{
	struct onnxhook_shape s = x.s;
	bool unit = true;

	if (!n)
		return x;
	for (int i = 0; i < n; i++) {
		s.dims[axes[i]] = (ends[i] - starts[i] + steps[i] - 1) / steps[i];
		unit = unit && steps[i] == 1;
	}
	const struct onnxhook_tensor in[5] = {
	    x, onnxhook_op_ints(c, n, starts, "starts"), onnxhook_op_ints(c, n, ends, "ends"),
	    onnxhook_op_ints(c, n, axes, "axes"), onnxhook_op_ints(c, n, steps, "steps")};
	return onnxhook_op_node(c, "Slice", unit ? 4 : 5, in, 0, NULL, s);
}

struct onnxhook_tensor onnxhook_op_slice(struct onnxhook_call *c, struct onnxhook_tensor x,
					 int64_t axis, int64_t start, int64_t end)
{
	const int64_t step = 1;

	if (start == 0 && end == x.s.dims[axis])
		return x;
	return onnxhook_op_slices(c, x, 1, &axis, &start, &end, &step);
}

struct onnxhook_tensor onnxhook_op_concat(struct onnxhook_call *c, int n,
					  const struct onnxhook_tensor *xs, int axis)
{
	struct onnxhook_shape s = xs[0].s;
	const struct onnxhook_attr a = onnxhook_attr_int("axis", axis);

	if (n == 1)
		return xs[0];
	for (int i = 1; i < n; i++)
		s.dims[axis] += xs[i].s.dims[axis];
	return onnxhook_op_node(c, "Concat", n, xs, 1, &a, s);
}

/* Zeros appended at the end of each axis. */
struct onnxhook_tensor onnxhook_op_pad_end(struct onnxhook_call *c, struct onnxhook_tensor x,
					   const int64_t *extra)
{
	int64_t pads[2 * ONNXHOOK_MAX_RANK] = {0};
	struct onnxhook_shape s = x.s;
	bool any = false;

	for (int i = 0; i < x.s.rank; i++) {
		pads[x.s.rank + i] = extra[i];
		s.dims[i] += extra[i];
		any = any || extra[i];
	}
	if (!any)
		return x;
	const struct onnxhook_tensor in[2] = {x, onnxhook_op_ints(c, 2 * x.s.rank, pads, "pads")};
	return onnxhook_op_node(c, "Pad", 2, in, 0, NULL, s);
}
