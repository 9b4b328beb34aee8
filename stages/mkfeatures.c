/* mkfeatures.c: "bneck mkfeatures" - write a synthetic features file
 * (docs/format.md) without images or a network, for training tests and
 * benchmarks at sizes no image corpus here could reach (a million rows).
 *
 * Each class k has a mean vector m_k: non-negative, with a few strong
 * "active" features, as Inception's averaged ReLU outputs look. A row of
 * class k is max(0, m_k + noise), so classes overlap by an amount set by
 * --noise. Rows are written across MPI ranks into one file with the same code
 * as bneck extract (io/store.h). Everything depends only on the seed and the
 * row number, never on the rank count.
 */
#include "config.h"

#include "io/corpus.h"
#include "io/split.h"
#include "io/store.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "pipeline/rng.h"
#include "pipeline/settings.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM 2048       /* features per row */
#define WRITE_ROWS 512 /* rows per write */

int bn_cmd_mkfeatures(int argc, char **argv) {
    long long rows = 1000, classes = 5, seed = 1, pfail = 0, ppend = 0;
    double noise = 1.0, vp = 10, tp = 10;
    int verbose = 0, quiet = 0, force = 0;
    const bn_opt opts[] = {
        {"force", 0, BN_OPT_FLAG, &force, NULL, NULL, 0, 0, NULL, "replace OUT if it exists"},
        {"rows", 'n', BN_OPT_INT, &rows, "N", "1000", 1, 1e10, NULL, "rows (images)"},
        {"classes", 'c', BN_OPT_INT, &classes, "N", "5", 1, 100000, NULL, "classes"},
        {"noise", 0, BN_OPT_DOUBLE, &noise, "X", "1.0", 0, 1e6, NULL, "per-feature noise around the class mean (larger: classes overlap more)"},
        {"failed-per-mille", 0, BN_OPT_INT, &pfail, "N", "0", 0, 1000, NULL, "rows recorded as failed images, per thousand"},
        {"pending-per-mille", 0, BN_OPT_INT, &ppend, "N", "0", 0, 1000, NULL, "rows left pending (as if the extraction was cut short), per thousand"},
        {"seed", 0, BN_OPT_INT, &seed, "S", "1", 0, 9.2e18, NULL, "seed; the same options give the same rows"},
        {"validation-percentage", 0, BN_OPT_DOUBLE, &vp, "PCT", "10", 0, 100, NULL, "share of rows for validation"},
        {"testing-percentage", 0, BN_OPT_DOUBLE, &tp, "PCT", "10", 0, 100, NULL, "share of rows for testing"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "mkfeatures", "Write a synthetic features file (for training tests and benchmarks).",
        "mpirun -n R bneck mkfeatures OUT.h5 [options]",
        "Rows of class k scatter around a class mean; names are synthetic\n"
        "(class_K/img_NNNNNNNNN.jpg) and split as retrain.py would split them. The\n"
        "weights_sha256 attribute is the SHA-256-sized text 'synthetic-S' padded with\n"
        "zeros, so such a file is never mistaken for real features.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (npos != 1) return bn_cli_usage(&spec, "give the output file name");
    if (vp + tp > 100) return bn_cli_usage(&spec, "--validation-percentage plus --testing-percentage is over 100");
    bn_cli_apply_verbosity(verbose, quiet);
    const char *out = pos[0];
    int rank = 0, size = 1;
    bn_mpi_need();
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size));
    double t0 = bn_now();

    /* The corpus listing: rows in class order, as extract lists a corpus. */
    bn_corpus c;
    memset(&c, 0, sizeof c);
    c.nlabels = (int)classes;
    c.labels = callocCheck((size_t)classes, sizeof(char *));
    c.sources = callocCheck((size_t)classes, sizeof(char *));
    for (long long k = 0; k < classes; k++) {
        char name[32];
        snprintf(name, sizeof name, "class_%02lld", k);
        c.labels[k] = strdupCheck(name);
        c.sources[k] = strdupCheck(name);
    }
    c.n = (size_t)rows;
    c.items = callocCheck((size_t)rows, sizeof(bn_item));
    for (long long i = 0; i < rows; i++) {
        long long k = i * classes / rows;
        char path[64];
        snprintf(path, sizeof path, "class_%02lld/img_%09lld.jpg", k, i);
        c.items[i].path = strdupCheck(path);
        c.items[i].key = strdupCheck(path);
        c.items[i].label = (int)k;
        c.items[i].split = bn_split_assign(path, vp, tp);
    }
    bn_store_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.weights_sha256, sizeof id.weights_sha256, "synthetic-%lld", seed);
    memset(id.weights_sha256 + strlen(id.weights_sha256), '0', 64 - strlen(id.weights_sha256));
    snprintf(id.preprocess, sizeof id.preprocess, "keras");
    snprintf(id.dct, sizeof id.dct, "accurate");
    char err[1024];
    int exists = 0;
    if (rank == 0) {
        exists = access(out, F_OK) == 0;
        if (exists && force) exists = remove(out) != 0;
        if (exists) bn_error("give another name, or --force to replace it", "%s: exists%s", out, force ? " and cannot be removed" : "");
    }
    mpiCheck(MPI_Bcast(&exists, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (exists) {
        bn_corpus_free(&c);
        return BN_EXIT_FAIL;
    }
    int resumed = 0;
    bn_settings *set = bn_settings_new();
    bn_settings_bool(set, "synthetic", 1);
    bn_settings_int(set, "rows", rows);
    bn_settings_int(set, "classes", classes);
    bn_settings_double(set, "noise", noise);
    bn_settings_int(set, "seed", seed);
    char *settings = bn_settings_finish(set);
    bn_store *st = bn_store_open(out, MPI_COMM_WORLD, &c, &id, settings, &resumed, err, sizeof err);
    free(settings);
    if (!st) {
        if (rank == 0) bn_error("check that the folder exists and is writable", "%s", err);
        bn_corpus_free(&c);
        return BN_EXIT_FAIL;
    }
    /* Class means: 10% of features active (2..6), the rest small (0..0.3). */
    float *mean = mallocCheck(sizeof(float) * (size_t)classes * DIM);
    bn_rng r;
    bn_rng_seed(&r, (uint64_t)seed);
    for (long long k = 0; k < classes; k++)
        for (int i = 0; i < DIM; i++) {
            double u = bn_rng_uniform(&r);
            mean[(size_t)k * DIM + i] = (float)(u < 0.1 ? 2 + 4 * bn_rng_uniform(&r) : 0.3 * bn_rng_uniform(&r));
        }
    long long lo = rows * rank / size, hi = rows * (rank + 1) / size;
    float *feat = mallocCheck(sizeof(float) * WRITE_ROWS * DIM);
    long long idx[WRITE_ROWS];
    unsigned char stat[WRITE_ROWS], code[WRITE_ROWS];
    const char *reason[WRITE_ROWS];
    int ok = 1;
    for (long long a = lo; a < hi && ok; a += WRITE_ROWS) {
        int cnt = (int)(hi - a < WRITE_ROWS ? hi - a : WRITE_ROWS), w = 0;
        for (int j = 0; j < cnt; j++) {
            long long i = a + j;
            bn_rng_seed(&r, (uint64_t)seed * 0x9e3779b97f4a7c15ULL + (uint64_t)i + 1); /* per row: rank-independent */
            const float *m = mean + (size_t)c.items[i].label * DIM;
            float *x = feat + (size_t)j * DIM;
            for (int d = 0; d < DIM; d += 2) {
                /* Two normals from one Box-Muller pair. */
                double u1 = bn_rng_uniform(&r), u2 = bn_rng_uniform(&r);
                double rad = sqrt(-2.0 * log(1.0 - u1)), th = 6.283185307179586 * u2;
                double v0 = m[d] + noise * rad * cos(th), v1 = m[d + 1] + noise * rad * sin(th);
                x[d] = (float)(v0 > 0 ? v0 : 0);
                x[d + 1] = (float)(v1 > 0 ? v1 : 0);
            }
            long long u = (long long)bn_rng_below(&r, 1000);
            if (u < ppend) continue; /* never written: stays pending */
            int failed = u < ppend + pfail;
            idx[w] = i;
            if (w != j) memcpy(feat + (size_t)w * DIM, x, sizeof(float) * DIM);
            stat[w] = failed ? BN_ROW_FAILED : BN_ROW_DONE;
            code[w] = failed ? 5 : 0; /* 5: corrupt */
            reason[w] = failed ? "synthetic failure" : "";
            w++;
        }
        if (w > 0 && bn_store_write(st, idx, w, feat, stat, code, reason, err, sizeof err)) {
            bn_error("check free space and quota", "%s", err);
            ok = 0;
        }
    }
    int all_ok = 0;
    mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    bn_rank_timing me;
    memset(&me, 0, sizeof me);
    me.rank = rank;
    me.wall_s = bn_now() - t0;
    rc = BN_EXIT_OK;
    if (!all_ok) {
        bn_store_abort(st);
        rc = BN_EXIT_FAIL;
    } else if (bn_store_close(st, &me, NULL, NULL, ppend == 0, err, sizeof err)) {
        if (rank == 0) bn_error(NULL, "%s", err);
        rc = BN_EXIT_FAIL;
    }
    if (rc == BN_EXIT_OK && rank == 0 && !quiet)
        printf("%s: %lld synthetic rows, %lld classes, %.1f s\n", out, rows, classes, bn_now() - t0);
    free(feat);
    free(mean);
    bn_corpus_free(&c);
    return rc;
}
