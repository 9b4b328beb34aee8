/* engine.h: running Inception v3 on a batch of preprocessed images.
 *
 * Backends behind one interface:
 *   ref   plain loops, double accumulation: the ground truth (slow);
 *   gemm  im2col + CBLAS SGEMM (1x1 convolutions go straight to SGEMM);
 *   dnnl  oneDNN convolutions (when built with oneDNN);
 *   cpu   the fastest CPU backend built in (dnnl when present, else gemm).
 */
#ifndef BN_ENGINE_H
#define BN_ENGINE_H

#include "net/model.h"

#include <stddef.h>

typedef enum { BN_BACKEND_REF = 0, BN_BACKEND_GEMM = 1, BN_BACKEND_DNNL = 2 } bn_backend;

/* Parse "ref", "gemm", "dnnl" or "cpu" (the best CPU backend built in).
 * Returns 0, or -1 for an unknown or unavailable name. */
int bn_backend_parse(const char *s, bn_backend *out);
const char *bn_backend_name(bn_backend b);
/* "ref|gemm|dnnl|cpu" as available in this build, for --help. */
const char *bn_backend_choices(void);

typedef struct bn_engine bn_engine;

/* Create an engine for batches of up to max_batch images, using up to
 * threads threads. The model must outlive the engine. Returns NULL with a
 * reason in err on failure. */
bn_engine *bn_engine_create(const bn_model *m, bn_backend b, int max_batch, int threads,
                            char *err, size_t errlen);

/* Run n <= max_batch images.
 * in:  (n, 299, 299, 3) float, NHWC, already normalised
 * out: (n, 2048) float, the pool_3 bottleneck */
void bn_engine_forward(bn_engine *e, const float *in, int n, float *out);

/* Bytes of activation and scratch memory the engine holds. */
size_t bn_engine_bytes(const bn_engine *e);
bn_backend bn_engine_backend(const bn_engine *e);
void bn_engine_free(bn_engine *e);

/* ---- for backends and calibration (net/exec.c) ---- */

/* Where each tensor of the graph lives for a batch of n: offsets into one
 * arena, with tensors whose lifetimes do not overlap sharing memory. */
typedef struct {
    size_t off[BN_MAX_TENSORS]; /* float offset of each tensor in the arena */
    size_t floats;              /* arena size in floats */
    int n;                      /* batch size planned for */
} bn_plan;

/* Plan the arena for batch n. Input and output tensors are not placed
 * (they are the caller's buffers). */
void bn_plan_make(const bn_graph *g, int n, bn_plan *p);

/* Per-layer kernels a backend provides to the shared executor. src and dst
 * point at the start of whole tensors; the layer writes channels
 * [dst_off, dst_off + cout) of dst. */
typedef struct {
    void (*conv)(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                 const float *src, float *dst, int n, const float *w, const float *b);
    void (*maxpool)(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                    const float *src, float *dst, int n);
    void (*avgpool)(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                    const float *src, float *dst, int n);
    void (*gap)(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d,
                const float *src, float *dst, int n);
    void *ctx; /* backend state passed back to the kernels */
} bn_kernels;

/* Run the graph with the given kernels. arena holds plan->floats floats. */
void bn_exec(const bn_graph *g, const bn_plan *p, const bn_kernels *k, const bn_model *m,
             float *arena, const float *in, int n, float *out);

/* Backend constructors (net/ref.c, net/gemm.c, net/dnnl.c). */
void bn_ref_kernels(bn_kernels *k);
void *bn_gemm_create(int max_batch, int threads, bn_kernels *k, size_t *bytes);
void bn_gemm_destroy(void *ctx);
/* A hook the gemm backend calls on each convolution's raw output (before
 * bias and ReLU): x holds rows of cout values at stride ld. Calibration uses it. */
typedef void (*bn_gemm_hook)(void *user, const bn_layer *l, float *x, size_t rows, int ld);
void bn_gemm_set_hook(void *ctx, bn_gemm_hook hook, void *user);
#ifdef HAVE_DNNL
void *bn_dnnl_create(const bn_model *m, int max_batch, int threads, size_t *bytes, char *err, size_t errlen);
void bn_dnnl_forward(void *ctx, const float *in, int n, float *out);
void bn_dnnl_destroy(void *ctx);
#endif

/* Shared pooling kernels (net/pool.c), float arithmetic. */
void bn_pool_max(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n);
void bn_pool_avg(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n);
void bn_pool_gap(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n);

#endif
