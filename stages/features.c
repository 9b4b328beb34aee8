/* features.c: "bneck features" - the 2048-wide bottleneck of a few images,
 * printed or saved (.npy or .h5), for checking by hand and for tests. */
#include "io/image.h"
#include "io/npy.h"
#include "io/weights.h"
#include "net/engine.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/engopts.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "pipeline/sysinfo.h"

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IMAGES 100000 /* positional arguments accepted */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Write features and paths to a small HDF5 file. Returns 0 or -1 (reported). */
static int write_h5(const char *path, const float *feat, size_t n, const char *const *names,
                    const char *sha, const char *preprocess, const char *backend, const char *precision) {
    int rc = -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = -1, ds = -1, st = -1, asp = -1, at = -1;
    if (f < 0) {
        bn_error("check that the folder exists and is writable", "%s: cannot create HDF5 file", path);
        return -1;
    }
    hsize_t dims[2] = {n, BN_FEATURES};
    if ((sp = H5Screate_simple(2, dims, NULL)) < 0) goto done;
    if ((ds = H5Dcreate2(f, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (n && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, feat) < 0) goto done;
    H5Dclose(ds);
    ds = -1;
    H5Sclose(sp);
    sp = -1;
    if ((st = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 || H5Tset_cset(st, H5T_CSET_UTF8) < 0) goto done;
    hsize_t pn = n;
    if ((sp = H5Screate_simple(1, &pn, NULL)) < 0) goto done;
    if ((ds = H5Dcreate2(f, "paths", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (n && H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) < 0) goto done;
    const char *keys[5] = {"format", "weights_sha256", "preprocess", "backend", "precision"};
    const char *vals[5] = {"bneck-features", sha, preprocess, backend, precision};
    if ((asp = H5Screate(H5S_SCALAR)) < 0) goto done;
    for (int i = 0; i < 5; i++) {
        if ((at = H5Acreate2(f, keys[i], st, asp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
        if (H5Awrite(at, st, &vals[i]) < 0) goto done;
        H5Aclose(at);
        at = -1;
    }
    int version = 1;
    if ((at = H5Acreate2(f, "version", H5T_STD_I32LE, asp, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(at, H5T_NATIVE_INT, &version) < 0) goto done;
    rc = 0;
done:
    if (at >= 0) H5Aclose(at);
    if (asp >= 0) H5Sclose(asp);
    if (ds >= 0) H5Dclose(ds);
    if (sp >= 0) H5Sclose(sp);
    if (st >= 0) H5Tclose(st);
    if (H5Fclose(f) < 0) rc = -1;
    if (rc) bn_error("check free space and permissions", "%s: writing the HDF5 file failed", path);
    return rc;
}

int bn_cmd_features(int argc, char **argv) {
    const char *weights = NULL, *out = NULL, *dump = NULL;
    bn_engine_opts eo = BN_ENGINE_OPTS_INIT;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"weights", 'w', BN_OPT_STRING, &weights, "FILE", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required"},
        BN_OPTS_ENGINE(&eo, "8", "keras"),
        {"out", 'o', BN_OPT_STRING, &out, "FILE", "print to stdout", 0, 0, NULL, "save as .npy (N, 2048) or .h5 (features, paths)"},
        {"dump-input", 0, BN_OPT_STRING, &dump, "FILE.npy", NULL, 0, 0, NULL, "also save the preprocessed input (N, 299, 299, 3)"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "features", "Compute the 2048-wide Inception v3 bottleneck (pool_3) of the given images.",
        "bneck features --weights W.h5 [options] IMAGE...",
        "Without --out, prints one line per image: the path, a tab, and 2048 values.\n"
        "A file that cannot be decoded is reported and gets a row of NaN; the exit\n"
        "status is then 1.",
        opts};
    static const char *pos[MAX_IMAGES];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, MAX_IMAGES, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!weights) return bn_cli_usage(&spec, "--weights FILE is required");
    if (npos < 1) return bn_cli_usage(&spec, "give at least one IMAGE");
    if (out && !ends_with(out, ".npy") && !ends_with(out, ".h5") && !ends_with(out, ".hdf5"))
        return bn_cli_usage(&spec, "--out must end in .npy or .h5, got '%s'", out);
    if (dump && !ends_with(dump, ".npy")) return bn_cli_usage(&spec, "--dump-input must end in .npy");
    bn_cli_apply_verbosity(verbose, quiet);
    bn_engine_setup es;
    char err[1024];
    if (bn_engine_opts_check(&eo, &es, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    const bn_norm norm = es.norm;
    const char *preprocess = eo.preprocess;
    int rank = 0;
    rank = bn_launch_rank();
    if (rank != 0) return 0; /* a by-hand tool: one process does the work */
    const int nthreads = es.threads;

    bn_model model;
    double t0 = bn_now();
    if (bn_weights_load(weights, &model, err, sizeof err)) {
        bn_error("bneck mkweights writes a test file; docs/weights.md says how to get the real one", "%s", err);
        return BN_EXIT_FAIL;
    }
    bn_verbose("weights %s: sha256 %s, loaded in %.2f s", weights, model.sha256, bn_now() - t0);
    int nb = (int)(eo.batch < npos ? eo.batch : npos);
    bn_engine *eng = bn_engine_open(&es, &model, nb, err, sizeof err);
    if (!eng) {
        bn_error(NULL, "cannot create the %s %s engine: %s", es.backend, bn_precision_name(es.precision), err);
        bn_engine_setup_free(&es);
        bn_model_free(&model);
        return BN_EXIT_FAIL;
    }
    bn_verbose("engine %s %s, batch %d, %d threads, %.1f MiB of activations and scratch", bn_engine_backend(eng),
               bn_precision_name(bn_engine_precision(eng)), nb,
               nthreads, (double)bn_engine_bytes(eng) / 1048576.0);

    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *feat = mallocCheck((size_t)npos * BN_FEATURES * sizeof(float));
    float *input = mallocCheck((size_t)nb * img_floats * sizeof(float));
    float *fbuf = mallocCheck((size_t)nb * BN_FEATURES * sizeof(float));
    float *dumpbuf = dump ? mallocCheck((size_t)npos * img_floats * sizeof(float)) : NULL;
    int *slot = mallocCheck(sizeof(int) * (size_t)nb);
    bn_decode_opts dopts = es.dopts;
    bn_decoder *dec = bn_decoder_new(&dopts);
    bn_rgb img = {0};
    int failed = 0;
    double t_net = 0;
    for (int i0 = 0; i0 < npos; i0 += nb) {
        int cnt = 0;
        for (int i = i0; i < npos && i < i0 + nb; i++) {
            bn_img_result res;
            if (bn_decode_file(dec, pos[i], &img, &res) != BN_IMG_OK) {
                bn_error(NULL, "%s: %s: %s", pos[i], bn_img_status_name(res.status), res.reason);
                for (int j = 0; j < BN_FEATURES; j++) feat[(size_t)i * BN_FEATURES + j] = NAN;
                if (dumpbuf)
                    for (size_t j = 0; j < img_floats; j++) dumpbuf[(size_t)i * img_floats + j] = NAN;
                failed++;
                continue;
            }
            if (res.warned) bn_warn("%s: %s", pos[i], res.reason);
            bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, norm, input + (size_t)cnt * img_floats);
            if (dumpbuf) memcpy(dumpbuf + (size_t)i * img_floats, input + (size_t)cnt * img_floats, img_floats * sizeof(float));
            slot[cnt++] = i;
        }
        double t1 = bn_now();
        if (bn_engine_forward(eng, input, cnt, fbuf))
            bn_fatal_at(__FILE__, __LINE__, "--device cpu runs on the CPU", "the %s engine failed: %s", bn_engine_backend(eng),
                        bn_engine_error(eng));
        t_net += bn_now() - t1;
        for (int k = 0; k < cnt; k++)
            memcpy(feat + (size_t)slot[k] * BN_FEATURES, fbuf + (size_t)k * BN_FEATURES, BN_FEATURES * sizeof(float));
    }
    int ok = npos - failed;
    bn_verbose("%d images in %.3f s in the engine (%.2f images/s); peak RSS %.0f MiB", ok, t_net,
               t_net > 0 ? ok / t_net : 0.0, bn_peak_rss_mib());
    int status = failed ? BN_EXIT_FAIL : BN_EXIT_OK;
    size_t shape[4] = {(size_t)npos, BN_FEATURES, 0, 0};
    if (out && ends_with(out, ".npy")) {
        if (bn_npy_write(out, feat, 2, shape, err, sizeof err)) {
            bn_error("check that the folder exists and is writable", "%s", err);
            status = BN_EXIT_FAIL;
        }
    } else if (out) {
        if (write_h5(out, feat, (size_t)npos, pos, model.sha256, preprocess, bn_engine_backend(eng),
                     bn_precision_name(bn_engine_precision(eng))))
            status = BN_EXIT_FAIL;
    } else {
        for (int i = 0; i < npos; i++) {
            printf("%s\t", pos[i]);
            for (int j = 0; j < BN_FEATURES; j++) printf(j ? " %.9g" : "%.9g", feat[(size_t)i * BN_FEATURES + j]);
            printf("\n");
        }
    }
    if (dump) {
        size_t dshape[4] = {(size_t)npos, BN_INPUT_SIZE, BN_INPUT_SIZE, 3};
        if (bn_npy_write(dump, dumpbuf, 4, dshape, err, sizeof err)) {
            bn_error("check that the folder exists and is writable", "%s", err);
            status = BN_EXIT_FAIL;
        }
    }
    bn_rgb_free(&img);
    bn_decoder_free(dec);
    free(slot);
    free(dumpbuf);
    free(fbuf);
    free(input);
    free(feat);
    bn_engine_free(eng);
    bn_engine_setup_free(&es);
    bn_model_free(&model);
    return status;
}
