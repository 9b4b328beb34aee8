/* plan.h: the arena planner and the shared layer executor.
 *
 * Backends that run the graph layer by layer (ref, gemm) give the executor
 * a set of per-layer kernels; the dnnl backend uses only the planner. This
 * header depends on the graph and the model, never on the engine. */
#ifndef BN_PLAN_H
#define BN_PLAN_H

#include "net/model.h"

#include <stddef.h>

/* Where each tensor of the graph lives for a batch of n: offsets into one
 * arena, with tensors whose lifetimes do not overlap sharing memory. */
typedef struct {
    size_t off[BN_MAX_TENSORS]; /* element offset of each tensor in the arena */
    size_t floats;              /* arena size in elements */
    int n;                      /* batch size planned for */
} bn_plan;

/* Plan the arena for batch n. Input and output tensors are not placed
 * (they are the caller's buffers). */
void bn_plan_make(const bn_graph *g, int n, bn_plan *p);

/* A 64-byte aligned arena of p->floats floats, or NULL when out of memory. */
float *bn_plan_arena(const bn_plan *p);

/* Per-layer kernels a backend provides to the executor. src and dst point
 * at the start of whole tensors; the layer writes channels
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
    /* Called after each layer with the slice it wrote, or NULL: lets a
     * backend round the slice to a precision, or a caller observe it. */
    void (*after)(void *ctx, const bn_layer *l, const bn_tensor *d, float *dst, int n);
    void *ctx; /* backend state passed back to the kernels */
} bn_kernels;

/* Run the graph with the given kernels. arena holds plan->floats floats.
 * w and b: per conv, the weights and biases to use (usually a model's). */
void bn_exec(const bn_graph *g, const bn_plan *p, const bn_kernels *k, float *const *w, float *const *b,
             float *arena, const float *in, int n, float *out);

/* Shared pooling kernels (net/pool.c), NHWC, float arithmetic. */
void bn_pool_max(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n);
void bn_pool_avg(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n);
void bn_pool_gap(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n);

/* The gemm kernels on their own, for calibration (net/gemm.c). hook, when
 * set, sees each convolution's raw output (before bias and ReLU): rows of
 * cout values at stride ld. */
typedef void (*bn_gemm_hook)(void *user, const bn_layer *l, float *x, size_t rows, int ld);
void *bn_gemm_kernels(int threads, bn_kernels *k);
void bn_gemm_kernels_free(void *ctx);
void bn_gemm_set_hook(void *ctx, bn_gemm_hook hook, void *user);

#endif
