/* SPDX-License-Identifier: MIT */
/* Function names from an ELF file's symbol tables (.symtab, else .dynsym), for call stacks. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfread.h"
#include "onnxhook.h"

static int by_addr(const void *a, const void *b)
{
	const struct onnxhook_elfsym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Collects the defined functions of one symbol table section; names are copied into one block. */
static int take_table(struct onnxhook_elfsyms *t, const uint8_t *base, size_t size,
		      const struct onnxhook_elf_shdr *sh, const struct onnxhook_elf_shdr *strsh)
{
	if (sh->entsize != sizeof(Elf64_Sym) || sh->offset > size || sh->size > size - sh->offset ||
	    strsh->offset > size || strsh->size > size - strsh->offset || strsh->size == 0)
		return -EINVAL;
	const Elf64_Sym *syms = (const Elf64_Sym *)(base + sh->offset);
	size_t n = sh->size / sizeof(Elf64_Sym), k = 0;
	const char *strtab = (const char *)(base + strsh->offset);

	t->syms = calloc(n ? n : 1, sizeof(*t->syms));
	t->strings = malloc(strsh->size);
	if (!t->syms || !t->strings)
		return -ENOMEM;
	memcpy(t->strings, strtab, strsh->size);
	t->strings[strsh->size - 1] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (ELF64_ST_TYPE(syms[i].st_info) != STT_FUNC || syms[i].st_shndx == SHN_UNDEF ||
		    syms[i].st_value == 0 || syms[i].st_name >= strsh->size)
			continue;
		t->syms[k++] = (struct onnxhook_elfsym){syms[i].st_value, syms[i].st_size, syms[i].st_name};
	}
	t->n = k;
	qsort(t->syms, t->n, sizeof(*t->syms), by_addr);
	return 0;
}

int onnxhook_elfsyms_load(struct onnxhook_elfsyms *t, const char *path)
{
	struct stat sb;
	struct onnxhook_elf e;
	struct onnxhook_elf_mem mem;
	struct onnxhook_elf_shdr sh, strsh;
	void *map = MAP_FAILED;
	int fd, r = -EINVAL;

	memset(t, 0, sizeof(*t));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || sb.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		r = -EINVAL;
		goto out;
	}
	size_t size = (size_t)sb.st_size;
	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	mem = (struct onnxhook_elf_mem){map, size};
	/* Symbols are read in place as Elf64_Sym: 64-bit files only. */
	if (onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem) < 0 || !e.is64)
		goto out;
	/* The full table when the file has one; a stripped file still has its exports. */
	for (uint32_t want = SHT_SYMTAB; want; want = want == SHT_SYMTAB ? SHT_DYNSYM : 0) {
		for (unsigned i = 0; i < e.shnum; i++) {
			if (!onnxhook_elf_shdr_at(&e, i, &sh)) {
				r = -EINVAL;
				goto out;
			}
			if (sh.type != want || sh.link >= e.shnum || !onnxhook_elf_shdr_at(&e, sh.link, &strsh))
				continue;
			r = take_table(t, map, size, &sh, &strsh);
			if (r == 0 && t->n > 0)
				goto out;
			onnxhook_elfsyms_free(t);
		}
	}
	r = -ENOENT;
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)sb.st_size);
	close(fd);
	return r;
}

const char *onnxhook_elfsyms_find(const struct onnxhook_elfsyms *t, uint64_t addr, uint64_t *start)
{
	size_t lo = 0, hi = t->n;

	/* The last symbol starting at or before addr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct onnxhook_elfsym *s = &t->syms[lo - 1];
	/* Aliases share an address: any of them is fine, but a sized one must contain addr. */
	if (s->size && addr >= s->addr + s->size)
		return NULL;
	if (start)
		*start = s->addr;
	return t->strings + s->name;
}

void onnxhook_elfsyms_free(struct onnxhook_elfsyms *t)
{
	free(t->syms);
	free(t->strings);
	memset(t, 0, sizeof(*t));
}
