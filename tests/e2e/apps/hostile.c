/* SPDX-License-Identifier: MIT */
/* Calls the host library rejects, between valid ones: nothing of them is recorded, the statuses
 * come back unchanged. With E2E_TAMPER=1 the app changes a layer's output with plain stores
 * between two hooked calls (what an unhooked function does): the hook must say so. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e-app.h"

static int failures;

static void expect_einval(const char *what, tnn_status st)
{
	printf("%s: %d\n", what, (int)st);
	if (st != TNN_EINVAL)
		failures++;
}

int main(int argc, char **argv)
{
	struct e2e_args args;
	struct e2e_rng r;
	const tnn_dims in_dims = {1, 3, 6, 6};
	struct e2e_conv_layer conv;
	const char *tamper = getenv("E2E_TAMPER");

	e2e_parse_args(argc, argv, &args);
	e2e_rng_seed(&r, 3);
	e2e_conv_init(&conv, &r, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
	const tnn_dims out_dims = e2e_conv_out(&conv, &in_dims);
	const size_t in_n = e2e_count(&in_dims), out_n = e2e_count(&out_dims);
	float *staged = e2e_load_input(&args, 1, &in_n);
	float *x = e2e_alloc(in_n), *y = e2e_alloc(out_n), *z = e2e_alloc(out_n);

	for (int run = 0; run < args.runs; run++) {
		e2e_fill(staged, 1, &x, &in_n);
		E2E_TNN(tnn_conv2d(&conv.p, &in_dims, x, conv.weight, conv.bias, &out_dims, y));

		/* Rejected by the library: the hook must not record them, nor touch their pointers. */
		const tnn_dims negative = {1, -3, 6, 6}, huge = {1 << 30, 1 << 30, 1 << 30, 1 << 30};
		const tnn_dims wrong_out = {1, 4, 5, 6};
		tnn_pool2d_params pad_too_big = e2e_pool(2, 1, 2);
		expect_einval("conv NULL input", tnn_conv2d(&conv.p, &in_dims, NULL, conv.weight, conv.bias, &out_dims, z));
		expect_einval("conv wrong output dims", tnn_conv2d(&conv.p, &in_dims, x, conv.weight, conv.bias, &wrong_out, z));
		expect_einval("relu negative dims", tnn_relu(&negative, y, z));
		expect_einval("relu huge dims", tnn_relu(&huge, y, z));
		expect_einval("relu dangling pointers", tnn_relu(&huge, (const float *)(uintptr_t)16, (float *)(uintptr_t)32));
		expect_einval("add NULL dims", tnn_add(NULL, y, y, z));
		expect_einval("maxpool pad >= kernel", tnn_max_pool2d(&pad_too_big, &out_dims, y, &out_dims, z));
		expect_einval("softmax in place", tnn_softmax(&out_dims, y, y));
		expect_einval("concat count 0", tnn_concat(0, NULL, NULL, z));

		if (tamper && !strcmp(tamper, "1"))
			y[0] += 1.0f; /* unhooked code changes the conv's output */
		E2E_TNN(tnn_relu(&out_dims, y, z));
	}
	e2e_write_output(&args, 1, (const float *const[]){z}, &out_n);
	e2e_summary("hostile", 0, z, out_n);
	return failures ? 1 : 0;
}
