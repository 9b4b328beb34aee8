/* testutil.h: minimal assertions for the C unit tests. Each failed CHECK
 * prints its location and message; t_done() returns the exit status. */
#ifndef BN_TESTUTIL_H
#define BN_TESTUTIL_H
#include <stdio.h>

static int t_failures = 0; /* failed checks so far */
static int t_checks = 0;   /* checks run so far */

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        t_checks++;                                                        \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: (%s) ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            t_failures++;                                                  \
        }                                                                  \
    } while (0)

static inline int t_done(const char *name) {
    printf("%s: %d checks, %d failed\n", name, t_checks, t_failures);
    return t_failures ? 1 : 0;
}
#endif
