/* SPDX-License-Identifier: MIT */
/* e2e app: a timer signal's handler unmaps and maps again a page inside the memory the recorder
 * follows, interrupting the recording thread anywhere, also just after it took the recorder's
 * lock or just before it let it go. The program must neither hang nor crash; a watchdog thread
 * exits 4 when the loop stops making progress. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "e2e-app.h"

static char *spare;
static size_t page;
static atomic_ulong progress;

static void on_alarm(int sig)
{
    (void)sig; /* munmap and mmap are async-signal-safe */
    munmap(spare, page);
    mmap(spare, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static void *watchdog(void *arg)
{
    unsigned long last = (unsigned long)-1;

    (void)arg;
    for (;;) {
        sleep(5);
        unsigned long now = atomic_load(&progress);
        if (now == last) {
            fprintf(stderr, "sigrelease: no progress for 5 s (deadlock)\n");
            syscall(SYS_exit_group, 4); /* not _exit: the preload's would wait for the lock */
        }
        last = now;
    }
    return NULL;
}

static double seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const tnn_dims d = {1, 1, 2, 2};
    const double span = argc > 1 ? atof(argv[1]) : 2.0;
    sigset_t alrm;
    pthread_t t;

    page = (size_t)sysconf(_SC_PAGESIZE);
    /* pages: a, the spare one (inside the span the recorder follows), b */
    char *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 3;
    spare = m + page;
    float *x = e2e_alloc(e2e_count(&d)), *a = (float *)m, *b = (float *)(m + 2 * page);

    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL); /* the watchdog never takes the signal */
    if (pthread_create(&t, NULL, watchdog, NULL))
        return 3;
    pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &every, NULL);

    /* one long pass: each call reads what the one before wrote */
    E2E_TNN(tnn_relu(&d, x, a));
    for (double end = seconds() + span; seconds() < end;) {
        for (int i = 0; i < 100; i++) {
            E2E_TNN(tnn_relu(&d, a, b));
            E2E_TNN(tnn_relu(&d, b, a));
        }
        atomic_fetch_add(&progress, 1);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("sigrelease: %lu rounds\n", (unsigned long)atomic_load(&progress));
    return 0;
}
