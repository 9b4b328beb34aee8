/* peak.c: the clock and the per-cycle throughput that bench/engine.sh's
 * "share of physical peak" rests on, measured with tight loops.
 *
 * Usage: peak THREADS [SECONDS]   (default 0.3 s of CPU time per loop)
 * Runs THREADS threads at once (all busy, as in a benchmark), each doing:
 *   clock: a chain of dependent 64-bit register adds (1 cycle each on every
 *          x86 core of the last 15 years, never eliminated), so cycles =
 *          adds, and the clock = adds per second of the thread's CPU time
 *          (CPU time, not wall time: on a shared machine a preempted thread
 *          would otherwise read as a slow clock);
 *   fp32:  vfmadd231ps ymm into 12 independent accumulators (8 lanes x
 *          2 flops each), enough to cover the FMA latency on 2 pipes;
 *   int8:  the AVX2 int8 dot product without VNNI on 6 independent chains:
 *          vpmaddubsw (32 u8 x s8 products, pairs summed to s16), vpmaddwd
 *          with ones (pairs to s32), vpaddd: 32 multiply-adds = 64 ops a step.
 * Each loop is one asm statement, so the compiler can neither drop nor
 * reorder it. Per-cycle figures are rates divided by the clock measured in
 * the same thread right after. Prints, averaged over the threads:
 *   clock_mhz M
 *   fp32_flops_per_cycle F
 *   int8_ops_per_cycle I
 * Build: cc -O2 -mavx2 -mfma -pthread peak.c -o peak (x86-64 with AVX2 only).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double secs = 0.3;

/* CPU time of the calling thread: on a shared machine the rates below are
 * per second the thread really ran, which is what the clock is about. */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Each loop is one asm statement (the compiler cannot reorder, spill or drop
 * it), run in chunks until secs of CPU time have passed; returns the units
 * done per CPU second, with units per chunk iteration given. */
#define ZERO_YMM                                                                                     \
    "vpxor %%ymm0, %%ymm0, %%ymm0\n\tvmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm2\n\t"          \
    "vmovdqa %%ymm0, %%ymm3\n\tvmovdqa %%ymm0, %%ymm4\n\tvmovdqa %%ymm0, %%ymm5\n\t"                \
    "vmovdqa %%ymm0, %%ymm6\n\tvmovdqa %%ymm0, %%ymm7\n\tvmovdqa %%ymm0, %%ymm8\n\t"                \
    "vmovdqa %%ymm0, %%ymm9\n\tvmovdqa %%ymm0, %%ymm10\n\tvmovdqa %%ymm0, %%ymm11\n\t"              \
    "vmovdqa %%ymm0, %%ymm12\n\tvmovdqa %%ymm0, %%ymm13\n\tvmovdqa %%ymm0, %%ymm14\n\t"            \
    "vmovdqa %%ymm0, %%ymm15\n\t"
#define YMM_CLOBBERS                                                                                 \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",         \
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* Dependent register adds: 100 per iteration, 1 cycle each. */
static void add_chain(unsigned long n) {
    unsigned long x = 0;
    __asm__ volatile("1:\n\t.rept 100\n\tadd $1, %1\n\t.endr\n\tdec %0\n\tjnz 1b"
                     : "+r"(n), "+r"(x)::"cc");
}
/* vfmadd231ps ymm into 12 accumulators, 10 times: 120 FMAs x 16 flops per iteration. */
static void fma_loop(unsigned long n) {
    __asm__ volatile(ZERO_YMM "1:\n\t.rept 10\n\t"
                     "vfmadd231ps %%ymm0, %%ymm1, %%ymm4\n\tvfmadd231ps %%ymm0, %%ymm1, %%ymm5\n\t"
                     "vfmadd231ps %%ymm0, %%ymm1, %%ymm6\n\tvfmadd231ps %%ymm0, %%ymm1, %%ymm7\n\t"
                     "vfmadd231ps %%ymm0, %%ymm1, %%ymm8\n\tvfmadd231ps %%ymm0, %%ymm1, %%ymm9\n\t"
                     "vfmadd231ps %%ymm0, %%ymm1, %%ymm10\n\tvfmadd231ps %%ymm0, %%ymm1, %%ymm11\n\t"
                     "vfmadd231ps %%ymm0, %%ymm1, %%ymm12\n\tvfmadd231ps %%ymm0, %%ymm1, %%ymm13\n\t"
                     "vfmadd231ps %%ymm0, %%ymm1, %%ymm14\n\tvfmadd231ps %%ymm0, %%ymm1, %%ymm15\n\t"
                     ".endr\n\tdec %0\n\tjnz 1b\n\tvzeroupper"
                     : "+r"(n)::"cc", YMM_CLOBBERS);
}
/* The AVX2 int8 step (vpmaddubsw, vpmaddwd with ones, vpaddd) on 6 chains,
 * 10 times: 60 steps x 32 multiply-adds x 2 ops per iteration. */
#define I8STEP(t, acc)                                                                               \
    "vpmaddubsw %%ymm1, %%ymm0, %%ymm" #t "\n\tvpmaddwd %%ymm2, %%ymm" #t ", %%ymm" #t              \
    "\n\tvpaddd %%ymm" #t ", %%ymm" #acc ", %%ymm" #acc "\n\t"
static void int8_loop(unsigned long n) {
    __asm__ volatile(ZERO_YMM "1:\n\t.rept 10\n\t" I8STEP(4, 10) I8STEP(5, 11) I8STEP(6, 12)
                         I8STEP(7, 13) I8STEP(8, 14) I8STEP(9, 15) ".endr\n\tdec %0\n\tjnz 1b\n\tvzeroupper"
                     : "+r"(n)::"cc", YMM_CLOBBERS);
}

static double rate(void (*loop)(unsigned long), double units_per_iter) {
    const unsigned long chunk = 20000;
    unsigned long n = 0;
    loop(chunk); /* warm-up: wake the vector units */
    double t0 = now(), t;
    do {
        loop(chunk);
        n += chunk;
        t = now() - t0;
    } while (t < secs);
    return n * units_per_iter / t;
}

typedef struct {
    double hz, fp32, int8;
} result;

static void *worker(void *arg) {
    result *r = arg;
    r->hz = rate(add_chain, 100);
    r->fp32 = rate(fma_loop, 120 * 16) / rate(add_chain, 100);
    r->int8 = rate(int8_loop, 60 * 64) / rate(add_chain, 100);
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2) secs = atof(argv[2]);
    if (n < 1 || n > 1024 || !(secs > 0)) {
        fprintf(stderr, "usage: peak THREADS [SECONDS]\n");
        return 2;
    }
    result *r = calloc((size_t)n, sizeof *r);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!r || !th) {
        fprintf(stderr, "peak: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, worker, &r[i]) != 0) {
            fprintf(stderr, "peak: pthread_create failed\n");
            return 1;
        }
    double hz = 0, f = 0, q = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        hz += r[i].hz / n;
        f += r[i].fp32 / n;
        q += r[i].int8 / n;
    }
    printf("clock_mhz %.0f\nfp32_flops_per_cycle %.1f\nint8_ops_per_cycle %.1f\n", hz / 1e6, f, q);
    free(r);
    free(th);
    return 0;
}
