/* SPDX-License-Identifier: MIT */
/* The locator (src/locate.h): instruction tokens, the matcher on synthetic code, files it must
 * refuse in one line, damaged files it must survive, the results cache, and the real cases: the
 * static resnet18 demo against libtinynn.so, /usr/bin/darknet against libdarknet.so. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "darknet-hooks.h"
#include "elfread.h"
#include "locate.h"
#include "tinynn-hooks.h"
#include "unit.h"

#define NAME(symbol, ...) #symbol,
static const char *const tinynn_names[] = {TINYNN_HOOKS(NAME)};
static const char *const darknet_names[] = {DARKNET_SYMBOLS(NAME)};
#define N_TINYNN (sizeof(tinynn_names) / sizeof(tinynn_names[0]))
#define N_DARKNET (sizeof(darknet_names) / sizeof(darknet_names[0]))

static uint64_t tok(const uint8_t *code, size_t len, unsigned want_len)
{
	unsigned ilen = 99;
	uint64_t t = onnxhook_locate_token(code, len, &ilen);

	ck_assert_uint_eq(ilen, want_len);
	return t;
}
#define TOK(want_len, ...) tok((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), want_len)

START_TEST(test_tokens)
{
	/* Relative targets are masked: calls and jumps anywhere are one token. */
	ck_assert_uint_eq(TOK(5, 0xe8, 0, 0, 0, 0), TOK(5, 0xe8, 0x10, 0x20, 0x30, 0x40));
	ck_assert_uint_eq(TOK(2, 0x74, 0x02), TOK(2, 0x74, 0x7f));
	ck_assert_uint_ne(TOK(2, 0x74, 0x02), TOK(2, 0x75, 0x02)); /* jz, jnz */
	/* A call through the GOT and the addr32 call the linker relaxes it to. */
	ck_assert_uint_eq(TOK(6, 0xff, 0x15, 1, 2, 3, 4), TOK(6, 0x67, 0xe8, 5, 6, 7, 8));
	/* A GOT load and the lea it is relaxed to; RIP-relative displacements masked. */
	ck_assert_uint_eq(TOK(7, 0x48, 0x8b, 0x05, 1, 0, 0, 0), TOK(7, 0x48, 0x8d, 0x05, 9, 9, 0, 0));
	ck_assert_uint_ne(TOK(7, 0x48, 0x8b, 0x05, 1, 0, 0, 0), TOK(7, 0x48, 0x8b, 0x0d, 1, 0, 0, 0)); /* rcx */
	/* Immediates and other displacements are kept. */
	ck_assert_uint_ne(TOK(5, 0xb8, 1, 0, 0, 0), TOK(5, 0xb8, 2, 0, 0, 0));
	ck_assert_uint_ne(TOK(4, 0x48, 0x8b, 0x43, 0x08), TOK(4, 0x48, 0x8b, 0x43, 0x10));
	/* Not an instruction in 64-bit mode; cut short. */
	TOK(0, 0x06);
	TOK(0, 0xe8, 0, 0);
}
END_TEST

/* Synthetic code. f: push rbp; mov ebp, 1; test ebp, ebp; jz +2; xor eax, eax; call g; pop rbp;
 * ret. g: mov eax, 7; mov rax, [rip+X]; ret. h: g with 8 for 7. */
static const uint8_t f_code[] = {0x55, 0xbd, 1, 0, 0, 0, 0x85, 0xed, 0x74, 0x02, 0x31, 0xc0,
				 0xe8, 0, 0, 0, 0, 0x5d, 0xc3};
enum { F_JZ = 8, F_CALL = 12 };
static const uint8_t g_code[] = {0xb8, 7, 0, 0, 0, 0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0xc3};
static const uint8_t g_lea[] = {0xb8, 7, 0, 0, 0, 0x48, 0x8d, 0x05, 0x44, 0x33, 0, 0, 0xc3};
static const uint8_t h_code[] = {0xb8, 8, 0, 0, 0, 0x48, 0x8b, 0x05, 0x10, 0, 0, 0, 0xc3};

enum { REF = 0x1000, F = 0x1000, G = 0x1020, H = 0x1040, TGT = 0x400000 };
static uint8_t ref[0x60], tgt[0x200];

static void put(uint8_t *buf, uint64_t base, uint64_t at, const uint8_t *code, size_t n)
{
	memcpy(buf + (at - base), code, n);
}

/* f at `at` calling `callee` (a call's rel32 is relative to its end). */
static void put_f(uint8_t *buf, uint64_t base, uint64_t at, uint64_t callee)
{
	int32_t rel = (int32_t)(callee - (at + F_CALL + 5));

	put(buf, base, at, f_code, sizeof(f_code));
	memcpy(buf + (at - base) + F_CALL + 1, &rel, 4);
}

static void make_ref(void)
{
	memset(ref, 0xcc, sizeof(ref));
	put_f(ref, REF, F, G);
	put(ref, REF, G, g_code, sizeof(g_code));
	put(ref, REF, H, h_code, sizeof(h_code));
}

static const struct onnxhook_locate_func funcs[] = {
	{F, sizeof(f_code)}, {G, sizeof(g_code)}, {H, sizeof(h_code)}};

static void locate_in(struct onnxhook_found out[3], size_t tgt_len)
{
	memset(out, 0, 3 * sizeof(*out));
	ck_assert_int_eq(onnxhook_locate_code(ref, REF, sizeof(ref), tgt, TGT, tgt_len, funcs, 3, out), 0);
}

static void locate_synthetic(struct onnxhook_found out[3])
{
	locate_in(out, sizeof(tgt));
}

static void target_good(void)
{
	memset(tgt, 0x90, sizeof(tgt));
	put(tgt, TGT, TGT + 0x10, g_lea, sizeof(g_lea));
	put(tgt, TGT, TGT + 0x40, h_code, sizeof(h_code));
	put_f(tgt, TGT, TGT + 0x80, TGT + 0x10);
}

START_TEST(test_match_synthetic)
{
	struct onnxhook_found out[3];

	make_ref();
	target_good();
	locate_synthetic(out);
	ck_assert_int_eq(out[0].status, ONNXHOOK_FOUND);
	ck_assert_uint_eq(out[0].vaddr, TGT + 0x80);
	ck_assert_uint_eq(out[0].size, sizeof(f_code));
	ck_assert_int_eq(out[1].status, ONNXHOOK_FOUND); /* g's GOT load is a lea there */
	ck_assert_uint_eq(out[1].vaddr, TGT + 0x10);
	ck_assert_int_eq(out[2].status, ONNXHOOK_FOUND); /* h differs from g in one immediate */
	ck_assert_uint_eq(out[2].vaddr, TGT + 0x40);

	/* Missing: h gone. */
	memset(tgt + 0x40, 0x90, sizeof(h_code));
	locate_synthetic(out);
	ck_assert_int_eq(out[2].status, ONNXHOOK_NOT_FOUND);
	ck_assert_str_eq(out[2].why, "no function starts like it (3 instructions)");
	ck_assert_int_eq(out[0].status, ONNXHOOK_FOUND);

	/* Twice: ambiguous, nothing to patch. */
	target_good();
	put_f(tgt, TGT, TGT + 0xc0, TGT + 0x10);
	locate_synthetic(out);
	ck_assert_int_eq(out[0].status, ONNXHOOK_AMBIGUOUS);
	ck_assert_uint_eq(out[0].vaddr, 0);
	ck_assert_ptr_nonnull(strstr(out[0].why, "2 places"));

	/* f's call goes to h's copy, not to g's (located): inconsistent. */
	target_good();
	put_f(tgt, TGT, TGT + 0x80, TGT + 0x40);
	locate_synthetic(out);
	ck_assert_int_eq(out[0].status, ONNXHOOK_INCONSISTENT);
	ck_assert_uint_eq(out[0].vaddr, 0);
	ck_assert_int_eq(out[1].status, ONNXHOOK_FOUND);

	/* f's jz lands elsewhere inside f: inconsistent. */
	target_good();
	tgt[0x80 + F_JZ + 1] = 0;
	locate_synthetic(out);
	ck_assert_int_eq(out[0].status, ONNXHOOK_INCONSISTENT);
	ck_assert_ptr_nonnull(strstr(out[0].why, "branch"));

	/* f right after an instruction that falls through into it: inside another function. */
	target_good();
	put(tgt, TGT, TGT + 0x80 - 5, (const uint8_t[]){0xb8, 1, 0, 0, 0}, 5);
	locate_synthetic(out);
	ck_assert_int_eq(out[0].status, ONNXHOOK_NOT_FOUND);

	/* f cut short by the end of the code (its ret is past it). */
	target_good();
	put_f(tgt, TGT, TGT + sizeof(tgt) - sizeof(f_code), TGT + 0x10);
	memset(tgt + 0x80, 0x90, sizeof(f_code));
	locate_in(out, sizeof(tgt));
	ck_assert_int_eq(out[0].status, ONNXHOOK_FOUND);
	locate_in(out, sizeof(tgt) - 1);
	ck_assert_int_eq(out[0].status, ONNXHOOK_NOT_FOUND);
	ck_assert_str_eq(out[0].why, "at best 7 of its 8 instructions match (at 0x4001ed)");
}
END_TEST

START_TEST(test_bad_reference_functions)
{
	struct onnxhook_found out[3];
	const struct onnxhook_locate_func bad[] = {
		{F, 0},          /* no size */
		{F, 3},          /* cuts mov ebp, 1 */
		{0x9000, 16}};   /* outside the code */

	make_ref();
	target_good();
	ck_assert_int_eq(onnxhook_locate_code(ref, REF, sizeof(ref), tgt, TGT, sizeof(tgt), bad, 3, out), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(out[i].status, ONNXHOOK_NO_REFERENCE);
		ck_assert_uint_gt(strlen(out[i].why), 0);
	}
	ck_assert_str_eq(onnxhook_found_status_name(ONNXHOOK_AMBIGUOUS), "ambiguous");
}
END_TEST

/* ---- files -------------------------------------------------------------------------------- */

static char dir[256];

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	uint8_t *p = malloc((size_t)st.st_size);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

/* A refused file: a negative errno and one line naming it. */
static void refused(const char *path, int want, const char *says)
{
	struct onnxhook_found out[N_TINYNN];
	char err[256] = "";
	int r = onnxhook_locate(TINYNN_REFERENCE, path, tinynn_names, N_TINYNN, ONNXHOOK_LOCATE_NO_CACHE, out, err,
				sizeof(err));

	ck_assert_int_eq(r, want);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_msg(strstr(err, says), "%s: '%s' lacks '%s'", path, err, says);
	ck_assert_ptr_null(strchr(err, '\n'));
	/* As the reference too. */
	err[0] = '\0';
	ck_assert_int_eq(onnxhook_locate(path, TINYNN_STATIC, tinynn_names, N_TINYNN, ONNXHOOK_LOCATE_NO_CACHE, out,
					 err, sizeof(err)),
			 want);
	ck_assert_ptr_nonnull(strstr(err, path));
	ck_assert_int_eq(onnxhook_locate_check(path, err, sizeof(err)), want);
}

START_TEST(test_refused_files)
{
	char path[512];
	size_t len;
	uint8_t *self = read_file(TINYNN_STATIC, &len);

	unit_tmpdir(dir, sizeof(dir), "locate");
	snprintf(path, sizeof(path), "%s/missing", dir);
	refused(path, -ENOENT, "No such file");
	refused(dir, -EISDIR, "not a regular file");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	refused(path, -ENOEXEC, "not a regular file"); /* and no hang */
	snprintf(path, sizeof(path), "%s/empty", dir);
	write_file(path, "", 0);
	refused(path, -ENOEXEC, "empty");
	snprintf(path, sizeof(path), "%s/script", dir);
	const char script[] = "#!/bin/sh\necho this is a shell script and no ELF file at all\n";
	write_file(path, script, sizeof(script) - 1);
	refused(path, -ENOEXEC, "not an ELF file");
	/* Headers only: no section or segment fits. */
	snprintf(path, sizeof(path), "%s/truncated", dir);
	write_file(path, self, 100);
	refused(path, -ENOEXEC, "truncated");
	/* Another machine: aarch64, and a 32-bit i386 header. */
	snprintf(path, sizeof(path), "%s/aarch64", dir);
	uint16_t machine = EM_AARCH64;
	memcpy(self + offsetof(Elf64_Ehdr, e_machine), &machine, 2);
	write_file(path, self, len);
	refused(path, -ENOEXEC, "another machine");
	Elf32_Ehdr h32 = {.e_type = ET_EXEC, .e_machine = EM_386, .e_ehsize = sizeof(h32),
			  .e_phentsize = sizeof(Elf32_Phdr)};
	memcpy(h32.e_ident, ELFMAG, SELFMAG);
	h32.e_ident[EI_CLASS] = ELFCLASS32;
	h32.e_ident[EI_DATA] = ELFDATA2LSB;
	uint8_t img[256] = {0};
	memcpy(img, &h32, sizeof(h32));
	snprintf(path, sizeof(path), "%s/i386", dir);
	write_file(path, img, sizeof(img));
	refused(path, -ENOEXEC, "32-bit");
	free(self);
	unit_tmpdir_remove(dir);
}
END_TEST

/* Damaged copies of the static demo and of its reference: any answer, never a crash. */
START_TEST(test_damaged_files)
{
	char path[512], err[256];
	size_t tlen, rlen;
	uint8_t *target = read_file(TINYNN_STATIC, &tlen), *reference = read_file(TINYNN_REFERENCE, &rlen);
	struct onnxhook_found out[N_TINYNN];
	unsigned seed = 1;

	unit_tmpdir(dir, sizeof(dir), "locate");
	snprintf(path, sizeof(path), "%s/damaged", dir);
	for (int round = 0; round < 120; round++) {
		bool as_ref = round & 1;
		size_t len = as_ref ? rlen : tlen;
		uint8_t *copy = malloc(len);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, as_ref ? reference : target, len);
		/* A few bytes anywhere, a few in the headers (the first 4 KiB, and the section
		 * headers at the end), sometimes cut short. */
		for (int k = 0; k < 8; k++) {
			size_t at = (size_t)rand_r(&seed) % (k < 3 ? len : k < 6 ? 4096 : 2048);
			if (k >= 6)
				at = len - 1 - at;
			copy[at] = (uint8_t)rand_r(&seed);
		}
		if (round % 5 == 0)
			len = (size_t)rand_r(&seed) % len;
		if (round % 7 == 0) /* garbage with the magic */
			for (size_t i = SELFMAG; i < len; i++)
				copy[i] = (uint8_t)rand_r(&seed);
		write_file(path, copy, len);
		int r = as_ref ? onnxhook_locate(path, TINYNN_STATIC, tinynn_names, N_TINYNN, ONNXHOOK_LOCATE_NO_CACHE, out,
						 err, sizeof(err))
			       : onnxhook_locate(TINYNN_REFERENCE, path, tinynn_names, N_TINYNN,
						 ONNXHOOK_LOCATE_NO_CACHE, out, err, sizeof(err));
		if (r < 0)
			ck_assert_uint_gt(strlen(err), 0);
		for (size_t i = 0; r == 0 && i < N_TINYNN; i++)
			ck_assert_int_lt(out[i].status, ONNXHOOK_FOUND_STATUS_COUNT);
		free(copy);
	}
	free(target);
	free(reference);
	unit_tmpdir_remove(dir);
}
END_TEST

static void all_found(const struct onnxhook_found *out, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(out[i].name, names[i]);
		ck_assert_msg(out[i].status == ONNXHOOK_FOUND, "%s: %s: %s", names[i],
			      onnxhook_found_status_name(out[i].status), out[i].why);
		ck_assert_uint_ne(out[i].vaddr, 0);
		for (size_t j = 0; j < i; j++)
			ck_assert_uint_ne(out[i].vaddr, out[j].vaddr);
	}
}

/* resnet18 with tinynn's objects linked in, stripped; libtinynn.so the reference. */
START_TEST(test_tinynn_static)
{
	struct onnxhook_found out[N_TINYNN];
	char err[256];

	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN,
					 ONNXHOOK_LOCATE_NO_CACHE, out, err, sizeof(err)),
			 0);
	all_found(out, tinynn_names, N_TINYNN);
	/* In the reference itself they are exported: nothing to find by code. */
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_REFERENCE, tinynn_names, N_TINYNN,
					 ONNXHOOK_LOCATE_NO_CACHE, out, err, sizeof(err)),
			 0);
	for (size_t i = 0; i < N_TINYNN; i++)
		ck_assert_int_eq(out[i].status, ONNXHOOK_EXPORTED);
	/* A program of other code: nothing. */
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, "/bin/true", tinynn_names, N_TINYNN,
					 ONNXHOOK_LOCATE_NO_CACHE, out, err, sizeof(err)),
			 0);
	for (size_t i = 0; i < N_TINYNN; i++)
		ck_assert_int_eq(out[i].status, ONNXHOOK_NOT_FOUND);
	/* A name the reference does not have. */
	const char *other[] = {"tnn_no_such_function"};
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, other, 1, ONNXHOOK_LOCATE_NO_CACHE, out, err,
					 sizeof(err)),
			 0);
	ck_assert_int_eq(out[0].status, ONNXHOOK_NO_REFERENCE);
}
END_TEST

/* The PT_GNU_EH_FRAME program header of the ELF image copy (its index), or -1. */
static int eh_frame_phdr(const uint8_t *copy, size_t len, struct onnxhook_elf_phdr *ph)
{
	struct onnxhook_elf e;
	struct onnxhook_elf_mem mem = {copy, len};

	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem), 0);
	for (unsigned i = 0; i < e.phnum && onnxhook_elf_phdr_at(&e, i, ph); i++)
		if (ph->type == PT_GNU_EH_FRAME)
			return (int)i;
	return -1;
}

/* locate_ex of the tinynn reference's functions in target: how it decided; all NOT_FOUND or all FOUND. */
static enum onnxhook_locate_by tinynn_in(const char *target, enum onnxhook_found_status want, unsigned flags,
					 struct onnxhook_found *out)
{
	struct onnxhook_locate_how how;
	char err[256];

	ck_assert_int_eq(onnxhook_locate_ex(TINYNN_REFERENCE, target, tinynn_names, N_TINYNN,
					    ONNXHOOK_LOCATE_NO_CACHE | flags, out, &how, err, sizeof(err)),
			 0);
	if (want == ONNXHOOK_FOUND)
		all_found(out, tinynn_names, N_TINYNN);
	for (size_t i = 0; i < N_TINYNN; i++)
		ck_assert_msg(out[i].status == want, "%s in %s: %s: %s", tinynn_names[i], target,
			      onnxhook_found_status_name(out[i].status), out[i].why);
	return how.by;
}

/* The quick reject (.eh_frame_hdr's FDEs): programs of other code answered without the sweep;
 * programs with the host's code, without .eh_frame_hdr or with a damaged one swept, same answers. */
START_TEST(test_quick_reject)
{
	struct onnxhook_found out[N_TINYNN], swept[N_TINYNN];
	struct onnxhook_locate_how how;
	struct onnxhook_elf_phdr ph;
	char err[256], path[512];
	size_t len;

	/* Other code: rejected quickly, the same statuses as the sweep's. */
	const char *others[] = {"/bin/true", "/usr/bin/python3"};
	for (size_t k = 0; k < 2; k++) {
		ck_assert_int_eq(tinynn_in(others[k], ONNXHOOK_NOT_FOUND, 0, out), ONNXHOOK_LOCATE_BY_QUICK_REJECT);
		ck_assert_msg(strstr(out[0].why, "no function of ") && strstr(out[0].why, "has its size ("),
			      "%s", out[0].why);
		ck_assert_int_eq(tinynn_in(others[k], ONNXHOOK_NOT_FOUND, ONNXHOOK_LOCATE_NO_QUICK, swept),
				 ONNXHOOK_LOCATE_BY_SWEEP);
	}
	/* The host's code in the program: the candidates match, the sweep decides (all found). */
	ck_assert_int_eq(onnxhook_locate_ex(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN,
					    ONNXHOOK_LOCATE_NO_CACHE, out, &how, err, sizeof(err)),
			 0);
	all_found(out, tinynn_names, N_TINYNN);
	ck_assert_int_eq(how.by, ONNXHOOK_LOCATE_BY_SWEEP);
	ck_assert_uint_gt(how.candidates, 0);
	ck_assert_int_eq(tinynn_in(TINYNN_STATIC, ONNXHOOK_FOUND, ONNXHOOK_LOCATE_NO_QUICK, swept),
			 ONNXHOOK_LOCATE_BY_SWEEP);
	for (size_t i = 0; i < N_TINYNN; i++)
		ck_assert_uint_eq(out[i].vaddr, swept[i].vaddr);

	unit_tmpdir(dir, sizeof(dir), "locate");
	snprintf(path, sizeof(path), "%s/program", dir);
	/* No PT_GNU_EH_FRAME (made PT_NULL): the sweep, in /bin/true and in the static demo. */
	const char *progs[] = {"/bin/true", TINYNN_STATIC};
	for (size_t k = 0; k < 2; k++) {
		uint8_t *copy = read_file(progs[k], &len);
		int at = eh_frame_phdr(copy, len, &ph);
		ck_assert_int_ge(at, 0);
		Elf64_Ehdr eh;
		memcpy(&eh, copy, sizeof(eh));
		Elf64_Word null = PT_NULL;
		memcpy(copy + eh.e_phoff + (size_t)at * eh.e_phentsize + offsetof(Elf64_Phdr, p_type), &null,
		       sizeof(null));
		write_file(path, copy, len);
		free(copy);
		ck_assert_int_eq(tinynn_in(path, k ? ONNXHOOK_FOUND : ONNXHOOK_NOT_FOUND, 0, out), ONNXHOOK_LOCATE_BY_SWEEP);
	}
	/* A damaged .eh_frame_hdr or .eh_frame (a byte of it, or of the FDEs after it): never a
	 * crash, never a wrong reject; the demo keeps all its functions. */
	uint8_t *orig = read_file(TINYNN_STATIC, &len);
	ck_assert_int_ge(eh_frame_phdr(orig, len, &ph), 0);
	ck_assert(ph.offset + ph.filesz <= len);
	unsigned seed = 7;
	for (int round = 0; round < 48; round++) {
		uint8_t *copy = malloc(len);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, orig, len);
		uint64_t span = round < 32 ? ph.filesz : 256; /* the table, then the .eh_frame after it */
		size_t at = (size_t)(ph.offset + (round < 32 ? 0 : ph.filesz) + (uint64_t)rand_r(&seed) % span);
		if (at < len)
			copy[at] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		write_file(path, copy, len);
		free(copy);
		if (round < 32) {
			tinynn_in(path, ONNXHOOK_FOUND, 0, out);
		} else { /* .eh_frame damaged: a CIE or an FDE's size may lie; answers stay valid */
			ck_assert_int_eq(onnxhook_locate_ex(TINYNN_REFERENCE, path, tinynn_names, N_TINYNN,
							    ONNXHOOK_LOCATE_NO_CACHE, out, &how, err, sizeof(err)),
					 0);
			for (size_t i = 0; i < N_TINYNN; i++)
				ck_assert_int_lt(out[i].status, ONNXHOOK_FOUND_STATUS_COUNT);
		}
	}
	/* An FDE pointer that wraps past the top of the address space (the second entry's: the first
	 * left its segment cached): the table cannot tell, the sweep finds them all. */
	ck_assert_uint_lt(ph.vaddr, 1u << 30);
	int32_t wrap = -(int32_t)ph.vaddr - 8;
	memcpy(orig + ph.offset + 12 + 8 + 4, &wrap, sizeof(wrap));
	write_file(path, orig, len);
	ck_assert_int_eq(tinynn_in(path, ONNXHOOK_FOUND, 0, out), ONNXHOOK_LOCATE_BY_SWEEP);
	free(orig);
	unit_tmpdir_remove(dir);
#ifdef HAVE_DARKNET
	/* Debian's /usr/bin/darknet: swept, all found; python3 rejected for darknet too. */
	struct onnxhook_found dn[N_DARKNET];
	ck_assert_int_eq(onnxhook_locate_ex(DARKNET_REFERENCE, "/usr/bin/darknet", darknet_names, N_DARKNET,
					    ONNXHOOK_LOCATE_NO_CACHE, dn, &how, err, sizeof(err)),
			 0);
	all_found(dn, darknet_names, N_DARKNET);
	ck_assert_int_eq(how.by, ONNXHOOK_LOCATE_BY_SWEEP);
	ck_assert_uint_gt(how.candidates, 0);
	ck_assert_int_eq(onnxhook_locate_ex(DARKNET_REFERENCE, "/usr/bin/python3", darknet_names, N_DARKNET,
					    ONNXHOOK_LOCATE_NO_CACHE, dn, &how, err, sizeof(err)),
			 0);
	ck_assert_int_eq(how.by, ONNXHOOK_LOCATE_BY_QUICK_REJECT);
	for (size_t i = 0; i < N_DARKNET; i++)
		ck_assert_int_eq(dn[i].status, ONNXHOOK_NOT_FOUND);
#endif
}
END_TEST

static size_t count_files(const char *path)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) = 1", path);
	return system(cmd) == 0 ? 1 : 0;
}

/* The in-memory reject of loaded objects: this test's own libraries (libc, Zydis, check: no
 * tinynn code) are rejected; the vendor library carrying tinynn unexported, once loaded, may
 * hold it; a key from no reference rejects everything; a library whose tables cannot tell (a
 * stub, or tables dropped) is swept in memory when small. */
struct vendor_phdr {
	uintptr_t bias;
	const ElfW(Phdr) * phdr;
	unsigned n;
};

static int find_vendor_phdr(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct vendor_phdr *f = arg;

	(void)size;
	if (info->dlpi_addr != f->bias || !info->dlpi_name || !strstr(info->dlpi_name, "libresnet18-vendor"))
		return 0;
	f->phdr = info->dlpi_phdr;
	f->n = info->dlpi_phnum;
	return 1;
}

struct loaded_probe {
	const struct onnxhook_locate_key *key;
	const char *want; /* the object expected to hold the key's functions */
	unsigned objects, held, want_held;
	bool from_file; /* the unwind tables read from the objects' files, not their mappings */
};

static int probe_loaded(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct loaded_probe *p = arg;
	bool may = onnxhook_locate_loaded_may_hold(info->dlpi_phdr, info->dlpi_phnum, info->dlpi_addr,
						   p->from_file ? info->dlpi_name : NULL, p->key);

	(void)size;
	p->objects++;
	if (p->want && info->dlpi_name && strstr(info->dlpi_name, p->want))
		p->want_held += may;
	else if (may && info->dlpi_name && strstr(info->dlpi_name, "libc.so"))
		ck_abort_msg("libc may hold tinynn's functions");
	else
		p->held += may;
	return 0;
}

START_TEST(test_loaded_objects)
{
	struct onnxhook_locate_key *key = NULL;
	char err[256];

	ck_assert_int_eq(onnxhook_locate_key_add(&key, TINYNN_REFERENCE, tinynn_names, N_TINYNN, err, sizeof(err)),
			 N_TINYNN);
	ck_assert_int_lt(onnxhook_locate_key_add(&key, "/nonexistent/libx.so", tinynn_names, N_TINYNN, err,
						 sizeof(err)),
			 0);
	ck_assert_msg(strstr(err, "/nonexistent/libx.so"), "%s", err);
	struct loaded_probe p = {key, NULL, 0, 0, 0, true};
	dl_iterate_phdr(probe_loaded, &p);
	ck_assert_uint_gt(p.objects, 2);
	ck_assert_uint_eq(p.held, 0);

	void *vendor = dlopen(TINYNN_VENDOR, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(vendor, "%s", dlerror());
	/* The same answers with the tables read from memory and from the files. */
	for (int from_file = 0; from_file < 2; from_file++) {
		p = (struct loaded_probe){key, "libresnet18-vendor.so", 0, 0, 0, from_file};
		dl_iterate_phdr(probe_loaded, &p);
		ck_assert_uint_eq(p.want_held, 1);
		ck_assert_uint_eq(p.held, 0);
	}

	/* No functions in the key (names the reference lacks): nothing may hold them. */
	struct onnxhook_locate_key *none = NULL;
	const char *absent[] = {"no_such_function"};
	ck_assert_int_eq(onnxhook_locate_key_add(&none, TINYNN_REFERENCE, absent, 1, err, sizeof(err)), 0);
	p = (struct loaded_probe){none, "libresnet18-vendor.so", 0, 0, 0, true};
	dl_iterate_phdr(probe_loaded, &p);
	ck_assert_uint_eq(p.want_held + p.held, 0);
	ck_assert(!onnxhook_locate_loaded_may_hold(NULL, 0, 0, NULL, NULL));
	onnxhook_locate_key_free(none);

	/* Tables that cannot tell: the vendor library's headers without PT_GNU_EH_FRAME are swept in
	 * memory (its code is small), and the sweep still finds tinynn's first instructions. */
	struct link_map *lm = NULL;
	ck_assert_int_eq(dlinfo(vendor, RTLD_DI_LINKMAP, &lm), 0);
	struct vendor_phdr f = {lm->l_addr, NULL, 0};
	ck_assert_int_eq(dl_iterate_phdr(find_vendor_phdr, &f), 1);
	ElfW(Phdr) copy[32];
	unsigned n = 0;
	for (unsigned i = 0; i < f.n && n < 32; i++)
		if (f.phdr[i].p_type != PT_GNU_EH_FRAME)
			copy[n++] = f.phdr[i];
	ck_assert(onnxhook_locate_loaded_may_hold(copy, n, f.bias, NULL, key));
	dlclose(vendor);
	onnxhook_locate_key_free(key);
}
END_TEST

START_TEST(test_cache)
{
	struct onnxhook_found out[N_TINYNN], again[N_TINYNN];
	char err[256], cache[512], cmd[1200];

	unit_tmpdir(dir, sizeof(dir), "locate");
	ck_assert_int_eq(setenv("XDG_CACHE_HOME", dir, 1), 0);
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN, 0, out, err,
					 sizeof(err)),
			 0);
	all_found(out, tinynn_names, N_TINYNN);
	snprintf(cache, sizeof(cache), "%s/onnxhook", dir);
	ck_assert_uint_eq(count_files(cache), 1);
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN, 0, again, err,
					 sizeof(err)),
			 0);
	for (size_t i = 0; i < N_TINYNN; i++) {
		ck_assert_uint_eq(again[i].vaddr, out[i].vaddr);
		ck_assert_str_eq(again[i].why, out[i].why);
	}
	/* A forged place (another function's) is verified and ignored; then garbage. */
	snprintf(cmd, sizeof(cmd), "sed -i '2s/^0 [0-9a-f]* /0 %llx /' %s/locate-*", (unsigned long long)out[2].vaddr,
		 cache);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN, 0, again, err,
					 sizeof(err)),
			 0);
	for (size_t i = 0; i < N_TINYNN; i++)
		ck_assert_uint_eq(again[i].vaddr, out[i].vaddr);
	snprintf(cmd, sizeof(cmd), "for f in %s/locate-*; do head -c 300 /dev/urandom > $f; done", cache);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN, 0, again, err,
					 sizeof(err)),
			 0);
	all_found(again, tinynn_names, N_TINYNN);
	/* Unwritable: no cache, same answer. */
	ck_assert_int_eq(setenv("XDG_CACHE_HOME", "/proc/no-such-dir", 1), 0);
	ck_assert_int_eq(onnxhook_locate(TINYNN_REFERENCE, TINYNN_STATIC, tinynn_names, N_TINYNN, 0, again, err,
					 sizeof(err)),
			 0);
	all_found(again, tinynn_names, N_TINYNN);
	unsetenv("XDG_CACHE_HOME");
	unit_tmpdir_remove(dir);
}
END_TEST

#ifdef HAVE_DARKNET
/* Debian's stripped /usr/bin/darknet against its libdarknet.so: every hooked function once. */
START_TEST(test_darknet)
{
	struct onnxhook_found out[N_DARKNET];
	char err[256], path[512];

	ck_assert_int_eq(onnxhook_locate(DARKNET_REFERENCE, "/usr/bin/darknet", darknet_names, N_DARKNET,
					 ONNXHOOK_LOCATE_NO_CACHE, out, err, sizeof(err)),
			 0);
	all_found(out, darknet_names, N_DARKNET);

	/* A copy whose forward_convolutional_layer calls elsewhere: that one is inconsistent. */
	size_t len, conv = 0;
	uint8_t *copy = read_file("/usr/bin/darknet", &len);
	while (strcmp(darknet_names[conv], "forward_convolutional_layer"))
		conv++;
	struct onnxhook_elf e;
	struct onnxhook_elf_mem mem = {copy, len};
	uint64_t off;
	ck_assert_int_eq(onnxhook_elf_open(&e, onnxhook_elf_mem_read, &mem), 0);
	ck_assert(onnxhook_elf_offset(&e, out[conv].vaddr, &off));
	bool patched = false;
	for (uint64_t o = 0; o < out[conv].size && !patched;) {
		unsigned ilen;
		onnxhook_locate_token(copy + off + o, out[conv].size - o, &ilen);
		ck_assert_uint_gt(ilen, 0);
		if (ilen == 5 && copy[off + o] == 0xe8) {
			int32_t rel;
			memcpy(&rel, copy + off + o + 1, 4);
			rel += 0x40;
			memcpy(copy + off + o + 1, &rel, 4);
			patched = true;
		}
		o += ilen;
	}
	ck_assert(patched);
	/* And forward_softmax_layer's sixth instruction made nops: a partial match, not found. */
	size_t softmax = 0;
	while (strcmp(darknet_names[softmax], "forward_softmax_layer"))
		softmax++;
	ck_assert(onnxhook_elf_offset(&e, out[softmax].vaddr, &off));
	for (int k = 0; k < 6; k++) {
		unsigned ilen;
		onnxhook_locate_token(copy + off, 16, &ilen);
		ck_assert_uint_gt(ilen, 0);
		if (k == 5)
			memset(copy + off, 0x90, ilen);
		off += ilen;
	}
	unit_tmpdir(dir, sizeof(dir), "locate");
	snprintf(path, sizeof(path), "%s/darknet", dir);
	write_file(path, copy, len);
	free(copy);
	ck_assert_int_eq(onnxhook_locate(DARKNET_REFERENCE, path, darknet_names, N_DARKNET, ONNXHOOK_LOCATE_NO_CACHE,
					 out, err, sizeof(err)),
			 0);
	for (size_t i = 0; i < N_DARKNET; i++)
		ck_assert_msg(out[i].status == (i == conv	 ? ONNXHOOK_INCONSISTENT
						: i == softmax ? ONNXHOOK_NOT_FOUND
							       : ONNXHOOK_FOUND),
			      "%s: %s", darknet_names[i], out[i].why);
	ck_assert_msg(!strncmp(out[softmax].why, "at best ", 8), "%s", out[softmax].why);
	ck_assert_ptr_nonnull(strstr(out[conv].why, "call"));
	unit_tmpdir_remove(dir);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("locate");
	TCase *tc = tcase_create("locate");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_tokens);
	tcase_add_test(tc, test_match_synthetic);
	tcase_add_test(tc, test_bad_reference_functions);
	tcase_add_test(tc, test_refused_files);
	tcase_add_test(tc, test_damaged_files);
	tcase_add_test(tc, test_tinynn_static);
	tcase_add_test(tc, test_cache);
	tcase_add_test(tc, test_quick_reject);
	tcase_add_test(tc, test_loaded_objects);
#ifdef HAVE_DARKNET
	tcase_add_test(tc, test_darknet);
#endif
	suite_add_tcase(s, tc);
	return unit_run(s);
}
