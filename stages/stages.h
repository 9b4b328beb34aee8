/* stages.h: the typed entry points of the stages.
 *
 * A command is parse, then run: each command front (bn_cmd_* in
 * pipeline/commands.h) fills one of these configs from its command line and
 * calls the entry point; retrain, classify of a corpus and run compose the
 * stages through these calls, never through each other's argv.
 */
#ifndef BN_STAGES_H
#define BN_STAGES_H

#include "pipeline/engopts.h"

#include <mpi.h>

/* ------------------------------------------------------------ extract */

/* What extract is asked to do. Zero-initialise, then set at least the input,
 * weights and out; bn_extract_cfg_init sets the defaults. */
typedef struct {
    const char *images;       /* folder of class folders, or NULL */
    const char *manifest;     /* manifest of path<TAB>label lines, or NULL (exactly one of the two) */
    const char *weights;      /* Keras Inception v3 weights (.h5) */
    const char *out;          /* the shared features file; resumed when it exists */
    bn_engine_opts eng;       /* backend, batch (= work unit), threads, preprocess, dct, max_pixels */
    double validation_pct;    /* split: share of validation images (retrain.py's default 10) */
    double testing_pct;       /* split: share of test images (10) */
    int shard_index;          /* this job's shard, 0 <= shard_index < shard_count */
    int shard_count;          /* 1: the whole corpus; N: a job array of N shards (bneck join merges them) */
    const char *progress;     /* "auto" | "tty" | "log" | "none" */
    int quiet;                /* 1: no timing table */
} bn_extract_cfg;

/* What one extract run did (the same on every rank). */
typedef struct {
    long long done;           /* images written in this run */
    long long failed;         /* images that could not be decoded in this run */
    int complete;             /* every image of the corpus (or shard) now has a result */
    int stopped;              /* a signal stopped the run: rerun to resume */
} bn_extract_result;

void bn_extract_cfg_init(bn_extract_cfg *cfg);

/* Collective over comm (which must be MPI_COMM_WORLD's size or a dup of it).
 * Extract the features of the corpus into cfg->out. Returns an exit status:
 * BN_EXIT_OK, BN_EXIT_FAIL, or BN_EXIT_RESUME (stopped by a signal); the
 * same on every rank. */
int bn_extract_run(const bn_extract_cfg *cfg, MPI_Comm comm, bn_extract_result *res);

/* ------------------------------------------------------------ join */

/* Collective over comm. Merge the n shard files paths[] (from extract
 * --shard K/N) into out, the file one extract of the whole corpus would have
 * written. quiet: no summary line. Returns an exit status, the same on every
 * rank. */
int bn_join_run(const char *out, const char *const *paths, int n, MPI_Comm comm, int quiet);

#endif
