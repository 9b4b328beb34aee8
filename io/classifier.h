/* classifier.h: the retrained final layer, as "bneck train" writes it and
 * "bneck classify" reads it ("bneck-classifier" version 1, docs/classify.md).
 *
 * One small HDF5 file, written and read by one process (plain HDF5, no
 * MPI-IO): the weights and bias, the class names, the identity of the
 * features it was trained on (a classifier only makes sense with the same
 * Inception weights, preprocessing and precision), the settings of the run, the metric
 * history and the test result.
 */
#ifndef BN_CLASSIFIER_H
#define BN_CLASSIFIER_H

#include "io/runrec.h"

#include <stddef.h>

#define BN_CLASSIFIER_FORMAT "bneck-classifier" /* root attribute "format" */
#define BN_CLASSIFIER_VERSION 1                 /* root attribute "version" */

/* One evaluation step of training (a row of the "history" table). */
typedef struct {
    long long step;             /* 0-based step, as retrain.py prints it */
    double train_accuracy;      /* on that step's training batch, in [0, 1] */
    double cross_entropy;       /* mean over that batch */
    double validation_accuracy; /* on the validation sample, in [0, 1]; NaN when there is no validation set */
    long long validation_n;     /* images in the validation sample */
} bn_eval_point;

typedef struct {
    int dim;                  /* inputs (2048) */
    int nclasses;             /* outputs C */
    char **labels;            /* (C) class names (owned) */
    double *Wt;               /* (C, dim) weights, class-major (owned); the file stores W = Wt^T (dim, C) */
    double *b;                /* (C) bias (owned) */
    char weights_sha256[65];  /* identity of the features: Inception weights file */
    char preprocess[16];      /* identity: "keras" or "tf2015" */
    char dct[16];             /* identity: "accurate" or "fast" */
    char precision[8];        /* identity: "fp32", "bf16" or "int8" ("" is written as fp32); read as "fp32" from a
                                 file written before the attribute existed */
    char calibration_sha256[65]; /* identity: int8: SHA-256 (hex) of the calibration file; else "" */
    char corpus_sha256[65];   /* the features file's corpus */
    char *features_path;      /* the features file trained on (owned; informative) */
    char *settings;           /* JSON object: the training settings (owned) */
    long long nhistory;       /* rows of history */
    bn_eval_point *history;   /* (nhistory) (owned) */
    double test_accuracy;     /* final test accuracy in [0, 1]; NaN when there was no test set */
    long long test_n;         /* test images evaluated */
    long long *confusion;     /* (C, C) test counts, row = true class, column = predicted (owned) */
    long long train_n;        /* training rows used */
    long long excluded_n;     /* rows left out (failed or pending) */
    int has_run;              /* 1: run and rank_times below hold the training run's record (group "run");
                                 0: none (a file from before bneck recorded runs, or not given) */
    bn_run_summary run;       /* the training run: wall time, ranks, cores, node-hours, cost */
    int nranks;               /* rows of rank_times */
    double *rank_times;       /* (nranks, BN_TRAIN_TIMES) seconds per rank: load, step, reduce, eval, wall (owned) */
} bn_classifier;

#define BN_TRAIN_TIMES 5 /* columns of rank_times: load_s step_s reduce_s eval_s wall_s */

/* Write c to path: created as "path.partial" and renamed when complete, so
 * a crash never leaves a half-written classifier under its name. Returns 0,
 * or -1 with a reason naming the file in err. */
int bn_classifier_write(const char *path, const bn_classifier *c, char *err, size_t errlen);

/* Read path into c (zeroed first). Refuses a file that is not a
 * bneck-classifier of a known version, or whose datasets have other shapes
 * than its attributes say, with a reason naming the file. Returns 0 or -1. */
int bn_classifier_read(const char *path, bn_classifier *c, char *err, size_t errlen);

/* Write the class names, one per line, as retrain.py's output_labels. 0 or -1. */
int bn_classifier_write_labels(const char *path, const bn_classifier *c, char *err, size_t errlen);

void bn_classifier_free(bn_classifier *c);

#endif
