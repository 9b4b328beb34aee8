/* corpus_share.c: one scan of the corpus on rank 0, whose classes and count
 * are broadcast to every rank, and shards of a corpus (io/corpus.h). */
#include "io/corpus.h"

#include "pipeline/log.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing byte buffer for the packed corpus. */
typedef struct {
    char *p;     /* bytes (owned) */
    size_t len;  /* used */
    size_t cap;  /* allocated */
} buf_t;

static void put(buf_t *b, const void *x, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->p = reallocCheck(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, x, n);
    b->len += n;
}
static void put_u64(buf_t *b, uint64_t v) { put(b, &v, sizeof v); }
static void put_str(buf_t *b, const char *s) { put(b, s ? s : "", strlen(s ? s : "") + 1); }

/* Reading back; every read checks the length, so a short buffer is an error
 * rather than a crash. */
typedef struct {
    const char *p;  /* bytes */
    size_t len;     /* total */
    size_t at;      /* read position */
    int bad;        /* 1 once a read ran past the end */
} rd_t;

static uint64_t get_u64(rd_t *r) {
    uint64_t v = 0;
    if (r->at + sizeof v > r->len) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p + r->at, sizeof v);
    r->at += sizeof v;
    return v;
}
static char *get_str(rd_t *r) {
    const char *s = r->p + r->at;
    const char *end = r->at < r->len ? memchr(s, 0, r->len - r->at) : NULL;
    if (!end) {
        r->bad = 1;
        return strdupCheck("");
    }
    r->at += (size_t)(end - s) + 1;
    return strdupCheck(s);
}

/* What every rank needs of the corpus: the classes and the image count. */
static void pack_head(const bn_corpus *c, buf_t *b) {
    put_u64(b, (uint64_t)c->nlabels);
    for (int k = 0; k < c->nlabels; k++) {
        put_str(b, c->labels[k]);
        put_str(b, c->sources ? c->sources[k] : "");
    }
    put_u64(b, c->n);
}

/* Counts read from the buffer are bounded by its length before anything is
 * allocated from them. The result is headless: no items. */
static int unpack_head(const char *p, size_t len, bn_corpus *c) {
    rd_t r = {p, len, 0, 0};
    memset(c, 0, sizeof *c);
    c->headless = 1;
    uint64_t nl = get_u64(&r);
    if (nl > len) return -1;
    c->nlabels = (int)nl;
    c->labels = callocCheck(nl + 1, sizeof *c->labels);
    c->sources = callocCheck(nl + 1, sizeof *c->sources);
    for (uint64_t k = 0; k < nl; k++) {
        c->labels[k] = get_str(&r);
        c->sources[k] = get_str(&r);
    }
    c->n = (size_t)get_u64(&r);
    if (r.bad || r.at != len) {
        bn_corpus_free(c);
        return -1;
    }
    return 0;
}

/* MPI_Bcast of any length, in pieces that fit an int count. */
static void bcast_bytes(char *p, size_t len, MPI_Comm comm) {
    const size_t piece = (size_t)1 << 30;
    for (size_t at = 0; at < len; at += piece) {
        size_t n = len - at < piece ? len - at : piece;
        mpiCheck(MPI_Bcast(p + at, (int)n, MPI_BYTE, 0, comm));
    }
}

int bn_corpus_load_shared(const char *images, const char *manifest, const bn_split_opts *so, MPI_Comm comm,
                          bn_corpus *c, char *err, size_t errlen) {
    int rank = 0;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    memset(c, 0, sizeof *c);
    /* Rank 0 scans; [status, length] then the bytes (or the reason). */
    unsigned long long head[2] = {0, 0};
    buf_t b = {NULL, 0, 0};
    if (rank == 0) {
        int rc = images ? bn_corpus_scan_dir(images, so, c, err, errlen) : bn_corpus_read_manifest(manifest, so, c, err, errlen);
        if (rc == 0) {
            pack_head(c, &b);
            head[1] = b.len;
        } else {
            head[0] = 1;
            head[1] = strlen(err) + 1;
            put(&b, err, head[1]);
        }
    }
    mpiCheck(MPI_Bcast(head, 2, MPI_UNSIGNED_LONG_LONG, 0, comm));
    if (rank != 0) b.p = mallocCheck(head[1] ? head[1] : 1);
    bcast_bytes(b.p, head[1], comm);
    int rc = 0;
    if (head[0]) {
        if (rank != 0) snprintf(err, errlen, "%s", b.p);
        rc = -1;
    } else if (rank != 0 && unpack_head(b.p, head[1], c) < 0) {
        /* Cannot happen unless memory is corrupted: the bytes came from pack_head(). */
        bn_fatal_at(__FILE__, __LINE__, NULL, "the corpus broadcast from rank 0 does not unpack (%llu bytes)", head[1]);
    }
    free(b.p);
    return rc;
}

void bn_corpus_keep_shard(bn_corpus *c, int k, int n, size_t *first) {
    size_t lo = (size_t)((unsigned long long)c->n * (unsigned long long)k / (unsigned long long)n);
    size_t hi = (size_t)((unsigned long long)c->n * (unsigned long long)(k + 1) / (unsigned long long)n);
    if (first) *first = lo;
    if (c->headless) { /* only the count to cut */
        c->n = hi - lo;
        return;
    }
    for (size_t i = 0; !c->strings && i < c->n; i++) /* strings in one block stay with it */
        if (i < lo || i >= hi) {
            free(c->items[i].path);
            free(c->items[i].key);
        }
    memmove(c->items, c->items + lo, (hi - lo) * sizeof *c->items);
    c->n = hi - lo;
    if (first) *first = lo;
}
