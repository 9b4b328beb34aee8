/* runrec.h: what a run cost, as extract, join and train record it in their
 * output files and bneck report and bneck cost read it back
 * (docs/format.md, "The run record"; docs/cost.md).
 *
 * A run record is a set of HDF5 attributes on one object: a features
 * file's timing/run_K table, or the "run" group of a classifier file. It
 * holds the wall time, the ranks, nodes and cores, core-seconds and
 * node-hours, the precision, and with a price the cost, the cost per 1,000
 * images and images per dollar. The cost model is the cloud's: a run pays
 * for every node it holds for its whole wall time,
 *     node_hours = wall_s * nodes / 3600,   cost = node_hours * price.
 *
 * The throughput timeline (images done per rank, sampled every few seconds)
 * is kept here too: bn_timeline is what a rank fills while it works.
 */
#ifndef BN_RUNREC_H
#define BN_RUNREC_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>

#define BN_HOST_LEN 64   /* bytes of a host name in the timing table, NUL-padded */
#define BN_DEVNAME_LEN 80 /* bytes of a device description ("AMD EPYC 7B13, 2 cores") */

/* The whole of one run, the same on every rank. */
typedef struct {
    char stage[16];             /* "extract", "join", "train" */
    char started[32];           /* UTC start, ISO 8601 */
    double wall_s;              /* from the start of the stage to its end, on rank 0's clock */
    int ranks;                  /* MPI ranks */
    int nodes;                  /* distinct host names among the ranks */
    int cores;                  /* CPU cores held: the sum over ranks of the threads each used */
    int gpus;                   /* ranks whose network ran on a GPU */
    double core_seconds;        /* sum over ranks of (the rank's wall seconds x its threads) */
    double node_hours;          /* wall_s * nodes / 3600 */
    long long images;           /* images this run handled (done + failed; train: training rows) */
    char precision[8];          /* the network's arithmetic ("" for train: none ran) */
    double price_per_node_hour; /* what one node costs per hour (any currency); NaN: no price given */
    double cost;                /* node_hours * price; NaN without a price */
    double cost_per_1000;       /* cost * 1000 / images; NaN without a price or images */
    double images_per_dollar;   /* images / cost (per unit of the price's currency); NaN likewise */
} bn_run_summary;

/* Fill node_hours, cost, cost_per_1000 and images_per_dollar from wall_s,
 * nodes, images and price_per_node_hour (pure arithmetic). */
void bn_run_cost(bn_run_summary *s);

/* Collective over comm. Fill s for a run that started at t_start (bn_now()
 * on each rank) and began at UTC start_utc: every rank passes its own wall
 * seconds, threads and whether it ran on a GPU; ranks, nodes (from
 * the host names), cores, core_seconds are gathered, wall_s is rank 0's
 * now - t_start, then bn_run_cost. host gets this rank's host name. */
void bn_run_gather(bn_run_summary *s, MPI_Comm comm, const char *stage, double t_start, const char *start_utc,
                   double my_wall_s, int my_threads, int my_gpu, long long images, const char *precision,
                   double price);

/* Print s as two lines: the run's size and time, then its cost, or how to
 * get one (--price-per-node-hour). */
void bn_run_print(FILE *fp, const bn_run_summary *s);

/* The current UTC time, ISO 8601 ("2026-12-02T01:05:09Z"). */
void bn_utc_now(char out[32]);

/* This host's name (BN_HOST_LEN bytes, NUL-terminated; "unknown" when it has none). */
void bn_host_name(char out[BN_HOST_LEN]);

/* What runs the network on this rank, for the timing table: the CPU's model
 * name and the cores used ("AMD EPYC 7B13, 2 cores"), or "GPU g". */
void bn_device_name(char out[BN_DEVNAME_LEN], int gpu, int threads);

/* Write s as attributes of obj (stage, started, wall_s, ranks, nodes,
 * cores, gpus, core_seconds, node_hours, images, precision, and with a
 * price price_per_node_hour, cost, cost_per_1000_images,
 * images_per_dollar). Under parallel HDF5 every rank calls it with the same
 * s. Returns 0, or -1 with a reason in msg (BN_H5_MSG_LEN bytes, h5util.h). */
int bn_run_summary_put(hid_t obj, const bn_run_summary *s, char *msg);

/* Read a run record from obj's attributes. Returns 1 when it is there, 0
 * when obj has none (a file from before bneck recorded runs: s is zeroed,
 * the prices NaN). A missing price reads as NaN. */
int bn_run_summary_get(hid_t obj, bn_run_summary *s);

/* ------------------------------------------------------------ timeline */

/* One sample: at t_s seconds after the rank started, it had finished done
 * and failed images (counts of this run). */
typedef struct {
    double t_s;
    long long done, failed;
} bn_tl_point;

/* A rank's samples. At most BN_TL_MAX are kept: when full, every other
 * sample is dropped and the interval doubles, so a run of any length costs
 * a few tens of KiB, and a sample costs one comparison per batch. */
#define BN_TL_MAX 2048
typedef struct {
    bn_tl_point *p;   /* (n) samples, by time (owned) */
    int n;            /* samples */
    double interval;  /* seconds between samples (starts at BN_TL_INTERVAL) */
    double t0;        /* bn_now() at the start */
    double last;      /* t_s of the last sample */
} bn_timeline;
#define BN_TL_INTERVAL 1.0

/* Start a timeline at t0 (bn_now()), with a sample (0, 0, 0). */
void bn_timeline_init(bn_timeline *tl, double t0);
/* A sample at now when interval seconds have passed since the last one, or when force is set. */
void bn_timeline_note(bn_timeline *tl, double now, long long done, long long failed, int force);
void bn_timeline_free(bn_timeline *tl);

#endif
