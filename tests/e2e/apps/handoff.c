/* SPDX-License-Identifier: MIT */
/* A buffer handed across threads: the main thread runs the first conv, a worker thread the
 * relu (in place) and the second conv on that buffer, as pipelined engines do. */
#include <pthread.h>
#include <stdlib.h>

#include "e2e-app.h"

static const tnn_dims in_dims = {1, 3, 8, 8};
static struct e2e_conv_layer c1, c2;
static tnn_dims mid_dims, out_dims;
static float *mid, *out;

static void *second_half(void *arg)
{
	(void)arg;
	E2E_TNN(tnn_relu(&mid_dims, mid, mid));
	E2E_TNN(tnn_conv2d(&c2.p, &mid_dims, mid, c2.weight, c2.bias, &out_dims, out));
	return NULL;
}

int main(int argc, char **argv)
{
	struct e2e_args args;
	struct e2e_rng r;

	e2e_parse_args(argc, argv, &args);
	e2e_rng_seed(&r, 21);
	e2e_conv_init(&c1, &r, e2e_conv(3, 1, 1, 1, 1), 3, 6, 1);
	e2e_conv_init(&c2, &r, e2e_conv(3, 2, 1, 1, 1), 6, 4, 1);
	mid_dims = e2e_conv_out(&c1, &in_dims);
	out_dims = e2e_conv_out(&c2, &mid_dims);
	const size_t in_n = e2e_count(&in_dims), out_n = e2e_count(&out_dims);
	float *staged = e2e_load_input(&args, 1, &in_n);
	float *x = e2e_alloc(in_n);
	mid = e2e_alloc(e2e_count(&mid_dims));
	out = e2e_alloc(out_n);

	for (int run = 0; run < args.runs; run++) {
		pthread_t t;
		e2e_fill(staged, 1, &x, &in_n);
		E2E_TNN(tnn_conv2d(&c1.p, &in_dims, x, c1.weight, c1.bias, &mid_dims, mid));
		if (pthread_create(&t, NULL, second_half, NULL) != 0 || pthread_join(t, NULL) != 0)
			return 1;
	}
	e2e_write_output(&args, 1, (const float *const[]){out}, &out_n);
	e2e_summary("handoff", 0, out, out_n);
	free(staged); /* clean exit: the valgrind test holds leaks against the hook */
	free(x);
	free(mid);
	free(out);
	free(c1.weight);
	free(c1.bias);
	free(c2.weight);
	free(c2.bias);
	return 0;
}
