/* extract.c: "bneck extract" - the main job. MPI ranks share a corpus
 * dynamically, decode images in a thread beside the forward pass, and fill
 * one shared HDF5 feature file (io/store.h). Rerunning the same command on an
 * unfinished file resumes it; SIGTERM/SIGUSR1 stop every rank cleanly.
 *
 * Work units are chunks of --batch consecutive entries of the to-do list
 * (the images not yet done, in corpus order), handed out by a thread on
 * rank 0 over two-sided messages (pipeline/dispatch.h), so work sharing
 * holds on any transport. A chunk always forms the same batch whatever the
 * number of ranks, so the features do not depend on it. Only rank 0 holds
 * the corpus listing and the to-do list: a unit's answer carries the corpus
 * indices and paths of its images, so the memory of the other ranks does
 * not grow with the corpus.
 *
 * bn_extract_run() is the typed entry point (stages/stages.h); bn_cmd_extract
 * only parses the command line into a bn_extract_cfg.
 */
#include "io/corpus.h"
#include "io/image.h"
#include "io/store.h"
#include "io/gpu_image.h"
#include "io/weights.h"
#include "net/engine.h"
#include "net/quant.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/dispatch.h"
#include "pipeline/mpi.h"
#include "pipeline/log.h"
#include "pipeline/sysinfo.h"
#include "pipeline/progress.h"
#include "pipeline/settings.h"
#include "pipeline/tables.h"
#include "stages/stages.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop = 0; /* set by SIGTERM / SIGUSR1 */
static char g_sigmsg[640];               /* what on_signal prints at once: how to resume */
static size_t g_sigmsg_len;              /* its length; 0: print nothing */

/* Said at once, since a launcher that lost another rank sends SIGTERM and
 * then SIGKILL before this rank can report anything else. */
static void on_signal(int sig) {
    (void)sig;
    if (!g_stop && g_sigmsg_len) {
        ssize_t w = write(STDERR_FILENO, g_sigmsg, g_sigmsg_len);
        (void)w;
    }
    g_stop = 1;
}

/* One batch on its way through the pipeline. */
typedef struct {
    long long start;          /* the unit's number; -1: no more work */
    int count;                /* to-do entries in the chunk */
    int ok;                   /* images decoded into input[0..ok) */
    long long *idx;           /* (batch,) corpus index of each entry */
    size_t *poff;             /* (batch,) offset of each entry's path in paths */
    char *paths;              /* the entries' paths, NUL-terminated, one after another */
    size_t paths_cap;         /* allocated bytes of paths */
    int *slot;                /* (batch,) input slot of each entry, -1 if it failed */
    unsigned char *code;      /* (batch,) bn_img_status of each entry */
    char (*reason)[BN_REASON_LEN]; /* (batch,) failure reason */
    float *input;             /* (batch, 299, 299, 3) preprocessed images */
} job_t;

/* One decode thread of the pool: its own decoder state and pixels. */
struct decoder;
typedef struct {
    struct decoder *D;        /* the pool it belongs to */
    pthread_t thread;         /* helpers only (worker 0 is the decode thread itself) */
    bn_decoder *dec;          /* decoder state */
    bn_rgb img;               /* decoded pixels, reused */
    double read_s, decode_s;  /* time this thread spent */
    bn_gpu_image *gimg;       /* --decoder nvjpeg on a GPU rank: this thread's GPU decoder, else NULL */
    int gpu_dead;             /* gimg hit a CUDA error: the CPU decodes from then on */
    long long on_gpu, fell_back; /* JPEGs nvJPEG decoded; JPEGs it left to the CPU */
} dworker;

/* The decode thread, its helpers, and the hand-over with the main thread. */
typedef struct decoder {
    pthread_t thread;         /* the decoder */
    pthread_mutex_t mu;       /* guards todo, ready, quit */
    pthread_cond_t cv;        /* signalled on every change */
    job_t *todo;              /* job given to the decoder, or NULL */
    job_t *ready;             /* job decoded, or NULL */
    int quit;                 /* main asks the decoder to exit */
    bn_norm norm;             /* preprocessing */
    int nworkers;             /* decode threads, >= 1: the decoder plus nworkers - 1 helpers */
    dworker *w;               /* [nworkers] */
    pthread_mutex_t pmu;      /* guards the pool fields below */
    pthread_cond_t pcv;       /* a new job for the helpers, or the last helper done */
    job_t *cur;               /* the job the pool decodes */
    int next;                 /* next entry of cur to take */
    int busy;                 /* helpers still on cur */
    unsigned gen;             /* bumped per job */
    int pquit;                /* helpers exit */
} decoder_t;

/* Entry k of j into input slot k (compacted afterwards). */
static void decode_entry(decoder_t *D, dworker *w, job_t *j, int k) {
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    const char *path = j->paths + j->poff[k];
    bn_img_result res;
    const unsigned char *buf;
    size_t len;
    double t0 = bn_now();
    bn_img_status s = bn_read_file(w->dec, path, &buf, &len, &res);
    double t1 = bn_now();
    w->read_s += t1 - t0;
    int done = 0;
    if (s == BN_IMG_OK && w->gimg && !w->gpu_dead && bn_sniff_format(buf, len) == BN_FMT_JPEG) {
        /* nvJPEG and the GPU resize; what it does not take, the CPU decodes
         * below, one image at a time, and the unit goes on. */
        char why[256];
        int rc = bn_gpu_decode_resize(w->gimg, buf, len, D->norm, j->input + (size_t)k * img_floats, why, sizeof why);
        if (rc == 0) {
            done = 1;
            w->on_gpu++;
        } else if (rc > 0) {
            if (w->fell_back++ < 3) bn_verbose("%s: %s; decoded on the CPU", path, why);
        } else {
            bn_warn("GPU decoding stopped on this decode thread: %s; its images are decoded on the CPU from now on", why);
            w->gpu_dead = 1;
        }
    }
    if (s == BN_IMG_OK && !done) {
        s = bn_decode_mem(w->dec, buf, len, &w->img, &res);
        if (s == BN_IMG_OK) bn_resize_norm(&w->img, BN_INPUT_SIZE, BN_INPUT_SIZE, D->norm, j->input + (size_t)k * img_floats);
    }
    w->decode_s += bn_now() - t1;
    j->code[k] = (unsigned char)s;
    snprintf(j->reason[k], BN_REASON_LEN, "%.159s", s == BN_IMG_OK ? "" : res.reason);
}

/* Take entries of the pool's job until none is left. */
static void take_entries(decoder_t *D, dworker *w, job_t *j) {
    for (;;) {
        pthread_mutex_lock(&D->pmu);
        int k = D->next < j->count ? D->next++ : -1;
        pthread_mutex_unlock(&D->pmu);
        if (k < 0) return;
        decode_entry(D, w, j, k);
    }
}

static void *helper_main(void *arg) {
    dworker *w = arg;
    decoder_t *D = w->D;
    unsigned seen = 0;
    pthread_mutex_lock(&D->pmu);
    for (;;) {
        while (!D->pquit && D->gen == seen) pthread_cond_wait(&D->pcv, &D->pmu);
        if (D->pquit) break;
        seen = D->gen;
        job_t *j = D->cur;
        pthread_mutex_unlock(&D->pmu);
        take_entries(D, w, j);
        pthread_mutex_lock(&D->pmu);
        if (--D->busy == 0) pthread_cond_broadcast(&D->pcv);
    }
    pthread_mutex_unlock(&D->pmu);
    return NULL;
}

/* Decode job j on the whole pool, then move the good images to the front
 * of its input in entry order: the same result as one thread's. */
static void decode_job(decoder_t *D, job_t *j) {
    pthread_mutex_lock(&D->pmu);
    D->cur = j;
    D->next = 0;
    D->busy = D->nworkers - 1;
    D->gen++;
    pthread_cond_broadcast(&D->pcv);
    pthread_mutex_unlock(&D->pmu);
    take_entries(D, &D->w[0], j);
    pthread_mutex_lock(&D->pmu);
    while (D->busy > 0) pthread_cond_wait(&D->pcv, &D->pmu);
    pthread_mutex_unlock(&D->pmu);
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    j->ok = 0;
    for (int k = 0; k < j->count; k++) {
        if (j->code[k] != BN_IMG_OK) {
            j->slot[k] = -1;
            continue;
        }
        if (k != j->ok) memmove(j->input + (size_t)j->ok * img_floats, j->input + (size_t)k * img_floats, img_floats * sizeof(float));
        j->slot[k] = j->ok++;
    }
}

/* Start the pool: n decode threads (n - 1 helpers). Fatal when a thread
 * cannot be started (the rank cannot go on without its decoder). */
static void pool_start(decoder_t *D, int n, const bn_decode_opts *dopts, int gpu) {
    D->nworkers = n;
    D->w = callocCheck((size_t)n, sizeof *D->w);
    pthread_mutex_init(&D->pmu, NULL);
    pthread_cond_init(&D->pcv, NULL);
    for (int i = 0; i < n; i++) {
        D->w[i].D = D;
        D->w[i].dec = bn_decoder_new(dopts);
        if (gpu >= 0) { /* --decoder nvjpeg on a GPU rank; a thread that cannot have it decodes on the CPU */
            char err[512];
            D->w[i].gimg = bn_gpu_image_new(gpu, dopts->max_pixels, err, sizeof err);
            if (!D->w[i].gimg) bn_warn("decode thread %d decodes on the CPU: %s", i + 1, err);
        }
        if (i > 0 && pthread_create(&D->w[i].thread, NULL, helper_main, &D->w[i]) != 0)
            bn_fatal_at(__FILE__, __LINE__, "raise the process limit (ulimit -u), or lower --decode-threads",
                        "cannot start decode thread %d of %d", i + 1, n);
    }
}

/* Stop the helpers; add every thread's time to *read_s and *decode_s. */
static void pool_stop(decoder_t *D, double *read_s, double *decode_s) {
    long long on_gpu = 0, fell_back = 0;
    pthread_mutex_lock(&D->pmu);
    D->pquit = 1;
    pthread_cond_broadcast(&D->pcv);
    pthread_mutex_unlock(&D->pmu);
    for (int i = 0; i < D->nworkers; i++) {
        if (i > 0) pthread_join(D->w[i].thread, NULL);
        *read_s += D->w[i].read_s;
        *decode_s += D->w[i].decode_s;
        on_gpu += D->w[i].on_gpu;
        fell_back += D->w[i].fell_back;
        bn_gpu_image_free(D->w[i].gimg);
        bn_rgb_free(&D->w[i].img);
        bn_decoder_free(D->w[i].dec);
    }
    if (on_gpu || fell_back)
        bn_verbose("decoder: %lld JPEGs decoded by nvJPEG, %lld left to the CPU decoder", on_gpu, fell_back);
    free(D->w);
    pthread_mutex_destroy(&D->pmu);
    pthread_cond_destroy(&D->pcv);
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

static void job_alloc(job_t *j, int batch, bn_engine *eng) {
    memset(j, 0, sizeof *j);
    j->idx = mallocCheck(sizeof(long long) * (size_t)batch);
    j->poff = mallocCheck(sizeof(size_t) * (size_t)batch);
    j->slot = mallocCheck(sizeof(int) * (size_t)batch);
    j->code = mallocCheck((size_t)batch);
    j->reason = mallocCheck((size_t)batch * BN_REASON_LEN);
    j->input = bn_engine_alloc_input(eng, batch); /* page-locked for a GPU engine */
}

static void job_free(job_t *j, bn_engine *eng) {
    free(j->idx);
    free(j->poff);
    free(j->paths);
    free(j->slot);
    free(j->code);
    free(j->reason);
    bn_engine_free_input(eng, j->input);
}

/* A unit's description, as rank 0 sends it with the unit (describe_unit):
 * the entry count (8 bytes), the corpus index of each entry (8 bytes each),
 * then each entry's path with its NUL. */
typedef struct {
    const long long *list; /* (ntodo) the to-do list: corpus indices */
    long long ntodo;       /* its length */
    const bn_corpus *c;    /* the corpus (whole, on rank 0) */
    int batch;             /* entries per unit */
} units_t;

/* bn_dispatch_describe for extract (rank 0, any thread: reads only). */
static size_t describe_unit(void *ctx, long long u, char *buf, size_t cap) {
    const units_t *U = ctx;
    long long start = u * U->batch, count = U->ntodo - start < U->batch ? U->ntodo - start : U->batch;
    if (count < 0) count = 0;
    size_t need = sizeof(long long) * (size_t)(1 + count);
    for (long long k = 0; k < count; k++) need += strlen(U->c->items[U->list[start + k]].path) + 1;
    if (need > cap) return need;
    memcpy(buf, &count, sizeof count);
    size_t at = sizeof count;
    for (long long k = 0; k < count; k++, at += sizeof(long long)) memcpy(buf + at, &U->list[start + k], sizeof(long long));
    for (long long k = 0; k < count; k++) {
        const char *p = U->c->items[U->list[start + k]].path;
        size_t l = strlen(p) + 1;
        memcpy(buf + at, p, l);
        at += l;
    }
    return at;
}

/* Fill j with unit u (-1: none) from its description desc (len bytes).
 * Fatal when the description does not parse: it came from rank 0's
 * describe_unit, so only corrupted memory or messages can cause that. */
static void set_unit(job_t *j, long long u, const char *desc, size_t len, int batch, long long nimages) {
    j->start = u;
    j->count = 0;
    if (u < 0) return;
    long long count = -1;
    if (len >= sizeof count) memcpy(&count, desc, sizeof count);
    size_t at = sizeof count + sizeof(long long) * (size_t)(count > 0 ? count : 0);
    if (count < 0 || count > batch || at > len)
        bn_fatal_at(__FILE__, __LINE__, NULL, "unit %lld arrived damaged from rank 0 (%zu bytes, %lld entries)", u, len, count);
    if (j->paths_cap < len - at + 1) {
        j->paths_cap = len - at + 1;
        j->paths = reallocCheck(j->paths, j->paths_cap);
    }
    memcpy(j->paths, desc + at, len - at);
    j->paths[len - at] = 0;
    size_t p = 0, plen = len - at;
    for (long long k = 0; k < count; k++) {
        memcpy(&j->idx[k], desc + sizeof count + sizeof(long long) * (size_t)k, sizeof(long long));
        const char *end = p < plen ? memchr(j->paths + p, 0, plen - p) : NULL;
        if (j->idx[k] < 0 || j->idx[k] >= nimages || !end)
            bn_fatal_at(__FILE__, __LINE__, NULL, "unit %lld arrived damaged from rank 0 (entry %lld)", u, k);
        j->poff[k] = p;
        p = (size_t)(end - j->paths) + 1;
    }
    j->count = (int)count;
}

/* Settings of the run as a JSON object (stored in the file; see
 * pipeline/settings.h). Returns a new string (free it). */
static char *settings_json(const bn_extract_cfg *cfg, const bn_engine_setup *es, int ranks) {
    const bn_engine_opts *e = &cfg->eng;
    bn_settings *s = bn_settings_new();
    char shard[32];
    snprintf(shard, sizeof shard, "%d/%d", cfg->shard_index, cfg->shard_count);
    bn_settings_str(s, cfg->manifest ? "manifest" : "image_dir", cfg->manifest ? cfg->manifest : cfg->images);
    bn_settings_str(s, "weights", cfg->weights);
    bn_settings_str(s, "backend", es->backend);
    bn_settings_str(s, "precision", bn_precision_name(es->precision));
    bn_settings_str(s, "calibration", es->calibration);
    bn_settings_int(s, "batch", e->batch);
    bn_settings_int(s, "threads", es->threads);
    bn_settings_int(s, "streams", es->streams);
    bn_settings_int(s, "ranks", ranks);
    bn_settings_str(s, "preprocess", e->preprocess ? e->preprocess : "keras");
    bn_settings_str(s, "dct", e->dct ? e->dct : "accurate");
    bn_settings_double(s, "validation_percentage", cfg->validation_pct);
    bn_settings_double(s, "testing_percentage", cfg->testing_pct);
    bn_settings_int(s, "max_pixels", es->dopts.max_pixels);
    bn_settings_str(s, "shard", shard);
    bn_settings_str(s, "decoder", cfg->decoder ? cfg->decoder : "cpu");
    bn_settings_str(s, "feature_dtype", cfg->feature_dtype ? cfg->feature_dtype : "float32");
    return bn_settings_finish(s);
}

void bn_extract_cfg_init(bn_extract_cfg *cfg) {
    static const bn_engine_opts eng = BN_ENGINE_OPTS_INIT;
    memset(cfg, 0, sizeof *cfg);
    cfg->eng = eng;
    cfg->validation_pct = 10;
    cfg->testing_pct = 10;
    cfg->shard_index = 0;
    cfg->shard_count = 1;
    cfg->progress = "auto";
    cfg->price = NAN;
}

/* Everything one extract run holds, so that the steps below share it. */
typedef struct {
    const bn_extract_cfg *cfg; /* what was asked */
    MPI_Comm comm;             /* the ranks */
    int rank, size;            /* in comm */
    bn_engine_setup es;        /* the engine options, resolved */
    bn_corpus c;               /* the corpus, or this job's shard of it (headless on ranks other than 0) */
    bn_store_shard shard;      /* where the shard sits (cfg->shard_count > 1) */
    bn_model model;            /* the weights */
    int have_model;            /* model loaded */
    bn_store *st;              /* the features file */
    int resumed;               /* st was resumed */
    long long *list;           /* rank 0: (ntodo) corpus index of each image to do; NULL elsewhere */
    long long ntodo;           /* images to do (every rank) */
    units_t units;             /* rank 0: what describes the units */
    long long ndone_before;    /* images done by earlier runs */
    bn_engine *eng;            /* the network */
    bn_device dev;             /* where it runs (start_engine) */
    int decode_threads;        /* the decode pool's threads (start_engine) */
    int nvjpeg;                /* 1: this rank decodes its JPEGs with nvJPEG on its GPU (start_engine) */
    bn_dispatch *disp;         /* work sharing */
    bn_rank_timing me;         /* this rank's timing row */
    bn_timeline tl;            /* this rank's images done over time (run_units) */
    char started[32];          /* UTC start of the run */
    double t_start;            /* bn_now() at the start of the run */
    int write_failed;          /* this rank could not write rows */
    int engine_failed;         /* this rank's engine failed (a GPU error): it stops, the run can be resumed */
    char err[1024];            /* the reason of a failure */
} run_t;

/* Agree over the ranks whether every one succeeded (ok != 0). */
static int all_agree(MPI_Comm comm, int ok) {
    int all = 0;
    mpiCheck(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm));
    return all;
}

/* Step 1: the corpus, scanned once on rank 0, which alone keeps its
 * listing; every rank learns the classes and the count. Cut to the shard. */
static int load_corpus(run_t *R) {
    const bn_extract_cfg *cfg = R->cfg;
    bn_split_opts so = {cfg->validation_pct, cfg->testing_pct};
    if (bn_corpus_load_shared(cfg->images, cfg->manifest, &so, R->comm, &R->c, R->err, sizeof R->err)) {
        if (R->rank == 0) bn_error("bneck corpus checks a corpus without running the network", "%s", R->err);
        return -1;
    }
    if (cfg->shard_count > 1) {
        size_t first = 0;
        R->shard.index = cfg->shard_index;
        R->shard.count = cfg->shard_count;
        R->shard.corpus_n = (long long)R->c.n;
        if (R->rank == 0) bn_store_corpus_sha256(&R->c, R->shard.corpus_sha256);
        mpiCheck(MPI_Bcast(R->shard.corpus_sha256, (int)sizeof R->shard.corpus_sha256, MPI_CHAR, 0, R->comm));
        bn_corpus_keep_shard(&R->c, cfg->shard_index, cfg->shard_count, &first);
        R->shard.first = (long long)first;
    }
    return 0;
}

/* Step 2: the weights, on every rank; all agree. */
static int load_weights(run_t *R) {
    int ok = bn_weights_load(R->cfg->weights, &R->model, R->err, sizeof R->err) == 0;
    R->have_model = ok;
    if (!all_agree(R->comm, ok)) {
        if (!ok) bn_error("docs/weights.md says what the file must hold", "%s", R->err);
        return -1;
    }
    if (R->rank == 0) bn_verbose("weights %s: sha256 %s", R->cfg->weights, R->model.sha256);
    return 0;
}

/* Step 3: for int8, the calibration file, read on every rank and checked
 * against the weights before the features file is touched: its SHA-256 is
 * part of the file's identity. bn_engine_open then uses it as loaded. */
static int load_calibration(run_t *R) {
    if (R->es.precision != BN_PREC_INT8) return 0;
    R->es.calib = callocCheck(1, sizeof *R->es.calib);
    int ok = bn_calib_read(R->es.calibration, R->model.sha256, R->es.calib, R->err, sizeof R->err) == 0;
    if (!all_agree(R->comm, ok)) {
        if (!ok)
            bn_error("bneck calibrate --weights W.h5 --images DIR --out CAL.h5 makes one for these weights", "%s", R->err);
        return -1;
    }
    if (R->rank == 0) bn_verbose("calibration %s: sha256 %s", R->es.calibration, R->es.calib->sha256);
    return 0;
}

/* Step 4: the features file, created or resumed (collective), and the
 * to-do list: every image not done (pending and failed are retried). */
static int open_store(run_t *R) {
    const bn_extract_cfg *cfg = R->cfg;
    bn_store_identity id;
    memset(&id, 0, sizeof id);
    snprintf(id.weights_sha256, sizeof id.weights_sha256, "%s", R->model.sha256);
    snprintf(id.preprocess, sizeof id.preprocess, "%s", bn_norm_name(R->es.norm));
    snprintf(id.dct, sizeof id.dct, "%s", R->es.dopts.dct_fast ? "fast" : "accurate");
    snprintf(id.precision, sizeof id.precision, "%s", bn_precision_name(R->es.precision));
    if (R->es.precision == BN_PREC_INT8)
        snprintf(id.calibration_sha256, sizeof id.calibration_sha256, "%s", R->es.calib->sha256);
    snprintf(id.feature_dtype, sizeof id.feature_dtype, "%s", cfg->feature_dtype ? cfg->feature_dtype : "float32");
    char *settings = settings_json(cfg, &R->es, R->size);
    R->st = bn_store_open(cfg->out, R->comm, &R->c, &id, settings, &R->resumed, R->err, sizeof R->err);
    free(settings);
    if (!R->st) {
        if (R->rank == 0) bn_error("use another --out, or (if no other run is writing it) remove the file to start over", "%s", R->err);
        return -1;
    }
    if (cfg->shard_count > 1 && bn_store_mark_shard(R->st, &R->shard, R->err, sizeof R->err)) {
        if (R->rank == 0) bn_error("each shard of a job array needs its own --out", "%s", R->err);
        bn_store_abort(R->st);
        R->st = NULL;
        return -1;
    }
    /* The to-do list, on rank 0 (which alone has the statuses); every rank
     * learns its length. */
    long long counts[2] = {0, 0};
    if (R->rank == 0) {
        const unsigned char *status = bn_store_status(R->st);
        R->list = mallocCheck(sizeof(long long) * (R->c.n ? R->c.n : 1));
        for (size_t i = 0; i < R->c.n; i++) {
            if (status[i] == BN_ROW_DONE)
                counts[0]++;
            else
                R->list[counts[1]++] = (long long)i;
        }
    }
    mpiCheck(MPI_Bcast(counts, 2, MPI_LONG_LONG, 0, R->comm));
    R->ndone_before = counts[0];
    R->ntodo = counts[1];
    if (R->rank == 0) {
        char what[160] = "";
        if (cfg->shard_count > 1)
            snprintf(what, sizeof what, " (shard %d/%d: images %lld..%lld of %lld)", cfg->shard_index, cfg->shard_count,
                     R->shard.first, R->shard.first + (long long)R->c.n, R->shard.corpus_n);
        const char *prec = bn_precision_name(R->es.precision);
        if (R->resumed)
            bn_info("resuming %s%s: %lld of %zu images done, %lld to go (%s)", cfg->out, what, R->ndone_before, R->c.n,
                    R->ntodo, prec);
        else
            bn_info("extracting %zu images%s in %d classes on %d rank%s (%d thread%s each, batch %lld, %s) into %s (if the "
                    "job stops, the same command resumes it)", R->c.n,
                    what, R->c.nlabels, R->size, R->size == 1 ? "" : "s", R->es.threads, R->es.threads == 1 ? "" : "s",
                    cfg->eng.batch, prec, cfg->out);
    }
    return 0;
}

/* Collective. Close and remove the features file when this run created it
 * and wrote nothing into it: otherwise a run refused by the engine (bf16 on
 * a CPU without it, say) would leave a file whose identity refuses the rerun
 * with other options. */
static void drop_new_store(run_t *R) {
    if (!R->st || R->resumed) return;
    bn_store_abort(R->st);
    R->st = NULL;
    if (R->rank == 0 && unlink(R->cfg->out) != 0)
        bn_warn("%s: cannot remove the empty features file this run made: %s", R->cfg->out, strerror(errno));
    mpiCheck(MPI_Barrier(R->comm));
}

/* The decode pool's default: the cores of this rank's share that its engine
 * threads leave free (its affinity mask when bound to part of the node,
 * else the node's CPUs over its ranks), at least 1. */
static int default_decode_threads(int threads, int local_size) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int bound = bn_bound_cpus();
    long spare = (bound > 0 && bound < online) ? bound - threads : online - (long)local_size * threads;
    return spare > 1 ? (int)(spare < 256 ? spare : 256) : 1;
}

/* Step 5: the engine on every rank, and the work sharing; all agree. A
 * features file this run created is removed when the engine fails. */
static int start_engine(run_t *R) {
    int batch = (int)R->cfg->eng.batch;
    /* The device: node-local rank against the node's GPUs (pipeline/device.h). */
    int lr = 0, ls = 1;
    bn_device_local(R->comm, &lr, &ls);
    char note[256];
    int ok = bn_engine_pick_device(&R->es, lr, ls, &R->dev, note, sizeof note, R->err, sizeof R->err) == 0;
    if (!ok) bn_error("bneck --build-info says whether this build has a GPU backend", "%s", R->err);
    if (!all_agree(R->comm, ok)) {
        drop_new_store(R);
        return -1;
    }
    bn_verbose("device: %s", note);
    R->decode_threads = R->cfg->decode_threads > 0 ? R->cfg->decode_threads : default_decode_threads(R->es.threads, ls);
    if (R->decode_threads > batch) R->decode_threads = batch; /* a unit has no more images than that */
    bn_verbose("decode threads: %d (%s)", R->decode_threads, R->cfg->decode_threads > 0 ? "--decode-threads" : "the cores the engines leave");
    R->nvjpeg = R->cfg->decoder && !strcmp(R->cfg->decoder, "nvjpeg") && R->dev.gpu >= 0;
    if (R->cfg->decoder && !strcmp(R->cfg->decoder, "nvjpeg"))
        bn_verbose("decoder: %s", R->nvjpeg ? "nvJPEG on the rank's GPU, the CPU for what it does not take"
                                            : "libjpeg-turbo and libpng on the CPU (this rank has no GPU)");
    R->eng = bn_engine_open(&R->es, &R->model, batch, R->err, sizeof R->err);
    if (!R->eng)
        bn_error(NULL, "cannot create the %s %s engine: %s", R->es.backend, bn_precision_name(R->es.precision), R->err);
    if (!all_agree(R->comm, R->eng != NULL)) {
        drop_new_store(R);
        return -1;
    }
    long long nunits = (R->ntodo + batch - 1) / batch;
    R->units.list = R->list;
    R->units.ntodo = R->ntodo;
    R->units.c = &R->c;
    R->units.batch = batch;
    R->disp = bn_dispatch_start(R->comm, nunits, describe_unit, &R->units, R->err, sizeof R->err);
    if (!R->disp) {
        if (R->rank == 0) bn_error("docs/extract.md explains the work sharing", "%s", R->err);
        return -1;
    }
    return 0;
}

/* Step 6: the work. The decoder works on the next unit while this thread
 * runs the network on the current one and writes its rows. A rank whose
 * write fails asks everyone to stop; its unwritten rows are not counted. */
static void run_units(run_t *R) {
    const bn_extract_cfg *cfg = R->cfg;
    const int batch = (int)cfg->eng.batch;
    int ml = snprintf(g_sigmsg, sizeof g_sigmsg, "[rank %d] signal received: stopping; the rows written so far are kept "
                      "in %.400s: rerun the same command to resume\n", R->rank, cfg->out);
    g_sigmsg_len = ml > 0 ? ((size_t)ml < sizeof g_sigmsg ? (size_t)ml : sizeof g_sigmsg - 1) : 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    decoder_t D;
    memset(&D, 0, sizeof D);
    pthread_mutex_init(&D.mu, NULL);
    pthread_cond_init(&D.cv, NULL);
    D.norm = R->es.norm;
    pool_start(&D, R->decode_threads, &R->es.dopts, R->nvjpeg ? R->dev.gpu : -1);
    if (pthread_create(&D.thread, NULL, decoder_main, &D) != 0)
        bn_fatal_at(__FILE__, __LINE__, "raise the process limit (ulimit -u)", "cannot start the decode thread");

    bn_progress prog;
    bn_progress_init(&prog, R->rank == 0 && !cfg->quiet ? cfg->progress : "none", (long long)R->c.n, R->ndone_before);
    job_t jobs[2];
    job_alloc(&jobs[0], batch, R->eng);
    job_alloc(&jobs[1], batch, R->eng);
    float *feat = mallocCheck((size_t)batch * BN_FEATURES * sizeof(float));
    float *rows = mallocCheck((size_t)batch * BN_FEATURES * sizeof(float));
    unsigned char *rstat = mallocCheck((size_t)batch);
    const char **reasons = mallocCheck(sizeof(char *) * (size_t)batch);
    double forward_s = 0, write_s = 0, idle_s = 0;
    long long rep_done = 0, rep_failed = 0; /* not yet reported to the dispatcher */
    double t_work = bn_now();
    /* BNECK_TIMELINE=0 leaves the timeline out: only for bench/extract.sh's check of what it costs. */
    const char *tlenv = getenv("BNECK_TIMELINE");
    if (!tlenv || strcmp(tlenv, "0")) bn_timeline_init(&R->tl, t_work);

    job_t *cur = &jobs[0], *nxt = &jobs[1];
    double t0 = bn_now();
    const char *desc = NULL;
    size_t dlen = 0;
    long long u0 = bn_dispatch_next(R->disp, 0, 0, g_stop != 0, &desc, &dlen);
    if (R->rank == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        bn_verbose("start-up: the first unit was handed out %.3f s after the run started (unix time %.3f)",
                   bn_now() - R->t_start, (double)now.tv_sec + 1e-9 * (double)now.tv_nsec);
    }
    set_unit(cur, u0, desc, dlen, batch, (long long)R->c.n);
    decoder_submit(&D, cur);
    cur = decoder_wait(&D);
    idle_s += bn_now() - t0;
    while (cur->start >= 0) {
        t0 = bn_now();
        long long u = bn_dispatch_next(R->disp, rep_done, rep_failed, g_stop || R->write_failed || R->engine_failed, &desc,
                                       &dlen);
        rep_done = rep_failed = 0;
        set_unit(nxt, u, desc, dlen, batch, (long long)R->c.n);
        decoder_submit(&D, nxt);
        idle_s += bn_now() - t0;
        if (!R->write_failed && !R->engine_failed) {
            /* The network on the decoded images, then the rows. */
            t0 = bn_now();
            if (cur->ok > 0 && bn_engine_forward(R->eng, cur->input, cur->ok, feat)) {
                bn_error("rerun the same command to resume; the rows written before are kept", "the %s engine failed: %s",
                         R->es.backend, bn_engine_error(R->eng));
                R->engine_failed = 1; /* this unit is not written; the next request stops everyone */
            }
            forward_s += bn_now() - t0;
        }
        if (!R->write_failed && !R->engine_failed) {
            t0 = bn_now();
            long long ndone = 0, nfail = 0;
            for (int k = 0; k < cur->count; k++) {
                if (cur->slot[k] >= 0) {
                    memcpy(rows + (size_t)k * BN_FEATURES, feat + (size_t)cur->slot[k] * BN_FEATURES,
                           BN_FEATURES * sizeof(float));
                    rstat[k] = BN_ROW_DONE;
                    ndone++;
                } else {
                    rstat[k] = BN_ROW_FAILED;
                    nfail++;
                }
                reasons[k] = cur->reason[k];
            }
            if (bn_store_write(R->st, cur->idx, cur->count, rows, rstat, cur->code, reasons, R->err, sizeof R->err)) {
                bn_error("check free space and quota on the output file system; rerun to resume", "%s", R->err);
                R->write_failed = 1; /* not counted; the next request stops everyone */
            } else {
                R->me.done += ndone;
                R->me.failed += nfail;
                rep_done += ndone;
                rep_failed += nfail;
            }
            write_s += bn_now() - t0;
            bn_timeline_note(&R->tl, bn_now(), R->me.done, R->me.failed, 0);
        }
        if (R->rank == 0 && bn_progress_due(&prog)) {
            long long d = 0, f = 0;
            bn_dispatch_progress(R->disp, &d, &f);
            bn_progress_update(&prog, d, f);
        }
        t0 = bn_now();
        job_t *j = decoder_wait(&D);
        idle_s += bn_now() - t0;
        nxt = cur;
        cur = j;
    }
    /* The decoder is idle now: stop it. */
    pthread_mutex_lock(&D.mu);
    D.quit = 1;
    pthread_cond_broadcast(&D.cv);
    pthread_mutex_unlock(&D.mu);
    pthread_join(D.thread, NULL);
    /* Rank 0 waits here until every rank had its last answer. */
    t0 = bn_now();
    bn_dispatch_finish(R->disp);
    R->disp = NULL;
    idle_s += bn_now() - t0;
    R->me.wall_s = bn_now() - t_work;
    bn_timeline_note(&R->tl, bn_now(), R->me.done, R->me.failed, 1);
    R->me.read_s = 0;
    R->me.decode_s = 0;
    pool_stop(&D, &R->me.read_s, &R->me.decode_s);
    R->me.forward_s = forward_s;
    bn_engine_device_times(R->eng, &R->me.gpu_s, &R->me.copy_s);
    R->me.write_s = write_s;
    R->me.idle_s = idle_s;
    R->me.images_per_s = R->me.wall_s > 0 ? (double)(R->me.done + R->me.failed) / R->me.wall_s : 0.0;
    long long mine[2] = {R->me.done, R->me.failed}, tot[2] = {0, 0};
    mpiCheck(MPI_Allreduce(mine, tot, 2, MPI_LONG_LONG, MPI_SUM, R->comm));
    bn_progress_finish(&prog, tot[0], tot[1]);

    free(reasons);
    free(rstat);
    free(rows);
    free(feat);
    job_free(&jobs[0], R->eng);
    job_free(&jobs[1], R->eng);
    pthread_mutex_destroy(&D.mu);
    pthread_cond_destroy(&D.cv);
}

/* Step 7: agree on how the run ended, add the timing table, close the file
 * and report. Returns the exit status (the same on every rank). */
static int finish(run_t *R, double t_start, bn_extract_result *res) {
    const bn_extract_cfg *cfg = R->cfg;
    int flags[3] = {(int)g_stop, R->write_failed, R->engine_failed}, any[3] = {0, 0, 0};
    mpiCheck(MPI_Allreduce(flags, any, 3, MPI_INT, MPI_MAX, R->comm));
    int wf_rank = R->write_failed ? R->rank : R->size, first_wf = 0;
    mpiCheck(MPI_Allreduce(&wf_rank, &first_wf, 1, MPI_INT, MPI_MIN, R->comm));
    long long mine[2] = {R->me.done, R->me.failed}, totals[2] = {0, 0};
    mpiCheck(MPI_Allreduce(mine, totals, 2, MPI_LONG_LONG, MPI_SUM, R->comm));
    int ef_rank = R->engine_failed ? R->rank : R->size, first_ef = 0;
    mpiCheck(MPI_Allreduce(&ef_rank, &first_ef, 1, MPI_INT, MPI_MIN, R->comm));
    int complete = !any[0] && !any[1] && !any[2] && R->ndone_before + totals[0] + totals[1] >= (long long)R->c.n;
    bn_rank_timing *all = R->rank == 0 ? mallocCheck(sizeof *all * (size_t)R->size) : NULL;
    R->me.rank = R->rank;
    R->me.device = R->dev.gpu;
    /* The cores the rank holds: its share of the node, or its engine threads where they are more. */
    int held = bn_default_threads() > R->es.threads ? bn_default_threads() : R->es.threads;
    R->me.cores = held;
    bn_host_name(R->me.host);
    bn_device_name(R->me.device_name, R->dev.gpu, held);
    mpiCheck(MPI_Gather(&R->me, (int)sizeof R->me, MPI_BYTE, all, (int)sizeof R->me, MPI_BYTE, 0, R->comm));
    bn_run_summary run;
    bn_run_gather(&run, R->comm, "extract", t_start, R->started, R->me.wall_s, held, R->dev.gpu,
                  totals[0] + totals[1], bn_precision_name(R->es.precision), cfg->price);
    int rc = BN_EXIT_OK;
    if (bn_store_close(R->st, &R->me, &run, &R->tl, complete, R->err, sizeof R->err)) {
        if (R->rank == 0) bn_error("the features written so far are kept; rerun to resume", "%s", R->err);
        rc = BN_EXIT_FAIL;
    }
    R->st = NULL;
    if (R->rank == 0) {
        if (!cfg->quiet) {
            bn_print_extract_timing(stdout, all, R->size, bn_now() - t_start);
            bn_run_print(stdout, &run);
        }
        printf("features: %lld done, %lld failed in this run; %s%s\n", totals[0], totals[1], cfg->out,
               complete ? "" : " is INCOMPLETE");
        if (any[1]) {
            bn_error("free space on the output file system, then rerun the same command to resume",
                     "rank %d could not write its rows to %s, so every rank stopped after its current batch; the rows "
                     "written before are kept", first_wf, cfg->out);
            rc = BN_EXIT_FAIL;
        } else if (any[2]) {
            bn_error("rerun the same command to resume (on another GPU or --device cpu if this one keeps failing)",
                     "the engine of rank %d failed, so every rank stopped after its current batch; the rows written "
                     "before are kept (exit status %d)", first_ef, BN_EXIT_RESUME);
            if (!rc) rc = BN_EXIT_RESUME;
        } else if (any[0]) {
            bn_warn("stopped by a signal; rerun the same command to resume (exit status %d)", BN_EXIT_RESUME);
            if (!rc) rc = BN_EXIT_RESUME;
        }
        if (totals[1] > 0)
            bn_warn("%lld images failed; their reasons are in %s (error_reason); bneck corpus --decode lists them too",
                    totals[1], cfg->out);
    }
    free(all);
    mpiCheck(MPI_Bcast(&rc, 1, MPI_INT, 0, R->comm));
    if (res) {
        res->done = totals[0];
        res->failed = totals[1];
        res->complete = complete;
        res->stopped = any[0];
    }
    return rc;
}

/* Release what the steps made (the file is closed by finish or aborted). */
static void run_free(run_t *R) {
    if (R->st) bn_store_abort(R->st);
    bn_timeline_free(&R->tl);
    bn_engine_free(R->eng);
    bn_engine_setup_free(&R->es);
    free(R->list);
    if (R->have_model) bn_model_free(&R->model);
    bn_corpus_free(&R->c);
}

int bn_extract_run(const bn_extract_cfg *cfg, MPI_Comm comm, bn_extract_result *res) {
    run_t R;
    memset(&R, 0, sizeof R);
    R.dev.gpu = -1; /* the CPU until start_engine assigns a device */
    R.cfg = cfg;
    R.comm = comm;
    if (res) memset(res, 0, sizeof *res);
    mpiCheck(MPI_Comm_rank(comm, &R.rank));
    mpiCheck(MPI_Comm_size(comm, &R.size));
    double t_start = bn_now();
    R.t_start = t_start;
    bn_utc_now(R.started);
    if (bn_engine_opts_check(&cfg->eng, &R.es, R.err, sizeof R.err)) {
        if (R.rank == 0) bn_error("bneck extract --help lists the engine options", "%s", R.err);
        return BN_CLI_USAGE;
    }
    if (cfg->shard_count < 1 || cfg->shard_index < 0 || cfg->shard_index >= cfg->shard_count) {
        if (R.rank == 0) bn_error(NULL, "shard %d/%d does not exist: K/N needs 0 <= K < N", cfg->shard_index, cfg->shard_count);
        return BN_CLI_USAGE;
    }
    if (cfg->decoder && strcmp(cfg->decoder, "cpu") && strcmp(cfg->decoder, "nvjpeg")) {
        if (R.rank == 0) bn_error(NULL, "unknown decoder '%s' (cpu or nvjpeg)", cfg->decoder);
        return BN_CLI_USAGE;
    }
    if (cfg->decoder && !strcmp(cfg->decoder, "nvjpeg") && !bn_gpu_image_has_nvjpeg()) {
        if (R.rank == 0)
            bn_error("bneck --build-info says what was built (configure --with-nvjpeg=DIR)",
                     "--decoder nvjpeg: this build has no nvJPEG; use --decoder cpu");
        return BN_CLI_USAGE;
    }
    int bound = bn_bound_cpus();
    if (bound > 0 && bound < R.es.threads)
        bn_warn("this rank runs %d engine threads but is bound to %d CPU%s, so they share it; launch with "
                "'mpirun --bind-to none' (or '--map-by slot:PE=%d'), or pass --threads %d",
                R.es.threads, bound, bound == 1 ? "" : "s", R.es.threads, bound);
    g_stop = 0;
    int rc = BN_EXIT_FAIL;
    if (bn_dispatch_check(comm, R.err, sizeof R.err)) {
        if (R.rank == 0) bn_error("docs/extract.md explains the work sharing", "%s", R.err);
        return rc;
    }
    /* The start-up steps, timed (-v shows where start-up goes on a huge corpus). */
    static const struct {
        const char *name;
        int (*run)(run_t *);
    } steps[] = {{"corpus", load_corpus},   {"weights", load_weights}, {"calibration", load_calibration},
                 {"features file", open_store}, {"engine", start_engine}};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        double ts = bn_now();
        if (steps[k].run(&R)) goto done;
        if (R.rank == 0) bn_verbose("start-up: %s %.3f s", steps[k].name, bn_now() - ts);
    }
    run_units(&R);
    rc = finish(&R, t_start, res);
done:
    run_free(&R);
    return rc;
}

/* ------------------------------------------------------------ command line */

/* Parse "K/N" into a shard. 0, or -1 when malformed. */
static int parse_shard(const char *s, int *k, int *n) {
    long long a = 0, b = 0;
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash) return -1;
    char left[32];
    size_t l = (size_t)(slash - s);
    if (l == 0 || l >= sizeof left) return -1;
    memcpy(left, s, l);
    left[l] = 0;
    if (bn_parse_ll(left, &a) || bn_parse_ll(slash + 1, &b) || b < 1 || b > 1000000 || a < 0 || a >= b) return -1;
    *k = (int)a;
    *n = (int)b;
    return 0;
}

int bn_cmd_extract(int argc, char **argv) {
    bn_extract_cfg cfg;
    bn_extract_cfg_init(&cfg);
    const char *shard = NULL;
    int verbose = 0;
    const bn_opt opts[] = {
        {"images", 'i', BN_OPT_STRING, &cfg.images, "DIR", NULL, 0, 0, NULL, "folder of class folders (retrain.py layout)"},
        {"manifest", 'm', BN_OPT_STRING, &cfg.manifest, "FILE", NULL, 0, 0, NULL, "manifest of path<TAB>label lines"},
        {"weights", 'w', BN_OPT_STRING, &cfg.weights, "FILE", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required"},
        {"out", 'o', BN_OPT_STRING, &cfg.out, "FILE", NULL, 0, 0, NULL, "the shared HDF5 feature file; required (resumed if it exists)"},
        BN_OPTS_ENGINE(&cfg.eng, "8", "keras"),
        {"validation-percentage", 0, BN_OPT_DOUBLE, &cfg.validation_pct, "PCT", "10", 0, 100, NULL, "share of images for validation"},
        {"testing-percentage", 0, BN_OPT_DOUBLE, &cfg.testing_pct, "PCT", "10", 0, 100, NULL, "share of images for testing"},
        {"shard", 0, BN_OPT_STRING, &shard, "K/N", "0/1", 0, 0, NULL,
         "extract only shard K of N (0-based) into --out, for a job array; bneck join merges the shards"},
        {"progress", 0, BN_OPT_CHOICE, &cfg.progress, NULL, "auto", 0, 0, "auto|tty|log|none", "progress line: in place (tty), plain lines (log), or none"},
        {"decode-threads", 0, BN_OPT_INT, &cfg.decode_threads, "N", "cores the engines leave, at least 1", 0, 256, NULL,
         "threads per rank that read, decode and resize the next unit while the network runs"},
        {"decoder", 0, BN_OPT_CHOICE, &cfg.decoder, NULL, "cpu", 0, 0, "cpu|nvjpeg",
         "JPEG decoding: cpu (libjpeg-turbo), or nvjpeg on a GPU rank's GPU with the CPU for what it refuses"},
        {"feature-dtype", 0, BN_OPT_CHOICE, &cfg.feature_dtype, NULL, "float32", 0, 0, "float32|float16",
         "how the file stores each feature: float16 halves the file (docs/format.md; train reads either)"},
        BN_OPT_PRICE(&cfg.price),
        BN_OPTS_VERBOSITY(&verbose, &cfg.quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "extract", "Compute the Inception v3 bottleneck of every image of a corpus into one shared HDF5 file.",
        "mpirun -n R bneck extract (--images DIR | --manifest FILE) --weights W.h5 --out features.h5 [options]",
        "--batch is also the work unit: ranks ask rank 0 for the next chunk of --batch\n"
        "images, so slow ranks never hold the others back. Rerun the same command on an\n"
        "unfinished file to resume: done images are kept, pending and failed ones are\n"
        "retried. SIGTERM or SIGUSR1 (what Slurm sends before a time limit) makes every\n"
        "rank finish its batch, leave the file consistent and exit with status 75: rerun\n"
        "to resume. The file layout is in docs/format.md.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!cfg.images == !cfg.manifest) return bn_cli_usage(&spec, "give exactly one of --images DIR or --manifest FILE");
    if (!cfg.weights) return bn_cli_usage(&spec, "--weights FILE is required");
    if (!cfg.out) return bn_cli_usage(&spec, "--out FILE is required");
    if (cfg.validation_pct + cfg.testing_pct > 100)
        return bn_cli_usage(&spec, "--validation-percentage plus --testing-percentage is over 100");
    if (shard && parse_shard(shard, &cfg.shard_index, &cfg.shard_count))
        return bn_cli_usage(&spec, "--shard '%s' is not K/N with 0 <= K < N (e.g. 2/8, or $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)", shard);
    bn_engine_setup es;
    char err[512];
    if (bn_engine_opts_check(&cfg.eng, &es, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    bn_cli_apply_verbosity(verbose, cfg.quiet);
    bn_mpi_need();
    return bn_extract_run(&cfg, MPI_COMM_WORLD, NULL);
}
