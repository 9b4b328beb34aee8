/* test_half.c: io/half.c. Every float16 converts to float32 and back to
 * itself; float32 to float16 rounds to nearest, ties to even, checked
 * against the compiler's _Float16 where it has one and against the rule
 * itself (the nearest of the two neighbours) on edge cases and random
 * values; and the HDF5 type round-trips rows through a file. */
#include "io/half.h"
#include "tests/testutil.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}
static float of_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The rule written out: among the float16 values around x, the nearest;
 * on a tie, the one with an even mantissa. Finite results only. */
static uint16_t nearest(float x) {
    double ax = fabs((double)x);
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    uint16_t best = 0;
    double bd = INFINITY;
    /* the candidates: h and h+1 where h is the largest half <= |x| */
    uint16_t lo = 0;
    for (int step = 1 << 14; step; step >>= 1)
        if (lo + step < 0x7c00 && (double)bn_f16_to_f32((uint16_t)(lo + step)) <= ax) lo = (uint16_t)(lo + step);
    for (uint16_t h = lo; h <= lo + 1 && h <= 0x7c00; h++) {
        double d = fabs((double)bn_f16_to_f32(h) - ax);
        if (d < bd || (d == bd && !(h & 1))) bd = d, best = h;
    }
    return (uint16_t)(sign | best);
}

int main(void) {
    /* 1. Every float16 round-trips (NaNs stay NaN). */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bn_f16_to_f32((uint16_t)h);
        uint16_t back = bn_f32_to_f16(f);
        int nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan ? !isnan(f) || (back & 0x7c00) != 0x7c00 || !(back & 0x3ff) : back != h) bad++;
    }
    CHECK(bad == 0, "%d float16 values do not round-trip", bad);
    /* Known values. */
    CHECK(bn_f16_to_f32(0x3c00) == 1.0f, "1.0");
    CHECK(bn_f16_to_f32(0x7bff) == 65504.0f, "largest finite");
    CHECK(bn_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
    CHECK(bn_f16_to_f32(0x0400) == ldexpf(1.0f, -14), "smallest normal");
    CHECK(bn_f16_to_f32(0xc000) == -2.0f, "-2");
    CHECK(bn_f32_to_f16(65519.0f) == 0x7bff, "65519 rounds down to 65504");
    CHECK(bn_f32_to_f16(65520.0f) == 0x7c00, "65520 rounds to infinity (tie to even)");
    CHECK(bn_f32_to_f16(INFINITY) == 0x7c00 && bn_f32_to_f16(-INFINITY) == 0xfc00, "infinities");
    CHECK((bn_f32_to_f16(NAN) & 0x7fff) > 0x7c00, "NaN stays NaN");
    CHECK(bn_f32_to_f16(ldexpf(1.0f, -25)) == 0, "2^-25 ties to zero");
    CHECK(bn_f32_to_f16(ldexpf(1.5f, -25)) == 1, "1.5 * 2^-25 rounds up to the smallest subnormal");
    CHECK(bn_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3c00, "1 + 2^-11 ties to even (1.0)");
    CHECK(bn_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3c02, "1 + 3 * 2^-11 ties to even (up)");
    CHECK(bn_f32_to_f16(-0.0f) == 0x8000, "-0 keeps its sign");

    /* 2. Random floats over the float16 range, and every float32 near each
     * float16 boundary: the nearest-even rule, and _Float16 where it exists. */
    uint64_t s = 88172645463325252ull;
    int wrong = 0, wrong_cc = 0;
    for (int i = 0; i < 400000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t u = (uint32_t)s;
        /* exponents from about 2^-26 to 2^16 */
        uint32_t e = 100u + (uint32_t)((s >> 40) % 44u);
        float x = of_bits((u & 0x807fffffu) | (e << 23));
        if (i % 4 == 0) { /* an exact tie or its neighbours */
            float h = bn_f16_to_f32((uint16_t)((s >> 20) & 0x7bff));
            x = of_bits(bits(h) + 0x1000u - 1u + (uint32_t)(i / 4 % 3));
        }
        uint16_t got = bn_f32_to_f16(x);
        if (fabsf(x) < 65504.0f && got != nearest(x)) {
            if (wrong++ < 5) fprintf(stderr, "x=%a: got 0x%04x, nearest 0x%04x\n", (double)x, got, nearest(x));
        }
#if defined(__FLT16_MAX__)
        _Float16 cc = (_Float16)x;
        uint16_t ccb;
        memcpy(&ccb, &cc, sizeof ccb);
        if (ccb != got && wrong_cc++ < 5) fprintf(stderr, "x=%a: got 0x%04x, _Float16 0x%04x\n", (double)x, got, ccb);
#endif
    }
    CHECK(wrong == 0, "%d values not rounded to the nearest float16 (ties to even)", wrong);
    CHECK(wrong_cc == 0, "%d values differ from the compiler's _Float16", wrong_cc);

    /* 3. The HDF5 type: write float16 rows, read them back raw and as float. */
    char path[] = "/tmp/bneck-test-half-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    hid_t t = bn_h5_f16_type();
    CHECK(t >= 0 && H5Tget_size(t) == 2 && H5Tget_class(t) == H5T_FLOAT, "the HDF5 float16 type");
    enum { N = 3000 };
    float in[N], back[N], conv[N];
    uint16_t h16[N], r16[N];
    for (int i = 0; i < N; i++) in[i] = (float)(i - 1500) * 0.37f + (float)i * 1e-3f;
    bn_f32_to_f16_n(in, h16, N);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dn = N;
    hid_t sp = H5Screate_simple(1, &dn, NULL);
    hid_t d = H5Dcreate2(f, "x", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, h16) >= 0, "write float16");
    CHECK(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, r16) >= 0 && !memcmp(h16, r16, sizeof h16), "raw read back");
    /* HDF5's own conversion to float agrees with ours */
    CHECK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, conv) >= 0, "read as float");
    bn_f16_to_f32_n(r16, back, N);
    CHECK(!memcmp(back, conv, sizeof back), "HDF5's float16 to float32 equals bn_f16_to_f32");
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    H5Tclose(t);
    unlink(path);
    return t_done("test_half");
}
