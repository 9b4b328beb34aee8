/* graph.h: Inception v3, from the 299x299x3 input to the 2048-wide pool_3
 * vector, as a table of layers (the graph is data: net/graph.c).
 *
 * Tensors are NHWC float32. A layer reads one tensor and writes a channel
 * slice [dst_off, dst_off + cout) of another, so the branches of a mixed
 * block write straight into the concatenated output, in Keras' order.
 */
#ifndef BN_GRAPH_H
#define BN_GRAPH_H

#define BN_NCONV 94          /* convolutions, each with a batch norm and a ReLU */
#define BN_FEATURES 2048     /* width of the bottleneck (pool_3) */
#define BN_MAX_TENSORS 96    /* upper bound on tensors in the table */
#define BN_MAX_LAYERS 112    /* upper bound on layers in the table */

typedef enum {
    BN_OP_CONV = 0,    /* convolution + folded BN bias + ReLU */
    BN_OP_MAXPOOL = 1, /* max pool, no padding */
    BN_OP_AVGPOOL = 2, /* average pool, 'same' padding, divides by the valid (non-pad) count */
    BN_OP_GAP = 3,     /* global average pool to 1x1 */
} bn_op;

/* One tensor of the graph, per image. */
typedef struct {
    const char *name; /* e.g. "mixed4" */
    int h, w, c;      /* shape (H, W, C) */
} bn_tensor;

/* One layer. */
typedef struct {
    const char *name; /* e.g. "mixed4/branch7x7dbl_3" */
    bn_op op;         /* what it computes */
    int src, dst;     /* tensor indices read and written */
    int dst_off;      /* first channel of the slice written in dst */
    int kh, kw;       /* kernel height and width (pools and convs) */
    int stride;       /* same in both directions */
    int pad_h, pad_w; /* zero padding on each side (top = bottom, left = right) */
    int cin, cout;    /* input channels read, output channels written */
    int conv;         /* for convs: index 0..93 in Keras' creation order (the
                         weights file order); -1 for other layers */
} bn_layer;

typedef struct {
    int ntensors;                       /* tensors in use */
    bn_tensor tensors[BN_MAX_TENSORS];  /* tensors[0] is the input (299,299,3) */
    int nlayers;                        /* layers in execution order */
    bn_layer layers[BN_MAX_LAYERS];     /* the table, resolved */
    int conv_layer[BN_NCONV];           /* layer index of each conv */
    int input, output;                  /* tensor indices: input and the (1,1,2048) bottleneck */
    long long macs;                     /* multiply-adds per image */
} bn_graph;

/* The Inception v3 graph, built once from the table and checked (shapes,
 * channel slices that exactly tile each concatenation). Thread-safe after
 * the first call returns; the first call must not race. */
const bn_graph *bn_inception_v3(void);

/* Output spatial size of a layer for an input size. */
int bn_out_size(int in, int k, int stride, int pad);

#endif
