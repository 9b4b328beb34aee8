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

/* What a layer-by-layer backend (ref, gemm) needs to run the graph: the
 * plan for its largest batch, the arena, its kernels and the weights. */
typedef struct {
    const bn_graph *g; /* the table */
    bn_plan plan;      /* offsets for max_batch; a smaller batch uses the same ones */
    float *arena;      /* (plan.floats,) activations */
    bn_kernels k;      /* the backend's kernels */
    float *const *w;   /* [BN_NCONV] kernels to run (not owned) */
    float *const *b;   /* [BN_NCONV] biases (not owned) */
} bn_runner;

/* Plan and allocate for batches up to max_batch; k, w and b are the
 * caller's to set. Returns 0, or -1 with "out of memory ..." in err. */
int bn_runner_init(bn_runner *r, int max_batch, char *err, size_t errlen);
/* in: (n, 299, 299, 3); out: (n, 2048); n <= max_batch. */
void bn_runner_run(const bn_runner *r, const float *in, int n, float *out);
/* Bytes of the arena. */
size_t bn_runner_bytes(const bn_runner *r);
void bn_runner_free(bn_runner *r);

/* The walk every pooling kernel shares (net/pool.c): for each output pixel
 * of layer l, fn gets the input pixels of its window that lie inside the
 * image (padding left out), pix[0..cnt) in row order, each C floats, and o,
 * where the C results go. */
typedef void (*bn_window_fn)(void *user, const bn_layer *l, const float *const *pix, int cnt, int C, float *o);
void bn_pool_windows(const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst, int n,
                     bn_window_fn fn, void *user);

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
