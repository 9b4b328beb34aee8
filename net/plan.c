/* plan.c: arena planning and the shared layer executor (net/plan.h). */
#include "config.h"
#include "net/plan.h"

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

void bn_exec(const bn_graph *g, const bn_plan *p, const bn_kernels *k, float *const *w, float *const *b,
             float *arena, const float *in, int n, float *out) {
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        const float *src = l->src == g->input ? in : arena + p->off[l->src];
        float *dst = l->dst == g->output ? out : arena + p->off[l->dst];
        switch (l->op) {
        case BN_OP_CONV: k->conv(k->ctx, l, s, d, src, dst, n, w[l->conv], b[l->conv]); break;
        case BN_OP_MAXPOOL: k->maxpool(k->ctx, l, s, d, src, dst, n); break;
        case BN_OP_AVGPOOL: k->avgpool(k->ctx, l, s, d, src, dst, n); break;
        case BN_OP_GAP: k->gap(k->ctx, l, s, d, src, dst, n); break;
        }
        if (k->after) k->after(k->ctx, l, d, dst, n);
    }
}

float *bn_plan_arena(const bn_plan *p) {
    size_t bytes = (p->floats * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

int bn_runner_init(bn_runner *r, int max_batch, char *err, size_t errlen) {
    r->g = bn_inception_v3();
    bn_plan_make(r->g, max_batch, &r->plan);
    r->arena = bn_plan_arena(&r->plan);
    if (!r->arena) {
        snprintf(err, errlen, "out of memory for %zu MB of activations (batch %d); lower --batch",
                 r->plan.floats * sizeof(float) >> 20, max_batch);
        return -1;
    }
    return 0;
}

void bn_runner_run(const bn_runner *r, const float *in, int n, float *out) {
    bn_exec(r->g, &r->plan, &r->k, r->w, r->b, r->arena, in, n, out);
}

size_t bn_runner_bytes(const bn_runner *r) { return r->plan.floats * sizeof(float); }

void bn_runner_free(bn_runner *r) {
    free(r->arena);
    r->arena = NULL;
}
