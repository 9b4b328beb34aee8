/* test_batches.c: an engine gives an image the same features whatever the
 * size of the batch it comes in, for every size from 1 to max_batch (more
 * sizes than the oneDNN backend caches primitives for). extract relies on
 * this: its batches shrink by their failed images. */
#include "config.h"
#include "io/image.h"
#include "net/calib.h"
#include "net/engine.h"
#include "stages/synth.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 7

int main(void) {
    const size_t img = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *in = malloc(MAXB * img * sizeof(float));
    bn_rgb pic = {320, 240, malloc(320 * 240 * 3), 320 * 240 * 3};
    for (int i = 0; i < MAXB; i++) {
        bn_synth_image(i % 5, 5, 40 + (unsigned long long)i, 320, 240, pic.rgb);
        bn_resize_norm(&pic, BN_INPUT_SIZE, BN_INPUT_SIZE, BN_NORM_KERAS, in + i * img);
    }
    bn_raw_params p;
    bn_raw_alloc(&p);
    bn_random_init(&p, 11);
    bn_calibrate(&p, in, 2);
    bn_model m;
    bn_model_fold(&p, &m);
    bn_raw_free(&p);
    const char *const backends[] = {"gemm",
#ifdef HAVE_DNNL
                                    "dnnl"
#endif
    };
    float *full = malloc(MAXB * BN_FEATURES * sizeof(float)), *part = malloc(MAXB * BN_FEATURES * sizeof(float));
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        char err[256];
        bn_engine_config cfg = {&m, backends[b], BN_PREC_FP32, NULL, MAXB, 2, 0, 0};
        bn_engine *e = bn_engine_create(&cfg, err, sizeof err);
        CHECK(e != NULL, "%s engine: %s", backends[b], err);
        if (!e) continue;
        bn_engine_forward(e, in, MAXB, full);
        for (int n = MAXB - 1; n >= 1; n--) { /* 6 sizes after the full one */
            bn_engine_forward(e, in + (MAXB - n) * img, n, part);
            /* Bit for bit on every backend. gemm gets there by giving each
             * image its own SGEMM calls: OpenBLAS's result for a row depends
             * on where the row sits in the M = n*H*W rows of one big call
             * (its blocking and thread split follow M), which moved
             * features by up to 2e-5 relative L2 with its Haswell kernels. */
            double worst = 0, worst_rel = 0;
            for (int i = 0; i < n; i++) {
                const float *x = part + (size_t)i * BN_FEATURES, *y = full + (size_t)(MAXB - n + i) * BN_FEATURES;
                double dd = 0, yy = 0;
                for (int k = 0; k < BN_FEATURES; k++) {
                    double d = fabs((double)x[k] - y[k]);
                    if (d > worst) worst = d;
                    dd += d * d;
                    yy += (double)y[k] * y[k];
                }
                double rel = yy > 0 ? sqrt(dd / yy) : sqrt(dd);
                if (rel > worst_rel) worst_rel = rel;
            }
            CHECK(worst == 0.0, "%s batch %d: max abs diff %g (relative L2 %g) from the full batch", backends[b], n,
                  worst, worst_rel);
        }
        CHECK(bn_engine_streams(e) == 1, "%s: the default is 1 stream, got %d", backends[b], bn_engine_streams(e));
        bn_engine_free(e);
        /* Two streams (a backend state per thread, each on a slice of the
         * batch) against one state running both threads: the same rows. */
        if (strcmp(backends[b], "dnnl")) continue; /* gemm runs one stream (below) */
        bn_engine_config two = cfg;
        two.streams = 2;
        bn_engine *e2 = bn_engine_create(&two, err, sizeof err);
        CHECK(e2 != NULL, "%s engine, 2 streams: %s", backends[b], err);
        if (!e2) continue;
        CHECK(bn_engine_streams(e2) == 2, "%s: asked for 2 streams, got %d", backends[b], bn_engine_streams(e2));
        for (int n = MAXB; n >= 1; n -= 3) { /* 7 (4 + 3), 4 (2 + 2), 1 (1 + none) */
            bn_engine_forward(e2, in + (MAXB - n) * img, n, part);
            double worst = 0;
            for (size_t k = 0; k < (size_t)n * BN_FEATURES; k++) {
                double d = fabs((double)part[k] - full[(size_t)(MAXB - n) * BN_FEATURES + k]);
                if (d > worst) worst = d;
            }
            CHECK(worst == 0.0, "%s: 2 streams of 1 thread, batch %d, differ from 1 stream of 2 threads by %g",
                  backends[b], n, worst);
        }
        bn_engine_free(e2);
    }
    /* A backend that cannot run side by side refuses streams (gemm: OpenBLAS
     * threads are process-wide), and streams need a thread each. */
    {
        char err[256];
        bn_engine_config cfg = {&m, "gemm", BN_PREC_FP32, NULL, MAXB, 2, 0, 0};
        bn_engine *e = bn_engine_create(&cfg, err, sizeof err);
        CHECK(e && bn_engine_streams(e) == 1, "gemm: streams %d, want 1 (%s)", e ? bn_engine_streams(e) : -1, err);
        bn_engine_free(e);
        cfg.streams = 2;
        e = bn_engine_create(&cfg, err, sizeof err);
        CHECK(!e && strstr(err, "one stream"), "gemm with 2 streams: want a refusal, got %s", e ? "an engine" : err);
        bn_engine_free(e);
        cfg.backend = "ref";
        cfg.streams = 3;
        e = bn_engine_create(&cfg, err, sizeof err);
        CHECK(!e && strstr(err, "3 streams need at least as many threads"), "3 streams on 2 threads: got %s",
              e ? "an engine" : err);
        bn_engine_free(e);
        cfg.streams = 2; /* ref can: 2 states for 2 threads */
        e = bn_engine_create(&cfg, err, sizeof err);
        CHECK(e && bn_engine_streams(e) == 2, "ref, 2 streams on 2 threads: got %d (%s)", e ? bn_engine_streams(e) : -1,
              e ? "" : err);
        bn_engine_free(e);
    }
    free(full);
    free(part);
    bn_model_free(&m);
    bn_rgb_free(&pic);
    free(in);
    return t_done("test_batches");
}
