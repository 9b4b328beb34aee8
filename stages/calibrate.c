/* calibrate.c: "bneck calibrate" - the activation scales int8 runs need.
 *
 * Runs the fp32 gemm kernels through the shared executor (net/plan.h) on a
 * few images of a corpus and watches every layer's output through the
 * kernels' `after` callback: a first pass finds each tensor's largest value,
 * a second (not needed for --method max) fills a histogram of 4096 bins over
 * [0, max] per tensor. The thresholds (net/quant.h) go into a calibration
 * file tied to the weights' SHA-256 (docs/format.md). One process does the
 * work, as in bneck features.
 */
#include "io/corpus.h"
#include "io/image.h"
#include "io/weights.h"
#include "net/engine.h"
#include "net/plan.h"
#include "net/quant.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/engopts.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBINS 4096                  /* histogram bins per tensor */
#define DEFAULT_METHOD "entropy" /* chosen by measurement: docs/engine.md */
#define DEFAULT_PERCENTILE 99.99

/* What the observer gathers: per tensor of the graph. */
typedef struct {
    bn_kernels inner;             /* the fp32 gemm kernels */
    const bn_graph *g;
    int pass;                     /* 1: max; 2: histogram */
    float max[BN_MAX_TENSORS];    /* largest |x| (pass 1) */
    float inv_w[BN_MAX_TENSORS];  /* pass 2: bins per unit, NBINS / max */
    uint64_t *hist;               /* (ntensors, NBINS) */
    uint64_t zeros[BN_MAX_TENSORS];
    uint64_t count[BN_MAX_TENSORS];    /* values seen (pass 1) */
    uint64_t nonfinite[BN_MAX_TENSORS];/* NaN or infinite values (pass 1) */
} observer;

static void ob_conv(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst,
                    int n, const float *w, const float *b) {
    observer *o = ctx;
    o->inner.conv(o->inner.ctx, l, s, d, src, dst, n, w, b);
}
static void ob_maxpool(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst,
                       int n) {
    observer *o = ctx;
    o->inner.maxpool(o->inner.ctx, l, s, d, src, dst, n);
}
static void ob_avgpool(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst,
                       int n) {
    observer *o = ctx;
    o->inner.avgpool(o->inner.ctx, l, s, d, src, dst, n);
}
static void ob_gap(void *ctx, const bn_layer *l, const bn_tensor *s, const bn_tensor *d, const float *src, float *dst,
                   int n) {
    observer *o = ctx;
    o->inner.gap(o->inner.ctx, l, s, d, src, dst, n);
}

/* bn_kernels.after: the slice [dst_off, dst_off + cout) of every row. */
static void ob_after(void *ctx, const bn_layer *l, const bn_tensor *d, float *dst, int n) {
    observer *o = ctx;
    const int t = l->dst, cout = l->cout;
    const size_t rows = (size_t)n * d->h * d->w;
    if (o->pass == 1) {
        float m = o->max[t];
        uint64_t bad = 0;
        for (size_t r = 0; r < rows; r++) {
            const float *p = dst + r * (size_t)d->c + l->dst_off;
            for (int k = 0; k < cout; k++) {
                float a = fabsf(p[k]);
                if (!isfinite(a))
                    bad++;
                else if (a > m)
                    m = a;
            }
        }
        o->max[t] = m;
        o->nonfinite[t] += bad;
        o->count[t] += rows * (size_t)cout;
        return;
    }
    uint64_t *h = o->hist + (size_t)t * NBINS, z = 0;
    const float inv = o->inv_w[t];
    for (size_t r = 0; r < rows; r++) {
        const float *p = dst + r * (size_t)d->c + l->dst_off;
        for (int k = 0; k < cout; k++) {
            float a = fabsf(p[k]);
            if (a == 0.0f) {
                z++;
                continue;
            }
            int b = (int)(a * inv);
            h[b < NBINS ? (b >= 0 ? b : 0) : NBINS - 1]++; /* the max (and NaN, seen in pass 1) in the last bin */
        }
    }
    o->zeros[t] += z;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

int bn_cmd_calibrate(int argc, char **argv) {
    const char *weights = NULL, *images = NULL, *manifest = NULL, *out = NULL, *method_s = DEFAULT_METHOD;
    long long count = 32;
    double pct = -1.0;
    bn_engine_opts eo = BN_ENGINE_OPTS_INIT;
    eo.batch = 4;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"weights", 'w', BN_OPT_STRING, &weights, "W.h5", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required"},
        {"images", 'i', BN_OPT_STRING, &images, "DIR", NULL, 0, 0, NULL, "folder of class folders (retrain.py layout)"},
        {"manifest", 'm', BN_OPT_STRING, &manifest, "FILE", NULL, 0, 0, NULL, "manifest of path<TAB>label lines"},
        {"count", 'n', BN_OPT_INT, &count, "N", "32", 1, 100000, NULL, "calibration images, spread evenly over the corpus"},
        {"method", 0, BN_OPT_CHOICE, &method_s, NULL, DEFAULT_METHOD, 0, 0, "max|percentile|entropy",
         "threshold per tensor: the max, a percentile, or the KL-divergence minimum"},
        {"percentile", 0, BN_OPT_DOUBLE, &pct, "P", "99.99", 0, 100, NULL,
         "for --method percentile: the share of values (%) kept below the threshold"},
        {"out", 'o', BN_OPT_STRING, &out, "CAL.h5", NULL, 0, 0, NULL, "calibration file to write; required"},
        {"batch", 0, BN_OPT_INT, &eo.batch, "N", "4", 1, 4096, NULL, "images per forward pass"},
        {"threads", 't', BN_OPT_INT, &eo.threads, "N", "cores / ranks per node", 0, 4096, NULL,
         "engine threads (0 = default)"},
        {"preprocess", 0, BN_OPT_CHOICE, &eo.preprocess, NULL, "keras", 0, 0, "keras|tf2015",
         "input normalisation: x/127.5-1 (keras) or (x-128)/128 (tf2015); use the one the int8 runs use"},
        {"dct", 0, BN_OPT_CHOICE, &eo.dct, NULL, "accurate", 0, 0, "accurate|fast", "JPEG inverse DCT: accurate, or fast as TF1 used"},
        {"max-pixels", 0, BN_OPT_INT, &eo.max_pixels, "N", "100000000", 1, 1e15, NULL,
         "refuse larger images (checked from the header)"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "calibrate", "Measure the activation scales --precision int8 needs, on a few images of a corpus.",
        "bneck calibrate --weights W.h5 (--images DIR | --manifest FILE) --out CAL.h5 [options]",
        "Runs the fp32 network on N images spread evenly over the corpus (every\n"
        "(images/N)-th in corpus order, so every class is seen) and sets one threshold\n"
        "per tensor. Calibrate on images like the ones the int8 runs will see: real\n"
        "photographs of the corpus, not synthetic noise. Images that cannot be decoded\n"
        "are skipped and counted. The file is tied to the weights' SHA-256; pass it\n"
        "with --precision int8 --calibration CAL.h5. See docs/engine.md.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!weights) return bn_cli_usage(&spec, "--weights W.h5 is required");
    if (!out) return bn_cli_usage(&spec, "--out CAL.h5 is required");
    if (!images == !manifest) return bn_cli_usage(&spec, "give exactly one of --images DIR or --manifest FILE");
    bn_calib_method method;
    if (bn_calib_method_parse(method_s, &method)) return bn_cli_usage(&spec, "unknown method '%s'", method_s);
    if (pct >= 0.0 && method != BN_CALIB_PERCENTILE)
        return bn_cli_usage(&spec, "--percentile is for --method percentile (this run is %s)", method_s);
    if (pct < 0.0) pct = DEFAULT_PERCENTILE;
    if (!(pct > 0.0)) return bn_cli_usage(&spec, "--percentile must be over 0");
    bn_cli_apply_verbosity(verbose, quiet);
    eo.backend = "gemm";
    eo.precision = "fp32";
    bn_engine_setup es;
    char err[2048];
    if (bn_engine_opts_check(&eo, &es, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    if (bn_launch_rank() != 0) return 0; /* one process does the work */

    double t0 = bn_now();
    bn_model model;
    if (bn_weights_load(weights, &model, err, sizeof err)) {
        bn_error("bneck mkweights writes a test file; docs/weights.md says how to get the real one", "%s", err);
        return BN_EXIT_FAIL;
    }
    bn_corpus corpus;
    memset(&corpus, 0, sizeof corpus);
    bn_split_opts so = {10, 10};
    if (images ? bn_corpus_scan_dir(images, &so, &corpus, err, sizeof err)
               : bn_corpus_read_manifest(manifest, &so, &corpus, err, sizeof err)) {
        bn_error(images ? "the folder must hold one subfolder per class, with .jpg/.jpeg/.png files"
                        : "each line must be 'path<TAB>label'",
                 "%s", err);
        bn_model_free(&model);
        return BN_EXIT_FAIL;
    }
    const char *source = images ? images : manifest;
    /* N images spread evenly over the corpus order: j * total / N. */
    size_t want = (size_t)count;
    if (want > corpus.n) {
        bn_info("calibrate: %s has %zu images, fewer than --count %lld: using all of them", source, corpus.n, count);
        want = corpus.n;
    }
    size_t *pick = mallocCheck(want * sizeof *pick);
    for (size_t j = 0; j < want; j++) pick[j] = (size_t)((unsigned long long)j * corpus.n / want);

    const bn_graph *g = bn_inception_v3();
    observer *o = callocCheck(1, sizeof *o);
    o->g = g;
    void *gctx = bn_gemm_kernels(es.threads, &o->inner);
    bn_kernels k = {ob_conv, ob_maxpool, ob_avgpool, ob_gap, ob_after, o};
    const int nb = (int)(eo.batch < (long long)want ? eo.batch : (long long)want);
    bn_plan plan;
    bn_plan_make(g, nb, &plan);
    float *arena = bn_plan_arena(&plan);
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *input = malloc((size_t)nb * img_floats * sizeof(float));
    float *feat = malloc((size_t)nb * BN_FEATURES * sizeof(float));
    o->hist = method == BN_CALIB_MAX ? NULL : calloc((size_t)g->ntensors * NBINS, sizeof(uint64_t));
    int status = BN_EXIT_FAIL;
    bn_decoder *dec = bn_decoder_new(&es.dopts);
    bn_rgb img = {0};
    char *good = callocCheck(want ? want : 1, 1);
    size_t used = 0, skipped = 0;
    if (!arena || !input || !feat || (method != BN_CALIB_MAX && !o->hist)) {
        bn_error("lower --batch", "out of memory for the calibration run (batch %d, %zu MB of activations)", nb,
                 plan.floats * sizeof(float) >> 20);
        goto done;
    }
    for (o->pass = 1; o->pass <= (method == BN_CALIB_MAX ? 1 : 2); o->pass++) {
        if (o->pass == 2)
            for (int t = 0; t < g->ntensors; t++) o->inv_w[t] = o->max[t] > 0.0f ? (float)NBINS / o->max[t] : 0.0f;
        double tp = bn_now();
        for (size_t j0 = 0; j0 < want;) {
            int cnt = 0;
            for (; j0 < want && cnt < nb; j0++) {
                const char *path = corpus.items[pick[j0]].path;
                if (o->pass == 2 && !good[j0]) continue;
                bn_img_result res;
                if (bn_decode_file(dec, path, &img, &res) != BN_IMG_OK) {
                    /* Pass 1 decides which images are used; pass 2 sees the same bytes. */
                    if (o->pass == 1) {
                        bn_warn("%s: %s: %s (skipped)", path, bn_img_status_name(res.status), res.reason);
                        skipped++;
                    } else {
                        bn_error("do not change the corpus while calibrating", "%s: %s: %s, though it decoded in the "
                                 "first pass", path, bn_img_status_name(res.status), res.reason);
                        goto done;
                    }
                    continue;
                }
                if (o->pass == 1) {
                    good[j0] = 1;
                    used++;
                }
                bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, es.norm, input + (size_t)cnt * img_floats);
                cnt++;
            }
            if (cnt) bn_exec(g, &plan, &k, model.w, model.b, arena, input, cnt, feat);
        }
        bn_verbose("calibrate: pass %d over %zu images in %.1f s", o->pass, used, bn_now() - tp);
        if (o->pass == 1 && !used) {
            bn_error("check the images with: bneck corpus --decode", "%s: none of the %zu images chosen could be decoded",
                     source, want);
            goto done;
        }
        if (o->pass == 1)
            for (int t = 0; t < g->ntensors; t++)
                if (o->nonfinite[t]) {
                    bn_error("check the weights file (bneck features on one image shows NaN features too)",
                             "tensor %s: %llu values are NaN or infinite: the weights give no usable activations",
                             g->tensors[t].name, (unsigned long long)o->nonfinite[t]);
                    goto done;
                }
    }

    bn_calib cal;
    memset(&cal, 0, sizeof cal);
    cal.ntensors = g->ntensors;
    snprintf(cal.method, sizeof cal.method, "%s", bn_calib_method_name(method));
    cal.percentile = method == BN_CALIB_PERCENTILE ? pct : 0.0;
    cal.images = (int)used;
    snprintf(cal.weights_sha256, sizeof cal.weights_sha256, "%s", model.sha256);
    snprintf(cal.preprocess, sizeof cal.preprocess, "%s", es.norm == BN_NORM_TF2015 ? "tf2015" : "keras");
    float ratio[BN_MAX_TENSORS];
    int nr = 0, lo = -1;
    float lo_r = 2.0f;
    double clipped_most = 0.0;
    int clipped_t = -1;
    if (bn_log_level() >= BN_VERBOSE)
        fprintf(stderr, "%-22s %10s %10s %8s %8s %9s\n", "tensor", "max", "threshold", "t/max", "zeros", "clipped");
    for (int t = 0; t < g->ntensors; t++) {
        if (t == g->input) {
            cal.thresh[t] = BN_CALIB_INPUT_THRESH;
            continue;
        }
        const int u8 = t != g->output; /* the features are never quantized: not in the summary */
        bn_act_stats st = {o->max[t], o->zeros[t], o->hist ? o->hist + (size_t)t * NBINS : NULL, NBINS};
        double zshare = 0.0, clip = 0.0;
        if (o->hist) {
            cal.thresh[t] = bn_calib_threshold(method, pct, &st);
            /* Share of values over the threshold, counting whole bins above it. */
            double above = 0.0, all = (double)o->zeros[t];
            int tb = o->max[t] > 0.0f ? (int)ceil((double)cal.thresh[t] * o->inv_w[t] - 1e-9) : NBINS;
            for (int b = 0; b < NBINS; b++) {
                all += (double)st.hist[b];
                if (b >= tb) above += (double)st.hist[b];
            }
            zshare = all > 0 ? (double)o->zeros[t] / all : 0.0;
            clip = all > 0 ? above / all : 0.0;
        } else {
            cal.thresh[t] = o->max[t] > 0.0f ? o->max[t] : 1.0f;
        }
        const float rt = o->max[t] > 0.0f ? cal.thresh[t] / o->max[t] : 1.0f;
        if (u8) ratio[nr++] = rt;
        if (u8 && rt < lo_r) {
            lo_r = rt;
            lo = t;
        }
        if (u8 && clip > clipped_most) {
            clipped_most = clip;
            clipped_t = t;
        }
        if (bn_log_level() >= BN_VERBOSE)
            fprintf(stderr, "%-22s %10.4g %10.4g %8.3f %7.1f%% %8.4f%%\n", g->tensors[t].name, (double)o->max[t],
                    (double)cal.thresh[t], rt, 100.0 * zshare, 100.0 * clip);
    }
    qsort(ratio, (size_t)nr, sizeof *ratio, cmp_float);
    if (bn_calib_write(out, &cal, err, sizeof err)) {
        bn_error("check that the folder exists and is writable", "%s", err);
        goto done;
    }
    char mdesc[64];
    if (method == BN_CALIB_PERCENTILE)
        snprintf(mdesc, sizeof mdesc, "percentile %g", pct);
    else
        snprintf(mdesc, sizeof mdesc, "%s", bn_calib_method_name(method));
    printf("calibrate: %zu of %zu images in %s (%zu skipped), method %s, preprocess %s\n", used, corpus.n, source,
           skipped, mdesc, cal.preprocess);
    printf("calibrate: %d u8 tensors; threshold / max: lowest %.3f (%s), median %.3f, highest %.3f\n", nr, ratio[0],
           lo >= 0 ? g->tensors[lo].name : "-", ratio[nr / 2], ratio[nr - 1]);
    if (clipped_t >= 0)
        printf("calibrate: most clipped: %s, %.4f%% of its values over the threshold\n", g->tensors[clipped_t].name,
               100.0 * clipped_most);
    printf("calibrate: wrote %s (sha256 %s) in %.1f s\n", out, cal.sha256, bn_now() - t0);
    status = BN_EXIT_OK;
done:
    free(good);
    bn_rgb_free(&img);
    bn_decoder_free(dec);
    free(o->hist);
    free(feat);
    free(input);
    free(arena);
    bn_gemm_kernels_free(gctx);
    free(o);
    free(pick);
    bn_corpus_free(&corpus);
    bn_model_free(&model);
    bn_engine_setup_free(&es);
    return status;
}
