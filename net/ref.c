/* ref.c: the reference backend. Plain loops over the layer table, every sum
 * accumulated in double, no tricks beyond skipping exact zeros (ReLU
 * outputs), which does not change a sum. It is the ground truth the fast
 * backends are tested against. */
#include "config.h"
#include "net/backend.h"
#include "net/plan.h"
#include "pipeline/log.h"

#include <stdio.h>

#include <float.h>
#include <stdlib.h>

#define AT(t, img, y, x) ((((size_t)(img) * (t)->h + (y)) * (t)->w + (x)) * (t)->c)

static void ref_conv(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                     const float *src, float *dst, int n, const float *w, const float *b) {
    (void)ctx;
    const int cin = l->cin, cout = l->cout;
    double *acc = malloc(sizeof(double) * (size_t)cout);
    if (!acc) abort();
    for (int img = 0; img < n; img++)
        for (int oy = 0; oy < d->h; oy++)
            for (int ox = 0; ox < d->w; ox++) {
                for (int co = 0; co < cout; co++) acc[co] = b[co];
                for (int ky = 0; ky < l->kh; ky++) {
                    int iy = oy * l->stride - l->pad_h + ky;
                    if (iy < 0 || iy >= s->h) continue;
                    for (int kx = 0; kx < l->kw; kx++) {
                        int ix = ox * l->stride - l->pad_w + kx;
                        if (ix < 0 || ix >= s->w) continue;
                        const float *xp = src + AT(s, img, iy, ix);
                        const float *wp = w + ((size_t)ky * l->kw + kx) * cin * cout;
                        for (int ci = 0; ci < cin; ci++) {
                            double xv = xp[ci];
                            if (xv == 0.0) continue;
                            const float *wr = wp + (size_t)ci * cout;
                            for (int co = 0; co < cout; co++) acc[co] += xv * (double)wr[co];
                        }
                    }
                }
                float *o = dst + AT(d, img, oy, ox) + l->dst_off;
                for (int co = 0; co < cout; co++) o[co] = acc[co] > 0.0 ? (float)acc[co] : 0.0f;
            }
    free(acc);
}

static void ref_pool(const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst,
                     int n, int is_max) {
    const int C = s->c;
    for (int img = 0; img < n; img++)
        for (int oy = 0; oy < d->h; oy++)
            for (int ox = 0; ox < d->w; ox++)
                for (int c = 0; c < C; c++) {
                    double sum = 0.0, mx = -DBL_MAX;
                    int cnt = 0;
                    for (int ky = 0; ky < l->kh; ky++)
                        for (int kx = 0; kx < l->kw; kx++) {
                            int iy = oy * l->stride - l->pad_h + ky, ix = ox * l->stride - l->pad_w + kx;
                            if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w) continue;
                            double v = src[AT(s, img, iy, ix) + c];
                            sum += v;
                            if (v > mx) mx = v;
                            cnt++;
                        }
                    dst[AT(d, img, oy, ox) + l->dst_off + c] = (float)(is_max ? mx : sum / cnt);
                }
}

static void ref_max(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src,
                    float *dst, int n) {
    (void)ctx;
    ref_pool(l, s, d, src, dst, n, 1);
}

static void ref_avg(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src,
                    float *dst, int n) {
    (void)ctx;
    ref_pool(l, s, d, src, dst, n, 0);
}

static void ref_gap(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src,
                    float *dst, int n) {
    (void)ctx;
    (void)l;
    for (int img = 0; img < n; img++)
        for (int c = 0; c < s->c; c++) {
            double sum = 0.0;
            for (int p = 0; p < s->h * s->w; p++) sum += src[((size_t)img * s->h * s->w + p) * s->c + c];
            dst[(size_t)img * d->c + c] = (float)(sum / (s->h * s->w));
        }
}

/* The backend: the kernels above run by the shared executor. */
static void ref_destroy(void *ctx) {
    bn_runner *r = ctx;
    if (!r) return;
    bn_runner_free(r);
    free(r);
}

static void *ref_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    bn_runner *r = callocCheck(1, sizeof *r);
    if (bn_runner_init(r, cfg->max_batch, err, errlen)) {
        ref_destroy(r);
        return NULL;
    }
    r->k = (bn_kernels){ref_conv, ref_max, ref_avg, ref_gap, NULL, NULL};
    r->w = cfg->model->w;
    r->b = cfg->model->b;
    return r;
}

static int ref_forward(void *ctx, const float *in, int n, float *out, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    bn_runner_run(ctx, in, n, out);
    return 0;
}

static size_t ref_bytes(const void *ctx) { return bn_runner_bytes(ctx); }

const bn_backend_ops bn_backend_ref = {"ref", "plain loops, double accumulation: the ground truth (slow)",
                                       BN_PREC_BIT(BN_PREC_FP32), 1, 0, 1, 0, ref_create, ref_forward, ref_bytes, ref_destroy,
                                       NULL, NULL, NULL};
