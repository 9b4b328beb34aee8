/* progress.h: the progress line of long runs, printed by rank 0.
 * On a terminal it is rewritten in place about once a second; in a batch log
 * (not a TTY) a plain line is printed every 5% or 30 s. */
#ifndef BN_PROGRESS_H
#define BN_PROGRESS_H

typedef struct {
    int mode;            /* 0 none, 1 in place (tty), 2 plain lines (log) */
    long long total;     /* images in the corpus */
    long long before;    /* images already done when the run started */
    double t0;           /* start of the run */
    double last_check;   /* last time bn_progress_due said yes */
    double last_print;   /* last time a line was printed */
    long long last_done; /* images done at the last printed line */
    int printed;         /* an in-place line is on screen */
} bn_progress;

/* mode: "auto" (tty if stderr is a terminal, else log), "tty", "log", "none". */
void bn_progress_init(bn_progress *p, const char *mode, long long total, long long done_before);
/* Cheap: true at most about once a second, when a fresh count is worth fetching. */
int bn_progress_due(bn_progress *p);
/* Report images done and failed in this run; prints when a line is due. */
void bn_progress_update(bn_progress *p, long long done, long long failed);
/* Final line (or end the in-place line). */
void bn_progress_finish(bn_progress *p, long long done, long long failed);

#endif
