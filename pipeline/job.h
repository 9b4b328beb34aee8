/* job.h: job files for "bneck run" (docs/jobs.md).
 *
 * A job file is INI, read with libinih. Its keys are the command-line option
 * names of the stages (dashes; an underscore is taken as a dash), grouped in
 * sections: [job], [corpus], [outputs], [engine], [train], [classify],
 * [shard]. Reading stores each key's text and where it came from (file:line,
 * or the command line); bn_job_resolve then checks every value and fills the
 * typed configs of the stages (stages/stages.h). Every problem is collected
 * in job->errors as "FILE:LINE: reason" lines.
 */
#ifndef BN_JOB_H
#define BN_JOB_H

#include "stages/stages.h"

#include <stddef.h>
#include <stdio.h>

enum { BN_STAGE_EXTRACT, BN_STAGE_TRAIN, BN_STAGE_CLASSIFY, BN_NSTAGES };
#define BN_JOB_MAX_STAGES 8

typedef struct {
    char *path;           /* the job file as given */
    char *dir;            /* its folder: relative paths in the file are relative to it */
    char **value;         /* per key of the format (job.c): the text, or NULL when not given */
    char **origin;        /* per key: "FILE:LINE" or "--set SECTION.KEY" */
    int *line;            /* per key: line in the file, 0 from the command line */
    char *errors;         /* "origin: reason\n" lines, or NULL */
    int nerrors;
    /* Filled by bn_job_resolve: */
    int stages[BN_JOB_MAX_STAGES];
    int nstages;
    double price_per_node_hour; /* -1: not given */
    const char *device;   /* "auto" | "cpu" | "gpu" (engine.device) */
    bn_extract_cfg extract;
    bn_train_cfg train;
    bn_classify_cfg classify;
    char *strings[64];    /* resolved strings owned by the job */
    int nstrings;
} bn_job;

/* The name of a stage ("extract"). */
const char *bn_job_stage_name(int stage);

/* Read the job file at path into job (zeroed first). Returns the number of
 * errors (job->errors); a file that cannot be opened is one error. */
int bn_job_read(const char *path, bn_job *job);

/* Apply one "SECTION.KEY=VALUE" override from the command line (paths in it
 * are relative to the current folder). Returns 0 or -1 (an error added). */
int bn_job_set(bn_job *job, const char *assignment);

/* Check every value and fill stages and the configs. Returns the number of
 * errors added to job->errors. */
int bn_job_resolve(bn_job *job);

/* The closest of names[0..n) to word (edit distance at most 2, or a third
 * of word's length when longer), or NULL. */
const char *bn_job_suggest(const char *word, const char *const *names, size_t n);

/* Print every key that has a value, with where it came from. */
void bn_job_print(const bn_job *job, FILE *fp);

void bn_job_free(bn_job *job);

#endif
