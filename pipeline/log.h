/* log.h: rank-prefixed logging and the check macros used everywhere.
 *
 * Every message goes to stderr as "[rank R] ...". Errors carry the call site
 * (file:line), what failed, and a hint. Problems with a single input file are
 * never reported through these macros: they become a status (see io/image.h).
 */
#ifndef BN_LOG_H
#define BN_LOG_H

#include <stddef.h>

/* Verbosity: -q gives BN_QUIET, default BN_INFO, -v BN_VERBOSE, -vv BN_DEBUG. */
typedef enum { BN_QUIET = 0, BN_INFO = 1, BN_VERBOSE = 2, BN_DEBUG = 3 } bn_level;

/* Set this process's rank (for the prefix) and verbosity. */
void bn_log_init(int rank, bn_level level);
/* Current verbosity. */
bn_level bn_log_level(void);
/* Rank used in the prefix (-1 before MPI is up: prefix is then "[bneck]"). */
int bn_log_rank(void);

/* Informational lines, shown at level >= INFO (bn_info) or >= VERBOSE. */
void bn_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bn_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bn_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warnings are shown unless -q. */
void bn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error with its call site and an optional hint (NULL for none). Always shown. */
void bn_error_at(const char *file, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define bn_error(hint, ...) bn_error_at(__FILE__, __LINE__, (hint), __VA_ARGS__)

/* Fatal failures: print with the call site, then MPI_Abort (or exit when MPI
 * is not initialised). Use only where the rank cannot go on. */
void bn_fatal_at(const char *file, int line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));

/* Allocation that aborts the rank with the call site when memory runs out. */
void *bn_malloc_at(size_t n, const char *file, int line);
void *bn_calloc_at(size_t n, size_t size, const char *file, int line);
void *bn_realloc_at(void *p, size_t n, const char *file, int line);
char *bn_strdup_at(const char *s, const char *file, int line);
#define mallocCheck(n) bn_malloc_at((n), __FILE__, __LINE__)
#define callocCheck(n, s) bn_calloc_at((n), (s), __FILE__, __LINE__)
#define reallocCheck(p, n) bn_realloc_at((p), (n), __FILE__, __LINE__)
#define strdupCheck(s) bn_strdup_at((s), __FILE__, __LINE__)

/* MPI calls: a failing call is fatal (a rank that cannot talk cannot go on). */
void bn_mpi_fail(int err, const char *call, const char *file, int line);
#define mpiCheck(call)                                                    \
    do {                                                                  \
        int bn_mpi_err_ = (call);                                         \
        if (bn_mpi_err_ != 0) bn_mpi_fail(bn_mpi_err_, #call, __FILE__, __LINE__); \
    } while (0)

/* Wall-clock seconds (monotonic). */
double bn_now(void);

#endif
