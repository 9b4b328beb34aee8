/* pool.c: max, average (excluding padding) and global average pooling in
 * NHWC, shared by the fast CPU backends. Float arithmetic. */
#include "net/plan.h"

#include <float.h>
#include <stdlib.h>

#define MAX_WINDOW 64 /* pixels in a pooling window (the graph's are 3x3) */

void bn_pool_windows(const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n,
                     bn_window_fn fn, void *user) {
    if (l->kh * l->kw > MAX_WINDOW) abort(); /* the graph table never has one; a new table must raise MAX_WINDOW */
    const int C = s->c;
    const float *pix[MAX_WINDOW];
    for (int img = 0; img < n; img++)
        for (int oy = 0; oy < d->h; oy++)
            for (int ox = 0; ox < d->w; ox++) {
                int cnt = 0;
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->stride - l->pad_h + ky;
                    if (iy < 0 || iy >= s->h) continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->stride - l->pad_w + kx;
                        if (ix < 0 || ix >= s->w) continue;
                        pix[cnt++] = src + (((size_t)img * s->h + iy) * s->w + ix) * C;
                    }
                }
                fn(user, l, pix, cnt, C, dst + (((size_t)img * d->h + oy) * d->w + ox) * d->c + l->dst_off);
            }
}

static void max_window(void *user, const bn_layer *l, const float *const *pix, int cnt, int C, float *o) {
    (void)user;
    (void)l;
    for (int c = 0; c < C; c++) o[c] = -FLT_MAX;
    for (int i = 0; i < cnt; i++)
        for (int c = 0; c < C; c++) o[c] = pix[i][c] > o[c] ? pix[i][c] : o[c];
}

static void avg_window(void *user, const bn_layer *l, const float *const *pix, int cnt, int C, float *o) {
    (void)user;
    (void)l;
    for (int c = 0; c < C; c++) o[c] = 0.0f;
    for (int i = 0; i < cnt; i++)
        for (int c = 0; c < C; c++) o[c] += pix[i][c];
    const float inv = 1.0f / (float)cnt; /* valid pixels only: padding excluded */
    for (int c = 0; c < C; c++) o[c] *= inv;
}

void bn_pool_max(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                 const float *src, float *dst, int n) {
    (void)ctx;
    bn_pool_windows(l, s, d, src, dst, n, max_window, NULL);
}

void bn_pool_avg(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                 const float *src, float *dst, int n) {
    (void)ctx;
    bn_pool_windows(l, s, d, src, dst, n, avg_window, NULL);
}

void bn_pool_gap(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                 const float *src, float *dst, int n) {
    (void)ctx;
    (void)l;
    const int C = s->c, hw = s->h * s->w;
    for (int img = 0; img < n; img++) {
        float *o = dst + (size_t)img * d->c;
        for (int c = 0; c < C; c++) o[c] = 0.0f;
        for (int p = 0; p < hw; p++) {
            const float *x = src + ((size_t)img * hw + p) * C;
            for (int c = 0; c < C; c++) o[c] += x[c];
        }
        for (int c = 0; c < C; c++) o[c] /= (float)hw;
    }
}
