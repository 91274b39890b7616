/* SPDX-License-Identifier: MIT */
/* chain: a synthetic tinynn network of L layers (1x1 conv with its own weights, relu, ...), timed. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "tinynn.h"

/* Usage: chain LAYERS [CHANNELS [SIZE]]
 * Layer i is a 1x1 convolution CHANNELS -> CHANNELS with its own weights and bias when i is even,
 * an in-place relu when i is odd, on a 1 x CHANNELS x SIZE x SIZE tensor (defaults 8 and 4); two
 * activation buffers ping-pong, like a real engine's. One pass, run once.
 * Prints one line: "layers=L loop_s=T heap_bytes=H weight_bytes=W", where loop_s is the time of
 * the layer loop alone and heap_bytes the malloc heap in use right after it (with the hook, that
 * includes everything the recorder holds; the model is written later, at exit). */

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p) {
		fprintf(stderr, "chain: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: chain LAYERS [CHANNELS [SIZE]]\n");
		return 2;
	}
	long layers = bench_parse_long("chain", "LAYERS", argv[1], 1, 10000000L);
	int32_t ch = argc > 2 ? (int32_t)bench_parse_long("chain", "CHANNELS", argv[2], 1, 1024) : 8;
	int32_t size = argc > 3 ? (int32_t)bench_parse_long("chain", "SIZE", argv[3], 1, 1024) : 4;
	const tnn_dims dims = {1, ch, size, size};
	const tnn_conv2d_params p = {.kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1,
				     .dilation_h = 1, .dilation_w = 1, .groups = 1};
	const size_t act = (size_t)ch * (size_t)size * (size_t)size;
	const size_t wn = (size_t)ch * (size_t)ch;
	long convs = (layers + 1) / 2;

	/* Distinct weights per conv (one block, as a loaded model file would hold them). */
	float *weights = xmalloc((size_t)convs * (wn + (size_t)ch) * sizeof(float));
	for (size_t i = 0; i < (size_t)convs * (wn + (size_t)ch); i++)
		weights[i] = (float)((i * 2654435761u) % 1000) * 2e-4f - 0.1f;
	float *buf[2] = {xmalloc(act * sizeof(float)), xmalloc(act * sizeof(float))};
	for (size_t i = 0; i < act; i++)
		buf[0][i] = (float)(i % 17) * 0.1f - 0.8f;

	int cur = 0;
	double t0 = bench_now();
	for (long i = 0; i < layers; i++) {
		tnn_status st;
		if (i % 2 == 0) {
			const float *w = weights + (size_t)(i / 2) * (wn + (size_t)ch);
			st = tnn_conv2d(&p, &dims, buf[cur], w, w + wn, &dims, buf[!cur]);
			cur = !cur;
		} else {
			st = tnn_relu(&dims, buf[cur], buf[cur]);
		}
		if (st != TNN_OK) {
			fprintf(stderr, "chain: layer %ld failed: %d\n", i, (int)st);
			return 1;
		}
	}
	double dt = bench_now() - t0;
	struct mallinfo2 mi = mallinfo2();

	printf("layers=%ld loop_s=%.6f heap_bytes=%zu weight_bytes=%zu\n", layers, dt,
	       mi.uordblks + mi.hblkhd, (size_t)convs * (wn + (size_t)ch) * sizeof(float));
	free(buf[0]);
	free(buf[1]);
	free(weights);
	return 0;
}
