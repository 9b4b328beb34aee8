/* quant.h: int8 quantization: activation scales from calibration (the
 * calibration file, one module owns its layout: docs/format.md), and the
 * symmetric per-output-channel weight quantization the backends share.
 *
 * Scales are per tensor of the graph (net/graph.h), not per layer: every
 * branch of a mixed block writes its slice of one concatenated tensor,
 * so they must share that tensor's scale. A tensor's threshold t maps to
 * the top code: u8 tensors (every ReLU output) hold round(x * 255 / t)
 * clamped to [0, 255]; the input tensor is s8, round(x * 127 / t). */
#ifndef BN_QUANT_H
#define BN_QUANT_H

#include "net/engine.h"
#include "net/graph.h"

#include <stddef.h>
#include <stdint.h>

struct bn_calib {
    int ntensors;                 /* the graph's tensor count when written (checked on read) */
    float thresh[BN_MAX_TENSORS]; /* per tensor: the value the top code stands for (> 0) */
    char method[32];              /* "max", "percentile", "entropy" */
    double percentile;            /* for "percentile": the share of values kept below the threshold, e.g. 99.99 */
    int images;                   /* calibration images used */
    char weights_sha256[65];      /* hex SHA-256 of the weights file the scales belong to */
    char sha256[65];              /* hex SHA-256 of the calibration file itself (identity of int8 runs) */
    char path[4096];              /* where it was read from */
};

/* Read a calibration file and check it belongs to weights with SHA-256
 * weights_sha (hex; "" skips that check). Returns 0, or -1 with a one-line
 * reason naming the file in err (missing, not a calibration file, a version
 * this build cannot read, another graph, other weights). */
int bn_calib_read(const char *path, const char *weights_sha, bn_calib *c, char *err, size_t errlen);

/* Write c to path (format "bneck-calibration", version 1). Returns 0 or -1
 * with a reason in err. c->sha256 is set to the written file's digest. */
int bn_calib_write(const char *path, bn_calib *c, char *err, size_t errlen);

/* Quantize an HWIO kernel of K = kh*kw*cin rows and cout columns
 * symmetrically per output channel: scale[o] = max_k |w[k][o]| / 127 (1 when
 * the column is all zero), q[k][o] = round(w[k][o] / scale[o]). */
void bn_quant_weights(const float *w, size_t K, int cout, int8_t *q, float *scale);

#endif
