/* engine.h: running Inception v3 on a batch of preprocessed images.
 *
 * The engine picks a backend from a table (net/engine.c):
 *   ref   plain loops, double accumulation: the ground truth (slow, fp32);
 *   gemm  im2col + CBLAS SGEMM; bf16 and int8 are emulated in fp32
 *         arithmetic (same results as the rounding rules, no faster);
 *   dnnl  oneDNN convolutions in fp32, bf16 and int8 (when built with oneDNN);
 *   cuda  cuDNN on a GPU (when built with CUDA; not yet run on hardware);
 *   cpu   the fastest built-in CPU backend that offers the precision.
 * This header is all callers see; backends implement net/backend.h.
 */
#ifndef BN_ENGINE_H
#define BN_ENGINE_H

#include "net/model.h"

#include <stddef.h>

/* Arithmetic of the convolutions. The features are fp32 in every case. */
typedef enum {
    BN_PREC_FP32 = 0, /* fp32 everywhere */
    BN_PREC_BF16 = 1, /* bf16 weights and activations, fp32 accumulation */
    BN_PREC_INT8 = 2, /* s8 weights per output channel, u8/s8 activations from a calibration, int32 accumulation */
    BN_PREC_TF32 = 3, /* fp32 tensors, convolutions on TF32 tensor cores (10-bit mantissa products; GPU only) */
    BN_PREC_FP16 = 4, /* fp16 weights and activations, fp32 accumulation (GPU only) */
} bn_precision;
#define BN_NPREC 5

/* Parse "fp32", "bf16", "int8", "tf32" or "fp16". Returns 0, or -1 for another name. */
int bn_precision_parse(const char *s, bn_precision *out);
const char *bn_precision_name(bn_precision p);

typedef struct bn_calib bn_calib; /* activation scales from calibration (net/quant.h) */

/* What an engine is asked to be. */
typedef struct {
    const bn_model *model;  /* folded weights; must outlive the engine */
    const char *backend;    /* a name from the table, or "cpu" */
    bn_precision precision; /* arithmetic */
    const bn_calib *calib;  /* int8: the activation scales (required); must outlive the engine; else NULL */
    int max_batch;          /* largest batch forward() accepts, >= 1 */
    int threads;            /* threads the engine may use, >= 1 */
    int streams;            /* backend states run side by side on slices of each batch, threads shared
                               among them (backends marked concurrent only); 0 = 1 */
    int device;             /* a GPU backend's CUDA device index (pipeline/device.h); ignored on the CPU */
} bn_engine_config;

typedef struct bn_engine bn_engine;

/* Resolve a backend name ("cpu" included) for a precision to the table's
 * name of a built backend that offers it. Returns the name, or NULL with a
 * one-line reason in err (unknown, not built, or not offering the precision). */
const char *bn_backend_resolve(const char *name, bn_precision p, char *err, size_t errlen);

/* 1 when the table entry named name runs on a GPU, else 0 (unknown names too). */
int bn_backend_is_gpu(const char *name);

/* "cpu|dnnl|gemm|ref" as built in this build, for --help and choices. */
const char *bn_backend_choices(void);

/* One line per table entry for --build-info and docs:
 * name, built or not, precisions offered, summary. Writes into buf. */
void bn_backend_table_text(char *buf, size_t len);

/* Create an engine. Returns NULL with a reason in err on failure (a backend
 * not built, a precision it does not offer or this CPU cannot run, int8
 * without a calibration, out of memory). */
bn_engine *bn_engine_create(const bn_engine_config *cfg, char *err, size_t errlen);

/* Run n <= max_batch images.
 * in:  (n, 299, 299, 3) float, NHWC, already normalised
 * out: (n, 2048) float, the pool_3 bottleneck
 * Returns 0, or -1 when the device failed (a GPU error: bn_engine_error says
 * which call, on which device). A failed engine refuses every later call:
 * free it; a rank's run stops and can be resumed. */
int bn_engine_forward(bn_engine *e, const float *in, int n, float *out);
/* The reason of the failure, or "" while none happened. */
const char *bn_engine_error(const bn_engine *e);

/* Bytes of activation, weight copies and scratch memory the engine holds. */
size_t bn_engine_bytes(const bn_engine *e);
/* The backend's table name ("dnnl", never "cpu") and the precision it runs. */
const char *bn_engine_backend(const bn_engine *e);
bn_precision bn_engine_precision(const bn_engine *e);
/* GPUs a GPU backend of this build can use (CUDA_VISIBLE_DEVICES applies),
 * or 0 with the reason in why: no GPU backend in this build, no driver, no
 * device. */
int bn_engine_gpu_count(char *why, size_t whylen);

/* Host memory for n input images, (n, 299, 299, 3) floats: page-locked for
 * a GPU backend (its copies to the device then run at full speed and
 * asynchronously), plain memory otherwise. Fatal when out of memory. Free
 * it with bn_engine_free_input, before bn_engine_free. */
float *bn_engine_alloc_input(bn_engine *e, int n);
void bn_engine_free_input(bn_engine *e, float *p);

/* Seconds the device spent, summed over every forward call so far: on the
 * network (compute_s) and copying images in and features out (copy_s), as
 * the GPU's own events measured them. Returns 1, or 0 with both set to 0
 * for a CPU backend (its forward time is all compute). */
int bn_engine_device_times(const bn_engine *e, double *compute_s, double *copy_s);

/* Streams the engine runs (1 for a backend that cannot run side by side). */
int bn_engine_streams(const bn_engine *e);
void bn_engine_free(bn_engine *e);

#endif
