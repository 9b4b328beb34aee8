/* store.h: the shared HDF5 feature file that extract fills (docs/format.md).
 *
 * One file for all ranks, through parallel HDF5 (MPI-IO). Everything that
 * changes metadata (create, open, attributes, the timing table, close) is
 * collective and made with the same arguments on every rank; rows are then
 * written independently into datasets allocated up front, so ranks never wait
 * for each other while they work. Every collective step first agrees on
 * errors (an allreduce of a status), so a failure on one rank never leaves
 * the others hanging.
 */
#ifndef BN_STORE_H
#define BN_STORE_H

#include "io/corpus.h"
#include "io/runrec.h"

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>

#define BN_STORE_FORMAT "bneck-features" /* root attribute "format" */
#define BN_STORE_VERSION 1               /* root attribute "version" */
#define BN_REASON_LEN 160                /* bytes per error reason, NUL-padded */
#define BN_STORE_DEFAULT_PRECISION "fp32" /* what a file without a "precision" attribute holds (written before it existed) */

/* Per-image state in the "status" dataset. */
enum { BN_ROW_PENDING = 0, BN_ROW_DONE = 1, BN_ROW_FAILED = 2 };

/* What a file must match to be resumed (else it is refused, not mixed). */
typedef struct {
    char weights_sha256[65]; /* of the weights file */
    char preprocess[16];     /* "keras" or "tf2015" */
    char dct[16];            /* "accurate" or "fast" */
    char precision[8];       /* "fp32", "bf16" or "int8" ("" means fp32) */
    char calibration_sha256[65]; /* int8: SHA-256 (hex) of the calibration file; "" for fp32 and bf16 */
    char corpus_sha256[65];  /* "" (the usual case): computed from the corpus; set: recorded as the
                                corpus hash instead (bneck join, whose corpus comes from shard files) */
    char feature_dtype[8];   /* how rows are stored: "float32" ("" means float32) or "float16" */
} bn_store_identity;

/* Where a shard file sits in its whole corpus (a job array of extracts). */
typedef struct {
    int index;               /* this shard, 0 <= index < count */
    int count;               /* shards of the corpus */
    long long first;         /* corpus index of the shard's first image */
    long long corpus_n;      /* images in the whole corpus */
    char corpus_sha256[65];  /* hash of the whole corpus (docs/format.md) */
} bn_store_shard;

/* One rank's timing of one run, a row of the timing table. */
typedef struct {
    int rank;              /* MPI rank */
    long long done;        /* images whose features were written */
    long long failed;      /* images that could not be decoded */
    double read_s;         /* reading files */
    double decode_s;       /* decoding and resizing */
    double forward_s;      /* the network */
    double write_s;        /* writing rows */
    double idle_s;         /* waiting: for work, for decoded images, at the end */
    double wall_s;         /* from start to the end of this rank's work */
    double images_per_s;   /* (done + failed) / wall_s */
    int device;            /* the GPU the network ran on, or -1: the CPU */
    double gpu_s;          /* of forward_s: the GPU's own time on the network (0 on the CPU) */
    double copy_s;         /* of forward_s: the GPU's copies of images in and features out (0 on the CPU) */
    char host[BN_HOST_LEN];          /* the host the rank ran on ("" in older files) */
    char device_name[BN_DEVNAME_LEN]; /* what ran its network: "CPU model, N cores" or "GPU g" ("" in older files) */
    int cores;             /* CPU threads the rank used (0 in older files) */
} bn_rank_timing;

typedef struct bn_store bn_store;

/* Collective over comm. Create path for corpus c, or, when it exists, open
 * it to resume: the identity and the corpus (paths, labels, splits) must
 * match, or the call fails with a reason. The corpus may be headless on
 * ranks other than 0 (io/corpus.h): rank 0 then writes the per-image
 * constants alone and alone keeps the statuses. settings is a JSON object text
 * describing the run, stored as an attribute (replaced on resume).
 * *resumed says which happened. On failure every rank gets NULL and a reason
 * in err (the same decision on all ranks). */
bn_store *bn_store_open(const char *path, MPI_Comm comm, const bn_corpus *c, const bn_store_identity *id,
                        const char *settings, int *resumed, char *err, size_t errlen);

/* Collective. Mark s as shard sh of a corpus: a new file gets the shard
 * attributes (docs/format.md); a resumed one must carry the same, else -1
 * with a reason (the same on every rank). */
int bn_store_mark_shard(bn_store *s, const bn_store_shard *sh, char *err, size_t errlen);

/* Check a precision and calibration pair of an identity: precision one of
 * fp32, bf16, int8 ("" is fp32); calibration_sha256 64 hex digits for int8
 * and "" otherwise. Returns 0, or -1 with a one-line reason in err. */
int bn_store_check_precision(const char *precision, const char *calibration_sha256, char *err, size_t errlen);

/* SHA-256 (hex, 65 bytes) of a corpus listing, as the corpus_sha256
 * attribute holds it. */
void bn_store_corpus_sha256(const bn_corpus *c, char hex[65]);

/* (n,) status of every image, BN_ROW_*, as read at open and updated by this
 * rank's writes; NULL on a rank whose corpus is headless (io/corpus.h). */
const unsigned char *bn_store_status(const bn_store *s);

/* Independent. Write the results of cnt images, given by corpus index idx[]:
 * status[k] BN_ROW_DONE with feat row k (cnt, 2048), or BN_ROW_FAILED with
 * code[k] (a bn_img_status) and reason[k]. Features are written before the
 * statuses, so a kill at any moment never marks a row done without its
 * features. Returns 0, or -1 with a reason in err. */
int bn_store_write(bn_store *s, const long long *idx, int cnt, const float *feat, const unsigned char *status,
                   const unsigned char *code, const char *const *reason, char *err, size_t errlen);

/* Collective. Add this run's timing table (one row per rank; each rank passes
 * its own row) with the run record run as its attributes (NULL: none), and
 * this rank's throughput timeline tl into timeline/run_K (NULL: none);
 * record whether every image now has a result (complete), flush and close.
 * run must be the same on every rank. Returns 0, or -1 with a reason (same
 * on every rank). */
int bn_store_close(bn_store *s, const bn_rank_timing *mine, const bn_run_summary *run, const bn_timeline *tl,
                   int complete, char *err, size_t errlen);

/* Read timing table d (a dataset timing/run_K of n rows) into rows (n).
 * Fields an older file lacks are left 0 (device -1). Returns 0, or -1 with
 * msg set (BN_H5_MSG_LEN bytes). */
int bn_store_read_timing(hid_t d, bn_rank_timing *rows, long long n, char *msg);

/* Read timeline d (a dataset timeline/run_K) into new arrays rank (n) and
 * pts (n), in file order (rank by rank, by time). 0, or -1 with msg set. */
int bn_store_read_timeline(hid_t d, int **rank, bn_tl_point **pts, long long *n, char *msg);

/* Close without writing anything more (after an error agreed on by all). Collective. */
void bn_store_abort(bn_store *s);

#endif
