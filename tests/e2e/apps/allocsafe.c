/* SPDX-License-Identifier: MIT */
/* e2e app: the allocator hooks in every state the program may call them in. A library's
 * constructor frees and moves memory before the preload's constructor (and again, opened with
 * dlopen, inside the dynamic linker); threads allocate and free while layers are recorded; a
 * timer signal's handler maps and unmaps pages; a forked child frees and reallocates the blocks
 * that hold recorded values; a block the main thread allocated last is freed by another thread
 * before the main thread frees one. The model and the output must be as without all that. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e-app.h"

extern int allocctor_runs;

static atomic_bool stop;
static void *_Atomic handed; /* a block the main thread hands to the taker, which frees it */

static void *taker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        void *p = atomic_load(&handed);
        if (p) {
            free(p);
            atomic_store(&handed, NULL);
        }
    }
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        char *p = malloc(64);
        char *q = realloc(p, 4096);
        free(q ? q : p);
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig; /* mmap and munmap are async-signal-safe */
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED)
        munmap(m, 4096);
}

int main(int argc, char **argv)
{
    struct e2e_args args;
    struct e2e_rng rng;
    const tnn_dims xd = {1, 3, 8, 8}, hd = {1, 4, 8, 8};
    struct e2e_conv_layer conv;

    e2e_parse_args(argc, argv, &args);
    if (allocctor_runs != 1) {
        fprintf(stderr, "allocsafe: the library's constructor did not run\n");
        return 3;
    }
    e2e_rng_seed(&rng, 9009);
    e2e_conv_init(&conv, &rng, e2e_conv(3, 1, 1, 1, 1), 3, 4, 1);
    const size_t nx = e2e_count(&xd), nh = e2e_count(&hd);
    float *staged = e2e_load_input(&args, 1, &nx);
    float *x = e2e_alloc(nx), *y = e2e_alloc(nh);

    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &every, NULL);
    pthread_t t[3];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, churn, NULL);
    pthread_create(&t[2], NULL, taker, NULL);

    /* the same blocks every pass, as engines keep them: a pass recurs where it began */
    float *a = e2e_alloc(nh), *b = e2e_alloc(nh);
    for (int run = 0; run < args.runs; run++) {
        e2e_fill(staged, 1, &x, &nx);
        E2E_TNN(tnn_conv2d(&conv.p, &xd, x, conv.weight, conv.bias, &hd, a));
        E2E_TNN(tnn_relu(&hd, a, b));
        pid_t pid = fork();
        if (pid == 0) { /* the child's frees are its own business */
            free(a);
            b = realloc(b, 1 << 20);
            free(b);
            _exit(0);
        }
        int status;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "allocsafe: the forked child failed\n");
            return 3;
        }
        void *h = dlopen(ALLOCCTOR_DL, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "allocsafe: %s\n", dlerror());
            return 3;
        }
        dlclose(h);
        E2E_TNN(tnn_add(&hd, a, b, y));
        /* the main thread's last allocation, freed by another thread; then a free here (the
         * timer's handler, which may reach the allocator hooks, held off in between) */
        sigset_t alrm, was;
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        sigprocmask(SIG_BLOCK, &alrm, &was);
        float *mine = malloc(sizeof(float) * nh);
        void *last = malloc(sizeof(float) * nh);
        if (!mine || !last)
            return 3;
        ((volatile float *)mine)[0] = y[0]; /* used: the compiler keeps the block */
        atomic_store(&handed, last);
        while (atomic_load(&handed))
            ;
        free(mine);
        sigprocmask(SIG_SETMASK, &was, NULL);
    }
    free(a);
    free(b);
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);

    const float *outs[] = {y};
    e2e_write_output(&args, 1, outs, &nh);
    e2e_summary("allocsafe", 0, y, nh);
    free(conv.weight), free(conv.bias), free(staged), free(x), free(y);
    return 0;
}
