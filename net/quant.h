/* quant.h: int8 quantization: activation scales from calibration (the
 * calibration file, one module owns its layout: docs/format.md), the
 * thresholds computed from activation statistics (bneck calibrate), and the
 * rounding rules the backends share: symmetric per-output-channel weights,
 * u8/s8 activations, bf16.
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
#include <string.h>

#define BN_CALIB_FORMAT "bneck-calibration" /* the file's root attribute 'format' */
#define BN_CALIB_VERSION 1                  /* the newest version this build reads and the one it writes */
#define BN_CALIB_INPUT_THRESH 1.0f          /* the input tensor's threshold: the largest |x| either preprocessing gives */

struct bn_calib {
    int ntensors;                 /* the graph's tensor count when written (checked on read) */
    float thresh[BN_MAX_TENSORS]; /* per tensor: the value the top code stands for (> 0) */
    char method[32];              /* "max", "percentile", "entropy" */
    double percentile;            /* for "percentile": the share of values kept below the threshold, e.g. 99.99 */
    int images;                   /* calibration images used */
    char weights_sha256[65];      /* hex SHA-256 of the weights file the scales belong to */
    char sha256[65];              /* hex SHA-256 of the calibration file itself (identity of int8 runs) */
    char path[4096];              /* where it was read from */
    char preprocess[16];          /* "keras" or "tf2015": the normalisation the images were calibrated with */
};

/* Read a calibration file and check it belongs to weights with SHA-256
 * weights_sha (hex; "" or NULL skips that check). Returns 0, or -1 with a
 * one-line reason naming the file and what to do in err (missing, not HDF5,
 * not a calibration file, a version this build cannot read, another graph,
 * a threshold that is not a finite positive number, other weights). */
int bn_calib_read(const char *path, const char *weights_sha, bn_calib *c, char *err, size_t errlen);

/* Write c to path (format "bneck-calibration", version 1): written to
 * PATH.partial, then renamed. c->ntensors must be the graph's count, every
 * threshold finite and > 0, method known. Returns 0 or -1 with a reason in
 * err. c->sha256 is set to the written file's digest and c->path to path. */
int bn_calib_write(const char *path, bn_calib *c, char *err, size_t errlen);

/* Quantize an HWIO kernel of K = kh*kw*cin rows and cout columns
 * symmetrically per output channel: scale[o] = max_k |w[k][o]| / 127 (1 when
 * the column is all zero), q[k][o] = round(w[k][o] / scale[o]). */
void bn_quant_weights(const float *w, size_t K, int cout, int8_t *q, float *scale);
/* The scales alone (for a backend whose library quantizes the kernel). */
void bn_quant_weight_scales(const float *w, size_t K, int cout, float *scale);

/* ------------------------------------------------------------ thresholds */

typedef enum {
    BN_CALIB_MAX = 0,        /* the largest value seen (min-max) */
    BN_CALIB_PERCENTILE = 1, /* the value below which a share of all values (zeros included) lie */
    BN_CALIB_ENTROPY = 2,    /* the clipping that minimises the KL divergence of the u8 quantised distribution */
} bn_calib_method;
#define BN_CALIB_NMETHODS 3

/* Parse "max", "percentile" or "entropy". 0, or -1 for another name. */
int bn_calib_method_parse(const char *s, bn_calib_method *out);
const char *bn_calib_method_name(bn_calib_method m);

/* One tensor's statistics over the calibration images: max is the largest
 * |x|; with width = max / nbins, hist[b] counts the non-zero |x| in
 * [b * width, (b + 1) * width) (max itself in the last bin); zeros counts the
 * exact zeros. */
typedef struct {
    double max;
    uint64_t zeros;
    const uint64_t *hist;
    int nbins;
} bn_act_stats;

/* The threshold of one u8 tensor by method m (percentile: 0 < p <= 100).
 * A tensor without a non-zero value gets 1 (any scale represents it); the
 * result is always finite and > 0.
 *  max:        s->max.
 *  percentile: the top of the first bin at which the share of values (zeros
 *              included) at or below it reaches p %.
 *  entropy:    TensorRT's KL search over candidate thresholds i * width for
 *              i = 256 .. nbins bins, with the u8 quantiser modelled exactly:
 *              bin b (centre (b + 0.5) * width) goes to code
 *              round((b + 0.5) * 255 / i) of 0..255. P is the kept bins with
 *              the clipped values added to the last; Q merges the kept bins
 *              by code and spreads each code's count evenly over its
 *              non-empty bins. Zeros are left out: a zero is exact at any
 *              scale. Ties keep the smallest threshold. */
float bn_calib_threshold(bn_calib_method m, double p, const bn_act_stats *s);

/* ------------------------------------------------------------ rounding */

/* fp32 to bf16 and back, rounding to nearest even (NaN stays NaN, values
 * over bf16's largest round to infinity), as a CPU's bf16 conversion does. */
static inline float bn_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        u |= 0x00400000u; /* a NaN: keep it, quiet */
    else
        u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* u8 activation: code = round(x * inv) clamped to [0, 255] with inv =
 * 255 / t; returns code * step with step = t / 255 (the value the code
 * stands for). Round to nearest even, as the CPU's conversion does. */
float bn_quant_u8(float x, float inv, float step);
/* s8 activation: code = round(x * inv) clamped to [-128, 127], inv = 127 / t;
 * returns code * step, step = t / 127. */
float bn_quant_s8(float x, float inv, float step);

#endif
