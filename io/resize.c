/* resize.c: TF1-style bilinear resize (no half-pixel centres) and normalisation.
 *
 * For output pixel x the source coordinate is s = x * (in_w / out_w), both
 * factors in float as TF1 computes them; the neighbours are floor(s) and
 * min(ceil(s), in_w - 1) and the weight is s - floor(s). Interpolation is done
 * horizontally on the two source rows, then vertically, in float, with TF1's
 * expression order, so results match it to float rounding.
 */
#include "io/image.h"
#include "pipeline/log.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

const char *bn_norm_name(bn_norm n) { return n == BN_NORM_TF2015 ? "tf2015" : "keras"; }

int bn_norm_parse(const char *s, bn_norm *out) {
    if (strcmp(s, "keras") == 0) { *out = BN_NORM_KERAS; return 0; }
    if (strcmp(s, "tf2015") == 0) { *out = BN_NORM_TF2015; return 0; }
    return -1;
}

/* One axis of the interpolation: for each output index, the two source
 * indices and the weight of the second. */
typedef struct {
    int *lo, *hi;  /* (n,) source indices */
    float *w;      /* (n,) weight of hi */
} axis_t;

static void axis_fill(axis_t *a, int in, int out) {
    float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        float s = (float)i * scale;
        float f = floorf(s);
        int lo = (int)f, hi = (int)ceilf(s);
        if (lo < 0) lo = 0;
        if (hi > in - 1) hi = in - 1;
        if (lo > in - 1) lo = in - 1;
        a->lo[i] = lo;
        a->hi[i] = hi;
        a->w[i] = s - f;
    }
}

/* Horizontal pass over one source row of in_w pixels: dst (out_w, 3) float,
 * plus one spare float at dst[3 * out_w] that the vector path may write. */
static void hrow(const unsigned char *src, int in_w, const axis_t *ax, int out_w, float *dst) {
    int x = 0;
#if defined(__SSE2__)
    /* Four bytes (RGB + the next pixel's R) per neighbour, widened to four
     * floats; the fourth lane lands in the next pixel's slot and is
     * overwritten by it. Same arithmetic as the scalar loop, lane by lane. */
    const __m128i zero = _mm_setzero_si128();
    for (; x < out_w; x++) {
        int l = ax->lo[x], r = ax->hi[x];
        if (r >= in_w - 1) break; /* the last pixel has no 4th byte: scalar tail */
        int32_t lb, rb;
        memcpy(&lb, src + 3 * l, 4);
        memcpy(&rb, src + 3 * r, 4);
        __m128 a = _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(lb), zero), zero));
        __m128 b = _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(rb), zero), zero));
        __m128 w = _mm_set1_ps(ax->w[x]);
        _mm_storeu_ps(dst + 3 * x, _mm_add_ps(a, _mm_mul_ps(_mm_sub_ps(b, a), w)));
    }
#else
    (void)in_w;
#endif
    for (; x < out_w; x++) {
        const unsigned char *l = src + 3 * ax->lo[x], *r = src + 3 * ax->hi[x];
        float w = ax->w[x];
        for (int c = 0; c < 3; c++) {
            float a = (float)l[c], b = (float)r[c];
            dst[3 * x + c] = a + (b - a) * w;
        }
    }
}

void bn_resize_norm(const bn_rgb *in, int out_h, int out_w, bn_norm norm, float *out) {
    size_t ints = (size_t)out_w * 2 + (size_t)out_h * 2;
    size_t floats = (size_t)out_w + (size_t)out_h + ((size_t)out_w * 3 + 1) * 2;
    char *mem = mallocCheck(ints * sizeof(int) + floats * sizeof(float));
    int *ip = (int *)mem;
    float *fp = (float *)(ip + ints);
    axis_t ax = {ip, ip + out_w, fp};
    axis_t ay = {ip + 2 * out_w, ip + 2 * out_w + out_h, fp + out_w};
    float *rows[2] = {fp + out_w + out_h, fp + out_w + out_h + (size_t)out_w * 3 + 1};
    int rowsrc[2] = {-1, -1}; /* which source row each cached row holds */
    axis_fill(&ax, in->width, out_w);
    axis_fill(&ay, in->height, out_h);
    const size_t stride = (size_t)in->width * 3;
    const int n = out_w * 3;
    for (int y = 0; y < out_h; y++) {
        int want[2] = {ay.lo[y], ay.hi[y]};
        float *r[2];
        for (int k = 0; k < 2; k++) {
            int slot = rowsrc[0] == want[k] ? 0 : rowsrc[1] == want[k] ? 1 : -1;
            if (slot < 0) {
                /* Evict the slot the other needed row does not use. */
                slot = (k == 1 && r[0] == rows[0]) ? 1 : (k == 1 ? 0 : (rowsrc[1] == want[1] ? 0 : 1));
                hrow(in->rgb + (size_t)want[k] * stride, in->width, &ax, out_w, rows[slot]);
                rowsrc[slot] = want[k];
            }
            r[k] = rows[slot];
        }
        float wy = ay.w[y];
        float *o = out + (size_t)y * n;
        const float *t = r[0], *b = r[1];
        if (norm == BN_NORM_KERAS) {
            for (int i = 0; i < n; i++) o[i] = (t[i] + (b[i] - t[i]) * wy) / 127.5f - 1.0f;
        } else {
            for (int i = 0; i < n; i++) o[i] = ((t[i] + (b[i] - t[i]) * wy) - 128.0f) * (1.0f / 128.0f);
        }
    }
    free(mem);
}
