/* SPDX-License-Identifier: MIT */
/* ELF headers, dynamic entries and notes, whatever the class, through a read callback. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "elfread.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ELF_NATIVE_DATA ELFDATA2LSB
#else
#define ELF_NATIVE_DATA ELFDATA2MSB
#endif

static bool read_all(const struct onnxhook_elf *e, uint64_t off, void *buf, size_t len)
{
	return e->read(e->ctx, off, buf, len) == len;
}

/* Element i of an array of the ELF struct T of the file's class (Elf64_T or Elf32_T) at off, read
 * into a local h for take; ok says whether it could be read. The classes differ only in widths. */
#define READ_CLASS(e, T, off, i, ok, take)                                                       \
	do {                                                                                     \
		if ((e)->is64) {                                                                 \
			Elf64_##T h;                                                             \
			if (((ok) = read_all(e, (off) + (uint64_t)(i) * sizeof(h), &h, sizeof(h)))) \
				take;                                                            \
		} else {                                                                         \
			Elf32_##T h;                                                             \
			if (((ok) = read_all(e, (off) + (uint64_t)(i) * sizeof(h), &h, sizeof(h)))) \
				take;                                                            \
		}                                                                                \
	} while (0)

int onnxhook_elf_open(struct onnxhook_elf *e, onnxhook_elf_read_fn *read, void *ctx)
{
	unsigned char ident[EI_NIDENT];
	uint16_t phentsize = 0;
	bool ok;

	memset(e, 0, sizeof(*e));
	e->read = read;
	e->ctx = ctx;
	if (!read_all(e, 0, ident, sizeof(ident)))
		return -EIO;
	if (memcmp(ident, ELFMAG, SELFMAG) || ident[EI_DATA] != ELF_NATIVE_DATA ||
	    (ident[EI_CLASS] != ELFCLASS64 && ident[EI_CLASS] != ELFCLASS32))
		return -ENOEXEC;
	e->is64 = ident[EI_CLASS] == ELFCLASS64;
	READ_CLASS(e, Ehdr, 0, 0, ok,
		   (e->type = h.e_type, e->machine = h.e_machine, e->phoff = h.e_phoff,
		    e->shoff = h.e_shoff, e->phnum = h.e_phnum, e->shnum = h.e_shnum,
		    e->shentsize = h.e_shentsize, e->shstrndx = h.e_shstrndx, phentsize = h.e_phentsize));
	if (!ok)
		return -EIO;
	return phentsize == (e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ? 0 : -ENOEXEC;
}

bool onnxhook_elf_phdr_at(const struct onnxhook_elf *e, unsigned i, struct onnxhook_elf_phdr *p)
{
	bool ok;

	READ_CLASS(e, Phdr, e->phoff, i, ok,
		   (*p = (struct onnxhook_elf_phdr){h.p_type, h.p_flags, h.p_offset, h.p_vaddr, h.p_filesz,
						    h.p_memsz, h.p_align}));
	return ok;
}

bool onnxhook_elf_shdr_at(const struct onnxhook_elf *e, unsigned i, struct onnxhook_elf_shdr *s)
{
	bool ok;

	if (e->shentsize != (e->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr)))
		return false;
	READ_CLASS(e, Shdr, e->shoff, i, ok,
		   (*s = (struct onnxhook_elf_shdr){h.sh_name, h.sh_type, h.sh_link, h.sh_info, h.sh_flags,
						    h.sh_addr, h.sh_offset, h.sh_size, h.sh_entsize}));
	return ok;
}

bool onnxhook_elf_dyn(const struct onnxhook_elf *e, const struct onnxhook_elf_phdr *dyn, uint64_t i,
		      int64_t *tag, uint64_t *val)
{
	bool ok;

	if (i >= dyn->filesz / (e->is64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn)))
		return false;
	READ_CLASS(e, Dyn, dyn->offset, i, ok, (*tag = h.d_tag, *val = h.d_un.d_val));
	return ok;
}

bool onnxhook_elf_offset(const struct onnxhook_elf *e, uint64_t vaddr, uint64_t *off)
{
	struct onnxhook_elf_phdr p;

	for (unsigned i = 0; i < e->phnum && onnxhook_elf_phdr_at(e, i, &p); i++) {
		if (p.type == PT_LOAD && vaddr >= p.vaddr && vaddr - p.vaddr < p.filesz) {
			*off = p.offset + (vaddr - p.vaddr);
			return true;
		}
	}
	return false;
}

bool onnxhook_elf_build_id(const void *notes, size_t len, size_t align, char *hex, size_t hexlen)
{
	static const char digits[] = "0123456789abcdef";
	const char *n = notes, *end = n + len;

	while ((size_t)(end - n) >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr h; /* the same in both classes */
		memcpy(&h, n, sizeof(h));
		size_t namesz = (h.n_namesz + align - 1) / align * align;
		size_t descsz = (h.n_descsz + align - 1) / align * align;
		const unsigned char *name = (const unsigned char *)n + sizeof(h), *desc = name + namesz;
		if (namesz > (size_t)(end - (const char *)name) || descsz > (size_t)(end - (const char *)desc))
			return false;
		if (h.n_type == NT_GNU_BUILD_ID && h.n_namesz == 4 && !memcmp(name, "GNU", 4) &&
		    h.n_descsz * 2 < hexlen) {
			for (size_t i = 0; i < h.n_descsz; i++) {
				hex[2 * i] = digits[desc[i] >> 4];
				hex[2 * i + 1] = digits[desc[i] & 15];
			}
			hex[2 * h.n_descsz] = '\0';
			return true;
		}
		n = (const char *)desc + descsz;
	}
	return false;
}

size_t onnxhook_elf_pread(void *ctx, uint64_t off, void *buf, size_t len)
{
	ssize_t n = off <= (uint64_t)INT64_MAX ? pread(*(const int *)ctx, buf, len, (off_t)off) : -1;

	return n > 0 ? (size_t)n : 0;
}

size_t onnxhook_elf_mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	const struct onnxhook_elf_mem *m = ctx;

	if (off >= m->size)
		return 0;
	len = len < m->size - off ? len : (size_t)(m->size - off);
	memcpy(buf, (const char *)m->base + off, len);
	return len;
}
