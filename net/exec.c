/* exec.c: arena planning and the shared layer executor. */
#include "config.h"
#include "net/engine.h"
#include "pipeline/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bn_plan_make(const bn_graph *g, int n, bn_plan *p) {
    memset(p, 0, sizeof *p);
    p->n = n;
    int first[BN_MAX_TENSORS], last[BN_MAX_TENSORS];
    size_t size[BN_MAX_TENSORS];
    for (int t = 0; t < g->ntensors; t++) {
        first[t] = g->nlayers;
        last[t] = -1;
        size[t] = (size_t)n * g->tensors[t].h * g->tensors[t].w * g->tensors[t].c;
    }
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        if (i < first[l->dst]) first[l->dst] = i;
        if (i > last[l->dst]) last[l->dst] = i;
        if (i > last[l->src]) last[l->src] = i;
    }
    /* Greedy placement, largest first, at the lowest offset that does not
     * collide with a placed tensor alive at the same time. */
    int order[BN_MAX_TENSORS], placed[BN_MAX_TENSORS], np = 0, no = 0;
    for (int t = 0; t < g->ntensors; t++)
        if (t != g->input && t != g->output) order[no++] = t;
    for (int a = 1; a < no; a++) {
        int x = order[a], b = a;
        while (b > 0 && size[order[b - 1]] < size[x]) { order[b] = order[b - 1]; b--; }
        order[b] = x;
    }
    for (int a = 0; a < no; a++) {
        int t = order[a];
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int q = 0; q < np; q++) {
                int u = placed[q];
                int overlap_life = !(last[u] < first[t] || last[t] < first[u]);
                int overlap_mem = !(p->off[u] + size[u] <= off || off + size[t] <= p->off[u]);
                if (overlap_life && overlap_mem) {
                    off = p->off[u] + size[u];
                    /* Round to 16 floats (64 bytes) for aligned vector access. */
                    off = (off + 15) & ~(size_t)15;
                    again = 1;
                }
            }
        }
        p->off[t] = off;
        placed[np++] = t;
        if (off + size[t] > p->floats) p->floats = off + size[t];
    }
}

void bn_exec(const bn_graph *g, const bn_plan *p, const bn_kernels *k, const bn_model *m,
             float *arena, const float *in, int n, float *out) {
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        const float *src = l->src == g->input ? in : arena + p->off[l->src];
        float *dst = l->dst == g->output ? out : arena + p->off[l->dst];
        switch (l->op) {
        case BN_OP_CONV: k->conv(k->ctx, l, s, d, src, dst, n, m->w[l->conv], m->b[l->conv]); break;
        case BN_OP_MAXPOOL: k->maxpool(k->ctx, l, s, d, src, dst, n); break;
        case BN_OP_AVGPOOL: k->avgpool(k->ctx, l, s, d, src, dst, n); break;
        case BN_OP_GAP: k->gap(k->ctx, l, s, d, src, dst, n); break;
        }
    }
}

/* ------------------------------------------------------------------ engine */

struct bn_engine {
    bn_backend backend;     /* which backend */
    const bn_model *model;  /* folded weights (not owned) */
    const bn_graph *graph;  /* the table */
    int max_batch;          /* largest n accepted */
    bn_kernels kernels;     /* ref / gemm kernels */
    void *ctx;              /* backend state (gemm, dnnl) */
    bn_plan plan;           /* arena plan for max_batch (ref, gemm) */
    float *arena;           /* (plan.floats,) activations */
    size_t bytes;           /* memory held */
};

int bn_backend_parse(const char *s, bn_backend *out) {
    if (!strcmp(s, "ref")) { *out = BN_BACKEND_REF; return 0; }
    if (!strcmp(s, "gemm")) { *out = BN_BACKEND_GEMM; return 0; }
#ifdef HAVE_DNNL
    if (!strcmp(s, "dnnl") || !strcmp(s, "cpu")) { *out = BN_BACKEND_DNNL; return 0; }
#else
    if (!strcmp(s, "cpu")) { *out = BN_BACKEND_GEMM; return 0; }
#endif
    return -1;
}

const char *bn_backend_name(bn_backend b) {
    return b == BN_BACKEND_REF ? "ref" : b == BN_BACKEND_GEMM ? "gemm" : "dnnl";
}

const char *bn_backend_choices(void) {
#ifdef HAVE_DNNL
    return "cpu|dnnl|gemm|ref";
#else
    return "cpu|gemm|ref";
#endif
}

bn_engine *bn_engine_create(const bn_model *m, bn_backend b, int max_batch, int threads,
                            char *err, size_t errlen) {
    if (max_batch < 1 || threads < 1) {
        snprintf(err, errlen, "batch and threads must be at least 1");
        return NULL;
    }
    bn_engine *e = callocCheck(1, sizeof *e);
    e->backend = b;
    e->model = m;
    e->graph = bn_inception_v3();
    e->max_batch = max_batch;
    switch (b) {
    case BN_BACKEND_REF:
        bn_ref_kernels(&e->kernels);
        break;
    case BN_BACKEND_GEMM:
        e->ctx = bn_gemm_create(max_batch, threads, &e->kernels, &e->bytes);
        break;
    case BN_BACKEND_DNNL:
#ifdef HAVE_DNNL
        e->ctx = bn_dnnl_create(m, max_batch, threads, &e->bytes, err, errlen);
        if (!e->ctx) {
            free(e);
            return NULL;
        }
        return e;
#else
        snprintf(err, errlen, "this bneck was built without oneDNN");
        free(e);
        return NULL;
#endif
    }
    bn_plan_make(e->graph, max_batch, &e->plan);
    e->arena = aligned_alloc(64, ((e->plan.floats * sizeof(float)) + 63) & ~(size_t)63);
    if (!e->arena) {
        snprintf(err, errlen, "out of memory for %zu MB of activations (batch %d); lower --batch",
                 e->plan.floats * sizeof(float) >> 20, max_batch);
        bn_engine_free(e);
        return NULL;
    }
    e->bytes += e->plan.floats * sizeof(float);
    return e;
}

void bn_engine_forward(bn_engine *e, const float *in, int n, float *out) {
    if (n < 1) return;
    if (n > e->max_batch) bn_fatal_at(__FILE__, __LINE__, NULL, "batch of %d over the engine's %d", n, e->max_batch);
#ifdef HAVE_DNNL
    if (e->backend == BN_BACKEND_DNNL) {
        bn_dnnl_forward(e->ctx, in, n, out);
        return;
    }
#endif
    /* A smaller batch uses the same offsets: each region is sized for max_batch. */
    bn_exec(e->graph, &e->plan, &e->kernels, e->model, e->arena, in, n, out);
}

size_t bn_engine_bytes(const bn_engine *e) { return e->bytes; }
bn_backend bn_engine_backend(const bn_engine *e) { return e->backend; }

void bn_engine_free(bn_engine *e) {
    if (!e) return;
    if (e->backend == BN_BACKEND_GEMM && e->ctx) bn_gemm_destroy(e->ctx);
#ifdef HAVE_DNNL
    if (e->backend == BN_BACKEND_DNNL && e->ctx) bn_dnnl_destroy(e->ctx);
#endif
    free(e->arena);
    free(e);
}
