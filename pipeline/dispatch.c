/* dispatch.c: work units served from a thread on rank 0 (dispatch.h). */
#include "pipeline/dispatch.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_ASK = 1, TAG_ANSWER = 2 };

/* One request: progress since the last request, and a stop flag. */
enum { ASK_DONE = 0, ASK_FAILED = 1, ASK_STOP = 2, ASK_LEN = 3 };

struct bn_dispatch {
    MPI_Comm comm;          /* private duplicate of the caller's communicator */
    int rank, size;         /* in comm */
    long long nunits;       /* units 0..nunits-1 (rank 0) */
    bn_dispatch_describe describe; /* rank 0: writes a unit's description, or NULL */
    void *ctx;              /* its argument */
    char *buf;              /* this rank's caller: the last answer, [unit (8 bytes)][description] */
    size_t cap;             /* allocated bytes of buf */
    char *sbuf;             /* rank 0's serving thread: the answer it sends */
    size_t scap;            /* allocated bytes of sbuf */
    /* Rank 0 only: */
    pthread_mutex_t mu;     /* guards the four fields below */
    long long next;         /* next unit to hand out */
    int stop;               /* a stop was asked: hand out nothing more */
    int finished;           /* ranks that have had their -1 */
    long long done, failed; /* progress reported so far */
    pthread_t thread;       /* the server, when size > 1 */
    int have_thread;        /* 1 when thread runs */
};

/* Rank 0 (main thread or server thread): record a request and take the next
 * unit for its rank, or -1; takes the lock itself. */
static long long serve(bn_dispatch *d, const long long ask[ASK_LEN]) {
    pthread_mutex_lock(&d->mu);
    d->done += ask[ASK_DONE];
    d->failed += ask[ASK_FAILED];
    if (ask[ASK_STOP]) d->stop = 1;
    long long unit = -1;
    if (!d->stop && d->next < d->nunits) unit = d->next++;
    if (unit < 0) d->finished++;
    pthread_mutex_unlock(&d->mu);
    return unit;
}

/* Rank 0: the answer for unit into *buf (grown as needed): the unit as 8
 * bytes, then its description. Returns the answer's length. */
static size_t answer(bn_dispatch *d, long long unit, char **buf, size_t *cap) {
    size_t need = sizeof unit;
    for (;;) {
        if (*cap < need) {
            *cap = need < 4096 ? 4096 : need;
            *buf = reallocCheck(*buf, *cap);
        }
        memcpy(*buf, &unit, sizeof unit);
        if (unit < 0 || !d->describe) return sizeof unit;
        size_t len = d->describe(d->ctx, unit, *buf + sizeof unit, *cap - sizeof unit);
        if (len <= *cap - sizeof unit) return sizeof unit + len;
        need = sizeof unit + len;
    }
}

static int all_finished(bn_dispatch *d) {
    pthread_mutex_lock(&d->mu);
    int all = d->finished >= d->size;
    pthread_mutex_unlock(&d->mu);
    return all;
}

/* The server thread: answer requests until every rank had its -1. Polls
 * with MPI_Iprobe, sleeping 20 us after a request and backing off to 1 ms
 * while none comes. */
static void *server_main(void *arg) {
    bn_dispatch *d = arg;
    long nap_ns = 20000;
    while (!all_finished(d)) {
        int flag = 0;
        MPI_Status st;
        mpiCheck(MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, d->comm, &flag, &st));
        if (flag) {
            long long ask[ASK_LEN];
            mpiCheck(MPI_Recv(ask, ASK_LEN, MPI_LONG_LONG, st.MPI_SOURCE, TAG_ASK, d->comm, MPI_STATUS_IGNORE));
            long long unit = serve(d, ask);
            size_t len = answer(d, unit, &d->sbuf, &d->scap);
            if (len > (size_t)INT_MAX)
                bn_fatal_at(__FILE__, __LINE__, "lower --batch", "the description of unit %lld is %zu bytes, more than one "
                            "MPI message holds", unit, len);
            mpiCheck(MPI_Send(d->sbuf, (int)len, MPI_BYTE, st.MPI_SOURCE, TAG_ANSWER, d->comm));
            nap_ns = 20000;
            continue;
        }
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 1000000) nap_ns *= 2;
    }
    return NULL;
}

int bn_dispatch_check(MPI_Comm comm, char *err, size_t errlen) {
    int size = 1;
    mpiCheck(MPI_Comm_size(comm, &size));
    /* The thread level: every rank checks its own, and all agree. */
    int level = bn_mpi_thread_level(), ok = size == 1 || level == MPI_THREAD_MULTIPLE, all_ok = 0;
    mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
    if (all_ok) return 0;
    snprintf(err, errlen,
             "this MPI granted %s, but sharing work across %d ranks needs MPI_THREAD_MULTIPLE (rank 0 serves "
             "work units from a thread); use an MPI built with thread support (Open MPI >= 3 and MPICH have it: "
             "check 'ompi_info | grep -i thread'), or run one rank per job",
             bn_mpi_thread_name(level), size);
    return -1;
}

bn_dispatch *bn_dispatch_start(MPI_Comm comm, long long nunits, bn_dispatch_describe describe, void *ctx, char *err,
                               size_t errlen) {
    bn_dispatch *d = callocCheck(1, sizeof *d);
    d->describe = describe;
    d->ctx = ctx;
    mpiCheck(MPI_Comm_dup(comm, &d->comm));
    mpiCheck(MPI_Comm_rank(d->comm, &d->rank));
    mpiCheck(MPI_Comm_size(d->comm, &d->size));
    d->nunits = nunits;
    pthread_mutex_init(&d->mu, NULL);
    if (bn_dispatch_check(d->comm, err, errlen)) goto fail;
    int ok = 1, all_ok = 0;
    if (d->rank == 0 && d->size > 1) {
        if (pthread_create(&d->thread, NULL, server_main, d) != 0)
            ok = 0;
        else
            d->have_thread = 1;
    }
    mpiCheck(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, d->comm));
    if (!all_ok) {
        snprintf(err, errlen, "rank 0 cannot start its work-sharing thread; raise the process limit (ulimit -u)");
        goto fail;
    }
    return d;
fail: /* no thread runs here: only rank 0 starts one, and its failure is what failed */
    pthread_mutex_destroy(&d->mu);
    mpiCheck(MPI_Comm_free(&d->comm));
    free(d);
    return NULL;
}

long long bn_dispatch_next(bn_dispatch *d, long long done, long long failed, int stop, const char **desc,
                           size_t *desc_len) {
    long long ask[ASK_LEN] = {done, failed, stop ? 1 : 0};
    long long unit = -1;
    size_t len = 0;
    if (d->rank == 0) {
        unit = serve(d, ask);
        len = answer(d, unit, &d->buf, &d->cap);
    } else {
        mpiCheck(MPI_Send(ask, ASK_LEN, MPI_LONG_LONG, 0, TAG_ASK, d->comm));
        MPI_Status st;
        int n = 0;
        mpiCheck(MPI_Probe(0, TAG_ANSWER, d->comm, &st));
        mpiCheck(MPI_Get_count(&st, MPI_BYTE, &n));
        if (n < (int)sizeof unit)
            bn_fatal_at(__FILE__, __LINE__, NULL, "rank 0 answered a request for work with %d bytes", n);
        if (d->cap < (size_t)n) {
            d->cap = (size_t)n;
            d->buf = reallocCheck(d->buf, d->cap);
        }
        mpiCheck(MPI_Recv(d->buf, n, MPI_BYTE, 0, TAG_ANSWER, d->comm, MPI_STATUS_IGNORE));
        memcpy(&unit, d->buf, sizeof unit);
        len = (size_t)n;
    }
    if (desc) *desc = unit >= 0 && len > sizeof unit ? d->buf + sizeof unit : NULL;
    if (desc_len) *desc_len = unit >= 0 ? len - sizeof unit : 0;
    return unit;
}

void bn_dispatch_progress(bn_dispatch *d, long long *done, long long *failed) {
    pthread_mutex_lock(&d->mu);
    *done = d->done;
    *failed = d->failed;
    pthread_mutex_unlock(&d->mu);
}

void bn_dispatch_finish(bn_dispatch *d) {
    if (!d) return;
    if (d->have_thread) pthread_join(d->thread, NULL);
    mpiCheck(MPI_Barrier(d->comm));
    pthread_mutex_destroy(&d->mu);
    mpiCheck(MPI_Comm_free(&d->comm));
    free(d->buf);
    free(d->sbuf);
    free(d);
}
