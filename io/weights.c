/* weights.c: reading, checking and writing the Keras Inception v3 weights
 * file (weights.h; the rules for users are in docs/weights.md).
 *
 * Reading: the root attribute layer_names lists the layers; each layer's
 * attribute weight_names says what it holds. A layer with a single kernel is
 * a convolution, one with beta, moving_mean and moving_variance a batch norm;
 * every other layer is ignored. The 94 of each are put in creation order (by
 * the numeric suffix of their names when every name has a distinct one, else
 * in file order), the k-th conv is paired with the k-th batch norm, and both
 * are checked against conv k of the graph (net/graph.c).
 *
 * Everything uses the serial HDF5 API with default file access, with HDF5's
 * own error printing silenced: every failure becomes one line in err.
 */
#include "io/weights.h"
#include "io/h5util.h"
#include "net/graph.h"
#include "pipeline/log.h"

#include <hdf5.h>
#include <nettle/sha2.h>
#include <nettle/version.h>

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Names Keras gives the layers and weights we use. */
#define K_CONV "conv2d"               /* Conv2D layers: conv2d_N */
#define K_BN "batch_normalization"    /* BatchNormalization layers */
#define K_ACT "activation"            /* the ReLU after each batch norm */
#define K_BACKEND "tensorflow"        /* root attribute backend */
#define K_VERSION "2.1.5"             /* root attribute keras_version */
#define MAX_RANK 8                    /* highest dataset rank we describe in messages */
#define HASH_CHUNK ((size_t)1 << 20)  /* bytes read at a time when hashing */
#define PLAN_MAX (BN_MAX_LAYERS * 4)  /* layers the writer can list (311 used) */

/* ------------------------------------------------------------ small helpers */

/* printf into err (when err is non-NULL and errlen > 0). */
static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* HDF5's automatic error printing, saved so it can be put back. */
typedef struct {
    H5E_auto2_t func; /* the handler that was installed */
    void *data;       /* its client data */
    int saved;        /* 1 when func/data hold a saved handler */
} h5_quiet_t;

/* Silence HDF5's error printing on the default stack, saving the handler. */
static void h5_quiet(h5_quiet_t *q) {
    q->saved = H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) >= 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* Put back the handler h5_quiet saved. */
static void h5_restore(const h5_quiet_t *q) {
    if (q->saved) H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

/* Close an HDF5 id of any kind if it is valid (>= 0); used on cleanup paths.
 * A failed close is not reported: a reader loses nothing by it, and the
 * writer's data reach the disk at H5Fclose, whose result is checked. */
static void h5_close(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
    }
}

/* The last component of a weight name without its ":N" suffix, compared to
 * base: "conv2d_5/kernel:0", "kernel:0" and "kernel" all match "kernel". */
static int weight_is(const char *wname, const char *base) {
    const char *s = strrchr(wname, '/');
    s = s ? s + 1 : wname;
    size_t n = strlen(base);
    if (strncmp(s, base, n) != 0) return 0;
    s += n;
    if (*s == '\0') return 1;
    if (*s != ':' || !s[1]) return 0;
    for (s++; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* "3x3x96x64" for dims[0..rank-1] into buf ("scalar" for rank 0). */
static const char *dims_str(char *buf, size_t len, int rank, const hsize_t *dims) {
    if (rank == 0) {
        snprintf(buf, len, "scalar");
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%llu", i ? "x" : "", (unsigned long long)dims[i]);
        if (n < 0) break;
        used += (size_t)n;
    }
    return buf;
}

/* ------------------------------------------------------------ string lists */

/* A list of strings read from an attribute. */
typedef struct {
    char **s; /* n strings, each malloc'd and NUL-terminated */
    size_t n; /* strings in use */
    size_t cap; /* slots allocated at s */
} strlist;

/* Append a copy of the first len bytes of str (stopping early at a NUL). */
static void strlist_add(strlist *l, const char *str, size_t len) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->s = reallocCheck(l->s, l->cap * sizeof *l->s);
    }
    size_t k = 0;
    while (k < len && str[k]) k++;
    char *c = mallocCheck(k + 1);
    memcpy(c, str, k);
    c[k] = '\0';
    l->s[l->n++] = c;
}

/* Free the strings and the list; leaves it empty. */
static void strlist_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

/* Append the strings of an open attribute to out. A zero-element attribute of
 * any type adds nothing (h5py writes an empty list as a (0,) float64 array).
 * Fixed-length (any padding) and variable-length strings are accepted.
 * Returns 0, or -1 with a reason in why. */
static int attr_strings(hid_t attr, strlist *out, char *why, size_t whylen) {
    hid_t space = -1, ftype = -1, mtype = -1;
    char *fbuf = NULL;  /* fixed-length: npoints * size bytes */
    char **vbuf = NULL; /* variable-length: npoints pointers owned by HDF5 */
    int vread = 0;      /* 1 once vbuf holds data that must be reclaimed */
    int rc = -1;

    if ((space = H5Aget_space(attr)) < 0) {
        set_err(why, whylen, "cannot read its dataspace");
        goto done;
    }
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (np < 0) {
        set_err(why, whylen, "cannot read its dataspace");
        goto done;
    }
    if (np == 0) {
        rc = 0;
        goto done;
    }
    if ((ftype = H5Aget_type(attr)) < 0) {
        set_err(why, whylen, "cannot read its datatype");
        goto done;
    }
    if (H5Tget_class(ftype) != H5T_STRING) {
        set_err(why, whylen, "it does not hold strings");
        goto done;
    }
    htri_t vl = H5Tis_variable_str(ftype);
    H5T_cset_t cset = H5Tget_cset(ftype);
    if (vl < 0 || cset < 0 || (mtype = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_cset(mtype, cset) < 0) {
        set_err(why, whylen, "cannot describe its string type");
        goto done;
    }
    if (vl) {
        if (H5Tset_size(mtype, H5T_VARIABLE) < 0) {
            set_err(why, whylen, "cannot describe its string type");
            goto done;
        }
        vbuf = callocCheck((size_t)np, sizeof *vbuf);
        if (H5Aread(attr, mtype, vbuf) < 0) {
            set_err(why, whylen, "cannot read it");
            goto done;
        }
        vread = 1;
        for (hssize_t i = 0; i < np; i++) strlist_add(out, vbuf[i] ? vbuf[i] : "", vbuf[i] ? strlen(vbuf[i]) : 0);
    } else {
        size_t sz = H5Tget_size(ftype);
        if (sz == 0 || H5Tset_size(mtype, sz) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLPAD) < 0) {
            set_err(why, whylen, "cannot describe its string type");
            goto done;
        }
        fbuf = mallocCheck((size_t)np * sz);
        if (H5Aread(attr, mtype, fbuf) < 0) {
            set_err(why, whylen, "cannot read it");
            goto done;
        }
        for (hssize_t i = 0; i < np; i++) strlist_add(out, fbuf + (size_t)i * sz, sz);
    }
    rc = 0;
done:
    if (vread) {
#if H5_VERSION_GE(1, 12, 0)
        H5Treclaim(mtype, space, H5P_DEFAULT, vbuf);
#else
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, vbuf);
#endif
    }
    free(vbuf);
    free(fbuf);
    h5_close(mtype);
    h5_close(ftype);
    h5_close(space);
    return rc;
}

/* Read the string-list attribute `name` of object loc into out (appending).
 * Like Keras' load_attributes_from_hdf5_group, a list too long for one
 * attribute may be split into name0, name1, ... Returns 1 read, 0 absent,
 * -1 unreadable (reason in why). */
static int read_strlist(hid_t loc, const char *name, strlist *out, char *why, size_t whylen) {
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) {
        set_err(why, whylen, "cannot look up attribute %s", name);
        return -1;
    }
    int found = 0;
    for (int part = -1;; part++) {
        char an[256];
        if (part < 0) {
            if (!ex) continue;
            snprintf(an, sizeof an, "%s", name);
        } else {
            if (ex) break;
            snprintf(an, sizeof an, "%s%d", name, part);
            htri_t e = H5Aexists(loc, an);
            if (e < 0) {
                set_err(why, whylen, "cannot look up attribute %s", an);
                return -1;
            }
            if (!e) break;
        }
        hid_t a = H5Aopen(loc, an, H5P_DEFAULT);
        if (a < 0) {
            set_err(why, whylen, "cannot open attribute %s", an);
            return -1;
        }
        char w[200];
        int rc = attr_strings(a, out, w, sizeof w);
        H5Aclose(a);
        if (rc < 0) {
            set_err(why, whylen, "attribute %s: %s", an, w);
            return -1;
        }
        found = 1;
    }
    return found;
}

/* Read a scalar or one-element string attribute into buf ("" when absent).
 * Returns 0, or -1 (reason in why). */
static int read_string_attr(hid_t loc, const char *name, char *buf, size_t len, char *why, size_t whylen) {
    strlist l = {0};
    buf[0] = '\0';
    int rc = read_strlist(loc, name, &l, why, whylen);
    if (rc > 0 && l.n > 0) snprintf(buf, len, "%s", l.s[0]);
    strlist_free(&l);
    return rc < 0 ? -1 : 0;
}

/* 1 when every prefix of the '/'-separated path exists below loc, 0 when one
 * is missing, -1 when the lookup itself fails. */
static int path_exists(hid_t loc, const char *path) {
    size_t n = strlen(path);
    char *buf = mallocCheck(n + 1);
    int rc = 1;
    for (size_t i = 0; i <= n && rc == 1; i++) {
        if (i < n && path[i] != '/') continue;
        if (i == 0) continue; /* a leading '/' */
        memcpy(buf, path, i);
        buf[i] = '\0';
        htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
        rc = e < 0 ? -1 : e > 0 ? 1 : 0;
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ reading */

/* One conv or batch-norm layer found in the file. */
typedef struct {
    const char *name; /* layer name (points into the layer_names list) */
    long num;         /* creation number from the name's suffix; -1 when it has none */
    size_t pos;       /* position in layer_names (file order) */
    char *w[4];       /* weight names as listed: conv [0] kernel; batch norm
                         [0] beta, [1] moving_mean, [2] moving_variance, [3] gamma or NULL */
} wlayer;

/* The creation number in a layer name: the digits after its last '_' (at
 * most 9), or 0 when the name is exactly base (tf.keras leaves the first
 * layer of a kind unnumbered); -1 when there is none. */
static long name_number(const char *name, const char *base) {
    if (strcmp(name, base) == 0) return 0;
    const char *u = strrchr(name, '_');
    if (!u || !u[1] || strlen(u + 1) > 9) return -1;
    long v = 0;
    for (const char *s = u + 1; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* qsort order: by creation number, then file position. */
static int by_num(const void *a, const void *b) {
    const wlayer *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num ? 1 : (x->pos > y->pos) - (x->pos < y->pos);
}
/* qsort order: by file position. */
static int by_pos(const void *a, const void *b) {
    const wlayer *x = a, *y = b;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Put n layers in creation order: by number when every name has a distinct
 * one, else in file order. */
static void order_layers(wlayer *l, size_t n, const char *base) {
    int numbered = 1;
    for (size_t i = 0; i < n; i++) {
        l[i].num = name_number(l[i].name, base);
        if (l[i].num < 0) numbered = 0;
    }
    if (numbered) {
        qsort(l, n, sizeof *l, by_num);
        for (size_t i = 1; i < n; i++)
            if (l[i].num == l[i - 1].num) numbered = 0;
    }
    if (!numbered) qsort(l, n, sizeof *l, by_pos);
}

/* Free the weight names of n layers. */
static void wlayers_free(wlayer *l, size_t n) {
    for (size_t i = 0; l && i < n; i++)
        for (int j = 0; j < 4; j++) free(l[i].w[j]);
    free(l);
}

/* Where a dataset read reports: file, layer and graph position. */
typedef struct {
    const char *path;  /* the file, as given */
    const char *layer; /* the Keras layer name */
    const char *gpos;  /* the graph layer it feeds, e.g. "mixed0/branch1x1" */
} where_t;

/* Check n values for NaN/Inf; 0 or -1 with a message naming the dataset. */
static int check_finite(const where_t *at, const char *wname, const float *v, size_t n, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i])) continue;
        set_err(err, errlen, "%s: %s (%s): dataset %s contains %s (element %zu)", at->path, at->layer, at->gpos, wname,
                isnan(v[i]) ? "NaN" : v[i] > 0 ? "Inf" : "-Inf", i);
        return -1;
    }
    return 0;
}

/* Read dataset wname of layer group lg into out, which must have shape
 * want[0..rank-1] and type float32 or float64 (converted to float, values
 * checked finite). Returns 0, or -1 with a message in err. */
static int read_array(hid_t lg, const where_t *at, const char *wname, const char *what, int rank, const hsize_t *want,
                      float *out, char *err, size_t errlen) {
    hid_t d = -1, space = -1, type = -1;
    double *dbuf = NULL;
    int rc = -1;
    char s1[96], s2[96];

    int ex = path_exists(lg, wname);
    if (ex <= 0) {
        set_err(err, errlen, "%s: %s (%s): weight_names lists %s but dataset /%s/%s is %s", at->path, at->layer, at->gpos,
                wname, at->layer, wname, ex < 0 ? "unreadable (truncated or damaged file?)" : "missing");
        goto done;
    }
    if ((d = H5Dopen2(lg, wname, H5P_DEFAULT)) < 0) {
        set_err(err, errlen, "%s: %s (%s): cannot open dataset /%s/%s (not a dataset, or the file is damaged)", at->path,
                at->layer, at->gpos, at->layer, wname);
        goto done;
    }
    if ((space = H5Dget_space(d)) < 0 || (type = H5Dget_type(d)) < 0) {
        set_err(err, errlen, "%s: %s (%s): cannot read the shape or type of dataset /%s/%s (truncated or damaged file?)",
                at->path, at->layer, at->gpos, at->layer, wname);
        goto done;
    }
    int frank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[MAX_RANK];
    if (frank < 0 || frank > MAX_RANK || H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        set_err(err, errlen, "%s: %s (%s): dataset /%s/%s has an unreadable or unsupported shape", at->path, at->layer,
                at->gpos, at->layer, wname);
        goto done;
    }
    int same = frank == rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == want[i];
    if (!same) {
        set_err(err, errlen, "%s: %s (%s): %s shape %s, expected %s", at->path, at->layer, at->gpos, what,
                dims_str(s1, sizeof s1, frank, dims), dims_str(s2, sizeof s2, rank, want));
        goto done;
    }
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)want[i];
    H5T_class_t cls = H5Tget_class(type);
    size_t tsize = H5Tget_size(type);
    if (cls != H5T_FLOAT || (tsize != 4 && tsize != 8)) {
        const char *kind = cls == H5T_INTEGER ? "integer" : cls == H5T_FLOAT ? "float" : cls == H5T_STRING ? "string" : "non-numeric";
        set_err(err, errlen, "%s: %s (%s): dataset %s has type %s of %zu bytes; expected float32 or float64", at->path,
                at->layer, at->gpos, wname, kind, tsize);
        goto done;
    }
    if (tsize == 4) {
        if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
            set_err(err, errlen, "%s: %s (%s): cannot read dataset /%s/%s (truncated or damaged file?)", at->path, at->layer,
                    at->gpos, at->layer, wname);
            goto done;
        }
        if (check_finite(at, wname, out, n, err, errlen) < 0) goto done;
    } else {
        dbuf = mallocCheck(n * sizeof *dbuf);
        if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, dbuf) < 0) {
            set_err(err, errlen, "%s: %s (%s): cannot read dataset /%s/%s (truncated or damaged file?)", at->path, at->layer,
                    at->gpos, at->layer, wname);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (isfinite(dbuf[i]) && fabs(dbuf[i]) > FLT_MAX) {
                set_err(err, errlen, "%s: %s (%s): dataset %s holds %g (element %zu), beyond float32 range", at->path,
                        at->layer, at->gpos, wname, dbuf[i], i);
                goto done;
            }
            out[i] = (float)dbuf[i];
        }
        if (check_finite(at, wname, out, n, err, errlen) < 0) goto done;
    }
    rc = 0;
done:
    free(dbuf);
    h5_close(type);
    h5_close(space);
    h5_close(d);
    return rc;
}

/* Look at every layer of layer_names and collect the conv and batch-norm
 * layers (counts in *nconv, *nbn; arrays sized names->n, allocated here).
 * Returns 0, or -1 with a message in err. */
static int collect_layers(hid_t root, const char *path, const strlist *names, wlayer **convs, size_t *nconv,
                          wlayer **bns, size_t *nbn, char *err, size_t errlen) {
    *convs = callocCheck(names->n ? names->n : 1, sizeof **convs);
    *bns = callocCheck(names->n ? names->n : 1, sizeof **bns);
    *nconv = *nbn = 0;
    strlist wn = {0};
    hid_t g = -1;
    int rc = -1;
    for (size_t i = 0; i < names->n; i++) {
        const char *ln = names->s[i];
        h5_close(g);
        g = -1;
        strlist_free(&wn);
        htri_t ex = *ln ? H5Lexists(root, ln, H5P_DEFAULT) : 0;
        if (ex < 0) {
            set_err(err, errlen, "%s: cannot look up layer '%s' (truncated or damaged file?)", path, ln);
            goto done;
        }
        if (ex == 0) {
            set_err(err, errlen, "%s: layer_names lists '%s' but the file has no group /%s", path, ln, ln);
            goto done;
        }
        if ((g = H5Gopen2(root, ln, H5P_DEFAULT)) < 0) {
            set_err(err, errlen, "%s: /%s is not a readable group (truncated or damaged file?)", path, ln);
            goto done;
        }
        char why[300];
        int r = read_strlist(g, "weight_names", &wn, why, sizeof why);
        if (r < 0) {
            set_err(err, errlen, "%s: layer %s: %s", path, ln, why);
            goto done;
        }
        /* Classify by the weights it holds. */
        int kernel = -1, beta = -1, mean = -1, var = -1, gamma = -1;
        for (size_t j = 0; j < wn.n; j++) {
            const char *w = wn.s[j];
            if (weight_is(w, "kernel")) kernel = (int)j;
            else if (weight_is(w, "beta")) beta = (int)j;
            else if (weight_is(w, "moving_mean")) mean = (int)j;
            else if (weight_is(w, "moving_variance")) var = (int)j;
            else if (weight_is(w, "gamma")) gamma = (int)j;
        }
        if (wn.n == 1 && kernel == 0) {
            wlayer *c = &(*convs)[(*nconv)++];
            c->name = ln;
            c->pos = i;
            c->w[0] = strdupCheck(wn.s[0]);
        } else if (beta >= 0 && mean >= 0 && var >= 0) {
            wlayer *b = &(*bns)[(*nbn)++];
            b->name = ln;
            b->pos = i;
            b->w[0] = strdupCheck(wn.s[beta]);
            b->w[1] = strdupCheck(wn.s[mean]);
            b->w[2] = strdupCheck(wn.s[var]);
            b->w[3] = gamma >= 0 ? strdupCheck(wn.s[gamma]) : NULL;
        }
    }
    rc = 0;
done:
    strlist_free(&wn);
    h5_close(g);
    return rc;
}

/* Read conv k's kernel and its batch norm into c (allocated with the graph's
 * shapes). Returns 0, or -1 with a message in err. */
static int read_conv(hid_t root, const char *path, int k, const wlayer *cl, const wlayer *bl, bn_conv_raw *c, char *err,
                     size_t errlen) {
    const bn_graph *gr = bn_inception_v3();
    const char *gpos = gr->layers[gr->conv_layer[k]].name;
    hid_t g = -1;
    int rc = -1;
    hsize_t kdims[4] = {(hsize_t)c->kh, (hsize_t)c->kw, (hsize_t)c->cin, (hsize_t)c->cout};
    hsize_t vdim[1] = {(hsize_t)c->cout};

    where_t at = {path, cl->name, gpos};
    if ((g = H5Gopen2(root, cl->name, H5P_DEFAULT)) < 0) {
        set_err(err, errlen, "%s: cannot open group /%s (truncated or damaged file?)", path, cl->name);
        goto done;
    }
    if (read_array(g, &at, cl->w[0], "kernel", 4, kdims, c->kernel, err, errlen) < 0) goto done;
    H5Gclose(g);
    g = -1;

    at.layer = bl->name;
    if ((g = H5Gopen2(root, bl->name, H5P_DEFAULT)) < 0) {
        set_err(err, errlen, "%s: cannot open group /%s (truncated or damaged file?)", path, bl->name);
        goto done;
    }
    if (read_array(g, &at, bl->w[0], "beta", 1, vdim, c->beta, err, errlen) < 0) goto done;
    if (read_array(g, &at, bl->w[1], "moving_mean", 1, vdim, c->mean, err, errlen) < 0) goto done;
    if (read_array(g, &at, bl->w[2], "moving_variance", 1, vdim, c->var, err, errlen) < 0) goto done;
    if (bl->w[3]) {
        c->gamma = callocCheck((size_t)c->cout, sizeof *c->gamma);
        if (read_array(g, &at, bl->w[3], "gamma", 1, vdim, c->gamma, err, errlen) < 0) goto done;
    }
    for (int o = 0; o < c->cout; o++) {
        if (c->var[o] < 0) {
            set_err(err, errlen, "%s: %s (%s): dataset %s has a negative variance (%g at channel %d)", path, bl->name, gpos,
                    bl->w[2], (double)c->var[o], o);
            goto done;
        }
    }
    rc = 0;
done:
    h5_close(g);
    return rc;
}

/* H5Ewalk2 callback: sets *(int *)data when the error stack holds a failure
 * to lock the file. */
static herr_t walk_lock(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
#ifdef H5E_CANTLOCKFILE
    if (e->min_num == H5E_CANTLOCKFILE) *(int *)data = 1;
#else
    (void)e;
    (void)data;
#endif
    return 0;
}

/* Open path read-only after checking it is a readable HDF5 file. Returns the
 * file id, or -1 with a message in err. */
static hid_t open_checked(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int serr = fstat(fd, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    close(fd);
    if (serr) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(serr));
        return -1;
    }
    if (st.st_size == 0 || H5Fis_hdf5(path) <= 0) {
        set_err(err, errlen, "%s: not an HDF5 file", path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        int lock = 0;
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_lock, &lock);
        if (lock)
            set_err(err, errlen,
                    "%s: cannot lock the file for reading (is another process writing it? on a file system without "
                    "locking, set HDF5_USE_FILE_LOCKING=FALSE)",
                    path);
        else
            set_err(err, errlen, "%s: cannot open as HDF5 (truncated or damaged?)", path);
        return -1;
    }
    return f;
}

int bn_weights_read(const char *path, bn_raw_params *p, char *err, size_t errlen) {
    h5_quiet_t q;
    h5_quiet(&q);
    hid_t f = -1, root = -1;
    strlist names = {0};
    wlayer *convs = NULL, *bns = NULL;
    size_t nconv = 0, nbn = 0;
    int rc = -1;
    char why[300];

    memset(p, 0, sizeof *p); /* the parameters (88 MB) are allocated once the layout is known good */
    bn_h5_guard_begin(path, "weights");
    if ((f = open_checked(path, err, errlen)) < 0) goto done;

    /* Weights files keep layer_names at the root; whole-model files
     * (model.save) under /model_weights. */
    if ((root = H5Gopen2(f, "/", H5P_DEFAULT)) < 0) {
        set_err(err, errlen, "%s: cannot open the root group (truncated or damaged?)", path);
        goto done;
    }
    int r = read_strlist(root, "layer_names", &names, why, sizeof why);
    if (r == 0 && H5Lexists(f, "model_weights", H5P_DEFAULT) > 0) {
        H5Gclose(root);
        if ((root = H5Gopen2(f, "model_weights", H5P_DEFAULT)) < 0) {
            set_err(err, errlen, "%s: cannot open group /model_weights (truncated or damaged?)", path);
            goto done;
        }
        r = read_strlist(root, "layer_names", &names, why, sizeof why);
    }
    if (r < 0) {
        set_err(err, errlen, "%s: %s", path, why);
        goto done;
    }
    if (r == 0) {
        set_err(err, errlen, "%s: no layer_names attribute: not a Keras weights file", path);
        goto done;
    }
    char backend[64];
    if (read_string_attr(root, "backend", backend, sizeof backend, why, sizeof why) < 0) {
        set_err(err, errlen, "%s: %s", path, why);
        goto done;
    }
    if (strcmp(backend, "theano") == 0) {
        set_err(err, errlen, "%s: saved with the theano backend (flipped kernels); use the tensorflow-ordered file", path);
        goto done;
    }

    if (collect_layers(root, path, &names, &convs, &nconv, &bns, &nbn, err, errlen) < 0) goto done;
    if (nconv != BN_NCONV) {
        set_err(err, errlen, "%s: expected %d convolutions, found %zu (layers with a single kernel weight)", path, BN_NCONV,
                nconv);
        goto done;
    }
    if (nbn != BN_NCONV) {
        set_err(err, errlen, "%s: expected %d batch normalizations, found %zu (layers with beta, moving_mean and "
                "moving_variance)", path, BN_NCONV, nbn);
        goto done;
    }
    order_layers(convs, nconv, K_CONV);
    order_layers(bns, nbn, K_BN);
    bn_raw_alloc(p);
    for (int k = 0; k < BN_NCONV; k++)
        if (read_conv(root, path, k, &convs[k], &bns[k], &p->conv[k], err, errlen) < 0) goto done;
    rc = 0;
done:
    wlayers_free(convs, nconv);
    wlayers_free(bns, nbn);
    strlist_free(&names);
    h5_close(root);
    if (f >= 0 && H5Fclose(f) < 0 && rc == 0) {
        set_err(err, errlen, "%s: error closing the file", path);
        rc = -1;
    }
    if (rc < 0) bn_raw_free(p);
    bn_h5_guard_end();
    h5_restore(&q);
    return rc;
}

int bn_weights_load(const char *path, bn_model *m, char *err, size_t errlen) {
    bn_raw_params raw;
    memset(m, 0, sizeof *m);
    if (bn_weights_read(path, &raw, err, errlen) < 0) return -1;
    bn_model_fold(&raw, m);
    bn_raw_free(&raw);
    if (bn_file_sha256(path, m->sha256, err, errlen) < 0) {
        bn_model_free(m);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ writing */

/* What a layer of the written file is. */
typedef enum { L_NONE, L_CONV, L_BN } lkind;

/* One layer of the written file, in layer_names order. */
typedef struct {
    char name[48]; /* layer name */
    lkind kind;    /* conv, batch norm, or weightless */
    int k;         /* conv index for L_CONV and L_BN */
} wentry;

/* Append a layer to the plan (at most PLAN_MAX entries). */
static void plan_add(wentry *e, int *n, lkind kind, int k, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void plan_add(wentry *e, int *n, lkind kind, int k, const char *fmt, ...) {
    if (*n >= PLAN_MAX) bn_fatal_at(__FILE__, __LINE__, NULL, "weights writer: more than %d layers", PLAN_MAX);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e[*n].name, sizeof e[*n].name, fmt, ap);
    va_end(ap);
    e[*n].kind = kind;
    e[*n].k = k;
    (*n)++;
}

/* The name of the conv or batch norm number first_index + k: Keras'
 * "base_N", or plain "base" for number 0 (tf.keras' first layer). */
static void numbered(char *buf, size_t len, const char *base, int num) {
    if (num == 0) snprintf(buf, len, "%s", base);
    else snprintf(buf, len, "%s_%d", base, num);
}

/* The graph block a layer belongs to ("mixed4" for "mixed4/branch1x1"), into
 * buf; "" for stem layers. */
static void block_of(const char *lname, char *buf, size_t len) {
    const char *s = strchr(lname, '/');
    size_t n = s ? (size_t)(s - lname) : 0;
    if (n >= len) n = len - 1;
    memcpy(buf, lname, n);
    buf[n] = '\0';
}

/* The layers of the file in Keras' style: input, then per conv its conv,
 * batch norm and activation, with the pools and concatenations between.
 * Returns the count (e holds PLAN_MAX entries). */
static int make_plan(wentry *e, int first_index) {
    const bn_graph *g = bn_inception_v3();
    int n = 0, nmax = 0, navg = 0;
    char buf[48];
    plan_add(e, &n, L_NONE, -1, "input_1");
    for (int i = 0; i < g->nlayers; i++) {
        const bn_layer *l = &g->layers[i];
        if (l->op == BN_OP_CONV) {
            int num = first_index + l->conv;
            numbered(buf, sizeof buf, K_CONV, num);
            plan_add(e, &n, L_CONV, l->conv, "%s", buf);
            numbered(buf, sizeof buf, K_BN, num);
            plan_add(e, &n, L_BN, l->conv, "%s", buf);
            numbered(buf, sizeof buf, K_ACT, num);
            plan_add(e, &n, L_NONE, -1, "%s", buf);
        } else if (l->op == BN_OP_MAXPOOL) {
            plan_add(e, &n, L_NONE, -1, "max_pooling2d_%d", ++nmax);
        } else if (l->op == BN_OP_AVGPOOL) {
            plan_add(e, &n, L_NONE, -1, "average_pooling2d_%d", ++navg);
        }
        /* The two inner concatenations of mixed9 and mixed10. */
        if (!strcmp(l->name, "mixed9/branch3x3_2b")) plan_add(e, &n, L_NONE, -1, "mixed9_0");
        if (!strcmp(l->name, "mixed9/branch3x3dbl_3b")) plan_add(e, &n, L_NONE, -1, "concatenate_1");
        if (!strcmp(l->name, "mixed10/branch3x3_2b")) plan_add(e, &n, L_NONE, -1, "mixed9_1");
        if (!strcmp(l->name, "mixed10/branch3x3dbl_3b")) plan_add(e, &n, L_NONE, -1, "concatenate_2");
        /* A block's concatenation after its last layer. */
        char cur[48], next[48];
        block_of(l->name, cur, sizeof cur);
        if (i + 1 < g->nlayers) block_of(g->layers[i + 1].name, next, sizeof next);
        else next[0] = '\0';
        if (cur[0] && strcmp(cur, next) != 0) plan_add(e, &n, L_NONE, -1, "%s", cur);
    }
    return n;
}

/* Property lists shared by every object the writer creates. */
typedef struct {
    hid_t gcpl;  /* group creation: no timestamps */
    hid_t dcpl;  /* dataset creation: no timestamps */
} wctx;

/* Write attribute name on loc as a fixed-length NULLPAD ASCII string array
 * (h5py's numpy 'S' dtype) of n strings; n == 0 writes h5py's empty list,
 * a (0,) float64 array; scalar != 0 writes one string in a scalar dataspace. */
static int write_str_attr(hid_t loc, const char *name, const char *const *s, size_t n, int scalar) {
    hid_t type = -1, space = -1, a = -1;
    char *buf = NULL;
    int rc = -1;
    if (n == 0) {
        hsize_t zero[1] = {0};
        if ((space = H5Screate_simple(1, zero, NULL)) < 0) goto done;
        if ((a = H5Acreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
        rc = 0;
        goto done;
    }
    size_t w = 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(s[i]) > w) w = strlen(s[i]);
    buf = callocCheck(n, w);
    for (size_t i = 0; i < n; i++) memcpy(buf + i * w, s[i], strlen(s[i]));
    hsize_t dims[1] = {(hsize_t)n};
    if ((type = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(type, w) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(type, H5T_CSET_ASCII) < 0)
        goto done;
    if ((space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL)) < 0) goto done;
    if ((a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(a, type, buf) < 0) goto done;
    rc = 0;
done:
    free(buf);
    h5_close(a);
    h5_close(space);
    h5_close(type);
    return rc;
}

/* Create dataset name (float32 LE, shape dims[0..rank-1]) in loc from data. */
static int write_f32(const wctx *cx, hid_t loc, const char *name, int rank, const hsize_t *dims, const float *data) {
    hid_t space = -1, d = -1;
    int rc = -1;
    if ((space = H5Screate_simple(rank, dims, NULL)) < 0) goto done;
    if ((d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, cx->dcpl, H5P_DEFAULT)) < 0) goto done;
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) goto done;
    rc = 0;
done:
    h5_close(d);
    h5_close(space);
    return rc;
}

/* Write one layer: its group, weight_names, and the datasets at
 * /<layer>/<layer>/<weight>:0. Returns 0 or -1 (what failed in why). */
static int write_layer(const wctx *cx, hid_t f, const wentry *e, const bn_conv_raw *c, char *why, size_t whylen) {
    hid_t g = -1, sub = -1;
    int rc = -1;
    const char *wshort[4];  /* weight names without the layer prefix */
    const float *wdata[4];  /* their data */
    int wrank[4];           /* their ranks */
    int nw = 0;
    if (e->kind == L_CONV) {
        wshort[nw] = "kernel:0", wdata[nw] = c->kernel, wrank[nw++] = 4;
    } else if (e->kind == L_BN) {
        if (c->gamma) wshort[nw] = "gamma:0", wdata[nw] = c->gamma, wrank[nw++] = 1;
        wshort[nw] = "beta:0", wdata[nw] = c->beta, wrank[nw++] = 1;
        wshort[nw] = "moving_mean:0", wdata[nw] = c->mean, wrank[nw++] = 1;
        wshort[nw] = "moving_variance:0", wdata[nw] = c->var, wrank[nw++] = 1;
    }
    char full[4][96];
    const char *fullp[4];
    for (int i = 0; i < nw; i++) {
        snprintf(full[i], sizeof full[i], "%s/%s", e->name, wshort[i]);
        fullp[i] = full[i];
    }
    if ((g = H5Gcreate2(f, e->name, H5P_DEFAULT, cx->gcpl, H5P_DEFAULT)) < 0) {
        set_err(why, whylen, "cannot create group /%s", e->name);
        goto done;
    }
    if (write_str_attr(g, "weight_names", fullp, (size_t)nw, 0) < 0) {
        set_err(why, whylen, "cannot write /%s's weight_names", e->name);
        goto done;
    }
    if (nw == 0) {
        rc = 0;
        goto done;
    }
    if ((sub = H5Gcreate2(g, e->name, H5P_DEFAULT, cx->gcpl, H5P_DEFAULT)) < 0) {
        set_err(why, whylen, "cannot create group /%s/%s", e->name, e->name);
        goto done;
    }
    for (int i = 0; i < nw; i++) {
        hsize_t dims[4] = {(hsize_t)c->kh, (hsize_t)c->kw, (hsize_t)c->cin, (hsize_t)c->cout};
        const hsize_t *dp = wrank[i] == 4 ? dims : dims + 3;
        if (write_f32(cx, sub, wshort[i], wrank[i], dp, wdata[i]) < 0) {
            set_err(why, whylen, "cannot write dataset /%s/%s", e->name, full[i]);
            goto done;
        }
    }
    rc = 0;
done:
    h5_close(sub);
    h5_close(g);
    return rc;
}

int bn_weights_write(const char *path, const bn_raw_params *p, int first_index, char *err, size_t errlen) {
    if (first_index < 0 || first_index > 100000000) {
        set_err(err, errlen, "%s: first layer number %d out of range (0..100000000)", path, first_index);
        return -1;
    }
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_conv_raw *c = &p->conv[k];
        if (c->kh <= 0 || c->kw <= 0 || c->cin <= 0 || c->cout <= 0 || !c->kernel || !c->beta || !c->mean || !c->var) {
            set_err(err, errlen, "%s: conv %d has no data or an empty shape", path, k);
            return -1;
        }
    }
    h5_quiet_t q;
    h5_quiet(&q);
    wctx cx = {-1, -1};
    hid_t fapl = -1, f = -1;
    wentry *plan = callocCheck(PLAN_MAX, sizeof *plan);
    const char **names = NULL;
    int created = 0, rc = -1;
    char why[300] = "";

    int n = make_plan(plan, first_index);
    names = callocCheck((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) names[i] = plan[i].name;

    /* Same bytes every run: fixed format bounds (readable by HDF5 1.8, as
     * Keras-era files are) and no object timestamps. */
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18) < 0 ||
        (cx.gcpl = H5Pcreate(H5P_GROUP_CREATE)) < 0 || H5Pset_obj_track_times(cx.gcpl, 0) < 0 ||
        (cx.dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_obj_track_times(cx.dcpl, 0) < 0) {
        set_err(err, errlen, "%s: cannot set up HDF5 property lists", path);
        goto done;
    }
    if ((f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
        set_err(err, errlen, "%s: cannot create the file (%s)", path,
                access(path, F_OK) == 0 ? "exists and cannot be replaced, or is locked" : "check the folder exists and is writable");
        goto done;
    }
    created = 1;
    const char *backend = K_BACKEND, *version = K_VERSION;
    if (write_str_attr(f, "layer_names", names, (size_t)n, 0) < 0 || write_str_attr(f, "backend", &backend, 1, 1) < 0 ||
        write_str_attr(f, "keras_version", &version, 1, 1) < 0) {
        set_err(err, errlen, "%s: cannot write the root attributes", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const bn_conv_raw *c = plan[i].kind == L_NONE ? NULL : &p->conv[plan[i].k];
        if (write_layer(&cx, f, &plan[i], c, why, sizeof why) < 0) {
            set_err(err, errlen, "%s: %s", path, why);
            goto done;
        }
    }
    herr_t cr = H5Fclose(f);
    f = -1;
    if (cr < 0) {
        set_err(err, errlen, "%s: error closing the file (disk full?)", path);
        goto done;
    }
    rc = 0;
done:
    h5_close(f);
    h5_close(cx.dcpl);
    h5_close(cx.gcpl);
    h5_close(fapl);
    free(names);
    free(plan);
    if (rc < 0 && created) unlink(path);
    h5_restore(&q);
    return rc;
}

/* ------------------------------------------------------------ hashing */

int bn_file_sha256(const char *path, char out[65], char *err, size_t errlen) {
    out[0] = '\0';
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint8_t *buf = mallocCheck(HASH_CHUNK);
    int rc = -1;
    for (;;) {
        size_t got = fread(buf, 1, HASH_CHUNK, fp);
        if (got > 0) sha256_update(&ctx, got, buf);
        if (got < HASH_CHUNK) {
            if (ferror(fp)) {
                set_err(err, errlen, "%s: read error while hashing: %s", path, strerror(errno));
                goto done;
            }
            break;
        }
    }
    uint8_t d[SHA256_DIGEST_SIZE];
#if NETTLE_VERSION_MAJOR >= 4
    sha256_digest(&ctx, d);
#else
    sha256_digest(&ctx, sizeof d, d);
#endif
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    rc = 0;
done:
    free(buf);
    fclose(fp);
    return rc;
}
