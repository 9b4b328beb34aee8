/* gemm.c: the portable fast CPU backend: convolutions as SGEMM on any CBLAS.
 *
 * NHWC makes a 1x1 stride-1 convolution one matrix product,
 * (n*H*W, cin) x (cin, cout), written straight into the destination's channel
 * slice through ldc. Each image gets its own SGEMM calls: OpenBLAS sums a
 * row in an order that depends on where the row sits among the M rows of a
 * call (its blocking and thread split follow M), so one call over the whole
 * batch made an image's features depend on its batch (up to 2e-5 relative
 * L2 with the Haswell kernels); per image they are bit for bit the same at
 * every batch size, at no measured cost. Other kernels gather their input patches first (im2col,
 * (rows, kh*kw*cin), rows = output pixels) a few images at a time, so the
 * scratch buffer stays bounded. Bias and ReLU follow in one pass.
 * Only the BLAS is threaded. The element-wise passes run on the calling
 * thread: spreading them over OpenMP threads made the whole pass twice as
 * slow (4.8 against 11.3 images/s, batch 8, 2 threads), because idle OpenMP
 * threads spin on the cores OpenBLAS' threads need.
 */
#include "config.h"
#include "net/backend.h"
#include "net/plan.h"
#include "pipeline/log.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COL_LIMIT (8u << 20) /* im2col scratch, in floats (32 MB) */

typedef struct {
    int threads;  /* threads for the BLAS */
    bn_gemm_hook hook; /* called on each conv's output before bias + ReLU, or NULL */
    void *hook_user;   /* passed to hook */
    float *col;   /* im2col scratch (COL_LIMIT or one image's worth, whichever is larger) */
    size_t ncol;  /* floats at col */
} gemm_ctx;

/* Bias + ReLU over rows of a channel slice: x[r*ld + c] for c < cout. */
static void bias_relu(float *x, size_t rows, int ld, int cout, const float *b) {
    for (size_t r = 0; r < rows; r++) {
        float *p = x + r * (size_t)ld;
        for (int c = 0; c < cout; c++) {
            float v = p[c] + b[c];
            p[c] = v > 0.0f ? v : 0.0f;
        }
    }
}

/* Patches of images [img0, img0+cnt) into col: (cnt*oh*ow, kh*kw*cin). */
static void im2col(const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, int img0, int cnt,
                   float *col) {
    const int cin = l->cin, K = l->kh * l->kw * cin;
    const size_t rows = (size_t)cnt * d->h * d->w;
    for (size_t r = 0; r < rows; r++) {
        int img = img0 + (int)(r / ((size_t)d->h * d->w));
        int pix = (int)(r % ((size_t)d->h * d->w));
        int oy = pix / d->w, ox = pix % d->w;
        float *out = col + r * (size_t)K;
        for (int ky = 0; ky < l->kh; ky++) {
            int iy = oy * l->stride - l->pad_h + ky;
            for (int kx = 0; kx < l->kw; kx++) {
                int ix = ox * l->stride - l->pad_w + kx;
                float *o = out + ((size_t)ky * l->kw + kx) * cin;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                    memset(o, 0, sizeof(float) * (size_t)cin);
                else
                    memcpy(o, src + (((size_t)img * s->h + iy) * s->w + ix) * cin, sizeof(float) * (size_t)cin);
            }
        }
    }
}

static void gemm_conv(void *vctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                      const float *src, float *dst, int n, const float *w, const float *b) {
    gemm_ctx *c = vctx;
    const int cin = l->cin, cout = l->cout, ldc = d->c;
    const size_t pix = (size_t)d->h * d->w;
    if (l->kh == 1 && l->kw == 1 && l->stride == 1) {
        for (int img = 0; img < n; img++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)pix, cout, cin, 1.0f, src + (size_t)img * pix * cin,
                        cin, w, cout, 0.0f, dst + (size_t)img * pix * ldc + l->dst_off, ldc);
    } else {
        const int K = l->kh * l->kw * cin;
        int per = (int)(c->ncol / (pix * K));
        if (per < 1) per = 1; /* ncol is at least one image's worth */
        for (int img0 = 0; img0 < n; img0 += per) {
            int cnt = n - img0 < per ? n - img0 : per;
            im2col(l, s, d, src, img0, cnt, c->col);
            for (int i = 0; i < cnt; i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)pix, cout, K, 1.0f, c->col + (size_t)i * pix * K, K, w,
                            cout, 0.0f, dst + (size_t)(img0 + i) * pix * ldc + l->dst_off, ldc);
        }
    }
    if (c->hook) c->hook(c->hook_user, l, dst + l->dst_off, pix * n, ldc);
    bias_relu(dst + l->dst_off, pix * n, ldc, cout, b);
}

void bn_gemm_set_hook(void *ctx, bn_gemm_hook hook, void *user) {
    gemm_ctx *c = ctx;
    c->hook = hook;
    c->hook_user = user;
}

void *bn_gemm_kernels(int threads, bn_kernels *k) {
    gemm_ctx *c = callocCheck(1, sizeof *c);
    c->threads = threads;
    /* The largest single-image patch matrix in the graph bounds the scratch from below. */
    const bn_graph *g = bn_inception_v3();
    size_t one = 0;
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        if (l->op != BN_OP_CONV || (l->kh == 1 && l->kw == 1 && l->stride == 1)) continue;
        const bn_tensor *d = &g->tensors[l->dst];
        size_t need = (size_t)d->h * d->w * l->kh * l->kw * l->cin;
        if (need > one) one = need;
    }
    c->ncol = one > COL_LIMIT ? one : COL_LIMIT;
    c->col = mallocCheck(c->ncol * sizeof(float));
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads(threads);
#endif
    k->conv = gemm_conv;
    k->maxpool = bn_pool_max;
    k->avgpool = bn_pool_avg;
    k->gap = bn_pool_gap;
    k->after = NULL;
    k->ctx = c;
    return c;
}

void bn_gemm_kernels_free(void *ctx) {
    gemm_ctx *c = ctx;
    free(c->col);
    free(c);
}

/* ------------------------------------------------------------------ backend */

typedef struct {
    bn_kernels k;          /* gemm kernels; k.ctx is their gemm_ctx */
    const bn_model *model; /* weights (not owned) */
    const bn_graph *g;     /* the table */
    bn_plan plan;          /* arena for max_batch */
    float *arena;          /* (plan.floats,) activations */
} gemm_backend;

static void gemm_destroy(void *ctx) {
    gemm_backend *c = ctx;
    if (!c) return;
    if (c->k.ctx) bn_gemm_kernels_free(c->k.ctx);
    free(c->arena);
    free(c);
}

static void *gemm_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    gemm_backend *c = callocCheck(1, sizeof *c);
    c->model = cfg->model;
    c->g = bn_inception_v3();
    bn_gemm_kernels(cfg->threads, &c->k);
    bn_plan_make(c->g, cfg->max_batch, &c->plan);
    c->arena = bn_plan_arena(&c->plan);
    if (!c->arena) {
        snprintf(err, errlen, "out of memory for %zu MB of activations (batch %d); lower --batch",
                 c->plan.floats * sizeof(float) >> 20, cfg->max_batch);
        gemm_destroy(c);
        return NULL;
    }
    return c;
}

static void gemm_forward(void *ctx, const float *in, int n, float *out) {
    gemm_backend *c = ctx;
    bn_exec(c->g, &c->plan, &c->k, c->model->w, c->model->b, c->arena, in, n, out);
}

static size_t gemm_bytes(const void *ctx) {
    const gemm_backend *c = ctx;
    return c->plan.floats * sizeof(float) + ((const gemm_ctx *)c->k.ctx)->ncol * sizeof(float);
}

const bn_backend_ops bn_backend_gemm = {"gemm", "im2col + CBLAS SGEMM, portable", BN_PREC_BIT(BN_PREC_FP32), 1, 10,
                                        gemm_create, gemm_forward, gemm_bytes, gemm_destroy};
