/* softmax.c: the final layer's arithmetic (see softmax.h for the exactness
 * argument). */
#include "config.h"

#include "net/softmax.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define LANES 32 /* interleaved partial sums of a dot product */

/* The logits are the hot loop of training. The binary is built for any
 * x86-64, so this function is also compiled for AVX2 and AVX-512 and picked
 * at run time. Contraction into fused multiply-adds is off, so every variant
 * rounds exactly as the plain one and all give the same bits, whichever
 * variant a node picks. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HOT_LOOP __attribute__((target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")))
#else
#define HOT_LOOP
#endif

#pragma GCC diagnostic ignored "-Wpsabi" /* v8d is only passed between inlined helpers */
typedef double v8d __attribute__((vector_size(64))); /* 8 lanes; plain C on any target */

static inline __attribute__((always_inline)) v8d load8(const double *p) {
    v8d v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Add the 32 lanes of a sample's accumulators in a fixed pairwise tree,
 * after the tail (dim not a multiple of 32) went into the first lanes. */
static inline __attribute__((always_inline)) double lanes_total(v8d a0, v8d a1, v8d a2, v8d a3, const double *x,
                                                               const double *w, int full, int dim) {
    double acc[LANES];
    memcpy(acc, &a0, sizeof a0);
    memcpy(acc + 8, &a1, sizeof a1);
    memcpy(acc + 16, &a2, sizeof a2);
    memcpy(acc + 24, &a3, sizeof a3);
    for (int i = full, l = 0; i < dim; i++, l++) acc[l] += x[i] * w[i];
    for (int h = LANES / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) acc[l] += acc[l + h];
    return acc[0];
}

HOT_LOOP void bn_sm_logits_batch(const double *Wt, const double *b, int C, int dim, const double *X, int m,
                                 double *Z) {
    /* Lane l of a sample sums x[i] w[i] over i = l (mod 32) in increasing i,
     * in four 8-lane accumulators that stay in registers. Four samples at a
     * time share each load of the weights; a sample's own arithmetic is the
     * same whether it is computed in a group of four or alone. */
    const int full = dim - dim % LANES;
    int s = 0;
    for (; s + 4 <= m; s += 4) {
        const double *x0 = X + (size_t)s * dim, *x1 = x0 + dim, *x2 = x1 + dim, *x3 = x2 + dim;
        for (int c = 0; c < C; c++) {
            const double *w = Wt + (size_t)c * dim;
            v8d a[4][4] = {{{0}}};
            for (int i = 0; i < full; i += LANES) {
                v8d w0 = load8(w + i), w1 = load8(w + i + 8), w2 = load8(w + i + 16), w3 = load8(w + i + 24);
                a[0][0] += load8(x0 + i) * w0;
                a[0][1] += load8(x0 + i + 8) * w1;
                a[0][2] += load8(x0 + i + 16) * w2;
                a[0][3] += load8(x0 + i + 24) * w3;
                a[1][0] += load8(x1 + i) * w0;
                a[1][1] += load8(x1 + i + 8) * w1;
                a[1][2] += load8(x1 + i + 16) * w2;
                a[1][3] += load8(x1 + i + 24) * w3;
                a[2][0] += load8(x2 + i) * w0;
                a[2][1] += load8(x2 + i + 8) * w1;
                a[2][2] += load8(x2 + i + 16) * w2;
                a[2][3] += load8(x2 + i + 24) * w3;
                a[3][0] += load8(x3 + i) * w0;
                a[3][1] += load8(x3 + i + 8) * w1;
                a[3][2] += load8(x3 + i + 16) * w2;
                a[3][3] += load8(x3 + i + 24) * w3;
            }
            const double *xs[4] = {x0, x1, x2, x3};
            for (int k = 0; k < 4; k++)
                Z[(size_t)(s + k) * C + c] = b[c] + lanes_total(a[k][0], a[k][1], a[k][2], a[k][3], xs[k], w, full, dim);
        }
    }
    for (; s < m; s++) {
        const double *x = X + (size_t)s * dim;
        for (int c = 0; c < C; c++) {
            const double *w = Wt + (size_t)c * dim;
            v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int i = 0; i < full; i += LANES) {
                a0 += load8(x + i) * load8(w + i);
                a1 += load8(x + i + 8) * load8(w + i + 8);
                a2 += load8(x + i + 16) * load8(w + i + 16);
                a3 += load8(x + i + 24) * load8(w + i + 24);
            }
            Z[(size_t)s * C + c] = b[c] + lanes_total(a0, a1, a2, a3, x, w, full, dim);
        }
    }
}

void bn_sm_logits(const double *Wt, const double *b, int C, int dim, const double *x, double *z) {
    bn_sm_logits_batch(Wt, b, C, dim, x, 1, z);
}

double bn_sm_softmax(double *z, int C) {
    double m = z[0];
    for (int c = 1; c < C; c++)
        if (z[c] > m) m = z[c];
    double s = 0;
    for (int c = 0; c < C; c++) {
        z[c] = exp(z[c] - m);
        s += z[c];
    }
    for (int c = 0; c < C; c++) z[c] /= s;
    return m + log(s);
}

int bn_sm_argmax(const double *v, int C) {
    int best = 0;
    for (int c = 1; c < C; c++)
        if (v[c] > v[best]) best = c;
    return best;
}

void bn_sm_bits(long long B, int *xbits, int *gbits) {
    int L = 0; /* ceil(log2(B)) */
    while ((1LL << L) < B) L++;
    int x = 24, g = 53 - x - L;
    if (g > 24) g = 24;
    if (g < 16) {
        g = 16;
        x = 53 - g - L;
    }
    *xbits = x;
    *gbits = g;
}

void bn_sm_grid(const float *colmax, int dim, int xbits, double *q) {
    for (int i = 0; i < dim; i++) {
        int e = 0;
        if (!(colmax[i] > 0) || !isfinite(colmax[i])) {
            q[i] = 1.0;
            continue;
        }
        frexp((double)colmax[i], &e); /* colmax = f 2^e, f in [0.5, 1): colmax < 2^e */
        q[i] = ldexp(1.0, e - xbits);
    }
}

void bn_sm_round_rows(float *x, size_t n, int dim, const double *q) {
    for (size_t r = 0; r < n; r++) {
        float *row = x + r * (size_t)dim;
        for (int i = 0; i < dim; i++) row[i] = (float)(rint((double)row[i] / q[i]) * q[i]);
    }
}

void bn_sm_error(double *p, int C, int y, int gbits, double *e, double *loss, int *correct) {
    double zy = p[y];
    int top = bn_sm_argmax(p, C);
    double lse = bn_sm_softmax(p, C);
    *loss = lse - zy;
    *correct = top == y;
    double scale = ldexp(1.0, gbits);
    for (int c = 0; c < C; c++) e[c] = rint((p[c] - (c == y ? 1.0 : 0.0)) * scale);
}

void bn_sm_sample(const double *Wt, const double *b, int C, int dim, const double *x, int y, int gbits, double *p,
                  double *e, double *loss, int *correct) {
    bn_sm_logits(Wt, b, C, dim, x, p);
    bn_sm_error(p, C, y, gbits, e, loss, correct);
}

void bn_sm_accumulate(int m, int C, int dim, const double *E, const double *X, double *dWt, double *db) {
    if (m <= 0) return;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, dim, m, 1.0, E, C, X, dim, 1.0, dWt, dim);
    for (int s = 0; s < m; s++)
        for (int c = 0; c < C; c++) db[c] += E[(size_t)s * C + c];
}

HOT_LOOP void bn_sm_widen(const float *x, int dim, double *out) {
    for (int i = 0; i < dim; i++) out[i] = x[i];
}

void bn_sm_prefetch(const float *x, int dim) {
    for (int i = 0; i < dim; i += 16) __builtin_prefetch(x + i, 0, 3);
}
