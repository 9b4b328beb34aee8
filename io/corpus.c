/* corpus.c: discovering a labelled image corpus and splitting it (corpus.h).
 *
 * Folder mode follows retrain.py's create_image_lists(); manifest mode reads
 * "path<TAB>label" lines. Both end in the same bn_corpus: classes in byte
 * order, images ordered by class then path, each with its retrain.py split.
 * The rules are written out for users in docs/corpus.md.
 */
#include "io/corpus.h"
#include "io/split.h"
#include "pipeline/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* retrain.py: a class below this many images gets a warning. */
#define BN_FEW_IMAGES 20
/* retrain.py's MAX_NUM_IMAGES_PER_CLASS: images past this share hash values. */
#define BN_MAX_PER_CLASS ((size_t)((1u << 27) - 1u))
/* Duplicate manifest lines reported one by one; the rest are counted. */
#define BN_MAX_DUP_WARNINGS 1000

static const char *const k_ext_reason = "extension is not one of jpg, jpeg, JPG, JPEG, png, PNG";
static const char *const k_nested_reason =
    "nested folder ignored (classes are the top-level folders only)";

const char *bn_split_name(bn_split s) {
    switch (s) {
    case BN_SPLIT_TRAIN: return "train";
    case BN_SPLIT_VAL: return "validation";
    case BN_SPLIT_TEST: return "test";
    }
    return "unknown";
}

/* ------------------------------------------------------------ small helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A malloc'd printf. */
static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *s = mallocCheck((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* os.path.join(a, b) for a relative b: "a" + "/" + b, without doubling a
 * trailing '/' of a; an empty a gives b. An absolute b replaces a. */
static char *path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la == 0 || b[0] == '/') return strdupCheck(b);
    int sep = a[la - 1] != '/';
    char *s = mallocCheck(la + (size_t)sep + lb + 1);
    memcpy(s, a, la);
    if (sep) s[la] = '/';
    memcpy(s + la + (size_t)sep, b, lb + 1);
    return s;
}

/* Growable arrays of the corpus (capacity kept beside the struct). */
static void push_item(bn_corpus *c, size_t *cap, char *path, char *key, int label) {
    if (c->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        c->items = reallocCheck(c->items, *cap * sizeof *c->items);
    }
    bn_item *it = &c->items[c->n++];
    it->path = path;
    it->key = key;
    it->label = label;
    it->split = BN_SPLIT_TRAIN;
}

static void push_reject(bn_corpus *c, size_t *cap, char *path, const char *reason) {
    if (c->nrejected == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        c->rejected = reallocCheck(c->rejected, *cap * sizeof *c->rejected);
    }
    c->rejected[c->nrejected].path = path;
    c->rejected[c->nrejected].reason = strdupCheck(reason);
    c->nrejected++;
}

static void push_warning(bn_corpus *c, size_t *cap, char *text) {
    if (c->nwarnings == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        c->warnings = reallocCheck(c->warnings, *cap * sizeof *c->warnings);
    }
    c->warnings[c->nwarnings++] = text;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_item(const void *a, const void *b) {
    const bn_item *x = a, *y = b;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Order items by class, then by path (what qsort with cmp_item gives, for
 * paths unique within a class), in O(n) for the usual manifest whose lines
 * are in path order within each class: a stable bucket pass by class, then
 * only a class whose paths are out of order is sorted. */
static void sort_items(bn_corpus *c) {
    if (c->n < 2 || c->nlabels < 1) return;
    size_t *start = callocCheck((size_t)c->nlabels + 1, sizeof *start);
    for (size_t i = 0; i < c->n; i++) start[c->items[i].label + 1]++;
    for (int k = 0; k < c->nlabels; k++) start[k + 1] += start[k];
    bn_item *out = mallocCheck(c->n * sizeof *out);
    size_t *at = mallocCheck(((size_t)c->nlabels + 1) * sizeof *at);
    memcpy(at, start, ((size_t)c->nlabels + 1) * sizeof *at);
    for (size_t i = 0; i < c->n; i++) out[at[c->items[i].label]++] = c->items[i];
    for (int k = 0; k < c->nlabels; k++) {
        size_t lo = start[k], hi = start[k + 1];
        for (size_t i = lo + 1; i < hi; i++)
            if (strcmp(out[i - 1].path, out[i].path) > 0) {
                qsort(out + lo, hi - lo, sizeof *out, cmp_item);
                break;
            }
    }
    free(c->items);
    c->items = out;
    free(at);
    free(start);
}

static int cmp_reject(const void *a, const void *b) {
    const bn_reject *x = a, *y = b;
    return strcmp(x->path, y->path);
}

/* Give every item its split; warn about small (and absurdly large) classes.
 * names[k] names class k in those warnings ("class folder 'data/roses'"). */
static void finish_corpus(bn_corpus *c, const bn_split_opts *so, size_t *wcap,
                          const char *const *names) {
    double val = so ? so->validation_pct : 10.0;
    double test = so ? so->testing_pct : 10.0;
    size_t *count = callocCheck((size_t)c->nlabels, sizeof *count);
    for (size_t i = 0; i < c->n; i++) {
        c->items[i].split = bn_split_assign(c->items[i].key, val, test);
        count[c->items[i].label]++;
    }
    for (int k = 0; k < c->nlabels; k++) {
        if (count[k] < BN_FEW_IMAGES)
            push_warning(c, wcap,
                         str_printf("%s has only %zu image%s (fewer than %d), which may cause issues",
                                    names[k], count[k], count[k] == 1 ? "" : "s", BN_FEW_IMAGES));
        else if (count[k] > BN_MAX_PER_CLASS)
            push_warning(c, wcap,
                         str_printf("%s has %zu images, more than %zu: some images will never be selected",
                                    names[k], count[k], BN_MAX_PER_CLASS));
    }
    free(count);
}

/* ------------------------------------------------------------ label rule */

void bn_label_from_folder(const char *name, char *out, size_t outlen) {
    if (!out || outlen == 0) return;
    const unsigned char *s = (const unsigned char *)name;
    size_t o = 0;
    int in_run = 0; /* inside a run of characters outside [a-z0-9] */
    while (*s) {
        int ch = -1;       /* an [a-z0-9] character to emit, or -1 */
        int run_after = 0; /* the unit also contributes a non-[a-z0-9] char */
        unsigned char b = *s;
        if (b >= 'A' && b <= 'Z') {
            ch = b - 'A' + 'a';
            s++;
        } else if ((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')) {
            ch = b;
            s++;
        } else if (b == 0xE2 && s[1] == 0x84 && s[2] == 0xAA) {
            ch = 'k'; /* U+212A KELVIN SIGN: Python's lower() gives 'k' */
            s += 3;
        } else if (b == 0xC4 && s[1] == 0xB0) {
            ch = 'i'; /* U+0130: lower() gives 'i' + U+0307 (not [a-z0-9]) */
            run_after = 1;
            s += 2;
        } else {
            s++; /* any other byte (incl. all of other UTF-8 characters) */
        }
        if (ch >= 0) {
            if (in_run) {
                if (o + 1 >= outlen) break;
                out[o++] = ' ';
                in_run = 0;
            }
            if (o + 1 >= outlen) break;
            out[o++] = (char)ch;
        }
        if (ch < 0 || run_after) in_run = 1;
    }
    if (in_run && o + 1 < outlen) out[o++] = ' ';
    out[o] = '\0';
}

/* ------------------------------------------------------------ folder mode */

/* retrain.py's four extensions, plus png. */
static int has_image_ext(const char *name) {
    static const char *const exts[] = {".jpg", ".jpeg", ".JPG", ".JPEG", ".png", ".PNG"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n >= e && memcmp(name + n - e, exts[i], e) == 0) return 1;
    }
    return 0;
}

/* Kind of a directory entry, following symbolic links. */
enum { ENT_DIR, ENT_FILE, ENT_OTHER, ENT_ERROR };

static int entry_kind(const struct dirent *de, const char *path, int *err_no) {
#ifdef DT_DIR
    if (de->d_type == DT_DIR) return ENT_DIR;
    if (de->d_type == DT_REG) return ENT_FILE;
    if (de->d_type != DT_LNK && de->d_type != DT_UNKNOWN) return ENT_OTHER;
#else
    (void)de;
#endif
    struct stat st;
    if (stat(path, &st) != 0) {
        *err_no = errno;
        return ENT_ERROR;
    }
    if (S_ISDIR(st.st_mode)) return ENT_DIR;
    if (S_ISREG(st.st_mode)) return ENT_FILE;
    return ENT_OTHER;
}

/* Sorting class indices by label needs the labels: a file-scope pointer keeps
 * qsort's interface (the folder scan is not re-entrant across threads). */
static char **g_sort_labels;
static int cmp_by_label(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int r = strcmp(g_sort_labels[x], g_sort_labels[y]);
    if (r) return r;
    return x < y ? -1 : x > y;
}

int bn_corpus_scan_dir(const char *dir, const bn_split_opts *so, bn_corpus *c,
                       char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    int rc = -1;
    DIR *d = NULL;
    char **folders = NULL; /* class folder names, sorted */
    size_t nfolders = 0, fcap = 0;
    char **names = NULL;   /* per class, for warnings */
    int *order = NULL;
    size_t icap = 0, rcap = 0, wcap = 0;

    d = opendir(dir);
    if (!d) {
        set_err(err, errlen, "cannot open image folder '%s': %s", dir, strerror(errno));
        goto done;
    }
    /* Class folders: visible immediate subfolders (symbolic links followed).
     * Files and anything else directly in DIR are ignored. */
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                set_err(err, errlen, "cannot read image folder '%s': %s", dir, strerror(errno));
                goto done;
            }
            break;
        }
        if (de->d_name[0] == '.') continue; /* ".", "..", hidden folders */
        char *p = path_join(dir, de->d_name);
        int e = 0;
        int kind = entry_kind(de, p, &e);
        free(p);
        if (kind != ENT_DIR) continue;
        if (nfolders == fcap) {
            fcap = fcap ? fcap * 2 : 16;
            folders = reallocCheck(folders, fcap * sizeof *folders);
        }
        folders[nfolders++] = strdupCheck(de->d_name);
    }
    closedir(d);
    d = NULL;
    if (nfolders == 0) {
        set_err(err, errlen, "no class folders with images found in '%s'", dir);
        goto done;
    }
    qsort(folders, nfolders, sizeof *folders, cmp_str_ptr);
    if (nfolders > (size_t)INT32_MAX) {
        set_err(err, errlen, "too many class folders in '%s'", dir);
        goto done;
    }

    /* Labels, and no two folders with the same one. */
    c->nlabels = (int)nfolders;
    c->labels = callocCheck(nfolders, sizeof *c->labels);
    c->sources = callocCheck(nfolders, sizeof *c->sources);
    for (size_t k = 0; k < nfolders; k++) {
        size_t len = strlen(folders[k]) + 1;
        c->labels[k] = mallocCheck(len);
        bn_label_from_folder(folders[k], c->labels[k], len);
        c->sources[k] = strdupCheck(folders[k]);
    }
    order = mallocCheck(nfolders * sizeof *order);
    for (size_t k = 0; k < nfolders; k++) order[k] = (int)k;
    g_sort_labels = c->labels;
    qsort(order, nfolders, sizeof *order, cmp_by_label);
    g_sort_labels = NULL;
    for (size_t k = 1; k < nfolders; k++) {
        if (strcmp(c->labels[order[k - 1]], c->labels[order[k]]) == 0) {
            set_err(err, errlen,
                    "class folders '%s' and '%s' in '%s' both give the label '%s'; rename one",
                    folders[order[k - 1]], folders[order[k]], dir, c->labels[order[k]]);
            goto done;
        }
    }

    /* Images of each class. */
    names = callocCheck(nfolders, sizeof *names);
    for (size_t k = 0; k < nfolders; k++) {
        char *cdir = path_join(dir, folders[k]);
        names[k] = str_printf("class folder '%s'", cdir);
        size_t first = c->n, nested = 0;
        d = opendir(cdir);
        if (!d) {
            set_err(err, errlen, "cannot open class folder '%s': %s", cdir, strerror(errno));
            free(cdir);
            goto done;
        }
        for (;;) {
            errno = 0;
            struct dirent *de = readdir(d);
            if (!de) {
                if (errno) {
                    set_err(err, errlen, "cannot read class folder '%s': %s", cdir,
                            strerror(errno));
                    free(cdir);
                    goto done;
                }
                break;
            }
            const char *nm = de->d_name;
            if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
            char *p = path_join(cdir, nm);
            if (nm[0] == '.') { /* glob('*.jpg') skips these too */
                push_reject(c, &rcap, p, "hidden file");
                continue;
            }
            if (has_image_ext(nm)) {
                /* Taken by its name alone, as retrain.py's glob takes it: a
                 * folder, FIFO, broken or looping link named like an image is
                 * an image that fails to read, so its row in the output file
                 * records why (docs/corpus.md). Nothing is opened or followed
                 * here, so a link loop cannot hang the scan. The key is the
                 * path as the glob returns it. */
                push_item(c, &icap, p, strdupCheck(p), (int)k);
                continue;
            }
            int e = 0;
            int kind = entry_kind(de, p, &e);
            if (kind == ENT_DIR) {
                nested++;
                push_reject(c, &rcap, p, k_nested_reason);
            } else if (kind == ENT_ERROR) {
                char reason[256];
                snprintf(reason, sizeof reason, "cannot stat: %s", strerror(e));
                push_reject(c, &rcap, p, reason);
            } else {
                push_reject(c, &rcap, p, k_ext_reason);
            }
        }
        closedir(d);
        d = NULL;
        if (c->n == first) {
            if (nested)
                set_err(err, errlen,
                        "class folder '%s' has no images (jpg, jpeg, png); it holds %zu "
                        "folder%s, but classes must be the top-level folders",
                        cdir, nested, nested == 1 ? "" : "s");
            else
                set_err(err, errlen, "class folder '%s' has no images (jpg, jpeg, png)", cdir);
            free(cdir);
            goto done;
        }
        free(cdir);
        qsort(c->items + first, c->n - first, sizeof *c->items, cmp_item);
    }
    if (nfolders == 1) {
        set_err(err, errlen,
                "only one class folder (%s) found in '%s'; at least 2 classes are needed",
                folders[0], dir);
        goto done;
    }
    if (c->nrejected > 1) qsort(c->rejected, c->nrejected, sizeof *c->rejected, cmp_reject);
    finish_corpus(c, so, &wcap, (const char *const *)names);
    rc = 0;

done:
    if (d) closedir(d);
    for (size_t k = 0; k < nfolders; k++) {
        free(folders[k]);
        if (names) free(names[k]);
    }
    free(folders);
    free(names);
    free(order);
    if (rc != 0) bn_corpus_free(c);
    return rc;
}

/* ------------------------------------------------------------ manifest mode */

/* Open-addressing hash set of strings, storing 1-based indices into an array
 * the caller owns; the table only looks strings up through get(). */
typedef struct {
    size_t cap;   /* power of two */
    size_t *slot; /* 0 = empty, else index + 1 */
    uint32_t *tag; /* high bits of each slot's string hash: most probes end without a strcmp */
} strset;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static void strset_init(strset *t, size_t n) {
    t->cap = 16;
    while (t->cap < 2 * n + 2) t->cap *= 2;
    t->slot = callocCheck(t->cap, sizeof *t->slot);
    t->tag = callocCheck(t->cap, sizeof *t->tag);
}

/* Find s; returns the stored index, or -1 after storing idx as s's entry.
 * get(i) returns the string of index i. */
typedef const char *(*strset_get)(const void *arr, size_t i);
static long long strset_find_or_add(strset *t, const char *s, size_t idx, strset_get get,
                                    const void *arr) {
    size_t m = t->cap - 1;
    uint64_t h = str_hash(s);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = (size_t)h & m;
    while (t->slot[i]) {
        size_t j = t->slot[i] - 1;
        if (t->tag[i] == tag && strcmp(get(arr, j), s) == 0) return (long long)j;
        i = (i + 1) & m;
    }
    t->slot[i] = idx + 1;
    t->tag[i] = tag;
    return -1;
}

/* One taken manifest line. */
typedef struct {
    const char *path;  /* as written (points into the file buffer) */
    size_t line;       /* 1-based line number */
    int label;         /* index into the label list (first-seen order) */
} mline;

typedef struct {
    const char *text;  /* label as written (points into the buffer) */
    size_t line;       /* first line with this label */
} mlabel;

static const char *get_mline(const void *arr, size_t i) { return ((const mline *)arr)[i].path; }
static const char *get_mlabel(const void *arr, size_t i) { return ((const mlabel *)arr)[i].text; }

static char **g_sort_mlabels; /* for cmp_mlabel_idx */
static int cmp_mlabel_idx(const void *a, const void *b) {
    return strcmp(g_sort_mlabels[*(const int *)a], g_sort_mlabels[*(const int *)b]);
}

/* Read a whole file into a NUL-terminated buffer. */
static char *read_all(const char *file, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        set_err(err, errlen, "cannot open manifest '%s': %s", file, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = reallocCheck(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        set_err(err, errlen, "cannot read manifest '%s': %s", file, strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int bn_corpus_read_manifest(const char *file, const bn_split_opts *so, bn_corpus *c,
                            char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    int rc = -1;
    size_t len = 0;
    char *buf = NULL;
    mline *lines = NULL;
    mlabel *labs = NULL;
    size_t nlines = 0, nlabs = 0, labcap = 0;
    strset paths = {0, NULL, NULL}, labset = {0, NULL, NULL};
    int *order = NULL, *rank = NULL;
    char *mdir = NULL;
    char **names = NULL;
    size_t icap = 0, wcap = 0, ndup = 0;

    buf = read_all(file, &len, err, errlen);
    if (!buf) goto done;

    size_t maxlines = 1;
    for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))); p++) maxlines++;
    lines = mallocCheck(maxlines * sizeof *lines);
    strset_init(&paths, maxlines);
    strset_init(&labset, 64);

    size_t lineno = 0;
    /* A UTF-8 byte-order mark (editors on Windows write one) is not part of
     * the first path. */
    size_t bom = (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
    for (char *p = buf + bom; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        char *next = nl ? nl + 1 : buf + len;
        lineno++;
        if (end > p && end[-1] == '\r') end--; /* CRLF */
        size_t ll = (size_t)(end - p);
        if (memchr(p, '\0', ll)) {
            set_err(err, errlen, "%s:%zu: line contains a NUL byte", file, lineno);
            goto done;
        }
        size_t blank = 0;
        while (blank < ll && (p[blank] == ' ' || p[blank] == '\t')) blank++;
        if (blank == ll || p[0] == '#') { /* blank line or comment */
            p = next;
            continue;
        }
        char *tab = memchr(p, '\t', ll);
        if (!tab) {
            set_err(err, errlen, "%s:%zu: no TAB in line (expected path<TAB>label)", file, lineno);
            goto done;
        }
        if (memchr(tab + 1, '\t', (size_t)(end - tab - 1))) {
            set_err(err, errlen, "%s:%zu: more than one TAB in line (expected path<TAB>label)",
                    file, lineno);
            goto done;
        }
        if (tab == p) {
            set_err(err, errlen, "%s:%zu: empty path", file, lineno);
            goto done;
        }
        if (tab + 1 == end) {
            set_err(err, errlen, "%s:%zu: empty label", file, lineno);
            goto done;
        }
        *tab = '\0';
        *end = '\0';
        const char *path = p, *label = tab + 1;

        /* The label's index (first-seen order for now). */
        if (nlabs == labcap) {
            labcap = labcap ? labcap * 2 : 64;
            labs = reallocCheck(labs, labcap * sizeof *labs);
        }
        if (2 * nlabs + 2 > labset.cap) { /* grow: rehash every label */
            free(labset.slot);
            free(labset.tag);
            strset_init(&labset, 2 * nlabs + 2);
            for (size_t i = 0; i < nlabs; i++)
                strset_find_or_add(&labset, labs[i].text, i, get_mlabel, labs);
        }
        labs[nlabs].text = label; /* visible to get() while probing */
        long long li = strset_find_or_add(&labset, label, nlabs, get_mlabel, labs);
        if (li < 0) {
            labs[nlabs].line = lineno;
            li = (long long)nlabs++;
        }

        /* Duplicates of the path. */
        lines[nlines].path = path;
        long long prev = strset_find_or_add(&paths, path, nlines, get_mline, lines);
        if (prev >= 0) {
            const mline *pl = &lines[prev];
            if (pl->label != (int)li) {
                set_err(err, errlen,
                        "%s:%zu: '%s' has label '%s', but line %zu gave it label '%s'", file,
                        lineno, path, label, pl->line, labs[pl->label].text);
                goto done;
            }
            if (ndup++ < BN_MAX_DUP_WARNINGS)
                push_warning(c, &wcap,
                             str_printf("%s:%zu: duplicate of line %zu, ignored", file, lineno,
                                        pl->line));
            p = next;
            continue;
        }
        lines[nlines].line = lineno;
        lines[nlines].label = (int)li;
        nlines++;
        if (nlabs > (size_t)INT32_MAX) {
            set_err(err, errlen, "%s:%zu: too many labels", file, lineno);
            goto done;
        }
        p = next;
    }
    if (ndup > BN_MAX_DUP_WARNINGS)
        push_warning(c, &wcap,
                     str_printf("%s: %zu more duplicate lines ignored (not listed)", file,
                                ndup - BN_MAX_DUP_WARNINGS));

    if (nlabs == 0) {
        set_err(err, errlen, "manifest '%s' lists no images", file);
        goto done;
    }
    if (nlabs == 1) {
        set_err(err, errlen,
                "manifest '%s' has only one label ('%s'); at least 2 classes are needed", file,
                labs[0].text);
        goto done;
    }

    /* Classes in byte order of the label. */
    c->nlabels = (int)nlabs;
    c->labels = callocCheck(nlabs, sizeof *c->labels);
    c->sources = callocCheck(nlabs, sizeof *c->sources);
    char **tmp = mallocCheck(nlabs * sizeof *tmp);
    for (size_t i = 0; i < nlabs; i++) tmp[i] = (char *)labs[i].text;
    order = mallocCheck(nlabs * sizeof *order);
    rank = mallocCheck(nlabs * sizeof *rank);
    for (size_t i = 0; i < nlabs; i++) order[i] = (int)i;
    g_sort_mlabels = tmp;
    qsort(order, nlabs, sizeof *order, cmp_mlabel_idx);
    g_sort_mlabels = NULL;
    free(tmp);
    names = callocCheck(nlabs, sizeof *names);
    for (size_t k = 0; k < nlabs; k++) {
        rank[order[k]] = (int)k;
        c->labels[k] = strdupCheck(labs[order[k]].text);
        c->sources[k] = strdupCheck(labs[order[k]].text);
        names[k] = str_printf("label '%s'", labs[order[k]].text);
    }

    /* Relative paths open relative to the manifest's folder. */
    const char *slash = strrchr(file, '/');
    if (slash) {
        size_t dl = (size_t)(slash - file);
        while (dl > 0 && file[dl - 1] == '/') dl--; /* "a//m.tsv" -> "a" */
        if (dl == 0) dl = 1;                         /* "/m.tsv" -> "/" */
        mdir = mallocCheck(dl + 1);
        memcpy(mdir, file, dl);
        mdir[dl] = '\0';
    }
    /* Every path and key in one block: a path opened as written is its own key. */
    size_t dl = mdir ? strlen(mdir) : 0, total = 1;
    for (size_t i = 0; i < nlines; i++) {
        size_t l = strlen(lines[i].path) + 1;
        total += (mdir && lines[i].path[0] != '/') ? 2 * l + dl + 1 : l;
    }
    c->strings = mallocCheck(total);
    char *at = c->strings;
    c->items = mallocCheck((nlines ? nlines : 1) * sizeof *c->items);
    icap = nlines ? nlines : 1;
    for (size_t i = 0; i < nlines; i++) {
        const char *kp = lines[i].path;
        size_t l = strlen(kp) + 1;
        char *key = at;
        memcpy(at, kp, l);
        at += l;
        char *open = key;
        if (mdir && kp[0] != '/') { /* "DIR/path", as path_join makes it */
            open = at;
            memcpy(at, mdir, dl);
            at += dl;
            if (mdir[dl - 1] != '/') *at++ = '/';
            memcpy(at, kp, l);
            at += l;
        }
        push_item(c, &icap, open, key, rank[lines[i].label]);
    }
    sort_items(c);
    finish_corpus(c, so, &wcap, (const char *const *)names);
    rc = 0;

done:
    if (names)
        for (size_t k = 0; k < nlabs; k++) free(names[k]);
    free(names);
    free(mdir);
    free(order);
    free(rank);
    free(paths.slot);
    free(paths.tag);
    free(labset.slot);
    free(labset.tag);
    free(lines);
    free(labs);
    free(buf);
    if (rc != 0) bn_corpus_free(c);
    return rc;
}

/* ------------------------------------------------------------ free */

void bn_corpus_free(bn_corpus *c) {
    if (!c) return;
    for (size_t i = 0; c->items && !c->strings && i < c->n; i++) {
        free(c->items[i].path);
        free(c->items[i].key);
    }
    free(c->items);
    free(c->strings);
    if (c->labels)
        for (int k = 0; k < c->nlabels; k++) free(c->labels[k]);
    if (c->sources)
        for (int k = 0; k < c->nlabels; k++) free(c->sources[k]);
    free(c->labels);
    free(c->sources);
    for (size_t i = 0; i < c->nrejected; i++) {
        free(c->rejected[i].path);
        free(c->rejected[i].reason);
    }
    free(c->rejected);
    for (size_t i = 0; i < c->nwarnings; i++) free(c->warnings[i]);
    free(c->warnings);
    memset(c, 0, sizeof *c);
}
