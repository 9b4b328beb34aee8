/* train.c: "bneck train" - retrain the final layer on a features file, with
 * retrain.py's semantics and defaults, data-parallel over MPI ranks.
 *
 * Every rank holds one contiguous block of the usable rows (status done),
 * read by hyperslab, and so a block of the training, validation and test
 * rows. All ranks draw the same global batch from one seeded generator; each
 * computes the error signal of the samples it holds and their gradient; one
 * MPI_Allreduce sums the gradients and every rank applies the same update.
 * Gradients are summed in exact arithmetic (net/softmax.h), so the classifier
 * is bitwise the same whatever the number of ranks.
 */
#include "config.h"

#include "io/classifier.h"
#include "io/corpus.h"
#include "io/featread.h"
#include "io/store.h"
#include "net/softmax.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/rng.h"
#include "pipeline/settings.h"
#include "stages/stages.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 4096 /* rows per read while loading */
#define TILE 256        /* samples of a step processed together */

/* Streams of the seeded generator: one per purpose, so that changing how
 * often evaluation runs never changes the training batches. */
enum { STREAM_INIT = 1, STREAM_BATCH = 2, STREAM_EVAL = 3 };

/* The rows of one split: global numbering (every rank knows all of it) and
 * the block this rank holds. */
typedef struct {
    long long n;          /* rows in the split (all ranks) */
    long long *row;       /* (n) file row of each, ascending */
    int *label;           /* (n) class of each */
    long long *by_class;  /* (n) split indices grouped by class */
    long long *class_at;  /* (C + 1) start of each class in by_class */
    long long lo, hi;     /* this rank holds split indices [lo, hi) */
    float *x;             /* (hi - lo, dim) this rank's features */
} split_t;

/* Per-rank timing of a training run. */
typedef struct {
    int rank;             /* MPI rank */
    long long train_rows; /* training rows held */
    long long val_rows;   /* validation rows held */
    long long test_rows;  /* test rows held */
    double load_s;        /* reading the features file */
    double step_s;        /* computing gradients and updates */
    double reduce_s;      /* in MPI_Allreduce of the gradients (includes waiting for slower ranks) */
    double eval_s;        /* evaluation steps and the final test */
    double wall_s;        /* the whole run */
} train_timing;

static void split_free(split_t *s) {
    free(s->row);
    free(s->label);
    free(s->by_class);
    free(s->class_at);
    free(s->x);
    memset(s, 0, sizeof *s);
}

/* Build the global lists of split sp from the metadata, and this rank's
 * block: the split indices whose rows fall in file rows [rlo, rhi). */
static void split_build(split_t *s, const bn_feats *f, int sp, long long rlo, long long rhi) {
    memset(s, 0, sizeof *s);
    for (long long i = 0; i < f->n; i++) s->n += f->status[i] == BN_ROW_DONE && f->split[i] == sp;
    s->row = mallocCheck(sizeof(long long) * (size_t)(s->n + 1));
    s->label = mallocCheck(sizeof(int) * (size_t)(s->n + 1));
    s->by_class = mallocCheck(sizeof(long long) * (size_t)(s->n + 1));
    s->class_at = callocCheck((size_t)f->nclasses + 1, sizeof(long long));
    long long k = 0;
    s->lo = -1;
    for (long long i = 0; i < f->n; i++) {
        if (f->status[i] != BN_ROW_DONE || f->split[i] != sp) continue;
        if (s->lo < 0 && i >= rlo) s->lo = k;
        if (i < rhi) s->hi = k + 1;
        s->row[k] = i;
        s->label[k] = f->label[i];
        s->class_at[f->label[i] + 1]++;
        k++;
    }
    if (s->lo < 0 || s->hi < s->lo) s->lo = s->hi = s->n; /* none of this split's rows in the block */
    for (int c = 0; c < f->nclasses; c++) s->class_at[c + 1] += s->class_at[c];
    long long *fill = mallocCheck(sizeof(long long) * ((size_t)f->nclasses + 1));
    memcpy(fill, s->class_at, sizeof(long long) * ((size_t)f->nclasses + 1));
    for (long long j = 0; j < s->n; j++) s->by_class[fill[s->label[j]]++] = j;
    free(fill);
}

/* Draw one sample of split s: a class uniformly among those with rows, then
 * a row of it (class sampling, retrain.py's); or a row uniformly (uniform). */
static long long draw(bn_rng *r, const split_t *s, int C, int class_sampling) {
    if (!class_sampling) return (long long)bn_rng_below(r, (uint64_t)s->n);
    for (;;) {
        int c = (int)bn_rng_below(r, (uint64_t)C);
        long long cnt = s->class_at[c + 1] - s->class_at[c];
        if (cnt > 0) return s->by_class[s->class_at[c] + (long long)bn_rng_below(r, (uint64_t)cnt)];
    }
}

/* Memory for feature rows. Batches touch rows at random, so large blocks ask
 * for huge pages (fewer TLB misses) where the kernel offers them. */
static float *rows_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        void *p = NULL;
        size_t len = (bytes + huge - 1) / huge * huge;
        if (posix_memalign(&p, huge, len) == 0) {
#ifdef MADV_HUGEPAGE
            madvise(p, len, MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
            return p;
        }
    }
    return mallocCheck(bytes);
}

/* Read this rank's rows of the three splits. Returns 0 or -1 (err set). */
static int load_rows(bn_feats *f, split_t *sp[3], char *err, size_t errlen) {
    const size_t dim = (size_t)f->dim;
    for (int k = 0; k < 3; k++) sp[k]->x = rows_alloc(((size_t)(sp[k]->hi - sp[k]->lo) + 1) * dim * sizeof(float));
    /* Merge the three blocks in row order and read in chunks. */
    long long pos[3] = {sp[0]->lo, sp[1]->lo, sp[2]->lo};
    long long *rows = mallocCheck(sizeof(long long) * READ_CHUNK);
    int *from = mallocCheck(sizeof(int) * READ_CHUNK);
    float *buf = mallocCheck(READ_CHUNK * dim * sizeof(float));
    int rc = 0;
    for (;;) {
        long long m = 0;
        while (m < READ_CHUNK) {
            int best = -1;
            for (int k = 0; k < 3; k++)
                if (pos[k] < sp[k]->hi && (best < 0 || sp[k]->row[pos[k]] < sp[best]->row[pos[best]])) best = k;
            if (best < 0) break;
            rows[m] = sp[best]->row[pos[best]];
            from[m++] = best;
            pos[best]++;
        }
        if (m == 0) break;
        if (bn_feats_read(f, rows, m, buf, err, errlen)) {
            rc = -1;
            break;
        }
        /* Each row goes to the next slot of its split's block, in order. */
        long long put[3] = {0, 0, 0};
        for (long long j = 0; j < m; j++) put[from[j]]++;
        long long base[3];
        for (int k = 0; k < 3; k++) base[k] = pos[k] - put[k] - sp[k]->lo;
        long long seen[3] = {0, 0, 0};
        for (long long j = 0; j < m; j++) {
            int k = from[j];
            memcpy(sp[k]->x + (size_t)(base[k] + seen[k]++) * dim, buf + (size_t)j * dim, dim * sizeof(float));
        }
    }
    free(buf);
    free(from);
    free(rows);
    return rc;
}

/* Correct predictions (and confusion counts, when conf is not NULL) of the
 * sample idx[0..n) of split s, counting only the samples this rank holds.
 * misses (when not NULL) collects (position in the sample, split index,
 * predicted class) of the wrong ones. */
static long long evaluate(const split_t *s, const long long *idx, long long n, const double *Wt, const double *b, int C,
                          int dim, long long *conf, long long **misses, long long *nmiss) {
    double *z = mallocCheck(sizeof(double) * (size_t)C), *xd = mallocCheck(sizeof(double) * (size_t)dim);
    long long correct = 0;
    for (long long j = 0; j < n; j++) {
        long long t = idx ? idx[j] : j;
        if (t < s->lo || t >= s->hi) continue;
        bn_sm_widen(s->x + (size_t)(t - s->lo) * dim, dim, xd);
        bn_sm_logits(Wt, b, C, dim, xd, z);
        int pred = bn_sm_argmax(z, C), y = s->label[t];
        correct += pred == y;
        if (conf) conf[(size_t)y * C + pred]++;
        if (misses && pred != y) {
            *misses = reallocCheck(*misses, sizeof(long long) * 3 * (size_t)(*nmiss + 1));
            (*misses)[3 * *nmiss] = j;
            (*misses)[3 * *nmiss + 1] = t;
            (*misses)[3 * *nmiss + 2] = pred;
            (*nmiss)++;
        }
    }
    free(xd);
    free(z);
    return correct;
}

/* Widen the rows of n samples (batch positions pos[0..n)) of split s into X
 * (n, dim) and their labels into y; next (a batch position, or -1) is the
 * sample after them, whose row is prefetched. Rows are drawn at random, so
 * each is prefetched one sample ahead. */
static void load_tile(const split_t *s, const long long *batch, const long long *pos, int n, long long next, int dim,
                      double *X, int *y) {
    for (int k = 0; k < n; k++) {
        long long t = batch[pos[k]];
        long long after = k + 1 < n ? batch[pos[k + 1]] : next >= 0 ? batch[next] : -1;
        if (after >= 0) bn_sm_prefetch(s->x + (size_t)(after - s->lo) * dim, dim);
        bn_sm_widen(s->x + (size_t)(t - s->lo) * dim, dim, X + (size_t)k * dim);
        y[k] = s->label[t];
    }
}

/* qsort order of records whose first field is a long long key. */
static int cmp_first(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* A sample of split s of size want (-1: all of it, in order, idx = NULL). */
static long long *eval_sample(bn_rng *r, const split_t *s, int C, int class_sampling, long long want, long long *n) {
    if (want < 0) {
        *n = s->n;
        return NULL;
    }
    long long *idx = mallocCheck(sizeof(long long) * (size_t)(want + 1));
    for (long long j = 0; j < want; j++) idx[j] = draw(r, s, C, class_sampling);
    *n = want;
    return idx;
}

static void print_timing(const train_timing *t, int size, double wall) {
    printf("\nrank  train rows  val rows  test rows    load s    step s  allreduce s    eval s    wall s\n");
    double red = 0, step = 0;
    for (int r = 0; r < size; r++) {
        printf("%4d %11lld %9lld %10lld %9.3f %9.3f %12.3f %9.3f %9.3f\n", t[r].rank, t[r].train_rows, t[r].val_rows,
               t[r].test_rows, t[r].load_s, t[r].step_s, t[r].reduce_s, t[r].eval_s, t[r].wall_s);
        red += t[r].reduce_s;
        step += t[r].step_s + t[r].reduce_s;
    }
    printf("allreduce share of the training steps: %.1f%% (all ranks)\n", step > 0 ? 100.0 * red / step : 0.0);
    printf("wall time: %.3f s on %d rank%s\n", wall, size, size == 1 ? "" : "s");
}

/* Print the confusion matrix (rows: true class; columns: predicted). */
static void print_confusion(const long long *conf, char **names, int C) {
    if (C > 20) {
        printf("Confusion matrix: %d classes, stored in the classifier file (dataset 'confusion')\n", C);
        return;
    }
    int w = 6;
    for (int c = 0; c < C; c++)
        if ((int)strlen(names[c]) > w) w = (int)strlen(names[c]);
    if (w > 24) w = 24;
    printf("Confusion matrix (rows: true class, columns: predicted class, in the same order):\n");
    printf("%*s", w, "");
    for (int c = 0; c < C; c++) printf(" %6d", c);
    printf("\n");
    for (int t = 0; t < C; t++) {
        printf("%-*.*s", w, w, names[t]);
        for (int p = 0; p < C; p++) printf(" %6lld", conf[(size_t)t * C + p]);
        printf("   (%d)\n", t);
    }
}

/* Do two paths name the same existing file (or the same name)? */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!strcmp(a, b)) return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Default labels file: OUT with its .h5 extension replaced by .labels.txt. */
static char *default_labels(const char *out) {
    size_t n = strlen(out);
    const char *ext = strrchr(out, '.');
    const char *slash = strrchr(out, '/');
    if (ext && (!slash || ext > slash)) n = (size_t)(ext - out);
    char *s = mallocCheck(n + 16);
    memcpy(s, out, n);
    strcpy(s + n, ".labels.txt");
    return s;
}

/* ------------------------------------------------------------ a run, step by step */

/* Everything one training run holds. */
typedef struct {
    const bn_train_cfg *o;
    MPI_Comm comm;
    int rank, size;
    const char *labels_out;  /* o->labels or the default */
    char *labels_buf;        /* the default, owned */
    double t_start;
    train_timing me;
    char err[1024];
    bn_feats f;
    int opened;
    int C, dim, class_sampling;
    long long ndone, nfailed, npending;
    split_t tr, va, te;
    int xbits, gbits;
    double *Wt, *b;          /* the layer, W transposed */
    bn_rng rinit, rbatch, reval;
    bn_eval_point *hist;     /* evaluation history */
    long long nhist, cap;
    /* the final test */
    long long nt, nmiss, *misses, totmiss, *allmiss;
    long long *conf, *gconf;
    double test_acc;
    train_timing *all;       /* rank 0: every rank's timing */
    bn_run_summary run;      /* the run record (every rank, after the final test) */
    char started[32];        /* UTC start */
} run_t;

/* Step buffers of the training loop. */
typedef struct {
    size_t nred;             /* C * dim + C: the reduced gradient [dWt | db] */
    double *red, *sum;
    long long *batch, *mine; /* the global batch; positions of this rank's samples */
    long long m;             /* how many of them */
    double *E, *Z, *X;       /* a tile's error signal, logits and widened rows */
    int *ytile;
    double *L, *gL;          /* evaluation sums [loss per batch position | train correct | validation correct] */
    double step_scale;
} step_bufs;

static void run_free(run_t *r) {
    free(r->all);
    free(r->allmiss);
    free(r->misses);
    free(r->conf);
    free(r->gconf);
    free(r->hist);
    free(r->Wt);
    free(r->b);
    split_free(&r->tr);
    split_free(&r->va);
    split_free(&r->te);
    if (r->opened) bn_feats_close(&r->f);
    free(r->labels_buf);
}

/* Rank 0 checks that the output folders are writable now, not after
 * training; every rank learns the outcome. */
static int check_outputs(run_t *r) {
    int ok = 1;
    if (r->rank == 0)
        for (int k = 0; k < 2 && ok; k++) {
            const char *path = k ? r->labels_out : r->o->out;
            char *dir = strdupCheck(path), *slash = strrchr(dir, '/');
            if (slash) slash[slash == dir ? 1 : 0] = 0;
            if (access(slash ? dir : ".", W_OK) != 0) {
                bn_error("create the folder first, or write somewhere else", "%s: cannot write into folder '%s' (%s)",
                         path, slash ? dir : ".", strerror(errno));
                ok = 0;
            }
            free(dir);
        }
    mpiCheck(MPI_Bcast(&ok, 1, MPI_INT, 0, r->comm));
    return ok ? 0 : -1;
}

static int open_features(run_t *r) {
    if (bn_feats_open(r->o->features, r->comm, &r->f, r->err, sizeof r->err)) {
        if (r->rank == 0) bn_error("train reads the file bneck extract writes (docs/format.md)", "%s", r->err);
        return -1;
    }
    r->opened = 1;
    r->C = r->f.nclasses;
    r->dim = r->f.dim;
    r->class_sampling = strcmp(r->o->sampling, "class") == 0;
    return 0;
}

/* The usable rows, this rank's block of them, and the three splits. */
static void build_splits(run_t *r) {
    const bn_feats *f = &r->f;
    for (long long i = 0; i < f->n; i++) {
        r->ndone += f->status[i] == BN_ROW_DONE;
        r->nfailed += f->status[i] == BN_ROW_FAILED;
        r->npending += f->status[i] == BN_ROW_PENDING;
    }
    long long dlo = r->ndone * r->rank / r->size, dhi = r->ndone * (r->rank + 1) / r->size, rlo = f->n, rhi = f->n;
    for (long long i = 0, k = 0; i < f->n; i++) {
        if (f->status[i] != BN_ROW_DONE) continue;
        if (k == dlo) rlo = i;
        if (k == dhi) {
            rhi = i;
            break;
        }
        k++;
    }
    if (dhi == r->ndone) rhi = f->n;
    split_build(&r->tr, f, BN_SPLIT_TRAIN, rlo, rhi);
    split_build(&r->va, f, BN_SPLIT_VAL, rlo, rhi);
    split_build(&r->te, f, BN_SPLIT_TEST, rlo, rhi);
}

/* Refuse what cannot be trained (every rank decides the same). */
static int refuse_untrainable(run_t *r) {
    const char *features = r->o->features;
    const int C = r->C;
    char why[1024] = "";
    const char *hint = NULL;
    if (C < 2) {
        snprintf(why, sizeof why, "%s: has %d class; training needs at least 2", features, C);
        hint = "a corpus needs two or more class folders (or manifest labels)";
    } else if (C > 4096) {
        snprintf(why, sizeof why, "%s: has %d classes; bneck train handles at most 4096 (the confusion matrix and "
                 "gradient grow as the square and the product of classes and features)", features, C);
        hint = "group the classes, or train on a subset";
    } else if (r->tr.n == 0 || r->va.n == 0 || r->te.n == 0) {
        const char *which = r->tr.n == 0 ? "training" : r->va.n == 0 ? "validation" : "test";
        snprintf(why, sizeof why, "%s: no usable %s images (%lld done rows: %lld train, %lld validation, %lld test; %lld failed, %lld pending)",
                 features, which, r->ndone, r->tr.n, r->va.n, r->te.n, r->nfailed, r->npending);
        hint = r->npending ? "finish the extraction first: rerun bneck extract with the same --out to resume it"
                           : "extract with nonzero --validation-percentage and --testing-percentage, or add images";
    } else if (r->class_sampling) {
        for (int c = 0; c < C; c++)
            if (r->tr.class_at[c + 1] == r->tr.class_at[c]) {
                snprintf(why, sizeof why, "%s: class '%s' has no usable training images, so class-balanced sampling cannot draw it",
                         features, r->f.label_names[c]);
                hint = "add images to that class, or train with --sampling uniform";
                break;
            }
    }
    if (!why[0]) return 0;
    if (r->rank == 0) bn_error(hint, "%s", why);
    return -1;
}

static void announce(const run_t *r) {
    if (r->rank != 0) return;
    if (r->nfailed + r->npending)
        bn_warn("%s: %lld of %lld rows left out (%lld failed, %lld pending)%s", r->o->features, r->nfailed + r->npending,
                r->f.n, r->nfailed, r->npending,
                r->npending ? "; the extraction is unfinished: rerun bneck extract to complete it" : "");
    if (!r->o->quiet)
        bn_info("training on %s (%s features): %lld train, %lld validation, %lld test images in %d classes; %d rank%s",
                r->o->features, r->f.precision, r->tr.n, r->va.n, r->te.n, r->C, r->size, r->size == 1 ? "" : "s");
}

/* Load this rank's rows (agreeing on failure) and refuse non-finite
 * features, which would poison every rank's weights, and rows no network
 * gives (negative, or all zero: a bottleneck is an average of ReLU outputs),
 * which a file damaged after a crash holds. */
static int load_checked_rows(run_t *r) {
    double t0 = bn_now();
    split_t *sp[3] = {&r->tr, &r->va, &r->te};
    int ok = load_rows(&r->f, sp, r->err, sizeof r->err) == 0, all_ok = 0;
    mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, r->comm));
    if (!all_ok) {
        if (!ok) bn_error("the file may be damaged or truncated; rerun bneck extract into a new file", "%s", r->err);
        return -1;
    }
    r->me.load_s = bn_now() - t0;
    r->me.train_rows = r->tr.hi - r->tr.lo;
    r->me.val_rows = r->va.hi - r->va.lo;
    r->me.test_rows = r->te.hi - r->te.lo;
    const int dim = r->dim;
    long long bad = -1;
    int why = 0; /* 1 non-finite, 2 negative, 3 all zero */
    for (int k = 0; k < 3 && bad < 0; k++)
        for (size_t i = 0; bad < 0 && i < (size_t)(sp[k]->hi - sp[k]->lo); i++) {
            const float *x = sp[k]->x + i * (size_t)dim;
            int nonzero = 0;
            for (int j = 0; j < dim && !why; j++) {
                if (!isfinite(x[j])) why = 1;
                else if (x[j] < 0) why = 2;
                if (x[j] != 0) nonzero = 1;
            }
            if (!why && !nonzero) why = 3;
            if (why) bad = sp[k]->row[sp[k]->lo + (long long)i];
        }
    long long first_bad = bad < 0 ? LLONG_MAX : bad, any_bad = 0;
    mpiCheck(MPI_Allreduce(&first_bad, &any_bad, 1, MPI_LONG_LONG, MPI_MIN, r->comm));
    if (any_bad != LLONG_MAX) {
        int w = bad == any_bad ? why : 0, wall = 0; /* why, from the rank holding that row */
        mpiCheck(MPI_Allreduce(&w, &wall, 1, MPI_INT, MPI_MAX, r->comm));
        static const char *what[4] = {"", "a non-finite feature", "a negative feature", "only zeros"};
        if (r->rank == 0)
            bn_error("recompute that row: rerun bneck extract into a new file",
                     "%s: row %lld holds %s, which no network gives: the file is damaged", r->o->features, any_bad,
                     what[wall]);
        return -1;
    }
    return 0;
}

/* Round the training features to the exact-gradient grid (net/softmax.h). */
static void round_features(run_t *r) {
    const int dim = r->dim;
    r->xbits = 24;
    r->gbits = 22;
    bn_sm_bits(r->o->batch, &r->xbits, &r->gbits);
    float *cmax = callocCheck((size_t)dim, sizeof(float)), *gmax = callocCheck((size_t)dim, sizeof(float));
    for (long long k = 0; k < r->tr.hi - r->tr.lo; k++)
        for (int i = 0; i < dim; i++) {
            float a = fabsf(r->tr.x[(size_t)k * dim + i]);
            if (a > cmax[i]) cmax[i] = a;
        }
    mpiCheck(MPI_Allreduce(cmax, gmax, dim, MPI_FLOAT, MPI_MAX, r->comm));
    double *q = mallocCheck(sizeof(double) * (size_t)dim);
    bn_sm_grid(gmax, dim, r->xbits, q);
    bn_sm_round_rows(r->tr.x, (size_t)(r->tr.hi - r->tr.lo), dim, q);
    free(cmax);
    free(gmax);
    free(q);
}

/* The layer: W (dim, C) from a truncated normal, stddev 0.001, drawn in W's
 * row-major order; b = 0. Kept transposed (Wt). And the generators. */
static void init_layer(run_t *r) {
    const int C = r->C, dim = r->dim;
    r->Wt = mallocCheck(sizeof(double) * (size_t)C * dim);
    r->b = callocCheck((size_t)C, sizeof(double));
    bn_rng_seed_stream(&r->rinit, (uint64_t)r->o->seed, STREAM_INIT);
    bn_rng_seed_stream(&r->rbatch, (uint64_t)r->o->seed, STREAM_BATCH);
    bn_rng_seed_stream(&r->reval, (uint64_t)r->o->seed, STREAM_EVAL);
    for (int i = 0; i < dim; i++)
        for (int c = 0; c < C; c++) r->Wt[(size_t)c * dim + i] = bn_rng_truncated_normal(&r->rinit, 0.001);
}

/* Buffers of one step. This rank's samples of the batch are processed TILE
 * at a time (the gradient sums are exact, so tiling changes nothing). Each
 * loss slot of L has one contributor, so its sum is exact and the mean is
 * then taken in position order, the same on any rank count. */
static void bufs_alloc(step_bufs *s, const run_t *r) {
    const long long B = r->o->batch;
    s->nred = (size_t)r->C * r->dim + (size_t)r->C;
    s->red = mallocCheck(sizeof(double) * s->nred);
    s->sum = mallocCheck(sizeof(double) * s->nred);
    s->batch = mallocCheck(sizeof(long long) * (size_t)B);
    s->mine = mallocCheck(sizeof(long long) * (size_t)B);
    s->E = mallocCheck(sizeof(double) * TILE * r->C);
    s->Z = mallocCheck(sizeof(double) * TILE * r->C);
    s->X = mallocCheck(sizeof(double) * TILE * r->dim);
    s->ytile = mallocCheck(sizeof(int) * TILE);
    s->L = mallocCheck(sizeof(double) * ((size_t)B + 2));
    s->gL = mallocCheck(sizeof(double) * ((size_t)B + 2));
    s->step_scale = r->o->learning_rate * ldexp(1.0, -r->gbits) / (double)B;
}

static void bufs_free(step_bufs *s) {
    free(s->X);
    free(s->E);
    free(s->Z);
    free(s->ytile);
    free(s->L);
    free(s->gL);
    free(s->mine);
    free(s->batch);
    free(s->sum);
    free(s->red);
}

/* One step: draw the global batch, this rank's gradient, the allreduce, the
 * same update on every rank. */
static void train_step(run_t *r, step_bufs *s) {
    const int C = r->C, dim = r->dim;
    double ts = bn_now();
    s->m = 0;
    for (long long j = 0; j < r->o->batch; j++) {
        long long t = s->batch[j] = draw(&r->rbatch, &r->tr, C, r->class_sampling);
        if (t >= r->tr.lo && t < r->tr.hi) s->mine[s->m++] = j;
    }
    memset(s->red, 0, sizeof(double) * s->nred);
    for (long long k0 = 0; k0 < s->m; k0 += TILE) {
        int n = (int)(s->m - k0 < TILE ? s->m - k0 : TILE);
        load_tile(&r->tr, s->batch, s->mine + k0, n, s->m - k0 > n ? s->mine[k0 + n] : -1, dim, s->X, s->ytile);
        bn_sm_logits_batch(r->Wt, r->b, C, dim, s->X, n, s->Z);
        for (int k = 0; k < n; k++) {
            double loss;
            int correct;
            bn_sm_error(s->Z + (size_t)k * C, C, s->ytile[k], r->gbits, s->E + (size_t)k * C, &loss, &correct);
        }
        bn_sm_accumulate(n, C, dim, s->E, s->X, s->red, s->red + (size_t)C * dim);
    }
    double tr0 = bn_now();
    r->me.step_s += tr0 - ts;
    mpiCheck(MPI_Allreduce(s->red, s->sum, (int)s->nred, MPI_DOUBLE, MPI_SUM, r->comm));
    double tr1 = bn_now();
    r->me.reduce_s += tr1 - tr0;
    for (size_t j = 0; j < (size_t)C * dim; j++) r->Wt[j] -= s->step_scale * s->sum[j];
    for (int c = 0; c < C; c++) r->b[c] -= s->step_scale * s->sum[(size_t)C * dim + c];
    r->me.step_s += bn_now() - tr1;
}

/* retrain.py's evaluation after step `step`: the same batch after the
 * update, then a validation sample; one history point and the Step lines. */
static void eval_step(run_t *r, step_bufs *s, long long step) {
    const int C = r->C, dim = r->dim;
    const long long B = r->o->batch;
    double te0 = bn_now();
    memset(s->L, 0, sizeof(double) * ((size_t)B + 2));
    for (long long k0 = 0; k0 < s->m; k0 += TILE) {
        int n = (int)(s->m - k0 < TILE ? s->m - k0 : TILE);
        load_tile(&r->tr, s->batch, s->mine + k0, n, -1, dim, s->X, s->ytile);
        bn_sm_logits_batch(r->Wt, r->b, C, dim, s->X, n, s->Z);
        for (int k = 0; k < n; k++) {
            double loss;
            int correct;
            bn_sm_error(s->Z + (size_t)k * C, C, s->ytile[k], r->gbits, s->E, &loss, &correct);
            s->L[s->mine[k0 + k]] = loss;
            s->L[B] += correct;
        }
    }
    long long nv = 0;
    long long *vidx = eval_sample(&r->reval, &r->va, C, r->class_sampling, r->o->validation_batch, &nv);
    s->L[B + 1] = (double)evaluate(&r->va, vidx, nv, r->Wt, r->b, C, dim, NULL, NULL, NULL);
    free(vidx);
    mpiCheck(MPI_Allreduce(s->L, s->gL, (int)B + 2, MPI_DOUBLE, MPI_SUM, r->comm));
    double ce = 0;
    for (long long j = 0; j < B; j++) ce += s->gL[j];
    if (r->nhist == r->cap) r->hist = reallocCheck(r->hist, sizeof *r->hist * (size_t)(r->cap *= 2));
    bn_eval_point *h = &r->hist[r->nhist++];
    h->step = step;
    h->train_accuracy = s->gL[B] / (double)B;
    h->cross_entropy = ce / (double)B;
    h->validation_accuracy = s->gL[B + 1] / (double)nv;
    h->validation_n = nv;
    if (r->rank == 0 && !r->o->quiet) {
        printf("Step %lld: Train accuracy = %.1f%%\n", step, h->train_accuracy * 100);
        printf("Step %lld: Cross entropy = %f\n", step, h->cross_entropy);
        printf("Step %lld: Validation accuracy = %.1f%% (N=%lld)\n", step, h->validation_accuracy * 100, nv);
        fflush(stdout);
    }
    r->me.eval_s += bn_now() - te0;
}

static void train_loop(run_t *r) {
    step_bufs s;
    bufs_alloc(&s, r);
    r->cap = 64;
    r->hist = mallocCheck(sizeof *r->hist * (size_t)r->cap);
    for (long long step = 0; step < r->o->steps; step++) {
        train_step(r, &s);
        if (step % r->o->eval_interval == 0 || step + 1 == r->o->steps) eval_step(r, &s, step);
    }
    bufs_free(&s);
}

/* The final test, on the whole test set by default; the misclassified test
 * images gathered to rank 0 in sample order (row order for the whole set). */
static void final_test(run_t *r) {
    const int C = r->C;
    const bn_train_cfg *o = r->o;
    double te0 = bn_now();
    long long *tidx = eval_sample(&r->reval, &r->te, C, r->class_sampling, o->test_batch, &r->nt);
    r->conf = callocCheck((size_t)C * C + 1, sizeof(long long));
    r->gconf = callocCheck((size_t)C * C + 1, sizeof(long long));
    r->conf[(size_t)C * C] = evaluate(&r->te, tidx, r->nt, r->Wt, r->b, C, r->dim, r->conf,
                                      o->print_misclassified ? &r->misses : NULL, &r->nmiss);
    free(tidx);
    mpiCheck(MPI_Allreduce(r->conf, r->gconf, C * C + 1, MPI_LONG_LONG, MPI_SUM, r->comm));
    r->test_acc = (double)r->gconf[(size_t)C * C] / (double)r->nt;
    if (o->print_misclassified) {
        int *counts = NULL, *displs = NULL;
        int mymiss = (int)(3 * r->nmiss);
        if (r->rank == 0) {
            counts = mallocCheck(sizeof(int) * (size_t)r->size);
            displs = mallocCheck(sizeof(int) * (size_t)r->size);
        }
        mpiCheck(MPI_Gather(&mymiss, 1, MPI_INT, counts, 1, MPI_INT, 0, r->comm));
        if (r->rank == 0) {
            for (int k = 0; k < r->size; k++) {
                displs[k] = (int)r->totmiss;
                r->totmiss += counts[k];
            }
            r->allmiss = mallocCheck(sizeof(long long) * (size_t)(r->totmiss + 1));
        }
        mpiCheck(MPI_Gatherv(r->misses, mymiss, MPI_LONG_LONG, r->allmiss, counts, displs, MPI_LONG_LONG, 0, r->comm));
        if (r->rank == 0) qsort(r->allmiss, (size_t)(r->totmiss / 3), 3 * sizeof(long long), cmp_first);
        free(counts);
        free(displs);
    }
    r->me.eval_s += bn_now() - te0;
    r->me.wall_s = bn_now() - r->t_start;
    r->all = r->rank == 0 ? mallocCheck(sizeof *r->all * (size_t)r->size) : NULL;
    mpiCheck(MPI_Gather(&r->me, (int)sizeof r->me, MPI_BYTE, r->all, (int)sizeof r->me, MPI_BYTE, 0, r->comm));
    bn_run_gather(&r->run, r->comm, "train", r->t_start, r->started, r->me.wall_s, (int)r->o->threads, -1, r->tr.n, "",
                  r->o->price);
}

/* Rank 0: the accuracy, the confusion matrix, the misclassified list. */
static int report_test(run_t *r) {
    printf("Final test accuracy = %.1f%% (N=%lld)\n", r->test_acc * 100, r->nt);
    if (!r->o->quiet) print_confusion(r->gconf, r->f.label_names, r->C);
    if (!r->o->print_misclassified) return 0;
    if (bn_feats_load_paths(&r->f, r->err, sizeof r->err)) {
        bn_error(NULL, "%s", r->err);
        return -1;
    }
    printf("=== MISCLASSIFIED TEST IMAGES ===\n");
    for (long long j = 0; j < r->totmiss / 3; j++) {
        long long t = r->allmiss[3 * j + 1];
        char *path = bn_feats_path(&r->f, r->te.row[t]);
        printf("%70s  true: %s  predicted: %s\n", path, r->f.label_names[r->te.label[t]],
               r->f.label_names[r->allmiss[3 * j + 2]]);
        free(path);
    }
    return 0;
}

/* Rank 0: the classifier file and the labels file. */
static int write_outputs(run_t *r) {
    const bn_train_cfg *o = r->o;
    bn_settings *set = bn_settings_new();
    bn_settings_str(set, "features", o->features);
    bn_settings_int(set, "steps", o->steps);
    bn_settings_double(set, "learning_rate", o->learning_rate);
    bn_settings_int(set, "batch", o->batch);
    bn_settings_int(set, "eval_interval", o->eval_interval);
    bn_settings_int(set, "validation_batch", o->validation_batch);
    bn_settings_int(set, "test_batch", o->test_batch);
    bn_settings_str(set, "sampling", o->sampling);
    bn_settings_int(set, "seed", o->seed);
    bn_settings_int(set, "ranks", r->size);
    bn_settings_int(set, "feature_bits", r->xbits);
    bn_settings_int(set, "gradient_bits", r->gbits);
    bn_settings_str(set, "feature_dtype", r->f.feature_dtype);
    char *settings = bn_settings_finish(set);
    bn_classifier cl;
    memset(&cl, 0, sizeof cl);
    cl.dim = r->dim;
    cl.nclasses = r->C;
    cl.labels = r->f.label_names;
    cl.Wt = r->Wt;
    cl.b = r->b;
    memcpy(cl.weights_sha256, r->f.weights_sha256, sizeof cl.weights_sha256);
    memcpy(cl.preprocess, r->f.preprocess, sizeof cl.preprocess);
    memcpy(cl.dct, r->f.dct, sizeof cl.dct);
    memcpy(cl.precision, r->f.precision, sizeof cl.precision);
    memcpy(cl.calibration_sha256, r->f.calibration_sha256, sizeof cl.calibration_sha256);
    memcpy(cl.corpus_sha256, r->f.corpus_sha256, sizeof cl.corpus_sha256);
    cl.features_path = (char *)o->features;
    cl.settings = settings;
    cl.nhistory = r->nhist;
    cl.history = r->hist;
    cl.test_accuracy = r->test_acc;
    cl.test_n = r->nt;
    cl.confusion = r->gconf;
    cl.train_n = r->tr.n;
    cl.excluded_n = r->nfailed + r->npending;
    cl.has_run = 1;
    cl.run = r->run;
    cl.nranks = r->size;
    cl.rank_times = mallocCheck(sizeof *cl.rank_times * BN_TRAIN_TIMES * (size_t)r->size);
    for (int k = 0; k < r->size; k++) {
        double *row = cl.rank_times + (size_t)k * BN_TRAIN_TIMES;
        row[0] = r->all[k].load_s, row[1] = r->all[k].step_s, row[2] = r->all[k].reduce_s;
        row[3] = r->all[k].eval_s, row[4] = r->all[k].wall_s;
    }
    int wrc = bn_classifier_write(o->out, &cl, r->err, sizeof r->err);
    if (!wrc) wrc = bn_classifier_write_labels(r->labels_out, &cl, r->err, sizeof r->err);
    free(cl.rank_times);
    free(settings);
    if (wrc) {
        bn_error("check that the folder exists and is writable", "%s", r->err);
        return -1;
    }
    if (!o->quiet) {
        print_timing(r->all, r->size, bn_now() - r->t_start);
        bn_run_print(stdout, &r->run);
        printf("classifier: %s, labels: %s\n", o->out, r->labels_out);
    }
    return 0;
}

/* ------------------------------------------------------------ entry points */

void bn_train_cfg_init(bn_train_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->sampling = "class";
    cfg->steps = 4000;
    cfg->batch = 100;
    cfg->eval_interval = 10;
    cfg->validation_batch = 100;
    cfg->test_batch = -1;
    cfg->seed = 0;
    cfg->threads = 1;
    cfg->learning_rate = 0.01;
    cfg->price = NAN;
}

int bn_train_cfg_check(const bn_train_cfg *o, char *err, size_t errlen) {
    if (!o->features) return snprintf(err, errlen, "--features FILE is required"), -1;
    if (!o->out) return snprintf(err, errlen, "--out FILE is required"), -1;
    if (o->validation_batch == 0) return snprintf(err, errlen, "--validation-batch must be -1 (all) or at least 1"), -1;
    if (o->test_batch == 0) return snprintf(err, errlen, "--test-batch must be -1 (all) or at least 1"), -1;
    if (!(o->learning_rate > 0)) return snprintf(err, errlen, "--learning-rate must be above 0"), -1;
    if (o->steps < 1 || o->batch < 1 || o->eval_interval < 1 || o->threads < 1)
        return snprintf(err, errlen, "--steps, --batch, --eval-interval and --threads must be at least 1"), -1;
    if (!o->sampling || (strcmp(o->sampling, "class") && strcmp(o->sampling, "uniform")))
        return snprintf(err, errlen, "--sampling must be class or uniform"), -1;
    char *lab = o->labels ? NULL : default_labels(o->out);
    const char *labels = o->labels ? o->labels : lab;
    int clash = same_file(o->out, o->features) || same_file(labels, o->features) || !strcmp(o->out, labels);
    free(lab);
    if (clash) return snprintf(err, errlen, "--out and the labels file must differ from each other and from --features"), -1;
    return 0;
}

int bn_train_run(const bn_train_cfg *o, MPI_Comm comm, bn_train_result *res) {
    run_t r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.comm = comm;
    mpiCheck(MPI_Comm_rank(comm, &r.rank));
    mpiCheck(MPI_Comm_size(comm, &r.size));
    r.me.rank = r.rank;
    if (!o->labels) r.labels_buf = default_labels(o->out);
    r.labels_out = o->labels ? o->labels : r.labels_buf;
    if (check_outputs(&r)) {
        run_free(&r);
        return BN_EXIT_FAIL;
    }
    r.t_start = bn_now();
    bn_utc_now(r.started);
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads((int)o->threads);
#endif
    if (open_features(&r)) {
        run_free(&r);
        return BN_EXIT_FAIL;
    }
    build_splits(&r);
    if (refuse_untrainable(&r)) {
        run_free(&r);
        return BN_EXIT_FAIL;
    }
    announce(&r);
    if (load_checked_rows(&r)) {
        run_free(&r);
        return BN_EXIT_FAIL;
    }
    round_features(&r);
    init_layer(&r);
    train_loop(&r);
    final_test(&r);
    int rc = BN_EXIT_OK;
    if (r.rank == 0) {
        if (report_test(&r)) rc = BN_EXIT_FAIL; /* the classifier is written all the same */
        if (write_outputs(&r)) rc = BN_EXIT_FAIL;
    }
    mpiCheck(MPI_Bcast(&rc, 1, MPI_INT, 0, comm));
    if (res && rc == BN_EXIT_OK) {
        res->test_accuracy = r.test_acc;
        res->test_n = r.nt;
        res->train_n = r.tr.n;
        res->nclasses = r.C;
    }
    run_free(&r);
    return rc;
}

/* ------------------------------------------------------------ command */

int bn_cmd_train(int argc, char **argv) {
    bn_train_cfg o;
    bn_train_cfg_init(&o);
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"features", 'f', BN_OPT_STRING, &o.features, "FILE", NULL, 0, 0, NULL, "features file from bneck extract; required"},
        {"out", 'o', BN_OPT_STRING, &o.out, "FILE", NULL, 0, 0, NULL, "classifier file to write (.h5); required"},
        {"labels", 0, BN_OPT_STRING, &o.labels, "FILE", "OUT with .labels.txt", 0, 0, NULL, "class names, one per line (retrain.py's output_labels)"},
        {"steps", 's', BN_OPT_INT, &o.steps, "N", "4000", 1, 1e12, NULL, "training steps (how_many_training_steps)"},
        {"learning-rate", 0, BN_OPT_DOUBLE, &o.learning_rate, "X", "0.01", 0, 1e6, NULL, "gradient descent step size"},
        {"batch", 0, BN_OPT_INT, &o.batch, "N", "100", 1, 1 << 24, NULL, "images per training step (train_batch_size)"},
        {"eval-interval", 0, BN_OPT_INT, &o.eval_interval, "N", "10", 1, 1e12, NULL, "evaluate every N steps, and at the last step"},
        {"validation-batch", 0, BN_OPT_INT, &o.validation_batch, "N", "100", -1, 1 << 24, NULL, "validation images per evaluation; -1: all of them"},
        {"test-batch", 0, BN_OPT_INT, &o.test_batch, "N", "-1", -1, 1 << 24, NULL, "test images for the final accuracy; -1: all of them"},
        {"sampling", 0, BN_OPT_CHOICE, &o.sampling, NULL, "class", 0, 0, "class|uniform",
         "class: a class uniformly, then one of its images (retrain.py); uniform: any image"},
        {"seed", 0, BN_OPT_INT, &o.seed, "N", "0", 0, 9.2e18, NULL, "random seed: initial weights and batches; same seed, same classifier"},
        BN_OPT_PRICE(&o.price),
        {"threads", 't', BN_OPT_INT, &o.threads, "N", "1", 1, 4096, NULL, "BLAS threads per rank (the steps are small: ranks scale better)"},
        {"print-misclassified", 0, BN_OPT_FLAG, &o.print_misclassified, NULL, NULL, 0, 0, NULL, "list the misclassified test images"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "train", "Retrain the final layer (softmax) on a features file, with retrain.py's semantics.",
        "mpirun -n R bneck train --features features.h5 --out classifier.h5 [options]",
        "Every rank holds a block of the rows; each step all ranks draw the same batch,\n"
        "compute the gradient of the samples they hold, sum it with MPI_Allreduce and\n"
        "apply the same update. The sum is exact, so the classifier is bitwise the same\n"
        "for any number of ranks. Rows that failed or are still pending are left out.\n"
        "Prints retrain.py's 'Step N: ...' lines every --eval-interval steps, then the\n"
        "final test accuracy and the confusion matrix. Layout: docs/train.md.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    char err[512];
    if (bn_train_cfg_check(&o, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    bn_cli_apply_verbosity(verbose, quiet);
    o.quiet = quiet;
    return bn_train_run(&o, MPI_COMM_WORLD, NULL);
}
