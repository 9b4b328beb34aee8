/* test_decode.c: every JPEG and PNG variant bneck must read, and every kind
 * of bad file it must reject with the right status. All inputs are made here
 * with the encoders in io/imgwrite.c. */
#include "io/image.h"
#include "io/imgwrite.h"
#include "tests/testutil.h"

#include <jpeglib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define W 67 /* odd sizes exercise partial MCUs */
#define H 45

static unsigned char src[H * W * 3];  /* (H, W, 3) RGB test picture */
static unsigned char cmyk[H * W * 4]; /* (H, W, 4) stored CMYK */
static bn_decoder *dec;
static bn_rgb img;

/* A smooth picture with some edges: compresses like a photo. */
static void make_picture(void) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            unsigned char *p = src + (y * W + x) * 3;
            p[0] = (unsigned char)(40 + 3 * x);
            p[1] = (unsigned char)(30 + 4 * y);
            p[2] = (unsigned char)((x - 30) * (x - 30) + (y - 20) * (y - 20) < 150 ? 220 : 60);
            unsigned char *q = cmyk + (y * W + x) * 4;
            q[0] = (unsigned char)(255 - 2 * x);
            q[1] = (unsigned char)(200 + y);
            q[2] = (unsigned char)(100 + x + y);
            q[3] = (unsigned char)(180 + y);
        }
}

/* Mean absolute difference between the decoded image and an expected RGB. */
static double mad(const bn_rgb *a, const unsigned char *want) {
    double s = 0;
    for (size_t i = 0; i < (size_t)W * H * 3; i++) s += fabs((double)a->rgb[i] - want[i]);
    return s / (W * H * 3);
}

static unsigned char *encode_jpeg(const bn_jpeg_opts *o, size_t *len) {
    unsigned char *buf = NULL;
    char err[256];
    int rc = bn_jpeg_encode(o->color >= BN_JCS_CMYK ? cmyk : src, W, H, o, &buf, len, err, sizeof err);
    if (rc) {
        fprintf(stderr, "encoder failed: %s\n", err);
        exit(1);
    }
    return buf;
}

/* Decode a JPEG variant and compare with what it encodes, within tol. */
static void jpeg_case(const char *name, bn_jpeg_opts o, double tol) {
    size_t len;
    unsigned char *buf = encode_jpeg(&o, &len);
    bn_img_result r;
    bn_img_status s = bn_decode_mem(dec, buf, len, &img, &r);
    CHECK(s == BN_IMG_OK, "%s: status %s (%s)", name, bn_img_status_name(s), r.reason);
    CHECK(r.format == BN_FMT_JPEG && !r.warned, "%s: format/warning", name);
    if (s == BN_IMG_OK) {
        CHECK(img.width == W && img.height == H, "%s: size %dx%d", name, img.width, img.height);
        unsigned char want[H * W * 3];
        if (o.color == BN_JCS_GRAY) {
            for (int i = 0; i < W * H; i++) {
                double l = 0.299 * src[3 * i] + 0.587 * src[3 * i + 1] + 0.114 * src[3 * i + 2];
                want[3 * i] = want[3 * i + 1] = want[3 * i + 2] = (unsigned char)lround(l);
            }
            int grey = 1;
            for (int i = 0; i < W * H; i++) grey &= img.rgb[3 * i] == img.rgb[3 * i + 1] && img.rgb[3 * i] == img.rgb[3 * i + 2];
            CHECK(grey, "%s: grayscale must come out with R=G=B", name);
        } else if (o.color >= BN_JCS_CMYK) {
            for (int i = 0; i < W * H; i++)
                for (int c = 0; c < 3; c++) want[3 * i + c] = (unsigned char)((cmyk[4 * i + c] * cmyk[4 * i + 3] + 127) / 255);
        } else {
            memcpy(want, src, sizeof want);
        }
        double m = mad(&img, want);
        CHECK(m < tol, "%s: mean abs error %.3f >= %.3f", name, m, tol);
    }
    free(buf);
}

static unsigned char *encode_png(const bn_png_opts *o, const void *pix, size_t *len) {
    unsigned char *buf = NULL;
    char err[256];
    if (bn_png_encode(pix, W, H, o, &buf, len, err, sizeof err)) {
        fprintf(stderr, "png encoder failed: %s\n", err);
        exit(1);
    }
    return buf;
}

/* Decode a PNG and require exactly the expected RGB. */
static void png_case(const char *name, bn_png_opts o, const void *pix, const unsigned char *want) {
    size_t len;
    unsigned char *buf = encode_png(&o, pix, &len);
    bn_img_result r;
    bn_img_status s = bn_decode_mem(dec, buf, len, &img, &r);
    CHECK(s == BN_IMG_OK, "%s: status %s (%s)", name, bn_img_status_name(s), r.reason);
    CHECK(r.format == BN_FMT_PNG, "%s: format", name);
    if (s == BN_IMG_OK) {
        CHECK(img.width == W && img.height == H, "%s: size", name);
        CHECK(memcmp(img.rgb, want, (size_t)W * H * 3) == 0, "%s: pixels differ", name);
    }
    free(buf);
}

static void expect(const char *name, const unsigned char *buf, size_t len, bn_img_status want, const char *needle) {
    bn_img_result r;
    bn_img_status s = bn_decode_mem(dec, buf, len, &img, &r);
    CHECK(s == want, "%s: got %s (%s), want %s", name, bn_img_status_name(s), r.reason, bn_img_status_name(want));
    CHECK(!needle || strstr(r.reason, needle), "%s: reason '%s' lacks '%s'", name, r.reason, needle);
    CHECK(s == BN_IMG_OK || r.reason[0], "%s: a failure must carry a reason", name);
}

/* Offset of the first marker 0xFF code in a JPEG, or 0. */
static size_t find_marker(const unsigned char *b, size_t n, unsigned char code) {
    for (size_t i = 2; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == code) return i;
    return 0;
}

/* A legal progressive grey JPEG of the source picture with nscans scans
 * (64..127): a DC scan, a first scan (Al=1) of each AC coefficient, then
 * nscans - 64 refinement scans of coefficients 1, 2, ... */
static unsigned char *jpeg_with_scans(int nscans, size_t *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = W;
    c.image_height = H;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, JCS_GRAYSCALE);
    static jpeg_scan_info scans[127];
    int k = 0;
    scans[k++] = (jpeg_scan_info){1, {0}, 0, 0, 0, 0};
    for (int i = 1; i < 64; i++) scans[k++] = (jpeg_scan_info){1, {0}, i, i, 0, 1};
    for (int i = 1; k < nscans; i++) scans[k++] = (jpeg_scan_info){1, {0}, i, i, 1, 0};
    c.scan_info = scans;
    c.num_scans = nscans;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = src + (size_t)c.next_scanline * W * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *len = n;
    return out;
}

/* CRC-32 of PNG chunks (bit-by-bit: the tests need only a few). */
static uint32_t crc32_of(const unsigned char *b, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

/* Set the width and height in a PNG's IHDR (bytes 16..23) and fix its CRC. */
static void png_set_size(unsigned char *b, uint32_t w, uint32_t h) {
    for (int i = 0; i < 4; i++) {
        b[16 + i] = (unsigned char)(w >> (24 - 8 * i));
        b[20 + i] = (unsigned char)(h >> (24 - 8 * i));
    }
    uint32_t crc = crc32_of(b + 12, 17); /* "IHDR" + 13 data bytes */
    for (int i = 0; i < 4; i++) b[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
}

int main(void) {
    make_picture();
    bn_decode_opts dopts = {.max_pixels = BN_DEFAULT_MAX_PIXELS};
    dec = bn_decoder_new(&dopts);

    /* ---- JPEG variants: all must decode to RGB close to the source. */
    jpeg_case("baseline 4:2:0 q90", (bn_jpeg_opts){.quality = 90, .h_samp = 2, .v_samp = 2}, 6.0);
    jpeg_case("baseline 4:2:2 q90", (bn_jpeg_opts){.quality = 90, .h_samp = 2, .v_samp = 1}, 6.0);
    jpeg_case("baseline 4:4:4 q100", (bn_jpeg_opts){.quality = 100, .h_samp = 1, .v_samp = 1}, 1.5);
    jpeg_case("progressive", (bn_jpeg_opts){.quality = 95, .progressive = 1}, 6.0);
    jpeg_case("arithmetic", (bn_jpeg_opts){.quality = 95, .arithmetic = 1}, 6.0);
    jpeg_case("progressive arithmetic", (bn_jpeg_opts){.quality = 95, .arithmetic = 1, .progressive = 1}, 6.0);
    jpeg_case("restart markers", (bn_jpeg_opts){.quality = 90, .restart_rows = 1}, 6.0);
    jpeg_case("optimised huffman", (bn_jpeg_opts){.quality = 90, .optimize = 1}, 6.0);
    jpeg_case("grayscale", (bn_jpeg_opts){.quality = 100, .color = BN_JCS_GRAY}, 1.5);
    jpeg_case("cmyk", (bn_jpeg_opts){.quality = 100, .color = BN_JCS_CMYK, .h_samp = 1, .v_samp = 1}, 1.5);
    jpeg_case("ycck", (bn_jpeg_opts){.quality = 100, .color = BN_JCS_YCCK, .h_samp = 1, .v_samp = 1}, 1.5);

    /* Fast IDCT stays close to the accurate one. */
    {
        bn_decode_opts fo = {.dct_fast = 1};
        bn_decoder *fast = bn_decoder_new(&fo);
        size_t len;
        unsigned char *buf = encode_jpeg(&(bn_jpeg_opts){.quality = 90}, &len);
        bn_rgb a = {0}, b = {0};
        bn_img_result r;
        CHECK(bn_decode_mem(dec, buf, len, &a, &r) == BN_IMG_OK, "accurate");
        CHECK(bn_decode_mem(fast, buf, len, &b, &r) == BN_IMG_OK, "fast");
        double m = mad(&b, a.rgb);
        CHECK(m < 2.0, "fast vs accurate IDCT: mean abs diff %.3f", m);
        bn_rgb_free(&a);
        bn_rgb_free(&b);
        bn_decoder_free(fast);
        free(buf);
    }

    /* ---- PNG variants: lossless, so exact. */
    {
        bn_png_opts o = {0};
        png_case("png rgb8", o, src, src);
        o.interlace = 1;
        png_case("png rgb8 interlaced", o, src, src);
        /* RGBA: alpha is dropped, colours kept even where alpha is 0. */
        static unsigned char rgba[H * W * 4];
        for (int i = 0; i < W * H; i++) {
            memcpy(rgba + 4 * i, src + 3 * i, 3);
            rgba[4 * i + 3] = (unsigned char)(i % 3 == 0 ? 0 : 128);
        }
        png_case("png rgba8", (bn_png_opts){.color = BN_PNG_RGBA}, rgba, src);
        /* Gray and gray+alpha come out as R=G=B. */
        static unsigned char gray[H * W], graya[H * W * 2], grayrgb[H * W * 3];
        for (int i = 0; i < W * H; i++) {
            gray[i] = src[3 * i + 1];
            graya[2 * i] = gray[i];
            graya[2 * i + 1] = 7;
            grayrgb[3 * i] = grayrgb[3 * i + 1] = grayrgb[3 * i + 2] = gray[i];
        }
        png_case("png gray8", (bn_png_opts){.color = BN_PNG_GRAY}, gray, grayrgb);
        png_case("png gray+alpha", (bn_png_opts){.color = BN_PNG_GRAYA}, graya, grayrgb);
        /* Palette: a picture with few colours. */
        static unsigned char pal[H * W * 3];
        for (int i = 0; i < W * H * 3; i++) pal[i] = (unsigned char)(src[i] & 0xC0);
        png_case("png palette", (bn_png_opts){.color = BN_PNG_PALETTE}, pal, pal);
        /* 16-bit: rounded to 8 bits as v * 255 / 65535. */
        static uint16_t rgb16[H * W * 3];
        static unsigned char want16[H * W * 3];
        for (int i = 0; i < W * H * 3; i++) {
            rgb16[i] = (uint16_t)(src[i] * 257 + (i % 5 == 0 ? 127 : 0) + (i % 7 == 0 ? 128 : 0));
            want16[i] = (unsigned char)((rgb16[i] * 255u + 32767u) / 65535u);
        }
        png_case("png rgb16", (bn_png_opts){.depth16 = 1}, rgb16, want16);
        static uint16_t rgba16[H * W * 4];
        for (int i = 0; i < W * H; i++) {
            memcpy(rgba16 + 4 * i, rgb16 + 3 * i, 3 * sizeof(uint16_t));
            rgba16[4 * i + 3] = 65535;
        }
        png_case("png rgba16 interlaced", (bn_png_opts){.color = BN_PNG_RGBA, .depth16 = 1, .interlace = 1}, rgba16, want16);
    }

    /* ---- Bad inputs: the right status and a reason, never a crash. */
    size_t jlen;
    unsigned char *jpg = encode_jpeg(&(bn_jpeg_opts){.quality = 90}, &jlen);
    size_t plen;
    unsigned char *png = encode_png(&(bn_png_opts){0}, src, &plen);
    unsigned char *tmp = malloc(jlen + plen + 64);

    expect("zero bytes", jpg, 0, BN_IMG_ZERO_BYTES, "empty");
    expect("truncated jpeg (half)", jpg, jlen / 2, BN_IMG_TRUNCATED, "truncated");
    expect("truncated jpeg (header only)", jpg, 40, BN_IMG_TRUNCATED, "truncated");
    expect("truncated jpeg (3 bytes)", jpg, 3, BN_IMG_TRUNCATED, NULL);
    expect("truncated png (half)", png, plen / 2, BN_IMG_TRUNCATED, "truncated");
    expect("truncated png (signature only)", png, 8, BN_IMG_TRUNCATED, NULL);
    expect("not an image", (const unsigned char *)"hello, this is text, not a picture", 34, BN_IMG_NOT_IMAGE, "not an image");
    {
        /* 12-bit: the frame header claims precision 12. */
        memcpy(tmp, jpg, jlen);
        size_t sof = find_marker(tmp, jlen, 0xC0);
        CHECK(sof > 0, "SOF0 present");
        tmp[sof + 4] = 12;
        expect("12-bit jpeg", tmp, jlen, BN_IMG_UNSUPPORTED, "precision");
        /* A decompression bomb: 60000 x 60000 claimed in the header. */
        memcpy(tmp, jpg, jlen);
        tmp[sof + 5] = 0xEA; tmp[sof + 6] = 0x60; tmp[sof + 7] = 0xEA; tmp[sof + 8] = 0x60;
        expect("jpeg over the pixel limit", tmp, jlen, BN_IMG_TOO_LARGE, "60000x60000");
        /* Corrupt header: zero components. */
        memcpy(tmp, jpg, jlen);
        tmp[sof + 9] = 0;
        expect("jpeg with a bad frame header", tmp, jlen, BN_IMG_CORRUPT, "corrupt");
        /* Corrupt entropy data: bytes in the middle of the scan replaced
         * by a marker that cannot appear there. */
        memcpy(tmp, jpg, jlen);
        size_t sos = find_marker(tmp, jlen, 0xDA);
        size_t mid = sos + (jlen - sos) / 2;
        tmp[mid] = 0xFF;
        tmp[mid + 1] = 0xC4;
        expect("jpeg with corrupt entropy data", tmp, jlen, BN_IMG_CORRUPT, "corrupt");
        /* Missing end-of-image marker only: accepted, warning recorded,
         * same pixels as the whole file. */
        bn_rgb whole = {0};
        bn_img_result r;
        CHECK(bn_decode_mem(dec, jpg, jlen, &whole, &r) == BN_IMG_OK && !r.warned, "whole jpeg");
        CHECK(jpg[jlen - 2] == 0xFF && jpg[jlen - 1] == 0xD9, "EOI at the end");
        bn_img_status s = bn_decode_mem(dec, jpg, jlen - 2, &img, &r);
        CHECK(s == BN_IMG_OK && r.warned && strstr(r.reason, "end-of-image"), "missing EOI: %s %s", bn_img_status_name(s), r.reason);
        CHECK(s == BN_IMG_OK && memcmp(img.rgb, whole.rgb, (size_t)W * H * 3) == 0, "missing EOI: same pixels");
        /* Extraneous bytes between header markers: accepted with the warning. */
        size_t seg = 4 + ((size_t)jpg[4] << 8 | jpg[5]); /* end of the first segment after SOI */
        memcpy(tmp, jpg, seg);
        memcpy(tmp + seg, "\x01\x02\x03", 3);
        memcpy(tmp + seg + 3, jpg + seg, jlen - seg);
        s = bn_decode_mem(dec, tmp, jlen + 3, &img, &r);
        CHECK(s == BN_IMG_OK && r.warned && strstr(r.reason, "extraneous"), "extraneous bytes: %s %s", bn_img_status_name(s), r.reason);
        bn_rgb_free(&whole);
    }
    {
        /* PNG with a damaged data chunk: CRC error. */
        memcpy(tmp, png, plen);
        size_t idat = 0;
        for (size_t i = 8; i + 4 < plen; i++)
            if (!memcmp(tmp + i, "IDAT", 4)) { idat = i; break; }
        CHECK(idat > 0, "IDAT present");
        tmp[idat + 10] ^= 0x55;
        expect("png with a bad CRC", tmp, plen, BN_IMG_CORRUPT, "corrupt");
        /* The pixel limit applies to PNG too. */
        bn_decode_opts small = {.max_pixels = 1000};
        bn_decoder *d2 = bn_decoder_new(&small);
        bn_img_result r;
        CHECK(bn_decode_mem(d2, png, plen, &img, &r) == BN_IMG_TOO_LARGE && strstr(r.reason, "67x45"),
              "png over the limit: %s", r.reason);
        CHECK(bn_decode_mem(d2, jpg, jlen, &img, &r) == BN_IMG_TOO_LARGE, "jpeg over a small limit");
        bn_decoder_free(d2);
    }


    /* ---- Limits checked before any image-sized allocation. */
    {
        size_t n;
        unsigned char *j = jpeg_with_scans(100, &n);
        expect("progressive, 100 scans (the limit)", j, n, BN_IMG_OK, NULL);
        free(j);
        j = jpeg_with_scans(101, &n);
        expect("progressive, 101 scans", j, n, BN_IMG_TOO_LARGE, "too many scans");
        free(j);
        bn_jpeg_opts o = {.quality = 90};
        j = encode_jpeg(&o, &n);
        size_t sof = find_marker(j, n, 0xC0);
        CHECK(sof > 0, "no SOF0");
        memset(j + sof + 5, 0xFF, 4); /* 65535x65535 */
        expect("jpeg 65535x65535", j, n, BN_IMG_TOO_LARGE, "65535x65535 exceed libjpeg's limit of 65500");
        memset(j + sof + 5, 0x00, 4); /* 0x0 */
        expect("jpeg 0x0", j, n, BN_IMG_CORRUPT, "invalid dimensions 0x0");
        free(j);
        bn_png_opts po = {.color = BN_PNG_RGB};
        unsigned char *p = encode_png(&po, src, &n);
        png_set_size(p, 65535, 65535);
        expect("png 65535x65535", p, n, BN_IMG_TOO_LARGE, "65535x65535 exceed the pixel limit");
        png_set_size(p, 0, 0);
        expect("png 0x0", p, n, BN_IMG_CORRUPT, "zero");
        png_set_size(p, W, H);
        expect("png size restored", p, n, BN_IMG_OK, NULL);
        free(p);
    }

    /* ---- Files: the format comes from the bytes, not the name. */
    {
        char dir[] = "/tmp/bneck-decode-XXXXXX";
        CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        char path[256], err[256];
        snprintf(path, sizeof path, "%s/actually-a-png.jpg", dir);
        CHECK(bn_write_file(path, png, plen, err, sizeof err) == 0, "write: %s", err);
        bn_img_result r;
        CHECK(bn_decode_file(dec, path, &img, &r) == BN_IMG_OK && r.format == BN_FMT_PNG, "png named .jpg: %s", r.reason);
        unlink(path);
        snprintf(path, sizeof path, "%s/empty.jpg", dir);
        CHECK(bn_write_file(path, png, 0, err, sizeof err) == 0, "write empty");
        CHECK(bn_decode_file(dec, path, &img, &r) == BN_IMG_ZERO_BYTES, "empty file: %s", r.reason);
        unlink(path);
        snprintf(path, sizeof path, "%s/missing.jpg", dir);
        CHECK(bn_decode_file(dec, path, &img, &r) == BN_IMG_UNREADABLE && strstr(r.reason, "No such file"),
              "missing file: %s", r.reason);
        CHECK(bn_decode_file(dec, dir, &img, &r) == BN_IMG_UNREADABLE && strstr(r.reason, "(a folder)"),
              "a folder: %s", r.reason);
        /* A file too big for any image within the pixel limit is refused
         * unread (a sparse file: no disk used). */
        {
            bn_decode_opts small = {.max_pixels = 1000};
            bn_decoder *d2 = bn_decoder_new(&small);
            snprintf(path, sizeof path, "%s/big.jpg", dir);
            CHECK(bn_write_file(path, jpg, jlen, err, sizeof err) == 0, "write big.jpg");
            CHECK(truncate(path, (off_t)80 << 20) == 0, "truncate");
            CHECK(bn_decode_file(d2, path, &img, &r) == BN_IMG_TOO_LARGE && strstr(r.reason, "83886080 bytes"),
                  "an 80 MB file: %s", r.reason);
            CHECK(bn_decode_file(dec, path, &img, &r) != BN_IMG_TOO_LARGE, "80 MB within the default limit: %s",
                  r.reason);
            unlink(path);
            bn_decoder_free(d2);
        }
        /* A FIFO must be refused without blocking in open(). */
        snprintf(path, sizeof path, "%s/fifo.jpg", dir);
        CHECK(mkfifo(path, 0600) == 0, "mkfifo");
        CHECK(bn_decode_file(dec, path, &img, &r) == BN_IMG_UNREADABLE && strstr(r.reason, "(a FIFO)"),
              "a FIFO: %s", r.reason);
        unlink(path);
        rmdir(dir);
    }
    free(tmp);
    free(jpg);
    free(png);
    bn_rgb_free(&img);
    bn_decoder_free(dec);
    return t_done("test_decode");
}
