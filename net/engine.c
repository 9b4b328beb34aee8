/* engine.c: the backend table and the engine that picks from it. */
#include "config.h"
#include "net/backend.h"
#include "net/engine.h"
#include "pipeline/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HAVE_DNNL
/* Listed so that --build-info and error messages can say it is missing. */
const bn_backend_ops bn_backend_dnnl = {"dnnl", "oneDNN convolutions (not built: configure found no usable oneDNN)",
                                        BN_PREC_BIT(BN_PREC_FP32) | BN_PREC_BIT(BN_PREC_BF16) | BN_PREC_BIT(BN_PREC_INT8),
                                        0, 30, NULL, NULL, NULL, NULL};
#endif

/* The table, in the order --build-info lists it. */
static const bn_backend_ops *const TABLE[] = {&bn_backend_ref, &bn_backend_gemm, &bn_backend_dnnl};
#define NTABLE (sizeof TABLE / sizeof TABLE[0])

static const char *const PREC_NAMES[BN_NPREC] = {"fp32", "bf16", "int8"};

int bn_precision_parse(const char *s, bn_precision *out) {
    for (int p = 0; p < BN_NPREC; p++)
        if (s && !strcmp(s, PREC_NAMES[p])) {
            *out = (bn_precision)p;
            return 0;
        }
    return -1;
}

const char *bn_precision_name(bn_precision p) { return p >= 0 && p < BN_NPREC ? PREC_NAMES[p] : "?"; }

static const bn_backend_ops *find(const char *name) {
    for (size_t i = 0; i < NTABLE; i++)
        if (!strcmp(TABLE[i]->name, name)) return TABLE[i];
    return NULL;
}

/* "fp32, bf16" for an entry's mask. */
static void prec_list(unsigned mask, char *buf, size_t len) {
    buf[0] = 0;
    for (int p = 0; p < BN_NPREC; p++)
        if (mask & BN_PREC_BIT(p)) {
            size_t u = strlen(buf);
            snprintf(buf + u, len - u, "%s%s", u ? ", " : "", PREC_NAMES[p]);
        }
}

const char *bn_backend_resolve(const char *name, bn_precision p, char *err, size_t errlen) {
    if (!name || !strcmp(name, "cpu")) {
        const bn_backend_ops *best = NULL;
        for (size_t i = 0; i < NTABLE; i++)
            if (TABLE[i]->built && (TABLE[i]->precisions & BN_PREC_BIT(p)) && (!best || TABLE[i]->speed > best->speed))
                best = TABLE[i];
        if (best) return best->name;
        snprintf(err, errlen, "no backend of this build offers %s", bn_precision_name(p));
        return NULL;
    }
    const bn_backend_ops *b = find(name);
    if (!b) {
        snprintf(err, errlen, "unknown backend '%s' (this build has %s)", name, bn_backend_choices());
        return NULL;
    }
    if (!b->built) {
        snprintf(err, errlen, "backend '%s' is not built in (this build has %s)", name, bn_backend_choices());
        return NULL;
    }
    if (!(b->precisions & BN_PREC_BIT(p))) {
        char have[64];
        prec_list(b->precisions, have, sizeof have);
        snprintf(err, errlen, "backend '%s' does not offer %s (it offers %s)", name, bn_precision_name(p), have);
        return NULL;
    }
    return b->name;
}

const char *bn_backend_choices(void) {
    static char buf[128];
    if (!buf[0]) {
        snprintf(buf, sizeof buf, "cpu");
        for (size_t i = NTABLE; i-- > 0;)
            if (TABLE[i]->built) {
                size_t u = strlen(buf);
                snprintf(buf + u, sizeof buf - u, "|%s", TABLE[i]->name);
            }
    }
    return buf;
}

void bn_backend_table_text(char *buf, size_t len) {
    buf[0] = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        char have[64];
        prec_list(TABLE[i]->precisions, have, sizeof have);
        size_t u = strlen(buf);
        snprintf(buf + u, len - u, "  %-5s %-9s %-18s %s\n", TABLE[i]->name, TABLE[i]->built ? "built" : "not built",
                 have, TABLE[i]->summary);
    }
}

struct bn_engine {
    const bn_backend_ops *ops; /* the table entry */
    void *ctx;                 /* its state */
    bn_precision precision;    /* what it runs */
    int max_batch;             /* largest n accepted */
};

bn_engine *bn_engine_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    if (cfg->max_batch < 1 || cfg->threads < 1) {
        snprintf(err, errlen, "batch and threads must be at least 1");
        return NULL;
    }
    const char *name = bn_backend_resolve(cfg->backend, cfg->precision, err, errlen);
    if (!name) return NULL;
    if (cfg->precision == BN_PREC_INT8 && !cfg->calib) {
        snprintf(err, errlen, "int8 needs activation scales: make them with 'bneck calibrate' and pass --calibration CAL.h5");
        return NULL;
    }
    bn_engine *e = callocCheck(1, sizeof *e);
    e->ops = find(name);
    e->precision = cfg->precision;
    e->max_batch = cfg->max_batch;
    e->ctx = e->ops->create(cfg, err, errlen);
    if (!e->ctx) {
        free(e);
        return NULL;
    }
    return e;
}

void bn_engine_forward(bn_engine *e, const float *in, int n, float *out) {
    if (n < 1) return;
    if (n > e->max_batch) bn_fatal_at(__FILE__, __LINE__, NULL, "batch of %d over the engine's %d", n, e->max_batch);
    e->ops->forward(e->ctx, in, n, out);
}

size_t bn_engine_bytes(const bn_engine *e) { return e->ops->bytes(e->ctx); }
const char *bn_engine_backend(const bn_engine *e) { return e->ops->name; }
bn_precision bn_engine_precision(const bn_engine *e) { return e->precision; }

void bn_engine_free(bn_engine *e) {
    if (!e) return;
    e->ops->destroy(e->ctx);
    free(e);
}
