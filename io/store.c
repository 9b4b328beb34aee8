/* store.c: the shared HDF5 feature file (see store.h, docs/format.md).
 *
 * Rules this file follows (DESIGN.md section 4):
 *  - every call that touches metadata (create, open, attributes, flush,
 *    close) is made by every rank, in the same order, with the same
 *    arguments;
 *  - before each collective step the ranks bn_h5_agree on errors (bn_h5_agree()), so a
 *    failure on one rank never leaves the others waiting; the first failing
 *    rank's message is broadcast, so every rank reports the real reason;
 *  - datasets are contiguous, unfiltered and allocated at creation, so rows
 *    can then be written independently without touching metadata, and a
 *    SIGKILL after the creation flush leaves a valid file.
 * HDF5's automatic error printing is switched off inside every entry point
 * (and restored on the way out); failures become one-line messages, with the
 * innermost HDF5 error appended where it helps.
 */
#define _GNU_SOURCE /* fallocate(2) */
#include "config.h"

#include "io/store.h"
#include "io/half.h"

#include "io/h5util.h"
#include "io/image.h"
#include "pipeline/log.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FEAT_DIM 2048 /* floats per features row */

struct bn_store {
    MPI_Comm comm;     /* duplicate of the caller's communicator (agreements) */
    int rank;          /* this rank in comm */
    int size;          /* ranks in comm */
    char *path;        /* file name, for messages (owned) */
    size_t n;          /* images (rows) */
    hid_t file;        /* the open file, or -1 */
    hid_t d_features;  /* "features" (n, 2048) float32, or -1 */
    hid_t d_status;    /* "status" (n,) uint8, or -1 */
    hid_t d_code;      /* "error_code" (n,) uint8, or -1 */
    hid_t d_reason;    /* "error_reason" (n,) string BN_REASON_LEN, or -1 */
    hid_t g_timing;    /* group "timing", or -1 */
    hid_t t_reason;    /* fixed-length string type of error_reason, or -1 */
    hid_t t_half;      /* the float16 type, when features are stored as float16; else -1 */
    hid_t dxpl;        /* independent MPI-IO transfer property list, or -1 */
    int runs;          /* root attribute "runs" as read at open */
    unsigned char *st; /* (n,) BN_ROW_* of every image (owned); NULL on a rank with a headless corpus */
    int lockfd;        /* rank 0: the descriptor holding the run lock on PATH.lock, or -1 */
    char *lockpath;    /* rank 0: PATH.lock while held (owned), or NULL */
    int reserved;      /* rank 0: disk space beyond the end of the file was reserved (reserve_space) */
};

/* SHA-256 of the corpus as hex (65 bytes): for each item in order,
 * key '\t' label name '\t' split digit '\n'. */
static void corpus_sha256(const bn_corpus *c, char hex[65]) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    for (size_t i = 0; i < c->n; i++) {
        const bn_item *it = &c->items[i];
        const char *lab = c->labels[it->label];
        char tail[4] = {'\t', (char)('0' + it->split), '\n', 0};
        sha256_update(&ctx, strlen(it->key), (const uint8_t *)it->key);
        sha256_update(&ctx, 1, (const uint8_t *)"\t");
        sha256_update(&ctx, strlen(lab), (const uint8_t *)lab);
        sha256_update(&ctx, 3, (const uint8_t *)tail);
    }
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The identity's feature dtype ("" is float32), or NULL if it is neither. */
static const char *id_dtype(const bn_store_identity *id) {
    if (!id->feature_dtype[0] || !strcmp(id->feature_dtype, BN_DTYPE_F32)) return BN_DTYPE_F32;
    if (!strcmp(id->feature_dtype, BN_DTYPE_F16)) return BN_DTYPE_F16;
    return NULL;
}

/* Check the corpus and identity on this rank. Returns 0 or -1 with msg set. */
static int check_inputs(const char *path, const bn_corpus *c, const bn_store_identity *id, char *msg) {
    if (!path || !path[0]) {
        bn_h5_set_msg(msg, "no output file name");
        return -1;
    }
    if (!c || !id) {
        bn_h5_set_msg(msg, "%s: no corpus or identity given", path);
        return -1;
    }
    if (c->n && !c->items && !c->headless) {
        bn_h5_set_msg(msg, "%s: the corpus has %zu images but no items", path, c->n);
        return -1;
    }
    if (c->nlabels < 0 || (c->nlabels && !c->labels)) {
        bn_h5_set_msg(msg, "%s: the corpus has a bad class list", path);
        return -1;
    }
    for (size_t i = 0; c->items && i < c->n; i++) {
        const bn_item *it = &c->items[i];
        if (!it->path || !it->key || it->label < 0 || it->label >= c->nlabels || it->split < 0 || it->split > 2) {
            bn_h5_set_msg(msg, "%s: corpus item %zu is malformed (path, key, label or split)", path, i);
            return -1;
        }
    }
    if (strnlen(id->weights_sha256, sizeof id->weights_sha256) == sizeof id->weights_sha256 ||
        strnlen(id->preprocess, sizeof id->preprocess) == sizeof id->preprocess ||
        strnlen(id->dct, sizeof id->dct) == sizeof id->dct ||
        strnlen(id->precision, sizeof id->precision) == sizeof id->precision ||
        strnlen(id->calibration_sha256, sizeof id->calibration_sha256) == sizeof id->calibration_sha256 ||
        strnlen(id->feature_dtype, sizeof id->feature_dtype) == sizeof id->feature_dtype) {
        bn_h5_set_msg(msg, "%s: an identity string is not NUL-terminated", path);
        return -1;
    }
    if (!id_dtype(id)) {
        bn_h5_set_msg(msg, "%s: feature dtype '%s' is neither %s nor %s", path, id->feature_dtype, BN_DTYPE_F32,
                      BN_DTYPE_F16);
        return -1;
    }
    char why[256];
    if (bn_store_check_precision(id->precision, id->calibration_sha256, why, sizeof why)) {
        bn_h5_set_msg(msg, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

int bn_store_check_precision(const char *precision, const char *calibration_sha256, char *err, size_t errlen) {
    const char *p = precision && precision[0] ? precision : BN_STORE_DEFAULT_PRECISION;
    const char *cal = calibration_sha256 ? calibration_sha256 : "";
    if (strcmp(p, "fp32") && strcmp(p, "bf16") && strcmp(p, "int8") && strcmp(p, "tf32") && strcmp(p, "fp16")) {
        snprintf(err, errlen, "precision '%.32s' is none of fp32, bf16, int8, tf32, fp16", p);
        return -1;
    }
    int hex = strlen(cal) == 64;
    for (size_t k = 0; hex && k < 64; k++) hex = (cal[k] >= '0' && cal[k] <= '9') || (cal[k] >= 'a' && cal[k] <= 'f');
    if (!strcmp(p, "int8") && !hex) {
        snprintf(err, errlen, "int8 features need the calibration file's SHA-256 (64 hex digits), not '%.70s'", cal);
        return -1;
    }
    if (strcmp(p, "int8") && cal[0]) {
        snprintf(err, errlen, "%s features have no calibration file, but a calibration SHA-256 '%.70s' was given", p, cal);
        return -1;
    }
    return 0;
}

/* The precision of an identity, "" read as fp32. */
static const char *id_precision(const bn_store_identity *id) {
    return id->precision[0] ? id->precision : BN_STORE_DEFAULT_PRECISION;
}

/* Rank 0 only: what is at path. Returns 0 (nothing: create it), 1 (an HDF5
 * file: resume it), or -1 with msg set (a folder, not HDF5, unreadable). */
static int probe_path(const char *path, char *msg) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0; /* absent, or create will say why not */
    if (S_ISDIR(sb.st_mode)) {
        bn_h5_set_msg(msg, "%s: is a folder, not a bneck features file; give a file name with --out", path);
        return -1;
    }
    int found = bn_h5_signature(path, (long long)sb.st_size);
    if (found < 0) {
        bn_h5_set_msg(msg, "%s: exists but cannot be read (%s)", path, strerror(errno));
        return -1;
    }
    if (!found) {
        bn_h5_set_msg(msg, "%s: not a bneck features file (not even an HDF5 file%s); use another --out or delete it", path,
                sb.st_size == 0 ? ": it is empty, perhaps left by a run killed while creating it" : "");
        return -1;
    }
    return 1;
}

/* File access list: MPI-IO over comm, 1.8-compatible format (no SWMR
 * superblock), semi-strict close. Returns the list or -1 with msg set. */
static hid_t make_fapl(MPI_Comm comm, char *msg) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
        bn_h5_set_h5msg(msg, "cannot set up MPI-IO file access");
        bn_h5_close(&fapl);
        return -1;
    }
    return fapl;
}

/* ------------------------------------------------------------ run lock */

/* Rank 0 only. Take the run lock of path: an exclusive flock(2) on
 * "PATH.lock", so that a second run on the same file is refused before it
 * touches anything (MPI-IO takes no lock of its own, and HDF5 1.10 takes none
 * through it, with or without HDF5_USE_FILE_LOCKING). The kernel drops the
 * lock when its process dies, so a killed run never blocks the next one (its
 * lock file stays, and is reused). Returns 0 with s->lockfd set, 0 with no
 * lock where none can be had here (no folder: creating the file says why; a
 * file system without flock: a warning), or -1 with msg set when another
 * process holds the lock. */
static int lock_take(bn_store *s, const char *path, char *msg) {
    size_t plen = strlen(path);
    char *lp = mallocCheck(plen + sizeof ".lock");
    memcpy(lp, path, plen);
    memcpy(lp + plen, ".lock", sizeof ".lock");
    for (int tries = 0; tries < 8; tries++) {
        int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) break;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                char who[128] = "";
                ssize_t r = pread(fd, who, sizeof who - 1, 0);
                who[r > 0 ? r : 0] = 0;
                who[strcspn(who, "\n")] = 0;
                bn_h5_set_msg(msg, "%s is being written by another bneck run (%s holds the lock %s): two runs must not "
                              "write one file; wait for that run to end, or give this one another --out", path,
                              who[0] ? who : "a process", lp);
                close(fd);
                free(lp);
                return -1;
            }
            bn_warn("%s: cannot lock %s (%s): a second run on this file at once would not be refused", path, lp,
                    strerror(e));
            close(fd);
            break;
        }
        /* Still the file at lp? (The run that held it removes it as it ends.) */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lp, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            char who[128], host[64] = "";
            if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
            host[sizeof host - 1] = 0;
            int len = snprintf(who, sizeof who, "pid %ld on %s\n", (long)getpid(), host);
            if (ftruncate(fd, 0) != 0 || pwrite(fd, who, (size_t)len, 0) != len) { /* the lock holds all the same */ }
            s->lockfd = fd;
            s->lockpath = lp;
            return 0;
        }
        close(fd);
    }
    free(lp);
    return 0;
}

/* Rank 0 only: drop the run lock (fd, lockpath lp, owned), removing the lock
 * file first, while still held. */
static void lock_release(int fd, char *lp) {
    if (fd >= 0) {
        if (lp) (void)unlink(lp);
        close(fd);
    }
    free(lp);
}

/* Bytes to keep free beyond a file of n images for what closing a run adds
 * (timing table, timeline, attributes). */
static long long close_slack(size_t n, int ranks) { return (1LL << 20) + 65536LL * ranks + 32LL * (long long)n; }

/* Rank 0 only. Reserve the disk space of file (s->path, or the
 * PATH.partial it is being made as): its datasets are allocated
 * in the file but not on disk (a sparse file), so a disk that is too small
 * would otherwise show only when rows are written, or when closing, where a
 * failed metadata write can leave parallel HDF5's ranks waiting on each
 * other. fallocate(2) (FALLOC_FL_KEEP_SIZE) the whole file plus room for
 * closing. Returns 0 (also where the file system cannot preallocate), or -1
 * with msg set (no space, or quota). */
static int reserve_space(bn_store *s, const char *file, char *msg) {
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* HDF5 has it open: what it cannot do it reports */
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) == 0) {
        long long want = (long long)sb.st_size + close_slack(s->n, s->size);
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)want) == 0) {
            s->reserved = 1;
        } else if (errno == ENOSPC || errno == EDQUOT) {
            int e = errno;
            bn_h5_set_msg(msg, "%s: no room for it on its file system (%s): %zu images need %.1f MiB; free space "
                          "(or raise the quota) and rerun, or give an --out on another file system", s->path,
                          strerror(e), s->n, (double)want / (1 << 20));
            rc = -1;
        }
    }
    close(fd);
    return rc;
}

/* Rank 0 only, the file closed: give back what reserve_space kept beyond the
 * end of s->path and closing did not use. Best effort. */
static void release_space(bn_store *s) {
    int fd = open(s->path, O_WRONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) return;
    if (fstat(fd, &sb) == 0)
        (void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sb.st_size, (off_t)close_slack(s->n, s->size));
    close(fd);
}

/* Release everything s holds, closing the file (collective when s->file is
 * open) and freeing s. */
static void store_free(bn_store *s) {
    if (!s) return;
    bn_h5_close(&s->d_features);
    bn_h5_close(&s->t_half);
    bn_h5_close(&s->d_status);
    bn_h5_close(&s->d_code);
    bn_h5_close(&s->d_reason);
    bn_h5_close(&s->g_timing);
    bn_h5_close(&s->t_reason);
    bn_h5_close(&s->dxpl);
    bn_h5_close(&s->file);
    if (s->comm != MPI_COMM_NULL) mpiCheck(MPI_Comm_free(&s->comm));
    if (s->reserved && s->path) release_space(s);
    lock_release(s->lockfd, s->lockpath);
    free(s->path);
    free(s->st);
    free(s);
}

/* ------------------------------------------------------------ create */

/* Create dataset name on loc: type, rank-d dims, contiguous, allocated at
 * creation, no timestamps; filled with fill (of memory type fill_type) at
 * allocation, or never filled when fill is NULL. Returns the dataset or -1
 * with msg set. */
static hid_t make_dset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, const void *fill,
                       hid_t fill_type, char *msg) {
    hid_t sp = -1, dcpl = -1, d = -1;
    if ((sp = H5Screate_simple(rank, dims, NULL)) < 0 || (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0 || H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
        H5Pset_obj_track_times(dcpl, 0) < 0 ||
        (fill ? (H5Pset_fill_value(dcpl, fill_type, fill) < 0 || H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC) < 0)
              : H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0)) {
        bn_h5_set_h5msg(msg, "cannot set up dataset '%s'", name);
        goto done;
    }
    if ((d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        bn_h5_set_h5msg(msg, "cannot create dataset '%s'", name);
done:
    bn_h5_close(&dcpl);
    bn_h5_close(&sp);
    return d;
}

/* Every rank calls this in the same order (opening and closing objects is
 * kept identical across ranks): write rows [lo, lo+cnt) of the 1-D dataset
 * name from buf of memory type mt, independently; cnt 0 writes nothing.
 * Returns 0 or -1 with msg set. */
static int write_range(bn_store *s, const char *name, hid_t mt, hsize_t lo, hsize_t cnt, const void *buf,
                       char *msg) {
    int rc = -1;
    hid_t d = -1, fs = -1, ms = -1;
    if ((d = H5Dopen2(s->file, name, H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open dataset '%s'", s->path, name);
        goto done;
    }
    if (cnt > 0 && ((fs = H5Dget_space(d)) < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &lo, NULL, &cnt, NULL) < 0 ||
                    (ms = H5Screate_simple(1, &cnt, NULL)) < 0 || H5Dwrite(d, mt, ms, fs, s->dxpl, buf) < 0)) {
        bn_h5_set_h5msg(msg, "%s: cannot write dataset '%s'", s->path, name);
        goto done;
    }
    rc = 0;
done:
    bn_h5_close(&ms);
    bn_h5_close(&fs);
    bn_h5_close(&d);
    return rc;
}

/* Collective. Make the file's datasets and attributes (s->file just
 * created), write the per-image constants (each rank a share), and flush.
 * Returns 0 or -1 with the agreed message in msg. */
static int create_layout(bn_store *s, const bn_corpus *c, const bn_store_identity *id, const char *settings,
                         const char *sha, char *msg) {
    int rc = -1, ok = 1;
    size_t n = c->n;
    hid_t t_names = -1, gcpl = -1, t_u8 = H5T_STD_U8LE;
    unsigned long long *off = NULL; /* (n+1,) byte offsets of paths */
    unsigned char *bytes = NULL;    /* this rank's share of path_bytes */
    int *lab = NULL;                /* this rank's share of label */
    unsigned char *spl = NULL;      /* this rank's share of split */
    char *names = NULL;             /* (nlabels, maxlen) label names, NUL-padded */

    /* Root attributes. */
    char created_by[64];
    snprintf(created_by, sizeof created_by, "bneck %s", PACKAGE_VERSION);
    if (bn_h5_attr_put_str(s->file, "format", BN_STORE_FORMAT, msg) < 0 ||
        bn_h5_attr_put_int(s->file, "version", H5T_STD_I32LE, BN_STORE_VERSION, 1, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "weights_sha256", id->weights_sha256, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "preprocess", id->preprocess, msg) < 0 || bn_h5_attr_put_str(s->file, "dct", id->dct, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "precision", id_precision(id), msg) < 0 ||
        bn_h5_attr_put_str(s->file, "calibration_sha256", id->calibration_sha256, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "corpus_sha256", sha, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "feature_dtype", id_dtype(id), msg) < 0 ||
        bn_h5_attr_put_int(s->file, "n_images", H5T_STD_I64LE, (long long)n, 1, msg) < 0 ||
        bn_h5_attr_put_int(s->file, "n_classes", H5T_STD_I32LE, c->nlabels, 1, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "settings", settings, msg) < 0 ||
        bn_h5_attr_put_int(s->file, "complete", H5T_STD_I32LE, 0, 1, msg) < 0 ||
        bn_h5_attr_put_str(s->file, "created_by", created_by, msg) < 0 ||
        bn_h5_attr_put_int(s->file, "runs", H5T_STD_I32LE, 0, 1, msg) < 0)
        ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* Datasets and the timing group, all allocated now. */
    size_t maxlen = 1;
    for (int k = 0; k < c->nlabels; k++)
        if (strlen(c->labels[k]) > maxlen) maxlen = strlen(c->labels[k]);
    /* Where some rank holds no items (headless), rank 0, which holds them
     * all, writes every per-image constant. */
    int headless = c->headless, root_only = 0;
    mpiCheck(MPI_Allreduce(&headless, &root_only, 1, MPI_INT, MPI_MAX, s->comm));
    size_t have = c->items ? n : 0; /* items this rank can lay out */
    off = mallocCheck((have + 1) * sizeof *off);
    off[0] = 0;
    for (size_t i = 0; i < have; i++) off[i + 1] = off[i] + strlen(c->items[i].path);
    unsigned long long nbytes = off[have];
    if (root_only) mpiCheck(MPI_Bcast(&nbytes, 1, MPI_UNSIGNED_LONG_LONG, 0, s->comm));
    static const unsigned char zero8 = 0;
    hsize_t dn = n, dfeat[2] = {n, FEAT_DIM}, doff = n + 1, dbytes = nbytes, dnames = (hsize_t)c->nlabels;
    if ((s->t_reason = bn_h5_str_type(BN_REASON_LEN, H5T_STR_NULLPAD)) < 0 ||
        (t_names = bn_h5_str_type(maxlen, H5T_STR_NULLPAD)) < 0 || (gcpl = H5Pcreate(H5P_GROUP_CREATE)) < 0 ||
        H5Pset_obj_track_times(gcpl, 0) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot set up types", s->path);
        ok = 0;
    }
    if (ok && !strcmp(id_dtype(id), BN_DTYPE_F16) && (s->t_half = bn_h5_f16_type()) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot make the float16 type", s->path);
        ok = 0;
    }
    if (ok && ((s->d_features = make_dset(s->file, "features", s->t_half >= 0 ? s->t_half : H5T_IEEE_F32LE, 2, dfeat,
                                          NULL, -1, msg)) < 0 ||
               (s->d_status = make_dset(s->file, "status", t_u8, 1, &dn, &zero8, H5T_NATIVE_UCHAR, msg)) < 0 ||
               (s->d_code = make_dset(s->file, "error_code", t_u8, 1, &dn, &zero8, H5T_NATIVE_UCHAR, msg)) < 0 ||
               /* No fill: a reason counts only where the status says failed, and
                * writing zeros into n reasons would be most of the start-up of a
                * huge corpus (160 bytes per image); a new file's unwritten
                * space reads as zeros anyway. */
               (s->d_reason = make_dset(s->file, "error_reason", s->t_reason, 1, &dn, NULL, -1, msg)) < 0))
        ok = 0;
    /* The per-image constants, written below and never again. */
    const struct {
        const char *name; /* dataset */
        hid_t type;       /* file type */
        hsize_t len;      /* elements */
    } fixed[] = {
        {"label", H5T_STD_I32LE, dn},
        {"split", t_u8, dn},
        {"path_offsets", H5T_STD_U64LE, doff},
        {"path_bytes", t_u8, dbytes},
        {"label_names", t_names, dnames},
    };
    for (size_t j = 0; ok && j < sizeof fixed / sizeof fixed[0]; j++) {
        hid_t d = make_dset(s->file, fixed[j].name, fixed[j].type, 1, &fixed[j].len, NULL, -1, msg);
        if (d < 0) ok = 0;
        bn_h5_close(&d);
    }
    if (ok && (s->g_timing = H5Gcreate2(s->file, "timing", H5P_DEFAULT, gcpl, H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "cannot create group 'timing'");
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* Per-image constants: rank r writes images [lo, hi); the last rank also
     * writes the final offset, rank 0 the class names. Independent writes
     * into allocated space. */
    hsize_t lo = (hsize_t)((unsigned long long)n * (unsigned long long)s->rank / (unsigned long long)s->size);
    hsize_t hi = (hsize_t)((unsigned long long)n * (unsigned long long)(s->rank + 1) / (unsigned long long)s->size);
    if (root_only) lo = 0, hi = s->rank == 0 ? n : 0;
    lab = mallocCheck((hi - lo + 1) * sizeof *lab);
    spl = mallocCheck(hi - lo + 1);
    for (hsize_t i = lo; i < hi; i++) {
        lab[i - lo] = c->items[i].label;
        spl[i - lo] = (unsigned char)c->items[i].split;
    }
    bytes = mallocCheck(off[hi] - off[lo] + 1);
    for (hsize_t i = lo; i < hi; i++) memcpy(bytes + (off[i] - off[lo]), c->items[i].path, off[i + 1] - off[i]);
    int last = root_only ? s->rank == 0 : s->rank == s->size - 1;
    names = callocCheck((size_t)c->nlabels + 1, maxlen);
    for (int k = 0; k < c->nlabels; k++) memcpy(names + (size_t)k * maxlen, c->labels[k], strlen(c->labels[k]));
    if (write_range(s, "label", H5T_NATIVE_INT, lo, hi - lo, lab, msg) < 0 ||
        write_range(s, "split", H5T_NATIVE_UCHAR, lo, hi - lo, spl, msg) < 0 ||
        write_range(s, "path_offsets", H5T_NATIVE_ULLONG, lo, hi - lo + (last ? 1 : 0), off + lo, msg) < 0 ||
        write_range(s, "path_bytes", H5T_NATIVE_UCHAR, off[lo], off[hi] - off[lo], bytes, msg) < 0 ||
        write_range(s, "label_names", t_names, 0, s->rank == 0 ? (hsize_t)c->nlabels : 0, names, msg) < 0)
        ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* Make it durable: after this, raw writes alone never break the file. */
    if (H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot flush the new file", s->path);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    rc = 0;
done:
    bn_h5_close(&gcpl);
    bn_h5_close(&t_names);
    free(names);
    free(bytes);
    free(spl);
    free(lab);
    free(off);
    return rc;
}

/* ------------------------------------------------------------ resume */

/* Open dataset name of s->file and check it is rank-d with dims. Returns the
 * dataset or -1 with msg set. */
static hid_t open_checked(bn_store *s, const char *name, int rank, const hsize_t *dims, char *msg) {
    hid_t d = -1, sp = -1;
    htri_t ex = H5Lexists(s->file, name, H5P_DEFAULT);
    if (ex <= 0) {
        bn_h5_set_msg(msg, "%s: dataset '%s' is missing: the file is damaged or not from bneck; use a new --out", s->path,
                name);
        return -1;
    }
    if ((d = H5Dopen2(s->file, name, H5P_DEFAULT)) < 0 || (sp = H5Dget_space(d)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open dataset '%s'", s->path, name);
        bn_h5_close(&d);
        return -1;
    }
    hsize_t got[2] = {0, 0};
    int r = H5Sget_simple_extent_ndims(sp);
    int good = r == rank && H5Sget_simple_extent_dims(sp, got, NULL) == rank;
    for (int k = 0; good && k < rank; k++) good = got[k] == dims[k];
    bn_h5_close(&sp);
    if (!good) {
        bn_h5_set_msg(msg, "%s: dataset '%s' does not have the expected shape: the file is damaged; use a new --out", s->path,
                name);
        bn_h5_close(&d);
        return -1;
    }
    return d;
}

/* Check a string identity attribute against want. Returns 0 or -1 with msg set. */
static int check_ident(bn_store *s, const char *name, const char *want, char *msg) {
    char *got = NULL;
    int r = bn_h5_attr_get_str(s->file, name, &got, msg);
    if (r < 0) return -1;
    if (r > 0) {
        bn_h5_set_msg(msg, "%s: attribute '%s' is missing: the file is damaged or not from bneck; use a new --out", s->path,
                name);
        return -1;
    }
    int same = strcmp(got, want) == 0;
    if (!same)
        bn_h5_set_msg(msg,
                "%s was made with %s '%s', but this run has %s '%s': the features would not be comparable; use a "
                "new --out, or delete %s to start over",
                s->path, name, got, name, want, s->path);
    free(got);
    return same ? 0 : -1;
}

/* Check the file's feature dtype against the run's (a file written before
 * the attribute existed holds float32), and that the features dataset is of
 * that type; set s->t_half for a float16 file. Returns 0 or -1 with msg. */
static int check_dtype(bn_store *s, const bn_store_identity *id, char *msg) {
    char *got = NULL;
    int r = bn_h5_attr_get_str(s->file, "feature_dtype", &got, msg);
    if (r < 0) return -1;
    const char *file_dt = r > 0 ? BN_DTYPE_F32 : got, *want = id_dtype(id);
    int rc = -1;
    if (strcmp(file_dt, BN_DTYPE_F32) && strcmp(file_dt, BN_DTYPE_F16))
        bn_h5_set_msg(msg, "%s: attribute feature_dtype is '%.40s', neither %s nor %s: the file is damaged or from a newer "
                      "bneck; use a new --out", s->path, file_dt, BN_DTYPE_F32, BN_DTYPE_F16);
    else if (strcmp(file_dt, want))
        bn_h5_set_msg(msg, "%s holds %s features, but this run asks for %s (--feature-dtype); rerun with "
                      "--feature-dtype %s to resume it, or use a new --out", s->path, file_dt, want, file_dt);
    else if (!strcmp(want, BN_DTYPE_F16) && (s->t_half = bn_h5_f16_type()) < 0)
        bn_h5_set_h5msg(msg, "%s: cannot make the float16 type", s->path);
    else
        rc = 0;
    free(got);
    if (rc == 0) { /* the dataset must hold what the attribute says */
        hid_t d = H5Dopen2(s->file, "features", H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1;
        size_t want_size = s->t_half >= 0 ? 2 : 4;
        if (t < 0 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != want_size) {
            bn_h5_set_msg(msg, "%s: dataset 'features' is not %s as attribute feature_dtype says: the file is damaged; use "
                          "a new --out", s->path, want);
            rc = -1;
        }
        bn_h5_close(&t);
        bn_h5_close(&d);
    }
    return rc;
}

/* Check the file's precision and calibration against the run's. A file
 * written before these attributes existed holds fp32 features (and has no
 * calibration). Returns 0 or -1 with msg set. */
static int check_precision(bn_store *s, const bn_store_identity *id, char *msg) {
    char *prec = NULL, *cal = NULL;
    int rc = -1;
    int r = bn_h5_attr_get_str(s->file, "precision", &prec, msg);
    if (r < 0) goto done;
    if (r > 0) prec = strdupCheck(BN_STORE_DEFAULT_PRECISION); /* written before the attribute existed */
    int q = bn_h5_attr_get_str(s->file, "calibration_sha256", &cal, msg);
    if (q < 0) goto done;
    if (q > 0) {
        if (r == 0) {
            bn_h5_set_msg(msg, "%s: attribute 'precision' is there but 'calibration_sha256' is missing: the file is "
                          "damaged; use a new --out", s->path);
            goto done;
        }
        cal = strdupCheck("");
    }
    char why[256];
    if (!prec[0]) {
        bn_h5_set_msg(msg, "%s: attribute 'precision' is empty: the file is damaged; use a new --out", s->path);
        goto done;
    }
    if (bn_store_check_precision(prec, cal, why, sizeof why)) {
        bn_h5_set_msg(msg, "%s: %s: the file is damaged; use a new --out", s->path, why);
        goto done;
    }
    const char *want = id_precision(id);
    if (strcmp(prec, want)) {
        bn_h5_set_msg(msg,
                      "%s holds %s features%s, but this run asks for --precision %s: features of two "
                      "precisions must not be mixed in one file; rerun with the options that made it (--precision %s%s), "
                      "or give a new --out", s->path, prec,
                      r > 0 ? " (it has no 'precision' attribute: written before bneck recorded it, so fp32)" : "", want,
                      prec, strcmp(prec, "int8") ? "" : " and its --calibration");
        goto done;
    }
    if (strcmp(cal, id->calibration_sha256)) {
        bn_h5_set_msg(msg,
                      "%s holds int8 features made with the calibration file of sha256 %s, but this run's --calibration "
                      "has sha256 %s: features of two calibrations must not be mixed in one file; rerun with the "
                      "calibration file that made it, or give a new --out", s->path, cal, id->calibration_sha256);
        goto done;
    }
    rc = 0;
done:
    free(cal);
    free(prec);
    return rc;
}

/* Check the features of the rows marked done among [lo, hi) (this rank's
 * share; st[i - lo] is row i's status): readable, finite and not negative
 * (a bottleneck is an average of ReLU outputs), and not all zero. Catches a
 * file damaged after a crash (a block overwritten, or lost and read back as
 * zeros) that HDF5's own checks of its metadata do not see. Independent.
 * Returns 0 or -1 with msg set. */
static int check_done_rows(bn_store *s, const unsigned char *st, size_t lo, size_t hi, char *msg) {
    enum { BLOCK = 256 }; /* rows read at a time: 2 MiB */
    float *buf = NULL;
    hid_t fs = -1, ms = -1;
    int rc = 0;
    for (size_t a = lo; a < hi && rc == 0; a += BLOCK) {
        size_t b = hi - a < BLOCK ? hi : a + BLOCK, k;
        for (k = a; k < b && st[k - lo] != BN_ROW_DONE; k++) {}
        if (k == b) continue; /* no done row here */
        if (!buf) buf = mallocCheck((size_t)BLOCK * FEAT_DIM * sizeof *buf);
        hsize_t start[2] = {a, 0}, count[2] = {b - a, FEAT_DIM};
        if ((fs = H5Dget_space(s->d_features)) < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            (ms = H5Screate_simple(2, count, NULL)) < 0 ||
            H5Dread(s->d_features, H5T_NATIVE_FLOAT, ms, fs, s->dxpl, buf) < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot read the features of images %zu to %zu: the file is damaged; remove it "
                            "and run again, or use another --out", s->path, a, b - 1);
            rc = -1;
        }
        for (size_t i = a; rc == 0 && i < b; i++) {
            if (st[i - lo] != BN_ROW_DONE) continue;
            const float *row = buf + (i - a) * FEAT_DIM;
            int bad = 0, nonzero = 0;
            for (int j = 0; j < FEAT_DIM; j++) {
                if (!isfinite(row[j]) || row[j] < 0) bad = 1;
                if (row[j] != 0) nonzero = 1;
            }
            if (bad || !nonzero) {
                bn_h5_set_msg(msg, "%s: image %zu is marked done but its features are %s: the file is damaged (after "
                              "a crash?) and cannot be resumed; remove it and run again, or use another --out", s->path,
                              i, bad ? "negative or not finite" : "all zero");
                rc = -1;
            }
        }
        bn_h5_close(&ms);
        bn_h5_close(&fs);
    }
    free(buf);
    return rc;
}

/* Collective. Check that s->file (just opened) is a bneck features file of
 * this version, identity and corpus; open its datasets; read the statuses;
 * replace the settings; flush. Returns 0 or -1 with the agreed message. */
static int resume_layout(bn_store *s, const bn_corpus *c, const bn_store_identity *id, const char *settings,
                         const char *sha, char *msg) {
    int rc = -1, ok = 1;
    char *fmt = NULL, *fsha = NULL, *fnames = NULL;
    hid_t d = -1, ft = -1, mt = -1;
    long long version = 0, nimg = 0, ncls = 0, runs = 0;

    /* Format and version first: nothing else means anything without them. */
    int r = bn_h5_attr_get_str(s->file, "format", &fmt, msg);
    if (r < 0)
        ok = 0;
    else if (r > 0 || strcmp(fmt, BN_STORE_FORMAT) != 0) {
        if (r > 0)
            bn_h5_set_msg(msg, "%s: not a bneck features file (an HDF5 file whose 'format' attribute is %s); use another "
                    "--out", s->path, bn_h5_attr_why(s->file, "format", 1));
        else
            bn_h5_set_msg(msg, "%s: not a bneck features file (its format is '%.200s', not '%s'); use another --out", s->path,
                    fmt, BN_STORE_FORMAT);
        ok = 0;
    } else if ((r = bn_h5_attr_get_int(s->file, "version", &version, msg)) != 0) {
        if (r > 0)
            bn_h5_set_msg(msg, "%s: has no integer 'version' attribute: the file is damaged; use another --out", s->path);
        ok = 0;
    } else if (version != BN_STORE_VERSION) {
        bn_h5_set_msg(msg, "%s: version %lld of the bneck features format, but this bneck reads version %d; use another "
                "--out (or the bneck that wrote it)", s->path, version, BN_STORE_VERSION);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* Identity, then the corpus. */
    if (check_ident(s, "weights_sha256", id->weights_sha256, msg) < 0 ||
        check_ident(s, "preprocess", id->preprocess, msg) < 0 || check_ident(s, "dct", id->dct, msg) < 0 ||
        check_precision(s, id, msg) < 0 || check_dtype(s, id, msg) < 0)
        ok = 0;
    if (ok) {
        int a = bn_h5_attr_get_int(s->file, "n_images", &nimg, msg), b = 0, e = 0;
        if (a == 0) b = bn_h5_attr_get_int(s->file, "n_classes", &ncls, msg);
        if (a == 0 && b == 0) e = bn_h5_attr_get_str(s->file, "corpus_sha256", &fsha, msg);
        if (a == 0 && b == 0 && e == 0) e = bn_h5_attr_get_int(s->file, "runs", &runs, msg);
        if (a > 0 || b > 0 || e > 0)
            bn_h5_set_msg(msg, "%s: an attribute (n_images, n_classes, corpus_sha256 or runs) is missing: the file is "
                    "damaged; use a new --out", s->path);
        if (a || b || e)
            ok = 0;
        else if (nimg != (long long)c->n)
            bn_h5_set_msg(msg, "%s: the corpus changed since this file was made: it has %lld images, the corpus now has "
                    "%zu; use a new --out, or delete %s to start over", s->path, nimg, c->n, s->path), ok = 0;
        else if (ncls != c->nlabels)
            bn_h5_set_msg(msg, "%s: the corpus changed since this file was made: it has %lld classes, the corpus now has "
                    "%d; use a new --out, or delete %s to start over", s->path, ncls, c->nlabels, s->path), ok = 0;
        else if (strcmp(fsha, sha) != 0)
            bn_h5_set_msg(msg, "%s: the corpus changed since this file was made: corpus_sha256 is %s in the file, %s now "
                    "(an image, its label or its split differs); use a new --out, or delete %s to start over",
                    s->path, fsha, sha, s->path), ok = 0;
    }
    if (ok) {
        /* Class order: the same names in the same class-index order. */
        hsize_t dnames = (hsize_t)c->nlabels;
        size_t len = 0;
        if ((d = open_checked(s, "label_names", 1, &dnames, msg)) < 0)
            ok = 0;
        else if ((ft = H5Dget_type(d)) < 0 || H5Tget_class(ft) != H5T_STRING || (len = H5Tget_size(ft)) == 0 ||
                 H5Tis_variable_str(ft) != 0 || (mt = H5Tcopy(ft)) < 0) {
            bn_h5_set_h5msg(msg, "%s: dataset 'label_names' is not fixed-length strings: the file is damaged", s->path);
            ok = 0;
        } else {
            fnames = callocCheck((size_t)c->nlabels + 1, len + 1);
            if (c->nlabels && H5Dread(d, mt, H5S_ALL, H5S_ALL, s->dxpl, fnames) < 0) {
                bn_h5_set_h5msg(msg, "%s: cannot read dataset 'label_names'", s->path);
                ok = 0;
            }
            char one[BN_H5_MSG_LEN];
            for (int k = 0; ok && k < c->nlabels; k++) {
                size_t l = len < sizeof one - 1 ? len : sizeof one - 1;
                memcpy(one, fnames + (size_t)k * len, l);
                one[l] = 0;
                if (strcmp(one, c->labels[k]) != 0) {
                    bn_h5_set_msg(msg, "%s: the corpus changed since this file was made: class %d is '%.100s' in the file, "
                            "'%.100s' now; use a new --out, or delete %s to start over", s->path, k, one,
                            c->labels[k], s->path);
                    ok = 0;
                }
            }
        }
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* The datasets rows go to, and the statuses. */
    hsize_t dn = c->n, dfeat[2] = {c->n, FEAT_DIM};
    if ((s->d_features = open_checked(s, "features", 2, dfeat, msg)) < 0 ||
        (s->d_status = open_checked(s, "status", 1, &dn, msg)) < 0 ||
        (s->d_code = open_checked(s, "error_code", 1, &dn, msg)) < 0 ||
        (s->d_reason = open_checked(s, "error_reason", 1, &dn, msg)) < 0)
        ok = 0;
    if (ok && (s->t_reason = bn_h5_str_type(BN_REASON_LEN, H5T_STR_NULLPAD)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot set up types", s->path);
        ok = 0;
    }
    if (ok && (s->g_timing = H5Gopen2(s->file, "timing", H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot open group 'timing': the file is damaged", s->path);
        ok = 0;
    }
    /* The statuses, where this rank keeps them (not on a headless rank).
     * A rank that reads nothing still takes part: an empty selection. */
    if (ok && c->n) {
        hid_t fs = H5Dget_space(s->d_status), ms = -1;
        hsize_t cnt = s->st ? c->n : 0;
        if (fs < 0 || (!s->st && H5Sselect_none(fs) < 0) || (ms = H5Screate_simple(1, &cnt, NULL)) < 0 ||
            (!s->st && H5Sselect_none(ms) < 0) ||
            H5Dread(s->d_status, H5T_NATIVE_UCHAR, ms, fs, s->dxpl, s->st ? (void *)s->st : (void *)&cnt) < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot read dataset 'status'", s->path);
            ok = 0;
        }
        bn_h5_close(&ms);
        bn_h5_close(&fs);
    }
    for (size_t i = 0; ok && s->st && i < c->n; i++)
        if (s->st[i] > BN_ROW_FAILED) {
            bn_h5_set_msg(msg, "%s: status of image %zu is %d, not 0, 1 or 2: the file is damaged; remove it and run "
                          "again, or use another --out", s->path, i, s->st[i]);
            ok = 0;
        }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    /* The rows marked done must hold features: each rank checks a share
     * (at 10M done rows that is 82 GB to read: one reader would make a
     * resume slow to start). A rank that keeps no statuses (headless) reads
     * those of its share from the file. */
    {
        size_t lo = c->n * (size_t)s->rank / (size_t)s->size, hi = c->n * (size_t)(s->rank + 1) / (size_t)s->size;
        unsigned char *share = NULL;
        const unsigned char *st = s->st ? s->st + lo : NULL;
        if (!st && hi > lo) {
            share = mallocCheck(hi - lo);
            hsize_t start = lo, cnt = hi - lo;
            hid_t fs = H5Dget_space(s->d_status), ms = -1;
            if (fs < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL) < 0 ||
                (ms = H5Screate_simple(1, &cnt, NULL)) < 0 ||
                H5Dread(s->d_status, H5T_NATIVE_UCHAR, ms, fs, s->dxpl, share) < 0) {
                bn_h5_set_h5msg(msg, "%s: cannot read dataset 'status'", s->path);
                ok = 0;
            }
            bn_h5_close(&ms);
            bn_h5_close(&fs);
            st = share;
        }
        if (ok && hi > lo && check_done_rows(s, st, lo, hi, msg) < 0) ok = 0;
        free(share);
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    s->runs = (int)runs;

    /* Room for this run, before anything is written: a metadata write that
     * fails for want of space can leave the ranks waiting on each other. */
    if (s->rank == 0 && reserve_space(s, s->path, msg) < 0) ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* This run's settings replace the last run's. */
    if (H5Adelete(s->file, "settings") < 0 && H5Aexists(s->file, "settings") != 0) {
        bn_h5_set_h5msg(msg, "%s: cannot replace attribute 'settings'", s->path);
        ok = 0;
    }
    if (ok && bn_h5_attr_put_str(s->file, "settings", settings, msg) < 0) ok = 0;
    if (ok && H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot flush", s->path);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    rc = 0;
done:
    bn_h5_close(&mt);
    bn_h5_close(&ft);
    bn_h5_close(&d);
    free(fnames);
    free(fsha);
    free(fmt);
    return rc;
}

/* ------------------------------------------------------------ open */

bn_store *bn_store_open(const char *path, MPI_Comm comm, const bn_corpus *c, const bn_store_identity *id,
                        const char *settings, int *resumed, char *err, size_t errlen) {
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    char msg[BN_H5_MSG_LEN] = "";
    char sha[65] = "";
    int ok = 1, created = 0, kind = 0; /* kind: 0 create, 1 resume (probe_path) */
    hid_t fapl = -1;
    char *cpath = NULL; /* where a new file is built: path + ".partial" */
    bn_store *s = callocCheck(1, sizeof *s);
    s->comm = MPI_COMM_NULL;
    s->file = s->d_features = s->d_status = s->d_code = s->d_reason = s->g_timing = s->t_reason = s->dxpl = -1;
    s->t_half = -1;
    s->lockfd = -1;
    if (resumed) *resumed = 0;
    if (!settings) settings = "{}";

    mpiCheck(MPI_Comm_dup(comm, &s->comm));
    mpiCheck(MPI_Comm_rank(s->comm, &s->rank));
    mpiCheck(MPI_Comm_size(s->comm, &s->size));

    /* Local checks, then rank 0 looks at what is at path. */
    if (check_inputs(path, c, id, msg) < 0) ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
    s->path = strdupCheck(path);
    s->n = c->n;
    s->st = c->headless ? NULL : callocCheck(c->n ? c->n : 1, 1);
    if (id->corpus_sha256[0])
        snprintf(sha, sizeof sha, "%s", id->corpus_sha256);
    else {
        /* Rank 0 holds the whole listing (the others may be headless). */
        if (s->rank == 0) corpus_sha256(c, sha);
        mpiCheck(MPI_Bcast(sha, (int)sizeof sha, MPI_CHAR, 0, s->comm));
    }
    /* The run lock first: a refused run must not touch the file (nor a
     * PATH.partial being made by the run that holds it). */
    if (s->rank == 0 && lock_take(s, path, msg) < 0) ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
    if (s->rank == 0 && (kind = probe_path(path, msg)) < 0) ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
    mpiCheck(MPI_Bcast(&kind, 1, MPI_INT, 0, s->comm));

    /* Open or create, collectively. */
    if ((fapl = make_fapl(s->comm, msg)) < 0 || (s->dxpl = H5Pcreate(H5P_DATASET_XFER)) < 0 ||
        H5Pset_dxpl_mpio(s->dxpl, H5FD_MPIO_INDEPENDENT) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot set up MPI-IO", path);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
    /* A new file is built under a temporary name and renamed into place only
     * once its layout is complete and flushed, so a kill during creation
     * never leaves a half-made file at path (a rerun simply starts again). */
    size_t plen = strlen(path);
    cpath = mallocCheck(plen + sizeof ".partial");
    memcpy(cpath, path, plen);
    memcpy(cpath + plen, ".partial", sizeof ".partial");
    if (kind == 0) {
        if (s->rank == 0) (void)unlink(cpath); /* left by a run killed while creating */
        mpiCheck(MPI_Barrier(s->comm));
        hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
        if (fcpl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot set up file creation", path);
            ok = 0;
        } else if ((s->file = H5Fcreate(cpath, H5F_ACC_EXCL, fcpl, fapl)) < 0) {
            bn_h5_set_h5msg(msg,
                      "%s: cannot create the HDF5 file (check the folder exists and is writable; on file systems "
                      "without locking set HDF5_USE_FILE_LOCKING=FALSE)",
                      path);
            ok = 0;
        }
        bn_h5_close(&fcpl);
    } else if ((s->file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0) {
        bn_h5_set_h5msg(msg,
                  "%s: cannot open the HDF5 file for writing (check it is writable and that no other program has it "
                  "open; on file systems without locking set HDF5_USE_FILE_LOCKING=FALSE)",
                  path);
        int cut = strstr(msg, "truncated file") != NULL, sum = strstr(msg, "checksum") != NULL;
        if (cut || sum) { /* damaged: cut short (a crash, a full disk, an unfinished copy), or overwritten */
            char h5[BN_H5_MSG_LEN];
            const char *d = strstr(msg, " [HDF5:");
            snprintf(h5, sizeof h5, "%s", d ? d : "");
            msg[0] = 0;
            bn_h5_set_msg(msg, "%s: the file is %s and cannot be resumed; remove it and run again, or use another --out%s",
                          path, cut ? "truncated (damaged by a crash, a full disk or an unfinished copy)"
                                    : "damaged (its metadata fails its checksum)", h5);
        }
        ok = 0;
    }
    /* Assumed: MPI_File_open (under H5Fcreate/H5Fopen) is collective and
     * fails on every rank together, as it did in every case tried here, so
     * either all ranks hold the file or none does, and store_free's H5Fclose
     * is collective among all of them. */
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
    created = kind == 0;

    if (kind == 0) {
        if (create_layout(s, c, id, settings, sha, msg) < 0) goto fail;
        if (s->rank == 0 && reserve_space(s, cpath, msg) < 0) ok = 0;
        if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
        /* The layout is flushed: publish the file under its name. Open
         * handles follow the rename. */
        if (s->rank == 0 && rename(cpath, path) != 0) {
            bn_h5_set_msg(msg, "%s: cannot rename %s into place: %s", path, cpath, strerror(errno));
            ok = 0;
        }
        if (bn_h5_agree(s->comm, ok, msg) < 0) goto fail;
    } else {
        if (resume_layout(s, c, id, settings, sha, msg) < 0) goto fail;
        if (resumed) *resumed = 1;
    }
    bn_h5_close(&fapl);
    free(cpath);
    bn_h5_quiet_off(&q);
    return s;

fail:
    bn_h5_close(&fapl);
    {
        MPI_Comm keep = MPI_COMM_NULL;
        if (created && s->comm != MPI_COMM_NULL) mpiCheck(MPI_Comm_dup(s->comm, &keep));
        /* The lock is dropped last, once PATH.partial is gone. */
        int lockfd = s->lockfd;
        char *lockpath = s->lockpath;
        s->lockfd = -1;
        s->lockpath = NULL;
        store_free(s);
        /* Leave no half-made file behind: a later run would refuse it. */
        if (keep != MPI_COMM_NULL) {
            int r = 0;
            mpiCheck(MPI_Comm_rank(keep, &r));
            if (r == 0) (void)unlink(cpath); /* best effort: the error to report is msg */
            mpiCheck(MPI_Barrier(keep));
            mpiCheck(MPI_Comm_free(&keep));
        }
        lock_release(lockfd, lockpath);
    }
    if (resumed) *resumed = 0;
    free(cpath);
    if (kind == 1 && strstr(msg, "checksum") && !strstr(msg, "damaged")) { /* HDF5 found its metadata corrupted */
        size_t ml = strlen(msg);
        snprintf(msg + ml, sizeof msg - ml, ": the file is damaged; remove it and run again, or use another --out");
    }
    bn_h5_put_err(err, errlen, path, msg);
    bn_h5_quiet_off(&q);
    return NULL;
}

void bn_store_corpus_sha256(const bn_corpus *c, char hex[65]) { corpus_sha256(c, hex); }

/* The shard attributes: name, and the value this shard has. */
#define SHARD_ATTRS 4

int bn_store_mark_shard(bn_store *s, const bn_store_shard *sh, char *err, size_t errlen) {
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    char msg[BN_H5_MSG_LEN] = "";
    int ok = 1;
    const char *names[SHARD_ATTRS] = {"shard_index", "shard_count", "shard_first", "shard_corpus_n_images"};
    long long want[SHARD_ATTRS] = {sh->index, sh->count, sh->first, sh->corpus_n};
    long long runs = 0;
    int fresh = bn_h5_attr_get_int(s->file, "shard_count", &runs, msg) > 0; /* no shard attributes yet */
    if (fresh && s->runs > 0) {
        bn_h5_set_msg(msg, "%s was made by a whole-corpus extract, not as a shard: use another --out for shard %d/%d",
                      s->path, sh->index, sh->count);
        ok = 0;
    }
    for (int k = 0; ok && k < SHARD_ATTRS; k++) {
        long long got = 0;
        if (fresh) {
            if (bn_h5_attr_put_int(s->file, names[k], H5T_STD_I64LE, want[k], 1, msg) < 0) ok = 0;
        } else if (bn_h5_attr_get_int(s->file, names[k], &got, msg) != 0 || got != want[k]) {
            bn_h5_set_msg(msg, "%s: attribute %s is %lld, but this run is shard %d/%d (%s %lld): use another --out",
                          s->path, names[k], got, sh->index, sh->count, names[k], want[k]);
            ok = 0;
        }
    }
    if (ok) {
        char *got = NULL;
        if (fresh) {
            if (bn_h5_attr_put_str(s->file, "shard_corpus_sha256", sh->corpus_sha256, msg) < 0) ok = 0;
        } else if (bn_h5_attr_get_str(s->file, "shard_corpus_sha256", &got, msg) != 0 || strcmp(got, sh->corpus_sha256)) {
            bn_h5_set_msg(msg, "%s: the whole corpus changed since this shard file was made (shard_corpus_sha256 %s, "
                          "now %s): use another --out", s->path, got ? got : "missing", sh->corpus_sha256);
            ok = 0;
        }
        free(got);
    }
    if (ok && fresh && H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot flush", s->path);
        ok = 0;
    }
    int rc = bn_h5_agree(s->comm, ok, msg);
    if (rc < 0) bn_h5_put_err(err, errlen, s->path, msg);
    bn_h5_quiet_off(&q);
    return rc < 0 ? -1 : 0;
}

/* See store.h. */
const unsigned char *bn_store_status(const bn_store *s) { return s ? s->st : NULL; }

/* ------------------------------------------------------------ write */

/* One row of a write, for sorting by image index. */
typedef struct {
    long long i; /* corpus index */
    int k;       /* position in the caller's arrays */
} row_ref;

/* qsort order of row_ref: by corpus index. */
static int cmp_row(const void *a, const void *b) {
    long long x = ((const row_ref *)a)->i, y = ((const row_ref *)b)->i;
    return (x > y) - (x < y);
}

/* Select in file space fs the rows given by sorted indices ix[0..m) (m >= 1),
 * merged into runs of consecutive rows; cols is 0 for a 1-D space, else the
 * row width of a 2-D one. Returns 0 or -1. */
static int select_rows(hid_t fs, const long long *ix, int m, hsize_t cols) {
    int first = 1;
    for (int a = 0; a < m;) {
        int b = a + 1;
        while (b < m && ix[b] == ix[b - 1] + 1) b++;
        hsize_t start[2] = {(hsize_t)ix[a], 0}, count[2] = {(hsize_t)(b - a), cols};
        if (H5Sselect_hyperslab(fs, first ? H5S_SELECT_SET : H5S_SELECT_OR, start, NULL, count, NULL) < 0) return -1;
        first = 0;
        a = b;
    }
    return 0;
}

/* Copy reason r into dst (BN_REASON_LEN bytes, NUL-padded), cut so as not
 * to split a UTF-8 sequence. */
static void put_reason(char *dst, const char *r) {
    memset(dst, 0, BN_REASON_LEN);
    if (!r) return;
    size_t len = strlen(r);
    if (len > BN_REASON_LEN) {
        len = BN_REASON_LEN;
        while (len > 0 && ((unsigned char)r[len] & 0xC0) == 0x80) len--;
    }
    memcpy(dst, r, len);
}

/* Fault injection for tests: BNECK_FAULT_WRITE="R:K" makes the K-th write
 * (1-based) of rank R and every later one fail, as a full disk would. */
static int fault_due(bn_store *s) {
    static int writes = 0;
    const char *f = getenv("BNECK_FAULT_WRITE");
    int r = -1, k = 0;
    if (!f || sscanf(f, "%d:%d", &r, &k) != 2 || r != s->rank) return 0;
    return ++writes >= k;
}

int bn_store_write(bn_store *s, const long long *idx, int cnt, const float *feat, const unsigned char *status,
                   const unsigned char *code, const char *const *reason, char *err, size_t errlen) {
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    char msg[BN_H5_MSG_LEN] = "";
    int rc = -1, ndone = 0;
    row_ref *ord = NULL;
    long long *all = NULL, *done = NULL; /* sorted indices: every row, done rows */
    float *fbuf = NULL;                  /* (ndone, 2048) features in sorted order */
    uint16_t *hbuf = NULL;               /* (ndone, 2048) the same as float16, for a float16 file */
    unsigned char *sbuf = NULL, *cbuf = NULL; /* (cnt,) statuses, codes in sorted order */
    char *rbuf = NULL;                   /* (cnt, BN_REASON_LEN) reasons in sorted order */
    hid_t fs1 = -1, fs2 = -1, ms = -1;

    if (!s || cnt < 0 || (cnt > 0 && (!idx || !status))) {
        bn_h5_set_msg(msg, "bn_store_write: bad arguments");
        goto done;
    }
    if (cnt == 0) {
        rc = 0;
        goto done;
    }
    if (fault_due(s)) {
        bn_h5_set_msg(msg, "%s: write of %d rows failed (fault injected by BNECK_FAULT_WRITE)", s->path, cnt);
        goto done;
    }
    ord = mallocCheck((size_t)cnt * sizeof *ord);
    for (int k = 0; k < cnt; k++) {
        if (idx[k] < 0 || (unsigned long long)idx[k] >= s->n) {
            bn_h5_set_msg(msg, "%s: image index %lld out of range (%zu images)", s->path, idx[k], s->n);
            goto done;
        }
        if (status[k] != BN_ROW_DONE && status[k] != BN_ROW_FAILED) {
            bn_h5_set_msg(msg, "%s: image %lld: status %d is neither done nor failed", s->path, idx[k], status[k]);
            goto done;
        }
        if (status[k] == BN_ROW_DONE) ndone++;
        if (status[k] == BN_ROW_FAILED && !code) {
            bn_h5_set_msg(msg, "%s: image %lld failed but no error code was given", s->path, idx[k]);
            goto done;
        }
        ord[k].i = idx[k];
        ord[k].k = k;
    }
    if (ndone && !feat) {
        bn_h5_set_msg(msg, "%s: rows marked done but no features given", s->path);
        goto done;
    }
    qsort(ord, (size_t)cnt, sizeof *ord, cmp_row);
    for (int k = 1; k < cnt; k++)
        if (ord[k].i == ord[k - 1].i) {
            bn_h5_set_msg(msg, "%s: image %lld appears twice in one write", s->path, ord[k].i);
            goto done;
        }

    /* Pack everything in file order: HDF5 pairs memory and file elements in
     * the order of their selections, which is row-major, not call order. */
    all = mallocCheck((size_t)cnt * sizeof *all);
    done = mallocCheck((size_t)cnt * sizeof *done);
    fbuf = mallocCheck((size_t)(ndone ? ndone : 1) * FEAT_DIM * sizeof *fbuf);
    sbuf = mallocCheck((size_t)cnt);
    cbuf = mallocCheck((size_t)cnt);
    rbuf = mallocCheck((size_t)cnt * BN_REASON_LEN);
    int nd = 0;
    for (int j = 0; j < cnt; j++) {
        int k = ord[j].k;
        all[j] = ord[j].i;
        sbuf[j] = status[k];
        if (status[k] == BN_ROW_DONE) {
            done[nd] = ord[j].i;
            memcpy(fbuf + (size_t)nd * FEAT_DIM, feat + (size_t)k * FEAT_DIM, FEAT_DIM * sizeof *fbuf);
            nd++;
            cbuf[j] = BN_IMG_OK;
            put_reason(rbuf + (size_t)j * BN_REASON_LEN, NULL);
        } else {
            cbuf[j] = code[k];
            put_reason(rbuf + (size_t)j * BN_REASON_LEN, reason ? reason[k] : NULL);
        }
    }

    /* Features first, then codes and reasons, the statuses last. */
    if (ndone) {
        hsize_t md[2] = {(hsize_t)ndone, FEAT_DIM};
        const void *rows = fbuf;
        if (s->t_half >= 0) { /* float16 rows, converted here (io/half.h) */
            hbuf = mallocCheck((size_t)ndone * FEAT_DIM * sizeof *hbuf);
            bn_f32_to_f16_n(fbuf, hbuf, (size_t)ndone * FEAT_DIM);
            rows = hbuf;
        }
        if ((fs2 = H5Dget_space(s->d_features)) < 0 || select_rows(fs2, done, ndone, FEAT_DIM) < 0 ||
            (ms = H5Screate_simple(2, md, NULL)) < 0 ||
            H5Dwrite(s->d_features, s->t_half >= 0 ? s->t_half : H5T_NATIVE_FLOAT, ms, fs2, s->dxpl, rows) < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot write features rows", s->path);
            goto done;
        }
        bn_h5_close(&ms);
    }
    hsize_t mc = (hsize_t)cnt;
    if ((fs1 = H5Dget_space(s->d_status)) < 0 || select_rows(fs1, all, cnt, 0) < 0 ||
        (ms = H5Screate_simple(1, &mc, NULL)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot select rows", s->path);
        goto done;
    }
    if (H5Dwrite(s->d_code, H5T_NATIVE_UCHAR, ms, fs1, s->dxpl, cbuf) < 0 ||
        H5Dwrite(s->d_reason, s->t_reason, ms, fs1, s->dxpl, rbuf) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot write error codes or reasons", s->path);
        goto done;
    }
    if (H5Dwrite(s->d_status, H5T_NATIVE_UCHAR, ms, fs1, s->dxpl, sbuf) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot write statuses", s->path);
        goto done;
    }
    for (int j = 0; s->st && j < cnt; j++) s->st[all[j]] = sbuf[j];
    rc = 0;
done:
    bn_h5_close(&ms);
    bn_h5_close(&fs1);
    bn_h5_close(&fs2);
    free(rbuf);
    free(cbuf);
    free(sbuf);
    free(fbuf);
    free(hbuf);
    free(done);
    free(all);
    free(ord);
    if (rc < 0) bn_h5_put_err(err, errlen, s ? s->path : NULL, msg);
    bn_h5_quiet_off(&q);
    return rc;
}

/* ------------------------------------------------------------ close */

/* The timing row in memory (tm) and in the file (tf, packed little-endian).
 * Returns 0 or -1 (types left closed). */
/* The fields of a timing row: name, memory offset, kind. */
static const struct {
    const char *name;
    size_t moff;
    int kind; /* 0 int32, 1 int64, 2 float64, 3 host string, 4 device string */
} timing_fields[] = {
    {"rank", offsetof(bn_rank_timing, rank), 0},
    {"done", offsetof(bn_rank_timing, done), 1},
    {"failed", offsetof(bn_rank_timing, failed), 1},
    {"read_s", offsetof(bn_rank_timing, read_s), 2},
    {"decode_s", offsetof(bn_rank_timing, decode_s), 2},
    {"forward_s", offsetof(bn_rank_timing, forward_s), 2},
    {"write_s", offsetof(bn_rank_timing, write_s), 2},
    {"idle_s", offsetof(bn_rank_timing, idle_s), 2},
    {"wall_s", offsetof(bn_rank_timing, wall_s), 2},
    {"images_per_s", offsetof(bn_rank_timing, images_per_s), 2},
    {"device", offsetof(bn_rank_timing, device), 0},
    {"gpu_s", offsetof(bn_rank_timing, gpu_s), 2},
    {"copy_s", offsetof(bn_rank_timing, copy_s), 2},
    {"host", offsetof(bn_rank_timing, host), 3},
    {"device_name", offsetof(bn_rank_timing, device_name), 4},
    {"cores", offsetof(bn_rank_timing, cores), 0},
};
#define NTF (sizeof timing_fields / sizeof timing_fields[0])

static int timing_types(hid_t *tm, hid_t *tf) {
    /* name, memory offset, memory type, file type, file size */
    hid_t th = bn_h5_str_type(BN_HOST_LEN, H5T_STR_NULLPAD), td = bn_h5_str_type(BN_DEVNAME_LEN, H5T_STR_NULLPAD);
    const hid_t mtypes[5] = {H5T_NATIVE_INT, H5T_NATIVE_LLONG, H5T_NATIVE_DOUBLE, th, td};
    const hid_t ftypes[5] = {H5T_STD_I32LE, H5T_STD_I64LE, H5T_IEEE_F64LE, th, td};
    const size_t fsizes[5] = {4, 8, 8, BN_HOST_LEN, BN_DEVNAME_LEN};
    size_t total = 0;
    for (size_t j = 0; j < NTF; j++) total += fsizes[timing_fields[j].kind];
    *tm = H5Tcreate(H5T_COMPOUND, sizeof(bn_rank_timing));
    *tf = H5Tcreate(H5T_COMPOUND, total);
    if (*tm < 0 || *tf < 0 || th < 0 || td < 0) goto fail;
    size_t foff = 0;
    for (size_t j = 0; j < NTF; j++) {
        if (H5Tinsert(*tm, timing_fields[j].name, timing_fields[j].moff, mtypes[timing_fields[j].kind]) < 0 ||
            H5Tinsert(*tf, timing_fields[j].name, foff, ftypes[timing_fields[j].kind]) < 0)
            goto fail;
        foff += fsizes[timing_fields[j].kind];
    }
    bn_h5_close(&th);
    bn_h5_close(&td);
    return 0;
fail:
    bn_h5_close(&th);
    bn_h5_close(&td);
    bn_h5_close(tm);
    bn_h5_close(tf);
    return -1;
}

int bn_store_read_timing(hid_t d, bn_rank_timing *rows, long long n, char *msg) {
    int rc = -1;
    hid_t ft = -1, mt = -1, th = -1, td = -1, sp = -1;
    hsize_t dn = 0;
    if ((ft = H5Dget_type(d)) < 0 || H5Tget_class(ft) != H5T_COMPOUND || (sp = H5Dget_space(d)) < 0 ||
        H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &dn, NULL) != 1 || (long long)dn != n) {
        bn_h5_set_msg(msg, "a timing table is not a 1-D table of %lld rank rows: the file is damaged", n);
        goto done;
    }
    th = bn_h5_str_type(BN_HOST_LEN, H5T_STR_NULLPAD);
    td = bn_h5_str_type(BN_DEVNAME_LEN, H5T_STR_NULLPAD);
    const hid_t mtypes[5] = {H5T_NATIVE_INT, H5T_NATIVE_LLONG, H5T_NATIVE_DOUBLE, th, td};
    if (th < 0 || td < 0 || (mt = H5Tcreate(H5T_COMPOUND, sizeof(bn_rank_timing))) < 0) goto h5fail;
    /* Only the fields the file has: older files lack the later ones (left 0, device -1). */
    for (size_t j = 0; j < NTF; j++)
        if (H5Tget_member_index(ft, timing_fields[j].name) >= 0 &&
            H5Tinsert(mt, timing_fields[j].name, timing_fields[j].moff, mtypes[timing_fields[j].kind]) < 0)
            goto h5fail;
    memset(rows, 0, sizeof *rows * (size_t)n);
    for (long long r = 0; r < n; r++) rows[r].device = -1;
    if (n > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) goto h5fail;
    for (long long r = 0; r < n; r++) rows[r].host[BN_HOST_LEN - 1] = rows[r].device_name[BN_DEVNAME_LEN - 1] = 0;
    rc = 0;
    goto done;
h5fail:
    bn_h5_set_h5msg(msg, "cannot read a timing table");
done:
    bn_h5_close(&sp);
    bn_h5_close(&mt);
    bn_h5_close(&ft);
    bn_h5_close(&th);
    bn_h5_close(&td);
    return rc;
}

/* The timeline row type (memory and file): rank, t_s, done, failed. */
typedef struct {
    int rank;
    double t_s;
    long long done, failed;
} tl_row;

static int timeline_types(hid_t *tm, hid_t *tf) {
    *tm = H5Tcreate(H5T_COMPOUND, sizeof(tl_row));
    *tf = H5Tcreate(H5T_COMPOUND, 28);
    if (*tm < 0 || *tf < 0 || H5Tinsert(*tm, "rank", offsetof(tl_row, rank), H5T_NATIVE_INT) < 0 ||
        H5Tinsert(*tm, "t_s", offsetof(tl_row, t_s), H5T_NATIVE_DOUBLE) < 0 ||
        H5Tinsert(*tm, "done", offsetof(tl_row, done), H5T_NATIVE_LLONG) < 0 ||
        H5Tinsert(*tm, "failed", offsetof(tl_row, failed), H5T_NATIVE_LLONG) < 0 ||
        H5Tinsert(*tf, "rank", 0, H5T_STD_I32LE) < 0 || H5Tinsert(*tf, "t_s", 4, H5T_IEEE_F64LE) < 0 ||
        H5Tinsert(*tf, "done", 12, H5T_STD_I64LE) < 0 || H5Tinsert(*tf, "failed", 20, H5T_STD_I64LE) < 0) {
        bn_h5_close(tm);
        bn_h5_close(tf);
        return -1;
    }
    return 0;
}

int bn_store_read_timeline(hid_t d, int **rank, bn_tl_point **pts, long long *n, char *msg) {
    int rc = -1;
    hid_t tm = -1, tf = -1, sp = -1;
    hsize_t dn = 0;
    tl_row *rows = NULL;
    *rank = NULL, *pts = NULL, *n = 0;
    if ((sp = H5Dget_space(d)) < 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, &dn, NULL) != 1) {
        bn_h5_set_msg(msg, "a timeline is not a 1-D table: the file is damaged");
        goto done;
    }
    if (timeline_types(&tm, &tf) < 0) {
        bn_h5_set_h5msg(msg, "cannot make the timeline row type");
        goto done;
    }
    rows = mallocCheck(sizeof *rows * (size_t)(dn ? dn : 1));
    if (dn && H5Dread(d, tm, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        bn_h5_set_h5msg(msg, "cannot read a timeline");
        goto done;
    }
    *rank = mallocCheck(sizeof **rank * (size_t)(dn ? dn : 1));
    *pts = mallocCheck(sizeof **pts * (size_t)(dn ? dn : 1));
    for (hsize_t i = 0; i < dn; i++) {
        (*rank)[i] = rows[i].rank;
        (*pts)[i] = (bn_tl_point){rows[i].t_s, rows[i].done, rows[i].failed};
    }
    *n = (long long)dn;
    rc = 0;
done:
    free(rows);
    bn_h5_close(&sp);
    bn_h5_close(&tm);
    bn_h5_close(&tf);
    return rc;
}

/* Collective: the timeline of run name (this rank's samples tl, NULL: none)
 * as the dataset timeline/<name>, every rank's samples one after another
 * in rank order. Returns 0 or -1 with msg set (agreed on every rank). */
static int write_timeline(bn_store *s, const char *name, const bn_timeline *tl, char *msg) {
    int ok = 1, rc = -1;
    hid_t g = -1, tm = -1, tf = -1, d = -1, sp = -1, ms = -1;
    long long mine = tl ? tl->n : 0, before = 0, total = 0;
    mpiCheck(MPI_Exscan(&mine, &before, 1, MPI_LONG_LONG, MPI_SUM, s->comm));
    if (s->rank == 0) before = 0;
    mpiCheck(MPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, s->comm));
    if (total == 0) return 0;
    htri_t ex = H5Lexists(s->file, "timeline", H5P_DEFAULT);
    if (ex < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot look for group 'timeline'", s->path);
        ok = 0;
    } else if ((g = ex ? H5Gopen2(s->file, "timeline", H5P_DEFAULT)
                       : H5Gcreate2(s->file, "timeline", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot create group 'timeline'", s->path);
        ok = 0;
    }
    hsize_t dn = (hsize_t)total;
    if (ok && timeline_types(&tm, &tf) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot make the timeline row type", s->path);
        ok = 0;
    }
    if (ok && (d = make_dset(g, name, tf, 1, &dn, NULL, -1, msg)) < 0) ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    tl_row *rows = mallocCheck(sizeof *rows * (size_t)(mine ? mine : 1));
    for (long long i = 0; i < mine; i++)
        rows[i] = (tl_row){s->rank, tl->p[i].t_s, tl->p[i].done, tl->p[i].failed};
    hsize_t at = (hsize_t)before, cnt = (hsize_t)mine;
    if ((sp = H5Dget_space(d)) < 0 ||
        (mine ? H5Sselect_hyperslab(sp, H5S_SELECT_SET, &at, NULL, &cnt, NULL) : H5Sselect_none(sp)) < 0 ||
        (ms = H5Screate_simple(1, &cnt, NULL)) < 0 || (!mine && H5Sselect_none(ms) < 0) ||
        H5Dwrite(d, tm, ms, sp, s->dxpl, rows) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot write the timeline of rank %d", s->path, s->rank);
        ok = 0;
    }
    free(rows);
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    rc = 0;
done:
    bn_h5_close(&ms);
    bn_h5_close(&sp);
    bn_h5_close(&d);
    bn_h5_close(&tf);
    bn_h5_close(&tm);
    bn_h5_close(&g);
    return rc;
}

int bn_store_close(bn_store *s, const bn_rank_timing *mine, const bn_run_summary *run, const bn_timeline *tl,
                   int complete, char *err, size_t errlen) {
    if (!s) {
        bn_h5_put_err(err, errlen, NULL, "bn_store_close: no store");
        return -1;
    }
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    char msg[BN_H5_MSG_LEN] = "";
    int rc = -1, ok = 1;
    hid_t tm = -1, tf = -1, sp = -1, d = -1, ms = -1;

    if (!mine) {
        bn_h5_set_msg(msg, "%s: rank %d gave no timing row", s->path, s->rank);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    /* Values every rank must pass identically to the collective calls. */
    int all_complete = 0, mine_complete = complete ? 1 : 0;
    mpiCheck(MPI_Allreduce(&mine_complete, &all_complete, 1, MPI_INT, MPI_MIN, s->comm));
    char finished[32] = "";
    if (s->rank == 0) {
        time_t now = time(NULL);
        struct tm utc;
        if (!gmtime_r(&now, &utc) || strftime(finished, sizeof finished, "%Y-%m-%dT%H:%M:%SZ", &utc) == 0)
            snprintf(finished, sizeof finished, "unknown");
    }
    mpiCheck(MPI_Bcast(finished, sizeof finished, MPI_CHAR, 0, s->comm));

    /* The run's table: created collectively, one row written by each rank. */
    int k = s->runs;
    char name[48];
    for (;;) {
        snprintf(name, sizeof name, "run_%d", k);
        htri_t ex = H5Lexists(s->g_timing, name, H5P_DEFAULT);
        if (ex < 0) {
            bn_h5_set_h5msg(msg, "%s: cannot look into group 'timing'", s->path);
            ok = 0;
            break;
        }
        if (ex == 0) break;
        k++; /* left by a run killed while closing: keep it, take the next name */
    }
    hsize_t dr = (hsize_t)s->size;
    if (ok && timing_types(&tm, &tf) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot make the timing row type", s->path);
        ok = 0;
    }
    bn_run_summary rs;
    if (run) rs = *run, rs.ranks = s->size;
    if (ok && ((d = make_dset(s->g_timing, name, tf, 1, &dr, NULL, -1, msg)) < 0 ||
               (run ? bn_run_summary_put(d, &rs, msg) : bn_h5_attr_put_int(d, "ranks", H5T_STD_I32LE, s->size, 1, msg)) < 0 ||
               bn_h5_attr_put_int(d, "complete", H5T_STD_I32LE, all_complete, 1, msg) < 0 ||
               bn_h5_attr_put_str(d, "finished", finished, msg) < 0))
        ok = 0;
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;

    bn_rank_timing row = *mine;
    row.rank = s->rank;
    hsize_t at = (hsize_t)s->rank, one = 1;
    if ((sp = H5Dget_space(d)) < 0 || H5Sselect_hyperslab(sp, H5S_SELECT_SET, &at, NULL, &one, NULL) < 0 ||
        (ms = H5Screate_simple(1, &one, NULL)) < 0 || H5Dwrite(d, tm, ms, sp, s->dxpl, &row) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot write the timing row of rank %d", s->path, s->rank);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    if (write_timeline(s, name, tl, msg) < 0) goto done;

    /* The run counter and the completeness flag, then flush. */
    if (bn_h5_attr_put_int(s->file, "runs", H5T_STD_I32LE, k + 1, 0, msg) < 0 ||
        bn_h5_attr_put_int(s->file, "complete", H5T_STD_I32LE, all_complete, 0, msg) < 0)
        ok = 0;
    if (ok && H5Fflush(s->file, H5F_SCOPE_GLOBAL) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot flush", s->path);
        ok = 0;
    }
    if (bn_h5_agree(s->comm, ok, msg) < 0) goto done;
    rc = 0;
done:
    bn_h5_close(&ms);
    bn_h5_close(&sp);
    bn_h5_close(&d);
    bn_h5_close(&tf);
    bn_h5_close(&tm);
    /* Close: datasets, then the file (collective; fails if anything is left open). */
    bn_h5_close(&s->d_features);
    bn_h5_close(&s->t_half);
    bn_h5_close(&s->d_status);
    bn_h5_close(&s->d_code);
    bn_h5_close(&s->d_reason);
    bn_h5_close(&s->g_timing);
    bn_h5_close(&s->t_reason);
    bn_h5_close(&s->dxpl);
    ok = 1;
    if (H5Fclose(s->file) < 0) {
        bn_h5_set_h5msg(msg, "%s: cannot close the file", s->path);
        ok = 0;
    }
    s->file = -1;
    if (bn_h5_agree(s->comm, ok, msg) < 0) rc = -1;
    if (rc < 0) bn_h5_put_err(err, errlen, s->path, msg);
    store_free(s);
    bn_h5_quiet_off(&q);
    return rc;
}

void bn_store_abort(bn_store *s) {
    if (!s) return;
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    store_free(s);
    bn_h5_quiet_off(&q);
}
