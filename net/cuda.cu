/* cuda.cu: the GPU backend. cuDNN convolutions in NHWC with the folded batch
 * norm as their bias and the ReLU fused (cudnnConvolutionBiasActivationForward),
 * cuDNN max and average pooling (the average excludes padding, as Keras does),
 * weights uploaded once at create. fp32 runs with TF32 off (CUDNN_FMA_MATH),
 * so the features follow the CPU's fp32.
 *
 * Layout on the device: one arena planned as the CPU backends plan theirs
 * (net/plan.h), the input and the (n, 2048) output beside it. A layer whose
 * destination is a channel slice of a concatenation writes a dense buffer
 * that one strided copy (cudaMemcpy2DAsync) puts into its slice.
 *
 * NOT YET RUN ON HARDWARE: written and compiled on a machine without a GPU;
 * docs/engine.md and --build-info say so until a GPU run has checked it. */
#include "config.h"

extern "C" {
#include "net/backend.h"
#include "net/graph.h"
#include "net/plan.h"
#include "pipeline/log.h"
}

#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed CUDA or cuDNN call during create: the reason into c->err, then
 * the function's clean-up path. */
#define CU(call)                                                                                                 \
    do {                                                                                                         \
        cudaError_t e_ = (call);                                                                                 \
        if (e_ != cudaSuccess) {                                                                                 \
            snprintf(c->err, sizeof c->err, "%s:%d: %s failed on GPU %d: %s", __FILE__, __LINE__, #call, c->dev, \
                     cudaGetErrorString(e_));                                                                    \
            goto fail;                                                                                           \
        }                                                                                                        \
    } while (0)
#define DNN(call)                                                                                                \
    do {                                                                                                         \
        cudnnStatus_t s_ = (call);                                                                               \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                                        \
            snprintf(c->err, sizeof c->err, "%s:%d: %s failed on GPU %d: %s", __FILE__, __LINE__, #call, c->dev, \
                     cudnnGetErrorString(s_));                                                                   \
            goto fail;                                                                                           \
        }                                                                                                        \
    } while (0)
/* The same during forward: the reason into err and -1 out of cu_forward.
 * The state is then marked failed: a sticky CUDA error poisons the context,
 * so it is never used again (the rank stops; a rerun resumes). */
#define CUF(call)                                                                                                \
    do {                                                                                                         \
        cudaError_t e_ = (call);                                                                                 \
        if (e_ != cudaSuccess) {                                                                                 \
            snprintf(err, errlen, "%s:%d: %s failed on GPU %d: %s", __FILE__, __LINE__, #call, c->dev,           \
                     cudaGetErrorString(e_));                                                                    \
            c->failed = 1;                                                                                       \
            return -1;                                                                                           \
        }                                                                                                        \
    } while (0)
#define DNNF(call)                                                                                               \
    do {                                                                                                         \
        cudnnStatus_t s_ = (call);                                                                               \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                                        \
            snprintf(err, errlen, "%s:%d: %s failed on GPU %d: %s", __FILE__, __LINE__, #call, c->dev,           \
                     cudnnGetErrorString(s_));                                                                   \
            c->failed = 1;                                                                                       \
            return -1;                                                                                           \
        }                                                                                                        \
    } while (0)

typedef struct {
    int dev;                          /* CUDA device index */
    const bn_graph *g;                /* the table */
    int max_batch;                    /* largest n */
    bn_plan plan;                     /* tensor offsets in the arena for max_batch */
    cudaStream_t stream;              /* every call goes on it */
    cudnnHandle_t dnn;                /* bound to stream */
    float *arena;                     /* (plan.floats,) activations */
    float *in;                        /* (max_batch, 299, 299, 3) */
    float *out;                       /* (max_batch, 2048) */
    float *dense;                     /* the largest layer output of max_batch images, for slice copies */
    void *ws;                         /* convolution workspace */
    size_t ws_bytes;                  /* bytes at ws */
    float *w[BN_NCONV];               /* (cout, kh, kw, cin): cuDNN's NHWC filter layout */
    float *b[BN_NCONV];               /* (cout,) */
    cudnnFilterDescriptor_t wd[BN_NCONV];       /* per conv */
    cudnnConvolutionDescriptor_t cd[BN_NCONV];  /* per conv */
    cudnnTensorDescriptor_t bd[BN_NCONV];       /* bias (1, cout, 1, 1) */
    cudnnActivationDescriptor_t relu; /* ReLU */
    cudnnConvolutionFwdAlgo_t algo[BN_NCONV]; /* for the unfused path: cuDNN's first heuristic choice */
    int unfused[BN_NCONV];            /* 1: the fused call was refused (NOT_SUPPORTED); conv, add bias, ReLU */
    cudnnPoolingDescriptor_t pool[BN_MAX_LAYERS]; /* per pooling layer, or NULL */
    cudnnTensorDescriptor_t xd, yd;   /* reset per layer */
    size_t bytes;                     /* device bytes held */
    int failed;                       /* a forward failed: never used again */
    char err[512];                    /* the reason create failed */
} cuda_ctx;

static size_t tensor_floats(const bn_tensor *t, int n) { return (size_t)n * t->h * t->w * t->c; }

/* cuDNN 9 reports "not supported" as a category (3000) with specific codes inside it
 * (CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, _SHAPE, _ARCH_MISMATCH, ...), so compare the category. */
static int not_supported(cudnnStatus_t s) {
#ifdef CUDNN_STATUS_CATEGORY
    return CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_NOT_SUPPORTED;
#else
    return s == CUDNN_STATUS_NOT_SUPPORTED; /* cuDNN 8: one code */
#endif
}

static void cu_destroy(void *ctx) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    if (!c) return;
    cudaSetDevice(c->dev);
    for (int k = 0; k < BN_NCONV; k++) {
        if (c->w[k]) cudaFree(c->w[k]);
        if (c->b[k]) cudaFree(c->b[k]);
        if (c->wd[k]) cudnnDestroyFilterDescriptor(c->wd[k]);
        if (c->cd[k]) cudnnDestroyConvolutionDescriptor(c->cd[k]);
        if (c->bd[k]) cudnnDestroyTensorDescriptor(c->bd[k]);
    }
    for (int i = 0; i < BN_MAX_LAYERS; i++)
        if (c->pool[i]) cudnnDestroyPoolingDescriptor(c->pool[i]);
    if (c->relu) cudnnDestroyActivationDescriptor(c->relu);
    if (c->xd) cudnnDestroyTensorDescriptor(c->xd);
    if (c->yd) cudnnDestroyTensorDescriptor(c->yd);
    if (c->arena) cudaFree(c->arena);
    if (c->in) cudaFree(c->in);
    if (c->out) cudaFree(c->out);
    if (c->dense) cudaFree(c->dense);
    if (c->ws) cudaFree(c->ws);
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

/* Device pointer of tensor t for the current call. */
static float *tensor_ptr(cuda_ctx *c, int t) {
    if (t == c->g->input) return c->in;
    if (t == c->g->output) return c->out;
    return c->arena + c->plan.off[t];
}

static void *cu_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    if (cfg->precision != BN_PREC_FP32) {
        snprintf(err, errlen, "the cuda backend runs fp32 only in this version");
        return NULL;
    }
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->dev = cfg->device >= 0 ? cfg->device : 0;
    c->g = bn_inception_v3();
    c->max_batch = cfg->max_batch;
    const bn_graph *g = c->g;
    size_t most = 0;
    float *host = NULL;
    CU(cudaSetDevice(c->dev));
    CU(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    DNN(cudnnCreate(&c->dnn));
    DNN(cudnnSetStream(c->dnn, c->stream));
    DNN(cudnnCreateTensorDescriptor(&c->xd));
    DNN(cudnnCreateTensorDescriptor(&c->yd));
    DNN(cudnnCreateActivationDescriptor(&c->relu));
    DNN(cudnnSetActivationDescriptor(c->relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));

    {
        /* Out of GPU memory at this batch: say which batch fits, before allocating. */
        size_t freeb = 0, totalb = 0;
        CU(cudaMemGetInfo(&freeb, &totalb));
        bn_plan one;
        bn_plan_make(g, 1, &one);
        size_t widest = 0;
        for (int i = 0; i < g->nlayers; i++) {
            const bn_tensor *d = &g->tensors[g->layers[i].dst];
            size_t f = (size_t)d->h * d->w * g->layers[i].cout;
            if (f > widest) widest = f;
        }
        const size_t per_image = (one.floats + tensor_floats(&g->tensors[g->input], 1) + BN_FEATURES + widest) * sizeof(float);
        const size_t fixed = cfg->model->nfloats * sizeof(float) + ((size_t)256 << 20); /* weights, cuDNN's own, workspace */
        if (fixed + per_image * (size_t)c->max_batch > freeb) {
            size_t fits = freeb > fixed ? (freeb - fixed) / per_image : 0;
            snprintf(c->err, sizeof c->err,
                     "batch %d needs about %zu MiB on GPU %d, which has %zu of %zu MiB free: %s", c->max_batch,
                     (fixed + per_image * (size_t)c->max_batch) >> 20, c->dev, freeb >> 20, totalb >> 20,
                     fits ? "lower --batch" : "free the GPU (another process holds its memory)");
            if (fits) {
                size_t u = strlen(c->err);
                snprintf(c->err + u, sizeof c->err - u, " to %zu or less", fits);
            }
            goto fail;
        }
    }
    bn_plan_make(g, c->max_batch, &c->plan);
    CU(cudaMalloc((void **)&c->arena, c->plan.floats * sizeof(float) + 64));
    CU(cudaMalloc((void **)&c->in, tensor_floats(&g->tensors[g->input], c->max_batch) * sizeof(float)));
    CU(cudaMalloc((void **)&c->out, (size_t)c->max_batch * BN_FEATURES * sizeof(float)));
    c->bytes = c->plan.floats * sizeof(float) + tensor_floats(&g->tensors[g->input], c->max_batch) * sizeof(float) +
               (size_t)c->max_batch * BN_FEATURES * sizeof(float);
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *d = &g->tensors[l->dst];
        size_t f = (size_t)c->max_batch * d->h * d->w * l->cout;
        if (f > most) most = f;
    }
    CU(cudaMalloc((void **)&c->dense, most * sizeof(float)));
    c->bytes += most * sizeof(float);
    /* cudaMalloc leaves memory uninitialised. The fused call is given y as its z with
     * alpha2 = 0; zeros make sure no stale NaN pattern could ever leak through 0 * z. */
    CU(cudaMemset(c->arena, 0, c->plan.floats * sizeof(float) + 64));
    CU(cudaMemset(c->dense, 0, most * sizeof(float)));

    /* Weights: HWIO on the host, KRSC (cout, kh, kw, cin) on the device. */
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        if (l->op != BN_OP_CONV) {
            DNN(cudnnCreatePoolingDescriptor(&c->pool[i]));
            if (l->op == BN_OP_GAP)
                DNN(cudnnSetPooling2dDescriptor(c->pool[i], CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
                                                CUDNN_NOT_PROPAGATE_NAN, s->h, s->w, 0, 0, 1, 1));
            else
                DNN(cudnnSetPooling2dDescriptor(c->pool[i],
                                                l->op == BN_OP_MAXPOOL ? CUDNN_POOLING_MAX
                                                                       : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
                                                CUDNN_NOT_PROPAGATE_NAN, l->kh, l->kw, l->pad_h, l->pad_w, l->stride,
                                                l->stride));
            continue;
        }
        const int k = l->conv;
        const size_t nw = (size_t)l->kh * l->kw * l->cin * l->cout;
        host = (float *)malloc(nw * sizeof(float));
        if (!host) {
            snprintf(c->err, sizeof c->err, "out of host memory for the kernel of %s", l->name);
            goto fail;
        }
        const float *src = cfg->model->w[k];
        for (int y = 0; y < l->kh; y++)
            for (int x = 0; x < l->kw; x++)
                for (int ci = 0; ci < l->cin; ci++)
                    for (int co = 0; co < l->cout; co++)
                        host[(((size_t)co * l->kh + y) * l->kw + x) * l->cin + ci] =
                            src[(((size_t)y * l->kw + x) * l->cin + ci) * l->cout + co];
        CU(cudaMalloc((void **)&c->w[k], nw * sizeof(float)));
        CU(cudaMemcpy(c->w[k], host, nw * sizeof(float), cudaMemcpyHostToDevice));
        free(host);
        host = NULL;
        CU(cudaMalloc((void **)&c->b[k], (size_t)l->cout * sizeof(float)));
        CU(cudaMemcpy(c->b[k], cfg->model->b[k], (size_t)l->cout * sizeof(float), cudaMemcpyHostToDevice));
        c->bytes += (nw + (size_t)l->cout) * sizeof(float);
        DNN(cudnnCreateFilterDescriptor(&c->wd[k]));
        DNN(cudnnSetFilter4dDescriptor(c->wd[k], CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, l->cout, l->cin, l->kh, l->kw));
        DNN(cudnnCreateConvolutionDescriptor(&c->cd[k]));
        DNN(cudnnSetConvolution2dDescriptor(c->cd[k], l->pad_h, l->pad_w, l->stride, l->stride, 1, 1,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        DNN(cudnnSetConvolutionMathType(c->cd[k], CUDNN_FMA_MATH)); /* no TF32: fp32 is fp32 */
        DNN(cudnnCreateTensorDescriptor(&c->bd[k]));
        DNN(cudnnSetTensor4dDescriptor(c->bd[k], CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, l->cout, 1, 1));
        /* Workspace for the algorithm the fused call is given (IMPLICIT_PRECOMP_GEMM), at
         * max_batch. NOT_SUPPORTED here means this cuDNN has no such kernel for the shape:
         * the layer takes the unfused path from the start instead of failing create. */
        size_t wsb = 0;
        DNN(cudnnSetTensor4dDescriptor(c->xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, c->max_batch, s->c, s->h, s->w));
        DNN(cudnnSetTensor4dDescriptor(c->yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, c->max_batch, l->cout, d->h, d->w));
        const cudnnStatus_t wst = cudnnGetConvolutionForwardWorkspaceSize(
            c->dnn, c->xd, c->wd[k], c->cd[k], c->yd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &wsb);
        if (not_supported(wst))
            c->unfused[k] = 1;
        else
            DNN(wst);
        if (wsb > c->ws_bytes) c->ws_bytes = wsb;
        /* The algorithm of the unfused path, should the fused call be refused: the
         * heuristic's first working choice that is not a tensor-op (TF32) kernel, since
         * the descriptor's FMA math would refuse one; IMPLICIT_GEMM (no workspace) if none. */
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int got = 0;
        DNN(cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, c->xd, c->wd[k], c->cd[k], c->yd,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        c->algo[k] = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        for (int a = 0; a < got; a++)
            if (perf[a].status == CUDNN_STATUS_SUCCESS && perf[a].mathType != CUDNN_TENSOR_OP_MATH &&
                perf[a].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) {
                c->algo[k] = perf[a].algo;
                if (perf[a].memory > c->ws_bytes) c->ws_bytes = perf[a].memory;
                break;
            }
    }
    if (c->ws_bytes) {
        CU(cudaMalloc(&c->ws, c->ws_bytes));
        c->bytes += c->ws_bytes;
    }
    /* The uploads above ran on the legacy default stream, and a pageable cudaMemcpy to
     * the device may return before its DMA lands; c->stream is non-blocking, so it does
     * not wait for them. Wait here, once. */
    CU(cudaDeviceSynchronize());
    return c;
fail:
    free(host);
    snprintf(err, errlen, "%s", c->err);
    cu_destroy(c);
    return NULL;
}

static int cu_forward(void *ctx, const float *in, int n, float *out, char *err, size_t errlen) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    if (c->failed) {
        snprintf(err, errlen, "GPU %d failed before; this engine cannot be used again", c->dev);
        return -1;
    }
    const bn_graph *g = c->g;
    const float one = 1.0f, zero = 0.0f;
    CUF(cudaSetDevice(c->dev));
    CUF(cudaMemcpyAsync(c->in, in, tensor_floats(&g->tensors[g->input], n) * sizeof(float), cudaMemcpyHostToDevice,
                        c->stream));
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        const int whole = l->dst_off == 0 && l->cout == d->c; /* writes the whole tensor */
        float *dst = whole ? tensor_ptr(c, l->dst) : c->dense;
        DNNF(cudnnSetTensor4dDescriptor(c->xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, s->c, s->h, s->w));
        DNNF(cudnnSetTensor4dDescriptor(c->yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, n, l->cout,
                                        l->op == BN_OP_GAP ? 1 : d->h, l->op == BN_OP_GAP ? 1 : d->w));
        if (l->op == BN_OP_CONV) {
            const int k = l->conv;
            if (!c->unfused[k]) {
                cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
                    c->dnn, &one, c->xd, tensor_ptr(c, l->src), c->wd[k], c->w[k], c->cd[k],
                    CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, c->ws, c->ws_bytes, &zero, c->yd, dst, c->bd[k],
                    c->b[k], c->relu, c->yd, dst);
                if (not_supported(st))
                    c->unfused[k] = 1; /* this cuDNN has no fused kernel for the shape: three calls from now on */
                else
                    DNNF(st);
            }
            if (c->unfused[k]) {
                DNNF(cudnnConvolutionForward(c->dnn, &one, c->xd, tensor_ptr(c, l->src), c->wd[k], c->w[k], c->cd[k],
                                             c->algo[k], c->ws, c->ws_bytes, &zero, c->yd, dst));
                DNNF(cudnnAddTensor(c->dnn, &one, c->bd[k], c->b[k], &one, c->yd, dst));
                DNNF(cudnnActivationForward(c->dnn, c->relu, &one, c->yd, dst, &zero, c->yd, dst));
            }
        } else {
            DNNF(cudnnPoolingForward(c->dnn, c->pool[i], &one, c->xd, tensor_ptr(c, l->src), &zero, c->yd, dst));
        }
        if (!whole) /* rows of cout floats into the slice: pitch d->c floats */
            CUF(cudaMemcpy2DAsync(tensor_ptr(c, l->dst) + l->dst_off, (size_t)d->c * sizeof(float), dst,
                                  (size_t)l->cout * sizeof(float), (size_t)l->cout * sizeof(float),
                                  (size_t)n * d->h * d->w, cudaMemcpyDeviceToDevice, c->stream));
    }
    CUF(cudaMemcpyAsync(out, c->out, (size_t)n * BN_FEATURES * sizeof(float), cudaMemcpyDeviceToHost, c->stream));
    CUF(cudaStreamSynchronize(c->stream));
    return 0;
}

static size_t cu_bytes(const void *ctx) { return ((const cuda_ctx *)ctx)->bytes; }

extern "C" int bn_cuda_device_count(char *why, size_t whylen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, whylen, "CUDA: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) snprintf(why, whylen, "CUDA sees no device");
    return n;
}

extern "C" const bn_backend_ops bn_backend_cuda = {
    "cuda",
    "cuDNN on a GPU, NHWC, conv+bias+ReLU fused, fp32 without TF32 (NOT YET RUN ON HARDWARE)",
    BN_PREC_BIT(BN_PREC_FP32),
    1,
    40,
    0,
    1,
    cu_create,
    cu_forward,
    cu_bytes,
    cu_destroy,
};
