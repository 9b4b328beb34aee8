/* engine.c: the backend table and the engine that picks from it. */
#include "config.h"
#include "net/backend.h"
#include "net/engine.h"
#include "net/graph.h"
#include "pipeline/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HAVE_DNNL
/* Listed so that --build-info and error messages can say it is missing. */
const bn_backend_ops bn_backend_dnnl = {"dnnl", "oneDNN convolutions (not built: configure found no usable oneDNN)",
                                        BN_PREC_BIT(BN_PREC_FP32) | BN_PREC_BIT(BN_PREC_BF16) | BN_PREC_BIT(BN_PREC_INT8),
                                        0, 30, 1, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
#endif
#ifndef HAVE_CUDA
const bn_backend_ops bn_backend_cuda = {"cuda", "cuDNN on a GPU (not built: configure found no CUDA toolkit with cuDNN)",
                                        BN_PREC_BIT(BN_PREC_FP32) | BN_PREC_BIT(BN_PREC_TF32) |
                                            BN_PREC_BIT(BN_PREC_FP16) | BN_PREC_BIT(BN_PREC_BF16),
                                        0, 40, 0, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
#endif

/* The table, in the order --build-info lists it. */
static const bn_backend_ops *const TABLE[] = {&bn_backend_ref, &bn_backend_gemm, &bn_backend_dnnl, &bn_backend_cuda};
#define NTABLE (sizeof TABLE / sizeof TABLE[0])

static const char *const PREC_NAMES[BN_NPREC] = {"fp32", "bf16", "int8", "tf32", "fp16"};

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

int bn_backend_is_gpu(const char *name) {
    const bn_backend_ops *b = name ? find(name) : NULL;
    return b && b->gpu;
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
            if (TABLE[i]->built && !TABLE[i]->gpu && (TABLE[i]->precisions & BN_PREC_BIT(p)) &&
                (!best || TABLE[i]->speed > best->speed))
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
        snprintf(buf + u, len - u, "  %-5s %-9s %-22s %s\n", TABLE[i]->name, TABLE[i]->built ? "built" : "not built",
                 have, TABLE[i]->summary);
    }
}

/* One stream beyond the first: a thread that runs its own backend state on
 * a slice of each batch. The first stream runs on the caller's thread. */
typedef struct {
    struct bn_engine *e; /* the engine it belongs to */
    int idx;             /* its index in e->ctx, >= 1 */
    pthread_t th;        /* the thread */
    const float *in;     /* this call's slice: (n, 299, 299, 3) */
    int n;               /* images in the slice; 0 = nothing this call */
    float *out;          /* (n, 2048) */
    int rc;              /* the slice's forward status */
    char err[512];       /* its reason when rc != 0 */
} stream_worker;

struct bn_engine {
    const bn_backend_ops *ops; /* the table entry */
    int streams;               /* backend states run side by side, >= 1 */
    void **ctx;                /* [streams] their states */
    bn_precision precision;    /* what it runs */
    int max_batch;             /* largest n accepted */
    int chunk;                 /* largest slice a stream gets: ceil(max_batch / streams) */
    stream_worker *w;          /* [streams]; w[0] unused (the caller's thread) */
    int nthreads;              /* worker threads started (for the clean-up path) */
    pthread_mutex_t mu;        /* guards gen, pending, quit */
    pthread_cond_t go, done;   /* gen moved on / pending reached 0 */
    unsigned gen;              /* bumped once per forward call */
    int pending;               /* workers still running this call */
    int quit;                  /* set by bn_engine_free */
    int failed;                /* a forward failed: the engine refuses further calls */
    char err[600];             /* the first failure's reason */
};

static void *stream_main(void *arg) {
    stream_worker *w = arg;
    bn_engine *e = w->e;
    unsigned seen = 0;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->quit && e->gen == seen) pthread_cond_wait(&e->go, &e->mu);
        if (e->quit) break;
        seen = e->gen;
        pthread_mutex_unlock(&e->mu);
        w->rc = w->n > 0 ? e->ops->forward(e->ctx[w->idx], w->in, w->n, w->out, w->err, sizeof w->err) : 0;
        pthread_mutex_lock(&e->mu);
        if (--e->pending == 0) pthread_cond_signal(&e->done);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

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
    const bn_backend_ops *ops = find(name);
    int streams = cfg->streams > 0 ? cfg->streams : 1;
    if (streams > cfg->max_batch) streams = cfg->max_batch;
    if (cfg->streams > 0 && streams > cfg->threads) {
        snprintf(err, errlen, "%d streams need at least as many threads (this run has %d)", streams, cfg->threads);
        return NULL;
    }
    if (streams > 1 && !ops->concurrent) {
        snprintf(err, errlen, "backend '%s' runs one stream (its BLAS threads are process-wide): use --streams 1", name);
        return NULL;
    }
    bn_engine *e = callocCheck(1, sizeof *e);
    e->ops = ops;
    e->precision = cfg->precision;
    e->max_batch = cfg->max_batch;
    e->streams = streams;
    e->chunk = (cfg->max_batch + streams - 1) / streams;
    e->ctx = callocCheck((size_t)streams, sizeof *e->ctx);
    e->w = callocCheck((size_t)streams, sizeof *e->w);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->go, NULL);
    pthread_cond_init(&e->done, NULL);
    for (int i = 0; i < streams; i++) {
        bn_engine_config sc = *cfg;
        sc.max_batch = e->chunk;
        sc.threads = cfg->threads / streams + (i < cfg->threads % streams);
        sc.streams = 1;
        e->ctx[i] = ops->create(&sc, err, errlen);
        if (!e->ctx[i]) goto fail;
    }
    for (int i = 1; i < streams; i++) {
        e->w[i].e = e;
        e->w[i].idx = i;
        int rc = pthread_create(&e->w[i].th, NULL, stream_main, &e->w[i]);
        if (rc) {
            snprintf(err, errlen, "cannot start the thread of stream %d: %s", i, strerror(rc));
            goto fail;
        }
        e->nthreads = i;
    }
    return e;
fail:
    bn_engine_free(e);
    return NULL;
}

/* Fault injection for tests: BNECK_FAULT_ENGINE="R:K" makes the K-th
 * forward call (1-based) of rank R fail, as a GPU error would. */
static int engine_fault_due(void) {
    static int calls = 0;
    const char *f = getenv("BNECK_FAULT_ENGINE");
    int r = -1, k = 0;
    if (!f || sscanf(f, "%d:%d", &r, &k) != 2 || r != bn_log_rank()) return 0;
    return ++calls >= k;
}

int bn_engine_forward(bn_engine *e, const float *in, int n, float *out) {
    if (e->failed) return -1;
    if (n < 1) return 0;
    if (engine_fault_due()) {
        snprintf(e->err, sizeof e->err, "fault injected by BNECK_FAULT_ENGINE");
        e->failed = 1;
        return -1;
    }
    if (n > e->max_batch) bn_fatal_at(__FILE__, __LINE__, NULL, "batch of %d over the engine's %d", n, e->max_batch);
    if (e->streams == 1) {
        if (e->ops->forward(e->ctx[0], in, n, out, e->err, sizeof e->err) == 0) return 0;
        e->failed = 1;
        return -1;
    }
    /* Contiguous slices, as even as n allows; an image's features do not
     * depend on its batch, so the rows are those of one stream. */
    const bn_graph *g = bn_inception_v3();
    const size_t img = (size_t)g->tensors[g->input].h * g->tensors[g->input].w * g->tensors[g->input].c;
    int q = n / e->streams, r = n % e->streams, at = q + (r > 0);
    for (int i = 1; i < e->streams; i++) {
        int k = q + (i < r);
        e->w[i].in = in + (size_t)at * img;
        e->w[i].out = out + (size_t)at * BN_FEATURES;
        e->w[i].n = k;
        at += k;
    }
    pthread_mutex_lock(&e->mu);
    e->pending = e->streams - 1;
    e->gen++;
    pthread_cond_broadcast(&e->go);
    pthread_mutex_unlock(&e->mu);
    int rc = q + (r > 0) > 0 ? e->ops->forward(e->ctx[0], in, q + (r > 0), out, e->err, sizeof e->err) : 0;
    pthread_mutex_lock(&e->mu);
    while (e->pending > 0) pthread_cond_wait(&e->done, &e->mu);
    pthread_mutex_unlock(&e->mu);
    for (int i = 1; i < e->streams && rc == 0; i++)
        if (e->w[i].rc) {
            snprintf(e->err, sizeof e->err, "stream %d: %s", i, e->w[i].err);
            rc = -1;
        }
    if (rc) e->failed = 1;
    return rc;
}

const char *bn_engine_error(const bn_engine *e) { return e->failed ? e->err : ""; }

size_t bn_engine_bytes(const bn_engine *e) {
    size_t b = 0;
    for (int i = 0; i < e->streams; i++) b += e->ops->bytes(e->ctx[i]);
    return b;
}
const char *bn_engine_backend(const bn_engine *e) { return e->ops->name; }
bn_precision bn_engine_precision(const bn_engine *e) { return e->precision; }
int bn_engine_streams(const bn_engine *e) { return e->streams; }

float *bn_engine_alloc_input(bn_engine *e, int n) {
    const bn_graph *g = bn_inception_v3();
    const size_t bytes = (size_t)(n > 0 ? n : 1) * g->tensors[g->input].h * g->tensors[g->input].w *
                         g->tensors[g->input].c * sizeof(float);
    void *p = e->ops->host_alloc ? e->ops->host_alloc(e->ctx[0], bytes) : NULL;
    return p ? (float *)p : mallocCheck(bytes); /* the backend's free takes malloc'd memory too */
}

void bn_engine_free_input(bn_engine *e, float *p) {
    if (!p) return;
    if (e->ops->host_free)
        e->ops->host_free(e->ctx[0], p);
    else
        free(p);
}

int bn_engine_device_times(const bn_engine *e, double *compute_s, double *copy_s) {
    *compute_s = *copy_s = 0;
    if (!e->ops->device_times) return 0;
    for (int i = 0; i < e->streams; i++) {
        double a = 0, b = 0;
        e->ops->device_times(e->ctx[i], &a, &b);
        *compute_s += a;
        *copy_s += b;
    }
    return 1;
}

int bn_engine_gpu_count(char *why, size_t whylen) {
#ifdef HAVE_CUDA
    return bn_cuda_device_count(why, whylen);
#else
    snprintf(why, whylen, "this build has no GPU backend");
    return 0;
#endif
}

void bn_engine_free(bn_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->quit = 1;
    pthread_cond_broadcast(&e->go);
    pthread_mutex_unlock(&e->mu);
    for (int i = 1; i <= e->nthreads; i++) pthread_join(e->w[i].th, NULL);
    for (int i = 0; i < e->streams; i++)
        if (e->ctx[i]) e->ops->destroy(e->ctx[i]);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->go);
    pthread_cond_destroy(&e->done);
    free(e->ctx);
    free(e->w);
    free(e);
}
