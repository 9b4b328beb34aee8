/* calib.h: random Inception v3 parameters for demos and tests (mkweights). */
#ifndef BN_CALIB_H
#define BN_CALIB_H

#include "net/model.h"

/* Fill kernels with He-initialised normal values (stddev sqrt(2 / fan_in)),
 * beta with small uniform values in [-0.1, 0.1], from a seed. */
void bn_random_init(bn_raw_params *p, unsigned long long seed);

/* Set every batch norm's moving mean and variance to the statistics of its
 * convolution's output on the given inputs, layer by layer, so activations
 * stay normalised through all 94 layers.
 * in: (n, 299, 299, 3) preprocessed images. Single-threaded BLAS, so the
 * result is the same on every run on a machine. */
void bn_calibrate(bn_raw_params *p, const float *in, int n);

#endif
