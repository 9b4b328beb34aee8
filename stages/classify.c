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
 * normalised and the precision the network runs in, and the --weights file
 * (and for int8 the --calibration file) must be the one whose features the
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
#include "pipeline/settings.h"
#include "pipeline/sysinfo.h"
#include "stages/stages.h"

#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
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
static int check_identity_opts(const bn_classify_cfg *o, const bn_classifier *c, char *msg) {
    if (o->eng.preprocess && strcmp(o->eng.preprocess, c->preprocess)) {
        bn_h5_set_msg(msg, "--preprocess %s differs from the classifier's '%s' (its features were made that way); "
                           "leave --preprocess out: classify takes it from %s", o->eng.preprocess, c->preprocess, o->classifier);
        return -1;
    }
    if (o->eng.dct && strcmp(o->eng.dct, c->dct)) {
        bn_h5_set_msg(msg, "--dct %s differs from the classifier's '%s' (its features were made that way); leave "
                           "--dct out: classify takes it from %s", o->eng.dct, c->dct, o->classifier);
        return -1;
    }
    if (c->dim != BN_FEATURES) {
        bn_h5_set_msg(msg, "%s takes %d inputs, but Inception v3 gives %d features: it was not trained on bneck "
                           "features", o->classifier, c->dim, BN_FEATURES);
        return -1;
    }
    return 0;
}

/* The hint under a refusal of the options against the classifier. */
#define HINT_IDENTITY "classify runs the network as the classifier's features were made (docs/engine.md: precisions)"

/* The engine options of a run with classifier c: o->eng with the precision
 * the classifier's features were made with. Refuses a --precision other
 * than the classifier's, --calibration for a classifier that is not int8,
 * and for an int8 one a missing --calibration or (when hash != 0: one rank
 * hashes the file) one whose SHA-256 is not the classifier's
 * calibration_sha256. Returns 0 with *eo filled (its precision points into
 * c), or -1 with the reason in msg. */
static int engine_opts_for(const bn_classify_cfg *o, const bn_classifier *c, int hash, bn_engine_opts *eo, char *msg) {
    *eo = o->eng;
    if (o->eng.precision && strcmp(o->eng.precision, c->precision)) {
        bn_h5_set_msg(msg, "--precision %s differs from the classifier's '%s' (its features were made that way); "
                           "leave --precision out: classify takes it from %s", o->eng.precision, c->precision,
                      o->classifier);
        return -1;
    }
    eo->precision = c->precision;
    int int8 = !strcmp(c->precision, "int8");
    if (!int8 && o->eng.calibration) {
        bn_h5_set_msg(msg, "--calibration %s is for int8, but %s was trained on %s features; leave --calibration out",
                      o->eng.calibration, o->classifier, c->precision);
        return -1;
    }
    if (int8 && !o->eng.calibration) {
        bn_h5_set_msg(msg, "%s was trained on int8 features made with the calibration file of sha256 %s; pass that "
                           "file as --calibration CAL.h5", o->classifier, c->calibration_sha256);
        return -1;
    }
    if (int8 && hash) {
        char sha[65], err[1024];
        if (bn_file_sha256(o->eng.calibration, sha, err, sizeof err)) {
            bn_h5_set_msg(msg, "%s", err);
            return -1;
        }
        if (strcmp(sha, c->calibration_sha256)) {
            bn_h5_set_msg(msg, "%s has sha256 %s, but %s was trained on int8 features made with the calibration file of "
                               "sha256 %s: its scores would not mean the same; pass that file as --calibration",
                          o->eng.calibration, sha, o->classifier, c->calibration_sha256);
            return -1;
        }
    }
    return 0;
}

/* The engine options without the precision and calibration, which depend
 * on the classifier (checked by engine_opts_for once it is read): what the
 * usage check before any file is read can check. */
static bn_engine_opts engine_opts_early(const bn_engine_opts *e) {
    bn_engine_opts eo = *e;
    eo.precision = NULL;
    eo.calibration = NULL;
    return eo;
}

/* ------------------------------------------------------------ images on the command line */

/* Rank 0 only: classify the images pos[0..npos). Returns the exit status. */
static int classify_images(const bn_classify_cfg *o, bn_classify_result *res) {
    const char *const *pos = o->image_paths;
    const int npos = o->nimages;
    bn_classifier c;
    bn_engine_setup setup, *es = &setup;
    memset(es, 0, sizeof *es);
    char err[2048] = "", msg[BN_H5_MSG_LEN] = "";
    if (bn_classifier_read(o->classifier, &c, err, sizeof err)) {
        bn_error("bneck train writes the classifier file", "%s", err);
        return BN_EXIT_FAIL;
    }
    bn_norm norm = BN_NORM_KERAS;
    bn_norm_parse(c.preprocess, &norm);
    bn_engine_opts eo;
    if (check_identity_opts(o, &c, msg) || engine_opts_for(o, &c, 1, &eo, msg)) {
        bn_error(HINT_IDENTITY, "%s", msg);
        bn_classifier_free(&c);
        return BN_EXIT_FAIL;
    }
    if (bn_engine_opts_check(&eo, es, err, sizeof err)) {
        bn_error("bneck classify --help lists the engine options", "%s (the classifier %s is %s)", err, o->classifier,
                 c.precision);
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
    int nb = (int)(o->eng.batch < npos ? o->eng.batch : npos);
    bn_engine *eng = bn_engine_open(es, &model, nb, err, sizeof err);
    if (!eng) {
        bn_error("bneck --build-info lists the backends and the precisions each offers", "cannot create the %s %s engine: %s",
                 es->backend, bn_precision_name(es->precision), err);
        bn_engine_setup_free(es);
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
    bn_decode_opts dopts = {.max_pixels = es->dopts.max_pixels, .dct_fast = strcmp(c.dct, "fast") == 0};
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
        if (cnt > 0 && bn_engine_forward(eng, input, cnt, feat))
            bn_fatal_at(__FILE__, __LINE__, "--device cpu runs on the CPU", "the %s engine failed: %s", bn_engine_backend(eng),
                        bn_engine_error(eng));
        for (int i = i0; i < i0 + n; i++) {
            if (slot[i - i0] < 0) continue;
            score(&c, feat + (size_t)slot[i - i0] * BN_FEATURES, xd, p, K, idx);
            printf("%s%s\n", printed++ ? "\n" : "", pos[i]);
            for (int j = 0; j < K; j++) printf("%s (score = %.5f)\n", c.labels[idx[j]], p[idx[j]]);
        }
        fflush(stdout);
    }
    int status = BN_EXIT_OK;
    if (res) {
        res->ok = npos - failed;
        res->failed = failed;
    }
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
    bn_engine_setup_free(es);
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
    const double v0 = *vp, t0 = *tp;
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || H5Fis_hdf5(path) <= 0) return;
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char msg[BN_H5_MSG_LEN] = "", *fmt = NULL, *set = NULL;
    if (f >= 0 && bn_h5_attr_get_str(f, "format", &fmt, msg) == 0 && !strcmp(fmt, BN_STORE_FORMAT) &&
        bn_h5_attr_get_str(f, "settings", &set, msg) == 0) {
        bn_settings_get_double(set, "validation_percentage", vp);
        bn_settings_get_double(set, "testing_percentage", tp);
        if (!(*vp >= 0 && *vp <= 100)) *vp = v0;
        if (!(*tp >= 0 && *tp <= 100)) *tp = t0;
    }
    free(set);
    free(fmt);
    if (f >= 0) H5Fclose(f);
    bn_h5_quiet_off(&q);
}

/* A corpus run in progress. */
typedef struct {
    const bn_classify_cfg *o;
    MPI_Comm comm;
    int rank, size;
    char err[2048], msg[BN_H5_MSG_LEN];
    char *feats_path, *partial;
    bn_classifier c;
    bn_engine_opts eng;    /* the engine options, precision from the classifier (engine_opts_for) */
    bn_feats f;
    int opened;
    int C, K;
    int *map;              /* corpus class -> classifier class (-1: none) */
    long long *done, D;    /* the done rows, in file order */
    csv_t w;
} corpus_run;

static void corpus_free(corpus_run *r, int status) {
    if (r->w.fp) fclose(r->w.fp);
    if (r->rank == 0 && r->partial && status != BN_EXIT_OK) unlink(r->partial);
    if (r->opened) bn_feats_close(&r->f); /* collective */
    bn_classifier_free(&r->c);
    free(r->done);
    free(r->map);
    free(r->partial);
    free(r->feats_path);
}

/* Every rank: ok, or rank 0 reports msg (with hint). Returns -1 when any
 * rank failed. */
static int agree(corpus_run *r, int ok, const char *hint) {
    if (bn_h5_agree(r->comm, ok, r->msg) < 0) {
        if (r->rank == 0) bn_error(hint, "%s", r->msg);
        return -1;
    }
    return 0;
}

/* The features file's name; refuse an --out that would overwrite an input. */
static int name_outputs(corpus_run *r) {
    const bn_classify_cfg *o = r->o;
    if (o->features) {
        r->feats_path = strdupCheck(o->features);
    } else {
        size_t len = strlen(o->out) + sizeof ".features.h5";
        r->feats_path = mallocCheck(len);
        snprintf(r->feats_path, len, "%s.features.h5", o->out);
    }
    if (!strcmp(r->feats_path, o->out) || !strcmp(o->out, o->classifier) || !strcmp(o->out, o->weights)) {
        if (r->rank == 0)
            bn_error(NULL, "--out %s would overwrite an input (the features file, the classifier or the weights); "
                           "give another name", o->out);
        return -1;
    }
    return 0;
}

/* The classifier (every rank reads the small file) and the weights'
 * identity (rank 0 hashes), before any image is touched. */
static int read_classifier(corpus_run *r) {
    const bn_classify_cfg *o = r->o;
    int ok = bn_classifier_read(o->classifier, &r->c, r->err, sizeof r->err) == 0;
    if (!ok) bn_h5_set_msg(r->msg, "%s (bneck train writes the classifier file)", r->err);
    const char *hint = NULL;
    if (ok && (check_identity_opts(o, &r->c, r->msg) || engine_opts_for(o, &r->c, r->rank == 0, &r->eng, r->msg))) {
        ok = 0;
        hint = HINT_IDENTITY;
    }
    if (ok) {
        bn_engine_setup es;
        if (bn_engine_opts_check(&r->eng, &es, r->err, sizeof r->err)) {
            bn_h5_set_msg(r->msg, "%s (the classifier %s is %s)", r->err, o->classifier, r->c.precision);
            ok = 0;
            hint = "bneck classify --help lists the engine options";
        }
    }
    if (ok && r->rank == 0) {
        char sha[65];
        if (bn_file_sha256(o->weights, sha, r->err, sizeof r->err)) {
            bn_h5_set_msg(r->msg, "%s", r->err);
            ok = 0;
        } else if (check_weights(o->weights, sha, o->classifier, &r->c, r->msg)) {
            ok = 0;
        }
    }
    return agree(r, ok, hint);
}

/* The features of the corpus: the extract stage, with the classifier's
 * preprocessing. Rerunning resumes the same features file (the split
 * percentages only decide the file's split column; those of an existing file
 * are kept so that its corpus listing matches). Returns the exit status. */
static int compute_features(corpus_run *r) {
    const bn_classify_cfg *o = r->o;
    double vt[2] = {0, 0};
    if (r->rank == 0) existing_split(r->feats_path, &vt[0], &vt[1]);
    mpiCheck(MPI_Bcast(vt, 2, MPI_DOUBLE, 0, r->comm));
    bn_extract_cfg ex;
    bn_extract_cfg_init(&ex);
    ex.images = o->images;
    ex.manifest = o->manifest;
    ex.weights = o->weights;
    ex.out = r->feats_path;
    ex.eng = r->eng;
    ex.eng.preprocess = r->c.preprocess;
    ex.eng.dct = r->c.dct;
    ex.validation_pct = vt[0];
    ex.testing_pct = vt[1];
    ex.progress = o->progress;
    ex.price = o->price;
    ex.quiet = o->quiet;
    ex.decode_threads = o->decode_threads;
    if (r->rank == 0) bn_info("features of the corpus: %s", r->feats_path);
    int rc = bn_extract_run(&ex, r->comm, NULL);
    if (rc != BN_EXIT_OK && r->rank == 0)
        bn_error(rc == BN_EXIT_RESUME ? "rerun the same command to resume" : NULL,
                 "computing the features into %s did not finish (extract exit status %d); no predictions written",
                 r->feats_path, rc);
    return rc == BN_CLI_USAGE ? BN_EXIT_FAIL : rc;
}

/* Open the features, check their identity, start the CSV (rank 0). */
static int open_features_and_csv(corpus_run *r) {
    const bn_classify_cfg *o = r->o;
    if (bn_feats_open(r->feats_path, r->comm, &r->f, r->err, sizeof r->err)) {
        if (r->rank == 0) bn_error(NULL, "%s", r->err);
        return -1;
    }
    r->opened = 1;
    int ok = 1;
    r->msg[0] = 0;
    const bn_feats *f = &r->f;
    const bn_classifier *c = &r->c;
    if (strcmp(f->weights_sha256, c->weights_sha256) || strcmp(f->preprocess, c->preprocess) || strcmp(f->dct, c->dct) ||
        strcmp(f->precision, c->precision) || strcmp(f->calibration_sha256, c->calibration_sha256)) {
        bn_h5_set_msg(r->msg, "%s was made with weights %s, preprocess %s, dct %s, precision %s%s%s; the classifier %s "
                              "needs weights %s, preprocess %s, dct %s, precision %s%s%s", r->feats_path,
                      f->weights_sha256, f->preprocess, f->dct, f->precision,
                      f->calibration_sha256[0] ? ", calibration " : "", f->calibration_sha256, o->classifier,
                      c->weights_sha256, c->preprocess, c->dct, c->precision,
                      c->calibration_sha256[0] ? ", calibration " : "", c->calibration_sha256);
        ok = 0;
    } else if (f->dim != c->dim) {
        bn_h5_set_msg(r->msg, "%s has %d features per row; the classifier takes %d", r->feats_path, f->dim, c->dim);
        ok = 0;
    }
    r->C = c->nclasses;
    r->K = (int)(o->top < r->C ? o->top : r->C);
    if (ok && r->rank == 0) {
        if (bn_feats_load_paths(&r->f, r->err, sizeof r->err)) {
            bn_h5_set_msg(r->msg, "%s", r->err);
            ok = 0;
        } else {
            size_t len = strlen(o->out) + sizeof ".partial";
            r->partial = mallocCheck(len);
            snprintf(r->partial, len, "%s.partial", o->out);
            if (!(r->w.fp = fopen(r->partial, "w"))) {
                bn_h5_set_msg(r->msg, "%s: cannot create: %s", r->partial, strerror(errno));
                ok = 0;
            } else {
                fputs("path,true_label,status", r->w.fp);
                for (int j = 1; j <= r->K; j++) fprintf(r->w.fp, ",label_%d,score_%d", j, j);
                fputc('\n', r->w.fp);
            }
        }
    }
    return agree(r, ok, NULL);
}

/* Corpus class -> classifier class, by name; and the list of done rows. */
static void map_classes(corpus_run *r) {
    r->map = mallocCheck(sizeof(int) * (size_t)(r->f.nclasses > 0 ? r->f.nclasses : 1));
    for (int k = 0; k < r->f.nclasses; k++) {
        r->map[k] = -1;
        for (int j = 0; j < r->C && r->map[k] < 0; j++)
            if (!strcmp(r->f.label_names[k], r->c.labels[j])) r->map[k] = j;
    }
    r->done = mallocCheck(sizeof(long long) * (size_t)(r->f.n > 0 ? r->f.n : 1));
    for (long long i = 0; i < r->f.n; i++)
        if (r->f.status[i] == BN_ROW_DONE) r->done[r->D++] = i;
}

/* Score the done rows: in rounds of up to BLOCK_ROWS per rank, each rank a
 * contiguous block of the round; rank 0 gathers each round and writes its
 * rows (and the failed rows around them) in file order. */
static int score_rows(corpus_run *r) {
    const int K = r->K, size = r->size, rank = r->rank;
    const int dim = r->c.dim;
    /* Rows per rank and round: BLOCK_ROWS, less when a round's results (2K
     * doubles a row) would not fit MPI_Gatherv's int counts. */
    long long block = BLOCK_ROWS;
    while (block > 1 && block * size * 2 * (long long)K > INT_MAX / 2) block /= 2;
    const long long per_round = block * size;
    const long long rounds = (r->D + per_round - 1) / per_round;
    float *x = mallocCheck(sizeof(float) * (size_t)block * (size_t)dim);
    double *p = mallocCheck(sizeof(double) * (size_t)r->C), *xd = mallocCheck(sizeof(double) * (size_t)dim);
    int *idx = mallocCheck(sizeof(int) * (size_t)K);
    double *mine = mallocCheck(sizeof(double) * (size_t)block * 2 * (size_t)K), *all = NULL;
    int *counts = NULL, *displs = NULL;
    if (rank == 0) {
        all = mallocCheck(sizeof(double) * (size_t)per_round * 2 * (size_t)K);
        counts = mallocCheck(sizeof(int) * (size_t)size);
        displs = mallocCheck(sizeof(int) * (size_t)size);
    }
    int rc = 0;
    for (long long t = 0; t < rounds; t++) {
        long long r0 = t * per_round, L = r->D - r0 < per_round ? r->D - r0 : per_round;
        long long lo = r0 + L * rank / size, hi = r0 + L * (rank + 1) / size;
        int ok = 1;
        r->msg[0] = 0;
        if (hi > lo && bn_feats_read(&r->f, r->done + lo, hi - lo, x, r->err, sizeof r->err)) {
            bn_h5_set_msg(r->msg, "%s", r->err);
            ok = 0;
        }
        for (long long k = 0; ok && k < hi - lo; k++) {
            score(&r->c, x + (size_t)k * dim, xd, p, K, idx);
            for (int j = 0; j < K; j++) {
                mine[(size_t)k * 2 * K + 2 * j] = idx[j];
                mine[(size_t)k * 2 * K + 2 * j + 1] = p[idx[j]];
            }
        }
        if (rank == 0 && r->w.write_failed) {
            bn_h5_set_msg(r->msg, "%s: cannot write: %s", r->partial, strerror(r->w.write_failed));
            ok = 0;
        }
        if (agree(r, ok, NULL)) {
            rc = -1;
            break;
        }
        if (rank == 0)
            for (int q = 0; q < size; q++) {
                long long a = L * q / size, b = L * (q + 1) / size;
                counts[q] = (int)((b - a) * 2 * K);
                displs[q] = (int)(a * 2 * K);
            }
        mpiCheck(MPI_Gatherv(mine, (int)((hi - lo) * 2 * K), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, r->comm));
        if (rank == 0) {
            for (long long k = 0; k < L; k++) {
                long long row = r->done[r0 + k];
                for (; r->w.next < row; r->w.next++) csv_row(&r->w, &r->f, &r->c, r->map, r->w.next, NULL, K);
                csv_row(&r->w, &r->f, &r->c, r->map, row, all + (size_t)k * 2 * K, K);
                r->w.next = row + 1;
            }
            if (ferror(r->w.fp)) r->w.write_failed = errno ? errno : EIO;
        }
    }
    free(idx);
    free(xd);
    free(p);
    free(x);
    free(mine);
    free(all);
    free(counts);
    free(displs);
    return rc;
}

/* The failed rows after the last done one; close and rename into place. */
static int finish_csv(corpus_run *r) {
    int ok = 1;
    r->msg[0] = 0;
    if (r->rank == 0) {
        for (; r->w.next < r->f.n; r->w.next++) csv_row(&r->w, &r->f, &r->c, r->map, r->w.next, NULL, r->K);
        int e = ferror(r->w.fp) ? errno : 0;
        if (fclose(r->w.fp) != 0 && !e) e = errno ? errno : EIO;
        r->w.fp = NULL;
        if (e) {
            bn_h5_set_msg(r->msg, "%s: cannot write: %s", r->partial, strerror(e));
            ok = 0;
        } else if (rename(r->partial, r->o->out) != 0) {
            bn_h5_set_msg(r->msg, "cannot rename %s to %s: %s", r->partial, r->o->out, strerror(errno));
            ok = 0;
        }
    }
    return agree(r, ok, "check free space and permissions in the folder of --out");
}

/* Rank 0: the summary lines. */
static void print_summary(const corpus_run *r) {
    const csv_t *w = &r->w;
    const char *out = r->o->out;
    printf("classified %lld image%s, %lld failed; predictions in %s\n", w->ok, w->ok == 1 ? "" : "s", w->failed, out);
    if (w->lab_n > 0)
        printf("accuracy on labelled images: %.1f%% (N=%lld%s)\n", 100.0 * (double)w->lab_right / (double)w->lab_n,
               w->lab_n, w->lab_n < w->ok ? "; images whose label is not a classifier class are not counted" : "");
    else
        printf("accuracy: not computed (no corpus label is one of the classifier's classes)\n");
    if (w->failed > 0)
        bn_warn("%lld image%s could not be decoded: status 'failed' in %s; the reasons are in %s (error_reason), "
                "and bneck corpus --decode lists them", w->failed, w->failed == 1 ? "" : "s", out, r->feats_path);
    fflush(stdout);
}

/* Collective: classify a corpus into o->out. Returns the exit status (the
 * same on every rank). */
static int classify_corpus(const bn_classify_cfg *o, MPI_Comm comm, bn_classify_result *res) {
    corpus_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.comm = comm;
    mpiCheck(MPI_Comm_rank(comm, &r.rank));
    mpiCheck(MPI_Comm_size(comm, &r.size));
    int status = BN_EXIT_FAIL;
    if (name_outputs(&r)) {
        free(r.feats_path);
        return BN_CLI_USAGE;
    }
    if (read_classifier(&r) == 0 && (status = compute_features(&r)) == BN_EXIT_OK) {
        status = BN_EXIT_FAIL;
        if (open_features_and_csv(&r) == 0) {
            map_classes(&r);
            if (score_rows(&r) == 0 && finish_csv(&r) == 0) {
                status = BN_EXIT_OK;
                if (r.rank == 0) print_summary(&r);
                if (res) {
                    res->ok = r.w.ok;
                    res->failed = r.w.failed;
                    res->labelled = r.w.lab_n;
                    res->right = r.w.lab_right;
                }
            }
        }
    }
    corpus_free(&r, status);
    return status;
}

/* ------------------------------------------------------------ entry point and command */

void bn_classify_cfg_init(bn_classify_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    bn_engine_opts eo = BN_ENGINE_OPTS_INIT;
    cfg->eng = eo;
    cfg->eng.preprocess = NULL; /* the classifier's */
    cfg->eng.dct = NULL;
    cfg->eng.precision = NULL; /* the classifier's */
    cfg->top = 5;
    cfg->progress = "auto";
    cfg->price = NAN;
}

int bn_classify_run(const bn_classify_cfg *o, MPI_Comm comm, bn_classify_result *res) {
    if (res) memset(res, 0, sizeof *res);
    /* The options that do not depend on the classifier, now; the precision
     * and calibration once it is read. */
    bn_engine_setup es;
    bn_engine_opts early = engine_opts_early(&o->eng);
    char err[512];
    if (bn_engine_opts_check(&early, &es, err, sizeof err)) {
        if (bn_launch_rank() == 0) bn_error(NULL, "%s", err);
        return BN_CLI_USAGE;
    }
    if (o->images || o->manifest) {
        bn_mpi_need();
        return classify_corpus(o, comm, res);
    }
    /* Images on the command line: one process does the work, without MPI. */
    if (bn_launch_rank() != 0) return BN_EXIT_OK;
    return classify_images(o, res);
}

int bn_cmd_classify(int argc, char **argv) {
    bn_classify_cfg o;
    bn_classify_cfg_init(&o);
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"weights", 'w', BN_OPT_STRING, &o.weights, "FILE", NULL, 0, 0, NULL,
         "Keras Inception v3 weights (.h5), the very file the classifier's features came from; required"},
        {"classifier", 'c', BN_OPT_STRING, &o.classifier, "FILE", NULL, 0, 0, NULL, "classifier file from bneck train; required"},
        {"top", 'k', BN_OPT_INT, &o.top, "N", "5", 1, 1e6, NULL, "classes reported per image (at most the number of classes)"},
        BN_OPT_PRICE(&o.price),
        {"images", 'i', BN_OPT_STRING, &o.images, "DIR", NULL, 0, 0, NULL, "corpus mode: folder of class folders"},
        {"manifest", 'm', BN_OPT_STRING, &o.manifest, "FILE", NULL, 0, 0, NULL, "corpus mode: manifest of path<TAB>label lines"},
        {"out", 'o', BN_OPT_STRING, &o.out, "FILE.csv", NULL, 0, 0, NULL, "corpus mode: predictions CSV; required there"},
        {"features", 'f', BN_OPT_STRING, &o.features, "FILE", "OUT.features.h5", 0, 0, NULL,
         "corpus mode: features file to fill or reuse (resumed if it exists)"},
        BN_OPTS_ENGINE(&o.eng, "8", "the classifier's"),
        {"progress", 0, BN_OPT_CHOICE, &o.progress, NULL, "auto", 0, 0, "auto|tty|log|none", "corpus mode: progress of the extract"},
        {"decode-threads", 0, BN_OPT_INT, &o.decode_threads, "N", "cores the engines leave, at least 1", 0, 256, NULL,
         "corpus mode: the extract's decode threads per rank"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
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
        "(a warning, exit status 0). The decoding, normalisation and precision are the\n"
        "classifier's: --preprocess, --dct and --precision are only checked against it.\n"
        "--weights (and for an int8 classifier --calibration) must be the files it was\n"
        "trained with (checked by SHA-256). See docs/classify.md.",
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
        if (!isnan(o.price))
            return bn_cli_usage(&spec, "--price-per-node-hour goes with a corpus, whose features file records the cost");
    }
    bn_cli_apply_verbosity(verbose, quiet);
    o.quiet = quiet;
    bn_engine_setup es;
    bn_engine_opts early = engine_opts_early(&o.eng);
    char err[512];
    if (bn_engine_opts_check(&early, &es, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    o.image_paths = pos;
    o.nimages = npos;
    return bn_classify_run(&o, MPI_COMM_WORLD, NULL);
}
