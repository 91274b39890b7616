/* SPDX-License-Identifier: MIT */
/* The x86-64 inline hooks (preload/patch-x86_64.c) on synthetic functions: what each relocated
 * prologue computes through its trampoline, what is refused, and the pages left read+execute. */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "patch-x86_64.h"
#include "unit.h"

typedef int fn(int);

static int hook_seven(int x)
{
	return 7;
}

/* A read+execute page holding code at its offsets (functions at 0x000, 0x100, …, data above). */
static uint8_t *code_page(const uint8_t *const code[], const size_t len[], size_t n)
{
	long page = sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 0xcc, (size_t)page);
	for (size_t i = 0; i < n; i++)
		memcpy(p + 0x100 * i, code[i], len[i]);
	int32_t data = 42;
	memcpy(p + 0x800, &data, 4);
	ck_assert_int_eq(mprotect(p, (size_t)page, PROT_READ | PROT_EXEC), 0);
	return p;
}

/* The protection /proc/self/maps shows for addr ("r-xp", …). */
static void prot_of(const void *addr, char prot[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long lo, hi;

	ck_assert_ptr_nonnull(f);
	strcpy(prot, "?");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, prot) == 3 && lo <= (uintptr_t)addr &&
		    (uintptr_t)addr < hi)
			break;
	fclose(f);
}

/* mov eax, [rip + (0x800 - 6)]; ret — reads the 42 stored at +0x800. */
static const uint8_t rip_load[] = {0x8b, 0x05, 0xfa, 0x07, 0x00, 0x00, 0xc3};
/* call +0x10 (helper: mov eax, 41; ret); add eax, 1; ret — 42. */
static const uint8_t call_prologue[] = {0xe8, 0x0b, 0x00, 0x00, 0x00, 0x83, 0xc0, 0x01, 0xc3,
					0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
					0xb8, 0x29, 0x00, 0x00, 0x00, 0xc3};
/* test edi, edi; je +6; mov eax, 1; ret; mov eax, 2; ret — x ? 1 : 2. */
static const uint8_t short_jcc[] = {0x85, 0xff, 0x74, 0x06, 0xb8, 0x01, 0x00, 0x00,
				    0x00, 0xc3, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xc3};
/* xor eax, eax; ret — 3 bytes. */
static const uint8_t tiny[] = {0x31, 0xc0, 0xc3};
/* xor eax, eax; L: inc eax; dec edi; jnz L; ret — x; the loop comes back to +2. */
static const uint8_t loop_back[] = {0x31, 0xc0, 0xff, 0xc0, 0xff, 0xcf, 0x75, 0xfa, 0xc3};
/* mov eax, 5; nop×3; ret (at +0x200), and a jump from +0x300 to its +2. */
static const uint8_t plain[] = {0xb8, 0x05, 0x00, 0x00, 0x00, 0x90, 0x90, 0x90, 0xc3};
static const uint8_t jump_in[] = {0xe9, 0xfd, 0xfe, 0xff, 0xff}; /* +0x300 → +0x202 */

START_TEST(test_rip_call_jcc)
{
	const uint8_t *code[] = {rip_load, call_prologue, short_jcc};
	const size_t len[] = {sizeof(rip_load), sizeof(call_prologue), sizeof(short_jcc)};
	uint8_t *page = code_page(code, len, 3);
	void *real[3] = {NULL, NULL, NULL};
	struct onnxhook_patch p[3];
	char prot[5];

	memset(p, 0, sizeof(p));
	for (int i = 0; i < 3; i++) {
		p[i].name = "f";
		p[i].entry = (uintptr_t)page + 0x100 * (unsigned)i;
		p[i].size = i == 1 ? 9 : len[i];
		p[i].hook = (const void *)hook_seven;
		p[i].real = &real[i];
	}
	/* the originals */
	ck_assert_int_eq(((fn *)(void *)page)(0), 42);
	ck_assert_int_eq(((fn *)(void *)(page + 0x100))(0), 42);
	ck_assert_int_eq(((fn *)(void *)(page + 0x200))(0), 2);
	ck_assert_int_eq(onnxhook_patch_install(p, 3, (uintptr_t)page, (uintptr_t)page + 0x300), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(p[i].why[0] == '\0', "%d: %s", i, p[i].why);
		ck_assert_ptr_eq(real[i], p[i].trampoline);
		/* the entry now reaches the hook */
		ck_assert_int_eq(((fn *)(void *)p[i].entry)(0), 7);
	}
	/* the trampolines compute what the functions did */
	ck_assert_int_eq(((fn *)real[0])(0), 42);
	ck_assert_int_eq(((fn *)real[1])(0), 42);
	ck_assert_int_eq(((fn *)real[2])(0), 2);
	ck_assert_int_eq(((fn *)real[2])(1), 1);
	/* W^X: the patched page is read+execute again, the trampolines too */
	prot_of(page, prot);
	ck_assert_str_eq(prot, "r-xp");
	prot_of(real[0], prot);
	ck_assert_str_eq(prot, "r-xp");
	/* within ±2 GiB: the entries took the 5-byte jump (the int3 fill starts right after) */
	ck_assert_uint_eq(page[0], 0xe9);
	ck_assert_uint_eq(page[0x200 + 5], 0xcc);
}
END_TEST

START_TEST(test_refused)
{
	const uint8_t *code[] = {tiny, loop_back, plain, jump_in};
	const size_t len[] = {sizeof(tiny), sizeof(loop_back), sizeof(plain), sizeof(jump_in)};
	uint8_t *page = code_page(code, len, 4);
	uint8_t before[0x400];
	void *real[3] = {NULL, NULL, NULL};
	struct onnxhook_patch p[3];

	memcpy(before, page, sizeof(before));
	memset(p, 0, sizeof(p));
	for (int i = 0; i < 3; i++) {
		p[i].name = "f";
		p[i].entry = (uintptr_t)page + 0x100 * (unsigned)i;
		p[i].size = len[i];
		p[i].hook = (const void *)hook_seven;
		p[i].real = &real[i];
	}
	ck_assert_int_eq(onnxhook_patch_install(p, 3, (uintptr_t)page, (uintptr_t)page + 0x400), 0);
	ck_assert_msg(strstr(p[0].why, "shorter than"), "%s", p[0].why);
	ck_assert_msg(strstr(p[1].why, "branches back"), "%s", p[1].why);
	ck_assert_msg(strstr(p[2].why, "branches into"), "%s", p[2].why);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_null(p[i].trampoline);
		ck_assert_ptr_null(real[i]);
	}
	/* nothing written on doubt; the functions run as before */
	ck_assert_int_eq(memcmp(before, page, sizeof(before)), 0);
	ck_assert_int_eq(((fn *)(void *)page)(5), 0);
	ck_assert_int_eq(((fn *)(void *)(page + 0x100))(3), 3);
	ck_assert_int_eq(((fn *)(void *)(page + 0x200))(0), 5);
}
END_TEST

/* The relocation alone, to addresses no trampoline could have: a far copy of a short jcc takes
 * the opposite condition over an absolute jump; a RIP-relative operand that cannot reach is
 * refused. */
START_TEST(test_relocate_far)
{
	uint8_t out[128];
	size_t covered;
	char why[160] = "";
	const uintptr_t pc = 0x400000, far = (uintptr_t)0x7f0000000000;

	ssize_t n = onnxhook_patch_relocate(short_jcc, pc, sizeof(short_jcc), 5, out, far,
					    sizeof(out), &covered, why, sizeof(why));
	ck_assert_msg(n > 0, "%s", why);
	ck_assert_uint_eq(covered, 9);
	/* test edi, edi; jne +14; jmp [rip]; .quad pc + 10; mov eax, 1; jmp [rip]; .quad pc + 9 */
	ck_assert_uint_eq(out[0], 0x85);
	ck_assert_uint_eq(out[2], 0x75);
	ck_assert_uint_eq(out[3], 14);
	ck_assert_uint_eq(out[4], 0xff);
	ck_assert_uint_eq(out[5], 0x25);
	uint64_t t;
	memcpy(&t, out + 10, 8);
	ck_assert_uint_eq(t, pc + 10);
	ck_assert_uint_eq(out[18], 0xb8);
	memcpy(&t, out + 23 + 6, 8);
	ck_assert_uint_eq(t, pc + 9);
	ck_assert_int_eq(n, 23 + 14);

	n = onnxhook_patch_relocate(rip_load, pc, sizeof(rip_load), 5, out, far, sizeof(out),
				    &covered, why, sizeof(why));
	ck_assert_int_eq(n, -1);
	ck_assert_msg(strstr(why, "RIP-relative"), "%s", why);
	/* near, the displacement is rewritten for the new place */
	n = onnxhook_patch_relocate(rip_load, pc, sizeof(rip_load), 5, out, pc + 0x1000,
				    sizeof(out), &covered, why, sizeof(why));
	ck_assert_int_eq(n, 6 + 5);
	int32_t d;
	memcpy(&d, out + 2, 4);
	ck_assert_int_eq(d, 0x7fa - 0x1000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("patch");
	TCase *tc = tcase_create("x86-64");

	tcase_add_test(tc, test_rip_call_jcc);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_relocate_far);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
