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

/* Settings of a run. */
typedef struct {
    const char *features, *out, *labels_out, *sampling;
    long long steps, batch, eval_interval, val_batch, test_batch, seed, threads;
    double lr;
    int print_misclassified, quiet;
} train_opts;

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

/* JSON string body with quotes and backslashes escaped (paths). */
static void json_str(char *dst, size_t len, const char *s) {
    size_t k = 0;
    for (; *s && k + 7 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            dst[k++] = '\\';
            dst[k++] = (char)ch;
        } else if (ch < 0x20) {
            k += (size_t)snprintf(dst + k, len - k, "\\u%04x", ch);
        } else {
            dst[k++] = (char)ch;
        }
    }
    dst[k] = 0;
}

static int run_train(const train_opts *o) {
    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size));
    double t_start = bn_now();
#ifdef HAVE_OPENBLAS
    openblas_set_num_threads((int)o->threads);
#endif
    train_timing me;
    memset(&me, 0, sizeof me);
    me.rank = rank;
    char err[1024] = "";
    bn_feats f;
    if (bn_feats_open(o->features, MPI_COMM_WORLD, &f, err, sizeof err)) {
        if (rank == 0) bn_error("train reads the file bneck extract writes (docs/format.md)", "%s", err);
        return BN_EXIT_FAIL;
    }
    const int C = f.nclasses, dim = f.dim;
    int class_sampling = strcmp(o->sampling, "class") == 0;

    /* Usable rows, and this rank's block of them. */
    long long ndone = 0, nfailed = 0, npending = 0;
    for (long long i = 0; i < f.n; i++) {
        ndone += f.status[i] == BN_ROW_DONE;
        nfailed += f.status[i] == BN_ROW_FAILED;
        npending += f.status[i] == BN_ROW_PENDING;
    }
    long long dlo = ndone * rank / size, dhi = ndone * (rank + 1) / size, rlo = f.n, rhi = f.n;
    for (long long i = 0, k = 0; i < f.n; i++) {
        if (f.status[i] != BN_ROW_DONE) continue;
        if (k == dlo) rlo = i;
        if (k == dhi) {
            rhi = i;
            break;
        }
        k++;
    }
    if (dhi == ndone) rhi = f.n;
    split_t tr, va, te;
    split_build(&tr, &f, BN_SPLIT_TRAIN, rlo, rhi);
    split_build(&va, &f, BN_SPLIT_VAL, rlo, rhi);
    split_build(&te, &f, BN_SPLIT_TEST, rlo, rhi);

    /* Refuse what cannot be trained (every rank decides the same). */
    char why[1024] = "";
    const char *hint = NULL;
    if (C < 2) {
        snprintf(why, sizeof why, "%s: has %d class; training needs at least 2", o->features, C);
        hint = "a corpus needs two or more class folders (or manifest labels)";
    } else if (C > 4096) {
        snprintf(why, sizeof why, "%s: has %d classes; bneck train handles at most 4096 (the confusion matrix and "
                 "gradient grow as the square and the product of classes and features)", o->features, C);
        hint = "group the classes, or train on a subset";
    } else if (tr.n == 0 || va.n == 0 || te.n == 0) {
        const char *which = tr.n == 0 ? "training" : va.n == 0 ? "validation" : "test";
        snprintf(why, sizeof why, "%s: no usable %s images (%lld done rows: %lld train, %lld validation, %lld test; %lld failed, %lld pending)",
                 o->features, which, ndone, tr.n, va.n, te.n, nfailed, npending);
        hint = npending ? "finish the extraction first: rerun bneck extract with the same --out to resume it"
                        : "extract with nonzero --validation-percentage and --testing-percentage, or add images";
    } else if (class_sampling) {
        for (int c = 0; c < C; c++)
            if (tr.class_at[c + 1] == tr.class_at[c]) {
                snprintf(why, sizeof why, "%s: class '%s' has no usable training images, so class-balanced sampling cannot draw it",
                         o->features, f.label_names[c]);
                hint = "add images to that class, or train with --sampling uniform";
                break;
            }
    }
    if (why[0]) {
        if (rank == 0) bn_error(hint, "%s", why);
        split_free(&tr);
        split_free(&va);
        split_free(&te);
        bn_feats_close(&f);
        return BN_EXIT_FAIL;
    }
    if (rank == 0) {
        if (nfailed + npending)
            bn_warn("%s: %lld of %lld rows left out (%lld failed, %lld pending)%s", o->features, nfailed + npending, f.n,
                    nfailed, npending, npending ? "; the extraction is unfinished: rerun bneck extract to complete it" : "");
        if (!o->quiet)
            bn_info("training on %s: %lld train, %lld validation, %lld test images in %d classes; %d rank%s", o->features,
                    tr.n, va.n, te.n, C, size, size == 1 ? "" : "s");
    }

    /* Load this rank's rows; agree on failure. */
    double t0 = bn_now();
    split_t *sp[3] = {&tr, &va, &te};
    int ok = load_rows(&f, sp, err, sizeof err) == 0, all_ok = 0;
    mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (!all_ok) {
        if (!ok) bn_error("the file may be damaged or truncated; rerun bneck extract into a new file", "%s", err);
        split_free(&tr);
        split_free(&va);
        split_free(&te);
        bn_feats_close(&f);
        return BN_EXIT_FAIL;
    }
    me.load_s = bn_now() - t0;
    me.train_rows = tr.hi - tr.lo;
    me.val_rows = va.hi - va.lo;
    me.test_rows = te.hi - te.lo;
    /* Non-finite features would poison every rank's weights: refuse them. */
    long long bad = -1;
    for (int k = 0; k < 3 && bad < 0; k++)
        for (size_t j = 0; j < (size_t)(sp[k]->hi - sp[k]->lo) * (size_t)dim; j++)
            if (!isfinite(sp[k]->x[j])) {
                bad = sp[k]->row[sp[k]->lo + (long long)(j / (size_t)dim)];
                break;
            }
    long long first_bad = bad < 0 ? LLONG_MAX : bad, any_bad = 0;
    mpiCheck(MPI_Allreduce(&first_bad, &any_bad, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD));
    if (any_bad != LLONG_MAX) {
        if (rank == 0) bn_error("recompute that row: rerun bneck extract into a new file", "%s: row %lld holds a non-finite feature", o->features, any_bad);
        split_free(&tr);
        split_free(&va);
        split_free(&te);
        bn_feats_close(&f);
        return BN_EXIT_FAIL;
    }

    /* The exact-gradient grid of the training features (net/softmax.h). */
    int xbits = 24, gbits = 22;
    bn_sm_bits(o->batch, &xbits, &gbits);
    float *cmax = callocCheck((size_t)dim, sizeof(float)), *gmax = callocCheck((size_t)dim, sizeof(float));
    for (long long r = 0; r < tr.hi - tr.lo; r++)
        for (int i = 0; i < dim; i++) {
            float a = fabsf(tr.x[(size_t)r * dim + i]);
            if (a > cmax[i]) cmax[i] = a;
        }
    mpiCheck(MPI_Allreduce(cmax, gmax, dim, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD));
    double *q = mallocCheck(sizeof(double) * (size_t)dim);
    bn_sm_grid(gmax, dim, xbits, q);
    bn_sm_round_rows(tr.x, (size_t)(tr.hi - tr.lo), dim, q);
    free(cmax);
    free(gmax);
    free(q);

    /* The layer: W (dim, C) from a truncated normal, stddev 0.001, drawn in
     * W's row-major order; b = 0. Kept transposed (Wt). */
    double *Wt = mallocCheck(sizeof(double) * (size_t)C * dim), *b = callocCheck((size_t)C, sizeof(double));
    bn_rng rinit, rbatch, reval;
    bn_rng_seed_stream(&rinit, (uint64_t)o->seed, STREAM_INIT);
    bn_rng_seed_stream(&rbatch, (uint64_t)o->seed, STREAM_BATCH);
    bn_rng_seed_stream(&reval, (uint64_t)o->seed, STREAM_EVAL);
    for (int i = 0; i < dim; i++)
        for (int c = 0; c < C; c++) Wt[(size_t)c * dim + i] = bn_rng_truncated_normal(&rinit, 0.001);

    /* Buffers of one step. This rank's samples of the batch are processed
     * TILE at a time (the gradient sums are exact, so tiling changes
     * nothing). The reduced gradient is [dWt (C dim) | db (C)]. */
    const size_t nred = (size_t)C * dim + (size_t)C;
    double *red = mallocCheck(sizeof(double) * nred), *sum = mallocCheck(sizeof(double) * nred);
    long long *batch = mallocCheck(sizeof(long long) * (size_t)o->batch);
    long long *mine = mallocCheck(sizeof(long long) * (size_t)o->batch); /* positions of this rank's samples */
    double *E = mallocCheck(sizeof(double) * TILE * C), *Z = mallocCheck(sizeof(double) * TILE * C);
    double *X = mallocCheck(sizeof(double) * TILE * dim);
    int *ytile = mallocCheck(sizeof(int) * TILE);
    /* Evaluation sums [loss of batch position 0..B-1 | train correct | validation correct]:
     * each loss slot has one contributor, so the sum is exact and the mean
     * is then taken in position order, the same on any rank count. */
    double *L = mallocCheck(sizeof(double) * ((size_t)o->batch + 2)), *gL = mallocCheck(sizeof(double) * ((size_t)o->batch + 2));
    const double step_scale = o->lr * ldexp(1.0, -gbits) / (double)o->batch;
    long long nhist = 0, cap = 64;
    bn_eval_point *hist = mallocCheck(sizeof *hist * (size_t)cap);

    for (long long step = 0; step < o->steps; step++) {
        double ts = bn_now();
        long long m = 0;
        for (long long j = 0; j < o->batch; j++) {
            long long t = batch[j] = draw(&rbatch, &tr, C, class_sampling);
            if (t >= tr.lo && t < tr.hi) mine[m++] = j;
        }
        memset(red, 0, sizeof(double) * nred);
        for (long long k0 = 0; k0 < m; k0 += TILE) {
            int n = (int)(m - k0 < TILE ? m - k0 : TILE);
            load_tile(&tr, batch, mine + k0, n, m - k0 > n ? mine[k0 + n] : -1, dim, X, ytile);
            bn_sm_logits_batch(Wt, b, C, dim, X, n, Z);
            for (int k = 0; k < n; k++) {
                double loss;
                int correct;
                bn_sm_error(Z + (size_t)k * C, C, ytile[k], gbits, E + (size_t)k * C, &loss, &correct);
            }
            bn_sm_accumulate(n, C, dim, E, X, red, red + (size_t)C * dim);
        }
        double tr0 = bn_now();
        me.step_s += tr0 - ts;
        mpiCheck(MPI_Allreduce(red, sum, (int)nred, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        double tr1 = bn_now();
        me.reduce_s += tr1 - tr0;
        for (size_t j = 0; j < (size_t)C * dim; j++) Wt[j] -= step_scale * sum[j];
        for (int c = 0; c < C; c++) b[c] -= step_scale * sum[(size_t)C * dim + c];
        me.step_s += bn_now() - tr1;

        int last = step + 1 == o->steps;
        if (step % o->eval_interval != 0 && !last) continue;
        /* retrain.py's evaluation: the same batch after the update, then a
         * validation sample. */
        double te0 = bn_now();
        memset(L, 0, sizeof(double) * ((size_t)o->batch + 2));
        for (long long k0 = 0; k0 < m; k0 += TILE) {
            int n = (int)(m - k0 < TILE ? m - k0 : TILE);
            load_tile(&tr, batch, mine + k0, n, -1, dim, X, ytile);
            bn_sm_logits_batch(Wt, b, C, dim, X, n, Z);
            for (int k = 0; k < n; k++) {
                double loss;
                int correct;
                bn_sm_error(Z + (size_t)k * C, C, ytile[k], gbits, E, &loss, &correct);
                L[mine[k0 + k]] = loss;
                L[o->batch] += correct;
            }
        }
        long long nv = 0;
        long long *vidx = eval_sample(&reval, &va, C, class_sampling, o->val_batch, &nv);
        L[o->batch + 1] = (double)evaluate(&va, vidx, nv, Wt, b, C, dim, NULL, NULL, NULL);
        free(vidx);
        mpiCheck(MPI_Allreduce(L, gL, (int)o->batch + 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        double ce = 0;
        for (long long j = 0; j < o->batch; j++) ce += gL[j];
        if (nhist == cap) hist = reallocCheck(hist, sizeof *hist * (size_t)(cap *= 2));
        bn_eval_point *h = &hist[nhist++];
        h->step = step;
        h->train_accuracy = gL[o->batch] / (double)o->batch;
        h->cross_entropy = ce / (double)o->batch;
        h->validation_accuracy = gL[o->batch + 1] / (double)nv;
        h->validation_n = nv;
        if (rank == 0 && !o->quiet) {
            printf("Step %lld: Train accuracy = %.1f%%\n", step, h->train_accuracy * 100);
            printf("Step %lld: Cross entropy = %f\n", step, h->cross_entropy);
            printf("Step %lld: Validation accuracy = %.1f%% (N=%lld)\n", step, h->validation_accuracy * 100, nv);
            fflush(stdout);
        }
        me.eval_s += bn_now() - te0;
    }

    /* The final test, on the whole test set by default. */
    double te0 = bn_now();
    long long nt = 0, nmiss = 0, *misses = NULL;
    long long *tidx = eval_sample(&reval, &te, C, class_sampling, o->test_batch, &nt);
    long long *conf = callocCheck((size_t)C * C + 1, sizeof(long long));
    long long *gconf = callocCheck((size_t)C * C + 1, sizeof(long long));
    conf[(size_t)C * C] = evaluate(&te, tidx, nt, Wt, b, C, dim, conf, o->print_misclassified ? &misses : NULL, &nmiss);
    free(tidx);
    mpiCheck(MPI_Allreduce(conf, gconf, C * C + 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD));
    double test_acc = (double)gconf[(size_t)C * C] / (double)nt;
    /* Misclassified test images: gathered to rank 0, then put in sample order
     * (row order for the whole test set). */
    int *counts = NULL, *displs = NULL;
    long long *allmiss = NULL;
    long long totmiss = 0;
    if (o->print_misclassified) {
        int mymiss = (int)(3 * nmiss);
        if (rank == 0) {
            counts = mallocCheck(sizeof(int) * (size_t)size);
            displs = mallocCheck(sizeof(int) * (size_t)size);
        }
        mpiCheck(MPI_Gather(&mymiss, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD));
        if (rank == 0) {
            for (int r = 0; r < size; r++) {
                displs[r] = (int)totmiss;
                totmiss += counts[r];
            }
            allmiss = mallocCheck(sizeof(long long) * (size_t)(totmiss + 1));
        }
        mpiCheck(MPI_Gatherv(misses, mymiss, MPI_LONG_LONG, allmiss, counts, displs, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
        if (rank == 0) qsort(allmiss, (size_t)(totmiss / 3), 3 * sizeof(long long), cmp_first);
    }
    me.eval_s += bn_now() - te0;
    me.wall_s = bn_now() - t_start;
    train_timing *all = rank == 0 ? mallocCheck(sizeof *all * (size_t)size) : NULL;
    mpiCheck(MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD));

    int rc = BN_EXIT_OK;
    if (rank == 0) {
        printf("Final test accuracy = %.1f%% (N=%lld)\n", test_acc * 100, nt);
        if (!o->quiet) print_confusion(gconf, f.label_names, C);
        if (o->print_misclassified) {
            if (bn_feats_load_paths(&f, err, sizeof err)) {
                bn_error(NULL, "%s", err);
                rc = BN_EXIT_FAIL;
            } else {
                printf("=== MISCLASSIFIED TEST IMAGES ===\n");
                for (long long j = 0; j < totmiss / 3; j++) {
                    long long t = allmiss[3 * j + 1];
                    char *path = bn_feats_path(&f, te.row[t]);
                    printf("%70s  true: %s  predicted: %s\n", path, f.label_names[te.label[t]],
                           f.label_names[allmiss[3 * j + 2]]);
                    free(path);
                }
            }
        }
        /* The classifier file and the labels file. */
        char settings[4096], fe[2048];
        json_str(fe, sizeof fe, o->features);
        snprintf(settings, sizeof settings,
                 "{\"features\": \"%s\", \"steps\": %lld, \"learning_rate\": %.17g, \"batch\": %lld, "
                 "\"eval_interval\": %lld, \"validation_batch\": %lld, \"test_batch\": %lld, \"sampling\": \"%s\", "
                 "\"seed\": %lld, \"ranks\": %d, \"feature_bits\": %d, \"gradient_bits\": %d}",
                 fe, o->steps, o->lr, o->batch, o->eval_interval, o->val_batch, o->test_batch, o->sampling, o->seed,
                 size, xbits, gbits);
        bn_classifier cl;
        memset(&cl, 0, sizeof cl);
        cl.dim = dim;
        cl.nclasses = C;
        cl.labels = f.label_names;
        cl.Wt = Wt;
        cl.b = b;
        memcpy(cl.weights_sha256, f.weights_sha256, sizeof cl.weights_sha256);
        memcpy(cl.preprocess, f.preprocess, sizeof cl.preprocess);
        memcpy(cl.dct, f.dct, sizeof cl.dct);
        memcpy(cl.corpus_sha256, f.corpus_sha256, sizeof cl.corpus_sha256);
        cl.features_path = (char *)o->features;
        cl.settings = settings;
        cl.nhistory = nhist;
        cl.history = hist;
        cl.test_accuracy = test_acc;
        cl.test_n = nt;
        cl.confusion = gconf;
        cl.train_n = tr.n;
        cl.excluded_n = nfailed + npending;
        if (bn_classifier_write(o->out, &cl, err, sizeof err)) {
            bn_error("check that the folder exists and is writable", "%s", err);
            rc = BN_EXIT_FAIL;
        } else if (bn_classifier_write_labels(o->labels_out, &cl, err, sizeof err)) {
            bn_error("check that the folder exists and is writable", "%s", err);
            rc = BN_EXIT_FAIL;
        } else if (!o->quiet) {
            print_timing(all, size, bn_now() - t_start);
            printf("classifier: %s, labels: %s\n", o->out, o->labels_out);
        }
    }
    mpiCheck(MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD));
    free(all);
    free(allmiss);
    free(counts);
    free(displs);
    free(misses);
    free(conf);
    free(gconf);
    free(hist);
    free(X);
    free(E);
    free(Z);
    free(ytile);
    free(L);
    free(gL);
    free(mine);
    free(batch);
    free(sum);
    free(red);
    free(Wt);
    free(b);
    split_free(&tr);
    split_free(&va);
    split_free(&te);
    bn_feats_close(&f);
    return rc;
}

int bn_cmd_train(int argc, char **argv) {
    train_opts o = {.sampling = "class", .steps = 4000, .batch = 100, .eval_interval = 10, .val_batch = 100,
                    .test_batch = -1, .seed = 0, .threads = 1, .lr = 0.01};
    const char *labels = NULL;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"features", 'f', BN_OPT_STRING, &o.features, "FILE", NULL, 0, 0, NULL, "features file from bneck extract; required"},
        {"out", 'o', BN_OPT_STRING, &o.out, "FILE", NULL, 0, 0, NULL, "classifier file to write (.h5); required"},
        {"labels", 0, BN_OPT_STRING, &labels, "FILE", "OUT with .labels.txt", 0, 0, NULL, "class names, one per line (retrain.py's output_labels)"},
        {"steps", 's', BN_OPT_INT, &o.steps, "N", "4000", 1, 1e12, NULL, "training steps (how_many_training_steps)"},
        {"learning-rate", 0, BN_OPT_DOUBLE, &o.lr, "X", "0.01", 0, 1e6, NULL, "gradient descent step size"},
        {"batch", 0, BN_OPT_INT, &o.batch, "N", "100", 1, 1 << 24, NULL, "images per training step (train_batch_size)"},
        {"eval-interval", 0, BN_OPT_INT, &o.eval_interval, "N", "10", 1, 1e12, NULL, "evaluate every N steps, and at the last step"},
        {"validation-batch", 0, BN_OPT_INT, &o.val_batch, "N", "100", -1, 1 << 24, NULL, "validation images per evaluation; -1: all of them"},
        {"test-batch", 0, BN_OPT_INT, &o.test_batch, "N", "-1", -1, 1 << 24, NULL, "test images for the final accuracy; -1: all of them"},
        {"sampling", 0, BN_OPT_CHOICE, &o.sampling, NULL, "class", 0, 0, "class|uniform",
         "class: a class uniformly, then one of its images (retrain.py); uniform: any image"},
        {"seed", 0, BN_OPT_INT, &o.seed, "N", "0", 0, 9.2e18, NULL, "random seed: initial weights and batches; same seed, same classifier"},
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
    if (!o.features) return bn_cli_usage(&spec, "--features FILE is required");
    if (!o.out) return bn_cli_usage(&spec, "--out FILE is required");
    if (o.val_batch == 0) return bn_cli_usage(&spec, "--validation-batch must be -1 (all) or at least 1");
    if (o.test_batch == 0) return bn_cli_usage(&spec, "--test-batch must be -1 (all) or at least 1");
    if (!(o.lr > 0)) return bn_cli_usage(&spec, "--learning-rate must be above 0");
    bn_cli_apply_verbosity(verbose, quiet);
    o.quiet = quiet;
    char *lab = labels ? NULL : default_labels(o.out);
    o.labels_out = labels ? labels : lab;
    if (same_file(o.out, o.features) || same_file(o.labels_out, o.features) || !strcmp(o.out, o.labels_out)) {
        free(lab);
        return bn_cli_usage(&spec, "--out and the labels file must differ from each other and from --features");
    }
    /* Find an unwritable output folder now, not after training. */
    int ok = 1, rank = 0;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    if (rank == 0)
        for (int k = 0; k < 2 && ok; k++) {
            const char *path = k ? o.labels_out : o.out;
            char *dir = strdupCheck(path), *slash = strrchr(dir, '/');
            if (slash) slash[slash == dir ? 1 : 0] = 0;
            if (access(slash ? dir : ".", W_OK) != 0) {
                bn_error("create the folder first, or write somewhere else", "%s: cannot write into folder '%s' (%s)",
                         path, slash ? dir : ".", strerror(errno));
                ok = 0;
            }
            free(dir);
        }
    mpiCheck(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (!ok) {
        free(lab);
        return BN_EXIT_FAIL;
    }
    rc = run_train(&o);
    free(lab);
    return rc;
}
