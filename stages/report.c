/* report.c: "bneck report" - what the runs recorded in features and
 * classifier files did and cost, as text, as figures (SVG, PNG) and as one
 * self-contained HTML page (docs/report.md).
 *
 * The steps: load every file (features files through io/featread.h,
 * classifiers through io/classifier.h), print the text report, draw the
 * figures, then write the figure files and the page. One process does the
 * work (rank 0 under mpirun; the others return at once). */
#include "config.h"

#include "io/classifier.h"
#include "io/featread.h"
#include "io/h5util.h"
#include "io/image.h"
#include "io/runrec.h"
#include "io/store.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "pipeline/plot.h"
#include "pipeline/tables.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILES 64
#define HTML_FAILED_MAX 200 /* failed images listed on the page (all with --failed in the text) */

static const char *phase_names[5] = {"read", "decode", "forward", "write", "idle"};

/* One features file, loaded. */
typedef struct {
    const char *path;        /* as given */
    bn_feats f;              /* metadata (io/featread.h) */
    bn_feats_run *runs;      /* finished runs, by K (owned) */
    int nruns;
    long long ndone, nfailed, npending;
    long long by_code[BN_IMG_NSTATUS + 1]; /* failed images per error code (the last: codes this build does not know) */
    long long *frow;         /* (nfailed) row of each failed image (owned) */
    unsigned char *fcode;    /* (nfailed) its error code (owned) */
    char *freason;           /* (nfailed, BN_REASON_LEN) its reason (owned) */
} feat_rep;

/* One classifier file, loaded. */
typedef struct {
    const char *path;
    bn_classifier c;
} cls_rep;

/* A figure made for the page and the files. */
typedef struct {
    bn_fig *fig;
    char name[64];           /* file name without extension: "ranks", "throughput-2", ... */
    char caption[512];       /* what it shows, for the page */
    int section;             /* where the page shows it: 0 extract, 1 throughput, 2 training, 3 confusion, 4 failures */
    int owner;               /* index of its file among the features files (sections 0, 1, 4) or classifiers (2, 3) */
} figure;

typedef struct {
    const char *files[MAX_FILES];
    int nfiles;
    int list_failed;         /* --failed */
    const char *html, *svg_dir, *png_dir;
    double price;            /* --price-per-node-hour for runs recorded without one; NaN: none */
    feat_rep feats[MAX_FILES];
    int nfeats;
    cls_rep cls[MAX_FILES];
    int ncls;
    figure figs[4 * MAX_FILES + 8];
    int nfigs;
    char err[1024];
} report_t;

static const char *code_name(int code) {
    return code < BN_IMG_NSTATUS ? bn_img_status_name((bn_img_status)code) : "unknown code";
}

/* ------------------------------------------------------------ loading */

/* The "format" attribute of an HDF5 file, or "" (not HDF5, or none). */
static void file_format(const char *path, char *out, size_t len, char *why, size_t wlen) {
    out[0] = 0;
    snprintf(why, wlen, "not an HDF5 file");
    bn_h5_quiet q;
    bn_h5_quiet_on(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        char *v = NULL, msg[BN_H5_MSG_LEN] = "";
        int r = bn_h5_attr_get_str(f, "format", &v, msg);
        if (r == 0) {
            snprintf(out, len, "%s", v);
            snprintf(why, wlen, "its format is '%.100s', another tool's", v);
        } else if (r > 0)
            snprintf(why, wlen, "an HDF5 file whose 'format' attribute is %s", bn_h5_attr_why(f, "format", 1));
        else
            snprintf(why, wlen, "cannot read its 'format' attribute");
        free(v);
        H5Fclose(f);
    } else {
        struct stat st;
        if (stat(path, &st) == 0 && bn_h5_signature(path, (long long)st.st_size) > 0)
            snprintf(why, wlen, "cannot open as HDF5 (truncated or damaged?)");
    }
    bn_h5_quiet_off(&q);
}

/* Load features file path into F: metadata, runs, failures. 0 or -1 (reported). */
static int load_features(report_t *R, feat_rep *F, const char *path) {
    memset(F, 0, sizeof *F);
    F->path = path;
    if (bn_feats_open(path, MPI_COMM_SELF, &F->f, R->err, sizeof R->err)) {
        bn_error("docs/format.md describes the features file", "%s", R->err);
        return -1;
    }
    if (bn_feats_read_runs(&F->f, &F->runs, &F->nruns, R->err, sizeof R->err)) {
        bn_error("docs/format.md describes the timing tables", "%s", R->err);
        return -1;
    }
    for (long long i = 0; i < F->f.n; i++) {
        if (F->f.status[i] == BN_ROW_DONE) F->ndone++;
        else if (F->f.status[i] == BN_ROW_FAILED) F->nfailed++;
        else F->npending++;
    }
    F->frow = mallocCheck(sizeof *F->frow * (size_t)(F->nfailed ? F->nfailed : 1));
    F->fcode = mallocCheck((size_t)(F->nfailed ? F->nfailed : 1));
    F->freason = mallocCheck((size_t)BN_REASON_LEN * (size_t)(F->nfailed ? F->nfailed : 1));
    /* Reasons in blocks of rows, read only where a block holds a failure. */
    const long long blk = 4096;
    unsigned char *code = mallocCheck((size_t)blk);
    char *reason = mallocCheck((size_t)blk * BN_REASON_LEN);
    long long k = 0;
    int rc = 0;
    for (long long lo = 0; lo < F->f.n && rc == 0; lo += blk) {
        long long cnt = F->f.n - lo < blk ? F->f.n - lo : blk, any = 0;
        for (long long i = 0; i < cnt; i++) any |= F->f.status[lo + i] == BN_ROW_FAILED;
        if (!any) continue;
        if (bn_feats_read_errors(&F->f, lo, cnt, code, reason, R->err, sizeof R->err)) {
            bn_error("docs/format.md describes error_code and error_reason", "%s", R->err);
            rc = -1;
            break;
        }
        for (long long i = 0; i < cnt; i++) {
            if (F->f.status[lo + i] != BN_ROW_FAILED) continue;
            F->frow[k] = lo + i;
            F->fcode[k] = code[i];
            memcpy(F->freason + (size_t)k * BN_REASON_LEN, reason + (size_t)i * BN_REASON_LEN, BN_REASON_LEN);
            F->freason[(size_t)k * BN_REASON_LEN + BN_REASON_LEN - 1] = 0;
            F->by_code[code[i] < BN_IMG_NSTATUS ? code[i] : BN_IMG_NSTATUS]++;
            k++;
        }
    }
    free(code);
    free(reason);
    if (rc == 0 && F->nfailed && bn_feats_load_paths(&F->f, R->err, sizeof R->err)) {
        bn_error(NULL, "%s", R->err);
        rc = -1;
    }
    return rc;
}

static void feat_free(feat_rep *F) {
    bn_feats_runs_free(F->runs, F->nruns);
    free(F->frow);
    free(F->fcode);
    free(F->freason);
    if (F->f.file) bn_feats_close(&F->f);
}

/* Sort every file given into features files and classifiers. 0 or -1 (reported). */
static int load_all(report_t *R) {
    for (int i = 0; i < R->nfiles; i++) {
        const char *p = R->files[i];
        struct stat st;
        if (stat(p, &st) != 0) {
            bn_error("give a features file (bneck extract --out) or a classifier (bneck train --out)", "%s: %s", p,
                     strerror(errno));
            return -1;
        }
        char fmt[64], why[256];
        file_format(p, fmt, sizeof fmt, why, sizeof why);
        if (!strcmp(fmt, BN_STORE_FORMAT)) {
            if (load_features(R, &R->feats[R->nfeats++], p)) return -1;
        } else if (!strcmp(fmt, BN_CLASSIFIER_FORMAT)) {
            cls_rep *C = &R->cls[R->ncls];
            C->path = p;
            if (bn_classifier_read(p, &C->c, R->err, sizeof R->err)) {
                bn_error("docs/classify.md describes the classifier file", "%s", R->err);
                return -1;
            }
            R->ncls++;
        } else {
            bn_error("bneck report reads features files (bneck extract) and classifiers (bneck train)",
                     "%s: not a bneck features or classifier file (%s)", p, why);
            return -1;
        }
    }
    return 0;
}

/* The run record of r, from the file or, for an older file, from its timing
 * table (wall: the slowest rank; no nodes, no cost). Applies R->price to a
 * run recorded without a price. has: 1 recorded, 0 reconstructed. */
static bn_run_summary run_of(const report_t *R, const bn_feats_run *r, const char *precision, int *has) {
    bn_run_summary s;
    *has = r->has_run;
    if (r->has_run) {
        s = r->run;
    } else {
        memset(&s, 0, sizeof s);
        snprintf(s.stage, sizeof s.stage, "extract");
        snprintf(s.precision, sizeof s.precision, "%s", precision);
        s.ranks = r->ranks;
        for (int k = 0; k < r->ranks; k++) {
            if (r->rows[k].wall_s > s.wall_s) s.wall_s = r->rows[k].wall_s;
            s.images += r->rows[k].done + r->rows[k].failed;
        }
        s.price_per_node_hour = NAN;
    }
    if (isnan(s.price_per_node_hour) && !isnan(R->price) && (s.nodes > 0 || !r->has_run)) {
        if (s.nodes == 0) s.nodes = 1; /* an older run: its nodes were not recorded; counted as one */
        s.price_per_node_hour = R->price;
    }
    bn_run_cost(&s);
    return s;
}

/* ------------------------------------------------------------ text */

static void fmt_money(char *buf, size_t len, double v) {
    if (isnan(v)) snprintf(buf, len, "-");
    else if (v >= 100) snprintf(buf, len, "%.2f", v);
    else snprintf(buf, len, "%.6f", v);
}

/* Identical (host, device) pairs of a run, counted: "vm: AMD EPYC, 1 core x 2". */
static void print_placement(const bn_feats_run *r) {
    if (r->ranks == 0 || !r->rows[0].host[0]) {
        printf("  hosts and devices: not recorded (a file from before bneck recorded them)\n");
        return;
    }
    printf("  hosts and devices:\n");
    int shown = 0;
    for (int k = 0; k < r->ranks; k++) {
        int first = 1, n = 0;
        for (int j = 0; j < r->ranks; j++) {
            int same = !strcmp(r->rows[j].host, r->rows[k].host) && !strcmp(r->rows[j].device_name, r->rows[k].device_name);
            if (same && j < k) first = 0;
            n += same;
        }
        if (!first) continue;
        if (++shown > 20) {
            printf("    ...\n");
            break;
        }
        printf("    %-24s %s (%d rank%s)\n", r->rows[k].host, r->rows[k].device_name, n, n == 1 ? "" : "s");
    }
}

static void print_summary(const bn_run_summary *s, int has) {
    char c[32], c1k[32], pr[32];
    fmt_money(c, sizeof c, s->cost);
    fmt_money(c1k, sizeof c1k, s->cost_per_1000);
    snprintf(pr, sizeof pr, "%g", s->price_per_node_hour);
    if (has)
        printf("  wall %.2f s, %d rank%s on %d node%s, %d cores%s, %.1f core-seconds, %.5f node-hours, %lld images\n",
               s->wall_s, s->ranks, s->ranks == 1 ? "" : "s", s->nodes, s->nodes == 1 ? "" : "s", s->cores,
               s->gpus ? " and GPUs" : "", s->core_seconds, s->node_hours, s->images);
    else
        printf("  wall %.2f s (the slowest rank), %d rank%s, %lld images; nodes, cores and cost were not recorded "
               "(a file from before bneck recorded them)\n",
               s->wall_s, s->ranks, s->ranks == 1 ? "" : "s", s->images);
    if (isnan(s->price_per_node_hour))
        printf("  cost: no price (give --price-per-node-hour P to the run, or to bneck report)\n");
    else if (isnan(s->images_per_dollar))
        printf("  cost: %s at %s per node-hour; %s per 1,000 images\n", c, pr, c1k);
    else
        printf("  cost: %s at %s per node-hour; %s per 1,000 images; %.0f images per dollar\n", c, pr, c1k,
               s->images_per_dollar);
}

static void print_features(const report_t *R, const feat_rep *F) {
    printf("== %s: features file, %lld images in %d classes, precision %s%s\n", F->path, F->f.n, F->f.nclasses,
           F->f.precision, F->f.is_shard ? " (a shard)" : "");
    printf("  %lld done, %lld failed, %lld pending; %s\n", F->ndone, F->nfailed, F->npending,
           F->f.complete ? "complete" : "NOT complete: rerun extract to resume");
    if (F->nruns == 0) printf("  no finished run recorded\n");
    for (int i = 0; i < F->nruns; i++) {
        const bn_feats_run *r = &F->runs[i];
        int has = 0;
        bn_run_summary s = run_of(R, r, F->f.precision, &has);
        printf("\n-- run %d: %s, finished %s%s\n", r->index, s.stage[0] ? s.stage : "extract",
               r->finished[0] ? r->finished : "(unknown)", r->complete ? "" : ", left the file incomplete");
        print_summary(&s, has);
        print_placement(r);
        if (r->ntl == 0 && r->has_run) printf("  throughput timeline: none (a %s run samples none)\n", s.stage);
        else if (r->ntl == 0) printf("  throughput timeline: not recorded (a file from before bneck recorded it)\n");
        else printf("  throughput timeline: %lld samples\n", r->ntl);
        bn_print_extract_timing(stdout, r->rows, r->ranks, s.wall_s);
    }
    if (F->nfailed) {
        printf("\n-- failed images: %lld\n  count  reason\n", F->nfailed);
        for (int c = 0; c <= BN_IMG_NSTATUS; c++)
            if (F->by_code[c]) {
                /* an example reason of that code */
                const char *ex = "";
                for (long long k = 0; k < F->nfailed; k++)
                    if ((F->fcode[k] < BN_IMG_NSTATUS ? F->fcode[k] : BN_IMG_NSTATUS) == c) {
                        ex = F->freason + (size_t)k * BN_REASON_LEN;
                        break;
                    }
                printf("  %5lld  %-14s e.g. %s\n", F->by_code[c], code_name(c), ex);
            }
        if (R->list_failed) {
            printf("  path\tstatus\treason\n");
            for (long long k = 0; k < F->nfailed; k++) {
                char *p = bn_feats_path(&F->f, F->frow[k]);
                printf("  %s\t%s\t%s\n", p, code_name(F->fcode[k]), F->freason + (size_t)k * BN_REASON_LEN);
                free(p);
            }
        } else {
            printf("  (bneck report --failed lists every failed image)\n");
        }
    }
}

static void print_classifier(const report_t *R, const cls_rep *C) {
    const bn_classifier *c = &C->c;
    printf("== %s: classifier, %d classes, trained on %s (%lld training rows, precision %s)\n", C->path, c->nclasses,
           c->features_path ? c->features_path : "?", c->train_n, c->precision[0] ? c->precision : "fp32");
    if (isnan(c->test_accuracy)) printf("  test accuracy: none (no test set)\n");
    else printf("  test accuracy %.1f%% on %lld images\n", c->test_accuracy * 100, c->test_n);
    if (c->nhistory > 0) {
        const bn_eval_point *h = &c->history[c->nhistory - 1];
        printf("  last evaluation, step %lld: train accuracy %.1f%%, cross entropy %.4f, validation accuracy %.1f%%\n",
               h->step, h->train_accuracy * 100, h->cross_entropy, h->validation_accuracy * 100);
    }
    if (!c->has_run) {
        printf("  training run: not recorded (a classifier from before bneck recorded runs)\n");
        return;
    }
    bn_run_summary s = c->run;
    if (isnan(s.price_per_node_hour) && !isnan(R->price)) s.price_per_node_hour = R->price, bn_run_cost(&s);
    print_summary(&s, 1);
    printf("  rank    load s    step s  allreduce s    eval s    wall s\n");
    for (int k = 0; k < c->nranks; k++) {
        const double *t = c->rank_times + (size_t)k * BN_TRAIN_TIMES;
        printf("  %4d %9.3f %9.3f %12.3f %9.3f %9.3f\n", k, t[0], t[1], t[2], t[3], t[4]);
    }
}

/* Stage times and the total cost of everything given. */
static void print_totals(const report_t *R) {
    double wall = 0, cost = 0, nh = 0;
    long long images = 0;
    int priced = 0, unpriced = 0;
    printf("\n== stage times\n");
    for (int i = 0; i < R->nfeats; i++)
        for (int k = 0; k < R->feats[i].nruns; k++) {
            int has;
            bn_run_summary s = run_of(R, &R->feats[i].runs[k], R->feats[i].f.precision, &has);
            printf("  %-8s %-28s run %d  %10.2f s\n", s.stage[0] ? s.stage : "extract", R->feats[i].path,
                   R->feats[i].runs[k].index, s.wall_s);
            wall += s.wall_s;
            nh += s.node_hours;
            if (!isnan(s.cost)) cost += s.cost, priced++;
            else unpriced++;
            if (!strcmp(s.stage, "extract") || !s.stage[0]) images += s.images;
        }
    for (int i = 0; i < R->ncls; i++) {
        const bn_classifier *c = &R->cls[i].c;
        if (!c->has_run) continue;
        bn_run_summary s = c->run;
        if (isnan(s.price_per_node_hour) && !isnan(R->price)) s.price_per_node_hour = R->price, bn_run_cost(&s);
        printf("  %-8s %-28s        %10.2f s\n", "train", R->cls[i].path, s.wall_s);
        wall += s.wall_s;
        nh += s.node_hours;
        if (!isnan(s.cost)) cost += s.cost, priced++;
        else unpriced++;
    }
    printf("  %-8s %-28s        %10.2f s, %.5f node-hours\n", "all", "", wall, nh);
    if (priced) {
        char c[32], c1k[32];
        fmt_money(c, sizeof c, cost);
        fmt_money(c1k, sizeof c1k, images > 0 ? cost * 1000 / images : NAN);
        printf("== cost: %s in all%s; %s per 1,000 extracted images\n", c,
               unpriced ? " (some runs have no price, and are not counted)" : "", c1k);
    } else {
        printf("== cost: no run has a price (--price-per-node-hour P)\n");
    }
}

/* ------------------------------------------------------------ figures */

static figure *new_figure(report_t *R, double w, double h, const char *title, const char *base, int section,
                          int owner, const char *caption) {
    if (R->nfigs >= (int)(sizeof R->figs / sizeof R->figs[0])) return NULL;
    figure *g = &R->figs[R->nfigs];
    memset(g, 0, sizeof *g);
    g->fig = bn_fig_new(w, h, title);
    if (!g->fig) bn_fatal_at(__FILE__, __LINE__, NULL, "Cairo cannot make a %gx%g figure", w, h);
    /* a unique file name: base, base-2, base-3, ... */
    int n = 1;
    for (int i = 0; i < R->nfigs; i++)
        if (!strncmp(R->figs[i].name, base, strlen(base)) &&
            (R->figs[i].name[strlen(base)] == 0 || R->figs[i].name[strlen(base)] == '-'))
            n++;
    if (n == 1) snprintf(g->name, sizeof g->name, "%s", base);
    else snprintf(g->name, sizeof g->name, "%s-%d", base, n);
    snprintf(g->caption, sizeof g->caption, "%s", caption);
    g->section = section;
    g->owner = owner;
    R->nfigs++;
    return g;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Per-rank stacked bars of the phases of run r of F. */
static int fig_ranks(report_t *R, const feat_rep *F, const bn_feats_run *r) {
    char title[256], cap[512];
    snprintf(title, sizeof title, "Time per rank: extract run %d of %s", r->index, base_name(F->path));
    snprintf(cap, sizeof cap,
             "Seconds each rank spent reading, decoding, in the network, writing and idle, in run %d (%d ranks). Reading "
             "and decoding run in the decode threads, beside the network, so a bar can be taller than the wall time.",
             r->index, r->ranks);
    figure *g = new_figure(R, 960, 440, title, "ranks", 0, (int)(F - R->feats), cap);
    if (!g) return 0;
    long long n = r->ranks;
    double *v = mallocCheck(sizeof *v * 5 * (size_t)(n ? n : 1));
    char **lab = mallocCheck(sizeof *lab * (size_t)(n ? n : 1));
    for (long long k = 0; k < n; k++) {
        const bn_rank_timing *t = &r->rows[k];
        v[0 * n + k] = t->read_s, v[1 * n + k] = t->decode_s, v[2 * n + k] = t->forward_s;
        v[3 * n + k] = t->write_s, v[4 * n + k] = t->idle_s;
        lab[k] = mallocCheck(16);
        snprintf(lab[k], 16, "%d", t->rank);
    }
    bn_series s[5];
    for (int p = 0; p < 5; p++) s[p] = (bn_series){phase_names[p], v + (size_t)p * n, NULL, n, 0};
    int rc = bn_plot_stacked_bars(g->fig, "MPI rank", "seconds", n, (const char *const *)lab, s, 5, R->err, sizeof R->err);
    for (long long k = 0; k < n; k++) free(lab[k]);
    free(lab);
    free(v);
    return rc;
}

/* Cumulative images of one rank's samples at time t (linear between samples, flat after the last). */
static double cum_at(const bn_tl_point *p, long long n, double t) {
    if (n == 0 || t <= p[0].t_s) return n ? (double)(p[0].done + p[0].failed) : 0;
    for (long long i = 1; i < n; i++)
        if (t <= p[i].t_s) {
            double a = (double)(p[i - 1].done + p[i - 1].failed), b = (double)(p[i].done + p[i].failed);
            double dt = p[i].t_s - p[i - 1].t_s;
            return dt > 0 ? a + (b - a) * (t - p[i - 1].t_s) / dt : b;
        }
    return (double)(p[n - 1].done + p[n - 1].failed);
}

/* Images/s over time, per rank and in all, from the timeline of run r. */
static int fig_throughput(report_t *R, const feat_rep *F, const bn_feats_run *r) {
    char title[256], cap[512];
    snprintf(title, sizeof title, "Throughput: extract run %d of %s", r->index, base_name(F->path));
    snprintf(cap, sizeof cap,
             "Images per second (decoded or failed) over the run: all ranks together (top), and each rank on its own "
             "scale (bottom), from the timeline each rank sampled every few seconds.");
    figure *g = new_figure(R, 960, 700, title, "throughput", 1, (int)(F - R->feats), cap);
    if (!g) return 0;
    int nr = r->ranks;
    bn_series *s = callocCheck((size_t)nr + 1, sizeof *s);
    double **xs = callocCheck((size_t)nr + 1, sizeof *xs), **ys = callocCheck((size_t)nr + 1, sizeof *ys);
    char **names = callocCheck((size_t)nr + 1, sizeof *names);
    long long *first = callocCheck((size_t)nr + 1, sizeof *first), *cnt = callocCheck((size_t)nr + 1, sizeof *cnt);
    for (long long i = 0; i < r->ntl; i++) { /* samples are grouped by rank */
        int k = r->tl_rank[i];
        if (k < 0 || k >= nr) continue;
        if (cnt[k] == 0) first[k] = i;
        cnt[k]++;
    }
    double tmax = 0;
    int ns = 0;
    for (int k = 0; k < nr; k++) {
        const bn_tl_point *p = r->tl + first[k];
        long long n = cnt[k];
        if (n > 0 && p[n - 1].t_s > tmax) tmax = p[n - 1].t_s;
        xs[k] = mallocCheck(sizeof(double) * (size_t)(n ? n : 1));
        ys[k] = mallocCheck(sizeof(double) * (size_t)(n ? n : 1));
        long long m = 0;
        for (long long i = 1; i < n; i++) {
            double dt = p[i].t_s - p[i - 1].t_s;
            if (dt <= 0) continue;
            xs[k][m] = (p[i].t_s + p[i - 1].t_s) / 2;
            ys[k][m] = (double)(p[i].done + p[i].failed - p[i - 1].done - p[i - 1].failed) / dt;
            m++;
        }
        names[k] = mallocCheck(24);
        snprintf(names[k], 24, "rank %d", k);
        s[ns++] = (bn_series){names[k], ys[k], xs[k], m, nr > 16 ? 0.8 : 1.2};
    }
    /* All ranks: the sum of the ranks' cumulative counts on a common grid. */
    int B = (int)(r->ntl / (nr ? nr : 1));
    if (B < 4) B = 4;
    if (B > 120) B = 120;
    xs[nr] = mallocCheck(sizeof(double) * (size_t)B);
    ys[nr] = mallocCheck(sizeof(double) * (size_t)B);
    double dt = tmax > 0 ? tmax / B : 1;
    for (int b = 0; b < B; b++) {
        double t0 = b * dt, t1 = (b + 1) * dt, sum = 0;
        for (int k = 0; k < nr; k++)
            sum += cum_at(r->tl + first[k], cnt[k], t1) - cum_at(r->tl + first[k], cnt[k], t0);
        xs[nr][b] = (t0 + t1) / 2;
        ys[nr][b] = sum / dt;
    }
    names[nr] = strdup("all ranks");
    bn_series all = {names[nr], ys[nr], xs[nr], tmax > 0 ? B : 0, 3};
    double top[4] = {0, 34, 960, 300}, bot[4] = {0, 334, 960, 366};
    int rc = bn_plot_lines(g->fig, top, "All ranks", "seconds since the ranks started", "images per second", &all, 1, NAN,
                           NAN, R->err, sizeof R->err) ||
             bn_plot_lines(g->fig, bot, "Each rank", "seconds since the rank started", "images per second", s, ns, NAN,
                           NAN, R->err, sizeof R->err);
    for (int k = 0; k <= nr; k++) {
        free(xs[k]);
        free(ys[k]);
        free(names[k]);
    }
    free(xs);
    free(ys);
    free(names);
    free(s);
    free(first);
    free(cnt);
    return rc;
}

/* Failed images by reason. */
static int fig_failures(report_t *R, const feat_rep *F) {
    char title[256], cap[512];
    snprintf(title, sizeof title, "Failed images by reason: %s", base_name(F->path));
    snprintf(cap, sizeof cap, "How many images could not be used, by the reason recorded for each (%lld in all).",
             F->nfailed);
    int n = 0;
    for (int c = 0; c <= BN_IMG_NSTATUS; c++) n += F->by_code[c] > 0;
    figure *g = new_figure(R, 760, 120 + 30.0 * n, title, "failures", 4, (int)(F - R->feats), cap);
    if (!g) return 0;
    const char *lab[BN_IMG_NSTATUS + 1];
    double v[BN_IMG_NSTATUS + 1];
    int m = 0;
    for (int c = 0; c <= BN_IMG_NSTATUS; c++)
        if (F->by_code[c]) lab[m] = code_name(c), v[m] = (double)F->by_code[c], m++;
    return bn_plot_hbars(g->fig, NULL, NULL, "images", m, lab, v, "%.0f", R->err, sizeof R->err);
}

/* Training curves: accuracy and cross entropy per evaluation step. */
static int fig_training(report_t *R, const cls_rep *C) {
    const bn_classifier *c = &C->c;
    char title[256], cap[512];
    snprintf(title, sizeof title, "Training: %s", base_name(C->path));
    snprintf(cap, sizeof cap,
             "Train accuracy (on each evaluated batch), validation accuracy (on its validation sample) and cross "
             "entropy, at each of the %lld evaluation steps.",
             c->nhistory);
    figure *g = new_figure(R, 960, 680, title, "training", 2, (int)(C - R->cls), cap);
    if (!g) return 0;
    long long n = c->nhistory;
    double *x = mallocCheck(sizeof *x * (size_t)(n ? n : 1)), *ta = mallocCheck(sizeof *ta * (size_t)(n ? n : 1));
    double *va = mallocCheck(sizeof *va * (size_t)(n ? n : 1)), *ce = mallocCheck(sizeof *ce * (size_t)(n ? n : 1));
    for (long long i = 0; i < n; i++) {
        x[i] = (double)c->history[i].step;
        ta[i] = 100 * c->history[i].train_accuracy;
        va[i] = 100 * c->history[i].validation_accuracy;
        ce[i] = c->history[i].cross_entropy;
    }
    bn_series acc[2] = {{"train accuracy", ta, x, n, 1.8}, {"validation accuracy", va, x, n, 1.8}};
    bn_series xe[1] = {{"cross entropy (train batch)", ce, x, n, 1.8}};
    double top[4] = {0, 34, 960, 320}, bot[4] = {0, 354, 960, 320};
    int rc = bn_plot_lines(g->fig, top, "Accuracy", "training step", "accuracy (%)", acc, 2, 0, 100, R->err,
                           sizeof R->err) ||
             bn_plot_lines(g->fig, bot, "Cross entropy", "training step", "cross entropy (nats)", xe, 1, NAN, NAN,
                           R->err, sizeof R->err);
    free(x);
    free(ta);
    free(va);
    free(ce);
    return rc;
}

/* The test set's confusion matrix. */
static int fig_confusion(report_t *R, const cls_rep *C) {
    const bn_classifier *c = &C->c;
    char title[256], cap[512];
    snprintf(title, sizeof title, "Confusion matrix on the test set: %s", base_name(C->path));
    snprintf(cap, sizeof cap,
             "Test images by true class (rows) and predicted class (columns), %lld in all; the colour is the share of "
             "the row, the number the count (where a cell is large enough to hold it).",
             c->test_n);
    double side = 360 + 24.0 * c->nclasses;
    if (side > 1200) side = 1200;
    if (side < 560) side = 560;
    figure *g = new_figure(R, side + 120, side, title, "confusion", 3, (int)(C - R->cls), cap);
    if (!g) return 0;
    return bn_plot_heatmap(g->fig, "predicted class", "true class", c->nclasses, (const char *const *)c->labels,
                           c->confusion, R->err, sizeof R->err);
}

static int draw_all(report_t *R) {
    for (int i = 0; i < R->nfeats; i++) {
        const feat_rep *F = &R->feats[i];
        if (F->nruns > 0) {
            const bn_feats_run *r = &F->runs[F->nruns - 1]; /* the latest run */
            if (fig_ranks(R, F, r)) return -1;
            if (r->ntl > 0 && fig_throughput(R, F, r)) return -1;
        }
        if (F->nfailed && fig_failures(R, F)) return -1;
    }
    for (int i = 0; i < R->ncls; i++) {
        if (fig_training(R, &R->cls[i]) || fig_confusion(R, &R->cls[i])) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ files */

static int mkdir_p(const char *dir, char *err, size_t errlen) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) goto fail;
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) goto fail;
    return 0;
fail:
    snprintf(err, errlen, "%.600s: cannot create the folder: %s", buf, strerror(errno));
    return -1;
}

static int write_figures(report_t *R, const char *dir, int png) {
    if (mkdir_p(dir, R->err, sizeof R->err)) return -1;
    for (int i = 0; i < R->nfigs; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.%s", dir, R->figs[i].name, png ? "png" : "svg");
        if ((png ? bn_fig_write_png : bn_fig_write_svg)(R->figs[i].fig, path, R->err, sizeof R->err)) return -1;
        printf("figure: %s\n", path);
    }
    return 0;
}

static void html_esc(FILE *fp, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '&': fputs("&amp;", fp); break;
        case '"': fputs("&quot;", fp); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t') fprintf(fp, "\\x%02x", (unsigned char)*s);
            else fputc(*s, fp);
        }
    }
}

static int html_figures(report_t *R, FILE *fp, int section, int owner) {
    for (int i = 0; i < R->nfigs; i++) {
        figure *g = &R->figs[i];
        if (g->section != section || g->owner != owner) continue;
        char *svg = NULL;
        size_t n = 0;
        if (bn_fig_svg_mem(g->fig, &svg, &n, R->err, sizeof R->err)) return -1;
        char *b64 = bn_base64((const unsigned char *)svg, n);
        free(svg);
        if (!b64) {
            snprintf(R->err, sizeof R->err, "out of memory encoding figure %s", g->name);
            return -1;
        }
        fprintf(fp, "<figure id=\"fig-%s\"><img src=\"data:image/svg+xml;base64,%s\" alt=\"", g->name, b64);
        html_esc(fp, bn_fig_title(g->fig));
        fputs("\"><figcaption>", fp);
        html_esc(fp, g->caption);
        fputs("</figcaption></figure>\n", fp);
        free(b64);
    }
    return 0;
}

static void html_cost_row(FILE *fp, const char *what, const char *file, const bn_run_summary *s, int has) {
    char c[32], c1k[32], pr[32], ipd[32] = "-";
    fmt_money(c, sizeof c, s->cost);
    fmt_money(c1k, sizeof c1k, s->cost_per_1000);
    if (isnan(s->price_per_node_hour)) snprintf(pr, sizeof pr, "-");
    else snprintf(pr, sizeof pr, "%g", s->price_per_node_hour);
    if (!isnan(s->images_per_dollar)) snprintf(ipd, sizeof ipd, "%.0f", s->images_per_dollar);
    fputs("<tr><td>", fp);
    html_esc(fp, what);
    fputs("</td><td class=\"l\">", fp);
    html_esc(fp, file);
    if (has)
        fprintf(fp, "</td><td>%.2f</td><td>%d</td><td>%d</td><td>%d</td><td>%.1f</td><td>%.5f</td><td>%lld</td>",
                s->wall_s, s->ranks, s->nodes, s->cores, s->core_seconds, s->node_hours, s->images);
    else
        fprintf(fp, "</td><td>%.2f</td><td>%d</td><td>-</td><td>-</td><td>-</td><td>-</td><td>%lld</td>", s->wall_s,
                s->ranks, s->images);
    fprintf(fp, "<td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", pr, c, c1k, ipd);
}

static int write_html(report_t *R) {
    char partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", R->html);
    FILE *fp = fopen(partial, "w");
    if (!fp) {
        snprintf(R->err, sizeof R->err, "%.600s: cannot write the page: %s", partial, strerror(errno));
        return -1;
    }
    char now[32];
    bn_utc_now(now);
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>bneck report", fp);
    for (int i = 0; i < R->nfiles; i++) fputs(i ? ", " : ": ", fp), html_esc(fp, base_name(R->files[i]));
    fputs("</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>\n"
          "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;max-width:1150px;padding:0 1em;color:#222;"
          "line-height:1.45}\n"
          "h1{font-size:1.7em;margin-bottom:0}h2{font-size:1.3em;border-bottom:1px solid #ccc;padding-bottom:.2em;"
          "margin-top:2em}\n"
          ".sub{color:#666;margin-top:.2em}\ntable{border-collapse:collapse;margin:.8em 0;font-size:.85em}\n"
          "td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f3f5f8;white-space:nowrap;"
          "text-align:left;font-size:.92em}\n"
          "td:first-child,th:first-child,td.l{text-align:left}\ntable{display:block;overflow-x:auto;max-width:100%}\nfigure{margin:1.2em 0}figure img{max-width:100%;"
          "height:auto;border:1px solid #eee}\nfigcaption{color:#555;font-size:.9em;margin-top:.3em}\n"
          ".note{background:#fff8e1;border-left:4px solid #f2b600;padding:.4em .8em}\n"
          "details{margin:.5em 0}code{background:#f3f3f3;padding:0 .2em}\n</style></head>\n<body>\n",
          fp);
    fputs("<h1>bneck report</h1>\n<p class=\"sub\">", fp);
    for (int i = 0; i < R->nfiles; i++) {
        fputs(i ? ", <code>" : "<code>", fp);
        html_esc(fp, R->files[i]);
        fputs("</code>", fp);
    }
    fprintf(fp, " &middot; written %s by bneck %s</p>\n", now, PACKAGE_VERSION);

    /* Summary */
    fputs("<h2 id=\"summary\">Summary</h2>\n<table>\n<tr><th>file</th><th>kind</th><th>images</th><th>done</th>"
          "<th>failed</th><th>pending</th><th>classes</th><th>precision</th><th>state</th></tr>\n",
          fp);
    for (int i = 0; i < R->nfeats; i++) {
        const feat_rep *F = &R->feats[i];
        fputs("<tr><td>", fp);
        html_esc(fp, F->path);
        fprintf(fp, "</td><td class=\"l\">features</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%d</td>"
                    "<td>%s</td><td class=\"l\">%s</td></tr>\n",
                F->f.n, F->ndone, F->nfailed, F->npending, F->f.nclasses, F->f.precision,
                F->f.complete ? "complete" : "incomplete: rerun extract to resume");
    }
    for (int i = 0; i < R->ncls; i++) {
        const bn_classifier *c = &R->cls[i].c;
        fputs("<tr><td>", fp);
        html_esc(fp, R->cls[i].path);
        fprintf(fp, "</td><td class=\"l\">classifier</td><td>%lld</td><td>-</td><td>-</td><td>-</td><td>%d</td>"
                    "<td>%s</td><td class=\"l\">",
                c->train_n, c->nclasses, c->precision[0] ? c->precision : "fp32");
        if (isnan(c->test_accuracy)) fputs("no test set", fp);
        else fprintf(fp, "test accuracy %.1f%% on %lld images", c->test_accuracy * 100, c->test_n);
        fputs("</td></tr>\n", fp);
    }
    fputs("</table>\n", fp);

    /* Cost */
    fputs("<h2 id=\"cost\">Runs and cost</h2>\n<table>\n<tr><th>stage</th><th>file</th><th>wall s</th><th>ranks</th>"
          "<th>nodes</th><th>cores</th><th>core-s</th><th>node-h</th><th>images</th><th>price/node-h</th>"
          "<th>cost</th><th>cost/1k images</th><th>images/$</th></tr>\n",
          fp);
    int unrecorded = 0, unpriced = 0;
    for (int i = 0; i < R->nfeats; i++)
        for (int k = 0; k < R->feats[i].nruns; k++) {
            int has;
            bn_run_summary s = run_of(R, &R->feats[i].runs[k], R->feats[i].f.precision, &has);
            char what[64];
            snprintf(what, sizeof what, "%s, run %d", s.stage[0] ? s.stage : "extract", R->feats[i].runs[k].index);
            html_cost_row(fp, what, base_name(R->feats[i].path), &s, has);
            unrecorded += !has;
            unpriced += isnan(s.cost);
        }
    for (int i = 0; i < R->ncls; i++) {
        const bn_classifier *c = &R->cls[i].c;
        if (!c->has_run) {
            unrecorded++;
            continue;
        }
        bn_run_summary s = c->run;
        if (isnan(s.price_per_node_hour) && !isnan(R->price)) s.price_per_node_hour = R->price, bn_run_cost(&s);
        html_cost_row(fp, "train", base_name(R->cls[i].path), &s, 1);
        unpriced += isnan(s.cost);
    }
    fputs("</table>\n", fp);
    if (unrecorded)
        fprintf(fp, "<p class=\"note\">%d run%s come from files written before bneck recorded nodes, cores and cost: "
                    "their wall time is the slowest rank's, and the rest is not known.</p>\n",
                unrecorded, unrecorded == 1 ? "" : "s");
    if (unpriced)
        fputs("<p class=\"note\">Runs without a price show no cost: give <code>--price-per-node-hour P</code> to the "
              "run (or the job key), or to <code>bneck report</code>.</p>\n",
              fp);
    fputs("<p>Cost is node-hours times the price of a node-hour: a run pays for every node it holds, for its whole "
          "wall time.</p>\n",
          fp);

    /* Extract runs */
    for (int i = 0; i < R->nfeats; i++) {
        const feat_rep *F = &R->feats[i];
        if (F->nruns == 0) continue;
        const bn_feats_run *r = &F->runs[F->nruns - 1];
        fputs("<h2 id=\"ranks\">Extract: time per rank (", fp);
        html_esc(fp, base_name(F->path));
        fprintf(fp, ", run %d)</h2>\n", r->index);
        if (html_figures(R, fp, 0, i)) goto fail;
        fprintf(fp, "<details%s><summary>the timing table (%d ranks)</summary>\n<table>\n<tr><th>rank</th><th>host</th>"
                    "<th>device</th><th>done</th><th>failed</th><th>read s</th><th>decode s</th><th>forward s</th>"
                    "<th>write s</th><th>idle s</th><th>wall s</th><th>images/s</th></tr>\n",
                r->ranks <= 16 ? " open" : "", r->ranks);
        for (int k = 0; k < r->ranks; k++) {
            const bn_rank_timing *t = &r->rows[k];
            fprintf(fp, "<tr><td>%d</td><td class=\"l\">", t->rank);
            html_esc(fp, t->host[0] ? t->host : "-");
            fputs("</td><td class=\"l\">", fp);
            html_esc(fp, t->device_name[0] ? t->device_name : (t->device >= 0 ? "GPU" : "CPU"));
            fprintf(fp, "</td><td>%lld</td><td>%lld</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>"
                        "<td>%.2f</td><td>%.2f</td></tr>\n",
                    t->done, t->failed, t->read_s, t->decode_s, t->forward_s, t->write_s, t->idle_s, t->wall_s,
                    t->images_per_s);
        }
        fputs("</table></details>\n", fp);
        fputs("<h2 id=\"throughput\">Throughput over time</h2>\n", fp);
        if (r->ntl == 0 && r->has_run)
            fprintf(fp, "<p class=\"note\">This run has no throughput timeline (a %s run samples none).</p>\n",
                    r->run.stage);
        else if (r->ntl == 0)
            fputs("<p class=\"note\">This run recorded no throughput timeline (a file from before bneck recorded "
                  "it).</p>\n",
                  fp);
        else if (html_figures(R, fp, 1, i))
            goto fail;
    }

    /* Training */
    fputs("<h2 id=\"training\">Training</h2>\n", fp);
    if (R->ncls == 0)
        fputs("<p class=\"note\">No classifier was given: the training curves and the confusion matrix come from a "
              "classifier file (<code>bneck report FEATURES.h5 CLASSIFIER.h5</code>).</p>\n",
              fp);
    for (int i = 0; i < R->ncls; i++)
        if (html_figures(R, fp, 2, i)) goto fail;
    if (R->ncls) fputs("<h2 id=\"confusion\">Confusion matrix</h2>\n", fp);
    for (int i = 0; i < R->ncls; i++) {
        if (html_figures(R, fp, 3, i)) goto fail;
        const bn_classifier *c = &R->cls[i].c;
        fprintf(fp, "<details><summary>the counts (rows: true class, columns: predicted, %d classes)</summary>\n"
                    "<table>\n<tr><th></th>",
                c->nclasses);
        for (int k = 0; k < c->nclasses; k++) fprintf(fp, "<th>%d</th>", k);
        fputs("</tr>\n", fp);
        for (int t = 0; t < c->nclasses; t++) {
            fprintf(fp, "<tr><td>%d ", t);
            html_esc(fp, c->labels[t]);
            fputs("</td>", fp);
            for (int k = 0; k < c->nclasses; k++) fprintf(fp, "<td>%lld</td>", c->confusion[(size_t)t * c->nclasses + k]);
            fputs("</tr>\n", fp);
        }
        fputs("</table></details>\n", fp);
    }

    /* Failures */
    long long nf = 0;
    for (int i = 0; i < R->nfeats; i++) nf += R->feats[i].nfailed;
    fprintf(fp, "<h2 id=\"failed\">Failed images (%lld)</h2>\n", nf);
    if (nf == 0) fputs("<p>Every image was decoded.</p>\n", fp);
    for (int i = 0; i < R->nfeats; i++) {
        const feat_rep *F = &R->feats[i];
        if (!F->nfailed) continue;
        if (html_figures(R, fp, 4, i)) goto fail;
        fputs("<table>\n<tr><th>path</th><th>status</th><th>reason</th></tr>\n", fp);
        for (long long k = 0; k < F->nfailed && k < HTML_FAILED_MAX; k++) {
            char *p = bn_feats_path(&F->f, F->frow[k]);
            fputs("<tr><td>", fp);
            html_esc(fp, p);
            fprintf(fp, "</td><td class=\"l\">%s</td><td class=\"l\">", code_name(F->fcode[k]));
            html_esc(fp, F->freason + (size_t)k * BN_REASON_LEN);
            fputs("</td></tr>\n", fp);
            free(p);
        }
        fputs("</table>\n", fp);
        if (F->nfailed > HTML_FAILED_MAX)
            fprintf(fp, "<p>and %lld more: <code>bneck report --failed</code> lists them all.</p>\n",
                    F->nfailed - HTML_FAILED_MAX);
    }
    fputs("</body></html>\n", fp);
    if (ferror(fp) || fclose(fp) != 0) {
        snprintf(R->err, sizeof R->err, "%.600s: cannot write the page: %s", partial, strerror(errno));
        remove(partial);
        return -1;
    }
    if (rename(partial, R->html) != 0) {
        snprintf(R->err, sizeof R->err, "%.400s: cannot rename to %.400s: %s", partial, R->html, strerror(errno));
        remove(partial);
        return -1;
    }
    printf("page: %s\n", R->html);
    return 0;
fail:
    fclose(fp);
    remove(partial);
    return -1;
}

/* ------------------------------------------------------------ command */

int bn_cmd_report(int argc, char **argv) {
    report_t *R = callocCheck(1, sizeof *R);
    R->price = NAN;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"failed", 0, BN_OPT_FLAG, &R->list_failed, NULL, NULL, 0, 0, NULL, "list every failed image with its reason"},
        {"html", 0, BN_OPT_STRING, &R->html, "FILE", NULL, 0, 0, NULL, "write one self-contained HTML page"},
        {"svg", 0, BN_OPT_STRING, &R->svg_dir, "DIR", NULL, 0, 0, NULL, "write each figure as DIR/NAME.svg"},
        {"png", 0, BN_OPT_STRING, &R->png_dir, "DIR", NULL, 0, 0, NULL, "write each figure as DIR/NAME.png"},
        {"price-per-node-hour", 0, BN_OPT_DOUBLE, &R->price, "P", NULL, 0, 1e9, NULL,
         "price one node-hour at P for the runs recorded without a price"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "report", "What the runs in features and classifier files did and cost: tables, figures, an HTML page.",
        "bneck report FEATURES.h5 [CLASSIFIER.h5 ...] [--failed] [--html FILE] [--svg DIR] [--png DIR]",
        "Prints the summary of each file, the per-rank timing table of every run, the\n"
        "stage times, the cost (with a price per node-hour, recorded by the run or given\n"
        "here) and the failed images counted by reason. The figures: time per rank, the\n"
        "throughput over time, the training curves, the confusion matrix and the failures\n"
        "by reason. docs/report.md shows them.",
        opts};
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, R->files, MAX_FILES, &npos);
    if (rc < 0) {
        free(R);
        return 0;
    }
    if (rc) {
        free(R);
        return rc;
    }
    R->nfiles = npos;
    if (npos == 0) {
        free(R);
        return bn_cli_usage(&spec, "give at least one features or classifier file");
    }
    bn_cli_apply_verbosity(verbose, quiet);
    int rank = 0;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    rc = BN_EXIT_OK;
    if (rank == 0) {
        if (load_all(R)) {
            rc = BN_EXIT_FAIL;
        } else {
            for (int i = 0; i < R->nfeats; i++) print_features(R, &R->feats[i]), printf("\n");
            for (int i = 0; i < R->ncls; i++) print_classifier(R, &R->cls[i]), printf("\n");
            print_totals(R);
            if ((R->html || R->svg_dir || R->png_dir) &&
                (draw_all(R) || (R->svg_dir && write_figures(R, R->svg_dir, 0)) ||
                 (R->png_dir && write_figures(R, R->png_dir, 1)) || (R->html && write_html(R)))) {
                bn_error(strstr(R->err, "figure") ? "this is a bug of bneck report: please report it with the file"
                                                   : "check that the folder exists and is writable",
                         "%s", R->err);
                rc = BN_EXIT_FAIL;
            }
        }
        for (int i = 0; i < R->nfeats; i++) feat_free(&R->feats[i]);
        for (int i = 0; i < R->ncls; i++) bn_classifier_free(&R->cls[i].c);
        for (int i = 0; i < R->nfigs; i++) bn_fig_free(R->figs[i].fig);
    }
    free(R);
    return rc;
}
