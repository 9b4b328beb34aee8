/* backend.h: the interface every engine backend implements (net/ref.c,
 * net/gemm.c, net/dnnl.c, and later net/cuda.cu). The engine (net/engine.c)
 * holds the table of these entries and is the only caller; a backend knows
 * this header, the planner (net/plan.h) and the graph, never the engine. */
#ifndef BN_BACKEND_H
#define BN_BACKEND_H

#include "net/engine.h"

#include <stddef.h>

#define BN_PREC_BIT(p) (1u << (p)) /* a precision in a bn_backend_ops.precisions mask */

typedef struct {
    const char *name;      /* table name: "ref", "gemm", "dnnl" */
    const char *summary;   /* one line for --build-info and docs */
    unsigned precisions;   /* BN_PREC_BIT mask of the precisions offered */
    int built;             /* 0: listed, but this build lacks it (create is NULL) */
    int speed;             /* rank for "cpu": the highest built entry offering the precision wins */
    int concurrent;        /* 1: separate states may run at once on different threads (engine streams) */
    int gpu;               /* 1: runs on a GPU (bn_engine_config.device); "cpu" never resolves to it */
    /* Build the backend's state for cfg (precision already checked against
     * the mask). Returns NULL with a one-line reason in err. */
    void *(*create)(const bn_engine_config *cfg, char *err, size_t errlen);
    /* in: (n, 299, 299, 3) NHWC normalised; out: (n, 2048); n <= max_batch.
     * Returns 0, or -1 with a one-line reason in err when the device failed
     * (a GPU error); the state may not be used again after a failure. */
    int (*forward)(void *ctx, const float *in, int n, float *out, char *err, size_t errlen);
    /* Bytes of memory the state holds. */
    size_t (*bytes)(const void *ctx);
    void (*destroy)(void *ctx);
    /* Optional (NULL: plain malloc/free). Host memory the device copies from
     * fastest (page-locked), or NULL when none could be had; and its free,
     * which must also take memory that came from malloc. */
    void *(*host_alloc)(void *ctx, size_t bytes);
    void (*host_free)(void *ctx, void *p);
    /* Optional (NULL: a CPU backend). Device seconds so far on compute and
     * on copies, from the device's own timers. */
    void (*device_times)(const void *ctx, double *compute_s, double *copy_s);
} bn_backend_ops;

extern const bn_backend_ops bn_backend_ref;
extern const bn_backend_ops bn_backend_gemm;
extern const bn_backend_ops bn_backend_dnnl; /* built=0 without oneDNN (net/engine.c) */
extern const bn_backend_ops bn_backend_cuda; /* built=0 without CUDA and cuDNN (net/engine.c) */

/* GPUs the CUDA runtime sees (CUDA_VISIBLE_DEVICES applies), or 0 with the
 * reason in why (net/cuda.cu; only in builds with the cuda backend). */
int bn_cuda_device_count(char *why, size_t whylen);

#endif
