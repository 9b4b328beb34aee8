/* calib.c: see calib.h. */
#include "net/calib.h"
#include "net/plan.h"
#include "pipeline/log.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: a small, well-mixed generator; the same seed gives the same stream. */
static uint64_t next64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static double uniform(uint64_t *s) { return ((double)(next64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Standard normal by Box-Muller (one value per call, deterministic). */
static double normal(uint64_t *s) {
    double u1 = uniform(s), u2 = uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void bn_random_init(bn_raw_params *p, unsigned long long seed) {
    uint64_t s = seed * 0x2545F4914F6CDD1DULL + 1;
    for (int k = 0; k < BN_NCONV; k++) {
        bn_conv_raw *c = &p->conv[k];
        size_t nk = (size_t)c->kh * c->kw * c->cin * c->cout;
        double std = sqrt(2.0 / (double)(c->kh * c->kw * c->cin));
        for (size_t i = 0; i < nk; i++) c->kernel[i] = (float)(normal(&s) * std);
        for (int o = 0; o < c->cout; o++) {
            c->beta[o] = (float)(0.2 * uniform(&s) - 0.1);
            c->mean[o] = 0.0f;
            c->var[o] = 1.0f;
        }
    }
}

typedef struct {
    bn_raw_params *p; /* params being calibrated */
} calib_state;

/* Measure the raw output's per-channel mean and variance, store them as the
 * BN statistics, and apply the BN in place (the caller then adds 0 and ReLUs). */
static void calib_hook(void *user, const bn_layer *l, float *x, size_t rows, int ld) {
    calib_state *st = user;
    bn_conv_raw *c = &st->p->conv[l->conv];
    for (int o = 0; o < c->cout; o++) {
        double sum = 0.0, sq = 0.0;
        for (size_t r = 0; r < rows; r++) sum += x[r * (size_t)ld + o];
        double mean = sum / (double)rows;
        for (size_t r = 0; r < rows; r++) {
            double dv = x[r * (size_t)ld + o] - mean;
            sq += dv * dv;
        }
        double var = sq / (double)rows;
        c->mean[o] = (float)mean;
        c->var[o] = (float)var;
        double scale = 1.0 / sqrt((double)c->var[o] + BN_BN_EPS);
        double shift = (double)c->beta[o] - (double)c->mean[o] * scale;
        for (size_t r = 0; r < rows; r++) {
            float *v = &x[r * (size_t)ld + o];
            *v = (float)((double)*v * scale + shift);
        }
    }
}

void bn_calibrate(bn_raw_params *p, const float *in, int n) {
    const bn_graph *g = bn_inception_v3();
    /* A model whose kernels are the raw ones and whose biases are zero: the
     * hook applies each BN as soon as its statistics are known. */
    bn_model m;
    memset(&m, 0, sizeof m);
    float *zeros = callocCheck(2048, sizeof(float));
    for (int k = 0; k < BN_NCONV; k++) {
        m.w[k] = p->conv[k].kernel;
        m.b[k] = zeros;
    }
    bn_kernels kern;
    void *ctx = bn_gemm_kernels(1, &kern);
    calib_state st = {p};
    bn_gemm_set_hook(ctx, calib_hook, &st);
    bn_plan plan;
    bn_plan_make(g, n, &plan);
    float *arena = mallocCheck(plan.floats * sizeof(float));
    float *out = mallocCheck((size_t)n * BN_FEATURES * sizeof(float));
    bn_exec(g, &plan, &kern, m.w, m.b, arena, in, n, out);
    free(out);
    free(arena);
    bn_gemm_kernels_free(ctx);
    free(zeros);
}
