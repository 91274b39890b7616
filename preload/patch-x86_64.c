/* SPDX-License-Identifier: MIT */
/* x86-64 inline hooks (patch-x86_64.h): Zydis decodes the instructions moved to a trampoline. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "patch-x86_64.h"

/* Bytes of trampoline memory per entry: the thunk to the hook, then the relocated instructions
 * (at most need + 14 bytes of them, each short jump grown to its rel32 or absolute form) and
 * the jump back. */
#define SLOT 160
#define THUNK 16

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static bool fits32(int64_t v)
{
	return v >= INT32_MIN && v <= INT32_MAX;
}

static void put32(uint8_t *p, int32_t v)
{
	memcpy(p, &v, 4);
}

/* jmp [rip+0]; .quad to */
static size_t jump_abs(uint8_t *p, uintptr_t to)
{
	p[0] = 0xff, p[1] = 0x25;
	put32(p + 2, 0);
	memcpy(p + 6, &to, 8);
	return ONNXHOOK_PATCH_FAR;
}

/* A jump from at to to: rel32 when it reaches, else absolute. */
static size_t jump(uint8_t *p, uintptr_t at, uintptr_t to)
{
	int64_t d = (int64_t)(to - (at + 5));

	if (!fits32(d))
		return jump_abs(p, to);
	p[0] = 0xe9;
	put32(p + 1, (int32_t)d);
	return 5;
}

static bool decoder(ZydisDecoder *d)
{
	return ZYAN_SUCCESS(ZydisDecoderInit(d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64));
}

/* What a relative branch is: its kind decides how it moves. */
enum branch { NOT_BRANCH, BR_JMP, BR_JCC, BR_CALL, BR_OTHER };

static enum branch branch_kind(const ZydisDecodedInstruction *in, uintptr_t pc, uintptr_t *target)
{
	for (int i = 0; i < 2; i++) {
		if (!in->raw.imm[i].is_relative)
			continue;
		*target = pc + in->length + (uintptr_t)in->raw.imm[i].value.s;
		if (in->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT) {
			if (in->opcode == 0xe8)
				return BR_CALL;
			if (in->opcode == 0xe9 || in->opcode == 0xeb)
				return BR_JMP;
			if (in->opcode >= 0x70 && in->opcode <= 0x7f)
				return BR_JCC;
		} else if (in->opcode_map == ZYDIS_OPCODE_MAP_0F && in->opcode >= 0x80 &&
			   in->opcode <= 0x8f) {
			return BR_JCC;
		}
		return BR_OTHER; /* loop, jrcxz, xbegin */
	}
	return NOT_BRANCH;
}

/* A memory operand addressed from the next instruction's address (mod 00, r/m 101). */
static bool rip_relative(const ZydisDecodedInstruction *in)
{
	return (in->attributes & ZYDIS_ATTRIB_HAS_MODRM) && in->raw.modrm.mod == 0 &&
	       in->raw.modrm.rm == 5 && in->raw.disp.size == 32;
}

static bool decode(const ZydisDecoder *d, const uint8_t *code, size_t left, ZydisDecodedInstruction *in)
{
	return ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(d, NULL, code, left, in));
}

/* A branch of the function into (pc, pc + covered), or a jump to pc (a loop that would run
 * the hook on every turn), found by decoding it whole. */
static bool branches_back(const ZydisDecoder *d, const uint8_t *code, uintptr_t pc, size_t size,
			  size_t covered, char *why, size_t whylen)
{
	ZydisDecodedInstruction in;
	uintptr_t t;

	for (size_t off = 0; off < size;) {
		if (!decode(d, code + off, size - off, &in)) {
			say(why, whylen, "undecodable bytes at +%zu", off);
			return true;
		}
		enum branch k = branch_kind(&in, pc + off, &t);
		if (k != NOT_BRANCH && t >= pc && t < pc + covered && (t > pc || k != BR_CALL)) {
			say(why, whylen, "the instruction at +%zu branches back into the first %zu bytes "
			    "(to +%" PRIuPTR ")", off, covered, t - pc);
			return true;
		}
		off += in.length;
	}
	return false;
}

ssize_t onnxhook_patch_relocate(const uint8_t *code, uintptr_t pc, size_t size, size_t need,
				uint8_t *out, uintptr_t out_pc, size_t cap, size_t *covered, char *why,
				size_t whylen)
{
	ZydisDecoder d;
	ZydisDecodedInstruction in;
	size_t off = 0, o = 0;

	*covered = 0;
	if (!decoder(&d)) {
		say(why, whylen, "no x86-64 decoder");
		return -1;
	}
	if (size < need) {
		say(why, whylen, "%zu bytes long, shorter than the %zu-byte jump", size, need);
		return -1;
	}
	while (off < need) {
		uintptr_t at = pc + off, t = 0;
		if (!decode(&d, code + off, size - off, &in)) {
			say(why, whylen, "undecodable instruction at +%zu", off);
			return -1;
		}
		if (o + in.length + 16 + ONNXHOOK_PATCH_FAR > cap) {
			say(why, whylen, "relocated prologue too long");
			return -1;
		}
		uintptr_t here = out_pc + o;
		switch (branch_kind(&in, at, &t)) {
		case BR_JMP:
			o += jump(out + o, here, t);
			break;
		case BR_JCC: {
			uint8_t cc = in.opcode & 0x0f;
			int64_t disp = (int64_t)(t - (here + 6));
			if (fits32(disp)) { /* jcc rel32 */
				out[o] = 0x0f, out[o + 1] = (uint8_t)(0x80 | cc);
				put32(out + o + 2, (int32_t)disp);
				o += 6;
			} else { /* the opposite condition jumps over an absolute jump */
				out[o] = (uint8_t)(0x70 | (cc ^ 1)), out[o + 1] = ONNXHOOK_PATCH_FAR;
				o += 2;
				o += jump_abs(out + o, t);
			}
			break;
		}
		case BR_CALL: {
			int64_t disp = (int64_t)(t - (here + 5));
			if (!fits32(disp)) {
				say(why, whylen, "the call at +%zu cannot reach its target from the trampoline", off);
				return -1;
			}
			out[o] = 0xe8;
			put32(out + o + 1, (int32_t)disp);
			o += 5;
			break;
		}
		case BR_OTHER:
			say(why, whylen, "cannot move the relative branch at +%zu (loop, jrcxz or xbegin)", off);
			return -1;
		case NOT_BRANCH:
			memcpy(out + o, code + off, in.length);
			if (rip_relative(&in)) {
				int64_t target = (int64_t)(at + in.length) + in.raw.disp.value;
				int64_t disp = target - (int64_t)(here + in.length);
				if (in.address_width != 64 || !fits32(disp)) {
					say(why, whylen, "the RIP-relative operand at +%zu cannot reach its "
					    "target from the trampoline", off);
					return -1;
				}
				put32(out + o + in.raw.disp.offset, (int32_t)disp);
			}
			o += in.length;
			break;
		}
		off += in.length;
	}
	if (branches_back(&d, code, pc, size, off, why, whylen))
		return -1;
	o += jump(out + o, out_pc + o, pc + off);
	*covered = off;
	return (ssize_t)o;
}

/* ---- memory near the code ------------------------------------------------------------------- */

struct mapping {
	uintptr_t lo, hi;
	char prot[5];
};

/* /proc/self/maps, read whole (no stdio: the constructor runs before the program's main). */
static size_t read_maps(struct mapping **out)
{
	size_t cap = 1 << 16, len = 0, n = 0;
	char *buf = malloc(cap);
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t r;

	*out = NULL;
	if (!buf || fd < 0)
		goto out;
	while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (len + 1 == cap) {
			char *b = realloc(buf, cap * 2);
			if (!b)
				goto out;
			buf = b, cap *= 2;
		}
	}
	buf[len] = '\0';
	size_t lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	*out = calloc(lines + 1, sizeof(**out));
	if (!*out)
		goto out;
	for (char *p = buf; *p && n <= lines;) {
		struct mapping *m = &(*out)[n];
		char *e;
		m->lo = strtoull(p, &e, 16);
		if (*e == '-')
			m->hi = strtoull(e + 1, &e, 16);
		if (*e == ' ') {
			memcpy(m->prot, e + 1, 4);
			n++;
		}
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return n;
}

/* len bytes of fresh read+write memory whose every byte is within ±2 GiB (less a margin) of
 * every byte of [lo, hi), or NULL. */
static void *alloc_near(const struct mapping *m, size_t n, uintptr_t lo, uintptr_t hi, size_t len)
{
	const uintptr_t reach = ((uintptr_t)1 << 31) - (1 << 20), floor = 1 << 16;
	uintptr_t best = 0, best_dist = UINTPTR_MAX;

	for (size_t i = 0; i <= n; i++) {
		uintptr_t g0 = i ? m[i - 1].hi : floor, g1 = i < n ? m[i].lo : (uintptr_t)1 << 47;
		if (g0 < floor)
			g0 = floor;
		if (g1 <= g0 || g1 - g0 < len)
			continue;
		uintptr_t a = g1 <= lo ? g1 - len : g0; /* the end of the gap nearest the code */
		uintptr_t dist = a + len <= lo ? hi - a : a >= hi ? a + len - lo : hi - lo;
		if (dist < reach && dist < best_dist)
			best = a, best_dist = dist;
	}
	if (!best)
		return NULL;
	void *p = mmap((void *)best, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if ((uintptr_t)p != best) { /* a kernel without MAP_FIXED_NOREPLACE took it as a hint */
		munmap(p, len);
		return NULL;
	}
	return p;
}

/* ---- installing ------------------------------------------------------------------------------ */

struct plan {
	struct onnxhook_patch *p;
	size_t covered;
	uint8_t jump[ONNXHOOK_PATCH_FAR + 16];
};

static int by_entry(const void *a, const void *b)
{
	const struct plan *x = a, *y = b;

	return x->p->entry < y->p->entry ? -1 : x->p->entry > y->p->entry;
}

/* The mapping holding [lo, hi) whole, if it is read+execute code. */
static bool is_code(const struct mapping *m, size_t n, uintptr_t lo, uintptr_t hi)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].lo <= lo && hi <= m[i].hi)
			return !memcmp(m[i].prot, "r-x", 3);
	return false;
}

/* Relative branches anywhere in [lo, hi) that land in the bytes a plan overwrites (past their
 * first byte: calls of the entry are what we divert): those plans are refused. */
static void scan_text(struct plan *pl, size_t n, uintptr_t lo, uintptr_t hi)
{
	ZydisDecoder d;
	ZydisDecodedInstruction in;
	uintptr_t t;

	if (!n || !decoder(&d))
		return;
	for (uintptr_t pc = lo; pc < hi;) {
		if (!decode(&d, (const uint8_t *)pc, hi - pc, &in)) {
			pc++;
			continue;
		}
		enum branch k = branch_kind(&in, pc, &t);
		pc += in.length;
		if (k == NOT_BRANCH || t < pl[0].p->entry)
			continue;
		/* the last plan starting at or before t */
		size_t a = 0, b = n;
		while (b - a > 1) {
			size_t mid = (a + b) / 2;
			if (pl[mid].p->entry <= t)
				a = mid;
			else
				b = mid;
		}
		struct onnxhook_patch *p = pl[a].p;
		if (pl[a].covered && t > p->entry && t < p->entry + pl[a].covered) {
			say(p->why, sizeof(p->why), "code at %#" PRIxPTR " branches into its first %zu bytes",
			    pc - in.length, pl[a].covered);
			pl[a].covered = 0;
		}
	}
}

int onnxhook_patch_install(struct onnxhook_patch *p, size_t n, uintptr_t text_lo, uintptr_t text_hi)
{
	struct mapping *maps = NULL;
	struct plan *pl = calloc(n ? n : 1, sizeof(*pl));
	size_t n_maps = read_maps(&maps), live = 0;
	uint8_t *block = NULL;
	size_t block_len = 0;
	int r = 0, done = 0;

	for (size_t i = 0; i < n; i++) {
		p[i].trampoline = NULL;
		p[i].why[0] = '\0';
	}
	if (!pl || !n_maps) {
		for (size_t i = 0; i < n; i++)
			say(p[i].why, sizeof(p[i].why), "out of memory");
		r = -ENOMEM;
		goto out;
	}
	/* The trampolines and thunks: one block near all the entries, else a block anywhere
	 * (then the entries take the 14-byte absolute jump). */
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (size_t i = 0; i < n; i++) {
		lo = p[i].entry < lo ? p[i].entry : lo;
		hi = p[i].entry + p[i].size > hi ? p[i].entry + p[i].size : hi;
	}
	long page = sysconf(_SC_PAGESIZE);
	block_len = (n * SLOT + (size_t)page - 1) & ~((size_t)page - 1);
	bool near = true;
	block = alloc_near(maps, n_maps, lo, hi, block_len);
	if (!block) {
		near = false;
		block = mmap(NULL, block_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (block == MAP_FAILED) {
			block = NULL;
			r = -errno;
			for (size_t i = 0; i < n; i++)
				say(p[i].why, sizeof(p[i].why), "no memory for its trampoline");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct plan *q = &pl[i];
		uint8_t *slot = block + i * SLOT;
		size_t need = near ? ONNXHOOK_PATCH_NEAR : ONNXHOOK_PATCH_FAR;
		q->p = &p[i];
		if (!p[i].entry || !p[i].hook) {
			say(p[i].why, sizeof(p[i].why), "no entry or no hook");
			continue;
		}
		if (!is_code(maps, n_maps, p[i].entry, p[i].entry + p[i].size)) {
			say(p[i].why, sizeof(p[i].why), "not in read+execute code");
			continue;
		}
		/* The thunk: an absolute jump to the hook, within reach of a rel32 at the entry. */
		jump_abs(slot, (uintptr_t)p[i].hook);
		ssize_t len = onnxhook_patch_relocate((const uint8_t *)p[i].entry, p[i].entry, p[i].size,
						      need, slot + THUNK, (uintptr_t)slot + THUNK,
						      SLOT - THUNK, &q->covered, p[i].why, sizeof(p[i].why));
		if (len < 0) {
			q->covered = 0;
			continue;
		}
		size_t j = near ? jump(q->jump, p[i].entry, (uintptr_t)slot)
				: jump_abs(q->jump, (uintptr_t)p[i].hook);
		memset(q->jump + j, 0xcc, q->covered - j); /* int3 where no one may come */
	}
	qsort(pl, n, sizeof(*pl), by_entry);
	for (size_t i = 0; i + 1 < n; i++)
		if (pl[i].covered && pl[i + 1].covered &&
		    pl[i].p->entry + pl[i].covered > pl[i + 1].p->entry) {
			say(pl[i].p->why, sizeof(pl[i].p->why), "overlaps %s", pl[i + 1].p->name);
			pl[i].covered = 0;
		}
	if (text_lo < text_hi)
		scan_text(pl, n, text_lo, text_hi);
	if (mprotect(block, block_len, PROT_READ | PROT_EXEC) < 0) {
		r = -errno;
		for (size_t i = 0; i < n; i++)
			say(p[i].why, sizeof(p[i].why), "cannot make its trampoline executable");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!pl[i].covered)
			continue;
		struct onnxhook_patch *e = pl[i].p;
		e->trampoline = block + (size_t)(e - p) * SLOT + THUNK;
		if (e->real)
			__atomic_store_n(e->real, e->trampoline, __ATOMIC_RELEASE);
		live++;
	}
	/* Runs of entries whose pages touch: one mprotect round each. */
	for (size_t i = 0; i < n;) {
		if (!pl[i].covered) {
			i++;
			continue;
		}
		uintptr_t p0 = pl[i].p->entry & ~((uintptr_t)page - 1);
		uintptr_t p1 = (pl[i].p->entry + pl[i].covered + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
		size_t j = i + 1;
		for (; j < n; j++) {
			if (!pl[j].covered)
				continue;
			uintptr_t q0 = pl[j].p->entry & ~((uintptr_t)page - 1);
			if (q0 > p1)
				break;
			uintptr_t q1 = (pl[j].p->entry + pl[j].covered + (uintptr_t)page - 1) &
				       ~((uintptr_t)page - 1);
			p1 = q1 > p1 ? q1 : p1;
		}
		if (mprotect((void *)p0, p1 - p0, PROT_READ | PROT_WRITE) < 0) {
			int e = errno;
			for (size_t k = i; k < j; k++)
				if (pl[k].covered) {
					say(pl[k].p->why, sizeof(pl[k].p->why), "cannot write its code: %s",
					    strerror(e));
					pl[k].p->trampoline = NULL;
				}
			i = j;
			continue;
		}
		for (size_t k = i; k < j; k++)
			if (pl[k].covered) {
				memcpy((void *)pl[k].p->entry, pl[k].jump, pl[k].covered);
				done++;
			}
		if (mprotect((void *)p0, p1 - p0, PROT_READ | PROT_EXEC) < 0) {
			/* Never left writable and not executable: this cannot be undone sanely. */
			static const char msg[] = "onnxhook: error: cannot restore read+execute on patched code\n";
			(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
			abort();
		}
		__builtin___clear_cache((char *)p0, (char *)p1);
		i = j;
	}
	if (!live && block) {
		munmap(block, block_len);
		block = NULL;
	}
	r = done;
out:
	free(maps);
	free(pl);
	return r;
}
