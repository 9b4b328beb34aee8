/* cost.c: "bneck cost" - what a corpus would take, in time and money, on
 * each machine measured by "bneck benchmark --json" (and on machines known
 * only by a reported rate).
 *
 * The steps: read every bneck-benchmark file (json-c; a file of another
 * format or a newer version is refused, naming the file and why), add the
 * --machine rates, apply the --price options, compute one row per machine
 * and precision, print the table and which row is fastest and which is
 * cheapest, then optionally write the figure (SVG, PNG) and an HTML page.
 * The arithmetic and the file format are in docs/cost.md.
 */
#include "net/engine.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/plot.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COST_FORMAT "bneck-benchmark" /* the format bneck benchmark --json writes */
#define COST_VERSION 1                /* the newest version this reader knows */
#define COST_MAX_FILES 256            /* benchmark files on one command line */
#define COST_MAX_REPEAT 256           /* --price and --machine options, each */
#define COST_DEFAULT_IMAGES 3670      /* the flower_photos corpus */

/* A machine of the table: one benchmark file, or one --machine. */
typedef struct {
    char *name;           /* machine.name of the file, or NAME of --machine (owned) */
    const char *file;     /* the file it was read from; NULL for a reported machine */
    double price;         /* per node-hour, the file's or --price's; NaN: none */
} cost_machine;

/* One row: a machine at one precision. */
typedef struct {
    int machine;          /* index into cost_table.m */
    char precision[8];    /* "fp32", ...; "-" for a reported rate (precision unknown) */
    const char *source;   /* "measured extract" | "measured engine" | "reported" */
    double rate;          /* images/s used for the row: extract end to end when measured, else the engine alone */
    double time_s;        /* N / rate */
    double cost;          /* time_s / 3600 * price; NaN without a price */
    double per_1000;      /* 1000 / rate / 3600 * price; NaN without a price */
    double per_dollar;    /* rate * 3600 / price; NaN without a price */
} cost_row;

/* Everything the command read and computed. */
typedef struct {
    cost_machine *m;      /* [nm] machines, in command-line order (files first, then --machine) */
    int nm;               /* machines */
    cost_row *r;          /* [nr] rows, machine by machine */
    int nr;               /* rows */
    int cap_r;            /* rows allocated */
    long long images;     /* N, the corpus size the times and costs are for */
} cost_table;

/* ------------------------------------------------------------ reading a file */

/* The member key of obj when it has type t, else NULL. */
static json_object *member(json_object *obj, const char *key, json_type t) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, t)) return NULL;
    return v;
}

/* A number member (integer or not): 0 and *out set, or -1. */
static int member_number(json_object *obj, const char *key, double *out) {
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return -1;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) return -1;
    *out = json_object_get_double(v);
    return isfinite(*out) ? 0 : -1;
}

/* Append a row for machine mi and return it. */
static cost_row *add_row(cost_table *t, int mi) {
    if (t->nr == t->cap_r) {
        t->cap_r = t->cap_r ? 2 * t->cap_r : 16;
        t->r = reallocCheck(t->r, sizeof *t->r * (size_t)t->cap_r);
    }
    cost_row *r = &t->r[t->nr++];
    memset(r, 0, sizeof *r);
    r->machine = mi;
    return r;
}

/* Check the measurements of one array ("engine" or "extract") of a file and
 * keep the fastest rate of each precision in best[]. Returns 0, or -1 with
 * the reason in err. */
static int read_rates(json_object *arr, const char *what, double best[BN_NPREC], char *err, size_t errlen) {
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_object)) {
            snprintf(err, errlen, "%s[%zu] is not an object", what, i);
            return -1;
        }
        json_object *p = member(e, "precision", json_type_string);
        bn_precision prec;
        if (!p || bn_precision_parse(json_object_get_string(p), &prec)) {
            snprintf(err, errlen, "%s[%zu]: 'precision' is missing or not one of fp32, bf16, int8, tf32, fp16", what, i);
            return -1;
        }
        double ips;
        if (member_number(e, "images_per_s", &ips) || !(ips > 0)) {
            snprintf(err, errlen, "%s[%zu]: 'images_per_s' is missing or not a positive number", what, i);
            return -1;
        }
        if (ips > best[prec]) best[prec] = ips;
    }
    return 0;
}

/* Read the bneck-benchmark file path into a new machine of t with one row
 * per precision (extract when measured, else engine), keeping only prec
 * when prec >= 0. Returns 0, or -1 with the reason in err (the file's name
 * is added by the caller). */
static int read_file(cost_table *t, const char *path, int prec, char *err, size_t errlen) {
    json_object *root = json_object_from_file(path);
    if (!root) {
        const char *why = json_util_get_last_err();
        char reason[512];
        snprintf(reason, sizeof reason, "%s", why ? why : "json-c gave no reason");
        reason[strcspn(reason, "\n")] = 0; /* json-c's reason ends with a newline */
        snprintf(err, errlen, "cannot read it as JSON (%s)", reason);
        return -1;
    }
    int rc = -1;
    json_object *v;
    if (!json_object_is_type(root, json_type_object)) {
        snprintf(err, errlen, "the top level is not a JSON object: not a bneck-benchmark file (bneck benchmark --json writes one)");
        goto done;
    }
    if (!(v = member(root, "format", json_type_string))) {
        snprintf(err, errlen, "no 'format' field: not a bneck-benchmark file (bneck benchmark --json writes one)");
        goto done;
    }
    if (strcmp(json_object_get_string(v), COST_FORMAT)) {
        snprintf(err, errlen, "its format is '%.64s', not '%s' (bneck benchmark --json writes one)", json_object_get_string(v),
                 COST_FORMAT);
        goto done;
    }
    if (!(v = member(root, "version", json_type_int))) {
        snprintf(err, errlen, "'version' is missing or not an integer");
        goto done;
    }
    int64_t version = json_object_get_int64(v);
    if (version > COST_VERSION) {
        snprintf(err, errlen, "version %lld is newer than this bneck reads (%d): use a newer bneck", (long long)version,
                 COST_VERSION);
        goto done;
    }
    if (version < 1) {
        snprintf(err, errlen, "version %lld is not one bneck ever wrote", (long long)version);
        goto done;
    }
    json_object *mach = member(root, "machine", json_type_object);
    json_object *name = mach ? member(mach, "name", json_type_string) : NULL;
    if (!name || !*json_object_get_string(name)) {
        snprintf(err, errlen, "'machine' has no 'name'");
        goto done;
    }
    double price = NAN;
    if (json_object_object_get_ex(root, "price_per_node_hour", &v) &&
        (member_number(root, "price_per_node_hour", &price) || !(price > 0))) {
        snprintf(err, errlen, "'price_per_node_hour' is not a positive number");
        goto done;
    }
    json_object *engine = member(root, "engine", json_type_array), *extract = member(root, "extract", json_type_array);
    if (!engine || !extract) {
        snprintf(err, errlen, "'%s' is missing or not an array", engine ? "extract" : "engine");
        goto done;
    }
    double eng_best[BN_NPREC], ext_best[BN_NPREC];
    for (int p = 0; p < BN_NPREC; p++) eng_best[p] = ext_best[p] = 0;
    if (read_rates(engine, "engine", eng_best, err, errlen) || read_rates(extract, "extract", ext_best, err, errlen))
        goto done;
    int any = 0;
    for (int p = 0; p < BN_NPREC; p++) any |= eng_best[p] > 0 || ext_best[p] > 0;
    if (!any) {
        snprintf(err, errlen, "it holds no measurement ('engine' and 'extract' are empty)");
        goto done;
    }
    t->m = reallocCheck(t->m, sizeof *t->m * (size_t)(t->nm + 1));
    cost_machine *m = &t->m[t->nm];
    m->name = strdupCheck(json_object_get_string(name));
    m->file = path;
    m->price = price;
    int rows = 0;
    for (int p = 0; p < BN_NPREC; p++) {
        if (prec >= 0 && p != prec) continue;
        if (!(eng_best[p] > 0) && !(ext_best[p] > 0)) continue;
        cost_row *r = add_row(t, t->nm);
        snprintf(r->precision, sizeof r->precision, "%s", bn_precision_name((bn_precision)p));
        r->source = ext_best[p] > 0 ? "measured extract" : "measured engine";
        r->rate = ext_best[p] > 0 ? ext_best[p] : eng_best[p];
        rows++;
    }
    if (!rows) printf("note: %s (%s) has no measurement in %s\n", m->name, path, bn_precision_name((bn_precision)prec));
    t->nm++;
    rc = 0;
done:
    json_object_put(root);
    return rc;
}

/* ------------------------------------------------------------ options */

/* A repeatable option: its name and where its values go. */
typedef struct {
    const char *name;     /* without "--" */
    const char **v;       /* [COST_MAX_REPEAT] values */
    int n;                /* values taken */
} cost_repeat;

/* Take every "--NAME V" and "--NAME=V" of the repeatable options out of argv
 * (in place), as bneck run does with --set. Returns 0, or BN_CLI_USAGE after
 * an error. */
static int take_repeats(const bn_cmd_spec *spec, int *argc, char **argv, cost_repeat *rep, int nrep) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *val = NULL;
        cost_repeat *hit = NULL;
        if (!strcmp(a, "--")) { /* the rest is positional: keep it as it is */
            while (i < *argc) argv[out++] = argv[i++];
            break;
        }
        for (int k = 0; k < nrep && !hit; k++) {
            size_t l = strlen(rep[k].name);
            if (strncmp(a, "--", 2) || strncmp(a + 2, rep[k].name, l)) continue;
            if (a[2 + l] == '=') {
                hit = &rep[k];
                val = a + 3 + l;
            } else if (a[2 + l] == '\0') {
                hit = &rep[k];
                if (i + 1 >= *argc) return bn_cli_usage(spec, "option '--%s' needs a value", hit->name);
                val = argv[++i];
            }
        }
        if (!hit) {
            argv[out++] = argv[i];
            continue;
        }
        if (hit->n == COST_MAX_REPEAT) return bn_cli_usage(spec, "more than %d --%s options", COST_MAX_REPEAT, hit->name);
        hit->v[hit->n++] = val;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* Split "NAME=NUMBER" at its last '=' into name (malloc'd) and a positive
 * number. Returns 0, or -1 when malformed. */
static int split_name_value(const char *s, char **name, double *value) {
    const char *eq = strrchr(s, '=');
    if (!eq || eq == s || bn_parse_double(eq + 1, value) || !(*value > 0)) return -1;
    *name = mallocCheck((size_t)(eq - s) + 1);
    memcpy(*name, s, (size_t)(eq - s));
    (*name)[eq - s] = 0;
    return 0;
}

/* ------------------------------------------------------------ arithmetic */

/* Fill the derived columns of every row. */
static void compute(cost_table *t) {
    for (int i = 0; i < t->nr; i++) {
        cost_row *r = &t->r[i];
        double price = t->m[r->machine].price;
        r->time_s = (double)t->images / r->rate;
        r->cost = r->per_1000 = r->per_dollar = NAN;
        if (price > 0) {
            r->cost = r->time_s / 3600.0 * price;
            r->per_1000 = 1000.0 / r->rate / 3600.0 * price;
            r->per_dollar = r->rate * 3600.0 / price;
        }
    }
}

/* The fastest row, and the cheapest per image among priced rows (-1: none). */
static void pick_best(const cost_table *t, int *fastest, int *cheapest) {
    *fastest = *cheapest = -1;
    for (int i = 0; i < t->nr; i++) {
        if (*fastest < 0 || t->r[i].rate > t->r[*fastest].rate) *fastest = i;
        if (isfinite(t->r[i].per_1000) && (*cheapest < 0 || t->r[i].per_1000 < t->r[*cheapest].per_1000)) *cheapest = i;
    }
}

/* ------------------------------------------------------------ the table */

/* v with 4 significant digits and no exponent ("0.09705", "367.0", "37815");
 * "-" when v is not a number. */
static void fmt_sig(char *out, size_t len, double v) {
    if (!isfinite(v)) {
        snprintf(out, len, "-");
        return;
    }
    int dec = 0;
    if (fabs(v) > 0) dec = 3 - (int)floor(log10(fabs(v)));
    if (dec < 0) dec = 0;
    if (dec > 9) dec = 9;
    snprintf(out, len, "%.*f", dec, v);
}

/* n with thousands separators ("3,670"). */
static void fmt_count(char *out, size_t len, long long n) {
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", n < 0 ? -n : n);
    size_t nd = strlen(digits), o = 0;
    char buf[48];
    if (n < 0) buf[o++] = '-';
    for (size_t i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
    snprintf(out, len, "%s", buf);
}

#define COST_NCOLS 9   /* columns of the table */
#define COST_CELL 96   /* bytes of one cell */

/* The header of the table for N images. */
static void header_cells(const cost_table *t, char cells[COST_NCOLS][COST_CELL]) {
    char n[32];
    fmt_count(n, sizeof n, t->images);
    snprintf(cells[0], COST_CELL, "machine");
    snprintf(cells[1], COST_CELL, "precision");
    snprintf(cells[2], COST_CELL, "source");
    snprintf(cells[3], COST_CELL, "images/s");
    snprintf(cells[4], COST_CELL, "time for %s", n);
    snprintf(cells[5], COST_CELL, "price/node-hour");
    snprintf(cells[6], COST_CELL, "cost for %s", n);
    snprintf(cells[7], COST_CELL, "cost per 1,000");
    snprintf(cells[8], COST_CELL, "images per $");
}

/* The cells of row i. */
static void row_cells(const cost_table *t, int i, char cells[COST_NCOLS][COST_CELL]) {
    const cost_row *r = &t->r[i];
    char b[64];
    snprintf(cells[0], COST_CELL, "%.*s", COST_CELL - 1, t->m[r->machine].name);
    snprintf(cells[1], COST_CELL, "%s", r->precision);
    snprintf(cells[2], COST_CELL, "%s", r->source);
    fmt_sig(cells[3], COST_CELL, r->rate);
    fmt_sig(b, sizeof b, r->time_s);
    snprintf(cells[4], COST_CELL, "%s s", b);
    if (t->m[r->machine].price > 0)
        snprintf(cells[5], COST_CELL, "%g", t->m[r->machine].price); /* as given */
    else
        snprintf(cells[5], COST_CELL, "-");
    fmt_sig(cells[6], COST_CELL, r->cost);
    fmt_sig(cells[7], COST_CELL, r->per_1000);
    fmt_sig(cells[8], COST_CELL, r->per_dollar);
}

/* One line about row i: "NAME, fp32 (measured extract)". */
static void row_label(const cost_table *t, int i, char *out, size_t len) {
    const cost_row *r = &t->r[i];
    if (!strcmp(r->source, "reported"))
        snprintf(out, len, "%s (reported)", t->m[r->machine].name);
    else
        snprintf(out, len, "%s, %s (%s)", t->m[r->machine].name, r->precision, r->source);
}

/* The summary lines: fastest row, cheapest row, notes on unpriced machines. */
static void print_summary(FILE *fp, const cost_table *t) {
    int fastest, cheapest;
    pick_best(t, &fastest, &cheapest);
    char label[256], a[64], b[64], n[32];
    fmt_count(n, sizeof n, t->images);
    if (fastest >= 0) {
        row_label(t, fastest, label, sizeof label);
        fmt_sig(a, sizeof a, t->r[fastest].rate);
        fmt_sig(b, sizeof b, t->r[fastest].time_s);
        fprintf(fp, "fastest: %s: %s images/s, %s images in %s s\n", label, a, n, b);
    }
    if (cheapest >= 0) {
        row_label(t, cheapest, label, sizeof label);
        fmt_sig(a, sizeof a, t->r[cheapest].per_1000);
        fmt_sig(b, sizeof b, t->r[cheapest].per_dollar);
        fprintf(fp, "cheapest per image: %s: %s per 1,000 images, %s images per unit of currency\n", label, a, b);
    } else {
        fprintf(fp, "cheapest per image: no machine has a price (give --price NAME=P per node-hour)\n");
    }
}

/* Print the table, the summary and the notes on stdout. */
static void print_table(const cost_table *t) {
    int nlines = t->nr + 1;
    char (*cells)[COST_NCOLS][COST_CELL] = mallocCheck(sizeof *cells * (size_t)nlines);
    header_cells(t, cells[0]);
    for (int i = 0; i < t->nr; i++) row_cells(t, i, cells[i + 1]);
    size_t w[COST_NCOLS] = {0};
    for (int l = 0; l < nlines; l++)
        for (int c = 0; c < COST_NCOLS; c++)
            if (strlen(cells[l][c]) > w[c]) w[c] = strlen(cells[l][c]);
    for (int l = 0; l < nlines; l++) {
        for (int c = 0; c < COST_NCOLS; c++) {
            /* Text columns to the left, numbers to the right. */
            if (c < 3)
                printf("%-*s", (int)w[c], cells[l][c]);
            else
                printf("%*s", (int)w[c], cells[l][c]);
            printf(c + 1 < COST_NCOLS ? "  " : "\n");
        }
    }
    free(cells);
    print_summary(stdout, t);
    for (int m = 0; m < t->nm; m++)
        if (!(t->m[m].price > 0))
            printf("note: %s has no price, so no cost is shown: give --price '%s=P' (P per node-hour)\n", t->m[m].name,
                   t->m[m].name);
}

/* ------------------------------------------------------------ the figure */

#define FIG_W 820.0     /* figure width, points */
#define FIG_TOP 36.0    /* below the figure's title */
#define FIG_BAR 26.0    /* height per bar */
#define FIG_PANEL 84.0  /* a panel's title, axis and margins */

/* Bar labels of the rows ("NAME fp32 (extract)"), malloc'd. */
static char **bar_labels(const cost_table *t) {
    char **lab = mallocCheck(sizeof *lab * (size_t)(t->nr ? t->nr : 1));
    for (int i = 0; i < t->nr; i++) {
        const cost_row *r = &t->r[i];
        char buf[256];
        if (!strcmp(r->source, "reported"))
            snprintf(buf, sizeof buf, "%s (reported)", t->m[r->machine].name);
        else
            snprintf(buf, sizeof buf, "%s %s (%s)", t->m[r->machine].name, r->precision,
                     !strcmp(r->source, "measured extract") ? "extract" : "engine");
        lab[i] = strdupCheck(buf);
    }
    return lab;
}

/* Draw the figure: images/s per row, and the cost per 1,000 images of each
 * priced row, as two panels of horizontal bars. Returns NULL with the
 * reason in err. */
static bn_fig *draw_figure(const cost_table *t, char *err, size_t errlen) {
    int npriced = 0;
    for (int i = 0; i < t->nr; i++) npriced += isfinite(t->r[i].per_1000);
    double h1 = FIG_PANEL + FIG_BAR * t->nr, h2 = FIG_PANEL + FIG_BAR * (npriced ? npriced : 1);
    bn_fig *f = bn_fig_new(FIG_W, FIG_TOP + h1 + h2 + 8, "bneck cost: throughput and cost per 1,000 images");
    if (!f) {
        snprintf(err, errlen, "Cairo cannot allocate the figure");
        return NULL;
    }
    char **lab = bar_labels(t);
    const char **plab = mallocCheck(sizeof *plab * (size_t)(t->nr ? t->nr : 1));
    double *rate = mallocCheck(sizeof *rate * (size_t)(t->nr ? t->nr : 1));
    double *cost = mallocCheck(sizeof *cost * (size_t)(t->nr ? t->nr : 1));
    int k = 0;
    for (int i = 0; i < t->nr; i++) {
        rate[i] = t->r[i].rate;
        if (!isfinite(t->r[i].per_1000)) continue;
        plab[k] = lab[i];
        cost[k++] = t->r[i].per_1000;
    }
    const double r1[4] = {0, FIG_TOP, FIG_W, h1}, r2[4] = {0, FIG_TOP + h1, FIG_W, h2};
    int rc = bn_plot_hbars(f, r1, "Throughput", "images/s", t->nr, (const char *const *)lab, rate, "%.4g", err, errlen);
    if (!rc)
        rc = bn_plot_hbars(f, r2, npriced ? "Cost per 1,000 images" : "Cost per 1,000 images (no machine has a price)",
                           "cost per 1,000 images (the prices' currency)", k, plab, cost, "%.4g", err, errlen);
    for (int i = 0; i < t->nr; i++) free(lab[i]);
    free(lab);
    free(plab);
    free(rate);
    free(cost);
    if (rc) {
        bn_fig_free(f);
        return NULL;
    }
    return f;
}

/* mkdir -p: create path and its missing parents. Returns 0, or -1 with a reason. */
static int make_dirs(const char *path, char *err, size_t errlen) {
    char *tmp = strdupCheck(path);
    size_t len = strlen(tmp);
    int rc = 0;
    for (size_t i = 1; i <= len && !rc; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        struct stat st;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create the folder %s: %s", tmp, strerror(errno));
            rc = -1;
        } else if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a folder", tmp);
            rc = -1;
        }
        tmp[i] = saved;
    }
    free(tmp);
    return rc;
}

/* Write DIR/cost.svg or DIR/cost.png (png = 1). Returns 0, or -1 (reported). */
static int write_figure_file(bn_fig *f, const char *dir, int png) {
    char err[512];
    if (make_dirs(dir, err, sizeof err)) {
        bn_error("give --svg or --png a folder you can write", "%s", err);
        return -1;
    }
    size_t len = strlen(dir) + sizeof "/cost.svg";
    char *path = mallocCheck(len);
    snprintf(path, len, "%s/cost.%s", dir, png ? "png" : "svg");
    int rc = png ? bn_fig_write_png(f, path, err, sizeof err) : bn_fig_write_svg(f, path, err, sizeof err);
    if (rc)
        bn_error("check free space and permissions", "%s", err);
    else
        printf("wrote %s\n", path);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ the HTML page */

/* s with HTML escapes. */
static void html_text(FILE *fp, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '&': fputs("&amp;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&#39;", fp); break;
        default: fputc(*s, fp);
        }
    }
}

/* Write the page: the table, the summary, the notes and the figure as an
 * inline SVG image. Returns 0, or -1 (reported). */
static int write_html(const cost_table *t, bn_fig *f, const char *path) {
    char err[512];
    char *svg = NULL, *b64 = NULL;
    size_t svglen = 0;
    if (bn_fig_svg_mem(f, &svg, &svglen, err, sizeof err)) {
        bn_error(NULL, "%s", err);
        return -1;
    }
    b64 = bn_base64((const unsigned char *)svg, svglen);
    free(svg);
    if (!b64) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory encoding the figure");
    int rc = -1;
    FILE *fp = fopen(path, "w");
    if (!fp) {
        bn_error("check that the folder exists and is writable", "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    char n[32];
    fmt_count(n, sizeof n, t->images);
    fprintf(fp, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>bneck cost: %s images</title>\n"
                "<style>\n"
                "body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2em; color: #222; }\n"
                "table { border-collapse: collapse; margin: 1em 0; }\n"
                "th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }\n"
                "th { background: #f2f2f2; text-align: left; }\n"
                "td.num { text-align: right; font-variant-numeric: tabular-nums; }\n"
                "p.note { color: #666; }\n"
                "img { max-width: 100%%; }\n"
                "</style>\n</head>\n<body>\n<h1>bneck cost</h1>\n"
                "<p>Time and cost of %s images on each machine: time = images / rate; cost = time / 3600 &times; price "
                "per node-hour. Rates are extract end to end where it was measured, else the engine alone.</p>\n",
            n, n);
    char cells[COST_NCOLS][COST_CELL];
    header_cells(t, cells);
    fputs("<table>\n<tr>", fp);
    for (int c = 0; c < COST_NCOLS; c++) {
        fputs("<th>", fp);
        html_text(fp, cells[c]);
        fputs("</th>", fp);
    }
    fputs("</tr>\n", fp);
    for (int i = 0; i < t->nr; i++) {
        row_cells(t, i, cells);
        fputs("<tr>", fp);
        for (int c = 0; c < COST_NCOLS; c++) {
            fputs(c < 3 ? "<td>" : "<td class=\"num\">", fp);
            html_text(fp, cells[c]);
            fputs("</td>", fp);
        }
        fputs("</tr>\n", fp);
    }
    fputs("</table>\n", fp);
    char *summary = NULL;
    size_t slen = 0;
    FILE *mem = open_memstream(&summary, &slen);
    if (!mem) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory");
    print_summary(mem, t);
    for (int m = 0; m < t->nm; m++)
        if (!(t->m[m].price > 0)) fprintf(mem, "note: %s has no price, so no cost is shown\n", t->m[m].name);
    fclose(mem);
    for (char *line = summary, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl) *nl = 0;
        fputs(strncmp(line, "note:", 5) ? "<p>" : "<p class=\"note\">", fp);
        html_text(fp, line);
        fputs("</p>\n", fp);
        if (!nl) break;
    }
    free(summary);
    fprintf(fp, "<p><img alt=\"");
    html_text(fp, bn_fig_title(f));
    fprintf(fp, "\" src=\"data:image/svg+xml;base64,%s\"></p>\n</body>\n</html>\n", b64);
    int werr = ferror(fp);
    if (fclose(fp) != 0 || werr) {
        bn_error("check free space on that file system", "cannot write %s: %s", path, strerror(errno));
        goto done;
    }
    printf("wrote %s\n", path);
    rc = 0;
done:
    free(b64);
    return rc;
}

/* ------------------------------------------------------------ the command */

/* Free what the table holds. */
static void table_free(cost_table *t) {
    for (int m = 0; m < t->nm; m++) free(t->m[m].name);
    free(t->m);
    free(t->r);
}

int bn_cmd_cost(int argc, char **argv) {
    const char *price_v[COST_MAX_REPEAT], *machine_v[COST_MAX_REPEAT];
    cost_repeat rep[2] = {{"price", price_v, 0}, {"machine", machine_v, 0}};
    const char *price_help = NULL, *machine_help = NULL, *precision = NULL, *html = NULL, *svg = NULL, *png = NULL;
    long long images = COST_DEFAULT_IMAGES;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"price", 0, BN_OPT_STRING, &price_help, "NAME=P", "the file's price_per_node_hour", 0, 0, NULL,
         "price per node-hour of machine NAME (repeatable; overrides the file's)"},
        {"machine", 0, BN_OPT_STRING, &machine_help, "NAME=IMAGES_PER_S", NULL, 0, 0, NULL,
         "add a machine known only by a reported rate, e.g. a published figure (repeatable)"},
        {"images", 0, BN_OPT_INT, &images, "N", "3670 (flower_photos)", 1, 1e15, NULL, "corpus size the times and costs are for"},
        {"precision", 0, BN_OPT_CHOICE, &precision, NULL, "every precision measured", 0, 0, "fp32|bf16|int8|tf32|fp16",
         "keep only the rows of this precision"},
        {"html", 0, BN_OPT_STRING, &html, "FILE", NULL, 0, 0, NULL, "write one self-contained page with the table and the figure"},
        {"svg", 0, BN_OPT_STRING, &svg, "DIR", NULL, 0, 0, NULL, "write the figure as DIR/cost.svg"},
        {"png", 0, BN_OPT_STRING, &png, "DIR", NULL, 0, 0, NULL, "write the figure as DIR/cost.png"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "cost", "Compare machines by time and cost for a corpus, from bneck benchmark --json files.",
        "bneck cost A.json [B.json ...] [--price NAME=P]... [--machine NAME=IMAGES_PER_S]... [options]",
        "NAME is a file's machine.name (bneck benchmark --name). Each row is a machine at\n"
        "one precision; its rate is extract end to end where the file has it, else the\n"
        "engine alone. time = N / rate; cost = time / 3600 x price per node-hour; cost\n"
        "per 1,000 = 1000 / rate / 3600 x price; images per $ = rate x 3600 / price. A\n"
        "machine without a price is shown without a cost. See docs/cost.md.",
        opts};
    char **av = mallocCheck(sizeof(char *) * ((size_t)argc + 1));
    memcpy(av, argv, sizeof(char *) * (size_t)argc);
    av[argc] = NULL;
    int ac = argc;
    const char *pos[COST_MAX_FILES];
    int npos = 0;
    int rc = take_repeats(&spec, &ac, av, rep, 2);
    if (!rc) rc = bn_cli_parse(&spec, ac, av, pos, COST_MAX_FILES, &npos);
    free(av);
    if (rc < 0) return BN_EXIT_OK;
    if (rc) return rc;
    if (npos == 0 && rep[1].n == 0)
        return bn_cli_usage(&spec, "give at least one benchmark file (bneck benchmark --json OUT.json) or --machine");
    bn_cli_apply_verbosity(verbose, quiet);
    bn_precision prec = BN_PREC_FP32;
    if (precision && bn_precision_parse(precision, &prec)) return bn_cli_usage(&spec, "unknown precision '%s'", precision);

    cost_table t;
    memset(&t, 0, sizeof t);
    t.images = images;
    rc = BN_EXIT_OK;
    char err[1024];
    for (int i = 0; i < npos && rc == BN_EXIT_OK; i++) {
        if (read_file(&t, pos[i], precision ? (int)prec : -1, err, sizeof err)) {
            bn_error("bneck benchmark --json OUT.json writes the files bneck cost reads (docs/cost.md)", "%s: %s", pos[i],
                     err);
            rc = BN_EXIT_FAIL;
        }
    }
    for (int i = 0; i < rep[1].n && rc == BN_EXIT_OK; i++) {
        char *name = NULL;
        double rate = 0;
        if (split_name_value(rep[1].v[i], &name, &rate)) {
            rc = bn_cli_usage(&spec, "--machine '%s' is not NAME=IMAGES_PER_S with a positive rate", rep[1].v[i]);
            break;
        }
        t.m = reallocCheck(t.m, sizeof *t.m * (size_t)(t.nm + 1));
        t.m[t.nm] = (cost_machine){name, NULL, NAN};
        cost_row *r = add_row(&t, t.nm);
        snprintf(r->precision, sizeof r->precision, "-");
        r->source = "reported";
        r->rate = rate;
        t.nm++;
    }
    for (int i = 0; i < rep[0].n && rc == BN_EXIT_OK; i++) {
        char *name = NULL;
        double price = 0;
        if (split_name_value(rep[0].v[i], &name, &price)) {
            rc = bn_cli_usage(&spec, "--price '%s' is not NAME=P with a positive price per node-hour", rep[0].v[i]);
            break;
        }
        int found = 0;
        for (int m = 0; m < t.nm; m++)
            if (!strcmp(t.m[m].name, name)) {
                t.m[m].price = price;
                found = 1;
            }
        if (!found) rc = bn_cli_usage(&spec, "--price %s: no machine is named '%s' (a file's machine.name, or --machine NAME)",
                                      rep[0].v[i], name);
        free(name);
    }
    if (rc == BN_EXIT_OK && t.nr == 0) {
        bn_error("leave out --precision to see every precision", "no row to show: no file has a measurement in %s",
                 bn_precision_name(prec));
        rc = BN_EXIT_FAIL;
    }
    if (rc != BN_EXIT_OK) goto done;
    compute(&t);
    print_table(&t);
    if (html || svg || png) {
        bn_fig *f = draw_figure(&t, err, sizeof err);
        if (!f) {
            bn_error(NULL, "%s", err);
            rc = BN_EXIT_FAIL;
            goto done;
        }
        if (svg && write_figure_file(f, svg, 0)) rc = BN_EXIT_FAIL;
        if (png && write_figure_file(f, png, 1)) rc = BN_EXIT_FAIL;
        if (html && write_html(&t, f, html)) rc = BN_EXIT_FAIL;
        bn_fig_free(f);
    }
done:
    table_free(&t);
    return rc;
}
