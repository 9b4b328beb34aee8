/* dnnl.c: the oneDNN backend.
 *
 * Activations live in oneDNN's blocked layout (nChw16c on AVX-512, nChw8c on
 * AVX2): every Inception branch width is a multiple of 16, so each branch's output is a whole set of
 * channel blocks of its block's concatenated tensor, and convolutions and
 * pools write their slice in place through a sub-memory descriptor (no concat,
 * no copy). Each convolution carries its folded BN as bias and ReLU as a
 * post-op; weights are reordered once into the layout the primitive asks for.
 * The input arrives as NHWC and the output leaves as (n, 2048).
 * Primitives are built per batch size on first use and cached.
 */
#include "config.h"
#include "net/backend.h"
#include "net/plan.h"
#include "pipeline/log.h"

#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NETS 4 /* batch sizes with cached primitives */

/* One layer's primitive and its arguments for one batch size. */
typedef struct {
    dnnl_primitive_t prim; /* conv or pooling */
    dnnl_memory_t src;     /* whole source tensor */
    dnnl_memory_t dst;     /* the destination slice (sub-memory) */
    dnnl_memory_t wei;     /* conv weights in the primitive's layout (not owned) */
    dnnl_memory_t bias;    /* conv bias (not owned) */
    dnnl_memory_t scratch; /* scratchpad, or NULL */
    dnnl_primitive_t pre;  /* reorder of the user's NHWC input into the layout src wants, or NULL */
    dnnl_memory_t pre_src; /* the user's input as given */
    dnnl_primitive_t post; /* copy of a dense branch output into its concat slice, or NULL */
    dnnl_memory_t slice;   /* that slice (sub-memory of the concatenated tensor) */
} dlayer;

/* Everything for one batch size. */
typedef struct {
    int n;                                /* batch size */
    dlayer layers[BN_MAX_LAYERS];         /* per layer */
    dnnl_memory_t wei_own[BN_NCONV];      /* weights reordered for this n when the layout differs from net 0 */
    float *wei_buf[BN_NCONV];             /* their storage */
} dnet;

typedef struct {
    dnnl_engine_t eng;                  /* CPU engine */
    dnnl_stream_t stream;               /* in-order stream */
    int threads;                        /* OpenMP threads for oneDNN */
    int max_batch;                      /* largest batch */
    const bn_model *m;                  /* folded weights (not owned) */
    const bn_graph *g;                  /* the table */
    bn_plan plan;                       /* arena offsets for max_batch */
    float *arena;                       /* activations, blocked layout */
    float *inbuf;                       /* reordered input for the first conv, or NULL */
    float *tmp;                         /* dense output of a branch before its copy into the concat */
    size_t tmp_floats;                  /* floats at tmp */
    dnnl_format_tag_t tag;              /* activation layout (blocked nChw16c, or nhwc) */
    dnnl_alg_kind_t conv_alg;           /* direct, or auto (lets oneDNN use Winograd) */
    size_t inbuf_floats;                /* floats at inbuf */
    float *scratch;                     /* shared scratchpad */
    size_t scratch_bytes;               /* bytes at scratch */
    dnnl_memory_desc_t wei_md[BN_NCONV];/* weights layout chosen by the first net */
    dnnl_memory_t wei[BN_NCONV];        /* weights in that layout */
    float *wei_buf[BN_NCONV];           /* their storage */
    dnnl_memory_t bias[BN_NCONV];       /* folded biases (point into the model) */
    dnet *nets[MAX_NETS];               /* per batch size; nets[0] is max_batch */
    float *pad_in, *pad_out;            /* padded batch for sizes beyond the cache, or NULL */
    int nnets;                          /* nets built */
    char *err;                          /* where to write a failure */
    size_t errlen;                      /* its size */
    size_t bytes;                       /* memory held */
} dctx;

#define DN(call)                                                                                     \
    do {                                                                                             \
        dnnl_status_t st_ = (call);                                                                  \
        if (st_ != dnnl_success) {                                                                   \
            snprintf(c->err, c->errlen, "%s:%d: oneDNN call %s failed with status %d", __FILE__, __LINE__, \
                     #call, (int)st_);                                                               \
            return -1;                                                                               \
        }                                                                                            \
    } while (0)

/* Memory descriptor of a whole tensor for batch n. */
static int tensor_md(dctx *c, int t, int n, dnnl_memory_desc_t *md) {
    const bn_tensor *x = &c->g->tensors[t];
    dnnl_dims_t d = {n, x->c, x->h, x->w};
    /* The (n, 2048, 1, 1) output is laid out as plain (n, 2048) in either tag. */
    dnnl_format_tag_t tag = t == c->g->input ? dnnl_nhwc : c->tag;
    DN(dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag));
    return 0;
}

static void *tensor_ptr(dctx *c, int t) {
    if (t == c->g->input || t == c->g->output) return NULL; /* set per call */
    return c->arena + c->plan.off[t];
}

/* Bytes of a primitive's scratchpad; grow the shared buffer to fit. */
static int need_scratch(dctx *c, const_dnnl_primitive_desc_t pd, dlayer *L) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sz == 0) return 0;
    if (sz > c->scratch_bytes) {
        snprintf(c->err, c->errlen, "internal: scratchpad grew after allocation");
        return -1;
    }
    DN(dnnl_memory_create(&L->scratch, smd, c->eng, c->scratch));
    return 0;
}

static size_t scratch_size(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return smd ? dnnl_memory_desc_get_size(smd) : 0;
}

/* Build one layer's primitive for batch n. pass 0 only sizes the scratchpad. */
static int build_layer(dctx *c, dnet *net, int i, int pass) {
    const bn_layer *l = &c->g->layers[i];
    dlayer *L = &net->layers[i];
    const int n = net->n;
    dnnl_memory_desc_t src_md, dst_full, dst_md;
    if (tensor_md(c, l->src, n, &src_md) || tensor_md(c, l->dst, n, &dst_full)) return -1;
    const bn_tensor *d = &c->g->tensors[l->dst];
    dnnl_dims_t sub = {n, l->cout, d->h, d->w}, off = {0, l->dst_off, 0, 0};
    /* oneDNN 2.6's fast kernels do not write into a channel slice of a larger
     * tensor (they fall back to the reference kernel, ~50x slower), so a
     * branch writes a dense tensor that one reorder copies into its slice. */
    const int sliced = l->dst != c->g->output && d->c != l->cout;
    dnnl_memory_desc_t slice_md;
    DN(dnnl_memory_desc_init_submemory(&slice_md, &dst_full, sub, off));
    if (sliced)
        DN(dnnl_memory_desc_init_by_tag(&dst_md, 4, sub, dnnl_f32, c->tag));
    else
        dst_md = slice_md;
    if (pass == 0 && sliced) {
        size_t fl = (size_t)n * l->cout * d->h * d->w;
        if (fl > c->tmp_floats) c->tmp_floats = fl;
    }
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr));
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t strides = {l->stride, l->stride}, pad = {l->pad_h, l->pad_w};
    int rc = -1;
    if (l->op == BN_OP_CONV) {
        dnnl_memory_desc_t wany, bmd, src_any;
        dnnl_dims_t wd = {l->cout, l->cin, l->kh, l->kw}, bd = {l->cout};
        DN(dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_f32, dnnl_format_tag_any));
        DN(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x));
        int first = l->src == c->g->input;
        if (first) { /* let the primitive choose the input layout; reorder to it */
            dnnl_dims_t sd = {n, l->cin, c->g->tensors[l->src].h, c->g->tensors[l->src].w};
            DN(dnnl_memory_desc_init_by_tag(&src_any, 4, sd, dnnl_f32, dnnl_format_tag_any));
        }
        dnnl_post_ops_t po;
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
        dnnl_convolution_desc_t cd;
        const dnnl_memory_desc_t *wsel = (net != c->nets[0] && c->wei[l->conv]) ? &c->wei_md[l->conv] : &wany;
        DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, c->conv_alg,
                                              first ? &src_any : &src_md, wsel, &bmd, &dst_md, strides, pad, pad));
        if (dnnl_primitive_desc_create(&pd, &cd, attr, c->eng, NULL) != dnnl_success && wsel != &wany) {
            DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, c->conv_alg,
                                                  first ? &src_any : &src_md, &wany, &bmd, &dst_md, strides, pad, pad));
            DN(dnnl_primitive_desc_create(&pd, &cd, attr, c->eng, NULL));
        } else if (!pd) {
            DN(dnnl_primitive_desc_create(&pd, &cd, attr, c->eng, NULL));
        }
        if (pass == 0) {
            size_t s = scratch_size(pd);
            if (s > c->scratch_bytes) c->scratch_bytes = s;
            if (first) {
                const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
                size_t fl = dnnl_memory_desc_get_size(smd) / sizeof(float);
                if (fl > c->inbuf_floats) c->inbuf_floats = fl;
            }
            rc = 0;
            goto done;
        }
        const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        int k = l->conv;
        if (!c->wei[k] || !dnnl_memory_desc_equal(wmd, &c->wei_md[k])) {
            /* Reorder the HWIO weights into the primitive's layout. */
            dnnl_memory_desc_t user;
            DN(dnnl_memory_desc_init_by_tag(&user, 4, wd, dnnl_f32, dnnl_hwio));
            dnnl_memory_t um, wm;
            DN(dnnl_memory_create(&um, &user, c->eng, (void *)c->m->w[k]));
            size_t wb = dnnl_memory_desc_get_size(wmd);
            float *buf = aligned_alloc(64, (wb + 63) & ~(size_t)63);
            if (!buf) {
                snprintf(c->err, c->errlen, "out of memory for weights");
                return -1;
            }
            DN(dnnl_memory_create(&wm, wmd, c->eng, buf));
            dnnl_primitive_desc_t rpd;
            dnnl_primitive_t rp;
            DN(dnnl_reorder_primitive_desc_create(&rpd, &user, c->eng, wmd, c->eng, NULL));
            DN(dnnl_primitive_create(&rp, rpd));
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, wm}};
            DN(dnnl_primitive_execute(rp, c->stream, 2, ra));
            DN(dnnl_stream_wait(c->stream));
            dnnl_primitive_destroy(rp);
            dnnl_primitive_desc_destroy(rpd);
            dnnl_memory_destroy(um);
            c->bytes += wb;
            if (!c->wei[k]) {
                c->wei[k] = wm;
                c->wei_buf[k] = buf;
                c->wei_md[k] = *wmd;
            } else {
                net->wei_own[k] = wm;
                net->wei_buf[k] = buf;
            }
        }
        L->wei = net->wei_own[k] ? net->wei_own[k] : c->wei[k];
        if (!c->bias[k]) DN(dnnl_memory_create(&c->bias[k], &bmd, c->eng, (void *)c->m->b[k]));
        L->bias = c->bias[k];
        if (first) {
            const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
            DN(dnnl_memory_create(&L->pre_src, &src_md, c->eng, DNNL_MEMORY_NONE));
            if (!dnnl_memory_desc_equal(smd, &src_md)) {
                DN(dnnl_memory_create(&L->src, smd, c->eng, c->inbuf));
                dnnl_primitive_desc_t rpd;
                DN(dnnl_reorder_primitive_desc_create(&rpd, &src_md, c->eng, smd, c->eng, NULL));
                DN(dnnl_primitive_create(&L->pre, rpd));
                dnnl_primitive_desc_destroy(rpd);
            }
        }
    } else {
        dnnl_pooling_v2_desc_t pdsc;
        dnnl_dims_t kernel = {l->kh, l->kw}, dil = {0, 0};
        dnnl_alg_kind_t alg = l->op == BN_OP_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
        if (l->op == BN_OP_GAP) {
            const bn_tensor *s = &c->g->tensors[l->src];
            kernel[0] = s->h;
            kernel[1] = s->w;
        }
        DN(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &src_md, &dst_md, strides, kernel, dil,
                                             pad, pad));
        DN(dnnl_primitive_desc_create(&pd, &pdsc, attr, c->eng, NULL));
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
        bn_debug("dnnl n=%d %-28s %s", n, l->name, impl ? impl : "?");
    }
    if (!L->src) DN(dnnl_memory_create(&L->src, &src_md, c->eng, tensor_ptr(c, l->src) ? tensor_ptr(c, l->src) : DNNL_MEMORY_NONE));
    if (sliced) {
        DN(dnnl_memory_create(&L->dst, &dst_md, c->eng, c->tmp));
        DN(dnnl_memory_create(&L->slice, &slice_md, c->eng, tensor_ptr(c, l->dst)));
        dnnl_primitive_desc_t rpd;
        DN(dnnl_reorder_primitive_desc_create(&rpd, &dst_md, c->eng, &slice_md, c->eng, NULL));
        DN(dnnl_primitive_create(&L->post, rpd));
        dnnl_primitive_desc_destroy(rpd);
    } else {
        DN(dnnl_memory_create(&L->dst, &dst_md, c->eng, tensor_ptr(c, l->dst) ? tensor_ptr(c, l->dst) : DNNL_MEMORY_NONE));
    }
    if (need_scratch(c, pd, L)) goto done;
    DN(dnnl_primitive_create(&L->prim, pd));
    rc = 0;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

static dnet *build_net(dctx *c, int n, int pass) {
    dnet *net = calloc(1, sizeof *net);
    if (!net) {
        snprintf(c->err, c->errlen, "out of memory");
        return NULL;
    }
    net->n = n;
    if (pass == 1 && c->nnets == 0) c->nets[c->nnets++] = net;
    for (int i = 0; i < c->g->nlayers; i++)
        if (build_layer(c, net, i, pass)) {
            free(net);
            return NULL;
        }
    return net;
}

static void dn_destroy(void *ctx);

static void *dn_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    const bn_model *m = cfg->model;
    const int max_batch = cfg->max_batch, threads = cfg->threads;
    dctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->err = err;
    c->errlen = errlen;
    c->m = m;
    c->g = bn_inception_v3();
    c->threads = threads;
    c->max_batch = max_batch;
    const char *lay = getenv("BNECK_DNNL_LAYOUT");
    /* Blocks of 16 channels suit AVX-512; on AVX2-only CPUs oneDNN's JIT
     * kernels take blocks of 8 and would fall back to its reference kernel
     * (hundreds of times slower) on nChw16c. Every branch width is a
     * multiple of 16, so of 8 too. */
    dnnl_format_tag_t blocked = __builtin_cpu_supports("avx512f") ? dnnl_nChw16c : dnnl_nChw8c;
    c->tag = (lay && !strcmp(lay, "nhwc")) ? dnnl_nhwc : blocked;
    const char *alg = getenv("BNECK_DNNL_ALG");
    c->conv_alg = (alg && !strcmp(alg, "auto")) ? dnnl_convolution_auto : (alg && !strcmp(alg, "winograd")) ? dnnl_convolution_winograd : dnnl_convolution_direct;
    omp_set_num_threads(threads);
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->stream, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(err, errlen, "cannot create a oneDNN CPU engine");
        free(c);
        return NULL;
    }
    bn_plan_make(c->g, max_batch, &c->plan);
    /* Pass 0 sizes the scratchpad and input buffer; pass 1 builds. */
    dnet *probe = build_net(c, max_batch, 0);
    if (!probe) goto fail;
    free(probe);
    c->arena = aligned_alloc(64, (c->plan.floats * sizeof(float) + 63) & ~(size_t)63);
    c->scratch = c->scratch_bytes ? aligned_alloc(64, (c->scratch_bytes + 63) & ~(size_t)63) : NULL;
    c->inbuf = c->inbuf_floats ? aligned_alloc(64, (c->inbuf_floats * sizeof(float) + 63) & ~(size_t)63) : NULL;
    c->tmp = c->tmp_floats ? aligned_alloc(64, (c->tmp_floats * sizeof(float) + 63) & ~(size_t)63) : NULL;
    if (!c->arena || (c->scratch_bytes && !c->scratch) || (c->inbuf_floats && !c->inbuf) || (c->tmp_floats && !c->tmp)) {
        snprintf(err, errlen, "out of memory for activations (batch %d); lower --batch", max_batch);
        goto fail;
    }
    c->bytes = (c->plan.floats + c->inbuf_floats + c->tmp_floats) * sizeof(float) + c->scratch_bytes;
    if (!build_net(c, max_batch, 1)) goto fail;
    return c;
fail:
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
    free(probe);
    if (c->scratch_bytes > before) { /* a smaller batch needing more scratch: rare; grow */
        free(c->scratch);
        c->scratch = aligned_alloc(64, (c->scratch_bytes + 63) & ~(size_t)63);
        if (!c->scratch) return NULL;
        for (int i = 0; i < c->nnets; i++)
            for (int j = 0; j < c->g->nlayers; j++)
                if (c->nets[i]->layers[j].scratch) dnnl_memory_set_data_handle(c->nets[i]->layers[j].scratch, c->scratch);
    }
    dnet *net = build_net(c, n, 1);
    if (net) c->nets[c->nnets++] = net;
    return net;
}

static void run_net(dctx *c, dnet *net, const float *in, float *out);

static void dn_forward(void *ctx, const float *in, int n, float *out) {
    dctx *c = ctx;
    omp_set_num_threads(c->threads);
    int full = c->nnets == MAX_NETS;
    dnet *net = net_for(c, n);
    if (net) {
        run_net(c, net, in, out);
        return;
    }
    if (!full) bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN backend: cannot build for batch %d: %s", n, c->err);
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
}

/* Run every layer of one batch size's net. */
static void run_net(dctx *c, dnet *net, const float *in, float *out) {
    for (int i = 0; i < c->g->nlayers; i++) {
        const bn_layer *l = &c->g->layers[i];
        dlayer *L = &net->layers[i];
        if (L->pre) {
            dnnl_memory_set_data_handle(L->pre_src, (void *)in);
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, L->pre_src}, {DNNL_ARG_TO, L->src}};
            if (dnnl_primitive_execute(L->pre, c->stream, 2, ra) != dnnl_success)
                bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN input reorder failed");
        } else if (l->src == c->g->input) {
            dnnl_memory_set_data_handle(L->src, (void *)in);
        }
        if (l->dst == c->g->output) dnnl_memory_set_data_handle(L->dst, out);
        dnnl_exec_arg_t a[6];
        int na = 0;
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, L->src};
        a[na++] = (dnnl_exec_arg_t){DNNL_ARG_DST, L->dst};
        if (L->wei) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, L->wei};
        if (L->bias) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, L->bias};
        if (L->scratch) a[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, L->scratch};
        if (dnnl_primitive_execute(L->prim, c->stream, na, a) != dnnl_success)
            bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN execution of %s failed", l->name);
        if (L->post) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, L->dst}, {DNNL_ARG_TO, L->slice}};
            if (dnnl_primitive_execute(L->post, c->stream, 2, ra) != dnnl_success)
                bn_fatal_at(__FILE__, __LINE__, NULL, "oneDNN copy of %s into its concatenation failed", l->name);
        }
    }
    dnnl_stream_wait(c->stream);
}

static void free_net(dnet *net, int nlayers) {
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

static void dn_destroy(void *ctx) {
    dctx *c = ctx;
    if (!c) return;
    for (int i = 0; i < c->nnets; i++) free_net(c->nets[i], c->g->nlayers);
    for (int k = 0; k < BN_NCONV; k++) {
        if (c->wei[k]) dnnl_memory_destroy(c->wei[k]);
        if (c->bias[k]) dnnl_memory_destroy(c->bias[k]);
        free(c->wei_buf[k]);
    }
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

const bn_backend_ops bn_backend_dnnl = {"dnnl", "oneDNN convolutions, blocked layout", BN_PREC_BIT(BN_PREC_FP32), 1, 30,
                                        dn_create, dn_forward, dn_bytes, dn_destroy};
