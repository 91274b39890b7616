/* SPDX-License-Identifier: MIT */
/* Reading ELF files and loaded objects of this machine's byte order, 32- or 64-bit, through a
 * read callback: a file (onnxhook_elf_pread), a mapped file (onnxhook_elf_mem_read), or a loaded
 * object's memory. Nothing here allocates or takes a lock: a dump from a signal handler reads a
 * loaded object's build-id with it. The preload (provenance, call-stack names) and the onnxhook
 * command (the program, the library it preloads) share it. */
#ifndef ONNXHOOK_ELFREAD_H
#define ONNXHOOK_ELFREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reads up to len bytes at off into buf: how many it read (fewer at the end, 0 on failure). */
typedef size_t onnxhook_elf_read_fn(void *ctx, uint64_t off, void *buf, size_t len);

struct onnxhook_elf {
	onnxhook_elf_read_fn *read;
	void *ctx;
	bool is64;              /* ELFCLASS64 */
	uint16_t type, machine; /* e_type (ET_DYN: a shared object or PIE), e_machine */
	uint64_t phoff, shoff;
	uint16_t phnum, shnum, shentsize, shstrndx;
};

/* Program and section headers in one width, whatever the class. */
struct onnxhook_elf_phdr {
	uint32_t type, flags;
	uint64_t offset, vaddr, filesz, memsz, align;
};
struct onnxhook_elf_shdr {
	uint32_t name, type, link, info; /* name: an offset in the section names (e_shstrndx) */
	uint64_t flags, addr, offset, size, entsize;
};

/* Reads the ELF header: 0, or -ENOEXEC (not ELF, another byte order or class, program headers
 * not of the class's size) or -EIO (too short). */
int onnxhook_elf_open(struct onnxhook_elf *e, onnxhook_elf_read_fn *read, void *ctx);
/* Program header i, section header i (false if it cannot be read, or a section header is not
 * of the class's size). */
bool onnxhook_elf_phdr_at(const struct onnxhook_elf *e, unsigned i, struct onnxhook_elf_phdr *p);
bool onnxhook_elf_shdr_at(const struct onnxhook_elf *e, unsigned i, struct onnxhook_elf_shdr *s);
/* Entry i of the dynamic section in the file's PT_DYNAMIC segment dyn: false past its end. */
bool onnxhook_elf_dyn(const struct onnxhook_elf *e, const struct onnxhook_elf_phdr *dyn, uint64_t i,
		      int64_t *tag, uint64_t *val);
/* The file offset of the virtual address vaddr (a DT_STRTAB), by the PT_LOAD segment holding
 * it: false if none does. */
bool onnxhook_elf_offset(const struct onnxhook_elf *e, uint64_t vaddr, uint64_t *off);

/* The GNU build-id among the notes at [notes, notes + len) (a PT_NOTE segment in memory, its
 * entries aligned to align), in lower-case hex: false if there is none that fits hex. */
bool onnxhook_elf_build_id(const void *notes, size_t len, size_t align, char *hex, size_t hexlen);

/* Read callbacks: a file (ctx points to its descriptor); memory (ctx points to a struct
 * onnxhook_elf_mem). */
size_t onnxhook_elf_pread(void *ctx, uint64_t off, void *buf, size_t len);
struct onnxhook_elf_mem {
	const void *base;
	size_t size;
};
size_t onnxhook_elf_mem_read(void *ctx, uint64_t off, void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
