/* test_classifier.c: the "bneck-classifier" file (io/classifier.c).
 *  - every field survives a write and a read bit for bit (W is stored
 *    transposed, history is a compound table, NaN stays NaN);
 *  - the labels file has one class name per line;
 *  - a write into a missing folder, or of non-finite weights, fails and
 *    leaves nothing behind;
 *  - the reader refuses, with the path and a reason: a missing file, a
 *    non-HDF5 file, a features file, another format, another version, a
 *    missing or misshapen dataset, NaN in b or W, labels of the wrong count.
 */
#include "config.h"

#include "io/classifier.h"
#include "io/h5util.h"
#include "tests/testutil.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];

static const char *tpath(const char *name) {
    static char buf[8][256];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static double rnd(void) { /* in [-1, 1), with full 53-bit mantissas */
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* A filled classifier of C classes and dim inputs (free with bn_classifier_free). */
static void make(bn_classifier *c, int C, int dim, long long nh) {
    memset(c, 0, sizeof *c);
    c->dim = dim;
    c->nclasses = C;
    c->labels = calloc((size_t)C, sizeof *c->labels);
    static const char *names[] = {"daisy", "dandelion", "roses", "sunflowers", "tulips", "a b c 0 9"};
    for (int k = 0; k < C; k++) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s%s", names[k % 6], k >= 6 ? " x" : "");
        if (k >= 12) snprintf(buf, sizeof buf, "class %d", k);
        c->labels[k] = strdup(buf);
    }
    c->Wt = malloc(sizeof(double) * (size_t)C * (size_t)dim);
    for (size_t i = 0; i < (size_t)C * (size_t)dim; i++) c->Wt[i] = rnd() * 1e-3;
    c->Wt[0] = 5e-324;   /* a subnormal */
    c->Wt[1] = -0.0;     /* the sign of zero */
    c->b = malloc(sizeof(double) * (size_t)C);
    for (int k = 0; k < C; k++) c->b[k] = rnd();
    snprintf(c->weights_sha256, sizeof c->weights_sha256, "%064d", 7);
    memset(c->weights_sha256, 'a', 10);
    snprintf(c->preprocess, sizeof c->preprocess, "tf2015");
    snprintf(c->dct, sizeof c->dct, "fast");
    snprintf(c->precision, sizeof c->precision, "int8");
    memset(c->calibration_sha256, 'c', 64);
    c->calibration_sha256[64] = 0;
    snprintf(c->corpus_sha256, sizeof c->corpus_sha256, "%064d", 3);
    c->features_path = strdup("/data/flowers features.h5");
    c->settings = strdup("{\"steps\": 4000, \"learning_rate\": 0.01, \"note\": \"caf\xc3\xa9\"}");
    c->nhistory = nh;
    c->history = calloc(nh ? (size_t)nh : 1, sizeof *c->history);
    for (long long s = 0; s < nh; s++) {
        c->history[s].step = s * 10;
        c->history[s].train_accuracy = (rnd() + 1) / 2;
        c->history[s].cross_entropy = (rnd() + 1) * 3;
        c->history[s].validation_accuracy = s == 1 ? NAN : (rnd() + 1) / 2;
        c->history[s].validation_n = 100 + s;
    }
    c->test_accuracy = 0.875;
    c->test_n = 40;
    c->confusion = malloc(sizeof(long long) * (size_t)C * (size_t)C);
    for (int i = 0; i < C * C; i++) c->confusion[i] = i * 3 + (i % 2);
    c->train_n = 3000;
    c->excluded_n = 2;
}

static int same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

static void check_equal(const bn_classifier *a, const bn_classifier *b, const char *what) {
    CHECK(a->dim == b->dim && a->nclasses == b->nclasses, "%s: shape %d x %d vs %d x %d", what, a->dim, a->nclasses,
          b->dim, b->nclasses);
    if (a->dim != b->dim || a->nclasses != b->nclasses) return;
    const int C = a->nclasses;
    for (int k = 0; k < C; k++) CHECK(!strcmp(a->labels[k], b->labels[k]), "%s: label %d '%s' vs '%s'", what, k, a->labels[k], b->labels[k]);
    CHECK(same_bits(a->Wt, b->Wt, sizeof(double) * (size_t)C * (size_t)a->dim), "%s: Wt differs", what);
    CHECK(same_bits(a->b, b->b, sizeof(double) * (size_t)C), "%s: b differs", what);
    CHECK(!strcmp(a->weights_sha256, b->weights_sha256), "%s: weights_sha256", what);
    CHECK(!strcmp(a->preprocess, b->preprocess), "%s: preprocess", what);
    CHECK(!strcmp(a->dct, b->dct), "%s: dct", what);
    CHECK(!strcmp(a->precision, b->precision), "%s: precision '%s' vs '%s'", what, a->precision, b->precision);
    CHECK(!strcmp(a->calibration_sha256, b->calibration_sha256), "%s: calibration_sha256", what);
    CHECK(!strcmp(a->corpus_sha256, b->corpus_sha256), "%s: corpus_sha256", what);
    CHECK(!strcmp(a->features_path, b->features_path), "%s: features_path '%s'", what, b->features_path);
    CHECK(!strcmp(a->settings, b->settings), "%s: settings '%s'", what, b->settings);
    CHECK(a->nhistory == b->nhistory, "%s: nhistory %lld vs %lld", what, a->nhistory, b->nhistory);
    for (long long s = 0; s < a->nhistory && s < b->nhistory; s++) {
        const bn_eval_point *p = &a->history[s], *q = &b->history[s];
        CHECK(p->step == q->step && p->validation_n == q->validation_n &&
                  same_bits(&p->train_accuracy, &q->train_accuracy, sizeof(double)) &&
                  same_bits(&p->cross_entropy, &q->cross_entropy, sizeof(double)) &&
                  same_bits(&p->validation_accuracy, &q->validation_accuracy, sizeof(double)),
              "%s: history row %lld differs", what, s);
    }
    CHECK(same_bits(&a->test_accuracy, &b->test_accuracy, sizeof(double)), "%s: test_accuracy %g vs %g", what,
          a->test_accuracy, b->test_accuracy);
    CHECK(a->test_n == b->test_n && a->train_n == b->train_n && a->excluded_n == b->excluded_n, "%s: counts", what);
    CHECK(same_bits(a->confusion, b->confusion, sizeof(long long) * (size_t)C * (size_t)C), "%s: confusion", what);
}

/* Read path, expect a refusal whose message names path and contains word. */
static void expect_refused(const char *path, const char *word, const char *what) {
    bn_classifier c;
    char err[2048] = "";
    int rc = bn_classifier_read(path, &c, err, sizeof err);
    CHECK(rc == -1, "%s: accepted", what);
    CHECK(strstr(err, path) != NULL, "%s: message does not name the file: %s", what, err);
    CHECK(strstr(err, word) != NULL, "%s: message lacks '%s': %s", what, word, err);
    CHECK(c.Wt == NULL && c.labels == NULL, "%s: left allocations", what);
    printf("  refused (%s): %s\n", what, err);
}

static hid_t open_rw(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "cannot reopen %s\n", path);
        exit(1);
    }
    return f;
}

/* A valid classifier at name, then return its path. */
static const char *valid_copy(const bn_classifier *c, const char *name) {
    const char *p = tpath(name);
    char err[1024] = "";
    int rc = bn_classifier_write(p, c, err, sizeof err);
    CHECK(rc == 0, "writing %s: %s", p, err);
    return p;
}

/* Replace dataset name of path with a float64 dataset of the given shape. */
static void replace_dset(const char *path, const char *name, int rank, const hsize_t *dims) {
    hid_t f = open_rw(path);
    CHECK(H5Ldelete(f, name, H5P_DEFAULT) >= 0, "delete %s", name);
    if (rank > 0) {
        hid_t sp = H5Screate_simple(rank, dims, NULL);
        hid_t d = H5Dcreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(d >= 0, "create %s", name);
        H5Dclose(d);
        H5Sclose(sp);
    }
    H5Fclose(f);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/bneck-classifier-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char err[2048] = "";

    /* 1. Round trips: a small one, and retrain.py's shape with NaN test accuracy and no history. */
    bn_classifier a, b;
    make(&a, 3, 5, 4);
    const char *p1 = tpath("c1.h5");
    CHECK(bn_classifier_write(p1, &a, err, sizeof err) == 0, "write: %s", err);
    CHECK(access(tpath("c1.h5.partial"), F_OK) != 0, "a .partial was left behind");
    CHECK(bn_classifier_read(p1, &b, err, sizeof err) == 0, "read: %s", err);
    check_equal(&a, &b, "small");
    bn_classifier_free(&b);
    bn_classifier_free(&a);

    make(&a, 13, 2048, 0);
    snprintf(a.precision, sizeof a.precision, "bf16");
    a.calibration_sha256[0] = 0;
    a.test_accuracy = NAN;
    a.test_n = 0;
    const char *p2 = tpath("c2.h5");
    CHECK(bn_classifier_write(p2, &a, err, sizeof err) == 0, "write: %s", err);
    CHECK(bn_classifier_read(p2, &b, err, sizeof err) == 0, "read: %s", err);
    check_equal(&a, &b, "2048 x 13");
    CHECK(isnan(b.test_accuracy), "NaN test accuracy lost");
    bn_classifier_free(&b);

    /* The file stores W = Wt^T as (dim, C) and the attributes as documented. */
    {
        hid_t f = H5Fopen(p2, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = H5Dopen2(f, "W", H5P_DEFAULT), sp = H5Dget_space(d);
        hsize_t dims[2] = {0, 0};
        H5Sget_simple_extent_dims(sp, dims, NULL);
        CHECK(dims[0] == 2048 && dims[1] == 13, "W shape (%llu, %llu)", (unsigned long long)dims[0],
              (unsigned long long)dims[1]);
        double *W = malloc(sizeof(double) * 2048 * 13);
        H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, W);
        CHECK(W[5 * 13 + 7] == a.Wt[7 * 2048 + 5], "W is not the transpose of Wt");
        free(W);
        H5Sclose(sp);
        H5Dclose(d);
        char msg[BN_H5_MSG_LEN] = "", *s = NULL;
        long long v = 0;
        CHECK(bn_h5_attr_get_str(f, "format", &s, msg) == 0 && !strcmp(s, "bneck-classifier"), "format");
        free(s);
        CHECK(bn_h5_attr_get_str(f, "created_by", &s, msg) == 0 && !strncmp(s, "bneck ", 6), "created_by");
        free(s);
        CHECK(bn_h5_attr_get_int(f, "version", &v, msg) == 0 && v == 1, "version");
        H5Fclose(f);
    }

    /* 2. The labels file. */
    const char *lp = tpath("labels.txt");
    CHECK(bn_classifier_write_labels(lp, &a, err, sizeof err) == 0, "labels: %s", err);
    {
        FILE *fp = fopen(lp, "r");
        char line[256];
        int k = 0, good = fp != NULL;
        while (fp && fgets(line, sizeof line, fp)) {
            size_t n = strlen(line);
            good = good && n > 0 && line[n - 1] == '\n' && k < a.nclasses;
            if (good) {
                line[n - 1] = 0;
                good = !strcmp(line, a.labels[k]);
            }
            k++;
        }
        if (fp) fclose(fp);
        CHECK(good && k == a.nclasses, "labels file: %d lines", k);
    }
    CHECK(bn_classifier_write_labels(tpath("nodir/labels.txt"), &a, err, sizeof err) == -1 &&
              strstr(err, "nodir/labels.txt"), "labels into a missing folder: %s", err);

    /* 3. Writes that must fail, leaving nothing. */
    const char *nd = tpath("nodir/c.h5");
    CHECK(bn_classifier_write(nd, &a, err, sizeof err) == -1 && strstr(err, nd), "write into a missing folder: %s", err);
    printf("  refused write: %s\n", err);
    a.Wt[17] = INFINITY;
    const char *pinf = tpath("inf.h5");
    CHECK(bn_classifier_write(pinf, &a, err, sizeof err) == -1 && strstr(err, pinf) && strstr(err, "finite"),
          "non-finite weights written: %s", err);
    CHECK(access(pinf, F_OK) != 0 && access(tpath("inf.h5.partial"), F_OK) != 0, "a refused write left a file");
    a.Wt[17] = 0.25;

    /* 4. Refusals. */
    expect_refused(tpath("missing.h5"), "No such file", "missing file");
    {
        const char *p = tpath("text.h5");
        FILE *fp = fopen(p, "w");
        fputs("daisy\nroses\n", fp);
        fclose(fp);
        expect_refused(p, "not an HDF5 file", "text file");
        fp = fopen(tpath("empty.h5"), "w");
        fclose(fp);
        expect_refused(tpath("empty.h5"), "empty", "empty file");
    }
    expect_refused(g_dir, "folder", "a folder");
    {
        /* A features-like file: format bneck-features, version 1. */
        const char *p = tpath("features.h5");
        hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        char msg[BN_H5_MSG_LEN] = "";
        CHECK(bn_h5_attr_put_str(f, "format", "bneck-features", msg) == 0, "%s", msg);
        CHECK(bn_h5_attr_put_int(f, "version", H5T_STD_I32LE, 1, 1, msg) == 0, "%s", msg);
        hsize_t dims[2] = {4, 2048};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
        expect_refused(p, "did you pass the features file", "features file");
        /* No format at all. */
        p = tpath("plain.h5");
        f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        H5Fclose(f);
        expect_refused(p, "'format' attribute is missing", "plain HDF5");
        /* Another format. */
        p = valid_copy(&a, "other.h5");
        f = open_rw(p);
        H5Adelete(f, "format");
        CHECK(bn_h5_attr_put_str(f, "format", "bneck-weights", msg) == 0, "%s", msg);
        H5Fclose(f);
        expect_refused(p, "format is 'bneck-weights'", "other format");
        /* Another version. */
        p = valid_copy(&a, "v2.h5");
        f = open_rw(p);
        CHECK(bn_h5_attr_put_int(f, "version", H5T_STD_I32LE, 2, 0, msg) == 0, "%s", msg);
        H5Fclose(f);
        expect_refused(p, "version 2", "version 2");
        /* A missing identity attribute. */
        p = valid_copy(&a, "noid.h5");
        f = open_rw(p);
        H5Adelete(f, "weights_sha256");
        H5Fclose(f);
        expect_refused(p, "weights_sha256", "missing weights_sha256");
        /* A classifier from before precision was recorded: fp32, no calibration. */
        p = valid_copy(&a, "noprec.h5");
        f = open_rw(p);
        CHECK(H5Adelete(f, "precision") >= 0 && H5Adelete(f, "calibration_sha256") >= 0, "delete precision");
        H5Fclose(f);
        {
            bn_classifier o;
            CHECK(bn_classifier_read(p, &o, err, sizeof err) == 0, "a classifier without precision: %s", err);
            CHECK(!strcmp(o.precision, "fp32") && !o.calibration_sha256[0],
                  "a classifier without precision reads as '%s' / '%s', want fp32 / ''", o.precision,
                  o.calibration_sha256);
            bn_classifier_free(&o);
        }
        /* precision without calibration_sha256, an unknown precision, int8 without a calibration. */
        p = valid_copy(&a, "nocal.h5");
        f = open_rw(p);
        H5Adelete(f, "calibration_sha256");
        H5Fclose(f);
        expect_refused(p, "calibration_sha256", "precision without calibration_sha256");
        p = valid_copy(&a, "fp64.h5");
        f = open_rw(p);
        H5Adelete(f, "precision");
        CHECK(bn_h5_attr_put_str(f, "precision", "fp64", msg) == 0, "%s", msg);
        H5Fclose(f);
        expect_refused(p, "fp64", "unknown precision");
        p = valid_copy(&a, "int8nocal.h5");
        f = open_rw(p);
        H5Adelete(f, "precision");
        CHECK(bn_h5_attr_put_str(f, "precision", "int8", msg) == 0, "%s", msg);
        H5Fclose(f);
        expect_refused(p, "calibration", "int8 without a calibration SHA-256");
        {
            bn_classifier w;
            make(&w, 2, 4, 0);
            w.calibration_sha256[0] = 0;
            const char *pw = tpath("w8.h5");
            CHECK(bn_classifier_write(pw, &w, err, sizeof err) == -1 && strstr(err, "calibration"),
                  "an int8 classifier without calibration written: %s", err);
            CHECK(access(pw, F_OK) != 0, "a refused write left %s", pw);
            bn_classifier_free(&w);
        }
        /* n_classes that disagrees with the datasets. */
        p = valid_copy(&a, "ncls.h5");
        f = open_rw(p);
        CHECK(bn_h5_attr_put_int(f, "n_classes", H5T_STD_I32LE, 12, 0, msg) == 0, "%s", msg);
        H5Fclose(f);
        expect_refused(p, "shape", "n_classes 12 for 13 classes");
    }
    {
        const char *p = valid_copy(&a, "noW.h5");
        replace_dset(p, "W", 0, NULL);
        expect_refused(p, "'W' is missing", "missing W");
        p = valid_copy(&a, "Wshape.h5");
        hsize_t dt[2] = {13, 2048};
        replace_dset(p, "W", 2, dt);
        expect_refused(p, "shape (13, 2048)", "W transposed");
        p = valid_copy(&a, "Wshape2.h5");
        hsize_t d3[3] = {2048, 13, 1};
        replace_dset(p, "W", 3, d3);
        expect_refused(p, "'W' has shape", "W of rank 3");
        p = valid_copy(&a, "bshape.h5");
        hsize_t db = 12;
        replace_dset(p, "b", 1, &db);
        expect_refused(p, "'b' has shape", "b of 12");
        p = valid_copy(&a, "noconf.h5");
        replace_dset(p, "confusion", 0, NULL);
        expect_refused(p, "confusion", "missing confusion");
        p = valid_copy(&a, "nohist.h5");
        replace_dset(p, "history", 0, NULL);
        expect_refused(p, "history", "missing history");
    }
    {
        /* NaN in b, Inf in W. */
        const char *p = valid_copy(&a, "nanb.h5");
        hid_t f = open_rw(p);
        hid_t d = H5Dopen2(f, "b", H5P_DEFAULT);
        double *bb = malloc(sizeof(double) * 13);
        memcpy(bb, a.b, sizeof(double) * 13);
        bb[4] = NAN;
        CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, bb) >= 0, "write NaN");
        free(bb);
        H5Dclose(d);
        H5Fclose(f);
        expect_refused(p, "b[4] is not finite", "NaN in b");
        p = valid_copy(&a, "infW.h5");
        f = open_rw(p);
        d = H5Dopen2(f, "W", H5P_DEFAULT);
        hid_t fs = H5Dget_space(d);
        hsize_t start[2] = {100, 2}, cnt[2] = {1, 1}, one = 1;
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
        hid_t ms = H5Screate_simple(1, &one, NULL);
        double inf = -INFINITY;
        CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &inf) >= 0, "write Inf");
        H5Sclose(ms);
        H5Sclose(fs);
        H5Dclose(d);
        H5Fclose(f);
        expect_refused(p, "W[100, 2] is not finite", "Inf in W");
    }
    {
        /* label_names of the wrong count. */
        const char *p = valid_copy(&a, "labels12.h5");
        hid_t f = open_rw(p);
        H5Ldelete(f, "label_names", H5P_DEFAULT);
        hid_t t = bn_h5_str_type(8, H5T_STR_NULLPAD);
        hsize_t n = 12;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t d = H5Dcreate2(f, "label_names", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        char *buf = calloc(12, 8);
        for (int k = 0; k < 12; k++) buf[k * 8] = 'a';
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
        H5Dclose(d);
        H5Sclose(sp);
        H5Tclose(t);
        H5Fclose(f);
        expect_refused(p, "'label_names' has shape (12)", "12 labels for 13 classes");
    }
    bn_classifier_free(&a);

    /* Clean up. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return t_done("test_classifier");
}
