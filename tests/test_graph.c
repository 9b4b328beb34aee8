/* test_graph.c: the Inception v3 layer table and the activation arena plan. */
#include "net/plan.h"
#include "net/graph.h"
#include "tests/testutil.h"

#include <string.h>

static const bn_tensor *T(const bn_graph *g, const char *name) {
    for (int i = 0; i < g->ntensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

int main(void) {
    const bn_graph *g = bn_inception_v3();
    int nconv = 0, counts[4] = {0};
    for (int i = 0; i < g->nlayers; i++) {
        counts[g->layers[i].op]++;
        if (g->layers[i].op == BN_OP_CONV) CHECK(g->layers[i].conv == nconv++, "conv numbering at layer %d", i);
    }
    CHECK(nconv == 94, "94 convolutions, got %d", nconv);
    CHECK(counts[BN_OP_MAXPOOL] == 4 && counts[BN_OP_AVGPOOL] == 9 && counts[BN_OP_GAP] == 1, "pools %d %d %d",
          counts[1], counts[2], counts[3]);
    /* 5.71 G multiply-adds per image (DESIGN.md). */
    CHECK(g->macs > 5705000000LL && g->macs < 5715000000LL, "macs %lld", g->macs);
    /* Shapes of the block outputs, as in Keras' model summary. */
    struct { const char *n; int h, w, c; } want[] = {
        {"input", 299, 299, 3}, {"conv1", 149, 149, 32}, {"conv3", 147, 147, 64}, {"pool1", 73, 73, 64},
        {"conv5", 71, 71, 192}, {"pool2", 35, 35, 192}, {"mixed0", 35, 35, 256}, {"mixed1", 35, 35, 288},
        {"mixed2", 35, 35, 288}, {"mixed3", 17, 17, 768}, {"mixed7", 17, 17, 768}, {"mixed8", 8, 8, 1280},
        {"mixed9", 8, 8, 2048}, {"mixed10", 8, 8, 2048}, {"pool_3", 1, 1, 2048},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const bn_tensor *t = T(g, want[i].n);
        CHECK(t && t->h == want[i].h && t->w == want[i].w && t->c == want[i].c, "shape of %s", want[i].n);
    }
    /* Every concatenation is tiled exactly by its writers' slices, each a
     * multiple of 16 channels (what the blocked oneDNN layout relies on). */
    for (int t = 0; t < g->ntensors; t++) {
        if (t == g->input) continue;
        int covered = 0, writers = 0;
        for (int i = 0; i < g->nlayers; i++) {
            const bn_layer *l = &g->layers[i];
            if (l->dst != t) continue;
            CHECK(l->dst_off == covered, "%s: slice of %s starts at %d, expected %d", l->name, g->tensors[t].name,
                  l->dst_off, covered);
            CHECK(l->cout % 16 == 0 && l->dst_off % 16 == 0, "%s: slice not a multiple of 16", l->name);
            covered += l->cout;
            writers++;
        }
        CHECK(writers > 0 && covered == g->tensors[t].c, "%s covered %d of %d", g->tensors[t].name, covered,
              g->tensors[t].c);
    }
    /* Conv input channels equal the source tensor's width (convs read whole tensors). */
    for (int i = 0; i < g->nlayers; i++)
        CHECK(g->layers[i].cin == g->tensors[g->layers[i].src].c, "%s cin", g->layers[i].name);

    /* Arena plan: tensors alive at the same time never share memory. */
    for (int n = 1; n <= 8; n *= 2) {
        bn_plan p;
        bn_plan_make(g, n, &p);
        int first[BN_MAX_TENSORS], last[BN_MAX_TENSORS];
        for (int t = 0; t < g->ntensors; t++) { first[t] = 1 << 30; last[t] = -1; }
        for (int i = 0; i < g->nlayers; i++) {
            const bn_layer *l = &g->layers[i];
            if (i < first[l->dst]) first[l->dst] = i;
            if (i > last[l->dst]) last[l->dst] = i;
            if (i > last[l->src]) last[l->src] = i;
        }
        size_t sum = 0;
        int bad = 0;
        for (int a = 0; a < g->ntensors; a++) {
            if (a == g->input || a == g->output) continue;
            size_t sa = (size_t)n * g->tensors[a].h * g->tensors[a].w * g->tensors[a].c;
            sum += sa;
            CHECK(p.off[a] + sa <= p.floats, "tensor %s beyond the arena", g->tensors[a].name);
            for (int b = a + 1; b < g->ntensors; b++) {
                if (b == g->input || b == g->output) continue;
                size_t sb = (size_t)n * g->tensors[b].h * g->tensors[b].w * g->tensors[b].c;
                int live = !(last[a] < first[b] || last[b] < first[a]);
                int mem = !(p.off[a] + sa <= p.off[b] || p.off[b] + sb <= p.off[a]);
                if (live && mem) bad++;
            }
        }
        CHECK(bad == 0, "batch %d: %d pairs of live tensors overlap", n, bad);
        CHECK(p.floats < sum / 3, "batch %d: arena %zu floats does not reuse memory (sum %zu)", n, p.floats, sum);
        printf("batch %d: arena %.1f MiB (%.1f MiB without reuse)\n", n, p.floats * 4.0 / 1048576, sum * 4.0 / 1048576);
    }
    return t_done("test_graph");
}
