/* log.c: see log.h. */
#include "pipeline/log.h"

#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = -1;          /* rank for the prefix, -1 before MPI */
static bn_level g_level = BN_INFO; /* current verbosity */

void bn_log_init(int rank, bn_level level) {
    g_rank = rank;
    g_level = level;
}

bn_level bn_log_level(void) { return g_level; }
int bn_log_rank(void) { return g_rank; }


/* "[rank R] " once MPI is up, "[bneck] " before; returns pre. */
static const char *prefix(char *pre, size_t len) {
    if (g_rank >= 0)
        snprintf(pre, len, "[rank %d] ", g_rank);
    else
        snprintf(pre, len, "[bneck] ");
    return pre;
}

static void vlog(bn_level min, const char *tag, const char *fmt, va_list ap) {
    if (g_level < min) return;
    char buf[4096], pre[32];
    vsnprintf(buf, sizeof buf, fmt, ap);
    /* One fprintf per line keeps lines from different ranks from interleaving. */
    fprintf(stderr, "%s%s%s\n", prefix(pre, sizeof pre), tag, buf);
}

void bn_info(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(BN_INFO, "", fmt, ap);
    va_end(ap);
}

void bn_verbose(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(BN_VERBOSE, "", fmt, ap);
    va_end(ap);
}

void bn_debug(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(BN_DEBUG, "debug: ", fmt, ap);
    va_end(ap);
}

void bn_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(BN_INFO, "warning: ", fmt, ap);
    va_end(ap);
}

static void verror(const char *file, int line, const char *hint, const char *fmt, va_list ap) {
    char buf[4096], pre[32];
    vsnprintf(buf, sizeof buf, fmt, ap);
    prefix(pre, sizeof pre);
    if (hint && *hint)
        fprintf(stderr, "%s%s:%d: error: %s\n%s  hint: %s\n", pre, file, line, buf, pre, hint);
    else
        fprintf(stderr, "%s%s:%d: error: %s\n", pre, file, line, buf);
}

void bn_error_at(const char *file, int line, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(file, line, hint, fmt, ap);
    va_end(ap);
}

void bn_fatal_at(const char *file, int line, const char *hint, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(file, line, hint, fmt, ap);
    va_end(ap);
    fflush(stderr);
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void *bn_malloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) bn_fatal_at(file, line, "reduce --batch or the number of ranks per node", "out of memory allocating %zu bytes", n);
    return p;
}

void *bn_calloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) bn_fatal_at(file, line, "reduce --batch or the number of ranks per node", "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *bn_realloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) bn_fatal_at(file, line, "reduce --batch or the number of ranks per node", "out of memory growing a buffer to %zu bytes", n);
    return q;
}

char *bn_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = bn_malloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

void bn_mpi_fail(int err, const char *call, const char *file, int line) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(err, msg, &len);
    bn_fatal_at(file, line, "check the MPI launcher (mpirun/srun) and the network between nodes",
                "%s failed: %s", call, msg);
}

double bn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
