/* SPDX-License-Identifier: MIT */
/* The ELF reader shared by the preload and the command: files and memory, both classes, notes. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include "elfread.h"
#include "unit.h"

START_TEST(test_self)
{
	struct onnxhook_elf e;
	struct onnxhook_elf_phdr ph, dyn = {0};
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	bool interp = false, libc = false;
	uint64_t strtab = 0, val, base;
	int64_t tag;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_pread, &fd), 0);
	ck_assert(e.is64 == (sizeof(void *) == 8));
	ck_assert(e.type == ET_DYN || e.type == ET_EXEC);
	ck_assert_int_gt(e.phnum, 0);
	for (unsigned i = 0; i < e.phnum; i++) {
		ck_assert(onnxhook_elf_phdr_at(&e, i, &ph));
		interp |= ph.type == PT_INTERP;
		if (ph.type == PT_DYNAMIC)
			dyn = ph;
	}
	ck_assert(interp);
	ck_assert_uint_eq(dyn.type, PT_DYNAMIC);
	for (uint64_t i = 0; onnxhook_elf_dyn(&e, &dyn, i, &tag, &val) && tag != DT_NULL; i++)
		if (tag == DT_STRTAB)
			strtab = val;
	ck_assert(onnxhook_elf_offset(&e, strtab, &base));
	for (uint64_t i = 0; onnxhook_elf_dyn(&e, &dyn, i, &tag, &val) && tag != DT_NULL; i++) {
		char name[64] = "";
		if (tag == DT_NEEDED && e.read(e.ctx, base + val, name, sizeof(name) - 1))
			libc |= !strncmp(name, "libc.so", 7);
	}
	ck_assert(libc);
	close(fd);
}
END_TEST

static int first_notes(struct dl_phdr_info *info, size_t size, void *data)
{
	char *hex = data;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type == PT_NOTE &&
		    onnxhook_elf_build_id((const void *)(info->dlpi_addr + p->p_vaddr), p->p_memsz,
					  p->p_align == 8 ? 8 : 4, hex, 129))
			break;
	}
	return 1; /* the main program only */
}

START_TEST(test_build_id)
{
	/* A note by hand: namesz 4 ("GNU"), descsz 3, type NT_GNU_BUILD_ID. */
	const uint32_t notes[] = {4, 3, NT_GNU_BUILD_ID, 0x00554e47, 0x00ab0102};
	char hex[129] = "", small[6];
	uint32_t other[5] = {4, 3, NT_GNU_ABI_TAG, 0x00554e47, 0};

	ck_assert(onnxhook_elf_build_id(notes, sizeof(notes), 4, hex, sizeof(hex)));
	ck_assert_str_eq(hex, "0201ab");
	ck_assert(!onnxhook_elf_build_id(notes, sizeof(notes), 4, small, sizeof(small)));
	ck_assert(!onnxhook_elf_build_id(notes, sizeof(notes) - 4, 4, hex, sizeof(hex)));
	ck_assert(!onnxhook_elf_build_id(other, sizeof(other), 4, hex, sizeof(hex)));
	/* The test's own, as loaded, is what readelf -n prints: 20 bytes with GNU ld's default. */
	hex[0] = '\0';
	dl_iterate_phdr(first_notes, hex);
	ck_assert_uint_eq(strlen(hex), 40);
}
END_TEST

START_TEST(test_class32_in_memory)
{
	struct {
		Elf32_Ehdr h;
		Elf32_Phdr p[2];
	} img = {0};
	struct onnxhook_elf_mem mem = {&img, sizeof(img)};
	struct onnxhook_elf e;
	struct onnxhook_elf_phdr ph;
	uint64_t off;

	memcpy(img.h.e_ident, ELFMAG, SELFMAG);
	img.h.e_ident[EI_CLASS] = ELFCLASS32;
	img.h.e_ident[EI_DATA] = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
	img.h.e_type = ET_DYN;
	img.h.e_machine = EM_386;
	img.h.e_phoff = sizeof(img.h);
	img.h.e_phentsize = sizeof(Elf32_Phdr);
	img.h.e_phnum = 3; /* one more than there is */
	img.p[0] = (Elf32_Phdr){.p_type = PT_LOAD, .p_offset = 0, .p_vaddr = 0x1000, .p_filesz = 0x200};
	img.p[1] = (Elf32_Phdr){.p_type = PT_LOAD, .p_offset = 0x200, .p_vaddr = 0x3000, .p_filesz = 0x100};
	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem), 0);
	ck_assert(!e.is64);
	ck_assert_uint_eq(e.machine, EM_386);
	ck_assert(onnxhook_elf_phdr_at(&e, 1, &ph));
	ck_assert_uint_eq(ph.vaddr, 0x3000);
	ck_assert(!onnxhook_elf_phdr_at(&e, 2, &ph)); /* past the end of memory */
	ck_assert(onnxhook_elf_offset(&e, 0x3010, &off));
	ck_assert_uint_eq(off, 0x210);
	ck_assert(!onnxhook_elf_offset(&e, 0x2000, &off));
	ck_assert(!onnxhook_elf_shdr_at(&e, 0, &(struct onnxhook_elf_shdr){0})); /* no section headers */

	img.h.e_phentsize = sizeof(Elf64_Phdr);
	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem), -ENOEXEC);
	mem.size = 8;
	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem), -EIO);
	mem = (struct onnxhook_elf_mem){"#!/bin/sh\necho not ELF, but long enough to hold a header\n", 58};
	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem), -ENOEXEC);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("elfread");
	TCase *tc = tcase_create("elfread");

	tcase_add_test(tc, test_self);
	tcase_add_test(tc, test_build_id);
	tcase_add_test(tc, test_class32_in_memory);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
