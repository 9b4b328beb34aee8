/* benchmark.c: "bneck benchmark" - engine throughput on synthetic input:
 * images/s, GFLOP/s and peak memory for one backend, batch size and thread
 * count. What bench/engine.sh and solution architects compare. */
#include "io/image.h"
#include "io/weights.h"
#include "net/engine.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/engopts.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "pipeline/sysinfo.h"
#include "stages/synth.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bn_cmd_benchmark(int argc, char **argv) {
    const char *weights = NULL;
    bn_engine_opts eo = BN_ENGINE_OPTS_INIT;
    eo.batch = 16; /* the benchmark's own default: the engines' sweet spot */
    double seconds = 5.0;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"weights", 'w', BN_OPT_STRING, &weights, "FILE", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required"},
        BN_OPTS_ENGINE(&eo, "16", "keras"),
        {"seconds", 0, BN_OPT_DOUBLE, &seconds, "S", "5", 0, 3600, NULL, "measure for about this long, after one warm-up pass"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "benchmark", "Measure the engine: images/s, GFLOP/s and peak memory on synthetic photo-like input.",
        "bneck benchmark --weights W.h5 [options]", NULL, opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!weights) return bn_cli_usage(&spec, "--weights FILE is required");
    bn_cli_apply_verbosity(verbose, quiet);
    bn_engine_setup es;
    char err[1024];
    if (bn_engine_opts_check(&eo, &es, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    const long long batch = eo.batch;
    int rank = 0;
    rank = bn_launch_rank();
    if (rank != 0) return 0;
    const int nthreads = es.threads;
    bn_model model;
    if (bn_weights_load(weights, &model, err, sizeof err)) {
        bn_error("bneck mkweights writes a test file", "%s", err);
        return BN_EXIT_FAIL;
    }
    bn_engine *eng = bn_engine_open(&es, &model, (int)batch, err, sizeof err);
    if (!eng) {
        bn_error(NULL, "cannot create the %s %s engine: %s", es.backend, bn_precision_name(es.precision), err);
        bn_engine_setup_free(&es);
        bn_model_free(&model);
        return BN_EXIT_FAIL;
    }
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *in = bn_engine_alloc_input(eng, (int)batch); /* page-locked for a GPU */
    float *out = mallocCheck((size_t)batch * BN_FEATURES * sizeof(float));
    bn_rgb img = {500, 333, mallocCheck(500 * 333 * 3), 500 * 333 * 3};
    for (int i = 0; i < batch; i++) {
        bn_synth_image(i % 5, 5, 7 + (unsigned long long)i, 500, 333, img.rgb);
        bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, es.norm, in + (size_t)i * img_floats);
    }
    double t0 = bn_now();
    if (bn_engine_forward(eng, in, (int)batch, out)) /* warm-up: JIT, page faults, caches */
        bn_fatal_at(__FILE__, __LINE__, NULL, "the %s engine failed: %s", bn_engine_backend(eng), bn_engine_error(eng));
    double warm = bn_now() - t0;
    long long images = 0;
    double dev0 = 0, copy0 = 0;
    bn_engine_device_times(eng, &dev0, &copy0); /* the warm-up's, left out below */
    t0 = bn_now();
    double t = 0;
    do {
        if (bn_engine_forward(eng, in, (int)batch, out))
            bn_fatal_at(__FILE__, __LINE__, NULL, "the %s engine failed: %s", bn_engine_backend(eng), bn_engine_error(eng));
        images += batch;
        t = bn_now() - t0;
    } while (t < seconds);
    double ips = images / t;
    double gflops = ips * 2.0 * (double)bn_inception_v3()->macs / 1e9;
    printf("benchmark: backend %s, precision %s, batch %lld, threads %d, streams %d, %lld images in %.2f s (warm-up %.2f s)\n",
           bn_engine_backend(eng), bn_precision_name(bn_engine_precision(eng)), batch, nthreads, bn_engine_streams(eng),
           images, t, warm);
    printf("images/s: %.2f\n", ips);
    printf("GFLOP/s: %.1f\n", gflops);
    printf("engine MiB: %.1f\n", (double)bn_engine_bytes(eng) / 1048576.0);
    printf("peak RSS MiB: %.0f\n", bn_peak_rss_mib());
    double dev = 0, copy = 0;
    if (bn_engine_device_times(eng, &dev, &copy)) {
        dev -= dev0, copy -= copy0;
        /* The network alone, as the GPU's events timed it; and the copies. */
        printf("device compute s: %.3f (%.1f%% of the time)\n", dev, t > 0 ? 100.0 * dev / t : 0.0);
        printf("device copy s: %.3f (%.1f%% of the time)\n", copy, t > 0 ? 100.0 * copy / t : 0.0);
        printf("images/s on the device (network alone): %.2f\n", dev > 0 ? images / dev : 0.0);
    }
    bn_rgb_free(&img);
    bn_engine_free_input(eng, in);
    free(out);
    bn_engine_free(eng);
    bn_engine_setup_free(&es);
    bn_model_free(&model);
    return 0;
}
