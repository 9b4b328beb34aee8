/* benchmark.c: "bneck benchmark" - engine throughput on synthetic input:
 * images/s, GFLOP/s and peak memory for one backend, batch size and thread
 * count, for one precision or several. What bench/engine.sh and solution
 * architects compare.
 *
 * With --images or --manifest it also times extract end to end on that
 * corpus, once per precision, through bn_extract_run (every rank of the
 * launch takes part). With --json it writes what it measured as a
 * bneck-benchmark file, which "bneck cost" reads (docs/cost.md has the
 * format). The steps: choose the precisions, measure the engine alone on
 * rank 0, time the extracts on every rank, write the file on rank 0.
 */
#include "config.h"
#include "io/image.h"
#include "io/runrec.h"
#include "io/weights.h"
#include "net/engine.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/engopts.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "pipeline/sysinfo.h"
#include "stages/stages.h"
#include "stages/synth.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_FORMAT "bneck-benchmark" /* the "format" of the JSON file */
#define BENCH_VERSION 1                /* its "version"; stages/cost.c reads this one */

/* What "bneck benchmark" is asked to do. */
typedef struct {
    const char *weights;    /* Keras Inception v3 weights (.h5) */
    bn_engine_opts eng;     /* backend, batch, threads, precision (when --precisions is not given), calibration */
    double seconds;         /* engine alone: measure about this long per precision, after a warm-up pass */
    const char *precisions; /* --precisions LIST or "all"; NULL: just eng.precision */
    const char *images;     /* corpus for the extract timing: folder of class folders, or NULL */
    const char *manifest;   /* or a manifest, or NULL (at most one of the two) */
    const char *json;       /* the bneck-benchmark file to write, or NULL */
    double price;           /* --price-per-node-hour, recorded in the file; NaN: not given */
    const char *name;       /* --name of the machine; NULL: the host name */
    int quiet;              /* -q */
} bench_cfg;

/* One precision of the run: what was asked and what was measured. */
typedef struct {
    bn_precision prec;      /* the arithmetic */
    bn_engine_opts eng;     /* the engine options of this precision (calibration only for int8) */
    int ran;                /* 1: the engine alone ran it (then it is extracted too) */
    const char *device;     /* "cpu" | "gpu": where rank 0's engine ran */
    char backend[16];       /* the backend's table name ("dnnl", "cuda") */
    int threads;            /* engine threads of rank 0 */
    int streams;            /* engine streams */
    double seconds;         /* engine alone: the measured time, warm-up left out */
    double images_per_s;    /* engine alone */
    double gflops;          /* engine alone: GFLOP/s at 2 x the network's MACs per image */
    double peak_rss_mib;    /* this process's peak RSS after the measurement (it only grows) */
    int extracted;          /* 1: the extract of the corpus ran for this precision */
    long long ext_images;   /* extract: images handled, done + failed */
    long long ext_failed;   /* extract: of them, failed */
    int ext_ranks;          /* extract: ranks of the launch */
    double ext_wall_s;      /* extract: wall seconds on rank 0, from a barrier before the call to its return */
    double ext_images_per_s;/* extract: ext_images / ext_wall_s */
} bench_prec;

/* The precisions of a run, in the order they are measured. */
typedef struct {
    bench_prec p[BN_NPREC]; /* [n] */
    int n;                  /* precisions to try */
    int all;                /* 1: --precisions all: a precision this machine refuses is skipped with a note */
} bench_set;

/* ------------------------------------------------------------ precisions */

/* Fill set from cfg (--precisions, else --precision). Named precisions that
 * the engine options refuse (int8 without --calibration, tf32 in a build
 * without a GPU backend) are a usage error; under "all" they are dropped
 * with a note. Every rank answers alike, before MPI starts. Returns 0, or
 * BN_CLI_USAGE after printing the error. */
static int choose_precisions(const bn_cmd_spec *spec, const bench_cfg *cfg, bench_set *set) {
    memset(set, 0, sizeof *set);
    bn_precision want[BN_NPREC];
    int nwant = 0;
    if (!cfg->precisions) {
        bn_precision p = BN_PREC_FP32;
        if (cfg->eng.precision && bn_precision_parse(cfg->eng.precision, &p))
            return bn_cli_usage(spec, "unknown precision '%s'", cfg->eng.precision);
        want[nwant++] = p;
    } else if (!strcmp(cfg->precisions, "all")) {
        set->all = 1;
        for (int i = 0; i < BN_NPREC; i++) want[nwant++] = (bn_precision)i;
    } else {
        const char *s = cfg->precisions;
        while (*s) {
            size_t len = strcspn(s, ",");
            char name[16];
            bn_precision p;
            if (len == 0 || len >= sizeof name)
                return bn_cli_usage(spec, "--precisions '%s': expected a comma list of fp32, bf16, int8, tf32, fp16, "
                                          "or all", cfg->precisions);
            memcpy(name, s, len);
            name[len] = 0;
            if (bn_precision_parse(name, &p))
                return bn_cli_usage(spec, "--precisions: unknown precision '%s' (fp32, bf16, int8, tf32, fp16, or all)",
                                    name);
            for (int k = 0; k < nwant; k++)
                if (want[k] == p) return bn_cli_usage(spec, "--precisions: %s is named twice", name);
            want[nwant++] = p;
            s += len;
            if (*s == ',') {
                s++;
                if (!*s) return bn_cli_usage(spec, "--precisions '%s' ends with a comma", cfg->precisions);
            }
        }
        int has_int8 = 0;
        for (int k = 0; k < nwant; k++) has_int8 |= want[k] == BN_PREC_INT8;
        if (cfg->eng.calibration && !has_int8)
            return bn_cli_usage(spec, "--calibration is for int8, and --precisions %s does not name it", cfg->precisions);
    }
    for (int k = 0; k < nwant; k++) {
        bench_prec *bp = &set->p[set->n];
        memset(bp, 0, sizeof *bp);
        bp->prec = want[k];
        bp->eng = cfg->eng;
        bp->eng.precision = bn_precision_name(want[k]);
        bp->eng.calibration = want[k] == BN_PREC_INT8 ? cfg->eng.calibration : NULL;
        bn_engine_setup es;
        char err[512];
        if (bn_engine_opts_check(&bp->eng, &es, err, sizeof err)) {
            if (!set->all) return bn_cli_usage(spec, "%s", err);
            if (bn_is_first_process()) {
                if (want[k] == BN_PREC_INT8 && !cfg->eng.calibration)
                    bn_info("note: int8 skipped: it needs --calibration CAL.h5 (bneck calibrate writes one)");
                else
                    bn_info("note: %s skipped: %s", bn_precision_name(want[k]), err);
            }
            continue;
        }
        bn_engine_setup_free(&es);
        set->n++;
    }
    if (set->n == 0) return bn_cli_usage(spec, "none of the precisions can run with these options");
    return 0;
}

/* ------------------------------------------------------------ engine alone */

/* Measure one precision's engine on synthetic input, as the benchmark always
 * did, and print its lines. Returns 0; 1 when the engine refused to start
 * (reason in err: the caller skips or fails); -1 when it failed while
 * running (reported here). */
static int measure_engine(const bench_cfg *cfg, const bn_model *model, bench_prec *bp, char *err, size_t errlen) {
    bn_engine_setup es;
    if (bn_engine_opts_check(&bp->eng, &es, err, errlen)) return 1; /* checked before: not expected */
    const long long batch = bp->eng.batch;
    bn_engine *eng = bn_engine_open(&es, model, (int)batch, err, errlen);
    if (!eng) {
        bn_engine_setup_free(&es);
        return 1;
    }
    int rc = 0;
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *in = bn_engine_alloc_input(eng, (int)batch); /* page-locked for a GPU */
    float *out = mallocCheck((size_t)batch * BN_FEATURES * sizeof(float));
    bn_rgb img = {500, 333, mallocCheck(500 * 333 * 3), 500 * 333 * 3};
    for (int i = 0; i < batch; i++) {
        bn_synth_image(i % 5, 5, 7 + (unsigned long long)i, 500, 333, img.rgb);
        bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, es.norm, in + (size_t)i * img_floats);
    }
    long long images = 0;
    double t = 0, warm = 0, dev0 = 0, copy0 = 0;
    double t0 = bn_now();
    if (bn_engine_forward(eng, in, (int)batch, out)) { /* warm-up: JIT, page faults, caches */
        rc = -1;
        goto done;
    }
    warm = bn_now() - t0;
    bn_engine_device_times(eng, &dev0, &copy0); /* the warm-up's, left out below */
    t0 = bn_now();
    do {
        if (bn_engine_forward(eng, in, (int)batch, out)) {
            rc = -1;
            goto done;
        }
        images += batch;
        t = bn_now() - t0;
    } while (t < cfg->seconds);
    bp->ran = 1;
    bp->device = bn_backend_is_gpu(bn_engine_backend(eng)) ? "gpu" : "cpu";
    snprintf(bp->backend, sizeof bp->backend, "%s", bn_engine_backend(eng));
    bp->threads = es.threads;
    bp->streams = bn_engine_streams(eng);
    bp->seconds = t;
    bp->images_per_s = images / t;
    bp->gflops = bp->images_per_s * 2.0 * (double)bn_inception_v3()->macs / 1e9;
    bp->peak_rss_mib = bn_peak_rss_mib();
    printf("benchmark: backend %s, precision %s, batch %lld, threads %d, streams %d, %lld images in %.2f s (warm-up %.2f s)\n",
           bn_engine_backend(eng), bn_precision_name(bn_engine_precision(eng)), batch, es.threads,
           bn_engine_streams(eng), images, t, warm);
    printf("images/s: %.2f\n", bp->images_per_s);
    printf("GFLOP/s: %.1f\n", bp->gflops);
    printf("engine MiB: %.1f\n", (double)bn_engine_bytes(eng) / 1048576.0);
    printf("peak RSS MiB: %.0f\n", bp->peak_rss_mib);
    double dev = 0, copy = 0;
    if (bn_engine_device_times(eng, &dev, &copy)) {
        dev -= dev0, copy -= copy0;
        /* The network alone, as the GPU's events timed it; and the copies. */
        printf("device compute s: %.3f (%.1f%% of the time)\n", dev, t > 0 ? 100.0 * dev / t : 0.0);
        printf("device copy s: %.3f (%.1f%% of the time)\n", copy, t > 0 ? 100.0 * copy / t : 0.0);
        printf("images/s on the device (network alone): %.2f\n", dev > 0 ? images / dev : 0.0);
    }
    fflush(stdout);
done:
    if (rc < 0)
        bn_error("bneck --build-info lists the backends; try --device cpu", "the %s engine failed (%s): %s",
                 bn_engine_backend(eng), bn_precision_name(bp->prec), bn_engine_error(eng));
    bn_rgb_free(&img);
    bn_engine_free_input(eng, in);
    free(out);
    bn_engine_free(eng);
    bn_engine_setup_free(&es);
    return rc;
}

/* Rank 0: load the weights and measure every precision of set. A precision
 * the engine refuses is skipped with a note under "all" and is an error when
 * named. Returns BN_EXIT_OK or BN_EXIT_FAIL. */
static int measure_all_engines(const bench_cfg *cfg, bench_set *set) {
    bn_model model;
    char err[1024];
    if (bn_weights_load(cfg->weights, &model, err, sizeof err)) {
        bn_error("bneck mkweights writes a test file", "%s", err);
        return BN_EXIT_FAIL;
    }
    int rc = BN_EXIT_OK, nran = 0;
    for (int k = 0; k < set->n && rc == BN_EXIT_OK; k++) {
        bench_prec *bp = &set->p[k];
        int r = measure_engine(cfg, &model, bp, err, sizeof err);
        if (r == 0) {
            nran++;
        } else if (r > 0 && set->all) {
            bn_info("note: %s skipped: %s", bn_precision_name(bp->prec), err);
        } else {
            if (r > 0)
                bn_error("--precisions all measures only what this machine runs", "cannot create the %s %s engine: %s",
                         bp->eng.backend, bn_precision_name(bp->prec), err);
            rc = BN_EXIT_FAIL;
        }
    }
    if (rc == BN_EXIT_OK && nran == 0) {
        bn_error("bneck --build-info lists the backends and what they offer",
                 "none of the precisions ran on this machine");
        rc = BN_EXIT_FAIL;
    }
    bn_model_free(&model);
    return rc;
}

/* ------------------------------------------------------------ extract */

/* Wait for every rank at a barrier without spinning: the ranks that are not
 * measuring the engine sleep here, so that they do not take cores from rank
 * 0's engine (MPI_Barrier polls a core at full speed in most MPIs). */
static void quiet_barrier(MPI_Comm comm) {
    MPI_Request req;
    mpiCheck(MPI_Ibarrier(comm, &req));
    int done = 0;
    for (;;) {
        mpiCheck(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) break;
        struct timespec ts = {0, 10 * 1000 * 1000}; /* 10 ms */
        nanosleep(&ts, NULL);
    }
}

/* The temporary features file of precision p: next to the JSON file. */
static void extract_path(const bench_cfg *cfg, bn_precision p, char *out, size_t len) {
    snprintf(out, len, "%s.extract-%s.h5", cfg->json, bn_precision_name(p));
}

/* Collective over comm: extract the corpus once per precision that ran,
 * each into a new temporary file that is removed afterwards, and time it.
 * Returns an exit status, the same on every rank. */
static int time_extracts(const bench_cfg *cfg, bench_set *set, MPI_Comm comm) {
    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    mpiCheck(MPI_Comm_size(comm, &size));
    for (int k = 0; k < set->n; k++) {
        bench_prec *bp = &set->p[k];
        if (!bp->ran) continue;
        char path[4096];
        extract_path(cfg, bp->prec, path, sizeof path);
        /* A file left by an interrupted run would be resumed, not timed. */
        int bad = 0;
        if (rank == 0 && unlink(path) != 0 && errno != ENOENT) {
            bn_error("remove it, or give --json another path", "cannot remove the old temporary file %s: %s", path,
                     strerror(errno));
            bad = 1;
        }
        mpiCheck(MPI_Bcast(&bad, 1, MPI_INT, 0, comm));
        if (bad) return BN_EXIT_FAIL;
        bn_extract_cfg ex;
        bn_extract_cfg_init(&ex);
        ex.images = cfg->images;
        ex.manifest = cfg->manifest;
        ex.weights = cfg->weights;
        ex.out = path;
        ex.eng = bp->eng;
        ex.progress = "none";
        ex.quiet = 1;
        bn_extract_result res;
        mpiCheck(MPI_Barrier(comm));
        double t0 = bn_now();
        int rc = bn_extract_run(&ex, comm, &res);
        double wall = bn_now() - t0;
        mpiCheck(MPI_Bcast(&wall, 1, MPI_DOUBLE, 0, comm));
        if (rank == 0 && unlink(path) != 0 && errno != ENOENT)
            bn_warn("cannot remove the temporary file %s: %s", path, strerror(errno));
        if (rc != BN_EXIT_OK) {
            if (rank == 0)
                bn_error(NULL, "the extract of %s in %s did not finish (exit status %d); nothing written",
                         cfg->images ? cfg->images : cfg->manifest, bn_precision_name(bp->prec), rc);
            return rc == BN_EXIT_RESUME ? BN_EXIT_RESUME : BN_EXIT_FAIL;
        }
        bp->extracted = 1;
        bp->ext_images = res.done + res.failed;
        bp->ext_failed = res.failed;
        bp->ext_ranks = size;
        bp->ext_wall_s = wall;
        bp->ext_images_per_s = wall > 0 ? (double)bp->ext_images / wall : 0.0;
        if (rank == 0) {
            printf("extract: precision %s, %lld images (%lld failed) of %s, %d rank%s, %.2f s\n",
                   bn_precision_name(bp->prec), bp->ext_images, bp->ext_failed, cfg->images ? cfg->images : cfg->manifest,
                   size, size == 1 ? "" : "s", wall);
            printf("extract images/s: %.2f\n", bp->ext_images_per_s);
            fflush(stdout);
        }
    }
    return BN_EXIT_OK;
}

/* ------------------------------------------------------------ the JSON file */

/* A JSON number written with a fixed number of significant digits (json-c's
 * own writer gives 17, e.g. 19.300000000000001). */
static json_object *jnum(double v, int digits) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return json_object_new_double_s(v, buf);
}

/* Add key = val to obj; val NULL means json-c could not allocate it. */
static void jput(json_object *obj, const char *key, json_object *val) {
    if (!val || json_object_object_add(obj, key, val) != 0)
        bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
}

/* The "machine" object: this node as rank 0 sees it. */
static json_object *machine_json(const bench_cfg *cfg, const bench_set *set) {
    json_object *m = json_object_new_object();
    if (!m) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
    char host[BN_HOST_LEN], cpu[256];
    bn_host_name(host);
    bn_cpu_model(cpu, sizeof cpu);
    int threads = 0;
    for (int k = 0; k < set->n; k++)
        if (set->p[k].ran && set->p[k].threads > threads) threads = set->p[k].threads;
    jput(m, "name", json_object_new_string(cfg->name ? cfg->name : host));
    jput(m, "host", json_object_new_string(host));
    jput(m, "cpu", json_object_new_string(cpu));
    jput(m, "cores", json_object_new_int(bn_online_cpus()));
    jput(m, "threads", json_object_new_int(threads));
    json_object *gpus = json_object_new_array();
    if (!gpus) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
    char why[256];
    int ngpus = bn_engine_gpu_count(why, sizeof why);
    for (int g = 0; g < ngpus; g++) {
        char name[32];
        snprintf(name, sizeof name, "GPU %d", g);
        if (json_object_array_add(gpus, json_object_new_string(name)) != 0)
            bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
    }
    jput(m, "gpus", gpus);
    jput(m, "memory_gib", jnum(bn_memory_gib(), 4));
    return m;
}

/* Rank 0: write the bneck-benchmark file as OUT.partial, then rename it to
 * OUT, so that a reader never sees half a file. Returns BN_EXIT_OK or
 * BN_EXIT_FAIL (reported). */
static int write_json(const bench_cfg *cfg, const bench_set *set) {
    json_object *root = json_object_new_object();
    if (!root) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
    char date[32];
    bn_utc_now(date);
    jput(root, "format", json_object_new_string(BENCH_FORMAT));
    jput(root, "version", json_object_new_int(BENCH_VERSION));
    jput(root, "created_by", json_object_new_string("bneck " PACKAGE_VERSION));
    jput(root, "date", json_object_new_string(date));
    jput(root, "machine", machine_json(cfg, set));
    if (!isnan(cfg->price)) jput(root, "price_per_node_hour", jnum(cfg->price, 10));
    json_object *engine = json_object_new_array(), *extract = json_object_new_array();
    if (!engine || !extract) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
    for (int k = 0; k < set->n; k++) {
        const bench_prec *bp = &set->p[k];
        if (!bp->ran) continue;
        json_object *e = json_object_new_object();
        if (!e) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
        jput(e, "device", json_object_new_string(bp->device));
        jput(e, "backend", json_object_new_string(bp->backend));
        jput(e, "precision", json_object_new_string(bn_precision_name(bp->prec)));
        jput(e, "batch", json_object_new_int64(bp->eng.batch));
        jput(e, "threads", json_object_new_int(bp->threads));
        jput(e, "streams", json_object_new_int(bp->streams));
        jput(e, "seconds", jnum(bp->seconds, 6));
        jput(e, "images_per_s", jnum(bp->images_per_s, 6));
        jput(e, "gflops", jnum(bp->gflops, 6));
        jput(e, "peak_rss_mib", jnum(bp->peak_rss_mib, 6));
        if (json_object_array_add(engine, e) != 0)
            bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
        if (!bp->extracted) continue;
        json_object *x = json_object_new_object();
        if (!x) bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
        jput(x, "device", json_object_new_string(bp->device));
        jput(x, "precision", json_object_new_string(bn_precision_name(bp->prec)));
        jput(x, "corpus", json_object_new_string(cfg->images ? cfg->images : cfg->manifest));
        jput(x, "images", json_object_new_int64(bp->ext_images));
        jput(x, "failed", json_object_new_int64(bp->ext_failed));
        jput(x, "ranks", json_object_new_int(bp->ext_ranks));
        jput(x, "wall_s", jnum(bp->ext_wall_s, 6));
        jput(x, "images_per_s", jnum(bp->ext_images_per_s, 6));
        if (json_object_array_add(extract, x) != 0)
            bn_fatal_at(__FILE__, __LINE__, NULL, "out of memory building the JSON file");
    }
    jput(root, "engine", engine);
    jput(root, "extract", extract);

    int rc = BN_EXIT_OK;
    size_t plen = strlen(cfg->json) + sizeof ".partial";
    char *partial = mallocCheck(plen);
    snprintf(partial, plen, "%s.partial", cfg->json);
    if (json_object_to_file_ext(partial, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0) {
        bn_error("check that the folder exists and is writable", "cannot write %s: %s", partial,
                 json_util_get_last_err() ? json_util_get_last_err() : "json-c gave no reason");
        unlink(partial);
        rc = BN_EXIT_FAIL;
    } else if (rename(partial, cfg->json) != 0) {
        bn_error("check that the folder is writable", "cannot rename %s to %s: %s", partial, cfg->json, strerror(errno));
        unlink(partial);
        rc = BN_EXIT_FAIL;
    } else {
        printf("benchmark: wrote %s\n", cfg->json);
    }
    free(partial);
    json_object_put(root);
    return rc;
}

/* ------------------------------------------------------------ the command */

int bn_cmd_benchmark(int argc, char **argv) {
    bench_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.eng = (bn_engine_opts)BN_ENGINE_OPTS_INIT;
    cfg.eng.batch = 16; /* the benchmark's own default: the engines' sweet spot */
    cfg.eng.precision = NULL; /* NULL after parsing: --precision was not given (fp32) */
    cfg.seconds = 5.0;
    cfg.price = NAN;
    int verbose = 0;
    const bn_opt opts[] = {
        {"weights", 'w', BN_OPT_STRING, &cfg.weights, "FILE", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required"},
        BN_OPTS_ENGINE(&cfg.eng, "16", "keras"),
        {"seconds", 0, BN_OPT_DOUBLE, &cfg.seconds, "S", "5", 0, 3600, NULL, "measure for about this long, after one warm-up pass"},
        {"precisions", 0, BN_OPT_STRING, &cfg.precisions, "LIST", "--precision", 0, 0, NULL,
         "measure each of a comma list (fp32,bf16,int8,tf32,fp16), or all that this machine runs"},
        {"images", 'i', BN_OPT_STRING, &cfg.images, "DIR", NULL, 0, 0, NULL,
         "also time extract end to end on this corpus, per precision (needs --json)"},
        {"manifest", 'm', BN_OPT_STRING, &cfg.manifest, "FILE", NULL, 0, 0, NULL, "the same with a manifest"},
        {"json", 0, BN_OPT_STRING, &cfg.json, "OUT.json", NULL, 0, 0, NULL,
         "write the measurements as a bneck-benchmark file for bneck cost (docs/cost.md)"},
        {"price-per-node-hour", 0, BN_OPT_DOUBLE, &cfg.price, "P", NULL, 1e-12, 1e12, NULL,
         "what this machine costs per hour, recorded in the file (any currency)"},
        {"name", 0, BN_OPT_STRING, &cfg.name, "NAME", "the host name", 0, 0, NULL, "the machine's name in the file"},
        BN_OPTS_VERBOSITY(&verbose, &cfg.quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "benchmark", "Measure the engine: images/s, GFLOP/s and peak memory on synthetic photo-like input.",
        "[mpirun -n R] bneck benchmark --weights W.h5 [--precisions LIST] [--images DIR --json OUT.json] [options]",
        "Each precision runs on rank 0 alone for --seconds on synthetic input (the other\n"
        "ranks wait). With --images or --manifest, every rank then extracts the corpus\n"
        "once per precision, into a temporary features file next to OUT.json that is\n"
        "removed afterwards, and the wall time is recorded. --precisions all measures\n"
        "every precision this machine runs and notes the ones it skips (int8 needs\n"
        "--calibration). The file's format, and how bneck cost reads it, are in\n"
        "docs/cost.md.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!cfg.weights) return bn_cli_usage(&spec, "--weights FILE is required");
    if (cfg.images && cfg.manifest) return bn_cli_usage(&spec, "give --images DIR or --manifest FILE, not both");
    if ((cfg.images || cfg.manifest) && !cfg.json)
        return bn_cli_usage(&spec, "--%s times extract into a temporary file next to the results: give --json OUT.json",
                            cfg.images ? "images" : "manifest");
    if (cfg.precisions && cfg.eng.precision)
        return bn_cli_usage(&spec, "give --precision P or --precisions LIST, not both");
    if (cfg.name && !cfg.json) return bn_cli_usage(&spec, "--name is recorded in the --json file: give --json OUT.json");
    if (!isnan(cfg.price) && !cfg.json)
        return bn_cli_usage(&spec, "--price-per-node-hour is recorded in the --json file: give --json OUT.json");
    bn_cli_apply_verbosity(verbose, cfg.quiet);
    bench_set set;
    rc = choose_precisions(&spec, &cfg, &set);
    if (rc) return rc;

    if (!cfg.images && !cfg.manifest) {
        /* The engine alone: one process of a launch works, as always. */
        if (bn_launch_rank() != 0) return BN_EXIT_OK;
        rc = measure_all_engines(&cfg, &set);
        if (rc == BN_EXIT_OK && cfg.json) rc = write_json(&cfg, &set);
        return rc;
    }
    /* With a corpus: rank 0 measures while the others sleep at a barrier,
     * tells them what ran, then every rank extracts. */
    bn_mpi_need();
    int rank = 0;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    if (rank == 0) rc = measure_all_engines(&cfg, &set);
    quiet_barrier(MPI_COMM_WORLD);
    int shared[1 + BN_NPREC] = {rc};
    for (int k = 0; k < set.n; k++) shared[1 + k] = set.p[k].ran;
    mpiCheck(MPI_Bcast(shared, 1 + BN_NPREC, MPI_INT, 0, MPI_COMM_WORLD));
    rc = shared[0];
    if (rc != BN_EXIT_OK) return rc;
    for (int k = 0; k < set.n; k++) set.p[k].ran = shared[1 + k];
    rc = time_extracts(&cfg, &set, MPI_COMM_WORLD);
    if (rc == BN_EXIT_OK && rank == 0) rc = write_json(&cfg, &set);
    mpiCheck(MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD));
    return rc;
}
