/* gpu_image_none.c: io/gpu_image.h in a build without the cuda backend:
 * no GPU decoding, and every caller is told so. */
#include "config.h"
#include "io/gpu_image.h"

#ifndef HAVE_CUDA
#include <stdio.h>

int bn_gpu_image_has_nvjpeg(void) { return 0; }

bn_gpu_image *bn_gpu_image_new(int dev, long long max_pixels, char *err, size_t errlen) {
    (void)dev, (void)max_pixels;
    snprintf(err, errlen, "this build has no GPU support");
    return NULL;
}

int bn_gpu_resize_norm(bn_gpu_image *g, const bn_rgb *in, bn_norm norm, float *out, char *err, size_t errlen) {
    (void)g, (void)in, (void)norm, (void)out;
    snprintf(err, errlen, "this build has no GPU support");
    return -1;
}

int bn_gpu_decode_resize(bn_gpu_image *g, const unsigned char *buf, size_t len, bn_norm norm, float *out, char *why,
                         size_t whylen) {
    (void)g, (void)buf, (void)len, (void)norm, (void)out;
    snprintf(why, whylen, "this build has no GPU support");
    return 1;
}

void bn_gpu_image_free(bn_gpu_image *g) { (void)g; }
#else
typedef int bn_gpu_image_none_unused; /* the .cu file provides these */
#endif
