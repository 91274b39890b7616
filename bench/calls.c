/* SPDX-License-Identifier: MIT */
/* calls: a tight loop of one cheap tinynn call (relu or add on 1x1x1x4), timed, in ns per call. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "tinynn.h"

/* Usage: calls MODE COUNT [RING]
 *   relu        tnn_relu(x -> y) on the same buffers every call (a recurring call: with the
 *               hook, call 2 starts pass 2)
 *   add         tnn_add(a, b -> y), the same way
 *   relu-chain  tnn_relu(buf[i % RING] -> buf[(i + 1) % RING]): a chain of distinct calls, each
 *               reading what the previous one wrote, so the hook records one long pass
 *   add-chain   tnn_add(buf[i % RING], b -> buf[(i + 1) % RING]), the same way
 *   free        malloc(16) then free, after two relu calls (with the hook: the captured pass
 *               is over, so free is the allocator hook's pass-through)
 *   free-recording  the same with no layer call first (with the hook: still recording, so every
 *               free asks the recorder whether the block held a value)
 * RING defaults to 1024 buffers. A few untimed warm-up calls come first (part of the same
 * sequence). Prints one line: "mode=M calls=N ns_per_call=X total_s=T heap_bytes=H"
 * (H: the malloc heap in use right after the loop, the recorder's included).
 * CALLS_KILL=1 (for profiling the loop alone): the process then kills itself with SIGKILL,
 * so that no exit handler (the hook's model writer) runs. */

#define ELEMS 4

static _Noreturn void usage(void)
{
	fprintf(stderr, "usage: calls relu|add|relu-chain|add-chain|free|free-recording COUNT [RING]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const tnn_dims dims = {1, 1, 1, ELEMS};
	enum { RELU, ADD, RELU_CHAIN, ADD_CHAIN, FREE, FREE_RECORDING } mode;

	if (argc < 3 || argc > 4)
		usage();
	if (!strcmp(argv[1], "relu"))
		mode = RELU;
	else if (!strcmp(argv[1], "add"))
		mode = ADD;
	else if (!strcmp(argv[1], "relu-chain"))
		mode = RELU_CHAIN;
	else if (!strcmp(argv[1], "add-chain"))
		mode = ADD_CHAIN;
	else if (!strcmp(argv[1], "free"))
		mode = FREE;
	else if (!strcmp(argv[1], "free-recording"))
		mode = FREE_RECORDING;
	else
		usage();
	long count = bench_parse_long("calls", "COUNT", argv[2], 1, 1000000000L);
	long ring = argc > 3 ? bench_parse_long("calls", "RING", argv[3], 2, 1L << 24) : 1024;
	long warm = count / 10 < 1000 ? count / 10 : 1000;

	/* One allocation per ring buffer, like the tensors of a real engine. */
	float **buf = calloc((size_t)ring, sizeof(*buf));
	float b[ELEMS] = {0.5f, -0.25f, 0.125f, -1.0f};
	if (!buf) {
		fprintf(stderr, "calls: out of memory\n");
		return 1;
	}
	for (long i = 0; i < ring; i++) {
		buf[i] = malloc(ELEMS * sizeof(float));
		if (!buf[i]) {
			fprintf(stderr, "calls: out of memory\n");
			return 1;
		}
		for (int k = 0; k < ELEMS; k++)
			buf[i][k] = (float)(k - 1) * 0.5f;
	}

	double t0 = 0;
	tnn_status st = TNN_OK;
	if (mode == FREE) /* the second call starts pass 2: the capture is over */
		for (int i = 0; i < 2 && st == TNN_OK; i++)
			st = tnn_relu(&dims, buf[0], buf[1]);
	for (long i = 0; i < warm + count && st == TNN_OK; i++) {
		if (i == warm)
			t0 = bench_now();
		switch (mode) {
		case RELU:
			st = tnn_relu(&dims, buf[0], buf[1]);
			break;
		case ADD:
			st = tnn_add(&dims, buf[0], b, buf[1]);
			break;
		case RELU_CHAIN:
			st = tnn_relu(&dims, buf[i % ring], buf[(i + 1) % ring]);
			break;
		case ADD_CHAIN:
			st = tnn_add(&dims, buf[i % ring], b, buf[(i + 1) % ring]);
			break;
		case FREE:
		case FREE_RECORDING: {
			/* volatile: the pair must not be optimised away */
			void *volatile p = malloc(16);
			free(p);
			break;
		}
		}
	}
	double dt = bench_now() - t0;
	struct mallinfo2 mi = mallinfo2();
	if (st != TNN_OK) {
		fprintf(stderr, "calls: tinynn call failed: %d\n", (int)st);
		return 1;
	}
	printf("mode=%s calls=%ld ns_per_call=%.2f total_s=%.6f heap_bytes=%zu\n", argv[1], count,
	       dt * 1e9 / (double)count, dt, mi.uordblks + mi.hblkhd);
	const char *kill_env = getenv("CALLS_KILL");
	if (kill_env && !strcmp(kill_env, "1")) {
		fflush(stdout);
		raise(SIGKILL);
	}
	for (long i = 0; i < ring; i++)
		free(buf[i]);
	free(buf);
	return 0;
}
