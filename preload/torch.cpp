/* SPDX-License-Identifier: MIT */
/* Host: PyTorch (libtorch_cpu.so, Debian's python3-torch / libtorch-dev 1.13), from Python or C++,
 * eager or TorchScript.
 *
 * One mechanism for both: a global RecordFunction observer (at::addGlobalCallback) registered
 * with the libtorch the process loaded. Every aten op goes through the dispatcher, which runs the
 * observer's start callback before the kernel (inputs boxed) and its end callback after it
 * (outputs too): eager calls from Python or C++ and the TorchScript interpreter alike. The
 * exported at::_ops::<op>::call symbols would catch eager calls only (the interpreter calls the
 * kernels through the dispatcher's pointers) and need one hand-written signature per op; the
 * observer sees the op's name and boxed arguments, so an op without a mapping is still recorded
 * (a custom-domain node) instead of leaving a hole the next read would take for a graph input.
 * Outermost only: a thread-local depth, as the other hosts' guard (conv2d calls convolution,
 * _convolution, mkldnn_convolution: one Conv).
 *
 * Tensors are followed by memory as everywhere else: an op's tensor is its data pointer (storage
 * offset included) and strides. A dense read is the value there; a strided one (transpose,
 * permute, a slice along an inner axis, expand) is rebuilt from the memory it spans (Slice,
 * Reshape, Transpose, Expand of that value), never a copy that would lose its producer. View
 * ops (view, reshape, flatten, transpose, ...) record nothing when their result aliases their
 * input; when one copied (reshape of a strided tensor), the copy is recorded.
 *
 * What is a weight: a tensor that requires grad (nn.Parameter) is an initializer unless a recorded
 * op wrote its memory; so is a constant the program computes (a mask built at every forward, a
 * parameter gathered by an arange-made index: the section on constants). Everything else no
 * recorded op wrote is a graph input. Ops reading only such memory and producing no model value
 * are not the model's (torch.randn of the input, weight initialisation, the script's own checks):
 * an unmapped op is recorded only when it reads a value of the graph.
 *
 * Passes: the core's rule (the pass's first op recurring, same weights and attributes, on memory
 * no op of this pass wrote) works unchanged: the first op of a forward reads the input tensor,
 * which the program made with ops the hook does not record.
 *
 * libtorch is built with NDEBUG: RecordFunction's layout depends on it (meson passes -DNDEBUG).
 * Its non-inline members and the registration are looked up at run time (linking libtorch_cpu
 * would load it into every preloaded process); libc10 is linked (tensor accessors). This file is
 * built as a module of its own, libonnxhook-torch.so (the registry's 'module'), which the preload
 * loads only once libtorch_cpu is in the process: its calls of the preload go through the table
 * module-api.h redirects them to (module.h), so libc10 and libstdc++ stay out of other processes. */
#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/variable.h>

#include <dlfcn.h>
#include <link.h>
#include <math.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "hook.h"
#include "operands.h"
#include "torch-hooks.h"

namespace {

using T = struct onnxhook_tensor;
using S = struct onnxhook_shape;

/* ---- libtorch, found at run time ------------------------------------------------------------ */

struct torch_api {
	uint64_t (*add_global)(at::RecordFunctionCallback);
	void (*remove)(uint64_t);
	const char *(*name)(const at::RecordFunction *);
	size_t (*num_inputs)(const at::RecordFunction *);
};
torch_api api;
uint64_t handle;    /* the observer's */
int removed;        /* the observer was removed: capture is over */

/* ---- one op being recorded ------------------------------------------------------------------ */

struct op {
	struct onnxhook_call *c;
	const char *name;           /* "aten::conv2d" */
	const c10::IValue *in;      /* the op's arguments (the tail of the interpreter's stack) */
	size_t n_in;
	const std::vector<c10::IValue> *out; /* NULL in the check before the op */
	bool reads_graph;           /* some tensor read found memory the graph followed */
	const char *why;            /* what the mapping could not take (debug) */
};

const c10::IValue &arg(const op &o, size_t i)
{
	static const c10::IValue none;
	return i < o.n_in ? o.in[i] : none;
}

double num(const c10::IValue &v, double dflt)
{
	if (v.isDouble())
		return v.toDouble();
	if (v.isInt())
		return (double)v.toInt();
	if (v.isBool())
		return v.toBool();
	return dflt;
}

int64_t inum(const c10::IValue &v, int64_t dflt)
{
	return v.isInt() ? v.toInt() : v.isBool() ? v.toBool() : dflt;
}

/* An int list argument (int[2] arrives as a list; a bare int is repeated). */
int ints(const c10::IValue &v, int64_t *out, int max, int repeat)
{
	if (v.isInt()) {
		for (int i = 0; i < repeat && i < max; i++)
			out[i] = v.toInt();
		return repeat;
	}
	if (!v.isList())
		return 0;
	auto l = v.toListRef();
	int n = 0;
	for (const auto &e : l) {
		if (n >= max || !e.isInt())
			return -1;
		out[n++] = e.toInt();
	}
	if (n == 1 && repeat > 1) {
		for (int i = 1; i < repeat && i < max; i++)
			out[i] = out[0];
		n = repeat;
	}
	return n;
}

bool is_float_cpu(const at::Tensor &t)
{
	return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat &&
	       t.layout() == at::kStrided && t.has_storage() && t.dim() <= ONNXHOOK_MAX_RANK;
}

S shape_of(const at::Tensor &t)
{
	S s{};
	s.rank = (int)t.dim();
	for (int i = 0; i < s.rank; i++)
		s.dims[i] = t.sizes()[i];
	return s;
}

#define fail(o, err) fail_at(o, err, __LINE__)
void fail_at(op &o, int err, int line)
{
	if (!o.why) {
		static thread_local char buf[32];
		snprintf(buf, sizeof(buf), "torch.cpp:%d", line);
		o.why = buf;
	}
	if (!o.c->err)
		o.c->err = err;
}

T node(op &o, const char *type, std::initializer_list<T> in, std::initializer_list<onnxhook_attr> a,
       S out)
{
	std::vector<T> v(in);
	std::vector<onnxhook_attr> av(a);
	return onnxhook_op_node(o.c, type, (int)v.size(), v.data(), (int)av.size(), av.data(), out);
}

T transpose(op &o, T x, const int64_t *perm)
{
	S s = x.s;
	bool same = true;
	for (int i = 0; i < x.s.rank; i++) {
		s.dims[i] = x.s.dims[perm[i]];
		same = same && perm[i] == i;
	}
	if (same)
		return x;
	return node(o, "Transpose", {x}, {onnxhook_attr_ints("perm", x.s.rank, perm)}, s);
}

T expand(op &o, T x, S to)
{
	if (onnxhook_shape_eq(&x.s, &to))
		return x;
	return node(o, "Expand", {x, onnxhook_op_ints(o.c, to.rank, to.dims, "shape")}, {}, to);
}

/* ---- constants the program computes ---------------------------------------------------------
 * A value the program computes at every forward from nothing the graph holds (Swin's attention
 * mask: new_zeros and fills of slices; its relative position bias: a parameter gathered by an
 * int64 index made with arange at construction) is a constant, not a graph input. Constants are
 * followed per storage (the StorageImpl, held by a weak reference so that its address is never
 * another storage's while it is listed), at two levels:
 * - KONST: made by a table factory (arange, linspace, logspace, eye), a factory shaped after
 *   another tensor (new_zeros, zeros_like, ...: made while computing), a Python number lifted
 *   to a tensor, or by an op whose tensor arguments are all KONST or parameters (leaves that
 *   require grad); or a KONST written into a WEAK one (mask[a:b] = 1: the program builds a
 *   table). Read by a recorded op: an initializer, its bytes as they are then.
 * - WEAK: made by zeros, ones or full, or by an op on WEAK and KONST tensors only (10 * ones):
 *   a model input may be made so (model(torch.ones(...))). Not recorded while only such
 *   tensors are involved (the program initialising its parameters), but read by a recorded op,
 *   or by an op together with a parameter, it is a graph input as any memory no op wrote.
 * Anything else (empty, randn, from_numpy, a file, a copy of a non-constant into it) is not a
 * constant. An op whose results are constants is not recorded. */
enum { NOT_KONST, WEAK, KONST };

struct konst_set {
	std::mutex lock;
	struct entry {
		c10::weak_intrusive_ptr<c10::StorageImpl> ref;
		int level;
	};
	std::unordered_map<const c10::StorageImpl *, entry> m;
	size_t sweep_at = 4096;
};
konst_set &konsts()
{
	static konst_set *k = new konst_set; /* never destroyed: weak references outlive exit */
	return *k;
}

const c10::StorageImpl *storage_of(const at::Tensor &t)
{
	return t.defined() && t.has_storage() ? t.storage().unsafeGetStorageImpl() : nullptr;
}

int konst_level(const at::Tensor &t)
{
	const c10::StorageImpl *s = storage_of(t);
	if (!s)
		return NOT_KONST;
	konst_set &k = konsts();
	std::lock_guard<std::mutex> g(k.lock);
	auto it = k.m.find(s);
	return it == k.m.end() ? NOT_KONST : it->second.level;
}

bool is_konst(const at::Tensor &t) { return konst_level(t) == KONST; }

void set_konst(const at::Tensor &t, int level)
{
	const c10::StorageImpl *s = storage_of(t);
	if (!s)
		return;
	konst_set &k = konsts();
	std::lock_guard<std::mutex> g(k.lock);
	if (level == NOT_KONST) {
		k.m.erase(s);
		return;
	}
	auto it = k.m.find(s);
	if (it != k.m.end()) {
		it->second.level = level;
		return;
	}
	if (k.m.size() >= k.sweep_at) { /* storages released since: forget them */
		for (auto i = k.m.begin(); i != k.m.end();)
			i = i->second.ref.expired() ? k.m.erase(i) : std::next(i);
		k.sweep_at = std::max<size_t>(4096, 2 * k.m.size());
	}
	k.m.emplace(s, konst_set::entry{t.storage().getWeakStorageImpl(), level});
}

/* A parameter: a leaf that requires grad (with autograd on, what is computed from one requires
 * grad too; AutogradMeta's requires_grad_ is the leaf's own flag). */
bool is_param(const at::Tensor &t)
{
	const c10::AutogradMetaInterface *m = t.unsafeGetTensorImpl()->autograd_meta();
	return m && static_cast<const torch::autograd::AutogradMeta *>(m)->requires_grad_;
}

/* A constant or a parameter (an initializer when read). */
bool konst_or_param(const at::Tensor &t)
{
	return t.defined() && (t.unsafeGetTensorImpl()->is_wrapped_number() || is_param(t) || is_konst(t));
}

/* The tensor t as a value: dense, the value at its memory; strided, rebuilt from the span of
 * memory it covers. weight: a parameter (an initializer unless the graph wrote it). */
T read_span(op &o, const float *p, int64_t n, bool weight)
{
	if (onnxhook_memory_followed(p, (size_t)n * sizeof(float)))
		o.reads_graph = true;
	S s = onnxhook_shape1(n);
	return weight ? onnxhook_op_weight(o.c, p, s, "weight") : onnxhook_op_read(o.c, p, s);
}

T read(op &o, const at::Tensor &t, bool param = false)
{
	if (!is_float_cpu(t)) {
		fail(o, -ENOTSUP);
		return T{ONNXHOOK_NONE, {}};
	}
	const float *p = static_cast<const float *>(t.unsafeGetTensorImpl()->data());
	const bool weight = param || t.requires_grad() || is_konst(t);
	const S logical = shape_of(t);
	if (t.numel() == 0) {
		fail(o, -ENOTSUP);
		return T{ONNXHOOK_NONE, logical};
	}
	if (t.is_contiguous()) {
		if (onnxhook_memory_followed(p, (size_t)t.numel() * sizeof(float)))
			o.reads_graph = true;
		return weight ? onnxhook_op_weight(o.c, p, logical, "weight")
			      : onnxhook_op_read(o.c, p, logical);
	}
	/* Strided: the axes that move (size > 1, stride > 0), outermost (largest stride) first. */
	struct ax {
		int dim;
		int64_t size, stride;
	} axes[ONNXHOOK_MAX_RANK];
	int n = 0;
	bool broadcast = false;
	int64_t extent = 1;
	for (int i = 0; i < logical.rank; i++) {
		int64_t size = t.sizes()[i], stride = t.strides()[i];
		if (size == 1)
			continue;
		if (stride == 0) {
			broadcast = true;
			continue;
		}
		if (stride < 0) {
			fail(o, -ENOTSUP);
			return T{ONNXHOOK_NONE, logical};
		}
		int k = n++;
		while (k > 0 && axes[k - 1].stride < stride) {
			axes[k] = axes[k - 1];
			k--;
		}
		axes[k] = ax{i, size, stride};
		extent += (size - 1) * stride;
	}
	if (!n)
		return expand(o, onnxhook_op_reshape(o.c, read_span(o, p, 1, weight), [&] {
				      S s = logical;
				      for (int i = 0; i < s.rank; i++)
					      s.dims[i] = 1;
				      return s;
			      }()),
			      logical);
	/* The parent: a dense block whose axes' strides are these; the tensor is its corner. */
	S parent{};
	parent.rank = n;
	for (int k = 0; k < n; k++) {
		int64_t outer = k ? axes[k - 1].stride : axes[0].size * axes[0].stride;
		if (outer % axes[k].stride || outer / axes[k].stride < axes[k].size) {
			fail(o, -ENOTSUP); /* overlapping or irregular strides */
			return T{ONNXHOOK_NONE, logical};
		}
		parent.dims[k] = outer / axes[k].stride;
	}
	const int64_t inner = axes[n - 1].stride;
	if (inner > 1)
		parent.dims[parent.rank++] = inner;
	T x = read_span(o, p, extent, weight);
	int64_t whole = onnxhook_shape_numel(&parent, 1);
	int64_t extra[1] = {whole - extent};
	x = onnxhook_op_pad_end(o.c, x, extra);
	x = onnxhook_op_reshape(o.c, x, parent);
	for (int k = 0; k < n; k++)
		x = onnxhook_op_slice(o.c, x, k, 0, axes[k].size);
	if (inner > 1) {
		x = onnxhook_op_slice(o.c, x, n, 0, 1);
		S s = x.s;
		s.rank = n;
		x = onnxhook_op_reshape(o.c, x, s);
	}
	/* Back to the logical order of the moving axes. */
	int64_t perm[ONNXHOOK_MAX_RANK];
	int m = 0;
	for (int i = 0; i < logical.rank; i++)
		for (int k = 0; k < n; k++)
			if (axes[k].dim == i)
				perm[m++] = k;
	x = transpose(o, x, perm);
	S kept = logical;
	for (int i = 0; i < kept.rank; i++)
		if (t.strides()[i] == 0)
			kept.dims[i] = 1;
	x = onnxhook_op_reshape(o.c, x, kept);
	return broadcast ? expand(o, x, logical) : x;
}

/* param: the argument is a layer's parameter by nature (a convolution's weight, batch norm's
 * statistics): an initializer whether or not it requires grad (a frozen model's do not). */
T read_arg(op &o, size_t i, bool param = false)
{
	const c10::IValue &v = arg(o, i);
	if (!v.isTensor()) {
		fail(o, -ENOTSUP);
		return T{ONNXHOOK_NONE, {}};
	}
	return read(o, v.toTensor(), param);
}

/* An optional parameter: none (ONNXHOOK_NONE) when absent. */
T read_opt(op &o, size_t i)
{
	const c10::IValue &v = arg(o, i);
	if (v.isNone() || (v.isTensor() && !v.toTensor().defined()))
		return T{ONNXHOOK_NONE, {}};
	return read_arg(o, i, true);
}

/* A tensor or a scalar operand of an elementwise op. */
T operand(op &o, size_t i)
{
	const c10::IValue &v = arg(o, i);
	if (v.isTensor() && v.toTensor().defined() && v.toTensor().unsafeGetTensorImpl()->is_wrapped_number() &&
	    v.toTensor().has_storage() && v.toTensor().device().is_cpu()) {
		/* a Python number (x * 0.5): a 0-dim double, int64 or bool tensor */
		const at::Tensor &t = v.toTensor();
		const void *p = t.unsafeGetTensorImpl()->data();
		switch (t.scalar_type()) {
		case at::kDouble:
			return onnxhook_op_scalar(o.c, (float)*static_cast<const double *>(p), "scalar");
		case at::kFloat:
			return onnxhook_op_scalar(o.c, *static_cast<const float *>(p), "scalar");
		case at::kLong:
			return onnxhook_op_scalar(o.c, (float)*static_cast<const int64_t *>(p), "scalar");
		case at::kBool:
			return onnxhook_op_scalar(o.c, *static_cast<const bool *>(p) ? 1.0f : 0.0f, "scalar");
		default:
			break;
		}
	}
	if (v.isTensor())
		return read(o, v.toTensor());
	if (v.isDouble() || v.isInt() || v.isBool())
		return onnxhook_op_scalar(o.c, (float)num(v, 0), "scalar");
	fail(o, -ENOTSUP);
	return T{ONNXHOOK_NONE, {}};
}

const at::Tensor *out_tensor(const op &o, size_t k)
{
	if (!o.out || k >= o.out->size() || !(*o.out)[k].isTensor())
		return nullptr;
	return &(*o.out)[k].toTensor();
}

/* The op's k-th result's shape (in the check before the op: none, nodes are not made). */
S out_shape(const op &o, size_t k = 0)
{
	const at::Tensor *t = out_tensor(o, k);
	return t && t->defined() ? shape_of(*t) : S{};
}

/* v is the op's k-th result: it lives where the tensor's memory is. */
void write(op &o, T v, size_t k = 0)
{
	const at::Tensor *t = out_tensor(o, k);
	if (!o.out)
		return;
	if (!t || !is_float_cpu(*t) || t->numel() == 0) {
		fail(o, -ENOTSUP);
		return;
	}
	v = onnxhook_op_reshape(o.c, v, shape_of(*t));
	if (!t->is_contiguous()) {
		/* Dense in another order (channels last, propagated from a permuted input): the
		 * memory holds the value transposed to that order. */
		const int r = (int)t->dim();
		int64_t perm[ONNXHOOK_MAX_RANK], expect = 1;
		for (int i = 0; i < r; i++) {
			int j = i;
			while (j > 0 && t->strides()[perm[j - 1]] < t->strides()[i]) {
				perm[j] = perm[j - 1];
				j--;
			}
			perm[j] = i;
		}
		for (int j = r - 1; j >= 0; j--) {
			int64_t size = t->sizes()[perm[j]];
			if (size != 1 && t->strides()[perm[j]] != expect) {
				fail(o, -ENOTSUP);
				return;
			}
			expect *= size;
		}
		v = transpose(o, v, perm);
	}
	onnxhook_op_write(o.c, v, static_cast<float *>(t->unsafeGetTensorImpl()->data()));
}

/* A dim argument, made non-negative against rank. */
int64_t axis(const c10::IValue &v, int rank, int64_t dflt)
{
	int64_t d = inum(v, dflt);
	return d < 0 ? d + rank : d;
}

/* ---- the mappings --------------------------------------------------------------------------- */

using mapper = void (*)(op &);

void map_unary(op &o, const char *type)
{
	T x = read_arg(o, 0);
	write(o, onnxhook_op_unary(o.c, type, x));
}

void m_relu(op &o) { map_unary(o, "Relu"); }
void m_sigmoid(op &o) { map_unary(o, "Sigmoid"); }
void m_tanh(op &o) { map_unary(o, "Tanh"); }
void m_hardswish(op &o) { map_unary(o, "HardSwish"); }

void m_hardsigmoid(op &o)
{
	T x = read_arg(o, 0);
	write(o, node(o, "HardSigmoid", {x},
		      {onnxhook_attr_float("alpha", 1.0f / 6), onnxhook_attr_float("beta", 0.5f)}, x.s));
}

void m_silu(op &o)
{
	T x = read_arg(o, 0);
	write(o, onnxhook_op_binary(o.c, "Mul", x, onnxhook_op_unary(o.c, "Sigmoid", x)));
}

void m_gelu(op &o)
{
	T x = read_arg(o, 0);
	const c10::IValue &a = arg(o, 1);
	if (a.isString() && a.toStringRef() != "none") {
		/* tanh approximation: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))) */
		T x3 = onnxhook_op_binary(o.c, "Mul", x, onnxhook_op_binary(o.c, "Mul", x, x));
		T in = onnxhook_op_binary(o.c, "Add", x, onnxhook_op_mulk(o.c, x3, 0.044715f, "k"));
		T th = onnxhook_op_unary(o.c, "Tanh", onnxhook_op_mulk(o.c, in, sqrtf(2.0f / (float)M_PI), "k"));
		write(o, onnxhook_op_binary(o.c, "Mul", onnxhook_op_mulk(o.c, x, 0.5f, "k"),
					    onnxhook_op_addk(o.c, th, 1.0f, "one")));
		return;
	}
	T e = onnxhook_op_unary(o.c, "Erf", onnxhook_op_mulk(o.c, x, (float)M_SQRT1_2, "k"));
	write(o, onnxhook_op_binary(o.c, "Mul", onnxhook_op_mulk(o.c, x, 0.5f, "k"),
				    onnxhook_op_addk(o.c, e, 1.0f, "one")));
}

void m_hardtanh(op &o)
{
	T x = read_arg(o, 0);
	write(o, onnxhook_op_clip(o.c, x, (float)num(arg(o, 1), -1), (float)num(arg(o, 2), 1)));
}

void m_relu6(op &o)
{
	T x = read_arg(o, 0);
	write(o, onnxhook_op_clip(o.c, x, 0, 6));
}

/* add/sub(self, other, alpha), mul/div(self, other). */
void map_binary(op &o, const char *type, bool has_alpha)
{
	T a = operand(o, 0), b = operand(o, 1);
	double alpha = has_alpha ? num(arg(o, 2), 1) : 1;
	if (alpha != 1)
		b = onnxhook_op_mulk(o.c, b, (float)alpha, "alpha");
	write(o, onnxhook_op_binary(o.c, type, a, b));
}

void m_add(op &o) { map_binary(o, "Add", true); }
void m_sub(op &o) { map_binary(o, "Sub", true); }
void m_mul(op &o) { map_binary(o, "Mul", false); }
void m_div(op &o)
{
	if (arg(o, 2).isString()) {
		fail(o, -ENOTSUP); /* rounding_mode */
		return;
	}
	map_binary(o, "Div", false);
}

void m_rsub(op &o)
{
	T a = operand(o, 0), b = operand(o, 1);
	double alpha = num(arg(o, 2), 1);
	if (alpha != 1)
		a = onnxhook_op_mulk(o.c, a, (float)alpha, "alpha");
	write(o, onnxhook_op_binary(o.c, "Sub", b, a));
}

/* conv2d(input, weight, bias, stride, padding, dilation, groups);
 * convolution / _convolution(input, weight, bias, stride, padding, dilation, transposed,
 * output_padding, groups, ...). */
void map_conv(op &o, bool full)
{
	const c10::IValue &w = arg(o, 1);
	if (!w.isTensor() || (full && arg(o, 6).isBool() && arg(o, 6).toBool())) {
		fail(o, -ENOTSUP);
		return;
	}
	const int k = (int)w.toTensor().dim() - 2;
	int64_t stride[4], pad[4], dil[4], pads[8], kernel[4];
	if (k < 1 || k > 2 || ints(arg(o, 3), stride, 4, k) != k || ints(arg(o, 5), dil, 4, k) != k ||
	    ints(arg(o, 4), pad, 4, k) != k) {
		fail(o, -ENOTSUP);
		return;
	}
	for (int i = 0; i < k; i++) {
		pads[i] = pads[k + i] = pad[i];
		kernel[i] = w.toTensor().sizes()[2 + i];
	}
	int64_t groups = inum(arg(o, full ? 8 : 6), 1);
	T x = read_arg(o, 0), wt = read_arg(o, 1, true), b = read_opt(o, 2);
	std::vector<T> in{x, wt};
	if (b.id != ONNXHOOK_NONE)
		in.push_back(b);
	const onnxhook_attr a[] = {
		onnxhook_attr_ints("kernel_shape", k, kernel), onnxhook_attr_ints("strides", k, stride),
		onnxhook_attr_ints("pads", 2 * k, pads), onnxhook_attr_ints("dilations", k, dil),
		onnxhook_attr_int("group", groups)};
	write(o, onnxhook_op_node(o.c, "Conv", (int)in.size(), in.data(), 5, a, out_shape(o)));
}

void m_conv2d(op &o) { map_conv(o, false); }
void m_convolution(op &o) { map_conv(o, true); }

/* The per-channel parameter at argument i, or a constant of value k. */
T channel_param(op &o, size_t i, int64_t c, float k, const char *role)
{
	T v = read_opt(o, i);
	if (v.id != ONNXHOOK_NONE)
		return v;
	std::vector<float> d((size_t)c, k);
	return onnxhook_op_const(o.c, ONNXHOOK_FLOAT, onnxhook_shape1(c), d.data(), role);
}

/* batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn) */
void m_batch_norm(op &o)
{
	if (arg(o, 5).isBool() && arg(o, 5).toBool()) {
		fail(o, -ENOTSUP); /* training: batch statistics */
		return;
	}
	T x = read_arg(o, 0);
	int64_t c = x.s.rank > 1 ? x.s.dims[1] : 0;
	T in[5] = {x, channel_param(o, 1, c, 1, "scale"), channel_param(o, 2, c, 0, "bias"),
		   read_arg(o, 3, true), read_arg(o, 4, true)};
	onnxhook_attr eps = onnxhook_attr_float("epsilon", (float)num(arg(o, 7), 1e-5));
	write(o, onnxhook_op_node(o.c, "BatchNormalization", 5, in, 1, &eps, x.s));
}

/* layer_norm(input, normalized_shape, weight, bias, eps, cudnn) */
void m_layer_norm(op &o)
{
	T x = read_arg(o, 0);
	int64_t ns[ONNXHOOK_MAX_RANK];
	int n = ints(arg(o, 1), ns, ONNXHOOK_MAX_RANK, 1);
	if (n < 1 || n > x.s.rank) {
		fail(o, -ENOTSUP);
		return;
	}
	int64_t c = 1;
	for (int i = 0; i < n; i++)
		c *= ns[i];
	S ps{};
	ps.rank = n;
	for (int i = 0; i < n; i++)
		ps.dims[i] = ns[i];
	T g = channel_param(o, 2, c, 1, "scale"), b = channel_param(o, 3, c, 0, "bias");
	g = onnxhook_op_reshape(o.c, g, ps);
	b = onnxhook_op_reshape(o.c, b, ps);
	write(o, node(o, "LayerNormalization", {x, g, b},
		      {onnxhook_attr_int("axis", -n), onnxhook_attr_float("epsilon", (float)num(arg(o, 4), 1e-5))},
		      x.s));
}

/* max_pool2d(x, kernel, stride, padding, dilation, ceil_mode);
 * avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override) */
void map_pool(op &o, bool max)
{
	int64_t kernel[2], stride[2], pad[2], dil[2] = {1, 1}, pads[4];
	if (ints(arg(o, 1), kernel, 2, 2) != 2 || ints(arg(o, 3), pad, 2, 2) != 2) {
		fail(o, -ENOTSUP);
		return;
	}
	int ns = ints(arg(o, 2), stride, 2, 2);
	if (ns == 0) /* stride [] means the kernel */
		stride[0] = kernel[0], stride[1] = kernel[1];
	else if (ns != 2) {
		fail(o, -ENOTSUP);
		return;
	}
	if (max && ints(arg(o, 4), dil, 2, 2) != 2) {
		fail(o, -ENOTSUP);
		return;
	}
	bool ceil = max ? inum(arg(o, 5), 0) : inum(arg(o, 4), 0);
	bool include = max ? false : inum(arg(o, 5), 1);
	if (!max && !arg(o, 6).isNone()) {
		fail(o, -ENOTSUP); /* divisor_override */
		return;
	}
	pads[0] = pads[2] = pad[0];
	pads[1] = pads[3] = pad[1];
	T x = read_arg(o, 0);
	std::vector<onnxhook_attr> a{onnxhook_attr_ints("kernel_shape", 2, kernel),
				     onnxhook_attr_ints("strides", 2, stride),
				     onnxhook_attr_ints("pads", 4, pads), onnxhook_attr_int("ceil_mode", ceil)};
	if (max)
		a.push_back(onnxhook_attr_ints("dilations", 2, dil));
	else
		a.push_back(onnxhook_attr_int("count_include_pad", include));
	write(o, onnxhook_op_node(o.c, max ? "MaxPool" : "AveragePool", 1, &x, (int)a.size(), a.data(),
				  out_shape(o)));
}

void m_max_pool2d(op &o) { map_pool(o, true); }
void m_avg_pool2d(op &o) { map_pool(o, false); }

/* adaptive_{avg,max}_pool2d(x, output_size): global, an even split (a plain pool), or each output
 * cell's window (PyTorch's: [floor(i*in/out), ceil((i+1)*in/out))) sliced and reduced. */
void map_adaptive(op &o, bool max)
{
	T x = read_arg(o, 0);
	int64_t os[2];
	if (x.s.rank != 4 || ints(arg(o, 1), os, 2, 2) != 2) {
		fail(o, -ENOTSUP);
		return;
	}
	const int64_t h = x.s.dims[2], w = x.s.dims[3];
	if (os[0] == 1 && os[1] == 1) {
		write(o, node(o, max ? "GlobalMaxPool" : "GlobalAveragePool", {x}, {}, out_shape(o)));
		return;
	}
	if (h % os[0] == 0 && w % os[1] == 0) {
		int64_t kernel[2] = {h / os[0], w / os[1]};
		write(o, node(o, max ? "MaxPool" : "AveragePool", {x},
			      {onnxhook_attr_ints("kernel_shape", 2, kernel),
			       onnxhook_attr_ints("strides", 2, kernel)},
			      out_shape(o)));
		return;
	}
	std::vector<T> rows;
	const int64_t axes[2] = {2, 3};
	for (int64_t i = 0; i < os[0]; i++) {
		std::vector<T> cells;
		for (int64_t j = 0; j < os[1]; j++) {
			int64_t starts[2] = {i * h / os[0], j * w / os[1]};
			int64_t ends[2] = {((i + 1) * h + os[0] - 1) / os[0], ((j + 1) * w + os[1] - 1) / os[1]};
			int64_t steps[2] = {1, 1};
			T cell = onnxhook_op_slices(o.c, x, 2, axes, starts, ends, steps);
			S s = cell.s;
			s.dims[2] = s.dims[3] = 1;
			cells.push_back(node(o, max ? "ReduceMax" : "ReduceMean", {cell},
					     {onnxhook_attr_ints("axes", 2, axes), onnxhook_attr_int("keepdims", 1)}, s));
		}
		rows.push_back(onnxhook_op_concat(o.c, (int)cells.size(), cells.data(), 3));
	}
	write(o, onnxhook_op_concat(o.c, (int)rows.size(), rows.data(), 2));
}

void m_adaptive_avg(op &o) { map_adaptive(o, false); }
void m_adaptive_max(op &o) { map_adaptive(o, true); }

/* mean(x, dim, keepdim, dtype) / mean(x, dtype) */
void m_mean(op &o)
{
	T x = read_arg(o, 0);
	int64_t dims[ONNXHOOK_MAX_RANK];
	int n = arg(o, 1).isList() ? ints(arg(o, 1), dims, ONNXHOOK_MAX_RANK, 1) : 0;
	if (n < 0) {
		fail(o, -ENOTSUP);
		return;
	}
	if (n == 0) /* every axis */
		for (; n < x.s.rank; n++)
			dims[n] = n;
	for (int i = 0; i < n; i++)
		dims[i] = dims[i] < 0 ? dims[i] + x.s.rank : dims[i];
	bool keep = arg(o, 1).isList() && inum(arg(o, 2), 0);
	S s = x.s;
	for (int i = 0; i < n; i++)
		s.dims[dims[i]] = 1;
	T r = node(o, "ReduceMean", {x}, {onnxhook_attr_ints("axes", n, dims), onnxhook_attr_int("keepdims", 1)}, s);
	(void)keep; /* the result's shape (write) drops the axes when keepdim is false */
	write(o, r);
}

/* x·Wᵀ + b (b: ONNXHOOK_NONE for none) */
T linear(op &o, T x, T w, T b)
{
	const int64_t perm[2] = {1, 0};
	S s = x.s;
	s.dims[s.rank - 1] = w.s.dims[0];
	T y = node(o, "MatMul", {x, transpose(o, w, perm)}, {}, s);
	if (b.id != ONNXHOOK_NONE)
		y = onnxhook_op_binary(o.c, "Add", y, b);
	return y;
}

/* linear(x, weight, bias): x·Wᵀ + b */
void m_linear(op &o)
{
	T x = read_arg(o, 0), w = read_arg(o, 1, true), b = read_opt(o, 2);
	if (w.s.rank != 2) {
		fail(o, -ENOTSUP);
		return;
	}
	if (x.s.rank == 2) {
		std::vector<T> in{x, w};
		if (b.id != ONNXHOOK_NONE)
			in.push_back(b);
		onnxhook_attr tb = onnxhook_attr_int("transB", 1);
		write(o, onnxhook_op_node(o.c, "Gemm", (int)in.size(), in.data(), 1, &tb, out_shape(o)));
		return;
	}
	write(o, linear(o, x, w, b));
}

/* scaled dot-product attention of q, k, v [B, H, L, D]: softmax(q·kᵀ/√D)·v */
T attention(op &o, T q, T k, T v)
{
	const int64_t perm[4] = {0, 1, 3, 2};
	S ss = q.s;
	ss.dims[3] = k.s.dims[2];
	T kt = transpose(o, k, perm);
	T sc = node(o, "MatMul", {onnxhook_op_mulk(o.c, q, 1.0f / sqrtf((float)q.s.dims[3]), "scale"), kt}, {}, ss);
	T p = node(o, "Softmax", {sc}, {onnxhook_attr_int("axis", -1)}, ss);
	return node(o, "MatMul", {p, v}, {}, q.s);
}

/* _native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
 * proj_weight, proj_bias, mask, need_weights, average_attn_weights, mask_type), batch first:
 * the fast path nn.MultiheadAttention takes in inference. */
void m_native_mha(op &o)
{
	if (!arg(o, 9).isNone() || inum(arg(o, 10), 1)) {
		fail(o, -ENOTSUP); /* a mask, or the attention weights asked for */
		return;
	}
	const int64_t e = inum(arg(o, 3), 0), h = inum(arg(o, 4), 0);
	T in[3] = {read_arg(o, 0), read_arg(o, 1), read_arg(o, 2)};
	T w = read_arg(o, 5, true), b = read_opt(o, 6), pw = read_arg(o, 7, true), pb = read_opt(o, 8);
	if (!e || !h || e % h || in[0].s.rank != 3 || w.s.rank != 2 || w.s.dims[0] != 3 * e) {
		fail(o, -ENOTSUP);
		return;
	}
	T heads[3];
	for (int i = 0; i < 3; i++) {
		T wi = onnxhook_op_slice(o.c, w, 0, i * e, (i + 1) * e);
		T bi = b.id == ONNXHOOK_NONE ? b : onnxhook_op_slice(o.c, b, 0, i * e, (i + 1) * e);
		T y = linear(o, in[i], wi, bi);
		S s4 = onnxhook_shape4(y.s.dims[0], y.s.dims[1], h, e / h);
		const int64_t perm[4] = {0, 2, 1, 3};
		heads[i] = transpose(o, onnxhook_op_reshape(o.c, y, s4), perm);
	}
	T a = attention(o, heads[0], heads[1], heads[2]);
	const int64_t perm[4] = {0, 2, 1, 3};
	a = onnxhook_op_reshape(o.c, transpose(o, a, perm), in[0].s);
	write(o, linear(o, a, pw, pb), 0);
}

/* addmm(bias, a, b, beta, alpha) = beta·bias + alpha·a·b */
void m_addmm(op &o)
{
	T bias = read_arg(o, 0), a = read_arg(o, 1), b = read_arg(o, 2);
	write(o, node(o, "Gemm", {a, b, bias},
		      {onnxhook_attr_float("beta", (float)num(arg(o, 3), 1)),
		       onnxhook_attr_float("alpha", (float)num(arg(o, 4), 1))},
		      out_shape(o)));
}

void m_matmul(op &o)
{
	T a = read_arg(o, 0), b = read_arg(o, 1);
	write(o, node(o, "MatMul", {a, b}, {}, out_shape(o)));
}

/* baddbmm(self, b1, b2, beta, alpha) */
void m_baddbmm(op &o)
{
	T s = read_arg(o, 0), a = read_arg(o, 1), b = read_arg(o, 2);
	T p = node(o, "MatMul", {a, b}, {}, out_shape(o));
	float alpha = (float)num(arg(o, 4), 1), beta = (float)num(arg(o, 3), 1);
	if (alpha != 1)
		p = onnxhook_op_mulk(o.c, p, alpha, "alpha");
	if (beta != 0)
		p = onnxhook_op_binary(o.c, "Add", p, beta != 1 ? onnxhook_op_mulk(o.c, s, beta, "beta") : s);
	write(o, p);
}

/* constant_pad_nd(x, pad, value) / pad(x, pad, mode, value): pad lists (begin, end) pairs from the
 * last axis back. Positive amounts are ONNX Pad's (constant, reflect, edge); negative ones crop
 * (a Slice first). */
void map_pad(op &o, const char *mode, double value)
{
	T x = read_arg(o, 0);
	int64_t p[2 * ONNXHOOK_MAX_RANK];
	int n = ints(arg(o, 1), p, 2 * ONNXHOOK_MAX_RANK, 1);
	const int r = x.s.rank;
	if (n < 0 || n % 2 || n / 2 > r) {
		fail(o, -ENOTSUP);
		return;
	}
	int64_t pads[2 * ONNXHOOK_MAX_RANK] = {0};
	int64_t axes[ONNXHOOK_MAX_RANK], starts[ONNXHOOK_MAX_RANK], ends[ONNXHOOK_MAX_RANK],
		steps[ONNXHOOK_MAX_RANK];
	int crop = 0;
	bool any = false;
	for (int k = 0; k < n / 2; k++) {
		const int d = r - 1 - k;
		const int64_t b = p[2 * k], e = p[2 * k + 1];
		if (b < 0 || e < 0) {
			axes[crop] = d;
			starts[crop] = b < 0 ? -b : 0;
			ends[crop] = x.s.dims[d] + (e < 0 ? e : 0);
			steps[crop++] = 1;
		}
		pads[d] = b > 0 ? b : 0;
		pads[r + d] = e > 0 ? e : 0;
		any = any || b > 0 || e > 0;
	}
	if (crop)
		x = onnxhook_op_slices(o.c, x, crop, axes, starts, ends, steps);
	if (any) {
		S s = x.s;
		for (int d = 0; d < r; d++)
			s.dims[d] += pads[d] + pads[r + d];
		T in[3] = {x, onnxhook_op_ints(o.c, 2 * r, pads, "pads"),
			   onnxhook_op_scalar(o.c, (float)value, "value")};
		onnxhook_attr m = onnxhook_attr_string("mode", mode);
		x = onnxhook_op_node(o.c, "Pad", strcmp(mode, "constant") ? 2 : 3, in, 1, &m, s);
	}
	write(o, x);
}

void m_constant_pad_nd(op &o) { map_pad(o, "constant", num(arg(o, 2), 0)); }

void m_pad(op &o)
{
	const c10::IValue &m = arg(o, 2);
	std::string mode = m.isString() ? m.toStringRef() : "constant";
	if (mode == "constant")
		map_pad(o, "constant", num(arg(o, 3), 0));
	else if (mode == "reflect")
		map_pad(o, "reflect", 0);
	else if (mode == "replicate")
		map_pad(o, "edge", 0);
	else
		fail(o, -ENOTSUP); /* circular: ONNX's wrap is opset 19 */
}

/* reflection_pad{1,2}d / replication_pad{1,2}d(x, padding) (what F.pad calls in those modes
 * when it is the outermost op: TorchScript) */
void m_reflection_pad(op &o) { map_pad(o, "reflect", 0); }
void m_replication_pad(op &o) { map_pad(o, "edge", 0); }

/* roll(x, shifts, dims): per rolled axis, the last `shift` elements first (Slice + Concat); no
 * dims: the flattened tensor rolled. */
void m_roll(op &o)
{
	T x = read_arg(o, 0);
	int64_t sh[ONNXHOOK_MAX_RANK], dims[ONNXHOOK_MAX_RANK];
	int ns = ints(arg(o, 1), sh, ONNXHOOK_MAX_RANK, 1);
	int nd = arg(o, 2).isList() || arg(o, 2).isInt() ? ints(arg(o, 2), dims, ONNXHOOK_MAX_RANK, 1) : 0;
	const S shape = x.s;
	if (nd == 0 && ns == 1) {
		x = onnxhook_op_reshape(o.c, x, onnxhook_shape1(onnxhook_shape_numel(&shape, 1)));
		dims[0] = 0;
		nd = 1;
	}
	if (ns < 1 || nd != ns) {
		fail(o, -ENOTSUP);
		return;
	}
	for (int k = 0; k < nd; k++) {
		const int64_t d = dims[k] < 0 ? dims[k] + x.s.rank : dims[k];
		if (d < 0 || d >= x.s.rank) {
			fail(o, -ENOTSUP);
			return;
		}
		const int64_t size = x.s.dims[d];
		const int64_t s = size ? ((sh[k] % size) + size) % size : 0;
		if (!s)
			continue;
		T parts[2] = {onnxhook_op_slice(o.c, x, d, size - s, size), onnxhook_op_slice(o.c, x, d, 0, size - s)};
		x = onnxhook_op_concat(o.c, 2, parts, (int)d);
	}
	write(o, onnxhook_op_reshape(o.c, x, shape));
}

/* An int64 tensor as a value: a constant or a parameter (an initializer), else a read. */
T read_index(op &o, const at::Tensor &t)
{
	if (!t.defined() || !t.device().is_cpu() || t.scalar_type() != at::kLong || !t.has_storage() ||
	    !t.is_contiguous() || t.numel() == 0 || t.dim() > ONNXHOOK_MAX_RANK) {
		fail(o, -ENOTSUP);
		return T{ONNXHOOK_NONE, {}};
	}
	const S s = shape_of(t);
	const void *p = t.unsafeGetTensorImpl()->data();
	if (konst_or_param(t))
		return T{onnxhook_call_weight(o.c, p, ONNXHOOK_INT64, s.rank, s.dims, "index"), s};
	return T{onnxhook_call_read(o.c, p, ONNXHOOK_INT64, s.rank, s.dims), s};
}

/* index(x, indices): one int64 index tensor on axis d (the axes before it taken whole: None) is
 * Gather along d. Other forms (bool masks, several index tensors) are not mapped. */
void m_index(op &o)
{
	const c10::IValue &l = arg(o, 1);
	if (!l.isList()) {
		fail(o, -ENOTSUP);
		return;
	}
	int d = -1, k = 0;
	const at::Tensor *idx = nullptr;
	for (const auto &e : l.toListRef()) {
		if (e.isTensor() && e.toTensor().defined()) {
			if (idx) {
				fail(o, -ENOTSUP);
				return;
			}
			d = k;
			idx = &e.toTensor();
		} else if (!e.isNone() && !(e.isTensor() && !e.toTensor().defined())) {
			fail(o, -ENOTSUP);
			return;
		}
		k++;
	}
	if (!idx) {
		fail(o, -ENOTSUP);
		return;
	}
	T x = read_arg(o, 0, true), i = read_index(o, *idx);
	if (d >= x.s.rank) {
		fail(o, -ENOTSUP);
		return;
	}
	S s{};
	for (int a = 0; a < d; a++)
		s.dims[s.rank++] = x.s.dims[a];
	for (int a = 0; a < i.s.rank; a++)
		s.dims[s.rank++] = i.s.dims[a];
	for (int a = d + 1; a < x.s.rank; a++)
		s.dims[s.rank++] = x.s.dims[a];
	write(o, node(o, "Gather", {x, i}, {onnxhook_attr_int("axis", d)}, s));
}

/* clamp(x, min, max) / clamp_min(x, min) / clamp_max(x, max), scalar bounds: Clip. */
void map_clamp(op &o, int lo_arg, int hi_arg)
{
	T x = read_arg(o, 0);
	const c10::IValue lo = lo_arg >= 0 ? arg(o, (size_t)lo_arg) : c10::IValue(),
			  hi = hi_arg >= 0 ? arg(o, (size_t)hi_arg) : c10::IValue();
	if ((!lo.isNone() && !lo.isDouble() && !lo.isInt()) || (!hi.isNone() && !hi.isDouble() && !hi.isInt())) {
		fail(o, -ENOTSUP); /* tensor bounds */
		return;
	}
	write(o, onnxhook_op_clip(o.c, x, lo.isNone() ? -INFINITY : (float)num(lo, 0),
				  hi.isNone() ? INFINITY : (float)num(hi, 0)));
}

void m_clamp(op &o) { map_clamp(o, 1, 2); }
void m_clamp_min(op &o) { map_clamp(o, 1, -1); }
void m_clamp_max(op &o) { map_clamp(o, -1, 1); }

void m_exp(op &o) { map_unary(o, "Exp"); }
void m_log(op &o) { map_unary(o, "Log"); }
void m_neg(op &o) { map_unary(o, "Neg"); }

/* linalg_vector_norm(x, ord, dim, keepdim, dtype) / norm(x, p, dim, keepdim): ord 2 or 1 over
 * the axes given (all: none given), ReduceL2 / ReduceL1. */
void m_norm(op &o)
{
	T x = read_arg(o, 0);
	const double ord = num(arg(o, 1), 2);
	int64_t dims[ONNXHOOK_MAX_RANK];
	int n = arg(o, 2).isNone() ? 0 : ints(arg(o, 2), dims, ONNXHOOK_MAX_RANK, 1);
	if ((ord != 2 && ord != 1) || n < 0 || (arg(o, 1).isTensor())) {
		fail(o, -ENOTSUP);
		return;
	}
	if (n == 0)
		for (; n < x.s.rank; n++)
			dims[n] = n;
	S s = x.s;
	for (int i = 0; i < n; i++) {
		dims[i] = dims[i] < 0 ? dims[i] + x.s.rank : dims[i];
		if (dims[i] < 0 || dims[i] >= x.s.rank) {
			fail(o, -ENOTSUP);
			return;
		}
		s.dims[dims[i]] = 1;
	}
	write(o, node(o, ord == 2 ? "ReduceL2" : "ReduceL1", {x},
		      {onnxhook_attr_ints("axes", n, dims), onnxhook_attr_int("keepdims", 1)}, s));
}

std::vector<T> read_list(op &o, size_t i)
{
	std::vector<T> v;
	if (!arg(o, i).isList()) {
		fail(o, -ENOTSUP);
		return v;
	}
	for (const auto &e : arg(o, i).toListRef()) {
		if (!e.isTensor()) {
			fail(o, -ENOTSUP);
			return v;
		}
		v.push_back(read(o, e.toTensor()));
	}
	return v;
}

const char *intern(const char *name);

/* einsum(equation, tensors, path): ONNX Einsum, the equation without spaces and its subscripts
 * renamed to lower-case letters (PyTorch takes either case; ONNX's reference, lower case). */
void m_einsum(op &o)
{
	const c10::IValue &e = arg(o, 0);
	std::vector<T> v = read_list(o, 1);
	if (!e.isString() || v.empty()) {
		fail(o, -ENOTSUP);
		return;
	}
	char map[128] = {0}, next = 'a';
	std::string eq;
	for (char ch : e.toStringRef()) {
		if (ch == ' ')
			continue;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
			if (!map[(int)ch]) {
				if (next > 'z') {
					fail(o, -ENOTSUP); /* more than 26 subscripts */
					return;
				}
				map[(int)ch] = next++;
			}
			ch = map[(int)ch];
		}
		eq += ch;
	}
	onnxhook_attr a = onnxhook_attr_string("equation", intern(eq.c_str()));
	write(o, onnxhook_op_node(o.c, "Einsum", (int)v.size(), v.data(), 1, &a, out_shape(o)));
}

void m_cat(op &o)
{
	std::vector<T> v = read_list(o, 0);
	if (v.empty()) {
		fail(o, -ENOTSUP);
		return;
	}
	int64_t d = axis(arg(o, 1), v[0].s.rank, 0);
	write(o, onnxhook_op_concat(o.c, (int)v.size(), v.data(), (int)d));
}

void m_stack(op &o)
{
	std::vector<T> v = read_list(o, 0);
	if (v.empty()) {
		fail(o, -ENOTSUP);
		return;
	}
	int64_t d = axis(arg(o, 1), v[0].s.rank + 1, 0);
	for (auto &x : v) {
		S s = x.s;
		for (int i = s.rank; i > d; i--)
			s.dims[i] = s.dims[i - 1];
		s.dims[d] = 1;
		s.rank++;
		x = onnxhook_op_reshape(o.c, x, s);
	}
	write(o, onnxhook_op_concat(o.c, (int)v.size(), v.data(), (int)d));
}

/* softmax(x, dim, dtype) / _softmax(x, dim, half_to_float); log_softmax alike */
void map_softmax(op &o, const char *type)
{
	T x = read_arg(o, 0);
	write(o, node(o, type, {x}, {onnxhook_attr_int("axis", axis(arg(o, 1), x.s.rank, -1))}, x.s));
}

void m_softmax(op &o) { map_softmax(o, "Softmax"); }
void m_log_softmax(op &o) { map_softmax(o, "LogSoftmax"); }

/* View ops: the result aliases the input (nothing to record: reads find the value by memory), or
 * it copied (reshape of a strided tensor, contiguous): the input's elements in its logical order,
 * reshaped. */
void m_view(op &o)
{
	const c10::IValue &a = arg(o, 0);
	if (!o.out) {
		if (a.isTensor() && is_float_cpu(a.toTensor()))
			read(o, a.toTensor()); /* the check */
		return;
	}
	if (!a.isTensor() || !is_float_cpu(a.toTensor())) {
		fail(o, -ENOTSUP);
		return;
	}
	const at::Tensor &x = a.toTensor();
	for (size_t k = 0; k < o.out->size(); k++) {
		const at::Tensor *t = out_tensor(o, k);
		if (!t || !t->defined())
			continue;
		if (t->has_storage() && x.has_storage() && t->storage().is_alias_of(x.storage()))
			continue; /* a view: nothing computed */
		T v = read(o, x);
		write(o, onnxhook_op_reshape(o.c, v, shape_of(*t)), k);
	}
}

/* clone / copy of a tensor: its value, written at the copy. */
void m_clone(op &o)
{
	T x = read_arg(o, 0);
	write(o, onnxhook_op_reshape(o.c, x, out_shape(o)));
}

/* An op without a mapping: a node named after it in the "org.pytorch.aten" domain, per tensor
 * result, on every tensor argument. */
void map_unknown(op &o)
{
	std::vector<T> in;
	for (size_t i = 0; i < o.n_in; i++) {
		const c10::IValue &v = o.in[i];
		if (v.isTensor() && v.toTensor().defined())
			in.push_back(read(o, v.toTensor()));
		else if (v.isList())
			for (const auto &e : v.toListRef())
				if (e.isTensor() && e.toTensor().defined())
					in.push_back(read(o, e.toTensor()));
	}
	if (!o.out)
		return;
	const char *type = strncmp(o.name, "aten::", 6) ? o.name : o.name + 6;
	for (size_t k = 0; k < o.out->size(); k++) {
		const at::Tensor *t = out_tensor(o, k);
		if (!t || !t->defined())
			continue;
		write(o, onnxhook_op_node_domain(o.c, "org.pytorch.aten", type, (int)in.size(), in.data(), 0,
						 nullptr, shape_of(*t)),
		      k);
	}
}

struct mapping {
	const char *name;
	mapper fn;
};

/* What the program does around its model (tensor factories, initialisation, bookkeeping): never
 * recorded. */
const char *const ignored[] = {
	"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::zeros", "aten::zeros_like",
	"aten::ones", "aten::ones_like", "aten::full", "aten::full_like", "aten::rand", "aten::randn",
	"aten::randn_like", "aten::rand_like", "aten::randint", "aten::normal_", "aten::uniform_",
	"aten::fill_", "aten::zero_", "aten::random_", "aten::kaiming_uniform_", "aten::arange",
	"aten::set_", "aten::resize_", "aten::copy_", "aten::item", "aten::_local_scalar_dense",
	"aten::is_nonzero", "aten::equal", "aten::allclose", "aten::isclose", "aten::requires_grad_",
	"aten::size", "aten::stride", "aten::dim", "aten::numel", "aten::lift", "aten::lift_fresh",
	"aten::_to_copy", "aten::to", "aten::detach_", "aten::manual_seed", "aten::eq", "aten::ne",
	"aten::abs", "aten::max", "aten::min", "aten::sum", "aten::sqrt", "aten::all", "aten::any",
	"aten::linspace", "aten::tensor", "aten::scalar_tensor", "aten::format",
	"aten::__is__", "aten::__isnot__", "aten::len", "aten::append", "aten::Int", "aten::Float",
	"aten::list", "aten::__getitem__", "aten::warn",
};

const mapping mappings[] = {
	{"aten::conv2d", m_conv2d},
	{"aten::conv1d", m_conv2d},
	{"aten::convolution", m_convolution},
	{"aten::_convolution", m_convolution},
	{"aten::batch_norm", m_batch_norm},
	{"aten::layer_norm", m_layer_norm},
	{"aten::relu", m_relu},
	{"aten::relu_", m_relu},
	{"aten::relu6", m_relu6},
	{"aten::hardtanh", m_hardtanh},
	{"aten::hardtanh_", m_hardtanh},
	{"aten::hardswish", m_hardswish},
	{"aten::hardswish_", m_hardswish},
	{"aten::hardsigmoid", m_hardsigmoid},
	{"aten::hardsigmoid_", m_hardsigmoid},
	{"aten::silu", m_silu},
	{"aten::silu_", m_silu},
	{"aten::gelu", m_gelu},
	{"aten::sigmoid", m_sigmoid},
	{"aten::sigmoid_", m_sigmoid},
	{"aten::tanh", m_tanh},
	{"aten::tanh_", m_tanh},
	{"aten::add", m_add},
	{"aten::add_", m_add},
	{"aten::sub", m_sub},
	{"aten::sub_", m_sub},
	{"aten::rsub", m_rsub},
	{"aten::mul", m_mul},
	{"aten::mul_", m_mul},
	{"aten::div", m_div},
	{"aten::div_", m_div},
	{"aten::max_pool2d", m_max_pool2d},
	{"aten::avg_pool2d", m_avg_pool2d},
	{"aten::adaptive_avg_pool2d", m_adaptive_avg},
	{"aten::adaptive_max_pool2d", m_adaptive_max},
	{"aten::mean", m_mean},
	{"aten::linear", m_linear},
	{"aten::_native_multi_head_attention", m_native_mha},
	{"aten::addmm", m_addmm},
	{"aten::matmul", m_matmul},
	{"aten::mm", m_matmul},
	{"aten::bmm", m_matmul},
	{"aten::baddbmm", m_baddbmm},
	{"aten::cat", m_cat},
	{"aten::concat", m_cat},
	{"aten::stack", m_stack},
	{"aten::softmax", m_softmax},
	{"aten::_softmax", m_softmax},
	{"aten::log_softmax", m_log_softmax},
	{"aten::clone", m_clone},
	{"aten::pad", m_pad},
	{"aten::constant_pad_nd", m_constant_pad_nd},
	{"aten::reflection_pad1d", m_reflection_pad},
	{"aten::reflection_pad2d", m_reflection_pad},
	{"aten::replication_pad1d", m_replication_pad},
	{"aten::replication_pad2d", m_replication_pad},
	{"aten::roll", m_roll},
	{"aten::einsum", m_einsum},
	{"aten::swapaxes", m_view},
	{"aten::swapdims", m_view},
	{"aten::movedim", m_view},
	{"aten::moveaxis", m_view},
	{"aten::index", m_index},
	{"aten::clamp", m_clamp},
	{"aten::clamp_", m_clamp},
	{"aten::clamp_min", m_clamp_min},
	{"aten::clamp_min_", m_clamp_min},
	{"aten::clamp_max", m_clamp_max},
	{"aten::clamp_max_", m_clamp_max},
	{"aten::exp", m_exp},
	{"aten::exp_", m_exp},
	{"aten::log", m_log},
	{"aten::neg", m_neg},
	{"aten::linalg_vector_norm", m_norm},
	{"aten::norm", m_norm},
	{"aten::view", m_view},
	{"aten::_unsafe_view", m_view},
	{"aten::reshape", m_view},
	{"aten::_reshape_alias", m_view},
	{"aten::flatten", m_view},
	{"aten::unflatten", m_view},
	{"aten::contiguous", m_view},
	{"aten::transpose", m_view},
	{"aten::permute", m_view},
	{"aten::t", m_view},
	{"aten::unsqueeze", m_view},
	{"aten::squeeze", m_view},
	{"aten::expand", m_view},
	{"aten::expand_as", m_view},
	{"aten::view_as", m_view},
	{"aten::reshape_as", m_view},
	{"aten::select", m_view},
	{"aten::slice", m_view},
	{"aten::narrow", m_view},
	{"aten::split", m_view},
	{"aten::split_with_sizes", m_view},
	{"aten::chunk", m_view},
	{"aten::unbind", m_view},
	{"aten::unsafe_split", m_view},
	{"aten::unsafe_chunk", m_view},
	{"aten::as_strided", m_view},
	{"aten::alias", m_view},
	{"aten::detach", m_view},
	{"aten::dropout", m_view},
	{"aten::dropout_", m_view},
	{"aten::feature_dropout", m_view},
	{"aten::alpha_dropout", m_view},
	{"aten::feature_alpha_dropout", m_view},
	{"aten::numpy_T", m_view},
	{"aten::resolve_conj", m_view},
	{"aten::resolve_neg", m_view},
};

/* name's mapping (*stable: the table's copy of the name), or NULL */
mapper find_mapping(const char *name, bool *ignore, const char **stable)
{
	*ignore = false;
	for (const auto &m : mappings)
		if (!strcmp(m.name, name)) {
			*stable = m.name;
			return m.fn;
		}
	for (const char *i : ignored)
		if (!strcmp(i, name)) {
			*ignore = true;
			return nullptr;
		}
	return nullptr;
}

/* ---- the observer --------------------------------------------------------------------------- */

thread_local int depth;      /* ops entered on this thread (nested in the outermost) */
thread_local bool outermost; /* the outermost op is being recorded (onnxhook_enter) */

/* Appends "unmapped aten::x" to the model's onnxhook.warnings (recorder lock held). */
void note_unmapped(struct onnxhook_call *c, const char *name)
{
	char *w = c->g->warnings;
	size_t n = strlen(w), len = sizeof(c->g->warnings);
	if (strstr(w, name))
		return;
	snprintf(w + n, len - n, "%sno ONNX mapping for %s (a node in domain org.pytorch.aten)",
		 n ? "; " : "", name);
	onnxhook_note_unmapped(name);
}

/* The op's arguments, kept from the start callback to the end (the dispatcher releases the boxed
 * arguments once the start callbacks ran). */
struct args : at::ObserverContext {
	const char *name;
	mapper m;
	bool ignore;   /* the program's own (never recorded) */
	int konst;     /* its results are constants (konst_result): not recorded */
	std::vector<c10::IValue> in;
};

/* Constants by how they are made (the section on constants says why). */
const char *const table_factories[] = {
	"aten::arange", "aten::linspace", "aten::logspace", "aten::eye", "aten::new_zeros",
	"aten::new_ones", "aten::new_full", "aten::zeros_like", "aten::ones_like", "aten::full_like",
	"aten::scalar_tensor",
};
/* Never a constant: a model input may be made so, or the values are random or undefined. */
const char *const weak_factories[] = {"aten::zeros", "aten::ones", "aten::full"};
const char *const never_konst[] = {
	"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::new_empty",
	"aten::new_empty_strided", "aten::rand",
	"aten::randn", "aten::randint", "aten::randperm", "aten::rand_like", "aten::randn_like",
	"aten::randint_like", "aten::normal", "aten::normal_", "aten::uniform_", "aten::random_",
	"aten::bernoulli", "aten::bernoulli_", "aten::exponential_", "aten::geometric_",
	"aten::cauchy_", "aten::log_normal_", "aten::multinomial", "aten::poisson", "aten::rrelu",
	"aten::rrelu_", "aten::rrelu_with_noise", "aten::set_", "aten::resize_", "aten::resize_as_",
	"aten::tensor", "aten::lift", "aten::from_file", "aten::dropout",
	"aten::dropout_", "aten::feature_dropout", "aten::alpha_dropout", "aten::feature_alpha_dropout",
	"aten::native_dropout",
};
/* In place, overwriting their target whatever it held. */
const char *const overwrites[] = {"aten::fill_", "aten::zero_", "aten::copy_"};

bool listed(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}
#define LISTED(name, list) listed(name, list, sizeof(list) / sizeof(list[0]))

bool in_place(const char *name)
{
	size_t n = strlen(name);
	return n > 7 && name[n - 1] == '_' && name[n - 2] != '_';
}

/* The level of constant of the op's results (decided before it runs: in place, it changes what
 * it reads). */
int konst_result(const args &a)
{
	if (LISTED(a.name, weak_factories))
		return WEAK;
	if (LISTED(a.name, never_konst))
		return NOT_KONST;
	if (LISTED(a.name, table_factories))
		return KONST;
	/* a Python number made a tensor (x[i] = 3 lifts 3) */
	if (!strcmp(a.name, "aten::lift_fresh"))
		return !a.in.empty() && a.in[0].isTensor() && a.in[0].toTensor().defined() &&
				       a.in[0].toTensor().dim() == 0
			       ? KONST
			       : NOT_KONST;
	const bool overwrite = LISTED(a.name, overwrites);
	int level = KONST, target = KONST;
	bool any = false, param = false;
	auto take = [&](const at::Tensor &t, bool is_target) {
		if (!t.defined())
			return;
		int l = KONST;
		if (is_param(t))
			param = true;
		else if (!t.unsafeGetTensorImpl()->is_wrapped_number())
			l = konst_level(t);
		if (is_target)
			target = l;
		else
			level = std::min(level, l);
		any = any || !is_target;
	};
	for (size_t i = 0; i < a.in.size(); i++) {
		const c10::IValue &v = a.in[i];
		if (v.isTensor())
			take(v.toTensor(), i == 0 && overwrite);
		else if (v.isList())
			for (const auto &e : v.toListRef())
				if (e.isTensor())
					take(e.toTensor(), false);
	}
	if (overwrite) /* the target keeps its level; a KONST written into a WEAK one makes it KONST */
		return target == NOT_KONST || level == NOT_KONST ? NOT_KONST : level == KONST ? KONST : target;
	if (!any || level == NOT_KONST || (level == WEAK && param))
		return NOT_KONST;
	return level;
}

/* After the op: the level of its results; an in-place target that is no longer a constant. */
void note_konst(const args &a, const std::vector<c10::IValue> &outputs)
{
	const bool inplace = in_place(a.name) && !a.in.empty() && a.in[0].isTensor();
	if (inplace)
		set_konst(a.in[0].toTensor(), a.konst);
	if (a.konst)
		for (const auto &v : outputs)
			if (v.isTensor() && v.toTensor().defined() && (inplace || konst_level(v.toTensor()) < a.konst))
				set_konst(v.toTensor(), a.konst);
}

/* An op name that lives as long as the process (node labels and op types point at it; the
 * name RecordFunction gives may live only as long as the op). */
const char *intern(const char *name)
{
	static std::mutex lock;
	static std::unordered_set<std::string> *names = new std::unordered_set<std::string>;
	std::lock_guard<std::mutex> g(lock);
	return names->insert(name).first->c_str();
}

/* What names an op across passes: its name, its parameters' memory, its arguments' shapes and
 * scalars (not where its data lives: PyTorch allocates anew at every forward). */
uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

uint64_t op_sig(const args &a)
{
	uint64_t h = mix(0, (uintptr_t)a.name);
	for (const auto &v : a.in) {
		if (v.isTensor() && v.toTensor().defined()) {
			const at::Tensor &t = v.toTensor();
			if (t.requires_grad() && t.has_storage())
				h = mix(h, (uintptr_t)t.unsafeGetTensorImpl()->data());
			for (int64_t d : t.sizes())
				h = mix(h, (uint64_t)d);
		} else if (v.isInt()) {
			h = mix(h, (uint64_t)v.toInt());
		}
	}
	return h;
}

/* Passes: the first op recorded names the pass; that op again, reading nothing this pass wrote,
 * starts the next (the core's own rule compares addresses, which PyTorch's allocator changes
 * at every forward). Recorder lock held. */
uint64_t first_sig;
bool have_first;

void mark_pass(const args &a, struct onnxhook_call *c)
{
	uint64_t sig = op_sig(a);
	if (!have_first) {
		first_sig = sig;
		have_first = true;
	} else if (sig == first_sig && !c->read_written && c->g->pass_calls > 0) {
		onnxhook_graph_mark_boundary(c->g);
	}
}

/* Records the op (check: before it runs, its reads only; outputs: after it). */
void record(const args &a, const std::vector<c10::IValue> *outputs)
{
	const char *name = a.name;
	mapper m = a.m;
	const bool check = !outputs;
	struct onnxhook_call c;
	if (!onnxhook_record_begin_unnamed(&c, name))
		return;
	op o{&c, name, a.in.data(), a.in.size(), outputs, false, nullptr};
	try {
		(m ? m : map_unknown)(o);
	} catch (const std::exception &e) {
		static thread_local char what[160];
		snprintf(what, sizeof(what), "%s", e.what());
		o.why = what;
		fail(o, -ENOTSUP);
	} catch (...) {
		fail(o, -ENOTSUP);
	}
	if (m && c.err == -ENOTSUP && !check)
		onnxhook_debug("torch: %s not mapped (%s)", name, o.why ? o.why : "?");
	if (!o.reads_graph) {
		/* Reads nothing of the graph: the program's own ops around the model (an unmapped
		 * one), or a mapped op that could not be mapped on memory of its own. */
		if (!m || c.err == -ENOTSUP)
			onnxhook_call_abandon(&c);
	} else if (m && c.err == -ENOTSUP && !check) {
		/* A mapped op with arguments the mapping does not take: the unknown op's node. */
		onnxhook_call_abandon(&c);
		op u{&c, name, o.in, o.n_in, o.out, false, nullptr};
		try {
			map_unknown(u);
		} catch (...) {
			fail(u, -ENOTSUP);
		}
		if (!c.err)
			note_unmapped(&c, name);
	} else if (!m && !check && !c.err) {
		note_unmapped(&c, name);
	}
	if (c.err == -ENOTSUP) /* never a reason to stop recording */
		onnxhook_call_abandon(&c);
	if (!check && !c.err && !c.foreign && c.g->n_nodes > c.mark_nodes)
		mark_pass(a, &c);
	onnxhook_record_end(&c);
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction &fn)
{
	if (depth++ != 0 || fn.scope() != at::RecordScope::FUNCTION || !onnxhook_enter())
		return nullptr;
	outermost = true;
	std::unique_ptr<args> a;
	try {
		const char *name = api.name(&fn);
		bool ignore = false;
		const char *stable = nullptr;
		mapper m = name ? find_mapping(name, &ignore, &stable) : nullptr;
		auto all = fn.inputs();
		size_t n = api.num_inputs(&fn);
		if (!name || n > all.size())
			return nullptr;
		a.reset(new args);
		a->name = stable ? stable : intern(name);
		a->m = m;
		a->ignore = ignore;
		/* In TorchScript inputs() is the interpreter's whole stack: the op's are its tail. */
		a->in.assign(all.end() - n, all.end());
		a->konst = konst_result(*a);
		/* A constant a recorded op changes in place: read after the op, its bytes are no
		 * longer the constant; it is what any memory no op wrote is (a graph input). */
		if (!a->ignore && !a->konst && in_place(a->name) && !a->in.empty() && a->in[0].isTensor())
			set_konst(a->in[0].toTensor(), NOT_KONST);
	} catch (...) {
		return nullptr;
	}
	if (!a->ignore && !a->konst) {
		onnxhook_checking(true);
		record(*a, nullptr);
		onnxhook_checking(false);
	}
	return a;
}

void on_end(const at::RecordFunction &fn, at::ObserverContext *ctx)
{
	if (--depth == 0 && !outermost && !onnxhook_is_recording() &&
	    !__atomic_exchange_n(&removed, 1, __ATOMIC_ACQ_REL)) {
		/* Capture is over (or recording never started): from the next op on the dispatcher
		 * runs no observer at all (the op running now keeps its copy of the callbacks). */
		api.remove(handle);
		onnxhook_debug("torch: observer removed");
		return;
	}
	if (depth != 0 || !outermost)
		return;
	if (ctx) {
		const args &a = *static_cast<args *>(ctx);
		if (!a.ignore && !a.konst)
			do
				record(a, &fn.outputs());
			while (onnxhook_record_again());
		try {
			note_konst(a, fn.outputs());
		} catch (...) {
		}
	}
	outermost = false;
	onnxhook_leave();
}

/* The loaded libtorch_cpu, by its soname's prefix. */
int find_torch(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *base = strrchr(info->dlpi_name, '/');
	base = base ? base + 1 : info->dlpi_name;
	if (strncmp(base, "libtorch_cpu.so", 15))
		return 0;
	snprintf(static_cast<char *>(data), 4096, "%s", info->dlpi_name);
	return 1;
}

} // namespace

/* IValue::toTensor's error path is in libtorch_cpu; every call here checks isTensor() first. */
void c10::IValue::reportToTensorTypeError() const
{
	throw std::runtime_error("onnxhook: not a tensor");
}

extern "C" {

void onnxhook_torch_loaded(void);

/* Once libtorch_cpu is in the process: the observer is registered (inputs and outputs boxed, the
 * scopes of ops only). Called by the preload right after it loaded this module, and again
 * whenever a library may have arrived (hosts.c). */
void onnxhook_torch_loaded(void)
{
	static int state; /* 0 not yet, 1 attaching or attached */
	char path[4096] = "";

	if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) || !dl_iterate_phdr(find_torch, path))
		return;
	int expected = 0;
	if (!__atomic_compare_exchange_n(&state, &expected, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	/* RTLD_NOLOAD: Python loads it RTLD_LOCAL, out of RTLD_DEFAULT's reach. */
	void *h = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return;
	api.add_global = reinterpret_cast<decltype(api.add_global)>(
		dlsym(h, "_ZN2at17addGlobalCallbackENS_22RecordFunctionCallbackE"));
	api.name = reinterpret_cast<decltype(api.name)>(dlsym(h, "_ZNK2at14RecordFunction4nameEv"));
	api.remove = reinterpret_cast<decltype(api.remove)>(dlsym(h, "_ZN2at14removeCallbackEm"));
	api.num_inputs = reinterpret_cast<decltype(api.num_inputs)>(
		dlsym(h, "_ZNK2at14RecordFunction10num_inputsEv"));
	if (!api.add_global || !api.remove || !api.name || !api.num_inputs) {
		onnxhook_error("%s lacks the RecordFunction interface of PyTorch 1.13; the torch host is off",
			       path);
		return;
	}
	try {
		handle = api.add_global(at::RecordFunctionCallback(on_start, on_end)
				       .needsInputs(true)
				       .needsOutputs(true)
				       .scopes({at::RecordScope::FUNCTION}));
		onnxhook_debug("torch: observing %s", path);
	} catch (...) {
		onnxhook_error("cannot register an observer with %s; the torch host is off", path);
	}
}

}
