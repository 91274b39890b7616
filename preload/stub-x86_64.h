/* SPDX-License-Identifier: MIT */
/* x86-64 entry stubs (System V): an exported symbol whose code only jumps through a slot, so
 * that any caller's arguments (structs passed by value, a signature we do not know) reach the
 * target untouched. An empty slot calls resolve(&slot) first, every argument register (rdi, rsi,
 * rdx, rcx, r8, r9, rax for varargs, xmm0-7) saved around the call; resolve returns the target
 * (and stores it in the slot). slot is a hidden `void *` defined by the includer. */
#ifndef ONNXHOOK_PRELOAD_STUB_X86_64_H
#define ONNXHOOK_PRELOAD_STUB_X86_64_H

#if !defined(__x86_64__)
#error "the entry stubs are x86-64 code"
#endif

#if defined(__CET__) && (__CET__ & 1)
#define ONNXHOOK_STUB_ENDBR "\tendbr64\n"
#else
#define ONNXHOOK_STUB_ENDBR ""
#endif

#define ONNXHOOK_JUMP_STUB(name, slot, resolve)                                                  \
	__asm__(".pushsection .text\n"                                                           \
		".globl " #name "\n"                                                             \
		".type " #name ", @function\n"                                                   \
		".p2align 4\n" #name ":\n" ONNXHOOK_STUB_ENDBR                                   \
		"\tmovq " #slot "(%rip), %r11\n"                                                 \
		"\ttestq %r11, %r11\n"                                                           \
		"\tjz 1f\n"                                                                      \
		"\tjmp *%r11\n"                                                                  \
		"1:\tsubq $200, %rsp\n"                                                          \
		"\tmovq %rdi, 0(%rsp)\n"                                                         \
		"\tmovq %rsi, 8(%rsp)\n"                                                         \
		"\tmovq %rdx, 16(%rsp)\n"                                                        \
		"\tmovq %rcx, 24(%rsp)\n"                                                        \
		"\tmovq %r8, 32(%rsp)\n"                                                         \
		"\tmovq %r9, 40(%rsp)\n"                                                         \
		"\tmovq %rax, 48(%rsp)\n"                                                        \
		"\tmovdqu %xmm0, 64(%rsp)\n"                                                     \
		"\tmovdqu %xmm1, 80(%rsp)\n"                                                     \
		"\tmovdqu %xmm2, 96(%rsp)\n"                                                     \
		"\tmovdqu %xmm3, 112(%rsp)\n"                                                    \
		"\tmovdqu %xmm4, 128(%rsp)\n"                                                    \
		"\tmovdqu %xmm5, 144(%rsp)\n"                                                    \
		"\tmovdqu %xmm6, 160(%rsp)\n"                                                    \
		"\tmovdqu %xmm7, 176(%rsp)\n"                                                    \
		"\tleaq " #slot "(%rip), %rdi\n"                                                 \
		"\tcall " #resolve "\n"                                                          \
		"\tmovq %rax, %r11\n"                                                            \
		"\tmovq 0(%rsp), %rdi\n"                                                         \
		"\tmovq 8(%rsp), %rsi\n"                                                         \
		"\tmovq 16(%rsp), %rdx\n"                                                        \
		"\tmovq 24(%rsp), %rcx\n"                                                        \
		"\tmovq 32(%rsp), %r8\n"                                                         \
		"\tmovq 40(%rsp), %r9\n"                                                         \
		"\tmovq 48(%rsp), %rax\n"                                                        \
		"\tmovdqu 64(%rsp), %xmm0\n"                                                     \
		"\tmovdqu 80(%rsp), %xmm1\n"                                                     \
		"\tmovdqu 96(%rsp), %xmm2\n"                                                     \
		"\tmovdqu 112(%rsp), %xmm3\n"                                                    \
		"\tmovdqu 128(%rsp), %xmm4\n"                                                    \
		"\tmovdqu 144(%rsp), %xmm5\n"                                                    \
		"\tmovdqu 160(%rsp), %xmm6\n"                                                    \
		"\tmovdqu 176(%rsp), %xmm7\n"                                                    \
		"\taddq $200, %rsp\n"                                                            \
		"\tjmp *%r11\n"                                                                  \
		".size " #name ", .-" #name "\n"                                                 \
		".popsection\n");

#endif
