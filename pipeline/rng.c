/* rng.c: xoshiro256** (Blackman and Vigna), seeded with splitmix64. */
#include "config.h"

#include "pipeline/rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void bn_rng_seed(bn_rng *r, uint64_t seed) {
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9e3779b97f4a7c15ULL;
        uint64_t x = z;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        r->s[i] = x ^ (x >> 31);
    }
}

void bn_rng_seed_stream(bn_rng *r, uint64_t seed, uint64_t stream) {
    /* Mix the seed first, so that nearby seeds and streams do not alias. */
    uint64_t x = seed + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    bn_rng_seed(r, x ^ (stream * 0xd1b54a32d192ed03ULL));
}

uint64_t bn_rng_next(bn_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t bn_rng_below(bn_rng *r, uint64_t n) {
    /* Reject the top partial copy of [0, n) so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = bn_rng_next(r);
    while (x >= limit);
    return x % n;
}

double bn_rng_uniform(bn_rng *r) { return (double)(bn_rng_next(r) >> 11) * 0x1.0p-53; }

double bn_rng_normal(bn_rng *r) {
    double u, v, s;
    do {
        u = 2.0 * bn_rng_uniform(r) - 1.0;
        v = 2.0 * bn_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

double bn_rng_truncated_normal(bn_rng *r, double stddev) {
    double x;
    do x = bn_rng_normal(r);
    while (fabs(x) > 2.0);
    return x * stddev;
}
