/* image.h: decoding JPEG/PNG to RGB, the TF1-style bilinear resize, and the
 * input normalisation. Writers (for mkcorpus and tests) are in io/imgwrite.h.
 *
 * A bad file is never fatal: decoding returns a bn_img_status and a one-line
 * reason, which callers count and record.
 */
#ifndef BN_IMAGE_H
#define BN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Outcome of decoding one file. Values are stored in output files: append only. */
typedef enum {
    BN_IMG_OK = 0,          /* decoded (possibly with an accepted warning) */
    BN_IMG_ZERO_BYTES = 1,  /* the file is empty */
    BN_IMG_TRUNCATED = 2,   /* data ends before the image is complete */
    BN_IMG_NOT_IMAGE = 3,   /* neither JPEG nor PNG by its leading bytes */
    BN_IMG_UNSUPPORTED = 4, /* a valid file bneck cannot decode (12-bit JPEG, ...) */
    BN_IMG_CORRUPT = 5,     /* the codec rejected the data */
    BN_IMG_TOO_LARGE = 6,   /* width*height over the pixel limit (checked from the header) */
    BN_IMG_UNREADABLE = 7,  /* open/read failed (permissions, a folder, I/O error) */
    BN_IMG_NOMEM = 8,       /* out of memory for this image */
    BN_IMG_NSTATUS
} bn_img_status;

/* Short stable name of a status: "ok", "zero-bytes", "truncated", ... */
const char *bn_img_status_name(bn_img_status s);

/* Container format detected from the leading bytes. */
typedef enum { BN_FMT_UNKNOWN = 0, BN_FMT_JPEG = 1, BN_FMT_PNG = 2 } bn_img_format;
bn_img_format bn_sniff_format(const unsigned char *buf, size_t len);
const char *bn_format_name(bn_img_format f);

/* An 8-bit RGB image; the buffer is reused between decodes and grows as needed. */
typedef struct {
    int width, height;  /* pixels */
    unsigned char *rgb; /* (height, width, 3) uint8, row-major, owned */
    size_t cap;         /* bytes allocated at rgb */
} bn_rgb;

/* Decoder settings. */
typedef struct {
    long long max_pixels; /* refuse width*height above this (decompression-bomb guard) */
    int dct_fast;         /* 1: libjpeg's fast integer IDCT (TF1's default), 0: accurate */
} bn_decode_opts;

#define BN_DEFAULT_MAX_PIXELS 100000000LL /* 100 megapixels */

/* Result details of one decode. */
typedef struct {
    bn_img_status status; /* outcome */
    bn_img_format format; /* what the bytes were */
    int warned;           /* 1: decoded, but the codec warned (reason holds the warning) */
    char reason[256];     /* failure reason, or the accepted warning; "" when clean */
} bn_img_result;

/* A reusable decoder: owns the file buffer and codec scratch. Not thread-safe;
 * use one per thread. */
typedef struct bn_decoder bn_decoder;
bn_decoder *bn_decoder_new(const bn_decode_opts *opts);
void bn_decoder_free(bn_decoder *d);

/* Decode bytes in memory into out (reused). Returns res->status. */
bn_img_status bn_decode_mem(bn_decoder *d, const unsigned char *buf, size_t len,
                            bn_rgb *out, bn_img_result *res);
/* Read a file and decode it. Returns res->status. */
bn_img_status bn_decode_file(bn_decoder *d, const char *path, bn_rgb *out, bn_img_result *res);
/* Read a whole file into the decoder's buffer (exposed for timing reads apart
 * from decoding). On success buf and len point into the decoder. */
bn_img_status bn_read_file(bn_decoder *d, const char *path, const unsigned char **buf,
                           size_t *len, bn_img_result *res);

void bn_rgb_free(bn_rgb *img);

/* Normalisation of the network input. */
typedef enum {
    BN_NORM_KERAS = 0,  /* x / 127.5 - 1   (Keras Inception v3 weights) */
    BN_NORM_TF2015 = 1, /* (x - 128) / 128 (the 2015 TF graph of retrain.py) */
} bn_norm;
const char *bn_norm_name(bn_norm n);
/* Parse "keras" / "tf2015"; returns 0 on success. */
int bn_norm_parse(const char *s, bn_norm *out);

/* Bilinear resize in the TF1 way (no half-pixel centres: the source coordinate
 * of output pixel x is x * in_w / out_w), computed in float on the raw 0..255
 * values, then normalised.
 * out: (out_h, out_w, 3) float, NHWC for one image. */
void bn_resize_norm(const bn_rgb *in, int out_h, int out_w, bn_norm norm, float *out);

#define BN_INPUT_SIZE 299 /* Inception v3 input height and width */

#endif
