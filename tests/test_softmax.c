/* test_softmax.c: the final layer's arithmetic (net/softmax.h) and the seeded
 * generator (pipeline/rng.h).
 *  - the exact gradient matches central finite differences of the mean
 *    cross entropy;
 *  - the gradient sum is bitwise the same however the samples are split into
 *    partial sums and in whatever order those are added (what makes training
 *    independent of the rank count), while the same split of unrounded
 *    values is not (so the check can fail);
 *  - the bit budget keeps every sum below 2^53;
 *  - logits equal a plain double dot product, for dims that are and are not
 *    multiples of the lane count;
 *  - the generator is deterministic, unbiased enough, and its truncated
 *    normal stays within two standard deviations.
 */
#include "net/softmax.h"
#include "pipeline/rng.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define C 4
#define DIM 45 /* not a multiple of the 32 lanes */
#define B 7

static double Wt[C * DIM], bias[C];
static float xs[B][DIM];
static int ys[B];

/* Mean cross entropy of the batch for weights W, b. */
static double mean_loss(const double *W, const double *b) {
    double s = 0, z[C], xd[DIM];
    for (int n = 0; n < B; n++) {
        bn_sm_widen(xs[n], DIM, xd);
        bn_sm_logits(W, b, C, DIM, xd, z);
        double zy = z[ys[n]];
        s += bn_sm_softmax(z, C) - zy;
    }
    return s / B;
}

/* Gradient of the samples in order[lo, hi) into dW, db (fresh). */
static void grad_part(const int *order, int lo, int hi, int gbits, double *dW, double *db) {
    double E[B * C], X[B * DIM], p[C];
    int m = 0;
    for (int k = lo; k < hi; k++) {
        int n = order[k];
        double loss;
        int correct;
        bn_sm_widen(xs[n], DIM, X + m * DIM);
        bn_sm_sample(Wt, bias, C, DIM, X + m * DIM, ys[n], gbits, p, E + m * C, &loss, &correct);
        m++;
    }
    memset(dW, 0, sizeof(double) * C * DIM);
    memset(db, 0, sizeof(double) * C);
    bn_sm_accumulate(m, C, DIM, E, X, dW, db);
}

int main(void) {
    bn_rng r;
    bn_rng_seed(&r, 42);
    for (int i = 0; i < C * DIM; i++) Wt[i] = 0.3 * bn_rng_normal(&r);
    for (int c = 0; c < C; c++) bias[c] = 0.1 * bn_rng_normal(&r);
    float cmax[DIM] = {0};
    for (int n = 0; n < B; n++) {
        ys[n] = (int)bn_rng_below(&r, C);
        for (int i = 0; i < DIM; i++) {
            /* Magnitudes over several decades, as real features have. */
            xs[n][i] = (float)(fabs(bn_rng_normal(&r)) * pow(10.0, (double)(i % 5) - 2.0));
            if (xs[n][i] > cmax[i]) cmax[i] = xs[n][i];
        }
    }
    int xbits, gbits;
    bn_sm_bits(B, &xbits, &gbits);
    double q[DIM];
    bn_sm_grid(cmax, DIM, xbits, q);
    float before = xs[0][3];
    bn_sm_round_rows(&xs[0][0], B, DIM, q);
    CHECK(fabsf(xs[0][3] - before) <= q[3] / 2, "rounding moved a value by more than half a grid step");

    /* 1. Gradient against central finite differences. */
    int order[B];
    for (int n = 0; n < B; n++) order[n] = n;
    double dW[C * DIM], db[C];
    grad_part(order, 0, B, gbits, dW, db);
    double scale = ldexp(1.0, -gbits) / B, worst = 0;
    for (int j = 0; j < C * DIM + C; j++) {
        double *w = j < C * DIM ? &Wt[j] : &bias[j - C * DIM];
        double g = (j < C * DIM ? dW[j] : db[j - C * DIM]) * scale;
        double h = 1e-5, keep = *w;
        *w = keep + h;
        double lp = mean_loss(Wt, bias);
        *w = keep - h;
        double lm = mean_loss(Wt, bias);
        *w = keep;
        double fd = (lp - lm) / (2 * h);
        double err = fabs(fd - g) / (fabs(fd) + 1e-3);
        if (err > worst) worst = err;
    }
    CHECK(worst < 1e-5, "gradient differs from finite differences: worst relative error %g", worst);
    printf("gradient vs finite differences: worst relative error %.2e over %d parameters\n", worst, C * DIM + C);

    /* 2. Any split and any order of the partial sums gives the same bits. */
    int perm[B] = {5, 2, 6, 0, 3, 1, 4};
    double part[3][C * DIM], pb[3][C], tot[C * DIM], totb[C];
    int cuts[4] = {0, 2, 3, B};
    for (int k = 0; k < 3; k++) grad_part(perm, cuts[k], cuts[k + 1], gbits, part[k], pb[k]);
    int same = 1;
    for (int j = 0; j < C * DIM; j++) {
        tot[j] = (part[2][j] + part[0][j]) + part[1][j];
        same &= memcmp(&tot[j], &dW[j], sizeof(double)) == 0;
    }
    for (int c = 0; c < C; c++) {
        totb[c] = pb[1][c] + (pb[2][c] + pb[0][c]);
        same &= memcmp(&totb[c], &db[c], sizeof(double)) == 0;
    }
    CHECK(same, "the gradient depends on how the samples are split");
    /* The same experiment on unrounded products differs somewhere (the
     * reason for the grid): sum x*e in two different orders. */
    int differs = 0;
    for (int i = 0; i < DIM && !differs; i++) {
        double a = 0, b2 = 0, v[B];
        for (int n = 0; n < B; n++) v[n] = (double)xs[n][i] * (0.1 + 0.37 * n) / 3.0 * (1 + 1e-3 * i);
        for (int n = 0; n < B; n++) a += v[n];
        b2 = (v[5] + v[2]) + (v[6] + v[0] + v[3]) + (v[1] + v[4]);
        differs = memcmp(&a, &b2, sizeof a) != 0;
    }
    CHECK(differs, "plain double sums happened to agree; the exactness check above proves nothing");

    /* 3. The bit budget. */
    long long sizes[] = {1, 2, 3, 7, 64, 100, 128, 129, 1000, 65536, 1 << 20, 1 << 24};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int xb, gb;
        bn_sm_bits(sizes[k], &xb, &gb);
        int L = 0;
        while ((1LL << L) < sizes[k]) L++;
        CHECK(L + xb + gb <= 53, "batch %lld: %d + %d + %d bits exceed 53", sizes[k], L, xb, gb);
        CHECK(gb >= 16 && xb >= 12 && xb <= 24, "batch %lld: bits %d/%d out of range", sizes[k], xb, gb);
    }
    bn_sm_bits(100, &xbits, &gbits);
    CHECK(xbits == 24 && gbits == 22, "batch 100: got %d/%d bits, want 24/22", xbits, gbits);

    /* 4. Logits against a plain dot product, several dims. */
    int dims[] = {1, 31, 32, 33, 64, 2048};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        int d = dims[k];
        double *W = malloc(sizeof(double) * 3 * d), *x = malloc(sizeof(double) * d), z[3], b3[3] = {0.5, -1, 2};
        for (int i = 0; i < 3 * d; i++) W[i] = bn_rng_normal(&r);
        for (int i = 0; i < d; i++) x[i] = bn_rng_uniform(&r);
        bn_sm_logits(W, b3, 3, d, x, z);
        for (int c = 0; c < 3; c++) {
            double ref = b3[c];
            for (int i = 0; i < d; i++) ref += x[i] * W[c * d + i];
            CHECK(fabs(z[c] - ref) <= 1e-12 * (1 + fabs(ref)), "dim %d class %d: %.17g vs %.17g", d, c, z[c], ref);
        }
        free(W);
        free(x);
    }
    /* A row's logits are the same bits alone or in a group of any size
     * (training computes them in groups, evaluation one by one). */
    {
        enum { M = 9, D = 2048 + 5, CC = 3 };
        double *W = malloc(sizeof(double) * CC * D), *X = malloc(sizeof(double) * M * D), Zb[M * CC], z1[CC];
        double b3[CC] = {0.25, 0, -0.5};
        for (int i = 0; i < CC * D; i++) W[i] = bn_rng_normal(&r);
        for (int i = 0; i < M * D; i++) X[i] = bn_rng_uniform(&r) * 3;
        for (int m = 1; m <= M; m++) {
            bn_sm_logits_batch(W, b3, CC, D, X, m, Zb);
            int same_bits = 1;
            for (int k = 0; k < m; k++) {
                bn_sm_logits(W, b3, CC, D, X + (size_t)k * D, z1);
                same_bits &= memcmp(z1, Zb + k * CC, sizeof z1) == 0;
            }
            CHECK(same_bits, "group of %d rows: logits differ from the row alone", m);
        }
        free(W);
        free(X);
    }
    double pz[3] = {1000, 1000, -1000};
    double lse = bn_sm_softmax(pz, 3);
    CHECK(fabs(pz[0] - 0.5) < 1e-15 && pz[2] == 0 && fabs(lse - (1000 + log(2))) < 1e-9, "softmax overflow handling");
    double tie[3] = {1, 3, 3};
    CHECK(bn_sm_argmax(tie, 3) == 1, "argmax must pick the first of equal values");

    /* 5. The generator. */
    bn_rng a1, a2;
    bn_rng_seed(&a1, 7);
    bn_rng_seed(&a2, 7);
    int eq = 1;
    for (int i = 0; i < 1000; i++) eq &= bn_rng_next(&a1) == bn_rng_next(&a2);
    CHECK(eq, "same seed, different sequence");
    bn_rng_seed(&a2, 8);
    CHECK(bn_rng_next(&a1) != bn_rng_next(&a2), "seeds 7 and 8 gave the same value");
    long long counts[5] = {0};
    for (int i = 0; i < 100000; i++) counts[bn_rng_below(&a1, 5)]++;
    for (int k = 0; k < 5; k++) CHECK(llabs(counts[k] - 20000) < 800, "below(5): value %d drawn %lld times of 100000", k, counts[k]);
    double s = 0, s2 = 0, mx = 0;
    for (int i = 0; i < 100000; i++) {
        double v = bn_rng_truncated_normal(&a1, 0.001);
        s += v;
        s2 += v * v;
        if (fabs(v) > mx) mx = fabs(v);
    }
    double mean = s / 100000, sd = sqrt(s2 / 100000 - mean * mean);
    CHECK(mx <= 0.002, "truncated normal beyond 2 stddev: %g", mx);
    CHECK(fabs(mean) < 1e-5 && fabs(sd - 0.00088) < 2e-5, "truncated normal: mean %g, sd %g (want 0, 0.00088)", mean, sd);
    return t_done("test_softmax");
}
