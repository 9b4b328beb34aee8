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
    long long decode_threads; /* decode pool threads per rank; 0 = the cores the engines leave (at least 1) */
    const char *decoder;      /* "cpu" (libjpeg-turbo, libpng) or "nvjpeg" (JPEGs on a GPU rank's GPU); NULL = cpu */
    double price;             /* price of one node per hour, for the run's cost; NaN: none (bn_extract_cfg_init) */
    const char *feature_dtype; /* rows stored as "float32" or "float16" (half the file); NULL = float32 */
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

/* ------------------------------------------------------------ train */

/* What train is asked to do. bn_train_cfg_init sets retrain.py's defaults;
 * then set at least features and out. */
typedef struct {
    const char *features;     /* features file from extract */
    const char *out;          /* classifier file to write (.h5) */
    const char *labels;       /* class names file; NULL: OUT with .labels.txt */
    const char *sampling;     /* "class" (retrain.py's) | "uniform" */
    long long steps;          /* training steps (4000) */
    long long batch;          /* samples per step (100) */
    long long eval_interval;  /* evaluate every N steps and at the last (10) */
    long long validation_batch; /* validation samples per evaluation; -1: all (100) */
    long long test_batch;     /* test samples of the final accuracy; -1: all (-1) */
    long long seed;           /* random seed (0) */
    long long threads;        /* BLAS threads per rank (1) */
    double learning_rate;     /* step size (0.01) */
    int print_misclassified;  /* 1: list the misclassified test images */
    int quiet;                /* 1: no step lines, confusion matrix or timing table */
    double price;             /* price of one node per hour, for the run's cost; NaN: none (bn_train_cfg_init) */
} bn_train_cfg;

/* What one training run gave (the same on every rank). */
typedef struct {
    double test_accuracy;     /* final test accuracy, 0..1 */
    long long test_n;         /* test samples it was measured on */
    long long train_n;        /* usable training rows */
    int nclasses;             /* classes of the classifier */
} bn_train_result;

void bn_train_cfg_init(bn_train_cfg *cfg);

/* The settings a command line or job file can get wrong, checked without
 * touching a file: 0, or -1 with a one-line reason in err (named with the
 * command-line option names). */
int bn_train_cfg_check(const bn_train_cfg *cfg, char *err, size_t errlen);

/* Collective over comm. Train the final layer on cfg->features and write
 * cfg->out and the labels file. Returns BN_EXIT_OK or BN_EXIT_FAIL (the
 * same on every rank); res (may be NULL) is filled on success. */
int bn_train_run(const bn_train_cfg *cfg, MPI_Comm comm, bn_train_result *res);

/* ------------------------------------------------------------ classify */

/* What classify is asked to do: the images in image_paths (one process does
 * the work), or a corpus (images or manifest set: extract, then score every
 * row into the CSV out). */
typedef struct {
    const char *weights;      /* the weights the classifier's features came from (checked by SHA-256) */
    const char *classifier;   /* classifier file from train */
    const char *const *image_paths; /* images mode: the files */
    int nimages;              /* images mode: how many */
    const char *images;       /* corpus mode: folder of class folders, or NULL */
    const char *manifest;     /* corpus mode: manifest, or NULL */
    const char *out;          /* corpus mode: predictions CSV */
    const char *features;     /* corpus mode: features file to fill or reuse; NULL: OUT.features.h5 */
    bn_engine_opts eng;       /* preprocess, dct, precision NULL: the classifier's (given: must match it);
                                 calibration: needed for an int8 classifier (its SHA-256 must match) */
    long long top;            /* classes reported per image (5) */
    const char *progress;     /* corpus mode: progress of the extract */
    long long decode_threads; /* corpus mode: the extract's decode threads per rank (0 = its default) */
    int quiet;                /* 1: no timing table from the extract */
    double price;             /* corpus mode: price of one node per hour, recorded by the extract; NaN: none */
} bn_classify_cfg;

/* What one classify run did (rank 0's view; corpus mode on every rank for
 * the status only). */
typedef struct {
    long long ok;             /* images scored */
    long long failed;         /* images that could not be decoded */
    long long labelled;       /* corpus mode: scored images whose label is a classifier class */
    long long right;          /* corpus mode: of them, top-1 right */
} bn_classify_result;

void bn_classify_cfg_init(bn_classify_cfg *cfg);

/* Collective over comm in corpus mode; in images mode rank 0 works and the
 * others return BN_EXIT_OK at once. Returns BN_EXIT_OK, BN_EXIT_FAIL,
 * BN_CLI_USAGE (out would overwrite an input) or BN_EXIT_RESUME (the
 * extract was stopped by a signal). */
int bn_classify_run(const bn_classify_cfg *cfg, MPI_Comm comm, bn_classify_result *res);

/* ------------------------------------------------------------ retrain */

/* retrain.py's workflow: extract into bottleneck_dir/features.h5, then
 * train. extract.out and train.features are set by bn_retrain_run. */
typedef struct {
    bn_extract_cfg extract;   /* images, weights, engine, split (out: ignored) */
    bn_train_cfg train;       /* out, labels and the training settings (features: ignored) */
    const char *bottleneck_dir; /* folder of the features file, made if missing */
} bn_retrain_cfg;

/* Collective over comm: make the folder, extract, train. Returns the exit
 * status of the first stage that did not succeed, or BN_EXIT_OK. */
int bn_retrain_run(const bn_retrain_cfg *cfg, MPI_Comm comm);

/* ------------------------------------------------------------ join */

/* Collective over comm. Merge the n shard files paths[] (from extract
 * --shard K/N) into out, the file one extract of the whole corpus would have
 * written. quiet: no summary line. Returns an exit status, the same on every
 * rank. */
int bn_join_run(const char *out, const char *const *paths, int n, MPI_Comm comm, int quiet);

#endif
