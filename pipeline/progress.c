/* progress.c: see progress.h. */
#include "pipeline/progress.h"
#include "pipeline/log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void bn_progress_init(bn_progress *p, const char *mode, long long total, long long done_before) {
    memset(p, 0, sizeof *p);
    p->total = total;
    p->before = done_before;
    p->t0 = p->last_check = p->last_print = bn_now();
    if (!strcmp(mode, "tty")) p->mode = 1;
    else if (!strcmp(mode, "log")) p->mode = 2;
    else if (!strcmp(mode, "auto")) p->mode = isatty(STDERR_FILENO) ? 1 : 2;
    else p->mode = 0;
}

int bn_progress_due(bn_progress *p) {
    if (!p->mode) return 0;
    double now = bn_now();
    if (now - p->last_check < 1.0) return 0;
    p->last_check = now;
    return 1;
}

static void fmt_eta(double s, char *buf, size_t len) {
    if (s < 0 || s > 1e8) { snprintf(buf, len, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, len, "%lds", t);
}

static void line(bn_progress *p, long long done, long long failed, int final) {
    double el = bn_now() - p->t0;
    long long have = p->before + done + failed;
    double rate = el > 0 ? (double)(done + failed) / el : 0.0;
    char eta[32];
    fmt_eta(rate > 0 ? (double)(p->total - have) / rate : -1, eta, sizeof eta);
    double pct = p->total ? 100.0 * (double)have / (double)p->total : 100.0;
    char text[256];
    snprintf(text, sizeof text, "progress: %lld/%lld images (%.1f%%), %.1f images/s, ETA %s, %lld failed", have,
             p->total, pct, rate, final ? "0s" : eta, failed);
    if (p->mode == 1) {
        fprintf(stderr, "\r%s\033[K%s", text, final ? "\n" : "");
        p->printed = !final;
    } else {
        fprintf(stderr, "%s\n", text);
    }
    fflush(stderr);
    p->last_print = bn_now();
    p->last_done = have;
}

void bn_progress_update(bn_progress *p, long long done, long long failed) {
    if (!p->mode) return;
    if (p->mode == 1) {
        line(p, done, failed, 0);
        return;
    }
    long long have = p->before + done + failed;
    double step = p->total / 20.0; /* 5% */
    if ((double)(have - p->last_done) >= step || bn_now() - p->last_print >= 30.0) line(p, done, failed, 0);
}

void bn_progress_finish(bn_progress *p, long long done, long long failed) {
    if (!p->mode) return;
    if (p->mode == 2 && p->last_done == p->before + done + failed && p->last_done == p->total) return; /* already said */
    line(p, done, failed, 1);
}
