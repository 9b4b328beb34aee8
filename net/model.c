/* model.c: see model.h. */
#include "net/model.h"
#include "pipeline/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bn_raw_alloc(bn_raw_params *p) {
    const bn_graph *g = bn_inception_v3();
    memset(p, 0, sizeof *p);
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_layer *l = &g->layers[g->conv_layer[k]];
        bn_conv_raw *c = &p->conv[k];
        c->kh = l->kh;
        c->kw = l->kw;
        c->cin = l->cin;
        c->cout = l->cout;
        c->kernel = callocCheck((size_t)l->kh * l->kw * l->cin * l->cout, sizeof(float));
        c->beta = callocCheck((size_t)l->cout, sizeof(float));
        c->mean = callocCheck((size_t)l->cout, sizeof(float));
        c->var = callocCheck((size_t)l->cout, sizeof(float));
    }
}

void bn_raw_free(bn_raw_params *p) {
    for (int k = 0; k < BN_NCONV; k++) {
        bn_conv_raw *c = &p->conv[k];
        free(c->kernel);
        free(c->gamma);
        free(c->beta);
        free(c->mean);
        free(c->var);
    }
    memset(p, 0, sizeof *p);
}

void bn_model_fold(const bn_raw_params *p, bn_model *m) {
    memset(m, 0, sizeof *m);
    size_t total = 0;
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_conv_raw *c = &p->conv[k];
        total += (size_t)c->kh * c->kw * c->cin * c->cout + (size_t)c->cout;
    }
    m->mem = mallocCheck(total * sizeof(float));
    m->nfloats = total;
    float *q = m->mem;
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_conv_raw *c = &p->conv[k];
        size_t nk = (size_t)c->kh * c->kw * c->cin;
        m->w[k] = q;
        q += nk * c->cout;
        m->b[k] = q;
        q += c->cout;
        for (int o = 0; o < c->cout; o++) {
            /* Fold in double, round once to float. */
            double gamma = c->gamma ? c->gamma[o] : 1.0;
            double scale = gamma / sqrt((double)c->var[o] + BN_BN_EPS);
            m->b[k][o] = (float)((double)c->beta[o] - (double)c->mean[o] * scale);
            for (size_t i = 0; i < nk; i++)
                m->w[k][i * c->cout + o] = (float)((double)c->kernel[i * c->cout + o] * scale);
        }
    }
}

void bn_model_free(bn_model *m) {
    free(m->mem);
    memset(m, 0, sizeof *m);
}
