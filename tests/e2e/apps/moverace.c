/* SPDX-License-Identifier: MIT */
/* An activation's page moves (mremap) while another thread maps the old place and writes a
 * layer output there, before mremap has returned. The moved value must follow its page, and the
 * other thread's output stay where it was written: graph inputs x and z, no warning. Without
 * the recorder held across the move, the other thread's output would be carried to the new
 * place, and both reads after it would become graph inputs with a warning. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "e2e-app.h"

extern void (*moverace_after_mremap)(void *old, void *new);

static const tnn_dims xd = {1, 3, 8, 8}, hd = {1, 4, 8, 8};
static struct e2e_conv_layer c1;
static sem_t go, done;
static float *h; /* conv(z), by the main thread: the other thread's call reads it */
static size_t page;
static int other_status;

static void *other(void *arg)
{
	(void)arg;
	while (sem_wait(&go) && errno == EINTR)
		;
	float *m = mmap(arg, page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED || (void *)m != arg) {
		other_status = 3;
	} else if (tnn_relu(&hd, h, m) != TNN_OK) {
		other_status = 1;
	}
	sem_post(&done);
	return NULL;
}

static void after_mremap(void *old, void *new)
{
	struct timespec until;

	(void)old;
	(void)new;
	moverace_after_mremap = NULL; /* once */
	sem_post(&go);
	/* The other thread's layer call waits for the recorder while mremap holds it: give it a
	 * moment to run (it finishes now without the hold), then go on either way. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 300 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (sem_timedwait(&done, &until) && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	struct e2e_args args;
	struct e2e_rng rng;
	pthread_t t;

	e2e_parse_args(argc, argv, &args);
	e2e_rng_seed(&rng, 4242);
	e2e_conv_init(&c1, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
	page = (size_t)sysconf(_SC_PAGESIZE);
	const size_t nx = e2e_count(&xd), nh = e2e_count(&hd);
	const size_t sizes[2] = {nx, nx};
	float *staged = e2e_load_input(&args, 2, sizes);
	float *x = e2e_alloc(nx), *y = e2e_alloc(nh), *z = e2e_alloc(nx);
	h = e2e_alloc(nh);
	float *bufs[2] = {x, z};
	e2e_fill(staged, 2, bufs, sizes);
	if (nh * sizeof(float) > page || sem_init(&go, 0, 0) || sem_init(&done, 0, 0))
		return 3;

	char *m = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *t2 = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || t2 == MAP_FAILED)
		return 3;
	E2E_TNN(tnn_conv2d(&c1.p, &xd, z, c1.weight, c1.bias, &hd, h));
	E2E_TNN(tnn_conv2d(&c1.p, &xd, x, c1.weight, c1.bias, &hd, (float *)m));
	if (pthread_create(&t, NULL, other, m))
		return 3;
	moverace_after_mremap = after_mremap;
	/* m's page replaces t2's: m's old place is free for the other thread */
	float *q = mremap(m, page, page, MREMAP_MAYMOVE | MREMAP_FIXED, t2);
	if ((void *)q != t2) {
		fprintf(stderr, "moverace: mremap did not move the page\n");
		return 3;
	}
	if (pthread_join(t, NULL) || other_status) {
		fprintf(stderr, "moverace: the other thread failed (%d)\n", other_status);
		return 3;
	}
	E2E_TNN(tnn_relu(&hd, q, y));            /* relu(conv(x)), moved */
	E2E_TNN(tnn_add(&hd, y, (float *)m, y)); /* + relu(conv(z)), written at m's old place */
	e2e_write_output(&args, 1, (const float *const[]){y}, &nh);
	e2e_summary("moverace", 0, y, nh);
	munmap(m, page);
	munmap(q, page);
	free(staged);
	free(x);
	free(y);
	free(z);
	free(h);
	free(c1.weight);
	free(c1.bias);
	return 0;
}
