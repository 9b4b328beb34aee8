/* main.c: "bneck <command> [options]" - dispatch to the commands. */
#include "config.h"
#include "pipeline/buildinfo.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The command table: name, entry point, one-line summary. */
static const struct {
    const char *name;                 /* as typed */
    int (*run)(int argc, char **argv);/* entry point */
    int mpi;                          /* 1: main starts MPI before the call; 0: the command starts it if it needs it */
    const char *summary;              /* for "bneck --help" */
} commands[] = {
    {"extract", bn_cmd_extract, 0, "the main job: features of a whole corpus into one shared HDF5 file, across MPI ranks"},
    {"train", bn_cmd_train, 1, "retrain the final layer on a features file (allreduce SGD, retrain.py's defaults)"},
    {"classify", bn_cmd_classify, 0, "label new images with a trained classifier: top 5 per image, or a CSV for a corpus"},
    {"retrain", bn_cmd_retrain, 1, "the whole workflow in one command, with retrain.py's flag names: extract, then train"},
    {"join", bn_cmd_join, 0, "merge the shard files of a job array (extract --shard K/N) into one features file"},
    {"corpus", bn_cmd_corpus, 0, "scan a corpus: classes, counts, split sizes, rejected files; --decode checks every image"},
    {"mkcorpus", bn_cmd_mkcorpus, 0, "write a synthetic labelled JPEG/PNG corpus for demos and tests"},
    {"mkweights", bn_cmd_mkweights, 0, "write a random Inception v3 weights file (Keras layout) for demos and tests"},
    {"mkfeatures", bn_cmd_mkfeatures, 0, "write a synthetic features file (training tests and benchmarks at any size)"},
    {"features", bn_cmd_features, 0, "print or save the 2048-wide bottleneck of some images"},
    {"benchmark", bn_cmd_benchmark, 0, "measure the engine: images/s, GFLOP/s, memory"},
    {"cost", bn_cmd_cost, 0, "compare machines by time and cost for a corpus, from bneck benchmark --json files"},
    {"calibrate", bn_cmd_calibrate, 0, "measure the activation scales --precision int8 needs, on a few images of a corpus"},
    {"report", bn_cmd_report, 1, "what the runs in features and classifier files did and cost: tables, figures, an HTML page"},
    {"run", bn_cmd_run, 0, "run the stages a job file names (extract, train, classify), with overrides"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "Usage: bneck <command> [options]\n"
            "       mpirun -n R bneck <command> [options]\n\n"
            "Inception v3 bottleneck features for large image corpora, and retraining\n"
            "of the final layer on them, across MPI ranks.\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nGlobal options:\n"
            "  -h, --help        show this help\n"
            "  --version         print the version\n"
            "  --build-info      print the libraries this binary was built with\n\n"
            "'bneck <command> --help' lists the options of a command with their defaults.\n");
}

/* 1 when the command line asks for --help (then no MPI is needed). */
static int wants_help(int argc, char **argv) {
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        if (bn_is_first_process()) usage(stderr);
        return BN_CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (bn_is_first_process()) usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        if (bn_is_first_process()) printf("bneck %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "--build-info")) {
        if (bn_is_first_process()) bn_build_info(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        bn_log_init(bn_launch_rank(), BN_INFO);
        if (commands[i].mpi && !wants_help(argc, argv)) bn_mpi_need();
        int rc = commands[i].run(argc - 1, argv + 1);
        fflush(stdout);
        /* A usage error is found by every process of a launch, but only the
         * first prints it; the others give it a moment first, so that a
         * launcher that stops the job at the first failing process does not
         * cut the message off. */
        if (rc == BN_CLI_USAGE && !bn_is_first_process()) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
        bn_mpi_end();
        return rc;
    }
    if (bn_is_first_process())
        fprintf(stderr, "bneck: unknown command '%s'\nTry 'bneck --help' for the list of commands.\n", cmd);
    return BN_CLI_USAGE;
}
