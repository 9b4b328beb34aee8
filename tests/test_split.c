/* test_split.c: retrain.py's split and label rule, against values computed
 * with Python's hashlib and re (see the comments for the formula used).
 *
 * Expected percentages were produced by /usr/bin/python3 with:
 *   h = re.sub(r'_nohash_.*$', '', key)
 *   p = (int(hashlib.sha1(h.encode()).hexdigest(), 16) % 2**27) * (100.0 / (2**27 - 1))
 * and are written as hex floats, so they compare exactly.
 * Splits: 0 train, 1 validation, 2 test, at (val, test) = (10,10), (15,5), (0,30).
 * Exit 0 when every check passes, 1 otherwise.
 */
#include "io/corpus.h"
#include "io/split.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int g_fail = 0;

#define CHECK(cond, ...)                                 \
    do {                                                 \
        if (!(cond)) {                                   \
            printf("FAIL: %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                         \
            printf("\n");                                \
            g_fail = 1;                                  \
        }                                                \
    } while (0)

typedef struct {
    const char *key; /* the string hashed (before the _nohash_ cut) */
    double pct;      /* expected bn_split_percentage */
    int split[3];    /* expected at (10,10), (15,5), (0,30) */
} split_case;

static const split_case k_cases[] = {
    {"", 0x1.88315ff3062c0p+6 /* 98.048217580081655 */, {0, 0, 0}},
    {"a", 0x1.7520421ea4084p+6 /* 93.281502226602299 */, {0, 0, 0}},
    {"flower_photos/daisy/5547758_eea9edfd54_n.jpg", 0x1.45f1096ebe213p+6 /* 81.485387544970123 */, {0, 0, 0}},
    {"data/roses/rose 1.jpg", 0x1.46bad62cd75acp+5 /* 40.841228819200609 */, {0, 0, 0}},
    {"data/roses/x_nohash_1.jpg", 0x1.c856d1a10ada3p+4 /* 28.521196011611789 */, {0, 0, 2}},
    {"data/roses/x_nohash_2.jpg", 0x1.c856d1a10ada3p+4 /* 28.521196011611789 */, {0, 0, 2}},
    {"data/roses/x", 0x1.c856d1a10ada3p+4 /* 28.521196011611789 */, {0, 0, 2}},
    {"d_nohash_/e_nohash_f", 0x1.a1a3cd843479bp+5 /* 52.204981835223599 */, {0, 0, 0}},
    {"d", 0x1.a1a3cd843479bp+5 /* 52.204981835223599 */, {0, 0, 0}},
    {"a_nohash_b\n", 0x1.32d6056c5ac0bp+6 /* 76.709005063094239 */, {0, 0, 0}},
    {"a\n", 0x1.32d6056c5ac0bp+6 /* 76.709005063094239 */, {0, 0, 0}},
    {"a_nohash_b\nc", 0x1.fdfd902fbfb20p+5 /* 63.748810170209481 */, {0, 0, 0}},
    {"a_nohash_b\nc_nohash_d\n", 0x1.8343949c68729p+6 /* 96.815996593356104 */, {0, 0, 0}},
    {"a_nohash_b\nc\n", 0x1.8343949c68729p+6 /* 96.815996593356104 */, {0, 0, 0}},
    {"x_nohash_\n\n_nohash_", 0x1.7d38b7bba716fp+6 /* 95.305388385842647 */, {0, 0, 0}},
    {"x_nohash_\n\n", 0x1.7d38b7bba716fp+6 /* 95.305388385842647 */, {0, 0, 0}},
    {"x_nohash_a\n\n", 0x1.89bdabe737b57p+6 /* 98.435226071143333 */, {0, 0, 0}},
    {"_nohash_", 0x1.88315ff3062c0p+6 /* 98.048217580081655 */, {0, 0, 0}},
    {"_nohash_nohash_x\ny", 0x1.075d4d40eba9ap+5 /* 32.920557505790569 */, {0, 0, 0}},
    {"a_nohash", 0x1.131f40ea63e82p+4 /* 17.195130267703014 */, {2, 2, 2}},
    {"donn\xc3""\xa9""es/\xc3""\xa9""t\xc3""\xa9""/\xc3""\xa7""\xc3""\xa0"".jpg", 0x1.8a82016d50402p+5 /* 49.313479284297514 */, {0, 0, 0}},
    {"speech/yes/0a7c2a8d_nohash_0.wav", 0x1.1685e5aed0bcbp+6 /* 69.630758983125972 */, {0, 0, 0}},
    {"speech/yes/0a7c2a8d", 0x1.1685e5aed0bcbp+6 /* 69.630758983125972 */, {0, 0, 0}},
    {"K\xe2""\x84""\xaa""\xc4""\xb0"".jpg", 0x1.5a7e75134fceap+4 /* 21.655873370586882 */, {0, 0, 2}},
    {"img120378.jpg", 0x1.3fffc387fff87p+3 /* 9.999971166252875 */, {1, 1, 2}},
    {"img2967.jpg", 0x1.40027178004e3p+3 /* 10.000298246743517 */, {2, 1, 2}},
    {"img261053.jpg", 0x1.3ffe7077ffce1p+4 /* 19.999618977305435 */, {2, 2, 2}},
    {"img86887.jpg", 0x1.40025ad0004b5p+4 /* 20.00057488680314 */, {0, 0, 2}},
    {"img10723.jpg", 0x1.0bf800217f000p-12 /* 0.00025555491637851979 */, {1, 1, 2}},
    {"img935.jpg", 0x1.8fffb437fff68p+6 /* 99.999710917470679 */, {0, 0, 0}},
    {"img0.jpg", 0x1.262d287ac5a51p+6 /* 73.544099729836731 */, {0, 0, 0}},
    {"img1.jpg", 0x1.432e4e3065c9cp+6 /* 80.795220142567302 */, {0, 0, 0}},
    {"img2.jpg", 0x1.855d9ee4abb3dp+6 /* 97.341426442127116 */, {0, 0, 0}},
    {"img3.jpg", 0x1.2422b37484567p+6 /* 73.03388769204831 */, {0, 0, 0}},
    {"img4.jpg", 0x1.433bcc1867798p+5 /* 40.404197874696536 */, {0, 0, 0}},
    {"img5.jpg", 0x1.029c6778538cfp+6 /* 64.652738456820984 */, {0, 0, 0}},
    {"img6.jpg", 0x1.52b36cf2566dap+6 /* 84.675220285916481 */, {0, 0, 0}},
    {"img7.jpg", 0x1.625869844b0d3p+4 /* 22.146585003633685 */, {0, 0, 2}},
    {"img8.jpg", 0x1.71d564ae3aac9p+6 /* 92.458391878443891 */, {0, 0, 0}},
    {"img9.jpg", 0x1.905f8f7a0bf1fp+4 /* 25.023330189461486 */, {0, 0, 2}},
    {"img10.jpg", 0x1.755f0f76abe1fp+6 /* 93.342832426300888 */, {0, 0, 0}},
    {"img11.jpg", 0x1.6a59eeab4b3ddp+6 /* 90.587824512927412 */, {0, 0, 0}},
    {"img12.jpg", 0x1.6fe1424dfc284p+3 /* 11.496247436823303 */, {2, 1, 2}},
    {"img13.jpg", 0x1.95c3b0c2b8761p+5 /* 50.720551987890538 */, {0, 0, 0}},
    {"img14.jpg", 0x1.708ea9b611d53p+5 /* 46.069659635943616 */, {0, 0, 0}},
    {"img15.jpg", 0x1.211fece623fdap+6 /* 72.281177135416698 */, {0, 0, 0}},
    {"img16.jpg", 0x1.f6132996c2653p+4 /* 31.379678334144341 */, {0, 0, 0}},
    {"img17.jpg", 0x1.61ac8e983591dp+6 /* 88.41851270510638 */, {0, 0, 0}},
    {"img18.jpg", 0x1.24f5acd49eb59p+6 /* 73.239917108713954 */, {0, 0, 0}},
    {"img19.jpg", 0x1.4fce3ba1f9c77p+5 /* 41.975699677882339 */, {0, 0, 0}},
    {"img20.jpg", 0x1.507d6da20fadbp+6 /* 84.122488529402673 */, {0, 0, 0}},
    {"img21.jpg", 0x1.7fe09669fc12cp+6 /* 95.969323783884363 */, {0, 0, 0}},
    {"img22.jpg", 0x1.665b532acb6a6p+6 /* 89.589184445062159 */, {0, 0, 0}},
    {"img23.jpg", 0x1.41f5654e3eacap+6 /* 80.489644262862527 */, {0, 0, 0}},
    {"img24.jpg", 0x1.e747190ce8e32p+4 /* 30.454857874325349 */, {0, 0, 0}},
    {"img25.jpg", 0x1.10035e6e006bdp+5 /* 34.001644954097607 */, {0, 0, 0}},
    {"img26.jpg", 0x1.161d4454c3a88p+6 /* 69.528580975000409 */, {0, 0, 0}},
    {"img27.jpg", 0x1.1ba6e72d74dcep+6 /* 70.912991247422923 */, {0, 0, 0}},
    {"img28.jpg", 0x1.2faf73c7f5ee7p+6 /* 75.921340107331716 */, {0, 0, 0}},
    {"img29.jpg", 0x1.3f992b13f3256p+5 /* 39.949789195878722 */, {0, 0, 0}},
    {"img30.jpg", 0x1.4d2da46da5b49p+6 /* 83.294572556723452 */, {0, 0, 0}},
    {"img31.jpg", 0x1.817c17242f82ep+5 /* 48.185591013622215 */, {0, 0, 0}},
    {"img32.jpg", 0x1.13f071107e0e2p+6 /* 68.984806306546972 */, {0, 0, 0}},
    {"img33.jpg", 0x1.8e5d2d71cba5ap+5 /* 49.795496834780991 */, {0, 0, 0}},
    {"img34.jpg", 0x1.614ab20e29564p+6 /* 88.322944852135663 */, {0, 0, 0}},
    {"img35.jpg", 0x1.99ab4def3569bp+5 /* 51.208644741838008 */, {0, 0, 0}},
    {"img36.jpg", 0x1.71750dfc2ea1cp+6 /* 92.364311161371404 */, {0, 0, 0}},
    {"img37.jpg", 0x1.847c26308f84cp+3 /* 12.140154929013214 */, {2, 1, 2}},
    {"img38.jpg", 0x1.6171e4a02e3c9p+6 /* 88.361223700353676 */, {0, 0, 0}},
    {"img39.jpg", 0x1.83f28b3c7e516p+6 /* 96.986859269342261 */, {0, 0, 0}},
};

static const double k_settings[3][2] = {{10, 10}, {15, 5}, {0, 30}};

static void test_percentages(void) {
    size_t n = sizeof k_cases / sizeof k_cases[0];
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const split_case *t = &k_cases[i];
        double p = bn_split_percentage(t->key);
        if (p != t->pct) {
            bad++;
            CHECK(0, "percentage of case %zu ('%s') is %.17g, expected %.17g", i, t->key, p,
                  t->pct);
        }
        for (int s = 0; s < 3; s++) {
            int got = bn_split_assign(t->key, k_settings[s][0], k_settings[s][1]);
            if (got != t->split[s]) {
                bad++;
                CHECK(0, "split of case %zu ('%s') at %g/%g is %d, expected %d", i, t->key,
                      k_settings[s][0], k_settings[s][1], got, t->split[s]);
            }
        }
    }
    if (!bad) printf("ok: %zu hashlib percentages and splits\n", n);
}

static void test_nohash(void) {
    /* Everything from the first "_nohash_" on is ignored ... */
    static const char *const same[][2] = {
        {"data/roses/x_nohash_1.jpg", "data/roses/x"},
        {"data/roses/x_nohash_2.jpg", "data/roses/x"},
        {"data/roses/x_nohash_", "data/roses/x"},
        {"d_nohash_/e_nohash_f", "d"},            /* first occurrence, even in a folder */
        {"_nohash_", ""},                          /* empty remainder */
        {"_nohash_anything", ""},
        {"a_nohash_b\n", "a\n"},                   /* '$' matches before a final newline */
        {"a_nohash_b\nc_nohash_d\n", "a_nohash_b\nc\n"}, /* '.' stops at '\n': next one */
        {"x_nohash_\n\n_nohash_", "x_nohash_\n\n"},
        {"a_nohash_b\nc_nohash_d", "a_nohash_b\nc"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        double a = bn_split_percentage(same[i][0]), b = bn_split_percentage(same[i][1]);
        CHECK(a == b, "'%s' should hash like '%s' (%.17g vs %.17g)", same[i][0], same[i][1], a, b);
    }
    /* ... except when it does not match at all. */
    static const char *const differ[][2] = {
        {"a_nohash", "a"},                 /* needs both underscores */
        {"a_NOHASH_b", "a"},               /* case matters */
        {"a_nohash_b\nc", "a"},            /* a '\n' that is not final blocks the match */
        {"x_nohash_a\n\n", "x"},
        {"_nohash_nohash_x\ny", ""},
        {"a_nohash_b\n", "a"},             /* the final newline stays */
    };
    for (size_t i = 0; i < sizeof differ / sizeof differ[0]; i++) {
        double a = bn_split_percentage(differ[i][0]), b = bn_split_percentage(differ[i][1]);
        CHECK(a != b, "'%s' should not hash like '%s'", differ[i][0], differ[i][1]);
    }
    printf("ok: _nohash_ cases\n");
}

/* The next double above a positive x (nextafter without libm). */
static double next_up(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    u++;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void test_bounds(void) {
    /* p is in [0, 100] and the comparisons are strict (<), as in retrain.py. */
    const char *key = "img120378.jpg"; /* p = 9.999971166252875 */
    double p = bn_split_percentage(key);
    CHECK(p >= 0 && p <= 100, "p out of range: %g", p);
    CHECK(bn_split_assign(key, p, 0) == BN_SPLIT_TRAIN, "p < p must be false (validation)");
    CHECK(bn_split_assign(key, next_up(p), 0) == BN_SPLIT_VAL, "just above p: validation");
    CHECK(bn_split_assign(key, 0, p) == BN_SPLIT_TRAIN, "p < 0 + p must be false (test)");
    CHECK(bn_split_assign(key, 0, next_up(p)) == BN_SPLIT_TEST, "just above p: test");
    CHECK(bn_split_assign(key, 0, 0) == BN_SPLIT_TRAIN, "0/0: everything is train");
    CHECK(bn_split_assign(key, 100, 0) == BN_SPLIT_VAL, "100/0: validation");
    CHECK(bn_split_assign(key, 0, 100) == BN_SPLIT_TEST, "0/100: test");
    /* Empty key: SHA-1("") = da39a3ee...afd80709, low 27 bits of 0xafd80709. */
    CHECK(bn_split_percentage("") == (double)(0xafd80709u & 0x7ffffffu) * (100.0 / 134217727.0),
          "empty key");
    CHECK(strcmp(bn_split_name(BN_SPLIT_TRAIN), "train") == 0, "name of train");
    CHECK(strcmp(bn_split_name(BN_SPLIT_VAL), "validation") == 0, "name of validation");
    CHECK(strcmp(bn_split_name(BN_SPLIT_TEST), "test") == 0, "name of test");
    printf("ok: boundaries and names\n");
}

/* Expected labels from Python: re.sub(r'[^a-z0-9]+', ' ', name.lower()). */
static const char *const k_labels[][2] = {
    {"roses", "roses"},
    {"Roses", "roses"},
    {"daisy_flowers", "daisy flowers"},
    {"Sun-Flowers", "sun flowers"},
    {"  lead and trail  ", " lead and trail "},
    {"a--__--b", "a b"},
    {"ABC123xyz", "abc123xyz"},
    {"_x_", " x "},
    {"---", " "},
    {"donn\xc3""\xa9""es", "donn es"},
    {"\xc3""\xa9""t\xc3""\xa9""", " t "},
    {"\xc3""\x87""a va", " a va"},
    {"\xe2""\x84""\xaa""elvin", "kelvin"},
    {"\xc4""\xb0""stanbul", "i stanbul"},
    {"x\xc4""\xb0""", "xi "},
    {"\xc3""\x85""ngstr\xc3""\xb6""m", " ngstr m"},
    {"\xe6""\x97""\xa5""\xe6""\x9c""\xac""\xe8""\xaa""\x9e""", " "},
    {"tulip.s", "tulip s"},
    {"2019 Cats!", "2019 cats "},
    {"A\xe2""\x84""\xaa""", "ak"},
    {"mixed_CASE_Name99", "mixed case name99"},
    {"a\xff" "b", "a b"}, /* invalid UTF-8: os.listdir's surrogate escapes are not [a-z0-9] */
    {"", ""},
};

static void test_labels(void) {
    size_t n = sizeof k_labels / sizeof k_labels[0];
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        char out[256];
        memset(out, 'Z', sizeof out);
        size_t len = strlen(k_labels[i][0]) + 1; /* the documented minimum */
        bn_label_from_folder(k_labels[i][0], out, len);
        if (strcmp(out, k_labels[i][1]) != 0) {
            bad++;
            CHECK(0, "label of '%s' is '%s', expected '%s'", k_labels[i][0], out, k_labels[i][1]);
        }
        CHECK(out[len] == 'Z', "label of '%s' wrote past outlen", k_labels[i][0]);
    }
    /* A short buffer truncates and still terminates. */
    char small[4];
    memset(small, 'Z', sizeof small);
    bn_label_from_folder("Sun-Flowers", small, 4);
    CHECK(strcmp(small, "sun") == 0, "truncated label is '%s'", small);
    char one[1] = {'Z'};
    bn_label_from_folder("abc", one, 1);
    CHECK(one[0] == '\0', "outlen 1 must give an empty string");
    if (!bad) printf("ok: %zu labels\n", n);
}

/* A manifest through the library: errors leave the struct empty, order and
 * path resolution as documented. */
static void test_manifest_api(void) {
    char dir[] = "/tmp/bneck_test_split.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    char file[512], err[512];
    snprintf(file, sizeof file, "%s/m.tsv", dir);
    FILE *f = fopen(file, "w");
    if (!f) {
        CHECK(0, "cannot write %s", file);
        return;
    }
    fprintf(f, "# comment\r\nb/2.jpg\tzebra\r\n\r\n/abs/1.jpg\tant\na/1.jpg\tzebra\nb/2.jpg\tzebra\n");
    fclose(f);
    bn_corpus c;
    bn_split_opts so = {10, 10};
    int rc = bn_corpus_read_manifest(file, &so, &c, err, sizeof err);
    CHECK(rc == 0, "manifest load failed: %s", err);
    if (rc == 0) {
        CHECK(c.nlabels == 2 && strcmp(c.labels[0], "ant") == 0 && strcmp(c.labels[1], "zebra") == 0,
              "labels not sorted");
        CHECK(c.n == 3, "expected 3 images, got %zu", c.n);
        if (c.n == 3) {
            CHECK(strcmp(c.items[0].path, "/abs/1.jpg") == 0, "absolute path kept");
            char want[600];
            snprintf(want, sizeof want, "%s/a/1.jpg", dir);
            CHECK(strcmp(c.items[1].path, want) == 0, "relative path joined: %s", c.items[1].path);
            CHECK(strcmp(c.items[1].key, "a/1.jpg") == 0, "key as written: %s", c.items[1].key);
            CHECK(c.items[2].label == 1 && strcmp(c.items[2].key, "b/2.jpg") == 0, "order");
            CHECK(c.items[1].split == bn_split_assign("a/1.jpg", 10, 10), "split of the key");
        }
        int dup = 0;
        for (size_t i = 0; i < c.nwarnings; i++)
            dup += strstr(c.warnings[i], "m.tsv:6: duplicate of line 2") != NULL;
        CHECK(dup == 1, "duplicate warning missing");
        bn_corpus_free(&c);
        CHECK(c.n == 0 && c.items == NULL && c.labels == NULL, "free zeroes the struct");
    }
    f = fopen(file, "w");
    if (f) {
        fprintf(f, "a.jpg\tx\nb.jpg\ty\na.jpg\ty\n");
        fclose(f);
    }
    rc = bn_corpus_read_manifest(file, &so, &c, err, sizeof err);
    CHECK(rc == -1 && strstr(err, "m.tsv:3") && strstr(err, "line 1"),
          "conflicting labels: rc %d, err '%s'", rc, err);
    CHECK(c.n == 0 && c.items == NULL && c.nwarnings == 0 && c.labels == NULL,
          "failed load must leave the struct empty");
    unlink(file);
    rmdir(dir);
    printf("ok: manifest through the library\n");
}

int main(void) {
    test_percentages();
    test_nohash();
    test_bounds();
    test_labels();
    test_manifest_api();
    if (g_fail) {
        printf("FAIL: test_split\n");
        return 1;
    }
    printf("ok: test_split\n");
    return 0;
}
