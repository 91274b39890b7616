/* SPDX-License-Identifier: MIT */
/* darknet host, layer mappings: recurrent layers: the steps unrolled, the state a graph input
 * and output (rnn, gru, lstm, crnn). See docs/darknet.md. */
#include <stdlib.h>
#include <stdbool.h>

#include "layers.h"

/* The input of every step: net.input holds steps × batch × inputs. */
static struct onnxhook_tensor step_input(struct onnxhook_call *c, struct onnxhook_tensor all,
					 int64_t i, struct onnxhook_shape one)
{
	struct onnxhook_tensor x = onnxhook_op_slice(c, all, 0, i, i + 1);

	return onnxhook_op_reshape(c, x, one);
}

static bool sub_ok(const layer *s, int64_t batch, int64_t inputs, int64_t outputs)
{
	return s && s->batch == batch && s->inputs == inputs && s->outputs == outputs;
}

/* state = [state +] in(x) + self(state); output = out(state) (connected layers). */
void record_forward_rnn_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs, T = l->steps;
	const layer *in_l = l->input_layer, *self_l = l->self_layer, *out_l = l->output_layer;

	if (B <= 0 || I <= 0 || O <= 0 || T <= 0 || !l->state || !sub_ok(in_l, B, I, O) ||
	    !sub_ok(self_l, B, O, O) || !sub_ok(out_l, B, O, O))
		FAIL(c, l, "inconsistent rnn layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	struct onnxhook_tensor all = onnxhook_op_read(c, net->input, onnxhook_shape3(T, B, I));
	struct onnxhook_tensor state = onnxhook_op_read(c, l->state, onnxhook_shape2(B, O));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor a =
			dn_connected(c, in_l, step_input(c, all, i, onnxhook_shape2(B, I)));
		struct onnxhook_tensor s = dn_connected(c, self_l, state);
		state = onnxhook_op_binary(c, "Add",
					   l->shortcut ? onnxhook_op_binary(c, "Add", state, a) : a,
					   s);
		outs[i] = dn_connected(c, out_l, state);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, state, l->state);
	}
	free(outs);
}

/* z = σ(uz·x + wz·h), r = σ(ur·x + wr·h), h~ = act(uh·x + wh·(r·h)), h = z·h + (1 - z)·h~. */
void record_forward_gru_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs, T = l->steps;

	if (B <= 0 || I <= 0 || O <= 0 || T <= 0 || !l->state || !sub_ok(l->uz, B, I, O) ||
	    !sub_ok(l->ur, B, I, O) || !sub_ok(l->uh, B, I, O) || !sub_ok(l->wz, B, O, O) ||
	    !sub_ok(l->wr, B, O, O) || !sub_ok(l->wh, B, O, O))
		FAIL(c, l, "inconsistent gru layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	struct onnxhook_tensor all = onnxhook_op_read(c, net->input, onnxhook_shape3(T, B, I));
	struct onnxhook_tensor h = onnxhook_op_read(c, l->state, onnxhook_shape2(B, O));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor x = step_input(c, all, i, onnxhook_shape2(B, I));
		struct onnxhook_tensor z =
			onnxhook_op_unary(c, "Sigmoid",
					  onnxhook_op_binary(c, "Add", dn_connected(c, l->uz, x),
							     dn_connected(c, l->wz, h)));
		struct onnxhook_tensor r =
			onnxhook_op_unary(c, "Sigmoid",
					  onnxhook_op_binary(c, "Add", dn_connected(c, l->ur, x),
							     dn_connected(c, l->wr, h)));
		struct onnxhook_tensor hh =
			onnxhook_op_binary(c, "Add", dn_connected(c, l->uh, x),
					   dn_connected(c, l->wh, onnxhook_op_binary(c, "Mul", h, r)));
		hh = dn_activate(c, hh, l->tanh ? TANH : LOGISTIC);
		struct onnxhook_tensor keep = onnxhook_op_binary(c, "Mul", z, h);
		struct onnxhook_tensor upd =
			onnxhook_op_binary(c, "Mul",
					   onnxhook_op_binary(c, "Sub",
							      onnxhook_op_scalar(c, 1.f, "one"), z),
					   hh);
		h = outs[i] = onnxhook_op_binary(c, "Add", keep, upd);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, h, l->state);
	}
	free(outs);
}

/* f, i, o = σ(w·h + u·x), g = tanh(w·h + u·x); c = c·f + i·g; h = tanh(c)·o. */
void record_forward_lstm_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, I = l->inputs, O = l->outputs, T = l->steps;
	const layer *w[4] = {l->wf, l->wi, l->wg, l->wo}, *u[4] = {l->uf, l->ui, l->ug, l->uo};

	for (int k = 0; k < 4; k++)
		if (!sub_ok(w[k], B, O, O) || !sub_ok(u[k], B, I, O))
			FAIL(c, l, "inconsistent lstm layer");
	if (B <= 0 || I <= 0 || O <= 0 || T <= 0 || !l->h_cpu || !l->c_cpu)
		FAIL(c, l, "inconsistent lstm layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	struct onnxhook_tensor all = onnxhook_op_read(c, net->input, onnxhook_shape3(T, B, I));
	struct onnxhook_tensor h = onnxhook_op_read(c, l->h_cpu, onnxhook_shape2(B, O)),
			       cell = onnxhook_op_read(c, l->c_cpu, onnxhook_shape2(B, O));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor x = step_input(c, all, i, onnxhook_shape2(B, I)), g[4];
		for (int k = 0; k < 4; k++) {
			g[k] = onnxhook_op_binary(c, "Add", dn_connected(c, w[k], h),
						  dn_connected(c, u[k], x));
			g[k] = dn_activate(c, g[k], k == 2 ? TANH : LOGISTIC);
		}
		cell = onnxhook_op_binary(c, "Add", onnxhook_op_binary(c, "Mul", cell, g[0]),
					  onnxhook_op_binary(c, "Mul", g[1], g[2]));
		h = outs[i] = onnxhook_op_binary(c, "Mul", dn_activate(c, cell, TANH), g[3]);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, h, l->h_cpu);
		onnxhook_op_write(c, cell, l->c_cpu);
	}
	free(outs);
}

/* The rnn with 3×3 convolutions. */
void record_forward_crnn_layer(struct onnxhook_call *c, const layer *l, const network *net)
{
	const int64_t B = l->batch, T = l->steps;
	const layer *in_l = l->input_layer, *self_l = l->self_layer, *out_l = l->output_layer;

	if (B <= 0 || T <= 0 || !l->state || !in_l || !self_l || !out_l || in_l->batch != B ||
	    self_l->batch != B || out_l->batch != B || in_l->outputs != l->hidden ||
	    self_l->inputs != l->hidden || self_l->outputs != l->hidden ||
	    out_l->inputs != l->hidden || out_l->outputs != l->outputs || in_l->inputs != l->inputs)
		FAIL(c, l, "inconsistent crnn layer");
	struct onnxhook_tensor *outs = calloc((size_t)T, sizeof(*outs));
	if (!outs) {
		c->err = c->err ? c->err : -ENOMEM;
		return;
	}
	const struct onnxhook_shape xs = onnxhook_shape4(B, in_l->c, in_l->h, in_l->w);
	struct onnxhook_tensor all =
		onnxhook_op_read(c, net->input,
				 (struct onnxhook_shape){5, {T, B, in_l->c, in_l->h, in_l->w}});
	struct onnxhook_tensor state =
		onnxhook_op_read(c, l->state, onnxhook_shape4(B, self_l->c, self_l->h, self_l->w));
	for (int64_t i = 0; i < T && !c->err; i++) {
		struct onnxhook_tensor a = dn_conv(c, in_l, step_input(c, all, i, xs));
		struct onnxhook_tensor s = dn_conv(c, self_l, state);
		state = onnxhook_op_binary(c, "Add",
					   l->shortcut ? onnxhook_op_binary(c, "Add", state, a) : a,
					   s);
		outs[i] = dn_conv(c, out_l, state);
	}
	if (!c->err) {
		onnxhook_op_write(c, onnxhook_op_concat(c, (int)T, outs, 0), l->output);
		onnxhook_op_write(c, state, l->state);
	}
	free(outs);
}
