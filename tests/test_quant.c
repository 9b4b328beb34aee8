/* test_quant.c: net/quant.c on its own: bf16 and u8/s8 rounding, the three
 * threshold methods (entropy against a plain re-implementation of the KL
 * search written from quant.h's description), and the calibration file's
 * round trip and the refusals it can check without h5py
 * (tests/calibrate.sh damages files with h5py). */
#include "io/weights.h"
#include "net/graph.h"
#include "net/quant.h"
#include "tests/testutil.h"

#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t g_rng = 12345;
static double uni(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static float f_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_bf16(void) {
    CHECK(bn_bf16_round(1.0f) == 1.0f, "1");
    CHECK(bn_bf16_round(-2.5f) == -2.5f, "-2.5 is a bf16");
    /* ulp of bf16 at 1 is 2^-7: halfway cases go to the even mantissa. */
    CHECK(bn_bf16_round(1.0f + 0x1p-8f) == 1.0f, "1 + 2^-8 ties to 1 (even)");
    CHECK(bn_bf16_round(1.0f + 0x1p-7f + 0x1p-8f) == 1.0f + 0x1p-6f, "1 + 3*2^-8 ties to 1 + 2^-6 (even)");
    CHECK(bn_bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f, "just over half rounds up");
    CHECK(bn_bf16_round(1.0f + 0x1p-8f - 0x1p-20f) == 1.0f, "just under half rounds down");
    CHECK(isinf(bn_bf16_round(FLT_MAX)), "FLT_MAX rounds to infinity");
    CHECK(isinf(bn_bf16_round(INFINITY)) && bn_bf16_round(-INFINITY) < 0, "infinities stay");
    CHECK(isnan(bn_bf16_round(NAN)), "NaN stays NaN");
    CHECK(isnan(bn_bf16_round(f_of(0x7f800001u))), "a signalling NaN with only low bits stays NaN");
    /* Every result has zero low 16 bits, and the error is at most half a bf16 ulp. */
    int bad = 0;
    for (int k = 0; k < 100000; k++) {
        float x = (float)((uni() - 0.5) * 200.0);
        float r = bn_bf16_round(x);
        uint32_t u;
        memcpy(&u, &r, sizeof u);
        int e;
        frexpf(x, &e);
        if ((u & 0xffffu) || fabsf(r - x) > ldexpf(1.0f, e - 9) * 1.0000001f) bad++;
    }
    CHECK(bad == 0, "%d random values badly rounded", bad);
}

static void test_u8_s8(void) {
    const float t = 2.0f, inv = 255.0f / t, step = t / 255.0f;
    CHECK(bn_quant_u8(0.0f, inv, step) == 0.0f, "0");
    CHECK(bn_quant_u8(-1.0f, inv, step) == 0.0f, "negative clamps to 0");
    CHECK(bn_quant_u8(3.0f, inv, step) == 255.0f * step, "over the threshold clamps to 255");
    CHECK(bn_quant_u8(t, inv, step) == 255.0f * step, "the threshold is code 255");
    CHECK(bn_quant_u8(10.0f * step, inv, step) == 10.0f * step, "a code's value is itself");
    CHECK(bn_quant_u8(2.5f / inv, inv, step) == 2.0f * step, "2.5 ties to 2");
    CHECK(bn_quant_u8(3.5f / inv, inv, step) == 4.0f * step, "3.5 ties to 4");
    CHECK(bn_quant_u8(NAN, inv, step) == 0.0f, "NaN saturates to 0");
    /* Idempotent: a quantised value quantises to itself. */
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        float v = bn_quant_u8((float)c * step, inv, step);
        if (bn_quant_u8(v, inv, step) != v || fabsf(v - (float)c * step) > 1e-6f) bad++;
    }
    CHECK(bad == 0, "%d codes not idempotent", bad);
    const float si = 127.0f, ss = 1.0f / 127.0f;
    CHECK(bn_quant_s8(-1.0f, si, ss) == -127.0f * ss, "-1 is -127");
    CHECK(bn_quant_s8(-2.0f, si, ss) == -128.0f * ss, "under -1 saturates to -128");
    CHECK(bn_quant_s8(1.0f, si, ss) == 127.0f * ss, "1 is 127");
    CHECK(bn_quant_s8(0.5f / 127.0f, si, ss) == 0.0f, "half a step ties to 0");
}

/* --- the entropy oracle: quant.h's description, bin by bin. */
static double oracle_kl(const uint64_t *h, int nbins, int i) {
    double total = 0, kept = 0;
    for (int b = 0; b < nbins; b++) total += (double)h[b];
    for (int b = 0; b < i; b++) kept += (double)h[b];
    double *q = calloc((size_t)i, sizeof *q);
    /* Q: per code, the kept count spread evenly over its non-empty bins. */
    for (int b = 0; b < i;) {
        long code = ((2L * b + 1) * 255 + i) / (2L * i);
        int e = b, nz = 0;
        double sum = 0;
        while (e < i && ((2L * e + 1) * 255 + i) / (2L * i) == code) {
            sum += (double)h[e];
            nz += h[e] != 0;
            e++;
        }
        for (int k = b; k < e; k++) q[k] = h[k] ? sum / nz / kept : 0.0;
        b = e;
    }
    double kl = 0;
    for (int k = 0; k < i; k++) {
        double p = ((double)h[k] + (k == i - 1 ? total - kept : 0.0)) / total;
        if (p <= 0) continue;
        if (q[k] <= 0) {
            kl = INFINITY;
            break;
        }
        kl += p * log(p / q[k]);
    }
    free(q);
    return kl;
}

static void test_thresholds(void) {
    enum { NB = 2048 };
    static uint64_t h[NB];
    bn_act_stats s = {10.0, 0, h, NB};
    const double w = 10.0 / NB;

    /* Nothing non-zero: 1 for every method. */
    memset(h, 0, sizeof h);
    s.zeros = 100;
    for (int m = 0; m < BN_CALIB_NMETHODS; m++)
        CHECK(bn_calib_threshold((bn_calib_method)m, 99.0, &s) == 1.0f, "all-zero tensor, method %d", m);

    /* max */
    h[NB - 1] = 1;
    h[3] = 1000;
    CHECK(bn_calib_threshold(BN_CALIB_MAX, 0, &s) == 10.0f, "max");

    /* percentile: 100 zeros + 1000 in bin 3 + 1 at the top. 99% of 1101
     * lies at or below bin 3's top. */
    float t = bn_calib_threshold(BN_CALIB_PERCENTILE, 99.0, &s);
    CHECK(fabs(t - 4 * w) < 1e-6, "percentile 99: %g, want %g", t, 4 * w);
    t = bn_calib_threshold(BN_CALIB_PERCENTILE, 100.0, &s);
    CHECK(fabs(t - 10.0) < 1e-5, "percentile 100 is the max: %g", t);
    /* 9% of 1101 = 99 values: the zeros alone hold them; the first bin's top. */
    t = bn_calib_threshold(BN_CALIB_PERCENTILE, 9.0, &s);
    CHECK(fabs(t - w) < 1e-6, "percentile 9 in the zeros: %g", t);

    /* entropy against the oracle, on shapes with long tails and outliers. */
    for (int shape = 0; shape < 4; shape++) {
        memset(h, 0, sizeof h);
        for (int k = 0; k < 200000; k++) {
            double u = uni(), x;
            switch (shape) {
            case 0: x = fabs(sqrt(-2 * log(u)) * cos(6.283185307 * uni())) * 0.03; break; /* a narrow bulk */
            case 1: x = fabs(sqrt(-2 * log(u)) * cos(6.283185307 * uni())) * 0.2; break; /* half-normal */
            case 2: x = u; break;                            /* uniform over the range */
            default: x = pow(u, 4.0); break;                 /* a heavy concentration at 0 */
            }
            int b = (int)(x / 1.0 * NB);
            if (b >= NB) b = NB - 1;
            h[b]++;
        }
        h[NB - 1] += 3; /* a few outliers at the max */
        s.max = 1.0;
        s.zeros = 0;
        double best = INFINITY;
        int bi = NB;
        for (int i = 256; i <= NB; i++) {
            double kl = oracle_kl(h, NB, i);
            if (kl < best) {
                best = kl;
                bi = i;
            }
        }
        float want = (float)(bi * (1.0 / NB));
        t = bn_calib_threshold(BN_CALIB_ENTROPY, 0, &s);
        /* The fast search may pick a neighbour of nearly equal divergence. */
        double kl_t = oracle_kl(h, NB, (int)lrint(t * NB));
        CHECK(fabs(t - want) < 1e-6 || fabs(kl_t - best) <= 1e-9 * fabs(best) + 1e-12,
              "entropy shape %d: %g (KL %.9g), oracle %g (KL %.9g)", shape, t, kl_t, want, best);
        printf("shape %d: entropy threshold %g\n", shape, t);
        if (shape == 0) CHECK(t < 0.5f, "entropy clips far outliers of a narrow bulk: %g", t);
        if (shape == 2) CHECK(t > 0.95f, "entropy keeps a uniform range: %g", t);
        /* Zeros do not move the entropy threshold. */
        s.zeros = 1000000;
        CHECK(bn_calib_threshold(BN_CALIB_ENTROPY, 0, &s) == t, "zeros changed the entropy threshold");
        CHECK(bn_calib_threshold(BN_CALIB_PERCENTILE, 99.99, &s) <= 1.0f, "percentile within max");
    }
}

static char g_dir[256];

static void fill(bn_calib *c, const char *sha) {
    const bn_graph *g = bn_inception_v3();
    memset(c, 0, sizeof *c);
    c->ntensors = g->ntensors;
    for (int i = 0; i < g->ntensors; i++) c->thresh[i] = i == g->input ? BN_CALIB_INPUT_THRESH : 0.5f + 0.01f * i;
    snprintf(c->method, sizeof c->method, "percentile");
    c->percentile = 99.99;
    c->images = 32;
    snprintf(c->weights_sha256, sizeof c->weights_sha256, "%s", sha);
    snprintf(c->preprocess, sizeof c->preprocess, "keras");
}

static void test_file(void) {
    const bn_graph *g = bn_inception_v3();
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *other = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char path[512], err[2048];
    snprintf(path, sizeof path, "%s/cal.h5", g_dir);
    bn_calib c, r;
    fill(&c, sha);
    CHECK(bn_calib_write(path, &c, err, sizeof err) == 0, "write: %s", err);
    char fsha[65];
    CHECK(bn_file_sha256(path, fsha, err, sizeof err) == 0 && !strcmp(fsha, c.sha256), "write sets sha256");
    CHECK(bn_calib_read(path, sha, &r, err, sizeof err) == 0, "read: %s", err);
    CHECK(r.ntensors == g->ntensors && !strcmp(r.method, "percentile") && r.percentile == 99.99 && r.images == 32 &&
              !strcmp(r.preprocess, "keras") && !strcmp(r.weights_sha256, sha) && !strcmp(r.sha256, c.sha256) &&
              !strcmp(r.path, path),
          "fields read back");
    CHECK(!memcmp(r.thresh, c.thresh, sizeof(float) * (size_t)g->ntensors), "thresholds read back");
    CHECK(bn_calib_read(path, "", &r, err, sizeof err) == 0, "empty sha skips the weights check: %s", err);
    char first[65];
    memcpy(first, c.sha256, sizeof first);
    sleep(1); /* a timestamp would now differ */
    CHECK(bn_calib_write(path, &c, err, sizeof err) == 0 && !strcmp(first, c.sha256),
          "the same calibration written twice must give the same bytes (%s, %s)", first, c.sha256);
    CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "HDF5 objects left open after reading");

    CHECK(bn_calib_read(path, other, &r, err, sizeof err) == -1 && strstr(err, path) &&
              strstr(err, "recalibrate with these weights"),
          "other weights: %s", err);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.h5", g_dir);
    CHECK(bn_calib_read(missing, sha, &r, err, sizeof err) == -1 && strstr(err, missing) &&
              strstr(err, "bneck calibrate"),
          "missing: %s", err);
    CHECK(bn_calib_read(g_dir, sha, &r, err, sizeof err) == -1 && strstr(err, "folder"), "folder: %s", err);
    char txt[600];
    snprintf(txt, sizeof txt, "%s/t.h5", g_dir);
    FILE *f = fopen(txt, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    CHECK(bn_calib_read(txt, sha, &r, err, sizeof err) == -1 && strstr(err, "not an HDF5 file"), "text: %s", err);

    /* max writes no percentile attribute and reads back percentile 0. */
    snprintf(c.method, sizeof c.method, "max");
    CHECK(bn_calib_write(path, &c, err, sizeof err) == 0, "write max: %s", err);
    CHECK(bn_calib_read(path, sha, &r, err, sizeof err) == 0 && r.percentile == 0.0 && !strcmp(r.method, "max"),
          "read max: %s", err);
    /* The writer refuses what the reader would. */
    c.thresh[5] = 0.0f;
    CHECK(bn_calib_write(path, &c, err, sizeof err) == -1 && strstr(err, g->tensors[5].name), "zero threshold: %s", err);
    c.thresh[5] = NAN;
    CHECK(bn_calib_write(path, &c, err, sizeof err) == -1, "NaN threshold written");
    c.thresh[5] = 1.0f;
    snprintf(c.method, sizeof c.method, "median");
    CHECK(bn_calib_write(path, &c, err, sizeof err) == -1, "unknown method written");
    CHECK(access(path, F_OK) == 0, "a refused write must leave the earlier file");
    unlink(path);
    unlink(txt);
    CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "HDF5 objects left open");
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/bneck-test-quant.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_bf16();
    test_u8_s8();
    test_thresholds();
    test_file();
    rmdir(g_dir);
    return t_done("test_quant");
}
