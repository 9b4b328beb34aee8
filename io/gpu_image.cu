/* gpu_image.cu: see io/gpu_image.h.
 *
 * The resize runs one thread per output value (y, x, channel). Each thread
 * recomputes its two source columns and rows as io/resize.c's axis_fill
 * does (scale = in / out in float, s = i * scale, floor, ceil, clamp,
 * weight s - floor(s)), and interpolates horizontally on both source rows,
 * then vertically, then normalises, with the *_rn intrinsics so that nvcc
 * cannot contract a multiply and an add into one rounding.
 *
 * NOT YET RUN ON HARDWARE. */
#include "config.h"

#include "io/gpu_image.h"

#include <cuda_runtime.h>
#ifdef HAVE_NVJPEG
#include <nvjpeg.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bn_gpu_image {
    int dev;                  /* CUDA device */
    long long max_pixels;     /* larger images go to the CPU decoder */
    cudaStream_t stream;      /* this worker's */
    unsigned char *rgb;       /* device (h, w, 3) uint8 pixels of the current image */
    size_t rgb_cap;           /* bytes at rgb */
    float *out;               /* device (299, 299, 3) float */
    int failed;               /* a CUDA error happened: never used again */
#ifdef HAVE_NVJPEG
    nvjpegHandle_t jh;        /* nvJPEG library handle */
    nvjpegJpegState_t js;     /* this worker's decoder state */
#endif
};

extern "C" int bn_gpu_image_has_nvjpeg(void) {
#ifdef HAVE_NVJPEG
    return 1;
#else
    return 0;
#endif
}

/* Source index pair and weight of output index i (io/resize.c, axis_fill). */
__device__ static void axis_at(int i, int in, int out, int *lo, int *hi, float *w) {
    const float scale = __fdiv_rn((float)in, (float)out);
    const float s = __fmul_rn((float)i, scale);
    const float f = floorf(s);
    int l = (int)f, h = (int)ceilf(s);
    if (l < 0) l = 0;
    if (h > in - 1) h = in - 1;
    if (l > in - 1) l = in - 1;
    *lo = l;
    *hi = h;
    *w = __fsub_rn(s, f);
}

__device__ static float lerp_rn(float a, float b, float w) { return __fadd_rn(a, __fmul_rn(__fsub_rn(b, a), w)); }

/* rgb: (in_h, in_w, 3) uint8; out: (out_h, out_w, 3) float. */
__global__ static void k_resize_norm(const unsigned char *rgb, int in_w, int in_h, float *out, int out_w, int out_h,
                                     int tf2015) {
    const size_t n = (size_t)out_w * out_h * 3;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int c = (int)(i % 3), x = (int)(i / 3 % out_w), y = (int)(i / 3 / out_w);
        int x0, x1, y0, y1;
        float wx, wy;
        axis_at(x, in_w, out_w, &x0, &x1, &wx);
        axis_at(y, in_h, out_h, &y0, &y1, &wy);
        const size_t r0 = (size_t)y0 * in_w * 3, r1 = (size_t)y1 * in_w * 3;
        const float t = lerp_rn((float)rgb[r0 + (size_t)x0 * 3 + c], (float)rgb[r0 + (size_t)x1 * 3 + c], wx);
        const float b = lerp_rn((float)rgb[r1 + (size_t)x0 * 3 + c], (float)rgb[r1 + (size_t)x1 * 3 + c], wx);
        const float v = lerp_rn(t, b, wy);
        out[i] = tf2015 ? __fmul_rn(__fsub_rn(v, 128.0f), 1.0f / 128.0f) : __fsub_rn(__fdiv_rn(v, 127.5f), 1.0f);
    }
}

#define CUG(call)                                                                                                      \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            snprintf(err, errlen, "%s:%d: %s failed on GPU %d: %s", __FILE__, __LINE__, #call, g->dev,                 \
                     cudaGetErrorString(e_));                                                                          \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

extern "C" void bn_gpu_image_free(bn_gpu_image *g) {
    if (!g) return;
    cudaSetDevice(g->dev);
#ifdef HAVE_NVJPEG
    if (g->js) nvjpegJpegStateDestroy(g->js);
    if (g->jh) nvjpegDestroy(g->jh);
#endif
    if (g->rgb) cudaFree(g->rgb);
    if (g->out) cudaFree(g->out);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g);
}

extern "C" bn_gpu_image *bn_gpu_image_new(int dev, long long max_pixels, char *err, size_t errlen) {
    bn_gpu_image *g = (bn_gpu_image *)calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->dev = dev;
    g->max_pixels = max_pixels;
    CUG(cudaSetDevice(dev));
    CUG(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    CUG(cudaMalloc((void **)&g->out, (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3 * sizeof(float)));
#ifdef HAVE_NVJPEG
    {
        nvjpegStatus_t s = nvjpegCreateSimple(&g->jh);
        if (s == NVJPEG_STATUS_SUCCESS) s = nvjpegJpegStateCreate(g->jh, &g->js);
        if (s != NVJPEG_STATUS_SUCCESS) {
            snprintf(err, errlen, "nvJPEG could not start on GPU %d (status %d)", dev, (int)s);
            goto fail;
        }
    }
#endif
    return g;
fail:
    bn_gpu_image_free(g);
    return NULL;
}

/* Room for w x h pixels at g->rgb. */
static cudaError_t rgb_room(bn_gpu_image *g, size_t bytes) {
    if (bytes <= g->rgb_cap) return cudaSuccess;
    if (g->rgb) cudaFree(g->rgb);
    g->rgb = NULL;
    g->rgb_cap = 0;
    cudaError_t e = cudaMalloc((void **)&g->rgb, bytes);
    if (e == cudaSuccess) g->rgb_cap = bytes;
    return e;
}

/* g->rgb (w, h) resized into host out on g's stream, and waited for. */
static int resize_out(bn_gpu_image *g, int w, int h, bn_norm norm, float *out, char *err, size_t errlen) {
    const size_t n = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    k_resize_norm<<<(unsigned)((n + 255) / 256), 256, 0, g->stream>>>(g->rgb, w, h, g->out, BN_INPUT_SIZE, BN_INPUT_SIZE,
                                                                     norm == BN_NORM_TF2015);
    CUG(cudaGetLastError());
    CUG(cudaMemcpyAsync(out, g->out, n * sizeof(float), cudaMemcpyDeviceToHost, g->stream));
    CUG(cudaStreamSynchronize(g->stream));
    return 0;
fail:
    g->failed = 1;
    return -1;
}

extern "C" int bn_gpu_resize_norm(bn_gpu_image *g, const bn_rgb *in, bn_norm norm, float *out, char *err, size_t errlen) {
    if (g->failed) {
        snprintf(err, errlen, "GPU %d failed before", g->dev);
        return -1;
    }
    const size_t bytes = (size_t)in->width * in->height * 3;
    CUG(cudaSetDevice(g->dev));
    CUG(rgb_room(g, bytes));
    CUG(cudaMemcpyAsync(g->rgb, in->rgb, bytes, cudaMemcpyHostToDevice, g->stream));
    return resize_out(g, in->width, in->height, norm, out, err, errlen);
fail:
    g->failed = 1;
    return -1;
}

extern "C" int bn_gpu_decode_resize(bn_gpu_image *g, const unsigned char *buf, size_t len, bn_norm norm, float *out,
                                    char *why, size_t whylen) {
#ifndef HAVE_NVJPEG
    (void)g, (void)buf, (void)len, (void)norm, (void)out;
    snprintf(why, whylen, "this build has no nvJPEG");
    return 1;
#else
    char *err = why;
    size_t errlen = whylen;
    if (g->failed) {
        snprintf(why, whylen, "GPU %d failed before", g->dev);
        return -1;
    }
    int ncomp = 0, widths[NVJPEG_MAX_COMPONENT], heights[NVJPEG_MAX_COMPONENT];
    nvjpegChromaSubsampling_t sub;
    nvjpegStatus_t s = nvjpegGetImageInfo(g->jh, buf, len, &ncomp, &sub, widths, heights);
    if (s != NVJPEG_STATUS_SUCCESS) {
        snprintf(why, whylen, "nvJPEG cannot read the header (status %d)", (int)s);
        return 1;
    }
    if (ncomp != 1 && ncomp != 3) { /* CMYK, YCCK: the CPU decoder's Adobe rule, not nvJPEG's */
        snprintf(why, whylen, "%d colour components: left to the CPU decoder", ncomp);
        return 1;
    }
    const int w = widths[0], h = heights[0];
    if (w < 1 || h < 1 || (long long)w * h > g->max_pixels) {
        snprintf(why, whylen, "%d x %d pixels: left to the CPU decoder", w, h);
        return 1;
    }
    CUG(cudaSetDevice(g->dev));
    CUG(rgb_room(g, (size_t)w * h * 3));
    {
        nvjpegImage_t img;
        memset(&img, 0, sizeof img);
        img.channel[0] = g->rgb;
        img.pitch[0] = (size_t)w * 3;
        s = nvjpegDecode(g->jh, g->js, buf, len, NVJPEG_OUTPUT_RGBI, &img, g->stream);
    }
    if (s == NVJPEG_STATUS_EXECUTION_FAILED || s == NVJPEG_STATUS_INTERNAL_ERROR) {
        /* Maybe the device, maybe the image: the stream says which. */
        cudaError_t e = cudaStreamSynchronize(g->stream);
        if (e != cudaSuccess) {
            snprintf(why, whylen, "nvjpegDecode on GPU %d: %s", g->dev, cudaGetErrorString(e));
            g->failed = 1;
            return -1;
        }
    }
    if (s != NVJPEG_STATUS_SUCCESS) {
        snprintf(why, whylen, "nvJPEG cannot decode it (status %d)", (int)s);
        return 1;
    }
    return resize_out(g, w, h, norm, out, err, errlen);
fail:
    g->failed = 1;
    return -1;
#endif
}
