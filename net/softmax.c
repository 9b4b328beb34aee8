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
 * rounds exactly as the plain one and all give the same bits: a job may mix
 * node types and still train the same classifier. */
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

HOT_LOOP void bn_sm_logits(const double *Wt, const double *b, int C, int dim, const double *x, double *z) {
    /* Lane l sums x[i] w[i] over i = l (mod 32) in increasing i: four
     * 8-lane accumulators that stay in registers. */
    int full = dim - dim % LANES;
    for (int c = 0; c < C; c++) {
        const double *w = Wt + (size_t)c * dim;
        v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int i = 0; i < full; i += LANES) {
            a0 += load8(x + i) * load8(w + i);
            a1 += load8(x + i + 8) * load8(w + i + 8);
            a2 += load8(x + i + 16) * load8(w + i + 16);
            a3 += load8(x + i + 24) * load8(w + i + 24);
        }
        double acc[LANES];
        memcpy(acc, &a0, sizeof a0);
        memcpy(acc + 8, &a1, sizeof a1);
        memcpy(acc + 16, &a2, sizeof a2);
        memcpy(acc + 24, &a3, sizeof a3);
        for (int i = full, l = 0; i < dim; i++, l++) acc[l] += x[i] * w[i];
        /* A fixed pairwise tree over the lanes. */
        for (int h = LANES / 2; h >= 1; h /= 2)
            for (int l = 0; l < h; l++) acc[l] += acc[l + h];
        z[c] = b[c] + acc[0];
    }
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

void bn_sm_sample(const double *Wt, const double *b, int C, int dim, const double *x, int y, int gbits, double *p,
                  double *e, double *loss, int *correct) {
    bn_sm_logits(Wt, b, C, dim, x, p);
    double zy = p[y];
    int top = bn_sm_argmax(p, C);
    double lse = bn_sm_softmax(p, C);
    *loss = lse - zy;
    *correct = top == y;
    double scale = ldexp(1.0, gbits);
    for (int c = 0; c < C; c++) e[c] = rint((p[c] - (c == y ? 1.0 : 0.0)) * scale);
}

void bn_sm_accumulate(int m, int C, int dim, const double *E, const double *X, double *dWt, double *db) {
    if (m <= 0) return;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, dim, m, 1.0, E, C, X, dim, 1.0, dWt, dim);
    for (int s = 0; s < m; s++)
        for (int c = 0; c < C; c++) db[c] += E[(size_t)s * C + c];
}

void bn_sm_widen(const float *x, int dim, double *out) {
    for (int i = 0; i < dim; i++) out[i] = x[i];
}
