/* dnnl.c: the oneDNN backend, in fp32, bf16 and int8, against oneDNN 2.x
 * (operation descriptors) or 3.x (primitive descriptors made directly).
 *
 * Layout. fp32 and bf16 activations live in oneDNN's blocked layout
 * (nChw16c on AVX-512, nChw8c on AVX2); int8 ones in nhwc, the layout
 * oneDNN's int8 kernels take. Every branch width is a multiple of 16, so a
 * branch's output is a whole set of channel blocks of its concatenation.
 * oneDNN's fast kernels do not write into a channel slice of a larger
 * tensor, so a branch writes a dense tensor that one reorder copies into its
 * slice. Each convolution carries its folded BN as bias and ReLU as a
 * post-op; weights are reordered once into the layout (and data type) the
 * primitive asks for. The input arrives as NHWC fp32 and is converted once;
 * the output leaves as (n, 2048) fp32.
 *
 * Precisions.
 *   fp32  every tensor f32.
 *   bf16  weights and activations bf16, accumulation and bias f32.
 *   int8  weights s8, per output channel, scale max|w|/127; the input s8
 *         with scale t/127 and every other tensor u8 with scale t/255, t the
 *         tensor's calibrated threshold (net/quant.h); int32 accumulation.
 *         Branches of one concatenation share its tensor's scale, so the
 *         copies into slices are plain byte copies.
 *   For bf16 and int8 the final global average pool runs here (it reads
 *   the typed mixed10 and writes fp32 features).
 *   A precision whose convolutions this CPU can only run on oneDNN's
 *   reference kernels (bf16 without AVX-512, say) is refused.
 * Primitives are built per batch size on first use and cached.
 */
#include "config.h"
#include "net/backend.h"
#include "net/plan.h"
#include "net/quant.h"
#include "pipeline/log.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if DNNL_VERSION_MAJOR >= 3
#define DN3 1
typedef dnnl_memory_desc_t mdh;        /* an owned descriptor handle */
typedef const_dnnl_memory_desc_t cmdh; /* a borrowed one */
#else
#define DN3 0
typedef dnnl_memory_desc_t *mdh; /* 2.x descriptors are structs: owned copies on the heap */
typedef const dnnl_memory_desc_t *cmdh;
#endif

#define MAX_NETS 4 /* batch sizes with cached primitives */
#define MAX_MDS 12 /* descriptors one layer build may own at once */

/* One layer's primitive and its arguments for one batch size. */
typedef struct {
    dnnl_primitive_t prim; /* conv or pooling; NULL for the final pool of bf16/int8 (own_gap) */
    dnnl_memory_t src;     /* whole source tensor */
    dnnl_memory_t dst;     /* the destination (dense tensor, or the slice) */
    dnnl_memory_t wei;     /* conv weights in the primitive's layout (not owned) */
    dnnl_memory_t bias;    /* conv bias (not owned) */
    dnnl_memory_t scratch; /* scratchpad, or NULL */
    dnnl_primitive_t pre;  /* reorder of the user's NHWC fp32 input into the layout and type src wants, or NULL */
    dnnl_memory_t pre_src; /* the user's input as given */
    dnnl_primitive_t post; /* copy of a dense branch output into its concat slice, or NULL */
    dnnl_memory_t slice;   /* that slice (sub-memory of the concatenated tensor) */
    int own_gap;           /* 1: the global average pool runs in gap_run() */
    int requant;           /* int8: post rescales from the source's scale to the destination's */
    int own_copy;          /* nhwc: the copy into the slice is copy_slice(), not a oneDNN reorder */
} dlayer;

/* Everything for one batch size. */
typedef struct {
    int n;                           /* batch size */
    dlayer layers[BN_MAX_LAYERS];    /* per layer */
    dnnl_memory_t wei_own[BN_NCONV]; /* weights reordered for this n when the layout differs from net 0 */
    void *wei_buf[BN_NCONV];         /* their storage */
} dnet;

typedef struct {
    dnnl_engine_t eng;                  /* CPU engine */
    dnnl_stream_t stream;               /* in-order stream */
    int threads;                        /* OpenMP threads for oneDNN */
    int max_batch;                      /* largest batch */
    bn_precision prec;                  /* arithmetic */
    dnnl_data_type_t act_dt;            /* data type of the activations (not the input or output) */
    dnnl_data_type_t in_dt;             /* data type the first convolution reads */
    size_t act_size;                    /* bytes per activation element */
    const bn_model *m;                  /* folded weights (not owned) */
    const bn_graph *g;                  /* the table */
    bn_plan plan;                       /* arena offsets (elements) for max_batch */
    void *arena;                        /* activations */
    void *inbuf;                        /* converted input for the first conv */
    void *tmp;                          /* dense output of a branch before its copy into the concat */
    size_t tmp_bytes, inbuf_bytes;      /* sizes of tmp and inbuf */
    dnnl_format_tag_t tag;              /* activation layout */
    dnnl_alg_kind_t conv_alg;           /* direct, or auto (lets oneDNN use Winograd) */
    void *scratch;                      /* shared scratchpad */
    size_t scratch_bytes;               /* bytes at scratch */
    mdh wei_md[BN_NCONV];               /* weights layout chosen by the first net (owned) */
    dnnl_memory_t wei[BN_NCONV];        /* weights in that layout */
    void *wei_buf[BN_NCONV];            /* their storage */
    dnnl_memory_t bias[BN_NCONV];       /* biases (the model's, or int8's own on 2.x) */
    float *qbias[BN_NCONV];             /* int8 on 2.x: bias in accumulator units, b / (s_src * s_w) */
    float *wscale[BN_NCONV];            /* int8: per output channel weight scale */
    float *oscale[BN_NCONV];            /* int8 on 2.x: s_src * s_w / s_dst per output channel */
    float tscale[BN_MAX_TENSORS];       /* int8: scale of each tensor (value of one code step) */
    float inv_in_scale;                 /* int8: 1 / the input's scale (2.x input reorder) */
#if DN3
    dnnl_memory_t tscale_mem[BN_MAX_TENSORS]; /* int8: each tensor's scale as a 1-element f32 memory */
    dnnl_memory_t wscale_mem[BN_NCONV];       /* int8: weight scales as memories */
#endif
    dnet *nets[MAX_NETS];               /* per batch size; nets[0] is max_batch */
    float *pad_in, *pad_out;            /* padded batch for sizes beyond the cache, or NULL */
    int nnets;                          /* nets built */
    int checked_impl;                   /* the refusal of reference kernels was checked (first net) */
    char err[1024];                     /* the last failure */
    size_t bytes;                       /* memory held */
} dctx;

/* Record a failed oneDNN call with its status by name. */
static void dn_fail(dctx *c, const char *file, int line, const char *call, dnnl_status_t st) {
    const char *hint = st == dnnl_out_of_memory      ? " (lower --batch)"
                       : st == dnnl_unimplemented    ? " (this oneDNN has no kernel for it on this CPU)"
                       : st == dnnl_invalid_arguments ? " (a bneck bug: please report it with --build-info)"
                                                      : "";
    snprintf(c->err, sizeof c->err, "%s:%d: oneDNN %s failed: %s%s", file, line, call, dnnl_status2str(st), hint);
}

/* Every function using DN has a `done:` label that releases what it holds. */
#define DN(call)                                                                                                \
    do {                                                                                                        \
        dnnl_status_t st_ = (call);                                                                             \
        if (st_ != dnnl_success) {                                                                              \
            dn_fail(c, __FILE__, __LINE__, #call, st_);                                                         \
            goto done;                                                                                          \
        }                                                                                                       \
    } while (0)

/* ------------------------------------------------------------ 2.x / 3.x */

static dnnl_status_t md_tag(mdh *md, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
#if DN3
    return dnnl_memory_desc_create_with_tag(md, nd, dims, dt, tag);
#else
    *md = calloc(1, sizeof **md);
    if (!*md) return dnnl_out_of_memory;
    return dnnl_memory_desc_init_by_tag(*md, nd, dims, dt, tag);
#endif
}

static dnnl_status_t md_sub(mdh *md, cmdh parent, const dnnl_dims_t dims, const dnnl_dims_t offs) {
#if DN3
    return dnnl_memory_desc_create_submemory(md, parent, dims, offs);
#else
    *md = calloc(1, sizeof **md);
    if (!*md) return dnnl_out_of_memory;
    return dnnl_memory_desc_init_submemory(*md, parent, dims, offs);
#endif
}

static dnnl_status_t md_clone(mdh *md, cmdh from) {
#if DN3
    return dnnl_memory_desc_clone(md, from);
#else
    *md = malloc(sizeof **md);
    if (!*md) return dnnl_out_of_memory;
    **md = *from;
    return dnnl_success;
#endif
}

static void md_free(mdh md) {
#if DN3
    if (md) dnnl_memory_desc_destroy(md);
#else
    free(md);
#endif
}

static dnnl_status_t conv_pd(dnnl_primitive_desc_t *pd, dctx *c, cmdh src, cmdh wei, cmdh bias, cmdh dst,
                             const dnnl_dims_t strides, const dnnl_dims_t pad, const_dnnl_primitive_attr_t attr) {
#if DN3
    dnnl_dims_t dil = {0, 0};
    return dnnl_convolution_forward_primitive_desc_create(pd, c->eng, dnnl_forward_inference, c->conv_alg, src, wei,
                                                          bias, dst, strides, dil, pad, pad, attr);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t st =
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, c->conv_alg, src, wei, bias, dst, strides, pad, pad);
    if (st != dnnl_success) return st;
    return dnnl_primitive_desc_create(pd, &cd, attr, c->eng, NULL);
#endif
}

static dnnl_status_t pool_pd(dnnl_primitive_desc_t *pd, dctx *c, dnnl_alg_kind_t alg, cmdh src, cmdh dst,
                             const dnnl_dims_t strides, const dnnl_dims_t kernel, const dnnl_dims_t pad,
                             const_dnnl_primitive_attr_t attr) {
    dnnl_dims_t dil = {0, 0};
#if DN3
    return dnnl_pooling_forward_primitive_desc_create(pd, c->eng, dnnl_forward_inference, alg, src, dst, strides, kernel,
                                                      dil, pad, pad, attr);
#else
    dnnl_pooling_v2_desc_t d;
    dnnl_status_t st =
        dnnl_pooling_v2_forward_desc_init(&d, dnnl_forward_inference, alg, src, dst, strides, kernel, dil, pad, pad);
    if (st != dnnl_success) return st;
    return dnnl_primitive_desc_create(pd, &d, attr, c->eng, NULL);
#endif
}

static dnnl_status_t relu_post_op(dnnl_post_ops_t po) {
#if DN3
    return dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, 0.0f, 0.0f);
#else
    return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
#endif
}

/* A reorder whose destination is the source divided by a scale per index of
 * dimension `dim` (mask 1 << dim), or by one scale (mask 0). 3.x takes the
 * scales at execution (DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST); 2.x takes their
 * inverses now, as output scales. */
static dnnl_status_t scaled_attr(dnnl_primitive_attr_t attr, int mask, int count, const float *scale) {
#if DN3
    (void)count;
    (void)scale;
    return dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_DST, mask);
#else
    float *inv = malloc(sizeof(float) * (size_t)count);
    if (!inv) return dnnl_out_of_memory;
    for (int i = 0; i < count; i++) inv[i] = 1.0f / scale[i];
    dnnl_status_t st = dnnl_primitive_attr_set_output_scales(attr, count, mask, inv);
    free(inv);
    return st;
#endif
}

/* ------------------------------------------------------------ layers */

static dnnl_data_type_t tensor_dt(const dctx *c, int t) {
    return t == c->g->output ? dnnl_f32 : c->act_dt;
}

/* Descriptor of a whole tensor for batch n (the input: the user's f32 NHWC). */
static dnnl_status_t tensor_md(dctx *c, int t, int n, mdh *md) {
    const bn_tensor *x = &c->g->tensors[t];
    dnnl_dims_t d = {n, x->c, x->h, x->w};
    if (t == c->g->input) return md_tag(md, 4, d, dnnl_f32, dnnl_nhwc);
    /* The (n, 2048, 1, 1) output is plain (n, 2048) in either tag. */
    return md_tag(md, 4, d, tensor_dt(c, t), c->tag);
}

static void *tensor_ptr(dctx *c, int t) {
    if (t == c->g->input || t == c->g->output) return DNNL_MEMORY_NONE; /* set per call */
    return (char *)c->arena + c->plan.off[t] * c->act_size;
}

static size_t md_bytes(cmdh md) { return dnnl_memory_desc_get_size(md); }

static size_t scratch_size(const_dnnl_primitive_desc_t pd) {
    cmdh smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return smd ? md_bytes(smd) : 0;
}

/* Run a reorder once: from (with its data) into to. extra: one more
 * argument (3.x scales), or NULL. */
static int reorder_once(dctx *c, dnnl_memory_t from, dnnl_memory_t to, const_dnnl_primitive_attr_t attr,
                        const dnnl_exec_arg_t *extra) {
    int rc = -1;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t rp = NULL;
    cmdh fmd, tmd;
    DN(dnnl_memory_get_memory_desc(from, &fmd));
    DN(dnnl_memory_get_memory_desc(to, &tmd));
    DN(dnnl_reorder_primitive_desc_create(&rpd, fmd, c->eng, tmd, c->eng, attr));
    DN(dnnl_primitive_create(&rp, rpd));
    dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}, {0, NULL}};
    int na = 2;
    if (extra) ra[na++] = *extra;
    DN(dnnl_primitive_execute(rp, c->stream, na, ra));
    DN(dnnl_stream_wait(c->stream));
    rc = 0;
done:
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return rc;
}

/* Put conv k's weights into the layout wmd asks for (fp32, bf16, or s8 with
 * the per-channel scales). Returns the memory and its buffer, or -1. */
static int make_weights(dctx *c, int k, const bn_layer *l, cmdh wmd, dnnl_memory_t *wm, void **buf) {
    int rc = -1;
    mdh user = NULL;
    dnnl_memory_t um = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_dims_t wd = {l->cout, l->cin, l->kh, l->kw};
    *wm = NULL;
    size_t wb = md_bytes(wmd);
    *buf = aligned_alloc(64, (wb + 63) & ~(size_t)63);
    if (!*buf) {
        snprintf(c->err, sizeof c->err, "out of memory for the weights of %s", l->name);
        return -1;
    }
    DN(md_tag(&user, 4, wd, dnnl_f32, dnnl_hwio));
    DN(dnnl_memory_create(&um, user, c->eng, (void *)c->m->w[k]));
    DN(dnnl_memory_create(wm, wmd, c->eng, *buf));
    DN(dnnl_primitive_attr_create(&attr));
    dnnl_exec_arg_t extra = {0, NULL}, *ex = NULL;
    if (c->prec == BN_PREC_INT8) {
        DN(scaled_attr(attr, 1 << 0, l->cout, c->wscale[k]));
#if DN3
        extra = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, c->wscale_mem[k]};
        ex = &extra;
#endif
    }
    (void)extra;
    if (reorder_once(c, um, *wm, attr, ex)) goto done;
    c->bytes += wb;
    rc = 0;
done:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (um) dnnl_memory_destroy(um);
    md_free(user);
    if (rc) {
        if (*wm) dnnl_memory_destroy(*wm);
        *wm = NULL;
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* The conv's bias memory (made once per conv). */
static int make_bias(dctx *c, int k, const bn_layer *l) {
    int rc = -1;
    mdh bmd = NULL;
    if (c->bias[k]) return 0;
    dnnl_dims_t bd = {l->cout};
    DN(md_tag(&bmd, 1, bd, dnnl_f32, dnnl_x));
    DN(dnnl_memory_create(&c->bias[k], bmd, c->eng, c->qbias[k] ? c->qbias[k] : (void *)c->m->b[k]));
    rc = 0;
done:
    md_free(bmd);
    return rc;
}

/* Refuse a precision whose convolution would run on oneDNN's reference
 * kernel: orders of magnitude slower than asked for. */
static void refuse(dctx *c, const char *impl, const bn_layer *l) {
    snprintf(c->err, sizeof c->err,
             "%s is refused on this CPU: oneDNN %d.%d has no fast kernel for its convolutions here (%s gets: %s); "
             "it needs %s; use --precision fp32%s",
             bn_precision_name(c->prec), DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR, l->name,
             impl, c->prec == BN_PREC_BF16 ? "AVX-512 (fast with AVX512_BF16 or AMX)" : "AVX2 (fast with VNNI)",
             c->prec == BN_PREC_BF16 ? " or int8" : "");
}

static int check_impl(dctx *c, const_dnnl_primitive_desc_t pd, const bn_layer *l) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return 0;
    if (strncmp(impl, "ref", 3) || c->prec == BN_PREC_FP32) return 0;
    refuse(c, impl, l);
    return -1;
}

/* Build one layer's primitive for batch n. pass 0 only sizes the buffers. */
static int build_layer(dctx *c, dnet *net, int i, int pass) {
    const bn_layer *l = &c->g->layers[i];
    dlayer *L = &net->layers[i];
    const int n = net->n;
    int rc = -1;
    mdh own[MAX_MDS] = {0}; /* descriptors made here, freed at done */
    int nown = 0;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    const bn_tensor *d = &c->g->tensors[l->dst];

    if (l->op == BN_OP_GAP && c->prec != BN_PREC_FP32) { /* runs in gap_run() */
        L->own_gap = 1;
        return 0;
    }
    mdh src_md, dst_full, dst_md, slice_md;
    DN(tensor_md(c, l->src, n, &own[nown]));
    src_md = own[nown++];
    DN(tensor_md(c, l->dst, n, &own[nown]));
    dst_full = own[nown++];
    dnnl_dims_t sub = {n, l->cout, d->h, d->w}, off = {0, l->dst_off, 0, 0};
    /* int8: a pool keeps its source's codes, so where its destination has
     * another scale its dense output is rescaled on the copy. */
    L->requant = c->prec == BN_PREC_INT8 && l->op != BN_OP_CONV && l->dst != c->g->output &&
                 c->tscale[l->src] != c->tscale[l->dst];
    const int sliced = l->dst != c->g->output && (d->c != l->cout || L->requant);
    DN(md_sub(&own[nown], dst_full, sub, off));
    slice_md = own[nown++];
    if (sliced) {
        DN(md_tag(&own[nown], 4, sub, tensor_dt(c, l->dst), c->tag));
        dst_md = own[nown++];
        if (pass == 0) {
            size_t b = (size_t)n * l->cout * d->h * d->w * c->act_size;
            if (b > c->tmp_bytes) c->tmp_bytes = b;
        }
    } else {
        dst_md = slice_md;
    }
    DN(dnnl_primitive_attr_create(&attr));
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_dims_t strides = {l->stride, l->stride}, pad = {l->pad_h, l->pad_w};
    const int first = l->src == c->g->input;
    if (l->op == BN_OP_CONV) {
        const int k = l->conv;
        mdh wany, bmd, src_any = NULL;
        dnnl_dims_t wd = {l->cout, l->cin, l->kh, l->kw}, bd = {l->cout};
        dnnl_data_type_t wdt = c->prec == BN_PREC_INT8 ? dnnl_s8 : c->prec == BN_PREC_BF16 ? dnnl_bf16 : dnnl_f32;
        DN(md_tag(&own[nown], 4, wd, wdt, dnnl_format_tag_any));
        wany = own[nown++];
        DN(md_tag(&own[nown], 1, bd, dnnl_f32, dnnl_x));
        bmd = own[nown++];
        if (first) { /* let the primitive choose the input layout; the input is reordered to it */
            const bn_tensor *s = &c->g->tensors[l->src];
            dnnl_dims_t sd = {n, l->cin, s->h, s->w};
            DN(md_tag(&own[nown], 4, sd, c->in_dt, c->prec == BN_PREC_INT8 ? dnnl_nhwc : dnnl_format_tag_any));
            src_any = own[nown++];
        }
        DN(dnnl_post_ops_create(&po));
        DN(relu_post_op(po));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        if (c->prec == BN_PREC_INT8) {
#if DN3
            DN(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_SRC, 0));
            DN(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_WEIGHTS, 1 << 0));
            DN(dnnl_primitive_attr_set_scales_mask(attr, DNNL_ARG_DST, 0));
#else
            DN(dnnl_primitive_attr_set_output_scales(attr, l->cout, 1 << 1, c->oscale[k]));
#endif
        }
        cmdh use_src = first ? src_any : src_md;
        /* A later batch size first tries the weights layout net 0 chose, so
         * the weights are reordered once. */
        cmdh wsel = (net != c->nets[0] && c->wei[k]) ? c->wei_md[k] : wany;
        dnnl_status_t st = conv_pd(&pd, c, use_src, wsel, bmd, dst_md, strides, pad, attr);
        if (st != dnnl_success && wsel != wany) st = conv_pd(&pd, c, use_src, wany, bmd, dst_md, strides, pad, attr);
        if (st == dnnl_unimplemented && c->prec != BN_PREC_FP32) {
            refuse(c, "none", l);
            goto done;
        }
        if (st != dnnl_success) {
            dn_fail(c, __FILE__, __LINE__, "convolution primitive descriptor", st);
            goto done;
        }
        if (!c->checked_impl && check_impl(c, pd, l)) goto done;
        if (pass == 0) {
            size_t s = scratch_size(pd);
            if (s > c->scratch_bytes) c->scratch_bytes = s;
            if (first) {
                size_t b = md_bytes(dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0));
                if (b > c->inbuf_bytes) c->inbuf_bytes = b;
            }
            rc = 0;
            goto done;
        }
        cmdh wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if (!c->wei[k] || !dnnl_memory_desc_equal(wmd, c->wei_md[k])) {
            dnnl_memory_t wm;
            void *buf;
            if (make_weights(c, k, l, wmd, &wm, &buf)) goto done;
            if (!c->wei[k]) {
                if (md_clone(&c->wei_md[k], wmd) != dnnl_success) {
                    dnnl_memory_destroy(wm);
                    free(buf);
                    snprintf(c->err, sizeof c->err, "out of memory");
                    goto done;
                }
                c->wei[k] = wm;
                c->wei_buf[k] = buf;
            } else {
                net->wei_own[k] = wm;
                net->wei_buf[k] = buf;
            }
        }
        L->wei = net->wei_own[k] ? net->wei_own[k] : c->wei[k];
        if (make_bias(c, k, l)) goto done;
        L->bias = c->bias[k];
        if (first) {
            cmdh smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
            DN(dnnl_memory_create(&L->pre_src, src_md, c->eng, DNNL_MEMORY_NONE));
            DN(dnnl_memory_create(&L->src, smd, c->eng, c->inbuf));
            dnnl_primitive_attr_t ra = NULL;
            dnnl_status_t rst = dnnl_primitive_attr_create(&ra);
            if (rst == dnnl_success && c->prec == BN_PREC_INT8) {
                float s = c->tscale[c->g->input];
                rst = scaled_attr(ra, 0, 1, &s);
            }
            if (rst == dnnl_success) rst = dnnl_reorder_primitive_desc_create(&rpd, src_md, c->eng, smd, c->eng, ra);
            if (ra) dnnl_primitive_attr_destroy(ra);
            if (rst != dnnl_success) {
                dn_fail(c, __FILE__, __LINE__, "input reorder primitive descriptor", rst);
                goto done;
            }
            DN(dnnl_primitive_create(&L->pre, rpd));
        }
    } else {
        dnnl_dims_t kernel = {l->kh, l->kw};
        dnnl_alg_kind_t alg = l->op == BN_OP_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
        if (l->op == BN_OP_GAP) {
            const bn_tensor *s = &c->g->tensors[l->src];
            kernel[0] = s->h;
            kernel[1] = s->w;
        }
        DN(pool_pd(&pd, c, alg, src_md, dst_md, strides, kernel, pad, attr));
        if (pass == 0) {
            size_t s = scratch_size(pd);
            if (s > c->scratch_bytes) c->scratch_bytes = s;
            rc = 0;
            goto done;
        }
    }
    if (bn_log_level() >= BN_DEBUG) {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        bn_debug("dnnl %s n=%d %-28s %s", bn_precision_name(c->prec), n, l->name, impl ? impl : "?");
    }
    if (!L->src) DN(dnnl_memory_create(&L->src, src_md, c->eng, tensor_ptr(c, l->src)));
    const int blk = c->tag == dnnl_nChw16c ? 16 : c->tag == dnnl_nChw8c ? 8 : 0;
    if (sliced && (c->tag == dnnl_nhwc || (blk && l->dst_off % blk == 0 && l->cout % blk == 0))) {
        /* nhwc: rows of cout values into rows of the concatenation; blocked:
         * per image, the branch's whole channel blocks are one run of the
         * concatenation. A plain copy, much faster than oneDNN 2.6's reorder
         * for it (measured: the reorders took a quarter of the int8 pass). */
        DN(dnnl_memory_create(&L->dst, dst_md, c->eng, c->tmp));
        L->own_copy = 1;
    } else if (sliced) {
        DN(dnnl_memory_create(&L->dst, dst_md, c->eng, c->tmp));
        DN(dnnl_memory_create(&L->slice, slice_md, c->eng, tensor_ptr(c, l->dst)));
        dnnl_primitive_desc_t cpd = NULL;
        dnnl_primitive_attr_t cattr = NULL;
        DN(dnnl_primitive_attr_create(&cattr));
        dnnl_status_t st = dnnl_success;
        if (L->requant) {
#if DN3
            st = dnnl_primitive_attr_set_scales_mask(cattr, DNNL_ARG_SRC, 0);
            if (st == dnnl_success) st = dnnl_primitive_attr_set_scales_mask(cattr, DNNL_ARG_DST, 0);
#else
            float r = c->tscale[l->src] / c->tscale[l->dst];
            st = dnnl_primitive_attr_set_output_scales(cattr, 1, 0, &r);
#endif
        }
        if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&cpd, dst_md, c->eng, slice_md, c->eng, cattr);
        dnnl_primitive_attr_destroy(cattr);
        if (st == dnnl_success) st = dnnl_primitive_create(&L->post, cpd);
        if (cpd) dnnl_primitive_desc_destroy(cpd);
        DN(st);
    } else {
        DN(dnnl_memory_create(&L->dst, dst_md, c->eng, tensor_ptr(c, l->dst)));
    }
    size_t sz = scratch_size(pd);
    if (sz > c->scratch_bytes) {
        snprintf(c->err, sizeof c->err, "internal: the scratchpad of %s grew after allocation", l->name);
        goto done;
    }
    if (sz) DN(dnnl_memory_create(&L->scratch, dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0), c->eng,
                                  c->scratch));
    DN(dnnl_primitive_create(&L->prim, pd));
    rc = 0;
done:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    for (int q = 0; q < nown; q++) md_free(own[q]);
    return rc;
}

static void free_net(dnet *net, int nlayers) {
    if (!net) return;
    for (int i = 0; i < nlayers; i++) {
        dlayer *L = &net->layers[i];
        if (L->prim) dnnl_primitive_destroy(L->prim);
        if (L->pre) dnnl_primitive_destroy(L->pre);
        if (L->post) dnnl_primitive_destroy(L->post);
        if (L->slice) dnnl_memory_destroy(L->slice);
        if (L->src) dnnl_memory_destroy(L->src);
        if (L->dst) dnnl_memory_destroy(L->dst);
        if (L->scratch) dnnl_memory_destroy(L->scratch);
        if (L->pre_src) dnnl_memory_destroy(L->pre_src);
    }
    for (int k = 0; k < BN_NCONV; k++) {
        if (net->wei_own[k]) dnnl_memory_destroy(net->wei_own[k]);
        free(net->wei_buf[k]);
    }
    free(net);
}

/* Build every layer for batch n. pass 0 sizes buffers (and its net is
 * thrown away); pass 1 builds. The caller registers the net it gets back;
 * on failure nothing is left registered or allocated. */
static dnet *build_net(dctx *c, int n, int pass) {
    dnet *net = calloc(1, sizeof *net);
    if (!net) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return NULL;
    }
    net->n = n;
    /* While net 0 is being built, later layers look for it in nets[0]. */
    int registering = pass == 1 && c->nnets == 0;
    if (registering) c->nets[0] = net;
    for (int i = 0; i < c->g->nlayers; i++)
        if (build_layer(c, net, i, pass)) {
            if (registering) c->nets[0] = NULL;
            free_net(net, c->g->nlayers);
            return NULL;
        }
    if (pass == 0) c->checked_impl = 1;
    return net;
}

static void dn_destroy(void *ctx);

/* Per-conv and per-tensor scales of int8, from the calibration. */
static int int8_scales(dctx *c, const bn_calib *cal) {
    const bn_graph *g = c->g;
    if (!cal || cal->ntensors != g->ntensors) {
        snprintf(c->err, sizeof c->err, "int8: the calibration does not describe this graph (%d tensors, not %d)",
                 cal ? cal->ntensors : 0, g->ntensors);
        return -1;
    }
    for (int t = 0; t < g->ntensors; t++) {
        float th = cal->thresh[t];
        if (!(th > 0.0f) || !isfinite(th)) {
            snprintf(c->err, sizeof c->err, "int8: the calibration's threshold of %s is %g", g->tensors[t].name, th);
            return -1;
        }
        c->tscale[t] = th / (t == g->input ? 127.0f : 255.0f);
    }
    c->inv_in_scale = 1.0f / c->tscale[g->input];
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        if (l->op != BN_OP_CONV) continue;
        int k = l->conv;
        size_t K = (size_t)l->kh * l->kw * l->cin;
        c->wscale[k] = mallocCheck(sizeof(float) * (size_t)l->cout);
        bn_quant_weight_scales(c->m->w[k], K, l->cout, c->wscale[k]); /* the reorder to s8 quantizes with them */
#if !DN3
        float ss = c->tscale[l->src], sd = c->tscale[l->dst];
        c->oscale[k] = mallocCheck(sizeof(float) * (size_t)l->cout);
        c->qbias[k] = mallocCheck(sizeof(float) * (size_t)l->cout);
        for (int o = 0; o < l->cout; o++) {
            c->oscale[k][o] = ss * c->wscale[k][o] / sd;
            c->qbias[k][o] = c->m->b[k][o] / (ss * c->wscale[k][o]);
        }
#endif
    }
#if DN3
    mdh one = NULL;
    int rc = -1;
    dnnl_dims_t d1 = {1};
    DN(md_tag(&one, 1, d1, dnnl_f32, dnnl_x));
    for (int t = 0; t < g->ntensors; t++) DN(dnnl_memory_create(&c->tscale_mem[t], one, c->eng, &c->tscale[t]));
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        if (l->op != BN_OP_CONV) continue;
        mdh wmd = NULL;
        dnnl_dims_t dc = {l->cout};
        DN(md_tag(&wmd, 1, dc, dnnl_f32, dnnl_x));
        dnnl_status_t st = dnnl_memory_create(&c->wscale_mem[l->conv], wmd, c->eng, c->wscale[l->conv]);
        md_free(wmd);
        DN(st);
    }
    rc = 0;
done:
    md_free(one);
    return rc;
#else
    return 0;
#endif
}

static void *dn_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    dctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->m = cfg->model;
    c->g = bn_inception_v3();
    c->threads = cfg->threads;
    c->max_batch = cfg->max_batch;
    c->prec = cfg->precision;
    c->act_dt = c->prec == BN_PREC_INT8 ? dnnl_u8 : c->prec == BN_PREC_BF16 ? dnnl_bf16 : dnnl_f32;
    c->in_dt = c->prec == BN_PREC_INT8 ? dnnl_s8 : c->act_dt;
    c->act_size = c->prec == BN_PREC_INT8 ? 1 : c->prec == BN_PREC_BF16 ? 2 : 4;
    const char *lay = getenv("BNECK_DNNL_LAYOUT");
    /* Blocks of 16 channels suit AVX-512; on AVX2-only CPUs oneDNN's JIT
     * kernels take blocks of 8 and would fall back to its reference kernel
     * (hundreds of times slower) on nChw16c. int8 kernels take nhwc. */
    dnnl_format_tag_t blocked = __builtin_cpu_supports("avx512f") ? dnnl_nChw16c : dnnl_nChw8c;
    c->tag = (c->prec == BN_PREC_INT8 || (lay && !strcmp(lay, "nhwc"))) ? dnnl_nhwc : blocked;
    const char *alg = getenv("BNECK_DNNL_ALG");
    c->conv_alg = (alg && !strcmp(alg, "auto"))       ? dnnl_convolution_auto
                  : (alg && !strcmp(alg, "winograd")) ? dnnl_convolution_winograd
                                                      : dnnl_convolution_direct;
    omp_set_num_threads(c->threads);
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(c->err, sizeof c->err, "cannot create a oneDNN CPU engine");
        goto fail;
    }
    if (c->prec == BN_PREC_INT8 && int8_scales(c, cfg->calib)) goto fail;
    bn_plan_make(c->g, c->max_batch, &c->plan);
    /* Pass 0 sizes the scratchpad, the input and branch buffers; pass 1 builds. */
    dnet *probe = build_net(c, c->max_batch, 0);
    if (!probe) goto fail;
    free_net(probe, c->g->nlayers);
    size_t arena_bytes = c->plan.floats * c->act_size;
    c->arena = aligned_alloc(64, (arena_bytes + 63) & ~(size_t)63);
    c->scratch = c->scratch_bytes ? aligned_alloc(64, (c->scratch_bytes + 63) & ~(size_t)63) : NULL;
    c->inbuf = c->inbuf_bytes ? aligned_alloc(64, (c->inbuf_bytes + 63) & ~(size_t)63) : NULL;
    c->tmp = c->tmp_bytes ? aligned_alloc(64, (c->tmp_bytes + 63) & ~(size_t)63) : NULL;
    if (!c->arena || (c->scratch_bytes && !c->scratch) || (c->inbuf_bytes && !c->inbuf) || (c->tmp_bytes && !c->tmp)) {
        snprintf(c->err, sizeof c->err, "out of memory for activations (batch %d); lower --batch", c->max_batch);
        goto fail;
    }
    c->bytes += arena_bytes + c->inbuf_bytes + c->tmp_bytes + c->scratch_bytes;
    dnet *net = build_net(c, c->max_batch, 1);
    if (!net) goto fail;
    c->nnets = 1; /* build_net left it in nets[0] */
    return c;
fail:
    snprintf(err, errlen, "%s", c->err);
    dn_destroy(c);
    return NULL;
}

static dnet *net_for(dctx *c, int n) {
    for (int i = 0; i < c->nnets; i++)
        if (c->nets[i]->n == n) return c->nets[i];
    if (c->nnets == MAX_NETS) return NULL;
    size_t before = c->scratch_bytes;
    dnet *probe = build_net(c, n, 0);
    if (!probe) return NULL;
    free_net(probe, c->g->nlayers);
    if (c->scratch_bytes > before) { /* a smaller batch needing more scratch: rare; grow */
        void *s = aligned_alloc(64, (c->scratch_bytes + 63) & ~(size_t)63);
        if (!s) {
            c->scratch_bytes = before;
            snprintf(c->err, sizeof c->err, "out of memory for the scratchpad of batch %d", n);
            return NULL;
        }
        free(c->scratch);
        c->scratch = s;
        for (int i = 0; i < c->nnets; i++)
            for (int j = 0; j < c->g->nlayers; j++)
                if (c->nets[i]->layers[j].scratch) dnnl_memory_set_data_handle(c->nets[i]->layers[j].scratch, c->scratch);
    }
    dnet *net = build_net(c, n, 1);
    if (net) c->nets[c->nnets++] = net;
    return net;
}

/* The global average pool of bf16/int8: mixed10 (typed, in c->tag) to fp32
 * features, summing pixel by pixel so the reads run along memory. */
static void gap_run(dctx *c, const bn_layer *l, int n, float *out) {
    const bn_tensor *s = &c->g->tensors[l->src];
    const int C = s->c, HW = s->h * s->w;
    const void *src = tensor_ptr(c, l->src);
    const int blk = c->tag == dnnl_nChw16c ? 16 : c->tag == dnnl_nChw8c ? 8 : 0; /* 0: nhwc */
    const float mul = (c->prec == BN_PREC_INT8 ? c->tscale[l->src] : 1.0f) / (float)HW;
    float sum[BN_FEATURES];
    for (int img = 0; img < n; img++) {
        memset(sum, 0, sizeof(float) * (size_t)C);
        for (int p = 0; p < HW; p++)
            for (int ch = 0; ch < C; ch++) {
                size_t at = blk ? (((size_t)img * (C / blk) + ch / blk) * HW + p) * blk + ch % blk
                                : ((size_t)img * HW + p) * C + ch;
                if (c->prec == BN_PREC_INT8) {
                    sum[ch] += ((const uint8_t *)src)[at]; /* integers: exact in fp32 (64 * 255) */
                } else {
                    uint32_t u = (uint32_t)((const uint16_t *)src)[at] << 16;
                    float f;
                    memcpy(&f, &u, sizeof f);
                    sum[ch] += f;
                }
            }
        for (int ch = 0; ch < C; ch++) out[(size_t)img * C + ch] = sum[ch] * mul;
    }
}

/* The nhwc copy of a branch's dense output (n*h*w rows of cout values, in
 * tmp) into its slice of the concatenation; int8 pools whose destination has
 * another scale rescale the codes on the way. */
static void copy_slice(dctx *c, const bn_layer *l, int n) {
    const bn_tensor *d = &c->g->tensors[l->dst];
    if (c->tag != dnnl_nhwc) { /* blocked: one run per image */
        const size_t es = c->act_size, hw = (size_t)d->h * d->w;
        const size_t run = (size_t)l->cout * hw * es, img = (size_t)d->c * hw * es;
        char *to = (char *)tensor_ptr(c, l->dst) + (size_t)l->dst_off * hw * es;
        for (int i = 0; i < n; i++) memcpy(to + (size_t)i * img, (const char *)c->tmp + (size_t)i * run, run);
        return;
    }
    const size_t rows = (size_t)n * d->h * d->w, es = c->act_size;
    const size_t cw = (size_t)l->cout * es, rw = (size_t)d->c * es;
    const char *from = c->tmp;
    char *to = (char *)tensor_ptr(c, l->dst) + (size_t)l->dst_off * es;
    if (c->prec == BN_PREC_INT8 && c->tscale[l->src] != c->tscale[l->dst] && l->op != BN_OP_CONV) {
        /* 256 codes in, so the rescale is a table: round to nearest even, at most 255. */
        const float r = c->tscale[l->src] / c->tscale[l->dst];
        uint8_t map[256];
        for (int q = 0; q < 256; q++) {
            float v = nearbyintf((float)q * r);
            map[q] = (uint8_t)(v > 255.0f ? 255.0f : v);
        }
        for (size_t i = 0; i < rows; i++) {
            const uint8_t *f = (const uint8_t *)from + i * cw;
            uint8_t *t = (uint8_t *)to + i * rw;
            for (int k = 0; k < l->cout; k++) t[k] = map[f[k]];
        }
        return;
    }
    for (size_t i = 0; i < rows; i++) memcpy(to + i * rw, from + i * cw, cw);
}

/* Run every layer of one batch size's net. A failure here is a bug or a
 * resource exhausted mid-run: the rank cannot go on. */
static void run_net(dctx *c, dnet *net, const float *in, float *out) {
    for (int i = 0; i < c->g->nlayers; i++) {
        const bn_layer *l = &c->g->layers[i];
        dlayer *L = &net->layers[i];
        dnnl_status_t st;
        if (L->own_gap) {
            if ((st = dnnl_stream_wait(c->stream)) != dnnl_success)
                bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN stream wait before %s failed: %s", l->name, dnnl_status2str(st));
            gap_run(c, l, net->n, out);
            continue;
        }
        if (L->pre) {
            dnnl_memory_set_data_handle(L->pre_src, (void *)in);
            dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, L->pre_src}, {DNNL_ARG_TO, L->src}, {0, NULL}};
            int nra = 2;
#if DN3
            if (c->prec == BN_PREC_INT8) ra[nra++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, c->tscale_mem[l->src]};
#endif
            if ((st = dnnl_primitive_execute(L->pre, c->stream, nra, ra)) != dnnl_success)
                bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN input reorder failed: %s", dnnl_status2str(st));
        }
        if (l->dst == c->g->output) dnnl_memory_set_data_handle(L->dst, out);
        dnnl_exec_arg_t a[9];
        int na = 0;
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, L->src};
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, L->dst};
        if (L->wei) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, L->wei};
        if (L->bias) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, L->bias};
        if (L->scratch) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, L->scratch};
#if DN3
        if (c->prec == BN_PREC_INT8 && l->op == BN_OP_CONV) {
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, c->tscale_mem[l->src]};
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, c->wscale_mem[l->conv]};
            a[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, c->tscale_mem[l->dst]};
        }
#endif
        if ((st = dnnl_primitive_execute(L->prim, c->stream, na, a)) != dnnl_success)
            bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN execution of %s failed: %s", l->name, dnnl_status2str(st));
        if (L->own_copy) {
            if ((st = dnnl_stream_wait(c->stream)) != dnnl_success)
                bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN stream wait after %s failed: %s", l->name, dnnl_status2str(st));
            copy_slice(c, l, net->n);
        } else if (L->post) {
            dnnl_exec_arg_t ra[4] = {{DNNL_ARG_FROM, L->dst}, {DNNL_ARG_TO, L->slice}};
            int nra = 2;
#if DN3
            if (L->requant) {
                ra[nra++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC, c->tscale_mem[l->src]};
                ra[nra++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST, c->tscale_mem[l->dst]};
            }
#endif
            if ((st = dnnl_primitive_execute(L->post, c->stream, nra, ra)) != dnnl_success)
                bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN copy of %s into its concatenation failed: %s", l->name,
                            dnnl_status2str(st));
        }
    }
    dnnl_status_t st = dnnl_stream_wait(c->stream);
    if (st != dnnl_success) bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN stream wait failed: %s", dnnl_status2str(st));
}

static int dn_forward(void *ctx, const float *in, int n, float *out, char *err, size_t errlen) {
    dctx *c = ctx;
    omp_set_num_threads(c->threads);
    int full = c->nnets == MAX_NETS;
    dnet *net = net_for(c, n);
    if (net) {
        run_net(c, net, in, out);
        return 0;
    }
    if (!full) {
        snprintf(err, errlen, "oneDNN backend: cannot build for batch %d: %s", n, c->err);
        return -1;
    }
    /* More batch sizes than the cache holds (extract's batches shrink by
     * their failed images): run the max_batch primitives on a zero-padded
     * copy. An image's features do not depend on its batch, so the rows are
     * the same as with primitives built for n. */
    const size_t img = (size_t)c->g->tensors[c->g->input].h * c->g->tensors[c->g->input].w * 3;
    if (!c->pad_in) {
        c->pad_in = callocCheck((size_t)c->max_batch * img, sizeof(float));
        c->pad_out = mallocCheck((size_t)c->max_batch * BN_FEATURES * sizeof(float));
    }
    memcpy(c->pad_in, in, (size_t)n * img * sizeof(float));
    memset(c->pad_in + (size_t)n * img, 0, (size_t)(c->max_batch - n) * img * sizeof(float));
    run_net(c, c->nets[0], c->pad_in, c->pad_out);
    memcpy(out, c->pad_out, (size_t)n * BN_FEATURES * sizeof(float));
    return 0;
}

static void dn_destroy(void *ctx) {
    dctx *c = ctx;
    if (!c) return;
    for (int i = 0; i < c->nnets; i++) free_net(c->nets[i], c->g->nlayers);
    for (int k = 0; k < BN_NCONV; k++) {
        if (c->wei[k]) dnnl_memory_destroy(c->wei[k]);
        if (c->bias[k]) dnnl_memory_destroy(c->bias[k]);
        md_free(c->wei_md[k]);
        free(c->wei_buf[k]);
        free(c->qbias[k]);
        free(c->wscale[k]);
        free(c->oscale[k]);
#if DN3
        if (c->wscale_mem[k]) dnnl_memory_destroy(c->wscale_mem[k]);
#endif
    }
#if DN3
    for (int t = 0; t < BN_MAX_TENSORS; t++)
        if (c->tscale_mem[t]) dnnl_memory_destroy(c->tscale_mem[t]);
#endif
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->eng) dnnl_engine_destroy(c->eng);
    free(c->arena);
    free(c->scratch);
    free(c->inbuf);
    free(c->tmp);
    free(c->pad_in);
    free(c->pad_out);
    free(c);
}

static size_t dn_bytes(const void *ctx) { return ((const dctx *)ctx)->bytes; }

const bn_backend_ops bn_backend_dnnl = {
    "dnnl", "oneDNN convolutions; bf16 needs AVX-512 (AVX512_BF16 or AMX for speed), int8 AVX2 (VNNI for speed)",
    BN_PREC_BIT(BN_PREC_FP32) | BN_PREC_BIT(BN_PREC_BF16) | BN_PREC_BIT(BN_PREC_INT8),
    1, 30, 1, 0, dn_create, dn_forward, dn_bytes, dn_destroy, NULL, NULL, NULL};
