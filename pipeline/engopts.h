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
#include "net/quant.h"
#include "pipeline/device.h"

#include <stddef.h>
#include <string.h>

typedef struct {
    const char *backend;    /* "ref" | "gemm" | "dnnl" | "cpu" */
    long long batch;        /* images per forward pass (and per work unit in extract) */
    long long threads;      /* engine threads per rank; 0 = cores / ranks on the node */
    const char *preprocess; /* "keras" | "tf2015"; NULL = the command's own default (classify: the classifier's) */
    const char *dct;        /* "accurate" | "fast"; NULL as for preprocess */
    long long max_pixels;   /* images with more pixels are refused, checked from the header */
    const char *precision;  /* "fp32" | "bf16" | "int8"; NULL = the command's default (classify: the classifier's) */
    const char *calibration;/* int8: the calibration file (bneck calibrate), or NULL */
    long long streams;      /* engine states run side by side, sharing the threads; 0 = 1 */
    const char *device;     /* "auto" | "cpu" | "gpu" */
    long long ranks_per_gpu;/* node-local ranks that share one GPU */
} bn_engine_opts;

/* The defaults every command starts from. */
#define BN_ENGINE_OPTS_INIT {"cpu", 8, 0, "keras", "accurate", BN_DEFAULT_MAX_PIXELS, "fp32", NULL, 0, "auto", 1}

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
     "refuse larger images (checked from the header)"},                                                        \
    {"precision", 0, BN_OPT_CHOICE, &(eo)->precision, NULL, bn_engine_dct_shown(pre_default) == (pre_default) \
     ? (pre_default) : "fp32", 0, 0, "fp32|bf16|int8|tf32|fp16",                                            \
     "convolution arithmetic; int8 needs --calibration; tf32 and fp16 run on a GPU"},                                                     \
    {"calibration", 0, BN_OPT_STRING, &(eo)->calibration, "CAL.h5", NULL, 0, 0, NULL,                           \
     "int8 activation scales written by bneck calibrate"},                                                    \
    {"streams", 0, BN_OPT_INT, &(eo)->streams, "N", "1", 0, 4096, NULL,                                        \
     "engine copies side by side, each on a slice of a batch and its share of the threads (dnnl, ref)"},     \
    {"device", 0, BN_OPT_CHOICE, &(eo)->device, NULL, "auto", 0, 0, "auto|cpu|gpu",                           \
     "where the network runs: auto takes a GPU when the node has one for this rank"},                        \
    {"ranks-per-gpu", 0, BN_OPT_INT, &(eo)->ranks_per_gpu, "N", "1", 1, 4096, NULL,                           \
     "node-local ranks that share a GPU; ranks beyond the GPUs run on the CPU"}

/* The group resolved into the engine's and the decoder's types. */
typedef struct {
    const char *backend;  /* the table name of the backend to run ("cpu" resolved for the precision) */
    bn_precision precision; /* parsed precision */
    const char *calibration; /* calibration file path (int8), or NULL */
    bn_calib *calib;      /* loaded by bn_engine_open for int8 (owned; bn_engine_setup_free) */
    bn_norm norm;         /* parsed preprocess */
    bn_decode_opts dopts; /* max_pixels, dct */
    int threads;          /* threads to run: the option, or the node default */
    int streams;          /* --streams; 0 = 1 */
    bn_device_mode device; /* --device */
    int ranks_per_gpu;    /* --ranks-per-gpu */
    int gpu;              /* the GPU a GPU backend runs on (bn_engine_pick_device), or -1 */
    int backend_auto;     /* 1: the backend was left to bneck (--backend cpu or none), so a GPU may take it */
    int device_picked;    /* 1: bn_engine_pick_device ran (else bn_engine_open picks, as a lone process) */
} bn_engine_setup;

/* Check the group and resolve it. Returns 0, or -1 with a one-line reason
 * in err (a backend not built in, an unknown preprocess). NULL preprocess or
 * dct resolve to keras and accurate. */
int bn_engine_opts_check(const bn_engine_opts *eo, bn_engine_setup *out, char *err, size_t errlen);

/* Pick the device of node-local rank local_rank of local_size under
 * --device and --ranks-per-gpu (pipeline/device.h). A rank given a GPU
 * whose backend was left to bneck runs the cuda backend on it; a rank whose
 * precision the GPU backend lacks stays on the CPU. Sets es->gpu and
 * es->device_picked, fills dev and, in note, one line that says where the
 * rank runs and why. Returns 0, or -1 with the reason in err (--device gpu
 * where the node has no usable GPU). Local: callers with several ranks
 * agree on the outcome before going on. */
int bn_engine_pick_device(bn_engine_setup *es, int local_rank, int local_size, bn_device *dev, char *note,
                          size_t notelen, char *err, size_t errlen);

/* Create the engine the setup describes, for model m and batches of up to
 * max_batch. For int8, first loads es->calibration and checks it belongs to
 * m (its SHA-256). Picks the device as a lone process (node-local rank 0
 * of 1) unless bn_engine_pick_device already ran. Returns NULL with a
 * reason in err. */
bn_engine *bn_engine_open(bn_engine_setup *es, const bn_model *m, int max_batch, char *err, size_t errlen);

/* Free what the setup loaded (the calibration). */
void bn_engine_setup_free(bn_engine_setup *es);

#endif
