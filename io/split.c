/* split.c: retrain.py's deterministic train/validation/test assignment.
 *
 * retrain.py (TensorFlow's image retraining example) does, per file:
 *
 *   hash_name = re.sub(r'_nohash_.*$', '', file_name)
 *   h = int(hashlib.sha1(as_bytes(hash_name)).hexdigest(), 16) % (2**27)
 *   p = h * (100.0 / (2**27 - 1))
 *   validation if p < val; elif p < (test + val): test; else train
 *
 * The code below reproduces each step bit for bit, including the corner cases
 * of the regular expression (see nohash_prefix()).
 */
#include "io/split.h"
#include "io/corpus.h"

#include <nettle/sha1.h>
#include <nettle/version.h>
#include <stdint.h>
#include <string.h>

/* retrain.py's MAX_NUM_IMAGES_PER_CLASS = 2^27 - 1. */
#define BN_SPLIT_MAXH ((1u << 27) - 1u)

/* The part of key that re.sub(r'_nohash_.*$', '', key) keeps.
 *
 * Python's '.' does not match '\n' and, without MULTILINE, '$' matches at the
 * end of the string or just before a final '\n'. So a match starting at an
 * occurrence of "_nohash_" succeeds only if no '\n' follows it other than a
 * final one; if it fails, the regex engine tries the next occurrence
 * (occurrences may overlap: "_nohash_nohash_"). The first success removes
 * everything from the occurrence up to the end, except a final '\n'.
 *
 * Result: the kept bytes are key[0 .. *keep) followed by "\n" when
 * *final_nl is set. With no successful match, *keep = strlen(key), *final_nl = 0. */
static void nohash_prefix(const char *key, size_t *keep, int *final_nl) {
    size_t len = strlen(key);
    int ends_nl = len > 0 && key[len - 1] == '\n';
    /* Start searching after the last '\n' that is not the final character: an
     * occurrence before it cannot match (its '.*' cannot reach '$'). */
    size_t from = 0;
    size_t stop = ends_nl ? len - 1 : len;
    for (size_t i = stop; i > 0; i--) {
        if (key[i - 1] == '\n') {
            from = i;
            break;
        }
    }
    const char *hit = strstr(key + from, "_nohash_");
    if (!hit) {
        *keep = len;
        *final_nl = 0;
        return;
    }
    *keep = (size_t)(hit - key);
    *final_nl = ends_nl;
}

double bn_split_percentage(const char *key) {
    size_t keep;
    int final_nl;
    nohash_prefix(key, &keep, &final_nl);

    struct sha1_ctx ctx;
    uint8_t d[SHA1_DIGEST_SIZE];
    sha1_init(&ctx);
    sha1_update(&ctx, keep, (const uint8_t *)key);
    if (final_nl) sha1_update(&ctx, 1, (const uint8_t *)"\n");
#if NETTLE_VERSION_MAJOR >= 4
    sha1_digest(&ctx, d);
#else
    sha1_digest(&ctx, sizeof d, d);
#endif

    /* int(hexdigest, 16) % 2^27: the low 27 bits of the whole 160-bit number,
     * i.e. of its last 4 bytes read big-endian. */
    uint32_t last = ((uint32_t)d[16] << 24) | ((uint32_t)d[17] << 16) |
                    ((uint32_t)d[18] << 8) | (uint32_t)d[19];
    uint32_t h = last & ((1u << 27) - 1u);
    /* Python: int * float converts the int to double (exact below 2^53), and
     * the factor is computed first, as in retrain.py. */
    return (double)h * (100.0 / (double)BN_SPLIT_MAXH);
}

int bn_split_assign(const char *key, double val_pct, double test_pct) {
    double p = bn_split_percentage(key);
    if (p < val_pct) return BN_SPLIT_VAL;
    /* retrain.py writes (testing_percentage + validation_percentage). */
    if (p < (test_pct + val_pct)) return BN_SPLIT_TEST;
    return BN_SPLIT_TRAIN;
}
