/* graph.c: the Inception v3 layer table and its resolution into bn_graph.
 *
 * Each row names its source and destination tensors; a destination written
 * by several rows is a concatenation, its slices laid out in row order (which
 * is Keras' concatenation order). Convolutions appear in Keras' creation
 * order, the order of the weights file's conv2d_N numbering.
 */
#include "net/graph.h"
#include "pipeline/log.h"

#include <stdlib.h>
#include <string.h>

/* One row of the table. pad: 'V' valid (none), 'S' same (stride 1 only). */
typedef struct {
    const char *name; /* layer name */
    char op;          /* 'C' conv, 'M' max pool, 'A' average pool, 'G' global average */
    const char *src;  /* source tensor */
    const char *dst;  /* destination tensor */
    int kh, kw;       /* kernel */
    int stride;       /* stride */
    char pad;         /* 'V' or 'S' */
    int cout;         /* conv output channels (0 for pools: same as input) */
} row_t;

#define C(n, s, d, kh, kw, st, p, co) {n, 'C', s, d, kh, kw, st, p, co}
#define MAXP(n, s, d) {n, 'M', s, d, 3, 3, 2, 'V', 0}
#define AVGP(n, s, d) {n, 'A', s, d, 3, 3, 1, 'S', 0}

/* 35x35 block (Keras mixed0..2): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1. */
#define BLOCK_A(m, in, poolc)                                   \
    C(m "/branch1x1", in, m, 1, 1, 1, 'S', 64),                 \
    C(m "/branch5x5_1", in, m "/b5", 1, 1, 1, 'S', 48),         \
    C(m "/branch5x5_2", m "/b5", m, 5, 5, 1, 'S', 64),          \
    C(m "/branch3x3dbl_1", in, m "/b3a", 1, 1, 1, 'S', 64),     \
    C(m "/branch3x3dbl_2", m "/b3a", m "/b3b", 3, 3, 1, 'S', 96), \
    C(m "/branch3x3dbl_3", m "/b3b", m, 3, 3, 1, 'S', 96),      \
    AVGP(m "/pool", in, m "/bp"),                               \
    C(m "/branch_pool", m "/bp", m, 1, 1, 1, 'S', poolc)

/* 17x17 block (Keras mixed4..7) with c channels in the factorised 7x7 branches. */
#define BLOCK_C(m, in, c)                                         \
    C(m "/branch1x1", in, m, 1, 1, 1, 'S', 192),                  \
    C(m "/branch7x7_1", in, m "/b7a", 1, 1, 1, 'S', c),           \
    C(m "/branch7x7_2", m "/b7a", m "/b7b", 1, 7, 1, 'S', c),     \
    C(m "/branch7x7_3", m "/b7b", m, 7, 1, 1, 'S', 192),          \
    C(m "/branch7x7dbl_1", in, m "/d7a", 1, 1, 1, 'S', c),        \
    C(m "/branch7x7dbl_2", m "/d7a", m "/d7b", 7, 1, 1, 'S', c),  \
    C(m "/branch7x7dbl_3", m "/d7b", m "/d7c", 1, 7, 1, 'S', c),  \
    C(m "/branch7x7dbl_4", m "/d7c", m "/d7d", 7, 1, 1, 'S', c),  \
    C(m "/branch7x7dbl_5", m "/d7d", m, 1, 7, 1, 'S', 192),       \
    AVGP(m "/pool", in, m "/bp"),                                 \
    C(m "/branch_pool", m "/bp", m, 1, 1, 1, 'S', 192)

/* 8x8 block (Keras mixed9, mixed10): the 3x3 branches split into 1x3 and 3x1. */
#define BLOCK_E(m, in)                                              \
    C(m "/branch1x1", in, m, 1, 1, 1, 'S', 320),                    \
    C(m "/branch3x3_1", in, m "/b3", 1, 1, 1, 'S', 384),            \
    C(m "/branch3x3_2a", m "/b3", m, 1, 3, 1, 'S', 384),            \
    C(m "/branch3x3_2b", m "/b3", m, 3, 1, 1, 'S', 384),            \
    C(m "/branch3x3dbl_1", in, m "/d3a", 1, 1, 1, 'S', 448),        \
    C(m "/branch3x3dbl_2", m "/d3a", m "/d3b", 3, 3, 1, 'S', 384),  \
    C(m "/branch3x3dbl_3a", m "/d3b", m, 1, 3, 1, 'S', 384),        \
    C(m "/branch3x3dbl_3b", m "/d3b", m, 3, 1, 1, 'S', 384),        \
    AVGP(m "/pool", in, m "/bp"),                                   \
    C(m "/branch_pool", m "/bp", m, 1, 1, 1, 'S', 192)

static const row_t table[] = {
    /* stem: 299 -> 35 */
    C("conv1", "input", "conv1", 3, 3, 2, 'V', 32),
    C("conv2", "conv1", "conv2", 3, 3, 1, 'V', 32),
    C("conv3", "conv2", "conv3", 3, 3, 1, 'S', 64),
    MAXP("pool1", "conv3", "pool1"),
    C("conv4", "pool1", "conv4", 1, 1, 1, 'V', 80),
    C("conv5", "conv4", "conv5", 3, 3, 1, 'V', 192),
    MAXP("pool2", "conv5", "pool2"),
    /* 35x35 */
    BLOCK_A("mixed0", "pool2", 32),
    BLOCK_A("mixed1", "mixed0", 64),
    BLOCK_A("mixed2", "mixed1", 64),
    /* 35 -> 17 */
    C("mixed3/branch3x3", "mixed2", "mixed3", 3, 3, 2, 'V', 384),
    C("mixed3/branch3x3dbl_1", "mixed2", "mixed3/d3a", 1, 1, 1, 'S', 64),
    C("mixed3/branch3x3dbl_2", "mixed3/d3a", "mixed3/d3b", 3, 3, 1, 'S', 96),
    C("mixed3/branch3x3dbl_3", "mixed3/d3b", "mixed3", 3, 3, 2, 'V', 96),
    MAXP("mixed3/pool", "mixed2", "mixed3"),
    /* 17x17 */
    BLOCK_C("mixed4", "mixed3", 128),
    BLOCK_C("mixed5", "mixed4", 160),
    BLOCK_C("mixed6", "mixed5", 160),
    BLOCK_C("mixed7", "mixed6", 192),
    /* 17 -> 8 */
    C("mixed8/branch3x3_1", "mixed7", "mixed8/b3", 1, 1, 1, 'S', 192),
    C("mixed8/branch3x3_2", "mixed8/b3", "mixed8", 3, 3, 2, 'V', 320),
    C("mixed8/branch7x7x3_1", "mixed7", "mixed8/b7a", 1, 1, 1, 'S', 192),
    C("mixed8/branch7x7x3_2", "mixed8/b7a", "mixed8/b7b", 1, 7, 1, 'S', 192),
    C("mixed8/branch7x7x3_3", "mixed8/b7b", "mixed8/b7c", 7, 1, 1, 'S', 192),
    C("mixed8/branch7x7x3_4", "mixed8/b7c", "mixed8", 3, 3, 2, 'V', 192),
    MAXP("mixed8/pool", "mixed7", "mixed8"),
    /* 8x8 */
    BLOCK_E("mixed9", "mixed8"),
    BLOCK_E("mixed10", "mixed9"),
    /* pool_3 */
    {"pool_3", 'G', "mixed10", "pool_3", 8, 8, 1, 'V', 0},
};

int bn_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static bn_graph g_graph;
static int g_built = 0;

static int tensor_id(bn_graph *g, const char *name) {
    for (int i = 0; i < g->ntensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return i;
    if (g->ntensors >= BN_MAX_TENSORS) bn_fatal_at(__FILE__, __LINE__, NULL, "graph table: too many tensors");
    g->tensors[g->ntensors] = (bn_tensor){name, 0, 0, 0};
    return g->ntensors++;
}

static void build(bn_graph *g) {
    memset(g, 0, sizeof *g);
    g->input = tensor_id(g, "input");
    g->tensors[g->input].h = g->tensors[g->input].w = 299;
    g->tensors[g->input].c = 3;
    const int nrows = (int)(sizeof table / sizeof table[0]);
    if (nrows > BN_MAX_LAYERS) bn_fatal_at(__FILE__, __LINE__, NULL, "graph table: too many layers");
    int nconv = 0;
    for (int i = 0; i < nrows; i++) {
        const row_t *r = &table[i];
        bn_layer *l = &g->layers[g->nlayers++];
        l->name = r->name;
        l->src = tensor_id(g, r->src);
        l->dst = tensor_id(g, r->dst);
        bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        if (s->c == 0) bn_fatal_at(__FILE__, __LINE__, NULL, "graph table: %s reads %s before it is written", r->name, r->src);
        l->op = r->op == 'C' ? BN_OP_CONV : r->op == 'M' ? BN_OP_MAXPOOL : r->op == 'A' ? BN_OP_AVGPOOL : BN_OP_GAP;
        l->kh = r->kh;
        l->kw = r->kw;
        l->stride = r->stride;
        l->pad_h = r->pad == 'S' ? (r->kh - 1) / 2 : 0;
        l->pad_w = r->pad == 'S' ? (r->kw - 1) / 2 : 0;
        l->cin = s->c;
        l->cout = r->op == 'C' ? r->cout : s->c;
        l->conv = -1;
        if (l->op == BN_OP_CONV) {
            l->conv = nconv;
            g->conv_layer[nconv++] = g->nlayers - 1;
        }
        int oh = bn_out_size(s->h, l->kh, l->stride, l->pad_h), ow = bn_out_size(s->w, l->kw, l->stride, l->pad_w);
        if (l->op == BN_OP_GAP) oh = ow = 1;
        if (d->c == 0) {
            d->h = oh;
            d->w = ow;
        } else if (d->h != oh || d->w != ow) {
            bn_fatal_at(__FILE__, __LINE__, NULL, "graph table: %s writes %dx%d into %s of %dx%d", r->name, oh, ow, r->dst, d->h, d->w);
        }
        l->dst_off = d->c;
        d->c += l->cout;
        if (l->op == BN_OP_CONV) g->macs += (long long)oh * ow * l->cout * l->cin * l->kh * l->kw;
    }
    g->output = tensor_id(g, "pool_3");
    if (nconv != BN_NCONV || g->tensors[g->output].c != BN_FEATURES)
        bn_fatal_at(__FILE__, __LINE__, NULL, "graph table: %d convs and %d features", nconv, g->tensors[g->output].c);
}

const bn_graph *bn_inception_v3(void) {
    if (!g_built) {
        build(&g_graph);
        g_built = 1;
    }
    return &g_graph;
}
