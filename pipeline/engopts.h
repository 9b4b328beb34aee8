/* engopts.h: the engine option group, declared once for every command that
 * runs the network (features, extract, classify, benchmark, retrain, run).
 *
 * A command embeds a bn_engine_opts in its config, fills it with
 * BN_ENGINE_OPTS_INIT, lists BN_OPTS_ENGINE(&cfg.eng, ...) in its option
 * table, and after parsing calls bn_engine_opts_check() to turn the strings
 * into the engine's types.
 */
#ifndef BN_ENGOPTS_H
#define BN_ENGOPTS_H

#include "io/image.h"
#include "net/engine.h"

#include <stddef.h>
#include <string.h>

typedef struct {
    const char *backend;    /* "ref" | "gemm" | "dnnl" | "cpu" */
    long long batch;        /* images per forward pass (and per work unit in extract) */
    long long threads;      /* engine threads per rank; 0 = cores / ranks on the node */
    const char *preprocess; /* "keras" | "tf2015"; NULL = the command's own default (classify: the classifier's) */
    const char *dct;        /* "accurate" | "fast"; NULL as for preprocess */
    long long max_pixels;   /* images with more pixels are refused, checked from the header */
} bn_engine_opts;

/* The defaults every command starts from. */
#define BN_ENGINE_OPTS_INIT {"cpu", 8, 0, "keras", "accurate", BN_DEFAULT_MAX_PIXELS}

/* The --dct default as --help shows it: "accurate", or pre_default itself
 * when that is not a preprocess name ("the classifier's"). */
static inline const char *bn_engine_dct_shown(const char *pre_default) {
    return strcmp(pre_default, "keras") && strcmp(pre_default, "tf2015") ? pre_default : "accurate";
}

/* The option table entries of the group. eo: bn_engine_opts *; batch_default
 * and pre_default are the defaults as --help shows them ("8", "keras"). */
#define BN_OPTS_ENGINE(eo, batch_default, pre_default)                                                         \
    {"backend", 'b', BN_OPT_CHOICE, &(eo)->backend, NULL, "cpu", 0, 0, bn_backend_choices(),                   \
     "engine: ref (ground truth), gemm, dnnl, cpu (fastest built in)"},                                        \
    {"batch", 0, BN_OPT_INT, &(eo)->batch, "N", (batch_default), 1, 4096, NULL, "images per forward pass"},    \
    {"threads", 't', BN_OPT_INT, &(eo)->threads, "N", "cores / ranks per node", 0, 4096, NULL,                 \
     "engine threads per rank (0 = default)"},                                                                 \
    {"preprocess", 0, BN_OPT_CHOICE, &(eo)->preprocess, NULL, (pre_default), 0, 0, "keras|tf2015",             \
     "input normalisation: x/127.5-1 (keras) or (x-128)/128 (tf2015)"},                                        \
    {"dct", 0, BN_OPT_CHOICE, &(eo)->dct, NULL, bn_engine_dct_shown(pre_default), 0, 0, "accurate|fast",                           \
     "JPEG inverse DCT: accurate, or fast as TF1 used"},                                                       \
    {"max-pixels", 0, BN_OPT_INT, &(eo)->max_pixels, "N", "100000000", 1, 1e15, NULL,                          \
     "refuse larger images (checked from the header)"}

/* The group resolved into the engine's and the decoder's types. */
typedef struct {
    bn_backend backend;   /* parsed backend */
    bn_norm norm;         /* parsed preprocess */
    bn_decode_opts dopts; /* max_pixels, dct */
    int threads;          /* threads to run: the option, or the node default */
} bn_engine_setup;

/* Check the group and resolve it. Returns 0, or -1 with a one-line reason
 * in err (a backend not built in, an unknown preprocess). NULL preprocess or
 * dct resolve to keras and accurate. */
int bn_engine_opts_check(const bn_engine_opts *eo, bn_engine_setup *out, char *err, size_t errlen);

#endif
