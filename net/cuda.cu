/* cuda.cu: the GPU backend. cuDNN convolutions in NHWC with the folded batch
 * norm as their bias and the ReLU fused (cudnnConvolutionBiasActivationForward),
 * cuDNN max and average pooling (the average excludes padding, as Keras does),
 * weights uploaded once at create.
 *
 * Precisions: fp32 runs with TF32 off (CUDNN_FMA_MATH), so the features
 * follow the CPU's fp32; tf32 keeps fp32 tensors and lets the convolutions
 * use TF32 tensor cores (CUDNN_DEFAULT_MATH); fp16 and bf16 keep weights and
 * activations in 16 bits with fp32 accumulation (cuDNN's pseudo-half
 * configurations, CUDNN_TENSOR_OP_MATH). The input arrives in fp32 and is
 * converted on the device; the features leave in fp32.
 *
 * Layout on the device: one arena planned as the CPU backends plan theirs
 * (net/plan.h), the input and the (n, 2048) output beside it. A layer whose
 * destination is a channel slice of a concatenation writes straight into
 * its slice through a strided output descriptor; where cuDNN refuses that
 * for a layer, the layer writes a dense buffer that one strided copy
 * (cudaMemcpy2DAsync) puts into its slice.
 *
 * Host side: input buffers can be page-locked (host_alloc), so the copy to
 * the device runs at full speed; CUDA events time the copies and the
 * network on the device (device_times).
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

#include <cuda_bf16.h>
#include <cuda_fp16.h>
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
    bn_plan plan;                     /* tensor offsets (elements) in the arena for max_batch */
    bn_precision prec;                /* fp32, tf32, fp16 or bf16 */
    cudnnDataType_t dt;               /* element type of weights and activations */
    size_t es;                        /* bytes per element of dt */
    cudnnMathType_t math;             /* the convolutions' math mode for prec */
    cudaStream_t stream;              /* every call goes on it */
    cudnnHandle_t dnn;                /* bound to stream */
    char *arena;                      /* (plan.floats,) elements of dt: activations */
    char *in;                         /* (max_batch, 299, 299, 3) dt: the network's input */
    float *in32;                      /* (max_batch, 299, 299, 3) fp32 as copied in, when dt is not fp32; else NULL */
    char *out;                        /* (max_batch, 2048) dt */
    float *out32;                     /* (max_batch, 2048) fp32 features when dt is not fp32; else NULL */
    float *hout;                      /* (max_batch, 2048) page-locked host copy of the features */
    char *dense;                      /* the largest layer output of max_batch images, for slice copies */
    void *ws;                         /* convolution workspace */
    size_t ws_bytes;                  /* bytes at ws */
    void *w[BN_NCONV];                /* (cout, kh, kw, cin) dt: cuDNN's NHWC filter layout */
    void *b[BN_NCONV];                /* (cout,) dt */
    cudnnFilterDescriptor_t wd[BN_NCONV];       /* per conv */
    cudnnConvolutionDescriptor_t cd[BN_NCONV];  /* per conv */
    cudnnTensorDescriptor_t bd[BN_NCONV];       /* bias (1, cout, 1, 1) */
    cudnnActivationDescriptor_t relu; /* ReLU */
    cudnnConvolutionFwdAlgo_t algo[BN_NCONV]; /* for the unfused path: cuDNN's first heuristic choice */
    int unfused[BN_NCONV];            /* 1: the fused call was refused (NOT_SUPPORTED); conv, add bias, ReLU */
    int direct[BN_MAX_LAYERS];        /* 1: a layer that fills a concat slice writes it through a strided descriptor */
    cudnnPoolingDescriptor_t pool[BN_MAX_LAYERS]; /* per pooling layer, or NULL */
    cudnnTensorDescriptor_t xd, yd;   /* reset per layer */
    cudaEvent_t ev[4];                /* per call: copy-in start, copy-in end, network end, copy-out end */
    double compute_s, copy_s;         /* device seconds so far (device_times) */
    size_t bytes;                     /* device bytes held */
    int failed;                       /* a forward failed: never used again */
    char err[512];                    /* the reason create failed */
} cuda_ctx;

static size_t tensor_elems(const bn_tensor *t, int n) { return (size_t)n * t->h * t->w * t->c; }

/* cuDNN 9 reports "not supported" as a category (3000) with specific codes inside it
 * (CUDNN_STATUS_NOT_SUPPORTED_LAYOUT, _SHAPE, _ARCH_MISMATCH, ...), so compare the category. */
static int not_supported(cudnnStatus_t s) {
#ifdef CUDNN_STATUS_CATEGORY
    return CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_NOT_SUPPORTED;
#else
    return s == CUDNN_STATUS_NOT_SUPPORTED; /* cuDNN 8: one code */
#endif
}
/* A refusal of a strided output: not supported, or a bad parameter. */
static int refused(cudnnStatus_t s) {
#ifdef CUDNN_STATUS_CATEGORY
    return not_supported(s) || CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_BAD_PARAM;
#else
    return not_supported(s) || s == CUDNN_STATUS_BAD_PARAM;
#endif
}

/* Element conversions on the device (grid-stride loops). */
__global__ void k_to_half(const float *x, __half *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2half_rn(x[i]);
}
__global__ void k_to_bf16(const float *x, __nv_bfloat16 *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void k_from_half(const __half *x, float *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __half2float(x[i]);
}
__global__ void k_from_bf16(const __nv_bfloat16 *x, float *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __bfloat162float(x[i]);
}
static unsigned blocks_for(size_t n) { return (unsigned)(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096); }

/* fp32 x into dt y (n elements) on the stream; the launch's error, if any. */
static cudaError_t to_dt(cuda_ctx *c, const float *x, void *y, size_t n) {
    if (c->dt == CUDNN_DATA_HALF)
        k_to_half<<<blocks_for(n), 256, 0, c->stream>>>(x, (__half *)y, n);
    else if (c->dt == CUDNN_DATA_BFLOAT16)
        k_to_bf16<<<blocks_for(n), 256, 0, c->stream>>>(x, (__nv_bfloat16 *)y, n);
    else
        return cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, c->stream);
    return cudaGetLastError();
}
static cudaError_t from_dt(cuda_ctx *c, const void *x, float *y, size_t n) {
    if (c->dt == CUDNN_DATA_HALF)
        k_from_half<<<blocks_for(n), 256, 0, c->stream>>>((const __half *)x, y, n);
    else
        k_from_bf16<<<blocks_for(n), 256, 0, c->stream>>>((const __nv_bfloat16 *)x, y, n);
    return cudaGetLastError();
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
    for (int i = 0; i < 4; i++)
        if (c->ev[i]) cudaEventDestroy(c->ev[i]);
    if (c->relu) cudnnDestroyActivationDescriptor(c->relu);
    if (c->xd) cudnnDestroyTensorDescriptor(c->xd);
    if (c->yd) cudnnDestroyTensorDescriptor(c->yd);
    if (c->arena) cudaFree(c->arena);
    if (c->in) cudaFree(c->in);
    if (c->in32) cudaFree(c->in32);
    if (c->out) cudaFree(c->out);
    if (c->out32) cudaFree(c->out32);
    if (c->hout) cudaFreeHost(c->hout);
    if (c->dense) cudaFree(c->dense);
    if (c->ws) cudaFree(c->ws);
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

/* Device pointer of tensor t for the current call. */
static char *tensor_ptr(cuda_ctx *c, int t) {
    if (t == c->g->input) return c->in;
    if (t == c->g->output) return c->out;
    return c->arena + c->plan.off[t] * c->es;
}

/* yd for layer l's output of n images: dense (cout channels), or, when
 * slice, the channel slice of its concatenation (pixel pitch d->c). */
static cudnnStatus_t set_out_desc(cuda_ctx *c, const bn_layer *l, int n, int slice) {
    const bn_tensor *d = &c->g->tensors[l->dst];
    const int h = l->op == BN_OP_GAP ? 1 : d->h, w = l->op == BN_OP_GAP ? 1 : d->w;
    if (!slice) return cudnnSetTensor4dDescriptor(c->yd, CUDNN_TENSOR_NHWC, c->dt, n, l->cout, h, w);
    return cudnnSetTensor4dDescriptorEx(c->yd, c->dt, n, l->cout, h, w, h * w * d->c, 1, w * d->c, d->c);
}

static void *cu_create(const bn_engine_config *cfg, char *err, size_t errlen) {
    if (cfg->precision != BN_PREC_FP32 && cfg->precision != BN_PREC_TF32 && cfg->precision != BN_PREC_FP16 &&
        cfg->precision != BN_PREC_BF16) {
        snprintf(err, errlen, "the cuda backend runs fp32, tf32, fp16 and bf16, not %s", bn_precision_name(cfg->precision));
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
    c->prec = cfg->precision;
    c->dt = c->prec == BN_PREC_FP16 ? CUDNN_DATA_HALF : c->prec == BN_PREC_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    c->es = c->dt == CUDNN_DATA_FLOAT ? 4 : 2;
    c->math = c->prec == BN_PREC_FP32 ? CUDNN_FMA_MATH : c->prec == BN_PREC_TF32 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH;
    const bn_graph *g = c->g;
    /* BNECK_CUDA_DENSE=1: every concat slice through the dense copy, never a
     * strided output (tests/gpu.sh compares the two ways). */
    const char *dense_env = getenv("BNECK_CUDA_DENSE");
    const int dense_only = dense_env && dense_env[0] == '1';
    const size_t in_elems = tensor_elems(&g->tensors[g->input], c->max_batch);
    const size_t out_elems = (size_t)c->max_batch * BN_FEATURES;
    size_t most = 0, widest_w = 0;
    float *host = NULL, *wtmp = NULL;
    CU(cudaSetDevice(c->dev));
    CU(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    DNN(cudnnCreate(&c->dnn));
    DNN(cudnnSetStream(c->dnn, c->stream));
    DNN(cudnnCreateTensorDescriptor(&c->xd));
    DNN(cudnnCreateTensorDescriptor(&c->yd));
    DNN(cudnnCreateActivationDescriptor(&c->relu));
    DNN(cudnnSetActivationDescriptor(c->relu, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    for (int i = 0; i < 4; i++) CU(cudaEventCreate(&c->ev[i]));

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
        const size_t in1 = tensor_elems(&g->tensors[g->input], 1);
        const size_t per_image = (one.floats + in1 + BN_FEATURES + widest) * c->es +
                                 (c->dt == CUDNN_DATA_FLOAT ? 0 : (in1 + BN_FEATURES) * sizeof(float));
        const size_t fixed = cfg->model->nfloats * c->es + ((size_t)256 << 20); /* weights, cuDNN's own, workspace */
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
    CU(cudaMalloc((void **)&c->arena, c->plan.floats * c->es + 64));
    CU(cudaMalloc((void **)&c->in, in_elems * c->es));
    CU(cudaMalloc((void **)&c->out, out_elems * c->es));
    CU(cudaHostAlloc((void **)&c->hout, out_elems * sizeof(float), cudaHostAllocDefault));
    c->bytes = (c->plan.floats + in_elems + out_elems) * c->es;
    if (c->dt != CUDNN_DATA_FLOAT) {
        CU(cudaMalloc((void **)&c->in32, in_elems * sizeof(float)));
        CU(cudaMalloc((void **)&c->out32, out_elems * sizeof(float)));
        c->bytes += (in_elems + out_elems) * sizeof(float);
    }
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *d = &g->tensors[l->dst];
        size_t f = (size_t)c->max_batch * d->h * d->w * l->cout;
        if (f > most) most = f;
        if (l->op == BN_OP_CONV) {
            size_t nw = (size_t)l->kh * l->kw * l->cin * l->cout;
            if (nw > widest_w) widest_w = nw;
        }
    }
    CU(cudaMalloc((void **)&c->dense, most * c->es));
    c->bytes += most * c->es;
    /* cudaMalloc leaves memory uninitialised. The fused call is given y as its z with
     * alpha2 = 0; zeros make sure no stale NaN pattern could ever leak through 0 * z. */
    CU(cudaMemset(c->arena, 0, c->plan.floats * c->es + 64));
    CU(cudaMemset(c->dense, 0, most * c->es));
    /* fp32 kernels and biases pass through here on their way to dt. */
    CU(cudaMalloc((void **)&wtmp, widest_w * sizeof(float)));

    /* Weights: HWIO on the host, KRSC (cout, kh, kw, cin) on the device. */
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        const int whole = l->dst_off == 0 && l->cout == d->c;
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
            c->direct[i] = !whole && !dense_only; /* tried at the first call; a refusal falls back to the dense copy */
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
        CU(cudaMalloc((void **)&c->w[k], nw * c->es));
        CU(cudaMalloc((void **)&c->b[k], (size_t)l->cout * c->es));
        /* Copy into wtmp and convert, both on the stream (a pageable cudaMemcpy on
         * the legacy stream may return before its DMA lands, and the non-blocking
         * stream would not wait for it); done before wtmp takes the next array. */
        CU(cudaMemcpyAsync(wtmp, host, nw * sizeof(float), cudaMemcpyHostToDevice, c->stream));
        CU(to_dt(c, wtmp, c->w[k], nw));
        CU(cudaStreamSynchronize(c->stream));
        CU(cudaMemcpyAsync(wtmp, cfg->model->b[k], (size_t)l->cout * sizeof(float), cudaMemcpyHostToDevice, c->stream));
        CU(to_dt(c, wtmp, c->b[k], (size_t)l->cout));
        CU(cudaStreamSynchronize(c->stream));
        free(host);
        host = NULL;
        c->bytes += (nw + (size_t)l->cout) * c->es;
        DNN(cudnnCreateFilterDescriptor(&c->wd[k]));
        DNN(cudnnSetFilter4dDescriptor(c->wd[k], c->dt, CUDNN_TENSOR_NHWC, l->cout, l->cin, l->kh, l->kw));
        DNN(cudnnCreateConvolutionDescriptor(&c->cd[k]));
        DNN(cudnnSetConvolution2dDescriptor(c->cd[k], l->pad_h, l->pad_w, l->stride, l->stride, 1, 1,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT)); /* fp32 accumulation */
        DNN(cudnnSetConvolutionMathType(c->cd[k], c->math));
        DNN(cudnnCreateTensorDescriptor(&c->bd[k]));
        DNN(cudnnSetTensor4dDescriptor(c->bd[k], CUDNN_TENSOR_NHWC, c->dt, 1, l->cout, 1, 1));
        /* Workspace for the algorithm the fused call is given (IMPLICIT_PRECOMP_GEMM), at
         * max_batch. NOT_SUPPORTED here means this cuDNN has no such kernel for the shape:
         * the layer takes the unfused path from the start instead of failing create. */
        size_t wsb = 0;
        DNN(cudnnSetTensor4dDescriptor(c->xd, CUDNN_TENSOR_NHWC, c->dt, c->max_batch, s->c, s->h, s->w));
        DNN(set_out_desc(c, l, c->max_batch, 0));
        const cudnnStatus_t wst = cudnnGetConvolutionForwardWorkspaceSize(
            c->dnn, c->xd, c->wd[k], c->cd[k], c->yd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &wsb);
        if (not_supported(wst))
            c->unfused[k] = 1;
        else
            DNN(wst);
        if (wsb > c->ws_bytes) c->ws_bytes = wsb;
        /* The algorithm of the unfused path, should the fused call be refused: the
         * heuristic's first working choice; for fp32 not a tensor-op (TF32) kernel,
         * which the descriptor's FMA math would refuse; IMPLICIT_GEMM if none. */
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int got = 0;
        DNN(cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, c->xd, c->wd[k], c->cd[k], c->yd,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        c->algo[k] = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
        for (int a = 0; a < got; a++)
            if (perf[a].status == CUDNN_STATUS_SUCCESS &&
                (c->prec != BN_PREC_FP32 || (perf[a].mathType != CUDNN_TENSOR_OP_MATH &&
                                             perf[a].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))) {
                c->algo[k] = perf[a].algo;
                if (perf[a].memory > c->ws_bytes) c->ws_bytes = perf[a].memory;
                break;
            }
        /* A slice output through a strided descriptor, where cuDNN takes it
         * for this shape (its workspace counted); else the dense copy. */
        if (!whole && !dense_only) {
            size_t wss = 0;
            c->direct[i] = set_out_desc(c, l, c->max_batch, 1) == CUDNN_STATUS_SUCCESS &&
                           cudnnGetConvolutionForwardWorkspaceSize(c->dnn, c->xd, c->wd[k], c->cd[k], c->yd,
                                                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                                   &wss) == CUDNN_STATUS_SUCCESS;
            if (c->direct[i] && wss > c->ws_bytes) c->ws_bytes = wss;
        }
    }
    cudaFree(wtmp);
    wtmp = NULL;
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
    if (wtmp) cudaFree(wtmp);
    snprintf(err, errlen, "%s", c->err);
    cu_destroy(c);
    return NULL;
}

/* Layer i on n images into dst, whose descriptor is c->yd (xd set). The
 * first failing status; a fused convolution cuDNN refuses takes the three
 * calls from then on, unless strict (a strided output being tried: its
 * refusal is the caller's to handle). */
static cudnnStatus_t run_layer(cuda_ctx *c, int i, void *dst, int strict) {
    const bn_layer *l = &c->g->layers[i];
    const float one = 1.0f, zero = 0.0f; /* fp32 scalars: every configuration accumulates in fp32 */
    const void *src = tensor_ptr(c, l->src);
    if (l->op != BN_OP_CONV) return cudnnPoolingForward(c->dnn, c->pool[i], &one, c->xd, src, &zero, c->yd, dst);
    const int k = l->conv;
    cudnnStatus_t st;
    if (!c->unfused[k]) {
        st = cudnnConvolutionBiasActivationForward(c->dnn, &one, c->xd, src, c->wd[k], c->w[k], c->cd[k],
                                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, c->ws,
                                                   c->ws_bytes, &zero, c->yd, dst, c->bd[k], c->b[k], c->relu, c->yd,
                                                   dst);
        if (!not_supported(st) || strict) return st;
        c->unfused[k] = 1; /* this cuDNN has no fused kernel for the shape: three calls from now on */
    }
    st = cudnnConvolutionForward(c->dnn, &one, c->xd, src, c->wd[k], c->w[k], c->cd[k], c->algo[k], c->ws,
                                 c->ws_bytes, &zero, c->yd, dst);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnAddTensor(c->dnn, &one, c->bd[k], c->b[k], &one, c->yd, dst);
    if (st == CUDNN_STATUS_SUCCESS) st = cudnnActivationForward(c->dnn, c->relu, &one, c->yd, dst, &zero, c->yd, dst);
    return st;
}

static int cu_forward(void *ctx, const float *in, int n, float *out, char *err, size_t errlen) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    if (c->failed) {
        snprintf(err, errlen, "GPU %d failed before; this engine cannot be used again", c->dev);
        return -1;
    }
    const bn_graph *g = c->g;
    const size_t in_elems = tensor_elems(&g->tensors[g->input], n), out_elems = (size_t)n * BN_FEATURES;
    CUF(cudaSetDevice(c->dev));
    CUF(cudaEventRecord(c->ev[0], c->stream));
    CUF(cudaMemcpyAsync(c->in32 ? (void *)c->in32 : (void *)c->in, in, in_elems * sizeof(float), cudaMemcpyHostToDevice,
                        c->stream));
    CUF(cudaEventRecord(c->ev[1], c->stream));
    if (c->in32) CUF(to_dt(c, c->in32, c->in, in_elems));
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        const bn_tensor *s = &g->tensors[l->src], *d = &g->tensors[l->dst];
        const int whole = l->dst_off == 0 && l->cout == d->c; /* writes the whole tensor */
        DNNF(cudnnSetTensor4dDescriptor(c->xd, CUDNN_TENSOR_NHWC, c->dt, n, s->c, s->h, s->w));
        if (!whole && c->direct[i]) {
            DNNF(set_out_desc(c, l, n, 1));
            cudnnStatus_t st = run_layer(c, i, tensor_ptr(c, l->dst) + (size_t)l->dst_off * c->es, 1);
            if (st == CUDNN_STATUS_SUCCESS) continue;
            if (!refused(st)) DNNF(st);
            c->direct[i] = 0; /* cuDNN will not write this slice in place: the dense copy from now on */
        }
        char *dst = whole ? tensor_ptr(c, l->dst) : c->dense;
        DNNF(set_out_desc(c, l, n, 0));
        DNNF(run_layer(c, i, dst, 0));
        if (!whole) /* rows of cout elements into the slice: pitch d->c elements */
            CUF(cudaMemcpy2DAsync(tensor_ptr(c, l->dst) + (size_t)l->dst_off * c->es, (size_t)d->c * c->es, dst,
                                  (size_t)l->cout * c->es, (size_t)l->cout * c->es, (size_t)n * d->h * d->w,
                                  cudaMemcpyDeviceToDevice, c->stream));
    }
    if (c->out32) CUF(from_dt(c, c->out, c->out32, out_elems));
    CUF(cudaEventRecord(c->ev[2], c->stream));
    CUF(cudaMemcpyAsync(c->hout, c->out32 ? (void *)c->out32 : (void *)c->out, out_elems * sizeof(float),
                        cudaMemcpyDeviceToHost, c->stream));
    CUF(cudaEventRecord(c->ev[3], c->stream));
    CUF(cudaStreamSynchronize(c->stream));
    memcpy(out, c->hout, out_elems * sizeof(float));
    float ms[3] = {0, 0, 0};
    for (int j = 0; j < 3; j++) CUF(cudaEventElapsedTime(&ms[j], c->ev[j], c->ev[j + 1]));
    c->copy_s += (ms[0] + ms[2]) / 1e3;
    c->compute_s += ms[1] / 1e3;
    return 0;
}

static size_t cu_bytes(const void *ctx) { return ((const cuda_ctx *)ctx)->bytes; }

static void *cu_host_alloc(void *ctx, size_t bytes) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    void *p = NULL;
    if (cudaSetDevice(c->dev) != cudaSuccess || cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it; the caller takes plain memory */
        bn_verbose("cuda: no page-locked host memory for %zu MiB of input: plain memory (slower copies)", bytes >> 20);
        return NULL;
    }
    return p;
}

static void cu_host_free(void *ctx, void *p) {
    (void)ctx;
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) == cudaSuccess && a.type == cudaMemoryTypeHost) {
        cudaFreeHost(p);
        return;
    }
    cudaGetLastError();
    free(p);
}

static void cu_device_times(const void *ctx, double *compute_s, double *copy_s) {
    const cuda_ctx *c = (const cuda_ctx *)ctx;
    *compute_s = c->compute_s;
    *copy_s = c->copy_s;
}

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
    "cuDNN on a GPU, NHWC, conv+bias+ReLU fused; fp32 without TF32, tf32, fp16, bf16 (NOT YET RUN ON HARDWARE)",
    BN_PREC_BIT(BN_PREC_FP32) | BN_PREC_BIT(BN_PREC_TF32) | BN_PREC_BIT(BN_PREC_FP16) | BN_PREC_BIT(BN_PREC_BF16),
    1,
    40,
    0,
    1,
    cu_create,
    cu_forward,
    cu_bytes,
    cu_destroy,
    cu_host_alloc,
    cu_host_free,
    cu_device_times,
};
