/* join.c: "bneck join" - merge the shard files of a job array (each made by
 * "bneck extract --shard K/N") into one features file, the same file one
 * extract of the whole corpus would have written: the same rows in the same
 * order, the same corpus hash, ready for train and resumable by extract.
 *
 * Steps: open and check the shards (one set of K/N, one corpus, one
 * identity: weights, preprocessing, precision and calibration); list the whole corpus from them; create (or resume) the output
 * through the same store code as extract; copy every shard's results in
 * blocks of rows shared across the ranks; close with a timing row per rank.
 */
#include "config.h"

#include "io/corpus.h"
#include "io/featread.h"
#include "io/store.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/settings.h"
#include "pipeline/sysinfo.h"
#include "pipeline/mpi.h"

#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_ROWS 256 /* rows per read and write */

/* The shards, sorted by index. */
typedef struct {
    int n;          /* shard files */
    bn_feats *f;    /* (n) open files, f[k] is shard k */
} shards_t;

/* Collective. Open every file, check it is a shard of one set, and sort them
 * by index. Returns 0, or -1 with a reason in err (the same on every rank). */
static int open_shards(const char *const *paths, int n, MPI_Comm comm, shards_t *S, char *err, size_t errlen) {
    S->n = n;
    S->f = callocCheck((size_t)n, sizeof *S->f);
    bn_feats *tmp = callocCheck((size_t)n, sizeof *tmp);
    int opened = 0, rc = -1;
    for (; opened < n; opened++)
        if (bn_feats_open(paths[opened], comm, &tmp[opened], err, errlen)) goto done;
    /* Every rank holds the same metadata, so these checks agree by themselves. */
    for (int k = 0; k < n; k++) {
        const bn_feats *a = &tmp[k], *z = &tmp[0];
        if (!a->is_shard) {
            snprintf(err, errlen, "%s: not a shard file (no shard attributes): bneck join takes the files of "
                     "'bneck extract --shard K/N'", a->path);
            goto done;
        }
        if (a->shard.count != n) {
            snprintf(err, errlen, "%s is shard %d of %d, but %d file%s given: give all %d shard files", a->path,
                     a->shard.index, a->shard.count, n, n == 1 ? " was" : "s were", a->shard.count);
            goto done;
        }
        if (strcmp(a->shard.corpus_sha256, z->shard.corpus_sha256) || a->shard.corpus_n != z->shard.corpus_n) {
            snprintf(err, errlen, "%s and %s are shards of different corpora (shard_corpus_sha256 %s, %s): join "
                     "the shards of one job array", z->path, a->path, z->shard.corpus_sha256, a->shard.corpus_sha256);
            goto done;
        }
        if (strcmp(a->weights_sha256, z->weights_sha256) || strcmp(a->preprocess, z->preprocess) || strcmp(a->dct, z->dct)) {
            snprintf(err, errlen, "%s and %s were made with other weights or preprocessing (weights %.12s... %s %s, "
                     "weights %.12s... %s %s): their features cannot be mixed", z->path, a->path, z->weights_sha256,
                     z->preprocess, z->dct, a->weights_sha256, a->preprocess, a->dct);
            goto done;
        }
        if (strcmp(a->feature_dtype, z->feature_dtype)) {
            snprintf(err, errlen, "%s holds %s features but %s holds %s: rerun the odd shard with the same "
                     "--feature-dtype as the others, into a new --out", z->path, z->feature_dtype, a->path, a->feature_dtype);
            goto done;
        }
        if (strcmp(a->precision, z->precision) || strcmp(a->calibration_sha256, z->calibration_sha256)) {
            snprintf(err, errlen, "%s holds %s features%s%.64s, but %s holds %s features%s%.64s: features of two "
                     "precisions or calibrations cannot be mixed; rerun the odd shard with the same --precision and "
                     "--calibration as the others, into a new --out", z->path, z->precision,
                     z->calibration_sha256[0] ? " of calibration sha256 " : "", z->calibration_sha256, a->path,
                     a->precision, a->calibration_sha256[0] ? " of calibration sha256 " : "", a->calibration_sha256);
            goto done;
        }
        int same = a->nclasses == z->nclasses;
        for (int c = 0; same && c < a->nclasses; c++) same = !strcmp(a->label_names[c], z->label_names[c]);
        if (!same) {
            snprintf(err, errlen, "%s and %s have different class lists: they are not shards of one corpus", z->path, a->path);
            goto done;
        }
        for (int j = 0; j < k; j++)
            if (tmp[j].shard.index == a->shard.index) {
                snprintf(err, errlen, "%s and %s are both shard %d/%d: give each shard once", tmp[j].path, a->path,
                         a->shard.index, n);
                goto done;
            }
    }
    /* All distinct, all of one set: move them into shard order. */
    for (int k = 0; k < n; k++) {
        S->f[tmp[k].shard.index] = tmp[k];
        memset(&tmp[k], 0, sizeof tmp[k]);
    }
    long long at = 0;
    for (int k = 0; k < n; k++) {
        if (S->f[k].shard.first != at) {
            snprintf(err, errlen, "%s: shard %d starts at image %lld, but the shards before it end at %lld: the file "
                     "is damaged", S->f[k].path, k, S->f[k].shard.first, at);
            goto done;
        }
        at += S->f[k].n;
    }
    if (at != S->f[0].shard.corpus_n) {
        snprintf(err, errlen, "the shards hold %lld images, but their corpus has %lld: the files are damaged", at,
                 S->f[0].shard.corpus_n);
        goto done;
    }
    rc = 0;
done:
    for (int k = 0; k < opened; k++)
        if (tmp[k].file) bn_feats_close(&tmp[k]);
    free(tmp);
    return rc;
}

/* Collective. Close the shards (those moved into S and those not). */
static void close_shards(shards_t *S) {
    for (int k = 0; k < S->n; k++)
        if (S->f[k].file) bn_feats_close(&S->f[k]);
    free(S->f);
    S->f = NULL;
}

/* The whole corpus as the shards list it: paths, labels and splits in
 * order. The keys are not stored in the files; the output takes the corpus
 * hash from the shards instead. Returns 0, or -1 with err set (this rank). */
static int whole_corpus(shards_t *S, bn_corpus *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    const bn_feats *z = &S->f[0];
    c->nlabels = z->nclasses;
    c->labels = callocCheck((size_t)c->nlabels, sizeof *c->labels);
    c->sources = callocCheck((size_t)c->nlabels, sizeof *c->sources);
    for (int k = 0; k < c->nlabels; k++) {
        c->labels[k] = strdupCheck(z->label_names[k]);
        c->sources[k] = strdupCheck(z->label_names[k]);
    }
    c->items = callocCheck((size_t)z->shard.corpus_n + 1, sizeof *c->items);
    for (int k = 0; k < S->n; k++) {
        bn_feats *f = &S->f[k];
        if (bn_feats_load_paths(f, err, errlen)) return -1;
        for (long long i = 0; i < f->n; i++) {
            bn_item *it = &c->items[c->n++];
            it->path = bn_feats_path(f, i);
            it->key = strdupCheck(it->path);
            it->label = f->label[i];
            it->split = f->split[i];
        }
        free(f->path_bytes);
        free(f->path_offsets);
        f->path_bytes = NULL;
        f->path_offsets = NULL;
    }
    return 0;
}

/* Copy this rank's block of shard f's results into st. Pending rows stay
 * pending. Returns 0, or -1 with err set (this rank). */
static int copy_block(bn_feats *f, bn_store *st, int rank, int size, long long *done, long long *failed, char *err,
                      size_t errlen) {
    long long lo = f->n * rank / size, hi = f->n * (rank + 1) / size;
    long long *rows = mallocCheck(sizeof(long long) * COPY_ROWS), *gidx = mallocCheck(sizeof(long long) * COPY_ROWS);
    float *feat = mallocCheck(sizeof(float) * COPY_ROWS * 2048), *out = mallocCheck(sizeof(float) * COPY_ROWS * 2048);
    unsigned char *code = mallocCheck(COPY_ROWS), *wcode = mallocCheck(COPY_ROWS), *wstat = mallocCheck(COPY_ROWS);
    char *reason = mallocCheck((size_t)COPY_ROWS * BN_REASON_LEN);
    const char **wreason = mallocCheck(sizeof(char *) * COPY_ROWS);
    int rc = -1;
    for (long long a = lo; a < hi; a += COPY_ROWS) {
        long long cnt = hi - a < COPY_ROWS ? hi - a : COPY_ROWS, nd = 0;
        if (bn_feats_read_errors(f, a, cnt, code, reason, err, errlen)) goto done;
        for (long long i = 0; i < cnt; i++)
            if (f->status[a + i] == BN_ROW_DONE) rows[nd++] = a + i;
        if (nd && bn_feats_read(f, rows, nd, feat, err, errlen)) goto done;
        int w = 0;
        long long fi = 0;
        for (long long i = 0; i < cnt; i++) {
            unsigned char s = f->status[a + i];
            if (s != BN_ROW_DONE && s != BN_ROW_FAILED) continue;
            gidx[w] = f->shard.first + a + i;
            wstat[w] = s;
            wcode[w] = code[i];
            wreason[w] = reason + (size_t)i * BN_REASON_LEN;
            if (s == BN_ROW_DONE) {
                memcpy(out + (size_t)w * 2048, feat + (size_t)fi * 2048, 2048 * sizeof(float));
                fi++;
                (*done)++;
            } else {
                (*failed)++;
            }
            w++;
        }
        if (w && bn_store_write(st, gidx, w, out, wstat, wcode, wreason, err, errlen)) goto done;
    }
    rc = 0;
done:
    free(wreason);
    free(reason);
    free(wstat);
    free(wcode);
    free(code);
    free(out);
    free(feat);
    free(gidx);
    free(rows);
    return rc;
}

/* Agree over comm whether every rank succeeded; on failure rank 0 reports
 * the lowest failing rank's reason. Returns 1 when all succeeded. */
static int agree(MPI_Comm comm, int ok, char *err, size_t errlen) {
    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    mpiCheck(MPI_Comm_size(comm, &size));
    int who = ok ? size : rank, first = size;
    mpiCheck(MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, comm));
    if (first == size) return 1;
    char buf[1024] = "";
    if (rank == first) snprintf(buf, sizeof buf, "%s", err);
    mpiCheck(MPI_Bcast(buf, sizeof buf, MPI_CHAR, first, comm));
    snprintf(err, errlen, "%s", buf);
    return 0;
}

int bn_join_run(const char *out, const char *const *paths, int n, MPI_Comm comm, int quiet) {
    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    mpiCheck(MPI_Comm_size(comm, &size));
    char err[1024] = "";
    shards_t S = {0, NULL};
    bn_corpus c;
    memset(&c, 0, sizeof c);
    bn_store *st = NULL;
    int rc = BN_EXIT_FAIL;
    double t0 = bn_now();
    char started[32];
    bn_utc_now(started);
    for (int k = 0; k < n; k++)
        if (!strcmp(paths[k], out)) {
            if (rank == 0) bn_error("write the joined file next to the shards", "--out %s is also a shard file", out);
            return BN_CLI_USAGE;
        }
    /* 1. The shards. */
    if (open_shards(paths, n, comm, &S, err, sizeof err)) {
        if (rank == 0) bn_error("bneck join takes every shard file of one 'bneck extract --shard K/N' job array", "%s", err);
        goto done;
    }
    /* 2. The whole corpus, 3. the output. */
    int ok = whole_corpus(&S, &c, err, sizeof err) == 0;
    if (!agree(comm, ok, err, sizeof err)) {
        if (rank == 0) bn_error(NULL, "%s", err);
        goto done;
    }
    bn_store_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.weights_sha256, sizeof id.weights_sha256, "%s", S.f[0].weights_sha256);
    snprintf(id.preprocess, sizeof id.preprocess, "%s", S.f[0].preprocess);
    snprintf(id.dct, sizeof id.dct, "%s", S.f[0].dct);
    snprintf(id.precision, sizeof id.precision, "%s", S.f[0].precision);
    snprintf(id.feature_dtype, sizeof id.feature_dtype, "%s", S.f[0].feature_dtype);
    snprintf(id.calibration_sha256, sizeof id.calibration_sha256, "%s", S.f[0].calibration_sha256);
    snprintf(id.corpus_sha256, sizeof id.corpus_sha256, "%s", S.f[0].shard.corpus_sha256);
    bn_settings *set = bn_settings_new();
    bn_settings_int(set, "joined_shards", n);
    bn_settings_int(set, "ranks", size);
    char *settings = bn_settings_finish(set);
    int resumed = 0;
    st = bn_store_open(out, comm, &c, &id, settings, &resumed, err, sizeof err);
    free(settings);
    if (!st) {
        if (rank == 0) bn_error("use another --out, or remove the file to join again", "%s", err);
        goto done;
    }
    /* 4. The rows, shard by shard, each rank a block. */
    long long done = 0, failed = 0;
    double tw = bn_now();
    for (int k = 0; k < n; k++) {
        ok = copy_block(&S.f[k], st, rank, size, &done, &failed, err, sizeof err) == 0;
        if (!agree(comm, ok, err, sizeof err)) {
            if (rank == 0) bn_error("check free space on the output file system", "%s", err);
            goto done;
        }
    }
    /* 5. Close with this run's timing. */
    long long mine[2] = {done, failed}, tot[2] = {0, 0};
    mpiCheck(MPI_Allreduce(mine, tot, 2, MPI_LONG_LONG, MPI_SUM, comm));
    bn_rank_timing me;
    memset(&me, 0, sizeof me);
    me.rank = rank;
    me.device = -1; /* no network */
    me.done = done;
    me.failed = failed;
    me.write_s = bn_now() - tw;
    me.wall_s = bn_now() - t0;
    me.images_per_s = me.wall_s > 0 ? (double)(done + failed) / me.wall_s : 0;
    long long pending = (long long)c.n - tot[0] - tot[1];
    if (resumed) {
        /* Rows done in an earlier join stay: count what the file now holds. */
        const unsigned char *s = bn_store_status(st);
        long long have = 0;
        for (size_t i = 0; i < c.n; i++) have += s[i] != BN_ROW_PENDING;
        mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &have, 1, MPI_LONG_LONG, MPI_MAX, comm));
        pending = (long long)c.n - have;
        if (pending < 0) pending = 0;
    }
    int complete = pending == 0;
    me.cores = bn_default_threads();
    bn_host_name(me.host);
    snprintf(me.device_name, sizeof me.device_name, "none (join copies rows)");
    bn_run_summary run;
    bn_run_gather(&run, comm, "join", t0, started, me.wall_s, me.cores, -1, tot[0] + tot[1], S.f[0].precision, NAN);
    rc = bn_store_close(st, &me, &run, NULL, complete, err, sizeof err) ? BN_EXIT_FAIL : BN_EXIT_OK;
    st = NULL;
    if (rank == 0) {
        if (rc) bn_error(NULL, "%s", err);
        else if (!quiet)
            printf("joined %d shard%s into %s: %zu images, %lld done, %lld failed, %lld pending%s\n", n, n == 1 ? "" : "s",
                   out, c.n, tot[0], tot[1], pending, complete ? "" : " (rerun the unfinished shards, then join again)");
    }
done:
    if (st) bn_store_abort(st);
    if (S.f) close_shards(&S);
    bn_corpus_free(&c);
    mpiCheck(MPI_Bcast(&rc, 1, MPI_INT, 0, comm));
    return rc;
}

#define MAX_SHARDS 100000

int bn_cmd_join(int argc, char **argv) {
    const char *out = NULL;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"out", 'o', BN_OPT_STRING, &out, "FILE", NULL, 0, 0, NULL, "the joined features file; required"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "join", "Merge the shard files of a job array into one features file.",
        "[mpirun -n R] bneck join --out features.h5 SHARD.h5...",
        "Each shard file comes from 'bneck extract --shard K/N'. The joined file holds\n"
        "the rows of the whole corpus in corpus order, exactly as one extract of the\n"
        "whole corpus would have written them, and is ready for bneck train. Rows a\n"
        "shard left pending stay pending: finish that shard and join again (an existing\n"
        "--out is updated).",
        opts};
    const char **pos = mallocCheck(sizeof(char *) * MAX_SHARDS);
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, MAX_SHARDS, &npos);
    if (rc) {
        free(pos);
        return rc < 0 ? 0 : rc;
    }
    if (!out) rc = bn_cli_usage(&spec, "--out FILE is required");
    else if (npos < 1) rc = bn_cli_usage(&spec, "give the shard files to join");
    if (rc) {
        free(pos);
        return rc;
    }
    bn_cli_apply_verbosity(verbose, quiet);
    bn_mpi_need();
    rc = bn_join_run(out, pos, npos, MPI_COMM_WORLD, quiet);
    free(pos);
    return rc;
}
