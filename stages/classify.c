/* classify.c: "bneck classify" - label images with a retrained final layer
 * (io/classifier.h, docs/classify.md).
 *
 * Two modes:
 *  - images on the command line: one process decodes them, runs Inception v3
 *    and prints the top K classes of each, as label_image.py does;
 *  - a corpus (--images DIR | --manifest FILE): the extract job fills (or
 *    resumes) a features file across the ranks, then each rank scores a
 *    contiguous block of the done rows and rank 0 writes one CSV row per
 *    image, in corpus order.
 * Either way the classifier's identity decides how images are decoded and
 * normalised, and the --weights file must be the one whose features the
 * classifier was trained on (same SHA-256). Scores come from bn_sm_logits and
 * bn_sm_softmax, the functions train evaluates with, so classify and train's
 * test accuracy agree exactly on the same features.
 */
#include "config.h"

#include "io/classifier.h"
#include "io/featread.h"
#include "io/h5util.h"
#include "io/image.h"
#include "io/store.h"
#include "io/weights.h"
#include "net/engine.h"
#include "net/softmax.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "pipeline/sysinfo.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_IMAGES 100000  /* positional arguments accepted */
#ifndef BLOCK_ROWS
#define BLOCK_ROWS 1024    /* rows a rank scores per round in corpus mode (-D for tests) */
#endif

/* Everything the command line gave. */
typedef struct {
    const char *weights, *classifier, *images, *manifest, *out, *features, *backend_s, *progress_s;
    const char *preprocess, *dct; /* NULL unless given (they must then match the classifier) */
    long long top, batch, threads, max_pixels;
    int verbose, quiet;
} opts_t;

/* Indices of the K largest of p[0..C), highest first (ties: lower index first). */
static void top_k(const double *p, int C, int K, int *idx) {
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int c = 0; c < C; c++) {
            int taken = 0;
            for (int i = 0; i < j && !taken; i++) taken = idx[i] == c;
            if (!taken && (best < 0 || p[c] > p[best])) best = c;
        }
        idx[j] = best;
    }
}

/* Probabilities of one features row x (dim) into p (C), and its top K
 * classes in idx. xd (dim) is scratch. The ranking is taken on the logits,
 * as train's argmax is, so top-1 here is train's prediction exactly; the
 * softmax keeps that order. */
static void score(const bn_classifier *c, const float *x, double *xd, double *p, int K, int *idx) {
    bn_sm_widen(x, c->dim, xd);
    bn_sm_logits(c->Wt, c->b, c->nclasses, c->dim, xd, p);
    top_k(p, c->nclasses, K, idx);
    bn_sm_softmax(p, c->nclasses);
}

/* Refuse weights whose hash is not the classifier's. Returns 0, or -1 with
 * the reason in msg (BN_H5_MSG_LEN). */
static int check_weights(const char *weights, const char *sha, const char *cpath, const bn_classifier *c, char *msg) {
    if (strcmp(sha, c->weights_sha256) == 0) return 0;
    bn_h5_set_msg(msg,
                  "%s has sha256 %s, but %s was trained on features from other weights (sha256 %s): its scores "
                  "would mean nothing with these; pass the weights file it was trained with as --weights",
                  weights, sha, cpath, c->weights_sha256);
    return -1;
}

/* Refuse --preprocess / --dct values other than the classifier's. 0 or -1 with msg set. */
static int check_identity_opts(const opts_t *o, const bn_classifier *c, char *msg) {
    if (o->preprocess && strcmp(o->preprocess, c->preprocess)) {
        bn_h5_set_msg(msg, "--preprocess %s differs from the classifier's '%s' (its features were made that way); "
                           "leave --preprocess out: classify takes it from %s", o->preprocess, c->preprocess, o->classifier);
        return -1;
    }
    if (o->dct && strcmp(o->dct, c->dct)) {
        bn_h5_set_msg(msg, "--dct %s differs from the classifier's '%s' (its features were made that way); leave "
                           "--dct out: classify takes it from %s", o->dct, c->dct, o->classifier);
        return -1;
    }
    if (c->dim != BN_FEATURES) {
        bn_h5_set_msg(msg, "%s takes %d inputs, but Inception v3 gives %d features: it was not trained on bneck "
                           "features", o->classifier, c->dim, BN_FEATURES);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ images on the command line */

/* Rank 0 only: classify the images pos[0..npos). Returns the exit status. */
static int classify_images(const opts_t *o, const char *const *pos, int npos) {
    bn_classifier c;
    char err[2048] = "", msg[BN_H5_MSG_LEN] = "";
    if (bn_classifier_read(o->classifier, &c, err, sizeof err)) {
        bn_error("bneck train writes the classifier file", "%s", err);
        return BN_EXIT_FAIL;
    }
    bn_backend backend;
    bn_backend_parse(o->backend_s, &backend); /* checked by the caller */
    bn_norm norm = BN_NORM_KERAS;
    bn_norm_parse(c.preprocess, &norm);
    if (check_identity_opts(o, &c, msg)) {
        bn_error(NULL, "%s", msg);
        bn_classifier_free(&c);
        return BN_EXIT_FAIL;
    }
    bn_model model;
    double t0 = bn_now();
    if (bn_weights_load(o->weights, &model, err, sizeof err)) {
        bn_error("docs/weights.md says what the file must hold", "%s", err);
        bn_classifier_free(&c);
        return BN_EXIT_FAIL;
    }
    bn_verbose("weights %s: sha256 %s, loaded in %.2f s", o->weights, model.sha256, bn_now() - t0);
    if (check_weights(o->weights, model.sha256, o->classifier, &c, msg)) {
        bn_error(NULL, "%s", msg);
        bn_model_free(&model);
        bn_classifier_free(&c);
        return BN_EXIT_FAIL;
    }
    int nthreads = o->threads > 0 ? (int)o->threads : bn_default_threads();
    int nb = (int)(o->batch < npos ? o->batch : npos);
    bn_engine *eng = bn_engine_create(&model, backend, nb, nthreads, err, sizeof err);
    if (!eng) {
        bn_error(NULL, "cannot create the %s engine: %s", o->backend_s, err);
        bn_model_free(&model);
        bn_classifier_free(&c);
        return BN_EXIT_FAIL;
    }
    const int C = c.nclasses, K = (int)(o->top < C ? o->top : C);
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *input = mallocCheck((size_t)nb * img_floats * sizeof(float));
    float *feat = mallocCheck((size_t)nb * BN_FEATURES * sizeof(float));
    int *slot = mallocCheck(sizeof(int) * (size_t)nb);
    double *p = mallocCheck(sizeof(double) * (size_t)C);
    double *xd = mallocCheck(sizeof(double) * (size_t)c.dim);
    int *idx = mallocCheck(sizeof(int) * (size_t)K);
    bn_decode_opts dopts = {.max_pixels = o->max_pixels, .dct_fast = strcmp(c.dct, "fast") == 0};
    bn_decoder *dec = bn_decoder_new(&dopts);
    bn_rgb img = {0};
    int failed = 0, printed = 0;
    for (int i0 = 0; i0 < npos; i0 += nb) {
        int cnt = 0, n = npos - i0 < nb ? npos - i0 : nb;
        for (int i = i0; i < i0 + n; i++) {
            bn_img_result res;
            if (bn_decode_file(dec, pos[i], &img, &res) != BN_IMG_OK) {
                fprintf(stderr, "%s: error: %s\n", pos[i], res.reason[0] ? res.reason : bn_img_status_name(res.status));
                slot[i - i0] = -1;
                failed++;
                continue;
            }
            if (res.warned) bn_warn("%s: %s", pos[i], res.reason);
            bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, norm, input + (size_t)cnt * img_floats);
            slot[i - i0] = cnt++;
        }
        if (cnt > 0) bn_engine_forward(eng, input, cnt, feat);
        for (int i = i0; i < i0 + n; i++) {
            if (slot[i - i0] < 0) continue;
            score(&c, feat + (size_t)slot[i - i0] * BN_FEATURES, xd, p, K, idx);
            printf("%s%s\n", printed++ ? "\n" : "", pos[i]);
            for (int j = 0; j < K; j++) printf("%s (score = %.5f)\n", c.labels[idx[j]], p[idx[j]]);
        }
        fflush(stdout);
    }
    int status = BN_EXIT_OK;
    if (ferror(stdout)) {
        bn_error(NULL, "cannot write the results to standard output: %s", strerror(errno));
        status = BN_EXIT_FAIL;
    }
    if (failed) {
        bn_error(NULL, "%d of %d image%s could not be classified", failed, npos, npos == 1 ? "" : "s");
        status = BN_EXIT_FAIL;
    }
    bn_rgb_free(&img);
    bn_decoder_free(dec);
    free(idx);
    free(xd);
    free(p);
    free(slot);
    free(feat);
    free(input);
    bn_engine_free(eng);
    bn_model_free(&model);
    bn_classifier_free(&c);
    return status;
}

/* ------------------------------------------------------------ a corpus */

/* Write s as one CSV field (RFC 4180: quoted when it holds a comma, a quote,
 * CR or LF; quotes doubled). */
static void csv_field(FILE *fp, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"') fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

/* Rank 0: the CSV being written, and the tallies for the summary. */
typedef struct {
    FILE *fp;              /* out.partial, or NULL */
    long long next;        /* next file row to write */
    long long ok, failed;  /* rows written of each kind */
    long long lab_n, lab_right; /* ok rows whose true label is a classifier class; of them, top-1 right */
    int write_failed;      /* errno of a failed write to fp, or 0 */
} csv_t;

/* Rank 0: write one CSV row for file row i: res (2K doubles: class index,
 * score) when it was scored, else a failed row. */
static void csv_row(csv_t *w, const bn_feats *f, const bn_classifier *c, const int *map, long long i, const double *res,
                    int K) {
    char *path = bn_feats_path(f, i);
    csv_field(w->fp, path);
    fputc(',', w->fp);
    csv_field(w->fp, f->label_names[f->label[i]]);
    if (res) {
        fputs(",ok", w->fp);
        for (int j = 0; j < K; j++) {
            fputc(',', w->fp);
            csv_field(w->fp, c->labels[(int)res[2 * j]]);
            fprintf(w->fp, ",%.5f", res[2 * j + 1]);
        }
        w->ok++;
        int want = map[f->label[i]];
        if (want >= 0) {
            w->lab_n++;
            w->lab_right += (int)res[0] == want;
        }
    } else {
        fputs(",failed", w->fp);
        for (int j = 0; j < K; j++) fputs(",,", w->fp);
        w->failed++;
    }
    fputc('\n', w->fp);
    free(path);
}

/* Rank 0, before the extract: the split percentages an existing features
 * file was made with (its "settings"), so that the extract resumes it
 * instead of seeing another corpus listing. Leaves vp and tp alone when
 * there is no such file or it says nothing. */
static void existing_split(const char *path, double *vp, double *tp) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || H5Fis_hdf5(path) <= 0) return;
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char msg[BN_H5_MSG_LEN] = "", *fmt = NULL, *set = NULL;
    if (f >= 0 && bn_h5_attr_get_str(f, "format", &fmt, msg) == 0 && !strcmp(fmt, BN_STORE_FORMAT) &&
        bn_h5_attr_get_str(f, "settings", &set, msg) == 0) {
        const char *keys[2] = {"\"validation_percentage\":", "\"testing_percentage\":"};
        double *dst[2] = {vp, tp};
        for (int k = 0; k < 2; k++) {
            const char *s = strstr(set, keys[k]);
            if (!s) continue;
            char *end = NULL;
            double v = strtod(s + strlen(keys[k]), &end);
            if (end != s + strlen(keys[k]) && v >= 0 && v <= 100) *dst[k] = v;
        }
    }
    free(set);
    free(fmt);
    if (f >= 0) H5Fclose(f);
    bn_h5_quiet_off(&q);
}

/* Collective: classify a corpus into o->out. Returns the exit status (the
 * same on every rank). */
static int classify_corpus(const opts_t *o) {
    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size));
    char err[2048] = "", msg[BN_H5_MSG_LEN] = "";
    char *feats_path = NULL, *partial = NULL;
    bn_classifier c;
    memset(&c, 0, sizeof c);
    bn_feats f;
    memset(&f, 0, sizeof f);
    int opened = 0, status = BN_EXIT_FAIL;
    int *map = NULL;
    double *mine = NULL, *all = NULL;
    int *counts = NULL, *displs = NULL;
    long long *done = NULL;
    int C = 0, K = 0;
    float *x = NULL;
    double *p = NULL, *xd = NULL;
    int *idx = NULL;
    csv_t w;
    memset(&w, 0, sizeof w);

    if (o->features) {
        feats_path = strdupCheck(o->features);
    } else {
        size_t len = strlen(o->out) + sizeof ".features.h5";
        feats_path = mallocCheck(len);
        snprintf(feats_path, len, "%s.features.h5", o->out);
    }
    if (!strcmp(feats_path, o->out) || !strcmp(o->out, o->classifier) || !strcmp(o->out, o->weights)) {
        if (rank == 0)
            bn_error(NULL, "--out %s would overwrite an input (the features file, the classifier or the weights); "
                           "give another name", o->out);
        free(feats_path);
        return BN_CLI_USAGE;
    }

    /* 1. The classifier (every rank reads the small file) and the weights'
     * identity (rank 0 hashes), before any image is touched. */
    int ok = bn_classifier_read(o->classifier, &c, err, sizeof err) == 0;
    if (!ok) snprintf(msg, sizeof msg, "%s (bneck train writes the classifier file)", err);
    if (ok && check_identity_opts(o, &c, msg)) ok = 0;
    if (ok && rank == 0) {
        char sha[65];
        if (bn_file_sha256(o->weights, sha, err, sizeof err)) {
            snprintf(msg, sizeof msg, "%s", err);
            ok = 0;
        } else if (check_weights(o->weights, sha, o->classifier, &c, msg)) {
            ok = 0;
        }
    }
    if (bn_h5_agree(MPI_COMM_WORLD, ok, msg) < 0) {
        if (rank == 0) bn_error(NULL, "%s", msg);
        goto done;
    }

    /* 2. The features of the corpus: the extract job, with the classifier's
     * preprocessing. Rerunning resumes the same features file (the split
     * percentages only decide the file's split column; those of an existing
     * file are kept so that its corpus listing matches). */
    {
        double vp = 0, tp = 0;
        if (rank == 0) existing_split(feats_path, &vp, &tp);
        double vt[2] = {vp, tp};
        mpiCheck(MPI_Bcast(vt, 2, MPI_DOUBLE, 0, MPI_COMM_WORLD));
        char s_vp[32], s_tp[32], s_batch[32], s_threads[32], s_pix[32];
        snprintf(s_vp, sizeof s_vp, "%.17g", vt[0]);
        snprintf(s_tp, sizeof s_tp, "%.17g", vt[1]);
        snprintf(s_batch, sizeof s_batch, "%lld", o->batch);
        snprintf(s_threads, sizeof s_threads, "%lld", o->threads);
        snprintf(s_pix, sizeof s_pix, "%lld", o->max_pixels);
        char *argv[40];
        int ac = 0;
        argv[ac++] = "extract";
        argv[ac++] = o->images ? "--images" : "--manifest";
        argv[ac++] = (char *)(o->images ? o->images : o->manifest);
        argv[ac++] = "--weights";
        argv[ac++] = (char *)o->weights;
        argv[ac++] = "--out";
        argv[ac++] = feats_path;
        argv[ac++] = "--backend";
        argv[ac++] = (char *)o->backend_s;
        argv[ac++] = "--batch";
        argv[ac++] = s_batch;
        argv[ac++] = "--threads";
        argv[ac++] = s_threads;
        argv[ac++] = "--max-pixels";
        argv[ac++] = s_pix;
        argv[ac++] = "--preprocess";
        argv[ac++] = c.preprocess;
        argv[ac++] = "--dct";
        argv[ac++] = c.dct;
        argv[ac++] = "--validation-percentage";
        argv[ac++] = s_vp;
        argv[ac++] = "--testing-percentage";
        argv[ac++] = s_tp;
        argv[ac++] = "--progress";
        argv[ac++] = (char *)o->progress_s;
        if (o->quiet) argv[ac++] = "-q";
        for (int v = 0; v < o->verbose && v < 3; v++) argv[ac++] = "-v";
        argv[ac] = NULL;
        if (rank == 0) bn_info("features of the corpus: %s", feats_path);
        int rc = bn_cmd_extract(ac, argv);
        bn_cli_apply_verbosity(o->verbose, o->quiet);
        if (rc != BN_EXIT_OK) {
            if (rank == 0)
                bn_error(rc == 75 ? "rerun the same command to resume" : NULL,
                         "computing the features into %s did not finish (extract exit status %d); no predictions "
                         "written", feats_path, rc);
            status = rc == BN_CLI_USAGE ? BN_EXIT_FAIL : rc;
            goto done;
        }
    }

    /* 3. Open the features, check their identity, prepare the CSV. */
    if (bn_feats_open(feats_path, MPI_COMM_WORLD, &f, err, sizeof err)) {
        if (rank == 0) bn_error(NULL, "%s", err);
        goto done;
    }
    opened = 1;
    ok = 1;
    msg[0] = 0;
    if (strcmp(f.weights_sha256, c.weights_sha256) || strcmp(f.preprocess, c.preprocess) || strcmp(f.dct, c.dct)) {
        bn_h5_set_msg(msg, "%s was made with weights %s, preprocess %s, dct %s; the classifier %s needs weights %s, "
                           "preprocess %s, dct %s", feats_path, f.weights_sha256, f.preprocess, f.dct, o->classifier,
                      c.weights_sha256, c.preprocess, c.dct);
        ok = 0;
    } else if (f.dim != c.dim) {
        bn_h5_set_msg(msg, "%s has %d features per row; the classifier takes %d", feats_path, f.dim, c.dim);
        ok = 0;
    }
    C = c.nclasses;
    K = (int)(o->top < C ? o->top : C);
    if (ok && rank == 0) {
        if (bn_feats_load_paths(&f, err, sizeof err)) {
            bn_h5_set_msg(msg, "%s", err);
            ok = 0;
        } else {
            size_t len = strlen(o->out) + sizeof ".partial";
            partial = mallocCheck(len);
            snprintf(partial, len, "%s.partial", o->out);
            if (!(w.fp = fopen(partial, "w"))) {
                bn_h5_set_msg(msg, "%s: cannot create: %s", partial, strerror(errno));
                ok = 0;
            } else {
                fputs("path,true_label,status", w.fp);
                for (int j = 1; j <= K; j++) fprintf(w.fp, ",label_%d,score_%d", j, j);
                fputc('\n', w.fp);
            }
        }
    }
    if (bn_h5_agree(MPI_COMM_WORLD, ok, msg) < 0) {
        if (rank == 0) bn_error(NULL, "%s", msg);
        goto done;
    }
    /* Corpus class -> classifier class, by name (-1: not a classifier class). */
    map = mallocCheck(sizeof(int) * (size_t)(f.nclasses > 0 ? f.nclasses : 1));
    for (int k = 0; k < f.nclasses; k++) {
        map[k] = -1;
        for (int j = 0; j < C && map[k] < 0; j++)
            if (!strcmp(f.label_names[k], c.labels[j])) map[k] = j;
    }

    /* 4. Score the done rows: in rounds of up to BLOCK_ROWS per rank, each
     * rank a contiguous block of the round; rank 0 gathers each round and
     * writes its rows (and the failed rows around them) in file order. */
    long long D = 0;
    done = mallocCheck(sizeof(long long) * (size_t)(f.n > 0 ? f.n : 1));
    for (long long i = 0; i < f.n; i++)
        if (f.status[i] == BN_ROW_DONE) done[D++] = i;
    /* Rows per rank and round: BLOCK_ROWS, less when a round's results
     * (2K doubles a row) would not fit MPI_Gatherv's int counts. */
    long long block = BLOCK_ROWS;
    while (block > 1 && block * size * 2 * (long long)K > INT_MAX / 2) block /= 2;
    const long long per_round = block * size;
    const long long rounds = (D + per_round - 1) / per_round;
    x = mallocCheck(sizeof(float) * (size_t)block * (size_t)c.dim);
    p = mallocCheck(sizeof(double) * (size_t)C);
    xd = mallocCheck(sizeof(double) * (size_t)c.dim);
    idx = mallocCheck(sizeof(int) * (size_t)K);
    mine = mallocCheck(sizeof(double) * (size_t)block * 2 * (size_t)K);
    if (rank == 0) {
        all = mallocCheck(sizeof(double) * (size_t)per_round * 2 * (size_t)K);
        counts = mallocCheck(sizeof(int) * (size_t)size);
        displs = mallocCheck(sizeof(int) * (size_t)size);
    }
    for (long long t = 0; t < rounds; t++) {
        long long r0 = t * per_round, L = D - r0 < per_round ? D - r0 : per_round;
        long long lo = r0 + L * rank / size, hi = r0 + L * (rank + 1) / size;
        ok = 1;
        msg[0] = 0;
        if (hi > lo && bn_feats_read(&f, done + lo, hi - lo, x, err, sizeof err)) {
            bn_h5_set_msg(msg, "%s", err);
            ok = 0;
        }
        for (long long k = 0; ok && k < hi - lo; k++) {
            score(&c, x + (size_t)k * c.dim, xd, p, K, idx);
            for (int j = 0; j < K; j++) {
                mine[(size_t)k * 2 * K + 2 * j] = idx[j];
                mine[(size_t)k * 2 * K + 2 * j + 1] = p[idx[j]];
            }
        }
        if (rank == 0 && w.write_failed) {
            bn_h5_set_msg(msg, "%s: cannot write: %s", partial, strerror(w.write_failed));
            ok = 0;
        }
        if (bn_h5_agree(MPI_COMM_WORLD, ok, msg) < 0) {
            if (rank == 0) bn_error(NULL, "%s", msg);
            goto done;
        }
        if (rank == 0)
            for (int r = 0; r < size; r++) {
                long long a = L * r / size, b = L * (r + 1) / size;
                counts[r] = (int)((b - a) * 2 * K);
                displs[r] = (int)(a * 2 * K);
            }
        mpiCheck(MPI_Gatherv(mine, (int)((hi - lo) * 2 * K), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0,
                             MPI_COMM_WORLD));
        if (rank == 0) {
            for (long long k = 0; k < L; k++) {
                long long row = done[r0 + k];
                for (; w.next < row; w.next++) csv_row(&w, &f, &c, map, w.next, NULL, K);
                csv_row(&w, &f, &c, map, row, all + (size_t)k * 2 * K, K);
                w.next = row + 1;
            }
            if (ferror(w.fp)) w.write_failed = errno ? errno : EIO;
        }
    }
    /* The failed rows after the last done one; close and rename. */
    ok = 1;
    msg[0] = 0;
    if (rank == 0) {
        for (; w.next < f.n; w.next++) csv_row(&w, &f, &c, map, w.next, NULL, K);
        int e = ferror(w.fp) ? errno : 0;
        if (fclose(w.fp) != 0 && !e) e = errno ? errno : EIO;
        w.fp = NULL;
        if (e) {
            bn_h5_set_msg(msg, "%s: cannot write: %s", partial, strerror(e));
            ok = 0;
        } else if (rename(partial, o->out) != 0) {
            bn_h5_set_msg(msg, "cannot rename %s to %s: %s", partial, o->out, strerror(errno));
            ok = 0;
        }
    }
    if (bn_h5_agree(MPI_COMM_WORLD, ok, msg) < 0) {
        if (rank == 0) bn_error("check free space and permissions in the folder of --out", "%s", msg);
        goto done;
    }
    status = BN_EXIT_OK;
    if (rank == 0) {
        printf("classified %lld image%s, %lld failed; predictions in %s\n", w.ok, w.ok == 1 ? "" : "s", w.failed,
               o->out);
        if (w.lab_n > 0)
            printf("accuracy on labelled images: %.1f%% (N=%lld%s)\n", 100.0 * (double)w.lab_right / (double)w.lab_n,
                   w.lab_n, w.lab_n < w.ok ? "; images whose label is not a classifier class are not counted" : "");
        else
            printf("accuracy: not computed (no corpus label is one of the classifier's classes)\n");
        if (w.failed > 0)
            bn_warn("%lld image%s could not be decoded: status 'failed' in %s; the reasons are in %s (error_reason), "
                    "and bneck corpus --decode lists them", w.failed, w.failed == 1 ? "" : "s", o->out, feats_path);
        fflush(stdout);
    }
done:
    if (w.fp) fclose(w.fp);
    if (rank == 0 && partial && status != BN_EXIT_OK) unlink(partial);
    if (opened) bn_feats_close(&f); /* collective */
    bn_classifier_free(&c);
    free(idx);
    free(xd);
    free(p);
    free(x);
    free(mine);
    free(all);
    free(counts);
    free(displs);
    free(done);
    free(map);
    free(partial);
    free(feats_path);
    return status;
}

/* ------------------------------------------------------------ command */

int bn_cmd_classify(int argc, char **argv) {
    opts_t o;
    memset(&o, 0, sizeof o);
    o.backend_s = "cpu";
    o.progress_s = "auto";
    o.top = 5;
    o.batch = 8;
    o.max_pixels = BN_DEFAULT_MAX_PIXELS;
    char choices[64];
    snprintf(choices, sizeof choices, "%s", bn_backend_choices());
    const bn_opt opts[] = {
        {"weights", 'w', BN_OPT_STRING, &o.weights, "FILE", NULL, 0, 0, NULL,
         "Keras Inception v3 weights (.h5), the very file the classifier's features came from; required"},
        {"classifier", 'c', BN_OPT_STRING, &o.classifier, "FILE", NULL, 0, 0, NULL, "classifier file from bneck train; required"},
        {"top", 'k', BN_OPT_INT, &o.top, "N", "5", 1, 1e6, NULL, "classes reported per image (at most the number of classes)"},
        {"images", 'i', BN_OPT_STRING, &o.images, "DIR", NULL, 0, 0, NULL, "corpus mode: folder of class folders"},
        {"manifest", 'm', BN_OPT_STRING, &o.manifest, "FILE", NULL, 0, 0, NULL, "corpus mode: manifest of path<TAB>label lines"},
        {"out", 'o', BN_OPT_STRING, &o.out, "FILE.csv", NULL, 0, 0, NULL, "corpus mode: predictions CSV; required there"},
        {"features", 'f', BN_OPT_STRING, &o.features, "FILE", "OUT.features.h5", 0, 0, NULL,
         "corpus mode: features file to fill or reuse (resumed if it exists)"},
        {"backend", 'b', BN_OPT_CHOICE, &o.backend_s, NULL, "cpu", 0, 0, choices, "engine"},
        {"batch", 0, BN_OPT_INT, &o.batch, "N", "8", 1, 4096, NULL, "images per forward pass"},
        {"threads", 't', BN_OPT_INT, &o.threads, "N", "cores / ranks per node", 0, 4096, NULL, "engine threads per rank (0 = default)"},
        {"max-pixels", 0, BN_OPT_INT, &o.max_pixels, "N", "100000000", 1, 1e15, NULL, "refuse larger images (checked from the header)"},
        {"progress", 0, BN_OPT_CHOICE, &o.progress_s, NULL, "auto", 0, 0, "auto|tty|log|none", "corpus mode: progress of the extract"},
        {"preprocess", 0, BN_OPT_CHOICE, &o.preprocess, NULL, "the classifier's", 0, 0, "keras|tf2015",
         "must match the classifier (taken from it; only checked)"},
        {"dct", 0, BN_OPT_CHOICE, &o.dct, NULL, "the classifier's", 0, 0, "accurate|fast",
         "must match the classifier (taken from it; only checked)"},
        BN_OPTS_VERBOSITY(&o.verbose, &o.quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "classify", "Label images with a classifier from bneck train: the top classes of each image.",
        "bneck classify --weights W.h5 --classifier C.h5 [options] IMAGE...\n"
        "       mpirun -n R bneck classify --weights W.h5 --classifier C.h5 (--images DIR | --manifest FILE) --out "
        "predictions.csv [options]",
        "With images: prints each path, then its top --top classes as 'label (score = 0.12345)',\n"
        "highest first, with a blank line between images; an image that cannot be decoded\n"
        "is reported on stderr and the exit status is 1.\n"
        "With a corpus: computes its features with the extract job (into --features, kept:\n"
        "a rerun resumes it), then writes one CSV row per image in corpus order:\n"
        "path,true_label,status,label_1,score_1,...; undecodable images get status 'failed'\n"
        "(a warning, exit status 0). The decoding and normalisation are the classifier's,\n"
        "and --weights must be the weights it was trained with (checked by SHA-256).\n"
        "See docs/classify.md.",
        opts};
    static const char *pos[MAX_IMAGES];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, MAX_IMAGES, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!o.weights) return bn_cli_usage(&spec, "--weights FILE is required");
    if (!o.classifier) return bn_cli_usage(&spec, "--classifier FILE is required");
    int corpus = o.images || o.manifest;
    if (o.images && o.manifest) return bn_cli_usage(&spec, "give --images DIR or --manifest FILE, not both");
    if (corpus) {
        if (npos > 0) return bn_cli_usage(&spec, "give images on the command line or a corpus (--images/--manifest), not both");
        if (!o.out) return bn_cli_usage(&spec, "--out FILE.csv is required with --images or --manifest");
    } else {
        if (npos < 1) return bn_cli_usage(&spec, "give at least one IMAGE, or a corpus with --images DIR or --manifest FILE");
        if (o.out || o.features)
            return bn_cli_usage(&spec, "--out and --features go with a corpus (--images DIR or --manifest FILE)");
    }
    bn_cli_apply_verbosity(o.verbose, o.quiet);
    bn_backend backend;
    if (bn_backend_parse(o.backend_s, &backend)) return bn_cli_usage(&spec, "backend '%s' is not built in", o.backend_s);
    if (corpus) {
        bn_mpi_need();
        return classify_corpus(&o);
    }
    int rank = bn_launch_rank();
    if (rank != 0) return 0; /* images on the command line: one process does the work */
    return classify_images(&o, pos, npos);
}
