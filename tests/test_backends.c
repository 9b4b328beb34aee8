/* test_backends.c: the backend table (net/engine.c). Names resolve to
 * built backends that offer the precision, "cpu" picks the fastest one,
 * refusals say why, and every backend the table lists as built creates an
 * engine of each precision it offers (int8 with a calibration), whose
 * features are finite and close to ref's for fp32. */
#include "config.h"
#include "io/image.h"
#include "net/calib.h"
#include "net/engine.h"
#include "net/quant.h"
#include "stages/synth.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double rel_l2(const float *a, const float *b, size_t n) {
    double dd = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        dd += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        bb += (double)b[i] * b[i];
    }
    return bb > 0 ? sqrt(dd / bb) : sqrt(dd);
}

int main(void) {
    char err[512];
    bn_precision p;
    /* precision names */
    CHECK(bn_precision_parse("fp32", &p) == 0 && p == BN_PREC_FP32, "fp32 parses");
    CHECK(bn_precision_parse("bf16", &p) == 0 && p == BN_PREC_BF16, "bf16 parses");
    CHECK(bn_precision_parse("int8", &p) == 0 && p == BN_PREC_INT8, "int8 parses");
    CHECK(bn_precision_parse("tf32", &p) == 0 && p == BN_PREC_TF32, "tf32 parses");
    CHECK(bn_precision_parse("fp16", &p) == 0 && p == BN_PREC_FP16, "fp16 parses");
    CHECK(bn_precision_parse("fp64", &p) == -1 && bn_precision_parse("FP16", &p) == -1, "fp64, FP16 are not precisions");
    /* tf32 and fp16 are the GPU's alone: no CPU backend offers them, the cuda entry does. */
    for (int q = BN_PREC_TF32; q <= BN_PREC_FP16; q++) {
        CHECK(bn_backend_resolve("cpu", (bn_precision)q, err, sizeof err) == NULL && strstr(err, "no backend"),
              "cpu offers %s", bn_precision_name((bn_precision)q));
        const char *rr = bn_backend_resolve("cuda", (bn_precision)q, err, sizeof err);
#ifdef HAVE_CUDA
        CHECK(rr && !strcmp(rr, "cuda"), "cuda %s: %s", bn_precision_name((bn_precision)q), rr ? rr : err);
#else
        CHECK(!rr && strstr(err, "not built"), "cuda %s without CUDA: %s", bn_precision_name((bn_precision)q), rr ? rr : err);
#endif
    }
    CHECK(bn_backend_is_gpu("cuda") && !bn_backend_is_gpu("dnnl") && !bn_backend_is_gpu("cpu") && !bn_backend_is_gpu("x"),
          "only cuda runs on a GPU");
    CHECK(!strcmp(bn_precision_name(BN_PREC_INT8), "int8"), "int8 name");

    /* resolution */
    const char *r = bn_backend_resolve("ref", BN_PREC_FP32, err, sizeof err);
    CHECK(r && !strcmp(r, "ref"), "ref fp32 resolves to ref");
    r = bn_backend_resolve("ref", BN_PREC_INT8, err, sizeof err);
    CHECK(!r && strstr(err, "does not offer int8") && strstr(err, "fp32"), "ref int8 refused naming what ref offers: %s", err);
    r = bn_backend_resolve("nosuch", BN_PREC_FP32, err, sizeof err);
    CHECK(!r && strstr(err, "unknown backend 'nosuch'") && strstr(err, "gemm"), "unknown backend refused with the list: %s", err);
    r = bn_backend_resolve("gemm", BN_PREC_BF16, err, sizeof err);
    CHECK(r && !strcmp(r, "gemm"), "gemm offers bf16 (emulated)");
    r = bn_backend_resolve("cpu", BN_PREC_FP32, err, sizeof err);
#ifdef HAVE_DNNL
    CHECK(r && !strcmp(r, "dnnl"), "cpu fp32 is dnnl in a oneDNN build (got %s)", r ? r : err);
    CHECK(strstr(bn_backend_choices(), "dnnl") != NULL, "choices list dnnl");
#else
    CHECK(r && !strcmp(r, "gemm"), "cpu fp32 is gemm without oneDNN (got %s)", r ? r : err);
    r = bn_backend_resolve("dnnl", BN_PREC_FP32, err, sizeof err);
    CHECK(!r && strstr(err, "not built in"), "dnnl refused as not built: %s", err);
    CHECK(strstr(bn_backend_choices(), "dnnl") == NULL, "choices do not list an unbuilt dnnl");
#endif
    char table[1024];
    bn_backend_table_text(table, sizeof table);
    CHECK(strstr(table, "ref") && strstr(table, "gemm") && strstr(table, "dnnl") && strstr(table, "cuda"),
          "the table lists every backend:\n%s", table);
    /* "cpu" never means the GPU backend, at any precision. */
    for (int q = 0; q < BN_NPREC; q++) {
        r = bn_backend_resolve("cpu", (bn_precision)q, err, sizeof err);
        CHECK(!r || strcmp(r, "cuda"), "cpu resolved %s to cuda", bn_precision_name((bn_precision)q));
    }
#ifdef HAVE_CUDA
    CHECK(strstr(table, "NOT YET RUN ON HARDWARE") != NULL, "the cuda entry must say it has not run on a GPU yet");
#else
    r = bn_backend_resolve("cuda", BN_PREC_FP32, err, sizeof err);
    CHECK(!r && strstr(err, "not built"), "cuda without CUDA: %s", r ? r : err);
#endif

    /* engines */
    const size_t img = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    const int N = 2;
    float *in = malloc(N * img * sizeof(float));
    bn_rgb pic = {160, 120, malloc(160 * 120 * 3), 160 * 120 * 3};
    for (int i = 0; i < N; i++) {
        bn_synth_image(i % 5, 5, 70 + (unsigned long long)i, 160, 120, pic.rgb);
        bn_resize_norm(&pic, BN_INPUT_SIZE, BN_INPUT_SIZE, BN_NORM_KERAS, in + i * img);
    }
    bn_raw_params rp;
    bn_raw_alloc(&rp);
    bn_random_init(&rp, 5);
    bn_calibrate(&rp, in, N);
    bn_model m;
    bn_model_fold(&rp, &m);
    bn_raw_free(&rp);
    /* A calibration with every tensor's threshold generous (the features
     * are only checked for being finite and not all zero here; fidelity
     * has its own tests). */
    bn_calib cal;
    memset(&cal, 0, sizeof cal);
    cal.ntensors = bn_inception_v3()->ntensors;
    for (int t = 0; t < cal.ntensors; t++) cal.thresh[t] = t == bn_inception_v3()->input ? 1.0f : 8.0f;

    bn_engine_config cfg = {&m, "gemm", BN_PREC_INT8, NULL, N, 1, 0, 0};
    CHECK(bn_engine_create(&cfg, err, sizeof err) == NULL && strstr(err, "bneck calibrate") && strstr(err, "--calibration"),
          "int8 without a calibration refused with the hint: %s", err);
    cfg.backend = "ref";
    cfg.precision = BN_PREC_FP32;
    cfg.max_batch = 0;
    CHECK(bn_engine_create(&cfg, err, sizeof err) == NULL, "batch 0 refused");

    float *ref = malloc(N * BN_FEATURES * sizeof(float)), *out = malloc(N * BN_FEATURES * sizeof(float));
    cfg = (bn_engine_config){&m, "ref", BN_PREC_FP32, NULL, N, 1, 0, 0};
    bn_engine *e = bn_engine_create(&cfg, err, sizeof err);
    CHECK(e != NULL, "ref engine: %s", err);
    if (e) {
        CHECK(!strcmp(bn_engine_backend(e), "ref") && bn_engine_precision(e) == BN_PREC_FP32, "ref engine describes itself");
        bn_engine_forward(e, in, N, ref);
        bn_engine_free(e);
    }
    const char *names[] = {"gemm", "dnnl", "cpu"};
    for (size_t b = 0; b < sizeof names / sizeof names[0]; b++)
        for (int q = 0; q < BN_NPREC; q++) {
            const char *res = bn_backend_resolve(names[b], (bn_precision)q, err, sizeof err);
            if (!res) continue; /* not built, or not offered: covered above */
            cfg = (bn_engine_config){&m, names[b], (bn_precision)q, q == BN_PREC_INT8 ? &cal : NULL, N, 2, 0, 0};
            e = bn_engine_create(&cfg, err, sizeof err);
            if (!e) {
                /* The one allowed refusal: a precision this CPU has no fast kernel for. */
                CHECK(strstr(err, "refused on this CPU") != NULL, "%s %s: %s", names[b], bn_precision_name(q), err);
                printf("%s %s: refused here: %s\n", names[b], bn_precision_name(q), err);
                continue;
            }
            CHECK(!strcmp(bn_engine_backend(e), res), "%s resolves to %s", names[b], res);
            bn_engine_forward(e, in, N, out);
            int finite = 1, nonzero = 0;
            for (int i = 0; i < N * BN_FEATURES; i++) {
                finite &= isfinite(out[i]) != 0;
                nonzero |= out[i] != 0.0f;
            }
            CHECK(finite && nonzero, "%s %s: features finite and not all zero", names[b], bn_precision_name(q));
            double d = rel_l2(out, ref, (size_t)N * BN_FEATURES);
            if (q == BN_PREC_FP32) CHECK(d < 1e-4, "%s fp32 within 1e-4 of ref (%g)", names[b], d);
            printf("%s (%s) %s: relative L2 %.3g from ref fp32, %.1f MiB\n", names[b], res, bn_precision_name(q), d,
                   bn_engine_bytes(e) / 1048576.0);
            bn_engine_free(e);
        }
    free(ref);
    free(out);
    bn_model_free(&m);
    bn_rgb_free(&pic);
    free(in);
    return t_done("test_backends");
}
