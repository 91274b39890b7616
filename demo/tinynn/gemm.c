/* SPDX-License-Identifier: MIT */
/* tinynn: cache-blocked GEMM: packed panels of A and B and a register-blocked micro-kernel. */
#include "gemm.h"

#include <stdint.h>

/*
 * The micro-kernel keeps an MR×NR block of C in registers: 6×8 floats are 12 SSE registers, which with
 * the two B vectors and one broadcast A value fits the 16 of baseline x86-64. KC×NR of packed B (8 KiB)
 * stays in L1 while the kernel walks the MC×KC packed A block (120 KiB) in L2.
 */
enum { MR = 6, NR = 8, MC = 120, KC = 256, NC = 4096 };

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

bool tinynn_gemm_scratch(size_t m, size_t n, size_t k, size_t *floats)
{
    size_t kc = min_size(k, KC);
    size_t pa = min_size(round_up(min_size(m, MC), MR), MC) * kc;
    size_t pb = round_up(min_size(n, NC), NR) * kc;

    if (pa > SIZE_MAX - pb)
        return false;
    *floats = pa + pb;
    return true;
}

/* Rows of A in panels of MR, each panel p-major: dst[p*MR + i]; missing rows are zero. */
static void pack_a(size_t mc, size_t kc, const float *a, size_t rsa, size_t csa, float *restrict dst)
{
    for (size_t i0 = 0; i0 < mc; i0 += MR) {
        size_t mr = min_size(MR, mc - i0);
        for (size_t i = 0; i < mr; i++) {
            const float *row = a + (i0 + i) * rsa;
            if (csa == 1) {
                for (size_t p = 0; p < kc; p++)
                    dst[p * MR + i] = row[p];
            } else {
                for (size_t p = 0; p < kc; p++)
                    dst[p * MR + i] = row[p * csa];
            }
        }
        for (size_t i = mr; i < MR; i++)
            for (size_t p = 0; p < kc; p++)
                dst[p * MR + i] = 0.0f;
        dst += MR * kc;
    }
}

/* Columns of B in panels of NR, each panel p-major: dst[p*NR + j]; missing columns are zero. */
static void pack_b(size_t kc, size_t nc, const float *b, size_t rsb, size_t csb, float *restrict dst)
{
    for (size_t j0 = 0; j0 < nc; j0 += NR) {
        size_t nr = min_size(NR, nc - j0);
        const float *col = b + j0 * csb;
        for (size_t p = 0; p < kc; p++) {
            const float *src = col + p * rsb;
            if (nr == NR && csb == 1) {
                for (size_t j = 0; j < NR; j++)
                    dst[j] = src[j];
            } else {
                size_t j = 0;
                for (; j < nr; j++)
                    dst[j] = src[j * csb];
                for (; j < NR; j++)
                    dst[j] = 0.0f;
            }
            dst += NR;
        }
    }
}

/* c[0..mr)[0..nr) += a-panel · b-panel. Plain C: gcc -O2 unrolls the rows and vectorises the columns. */
static void kernel(size_t kc, const float *restrict a, const float *restrict b, float *restrict c,
                   size_t ldc, size_t mr, size_t nr)
{
    float acc[MR][NR] = {{0.0f}};

    for (size_t p = 0; p < kc; p++) {
#pragma GCC unroll 8
        for (size_t i = 0; i < MR; i++)
            for (size_t j = 0; j < NR; j++)
                acc[i][j] += a[i] * b[j];
        a += MR;
        b += NR;
    }
    if (mr == MR && nr == NR) {
        for (size_t i = 0; i < MR; i++)
            for (size_t j = 0; j < NR; j++)
                c[i * ldc + j] += acc[i][j];
    } else {
        for (size_t i = 0; i < mr; i++)
            for (size_t j = 0; j < nr; j++)
                c[i * ldc + j] += acc[i][j];
    }
}

void tinynn_gemm(size_t m, size_t n, size_t k, const float *a, size_t rsa, size_t csa,
                 const float *b, size_t rsb, size_t csb, float *c, size_t ldc, float *scratch)
{
    float *pa = scratch;
    float *pb = scratch + min_size(round_up(min_size(m, MC), MR), MC) * min_size(k, KC);

    for (size_t jc = 0; jc < n; jc += NC) {
        size_t nc = min_size(NC, n - jc);
        for (size_t pc = 0; pc < k; pc += KC) {
            size_t kc = min_size(KC, k - pc);
            pack_b(kc, nc, b + pc * rsb + jc * csb, rsb, csb, pb);
            for (size_t ic = 0; ic < m; ic += MC) {
                size_t mc = min_size(MC, m - ic);
                pack_a(mc, kc, a + ic * rsa + pc * csa, rsa, csa, pa);
                for (size_t jr = 0; jr < nc; jr += NR)
                    for (size_t ir = 0; ir < mc; ir += MR)
                        kernel(kc, pa + ir * kc, pb + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                               min_size(MR, mc - ir), min_size(NR, nc - jr));
            }
        }
    }
}
