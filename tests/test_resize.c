/* test_resize.c: the TF1-style bilinear resize against an independent,
 * per-pixel implementation in double written here, plus hand-computed cases. */
#include "io/image.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Independent reference: one output pixel at a time, weights in double. The
 * source coordinate is formed as TF1 specifies it (a float scale in/out times
 * the float index), since that rounding is part of the definition: in double
 * it would move coordinates near x=1000 by ~1e-4 pixel. */
static double ref_pixel(const bn_rgb *in, int out_h, int out_w, int y, int x, int c) {
    float scale_y = (float)in->height / (float)out_h, scale_x = (float)in->width / (float)out_w;
    double sy = (double)((float)y * scale_y), sx = (double)((float)x * scale_x);
    int y0 = (int)floor(sy), x0 = (int)floor(sx);
    int y1 = y0 + 1 < in->height ? y0 + 1 : in->height - 1;
    int x1 = x0 + 1 < in->width ? x0 + 1 : in->width - 1;
    double dy = sy - y0, dx = sx - x0;
#define P(yy, xx) ((double)in->rgb[((size_t)(yy) * in->width + (xx)) * 3 + c])
    return P(y0, x0) * (1 - dy) * (1 - dx) + P(y0, x1) * (1 - dy) * dx + P(y1, x0) * dy * (1 - dx) +
           P(y1, x1) * dy * dx;
#undef P
}

static double normalise(double v, bn_norm n) { return n == BN_NORM_KERAS ? v / 127.5 - 1 : (v - 128) / 128; }

static unsigned long long rng = 88172645463325252ULL;
static unsigned next_u8(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (unsigned)(rng >> 24) & 255u;
}

/* Compare bn_resize_norm with the reference on a random image. */
static void compare(int in_w, int in_h, int out_w, int out_h, bn_norm norm) {
    bn_rgb in = {in_w, in_h, malloc((size_t)in_w * in_h * 3), 0};
    for (size_t i = 0; i < (size_t)in_w * in_h * 3; i++) in.rgb[i] = (unsigned char)next_u8();
    float *out = malloc(sizeof(float) * out_w * out_h * 3);
    bn_resize_norm(&in, out_h, out_w, norm, out);
    double maxd = 0;
    for (int y = 0; y < out_h; y++)
        for (int x = 0; x < out_w; x++)
            for (int c = 0; c < 3; c++) {
                double want = normalise(ref_pixel(&in, out_h, out_w, y, x, c), norm);
                double d = fabs(want - out[((size_t)y * out_w + x) * 3 + c]);
                if (d > maxd) maxd = d;
            }
    /* Float coordinates vs double: the error is float rounding, well under
     * one grey level (1/127.5 = 0.0078). */
    CHECK(maxd < 2e-6, "%dx%d -> %dx%d (%s): max abs diff %g", in_w, in_h, out_w, out_h, bn_norm_name(norm), maxd);
    free(out);
    free(in.rgb);
}

int main(void) {
    /* Flower-photo sizes, portrait, upscaling, tiny and degenerate inputs. */
    compare(500, 333, 299, 299, BN_NORM_KERAS);
    compare(333, 500, 299, 299, BN_NORM_TF2015);
    compare(320, 240, 299, 299, BN_NORM_KERAS);
    compare(1024, 768, 299, 299, BN_NORM_KERAS);
    compare(7, 5, 299, 299, BN_NORM_TF2015);
    compare(1, 1, 299, 299, BN_NORM_KERAS);
    compare(1, 300, 299, 299, BN_NORM_KERAS);
    compare(299, 299, 299, 299, BN_NORM_KERAS);
    compare(640, 480, 13, 17, BN_NORM_KERAS);

    /* Same size: the resize is the identity, exactly. */
    {
        bn_rgb in = {4, 3, malloc(36), 0};
        for (int i = 0; i < 36; i++) in.rgb[i] = (unsigned char)(i * 7);
        float out[36];
        bn_resize_norm(&in, 3, 4, BN_NORM_TF2015, out);
        for (int i = 0; i < 36; i++) CHECK(out[i] == (float)((i * 7 - 128) / 128.0), "identity at %d: %g", i, out[i]);
        free(in.rgb);
    }
    /* 2x1 -> 4x1 by hand: source x = 0, 0.5, 1, 1.5 -> 0, 50, 100, 100 (edge clamps). */
    {
        unsigned char px[6] = {0, 0, 0, 100, 100, 100};
        bn_rgb in = {2, 1, px, 0};
        float out[12];
        bn_resize_norm(&in, 1, 4, BN_NORM_TF2015, out);
        const double want[4] = {0, 50, 100, 100};
        for (int x = 0; x < 4; x++)
            CHECK(fabs(out[x * 3] - (want[x] - 128) / 128) < 1e-7, "hand case x=%d: %g", x, out[x * 3]);
    }
    /* Normalisation ranges: 0 and 255 map to the ends. */
    {
        unsigned char px[6] = {0, 0, 0, 255, 255, 255};
        bn_rgb in = {1, 2, px, 0};
        float out[6];
        bn_resize_norm(&in, 2, 1, BN_NORM_KERAS, out);
        CHECK(out[0] == -1.0f && out[3] == 1.0f, "keras range: %g %g", out[0], out[3]);
        bn_resize_norm(&in, 2, 1, BN_NORM_TF2015, out);
        CHECK(out[0] == -1.0f && fabsf(out[3] - 127.0f / 128.0f) < 1e-7, "tf2015 range: %g %g", out[0], out[3]);
    }
    bn_norm n;
    CHECK(bn_norm_parse("keras", &n) == 0 && n == BN_NORM_KERAS, "parse keras");
    CHECK(bn_norm_parse("tf2015", &n) == 0 && n == BN_NORM_TF2015, "parse tf2015");
    CHECK(bn_norm_parse("caffe", &n) != 0, "parse caffe must fail");
    return t_done("test_resize");
}
