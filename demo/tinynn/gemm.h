/* SPDX-License-Identifier: MIT */
/* tinynn: the internal single-precision GEMM used by convolution and fully connected layers. */
#ifndef TINYNN_GEMM_H
#define TINYNN_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* Floats of scratch tinynn_gemm() needs for these sizes; false if that does not fit in size_t. */
bool tinynn_gemm_scratch(size_t m, size_t n, size_t k, size_t *floats);

/*
 * C[m][n] += A[m][k] · B[k][n], with element (i, p) of A at a[i*rsa + p*csa], element (p, j) of B at
 * b[p*rsb + j*csb] and C row-major with row stride ldc. C must not overlap A, B or the scratch.
 * The summation order depends only on k, so each element of C is reproducible bit for bit.
 */
void tinynn_gemm(size_t m, size_t n, size_t k, const float *a, size_t rsa, size_t csa,
                 const float *b, size_t rsb, size_t csb, float *c, size_t ldc, float *scratch);

#endif /* TINYNN_GEMM_H */
