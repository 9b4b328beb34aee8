/* run.c: "bneck run JOB" - run the stages a job file names, in order,
 * through the same entry points as the commands (stages/stages.h). The job
 * file format is in pipeline/job.h and docs/jobs.md. */
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/job.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "stages/stages.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 256 /* --set options accepted */

/* Take the --set options out of argv (in place) into sets. Returns 0, or
 * BN_CLI_USAGE after an error. */
static int take_sets(int *argc, char **argv, const char **sets, int *nsets, int first) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--set")) {
            if (i + 1 >= *argc) {
                if (first) fprintf(stderr, "bneck run: --set needs SECTION.KEY=VALUE\nTry 'bneck run --help'.\n");
                return BN_CLI_USAGE;
            }
            v = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            v = a + 6;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (*nsets == MAX_SETS) {
            if (first) fprintf(stderr, "bneck run: more than %d --set options\n", MAX_SETS);
            return BN_CLI_USAGE;
        }
        sets[(*nsets)++] = v;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* Rank 0 prints the job's errors, one per line. */
static int bad_job(const bn_job *job, int first) {
    if (first) {
        const char *s = job->errors ? job->errors : "";
        for (const char *nl; *s; s = nl + 1) {
            nl = strchr(s, '\n');
            if (!nl) nl = s + strlen(s);
            fprintf(stderr, "bneck run: error: %.*s\n", (int)(nl - s), s);
            if (!*nl) break;
        }
        fprintf(stderr, "  hint: docs/jobs.md lists the sections and keys; 'bneck run --help' the options\n");
    }
    return BN_CLI_USAGE;
}

/* Run one stage; returns its exit status. */
static int run_stage(const bn_job *job, int stage, MPI_Comm comm) {
    switch (stage) {
    case BN_STAGE_EXTRACT:
        return bn_extract_run(&job->extract, comm, NULL);
    case BN_STAGE_TRAIN:
        return bn_train_run(&job->train, comm, NULL);
    case BN_STAGE_CLASSIFY:
        return bn_classify_run(&job->classify, comm, NULL);
    }
    return BN_EXIT_FAIL;
}

int bn_cmd_run(int argc, char **argv) {
    int verbose = 0, quiet = 0, print = 0;
    const char *set_help = NULL;
    const bn_opt opts[] = {
        {"set", 0, BN_OPT_STRING, &set_help, "SECTION.KEY=VALUE", NULL, 0, 0, NULL,
         "override a key of the job file (repeatable), e.g. --set train.steps=100"},
        {"print", 0, BN_OPT_FLAG, &print, NULL, NULL, 0, 0, NULL,
         "print the job with every override applied, and where each value came from; run nothing"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "run", "Run the stages a job file names (extract, train, classify), in order.",
        "mpirun -n R bneck run JOB.ini [--set SECTION.KEY=VALUE]... [options]",
        "A job file is INI: [job] stages, weights, price-per-node-hour; [corpus] images or\n"
        "manifest and the split; [outputs] features, classifier, labels, predictions;\n"
        "[engine] backend, batch, threads, streams, preprocess, dct, max-pixels,\n"
        "precision, calibration, device, ranks-per-gpu, decode-threads; [train] the\n"
        "options of bneck train; [classify] top and another corpus; [shard] index and\n"
        "count. Keys are the commands' option names. Relative paths in the file are\n"
        "relative to the file's folder; those given with --set to the current folder.\n"
        "--set wins over the file, e.g. --set shard.index=$SLURM_ARRAY_TASK_ID.\n"
        "Exit status: 0 done, 1 a stage failed, 2 bad job file or command line, 75 stopped\n"
        "by a signal: rerun the same command to resume. See docs/jobs.md and jobs/*.ini.",
        opts};
    int first = bn_is_first_process();
    char **av = mallocCheck(sizeof(char *) * ((size_t)argc + 1));
    memcpy(av, argv, sizeof(char *) * (size_t)argc);
    av[argc] = NULL;
    int ac = argc, nsets = 0;
    static const char *sets[MAX_SETS];
    int rc = take_sets(&ac, av, sets, &nsets, first);
    const char *pos[1];
    int npos = 0;
    if (!rc) rc = bn_cli_parse(&spec, ac, av, pos, 1, &npos);
    free(av);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (npos != 1) return bn_cli_usage(&spec, "give one job file");
    bn_cli_apply_verbosity(verbose, quiet);

    bn_job job;
    bn_job_read(pos[0], &job);
    for (int i = 0; i < nsets; i++) bn_job_set(&job, sets[i]);
    if (job.nerrors == 0) bn_job_resolve(&job);
    if (job.nerrors) {
        rc = bad_job(&job, first);
        bn_job_free(&job);
        return rc;
    }
    if (quiet) {
        job.extract.quiet = 1;
        job.train.quiet = 1;
        job.classify.quiet = 1;
    }
    if (print) {
        if (first) bn_job_print(&job, stdout);
        bn_job_free(&job);
        return BN_EXIT_OK;
    }
    bn_mpi_need(); /* a bad job file or --print answers without starting MPI */
    int rank = 0, size = 1;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size));
    char names[128] = "";
    for (int i = 0; i < job.nstages; i++) {
        strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, bn_job_stage_name(job.stages[i]), sizeof names - strlen(names) - 1);
    }
    if (rank == 0) {
        bn_info("job %s: %s on %d rank%s", job.path, names, size, size == 1 ? "" : "s");
        if (job.extract.shard_count > 1)
            bn_info("shard %d of %d", job.extract.shard_index, job.extract.shard_count);
        if (job.price_per_node_hour >= 0) bn_info("price per node-hour: %g", job.price_per_node_hour);
    }
    double t0 = bn_now(), stage_s[16] = {0};
    rc = BN_EXIT_OK;
    for (int i = 0; i < job.nstages && rc == BN_EXIT_OK; i++) {
        if (rank == 0) {
            bn_info("== stage %d of %d: %s", i + 1, job.nstages, bn_job_stage_name(job.stages[i]));
            fflush(stdout);
        }
        double ts = bn_now();
        rc = run_stage(&job, job.stages[i], MPI_COMM_WORLD);
        if (i < 16) stage_s[i] = bn_now() - ts;
        fflush(stdout);
        if (rc != BN_EXIT_OK && rank == 0)
            bn_error(rc == BN_EXIT_RESUME ? "rerun the same command to resume" : NULL,
                     "%s: stage '%s' did not finish (exit status %d)%s", job.path, bn_job_stage_name(job.stages[i]), rc,
                     i + 1 < job.nstages ? "; the later stages were not run" : "");
    }
    if (rc == BN_EXIT_OK && rank == 0) {
        char line[512] = "";
        for (int i = 0; i < job.nstages && i < 16; i++)
            snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s %.2f s", i ? ", " : "",
                     bn_job_stage_name(job.stages[i]), stage_s[i]);
        bn_info("job %s done in %.2f s (stages: %s)", job.path, bn_now() - t0, line);
    }
    bn_job_free(&job);
    return rc;
}
