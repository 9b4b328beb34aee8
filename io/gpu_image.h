/* gpu_image.h: decoding JPEGs (nvJPEG) and the TF1 bilinear resize on a GPU
 * (io/gpu_image.cu; built with the cuda backend, the decoder with nvJPEG).
 *
 * One bn_gpu_image per thread: its own CUDA stream, nvJPEG state and device
 * buffers. The resize and normalisation follow io/image.h's bn_resize_norm
 * operation by operation (no fused multiply-adds), so from the same pixels
 * the GPU gives the CPU's floats. An image nvJPEG cannot take is not an
 * error here: the caller decodes it on the CPU, one image at a time, and the
 * batch goes on.
 *
 * NOT YET RUN ON HARDWARE (written and compiled on machines without a GPU).
 */
#ifndef BN_GPU_IMAGE_H
#define BN_GPU_IMAGE_H

#include "io/image.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bn_gpu_image bn_gpu_image;

/* 1 when this build decodes JPEGs on the GPU (nvJPEG), else 0. */
int bn_gpu_image_has_nvjpeg(void);

/* A worker on CUDA device dev; images over max_pixels are left to the CPU
 * decoder (which refuses them with its reason). NULL with the reason in err
 * (no device, out of memory, nvJPEG failed to start). */
bn_gpu_image *bn_gpu_image_new(int dev, long long max_pixels, char *err, size_t errlen);

/* Resize in to 299 x 299 (TF1 bilinear) and normalise on the GPU.
 * out: host (299, 299, 3) float. Returns 0, or -1 with err (a CUDA error). */
int bn_gpu_resize_norm(bn_gpu_image *g, const bn_rgb *in, bn_norm norm, float *out, char *err, size_t errlen);

/* Decode JPEG bytes with nvJPEG, then resize and normalise on the GPU into
 * out (host, (299, 299, 3) float). Returns 0; 1 when nvJPEG does not take
 * this image (not a JPEG it decodes, over max_pixels, its error), with why,
 * for the CPU decoder to try; -1 on a CUDA error, with why: the device is
 * unusable from then on (a sticky error), and so is g. */
int bn_gpu_decode_resize(bn_gpu_image *g, const unsigned char *buf, size_t len, bn_norm norm, float *out, char *why,
                         size_t whylen);

void bn_gpu_image_free(bn_gpu_image *g);

#ifdef __cplusplus
}
#endif

#endif
