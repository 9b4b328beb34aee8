/* model.h: Inception v3 parameters, in the two forms bneck uses.
 *
 * bn_raw_params is what the Keras weights file holds per convolution: the
 * kernel and the batch-norm statistics. bn_model is what the engines run:
 * each BN folded into its convolution as a per-channel scale on the kernel
 * and a bias:  scale = gamma / sqrt(var + eps),  w' = w * scale,
 * b' = beta - mean * scale.
 */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "net/graph.h"

#include <stddef.h>

#define BN_BN_EPS 1e-3 /* Keras Inception v3 batch-norm epsilon */

/* Parameters of one convolution + batch norm, as stored by Keras. */
typedef struct {
    int kh, kw, cin, cout; /* kernel shape */
    float *kernel;         /* (kh, kw, cin, cout) HWIO */
    float *gamma;          /* (cout,) or NULL: Keras Inception v3 has no gamma (scale=False), i.e. 1 */
    float *beta;           /* (cout,) */
    float *mean;           /* (cout,) moving_mean */
    float *var;            /* (cout,) moving_variance */
} bn_conv_raw;

/* All 94 convolutions in creation order (graph.h conv index). */
typedef struct {
    bn_conv_raw conv[BN_NCONV]; /* per conv; arrays owned */
} bn_raw_params;

/* The folded model the engines run. */
typedef struct {
    float *w[BN_NCONV];  /* (kh, kw, cin, cout) HWIO, BN scale folded in */
    float *b[BN_NCONV];  /* (cout,) folded bias */
    float *mem;          /* one allocation holding every w and b */
    size_t nfloats;      /* floats at mem */
    char sha256[65];     /* hex SHA-256 of the weights file ("" if not from a file) */
} bn_model;

/* Allocate raw params with the shapes of the graph (contents zero, gamma NULL). */
void bn_raw_alloc(bn_raw_params *p);
void bn_raw_free(bn_raw_params *p);

/* Fold raw params into a model (allocates m). */
void bn_model_fold(const bn_raw_params *p, bn_model *m);
void bn_model_free(bn_model *m);

#endif
