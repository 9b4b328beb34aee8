/* corpus.h: discovering a labelled image corpus and splitting it.
 *
 * Two input forms:
 *  - a folder of class folders, with retrain.py's rules (docs/corpus.md);
 *  - a manifest: one "path<TAB>label" per line.
 * Every image gets a split (train/validation/test) exactly as retrain.py would
 * assign it (io/split.h).
 */
#ifndef BN_CORPUS_H
#define BN_CORPUS_H

#include <mpi.h>
#include <stddef.h>

/* Split of an image. Values are stored in output files: do not renumber. */
typedef enum { BN_SPLIT_TRAIN = 0, BN_SPLIT_VAL = 1, BN_SPLIT_TEST = 2 } bn_split;
const char *bn_split_name(bn_split s); /* "train", "validation", "test" */

/* One image of the corpus. */
typedef struct {
    char *path;  /* path to open (owned) */
    char *key;   /* the string the split hashes: the path as retrain.py would see it (owned) */
    int label;   /* index into bn_corpus.labels */
    int split;   /* bn_split */
} bn_item;

/* A file that was seen but not taken, with why. */
typedef struct {
    char *path;   /* owned */
    char *reason; /* owned, one line */
} bn_reject;

typedef struct {
    int nlabels;       /* number of classes (>= 2 after a successful load) */
    char **labels;     /* class names, in class-index order (owned) */
    char **sources;    /* per class: the folder it came from, or the manifest label text (owned) */
    size_t n;          /* number of images */
    bn_item *items;    /* images, ordered by class index, then by path (owned) */
    size_t nrejected;  /* files seen but not taken */
    bn_reject *rejected; /* (owned) */
    size_t nwarnings;  /* warnings (e.g. a class with fewer than 20 images) */
    char **warnings;   /* (owned) */
    char *strings;     /* when set: every item's path and key point into this one block (owned),
                          not allocated one by one (a manifest's listing) */
    int headless;      /* 1: this rank holds the classes and n but no items, rejected or warnings
                          (a rank other than 0 after bn_corpus_load_shared) */
} bn_corpus;

/* Split settings: percentages of the hash range, as retrain.py's flags. */
typedef struct {
    double validation_pct; /* default 10 */
    double testing_pct;    /* default 10 */
} bn_split_opts;

/* Scan a folder of class folders. Returns 0, or -1 with a one-line reason in
 * err (no such folder, fewer than 2 classes, an empty class, ...). */
int bn_corpus_scan_dir(const char *dir, const bn_split_opts *so, bn_corpus *c,
                       char *err, size_t errlen);

/* Read a manifest. Relative paths are taken relative to the manifest's folder
 * for opening; the split hashes the path exactly as written. Returns 0, or -1
 * with a reason naming the file and line in err. */
int bn_corpus_read_manifest(const char *file, const bn_split_opts *so, bn_corpus *c,
                            char *err, size_t errlen);

void bn_corpus_free(bn_corpus *c);

/* Collective over comm (io/corpus_share.c). Rank 0 alone scans the folder
 * (images) or reads the manifest, so a parallel file system is scanned once,
 * and keeps the whole listing. It broadcasts only the classes (labels,
 * sources) and the image count: the other ranks get a headless corpus (no
 * items), so their memory does not grow with the corpus; they learn the
 * paths of the images they take from rank 0 as they take them. Returns 0,
 * or -1 with rank 0's reason in err on every rank. */
int bn_corpus_load_shared(const char *images, const char *manifest, const bn_split_opts *so, MPI_Comm comm,
                          bn_corpus *c, char *err, size_t errlen);

/* Keep only shard k of n of c: the images [floor(N*k/n), floor(N*(k+1)/n))
 * in corpus order (classes and split unchanged). *first gets the corpus
 * index of the shard's first image. A headless corpus only has its count cut. */
void bn_corpus_keep_shard(bn_corpus *c, int k, int n, size_t *first);

/* retrain.py's label rule: lower case, each run of characters outside
 * [a-z0-9] becomes one space. Writes into out (at least strlen(name)+1). */
void bn_label_from_folder(const char *name, char *out, size_t outlen);

#endif
