/* SPDX-License-Identifier: MIT */
/* The allocator's release and move. A freed block's next life is fresh memory, not the tensor
 * it held (the C form of Python's id() reuse); a moved block's values follow it. Every hook
 * tells the recorder first, then calls the real function, and is a pass-through (one relaxed
 * load) unless recording. They run before our constructor, inside the dynamic linker, in fork
 * children and in signal handlers: nothing here allocates, and the recorder's side never takes
 * its lock from under itself (hook.c). */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hook.h"

static void (*real_free)(void *);
static void *(*real_realloc)(void *, size_t);
static size_t (*real_usable_size)(void *);
static int (*real_munmap)(void *, size_t);
static void *(*real_mremap)(void *, size_t, size_t, int, ...);

/* The definition of name in the objects loaded after us, read from their dynamic symbol tables.
 * Not dlsym: a free reached from inside glibc's dlerror bookkeeping (a dlopen or dlsym freeing
 * the last error string) that called dlsym again would corrupt that bookkeeping. dladdr1 and
 * the link map need no allocation and no error state. */
static uint32_t gnu_hash(const char *name)
{
	uint32_t h = 5381;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = h * 33 + *p;
	return h;
}

static uintptr_t dyn_ptr(const struct link_map *l, ElfW(Addr) p)
{
	/* glibc relocates these entries in place; the vDSO's stay link-time addresses. */
	return p < l->l_addr ? l->l_addr + p : p;
}

static void *defined_in(const struct link_map *l, const char *name)
{
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	const uint32_t *gh = NULL;

	for (const ElfW(Dyn) *d = l->l_ld; d && d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_SYMTAB)
			symtab = (const ElfW(Sym) *)dyn_ptr(l, d->d_un.d_ptr);
		else if (d->d_tag == DT_STRTAB)
			strtab = (const char *)dyn_ptr(l, d->d_un.d_ptr);
		else if (d->d_tag == DT_GNU_HASH)
			gh = (const uint32_t *)dyn_ptr(l, d->d_un.d_ptr);
	}
	if (!symtab || !strtab || !gh || !gh[0])
		return NULL;
	uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_words = gh[2];
	const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)&gh[4] + bloom_words);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t h = gnu_hash(name);
	for (uint32_t i = buckets[h % nbuckets]; i >= symoffset; i++) {
		uint32_t h2 = chain[i - symoffset];
		const ElfW(Sym) *sym = &symtab[i];
		if ((h | 1) == (h2 | 1) && sym->st_shndx != SHN_UNDEF && sym->st_value &&
		    ELF64_ST_TYPE(sym->st_info) == STT_FUNC && !strcmp(strtab + sym->st_name, name))
			return (void *)(l->l_addr + sym->st_value);
		if (h2 & 1)
			break;
	}
	return NULL;
}

/* owner: only in the first object after us that defines owner (a block's size is asked of the
 * allocator that frees it, not of another one that happens to define the function). */
static void *next_definition(const char *name, const char *owner)
{
	struct link_map *self = NULL;
	Dl_info info;

	if (!dladdr1((void *)next_definition, &info, (void **)&self, RTLD_DL_LINKMAP) || !self)
		return NULL;
	for (const struct link_map *l = self->l_next; l; l = l->l_next) {
		if (owner && !defined_in(l, owner))
			continue;
		void *p = defined_in(l, name);
		if (p || owner)
			return p;
	}
	return NULL;
}

/* glibc's own, should the objects after us not tell (they always define these). */
extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);

static void *resolve(void *slot, const char *name, const char *owner, void *fallback)
{
	void *p = __atomic_load_n((void **)slot, __ATOMIC_ACQUIRE);

	if (!p) {
		p = next_definition(name, owner);
		if (!p)
			p = fallback;
		__atomic_store_n((void **)slot, p, __ATOMIC_RELEASE);
	}
	return p;
}

static int fallback_munmap(void *p, size_t n)
{
	return (int)syscall(SYS_munmap, p, n);
}

static void *fallback_mremap(void *p, size_t old, size_t new, int flags, ...)
{
	va_list ap;

	va_start(ap, flags);
	void *want = va_arg(ap, void *);
	va_end(ap);
	return (void *)syscall(SYS_mremap, p, old, new, flags, want);
}

#define REAL(name, fallback) ((__typeof(real_##name))resolve(&real_##name, #name, NULL, (void *)(fallback)))
/* An allocator that cannot tell a block's size: its blocks are followed by content only. */
static size_t no_size(void *p)
{
	return 0 * (size_t)p;
}
#define REAL_USABLE_SIZE()                                                                       \
	((__typeof(real_usable_size))resolve(&real_usable_size, "malloc_usable_size", "free", (void *)no_size))

static bool recording(void)
{
	return onnxhook_is_recording();
}

static size_t page_up(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return n > SIZE_MAX - page ? SIZE_MAX - SIZE_MAX % page : (n + page - 1) / page * page;
}

/* A block of old bytes at p is now new bytes at q (q == NULL: the call failed, nothing moved;
 * new == 0 with q == NULL: realloc(p, 0) freed it): what the recorder is told, at most two
 * notes. */
static size_t block_moved(struct onnxhook_memory_note m[2], void *p, size_t old, void *q,
			  size_t new)
{
	size_t kept = old < new ? old : new, k = 0;

	if (!q) {
		if (new == 0) /* glibc: realloc(p, 0) frees p */
			m[k++] = (struct onnxhook_memory_note){p, old, NULL};
		return k;
	}
	if (q != p && kept)
		m[k++] = (struct onnxhook_memory_note){p, kept, q};
	if (old > kept) /* the old block's tail */
		m[k++] = (struct onnxhook_memory_note){(char *)p + kept, old - kept, NULL};
	return k;
}

ONNXHOOK_EXPORT void free(void *p)
{
	void (*real)(void *) = REAL(free, __libc_free);

	if (p && recording()) {
		size_t (*usable)(void *) = REAL_USABLE_SIZE();
		if (usable)
			onnxhook_memory_released(p, usable(p));
	}
	real(p);
}

static void *do_realloc(void *p, size_t n)
{
	void *(*real)(void *, size_t) = REAL(realloc, __libc_realloc);
	size_t (*usable)(void *);
	struct onnxhook_memory_note m[2];

	if (!p || !recording() || !(usable = REAL_USABLE_SIZE()))
		return real(p, n);
	size_t old = usable(p);
	/* Held across the call: once realloc has freed p, another thread may be given it. */
	bool held = onnxhook_memory_move_begin(p, old);
	void *q = real(p, n);
	onnxhook_memory_move_end(held, m, block_moved(m, p, old, q, n));
	return q;
}

ONNXHOOK_EXPORT void *realloc(void *p, size_t n)
{
	return do_realloc(p, n);
}

/* As glibc's: a realloc after the overflow check. Not the real reallocarray: glibc's calls
 * realloc through the PLT, which is ours, and a block it moved would be moved twice (the
 * second move, from an empty range, cleared the values at their new place). */
ONNXHOOK_EXPORT void *reallocarray(void *p, size_t count, size_t size)
{
	size_t n;

	if (__builtin_mul_overflow(count, size, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	return do_realloc(p, n);
}

ONNXHOOK_EXPORT int munmap(void *p, size_t n)
{
	/* First: once unmapped, no check may hash these bytes. */
	if (p && n && recording())
		onnxhook_memory_released(p, page_up(n));
	return REAL(munmap, fallback_munmap)(p, n);
}

ONNXHOOK_EXPORT void *mremap(void *p, size_t old, size_t new, int flags, ...)
{
	void *want = NULL;

	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	if (!recording())
		return REAL(mremap, fallback_mremap)(p, old, new, flags, want);
	/* Shrinking unmaps the tail, moving unmaps the old place: held across the call, so no
	 * other thread can map and record there before the values have followed. */
	struct onnxhook_memory_note m[3];
	size_t k = 0;
	bool held = onnxhook_memory_move_begin(p, page_up(old));
	void *q = REAL(mremap, fallback_mremap)(p, old, new, flags, want);
	if (q != MAP_FAILED) {
		if (page_up(old) > page_up(new))
			m[k++] = (struct onnxhook_memory_note){(char *)p + page_up(new),
							       page_up(old) - page_up(new), NULL};
		if (q != p)
			m[k++] = (struct onnxhook_memory_note){p, page_up(old < new ? old : new), q};
		/* The grown part is new memory: with MREMAP_FIXED, over what was mapped there. */
		if (page_up(new) > page_up(old))
			m[k++] = (struct onnxhook_memory_note){(char *)q + page_up(old),
							       page_up(new) - page_up(old), NULL};
	}
	onnxhook_memory_move_end(held, m, k);
	return q;
}

/* Under ASan (or another sanitizer) the runtime preloaded before us owns malloc and free: ours
 * are never reached. Its hooks tell us instead; a realloc there is a malloc of the new block, a
 * copy and a free of the old, told as a move when the freed bytes are the thread's last block's. */
typedef void sanitizer_malloc_hook(const volatile void *, size_t);
typedef void sanitizer_free_hook(const volatile void *);
static __thread const volatile void *last_block __attribute__((tls_model("initial-exec")));
static __thread size_t last_size __attribute__((tls_model("initial-exec")));
static size_t (*sanitizer_size)(const volatile void *);
static int (*sanitizer_owns)(const volatile void *);

static void on_sanitizer_malloc(const volatile void *p, size_t n)
{
	last_block = p;
	last_size = n;
}

static void on_sanitizer_free(const volatile void *vp)
{
	void *p = (void *)(uintptr_t)vp, *q = (void *)(uintptr_t)last_block;

	last_block = NULL;
	if (!p || !recording())
		return;
	size_t n = sanitizer_size(p), kept = n < last_size ? n : last_size;
	/* Compared only for a block that may hold values, and only while the last block is still
	 * allocated: the program may have handed it to another thread that freed it. */
	if (q && q != p && kept && onnxhook_memory_followed(p, n) && sanitizer_owns(q) &&
	    !memcmp(p, q, kept)) {
		struct onnxhook_memory_note m[2];
		onnxhook_memory_move_end(false, m, block_moved(m, p, n, q, last_size));
	} else {
		onnxhook_memory_released(p, n);
	}
}

void onnxhook_alloc_init(void)
{
	int (*install)(sanitizer_malloc_hook *, sanitizer_free_hook *) =
		(int (*)(sanitizer_malloc_hook *, sanitizer_free_hook *))dlsym(
			RTLD_DEFAULT, "__sanitizer_install_malloc_and_free_hooks");

	sanitizer_size = (size_t(*)(const volatile void *))dlsym(RTLD_DEFAULT,
								 "__sanitizer_get_allocated_size");
	sanitizer_owns = (int (*)(const volatile void *))dlsym(RTLD_DEFAULT, "__sanitizer_get_ownership");
	if (install && sanitizer_size && sanitizer_owns)
		install(on_sanitizer_malloc, on_sanitizer_free);
}

ONNXHOOK_LOCAL_ALIAS(free)
ONNXHOOK_LOCAL_ALIAS(realloc)
ONNXHOOK_LOCAL_ALIAS(reallocarray)
ONNXHOOK_LOCAL_ALIAS(munmap)
ONNXHOOK_LOCAL_ALIAS(mremap)
