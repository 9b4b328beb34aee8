/* imgwrite.c: see imgwrite.h.
 *
 * Both encoders write into a growing in-memory buffer and turn every codec
 * error into a -1 return with a message: libjpeg and libpng report errors by
 * calling an error handler that must not return, so each encoder installs one
 * that records the message and longjmps back to the encode function, which
 * then frees everything it allocated.
 *
 * The JPEG encoder uses its own destination manager rather than jpeg_mem_dest:
 * jpeg_mem_dest keeps the address of a grown buffer to itself until the end of
 * compression, so after an error half-way through it could be neither freed
 * nor recovered. Ours keeps the buffer in a place the error path can free.
 */
#include "io/imgwrite.h"

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* ------------------------------------------------------------------ common */

/* A growing output buffer. */
typedef struct {
    unsigned char *data; /* malloc'd bytes, NULL until the first write */
    size_t len;          /* bytes written */
    size_t cap;          /* bytes allocated at data */
} membuf;

/* Make room for at least `extra` more bytes. Returns 0, or -1 when out of memory
 * (the buffer is then unchanged). */
static int membuf_reserve(membuf *b, size_t extra) {
    if (extra <= b->cap - b->len) return 0;
    size_t need = b->len + extra;
    if (need < b->len) return -1; /* overflow */
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    unsigned char *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

/* Copy a message into err (if any room); always NUL-terminates. */
static void set_err(char *err, size_t errlen, const char *fmt, const char *arg) {
    if (!err || errlen == 0) return;
    snprintf(err, errlen, fmt, arg ? arg : "");
}

/* ------------------------------------------------------------------ JPEG */

/* Everything one JPEG encode needs; its address is handed to libjpeg, and the
 * callbacks get back to it from the cinfo pointer (cinfo is the first field). */
typedef struct {
    struct jpeg_compress_struct cinfo; /* libjpeg state (must stay first) */
    struct jpeg_error_mgr jerr;        /* libjpeg's error manager, methods overridden */
    struct jpeg_destination_mgr dest;  /* our destination manager */
    jmp_buf jmp;                       /* where the error handler returns to */
    membuf out;                        /* encoded bytes */
    char msg[JMSG_LENGTH_MAX];         /* last error/warning text from libjpeg */
} jpeg_ctx;

/* libjpeg fatal error: record the message and jump back to bn_jpeg_encode. */
static void jpeg_error_exit_cb(j_common_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)(void *)cinfo;
    (*cinfo->err->format_message)(cinfo, c->msg);
    longjmp(c->jmp, 1);
}

/* libjpeg warning/trace output: keep the text instead of printing to stderr. */
static void jpeg_output_message_cb(j_common_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)(void *)cinfo;
    (*cinfo->err->format_message)(cinfo, c->msg);
}

/* Destination: start with a buffer of a size guessed from the image. */
static void jpeg_init_dest_cb(j_compress_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)(void *)cinfo;
    size_t guess = (size_t)cinfo->image_width * cinfo->image_height / 4 + 4096;
    if (membuf_reserve(&c->out, guess)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 10);
    c->dest.next_output_byte = c->out.data + c->out.len;
    c->dest.free_in_buffer = c->out.cap - c->out.len;
}

/* Destination: the buffer is full (libjpeg's contract: all of it is used). */
static boolean jpeg_empty_dest_cb(j_compress_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)(void *)cinfo;
    c->out.len = c->out.cap;
    if (membuf_reserve(&c->out, c->out.cap)) ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 11);
    c->dest.next_output_byte = c->out.data + c->out.len;
    c->dest.free_in_buffer = c->out.cap - c->out.len;
    return TRUE;
}

/* Destination: compression finished; account for the bytes in the last chunk. */
static void jpeg_term_dest_cb(j_compress_ptr cinfo) {
    jpeg_ctx *c = (jpeg_ctx *)(void *)cinfo;
    c->out.len = c->out.cap - c->dest.free_in_buffer;
}

/* Check the settings before touching libjpeg; returns 0 or -1 with err set. */
static int jpeg_check_opts(const unsigned char *pix, int w, int h, const bn_jpeg_opts *o,
                           char *err, size_t errlen) {
    char what[96];
    if (!pix || !o) { set_err(err, errlen, "jpeg encode: %s", "no pixels or no options"); return -1; }
    if (w <= 0 || h <= 0 || w > JPEG_MAX_DIMENSION || h > JPEG_MAX_DIMENSION) {
        snprintf(what, sizeof what, "%dx%d (each side must be 1..%d)", w, h, (int)JPEG_MAX_DIMENSION);
        set_err(err, errlen, "jpeg encode: bad image size %s", what);
        return -1;
    }
    if (o->quality < 1 || o->quality > 100) {
        snprintf(what, sizeof what, "%d", o->quality);
        set_err(err, errlen, "jpeg encode: quality must be 1..100, got %s", what);
        return -1;
    }
    if (o->color < BN_JCS_YCBCR || o->color > BN_JCS_YCCK) {
        snprintf(what, sizeof what, "%d", (int)o->color);
        set_err(err, errlen, "jpeg encode: unknown colour model %s", what);
        return -1;
    }
    int defsamp = o->h_samp == 0 && o->v_samp == 0;
    if (!defsamp && (o->h_samp < 1 || o->h_samp > 4 || o->v_samp < 1 || o->v_samp > 4)) {
        snprintf(what, sizeof what, "%dx%d", o->h_samp, o->v_samp);
        set_err(err, errlen, "jpeg encode: sampling factors must be 1..4, got %s", what);
        return -1;
    }
    if (o->restart_rows < 0 || o->restart_rows > 65535) {
        snprintf(what, sizeof what, "%d", o->restart_rows);
        set_err(err, errlen, "jpeg encode: restart interval must be 0..65535 rows, got %s", what);
        return -1;
    }
    return 0;
}

int bn_jpeg_encode(const unsigned char *pix, int w, int h, const bn_jpeg_opts *o,
                   unsigned char **out, size_t *outlen, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!out || !outlen) { set_err(err, errlen, "jpeg encode: %s", "no output pointer"); return -1; }
    *out = NULL;
    *outlen = 0;
    if (jpeg_check_opts(pix, w, h, o, err, errlen)) return -1;

    int four = o->color == BN_JCS_CMYK || o->color == BN_JCS_YCCK;
    int ncomp = four ? 4 : 3;
    /* The context is on the heap so that nothing the error path reads lives in
     * a local that setjmp/longjmp could leave indeterminate. */
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) { set_err(err, errlen, "jpeg encode: %s", "out of memory"); return -1; }

    c->cinfo.err = jpeg_std_error(&c->jerr);
    c->jerr.error_exit = jpeg_error_exit_cb;
    c->jerr.output_message = jpeg_output_message_cb;
    if (setjmp(c->jmp)) {
        set_err(err, errlen, "jpeg encode: libjpeg: %s", c->msg);
        jpeg_destroy_compress(&c->cinfo);
        free(c->out.data);
        free(c);
        return -1;
    }
    jpeg_create_compress(&c->cinfo);
    c->dest.init_destination = jpeg_init_dest_cb;
    c->dest.empty_output_buffer = jpeg_empty_dest_cb;
    c->dest.term_destination = jpeg_term_dest_cb;
    c->cinfo.dest = &c->dest;

    c->cinfo.image_width = (JDIMENSION)w;
    c->cinfo.image_height = (JDIMENSION)h;
    c->cinfo.input_components = ncomp;
    c->cinfo.in_color_space = four ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c->cinfo);
    static const J_COLOR_SPACE target[] = {JCS_YCbCr, JCS_GRAYSCALE, JCS_CMYK, JCS_YCCK};
    /* RGB input to a GRAYSCALE file: libjpeg converts to luma itself. */
    jpeg_set_colorspace(&c->cinfo, target[o->color]);
    jpeg_set_quality(&c->cinfo, o->quality, TRUE);

    /* Sampling: component 0 gets the requested factors, the others 1x1,
     * except YCCK's K, which is luminance-like and follows Y (as in libjpeg's
     * own YCCK defaults). 0,0 means 4:2:0 for YCbCr/YCCK, 1x1 for gray/CMYK. */
    int hs = o->h_samp, vs = o->v_samp;
    if (hs == 0 && vs == 0) {
        int sub = o->color == BN_JCS_YCBCR || o->color == BN_JCS_YCCK;
        hs = vs = sub ? 2 : 1;
    }
    for (int i = 0; i < c->cinfo.num_components; i++) {
        int full = i == 0 || (o->color == BN_JCS_YCCK && i == 3);
        c->cinfo.comp_info[i].h_samp_factor = full ? hs : 1;
        c->cinfo.comp_info[i].v_samp_factor = full ? vs : 1;
    }
    if (o->progressive) jpeg_simple_progression(&c->cinfo);
    if (o->arithmetic) c->cinfo.arith_code = TRUE;
    if (o->optimize && !o->arithmetic) c->cinfo.optimize_coding = TRUE;
    if (o->restart_rows > 0) c->cinfo.restart_in_rows = o->restart_rows;

    jpeg_start_compress(&c->cinfo, TRUE);
    size_t stride = (size_t)w * (size_t)ncomp;
    while (c->cinfo.next_scanline < c->cinfo.image_height) {
        JSAMPROW rows[16];
        JDIMENSION n = 0;
        for (; n < 16 && c->cinfo.next_scanline + n < c->cinfo.image_height; n++)
            rows[n] = (JSAMPROW)(pix + (size_t)(c->cinfo.next_scanline + n) * stride);
        /* libjpeg does not write through the row pointers; the cast drops const. */
        jpeg_write_scanlines(&c->cinfo, rows, n);
    }
    jpeg_finish_compress(&c->cinfo);
    jpeg_destroy_compress(&c->cinfo);

    *out = c->out.data;
    *outlen = c->out.len;
    free(c);
    return 0;
}

/* ------------------------------------------------------------------ PNG */

/* State one PNG encode shares with the libpng callbacks. */
typedef struct {
    membuf out;     /* encoded bytes */
    char msg[256];  /* last error text from libpng */
} png_ctx;

/* libpng fatal error: keep the message, then return to the setjmp point. */
static void png_error_cb(png_structp png, png_const_charp m) {
    png_ctx *c = png_get_error_ptr(png);
    if (c) snprintf(c->msg, sizeof c->msg, "%s", m ? m : "unknown error");
    png_longjmp(png, 1);
}

/* libpng warning: ignored (the encoder's input is always well-formed). */
static void png_warning_cb(png_structp png, png_const_charp m) {
    (void)png;
    (void)m;
}

/* Write callback: append to the growing buffer. */
static void png_write_cb(png_structp png, png_bytep data, size_t len) {
    png_ctx *c = png_get_io_ptr(png);
    if (membuf_reserve(&c->out, len)) png_error(png, "out of memory growing the output buffer");
    memcpy(c->out.data + c->out.len, data, len);
    c->out.len += len;
}

/* Flush callback: nothing to flush in memory. */
static void png_flush_cb(png_structp png) { (void)png; }

/* Map RGB pixels to palette indices. pal receives up to 256 colours in order of
 * first appearance; idx receives (h, w) indices. Returns the number of colours,
 * or -1 when there are more than 256. */
static int build_palette(const unsigned char *rgb, size_t npix, png_color *pal, unsigned char *idx) {
    /* Open-addressing hash of 24-bit colours: 1024 slots for at most 256 keys. */
    enum { SLOTS = 1024 };
    uint32_t key[SLOTS];  /* colour + 1 (0 = empty slot) */
    unsigned char val[SLOTS]; /* palette index of the colour in key[] */
    memset(key, 0, sizeof key);
    int n = 0;
    uint32_t last = 0;   /* previous pixel's colour + 1: runs skip the hash */
    unsigned char lastv = 0;
    for (size_t i = 0; i < npix; i++) {
        const unsigned char *p = rgb + 3 * i;
        uint32_t k = ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) + 1;
        if (k == last) { idx[i] = lastv; continue; }
        uint32_t s = (k * 2654435761u) >> 22; /* 10 bits */
        while (key[s] && key[s] != k) s = (s + 1) & (SLOTS - 1);
        if (!key[s]) {
            if (n == 256) return -1;
            key[s] = k;
            val[s] = (unsigned char)n;
            pal[n].red = p[0];
            pal[n].green = p[1];
            pal[n].blue = p[2];
            n++;
        }
        idx[i] = val[s];
        last = k;
        lastv = val[s];
    }
    return n;
}

/* What png_write_job needs; everything it frees on error lives in ctx. */
typedef struct {
    png_ctx *ctx;             /* output buffer and error text */
    png_bytep *rows;          /* h row pointers (uint8 samples or palette indices) */
    png_uint_32 w, h;         /* pixels */
    int depth;                /* 8 or 16 bits per sample */
    int color_type;           /* PNG_COLOR_TYPE_* */
    int interlace;            /* PNG_INTERLACE_NONE or PNG_INTERLACE_ADAM7 */
    const png_color *palette; /* PLTE entries for palette images, else NULL */
    int ncolors;              /* entries in palette */
    int swap16;               /* 1: 16-bit input in host order (swap on little-endian) */
} png_job;

/* Run libpng over a prepared job, appending the file to job->ctx->out.
 * Returns 0, or -1 with the reason in job->ctx->msg (the caller frees the
 * buffer). Kept apart from bn_png_encode so that no local variable of this
 * function changes between setjmp and a longjmp. */
static int png_write_job(const png_job *job) {
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job->ctx, png_error_cb, png_warning_cb);
    if (!png) {
        snprintf(job->ctx->msg, sizeof job->ctx->msg, "png_create_write_struct failed");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(job->ctx->msg, sizeof job->ctx->msg, "png_create_info_struct failed");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, job->ctx, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, job->w, job->h, job->depth, job->color_type, job->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (job->palette) png_set_PLTE(png, info, job->palette, job->ncolors);
    png_write_info(png, info);
    if (job->swap16) {
        /* PNG stores 16-bit samples big-endian; the input is in host order. */
        const uint16_t one = 1;
        if (*(const unsigned char *)&one == 1) png_set_swap(png);
    }
    /* png_write_image runs the Adam7 passes itself when the image is interlaced. */
    png_write_image(png, job->rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int bn_png_encode(const void *pix, int w, int h, const bn_png_opts *o,
                  unsigned char **out, size_t *outlen, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!out || !outlen) { set_err(err, errlen, "png encode: %s", "no output pointer"); return -1; }
    *out = NULL;
    *outlen = 0;
    if (!pix || !o) { set_err(err, errlen, "png encode: %s", "no pixels or no options"); return -1; }
    char what[96];
    if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000) {
        snprintf(what, sizeof what, "%dx%d", w, h);
        set_err(err, errlen, "png encode: bad image size %s (each side must be 1..1000000)", what);
        return -1;
    }
    /* Channels and libpng colour type per bn_png_color. */
    static const int chans[] = {3, 4, 1, 2, 3};
    static const int ctype[] = {PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA, PNG_COLOR_TYPE_GRAY,
                                PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_PALETTE};
    if (o->color < BN_PNG_RGB || o->color > BN_PNG_PALETTE) {
        snprintf(what, sizeof what, "%d", (int)o->color);
        set_err(err, errlen, "png encode: unknown colour type %s", what);
        return -1;
    }
    int pal_mode = o->color == BN_PNG_PALETTE;
    if (pal_mode && o->depth16) {
        set_err(err, errlen, "png encode: %s", "16-bit samples are not possible with a palette");
        return -1;
    }
    int bps = o->depth16 ? 2 : 1;
    size_t npix = (size_t)w * (size_t)h;
    size_t in_stride = (size_t)w * (size_t)chans[o->color] * (size_t)bps;

    /* Palette, indices and row pointers are prepared before libpng runs. */
    png_color palette[256];
    int ncolors = 0;
    unsigned char *idx = NULL;
    if (pal_mode) {
        idx = malloc(npix);
        if (!idx) { set_err(err, errlen, "png encode: %s", "out of memory for palette indices"); return -1; }
        ncolors = build_palette(pix, npix, palette, idx);
        if (ncolors < 0) {
            free(idx);
            set_err(err, errlen, "png encode: %s", "more than 256 distinct colours; cannot use a palette");
            return -1;
        }
    }
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    png_ctx *c = calloc(1, sizeof *c);
    if (!rows || !c) {
        free(rows);
        free(c);
        free(idx);
        set_err(err, errlen, "png encode: %s", "out of memory");
        return -1;
    }
    for (int y = 0; y < h; y++)
        rows[y] = pal_mode ? idx + (size_t)y * (size_t)w
                           : (png_bytep)((const unsigned char *)pix + (size_t)y * in_stride);

    png_job job = {c, rows, (png_uint_32)w, (png_uint_32)h, o->depth16 ? 16 : 8, ctype[o->color],
                   o->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                   pal_mode ? palette : NULL, ncolors, o->depth16};
    int rc = png_write_job(&job);
    if (rc) {
        set_err(err, errlen, "png encode: libpng: %s", c->msg);
        free(c->out.data);
    } else {
        *out = c->out.data;
        *outlen = c->out.len;
    }
    free(rows);
    free(c);
    free(idx);
    return rc;
}

/* ------------------------------------------------------------------ files */

int bn_write_file(const char *path, const unsigned char *buf, size_t len, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!path || (!buf && len)) { set_err(err, errlen, "write: %s", "no path or no data"); return -1; }
    FILE *f = fopen(path, "wb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    if (len && fwrite(buf, 1, len, f) != len) {
        int e = errno;
        fclose(f);
        remove(path);
        if (err && errlen) snprintf(err, errlen, "cannot write '%s': %s", path, e ? strerror(e) : "short write");
        return -1;
    }
    if (fclose(f) != 0) {
        int e = errno;
        remove(path);
        if (err && errlen) snprintf(err, errlen, "cannot write '%s' (close): %s", path, strerror(e));
        return -1;
    }
    return 0;
}
