/* weights.h: the Keras Inception v3 weights file
 * (inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5), read and written.
 *
 * Layout (docs/weights.md): the root attribute "layer_names" lists the layers;
 * each layer group has an attribute "weight_names"; datasets live at
 * /<layer>/<weight name>, e.g. /conv2d_5/conv2d_5/kernel:0. Conv layers hold
 * one HWIO kernel, batch-norm layers beta, moving_mean and moving_variance
 * (gamma too if present). Convolutions are matched to the graph in creation
 * order: by the numeric suffix Keras gives layer names (wherever the numbering
 * starts), or in file order when names carry no usable number.
 */
#ifndef BN_WEIGHTS_H
#define BN_WEIGHTS_H

#include "net/model.h"

#include <stddef.h>

/* Read and check a weights file into raw params (allocated here). Returns 0,
 * or -1 with a one-line reason in err that names the file and, where it
 * applies, the layer: not HDF5, truncated/unreadable, missing layer or
 * dataset, wrong shape, NaN/Inf, negative variance. */
int bn_weights_read(const char *path, bn_raw_params *p, char *err, size_t errlen);

/* Read, check and fold: the usual entry point. Also fills m->sha256. */
int bn_weights_load(const char *path, bn_model *m, char *err, size_t errlen);

/* Write raw params in the Keras layout. first_index is the number of the
 * first conv2d_N / batch_normalization_N (Keras starts at 1). The file is
 * byte-for-byte reproducible: no timestamps are stored. Returns 0 or -1 with
 * a reason in err. */
int bn_weights_write(const char *path, const bn_raw_params *p, int first_index, char *err, size_t errlen);

/* Hex SHA-256 of a file into out[65]. Returns 0, or -1 with a reason in err. */
int bn_file_sha256(const char *path, char out[65], char *err, size_t errlen);

#endif
