/* SPDX-License-Identifier: MIT */
/* The locator (locate.h): a reference library's functions found in another file by their code. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "elfread.h"
#include "locate.h"
#include "util.h"

/* ---- one instruction ------------------------------------------------------------------------ */

enum kind {
	K_OTHER,
	K_CALL,     /* call rel32 (or addr32 call rel32) */
	K_CALLMEM,  /* call [rip+X]: through the GOT */
	K_JMP,      /* jmp rel */
	K_JMPMEM,   /* jmp [rip+X] */
	K_JCC,      /* a conditional branch, loop, jrcxz */
	K_RET,
	K_PAD,      /* nop, int3: padding between functions */
	K_STOP,     /* ud2, hlt */
};

struct insn {
	uint64_t tok;
	uint64_t target; /* K_CALL, K_JMP, K_JCC: where it goes; K_*MEM: the slot it reads */
	uint8_t len, kind;
};


/* The decoder for 64-bit code: one per call of the API, on its stack (no shared state, so two
 * threads may locate at once). */
static bool decoder_init(ZydisDecoder *dec)
{
	return ZYAN_SUCCESS(ZydisDecoderInit(dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64));
}

/* Decodes the instruction at code (avail bytes readable there) at address ip. */
static bool decode(const ZydisDecoder *dec, const uint8_t *code, size_t avail, uint64_t ip, struct insn *out)
{
	ZydisDecodedInstruction d;
	uint8_t b[ZYDIS_MAX_INSTRUCTION_LENGTH];

	if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(dec, NULL, code, avail, &d)))
		return false;
	out->len = d.length;
	out->kind = K_OTHER;
	out->target = 0;
	memcpy(b, code, d.length);
	bool rip = (d.attributes & ZYDIS_ATTRIB_HAS_MODRM) && d.raw.modrm.mod == 0 && d.raw.modrm.rm == 5 &&
		   d.raw.disp.size == 32;
	if (rip) {
		memset(b + d.raw.disp.offset, 0, 4);
		out->target = ip + d.length + (uint64_t)d.raw.disp.value;
		/* The linker relaxes a GOT load (mov reg, [rip+GOT]) to lea reg, [rip+sym]: one token. */
		if (d.opcode_map == ZYDIS_OPCODE_MAP_DEFAULT && d.opcode == 0x8b && d.raw.modrm.offset > 0)
			b[d.raw.modrm.offset - 1] = 0x8d;
	}
	for (int i = 0; i < 2; i++) {
		if (d.raw.imm[i].size && d.raw.imm[i].is_relative) {
			memset(b + d.raw.imm[i].offset, 0, d.raw.imm[i].size / 8);
			out->target = ip + d.length + (uint64_t)d.raw.imm[i].value.s;
		}
	}
	switch (d.meta.category) {
	case ZYDIS_CATEGORY_CALL:
		out->kind = rip ? K_CALLMEM : (d.attributes & ZYDIS_ATTRIB_IS_RELATIVE) ? K_CALL : K_OTHER;
		break;
	case ZYDIS_CATEGORY_UNCOND_BR:
		out->kind = rip ? K_JMPMEM : (d.attributes & ZYDIS_ATTRIB_IS_RELATIVE) ? K_JMP : K_OTHER;
		break;
	case ZYDIS_CATEGORY_COND_BR:
		out->kind = (d.attributes & ZYDIS_ATTRIB_IS_RELATIVE) ? K_JCC : K_OTHER;
		break;
	case ZYDIS_CATEGORY_RET:
		out->kind = K_RET;
		break;
	default:
		if (d.mnemonic == ZYDIS_MNEMONIC_NOP || d.mnemonic == ZYDIS_MNEMONIC_INT3)
			out->kind = K_PAD;
		else if (d.mnemonic == ZYDIS_MNEMONIC_UD2 || d.mnemonic == ZYDIS_MNEMONIC_HLT)
			out->kind = K_STOP;
		break;
	}
	if (out->kind == K_CALL || out->kind == K_CALLMEM) {
		/* call [rip+GOT] and the addr32 call rel32 the linker relaxes it to: one token (both
		 * are 6 bytes; a PLT call is 5). */
		static const uint8_t call[] = "call";
		out->tok = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED ^ d.length, call, 4);
	} else {
		out->tok = onnxhook_hash_bytes(ONNXHOOK_HASH_SEED ^ d.length, b, d.length);
	}
	return true;
}

uint64_t onnxhook_locate_token(const uint8_t *code, size_t len, unsigned *ilen)
{
	struct insn i;
	ZydisDecoder dec;

	if (!decoder_init(&dec) || !decode(&dec, code, len, 0, &i)) {
		*ilen = 0;
		return 0;
	}
	*ilen = i.len;
	return i.tok;
}

/* ---- the files ------------------------------------------------------------------------------ */

struct region {
	uint64_t vaddr;
	const uint8_t *bytes;
	size_t len;
	bool plt; /* .plt, .plt.sec, .plt.got: stubs, not functions */
};

struct sym {
	const char *name;
	uint64_t vaddr, size;
	bool dynamic; /* from .dynsym: exported (or imported when undefined: not kept) */
};

struct rel {
	uint64_t slot; /* a GOT slot */
	const char *name;
};

struct file {
	const char *path;
	uint8_t *map;
	size_t size;
	struct onnxhook_elf elf;
	struct onnxhook_elf_mem mem; /* elf's read context: the mapping */
	const ZydisDecoder *dec;
	struct region *code;
	size_t ncode;
	struct sym *syms; /* by address */
	size_t nsyms;
	struct rel *rels; /* by slot */
	size_t nrels;
	char build_id[80];
};

static int by_vaddr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static int by_slot(const void *a, const void *b)
{
	const struct rel *x = a, *y = b;

	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static bool in_file(const struct file *f, uint64_t off, uint64_t len)
{
	return off <= f->size && len <= f->size - off;
}

/* A NUL-terminated string at off of the string table sh, or NULL. */
static const char *str_at(const struct file *f, const struct onnxhook_elf_shdr *sh, uint64_t off)
{
	if (off >= sh->size || !in_file(f, sh->offset, sh->size))
		return NULL;
	const char *s = (const char *)f->map + sh->offset + off;
	return memchr(s, '\0', sh->size - off) ? s : NULL;
}

static const struct region *region_of(const struct file *f, uint64_t vaddr)
{
	for (size_t i = 0; i < f->ncode; i++)
		if (vaddr >= f->code[i].vaddr && vaddr - f->code[i].vaddr < f->code[i].len)
			return &f->code[i];
	return NULL;
}

/* Bytes at vaddr in the file's code, and how many follow there (0: not code). */
static const uint8_t *code_at(const struct file *f, uint64_t vaddr, size_t *avail)
{
	const struct region *r = region_of(f, vaddr);

	if (!r) {
		*avail = 0;
		return NULL;
	}
	*avail = r->len - (size_t)(vaddr - r->vaddr);
	return r->bytes + (vaddr - r->vaddr);
}

static void file_close(struct file *f)
{
	if (f->map && f->map != MAP_FAILED)
		munmap(f->map, f->size);
	free(f->code);
	free(f->syms);
	free(f->rels);
	memset(f, 0, sizeof(*f));
}

static int append(void **arr, size_t *n, size_t *cap, size_t elem, const void *item)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		void *p = realloc(*arr, c * elem);
		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = c;
	}
	memcpy((char *)*arr + *n * elem, item, elem);
	(*n)++;
	return 0;
}

/* Symbols of the table sh: defined functions with a name. */
static int take_syms(struct file *f, const struct onnxhook_elf_shdr *sh, bool dynamic, size_t *cap)
{
	struct onnxhook_elf_shdr strsh;

	if (sh->entsize != sizeof(Elf64_Sym) || !in_file(f, sh->offset, sh->size) || sh->link >= f->elf.shnum ||
	    !onnxhook_elf_shdr_at(&f->elf, sh->link, &strsh) || strsh.type != SHT_STRTAB)
		return 0; /* a damaged table is no table */
	for (size_t i = 0; i < sh->size / sizeof(Elf64_Sym); i++) {
		Elf64_Sym s;
		memcpy(&s, f->map + sh->offset + i * sizeof(s), sizeof(s));
		const char *name = str_at(f, &strsh, s.st_name);
		if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF || !name || !*name)
			continue;
		struct sym y = {name, s.st_value, s.st_size, dynamic};
		if (append((void **)&f->syms, &f->nsyms, cap, sizeof(y), &y) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* GOT slots with a symbol (.rela.plt's jump slots, .rela.dyn's GLOB_DAT): calls through PLT
 * stubs and through the GOT resolve to their names. */
static int take_rels(struct file *f, const struct onnxhook_elf_shdr *sh, size_t *cap)
{
	struct onnxhook_elf_shdr symsh, strsh;

	if (sh->entsize != sizeof(Elf64_Rela) || !in_file(f, sh->offset, sh->size) || sh->link >= f->elf.shnum ||
	    !onnxhook_elf_shdr_at(&f->elf, sh->link, &symsh) || symsh.entsize != sizeof(Elf64_Sym) ||
	    !in_file(f, symsh.offset, symsh.size) || symsh.link >= f->elf.shnum ||
	    !onnxhook_elf_shdr_at(&f->elf, symsh.link, &strsh))
		return 0;
	for (size_t i = 0; i < sh->size / sizeof(Elf64_Rela); i++) {
		Elf64_Rela r;
		Elf64_Sym s;
		memcpy(&r, f->map + sh->offset + i * sizeof(r), sizeof(r));
		uint64_t k = ELF64_R_SYM(r.r_info);
		if (!k || k >= symsh.size / sizeof(Elf64_Sym))
			continue;
		memcpy(&s, f->map + symsh.offset + k * sizeof(s), sizeof(s));
		const char *name = str_at(f, &strsh, s.st_name);
		if (!name || !*name)
			continue;
		struct rel y = {r.r_offset, name};
		if (append((void **)&f->rels, &f->nrels, cap, sizeof(y), &y) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int fail(char *err, size_t errlen, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* Opens path for the locator; sorted: its symbols by address and relocations by slot (what the
 * matcher's lookups need; a key's lookups by name do not). */
static int file_open_as(struct file *f, const char *path, bool sorted, char *err, size_t errlen)
{
	struct stat st;
	struct onnxhook_elf_shdr sh, names = {0};
	size_t symcap = 0, relcap = 0, codecap = 0;
	int fd, r;

	memset(f, 0, sizeof(*f));
	f->path = path;
	/* O_NONBLOCK: a FIFO must not hang us (it is refused below). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return fail(err, errlen, r, "%s: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, S_ISDIR(st.st_mode) ? -EISDIR : -ENOEXEC, "%s: not a regular file", path);
	}
	if (st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		close(fd);
		return fail(err, errlen, -ENOEXEC, "%s: not an ELF file (%s)", path,
			    st.st_size ? "too short" : "empty");
	}
	f->size = (size_t)st.st_size;
	f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
	r = -errno;
	close(fd);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		return fail(err, errlen, r, "%s: %s", path, strerror(-r));
	}
	f->mem = (struct onnxhook_elf_mem){f->map, f->size};
	if (memcmp(f->map, ELFMAG, SELFMAG))
		return fail(err, errlen, -ENOEXEC, "%s: not an ELF file", path);
	if (onnxhook_elf_open(&f->elf, onnxhook_elf_mem_read, &f->mem) < 0)
		return fail(err, errlen, -ENOEXEC, "%s: an ELF file of another byte order or class, or damaged",
			    path);
	if (!f->elf.is64 || f->elf.machine != EM_X86_64)
		return fail(err, errlen, -ENOEXEC, "%s: an ELF file for another machine (%s, e_machine %u): the "
						   "locator reads x86-64 code only",
			    path, f->elf.is64 ? "64-bit" : "32-bit", f->elf.machine);
	const struct onnxhook_elf *e = &f->elf;
	bool have_names = e->shstrndx < e->shnum && onnxhook_elf_shdr_at(e, e->shstrndx, &names) &&
			  names.type == SHT_STRTAB;
	for (unsigned i = 0; i < e->shnum; i++) {
		if (!onnxhook_elf_shdr_at(e, i, &sh))
			break;
		if (sh.type == SHT_PROGBITS && (sh.flags & SHF_EXECINSTR) && sh.size && in_file(f, sh.offset, sh.size)) {
			const char *name = have_names ? str_at(f, &names, sh.name) : NULL;
			struct region g = {sh.addr, f->map + sh.offset, (size_t)sh.size,
					   name && !strncmp(name, ".plt", 4)};
			if ((r = append((void **)&f->code, &f->ncode, &codecap, sizeof(g), &g)) < 0)
				goto nomem;
		} else if (sh.type == SHT_SYMTAB || sh.type == SHT_DYNSYM) {
			if ((r = take_syms(f, &sh, sh.type == SHT_DYNSYM, &symcap)) < 0)
				goto nomem;
		} else if (sh.type == SHT_RELA) {
			if ((r = take_rels(f, &sh, &relcap)) < 0)
				goto nomem;
		}
	}
	/* No section headers (stripped of them): the executable segments, whole. */
	if (!f->ncode) {
		struct onnxhook_elf_phdr ph;
		for (unsigned i = 0; i < e->phnum && onnxhook_elf_phdr_at(e, i, &ph); i++) {
			if (ph.type != PT_LOAD || !(ph.flags & PF_X) || !ph.filesz || !in_file(f, ph.offset, ph.filesz))
				continue;
			struct region g = {ph.vaddr, f->map + ph.offset, (size_t)ph.filesz, false};
			if ((r = append((void **)&f->code, &f->ncode, &codecap, sizeof(g), &g)) < 0)
				goto nomem;
		}
	}
	if (!f->ncode && (!in_file(f, e->phoff, (uint64_t)e->phnum * sizeof(Elf64_Phdr)) ||
			  (e->shnum && !in_file(f, e->shoff, (uint64_t)e->shnum * sizeof(Elf64_Shdr)))))
		return fail(err, errlen, -ENOEXEC, "%s: a truncated or damaged ELF file (its headers end past it)",
			    path);
	if (!f->ncode)
		return fail(err, errlen, -ENOEXEC, "%s: no executable code (no .text)", path);
	/* The build-id, from a PT_NOTE segment. */
	struct onnxhook_elf_phdr ph;
	for (unsigned i = 0; i < e->phnum && onnxhook_elf_phdr_at(e, i, &ph); i++)
		if (ph.type == PT_NOTE && in_file(f, ph.offset, ph.filesz) &&
		    onnxhook_elf_build_id(f->map + ph.offset, (size_t)ph.filesz, ph.align == 8 ? 8 : 4, f->build_id,
					  sizeof(f->build_id)))
			break;
	if (f->nsyms && sorted)
		qsort(f->syms, f->nsyms, sizeof(*f->syms), by_vaddr);
	if (f->nrels && sorted)
		qsort(f->rels, f->nrels, sizeof(*f->rels), by_slot);
	return 0;
nomem:
	return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
}

static int file_open(struct file *f, const char *path, char *err, size_t errlen)
{
	return file_open_as(f, path, true, err, errlen);
}

/* A defined function named name: the sized one from .symtab or .dynsym. */
static const struct sym *sym_by_name(const struct file *f, const char *name, bool dynamic_only)
{
	const struct sym *best = NULL;

	for (size_t i = 0; i < f->nsyms; i++)
		if ((!dynamic_only || f->syms[i].dynamic) && !strcmp(f->syms[i].name, name) &&
		    (!best || (!best->size && f->syms[i].size)))
			best = &f->syms[i];
	return best;
}

/* A sized function starting at vaddr. */
static const struct sym *sym_at(const struct file *f, uint64_t vaddr)
{
	size_t lo = 0, hi = f->nsyms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->syms[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < f->nsyms && f->syms[lo].vaddr == vaddr; lo++)
		if (f->syms[lo].size)
			return &f->syms[lo];
	return NULL;
}

static const char *rel_name(const struct file *f, uint64_t slot)
{
	size_t lo = 0, hi = f->nrels;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->rels[mid].slot < slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->nrels && f->rels[lo].slot == slot ? f->rels[lo].name : NULL;
}

/* The import a call or jump goes to: through a PLT stub (its first indirect jump's GOT slot) or
 * through the GOT directly. NULL when it goes elsewhere, or the slot has no symbol. */
static const char *import_name(const struct file *f, const struct insn *in)
{
	if (in->kind == K_CALLMEM || in->kind == K_JMPMEM)
		return rel_name(f, in->target);
	const struct region *r = region_of(f, in->target);
	if (!r || !r->plt)
		return NULL;
	uint64_t ip = in->target;
	for (int k = 0; k < 3; k++) { /* endbr64; bnd jmp [rip+X] */
		struct insn s;
		size_t avail;
		const uint8_t *c = code_at(f, ip, &avail);
		if (!c || !decode(f->dec, c, avail, ip, &s))
			return NULL;
		if (s.kind == K_JMPMEM)
			return rel_name(f, s.target);
		ip += s.len;
	}
	return NULL;
}

/* ---- matching ------------------------------------------------------------------------------- */

struct want {
	uint64_t vaddr, size; /* in the reference */
	uint64_t *tok;
	size_t ntok;
	size_t nmatch;
	uint64_t match[2]; /* the first two places */
	size_t best;       /* the longest partial match: how many instructions, where */
	uint64_t best_at;
	bool active;
	bool later; /* active, its tokens not taken yet (the quick reject takes only its candidates') */
};

/* The reference function's tokens: false when it does not decode to exactly its size. */
static bool ref_tokens(const struct file *ref, struct want *w, char *why, size_t len)
{
	size_t avail, cap = 0;
	const uint8_t *c = code_at(ref, w->vaddr, &avail);

	if (!c || avail < w->size) {
		snprintf(why, len, "its code (0x%" PRIx64 ", %" PRIu64 " bytes) is outside the reference's code",
			 w->vaddr, w->size);
		return false;
	}
	for (uint64_t o = 0; o < w->size;) {
		struct insn in;
		if (!decode(ref->dec, c + o, (size_t)(w->size - o), w->vaddr + o, &in)) {
			snprintf(why, len, "the reference does not decode at 0x%" PRIx64, w->vaddr + o);
			return false;
		}
		if (w->ntok == cap) {
			cap = cap ? cap * 2 : 64;
			uint64_t *t = realloc(w->tok, cap * sizeof(*t));
			if (!t) {
				snprintf(why, len, "out of memory");
				return false;
			}
			w->tok = t;
		}
		w->tok[w->ntok++] = in.tok;
		o += in.len;
	}
	return w->ntok > 0;
}

/* How many of the wanted function x's instructions are at [c, c + avail) (its first decoded
 * already): all of them (x->ntok) is a whole match. */
static size_t matching(const struct file *tgt, const struct want *x, const uint8_t *c, size_t avail, uint64_t at,
		       const struct insn *first)
{
	size_t o = first->len, k;

	for (k = 1; k < x->ntok; k++) {
		struct insn in;
		if (o >= avail || !decode(tgt->dec, c + o, avail - o, at + o, &in) || in.tok != x->tok[k])
			return k;
		o += in.len;
	}
	/* (Equal tokens have equal lengths: o is x->size, unless a hash collides.) */
	return o == x->size ? k : k - 1;
}

struct first {
	uint64_t tok;
	size_t want;
};

static int by_tok(const void *a, const void *b)
{
	const struct first *x = a, *y = b;

	return x->tok < y->tok ? -1 : x->tok > y->tok;
}

/* Linear sweep of the target's code (its PLT stubs aside); at every place a function can start
 * (after padding, a return, a jump or a call; a region's start; an undecodable byte) whose
 * instruction is a wanted function's first, that function is compared whole. Nothing of the
 * sweep is kept: memory does not grow with the program. */
static int find_matches(const struct file *tgt, struct want *w, size_t n)
{
	struct first *firsts = malloc((n ? n : 1) * sizeof(*firsts));
	size_t nf = 0;

	if (!firsts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (w[i].active)
			firsts[nf++] = (struct first){w[i].tok[0], i};
	qsort(firsts, nf, sizeof(*firsts), by_tok);
	for (size_t g = 0; g < tgt->ncode && nf; g++) {
		const struct region *r = &tgt->code[g];
		bool boundary = true;
		if (r->plt)
			continue;
		for (size_t o = 0; o < r->len;) {
			struct insn in;
			if (!decode(tgt->dec, r->bytes + o, r->len - o, r->vaddr + o, &in)) {
				o++; /* data or garbage: resynchronize on the next byte */
				boundary = true;
				continue;
			}
			if (boundary) {
				struct first key = {in.tok, 0}, *f = bsearch(&key, firsts, nf, sizeof(*firsts), by_tok);
				while (f && f > firsts && f[-1].tok == in.tok)
					f--;
				for (; f && f < firsts + nf && f->tok == in.tok; f++) {
					struct want *x = &w[f->want];
					size_t k = matching(tgt, x, r->bytes + o, r->len - o, r->vaddr + o, &in);
					if (k < x->ntok) {
						if (k > x->best) /* for saying how near it came */
							x->best = k, x->best_at = r->vaddr + o;
						continue;
					}
					if (x->nmatch < 2)
						x->match[x->nmatch] = r->vaddr + o;
					x->nmatch++;
				}
			}
			boundary = in.kind == K_RET || in.kind == K_PAD || in.kind == K_STOP || in.kind == K_JMP ||
				   in.kind == K_JMPMEM || in.kind == K_CALL || in.kind == K_CALLMEM;
			o += in.len;
		}
	}
	free(firsts);
	return 0;
}

/* Code at ref_addr and tgt_addr decodes the same: n_bytes of it when known, else up to 16
 * instructions, the first return or jump, or padding. */
static bool same_code(const struct file *ref, uint64_t ref_addr, uint64_t n_bytes, const struct file *tgt,
		      uint64_t tgt_addr)
{
	size_t ra, ta;
	const uint8_t *rc = code_at(ref, ref_addr, &ra), *tc = code_at(tgt, tgt_addr, &ta);

	if (!rc || !tc)
		return false;
	uint64_t o = 0;
	for (int k = 0; n_bytes ? o < n_bytes : k < 16; k++) {
		struct insn a, b;
		if (o >= ra || o >= ta || !decode(ref->dec, rc + o, ra - (size_t)o, ref_addr + o, &a) ||
		    !decode(ref->dec, tc + o, ta - (size_t)o, tgt_addr + o, &b) || a.tok != b.tok)
			return false;
		/* Unsized: up to its end, or padding (a function can end in a call that does not
		 * return, then padding, then the next function's code). */
		if (!n_bytes && (a.kind == K_RET || a.kind == K_JMP || a.kind == K_JMPMEM || a.kind == K_STOP))
			break;
		if (!n_bytes && o + a.len < ra && o + a.len < ta) {
			struct insn next;
			if (decode(ref->dec, rc + o + a.len, ra - (size_t)(o + a.len), 0, &next) && next.kind == K_PAD)
				break;
		}
		o += a.len;
	}
	return true;
}

/* Every branch out of the match at tgt_addr goes where the reference's goes (locate.h). */
static bool consistent(const struct file *ref, const struct file *tgt, const struct want *w, size_t nw,
		       size_t self, uint64_t tgt_addr, char *why, size_t len)
{
	size_t ra, ta;
	const uint8_t *rc = code_at(ref, w[self].vaddr, &ra), *tc = code_at(tgt, tgt_addr, &ta);

	/* (The match lies whole in one region of the target: else it is no match.) */
	if (!rc || !tc || ra < w[self].size || ta < w[self].size)
		return false;
	for (uint64_t o = 0; o < w[self].size;) {
		struct insn a, b;
		if (!decode(ref->dec, rc + o, ra - (size_t)o, w[self].vaddr + o, &a) ||
		    !decode(ref->dec, tc + o, ta - (size_t)o, tgt_addr + o, &b))
			return false;
		o += a.len;
		if (a.kind != K_CALL && a.kind != K_CALLMEM && a.kind != K_JMP && a.kind != K_JMPMEM &&
		    a.kind != K_JCC)
			continue;
		uint64_t at = tgt_addr + o - a.len;
		bool mem = a.kind == K_CALLMEM || a.kind == K_JMPMEM;
		/* Inside the function: the same offset. */
		if (!mem && a.target - w[self].vaddr < w[self].size) {
			if (b.kind == K_CALLMEM || b.kind == K_JMPMEM || b.target - tgt_addr != a.target - w[self].vaddr) {
				snprintf(why, len, "its branch at 0x%" PRIx64 " goes elsewhere", at);
				return false;
			}
			continue;
		}
		/* A located function: its place. */
		bool known = false;
		for (size_t i = 0; i < nw && !mem; i++) {
			if (w[i].active && w[i].vaddr == a.target && w[i].nmatch == 1) {
				known = true;
				if (b.kind != a.kind || b.target != w[i].match[0]) {
					snprintf(why, len, "its call at 0x%" PRIx64 " misses a located callee", at);
					return false;
				}
			}
		}
		if (known)
			continue;
		const char *rname = import_name(ref, &a);
		const char *tname = b.kind == K_CALLMEM || b.kind == K_JMPMEM || region_of(tgt, b.target)
					    ? import_name(tgt, &b)
					    : NULL;
		if (rname && tname) {
			if (strcmp(rname, tname)) {
				snprintf(why, len, "its call at 0x%" PRIx64 " goes to %.24s, not %.24s", at, tname, rname);
				return false;
			}
			continue;
		}
		if (tname) {
			snprintf(why, len, "its call at 0x%" PRIx64 " goes to %.40s", at, tname);
			return false;
		}
		if (b.kind == K_CALLMEM || b.kind == K_JMPMEM)
			continue; /* through a GOT slot without a name: nothing to compare */
		/* The reference's callee by its code (an in-library function called through its PLT:
		 * its symbol), or an import whose copy the target carries (a static libc): skipped. */
		const struct sym *callee = rname ? sym_by_name(ref, rname, false) : sym_at(ref, a.target);
		if (rname && !callee)
			continue;
		uint64_t raddr = callee ? callee->vaddr : a.target;
		/* A located function reached through the reference's PLT: its place. */
		for (size_t i = 0; callee && i < nw; i++) {
			if (w[i].active && w[i].vaddr == callee->vaddr && w[i].nmatch == 1 && b.target != w[i].match[0]) {
				snprintf(why, len, "its call at 0x%" PRIx64 " misses a located callee", at);
				return false;
			}
		}
		if (!same_code(ref, raddr, callee ? callee->size : 0, tgt, b.target)) {
			snprintf(why, len, "its call at 0x%" PRIx64 " goes to other code than %.32s's", at,
				 callee ? callee->name : "the reference");
			return false;
		}
	}
	return true;
}

/* ---- the quick reject ------------------------------------------------------------------------
 * A function compiled into the target has an FDE in its .eh_frame (the unwind tables a stripped
 * program keeps) whose range is the function's size: the reference's st_size. .eh_frame_hdr's
 * search table lists every FDE by start; each FDE gives its range. Only the FDEs of a wanted
 * function's size are compared whole; when none matches, no wanted function is in the target,
 * and the whole-code sweep is not run. Anything unusual (no PT_GNU_EH_FRAME, encodings other than
 * the common ones, an offset outside the file, FDEs that cover less than half of the code: code
 * without unwind tables) answers "cannot tell", and the sweep runs as before. */

/* An object's PT_LOAD segments, each with where its bytes are: in the file's mapping (read once:
 * the FDE walk asks for bytes thousands of times), or in memory for an object already loaded. */
struct loads {
	struct {
		uint64_t vaddr, len;
		const uint8_t *bytes;
	} seg[16];
	unsigned n;
};

static void loads_of(const struct file *f, struct loads *l)
{
	struct onnxhook_elf_phdr ph;

	l->n = 0;
	for (unsigned i = 0; i < f->elf.phnum && l->n < 16 && onnxhook_elf_phdr_at(&f->elf, i, &ph); i++)
		if (ph.type == PT_LOAD && in_file(f, ph.offset, ph.filesz)) {
			l->seg[l->n].vaddr = ph.vaddr;
			l->seg[l->n].len = ph.filesz;
			l->seg[l->n++].bytes = f->map + ph.offset;
		}
}

/* Whether the n bytes at address at lie within the len bytes at lo (no sum that can wrap). */
static inline bool within(uint64_t lo, uint64_t len, uint64_t at, uint64_t n)
{
	return at >= lo && at - lo <= len && len - (at - lo) >= n;
}

/* The bytes at vaddr, len of them, from the PT_LOAD segments; NULL when not in one. */
static const uint8_t *bytes_at(const struct loads *l, uint64_t vaddr, uint64_t len)
{
	for (unsigned i = 0; i < l->n; i++)
		if (within(l->seg[i].vaddr, l->seg[i].len, vaddr, len))
			return l->seg[i].bytes + (vaddr - l->seg[i].vaddr);
	return NULL;
}

static uint32_t u32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* The size in bytes of a DW_EH_PE value format (its low nibble); 0: not handled. */
static unsigned pe_size(uint8_t enc)
{
	switch (enc & 0x0f) {
	case 0x00: /* absptr */
	case 0x04: /* udata8 */
	case 0x0c: /* sdata8 */
		return 8;
	case 0x03: /* udata4 */
	case 0x0b: /* sdata4 */
		return 4;
	case 0x02: /* udata2 */
	case 0x0a: /* sdata2 */
		return 2;
	default:
		return 0;
	}
}

static uint64_t pe_value(const uint8_t *p, uint8_t enc)
{
	switch (enc & 0x0f) {
	case 0x03:
		return u32_at(p);
	case 0x0b:
		return (uint64_t)(int64_t)(int32_t)u32_at(p);
	case 0x02: {
		uint16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	case 0x0a: {
		int16_t v;
		memcpy(&v, p, 2);
		return (uint64_t)(int64_t)v;
	}
	default: {
		uint64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	}
}

/* An unsigned LEB128 at *p (before end): false when it runs past end or is too long. */
static bool uleb(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* The FDE pointer encoding of the CIE at vaddr ('R' of its augmentation; absptr without one);
 * false when it cannot be read. */
static bool cie_encoding(const struct loads *l, uint64_t vaddr, uint8_t *enc, bool *z)
{
	const uint8_t *h = bytes_at(l, vaddr, 8);
	uint64_t v;

	if (!h)
		return false;
	uint32_t len = u32_at(h);
	if (len < 4 || len == 0xffffffffu || u32_at(h + 4) != 0 || !(h = bytes_at(l, vaddr + 4, len)))
		return false;
	const uint8_t *end = h + len, *p = h + 4;
	if (p >= end)
		return false;
	uint8_t version = *p++;
	if (version != 1 && version != 3)
		return false;
	const char *aug = (const char *)p;
	const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
	if (!nul)
		return false;
	p = nul + 1;
	if (!uleb(&p, end, &v) || !uleb(&p, end, &v)) /* code and data alignment (sleb: skipped alike) */
		return false;
	if (version == 1 ? p++ >= end : !uleb(&p, end, &v)) /* the return address register */
		return false;
	*enc = 0x00;
	*z = *aug == 'z';
	if (!*aug)
		return true;
	if (*aug != 'z' || !uleb(&p, end, &v) || v > (uint64_t)(end - p))
		return false;
	for (const char *a = aug + 1; *a; a++) {
		switch (*a) {
		case 'R':
			if (p >= end)
				return false;
			*enc = *p++;
			break;
		case 'L':
			if (p++ >= end)
				return false;
			break;
		case 'P': {
			if (p >= end)
				return false;
			unsigned n = pe_size(*p++);
			if (!n || n > (size_t)(end - p))
				return false;
			p += n;
			break;
		}
		case 'S':
		case 'B':
			break;
		default:
			return false;
		}
	}
	return true;
}

struct size_want {
	uint64_t size;
	size_t want;
};

static int by_size(const void *a, const void *b)
{
	const struct size_want *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

/* The tokens of w[i] when not taken yet; false (and w[i] no longer active, out[i] says why) when
 * the reference does not decode there. */
static bool take_tokens(const struct file *ref, struct want *w, struct onnxhook_found *out)
{
	if (!w->later)
		return w->active;
	w->later = false;
	if (!(w->active = ref_tokens(ref, w, out->why, sizeof(out->why))))
		out->status = ONNXHOOK_NO_REFERENCE;
	return w->active;
}

/* An FDE: its function's start and size, and its call-frame instructions (NULL when not
 * readable). */
struct fde {
	uint64_t start, range;
	const uint8_t *cfa;
	size_t cfa_len;
};

/* The number of entries of the .eh_frame_hdr hdr (hdr_len bytes); 0 when it is not a table of a
 * form handled: version 1; eh_frame_ptr any 4-byte form; fde_count udata4; table datarel|sdata4. */
static uint64_t fde_table(const uint8_t *hdr, uint64_t hdr_len)
{
	if (!hdr || hdr_len < 12 || hdr[0] != 1 || pe_size(hdr[1]) != 4 || hdr[2] != 0x03 || hdr[3] != 0x3b)
		return 0;
	uint64_t count = u32_at(hdr + 8);
	return count == (hdr_len - 12) / 8 ? count : 0; /* the linker's table fills the segment */
}

/* The start the table's entry e gives (a table at hdr_vaddr). */
static uint64_t fde_start(uint64_t hdr_vaddr, const uint8_t *e)
{
	return hdr_vaddr + (uint64_t)(int64_t)(int32_t)u32_at(e);
}

/* What fde_read keeps from one FDE to the next: the CIEs seen last (a library's FDEs alternate
 * between a few) and the segment of the FDEs (.eh_frame: one), so that most FDEs cost a few loads. */
struct fde_cache {
	struct {
		uint64_t at;
		uint8_t enc;
		bool z;
	} cies[8];
	unsigned ncies, next_cie;
	uint64_t seg_lo, seg_len;
	const uint8_t *seg;
};

/* The n bytes at the FDE address at, from the cached segment when they are in it. */
static const uint8_t *fde_bytes(const struct loads *l, const struct fde_cache *fc, uint64_t at, uint64_t n)
{
	return fc->seg && within(fc->seg_lo, fc->seg_len, at, n) ? fc->seg + (at - fc->seg_lo) : bytes_at(l, at, n);
}

/* The FDE of the table's entry e (a table at hdr_vaddr) into *f; false when it cannot be read, is
 * in a form not handled, or does not begin where the table says. */
static bool fde_read(const struct loads *l, struct fde_cache *fc, uint64_t hdr_vaddr, const uint8_t *e,
		     struct fde *f)
{
	uint64_t start = fde_start(hdr_vaddr, e);
	uint64_t fde = hdr_vaddr + (uint64_t)(int64_t)(int32_t)u32_at(e + 4);

	if (!fc->seg || !within(fc->seg_lo, fc->seg_len, fde, 24)) {
		fc->seg = NULL;
		for (unsigned i = 0; i < l->n && !fc->seg; i++)
			if (within(l->seg[i].vaddr, l->seg[i].len, fde, 1)) {
				fc->seg = l->seg[i].bytes;
				fc->seg_lo = l->seg[i].vaddr;
				fc->seg_len = l->seg[i].len;
			}
	}
	const uint8_t *p = fde_bytes(l, fc, fde, 8);
	if (!p)
		return false;
	uint32_t len = u32_at(p), cie_ptr = u32_at(p + 4);
	if (len < 4 || len == 0xffffffffu || cie_ptr == 0 || cie_ptr > fde + 4)
		return false;
	uint64_t cie = fde + 4 - cie_ptr;
	unsigned c = 0;
	while (c < fc->ncies && fc->cies[c].at != cie)
		c++;
	if (c == fc->ncies) {
		c = fc->ncies < 8 ? fc->ncies++ : fc->next_cie++ % 8;
		fc->cies[c].at = cie;
		if (!cie_encoding(l, cie, &fc->cies[c].enc, &fc->cies[c].z))
			return false;
	}
	uint8_t enc = fc->cies[c].enc;
	/* pc_begin (pcrel or absolute) must be the table's start; pc_range: its value form. */
	unsigned sz = pe_size(enc);
	uint8_t app = enc & 0x70;
	if (!sz || (app != 0x00 && app != 0x10) || (enc & 0x80) || len < 4 + 2 * sz)
		return false;
	if (!(p = fde_bytes(l, fc, fde + 8, 2 * sz)))
		return false;
	uint64_t begin = pe_value(p, enc) + (app == 0x10 ? fde + 8 : 0);
	if (begin != start)
		return false;
	*f = (struct fde){start, pe_value(p + sz, enc & 0x0f), NULL, 0};
	const uint8_t *whole = fde_bytes(l, fc, fde, 4 + (uint64_t)len);
	if (whole) { /* the call-frame instructions: after the augmentation data, if any */
		const uint8_t *q = whole + 8 + 2 * sz, *end = whole + 4 + len;
		uint64_t aug = 0;
		if (!fc->cies[c].z || (uleb(&q, end, &aug) && aug <= (uint64_t)(end - q))) {
			f->cfa = q + aug;
			f->cfa_len = (size_t)(end - f->cfa);
		}
	}
	return true;
}

/* The FDEs that .eh_frame_hdr (hdr: its hdr_len bytes, at hdr_vaddr) lists, in order: fn(ctx, f)
 * for each, until it returns true. 1: walked whole; 2: fn stopped it; 0: the table cannot tell (a
 * form not handled, an entry out of place or out of the segments). *covered: the ranges' sum,
 * each capped at cap. */
static int fde_walk(const struct loads *l, const uint8_t *hdr, uint64_t hdr_vaddr, uint64_t hdr_len,
		    bool (*fn)(void *ctx, const struct fde *f), void *ctx, uint64_t cap, uint64_t *covered)
{
	uint64_t count = fde_table(hdr, hdr_len), prev = 0;
	struct fde_cache fc = {.ncies = 0};

	*covered = 0;
	if (!count)
		return 0;
	for (uint64_t k = 0; k < count; k++) {
		const uint8_t *e = hdr + 12 + k * 8;
		struct fde f;
		if ((k && fde_start(hdr_vaddr, e) <= prev) || /* (a binary search table: sorted, one entry a start) */
		    !fde_read(l, &fc, hdr_vaddr, e, &f))
			return 0;
		prev = f.start;
		*covered += f.range < cap ? f.range : cap;
		if (fn(ctx, &f))
			return 2;
	}
	return 1;
}

/* The FDE of the function that starts at start, found by binary search of the table; false when
 * the table has none, or it cannot be read. */
static bool fde_of(const struct loads *l, const uint8_t *hdr, uint64_t hdr_vaddr, uint64_t hdr_len, uint64_t start,
		   struct fde *f)
{
	uint64_t count = fde_table(hdr, hdr_len), lo = 0, hi = count;
	struct fde_cache fc = {.ncies = 0};

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (fde_start(hdr_vaddr, hdr + 12 + mid * 8) < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < count && fde_start(hdr_vaddr, hdr + 12 + lo * 8) == start &&
	       fde_read(l, &fc, hdr_vaddr, hdr + 12 + lo * 8, f);
}

/* Whether some wanted function of sizes[0..ns) (sorted) has this size. */
static const struct size_want *first_of_size(const struct size_want *sizes, size_t ns, uint64_t size)
{
	struct size_want key = {size, 0};
	const struct size_want *s = bsearch(&key, sizes, ns, sizeof(*sizes), by_size);

	while (s && s > sizes && s[-1].size == size)
		s--;
	return s;
}

struct quick {
	const struct file *ref, *tgt;
	struct want *w;
	struct onnxhook_found *out;
	const struct size_want *sizes;
	size_t ns, *ncand;
};

/* An FDE of the target: true (stop) when a candidate of its size matches a wanted function whole. */
static bool quick_fde(void *ctx, const struct fde *f)
{
	struct quick *q = ctx;
	const uint64_t start = f->start, range = f->range;

	for (const struct size_want *s = first_of_size(q->sizes, q->ns, range);
	     s && s < q->sizes + q->ns && s->size == range; s++) {
		struct want *x = &q->w[s->want];
		const struct region *g = region_of(q->tgt, start);
		struct insn in;
		size_t avail;
		const uint8_t *c = code_at(q->tgt, start, &avail);
		(*q->ncand)++;
		if (!g || g->plt || !c || !decode(q->tgt->dec, c, avail, start, &in) ||
		    !take_tokens(q->ref, x, &q->out[s->want]) || in.tok != x->tok[0])
			continue;
		if (matching(q->tgt, x, c, avail, start, &in) == x->ntok)
			return true; /* a candidate matches whole: the sweep decides */
	}
	return false;
}

/* The file's .eh_frame_hdr (its PT_GNU_EH_FRAME), *vaddr and *len; NULL when it has none. */
static const uint8_t *eh_frame_hdr_of(const struct file *f, uint64_t *vaddr, uint64_t *len)
{
	struct onnxhook_elf_phdr ph;
	const uint8_t *hdr = NULL;

	*vaddr = *len = 0;
	for (unsigned i = 0; i < f->elf.phnum && onnxhook_elf_phdr_at(&f->elf, i, &ph); i++)
		if (ph.type == PT_GNU_EH_FRAME && in_file(f, ph.offset, ph.filesz)) {
			hdr = f->map + ph.offset;
			*vaddr = ph.vaddr;
			*len = ph.filesz;
		}
	return hdr;
}

/* 1: no wanted function can be in the target (*ncand FDEs of a wanted size compared); 0: one
 * may be (or the tables cannot tell): sweep; negative errno. Only the candidates' reference
 * functions are decoded (w[i].later). */
static int quick_reject(const struct file *ref, const struct file *tgt, struct want *w, size_t n,
			struct onnxhook_found *out, size_t *ncand)
{
	const uint8_t *hdr;
	uint64_t hdr_vaddr, hdr_len;

	*ncand = 0;
	hdr = eh_frame_hdr_of(tgt, &hdr_vaddr, &hdr_len);
	uint64_t code_len = 0;
	for (size_t g = 0; g < tgt->ncode; g++)
		if (!tgt->code[g].plt)
			code_len += tgt->code[g].len;

	struct size_want *sizes = malloc((n ? n : 1) * sizeof(*sizes));
	size_t ns = 0;
	if (!sizes)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (w[i].active)
			sizes[ns++] = (struct size_want){w[i].size, i};
	if (!ns) {
		free(sizes);
		return 0; /* nothing to look for: the sweep has nothing to do either */
	}
	qsort(sizes, ns, sizeof(*sizes), by_size);

	struct loads loads;
	struct quick q = {ref, tgt, w, out, sizes, ns, ncand};
	uint64_t covered;
	loads_of(tgt, &loads);
	int r = fde_walk(&loads, hdr, hdr_vaddr, hdr_len, quick_fde, &q, code_len, &covered);
	free(sizes);
	/* FDEs for less than half the code: some code has no unwind tables; they cannot tell. */
	return r == 1 && covered >= code_len / 2;
}

/* ---- loaded objects: the quick reject, in memory --------------------------------------------- */

/* A wanted function's size, first instructions' tokens and call-frame instructions' hash (cfa:
 * its FDE's in the reference; 0 when it has none). The same code compiled alike has the same
 * call-frame instructions (they say where each push and stack adjustment is): an FDE of the
 * right size with others is not that code, and its code is not read. */
#define KEY_TOKENS 8
struct key_fn {
	uint64_t size, vaddr, cfa;
	unsigned ntok;
	uint64_t tok[KEY_TOKENS];
};

/* A hash of an FDE's call-frame instructions, trailing DW_CFA_nop padding left out; never 0. */
static uint64_t cfa_hash(const struct fde *f)
{
	size_t n = f->cfa_len;
	uint64_t h = 0xcbf29ce484222325ull;

	while (n && !f->cfa[n - 1])
		n--;
	for (size_t i = 0; i < n; i++)
		h = (h ^ f->cfa[i]) * 0x100000001b3ull;
	return h | 1;
}

struct onnxhook_locate_key {
	struct key_fn *fn; /* by size */
	size_t n;
};

static int by_key_size(const void *a, const void *b)
{
	const struct key_fn *x = a, *y = b;

	return x->size < y->size ? -1 : x->size > y->size;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int onnxhook_locate_key_add(struct onnxhook_locate_key **key, const char *ref_path, const char *const *names,
			    size_t n, char *err, size_t errlen)
{
	struct file ref;
	ZydisDecoder dec;
	int r, added = 0;

	if (!*key && !(*key = calloc(1, sizeof(**key))))
		return fail(err, errlen, -ENOMEM, "out of memory");
	if (!decoder_init(&dec))
		return fail(err, errlen, -ENOSYS, "the x86-64 decoder (Zydis) does not start");
	if ((r = file_open_as(&ref, ref_path, false, err, errlen)) < 0) {
		file_close(&ref);
		return r;
	}
	struct key_fn *m = realloc((*key)->fn, ((*key)->n + n + 1) * sizeof(*m));
	if (!m) {
		file_close(&ref);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	(*key)->fn = m;
	/* Each name's symbol in one pass over the symbols (names sorted: a lookup is a few compares). */
	const struct sym **found = calloc(n ? n : 1, sizeof(*found));
	const char **sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!found || !sorted) {
		free(found);
		free(sorted);
		file_close(&ref);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	memcpy(sorted, names, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), by_name);
	for (size_t j = 0; j < ref.nsyms; j++) {
		const char *nm = ref.syms[j].name;
		const char **at = bsearch(&nm, sorted, n, sizeof(*sorted), by_name);
		const struct sym **best = at ? &found[at - sorted] : NULL;
		if (best && (!*best || (!(*best)->size && ref.syms[j].size)))
			*best = &ref.syms[j];
	}
	for (size_t i = 0; i < n; i++) {
		const char **at = bsearch(&names[i], sorted, n, sizeof(*sorted), by_name);
		const struct sym *rs = at ? found[at - sorted] : NULL;
		size_t avail;
		const uint8_t *c = rs && rs->size ? code_at(&ref, rs->vaddr, &avail) : NULL;
		if (!c || avail < rs->size)
			continue;
		struct key_fn *k = &m[(*key)->n];
		k->size = rs->size;
		k->vaddr = rs->vaddr;
		k->cfa = 0;
		k->ntok = 0;
		for (uint64_t o = 0; o < rs->size && k->ntok < KEY_TOKENS;) {
			struct insn in;
			if (!decode(&dec, c + o, (size_t)(rs->size - o), rs->vaddr + o, &in))
				break;
			k->tok[k->ntok++] = in.tok;
			o += in.len;
		}
		(*key)->n += k->ntok > 0;
		added += k->ntok > 0;
	}
	/* Their FDEs' call-frame instructions, from the reference's table. */
	struct loads loads;
	uint64_t hdr_vaddr, hdr_len;
	const uint8_t *hdr = eh_frame_hdr_of(&ref, &hdr_vaddr, &hdr_len);
	loads_of(&ref, &loads);
	for (struct key_fn *k = m + (*key)->n - added; k < m + (*key)->n; k++) {
		struct fde f;
		if (fde_of(&loads, hdr, hdr_vaddr, hdr_len, k->vaddr, &f) && f.range == k->size && f.cfa)
			k->cfa = cfa_hash(&f);
	}
	free(found);
	free(sorted);
	file_close(&ref);
	qsort((*key)->fn, (*key)->n, sizeof(*(*key)->fn), by_key_size);
	return added;
}

void onnxhook_locate_key_free(struct onnxhook_locate_key *key)
{
	if (key)
		free(key->fn);
	free(key);
}

struct in_memory {
	const struct onnxhook_locate_key *key;
	const struct loads *exec; /* the readable executable segments */
	ZydisDecoder dec;
	uint64_t sizes[64]; /* a 4096-bit filter of the key's sizes */
};

/* Whether the code at c (len bytes readable, at address vaddr) starts with key function k's first
 * instructions. */
static bool key_starts_at(const struct in_memory *m, const struct key_fn *k, const uint8_t *c,
			  uint64_t len, uint64_t vaddr)
{
	uint64_t o = 0;

	for (unsigned t = 0; t < k->ntok; t++) {
		struct insn in;
		if (o >= len || !decode(&m->dec, c + o, (size_t)(len - o), vaddr + o, &in) ||
		    in.tok != k->tok[t])
			return false;
		o += in.len;
	}
	return true;
}

/* An FDE of a loaded object: true (stop) when a wanted function of its size starts there with the
 * same instructions (or its first ones cannot be read: cannot tell). */
static bool may_be_wanted(void *ctx, const struct fde *f)
{
	const struct in_memory *m = ctx;
	const uint64_t start = f->start, range = f->range;
	struct key_fn key = {.size = range};
	uint64_t cfa = 0;

	if (!(m->sizes[(range >> 6) & 63] & (1ull << (range & 63))))
		return false;
	const struct key_fn *k = bsearch(&key, m->key->fn, m->key->n, sizeof(key), by_key_size);

	while (k && k > m->key->fn && k[-1].size == range)
		k--;
	for (; k && k < m->key->fn + m->key->n && k->size == range; k++) {
		if (k->cfa && f->cfa && (cfa ? cfa : (cfa = cfa_hash(f))) != k->cfa)
			continue;
		const uint8_t *c = bytes_at(m->exec, start, range);
		if (!c || key_starts_at(m, k, c, range, start))
			return true;
	}
	return false;
}

/* Objects whose unwind tables cannot tell (a stub library such as libpthread.so.0, code without
 * tables, code mostly without FDEs) are swept in memory when their code is this small; bigger ones
 * without a table go to their file, bigger ones with a valid table are taken at its word. */
#define SMALL_CODE (256u << 10)

/* Whether a key function's first instructions are somewhere in the executable segments, by
 * linear sweep (an instruction that does not decode: the sweep goes on at the next byte). */
static bool sweep_may_hold(const struct in_memory *m)
{
	uint64_t first[16] = {0}; /* a 1024-bit filter of the functions' first tokens */

	for (size_t i = 0; i < m->key->n; i++)
		first[(m->key->fn[i].tok[0] >> 6) & 15] |= 1ull << (m->key->fn[i].tok[0] & 63);
	for (unsigned g = 0; g < m->exec->n; g++) {
		const uint8_t *c = m->exec->seg[g].bytes;
		uint64_t len = m->exec->seg[g].len, base = m->exec->seg[g].vaddr;
		for (uint64_t o = 0; o < len;) {
			struct insn in;
			if (!decode(&m->dec, c + o, (size_t)(len - o), base + o, &in)) {
				o++;
				continue;
			}
			if (first[(in.tok >> 6) & 15] & (1ull << (in.tok & 63)))
				for (size_t i = 0; i < m->key->n; i++)
					if (key_starts_at(m, &m->key->fn[i], c + o, len - o, base + o))
						return true;
			o += in.len;
		}
	}
	return false;
}

/* The PT_LOAD segment seg of the object's file at path (the one holding .eh_frame_hdr, and
 * .eh_frame beside it), mapped privately as the one segment of *t; the mapping (*len bytes) to
 * unmap, or NULL. Only the pages read are brought in, and only into this mapping. */
static void *map_tables(const char *path, const Elf64_Phdr *seg, struct loads *t, size_t *len)
{
	struct stat st;

	if (!path || !path[0] || !seg)
		return NULL;
	uint64_t off = seg->p_offset, end = seg->p_offset + seg->p_filesz;
	uint64_t start = off & ~(uint64_t)(getauxval(AT_PAGESZ) - 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* (no wait on a FIFO) */
	if (fd < 0)
		return NULL;
	void *m = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && end <= (uint64_t)st.st_size
			  ? mmap(NULL, (size_t)(end - start), PROT_READ, MAP_PRIVATE, fd, (off_t)start)
			  : MAP_FAILED;
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	*len = (size_t)(end - start);
	t->n = 1;
	t->seg[0].vaddr = seg->p_vaddr - (off - start);
	t->seg[0].len = end - start;
	t->seg[0].bytes = m;
	return m;
}

bool onnxhook_locate_loaded_may_hold(const void *phdr, unsigned phnum, uintptr_t bias, const char *path,
				     const struct onnxhook_locate_key *key)
{
	const Elf64_Phdr *ph = phdr, *hdr_seg = NULL;
	const uint8_t *hdr = NULL;
	uint64_t hdr_vaddr = 0, hdr_len = 0, code_len = 0, covered;
	struct loads all = {.n = 0}, exec = {.n = 0};
	struct in_memory m = {key, &exec, {0}, {0}};

	if (!key || !key->n)
		return false;
	for (size_t i = 0; i < key->n; i++)
		m.sizes[(key->fn[i].size >> 6) & 63] |= 1ull << (key->fn[i].size & 63);
	if (!decoder_init(&m.dec))
		return true;
	for (unsigned i = 0; i < phnum; i++) {
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_R)) {
			if (all.n == 16)
				return true;
			all.seg[all.n].vaddr = ph[i].p_vaddr;
			all.seg[all.n].len = ph[i].p_filesz;
			all.seg[all.n].bytes = (const uint8_t *)(bias + ph[i].p_vaddr);
			if (ph[i].p_flags & PF_X)
				exec.seg[exec.n++] = all.seg[all.n];
			all.n++;
		} else if (ph[i].p_type == PT_GNU_EH_FRAME) {
			hdr_vaddr = ph[i].p_vaddr;
			hdr_len = ph[i].p_filesz;
		}
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X))
			code_len += ph[i].p_memsz;
	}
	for (unsigned i = 0; i < phnum && !hdr_seg; i++)
		if (ph[i].p_type == PT_LOAD && within(ph[i].p_vaddr, ph[i].p_filesz, hdr_vaddr, hdr_len))
			hdr_seg = &ph[i];
	/* The tables from the file: read where the program has them mapped, their pages would stay
	 * in its RSS (24 MB for a program that loads OpenCV: each page read faults in 16 around it,
	 * and so would reading the header in memory to compare it). Code is compared in memory.
	 * When the file cannot tell, memory answers. */
	int r = 0;
	if (hdr_seg) {
		struct loads tables;
		size_t map_len = 0;
		void *map = map_tables(path, hdr_seg, &tables, &map_len);
		const uint8_t *fh = map ? bytes_at(&tables, hdr_vaddr, hdr_len) : NULL;
		if (fh)
			r = fde_walk(&tables, fh, hdr_vaddr, hdr_len, may_be_wanted, &m, code_len, &covered);
		if (map)
			munmap(map, map_len);
		if (!r)
			r = fde_walk(&all, hdr = bytes_at(&all, hdr_vaddr, hdr_len), hdr_vaddr, hdr_len, may_be_wanted,
				     &m, code_len, &covered);
	}
	if (r == 2)
		return true;
	/* A valid table that covers less than half the code is a library of hand-written assembly
	 * (libx265: 15 MB of code, a third with FDEs). Where the references have FDEs for every key
	 * function, a copy compiled alike has them too: such a big object is taken at its table's
	 * word (libx265's file sweep cost 0.6 s and 75 MB at the start of every program loading it). */
	bool key_fdes = true;
	for (size_t i = 0; i < key->n; i++)
		key_fdes = key_fdes && key->fn[i].cfa;
	if (r == 1 && (covered >= code_len / 2 || (code_len > SMALL_CODE && key_fdes)))
		return false;
	if (code_len > SMALL_CODE)
		return true;
	return sweep_may_hold(&m);
}

static void set(struct onnxhook_found *o, enum onnxhook_found_status st, uint64_t vaddr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set(struct onnxhook_found *o, enum onnxhook_found_status st, uint64_t vaddr, const char *fmt, ...)
{
	va_list ap;

	o->status = st;
	o->vaddr = vaddr;
	va_start(ap, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, ap);
	va_end(ap);
}

/* The matcher over two opened files; w[i] with active set are looked for. */
static int match_files(const struct file *ref, const struct file *tgt, struct want *w, size_t n,
		       struct onnxhook_found *out)
{
	int r = find_matches(tgt, w, n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (!w[i].active)
			continue;
		out[i].size = w[i].size;
		if (w[i].nmatch == 0 && w[i].best)
			set(&out[i], ONNXHOOK_NOT_FOUND, 0, "at best %zu of its %zu instructions match (at 0x%" PRIx64 ")",
			    w[i].best, w[i].ntok, w[i].best_at);
		else if (w[i].nmatch == 0)
			set(&out[i], ONNXHOOK_NOT_FOUND, 0, "no function starts like it (%zu instructions)", w[i].ntok);
		else if (w[i].nmatch > 1)
			set(&out[i], ONNXHOOK_AMBIGUOUS, 0, "%zu places match: 0x%" PRIx64 ", 0x%" PRIx64 "%s",
			    w[i].nmatch, w[i].match[0], w[i].match[1], w[i].nmatch > 2 ? ", ..." : "");
	}
	/* After every match is known: a call to a located callee must reach its place. */
	for (size_t i = 0; i < n; i++) {
		if (!w[i].active || w[i].nmatch != 1)
			continue;
		char why[sizeof(out[i].why)];
		if (consistent(ref, tgt, w, n, i, w[i].match[0], why, sizeof(why)))
			set(&out[i], ONNXHOOK_FOUND, w[i].match[0], "%zu instructions", w[i].ntok);
		else
			set(&out[i], ONNXHOOK_INCONSISTENT, 0, "matched at 0x%" PRIx64 ", but %s", w[i].match[0], why);
	}
	return 0;
}

/* ---- the cache ------------------------------------------------------------------------------
 * One file per (reference, target) pair of build-ids, "<dir>/locate-<ref id>-<target id>":
 *   onnxhook-locate <CACHE_VERSION>
 *   <status> <vaddr hex> <size> <name> <why...>
 * A FOUND entry read back is verified again (the whole function compared at its place), so a
 * damaged or forged cache can make a lookup slow, never wrong: it is then ignored. */

#define CACHE_VERSION 1 /* bump when the matching changes */

static bool cache_path(const struct file *ref, const struct file *tgt, char *path, size_t len, size_t *dirlen)
{
	const char *xdg = secure_getenv("XDG_CACHE_HOME"), *home = secure_getenv("HOME");
	int n;

	if (!ref->build_id[0] || !tgt->build_id[0])
		return false;
	if (xdg && xdg[0] == '/')
		n = snprintf(path, len, "%s/onnxhook", xdg);
	else if (home && home[0] == '/')
		n = snprintf(path, len, "%s/.cache/onnxhook", home);
	else
		return false;
	if (n <= 0 || (size_t)n >= len)
		return false;
	*dirlen = (size_t)n;
	n = snprintf(path + n, len - (size_t)n, "/locate-%s-%s", ref->build_id, tgt->build_id);
	return n > 0 && (size_t)n < len - *dirlen;
}

static bool cacheable(const char *name)
{
	return *name && !strpbrk(name, " \t\n\r") && strlen(name) < 256;
}

/* The cached results for all of names: true when every one is there (and a FOUND one still
 * matches at its place). */
static bool cache_get(const struct file *ref, const struct file *tgt, const char *const *names, size_t n,
		      struct onnxhook_found *out)
{
	char path[4096], *buf = NULL;
	size_t dirlen, got = 0;
	struct stat st;
	bool ok = false;
	int fd;

	if (!cache_path(ref, tgt, path, sizeof(path), &dirlen) || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (1 << 22) ||
	    !(buf = malloc((size_t)st.st_size + 1)) || read(fd, buf, (size_t)st.st_size) != st.st_size)
		goto out;
	buf[st.st_size] = '\0';
	char *line = buf, *next;
	unsigned version;
	if (sscanf(line, "onnxhook-locate %u", &version) != 1 || version != CACHE_VERSION)
		goto out;
	for (size_t i = 0; i < n; i++)
		out[i].why[0] = '\1'; /* not seen yet */
	for (line = strchr(line, '\n'); line; line = next) {
		*line++ = '\0';
		if ((next = strchr(line, '\n')))
			*next = '\0';
		unsigned status;
		uint64_t vaddr, size;
		int name_at, name_end, why_at;
		if (!*line)
			continue;
		if (sscanf(line, "%u %" SCNx64 " %" SCNu64 " %n%*s%n %n", &status, &vaddr, &size, &name_at, &name_end,
			   &why_at) != 3 || status >= ONNXHOOK_FOUND_STATUS_COUNT)
			goto out;
		line[name_end] = '\0';
		for (size_t i = 0; i < n; i++) {
			if (out[i].why[0] != '\1' || strcmp(names[i], line + name_at))
				continue;
			out[i].status = status;
			out[i].vaddr = vaddr;
			out[i].size = size;
			snprintf(out[i].why, sizeof(out[i].why), "%s", line + why_at);
			got++;
			if (status == ONNXHOOK_FOUND) {
				const struct sym *rs = sym_by_name(ref, names[i], false);
				if (!rs || rs->size != size || !same_code(ref, rs->vaddr, size, tgt, vaddr))
					goto out;
			}
		}
		if (next)
			*next = '\n';
	}
	ok = got == n;
out:
	free(buf);
	close(fd);
	return ok;
}

static void cache_put(const struct file *ref, const struct file *tgt, const struct onnxhook_found *out, size_t n)
{
	char path[4096], tmp[4200];
	size_t dirlen, len = 0, cap = 64 + n * (300 + sizeof(out->why));
	char *buf;

	if (!cache_path(ref, tgt, path, sizeof(path), &dirlen) || !(buf = malloc(cap)))
		return;
	len += (size_t)snprintf(buf, cap, "onnxhook-locate %u\n", CACHE_VERSION);
	for (size_t i = 0; i < n; i++) {
		if (!cacheable(out[i].name) || strchr(out[i].why, '\n'))
			goto out;
		len += (size_t)snprintf(buf + len, cap - len, "%u %" PRIx64 " %" PRIu64 " %s %s\n", out[i].status,
					out[i].vaddr, out[i].size, out[i].name, out[i].why);
	}
	/* ~/.cache, then ~/.cache/onnxhook, private (what a user ran is nobody else's business). */
	path[dirlen] = '\0';
	char *slash = strrchr(path, '/');
	if (slash && slash != path) {
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
	}
	mkdir(path, 0700);
	path[dirlen] = '/';
	struct onnxhook_bytes b = {buf, len};
	if (onnxhook_write_temp(path, onnxhook_write_bytes, &b, tmp, sizeof(tmp)) == 0 && rename(tmp, path) < 0)
		unlink(tmp);
out:
	free(buf);
}

const char *onnxhook_found_status_name(enum onnxhook_found_status status)
{
	static const char *const names[] = {
		[ONNXHOOK_FOUND] = "found",
		[ONNXHOOK_EXPORTED] = "exported",
		[ONNXHOOK_NOT_FOUND] = "not found",
		[ONNXHOOK_AMBIGUOUS] = "ambiguous",
		[ONNXHOOK_INCONSISTENT] = "inconsistent",
		[ONNXHOOK_NO_REFERENCE] = "no reference",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == ONNXHOOK_FOUND_STATUS_COUNT, "one name per status");

	return (unsigned)status < ONNXHOOK_FOUND_STATUS_COUNT ? names[status] : "?";
}

static void free_wants(struct want *w, size_t n)
{
	for (size_t i = 0; w && i < n; i++)
		free(w[i].tok);
	free(w);
}

int onnxhook_locate_code(const uint8_t *ref, uint64_t ref_base, size_t ref_len, const uint8_t *target,
			 uint64_t target_base, size_t target_len, const struct onnxhook_locate_func *ref_funcs,
			 size_t n, struct onnxhook_found *out)
{
	struct region rr = {ref_base, ref, ref_len, false}, tr = {target_base, target, target_len, false};
	ZydisDecoder dec;
	struct file rf = {.code = &rr, .ncode = 1, .dec = &dec}, tf = {.code = &tr, .ncode = 1, .dec = &dec};
	struct want *w;
	int r;

	if (!decoder_init(&dec))
		return -ENOSYS;
	if (!(w = calloc(n ? n : 1, sizeof(*w))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		w[i].vaddr = ref_funcs[i].vaddr;
		w[i].size = ref_funcs[i].size;
		out[i].size = w[i].size;
		out[i].vaddr = 0;
		if (!w[i].size)
			set(&out[i], ONNXHOOK_NO_REFERENCE, 0, "size 0");
		else
			w[i].active = ref_tokens(&rf, &w[i], out[i].why, sizeof(out[i].why));
		if (w[i].size && !w[i].active)
			out[i].status = ONNXHOOK_NO_REFERENCE;
	}
	r = match_files(&rf, &tf, w, n, out);
	free_wants(w, n);
	return r;
}

int onnxhook_locate_check(const char *path, char *err, size_t errlen)
{
	struct file f;
	int r = file_open(&f, path, err, errlen);

	file_close(&f);
	return r;
}

int onnxhook_locate(const char *ref_path, const char *target_path, const char *const *names, size_t n,
		    unsigned flags, struct onnxhook_found *out, char *err, size_t errlen)
{
	return onnxhook_locate_ex(ref_path, target_path, names, n, flags, out, NULL, err, errlen);
}

int onnxhook_locate_ex(const char *ref_path, const char *target_path, const char *const *names, size_t n,
		       unsigned flags, struct onnxhook_found *out, struct onnxhook_locate_how *how, char *err,
		       size_t errlen)
{
	struct file ref, tgt;
	struct want *w = NULL;
	struct onnxhook_locate_how ignored;
	int r;

	if (!how)
		how = &ignored;
	*how = (struct onnxhook_locate_how){ONNXHOOK_LOCATE_BY_SWEEP, 0};

	ZydisDecoder dec;

	if (errlen)
		err[0] = '\0';
	if (!decoder_init(&dec))
		return fail(err, errlen, -ENOSYS, "the x86-64 decoder (Zydis) does not start");
	if ((r = file_open(&ref, ref_path, err, errlen)) < 0) {
		file_close(&ref);
		return r;
	}
	if ((r = file_open(&tgt, target_path, err, errlen)) < 0)
		goto out;
	ref.dec = tgt.dec = &dec;
	for (size_t i = 0; i < n; i++)
		out[i] = (struct onnxhook_found){.name = names[i], .status = ONNXHOOK_NOT_FOUND};
	if (!(flags & ONNXHOOK_LOCATE_NO_CACHE) && cache_get(&ref, &tgt, names, n, out)) {
		how->by = ONNXHOOK_LOCATE_BY_CACHE;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (struct onnxhook_found){.name = names[i], .status = ONNXHOOK_NOT_FOUND};
	if (!(w = calloc(n ? n : 1, sizeof(*w)))) {
		r = fail(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sym *rs = sym_by_name(&ref, names[i], false);
		const struct sym *ts = sym_by_name(&tgt, names[i], true);
		if (!rs || !rs->size) {
			set(&out[i], ONNXHOOK_NO_REFERENCE, 0, "%s has no %s", ref_path,
			    rs ? "size for it" : "function of that name");
			continue;
		}
		out[i].size = rs->size;
		if (ts) {
			out[i].size = ts->size;
			set(&out[i], ONNXHOOK_EXPORTED, ts->vaddr, "exported by %s", target_path);
			continue;
		}
		w[i].vaddr = rs->vaddr;
		w[i].size = rs->size;
		w[i].active = w[i].later = true;
		if (flags & ONNXHOOK_LOCATE_NO_QUICK)
			take_tokens(&ref, &w[i], &out[i]);
	}
	if (!(flags & ONNXHOOK_LOCATE_NO_QUICK)) {
		if ((r = quick_reject(&ref, &tgt, w, n, out, &how->candidates)) < 0) {
			fail(err, errlen, r, "%s: %s", target_path, strerror(-r));
			goto out;
		}
		if (r == 1) {
			const char *base = strrchr(target_path, '/');
			base = base ? base + 1 : target_path;
			for (size_t i = 0; i < n; i++)
				if (w[i].active) {
					out[i].size = w[i].size;
					set(&out[i], ONNXHOOK_NOT_FOUND, 0,
					    "no function of %.40s has its size (%" PRIu64 " bytes) and code", base,
					    w[i].size);
				}
			how->by = ONNXHOOK_LOCATE_BY_QUICK_REJECT;
			r = 0;
			goto out; /* (not cached: as quick to find again) */
		}
		for (size_t i = 0; i < n; i++) /* the sweep: every reference function's tokens */
			take_tokens(&ref, &w[i], &out[i]);
	}
	if ((r = match_files(&ref, &tgt, w, n, out)) < 0) {
		fail(err, errlen, r, "%s: %s", target_path, strerror(-r));
		goto out;
	}
	if (!(flags & ONNXHOOK_LOCATE_NO_CACHE))
		cache_put(&ref, &tgt, out, n);
out:
	free_wants(w, n);
	file_close(&ref);
	file_close(&tgt);
	return r;
}
