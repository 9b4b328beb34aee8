/* split.h: retrain.py's deterministic train/validation/test assignment. */
#ifndef BN_SPLIT_H
#define BN_SPLIT_H

#include <stddef.h>

/* The value p in [0, 100] that decides the split of a file:
 * remove "_nohash_" and everything after its first occurrence from key, take
 * SHA-1 of the rest, read the last 4 digest bytes big-endian, keep the low 27
 * bits h, and return h * (100 / (2^27 - 1)). */
double bn_split_percentage(const char *key);

/* The split (bn_split from corpus.h) for a key: validation if p < val_pct,
 * else test if p < val_pct + test_pct, else train. */
int bn_split_assign(const char *key, double val_pct, double test_pct);

#endif
