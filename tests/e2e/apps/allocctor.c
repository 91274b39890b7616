/* SPDX-License-Identifier: MIT */
/* A library whose constructor uses the allocator's release and move: linked by allocsafe, it
 * runs before the preload's constructor; opened by dlopen, inside the dynamic linker. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef ALLOCCTOR_MODULE /* the dlopen'ed copy: its own counter (one global of a name for ASan) */
static int allocctor_runs;
#else
__attribute__((visibility("default"))) int allocctor_runs;
#endif

__attribute__((constructor)) static void allocctor(void)
{
    char *p = malloc(100);
    if (p) {
        memset(p, 1, 100);
        char *q = realloc(p, 200000); /* past the mmap threshold: moves */
        free(q ? q : p);
    }
    void *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
        void *r = mremap(m, 8192, 65536, MREMAP_MAYMOVE);
        munmap(r != MAP_FAILED ? r : m, r != MAP_FAILED ? 65536 : 8192);
    }
    free(reallocarray(NULL, 10, 10));
    allocctor_runs++;
}
