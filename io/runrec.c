/* runrec.c: the run record and the throughput timeline (runrec.h). */
#include "io/runrec.h"

#include "io/h5util.h"
#include "pipeline/log.h"
#include "pipeline/sysinfo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void bn_run_cost(bn_run_summary *s) {
    s->node_hours = s->wall_s * s->nodes / 3600.0;
    s->cost = s->cost_per_1000 = s->images_per_dollar = NAN;
    if (!(s->price_per_node_hour >= 0)) {
        s->price_per_node_hour = NAN;
        return;
    }
    s->cost = s->node_hours * s->price_per_node_hour;
    if (s->images > 0) {
        s->cost_per_1000 = s->cost * 1000.0 / (double)s->images;
        s->images_per_dollar = s->cost > 0 ? (double)s->images / s->cost : NAN;
    }
}

void bn_run_print(FILE *fp, const bn_run_summary *s) {
    fprintf(fp, "run: %.2f s wall on %d node%s, %d rank%s, %d core%s%s: %.1f core-seconds, %.5f node-hours\n", s->wall_s,
            s->nodes, s->nodes == 1 ? "" : "s", s->ranks, s->ranks == 1 ? "" : "s", s->cores, s->cores == 1 ? "" : "s",
            s->gpus ? " and GPUs" : "", s->core_seconds, s->node_hours);
    if (isnan(s->price_per_node_hour))
        fprintf(fp, "cost: no price given (--price-per-node-hour P records what the run cost)\n");
    else if (s->images > 0 && !isnan(s->images_per_dollar))
        fprintf(fp, "cost: %.6f at %g per node-hour: %.6f per 1,000 images, %.0f images per dollar\n", s->cost,
                s->price_per_node_hour, s->cost_per_1000, s->images_per_dollar);
    else if (s->images > 0)
        fprintf(fp, "cost: %.6f at %g per node-hour: %.6f per 1,000 images\n", s->cost, s->price_per_node_hour,
                s->cost_per_1000);
    else
        fprintf(fp, "cost: %.6f at %g per node-hour (no images)\n", s->cost, s->price_per_node_hour);
}

void bn_utc_now(char out[32]) {
    time_t now = time(NULL);
    struct tm utc;
    if (!gmtime_r(&now, &utc) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &utc) == 0) snprintf(out, 32, "unknown");
}

void bn_host_name(char out[BN_HOST_LEN]) {
    if (gethostname(out, BN_HOST_LEN) != 0 || !out[0]) snprintf(out, BN_HOST_LEN, "unknown");
    out[BN_HOST_LEN - 1] = 0;
}

void bn_device_name(char out[BN_DEVNAME_LEN], int gpu, int threads) {
    if (gpu >= 0) {
        snprintf(out, BN_DEVNAME_LEN, "GPU %d", gpu);
        return;
    }
    char model[256];
    bn_cpu_model(model, sizeof model);
    if (!strcmp(model, "unknown")) model[0] = 0;
    /* Shorten the marketing words, keep the model. */
    char *p;
    while ((p = strstr(model, "(R)")) || (p = strstr(model, "(TM)")) || (p = strstr(model, "(tm)")))
        memmove(p, p + (p[1] == 'R' ? 3 : 4), strlen(p + (p[1] == 'R' ? 3 : 4)) + 1);
    if ((p = strstr(model, " Processor"))) *p = 0;
    if ((p = strstr(model, " CPU @"))) *p = 0;
    size_t n = strlen(model);
    while (n && model[n - 1] == ' ') model[--n] = 0;
    snprintf(out, BN_DEVNAME_LEN, "%.60s, %d core%s", model[0] ? model : "CPU", threads, threads == 1 ? "" : "s");
}

static int cmp_host(const void *a, const void *b) { return strncmp(a, b, BN_HOST_LEN); }

void bn_run_gather(bn_run_summary *s, MPI_Comm comm, const char *stage, double t_start, const char *start_utc,
                   double my_wall_s, int my_threads, int my_gpu, long long images, const char *precision,
                   double price) {
    int rank = 0, size = 1;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    memset(s, 0, sizeof *s);
    snprintf(s->stage, sizeof s->stage, "%s", stage);
    snprintf(s->started, sizeof s->started, "%s", start_utc ? start_utc : "");
    snprintf(s->precision, sizeof s->precision, "%s", precision ? precision : "");
    char host[BN_HOST_LEN];
    bn_host_name(host);
    char *hosts = mallocCheck((size_t)size * BN_HOST_LEN);
    mpiCheck(MPI_Allgather(host, BN_HOST_LEN, MPI_CHAR, hosts, BN_HOST_LEN, MPI_CHAR, comm));
    qsort(hosts, (size_t)size, BN_HOST_LEN, cmp_host);
    int nodes = size > 0;
    for (int i = 1; i < size; i++)
        if (strncmp(hosts + (size_t)i * BN_HOST_LEN, hosts + (size_t)(i - 1) * BN_HOST_LEN, BN_HOST_LEN)) nodes++;
    free(hosts);
    double mine[2] = {my_wall_s * (my_threads > 0 ? my_threads : 1), (double)(my_threads > 0 ? my_threads : 1)};
    double sum[2] = {0, 0};
    mpiCheck(MPI_Allreduce(mine, sum, 2, MPI_DOUBLE, MPI_SUM, comm));
    int g = my_gpu >= 0, gpus = 0;
    mpiCheck(MPI_Allreduce(&g, &gpus, 1, MPI_INT, MPI_SUM, comm));
    double wall = bn_now() - t_start;
    mpiCheck(MPI_Bcast(&wall, 1, MPI_DOUBLE, 0, comm));
    mpiCheck(MPI_Bcast(&price, 1, MPI_DOUBLE, 0, comm));
    /* Attributes get the same value on every rank (parallel HDF5): rank 0's. */
    mpiCheck(MPI_Bcast(s->started, sizeof s->started, MPI_CHAR, 0, comm));
    mpiCheck(MPI_Bcast(s->stage, sizeof s->stage, MPI_CHAR, 0, comm));
    mpiCheck(MPI_Bcast(s->precision, sizeof s->precision, MPI_CHAR, 0, comm));
    s->wall_s = wall;
    s->ranks = size;
    s->nodes = nodes;
    s->cores = (int)sum[1];
    s->gpus = gpus;
    s->core_seconds = sum[0];
    s->images = images;
    s->price_per_node_hour = price;
    bn_run_cost(s);
}

int bn_run_summary_put(hid_t obj, const bn_run_summary *s, char *msg) {
    if (bn_h5_attr_put_str(obj, "stage", s->stage, msg) < 0 || bn_h5_attr_put_str(obj, "started", s->started, msg) < 0 ||
        bn_h5_attr_put_double(obj, "wall_s", s->wall_s, msg) < 0 ||
        bn_h5_attr_put_int(obj, "ranks", H5T_STD_I32LE, s->ranks, 1, msg) < 0 ||
        bn_h5_attr_put_int(obj, "nodes", H5T_STD_I32LE, s->nodes, 1, msg) < 0 ||
        bn_h5_attr_put_int(obj, "cores", H5T_STD_I32LE, s->cores, 1, msg) < 0 ||
        bn_h5_attr_put_int(obj, "gpus", H5T_STD_I32LE, s->gpus, 1, msg) < 0 ||
        bn_h5_attr_put_double(obj, "core_seconds", s->core_seconds, msg) < 0 ||
        bn_h5_attr_put_double(obj, "node_hours", s->node_hours, msg) < 0 ||
        bn_h5_attr_put_int(obj, "images", H5T_STD_I64LE, s->images, 1, msg) < 0 ||
        bn_h5_attr_put_str(obj, "run_precision", s->precision, msg) < 0)
        return -1;
    if (!isnan(s->price_per_node_hour) &&
        (bn_h5_attr_put_double(obj, "price_per_node_hour", s->price_per_node_hour, msg) < 0 ||
         bn_h5_attr_put_double(obj, "cost", s->cost, msg) < 0 ||
         (!isnan(s->cost_per_1000) && bn_h5_attr_put_double(obj, "cost_per_1000_images", s->cost_per_1000, msg) < 0) ||
         (!isnan(s->images_per_dollar) && bn_h5_attr_put_double(obj, "images_per_dollar", s->images_per_dollar, msg) < 0)))
        return -1;
    return 0;
}

int bn_run_summary_get(hid_t obj, bn_run_summary *s) {
    char msg[BN_H5_MSG_LEN] = "";
    memset(s, 0, sizeof *s);
    s->price_per_node_hour = s->cost = s->cost_per_1000 = s->images_per_dollar = NAN;
    if (bn_h5_attr_get_double(obj, "wall_s", &s->wall_s, msg) != 0) return 0;
    char *str = NULL;
    if (bn_h5_attr_get_str(obj, "stage", &str, msg) == 0) snprintf(s->stage, sizeof s->stage, "%s", str);
    free(str);
    str = NULL;
    if (bn_h5_attr_get_str(obj, "started", &str, msg) == 0) snprintf(s->started, sizeof s->started, "%s", str);
    free(str);
    str = NULL;
    if (bn_h5_attr_get_str(obj, "run_precision", &str, msg) == 0) snprintf(s->precision, sizeof s->precision, "%s", str);
    free(str);
    long long v;
    if (bn_h5_attr_get_int(obj, "ranks", &v, msg) == 0) s->ranks = (int)v;
    if (bn_h5_attr_get_int(obj, "nodes", &v, msg) == 0) s->nodes = (int)v;
    if (bn_h5_attr_get_int(obj, "cores", &v, msg) == 0) s->cores = (int)v;
    if (bn_h5_attr_get_int(obj, "gpus", &v, msg) == 0) s->gpus = (int)v;
    if (bn_h5_attr_get_int(obj, "images", &v, msg) == 0) s->images = v;
    bn_h5_attr_get_double(obj, "core_seconds", &s->core_seconds, msg);
    bn_h5_attr_get_double(obj, "node_hours", &s->node_hours, msg);
    bn_h5_attr_get_double(obj, "price_per_node_hour", &s->price_per_node_hour, msg);
    bn_h5_attr_get_double(obj, "cost", &s->cost, msg);
    bn_h5_attr_get_double(obj, "cost_per_1000_images", &s->cost_per_1000, msg);
    bn_h5_attr_get_double(obj, "images_per_dollar", &s->images_per_dollar, msg);
    return 1;
}

void bn_timeline_init(bn_timeline *tl, double t0) {
    memset(tl, 0, sizeof *tl);
    tl->p = mallocCheck(sizeof *tl->p * BN_TL_MAX);
    tl->interval = BN_TL_INTERVAL;
    tl->t0 = t0;
    tl->p[0] = (bn_tl_point){0, 0, 0};
    tl->n = 1;
}

void bn_timeline_note(bn_timeline *tl, double now, long long done, long long failed, int force) {
    if (!tl->p) return;
    double t = now - tl->t0;
    if (!force && t - tl->last < tl->interval) return;
    if (tl->n == BN_TL_MAX) { /* full: keep every other sample (the first stays), sample half as often */
        int k = 0;
        for (int i = 0; i < tl->n; i += 2) tl->p[k++] = tl->p[i];
        tl->n = k;
        tl->interval *= 2;
    }
    tl->p[tl->n++] = (bn_tl_point){t, done, failed};
    tl->last = t;
}

void bn_timeline_free(bn_timeline *tl) {
    free(tl->p);
    memset(tl, 0, sizeof *tl);
}
