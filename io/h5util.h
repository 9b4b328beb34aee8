/* h5util.h: small HDF5 helpers shared by every file bneck reads or writes.
 *
 * Conventions: functions that can fail take msg, a buffer of BN_H5_MSG_LEN
 * bytes that keeps the first failure's one-line message (later ones are
 * dropped: the first is the one worth reporting). HDF5's own error printing
 * is switched off around each entry point with bn_h5_quiet_on/off, and the
 * innermost HDF5 reason is appended to messages instead.
 */
#ifndef BN_H5UTIL_H
#define BN_H5UTIL_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>

#define BN_H5_MSG_LEN 1024 /* bytes of an error message, as broadcast between ranks */

/* Format into msg unless it already holds a message. */
void bn_h5_set_msg(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like bn_h5_set_msg, then append " [HDF5: innermost reason]" when HDF5's
 * error stack has one (left by the call that just failed). */
void bn_h5_set_h5msg(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copy msg into err (may be NULL/0 bytes), prefixed by "path: " unless it
 * already starts with the path. */
void bn_h5_put_err(char *err, size_t errlen, const char *path, const char *msg);
/* Collective over comm: agree whether every rank succeeded (ok != 0).
 * Returns 0 when all did; else -1 on every rank with msg replaced by the
 * lowest failing rank's message. */
int bn_h5_agree(MPI_Comm comm, int ok, char *msg);

/* Saved HDF5 automatic error printing, restored on the way out of an entry point. */
typedef struct {
    H5E_auto2_t func; /* previous handler */
    void *data;       /* its client data */
} bn_h5_quiet;
void bn_h5_quiet_on(bn_h5_quiet *q);      /* save and switch off */
void bn_h5_quiet_off(const bn_h5_quiet *q); /* restore */

/* Does the file at path (size bytes long) carry the HDF5 signature, at
 * offset 0 or after a user block of 512, 1024, 2048, ... bytes? 1 yes, 0 no,
 * -1 when it cannot be opened (errno says why). */
int bn_h5_signature(const char *path, long long size);

/* Does dataset d store as many bytes as its shape needs? A damaged shape
 * (or one written but never filled) would otherwise have a reader allocate
 * what the shape claims. 0 when the storage is enough: at least npoints
 * elements of the file type, or a hundred-thousandth of that for a filtered
 * (compressed) dataset (virtual and external datasets are not checked); 1 when it is short, with the bytes it stores and
 * needs in *have and *need; -1 on an HDF5 failure (msg set). */
/* A crash guard around the reading of a file a user gave. HDF5 1.10 does
 * not check every structure it reads: a damaged global heap (the
 * variable-length strings of a Keras weights file) can make it crash with
 * SIGSEGV or SIGBUS. Between begin and end such a crash prints one line
 * that names path and what it is ("weights"), then ends the process by the
 * same signal; a read that takes longer than BNECK_READ_TIMEOUT seconds
 * (default 300; HDF5 can loop on such a heap too) prints a line and exits
 * with status 1. Not nested. In sanitizer and fuzzer builds it does nothing,
 * so that their own reports stay whole. */
void bn_h5_guard_begin(const char *path, const char *what);
void bn_h5_guard_end(void);

int bn_h5_storage_short(hid_t d, unsigned long long npoints, unsigned long long *have, unsigned long long *need,
                        char *msg);

/* Write a whole file so that path never holds half of one: create
 * "path.partial" (HDF5 1.8 format, no object times, so equal contents give
 * equal bytes), let fill(f, arg, msg) write the contents, close it and
 * rename it over path. Returns 0, or -1 with msg set (the first failure)
 * and the partial file removed. The caller switches HDF5 printing off. */
typedef int (*bn_h5_fill_fn)(hid_t f, const void *arg, char *msg);
int bn_h5_write_whole(const char *path, bn_h5_fill_fn fill, const void *arg, char *msg);

/* Close an identifier of any kind if open (>= 0), and set it to -1. */
void bn_h5_close(hid_t *id);
/* A fixed-length UTF-8 string type of len bytes (at least 1). -1 on failure. */
hid_t bn_h5_str_type(size_t len, H5T_str_t pad);

/* Scalar attributes. put_*: 0 or -1 with msg set. put_int creates the
 * attribute with file type ftype (create != 0) or overwrites it. get_*: 0;
 * 1 when missing or of another kind (no message); -1 with msg set. get_str
 * returns a new string (fixed or variable length in the file). */
int bn_h5_attr_put_str(hid_t loc, const char *name, const char *value, char *msg);
int bn_h5_attr_put_int(hid_t loc, const char *name, hid_t ftype, long long value, int create, char *msg);
int bn_h5_attr_get_str(hid_t loc, const char *name, char **out, char *msg);
int bn_h5_attr_get_int(hid_t loc, const char *name, long long *v, char *msg);
/* Why a get_* call returned 1: "missing" when loc has no attribute name,
 * else "not a single text value" (want_str) or "not a single integer". */
const char *bn_h5_attr_why(hid_t loc, const char *name, int want_str);
/* Float64 attributes: get_double also takes an integer attribute. */
int bn_h5_attr_get_double(hid_t loc, const char *name, double *v, char *msg);
int bn_h5_attr_put_double(hid_t loc, const char *name, double v, char *msg);

#endif
