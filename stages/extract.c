/* extract.c: "bneck extract" - the main job. MPI ranks share a corpus
 * dynamically, decode images in a thread beside the forward pass, and fill
 * one shared HDF5 feature file (io/store.h). Rerunning the same command on an
 * unfinished file resumes it; SIGTERM/SIGUSR1 stop every rank cleanly.
 *
 * Work units are chunks of --batch consecutive entries of the to-do list
 * (the images not yet done, in corpus order), handed out by an MPI one-sided
 * counter on rank 0 (MPI_Fetch_and_op). A chunk always forms the same batch
 * whatever the number of ranks, so the features do not depend on it.
 */
#include "io/corpus.h"
#include "io/image.h"
#include "io/store.h"
#include "io/weights.h"
#include "net/engine.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/sysinfo.h"
#include "pipeline/progress.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BN_EXIT_INCOMPLETE 75 /* stopped by a signal: rerun the same command to resume */

/* Slots of the shared counter window on rank 0. */
enum { W_NEXT = 0, W_STOP = 1, W_DONE = 2, W_FAILED = 3, W_SLOTS = 4 };

static volatile sig_atomic_t g_stop = 0; /* set by SIGTERM / SIGUSR1 */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* One batch on its way through the pipeline. */
typedef struct {
    long long start;          /* first to-do entry of the chunk; -1: no more work */
    int count;                /* to-do entries in the chunk */
    int ok;                   /* images decoded into input[0..ok) */
    long long *idx;           /* (batch,) corpus index of each entry */
    int *slot;                /* (batch,) input slot of each entry, -1 if it failed */
    unsigned char *code;      /* (batch,) bn_img_status of each entry */
    char (*reason)[BN_REASON_LEN]; /* (batch,) failure reason */
    float *input;             /* (batch, 299, 299, 3) preprocessed images */
} job_t;

/* The decode thread and its hand-over with the main thread. */
typedef struct {
    pthread_t thread;         /* the decoder */
    pthread_mutex_t mu;       /* guards the fields below */
    pthread_cond_t cv;        /* signalled on every change */
    job_t *todo;              /* job given to the decoder, or NULL */
    job_t *ready;             /* job decoded, or NULL */
    int quit;                 /* main asks the decoder to exit */
    const bn_corpus *corpus;  /* images */
    const long long *list;    /* to-do list: corpus indices */
    bn_decoder *dec;          /* decoder state */
    bn_rgb img;               /* decoded pixels, reused */
    bn_norm norm;             /* preprocessing */
    double read_s, decode_s;  /* time spent by the decoder */
} decoder_t;

static void decode_job(decoder_t *D, job_t *j) {
    j->ok = 0;
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    for (int k = 0; k < j->count; k++) {
        long long i = D->list[j->start + k];
        j->idx[k] = i;
        bn_img_result res;
        const unsigned char *buf;
        size_t len;
        double t0 = bn_now();
        bn_img_status s = bn_read_file(D->dec, D->corpus->items[i].path, &buf, &len, &res);
        double t1 = bn_now();
        D->read_s += t1 - t0;
        if (s == BN_IMG_OK) {
            s = bn_decode_mem(D->dec, buf, len, &D->img, &res);
            if (s == BN_IMG_OK) bn_resize_norm(&D->img, BN_INPUT_SIZE, BN_INPUT_SIZE, D->norm, j->input + (size_t)j->ok * img_floats);
        }
        D->decode_s += bn_now() - t1;
        j->code[k] = (unsigned char)s;
        snprintf(j->reason[k], BN_REASON_LEN, "%.159s", s == BN_IMG_OK ? "" : res.reason);
        j->slot[k] = s == BN_IMG_OK ? j->ok++ : -1;
    }
}

static void *decoder_main(void *arg) {
    decoder_t *D = arg;
    pthread_mutex_lock(&D->mu);
    for (;;) {
        while (!D->todo && !D->quit) pthread_cond_wait(&D->cv, &D->mu);
        if (D->quit) break;
        job_t *j = D->todo;
        D->todo = NULL;
        pthread_mutex_unlock(&D->mu);
        if (j->start >= 0) decode_job(D, j);
        pthread_mutex_lock(&D->mu);
        D->ready = j;
        pthread_cond_broadcast(&D->cv);
    }
    pthread_mutex_unlock(&D->mu);
    return NULL;
}

static void decoder_submit(decoder_t *D, job_t *j) {
    pthread_mutex_lock(&D->mu);
    D->todo = j;
    pthread_cond_broadcast(&D->cv);
    pthread_mutex_unlock(&D->mu);
}

static job_t *decoder_wait(decoder_t *D) {
    pthread_mutex_lock(&D->mu);
    while (!D->ready) pthread_cond_wait(&D->cv, &D->mu);
    job_t *j = D->ready;
    D->ready = NULL;
    pthread_mutex_unlock(&D->mu);
    return j;
}

static void job_alloc(job_t *j, int batch) {
    memset(j, 0, sizeof *j);
    j->idx = mallocCheck(sizeof(long long) * (size_t)batch);
    j->slot = mallocCheck(sizeof(int) * (size_t)batch);
    j->code = mallocCheck((size_t)batch);
    j->reason = mallocCheck((size_t)batch * BN_REASON_LEN);
    j->input = mallocCheck((size_t)batch * BN_INPUT_SIZE * BN_INPUT_SIZE * 3 * sizeof(float));
}

static void job_free(job_t *j) {
    free(j->idx);
    free(j->slot);
    free(j->code);
    free(j->reason);
    free(j->input);
}

/* Take the next chunk from the shared counter; start = -1 when none is left
 * or a stop was requested anywhere. */
static void next_chunk(MPI_Win win, long long ntodo, int batch, job_t *j) {
    long long inc = 1, got = 0, stop = 0, none = 0;
    if (g_stop) {
        long long one = 1;
        mpiCheck(MPI_Accumulate(&one, 1, MPI_LONG_LONG, 0, W_STOP, 1, MPI_LONG_LONG, MPI_REPLACE, win));
    }
    mpiCheck(MPI_Fetch_and_op(&none, &stop, MPI_LONG_LONG, 0, W_STOP, MPI_NO_OP, win));
    mpiCheck(MPI_Win_flush(0, win));
    if (stop || g_stop) {
        j->start = -1;
        return;
    }
    mpiCheck(MPI_Fetch_and_op(&inc, &got, MPI_LONG_LONG, 0, W_NEXT, MPI_SUM, win));
    mpiCheck(MPI_Win_flush(0, win));
    long long start = got * batch;
    if (start >= ntodo) {
        j->start = -1;
        return;
    }
    j->start = start;
    j->count = (int)(ntodo - start < batch ? ntodo - start : batch);
}

/* Settings of the run as a JSON object (stored in the file). */
static void settings_json(char *out, size_t len, const char *src, int manifest, const char *weights, const char *backend,
                          long long batch, int threads, int ranks, const char *preprocess, const char *dct,
                          double vp, double tp, long long max_pixels) {
    snprintf(out, len,
             "{\"%s\": \"%s\", \"weights\": \"%s\", \"backend\": \"%s\", \"batch\": %lld, \"threads\": %d, "
             "\"ranks\": %d, \"preprocess\": \"%s\", \"dct\": \"%s\", \"validation_percentage\": %g, "
             "\"testing_percentage\": %g, \"max_pixels\": %lld}",
             manifest ? "manifest" : "image_dir", src, weights, backend, batch, threads, ranks, preprocess, dct, vp, tp,
             max_pixels);
}

/* Print the per-rank timing table on rank 0. */
static void print_timing(const bn_rank_timing *t, int size, double wall) {
    printf("\nrank     done  failed    read s  decode s  forward s   write s    idle s    wall s  images/s\n");
    bn_rank_timing sum = {0};
    double maxw = 0, minw = 1e300;
    for (int r = 0; r < size; r++) {
        const bn_rank_timing *x = &t[r];
        printf("%4d %8lld %7lld %9.2f %9.2f %10.2f %9.2f %9.2f %9.2f %9.2f\n", x->rank, x->done, x->failed, x->read_s,
               x->decode_s, x->forward_s, x->write_s, x->idle_s, x->wall_s, x->images_per_s);
        sum.done += x->done;
        sum.failed += x->failed;
        sum.read_s += x->read_s;
        sum.decode_s += x->decode_s;
        sum.forward_s += x->forward_s;
        sum.write_s += x->write_s;
        sum.idle_s += x->idle_s;
        double busy = x->wall_s - x->idle_s;
        if (busy > maxw) maxw = busy;
        if (busy < minw) minw = busy;
    }
    double n = (double)(sum.done + sum.failed);
    printf(" all %8lld %7lld %9.2f %9.2f %10.2f %9.2f %9.2f %9.2f %9.2f\n", sum.done, sum.failed, sum.read_s,
           sum.decode_s, sum.forward_s, sum.write_s, sum.idle_s, wall, wall > 0 ? n / wall : 0.0);
    printf("load imbalance: %.1f%% (busiest rank's busy time over the least busy's, minus 1)\n",
           minw > 0 ? 100.0 * (maxw / minw - 1.0) : 0.0);
    printf("wall time: %.2f s for %.0f images on %d rank%s\n", wall, n, size, size == 1 ? "" : "s");
}

int bn_cmd_extract(int argc, char **argv) {
    const char *images = NULL, *manifest = NULL, *weights = NULL, *out = NULL, *backend_s = "cpu",
               *preprocess = "keras", *dct = "accurate", *progress_s = "auto";
    long long batch = 8, threads = 0, max_pixels = BN_DEFAULT_MAX_PIXELS;
    double vp = 10, tp = 10;
    int verbose = 0, quiet = 0;
    char choices[64];
    snprintf(choices, sizeof choices, "%s", bn_backend_choices());
    const bn_opt opts[] = {
        {"images", 'i', BN_OPT_STRING, &images, "DIR", NULL, 0, 0, NULL, "folder of class folders (retrain.py layout)"},
        {"manifest", 'm', BN_OPT_STRING, &manifest, "FILE", NULL, 0, 0, NULL, "manifest of path<TAB>label lines"},
        {"weights", 'w', BN_OPT_STRING, &weights, "FILE", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required"},
        {"out", 'o', BN_OPT_STRING, &out, "FILE", NULL, 0, 0, NULL, "the shared HDF5 feature file; required (resumed if it exists)"},
        {"backend", 'b', BN_OPT_CHOICE, &backend_s, NULL, "cpu", 0, 0, choices, "engine"},
        {"batch", 0, BN_OPT_INT, &batch, "N", "8", 1, 4096, NULL, "images per forward pass and per work unit"},
        {"threads", 't', BN_OPT_INT, &threads, "N", "cores / ranks per node", 0, 4096, NULL, "engine threads per rank (0 = default)"},
        {"preprocess", 0, BN_OPT_CHOICE, &preprocess, NULL, "keras", 0, 0, "keras|tf2015", "input normalisation"},
        {"dct", 0, BN_OPT_CHOICE, &dct, NULL, "accurate", 0, 0, "accurate|fast", "JPEG inverse DCT"},
        {"max-pixels", 0, BN_OPT_INT, &max_pixels, "N", "100000000", 1, 1e15, NULL, "refuse larger images (checked from the header)"},
        {"validation-percentage", 0, BN_OPT_DOUBLE, &vp, "PCT", "10", 0, 100, NULL, "share of images for validation"},
        {"testing-percentage", 0, BN_OPT_DOUBLE, &tp, "PCT", "10", 0, 100, NULL, "share of images for testing"},
        {"progress", 0, BN_OPT_CHOICE, &progress_s, NULL, "auto", 0, 0, "auto|tty|log|none", "progress line: in place (tty), plain lines (log), or none"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "extract", "Compute the Inception v3 bottleneck of every image of a corpus into one shared HDF5 file.",
        "mpirun -n R bneck extract (--images DIR | --manifest FILE) --weights W.h5 --out features.h5 [options]",
        "Ranks take chunks of --batch images from a shared counter, so slow ranks never hold\n"
        "the others back. Rerun the same command on an unfinished file to resume: done\n"
        "images are kept, pending and failed ones are retried. SIGTERM or SIGUSR1 (what\n"
        "Slurm sends before a time limit) makes every rank finish its batch, leave the\n"
        "file consistent and exit with status 75: rerun to resume. The file layout is in\n"
        "docs/format.md.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!images == !manifest) return bn_cli_usage(&spec, "give exactly one of --images DIR or --manifest FILE");
    if (!weights) return bn_cli_usage(&spec, "--weights FILE is required");
    if (!out) return bn_cli_usage(&spec, "--out FILE is required");
    if (vp + tp > 100) return bn_cli_usage(&spec, "--validation-percentage plus --testing-percentage is over 100");
    bn_cli_apply_verbosity(verbose, quiet);
    bn_backend backend;
    if (bn_backend_parse(backend_s, &backend)) return bn_cli_usage(&spec, "backend '%s' is not built in", backend_s);
    bn_norm norm = BN_NORM_KERAS;
    bn_norm_parse(preprocess, &norm);

    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size));
    int nthreads = threads > 0 ? (int)threads : bn_default_threads();
    double t_start = bn_now();
    int bound = bn_bound_cpus();
    if (bound > 0 && bound < nthreads)
        bn_warn("this rank runs %d engine threads but is bound to %d CPU%s, so they share it; launch with "
                "'mpirun --bind-to none' (or '--map-by slot:PE=%d'), or pass --threads %d",
                nthreads, bound, bound == 1 ? "" : "s", nthreads, bound);

    /* 1. The corpus: every rank scans (deterministic, so all agree). */
    bn_corpus c;
    memset(&c, 0, sizeof c);
    bn_split_opts so = {vp, tp};
    char err[1024] = "";
    if (images ? bn_corpus_scan_dir(images, &so, &c, err, sizeof err)
               : bn_corpus_read_manifest(manifest, &so, &c, err, sizeof err)) {
        if (rank == 0) bn_error("bneck corpus checks a corpus without running the network", "%s", err);
        return BN_EXIT_FAIL;
    }
    /* 2. The weights, on every rank; agree on failure. */
    bn_model model;
    int ok = bn_weights_load(weights, &model, err, sizeof err) == 0, all_ok = 0;
    mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (!all_ok) {
        if (!ok) bn_error("docs/weights.md says what the file must hold", "%s", err);
        if (ok) bn_model_free(&model);
        bn_corpus_free(&c);
        return BN_EXIT_FAIL;
    }
    if (rank == 0) bn_verbose("weights %s: sha256 %s", weights, model.sha256);
    /* 3. The feature file (collective). */
    bn_store_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.weights_sha256, sizeof id.weights_sha256, "%s", model.sha256);
    snprintf(id.preprocess, sizeof id.preprocess, "%s", preprocess);
    snprintf(id.dct, sizeof id.dct, "%s", dct);
    char settings[4096];
    settings_json(settings, sizeof settings, images ? images : manifest, manifest != NULL, weights, bn_backend_name(backend),
                  batch, nthreads, size, preprocess, dct, vp, tp, max_pixels);
    int resumed = 0;
    bn_store *st = bn_store_open(out, MPI_COMM_WORLD, &c, &id, settings, &resumed, err, sizeof err);
    if (!st) {
        if (rank == 0) bn_error("use another --out, or remove the file to start over", "%s", err);
        bn_model_free(&model);
        bn_corpus_free(&c);
        return BN_EXIT_FAIL;
    }
    /* 4. The to-do list: everything not done (pending and failed are retried). */
    const unsigned char *status = bn_store_status(st);
    long long ntodo = 0, ndone_before = 0;
    long long *list = mallocCheck(sizeof(long long) * (c.n ? c.n : 1));
    for (size_t i = 0; i < c.n; i++) {
        if (status[i] == BN_ROW_DONE)
            ndone_before++;
        else
            list[ntodo++] = (long long)i;
    }
    if (rank == 0) {
        if (resumed)
            bn_info("resuming %s: %lld of %zu images done, %lld to go", out, ndone_before, c.n, ntodo);
        else
            bn_info("extracting %zu images in %d classes on %d rank%s (%d thread%s each, batch %lld) into %s", c.n,
                    c.nlabels, size, size == 1 ? "" : "s", nthreads, nthreads == 1 ? "" : "s", batch, out);
    }
    /* 5. Engine, decoder thread, shared counter. */
    int eng_ok = 1;
    bn_engine *eng = bn_engine_create(&model, backend, (int)batch, nthreads, err, sizeof err);
    if (!eng) {
        bn_error(NULL, "cannot create the %s engine: %s", backend_s, err);
        eng_ok = 0;
    }
    mpiCheck(MPI_Allreduce(&eng_ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (!all_ok) {
        bn_engine_free(eng);
        bn_store_abort(st);
        free(list);
        bn_model_free(&model);
        bn_corpus_free(&c);
        return BN_EXIT_FAIL;
    }
    long long *wbase = NULL;
    MPI_Win win;
    mpiCheck(MPI_Win_allocate(rank == 0 ? W_SLOTS * sizeof(long long) : 0, sizeof(long long), MPI_INFO_NULL,
                              MPI_COMM_WORLD, &wbase, &win));
    if (rank == 0) memset(wbase, 0, W_SLOTS * sizeof(long long));
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
    mpiCheck(MPI_Win_lock_all(MPI_MODE_NOCHECK, win));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    bn_decode_opts dopts = {.max_pixels = max_pixels, .dct_fast = strcmp(dct, "fast") == 0};
    decoder_t D;
    memset(&D, 0, sizeof D);
    pthread_mutex_init(&D.mu, NULL);
    pthread_cond_init(&D.cv, NULL);
    D.corpus = &c;
    D.list = list;
    D.dec = bn_decoder_new(&dopts);
    D.norm = norm;
    if (pthread_create(&D.thread, NULL, decoder_main, &D) != 0)
        bn_fatal_at(__FILE__, __LINE__, "raise the process limit (ulimit -u)", "cannot start the decode thread");

    bn_progress prog;
    bn_progress_init(&prog, rank == 0 && !quiet ? progress_s : "none", (long long)c.n, ndone_before);
    job_t jobs[2];
    job_alloc(&jobs[0], (int)batch);
    job_alloc(&jobs[1], (int)batch);
    float *feat = mallocCheck((size_t)batch * BN_FEATURES * sizeof(float));
    float *rows = mallocCheck((size_t)batch * BN_FEATURES * sizeof(float));
    unsigned char *rstat = mallocCheck((size_t)batch);
    const char **reasons = mallocCheck(sizeof(char *) * (size_t)batch);
    bn_rank_timing me;
    memset(&me, 0, sizeof me);
    me.rank = rank;
    double forward_s = 0, write_s = 0, idle_s = 0;
    int write_failed = 0;
    double t_work = bn_now();

    /* Pipeline: the decoder works on the next chunk while this thread runs
     * the network on the current one. */
    job_t *cur = &jobs[0], *nxt = &jobs[1];
    double t0 = bn_now();
    next_chunk(win, ntodo, (int)batch, cur);
    decoder_submit(&D, cur);
    cur = decoder_wait(&D);
    idle_s += bn_now() - t0;
    while (cur->start >= 0) {
        t0 = bn_now();
        if (!write_failed) next_chunk(win, ntodo, (int)batch, nxt);
        else nxt->start = -1;
        decoder_submit(&D, nxt);
        idle_s += bn_now() - t0;
        /* The network on the decoded images, then the rows. */
        t0 = bn_now();
        if (cur->ok > 0) bn_engine_forward(eng, cur->input, cur->ok, feat);
        forward_s += bn_now() - t0;
        t0 = bn_now();
        long long ndone = 0, nfail = 0;
        for (int k = 0; k < cur->count; k++) {
            if (cur->slot[k] >= 0) {
                memcpy(rows + (size_t)k * BN_FEATURES, feat + (size_t)cur->slot[k] * BN_FEATURES, BN_FEATURES * sizeof(float));
                rstat[k] = BN_ROW_DONE;
                ndone++;
            } else {
                rstat[k] = BN_ROW_FAILED;
                nfail++;
            }
            reasons[k] = cur->reason[k];
        }
        if (!write_failed && bn_store_write(st, cur->idx, cur->count, rows, rstat, cur->code, reasons, err, sizeof err)) {
            bn_error("check free space and quota on the output file system", "%s", err);
            write_failed = 1;
            g_stop = 1; /* stop everyone: the file cannot take more */
        } else {
            me.done += ndone;
            me.failed += nfail;
        }
        write_s += bn_now() - t0;
        long long add[2] = {ndone, nfail};
        mpiCheck(MPI_Accumulate(add, 2, MPI_LONG_LONG, 0, W_DONE, 2, MPI_LONG_LONG, MPI_SUM, win));
        mpiCheck(MPI_Win_flush(0, win));
        if (rank == 0 && bn_progress_due(&prog)) {
            long long counts[2] = {0, 0}, none[2] = {0, 0};
            mpiCheck(MPI_Get_accumulate(none, 2, MPI_LONG_LONG, counts, 2, MPI_LONG_LONG, 0, W_DONE, 2, MPI_LONG_LONG,
                                        MPI_NO_OP, win));
            mpiCheck(MPI_Win_flush(0, win));
            bn_progress_update(&prog, counts[0], counts[1]);
        }
        t0 = bn_now();
        job_t *j = decoder_wait(&D);
        idle_s += bn_now() - t0;
        nxt = cur;
        cur = j;
    }
    me.wall_s = bn_now() - t_work;
    /* The decoder is idle now: stop it. */
    pthread_mutex_lock(&D.mu);
    D.quit = 1;
    pthread_cond_broadcast(&D.cv);
    pthread_mutex_unlock(&D.mu);
    pthread_join(D.thread, NULL);
    double t_barrier = bn_now();
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD)); /* every rank's counts are in the window now */
    idle_s += bn_now() - t_barrier;
    long long totals[2] = {0, 0};
    if (rank == 0) {
        long long none[2] = {0, 0};
        mpiCheck(MPI_Get_accumulate(none, 2, MPI_LONG_LONG, totals, 2, MPI_LONG_LONG, 0, W_DONE, 2, MPI_LONG_LONG,
                                    MPI_NO_OP, win));
        mpiCheck(MPI_Win_flush(0, win));
    }
    mpiCheck(MPI_Win_unlock_all(win));
    me.wall_s = bn_now() - t_work;
    me.read_s = D.read_s;
    me.decode_s = D.decode_s;
    me.forward_s = forward_s;
    me.write_s = write_s;
    me.idle_s = idle_s;
    me.images_per_s = me.wall_s > 0 ? (double)(me.done + me.failed) / me.wall_s : 0.0;

    int stopped = 0, any_stop = 0, wf = write_failed, any_wf = 0;
    stopped = (int)g_stop;
    mpiCheck(MPI_Allreduce(&stopped, &any_stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    mpiCheck(MPI_Allreduce(&wf, &any_wf, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    mpiCheck(MPI_Bcast(totals, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD));
    int complete = !any_stop && !any_wf;
    bn_progress_finish(&prog, totals[0], totals[1]);

    bn_rank_timing *all = rank == 0 ? mallocCheck(sizeof *all * (size_t)size) : NULL;
    mpiCheck(MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD));
    int status_rc = BN_EXIT_OK;
    if (bn_store_close(st, &me, complete, err, sizeof err)) {
        if (rank == 0) bn_error("the features written so far are kept; rerun to resume", "%s", err);
        status_rc = BN_EXIT_FAIL;
    }
    double wall = bn_now() - t_start;
    if (rank == 0) {
        if (!quiet) print_timing(all, size, wall);
        printf("features: %lld done, %lld failed in this run; %s%s\n", totals[0], totals[1], out,
               complete ? "" : " is INCOMPLETE");
        if (any_wf) status_rc = BN_EXIT_FAIL;
        else if (any_stop) {
            bn_warn("stopped by a signal; rerun the same command to resume (exit status %d)", BN_EXIT_INCOMPLETE);
            status_rc = status_rc ? status_rc : BN_EXIT_INCOMPLETE;
        }
        if (totals[1] > 0) bn_warn("%lld images failed; their reasons are in %s (error_reason); bneck corpus --decode lists them too", totals[1], out);
    }
    mpiCheck(MPI_Bcast(&status_rc, 1, MPI_INT, 0, MPI_COMM_WORLD));
    mpiCheck(MPI_Win_free(&win));
    free(all);
    free(reasons);
    free(rstat);
    free(rows);
    free(feat);
    job_free(&jobs[0]);
    job_free(&jobs[1]);
    bn_rgb_free(&D.img);
    bn_decoder_free(D.dec);
    pthread_mutex_destroy(&D.mu);
    pthread_cond_destroy(&D.cv);
    bn_engine_free(eng);
    free(list);
    bn_model_free(&model);
    bn_corpus_free(&c);
    return status_rc;
}
