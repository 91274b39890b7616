/* SPDX-License-Identifier: MIT */
/* The host library opened at run time (RTLD_LOCAL) and its functions taken with dlsym(handle),
 * as Python ctypes and plugin loaders do. Not linked against libtinynn: $E2E_TINYNN names it.
 * With E2E_DLCLOSE=1 the library is closed before exit. Also checks that the app's own
 * dlsym(RTLD_NEXT, …) still means "after the app". */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e-app.h"

typedef tnn_status (*conv_fn)(const tnn_conv2d_params *, const tnn_dims *, const float *,
			      const float *, const float *, const tnn_dims *, float *);
typedef tnn_status (*unary_fn)(const tnn_dims *, const float *, float *);
typedef tnn_status (*add_fn)(const tnn_dims *, const float *, const float *, float *);

static void *need(void *handle, const char *name)
{
	void *p = dlsym(handle, name);

	if (!p) {
		fprintf(stderr, "dlopen: %s: %s\n", name, dlerror());
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	struct e2e_args args;
	struct e2e_rng r;
	const char *lib = getenv("E2E_TINYNN");
	const tnn_dims in_dims = {1, 3, 8, 8};
	struct e2e_conv_layer c1, c2;

	e2e_parse_args(argc, argv, &args);
	/* An interposed dlsym must not move RTLD_NEXT: from here it finds what the global scope
	 * finds first after this program, the same object RTLD_DEFAULT finds for a symbol the
	 * program does not define. */
	if (dlsym(RTLD_NEXT, "sigaction") != dlsym(RTLD_DEFAULT, "sigaction")) {
		fprintf(stderr, "dlopen: dlsym(RTLD_NEXT) no longer means 'after the caller'\n");
		return 20;
	}
	void *h = dlopen(lib ? lib : "libtinynn.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 1;
	}
	conv_fn conv = (conv_fn)need(h, "tnn_conv2d");
	unary_fn relu = (unary_fn)need(h, "tnn_relu");
	add_fn add = (add_fn)need(h, "tnn_add");

	e2e_rng_seed(&r, 11);
	e2e_conv_init(&c1, &r, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
	e2e_conv_init(&c2, &r, e2e_conv(1, 1, 0, 1, 1), 3, 4, 0);
	const tnn_dims out_dims = e2e_conv_out(&c1, &in_dims);
	const size_t in_n = e2e_count(&in_dims), out_n = e2e_count(&out_dims);
	float *staged = e2e_load_input(&args, 1, &in_n);
	float *x = e2e_alloc(in_n), *a = e2e_alloc(out_n), *b = e2e_alloc(out_n);

	for (int run = 0; run < args.runs; run++) {
		e2e_fill(staged, 1, &x, &in_n);
		E2E_TNN(conv(&c1.p, &in_dims, x, c1.weight, c1.bias, &out_dims, a));
		E2E_TNN(relu(&out_dims, a, a));
		E2E_TNN(conv(&c2.p, &in_dims, x, c2.weight, c2.bias, &out_dims, b));
		E2E_TNN(add(&out_dims, a, b, b));
	}
	if (getenv("E2E_DLCLOSE") && !strcmp(getenv("E2E_DLCLOSE"), "1"))
		dlclose(h);
	e2e_write_output(&args, 1, (const float *const[]){b}, &out_n);
	e2e_summary("dlopen", 0, b, out_n);
	return 0;
}
