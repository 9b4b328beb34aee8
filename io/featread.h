/* featread.h: reading a features file (docs/format.md) for train and classify.
 *
 * Opening is collective over a communicator (parallel HDF5, MPI-IO): every
 * rank gets the per-image metadata (status, label, split: a few bytes per
 * image) and the identity. Feature rows are then read independently, each
 * rank only the rows it needs, by hyperslab.
 */
#ifndef BN_FEATREAD_H
#define BN_FEATREAD_H

#include "io/store.h"

#include <mpi.h>
#include <stddef.h>

typedef struct bn_feats_file bn_feats_file; /* the open HDF5 file (opaque) */

typedef struct {
    char *path;                 /* file name, for messages (owned) */
    long long n;                /* rows (images) */
    int dim;                    /* features per row (2048) */
    int nclasses;               /* classes */
    char **label_names;         /* (nclasses) class names (owned) */
    char weights_sha256[65];    /* identity: the weights the features came from */
    char preprocess[16];        /* identity: "keras" or "tf2015" */
    char dct[16];               /* identity: "accurate" or "fast" */
    char precision[8];          /* identity: "fp32", "bf16" or "int8"; "fp32" for a file written before the attribute */
    char calibration_sha256[65]; /* identity: int8: SHA-256 of the calibration file; else "" */
    char feature_dtype[8];      /* how rows are stored: "float32" (also a file written before the attribute) or
                                   "float16"; bn_feats_read gives float32 either way */
    char corpus_sha256[65];     /* the corpus listing (docs/format.md) */
    int complete;               /* root attribute "complete" */
    int is_shard;               /* 1: a shard of a job array (the shard_* attributes), with shard set */
    bn_store_shard shard;       /* where the shard sits in its whole corpus, when is_shard */
    unsigned char *status;      /* (n) BN_ROW_* (owned) */
    unsigned char *split;       /* (n) bn_split (owned) */
    int *label;                 /* (n) class index (owned) */
    unsigned long long *path_offsets; /* (n+1), after bn_feats_load_paths, else NULL */
    char *path_bytes;           /* all paths, after bn_feats_load_paths, else NULL */
    bn_feats_file *file;        /* (owned) */
} bn_feats;

/* Collective. Open path and read its metadata on every rank. Refuses, with a
 * reason in err (the same on every rank), anything that is not a
 * bneck-features file of a known version, or whose metadata is inconsistent
 * (a label out of range, a bad split value). Returns 0 or -1. */
int bn_feats_open(const char *path, MPI_Comm comm, bn_feats *f, char *err, size_t errlen);

/* Independent. Read rows rows[0..cnt) (ascending row numbers) into out
 * (cnt, dim). Rows within a span of 1024 are read together, in one
 * hyperslab. Returns 0, or -1 with a reason (rows out of range or not
 * strictly ascending included). */
int bn_feats_read(bn_feats *f, const long long *rows, long long cnt, float *out, char *err, size_t errlen);

/* Independent. Read error_code and error_reason of rows [lo, lo+cnt) into
 * code (cnt) and reason (cnt, BN_REASON_LEN), NUL-padded. 0 or -1. */
int bn_feats_read_errors(bn_feats *f, long long lo, long long cnt, unsigned char *code, char *reason, char *err,
                         size_t errlen);

/* Independent. Load every image path (path_offsets, path_bytes). 0 or -1. */
int bn_feats_load_paths(bn_feats *f, char *err, size_t errlen);

/* Path of row i as a new NUL-terminated string (after bn_feats_load_paths). */
char *bn_feats_path(const bn_feats *f, long long i);

/* One finished run of the file: its timing table, run record and timeline. */
typedef struct {
    int index;               /* K of timing/run_K */
    int ranks;               /* rows of the table */
    int complete;            /* the table's attribute "complete" */
    char finished[32];       /* its attribute "finished" (UTC) */
    bn_rank_timing *rows;    /* (ranks) (owned) */
    int has_run;             /* 1: the run record (io/runrec.h) is there; 0: a file from before bneck recorded it */
    bn_run_summary run;      /* the record, when has_run */
    long long ntl;           /* timeline samples; 0: no timeline (older files) */
    int *tl_rank;            /* (ntl) the rank of each sample (owned) */
    bn_tl_point *tl;         /* (ntl) the samples, rank by rank, by time (owned) */
} bn_feats_run;

/* Independent (one rank reads). Every finished run of f, by K, into a new
 * array *runs of *nruns. Returns 0, or -1 with a reason. */
int bn_feats_read_runs(bn_feats *f, bn_feats_run **runs, int *nruns, char *err, size_t errlen);
void bn_feats_runs_free(bn_feats_run *runs, int nruns);

/* Collective. Close the file and free everything. */
void bn_feats_close(bn_feats *f);

#endif
