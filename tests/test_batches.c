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
    const bn_backend backends[] = {BN_BACKEND_GEMM,
#ifdef HAVE_DNNL
                                   BN_BACKEND_DNNL
#endif
    };
    float *full = malloc(MAXB * BN_FEATURES * sizeof(float)), *part = malloc(MAXB * BN_FEATURES * sizeof(float));
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        char err[256];
        bn_engine *e = bn_engine_create(&m, backends[b], MAXB, 2, err, sizeof err);
        CHECK(e != NULL, "%s engine: %s", bn_backend_name(backends[b]), err);
        if (!e) continue;
        bn_engine_forward(e, in, MAXB, full);
        for (int n = MAXB - 1; n >= 1; n--) { /* 6 sizes after the full one */
            bn_engine_forward(e, in + (MAXB - n) * img, n, part);
            double worst = 0;
            for (int k = 0; k < n * BN_FEATURES; k++) {
                double d = fabs((double)part[k] - full[(size_t)(MAXB - n) * BN_FEATURES + k]);
                if (d > worst) worst = d;
            }
            /* oneDNN: bit for bit (measured); OpenBLAS: within float rounding. */
            double tol = backends[b] == BN_BACKEND_DNNL ? 0.0 : 1e-5;
            CHECK(worst <= tol, "%s batch %d: max abs diff %g from the full batch", bn_backend_name(backends[b]), n,
                  worst);
        }
        bn_engine_free(e);
    }
    free(full);
    free(part);
    bn_model_free(&m);
    bn_rgb_free(&pic);
    free(in);
    return t_done("test_batches");
}
