/* test_weights.c: io/weights.c round trips, reproducibility, BN folding,
 * SHA-256, and the reader's messages for damaged files it can make itself
 * (tests/weights_errors.sh covers files edited with h5py).
 *
 * Each check also asserts that no HDF5 file, group, dataset or attribute is
 * left open, on success and on every error path.
 */
#include "io/weights.h"
#include "net/graph.h"
#include "net/model.h"
#include "tests/testutil.h"

#include <hdf5.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[256]; /* the temp folder of this run */

/* A path in the temp folder (static buffer rotation: 4 live at once). */
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next = 0;
    char *b = buf[next++ & 3];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

/* splitmix64: the test's own deterministic generator. */
static uint64_t g_rng;
static uint64_t rng_next(void) {
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [lo, hi). */
static float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0));
}

/* Allocate p with the graph's shapes and fill it from seed; convs 3 and 50
 * also get a gamma. */
static void fill_params(bn_raw_params *p, uint64_t seed) {
    g_rng = seed;
    bn_raw_alloc(p);
    for (int k = 0; k < BN_NCONV; k++) {
        bn_conv_raw *c = &p->conv[k];
        size_t nk = (size_t)c->kh * c->kw * c->cin * c->cout;
        for (size_t i = 0; i < nk; i++) c->kernel[i] = rng_uniform(-0.5f, 0.5f);
        for (int o = 0; o < c->cout; o++) {
            c->beta[o] = rng_uniform(-1, 1);
            c->mean[o] = rng_uniform(-1, 1);
            c->var[o] = rng_uniform(0.01f, 2.01f);
        }
        if (k == 3 || k == 50) {
            c->gamma = malloc((size_t)c->cout * sizeof(float));
            for (int o = 0; o < c->cout; o++) c->gamma[o] = rng_uniform(0.5f, 1.5f);
        }
    }
}

/* 1 when a and b hold the same shapes and bit-identical arrays. */
static int same_params(const bn_raw_params *a, const bn_raw_params *b) {
    for (int k = 0; k < BN_NCONV; k++) {
        const bn_conv_raw *x = &a->conv[k], *y = &b->conv[k];
        if (x->kh != y->kh || x->kw != y->kw || x->cin != y->cin || x->cout != y->cout) return 0;
        size_t nk = (size_t)x->kh * x->kw * x->cin * x->cout, nc = (size_t)x->cout * sizeof(float);
        if (memcmp(x->kernel, y->kernel, nk * sizeof(float)) || memcmp(x->beta, y->beta, nc) ||
            memcmp(x->mean, y->mean, nc) || memcmp(x->var, y->var, nc))
            return 0;
        if (!x->gamma != !y->gamma) return 0;
        if (x->gamma && memcmp(x->gamma, y->gamma, nc)) return 0;
    }
    return 1;
}

/* HDF5 objects (files, groups, datasets, attributes) still open anywhere. */
static ssize_t open_objects(void) { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

/* Whole file into a malloc'd buffer (*n bytes), or NULL. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            b = realloc(b, cap);
            if (!b) break;
        }
        size_t got = fread(b + *n, 1, cap - *n, f);
        *n += got;
        if (got == 0) break;
    }
    fclose(f);
    return b;
}

/* Write n bytes to path; 0 on success. */
static int spit(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* Read path expecting failure with a message containing want; checks that
 * the params come back freed and nothing is left open. */
static void expect_read_error(const char *path, const char *want) {
    bn_raw_params p;
    char err[512] = "";
    int rc = bn_weights_read(path, &p, err, sizeof err);
    CHECK(rc == -1, "read of %s should fail", path);
    CHECK(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    CHECK(strncmp(err, path, strlen(path)) == 0, "message '%s' does not start with the path", err);
    CHECK(p.conv[0].kernel == NULL && p.conv[93].var == NULL, "params not freed after a failed read");
    CHECK(open_objects() == 0, "%zd HDF5 objects left open after reading %s", open_objects(), path);
    if (rc == 0) bn_raw_free(&p);
}

/* Write p with first_index, read it back and compare; the file is removed
 * afterwards unless keep (each is about 88 MB). */
static void round_trip(const bn_raw_params *p, int first_index, const char *name, int keep) {
    char err[512] = "";
    const char *path = tmp_path(name);
    int rc = bn_weights_write(path, p, first_index, err, sizeof err);
    CHECK(rc == 0, "write %s (first_index %d): %s", name, first_index, err);
    CHECK(open_objects() == 0, "objects left open after write");
    bn_raw_params q;
    rc = bn_weights_read(path, &q, err, sizeof err);
    CHECK(rc == 0, "read %s: %s", name, err);
    CHECK(open_objects() == 0, "objects left open after read");
    if (rc == 0) {
        CHECK(same_params(p, &q), "%s: read back differs from what was written", name);
        bn_raw_free(&q);
    }
    if (!keep) unlink(path);
}

/* Compare bn_model_fold's output for conv k with a double computation. */
static void check_fold(const bn_raw_params *p, const bn_model *m, int k) {
    const bn_conv_raw *c = &p->conv[k];
    size_t nk = (size_t)c->kh * c->kw * c->cin;
    int bad = 0;
    double worst = 0;
    for (int o = 0; o < c->cout; o++) {
        double gamma = c->gamma ? c->gamma[o] : 1.0;
        double scale = gamma / sqrt((double)c->var[o] + 1e-3);
        double b = (double)c->beta[o] - (double)c->mean[o] * scale;
        double eb = fabs(m->b[k][o] - b) / fmax(fabs(b), 1e-6);
        if (eb > worst) worst = eb;
        for (size_t i = 0; i < nk; i += 1 + nk / 17) {
            double w = (double)c->kernel[i * c->cout + o] * scale;
            double e = fabs(m->w[k][i * c->cout + o] - w) / fmax(fabs(w), 1e-6);
            if (e > worst) worst = e;
        }
    }
    if (worst > 1e-6) bad = 1;
    CHECK(!bad, "conv %d: folded weights differ from the double computation (relative %g)", k, worst);
}

/* ------------------------------------------------------------ the tests */

static void test_round_trips(bn_raw_params *p) {
    round_trip(p, 1, "a.h5", 1);
    round_trip(p, 95, "c95.h5", 0);     /* a model built twice: numbering starts above 1 */
    round_trip(p, 0, "tfk.h5", 0);      /* tf.keras: conv2d, conv2d_1, ... */
    round_trip(p, 1000, "k1000.h5", 0); /* numbers of several widths: order must be numeric */

    /* Reproducible bytes. */
    char err[512] = "";
    CHECK(bn_weights_write(tmp_path("b.h5"), p, 1, err, sizeof err) == 0, "second write: %s", err);
    size_t na = 0, nb = 0;
    unsigned char *a = slurp(tmp_path("a.h5"), &na), *b = slurp(tmp_path("b.h5"), &nb);
    CHECK(a && b && na == nb && na > 80000000 && memcmp(a, b, na) == 0, "two writes differ (%zu and %zu bytes)", na, nb);
    free(a);
    free(b);
    unlink(tmp_path("b.h5"));
}

static void test_load_and_fold(const bn_raw_params *p) {
    bn_model m;
    char err[512] = "";
    int rc = bn_weights_load(tmp_path("a.h5"), &m, err, sizeof err);
    CHECK(rc == 0, "load: %s", err);
    if (rc != 0) return;
    const int ks[] = {0, 3, 10, 47, 50, 93};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) check_fold(p, &m, ks[i]);
    char h[65];
    CHECK(bn_file_sha256(tmp_path("a.h5"), h, err, sizeof err) == 0, "%s", err);
    CHECK(strlen(m.sha256) == 64 && strcmp(m.sha256, h) == 0, "model sha256 '%s' vs file '%s'", m.sha256, h);
    CHECK(open_objects() == 0, "objects left open after load");
    bn_model_free(&m);

    bn_model m2;
    CHECK(bn_weights_load(tmp_path("missing.h5"), &m2, err, sizeof err) == -1, "load of a missing file");
    CHECK(m2.mem == NULL && m2.sha256[0] == '\0', "failed load leaves the model empty");
}

static void test_sha256(void) {
    char h[65], err[512];
    CHECK(spit(tmp_path("abc"), "abc", 3) == 0, "write abc");
    CHECK(bn_file_sha256(tmp_path("abc"), h, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc) = %s", h);
    CHECK(spit(tmp_path("empty"), "", 0) == 0, "write empty");
    CHECK(bn_file_sha256(tmp_path("empty"), h, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256('') = %s", h);
    /* Several chunks and a partial one: bytes (i*7+3) % 251 for 3 MiB + 12345
     * (digest from sha256sum). */
    size_t n = 3u * 1048576u + 12345u;
    unsigned char *b = malloc(n);
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)((i * 7 + 3) % 251);
    CHECK(spit(tmp_path("pat"), b, n) == 0, "write pattern");
    free(b);
    CHECK(bn_file_sha256(tmp_path("pat"), h, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(h, "78bc84bbb8f2b597f3814ecea400bbb86ffb2dcadc15896e8f4b3635211d336b"), "sha256(pattern) = %s", h);
    CHECK(bn_file_sha256(tmp_path("nope"), h, err, sizeof err) == -1 && strstr(err, "cannot open: No such file"),
          "missing file: %s", err);
}

static void test_errors(bn_raw_params *p) {
    char err[512] = "";
    const char *missing = tmp_path("no-such.h5");
    char want[600];
    snprintf(want, sizeof want, "%s: cannot open: %s", missing, strerror(ENOENT));
    expect_read_error(missing, want);
    expect_read_error(g_dir, "cannot open: Is a directory");

    CHECK(spit(tmp_path("text.h5"), "just some text\n", 15) == 0, "write text");
    expect_read_error(tmp_path("text.h5"), "not an HDF5 file");
    CHECK(spit(tmp_path("zero.h5"), "", 0) == 0, "write empty");
    expect_read_error(tmp_path("zero.h5"), "not an HDF5 file");

    size_t n = 0;
    unsigned char *a = slurp(tmp_path("a.h5"), &n);
    CHECK(a != NULL, "read a.h5");
    if (a) {
        CHECK(spit(tmp_path("half.h5"), a, n / 2) == 0, "write half");
        expect_read_error(tmp_path("half.h5"), "cannot open as HDF5 (truncated or damaged?)");
        free(a);
    }

    /* A file whose conv 10 has 64 outputs instead of 96 (the buffers are big
     * enough to write the smaller shape). */
    p->conv[10].cout = 64;
    CHECK(bn_weights_write(tmp_path("shape.h5"), p, 1, err, sizeof err) == 0, "%s", err);
    p->conv[10].cout = 96;
    expect_read_error(tmp_path("shape.h5"), "shape.h5: conv2d_11 (mixed0/branch3x3dbl_3): kernel shape 3x3x96x64, expected 3x3x96x96");
    unlink(tmp_path("shape.h5"));

    float keep = p->conv[7].kernel[123];
    p->conv[7].kernel[123] = NAN;
    CHECK(bn_weights_write(tmp_path("nan.h5"), p, 1, err, sizeof err) == 0, "%s", err);
    p->conv[7].kernel[123] = keep;
    expect_read_error(tmp_path("nan.h5"), "conv2d_8 (mixed0/branch5x5_2): dataset conv2d_8/kernel:0 contains NaN (element 123)");
    unlink(tmp_path("nan.h5"));

    keep = p->conv[90].beta[5];
    p->conv[90].beta[5] = -INFINITY;
    CHECK(bn_weights_write(tmp_path("inf.h5"), p, 95, err, sizeof err) == 0, "%s", err);
    p->conv[90].beta[5] = keep;
    expect_read_error(tmp_path("inf.h5"),
                      "batch_normalization_185 (mixed10/branch3x3dbl_2): dataset batch_normalization_185/beta:0 contains -Inf (element 5)");
    unlink(tmp_path("inf.h5"));

    keep = p->conv[0].var[31];
    p->conv[0].var[31] = -0.25f;
    CHECK(bn_weights_write(tmp_path("negvar.h5"), p, 1, err, sizeof err) == 0, "%s", err);
    p->conv[0].var[31] = keep;
    expect_read_error(tmp_path("negvar.h5"), "batch_normalization_1 (conv1): dataset batch_normalization_1/moving_variance:0 has a negative variance (-0.25 at channel 31)");
    unlink(tmp_path("negvar.h5"));

    /* Writer errors: bad numbering, missing folder (no file left behind). */
    CHECK(bn_weights_write(tmp_path("neg.h5"), p, -1, err, sizeof err) == -1 && strstr(err, "out of range"), "first_index -1: %s", err);
    CHECK(bn_weights_write(tmp_path("no/such/dir/w.h5"), p, 1, err, sizeof err) == -1 && strstr(err, "cannot create the file"),
          "missing folder: %s", err);
    CHECK(access(tmp_path("neg.h5"), F_OK) != 0, "a refused write left a file");
    CHECK(open_objects() == 0, "objects left open after failed writes");
}

/* Remove the temp folder's files and the folder. */
static void cleanup(void) {
    const char *names[] = {"a.h5", "b.h5", "c95.h5", "tfk.h5", "k1000.h5", "abc", "empty", "pat", "text.h5", "zero.h5",
                           "half.h5", "shape.h5", "nan.h5", "inf.h5", "negvar.h5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    rmdir(g_dir);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/bneck-test-weights.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    bn_raw_params p;
    fill_params(&p, 20240611);
    test_round_trips(&p);
    test_load_and_fold(&p);
    test_sha256();
    test_errors(&p);
    bn_raw_free(&p);
    cleanup();
    return t_done("test_weights");
}
