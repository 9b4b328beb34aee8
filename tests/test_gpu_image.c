/* test_gpu_image.c: decoding and resizing on the GPU against the CPU.
 *   1. the GPU's TF1 bilinear resize and normalisation of the same pixels
 *      equals bn_resize_norm (both normalisations; down- and upscaling,
 *      odd sizes, 1 x 1): at most 1e-5 apart, value by value;
 *   2. with nvJPEG: JPEGs (4:2:0, 4:4:4, progressive, grey) decoded on the
 *      GPU come within a mean 0.02 (about 1.3 grey levels, the decoders'
 *      IDCT and upsampling differ) of libjpeg-turbo's, resized alike;
 *      a corrupt JPEG, an image over the pixel limit and a PNG are left to
 *      the CPU (status 1), and the worker goes on after them.
 * Skips (77) in a build without the cuda backend or on a machine without a
 * GPU. */
#include "config.h"
#include "io/gpu_image.h"
#include "io/image.h"
#include "io/imgwrite.h"
#include "net/engine.h"
#include "stages/synth.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOUT ((size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3)

static double max_abs(const float *a, const float *b) {
    double m = 0;
    for (size_t i = 0; i < NOUT; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static double mean_abs(const float *a, const float *b) {
    double s = 0;
    for (size_t i = 0; i < NOUT; i++) s += fabs((double)a[i] - b[i]);
    return s / NOUT;
}

int main(void) {
    char why[256] = "";
    if (bn_engine_gpu_count(why, sizeof why) < 1) {
        printf("SKIP: no GPU (%s)\n", why);
        return 77;
    }
    char err[512];
    bn_gpu_image *g = bn_gpu_image_new(0, 4000000, err, sizeof err);
    CHECK(g != NULL, "GPU image worker: %s", err);
    if (!g) return t_done("test_gpu_image");
    float *cpu = malloc(NOUT * sizeof(float)), *gpu = malloc(NOUT * sizeof(float));

    /* 1. The resize, from the same pixels. */
    const int sizes[][2] = {{500, 333}, {320, 240}, {299, 299}, {1, 1}, {97, 1201}, {1024, 768}, {150, 100}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        bn_rgb in = {sizes[s][0], sizes[s][1], NULL, 0};
        in.cap = (size_t)in.width * in.height * 3;
        in.rgb = malloc(in.cap);
        bn_synth_image((int)s % 5, 5, 11 + s, in.width, in.height, in.rgb);
        for (int norm = 0; norm < 2; norm++) {
            bn_resize_norm(&in, BN_INPUT_SIZE, BN_INPUT_SIZE, (bn_norm)norm, cpu);
            int rc = bn_gpu_resize_norm(g, &in, (bn_norm)norm, gpu, err, sizeof err);
            CHECK(rc == 0, "GPU resize %dx%d: %s", in.width, in.height, err);
            double d = rc == 0 ? max_abs(cpu, gpu) : 1e9;
            printf("resize %4dx%-4d %-6s: max |GPU - CPU| %.2e\n", in.width, in.height, bn_norm_name((bn_norm)norm), d);
            CHECK(d <= 1e-5, "resize %dx%d %s: GPU and CPU differ by %.3g", in.width, in.height,
                  bn_norm_name((bn_norm)norm), d);
        }
        free(in.rgb);
    }

    /* 2. nvJPEG against libjpeg-turbo. */
    if (!bn_gpu_image_has_nvjpeg()) {
        printf("nvJPEG: not in this build; decode checks skipped\n");
    } else {
        bn_decode_opts dopts = {BN_DEFAULT_MAX_PIXELS, 0};
        bn_decoder *dec = bn_decoder_new(&dopts);
        bn_rgb pix = {0, 0, NULL, 0};
        bn_img_result res;
        const int w = 500, h = 333;
        unsigned char *rgb = malloc((size_t)w * h * 3);
        bn_synth_image(2, 5, 99, w, h, rgb);
        struct {
            const char *name;
            bn_jpeg_opts o;
        } kinds[] = {
            {"4:2:0", {90, BN_JCS_YCBCR, 2, 2, 0, 0, 0, 0}},
            {"4:4:4", {95, BN_JCS_YCBCR, 1, 1, 0, 0, 0, 0}},
            {"progressive", {90, BN_JCS_YCBCR, 2, 2, 1, 0, 0, 0}},
            {"grey", {90, BN_JCS_GRAY, 0, 0, 0, 0, 0, 0}},
        };
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            unsigned char *jpg = NULL;
            size_t len = 0;
            CHECK(bn_jpeg_encode(rgb, w, h, &kinds[k].o, &jpg, &len, err, sizeof err) == 0, "encode %s: %s",
                  kinds[k].name, err);
            if (!jpg) continue;
            CHECK(bn_decode_mem(dec, jpg, len, &pix, &res) == BN_IMG_OK, "CPU decode %s: %s", kinds[k].name, res.reason);
            bn_resize_norm(&pix, BN_INPUT_SIZE, BN_INPUT_SIZE, BN_NORM_KERAS, cpu);
            int rc = bn_gpu_decode_resize(g, jpg, len, BN_NORM_KERAS, gpu, why, sizeof why);
            CHECK(rc == 0, "nvJPEG %s: %s", kinds[k].name, why);
            if (rc == 0) {
                double m = mean_abs(cpu, gpu), x = max_abs(cpu, gpu);
                printf("nvJPEG %-11s: mean |GPU - CPU| %.4f, max %.4f\n", kinds[k].name, m, x);
                CHECK(m <= 0.02, "nvJPEG %s: mean difference %.4f from libjpeg-turbo", kinds[k].name, m);
            }
            if (k == 0) {
                /* Corrupt: the entropy-coded data overwritten. */
                memset(jpg + len / 3, 0xFF, len / 3);
                rc = bn_gpu_decode_resize(g, jpg, len / 2, BN_NORM_KERAS, gpu, why, sizeof why);
                CHECK(rc == 1, "a corrupt JPEG: want 1 (left to the CPU), got %d: %s", rc, why);
            }
            free(jpg);
        }
        /* Over the pixel limit (4,000,000 here): left to the CPU. */
        {
            const int bw = 2100, bh = 2000;
            unsigned char *big = calloc((size_t)bw * bh * 3, 1), *jpg = NULL;
            size_t len = 0;
            bn_jpeg_opts o = {80, BN_JCS_YCBCR, 2, 2, 0, 0, 0, 0};
            CHECK(bn_jpeg_encode(big, bw, bh, &o, &jpg, &len, err, sizeof err) == 0, "encode big: %s", err);
            int rc = jpg ? bn_gpu_decode_resize(g, jpg, len, BN_NORM_KERAS, gpu, why, sizeof why) : -2;
            CHECK(rc == 1 && strstr(why, "2100 x 2000"), "over the limit: want 1, got %d: %s", rc, why);
            free(jpg);
            free(big);
        }
        /* A PNG is not nvJPEG's. */
        {
            unsigned char *png = NULL;
            size_t len = 0;
            bn_png_opts po = {BN_PNG_RGB, 0, 0};
            CHECK(bn_png_encode(rgb, w, h, &po, &png, &len, err, sizeof err) == 0, "encode png: %s", err);
            int rc = png ? bn_gpu_decode_resize(g, png, len, BN_NORM_KERAS, gpu, why, sizeof why) : -2;
            CHECK(rc == 1, "a PNG: want 1, got %d: %s", rc, why);
            free(png);
        }
        /* The worker goes on after the refusals. */
        {
            unsigned char *jpg = NULL;
            size_t len = 0;
            bn_jpeg_opts o = {90, BN_JCS_YCBCR, 2, 2, 0, 0, 0, 0};
            if (bn_jpeg_encode(rgb, w, h, &o, &jpg, &len, err, sizeof err) == 0) {
                CHECK(bn_gpu_decode_resize(g, jpg, len, BN_NORM_KERAS, gpu, why, sizeof why) == 0,
                      "nvJPEG after refusals: %s", why);
                free(jpg);
            }
        }
        free(rgb);
        bn_rgb_free(&pix);
        bn_decoder_free(dec);
    }
    bn_gpu_image_free(g);
    free(cpu);
    free(gpu);
    return t_done("test_gpu_image");
}
