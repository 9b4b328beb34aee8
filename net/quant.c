/* quant.c: see quant.h. The calibration file's layout is documented in
 * docs/format.md; this file alone reads and writes it. */
#include "config.h"
#include "net/quant.h"

#include "io/h5util.h"
#include "io/weights.h"
#include "pipeline/log.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void bn_quant_weight_scales(const float *w, size_t K, int cout, float *scale) {
    for (int o = 0; o < cout; o++) {
        float m = 0.0f;
        for (size_t k = 0; k < K; k++) {
            float a = fabsf(w[k * (size_t)cout + o]);
            if (a > m) m = a;
        }
        scale[o] = m > 0.0f ? m / 127.0f : 1.0f;
    }
}

void bn_quant_weights(const float *w, size_t K, int cout, int8_t *q, float *scale) {
    bn_quant_weight_scales(w, K, cout, scale);
    for (size_t k = 0; k < K; k++)
        for (int o = 0; o < cout; o++) {
            float v = nearbyintf(w[k * (size_t)cout + o] / scale[o]);
            q[k * (size_t)cout + o] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
        }
}

float bn_quant_u8(float x, float inv, float step) {
    float v = nearbyintf(x * inv);
    v = v > 255.0f ? 255.0f : v >= 0.0f ? v : 0.0f; /* NaN becomes 0 */
    return v * step;
}

float bn_quant_s8(float x, float inv, float step) {
    float v = nearbyintf(x * inv);
    v = v > 127.0f ? 127.0f : v >= -128.0f ? v : v < -128.0f ? -128.0f : 0.0f; /* NaN becomes 0 */
    return v * step;
}

/* ------------------------------------------------------------ thresholds */

static const char *const METHOD_NAMES[BN_CALIB_NMETHODS] = {"max", "percentile", "entropy"};

int bn_calib_method_parse(const char *s, bn_calib_method *out) {
    for (int m = 0; m < BN_CALIB_NMETHODS; m++)
        if (s && !strcmp(s, METHOD_NAMES[m])) {
            *out = (bn_calib_method)m;
            return 0;
        }
    return -1;
}

const char *bn_calib_method_name(bn_calib_method m) {
    return m >= 0 && m < BN_CALIB_NMETHODS ? METHOD_NAMES[m] : "?";
}

#define ENTROPY_FIRST 256 /* smallest candidate: one bin per code or more */

/* First bin of code c when i bins are kept: bin b goes to code
 * round((b + 0.5) * 255 / i) = floor(((2b + 1) * 255 + i) / (2i)) (halves
 * round up: a model of the quantiser on bin centres), so code c starts at
 * the smallest b with (2b + 1) * 255 + i >= 2ic. */
static long code_start(long c, long i) {
    long num = 2 * i * c - i - 255;
    if (num <= 0) return 0;
    return (num + 509) / 510;
}

/* Prefix sums over h: H[b] = sum of h[0..b), NZ[b] = non-empty bins in
 * [0, b), L[b] = sum of h log h over [0, b). */
typedef struct {
    double *H, *NZ, *L;
} prefix;

/* KL(P || Q) for keeping the first i bins (see quant.h), or INFINITY when Q
 * misses mass P has. total: sum of all bins. Each code is a run of
 * consecutive bins, and Q is constant over a run's non-empty bins, so one
 * candidate costs a step per code. */
static double kl_candidate(const uint64_t *h, const prefix *px, int i, double total) {
    const double kept = px->H[i], outliers = total - kept, logT = log(total);
    if (kept <= 0.0) return INFINITY;
    double kl = 0.0;
    for (long c = 0; c < 256; c++) {
        long bs = code_start(c, i), be = c == 255 ? i : code_start(c + 1, i);
        if (be > i) be = i;
        if (bs >= be) continue;
        double sum = px->H[be] - px->H[bs], nz = px->NZ[be] - px->NZ[bs];
        long last = be == i ? be - 1 : be; /* the last kept bin also carries the clipped values */
        if (sum > 0.0) {
            double logq = log(sum / nz / kept);
            /* sum over non-empty k in [bs, last) of (h/T) (log h - log T - log q) */
            double s = px->H[last] - px->H[bs];
            kl += ((px->L[last] - px->L[bs]) - s * (logT + logq)) / total;
            if (be == i) {
                double p = ((double)h[i - 1] + outliers) / total;
                if (p > 0.0) {
                    if (h[i - 1] == 0) return INFINITY;
                    kl += p * (log(p) - logq);
                }
            }
        } else if (be == i && outliers > 0.0) {
            return INFINITY; /* clipped mass on an empty last code */
        }
    }
    return kl;
}

float bn_calib_threshold(bn_calib_method m, double pct, const bn_act_stats *s) {
    double total = 0.0;
    for (int b = 0; b < s->nbins; b++) total += (double)s->hist[b];
    if (!(s->max > 0.0) || !isfinite(s->max) || total <= 0.0) return 1.0f;
    const double width = s->max / s->nbins;
    double t = s->max;
    if (m == BN_CALIB_PERCENTILE) {
        double all = total + (double)s->zeros, target = pct / 100.0 * all, cum = (double)s->zeros;
        t = s->max;
        for (int b = 0; b < s->nbins; b++) {
            cum += (double)s->hist[b];
            if (cum >= target) {
                t = (b + 1) * width;
                break;
            }
        }
    } else if (m == BN_CALIB_ENTROPY && s->nbins > ENTROPY_FIRST) {
        const int nb = s->nbins;
        prefix px = {mallocCheck((nb + 1) * sizeof(double)), mallocCheck((nb + 1) * sizeof(double)),
                     mallocCheck((nb + 1) * sizeof(double))};
        px.H[0] = px.NZ[0] = px.L[0] = 0.0;
        for (int b = 0; b < nb; b++) {
            double v = (double)s->hist[b];
            px.H[b + 1] = px.H[b] + v;
            px.NZ[b + 1] = px.NZ[b] + (v > 0.0);
            px.L[b + 1] = px.L[b] + (v > 0.0 ? v * log(v) : 0.0);
        }
        double best = INFINITY;
        int best_i = nb;
        for (int i = ENTROPY_FIRST; i <= nb; i++) {
            double kl = kl_candidate(s->hist, &px, i, total);
            if (kl < best) {
                best = kl;
                best_i = i;
            }
        }
        t = best_i * width;
        free(px.H);
        free(px.NZ);
        free(px.L);
    }
    float f = (float)t;
    return f > 0.0f && isfinite(f) ? f : 1.0f;
}

/* ------------------------------------------------------------ the file */

#define HINT_MAKE "make one with: bneck calibrate --weights W.h5 --images DIR --out CAL.h5"

/* Dataset name of 1-D length n (0 = any) and class cls: open it and give
 * its type and length. Returns the dataset or -1 with msg set. */
static hid_t open_1d(hid_t f, const char *name, H5T_class_t cls, hsize_t *n, hid_t *type, char *msg) {
    hid_t d = -1, sp = -1, t = -1;
    htri_t ex = H5Lexists(f, name, H5P_DEFAULT);
    if (ex <= 0) {
        if (ex < 0)
            bn_h5_set_h5msg(msg, "cannot look for dataset '%s'", name);
        else
            bn_h5_set_msg(msg, "dataset '%s' is missing: the file is damaged; recalibrate", name);
        return -1;
    }
    if ((d = H5Dopen2(f, name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0 || (t = H5Dget_type(d)) < 0) {
        bn_h5_set_h5msg(msg, "cannot open dataset '%s' (damaged file?); recalibrate", name);
        goto fail;
    }
    if (H5Tget_class(t) != cls) {
        bn_h5_set_msg(msg, "dataset '%s' holds %s, not %s: the file is damaged; recalibrate", name,
                      H5Tget_class(t) == H5T_STRING ? "strings" : "other data",
                      cls == H5T_FLOAT ? "floating-point numbers" : "strings");
        goto fail;
    }
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, n, NULL) != 1) {
        bn_h5_set_msg(msg, "dataset '%s' is not one-dimensional: the file is damaged; recalibrate", name);
        goto fail;
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

/* Read the n strings of string dataset d (type ft, fixed or variable
 * length) and compare each with the graph's tensor names. 0 or -1 with msg. */
static int check_names(hid_t d, hid_t ft, size_t n, const bn_graph *g, char *msg) {
    int rc = -1;
    char **names = callocCheck(n ? n : 1, sizeof *names);
    hid_t mt = -1;
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0 || (mt = H5Tcopy(ft)) < 0) {
        bn_h5_set_h5msg(msg, "cannot read dataset 'tensor_names'");
        goto done;
    }
    if (vl) {
        char **p = callocCheck(n ? n : 1, sizeof *p);
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) < 0) {
            bn_h5_set_h5msg(msg, "cannot read dataset 'tensor_names' (damaged file?)");
            free(p);
            goto done;
        }
        for (size_t i = 0; i < n; i++) names[i] = strdupCheck(p[i] ? p[i] : "");
        hid_t sp = H5Dget_space(d);
        if (sp >= 0) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, p);
        bn_h5_close(&sp);
        free(p);
    } else {
        size_t len = H5Tget_size(ft);
        char *buf = callocCheck(n ? n : 1, len ? len : 1);
        if (len == 0 || H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            bn_h5_set_h5msg(msg, "cannot read dataset 'tensor_names' (damaged file?)");
            free(buf);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            names[i] = callocCheck(len + 1, 1);
            memcpy(names[i], buf + i * len, len);
        }
        free(buf);
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], g->tensors[i].name)) {
            bn_h5_set_msg(msg, "tensor %zu is '%.100s' where this bneck's graph has '%s': the file is for another "
                               "network or bneck; recalibrate with this bneck",
                          i, names[i], g->tensors[i].name);
            goto done;
        }
    rc = 0;
done:
    bn_h5_close(&mt);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* Required string attribute into buf (cap bytes). 0 or -1 with msg set. */
static int need_str(hid_t f, const char *name, char *buf, size_t cap, char *msg) {
    char *s = NULL;
    int r = bn_h5_attr_get_str(f, name, &s, msg);
    if (r > 0) bn_h5_set_msg(msg, "attribute '%s' is missing or not a string: the file is damaged; recalibrate", name);
    if (r) return -1;
    int ok = strlen(s) < cap;
    if (ok)
        memcpy(buf, s, strlen(s) + 1);
    else
        bn_h5_set_msg(msg, "attribute '%s' is too long (%zu bytes): the file is damaged; recalibrate", name, strlen(s));
    free(s);
    return ok ? 0 : -1;
}

static int is_hex64(const char *s) {
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* Read and check the open file f into c. 0 or -1 with msg set. */
static int read_contents(hid_t f, const char *weights_sha, bn_calib *c, char *msg) {
    const bn_graph *g = bn_inception_v3();
    int rc = -1;
    char *fmt = NULL;
    hid_t d = -1, t = -1;
    float *th = NULL;
    int r = bn_h5_attr_get_str(f, "format", &fmt, msg);
    if (r < 0) goto done;
    if (r > 0) {
        bn_h5_set_msg(msg, "not a bneck calibration file: it has no 'format' attribute (an HDF5 file from another "
                           "tool?); pass the file bneck calibrate wrote, or " HINT_MAKE);
        goto done;
    }
    if (strcmp(fmt, BN_CALIB_FORMAT)) {
        bn_h5_set_msg(msg, "not a bneck calibration file: its format is '%.100s'; pass the file bneck calibrate wrote, "
                           "or " HINT_MAKE, fmt);
        goto done;
    }
    long long version = 0, images = 0;
    r = bn_h5_attr_get_int(f, "version", &version, msg);
    if (r > 0) bn_h5_set_msg(msg, "attribute 'version' is missing or not an integer: the file is damaged; recalibrate");
    if (r) goto done;
    if (version > BN_CALIB_VERSION) {
        bn_h5_set_msg(msg, "calibration file version %lld is newer than this bneck reads (%d): use the bneck that "
                           "wrote it, or recalibrate with this one", version, BN_CALIB_VERSION);
        goto done;
    }
    if (version < 1) {
        bn_h5_set_msg(msg, "calibration file version %lld is not valid: the file is damaged; recalibrate", version);
        goto done;
    }
    if (need_str(f, "method", c->method, sizeof c->method, msg) ||
        need_str(f, "weights_sha256", c->weights_sha256, sizeof c->weights_sha256, msg) ||
        need_str(f, "preprocess", c->preprocess, sizeof c->preprocess, msg))
        goto done;
    bn_calib_method m;
    if (bn_calib_method_parse(c->method, &m)) {
        bn_h5_set_msg(msg, "unknown method '%.31s' (max, percentile or entropy): the file is damaged; recalibrate",
                      c->method);
        goto done;
    }
    c->percentile = 0.0;
    if (m == BN_CALIB_PERCENTILE) {
        r = bn_h5_attr_get_double(f, "percentile", &c->percentile, msg);
        if (r > 0) bn_h5_set_msg(msg, "method percentile without a 'percentile' attribute: the file is damaged; recalibrate");
        if (r) goto done;
        if (!(c->percentile > 0.0 && c->percentile <= 100.0)) {
            bn_h5_set_msg(msg, "percentile %g is outside (0, 100]: the file is damaged; recalibrate", c->percentile);
            goto done;
        }
    }
    r = bn_h5_attr_get_int(f, "images", &images, msg);
    if (r > 0) bn_h5_set_msg(msg, "attribute 'images' is missing or not an integer: the file is damaged; recalibrate");
    if (r) goto done;
    if (images < 1 || images > 1000000000LL) {
        bn_h5_set_msg(msg, "attribute 'images' is %lld: the file is damaged; recalibrate", images);
        goto done;
    }
    c->images = (int)images;
    if (!is_hex64(c->weights_sha256)) {
        bn_h5_set_msg(msg, "attribute 'weights_sha256' is not 64 hex digits: the file is damaged; recalibrate");
        goto done;
    }
    if (strcmp(c->preprocess, "keras") && strcmp(c->preprocess, "tf2015")) {
        bn_h5_set_msg(msg, "unknown preprocess '%.15s' (keras or tf2015): the file is damaged; recalibrate", c->preprocess);
        goto done;
    }

    hsize_t n = 0, nt = 0;
    if ((d = open_1d(f, "tensor_names", H5T_STRING, &n, &t, msg)) < 0) goto done;
    if (n != (hsize_t)g->ntensors) {
        bn_h5_set_msg(msg, "it has thresholds for %llu tensors, this bneck's graph has %d: the file is for another "
                           "network or bneck; recalibrate with this bneck",
                      (unsigned long long)n, g->ntensors);
        goto done;
    }
    if (check_names(d, t, (size_t)n, g, msg)) goto done;
    bn_h5_close(&t);
    bn_h5_close(&d);
    if ((d = open_1d(f, "thresholds", H5T_FLOAT, &nt, &t, msg)) < 0) goto done;
    if (nt != n) {
        bn_h5_set_msg(msg, "'thresholds' has %llu values for %llu tensor names: the file is damaged; recalibrate",
                      (unsigned long long)nt, (unsigned long long)n);
        goto done;
    }
    th = mallocCheck((size_t)n * sizeof *th);
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, th) < 0) {
        bn_h5_set_h5msg(msg, "cannot read dataset 'thresholds' (damaged file?); recalibrate");
        goto done;
    }
    for (int i = 0; i < g->ntensors; i++) {
        if (!isfinite(th[i]) || th[i] <= 0.0f) {
            bn_h5_set_msg(msg, "the threshold of tensor '%s' is %g, not a finite number > 0: the file is damaged; "
                               "recalibrate", g->tensors[i].name, (double)th[i]);
            goto done;
        }
        c->thresh[i] = th[i];
    }
    c->ntensors = g->ntensors;
    if (weights_sha && weights_sha[0] && strcmp(weights_sha, c->weights_sha256)) {
        bn_h5_set_msg(msg, "it was made for the weights with SHA-256 %.16s..., not these (%.16s...): recalibrate with "
                           "these weights (bneck calibrate --weights W.h5 ...)", c->weights_sha256, weights_sha);
        goto done;
    }
    rc = 0;
done:
    free(th);
    free(fmt);
    bn_h5_close(&t);
    bn_h5_close(&d);
    return rc;
}

int bn_calib_read(const char *path, const char *weights_sha, bn_calib *c, char *err, size_t errlen) {
    char msg[BN_H5_MSG_LEN] = "";
    memset(c, 0, sizeof *c);
    if (!path || !path[0]) {
        snprintf(err, errlen, "no calibration file given; " HINT_MAKE);
        return -1;
    }
    if (strlen(path) >= sizeof c->path) {
        snprintf(err, errlen, "calibration file name too long (%zu bytes)", strlen(path));
        return -1;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot open the calibration file: %s; %s", path, strerror(errno),
                 errno == ENOENT ? HINT_MAKE : "check its permissions");
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: is a folder, not a calibration file; pass the file bneck calibrate --out wrote", path);
        return -1;
    }
    int sig = bn_h5_signature(path, (long long)sb.st_size);
    if (sig < 0) {
        snprintf(err, errlen, "%s: cannot read the calibration file: %s; check its permissions", path, strerror(errno));
        return -1;
    }
    if (!sig) {
        snprintf(err, errlen, "%s: not a bneck calibration file: not an HDF5 file%s; pass the file bneck calibrate "
                              "wrote, or " HINT_MAKE, path, sb.st_size == 0 ? " (it is empty)" : "");
        return -1;
    }
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int rc = -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        bn_h5_set_h5msg(msg, "cannot open the calibration file as HDF5 (damaged or truncated?); recalibrate");
    else if (read_contents(f, weights_sha, c, msg) == 0)
        rc = 0;
    bn_h5_close(&f);
    bn_h5_quiet_off(&q);
    if (rc == 0) {
        char herr[1024];
        if (bn_file_sha256(path, c->sha256, herr, sizeof herr)) {
            snprintf(err, errlen, "%s", herr);
            return -1;
        }
        snprintf(c->path, sizeof c->path, "%s", path);
        return 0;
    }
    bn_h5_put_err(err, errlen, path, msg);
    return -1;
}

/* Write the attributes and datasets of c into the open file f. */
static int write_contents(hid_t f, const bn_calib *c, const bn_graph *g, char *msg) {
    int rc = -1;
    hid_t tn = -1, sp = -1, d = -1, dcpl = -1;
    char *names = NULL;
    char created_by[64];
    snprintf(created_by, sizeof created_by, "bneck %s", PACKAGE_VERSION);
    if (bn_h5_attr_put_str(f, "format", BN_CALIB_FORMAT, msg) ||
        bn_h5_attr_put_int(f, "version", H5T_STD_I32LE, BN_CALIB_VERSION, 1, msg) ||
        bn_h5_attr_put_str(f, "weights_sha256", c->weights_sha256, msg) ||
        bn_h5_attr_put_str(f, "method", c->method, msg) ||
        (!strcmp(c->method, "percentile") && bn_h5_attr_put_double(f, "percentile", c->percentile, msg)) ||
        bn_h5_attr_put_int(f, "images", H5T_STD_I64LE, c->images, 1, msg) ||
        bn_h5_attr_put_str(f, "preprocess", c->preprocess, msg) ||
        bn_h5_attr_put_str(f, "created_by", created_by, msg))
        goto done;
    size_t maxlen = 1;
    for (int i = 0; i < g->ntensors; i++)
        if (strlen(g->tensors[i].name) > maxlen) maxlen = strlen(g->tensors[i].name);
    names = callocCheck((size_t)g->ntensors, maxlen);
    for (int i = 0; i < g->ntensors; i++) memcpy(names + (size_t)i * maxlen, g->tensors[i].name, strlen(g->tensors[i].name));
    hsize_t n = (hsize_t)g->ntensors;
    /* No timestamps: the same calibration gives the same bytes, so the same SHA-256. */
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_obj_track_times(dcpl, 0) < 0) {
        bn_h5_set_h5msg(msg, "cannot set up dataset creation");
        goto done;
    }
    if ((tn = bn_h5_str_type(maxlen, H5T_STR_NULLPAD)) < 0 || (sp = H5Screate_simple(1, &n, NULL)) < 0 ||
        (d = H5Dcreate2(f, "tensor_names", tn, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, tn, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0) {
        bn_h5_set_h5msg(msg, "cannot write dataset 'tensor_names'");
        goto done;
    }
    bn_h5_close(&d);
    if ((d = H5Dcreate2(f, "thresholds", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->thresh) < 0) {
        bn_h5_set_h5msg(msg, "cannot write dataset 'thresholds'");
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&d);
    bn_h5_close(&dcpl);
    bn_h5_close(&sp);
    bn_h5_close(&tn);
    free(names);
    return rc;
}

static int fill_calib(hid_t f, const void *arg, char *msg) {
    return write_contents(f, arg, bn_inception_v3(), msg);
}

int bn_calib_write(const char *path, bn_calib *c, char *err, size_t errlen) {
    const bn_graph *g = bn_inception_v3();
    char msg[BN_H5_MSG_LEN] = "";
    bn_calib_method m;
    if (!path || !path[0]) {
        snprintf(err, errlen, "no calibration file name");
        return -1;
    }
    if (strlen(path) >= sizeof c->path) {
        snprintf(err, errlen, "%s: file name too long", path);
        return -1;
    }
    if (c->ntensors != g->ntensors || bn_calib_method_parse(c->method, &m) || c->images < 1 ||
        !is_hex64(c->weights_sha256) || (strcmp(c->preprocess, "keras") && strcmp(c->preprocess, "tf2015")) ||
        (m == BN_CALIB_PERCENTILE && !(c->percentile > 0.0 && c->percentile <= 100.0))) {
        snprintf(err, errlen, "%s: not written: the calibration is incomplete (tensors %d of %d, method '%.31s', %d images)",
                 path, c->ntensors, g->ntensors, c->method, c->images);
        return -1;
    }
    for (int i = 0; i < g->ntensors; i++)
        if (!isfinite(c->thresh[i]) || c->thresh[i] <= 0.0f) {
            snprintf(err, errlen, "%s: not written: the threshold of tensor '%s' is %g", path, g->tensors[i].name,
                     (double)c->thresh[i]);
            return -1;
        }
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    int rc = bn_h5_write_whole(path, fill_calib, c, msg);
    bn_h5_quiet_off(&q);
    if (rc) bn_h5_put_err(err, errlen, path, msg);
    if (rc == 0) {
        if (bn_file_sha256(path, c->sha256, err, errlen)) return -1;
        snprintf(c->path, sizeof c->path, "%s", path);
    }
    return rc;
}
