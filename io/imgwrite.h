/* imgwrite.h: JPEG and PNG encoders with the variants tests and mkcorpus need. */
#ifndef BN_IMGWRITE_H
#define BN_IMGWRITE_H

#include <stddef.h>

/* JPEG colour model of the encoded file. */
typedef enum {
    BN_JCS_YCBCR = 0, /* colour, YCbCr (the usual) */
    BN_JCS_GRAY = 1,  /* one channel; input is RGB, converted to luma */
    BN_JCS_CMYK = 2,  /* 4 channels stored as given (Adobe-style, inverted) */
    BN_JCS_YCCK = 3,  /* CMYK transformed to YCCK */
} bn_jpeg_color;

/* JPEG encoder settings. Zero-initialised means: quality 0 is invalid, so
 * callers set quality; everything else defaults to baseline 4:2:0 YCbCr. */
typedef struct {
    int quality;        /* 1..100 */
    bn_jpeg_color color;/* colour model */
    int h_samp, v_samp; /* luma sampling factors: 1,1 = 4:4:4; 2,1 = 4:2:2; 2,2 = 4:2:0;
                           0,0 = 4:2:0 for YCbCr/YCCK, 1x1 for gray and CMYK */
    int progressive;    /* 1: progressive scans */
    int arithmetic;     /* 1: arithmetic coding instead of Huffman */
    int restart_rows;   /* >0: a restart marker every this many MCU rows */
    int optimize;       /* 1: optimised Huffman tables */
} bn_jpeg_opts;

/* Encode an image to JPEG in memory.
 * pix: (h, w, 3) uint8 RGB, or (h, w, 4) uint8 CMYK when color is CMYK/YCCK.
 * On success *out is a malloc'd buffer of *outlen bytes; returns 0. On failure
 * returns -1 and writes a reason into err. */
int bn_jpeg_encode(const unsigned char *pix, int w, int h, const bn_jpeg_opts *o,
                   unsigned char **out, size_t *outlen, char *err, size_t errlen);

/* PNG colour types for the encoder. */
typedef enum {
    BN_PNG_RGB = 0,     /* 3 channels */
    BN_PNG_RGBA = 1,    /* 4 channels */
    BN_PNG_GRAY = 2,    /* 1 channel */
    BN_PNG_GRAYA = 3,   /* 2 channels */
    BN_PNG_PALETTE = 4, /* indexed; input is RGB with at most 256 distinct colours */
} bn_png_color;

typedef struct {
    bn_png_color color; /* colour type */
    int depth16;        /* 1: 16 bits per sample (not for PALETTE) */
    int interlace;      /* 1: Adam7 */
} bn_png_opts;

/* Encode to PNG in memory.
 * pix: (h, w, C) samples, C by colour type (PALETTE takes RGB, C=3); uint8, or
 * uint16 in host order when depth16. Returns 0, or -1 with a reason in err. */
int bn_png_encode(const void *pix, int w, int h, const bn_png_opts *o,
                  unsigned char **out, size_t *outlen, char *err, size_t errlen);

/* Write a buffer to a file; 0 on success, -1 with a reason in err. */
int bn_write_file(const char *path, const unsigned char *buf, size_t len, char *err, size_t errlen);

#endif
