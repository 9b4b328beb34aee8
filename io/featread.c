/* featread.c: reading a features file (see featread.h, docs/format.md).
 *
 * Rank 0 reads the attributes and the per-image metadata and broadcasts
 * them, so a job of many ranks reads those bytes from the file system once.
 * Feature rows are read independently by each rank, in spans of consecutive
 * rows.
 */
#include "config.h"

#include "io/featread.h"

#include "io/corpus.h"
#include "io/h5util.h"
#include "io/half.h"
#include "io/store.h"
#include "pipeline/log.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPAN_ROWS 1024 /* rows per read at most */

struct bn_feats_file {
    MPI_Comm comm;   /* duplicate of the caller's communicator */
    int rank;        /* this rank */
    hid_t file;      /* the open file, or -1 */
    hid_t d_feat;    /* "features", or -1 */
    hid_t t_half;    /* the float16 type for a float16 file (rows are read raw and converted), else -1 */
};

/* Read the whole 1-D dataset name (n elements of memory type mt) into buf.
 * With buf NULL, only check that it exists with n elements (so a size read
 * from elsewhere in the file is checked before memory is allocated for it).
 * 0, or -1 with msg set. */
static int read_all(hid_t file, const char *path, const char *name, hid_t mt, hsize_t n, void *buf, char *msg) {
    hid_t d = -1, sp = -1;
    int rc = -1;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) {
        bn_h5_set_msg(msg, "%s: dataset '%s' is missing: the file is damaged or not written by bneck extract", path, name);
        return -1;
    }
    if ((d = H5Dopen2(file, name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open dataset '%s'", path, name);
        goto done;
    }
    hsize_t dims[2] = {0, 0};
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) != 1 || dims[0] != n) {
        bn_h5_set_msg(msg, "%s: dataset '%s' should have %llu elements: the file is damaged", path, name,
                      (unsigned long long)n);
        goto done;
    }
    unsigned long long have = 0, need = 0;
    int r = bn_h5_storage_short(d, n, &have, &need, msg);
    if (r != 0) {
        if (r > 0)
            bn_h5_set_msg(msg, "%s: dataset '%s' stores %llu bytes but its %llu elements need %llu: the file is truncated "
                          "or damaged", path, name, have, (unsigned long long)n, need);
        goto done;
    }
    if (buf && n > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot read dataset '%s'", path, name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&sp);
    bn_h5_close(&d);
    return rc;
}

/* Copy a string attribute into a fixed buffer; missing is an error. */
static int get_ident(hid_t file, const char *path, const char *name, char *out, size_t len, char *msg) {
    char *s = NULL;
    int r = bn_h5_attr_get_str(file, name, &s, msg);
    if (r != 0) {
        if (r > 0) bn_h5_set_msg(msg, "%s: attribute '%s' is missing: the file is damaged", path, name);
        return -1;
    }
    snprintf(out, len, "%s", s);
    free(s);
    return 0;
}

/* Rank 0: everything but the rows. Fills f (arrays allocated here). */
static int read_meta(bn_feats *f, hid_t file, char *msg) {
    const char *path = f->path;
    char *fmt = NULL;
    long long ver = 0, n = 0, nc = 0, complete = 0;
    int r = bn_h5_attr_get_str(file, "format", &fmt, msg);
    if (r < 0) return -1;
    if (r > 0 || strcmp(fmt, BN_STORE_FORMAT) != 0) {
        if (r == 0 && !strcmp(fmt, "bneck-classifier"))
            bn_h5_set_msg(msg, "%s: is a classifier (format 'bneck-classifier'), not a features file; give the "
                          "file bneck extract wrote", path);
        else
            bn_h5_set_msg(msg, "%s: not a bneck features file (format attribute %s%.200s%s); give the file bneck extract wrote",
                          path, r ? bn_h5_attr_why(file, "format", 1) : "is '", r ? "" : fmt, r ? "" : "'");
        free(fmt);
        return -1;
    }
    free(fmt);
    if ((r = bn_h5_attr_get_int(file, "version", &ver, msg)) != 0 || ver != BN_STORE_VERSION) {
        if (r > 0)
            bn_h5_set_msg(msg, "%s: the version attribute is missing: the file is damaged or not written by bneck", path);
        else if (r == 0)
            bn_h5_set_msg(msg, "%s: features file version %lld is not supported (this bneck reads version %d); "
                          "use the bneck that wrote it", path, ver, BN_STORE_VERSION);
        return -1;
    }
    if (bn_h5_attr_get_int(file, "n_images", &n, msg) != 0 || bn_h5_attr_get_int(file, "n_classes", &nc, msg) != 0 ||
        n < 0 || nc < 1 || nc > 1000000) {
        bn_h5_set_msg(msg, "%s: attributes n_images/n_classes are missing or invalid: the file is damaged", path);
        return -1;
    }
    if (bn_h5_attr_get_int(file, "complete", &complete, msg) < 0) return -1;
    /* Check the row count against a dataset before trusting it for memory. */
    {
        hid_t d = -1, sp = -1;
        hsize_t dims[2] = {0, 0};
        int good = H5Lexists(file, "status", H5P_DEFAULT) > 0 && (d = H5Dopen2(file, "status", H5P_DEFAULT)) >= 0 &&
                   (sp = H5Dget_space(d)) >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
                   H5Sget_simple_extent_dims(sp, dims, NULL) == 1 && dims[0] == (hsize_t)n;
        bn_h5_close(&sp);
        bn_h5_close(&d);
        if (!good) {
            bn_h5_set_msg(msg, "%s: attribute n_images (%lld) does not match dataset 'status': the file is damaged", path, n);
            return -1;
        }
    }
    if (get_ident(file, path, "weights_sha256", f->weights_sha256, sizeof f->weights_sha256, msg) ||
        get_ident(file, path, "preprocess", f->preprocess, sizeof f->preprocess, msg) ||
        get_ident(file, path, "dct", f->dct, sizeof f->dct, msg) ||
        get_ident(file, path, "corpus_sha256", f->corpus_sha256, sizeof f->corpus_sha256, msg))
        return -1;
    /* Precision and calibration: absent in files written before they were
     * recorded, which hold fp32 features. */
    {
        htri_t has_prec = H5Aexists(file, "precision");
        if (has_prec < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot look for attribute 'precision'", path);
            return -1;
        }
        if (has_prec) {
            if (get_ident(file, path, "precision", f->precision, sizeof f->precision, msg) ||
                get_ident(file, path, "calibration_sha256", f->calibration_sha256, sizeof f->calibration_sha256, msg))
                return -1;
        } else {
            snprintf(f->precision, sizeof f->precision, "%s", BN_STORE_DEFAULT_PRECISION);
            f->calibration_sha256[0] = 0;
        }
        char why[256];
        if (!f->precision[0]) {
            bn_h5_set_msg(msg, "%s: attribute 'precision' is empty: the file is damaged", path);
            return -1;
        }
        if (bn_store_check_precision(f->precision, f->calibration_sha256, why, sizeof why)) {
            bn_h5_set_msg(msg, "%s: %s: the file is damaged", path, why);
            return -1;
        }
    }
    /* The feature dtype: absent in files written before it was recorded, which hold float32. */
    {
        char dt[16] = "";
        htri_t has = H5Aexists(file, "feature_dtype");
        if (has < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot look for attribute 'feature_dtype'", path);
            return -1;
        }
        if (has && get_ident(file, path, "feature_dtype", dt, sizeof dt, msg)) return -1;
        if (!has) snprintf(dt, sizeof dt, "%s", BN_DTYPE_F32);
        if (strcmp(dt, BN_DTYPE_F32) && strcmp(dt, BN_DTYPE_F16)) {
            bn_h5_set_msg(msg, "%s: attribute feature_dtype is '%s', neither %s nor %s: the file is damaged or from a "
                          "newer bneck", path, dt, BN_DTYPE_F32, BN_DTYPE_F16);
            return -1;
        }
        snprintf(f->feature_dtype, sizeof f->feature_dtype, "%s", dt);
    }
    f->n = n;
    f->nclasses = (int)nc;
    f->complete = (int)complete;
    /* Shard attributes: all or none. */
    long long sh[4] = {0, 0, 0, 0};
    const char *shn[4] = {"shard_index", "shard_count", "shard_first", "shard_corpus_n_images"};
    int have = 0;
    for (int k = 0; k < 4; k++) {
        int g = bn_h5_attr_get_int(file, shn[k], &sh[k], msg);
        if (g < 0) return -1;
        have += g == 0;
    }
    if (have) {
        if (have != 4 || sh[1] < 1 || sh[0] < 0 || sh[0] >= sh[1] || sh[2] < 0 || sh[3] < sh[2] + n ||
            get_ident(file, path, "shard_corpus_sha256", f->shard.corpus_sha256, sizeof f->shard.corpus_sha256, msg)) {
            bn_h5_set_msg(msg, "%s: the shard attributes (shard_index, shard_count, shard_first, shard_corpus_n_images, "
                          "shard_corpus_sha256) are incomplete or inconsistent: the file is damaged", path);
            return -1;
        }
        f->is_shard = 1;
        f->shard.index = (int)sh[0];
        f->shard.count = (int)sh[1];
        f->shard.first = sh[2];
        f->shard.corpus_n = sh[3];
    }
    /* Shapes and storage first: a damaged shape must not decide an allocation. */
    if (read_all(file, path, "status", H5T_NATIVE_UCHAR, (hsize_t)n, NULL, msg) ||
        read_all(file, path, "split", H5T_NATIVE_UCHAR, (hsize_t)n, NULL, msg) ||
        read_all(file, path, "label", H5T_NATIVE_INT, (hsize_t)n, NULL, msg))
        return -1;
    f->status = mallocCheck((size_t)n + 1);
    f->split = mallocCheck((size_t)n + 1);
    f->label = mallocCheck(sizeof(int) * ((size_t)n + 1));
    if (read_all(file, path, "status", H5T_NATIVE_UCHAR, (hsize_t)n, f->status, msg) ||
        read_all(file, path, "split", H5T_NATIVE_UCHAR, (hsize_t)n, f->split, msg) ||
        read_all(file, path, "label", H5T_NATIVE_INT, (hsize_t)n, f->label, msg))
        return -1;
    for (long long i = 0; i < n; i++) {
        if (f->label[i] < 0 || f->label[i] >= nc || f->split[i] > BN_SPLIT_TEST || f->status[i] > BN_ROW_FAILED) {
            bn_h5_set_msg(msg, "%s: row %lld has label %d, split %d, status %d: out of range, the file is damaged", path,
                          i, f->label[i], f->split[i], f->status[i]);
            return -1;
        }
    }
    /* Class names: fixed-length strings of the file's own length. */
    hid_t d = -1, ft = -1, sp = -1;
    int rc = -1;
    char *names = NULL;
    hsize_t dims[1] = {0};
    if (H5Lexists(file, "label_names", H5P_DEFAULT) <= 0 || (d = H5Dopen2(file, "label_names", H5P_DEFAULT)) < 0 ||
        (ft = H5Dget_type(d)) < 0 || (sp = H5Dget_space(d)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open dataset 'label_names'", path);
        goto names_done;
    }
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) != 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, dims, NULL) != 1 || dims[0] != (hsize_t)nc) {
        bn_h5_set_msg(msg, "%s: dataset 'label_names' is not %lld fixed-length strings: the file is damaged", path, nc);
        goto names_done;
    }
    size_t len = H5Tget_size(ft);
    names = callocCheck((size_t)nc * len + 1, 1);
    if (H5Dread(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot read dataset 'label_names'", path);
        goto names_done;
    }
    f->label_names = callocCheck((size_t)nc, sizeof(char *));
    for (long long k = 0; k < nc; k++) {
        char *s = callocCheck(len + 1, 1);
        memcpy(s, names + (size_t)k * len, len);
        f->label_names[k] = s;
    }
    rc = 0;
names_done:
    free(names);
    bn_h5_close(&sp);
    bn_h5_close(&ft);
    bn_h5_close(&d);
    if (rc) return -1;
    /* The features dataset: (n, 2048) float32. */
    if (H5Lexists(file, "features", H5P_DEFAULT) <= 0 || (d = H5Dopen2(file, "features", H5P_DEFAULT)) < 0 ||
        (sp = H5Dget_space(d)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open dataset 'features'", path);
        bn_h5_close(&d);
        return -1;
    }
    hsize_t fd[2] = {0, 0};
    int ok = H5Sget_simple_extent_ndims(sp) == 2 && H5Sget_simple_extent_dims(sp, fd, NULL) == 2 &&
             fd[0] == (hsize_t)n && fd[1] > 0 && fd[1] <= 65536;
    hid_t ty = H5Dget_type(d);
    size_t want_size = strcmp(f->feature_dtype, BN_DTYPE_F16) ? 4 : 2;
    int type_ok = ty >= 0 && H5Tget_class(ty) == H5T_FLOAT && H5Tget_size(ty) == want_size;
    bn_h5_close(&ty);
    bn_h5_close(&sp);
    bn_h5_close(&d);
    if (ok && !type_ok) {
        bn_h5_set_msg(msg, "%s: dataset 'features' is not %s as attribute feature_dtype says: the file is damaged",
                      path, f->feature_dtype);
        return -1;
    }
    if (!ok) {
        bn_h5_set_msg(msg, "%s: dataset 'features' should be (%lld, dim): the file is damaged", path, n);
        return -1;
    }
    f->dim = (int)fd[1];
    return 0;
}

/* Broadcast a buffer of any size from rank 0 (in pieces below INT_MAX). */
static void bcast_bytes(void *buf, size_t len, MPI_Comm comm) {
    char *p = buf;
    while (len > 0) {
        int k = len > (1u << 30) ? (1 << 30) : (int)len;
        mpiCheck(MPI_Bcast(p, k, MPI_BYTE, 0, comm));
        p += k;
        len -= (size_t)k;
    }
}

int bn_feats_open(const char *path, MPI_Comm comm, bn_feats *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    f->path = strdupCheck(path);
    bn_feats_file *F = callocCheck(1, sizeof *F);
    F->file = F->d_feat = F->t_half = -1;
    f->file = F;
    mpiCheck(MPI_Comm_dup(comm, &F->comm));
    mpiCheck(MPI_Comm_rank(F->comm, &F->rank));
    char msg[BN_H5_MSG_LEN] = "";
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int ok = 1;
    if (F->rank == 0) {
        if (access(path, R_OK) != 0) {
            bn_h5_set_msg(msg, "%s: cannot read the file (missing or no permission); give the features file bneck "
                          "extract wrote with --features", path);
            ok = 0;
        } else if (H5Fis_hdf5(path) <= 0) {
            bn_h5_set_msg(msg, "%s: not an HDF5 file, so not a bneck features file", path);
            ok = 0;
        }
    }
    hid_t fapl = -1;
    if (bn_h5_agree(F->comm, ok, msg) < 0) goto fail;
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, F->comm, MPI_INFO_NULL) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot set up MPI-IO file access", path);
        ok = 0;
    }
    if (bn_h5_agree(F->comm, ok, msg) < 0) goto fail;
    F->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (F->file < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open (on file systems without locking, set HDF5_USE_FILE_LOCKING=FALSE)", path);
        ok = 0;
    }
    if (bn_h5_agree(F->comm, ok, msg) < 0) goto fail;
    if (F->rank == 0 && read_meta(f, F->file, msg) < 0) ok = 0;
    if (bn_h5_agree(F->comm, ok, msg) < 0) goto fail;
    /* Share the metadata. */
    long long hdr[4] = {f->n, f->nclasses, f->dim, f->complete};
    mpiCheck(MPI_Bcast(hdr, 4, MPI_LONG_LONG, 0, F->comm));
    char ident[65 * 3 + 32 + 8 + 8];
    memcpy(ident, f->weights_sha256, 65);
    memcpy(ident + 65, f->corpus_sha256, 65);
    memcpy(ident + 130, f->preprocess, 16);
    memcpy(ident + 146, f->dct, 16);
    memcpy(ident + 162, f->calibration_sha256, 65);
    memcpy(ident + 227, f->precision, 8);
    memcpy(ident + 235, f->feature_dtype, 8);
    mpiCheck(MPI_Bcast(ident, (int)sizeof ident, MPI_CHAR, 0, F->comm));
    mpiCheck(MPI_Bcast(&f->is_shard, 1, MPI_INT, 0, F->comm));
    mpiCheck(MPI_Bcast(&f->shard, (int)sizeof f->shard, MPI_BYTE, 0, F->comm));
    if (F->rank != 0) {
        f->n = hdr[0];
        f->nclasses = (int)hdr[1];
        f->dim = (int)hdr[2];
        f->complete = (int)hdr[3];
        memcpy(f->weights_sha256, ident, 65);
        memcpy(f->corpus_sha256, ident + 65, 65);
        memcpy(f->preprocess, ident + 130, 16);
        memcpy(f->dct, ident + 146, 16);
        memcpy(f->calibration_sha256, ident + 162, 65);
        memcpy(f->precision, ident + 227, 8);
        memcpy(f->feature_dtype, ident + 235, 8);
        f->status = mallocCheck((size_t)f->n + 1);
        f->split = mallocCheck((size_t)f->n + 1);
        f->label = mallocCheck(sizeof(int) * ((size_t)f->n + 1));
        f->label_names = callocCheck((size_t)f->nclasses, sizeof(char *));
    }
    bcast_bytes(f->status, (size_t)f->n, F->comm);
    bcast_bytes(f->split, (size_t)f->n, F->comm);
    bcast_bytes(f->label, sizeof(int) * (size_t)f->n, F->comm);
    for (int k = 0; k < f->nclasses; k++) {
        int len = F->rank == 0 ? (int)strlen(f->label_names[k]) + 1 : 0;
        mpiCheck(MPI_Bcast(&len, 1, MPI_INT, 0, F->comm));
        if (F->rank != 0) f->label_names[k] = mallocCheck((size_t)len);
        mpiCheck(MPI_Bcast(f->label_names[k], len, MPI_CHAR, 0, F->comm));
    }
    if ((F->d_feat = H5Dopen2(F->file, "features", H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open dataset 'features'", path);
        ok = 0;
    } else if (!strcmp(f->feature_dtype, BN_DTYPE_F16) && (F->t_half = bn_h5_f16_type()) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot make the float16 type", path);
        ok = 0;
    }
    if (bn_h5_agree(F->comm, ok, msg) < 0) goto fail;
    bn_h5_close(&fapl);
    bn_h5_quiet_off(&q);
    return 0;
fail:
    bn_h5_close(&fapl);
    bn_h5_put_err(err, errlen, path, msg);
    bn_feats_close(f);
    bn_h5_quiet_off(&q);
    return -1;
}

int bn_feats_read(bn_feats *f, const long long *rows, long long cnt, float *out, char *err, size_t errlen) {
    bn_feats_file *F = f->file;
    char msg[BN_H5_MSG_LEN] = "";
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    const size_t dim = (size_t)f->dim;
    float *tmp = NULL;
    uint16_t *half = NULL; /* a float16 file: the rows as read */
    hid_t fs = -1, ms = -1;
    int rc = -1;
    if ((fs = H5Dget_space(F->d_feat)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot read dataset 'features'", f->path);
        goto done;
    }
    for (long long a = 0; a < cnt;) {
        /* The longest run of rows from a whose span stays within SPAN_ROWS. */
        long long b = a + 1;
        while (b < cnt && rows[b] - rows[a] < SPAN_ROWS && rows[b] >= rows[a]) b++;
        long long first = rows[a], span = rows[b - 1] - first + 1;
        int ascending = 1;
        for (long long k = a + 1; k < b; k++) ascending &= rows[k] > rows[k - 1];
        if (first < 0 || rows[b - 1] >= f->n || !ascending) {
            bn_h5_set_msg(msg, "%s: internal error: rows to read are out of range or not ascending", f->path);
            goto done;
        }
        int dense = span == b - a;
        float *dst = dense ? out + (size_t)a * dim : (tmp ? tmp : (tmp = mallocCheck(SPAN_ROWS * dim * sizeof(float))));
        hsize_t start[2] = {(hsize_t)first, 0}, count[2] = {(hsize_t)span, dim};
        if (F->t_half >= 0 && !half) half = mallocCheck(SPAN_ROWS * dim * sizeof *half);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            (ms = H5Screate_simple(2, count, NULL)) < 0 ||
            H5Dread(F->d_feat, F->t_half >= 0 ? F->t_half : H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT,
                    F->t_half >= 0 ? (void *)half : (void *)dst) < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot read feature rows %lld to %lld", f->path, first, first + span - 1);
            goto done;
        }
        if (F->t_half >= 0) bn_f16_to_f32_n(half, dst, (size_t)span * dim); /* float16 rows, converted here */
        bn_h5_close(&ms);
        if (!dense)
            for (long long k = a; k < b; k++)
                memcpy(out + (size_t)k * dim, tmp + (size_t)(rows[k] - first) * dim, dim * sizeof(float));
        a = b;
    }
    rc = 0;
done:
    bn_h5_close(&ms);
    bn_h5_close(&fs);
    free(tmp);
    free(half);
    if (rc) bn_h5_put_err(err, errlen, f->path, msg);
    bn_h5_quiet_off(&q);
    return rc;
}

/* Read rows [lo, lo+cnt) of 1-D dataset name (memory type mt) into buf. */
static int read_range(hid_t file, const char *path, const char *name, hid_t mt, hsize_t lo, hsize_t cnt, void *buf,
                      char *msg) {
    hid_t d = -1, fs = -1, ms = -1;
    int rc = -1;
    if ((d = H5Dopen2(file, name, H5P_DEFAULT)) < 0 || (fs = H5Dget_space(d)) < 0 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &lo, NULL, &cnt, NULL) < 0 || (ms = H5Screate_simple(1, &cnt, NULL)) < 0 ||
        H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot read rows %llu..%llu of dataset '%s'", path, (unsigned long long)lo,
                        (unsigned long long)(lo + cnt), name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&ms);
    bn_h5_close(&fs);
    bn_h5_close(&d);
    return rc;
}

int bn_feats_read_errors(bn_feats *f, long long lo, long long cnt, unsigned char *code, char *reason, char *err,
                         size_t errlen) {
    bn_feats_file *F = f->file;
    char msg[BN_H5_MSG_LEN] = "";
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int rc = -1;
    hid_t t = -1;
    if (lo < 0 || cnt < 0 || lo + cnt > f->n) {
        bn_h5_set_msg(msg, "%s: rows %lld..%lld are out of range (%lld rows)", f->path, lo, lo + cnt, f->n);
        goto done;
    }
    if (cnt == 0) {
        rc = 0;
        goto done;
    }
    memset(reason, 0, (size_t)cnt * BN_REASON_LEN);
    if ((t = bn_h5_str_type(BN_REASON_LEN, H5T_STR_NULLPAD)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot set up types", f->path);
        goto done;
    }
    if (read_range(F->file, f->path, "error_code", H5T_NATIVE_UCHAR, (hsize_t)lo, (hsize_t)cnt, code, msg) ||
        read_range(F->file, f->path, "error_reason", t, (hsize_t)lo, (hsize_t)cnt, reason, msg))
        goto done;
    rc = 0;
done:
    bn_h5_close(&t);
    if (rc) bn_h5_put_err(err, errlen, f->path, msg);
    bn_h5_quiet_off(&q);
    return rc;
}

int bn_feats_load_paths(bn_feats *f, char *err, size_t errlen) {
    bn_feats_file *F = f->file;
    char msg[BN_H5_MSG_LEN] = "";
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int rc = -1;
    if (f->path_offsets) {
        rc = 0;
        goto done;
    }
    f->path_offsets = mallocCheck(sizeof(unsigned long long) * ((size_t)f->n + 1));
    if (read_all(F->file, f->path, "path_offsets", H5T_NATIVE_ULLONG, (hsize_t)f->n + 1, f->path_offsets, msg))
        goto done;
    unsigned long long total = f->path_offsets[f->n];
    for (long long i = 0; i < f->n; i++)
        if (f->path_offsets[i] > f->path_offsets[i + 1] || f->path_offsets[i + 1] > total) {
            bn_h5_set_msg(msg, "%s: path_offsets are not ascending at row %lld: the file is damaged", f->path, i);
            goto done;
        }
    /* total comes from the file: check it against the dataset before
     * allocating that much (a damaged offset could ask for exabytes). */
    if (read_all(F->file, f->path, "path_bytes", H5T_NATIVE_UCHAR, (hsize_t)total, NULL, msg)) goto done;
    f->path_bytes = mallocCheck((size_t)total + 1);
    if (read_all(F->file, f->path, "path_bytes", H5T_NATIVE_UCHAR, (hsize_t)total, f->path_bytes, msg)) goto done;
    rc = 0;
done:
    if (rc) {
        free(f->path_offsets);
        free(f->path_bytes);
        f->path_offsets = NULL;
        f->path_bytes = NULL;
        bn_h5_put_err(err, errlen, f->path, msg);
    }
    bn_h5_quiet_off(&q);
    return rc;
}

char *bn_feats_path(const bn_feats *f, long long i) {
    size_t len = (size_t)(f->path_offsets[i + 1] - f->path_offsets[i]);
    char *s = mallocCheck(len + 1);
    memcpy(s, f->path_bytes + f->path_offsets[i], len);
    s[len] = 0;
    return s;
}

static int cmp_run(const void *a, const void *b) {
    const bn_feats_run *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

int bn_feats_read_runs(bn_feats *f, bn_feats_run **runs, int *nruns, char *err, size_t errlen) {
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    char msg[BN_H5_MSG_LEN] = "";
    int rc = -1, n = 0;
    bn_feats_run *R = NULL;
    hid_t g = -1, d = -1;
    *runs = NULL;
    *nruns = 0;
    /* A file that records no finished run (attribute runs 0 or absent, as a
     * file written by another tool may be) needs no timing group. */
    if (H5Lexists(f->file->file, "timing", H5P_DEFAULT) <= 0) {
        long long nr = 0;
        int r = bn_h5_attr_get_int(f->file->file, "runs", &nr, msg);
        if (r < 0) goto done; /* msg says why */
        if (nr == 0) {
            rc = 0;
            goto done;
        }
        bn_h5_set_msg(msg, "group 'timing' is missing but attribute 'runs' says %lld runs: the file is damaged", nr);
        goto done;
    }
    if ((g = H5Gopen2(f->file->file, "timing", H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "cannot open group 'timing': the file is damaged");
        goto done;
    }
    H5G_info_t gi;
    if (H5Gget_info(g, &gi) < 0) {
        bn_h5_set_h5msg(msg, "cannot list group 'timing'");
        goto done;
    }
    R = callocCheck(gi.nlinks ? gi.nlinks : 1, sizeof *R);
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        char name[64];
        int k = -1;
        char tail = 0;
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT) < 0 ||
            sscanf(name, "run_%d%c", &k, &tail) != 1 || k < 0)
            continue; /* not a run table */
        bn_feats_run *r = &R[n];
        r->index = k;
        if ((d = H5Dopen2(g, name, H5P_DEFAULT)) < 0) {
            bn_h5_set_h5msg(msg, "cannot open timing/%s", name);
            goto done;
        }
        hid_t sp = H5Dget_space(d);
        hsize_t dn = 0;
        if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &dn, NULL) != 1 ||
            dn > 100000000) {
            bn_h5_close(&sp);
            bn_h5_set_msg(msg, "timing/%s is not a 1-D table: the file is damaged", name);
            goto done;
        }
        bn_h5_close(&sp);
        r->ranks = (int)dn;
        r->rows = mallocCheck(sizeof *r->rows * (dn ? dn : 1));
        n++;
        if (bn_store_read_timing(d, r->rows, (long long)dn, msg) < 0) {
            bn_h5_set_msg(msg, "timing/%s cannot be read", name);
            goto done;
        }
        long long v = 0;
        if (bn_h5_attr_get_int(d, "complete", &v, msg) == 0) r->complete = (int)v;
        char *fin = NULL;
        if (bn_h5_attr_get_str(d, "finished", &fin, msg) == 0) snprintf(r->finished, sizeof r->finished, "%s", fin);
        free(fin);
        msg[0] = 0;
        r->has_run = bn_run_summary_get(d, &r->run);
        bn_h5_close(&d);
        char tl[80];
        snprintf(tl, sizeof tl, "timeline/%s", name);
        if (H5Lexists(f->file->file, "timeline", H5P_DEFAULT) > 0 && H5Lexists(f->file->file, tl, H5P_DEFAULT) > 0) {
            if ((d = H5Dopen2(f->file->file, tl, H5P_DEFAULT)) < 0 ||
                bn_store_read_timeline(d, &r->tl_rank, &r->tl, &r->ntl, msg) < 0) {
                bn_h5_set_h5msg(msg, "cannot read %s", tl);
                goto done;
            }
            bn_h5_close(&d);
        }
    }
    qsort(R, (size_t)n, sizeof *R, cmp_run);
    *runs = R;
    *nruns = n;
    R = NULL;
    rc = 0;
done:
    if (R) bn_feats_runs_free(R, n);
    bn_h5_close(&d);
    bn_h5_close(&g);
    if (rc < 0) bn_h5_put_err(err, errlen, f->path, msg);
    bn_h5_quiet_off(&q);
    return rc;
}

void bn_feats_runs_free(bn_feats_run *runs, int nruns) {
    if (!runs) return;
    for (int i = 0; i < nruns; i++) {
        free(runs[i].rows);
        free(runs[i].tl_rank);
        free(runs[i].tl);
    }
    free(runs);
}

void bn_feats_close(bn_feats *f) {
    bn_feats_file *F = f->file;
    if (F) {
        bn_h5_quiet q;
        bn_h5_quiet_on(&q);
        bn_h5_close(&F->d_feat);
        bn_h5_close(&F->t_half);
        bn_h5_close(&F->file); /* collective */
        bn_h5_quiet_off(&q);
        mpiCheck(MPI_Comm_free(&F->comm));
        free(F);
    }
    if (f->label_names)
        for (int k = 0; k < f->nclasses; k++) free(f->label_names[k]);
    free(f->label_names);
    free(f->status);
    free(f->split);
    free(f->label);
    free(f->path_offsets);
    free(f->path_bytes);
    free(f->path);
    memset(f, 0, sizeof *f);
}
