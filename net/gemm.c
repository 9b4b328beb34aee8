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
 *
 * bf16 and int8 are exact emulations of the arithmetic, in fp32 SGEMM: no
 * faster than fp32, for checking fidelity on any CPU and as the reference
 * the dnnl bf16 and int8 paths are tested against (docs/engine.md).
 *   bf16: the weights are rounded to bf16 once at create; each conv's patch
 *     matrix is rounded to bf16 before SGEMM (a 1x1 conv's source rows are
 *     a tensor already rounded by the pass below); products of bf16 values
 *     are exact in fp32, and accumulate in fp32; after each layer its slice
 *     (after bias and ReLU) is rounded to bf16, as a bf16 tensor would hold
 *     it. The global average pool reads that and writes fp32 features.
 *   int8: the weights are quantized per output channel (bn_quant_weights)
 *     once at create and used as q * scale; the input tensor is quantized to
 *     s8 (scale t/127) in conv1's patch matrix, and after each convolution
 *     its slice is quantized to u8 with its tensor's scale t/255 (round to
 *     nearest even, clamp). Pools work on their source's codes, as a u8 pool
 *     does: a max pool's result is a source code; an average pool sums the
 *     codes, multiplies by 1/count in fp32 and rounds to a source code. Where
 *     the pool's destination tensor has another scale, each code is then
 *     rescaled, round(code * s_src / s_dst) (at most 255), as the dnnl
 *     backend does on its copy into the slice. Products of codes times
 *     scales summed in fp32 differ from int32 sums scaled once by a few fp32
 *     ulps, far below one quantization step. The features stay fp32.
 */
#include "config.h"
#include "net/backend.h"
#include "net/plan.h"
#include "net/quant.h"
#include "pipeline/log.h"

#include <cblas.h>
#include <math.h>
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
    bn_precision prec;           /* arithmetic emulated (kernels made by bn_gemm_kernels: fp32) */
    int input;                   /* the graph's input tensor */
    int output;                  /* the graph's output tensor (fp32 features, never rounded) */
    float inv[BN_MAX_TENSORS];   /* int8: per tensor, codes per unit (255/t; 127/t for the input) */
    float step[BN_MAX_TENSORS];  /* int8: per tensor, the value of one code (t/255; t/127) */
    float acc[BN_FEATURES];      /* int8 average pool: per channel sums of codes */
} gemm_ctx;

/* Round a patch matrix to the precision, as the convolution's input. */
static void round_input(const gemm_ctx *c, const bn_layer *l, float *x, size_t len) {
    if (c->prec == BN_PREC_BF16) {
        for (size_t i = 0; i < len; i++) x[i] = bn_bf16_round(x[i]);
    } else if (c->prec == BN_PREC_INT8 && l->src == c->input) {
        const float inv = c->inv[l->src], step = c->step[l->src];
        for (size_t i = 0; i < len; i++) x[i] = bn_quant_s8(x[i], inv, step);
    }
}

/* int8: a pool's result, a code of its source tensor, as the value of its
 * destination tensor's code: rescaled where the two scales differ. */
static inline float pool_code_value(const gemm_ctx *c, const bn_layer *l, float code) {
    if (c->step[l->src] != c->step[l->dst]) {
        code = nearbyintf(code * (c->step[l->src] / c->step[l->dst]));
        if (code > 255.0f) code = 255.0f;
    }
    return code * c->step[l->dst];
}

/* int8 average pool ('same', padding excluded) on the source's u8 codes:
 * the sum of the codes times 1/count, rounded to a code (then
 * pool_code_value). */
static void q8_window(void *user, const bn_layer *l, const float *const *pix, int cnt, int C, float *o) {
    gemm_ctx *c = user;
    const float inv = c->inv[l->src];
    float *acc = c->acc;
    for (int ch = 0; ch < C; ch++) acc[ch] = 0.0f;
    for (int i = 0; i < cnt; i++)
        for (int ch = 0; ch < C; ch++) acc[ch] += nearbyintf(pix[i][ch] * inv); /* the code back, exactly */
    const float rc = 1.0f / (float)cnt;
    for (int ch = 0; ch < C; ch++) {
        float q = nearbyintf(acc[ch] * rc);
        o[ch] = pool_code_value(c, l, q > 255.0f ? 255.0f : q);
    }
}

static void q8_avgpool(void *vctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst,
                       int n) {
    bn_pool_windows(l, s, d, src, dst, n, q8_window, vctx);
}

/* bn_kernels.after: round the slice a layer wrote to its tensor's precision. */
static void gemm_after(void *vctx, const bn_layer *l, const bn_tensor *d, float *dst, int n) {
    const gemm_ctx *c = vctx;
    if (c->prec == BN_PREC_FP32 || l->dst == c->output) return;
    const size_t rows = (size_t)n * d->h * d->w;
    const int cout = l->cout;
    if (c->prec == BN_PREC_BF16) {
        for (size_t r = 0; r < rows; r++) {
            float *p = dst + r * (size_t)d->c + l->dst_off;
            for (int k = 0; k < cout; k++) p[k] = bn_bf16_round(p[k]);
        }
    } else if (l->op == BN_OP_CONV) {
        const float inv = c->inv[l->dst], step = c->step[l->dst];
        for (size_t r = 0; r < rows; r++) {
            float *p = dst + r * (size_t)d->c + l->dst_off;
            for (int k = 0; k < cout; k++) p[k] = bn_quant_u8(p[k], inv, step);
        }
    } else if (l->op == BN_OP_MAXPOOL) {
        /* The max of source codes is a source code: recover it, then rescale. */
        const float inv = c->inv[l->src];
        for (size_t r = 0; r < rows; r++) {
            float *p = dst + r * (size_t)d->c + l->dst_off;
            for (int k = 0; k < cout; k++) p[k] = pool_code_value(c, l, nearbyintf(p[k] * inv));
        }
    } /* average pools: q8_avgpool wrote the final values */
}

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
            round_input(c, l, c->col, (size_t)cnt * pix * K);
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
    c->prec = BN_PREC_FP32;
    c->input = g->input;
    c->output = g->output;
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
    bn_runner r;           /* plan, arena; r.k the gemm kernels (r.k.ctx their gemm_ctx), r.w = w */
    const bn_model *model; /* weights (not owned) */
    const bn_graph *g;     /* the table */
    float *w[BN_NCONV];    /* the kernels run: the model's (fp32) or into wmem (bf16, int8) */
    float *wmem;           /* bf16-rounded or dequantized int8 kernels, or NULL */
    size_t nw;             /* floats at wmem */
} gemm_backend;

static void gemm_destroy(void *ctx) {
    gemm_backend *c = ctx;
    if (!c) return;
    if (c->r.k.ctx) bn_gemm_kernels_free(c->r.k.ctx);
    free(c->wmem);
    bn_runner_free(&c->r);
    free(c);
}

/* The kernels of bf16 and int8: rounded copies of the model's, made once. */
static int make_weights(gemm_backend *c, bn_precision prec, char *err, size_t errlen) {
    size_t total = 0, most = 0;
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_layer *l = &c->g->layers[c->g->conv_layer[k]];
        size_t nk = (size_t)l->kh * l->kw * l->cin * l->cout;
        total += nk;
        if (nk > most) most = nk;
    }
    c->wmem = malloc(total * sizeof(float));
    int8_t *q = prec == BN_PREC_INT8 ? malloc(most) : NULL;
    float *scale = prec == BN_PREC_INT8 ? malloc(2048 * sizeof(float)) : NULL;
    if (!c->wmem || (prec == BN_PREC_INT8 && (!q || !scale))) {
        free(q);
        free(scale);
        snprintf(err, errlen, "out of memory for %zu MB of %s weights", total * sizeof(float) >> 20, bn_precision_name(prec));
        return -1;
    }
    c->nw = total;
    float *p = c->wmem;
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_layer *l = &c->g->layers[c->g->conv_layer[k]];
        const size_t K = (size_t)l->kh * l->kw * l->cin;
        const float *w = c->model->w[k];
        if (prec == BN_PREC_BF16) {
            for (size_t i = 0; i < K * l->cout; i++) p[i] = bn_bf16_round(w[i]);
        } else {
            bn_quant_weights(w, K, l->cout, q, scale);
            for (size_t r = 0; r < K; r++)
                for (int o = 0; o < l->cout; o++) p[r * l->cout + o] = (float)q[r * l->cout + o] * scale[o];
        }
        c->w[k] = p;
        p += K * l->cout;
    }
    free(q);
    free(scale);
    return 0;
}

static void *gemm_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    gemm_backend *c = callocCheck(1, sizeof *c);
    c->model = cfg->model;
    c->g = bn_inception_v3();
    gemm_ctx *kc = bn_gemm_kernels(cfg->threads, &c->r.k);
    for (int k = 0; k < BN_NCONV; k++) c->w[k] = c->model->w[k];
    if (cfg->precision != BN_PREC_FP32) {
        /* The input is rounded in a patch matrix: every layer reading it must make one. */
        for (int i = 0; i < c->g->nlayers; i++) {
            const bn_layer *l = &c->g->layers[i];
            if (l->op == BN_OP_AVGPOOL && l->cin > BN_FEATURES) {
                snprintf(err, errlen, "gemm: average pool %s has %d channels, over %d", l->name, l->cin, BN_FEATURES);
                gemm_destroy(c);
                return NULL;
            }
            if (l->src == c->g->input && (l->op != BN_OP_CONV || (l->kh == 1 && l->kw == 1 && l->stride == 1))) {
                snprintf(err, errlen, "gemm %s: layer %s reads the input without a patch matrix", bn_precision_name(cfg->precision),
                         l->name);
                gemm_destroy(c);
                return NULL;
            }
        }
        if (cfg->precision == BN_PREC_INT8) {
            const bn_calib *cal = cfg->calib;
            if (!cal || cal->ntensors != c->g->ntensors) {
                snprintf(err, errlen, "gemm int8: %s", cal ? "the calibration is for another graph" : "no calibration given");
                gemm_destroy(c);
                return NULL;
            }
            for (int t = 0; t < c->g->ntensors; t++) {
                float th = cal->thresh[t], top = t == c->g->input ? 127.0f : 255.0f;
                kc->inv[t] = top / th;
                kc->step[t] = th / top;
            }
        }
        kc->prec = cfg->precision;
        c->r.k.after = gemm_after;
        if (cfg->precision == BN_PREC_INT8) c->r.k.avgpool = q8_avgpool;
        if (make_weights(c, cfg->precision, err, errlen)) {
            gemm_destroy(c);
            return NULL;
        }
    }
    if (bn_runner_init(&c->r, cfg->max_batch, err, errlen)) {
        gemm_destroy(c);
        return NULL;
    }
    c->r.w = c->w;
    c->r.b = c->model->b;
    return c;
}

static int gemm_forward(void *ctx, const float *in, int n, float *out, char *err, size_t errlen) {
    (void)err;
    (void)errlen;
    bn_runner_run(&((gemm_backend *)ctx)->r, in, n, out);
    return 0;
}

static size_t gemm_bytes(const void *ctx) {
    const gemm_backend *c = ctx;
    return bn_runner_bytes(&c->r) + c->nw * sizeof(float) + ((const gemm_ctx *)c->r.k.ctx)->ncol * sizeof(float);
}

const bn_backend_ops bn_backend_gemm = {
    "gemm", "im2col + CBLAS SGEMM, portable; bf16 and int8 emulated exactly in fp32 (no faster: for fidelity checks)",
    BN_PREC_BIT(BN_PREC_FP32) | BN_PREC_BIT(BN_PREC_BF16) | BN_PREC_BIT(BN_PREC_INT8), 1, 10, 0, 0,
    gemm_create, gemm_forward, gemm_bytes, gemm_destroy, NULL, NULL, NULL};
