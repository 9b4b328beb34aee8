/* classifier.c: the "bneck-classifier" version 1 file (classifier.h,
 * docs/classify.md).
 *
 * One small HDF5 file, written and read by one process with serial HDF5
 * (default file access, no MPI-IO). Like the features file (io/store.c) it is
 * written with the 1.8 file format and no object timestamps, under
 * "PATH.partial" first and renamed when complete.
 *
 * The reader is strict: every attribute and dataset of version 1 must be
 * there, with the shapes the attributes announce and finite weights; any
 * other file is refused with a one-line reason that names the file.
 * HDF5's automatic error printing is off inside each entry point.
 */
#include "config.h"

#include "io/classifier.h"

#include "io/h5util.h"
#include "io/store.h"
#include "pipeline/log.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DIM (1 << 20)     /* refuse a dim above this (a damaged attribute) */
#define MAX_CLASSES (1 << 20) /* refuse more classes than this */

/* Compound type of "history": the file type (little-endian, packed) when
 * file != 0, else the native memory type matching bn_eval_point. -1 on
 * failure. Fields are matched by name when HDF5 converts between them. */
static hid_t history_type(int file) {
    size_t sz = file ? 8 * 5 : sizeof(bn_eval_point);
    hid_t t = H5Tcreate(H5T_COMPOUND, sz);
    if (t < 0) return -1;
    hid_t i64 = file ? H5T_STD_I64LE : H5T_NATIVE_LLONG, f64 = file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
    if (H5Tinsert(t, "step", file ? 0 : HOFFSET(bn_eval_point, step), i64) < 0 ||
        H5Tinsert(t, "train_accuracy", file ? 8 : HOFFSET(bn_eval_point, train_accuracy), f64) < 0 ||
        H5Tinsert(t, "cross_entropy", file ? 16 : HOFFSET(bn_eval_point, cross_entropy), f64) < 0 ||
        H5Tinsert(t, "validation_accuracy", file ? 24 : HOFFSET(bn_eval_point, validation_accuracy), f64) < 0 ||
        H5Tinsert(t, "validation_n", file ? 32 : HOFFSET(bn_eval_point, validation_n), i64) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* ------------------------------------------------------------ write */

/* Create dataset name (file type ftype, rank-d dims, no timestamps) and
 * write buf (memory type mtype) into it. 0 or -1 with msg set. */
static int put_dset(hid_t file, const char *name, hid_t ftype, int rank, const hsize_t *dims, hid_t mtype,
                    const void *buf, char *msg) {
    int rc = -1;
    hid_t sp = -1, dcpl = -1, d = -1;
    hsize_t n = 1;
    for (int k = 0; k < rank; k++) n *= dims[k];
    if ((sp = H5Screate_simple(rank, dims, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_obj_track_times(dcpl, 0) < 0 ||
        (d = H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "cannot create dataset '%s'", name);
        goto done;
    }
    if (n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        bn_h5_set_h5msg(msg, "cannot write dataset '%s'", name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&d);
    bn_h5_close(&dcpl);
    bn_h5_close(&sp);
    return rc;
}

/* Is s a usable identity string that fits in cap bytes (NUL included)? */
static int fits(const char *s, size_t cap) { return strnlen(s, cap) < cap; }

/* Check c before writing. 0 or -1 with msg set. */
static int check_struct(const bn_classifier *c, char *msg) {
    if (c->dim < 1 || c->dim > MAX_DIM || c->nclasses < 1 || c->nclasses > MAX_CLASSES) {
        bn_h5_set_msg(msg, "bad shape: dim %d, %d classes", c->dim, c->nclasses);
        return -1;
    }
    if (!c->labels || !c->Wt || !c->b || (c->nhistory > 0 && !c->history) || c->nhistory < 0) {
        bn_h5_set_msg(msg, "the classifier has no labels, weights, bias or history");
        return -1;
    }
    for (int k = 0; k < c->nclasses; k++) {
        if (!c->labels[k] || !c->labels[k][0] || strchr(c->labels[k], '\n')) {
            bn_h5_set_msg(msg, "class %d has an empty name or one with a line break", k);
            return -1;
        }
    }
    if (!fits(c->weights_sha256, sizeof c->weights_sha256) || !fits(c->preprocess, sizeof c->preprocess) ||
        !fits(c->dct, sizeof c->dct) || !fits(c->corpus_sha256, sizeof c->corpus_sha256) ||
        !fits(c->precision, sizeof c->precision) || !fits(c->calibration_sha256, sizeof c->calibration_sha256)) {
        bn_h5_set_msg(msg, "an identity string is not NUL-terminated");
        return -1;
    }
    char why[256];
    if (bn_store_check_precision(c->precision, c->calibration_sha256, why, sizeof why)) {
        bn_h5_set_msg(msg, "%s", why);
        return -1;
    }
    size_t nw = (size_t)c->dim * (size_t)c->nclasses;
    for (size_t i = 0; i < nw; i++)
        if (!isfinite(c->Wt[i])) {
            bn_h5_set_msg(msg, "weight %zu (class %zu) is not finite", i % (size_t)c->dim, i / (size_t)c->dim);
            return -1;
        }
    for (int k = 0; k < c->nclasses; k++)
        if (!isfinite(c->b[k])) {
            bn_h5_set_msg(msg, "bias of class %d is not finite", k);
            return -1;
        }
    return 0;
}

/* Write everything into the open file f. 0 or -1 with msg set. */
static int write_contents(hid_t f, const bn_classifier *c, char *msg) {
    int rc = -1;
    const int C = c->nclasses, dim = c->dim;
    double *W = NULL;
    char *names = NULL;
    long long *conf = NULL;
    hid_t tnames = -1, thf = -1, thm = -1, g = -1;
    char created_by[64];
    snprintf(created_by, sizeof created_by, "bneck %s", PACKAGE_VERSION);
    if (bn_h5_attr_put_str(f, "format", BN_CLASSIFIER_FORMAT, msg) < 0 ||
        bn_h5_attr_put_int(f, "version", H5T_STD_I32LE, BN_CLASSIFIER_VERSION, 1, msg) < 0 ||
        bn_h5_attr_put_str(f, "weights_sha256", c->weights_sha256, msg) < 0 ||
        bn_h5_attr_put_str(f, "preprocess", c->preprocess, msg) < 0 || bn_h5_attr_put_str(f, "dct", c->dct, msg) < 0 ||
        bn_h5_attr_put_str(f, "precision", c->precision[0] ? c->precision : BN_STORE_DEFAULT_PRECISION, msg) < 0 ||
        bn_h5_attr_put_str(f, "calibration_sha256", c->calibration_sha256, msg) < 0 ||
        bn_h5_attr_put_str(f, "corpus_sha256", c->corpus_sha256, msg) < 0 ||
        bn_h5_attr_put_str(f, "features_file", c->features_path ? c->features_path : "", msg) < 0 ||
        bn_h5_attr_put_str(f, "settings", c->settings ? c->settings : "{}", msg) < 0 ||
        bn_h5_attr_put_int(f, "n_classes", H5T_STD_I32LE, C, 1, msg) < 0 ||
        bn_h5_attr_put_int(f, "dim", H5T_STD_I32LE, dim, 1, msg) < 0 ||
        bn_h5_attr_put_double(f, "test_accuracy", c->test_accuracy, msg) < 0 ||
        bn_h5_attr_put_int(f, "test_n", H5T_STD_I64LE, c->test_n, 1, msg) < 0 ||
        bn_h5_attr_put_int(f, "train_n", H5T_STD_I64LE, c->train_n, 1, msg) < 0 ||
        bn_h5_attr_put_int(f, "excluded_n", H5T_STD_I64LE, c->excluded_n, 1, msg) < 0 ||
        bn_h5_attr_put_str(f, "created_by", created_by, msg) < 0)
        goto done;

    /* W (dim, C) = Wt^T. */
    W = mallocCheck((size_t)dim * (size_t)C * sizeof *W);
    for (int k = 0; k < C; k++)
        for (int i = 0; i < dim; i++) W[(size_t)i * C + k] = c->Wt[(size_t)k * dim + i];
    hsize_t dW[2] = {(hsize_t)dim, (hsize_t)C}, dC = (hsize_t)C, dCC[2] = {(hsize_t)C, (hsize_t)C},
            dH = (hsize_t)c->nhistory;
    if (put_dset(f, "W", H5T_IEEE_F64LE, 2, dW, H5T_NATIVE_DOUBLE, W, msg) < 0 ||
        put_dset(f, "b", H5T_IEEE_F64LE, 1, &dC, H5T_NATIVE_DOUBLE, c->b, msg) < 0)
        goto done;

    /* label_names: fixed length, the longest name, NUL-padded. */
    size_t maxlen = 1;
    for (int k = 0; k < C; k++)
        if (strlen(c->labels[k]) > maxlen) maxlen = strlen(c->labels[k]);
    names = callocCheck((size_t)C, maxlen);
    for (int k = 0; k < C; k++) memcpy(names + (size_t)k * maxlen, c->labels[k], strlen(c->labels[k]));
    if ((tnames = bn_h5_str_type(maxlen, H5T_STR_NULLPAD)) < 0) {
        bn_h5_set_h5msg(msg, "cannot make the type of 'label_names'");
        goto done;
    }
    if (put_dset(f, "label_names", tnames, 1, &dC, tnames, names, msg) < 0) goto done;

    if ((thf = history_type(1)) < 0 || (thm = history_type(0)) < 0) {
        bn_h5_set_h5msg(msg, "cannot make the type of 'history'");
        goto done;
    }
    if (put_dset(f, "history", thf, 1, &dH, thm, c->history, msg) < 0) goto done;

    conf = callocCheck((size_t)C * (size_t)C, sizeof *conf);
    if (c->confusion) memcpy(conf, c->confusion, (size_t)C * (size_t)C * sizeof *conf);
    if (put_dset(f, "confusion", H5T_STD_I64LE, 2, dCC, H5T_NATIVE_LLONG, conf, msg) < 0) goto done;

    /* The run record: group "run", its attributes and the per-rank times. */
    if (c->has_run) {
        hsize_t dR[2] = {(hsize_t)c->nranks, BN_TRAIN_TIMES};
        if ((g = H5Gcreate2(f, "run", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
            bn_h5_set_h5msg(msg, "cannot create group 'run'");
            goto done;
        }
        if (bn_run_summary_put(g, &c->run, msg) < 0 ||
            (c->nranks > 0 && put_dset(g, "rank_times", H5T_IEEE_F64LE, 2, dR, H5T_NATIVE_DOUBLE, c->rank_times, msg) < 0))
            goto done;
        if (c->nranks > 0) {
            hid_t d = H5Dopen2(g, "rank_times", H5P_DEFAULT);
            int bad = d < 0 || bn_h5_attr_put_str(d, "columns", "load_s step_s reduce_s eval_s wall_s", msg) < 0;
            bn_h5_close(&d);
            if (bad) {
                bn_h5_set_h5msg(msg, "cannot label dataset 'run/rank_times'");
                goto done;
            }
        }
    }
    rc = 0;
done:
    bn_h5_close(&g);
    bn_h5_close(&thm);
    bn_h5_close(&thf);
    bn_h5_close(&tnames);
    free(conf);
    free(names);
    free(W);
    return rc;
}

static int fill_classifier(hid_t f, const void *arg, char *msg) { return write_contents(f, arg, msg) < 0 ? -1 : 0; }

int bn_classifier_write(const char *path, const bn_classifier *c, char *err, size_t errlen) {
    char msg[BN_H5_MSG_LEN] = "";
    if (!path || !path[0]) {
        bn_h5_put_err(err, errlen, NULL, "no classifier file name");
        return -1;
    }
    if (!c || check_struct(c, msg) < 0) {
        if (!msg[0]) snprintf(msg, sizeof msg, "no classifier given");
        char m2[BN_H5_MSG_LEN + 64];
        snprintf(m2, sizeof m2, "not written: %s", msg);
        bn_h5_put_err(err, errlen, path, m2);
        return -1;
    }
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int rc = bn_h5_write_whole(path, fill_classifier, c, msg);
    bn_h5_quiet_off(&q);
    if (rc) bn_h5_put_err(err, errlen, path, msg);
    return rc;
}

/* ------------------------------------------------------------ read */

/* What is at path: 0 an HDF5 file; -1 with msg set otherwise (missing,
 * folder, unreadable, not HDF5). */
static int probe(const char *path, char *msg) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        bn_h5_set_msg(msg, "cannot open the classifier: %s", strerror(errno));
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        bn_h5_set_msg(msg, "is a folder, not a bneck classifier file");
        return -1;
    }
    int found = bn_h5_signature(path, (long long)sb.st_size);
    if (found < 0) {
        bn_h5_set_msg(msg, "cannot open the classifier: %s", strerror(errno));
        return -1;
    }
    if (!found) {
        bn_h5_set_msg(msg, "not a bneck classifier: not an HDF5 file%s", sb.st_size == 0 ? " (it is empty)" : "");
        return -1;
    }
    return 0;
}

/* Required string attribute into a new *out. 0 or -1 with msg set. */
static int need_str(hid_t f, const char *name, char **out, char *msg) {
    int r = bn_h5_attr_get_str(f, name, out, msg);
    if (r > 0) bn_h5_set_msg(msg, "attribute '%s' is missing or not a string: the file is damaged", name);
    return r == 0 ? 0 : -1;
}

/* Required string attribute into buf of cap bytes. 0 or -1 with msg set. */
static int need_str_buf(hid_t f, const char *name, char *buf, size_t cap, char *msg) {
    char *s = NULL;
    if (need_str(f, name, &s, msg) < 0) return -1;
    int ok = strlen(s) < cap;
    if (ok)
        memcpy(buf, s, strlen(s) + 1);
    else
        bn_h5_set_msg(msg, "attribute '%s' is too long (%zu bytes): the file is damaged", name, strlen(s));
    free(s);
    return ok ? 0 : -1;
}

/* Required integer attribute. 0 or -1 with msg set. */
static int need_int(hid_t f, const char *name, long long *v, char *msg) {
    int r = bn_h5_attr_get_int(f, name, v, msg);
    if (r > 0) bn_h5_set_msg(msg, "attribute '%s' is %s: the file is damaged", name, bn_h5_attr_why(f, name, 0));
    return r == 0 ? 0 : -1;
}

/* Required scalar number attribute, as a double. 0 or -1 with msg set. */
static int need_double(hid_t f, const char *name, double *v, char *msg) {
    int r = bn_h5_attr_get_double(f, name, v, msg);
    if (r > 0) bn_h5_set_msg(msg, "attribute '%s' is missing or not a number: the file is damaged", name);
    return r == 0 ? 0 : -1;
}

/* Open dataset name and check its class and shape (rank dims). Returns the
 * dataset and its type in *type, or -1 with msg set. */
static hid_t open_dset(hid_t f, const char *name, H5T_class_t cls, int rank, const hsize_t *dims, hid_t *type,
                       char *msg) {
    hid_t d = -1, sp = -1, t = -1;
    htri_t ex = H5Lexists(f, name, H5P_DEFAULT);
    if (ex <= 0) {
        if (ex < 0) bn_h5_set_h5msg(msg, "cannot look for dataset '%s'", name);
        else bn_h5_set_msg(msg, "dataset '%s' is missing: the file is damaged or not complete", name);
        return -1;
    }
    if ((d = H5Dopen2(f, name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0 || (t = H5Dget_type(d)) < 0) {
        bn_h5_set_h5msg(msg, "cannot open dataset '%s'", name);
        goto fail;
    }
    if (H5Tget_class(t) != cls) {
        bn_h5_set_msg(msg, "dataset '%s' has the wrong type (expected %s)", name,
                cls == H5T_FLOAT ? "floating point" : cls == H5T_INTEGER ? "integers"
                                 : cls == H5T_STRING ? "strings" : "a compound table");
        goto fail;
    }
    hsize_t got[H5S_MAX_RANK];
    int r = H5Sget_simple_extent_ndims(sp);
    int good = r == rank && (rank == 0 || H5Sget_simple_extent_dims(sp, got, NULL) == rank);
    for (int k = 0; good && k < rank; k++) good = got[k] == dims[k];
    if (!good) {
        char want[96] = "", have[96] = "";
        size_t len = 0;
        for (int k = 0; k < rank; k++)
            len += (size_t)snprintf(want + len, sizeof want - len, "%s%llu", k ? ", " : "", (unsigned long long)dims[k]);
        len = 0;
        if (r > 0 && r <= H5S_MAX_RANK && H5Sget_simple_extent_dims(sp, got, NULL) == r)
            for (int k = 0; k < r && len < sizeof have; k++)
                len += (size_t)snprintf(have + len, sizeof have - len, "%s%llu", k ? ", " : "", (unsigned long long)got[k]);
        bn_h5_set_msg(msg, "dataset '%s' has shape (%s), but n_classes and dim say (%s): the file is damaged", name, have,
                want);
        goto fail;
    }
    {
        unsigned long long have = 0, need = 0, np = 1;
        for (int k = 0; k < rank; k++) np *= (unsigned long long)dims[k];
        int r2 = bn_h5_storage_short(d, np, &have, &need, msg);
        if (r2 < 0) goto fail;
        if (r2) {
            bn_h5_set_msg(msg, "dataset '%s' stores %llu bytes but its shape needs %llu: the file is truncated or damaged",
                          name, have, need);
            goto fail;
        }
    }
    bn_h5_close(&sp);
    *type = t;
    return d;
fail:
    bn_h5_close(&t);
    bn_h5_close(&sp);
    bn_h5_close(&d);
    return -1;
}

/* Read a 1-D string dataset of n entries (fixed or variable length) into
 * new strings out[n]. 0 or -1 with msg set. */
static int read_strings(hid_t d, hid_t ft, const char *name, size_t n, char **out, char *msg) {
    int rc = -1;
    hid_t mt = -1;
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0 || (mt = H5Tcopy(ft)) < 0) {
        bn_h5_set_h5msg(msg, "cannot read dataset '%s'", name);
        return -1;
    }
    if (vl) {
        char **p = callocCheck(n ? n : 1, sizeof *p);
        if (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) < 0) {
            bn_h5_set_h5msg(msg, "cannot read dataset '%s'", name);
            free(p);
            goto done;
        }
        for (size_t i = 0; i < n; i++) out[i] = strdupCheck(p[i] ? p[i] : "");
        hid_t sp = H5Dget_space(d);
        if (sp >= 0 && n) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, p);
        bn_h5_close(&sp);
        free(p);
    } else {
        size_t len = H5Tget_size(ft);
        char *buf = callocCheck(n ? n : 1, len ? len : 1);
        if (len == 0 || (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)) {
            bn_h5_set_h5msg(msg, "cannot read dataset '%s'", name);
            free(buf);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            char *s = callocCheck(len + 1, 1);
            memcpy(s, buf + i * len, len);
            out[i] = s;
        }
        free(buf);
    }
    rc = 0;
done:
    bn_h5_close(&mt);
    return rc;
}

/* Read and check the contents of the open file f into c. 0 or -1 with msg set. */
static int read_contents(hid_t f, bn_classifier *c, char *msg) {
    int rc = -1;
    char *fmt = NULL;
    double *W = NULL;
    hid_t d = -1, t = -1, thm = -1;

    int r = bn_h5_attr_get_str(f, "format", &fmt, msg);
    if (r < 0) goto done;
    if (r > 0) {
        bn_h5_set_msg(msg, "not a bneck classifier: its 'format' attribute is %s (an HDF5 file from another tool?)",
                      bn_h5_attr_why(f, "format", 1));
        goto done;
    }
    if (strcmp(fmt, BN_CLASSIFIER_FORMAT) != 0) {
        if (!strcmp(fmt, "bneck-features"))
            bn_h5_set_msg(msg, "not a bneck classifier: format is 'bneck-features'; did you pass the features file?");
        else
            bn_h5_set_msg(msg, "not a bneck classifier: format is '%.200s'", fmt);
        goto done;
    }
    long long version = 0, ncls = 0, dim = 0;
    if (need_int(f, "version", &version, msg) < 0) goto done;
    if (version != BN_CLASSIFIER_VERSION) {
        bn_h5_set_msg(msg, "unknown bneck-classifier version %lld (this bneck reads version %d); use the bneck that "
                           "wrote it, or retrain", version, BN_CLASSIFIER_VERSION);
        goto done;
    }
    if (need_int(f, "n_classes", &ncls, msg) < 0 || need_int(f, "dim", &dim, msg) < 0) goto done;
    if (ncls < 1 || ncls > MAX_CLASSES || dim < 1 || dim > MAX_DIM) {
        bn_h5_set_msg(msg, "bad n_classes %lld or dim %lld: the file is damaged", ncls, dim);
        goto done;
    }
    c->nclasses = (int)ncls;
    c->dim = (int)dim;
    const int C = c->nclasses;
    if (need_str_buf(f, "weights_sha256", c->weights_sha256, sizeof c->weights_sha256, msg) < 0 ||
        need_str_buf(f, "preprocess", c->preprocess, sizeof c->preprocess, msg) < 0 ||
        need_str_buf(f, "dct", c->dct, sizeof c->dct, msg) < 0 ||
        need_str_buf(f, "corpus_sha256", c->corpus_sha256, sizeof c->corpus_sha256, msg) < 0 ||
        need_str(f, "features_file", &c->features_path, msg) < 0 || need_str(f, "settings", &c->settings, msg) < 0)
        goto done;
    if (strcmp(c->preprocess, "keras") && strcmp(c->preprocess, "tf2015")) {
        bn_h5_set_msg(msg, "unknown preprocess '%s' (expected keras or tf2015)", c->preprocess);
        goto done;
    }
    if (strcmp(c->dct, "accurate") && strcmp(c->dct, "fast")) {
        bn_h5_set_msg(msg, "unknown dct '%s' (expected accurate or fast)", c->dct);
        goto done;
    }
    /* Precision and calibration: a file written before they were recorded
     * was trained on fp32 features. */
    htri_t has_prec = H5Aexists(f, "precision");
    if (has_prec < 0) {
        bn_h5_set_h5msg(msg, "cannot look for attribute 'precision'");
        goto done;
    }
    if (has_prec) {
        if (need_str_buf(f, "precision", c->precision, sizeof c->precision, msg) < 0 ||
            need_str_buf(f, "calibration_sha256", c->calibration_sha256, sizeof c->calibration_sha256, msg) < 0)
            goto done;
        if (!c->precision[0]) {
            bn_h5_set_msg(msg, "attribute 'precision' is empty: the file is damaged");
            goto done;
        }
    } else {
        snprintf(c->precision, sizeof c->precision, "%s", BN_STORE_DEFAULT_PRECISION);
        c->calibration_sha256[0] = 0;
    }
    {
        char why[256];
        if (bn_store_check_precision(c->precision, c->calibration_sha256, why, sizeof why)) {
            bn_h5_set_msg(msg, "%s: the file is damaged", why);
            goto done;
        }
    }
    if (need_double(f, "test_accuracy", &c->test_accuracy, msg) < 0 || need_int(f, "test_n", &c->test_n, msg) < 0 ||
        need_int(f, "train_n", &c->train_n, msg) < 0 || need_int(f, "excluded_n", &c->excluded_n, msg) < 0)
        goto done;

    /* W (dim, C) -> Wt (C, dim); b (C). */
    hsize_t dW[2] = {(hsize_t)dim, (hsize_t)C}, dC = (hsize_t)C, dCC[2] = {(hsize_t)C, (hsize_t)C};
    if ((d = open_dset(f, "W", H5T_FLOAT, 2, dW, &t, msg)) < 0) goto done;
    W = mallocCheck((size_t)dim * (size_t)C * sizeof *W);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, W) < 0) {
        bn_h5_set_h5msg(msg, "cannot read dataset 'W'");
        goto done;
    }
    bn_h5_close(&t);
    bn_h5_close(&d);
    c->Wt = mallocCheck((size_t)dim * (size_t)C * sizeof *c->Wt);
    for (long long i = 0; i < dim; i++)
        for (int k = 0; k < C; k++) {
            double v = W[(size_t)i * C + k];
            if (!isfinite(v)) {
                bn_h5_set_msg(msg, "W[%lld, %d] is not finite (%g): the classifier is damaged; retrain", i, k, v);
                goto done;
            }
            c->Wt[(size_t)k * dim + i] = v;
        }
    if ((d = open_dset(f, "b", H5T_FLOAT, 1, &dC, &t, msg)) < 0) goto done;
    c->b = mallocCheck((size_t)C * sizeof *c->b);
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->b) < 0) {
        bn_h5_set_h5msg(msg, "cannot read dataset 'b'");
        goto done;
    }
    bn_h5_close(&t);
    bn_h5_close(&d);
    for (int k = 0; k < C; k++)
        if (!isfinite(c->b[k])) {
            bn_h5_set_msg(msg, "b[%d] is not finite (%g): the classifier is damaged; retrain", k, c->b[k]);
            goto done;
        }

    /* label_names (C). */
    if ((d = open_dset(f, "label_names", H5T_STRING, 1, &dC, &t, msg)) < 0) goto done;
    c->labels = callocCheck((size_t)C, sizeof *c->labels);
    if (read_strings(d, t, "label_names", (size_t)C, c->labels, msg) < 0) goto done;
    bn_h5_close(&t);
    bn_h5_close(&d);
    for (int k = 0; k < C; k++)
        if (!c->labels[k][0] || strchr(c->labels[k], '\n')) {
            bn_h5_set_msg(msg, "label_names[%d] is empty or holds a line break: the file is damaged", k);
            goto done;
        }

    /* history (nhistory), any length. */
    if ((d = H5Lexists(f, "history", H5P_DEFAULT) > 0 ? H5Dopen2(f, "history", H5P_DEFAULT) : -1) < 0) {
        bn_h5_set_msg(msg, "dataset 'history' is missing: the file is damaged or not complete");
        goto done;
    }
    {
        hid_t sp = H5Dget_space(d);
        hsize_t n = 0;
        int ok = sp >= 0 && (t = H5Dget_type(d)) >= 0 && H5Tget_class(t) == H5T_COMPOUND &&
                 H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &n, NULL) == 1;
        bn_h5_close(&sp);
        if (!ok) {
            bn_h5_set_msg(msg, "dataset 'history' is not a 1-D table: the file is damaged");
            goto done;
        }
        static const char *fields[] = {"step", "train_accuracy", "cross_entropy", "validation_accuracy", "validation_n"};
        for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++)
            if (H5Tget_member_index(t, fields[j]) < 0) {
                bn_h5_set_msg(msg, "dataset 'history' has no field '%s': the file is damaged", fields[j]);
                goto done;
            }
        unsigned long long have = 0, need = 0;
        int r2 = bn_h5_storage_short(d, n, &have, &need, msg);
        if (r2 < 0) goto done;
        if (r2) {
            bn_h5_set_msg(msg, "dataset 'history' stores %llu bytes but its %llu entries need %llu: the file is "
                          "truncated or damaged", have, (unsigned long long)n, need);
            goto done;
        }
        c->nhistory = (long long)n;
        c->history = callocCheck(n ? n : 1, sizeof *c->history);
        if ((thm = history_type(0)) < 0 || (n && H5Dread(d, thm, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->history) < 0)) {
            bn_h5_set_h5msg(msg, "cannot read dataset 'history'");
            goto done;
        }
        bn_h5_close(&t);
        bn_h5_close(&d);
    }

    /* confusion (C, C). */
    if ((d = open_dset(f, "confusion", H5T_INTEGER, 2, dCC, &t, msg)) < 0) goto done;
    c->confusion = mallocCheck((size_t)C * (size_t)C * sizeof *c->confusion);
    if (H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->confusion) < 0) {
        bn_h5_set_h5msg(msg, "cannot read dataset 'confusion'");
        goto done;
    }
    bn_h5_close(&t);
    bn_h5_close(&d);

    /* The run record (optional: older files have none). */
    if (H5Lexists(f, "run", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "run", H5P_DEFAULT);
        if (g < 0) {
            bn_h5_set_h5msg(msg, "cannot open group 'run'");
            goto done;
        }
        c->has_run = bn_run_summary_get(g, &c->run);
        if (H5Lexists(g, "rank_times", H5P_DEFAULT) > 0 && (d = H5Dopen2(g, "rank_times", H5P_DEFAULT)) >= 0) {
            hid_t sp = H5Dget_space(d);
            hsize_t dims[2] = {0, 0};
            int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, dims, NULL) == 2 &&
                     dims[1] == BN_TRAIN_TIMES && dims[0] < 1000000;
            bn_h5_close(&sp);
            if (ok && dims[0] > 0) {
                c->rank_times = mallocCheck((size_t)dims[0] * BN_TRAIN_TIMES * sizeof *c->rank_times);
                if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->rank_times) < 0) ok = 0;
                else c->nranks = (int)dims[0];
            }
            bn_h5_close(&d);
            if (!ok) {
                bn_h5_close(&g);
                bn_h5_set_msg(msg, "dataset 'run/rank_times' is not a (ranks, %d) table of seconds: the file is damaged",
                              BN_TRAIN_TIMES);
                goto done;
            }
        }
        bn_h5_close(&g);
    }
    rc = 0;
done:
    bn_h5_close(&thm);
    bn_h5_close(&t);
    bn_h5_close(&d);
    free(W);
    free(fmt);
    return rc;
}

int bn_classifier_read(const char *path, bn_classifier *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->test_accuracy = NAN;
    char msg[BN_H5_MSG_LEN] = "";
    if (!path || !path[0]) {
        bn_h5_put_err(err, errlen, NULL, "no classifier file name");
        return -1;
    }
    if (probe(path, msg) < 0) {
        bn_h5_put_err(err, errlen, path, msg);
        return -1;
    }
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int rc = -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        bn_h5_set_h5msg(msg, "cannot open the classifier (a damaged HDF5 file? on file systems without locks, set "
                             "HDF5_USE_FILE_LOCKING=FALSE)");
    else if (read_contents(f, c, msg) == 0)
        rc = 0;
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0) {
        bn_h5_set_h5msg(msg, "cannot close the file");
        rc = -1;
    }
    bn_h5_quiet_off(&q);
    if (rc) {
        bn_classifier_free(c);
        bn_h5_put_err(err, errlen, path, msg);
    }
    return rc;
}

int bn_classifier_write_labels(const char *path, const bn_classifier *c, char *err, size_t errlen) {
    if (!path || !path[0] || !c || !c->labels) {
        bn_h5_put_err(err, errlen, path, "no labels file name or no classes");
        return -1;
    }
    size_t plen = strlen(path) + sizeof ".partial";
    char *partial = mallocCheck(plen);
    snprintf(partial, plen, "%s.partial", path);
    char msg[BN_H5_MSG_LEN] = "";
    int rc = -1;
    FILE *fp = fopen(partial, "w");
    if (!fp) {
        bn_h5_set_msg(msg, "cannot create %s: %s", partial, strerror(errno));
        goto done;
    }
    for (int k = 0; k < c->nclasses; k++)
        if (fprintf(fp, "%s\n", c->labels[k]) < 0) {
            bn_h5_set_msg(msg, "cannot write %s: %s", partial, strerror(errno));
            break;
        }
    if (ferror(fp) && !msg[0]) bn_h5_set_msg(msg, "cannot write %s: %s", partial, strerror(errno));
    if (fclose(fp) != 0 && !msg[0]) bn_h5_set_msg(msg, "cannot write %s: %s", partial, strerror(errno));
    if (msg[0]) goto done;
    if (rename(partial, path) != 0) {
        bn_h5_set_msg(msg, "cannot rename %s to %s: %s", partial, path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (rc) {
        unlink(partial);
        bn_h5_put_err(err, errlen, path, msg);
    }
    free(partial);
    return rc;
}

void bn_classifier_free(bn_classifier *c) {
    if (!c) return;
    if (c->labels)
        for (int k = 0; k < c->nclasses; k++) free(c->labels[k]);
    free(c->labels);
    free(c->Wt);
    free(c->b);
    free(c->features_path);
    free(c->settings);
    free(c->history);
    free(c->confusion);
    free(c->rank_times);
    memset(c, 0, sizeof *c);
    c->test_accuracy = NAN;
}
