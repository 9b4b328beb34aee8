/* dispatch.h: handing out work units to ranks, on any MPI transport.
 *
 * Rank 0 owns the counter of the next unit. A thread on rank 0 serves the
 * other ranks' requests with plain two-sided messages on a private
 * communicator, so a request is answered within about a millisecond even
 * while rank 0's main thread is deep in a forward pass. This holds on TCP,
 * shared memory and RDMA alike, with any MPI that grants
 * MPI_THREAD_MULTIPLE: unlike a one-sided counter, it never depends on the
 * MPI library progressing a passive target. Rank 0 itself takes units
 * through a mutex, without messages. The thread polls with MPI_Iprobe and
 * sleeps between polls (at most 1 ms), so it takes no core from the
 * forward pass.
 *
 * Units are numbered 0, 1, 2, ... and each is handed out once, with its
 * description: bytes that rank 0 writes (a describe function) and the rank
 * that takes the unit receives in the answer, so that only rank 0 needs to
 * know what every unit holds (extract sends the indices and paths of the
 * unit's images). A request
 * also carries the rank's progress (images done and failed since its last
 * request) and whether it wants everyone to stop; after a stop no more units
 * are handed out, so every rank finishes its current unit and leaves.
 */
#ifndef BN_DISPATCH_H
#define BN_DISPATCH_H

#include <mpi.h>
#include <stddef.h>

typedef struct bn_dispatch bn_dispatch;

/* Rank 0, from its main thread or its serving thread (so it must only read
 * shared state): write the description of unit into buf, at most cap bytes,
 * and return the length it needs; when that is more than cap the call is
 * repeated with a buffer of that length. */
typedef size_t (*bn_dispatch_describe)(void *ctx, long long unit, char *buf, size_t cap);

/* Collective over comm. Hand out nunits units (read on rank 0 only),
 * described by describe(ctx, ...) on rank 0 (NULL: units carry no
 * description). Fails (NULL, reason in err, the same on every rank) when
 * comm has several ranks and MPI did not grant MPI_THREAD_MULTIPLE, or the
 * serving thread cannot start. */
bn_dispatch *bn_dispatch_start(MPI_Comm comm, long long nunits, bn_dispatch_describe describe, void *ctx, char *err,
                               size_t errlen);

/* Collective over comm. 0 when work can be shared over comm (one rank, or
 * MPI granted MPI_THREAD_MULTIPLE on every rank); else -1 with the reason in
 * err on every rank. Stages call it before creating anything. */
int bn_dispatch_check(MPI_Comm comm, char *err, size_t errlen);

/* This rank's next unit, or -1 when none is left or a stop was asked by
 * any rank. done and failed: this rank's images since its last call, for
 * progress; stop: 1 to ask every rank to stop after its current unit.
 * *desc and *desc_len (either may be NULL): the unit's description, valid
 * until this rank's next call (NULL and 0 for -1 or without a describe
 * function). After -1 a rank must not call again. */
long long bn_dispatch_next(bn_dispatch *d, long long done, long long failed, int stop, const char **desc,
                           size_t *desc_len);

/* Rank 0: images reported done and failed so far by all ranks (progress). */
void bn_dispatch_progress(bn_dispatch *d, long long *done, long long *failed);

/* Collective. Wait until every rank had its last answer, stop the thread,
 * free d. */
void bn_dispatch_finish(bn_dispatch *d);

#endif
