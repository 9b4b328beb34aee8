/* decode.c: JPEG (libjpeg-turbo) and PNG (libpng) to 8-bit RGB.
 *
 * Policy for what a codec reports (docs/images.md):
 *  - errors become a failed status with the codec's message;
 *  - JPEG warnings that mean lost image data (entropy data ran out, bad
 *    Huffman code, lost sync) make the file fail as truncated or corrupt;
 *  - other warnings (a missing end marker, extraneous bytes between markers)
 *    are accepted and recorded in the reason.
 */
#include "io/image.h"
#include "pipeline/log.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

struct bn_decoder {
    bn_decode_opts opts;  /* settings */
    unsigned char *file;  /* bytes of the last file read */
    size_t filecap;       /* bytes allocated at file */
    unsigned char *tmp;   /* scratch rows (CMYK, 16-bit PNG) */
    size_t tmpcap;        /* bytes allocated at tmp */
};

static const char *status_names[BN_IMG_NSTATUS] = {
    "ok", "zero-bytes", "truncated", "not-an-image", "unsupported",
    "corrupt", "too-large", "unreadable", "out-of-memory",
};

const char *bn_img_status_name(bn_img_status s) {
    return (s >= 0 && s < BN_IMG_NSTATUS) ? status_names[s] : "unknown";
}

const char *bn_format_name(bn_img_format f) {
    return f == BN_FMT_JPEG ? "jpeg" : f == BN_FMT_PNG ? "png" : "unknown";
}

bn_img_format bn_sniff_format(const unsigned char *b, size_t n) {
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return BN_FMT_JPEG;
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 8 && memcmp(b, png_sig, 8) == 0) return BN_FMT_PNG;
    return BN_FMT_UNKNOWN;
}

bn_decoder *bn_decoder_new(const bn_decode_opts *opts) {
    bn_decoder *d = callocCheck(1, sizeof *d);
    if (opts) d->opts = *opts;
    if (d->opts.max_pixels <= 0) d->opts.max_pixels = BN_DEFAULT_MAX_PIXELS;
    return d;
}

void bn_decoder_free(bn_decoder *d) {
    if (!d) return;
    free(d->file);
    free(d->tmp);
    free(d);
}

void bn_rgb_free(bn_rgb *img) {
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

static bn_img_status set_res(bn_img_result *r, bn_img_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bn_img_status set_res(bn_img_result *r, bn_img_status s, const char *fmt, ...) {
    r->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
    return s;
}

/* Grow a buffer to at least n bytes; 0 on success, -1 when memory runs out
 * (an oversized image is a per-file failure, not a fatal one). */
static int grow(unsigned char **p, size_t *cap, size_t n) {
    if (*cap >= n) return 0;
    unsigned char *q = realloc(*p, n);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

static bn_img_status check_dims(bn_decoder *d, bn_img_result *res, long long w, long long h) {
    if (w <= 0 || h <= 0)
        return set_res(res, BN_IMG_CORRUPT, "invalid dimensions %lldx%lld", w, h);
    if (w * h > d->opts.max_pixels)
        return set_res(res, BN_IMG_TOO_LARGE, "dimensions %lldx%lld exceed the pixel limit of %lld (--max-pixels)",
                       w, h, d->opts.max_pixels);
    return BN_IMG_OK;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct {
    struct jpeg_error_mgr pub; /* libjpeg's error manager (must be first) */
    jmp_buf jump;              /* where errors land */
    int nwarn;                 /* warnings seen */
    int data_lost;             /* a warning that means image data was lost */
    int hit_eof;               /* the input ended early (libjpeg inserted EOI) */
    char first_warning[JMSG_LENGTH_MAX]; /* text of the first accepted warning */
    char lost_warning[JMSG_LENGTH_MAX];  /* text of the first data-loss warning */
    int too_many_scans;        /* the scan limit stopped the decoder */
} jerr_t;

/* Most scans a progressive JPEG may have. Encoders write about 10 (libjpeg's
 * simple progression writes 10 for colour); a legal file can have thousands,
 * each costing a pass over every coefficient, so a crafted one could take
 * minutes to decode a small image. */
#define BN_MAX_JPEG_SCANS 100

/* libjpeg calls this while it reads the scans of a multi-scan file (in
 * jpeg_start_decompress): stop at the scan limit before decoding further. */
static void jpeg_on_progress(j_common_ptr cinfo) {
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->input_scan_number > BN_MAX_JPEG_SCANS) {
        jerr_t *e = (jerr_t *)cinfo->err;
        e->too_many_scans = 1;
        longjmp(e->jump, 1);
    }
}

static void jpeg_on_error(j_common_ptr cinfo) {
    jerr_t *e = (jerr_t *)cinfo->err;
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jerr_t *e = (jerr_t *)cinfo->err;
    if (level >= 0) return; /* trace messages */
    int code = e->pub.msg_code;
    e->nwarn++;
    if (code == JWRN_JPEG_EOF) e->hit_eof = 1;
    int lost = (code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC ||
                code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_PROGRESSION);
    char msg[JMSG_LENGTH_MAX];
    e->pub.format_message(cinfo, msg);
    if (lost && !e->data_lost) {
        e->data_lost = 1;
        snprintf(e->lost_warning, sizeof e->lost_warning, "%s", msg);
    }
    if (!lost && !e->first_warning[0]) snprintf(e->first_warning, sizeof e->first_warning, "%s", msg);
    e->pub.num_warnings++;
}

/* Adobe-style CMYK as libjpeg returns it (stored inverted) to RGB: the
 * channel is C*K/255, the rule TensorFlow and most viewers use. */
static void cmyk_row_to_rgb(const unsigned char *cmyk, unsigned char *rgb, int w) {
    for (int x = 0; x < w; x++) {
        unsigned k = cmyk[4 * x + 3];
        rgb[3 * x + 0] = (unsigned char)((cmyk[4 * x + 0] * k + 127) / 255);
        rgb[3 * x + 1] = (unsigned char)((cmyk[4 * x + 1] * k + 127) / 255);
        rgb[3 * x + 2] = (unsigned char)((cmyk[4 * x + 2] * k + 127) / 255);
    }
}

static bn_img_status decode_jpeg(bn_decoder *d, const unsigned char *buf, size_t len,
                                 bn_rgb *out, bn_img_result *res) {
    struct jpeg_decompress_struct cinfo;
    jerr_t err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_on_error;
    err.pub.emit_message = jpeg_on_message;
    /* Volatile: read after a longjmp. */
    volatile int created = 0;
    if (setjmp(err.jump)) {
        char msg[JMSG_LENGTH_MAX];
        err.pub.format_message((j_common_ptr)&cinfo, msg);
        int code = err.pub.msg_code;
        if (created) jpeg_destroy_decompress(&cinfo);
        if (err.too_many_scans)
            return set_res(res, BN_IMG_TOO_LARGE,
                           "too many scans: the progressive JPEG has more than %d (the limit; encoders write about 10)",
                           BN_MAX_JPEG_SCANS);
        if (code == JERR_IMAGE_TOO_BIG) /* raised from the frame header, before any allocation */
            return set_res(res, BN_IMG_TOO_LARGE, "dimensions %ux%u exceed libjpeg's limit of %d pixels a side",
                           (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, (int)JPEG_MAX_DIMENSION);
        if (code == JERR_EMPTY_IMAGE && (cinfo.image_width == 0 || cinfo.image_height == 0))
            return set_res(res, BN_IMG_CORRUPT, "corrupt JPEG: invalid dimensions %ux%u (%s)",
                           (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, msg);
        if (code == JERR_EMPTY_IMAGE)
            return set_res(res, BN_IMG_CORRUPT, "corrupt JPEG: the frame header lists no components");
        if (code == JERR_BAD_PRECISION)
            return set_res(res, BN_IMG_UNSUPPORTED, "unsupported precision: %s (only 8-bit JPEG is supported)", msg);
        if (code == JERR_OUT_OF_MEMORY)
            return set_res(res, BN_IMG_NOMEM, "out of memory: %s", msg);
        if (code == JERR_NO_IMAGE || code == JERR_INPUT_EOF || code == JERR_INPUT_EMPTY)
            return set_res(res, BN_IMG_TRUNCATED, "truncated: %s", msg);
        if (code == JERR_NOT_COMPILED || code == JERR_CONVERSION_NOTIMPL || code == JERR_BAD_COMPONENT_ID ||
            code == JERR_SOF_UNSUPPORTED)
            return set_res(res, BN_IMG_UNSUPPORTED, "unsupported JPEG: %s", msg);
        return set_res(res, BN_IMG_CORRUPT, "corrupt JPEG: %s", msg);
    }
    jpeg_create_decompress(&cinfo);
    created = 1;
    struct jpeg_progress_mgr progress;
    memset(&progress, 0, sizeof progress);
    progress.progress_monitor = jpeg_on_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (check_dims(d, res, cinfo.image_width, cinfo.image_height) != BN_IMG_OK) {
        jpeg_destroy_decompress(&cinfo);
        return res->status;
    }
    int cmyk = (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK);
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo.dct_method = d->opts.dct_fast ? JDCT_IFAST : JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (grow(&out->rgb, &out->cap, (size_t)w * h * 3) ||
        (cmyk && grow(&d->tmp, &d->tmpcap, (size_t)w * 4))) {
        jpeg_destroy_decompress(&cinfo);
        return set_res(res, BN_IMG_NOMEM, "out of memory for a %dx%d image", w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned y = cinfo.output_scanline;
        JSAMPROW rows[4];
        int nr = 0;
        if (cmyk) {
            rows[0] = d->tmp;
            nr = 1;
        } else {
            for (; nr < 4 && y + (unsigned)nr < cinfo.output_height; nr++)
                rows[nr] = out->rgb + (size_t)(y + (unsigned)nr) * w * 3;
        }
        JDIMENSION got = jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)nr);
        if (cmyk && got == 1) cmyk_row_to_rgb(d->tmp, out->rgb + (size_t)y * w * 3, w);
        if (got == 0) break; /* suspension cannot happen with a memory source */
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    created = 0;
    out->width = w;
    out->height = h;
    if (err.data_lost) {
        if (err.hit_eof)
            return set_res(res, BN_IMG_TRUNCATED, "truncated: image data ends early (%s)", err.lost_warning);
        return set_res(res, BN_IMG_CORRUPT, "corrupt JPEG data: %s", err.lost_warning);
    }
    res->status = BN_IMG_OK;
    if (err.nwarn) {
        res->warned = 1;
        if (err.hit_eof)
            snprintf(res->reason, sizeof res->reason, "accepted warning: missing end-of-image marker");
        else
            snprintf(res->reason, sizeof res->reason, "accepted warning: %.200s", err.first_warning);
    }
    return BN_IMG_OK;
}

/* ------------------------------------------------------------------ PNG */

typedef struct {
    const unsigned char *buf; /* the file */
    size_t len, pos;          /* size and read position */
    int eof;                  /* a read went past the end */
    jmp_buf jump;             /* where errors land */
    char msg[160];            /* libpng's error text */
    char warning[160];        /* libpng's first warning (says why IHDR is invalid) */
} png_src_t;

static void png_on_error(png_structp p, png_const_charp msg) {
    png_src_t *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    longjmp(s->jump, 1);
}

static void png_on_warning(png_structp p, png_const_charp msg) {
    /* Ancillary-chunk warnings (bad iCCP, ...) do not affect pixels; the first
     * is kept because libpng explains an "Invalid IHDR data" error in them. */
    png_src_t *s = png_get_error_ptr(p);
    if (!s->warning[0]) snprintf(s->warning, sizeof s->warning, "%s", msg);
}

/* Chunks bneck never uses and that can be large or compressed (a zTXt or
 * iCCP chunk can inflate to gigabytes): libpng skips them unread, checking
 * only their CRC. Five bytes per name, as png_set_keep_unknown_chunks wants. */
static const png_byte k_png_skip[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0";
#define BN_PNG_NSKIP 6
/* Most bytes libpng may allocate for one ancillary chunk, and most ancillary
 * chunks kept (libpng's own defaults are 8 MB and 1000). */
#define BN_PNG_CHUNK_MAX (1u << 20)
#define BN_PNG_CHUNK_CACHE 256

static void png_read_mem(png_structp p, png_bytep data, png_size_t n) {
    png_src_t *s = png_get_io_ptr(p);
    if (n > s->len - s->pos) {
        s->eof = 1;
        png_error(p, "unexpected end of file");
    }
    memcpy(data, s->buf + s->pos, n);
    s->pos += n;
}

static bn_img_status decode_png(bn_decoder *d, const unsigned char *buf, size_t len,
                                bn_rgb *out, bn_img_result *res) {
    png_src_t src;
    memset(&src, 0, sizeof src);
    src.buf = buf;
    src.len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return set_res(res, BN_IMG_NOMEM, "out of memory creating the PNG reader");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return set_res(res, BN_IMG_NOMEM, "out of memory creating the PNG reader");
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(src.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        if (src.eof) return set_res(res, BN_IMG_TRUNCATED, "truncated: PNG data ends early");
        if (strstr(src.msg, "IHDR") && src.warning[0])
            return set_res(res, BN_IMG_CORRUPT, "corrupt PNG: %s (%s)", src.msg, src.warning);
        return set_res(res, BN_IMG_CORRUPT, "corrupt PNG: %s", src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    /* The pixel limit is ours; lift libpng's own 1M-pixel-per-side user limit. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_chunk_malloc_max(png, BN_PNG_CHUNK_MAX);
    png_set_chunk_cache_max(png, BN_PNG_CHUNK_CACHE);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, k_png_skip, BN_PNG_NSKIP);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_dims(d, res, w, h) != BN_IMG_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return res->status;
    }
    int ct = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_scale_16(png); /* rounds: v * 255 / 65535 */
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    /* Alpha is dropped, not composited: the colour values are kept as stored. */
    if (ct & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected row layout after conversion to RGB");
    if (grow(&out->rgb, &out->cap, (size_t)w * h * 3)) {
        png_destroy_read_struct(&png, &info, NULL);
        return set_res(res, BN_IMG_NOMEM, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
    }
    rows = malloc(sizeof(png_bytep) * h);
    if (!rows) {
        png_destroy_read_struct(&png, &info, NULL);
        return set_res(res, BN_IMG_NOMEM, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = out->rgb + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = (int)w;
    out->height = (int)h;
    res->status = BN_IMG_OK;
    return BN_IMG_OK;
}

/* ------------------------------------------------------------------ entry points */

bn_img_status bn_decode_mem(bn_decoder *d, const unsigned char *buf, size_t len,
                            bn_rgb *out, bn_img_result *res) {
    memset(res, 0, sizeof *res);
    if (len == 0) return set_res(res, BN_IMG_ZERO_BYTES, "the file is empty (0 bytes)");
    res->format = bn_sniff_format(buf, len);
    switch (res->format) {
    case BN_FMT_JPEG: return decode_jpeg(d, buf, len, out, res);
    case BN_FMT_PNG: return decode_png(d, buf, len, out, res);
    default:
        if (len < 8 && ((len >= 1 && buf[0] == 0xFF) || (len >= 1 && buf[0] == 0x89)))
            return set_res(res, BN_IMG_TRUNCATED, "truncated: only %zu bytes", len);
        return set_res(res, BN_IMG_NOT_IMAGE, "not an image: the leading bytes are neither JPEG nor PNG");
    }
}

bn_img_status bn_read_file(bn_decoder *d, const char *path, const unsigned char **buf,
                           size_t *len, bn_img_result *res) {
    memset(res, 0, sizeof *res);
    /* O_NONBLOCK: a FIFO named like an image must not block the open (it is
     * refused below as not a regular file); regular files ignore the flag. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return set_res(res, BN_IMG_UNREADABLE, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return set_res(res, BN_IMG_UNREADABLE, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        const char *what = S_ISDIR(st.st_mode)    ? "a folder"
                           : S_ISFIFO(st.st_mode) ? "a FIFO"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                           : (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) ? "a device"
                                                                           : "not a file";
        return set_res(res, BN_IMG_UNREADABLE, "not a regular file (%s)", what);
    }
    /* A file bigger than any image within the pixel limit can need (16-bit
     * RGBA stored uncompressed: 8 bytes a pixel, plus room for metadata) is
     * refused unread: reading a huge file into memory could get the rank
     * killed for memory instead of failing one image. */
    long long maxbytes = 8 * d->opts.max_pixels + (64LL << 20);
    if ((long long)st.st_size > maxbytes) {
        close(fd);
        return set_res(res, BN_IMG_TOO_LARGE,
                       "the file is %lld bytes, more than an image within the pixel limit can need (%lld; --max-pixels)",
                       (long long)st.st_size, maxbytes);
    }
    size_t n = (size_t)st.st_size;
    if (grow(&d->file, &d->filecap, n + 1)) {
        close(fd);
        return set_res(res, BN_IMG_NOMEM, "out of memory reading %zu bytes", n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, d->file + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return set_res(res, BN_IMG_UNREADABLE, "read error: %s", strerror(e));
        }
        if (r == 0) break; /* the file shrank while reading */
        got += (size_t)r;
    }
    close(fd);
    *buf = d->file;
    *len = got;
    return BN_IMG_OK;
}

bn_img_status bn_decode_file(bn_decoder *d, const char *path, bn_rgb *out, bn_img_result *res) {
    const unsigned char *buf;
    size_t len;
    if (bn_read_file(d, path, &buf, &len, res) != BN_IMG_OK) return res->status;
    return bn_decode_mem(d, buf, len, out, res);
}
