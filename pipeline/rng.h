/* rng.h: a small seeded random generator (xoshiro256**, seeded through
 * splitmix64). Every rank that seeds it with the same value draws the same
 * sequence, which is how train's ranks agree on each batch without talking. */
#ifndef BN_RNG_H
#define BN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4]; /* generator state */
} bn_rng;

/* Seed from one 64-bit value (any value, 0 included). */
void bn_rng_seed(bn_rng *r, uint64_t seed);
/* Seed stream number `stream` of a seed (the seed is mixed first, so seeds
 * s and s + 1 or streams k and k + 1 give unrelated sequences). */
void bn_rng_seed_stream(bn_rng *r, uint64_t seed, uint64_t stream);
/* The next 64 random bits. */
uint64_t bn_rng_next(bn_rng *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t bn_rng_below(bn_rng *r, uint64_t n);
/* Uniform double in [0, 1), 53 bits. */
double bn_rng_uniform(bn_rng *r);
/* Standard normal (Marsaglia's polar method; no cached second value, so the
 * sequence depends only on the number of calls). */
double bn_rng_normal(bn_rng *r);
/* Normal with the given stddev, redrawn while beyond 2 stddev (TensorFlow's
 * truncated_normal). */
double bn_rng_truncated_normal(bn_rng *r, double stddev);

#endif
