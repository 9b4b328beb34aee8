/* test_store.c: the shared HDF5 feature file (io/store.h) under MPI, at any
 * rank count (tests/store.mpi runs it at 1, 2, 3 and 5 and then reads the
 * files with h5py and h5dump).
 *
 * Usage: test_store DIR [full|kill|after-kill]
 *   full (default): create DIR/test.h5, write part of it from interleaved
 *     ranks, close, resume and check, write the rest, close, reopen; plus the
 *     refusals (identity, corpus, version, not HDF5, not writable, ...), a
 *     corpus with fewer images than ranks, and one with none. Rank 0 writes
 *     DIR/expected.tsv for the Python checks.
 *   kill: create DIR/kill.h5, write images 0..9, then every rank SIGKILLs
 *     itself (the file must stay readable and resumable).
 *   after-kill: resume DIR/kill.h5, check 0..9 are done, write the rest, close.
 */
#include "io/store.h"

#include "io/image.h"
#include "pipeline/log.h"
#include "tests/testutil.h"

#include <hdf5.h>
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_IMAGES 23 /* images in the main test corpus */
#define N_FIRST 15  /* images written by the first run */
#define ERRLEN 1024 /* bytes of an error message */

static int g_rank, g_size; /* this process's rank, number of ranks */

/* ------------------------------------------------------------ the corpus */

static const char *g_labels[3] = {"daisy", "red rose", "tulip \xc3\xa9t\xc3\xa9"}; /* the last is UTF-8 */

/* Build the main corpus: n images of 3 classes, ordered by class; image 4's
 * path has spaces, image 7's is UTF-8. */
static void make_corpus(bn_corpus *c, size_t n) {
    memset(c, 0, sizeof *c);
    c->nlabels = 3;
    c->labels = callocCheck(3, sizeof *c->labels);
    c->sources = callocCheck(3, sizeof *c->sources);
    for (int k = 0; k < 3; k++) {
        c->labels[k] = strdupCheck(g_labels[k]);
        c->sources[k] = strdupCheck(g_labels[k]);
    }
    c->n = n;
    c->items = callocCheck(n ? n : 1, sizeof *c->items);
    for (size_t i = 0; i < n; i++) {
        char p[256];
        int lab = (int)(i * 3 / (n ? n : 1));
        if (i == 4)
            snprintf(p, sizeof p, "/data/red rose/my photo %zu.jpg", i);
        else if (i == 7)
            snprintf(p, sizeof p, "/data/tulip/\xc3\x89t\xc3\xa9 \xc3\xbc %zu.jpg", i);
        else
            snprintf(p, sizeof p, "/data/%s/img_%zu.jpg", g_labels[lab], i);
        c->items[i].path = strdupCheck(p);
        c->items[i].key = strdupCheck(p + 6); /* as given in a manifest, say */
        c->items[i].label = lab;
        c->items[i].split = (int)((i * 7) % 3);
    }
}

static void free_corpus(bn_corpus *c) {
    for (int k = 0; k < c->nlabels; k++) {
        free(c->labels[k]);
        free(c->sources[k]);
    }
    free(c->labels);
    free(c->sources);
    for (size_t i = 0; i < c->n; i++) {
        free(c->items[i].path);
        free(c->items[i].key);
    }
    free(c->items);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------ expected rows */

/* Image i fails when i % 5 == 3, else it is done. */
static int fails(long long i) { return i % 5 == 3; }
static unsigned char code_of(long long i) { return (unsigned char)(1 + i % 8); }

/* The reason given for a failed image i (image 8's is over BN_REASON_LEN
 * bytes with a 2-byte character across the limit: stored as 159 'x'). */
static void reason_of(long long i, char *buf, size_t len) {
    if (i == 8) {
        memset(buf, 'x', 159);
        snprintf(buf + 159, len - 159, "\xc3\xa9 and more text after the limit");
    } else {
        snprintf(buf, len, "bad image %lld: truncated \xc3\xbc", i);
    }
}

/* Write images [lo, hi) that satisfy mine(i) in batches of up to batch,
 * each batch in reverse index order (the store must sort). Counts what it
 * wrote into t. */
static void write_rows(bn_store *s, long long lo, long long hi, int (*mine)(long long), int batch, bn_rank_timing *t) {
    long long idx[8];
    unsigned char st[8], code[8];
    char reasons[8][256];
    const char *rp[8];
    float *feat = callocCheck(8 * 2048, sizeof *feat);
    int cnt = 0;
    for (long long i = hi - 1; i >= lo - 1; i--) {
        if (i >= lo && mine(i)) {
            idx[cnt] = i;
            st[cnt] = fails(i) ? BN_ROW_FAILED : BN_ROW_DONE;
            code[cnt] = fails(i) ? code_of(i) : 0;
            reason_of(i, reasons[cnt], sizeof reasons[cnt]);
            rp[cnt] = fails(i) ? reasons[cnt] : NULL;
            for (int j = 0; j < 2048; j++) feat[cnt * 2048 + j] = (float)(i * 1000 + j);
            if (fails(i))
                t->failed++;
            else
                t->done++;
            cnt++;
        }
        if (cnt == batch || (i < lo && cnt > 0)) {
            char err[ERRLEN] = "";
            int rc = bn_store_write(s, idx, cnt, feat, st, code, rp, err, sizeof err);
            CHECK(rc == 0, "bn_store_write: %s", err);
            cnt = 0;
        }
    }
    free(feat);
}

static int mine_first(long long i) { return i % g_size == g_rank; }
static int mine_second(long long i) { return (i + 1) % g_size == g_rank; }

/* Expected status of image i after writing images [0, upto). */
static unsigned char expect_status(long long i, long long upto) {
    if (i >= upto) return BN_ROW_PENDING;
    return fails(i) ? BN_ROW_FAILED : BN_ROW_DONE;
}

/* A timing row for this rank with recognisable numbers. */
static bn_rank_timing timing_row(void) {
    bn_rank_timing t;
    memset(&t, 0, sizeof t);
    t.rank = g_rank;
    t.read_s = g_rank + 0.5;
    t.decode_s = 1.25;
    t.forward_s = 2.5;
    t.write_s = 0.125;
    t.idle_s = 0.0625;
    t.wall_s = 4.0;
    return t;
}

/* ------------------------------------------------------------ helpers */

/* Collective: 1 when every rank's s is the same string as rank 0's. */
static int same_everywhere(const char *s) {
    char buf[ERRLEN] = "";
    if (g_rank == 0) snprintf(buf, sizeof buf, "%s", s);
    mpiCheck(MPI_Bcast(buf, ERRLEN, MPI_CHAR, 0, MPI_COMM_WORLD));
    int mine = strcmp(buf, s) == 0, all = 0;
    mpiCheck(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    return all;
}

static const bn_store_identity g_id = {
    .weights_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    .preprocess = "keras",
    .dct = "accurate",
};

/* Collective. Open path, expecting a refusal whose message contains every
 * one of the NULL-terminated substrings; the same message on every rank. */
static void expect_refused(const char *what, const char *path, const bn_corpus *c, const bn_store_identity *id,
                           ...) {
    char err[ERRLEN] = "";
    int resumed = -1;
    bn_store *s = bn_store_open(path, MPI_COMM_WORLD, c, id, "{}", &resumed, err, sizeof err);
    CHECK(s == NULL, "%s: should be refused", what);
    if (s) bn_store_abort(s);
    CHECK(resumed == 0, "%s: resumed should be 0", what);
    CHECK(same_everywhere(err), "%s: ranks report different messages (rank %d: %s)", what, g_rank, err);
    va_list ap;
    va_start(ap, id);
    for (const char *sub; (sub = va_arg(ap, const char *)) != NULL;)
        CHECK(strstr(err, sub) != NULL, "%s: message lacks '%s': %s", what, sub, err);
    va_end(ap);
    if (g_rank == 0) printf("refused as expected (%s): %s\n", what, err);
}

/* Collective. Open path expecting success with the given resumed flag. */
static bn_store *must_open(const char *path, const bn_corpus *c, const char *settings, int want_resumed) {
    char err[ERRLEN] = "";
    int resumed = -1;
    bn_store *s = bn_store_open(path, MPI_COMM_WORLD, c, &g_id, settings, &resumed, err, sizeof err);
    CHECK(s != NULL, "open %s: %s", path, err);
    CHECK(resumed == want_resumed, "open %s: resumed %d, want %d", path, resumed, want_resumed);
    return s;
}

/* Collective. Close s with this rank's timing row. */
static void must_close(bn_store *s, const bn_rank_timing *t, int complete) {
    char err[ERRLEN] = "";
    int rc = bn_store_close(s, t, NULL, NULL, complete, err, sizeof err);
    CHECK(rc == 0, "close: %s", err);
}

/* Rank 0: write a small file with these bytes. */
static void put_file(const char *path, const char *text) {
    if (g_rank != 0) return;
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Rank 0, serial HDF5: an HDF5 file with a dataset and, when fmt is not
 * NULL, a fixed-string "format" attribute fmt (else none). */
static void put_other_h5(const char *path, const char *fmt) {
    if (g_rank != 0) return;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0, "cannot create %s", path);
    hsize_t d = 4;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t ds = H5Dcreate2(f, "data", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(ds >= 0, "cannot create a dataset in %s", path);
    if (fmt) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, strlen(fmt) + 1);
        hid_t as = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, "format", t, as, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(a >= 0 && H5Awrite(a, t, fmt) >= 0, "cannot write attribute in %s", path);
        H5Aclose(a);
        H5Sclose(as);
        H5Tclose(t);
    }
    H5Dclose(ds);
    H5Sclose(sp);
    CHECK(H5Fclose(f) >= 0, "cannot close %s", path);
}

/* Rank 0: copy file src to dst and set its root attribute "version" to v. */
static void put_version_copy(const char *src, const char *dst, int v) {
    if (g_rank != 0) return;
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out, "cannot copy %s", src);
    char buf[65536];
    size_t got;
    while (in && out && (got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, out);
    if (in) fclose(in);
    if (out) fclose(out);
    hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0, "cannot open %s", dst);
    hid_t a = H5Aopen(f, "version", H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0, "cannot set version in %s", dst);
    H5Aclose(a);
    H5Fclose(f);
}

/* Rank 0: copy file src to dst without its root attributes "precision"
 * and "calibration_sha256", as bneck wrote files before they existed. */
static void put_preprecision_copy(const char *src, const char *dst) {
    if (g_rank != 0) return;
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    CHECK(in && out, "cannot copy %s", src);
    char buf[65536];
    size_t got;
    while (in && out && (got = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, got, out);
    if (in) fclose(in);
    if (out) fclose(out);
    hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(f >= 0, "cannot open %s", dst);
    CHECK(H5Adelete(f, "precision") >= 0 && H5Adelete(f, "calibration_sha256") >= 0,
          "cannot delete the precision attributes of %s", dst);
    CHECK(H5Fclose(f) >= 0, "cannot close %s", dst);
}

/* Collective. The precision and calibration in the identity: checked on
 * input, refused on resume when they differ, and a file written before they
 * were recorded resumes as fp32. */
static void run_precision(const char *dir, const char *fp32_file, const bn_corpus *c) {
    static const char cal_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    static const char cal_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    char path[4096], err[ERRLEN];
    bn_store_identity id = g_id;

    /* Identities that make no sense are refused before any file is touched. */
    snprintf(path, sizeof path, "%s/prec-bad.h5", dir);
    snprintf(id.precision, sizeof id.precision, "fp64");
    expect_refused("precision: unknown", path, c, &id, "fp64", "fp32, bf16, int8, tf32, fp16", NULL);
    id = g_id;
    snprintf(id.precision, sizeof id.precision, "int8");
    expect_refused("precision: int8 without calibration", path, c, &id, "int8", "calibration", NULL);
    id = g_id;
    snprintf(id.calibration_sha256, sizeof id.calibration_sha256, "%s", cal_a);
    expect_refused("precision: fp32 with a calibration", path, c, &id, "fp32", "calibration", NULL);
    if (g_rank == 0) CHECK(access(path, F_OK) != 0, "a refused identity left %s behind", path);

    /* The fp32 file (identity precision "", written as fp32) refuses bf16
     * and int8, and resumes for an explicit "fp32". */
    id = g_id;
    snprintf(id.precision, sizeof id.precision, "bf16");
    expect_refused("precision: bf16 on fp32", fp32_file, c, &id, fp32_file, "holds fp32 features", "--precision bf16",
                   "--precision fp32", "--out", NULL);
    snprintf(id.precision, sizeof id.precision, "int8");
    snprintf(id.calibration_sha256, sizeof id.calibration_sha256, "%s", cal_a);
    expect_refused("precision: int8 on fp32", fp32_file, c, &id, "holds fp32 features", "--precision int8", NULL);
    id = g_id;
    snprintf(id.precision, sizeof id.precision, "fp32");
    int resumed = -1;
    bn_store *s = bn_store_open(fp32_file, MPI_COMM_WORLD, c, &id, "{}", &resumed, err, sizeof err);
    CHECK(s && resumed == 1, "precision: explicit fp32 on an fp32 file: %s", s ? "not resumed" : err);
    if (s) bn_store_abort(s);

    /* An int8 file: another calibration, or fp32, is refused; the same resumes. */
    snprintf(path, sizeof path, "%s/prec-int8.h5", dir);
    bn_store_identity i8 = g_id;
    snprintf(i8.precision, sizeof i8.precision, "int8");
    snprintf(i8.calibration_sha256, sizeof i8.calibration_sha256, "%s", cal_a);
    s = bn_store_open(path, MPI_COMM_WORLD, c, &i8, "{}", &resumed, err, sizeof err);
    CHECK(s && resumed == 0, "precision: create an int8 file: %s", s ? "resumed?" : err);
    if (s) {
        bn_rank_timing t = timing_row();
        must_close(s, &t, 0);
    }
    id = i8;
    snprintf(id.calibration_sha256, sizeof id.calibration_sha256, "%s", cal_b);
    expect_refused("precision: other calibration", path, c, &id, "holds int8 features", cal_a, cal_b, "--calibration",
                   "--out", NULL);
    expect_refused("precision: fp32 on int8", path, c, &g_id, "holds int8 features", "--precision fp32",
                   "--precision int8 and its --calibration", NULL);
    s = bn_store_open(path, MPI_COMM_WORLD, c, &i8, "{}", &resumed, err, sizeof err);
    CHECK(s && resumed == 1, "precision: resume the int8 file: %s", s ? "not resumed" : err);
    if (s) bn_store_abort(s);

    /* A file from before the attributes: fp32, no calibration. */
    snprintf(path, sizeof path, "%s/prec-old.h5", dir);
    put_preprecision_copy(fp32_file, path);
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    id = g_id;
    snprintf(id.precision, sizeof id.precision, "bf16");
    expect_refused("precision: bf16 on a file without the attribute", path, c, &id, "holds fp32 features",
                   "no 'precision' attribute", NULL);
    s = bn_store_open(path, MPI_COMM_WORLD, c, &g_id, "{}", &resumed, err, sizeof err);
    CHECK(s && resumed == 1, "precision: resume a file without the attribute as fp32: %s", s ? "not resumed" : err);
    if (s) bn_store_abort(s);
}

/* Rank 0: the expected content of test.h5 for the Python checks. */
static void write_expected(const char *dir, const bn_corpus *c) {
    if (g_rank != 0) return;
    char p[4096];
    snprintf(p, sizeof p, "%s/expected.tsv", dir);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL, "cannot write %s", p);
    if (!f) return;
    for (size_t i = 0; i < c->n; i++) {
        char r[256] = "";
        if (fails((long long)i)) reason_of((long long)i, r, sizeof r);
        fprintf(f, "%zu\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", i, expect_status((long long)i, (long long)c->n),
                fails((long long)i) ? code_of((long long)i) : 0, c->items[i].label, c->items[i].split, c->items[i].key,
                c->items[i].path, r);
    }
    fclose(f);
}

/* ------------------------------------------------------------ scenarios */

static void run_full(const char *dir) {
    char path[4096], other[4096];
    bn_corpus c;
    make_corpus(&c, N_IMAGES);
    snprintf(path, sizeof path, "%s/test.h5", dir);

    /* Run 1: create, write images [0, 15) from interleaved ranks. */
    bn_store *s = must_open(path, &c, "{\"run\":1}", 0);
    if (!s) goto out;
    const unsigned char *st = bn_store_status(s);
    for (size_t i = 0; i < c.n; i++) CHECK(st[i] == BN_ROW_PENDING, "new file: image %zu not pending", i);
    bn_rank_timing t = timing_row();
    write_rows(s, 0, N_FIRST, mine_first, 4, &t);
    for (long long i = 0; i < N_FIRST; i++)
        if (mine_first(i)) CHECK(st[i] == expect_status(i, N_FIRST), "in-memory status of %lld", i);

    /* Bad writes are refused locally and change nothing. */
    {
        char err[ERRLEN] = "";
        long long bad[2] = {N_IMAGES, 0}, dup[2] = {16, 16}, one[1] = {16};
        unsigned char done2[2] = {BN_ROW_DONE, BN_ROW_DONE}, pend[1] = {BN_ROW_PENDING}, fail1[1] = {BN_ROW_FAILED};
        float f2[2 * 2048] = {0};
        CHECK(bn_store_write(s, bad, 2, f2, done2, NULL, NULL, err, sizeof err) < 0 && strstr(err, "out of range"),
              "out-of-range index accepted: %s", err);
        CHECK(bn_store_write(s, dup, 2, f2, done2, NULL, NULL, err, sizeof err) < 0 && strstr(err, "twice"),
              "duplicate index accepted: %s", err);
        CHECK(bn_store_write(s, one, 1, f2, pend, NULL, NULL, err, sizeof err) < 0, "pending status accepted");
        CHECK(bn_store_write(s, one, 1, f2, fail1, NULL, NULL, err, sizeof err) < 0, "failure without code accepted");
        CHECK(bn_store_write(s, one, 0, NULL, NULL, NULL, NULL, err, sizeof err) == 0, "empty write refused");
        CHECK(st[16] == BN_ROW_PENDING, "a refused write changed the status");
    }
    must_close(s, &t, 0);

    /* Refusals against the file just made. */
    bn_store_identity id2 = g_id;
    snprintf(id2.preprocess, sizeof id2.preprocess, "tf2015");
    expect_refused("identity: preprocess", path, &c, &id2, "preprocess", "'keras'", "'tf2015'", "--out", NULL);
    id2 = g_id;
    id2.weights_sha256[0] = 'f';
    expect_refused("identity: weights", path, &c, &id2, "weights_sha256", "'0123", "'f123", NULL);
    id2 = g_id;
    snprintf(id2.dct, sizeof id2.dct, "fast");
    expect_refused("identity: dct", path, &c, &id2, "dct", "'accurate'", "'fast'", NULL);
    {
        bn_corpus c2;
        make_corpus(&c2, N_IMAGES);
        c2.items[5].split = (c2.items[5].split + 1) % 3;
        expect_refused("corpus: a split", path, &c2, &g_id, "the corpus changed", "corpus_sha256", NULL);
        free_corpus(&c2);
        make_corpus(&c2, N_IMAGES - 1);
        expect_refused("corpus: image count", path, &c2, &g_id, "the corpus changed", "23", "22", NULL);
        free_corpus(&c2);
        make_corpus(&c2, N_IMAGES);
        char *tmp = c2.labels[0];
        c2.labels[0] = c2.labels[1];
        c2.labels[1] = tmp;
        expect_refused("corpus: class names", path, &c2, &g_id, "the corpus changed", NULL);
        free_corpus(&c2);
    }
    expect_refused("not writable (/proc)", "/proc/bneck_store_test.h5", &c, &g_id, "cannot create the HDF5 file",
                   "HDF5_USE_FILE_LOCKING", NULL);
    snprintf(other, sizeof other, "%s/no/such/folder/x.h5", dir);
    expect_refused("not writable (no folder)", other, &c, &g_id, "cannot create the HDF5 file", NULL);
    expect_refused("a folder", dir, &c, &g_id, "is a folder", NULL);
    snprintf(other, sizeof other, "%s/text.h5", dir);
    put_file(other, "this is not HDF5\n");
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    expect_refused("text file", other, &c, &g_id, "not a bneck features file", NULL);
    snprintf(other, sizeof other, "%s/empty.h5", dir);
    put_file(other, "");
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    expect_refused("empty file", other, &c, &g_id, "not a bneck features file", NULL);
    snprintf(other, sizeof other, "%s/plain.h5", dir);
    put_other_h5(other, NULL);
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    expect_refused("HDF5 without format", other, &c, &g_id, "not a bneck features file", NULL);
    snprintf(other, sizeof other, "%s/otherfmt.h5", dir);
    put_other_h5(other, "something-else");
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    expect_refused("other format", other, &c, &g_id, "not a bneck features file", "something-else", NULL);
    snprintf(other, sizeof other, "%s/v2.h5", dir);
    put_version_copy(path, other, 2);
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    expect_refused("version 2", other, &c, &g_id, "version 2", "reads version 1", NULL);
    if (g_rank == 0) CHECK(access(path, F_OK) == 0, "a refused resume removed the file");
    run_precision(dir, path, &c);

    /* Run 2: resume; every rank sees every status; write the rest. */
    s = must_open(path, &c, "{\"run\":2}", 1);
    if (!s) goto out;
    st = bn_store_status(s);
    for (long long i = 0; i < N_IMAGES; i++)
        CHECK(st[i] == expect_status(i, N_FIRST), "resumed: image %lld status %d, want %d", i, st[i],
              expect_status(i, N_FIRST));
    t = timing_row();
    write_rows(s, N_FIRST, N_IMAGES, mine_second, 8, &t);
    must_close(s, &t, 1);

    /* Run 3: reopen, all done or failed; abort (runs stays 2). */
    s = must_open(path, &c, "{\"run\":3}", 1);
    if (!s) goto out;
    st = bn_store_status(s);
    for (long long i = 0; i < N_IMAGES; i++)
        CHECK(st[i] == expect_status(i, N_IMAGES), "final: image %lld status %d", i, st[i]);
    bn_store_abort(s);
    write_expected(dir, &c);

    /* More ranks than images (at 3 and 5 ranks), and no images at all. */
    {
        bn_corpus c2;
        make_corpus(&c2, 2);
        snprintf(other, sizeof other, "%s/small.h5", dir);
        /* Run 1 fails both images, run 2 retries them and they succeed:
         * code and reason must be reset. */
        for (int run = 0; run < 2; run++) {
            s = must_open(other, &c2, NULL, run);
            if (!s) break;
            st = bn_store_status(s);
            for (long long i = 0; i < 2; i++)
                CHECK(st[i] == (run ? BN_ROW_FAILED : BN_ROW_PENDING), "small.h5 run %d: image %lld status %d", run,
                      i, st[i]);
            t = timing_row();
            for (long long i = 0; i < 2; i++) {
                if (!mine_first(i)) continue;
                float row[2048];
                for (int j = 0; j < 2048; j++) row[j] = (float)(i * 1000 + j);
                unsigned char rs = run ? BN_ROW_DONE : BN_ROW_FAILED, rc = BN_IMG_UNREADABLE;
                const char *rr = "No such file or directory";
                char err[ERRLEN] = "";
                CHECK(bn_store_write(s, &i, 1, row, &rs, &rc, &rr, err, sizeof err) == 0, "small.h5: %s", err);
                if (run) t.done++; else t.failed++;
            }
            must_close(s, &t, 1);
        }
        free_corpus(&c2);
        make_corpus(&c2, 0);
        snprintf(other, sizeof other, "%s/zero.h5", dir);
        s = must_open(other, &c2, NULL, 0);
        if (s) {
            t = timing_row();
            must_close(s, &t, 1);
        }
        s = must_open(other, &c2, NULL, 1);
        if (s) bn_store_abort(s);
        free_corpus(&c2);
    }
out:
    free_corpus(&c);
}

static void run_kill(const char *dir) {
    char path[4096];
    bn_corpus c;
    make_corpus(&c, N_IMAGES);
    snprintf(path, sizeof path, "%s/kill.h5", dir);
    bn_store *s = must_open(path, &c, "{\"run\":\"killed\"}", 0);
    if (s) {
        bn_rank_timing t = timing_row();
        write_rows(s, 0, 10, mine_first, 3, &t);
    }
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    fflush(NULL);
    if (t_failures == 0) raise(SIGKILL); /* the point: no close, no flush */
    free_corpus(&c);
}

static void run_after_kill(const char *dir) {
    char path[4096];
    bn_corpus c;
    make_corpus(&c, N_IMAGES);
    snprintf(path, sizeof path, "%s/kill.h5", dir);
    bn_store *s = must_open(path, &c, "{\"run\":\"after\"}", 1);
    if (s) {
        const unsigned char *st = bn_store_status(s);
        for (long long i = 0; i < N_IMAGES; i++)
            CHECK(st[i] == expect_status(i, 10), "after kill: image %lld status %d", i, st[i]);
        bn_rank_timing t = timing_row();
        write_rows(s, 10, N_IMAGES, mine_second, 5, &t);
        must_close(s, &t, 1);
    }
    free_corpus(&c);
}

int main(int argc, char **argv) {
    mpiCheck(MPI_Init(&argc, &argv));
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
    bn_log_init(g_rank, BN_INFO);
    if (argc < 2) {
        if (g_rank == 0) fprintf(stderr, "usage: test_store DIR [full|kill|after-kill]\n");
        mpiCheck(MPI_Finalize());
        return 2;
    }
    const char *mode = argc > 2 ? argv[2] : "full";
    if (strcmp(mode, "full") == 0)
        run_full(argv[1]);
    else if (strcmp(mode, "kill") == 0)
        run_kill(argv[1]);
    else if (strcmp(mode, "after-kill") == 0)
        run_after_kill(argv[1]);
    else
        CHECK(0, "unknown mode %s", mode);
    int mine = t_failures, all = 0;
    mpiCheck(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    int rc = 0;
    if (g_rank == 0) {
        char name[64];
        snprintf(name, sizeof name, "test_store %s (%d ranks)", mode, g_size);
        rc = t_done(name);
    }
    if (all) rc = 1;
    mpiCheck(MPI_Finalize());
    return rc;
}
