/* h5util.c: small HDF5 helpers shared by the files bneck reads and writes
 * (io/store.c, io/featread.c, io/classifier.c): one-line error messages with
 * HDF5's innermost reason, error agreement between ranks, and scalar
 * attributes. See h5util.h. */
#include "config.h"

#include "io/h5util.h"

#include "pipeline/log.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ messages */

/* Format into msg (BN_H5_MSG_LEN) unless it already holds a message: the first
 * failure is the one worth reporting. */
void bn_h5_set_msg(char *msg, const char *fmt, ...) {
    if (msg[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, BN_H5_MSG_LEN, fmt, ap);
    va_end(ap);
}

/* H5Ewalk2 callback: keep the description of the innermost error that has one. */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    char *out = data;
    if (e->desc && e->desc[0]) snprintf(out, 256, "%s", e->desc);
    return 0;
}

/* Like bn_h5_set_msg, then append the innermost message of HDF5's error stack (the
 * one left by the call that just failed), when there is one. */
void bn_h5_set_h5msg(char *msg, const char *fmt, ...) {
    if (msg[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, BN_H5_MSG_LEN, fmt, ap);
    va_end(ap);
    char detail[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, detail);
    if (detail[0]) {
        size_t len = strlen(msg);
        snprintf(msg + len, BN_H5_MSG_LEN - len, " [HDF5: %s]", detail);
    }
}

/* Copy msg into the caller's err buffer (which may be NULL or 0 bytes),
 * starting it with "path: " unless it already names the file. */
void bn_h5_put_err(char *err, size_t errlen, const char *path, const char *msg) {
    if (!err || !errlen) return;
    size_t pl = path ? strlen(path) : 0;
    if (pl && strncmp(msg, path, pl) != 0)
        snprintf(err, errlen, "%s: %s", path, msg);
    else
        snprintf(err, errlen, "%s", msg);
}

/* Collective over comm. Agree on whether every rank succeeded (ok != 0).
 * Returns 0 when all did; else -1 on every rank, with msg (BN_H5_MSG_LEN) replaced
 * by the message of the lowest failing rank (a generic one if it had none). */
int bn_h5_agree(MPI_Comm comm, int ok, char *msg) {
    int rank = 0;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    int mine = ok ? INT_MAX : rank, first = INT_MAX;
    mpiCheck(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm));
    if (first == INT_MAX) return 0;
    char buf[BN_H5_MSG_LEN];
    if (rank == first) {
        if (msg[0])
            snprintf(buf, sizeof buf, "%s", msg);
        else
            snprintf(buf, sizeof buf, "rank %d failed without a reason", rank);
    }
    mpiCheck(MPI_Bcast(buf, BN_H5_MSG_LEN, MPI_CHAR, first, comm));
    buf[BN_H5_MSG_LEN - 1] = 0;
    memcpy(msg, buf, BN_H5_MSG_LEN);
    return -1;
}


/* Save HDF5's automatic error printing into q and switch it off. */
void bn_h5_quiet_on(bn_h5_quiet *q) {
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* Restore what bn_h5_quiet_on saved. */
void bn_h5_quiet_off(const bn_h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* ------------------------------------------------------------ small helpers */

/* Close an HDF5 identifier of any kind if it is open, and mark it closed. */
void bn_h5_close(hid_t *id) {
    if (*id < 0) return;
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: break;
    }
    *id = -1;
}

/* A fixed-length UTF-8 C string type of len bytes (at least 1) with the given padding. */
hid_t bn_h5_str_type(size_t len, H5T_str_t pad) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, len ? len : 1) < 0 || H5Tset_strpad(t, pad) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Create scalar attribute name on loc holding value (a NUL-terminated fixed
 * string of strlen+1 bytes). Returns 0 or -1 with msg set. */
int bn_h5_attr_put_str(hid_t loc, const char *name, const char *value, char *msg) {
    int rc = -1;
    hid_t sp = -1, t = -1, a = -1;
    if ((sp = H5Screate(H5S_SCALAR)) < 0 || (t = bn_h5_str_type(strlen(value) + 1, H5T_STR_NULLTERM)) < 0 ||
        (a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 || H5Awrite(a, t, value) < 0) {
        bn_h5_set_h5msg(msg, "cannot write attribute '%s'", name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&a);
    bn_h5_close(&t);
    bn_h5_close(&sp);
    return rc;
}

/* Create (create != 0) or overwrite scalar integer attribute name on loc,
 * stored as file type ftype. Returns 0 or -1 with msg set. */
int bn_h5_attr_put_int(hid_t loc, const char *name, hid_t ftype, long long value, int create, char *msg) {
    int rc = -1;
    hid_t sp = -1, a = -1;
    if (create) {
        if ((sp = H5Screate(H5S_SCALAR)) < 0 || (a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
            bn_h5_set_h5msg(msg, "cannot create attribute '%s'", name);
            goto done;
        }
    } else if ((a = H5Aopen(loc, name, H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "cannot open attribute '%s'", name);
        goto done;
    }
    if (H5Awrite(a, H5T_NATIVE_LLONG, &value) < 0) {
        bn_h5_set_h5msg(msg, "cannot write attribute '%s'", name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&a);
    bn_h5_close(&sp);
    return rc;
}

/* Open attribute name of loc with its type and space. Returns 0 (all three
 * open); 1 when it does not exist (no message); -1 with msg set (nothing
 * left open). */
static int attr_open(hid_t loc, const char *name, hid_t *a, hid_t *ft, hid_t *sp, char *msg) {
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) {
        bn_h5_set_h5msg(msg, "cannot look for attribute '%s'", name);
        return -1;
    }
    if (ex == 0) return 1;
    if ((*a = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (*ft = H5Aget_type(*a)) < 0 || (*sp = H5Aget_space(*a)) < 0) {
        bn_h5_set_h5msg(msg, "cannot open attribute '%s'", name);
        bn_h5_close(sp);
        bn_h5_close(ft);
        bn_h5_close(a);
        return -1;
    }
    return 0;
}

/* Read string attribute name of loc (fixed-length or variable-length, as
 * other tools may write it) into a new string *out. Returns 0; 1 when the
 * attribute is missing or not a scalar string (no message); -1 on an HDF5
 * failure with msg set. */
int bn_h5_attr_get_str(hid_t loc, const char *name, char **out, char *msg) {
    int rc = -1;
    hid_t a = -1, ft = -1, mt = -1, sp = -1;
    *out = NULL;
    int r = attr_open(loc, name, &a, &ft, &sp, msg);
    if (r != 0) return r;
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        rc = 1;
        goto done;
    }
    /* Read in the file's own string type: HDF5 does not convert between
     * character sets. */
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0 || (mt = H5Tcopy(ft)) < 0) {
        bn_h5_set_h5msg(msg, "cannot read attribute '%s'", name);
        goto done;
    }
    if (vl) {
        char *s = NULL;
        if (H5Aread(a, mt, &s) < 0) {
            bn_h5_set_h5msg(msg, "cannot read attribute '%s'", name);
            goto done;
        }
        *out = strdupCheck(s ? s : "");
        H5free_memory(s);
    } else {
        size_t len = H5Tget_size(ft);
        char *s = callocCheck(len + 1, 1);
        if (len == 0 || H5Aread(a, mt, s) < 0) {
            free(s);
            bn_h5_set_h5msg(msg, "cannot read attribute '%s'", name);
            goto done;
        }
        *out = s;
    }
    rc = 0;
done:
    bn_h5_close(&mt);
    bn_h5_close(&sp);
    bn_h5_close(&ft);
    bn_h5_close(&a);
    return rc;
}

/* Read scalar numeric attribute name of loc as memory type mt into v: an
 * integer attribute, or (allow_float) a float one too. Returns 0; 1 when it
 * is missing or of another kind (no message); -1 with msg set. */
static int attr_get_num(hid_t loc, const char *name, hid_t mt, int allow_float, void *v, char *msg) {
    int rc = -1;
    hid_t a = -1, ft = -1, sp = -1;
    int r = attr_open(loc, name, &a, &ft, &sp, msg);
    if (r != 0) return r;
    H5T_class_t cl = H5Tget_class(ft);
    if ((cl != H5T_INTEGER && !(allow_float && cl == H5T_FLOAT)) || H5Sget_simple_extent_npoints(sp) != 1) {
        rc = 1;
        goto done;
    }
    if (H5Aread(a, mt, v) < 0) {
        bn_h5_set_h5msg(msg, "cannot read attribute '%s'", name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&sp);
    bn_h5_close(&ft);
    bn_h5_close(&a);
    return rc;
}

const char *bn_h5_attr_why(hid_t loc, const char *name, int want_str) {
    if (H5Aexists(loc, name) <= 0) return "missing";
    return want_str ? "not a single text value" : "not a single integer";
}

int bn_h5_attr_get_int(hid_t loc, const char *name, long long *v, char *msg) {
    return attr_get_num(loc, name, H5T_NATIVE_LLONG, 0, v, msg);
}

int bn_h5_attr_get_double(hid_t loc, const char *name, double *v, char *msg) {
    return attr_get_num(loc, name, H5T_NATIVE_DOUBLE, 1, v, msg);
}

int bn_h5_attr_put_double(hid_t loc, const char *name, double v, char *msg) {
    int rc = -1;
    hid_t sp = -1, a = -1;
    if ((sp = H5Screate(H5S_SCALAR)) < 0 || (a = H5Acreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, H5T_NATIVE_DOUBLE, &v) < 0)
        bn_h5_set_h5msg(msg, "cannot write attribute '%s'", name);
    else
        rc = 0;
    bn_h5_close(&a);
    bn_h5_close(&sp);
    return rc;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BN_GUARD_OFF 1
#endif
#endif
#if defined(BN_SANITIZERS) || defined(__SANITIZE_ADDRESS__)
#define BN_GUARD_OFF 1
#endif

static char guard_msg[1024];         /* the line the handler writes, made at begin */
static size_t guard_len;             /* its length */
static struct sigaction guard_old[2]; /* the SIGSEGV and SIGBUS handlers before begin */
static int guard_on;                 /* between begin and end */

static char guard_slow[1024];         /* the line for a read that takes too long */
static size_t guard_slow_len;         /* its length */
static struct sigaction guard_old_alrm; /* the SIGALRM handler before begin */
static char guard_stack[65536];       /* the crash handler's own stack */
static stack_t guard_old_stack;       /* the alternate stack before begin */
static int guard_alt;                 /* guard_stack is installed */

static void guard_handler(int sig) {
    ssize_t w = write(2, guard_msg, guard_len); /* async-signal-safe; nothing to do if it fails */
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void guard_alarm(int sig) {
    (void)sig;
    ssize_t w = write(2, guard_slow, guard_slow_len);
    (void)w;
    _exit(1);
}

void bn_h5_guard_begin(const char *path, const char *what) {
#ifndef BN_GUARD_OFF
    if (guard_on) return;
    int n = snprintf(guard_msg, sizeof guard_msg,
                     "[rank %d] error: %.400s: the HDF5 library crashed reading this %s file, which is damaged in a "
                     "way HDF5 does not check\n[rank %d]   hint: get a good copy of the file (h5dump -H shows "
                     "what HDF5 can still read)\n",
                     bn_log_rank(), path ? path : "?", what, bn_log_rank());
    guard_len = n < 0 ? 0 : (size_t)n < sizeof guard_msg ? (size_t)n : sizeof guard_msg - 1;
    /* A time limit too: HDF5 can also loop on a damaged heap. A good file
     * reads in about a second; BNECK_READ_TIMEOUT (seconds, 0 for none)
     * changes the limit of 300 s. */
    const char *ev = getenv("BNECK_READ_TIMEOUT");
    long limit = 300;
    if (ev && *ev) {
        char *end = NULL;
        errno = 0;
        long v = strtol(ev, &end, 10);
        if (errno == 0 && end && *end == 0 && v >= 0) limit = v > 86400L * 365 ? 86400L * 365 : v;
        else bn_warn("BNECK_READ_TIMEOUT='%.40s' is not a number of seconds; using %ld", ev, limit);
    }
    n = snprintf(guard_slow, sizeof guard_slow,
                 "[rank %d] error: %.400s: reading this %s file took over %ld s: the HDF5 library is looping on a "
                 "damaged structure in it\n[rank %d]   hint: get a good copy of the file (on a very slow file system, "
                 "raise the limit with BNECK_READ_TIMEOUT=SECONDS)\n",
                 bn_log_rank(), path ? path : "?", what, limit, bn_log_rank());
    guard_slow_len = n < 0 ? 0 : (size_t)n < sizeof guard_slow ? (size_t)n : sizeof guard_slow - 1;
    /* The crash handler runs on a stack of its own, so that a stack
     * overflow (deep recursion through a damaged structure) still gets
     * its message out. */
    stack_t alt = {.ss_sp = guard_stack, .ss_size = sizeof guard_stack, .ss_flags = 0};
    guard_alt = sigaltstack(&alt, &guard_old_stack) == 0;
    struct sigaction sa, sb;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = guard_handler;
    sa.sa_flags = guard_alt ? SA_ONSTACK : 0;
    sigemptyset(&sa.sa_mask);
    memset(&sb, 0, sizeof sb);
    sb.sa_handler = guard_alarm;
    sigemptyset(&sb.sa_mask);
    int got = 0; /* handlers installed so far, undone on a failure */
    if (sigaction(SIGSEGV, &sa, &guard_old[0]) == 0 && ++got && sigaction(SIGBUS, &sa, &guard_old[1]) == 0 && ++got &&
        sigaction(SIGALRM, &sb, &guard_old_alrm) == 0) {
        guard_on = 1;
        if (limit > 0) alarm((unsigned)limit);
    } else {
        if (got > 1) sigaction(SIGBUS, &guard_old[1], NULL);
        if (got > 0) sigaction(SIGSEGV, &guard_old[0], NULL);
        if (guard_alt) sigaltstack(&guard_old_stack, NULL);
        guard_alt = 0;
    }
#else
    (void)path;
    (void)what;
#endif
}

void bn_h5_guard_end(void) {
#ifndef BN_GUARD_OFF
    if (!guard_on) return;
    alarm(0);
    sigaction(SIGALRM, &guard_old_alrm, NULL);
    sigaction(SIGSEGV, &guard_old[0], NULL);
    sigaction(SIGBUS, &guard_old[1], NULL);
    if (guard_alt) sigaltstack(&guard_old_stack, NULL);
    guard_alt = 0;
    guard_on = 0;
#endif
}

int bn_h5_storage_short(hid_t d, unsigned long long npoints, unsigned long long *have, unsigned long long *need,
                        char *msg) {
    hid_t t = H5Dget_type(d), dcpl = H5Dget_create_plist(d);
    int rc = -1;
    size_t esz = t >= 0 ? H5Tget_size(t) : 0;
    int nf = dcpl >= 0 ? H5Pget_nfilters(dcpl) : -1;
    if (t < 0 || dcpl < 0 || esz == 0 || nf < 0) {
        bn_h5_set_h5msg(msg, "cannot read a dataset's type or layout");
        goto done;
    }
    H5D_layout_t lay = H5Pget_layout(dcpl);
    int next = H5Pget_external_count(dcpl);
    if (lay == H5D_VIRTUAL || next > 0) { /* stored elsewhere: storage size says nothing */
        *have = *need = 0;
        rc = 0;
        goto done;
    }
    *have = (unsigned long long)H5Dget_storage_size(d);
    /* Saturate instead of overflowing: no file holds 2^64 bytes. */
    *need = npoints > ULLONG_MAX / esz ? ULLONG_MAX : npoints * esz;
    /* A filter may shrink a constant dataset more than a thousandfold: ask
     * only for a hundred-thousandth, which still refuses a shape that claims
     * terabytes and stores nothing. */
    unsigned long long floor = nf > 0 ? *need / 100000 : *need;
    rc = *have < floor;
done:
    bn_h5_close(&dcpl);
    bn_h5_close(&t);
    return rc;
}

int bn_h5_signature(const char *path, long long size) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int found = 0;
    for (long long off = 0; !found && off + 8 <= size; off = off ? 2 * off : 512) {
        unsigned char b[8];
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8) break;
        found = memcmp(b, sig, 8) == 0;
    }
    fclose(f);
    return found;
}

int bn_h5_write_whole(const char *path, bn_h5_fill_fn fill, const void *arg, char *msg) {
    int rc = -1;
    size_t plen = strlen(path) + sizeof ".partial";
    char *partial = mallocCheck(plen);
    snprintf(partial, plen, "%s.partial", path);
    hid_t fapl = -1, fcpl = -1, f = -1;
    if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0 ||
        (fcpl = H5Pcreate(H5P_FILE_CREATE)) < 0 || H5Pset_obj_track_times(fcpl, 0) < 0) {
        bn_h5_set_h5msg(msg, "cannot set up file access");
        goto done;
    }
    if ((f = H5Fcreate(partial, H5F_ACC_TRUNC, fcpl, fapl)) < 0) {
        bn_h5_set_h5msg(msg, "cannot create %s (check that the folder exists and is writable; on file systems "
                             "without locks, set HDF5_USE_FILE_LOCKING=FALSE)", partial);
        goto done;
    }
    if (fill(f, arg, msg)) goto done;
    hid_t fc = f;
    f = -1;
    if (H5Fclose(fc) < 0) {
        bn_h5_set_h5msg(msg, "cannot close %s (disk full?)", partial);
        goto done;
    }
    if (rename(partial, path) != 0) {
        bn_h5_set_msg(msg, "cannot rename %s to %s: %s", partial, path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&f);
    bn_h5_close(&fcpl);
    bn_h5_close(&fapl);
    if (rc) unlink(partial);
    free(partial);
    return rc;
}
