/* retrain.c: "bneck retrain" - retrain.py's whole workflow in one command,
 * with its flag names: extract the bottlenecks of --image_dir into a features
 * file under --bottleneck_dir (resumed when it exists, as retrain.py reuses
 * its cache), then train the final layer on them.
 *
 * retrain.py flags that make no sense here are accepted with a note when they
 * cannot change the result (TensorBoard summaries, TensorFlow file names), and
 * refused with a reason when they would (image distortions, other models).
 */
#include "config.h"

#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "stages/stages.h"

#include <errno.h>
#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How a retrain.py flag that bneck does not take is handled. */
typedef enum {
    FLAG_IGNORED,     /* accepted; it cannot change the classifier (a note says so) */
    FLAG_DEFAULT_ONLY /* accepted only at its no-op value (distortions at 0/False) */
} flag_kind;

static const struct {
    const char *name;    /* retrain.py's flag, without "--" */
    int takes_value;     /* 1: a value follows (or =value); 0: a boolean switch */
    flag_kind kind;      /* what bneck does with it */
    const char *noop;    /* for FLAG_DEFAULT_ONLY: values that change nothing, '|'-separated */
    const char *why;     /* the note or the reason */
} foreign[] = {
    {"summaries_dir", 1, FLAG_IGNORED, NULL, "TensorBoard summaries are not written; the metric history is in the classifier file"},
    {"model_dir", 1, FLAG_IGNORED, NULL, "bneck reads the network from --weights (a Keras Inception v3 .h5)"},
    {"final_tensor_name", 1, FLAG_IGNORED, NULL, "there is no TensorFlow graph; the classifier file has fixed dataset names"},
    {"intermediate_store_frequency", 1, FLAG_IGNORED, NULL, "no intermediate graphs are written"},
    {"intermediate_output_graphs_dir", 1, FLAG_IGNORED, NULL, "no intermediate graphs are written"},
    {"saved_model_dir", 1, FLAG_IGNORED, NULL, "there is no TensorFlow SavedModel; use the classifier file with bneck classify"},
    {"checkpoint_path", 1, FLAG_IGNORED, NULL, "there are no checkpoints; training takes seconds"},
    {"logging_verbosity", 1, FLAG_IGNORED, NULL, "use -v or -q"},
    {"flip_left_right", 0, FLAG_DEFAULT_ONLY, "false|False|0", "image distortions are not supported: bneck computes each bottleneck once"},
    {"random_crop", 1, FLAG_DEFAULT_ONLY, "0|0.0", "image distortions are not supported: bneck computes each bottleneck once"},
    {"random_scale", 1, FLAG_DEFAULT_ONLY, "0|0.0", "image distortions are not supported: bneck computes each bottleneck once"},
    {"random_brightness", 1, FLAG_DEFAULT_ONLY, "0|0.0", "image distortions are not supported: bneck computes each bottleneck once"},
    {"architecture", 1, FLAG_DEFAULT_ONLY, "inception_v3", "bneck runs Inception v3 only"},
    {"tfhub_module", 1, FLAG_DEFAULT_ONLY, "*inception_v3*", "bneck runs Inception v3 (from a Keras weights file, --weights), not other TF Hub modules"},
};
#define NFOREIGN (sizeof foreign / sizeof foreign[0])

/* Is v one of the '|'-separated values in list? A value "*text*" matches
 * any v containing text. */
static int one_of(const char *v, const char *list) {
    size_t n = strlen(v);
    for (const char *p = list;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len >= 2 && p[0] == '*' && p[len - 1] == '*') {
            char part[128];
            snprintf(part, sizeof part, "%.*s", (int)(len - 2), p + 1);
            if (strstr(v, part)) return 1;
        } else if (len == n && strncmp(p, v, n) == 0)
            return 1;
        if (!bar) return 0;
        p = bar + 1;
    }
}

/* Remove the foreign flags from argv (in place), printing a note for each
 * ignored one. Returns 0, or BN_CLI_USAGE after an error for a flag that
 * would change the result. */
static int strip_foreign(int *argc, char **argv, int first) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        size_t k = NFOREIGN;
        const char *value = NULL;
        int consumed = 0;
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            for (size_t j = 0; j < NFOREIGN; j++)
                if (strlen(foreign[j].name) == len && !strncmp(foreign[j].name, name, len)) k = j;
            if (k < NFOREIGN) {
                if (eq)
                    value = eq + 1;
                else if (foreign[k].takes_value && i + 1 < *argc) {
                    value = argv[i + 1];
                    consumed = 1;
                } else if (foreign[k].takes_value) {
                    if (first) fprintf(stderr, "bneck retrain: --%s needs a value\n", foreign[k].name);
                    return BN_CLI_USAGE;
                } else
                    value = "True";
            }
        }
        if (k == NFOREIGN) {
            argv[out++] = argv[i];
            continue;
        }
        if (foreign[k].kind == FLAG_DEFAULT_ONLY && !one_of(value, foreign[k].noop)) {
            if (first)
                fprintf(stderr, "bneck retrain: --%s=%s is not supported: %s.\nTry 'bneck retrain --help'.\n",
                        foreign[k].name, value, foreign[k].why);
            return BN_CLI_USAGE;
        }
        if (first && foreign[k].kind == FLAG_IGNORED)
            fprintf(stderr, "bneck retrain: note: --%s is accepted and ignored: %s\n", foreign[k].name, foreign[k].why);
        i += consumed;
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

/* Rank 0 makes dir (and its parents); every rank learns the outcome. */
static int make_dir(const char *dir, MPI_Comm comm) {
    int rank = 0, ok = 1;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    if (rank == 0) {
        char *p = strdupCheck(dir);
        for (char *s = p[0] ? p + 1 : p;; s++) {
            char c = *s;
            if (c == '/' || c == 0) {
                *s = 0;
                if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                    bn_error("give a --bottleneck_dir you can write to", "%s: cannot create the folder (%s)", p,
                             strerror(errno));
                    ok = 0;
                    break;
                }
                *s = c;
            }
            if (c == 0) break;
        }
        free(p);
    }
    mpiCheck(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
    return ok ? 0 : -1;
}

/* The features file of a bottleneck folder (malloc'd). */
static char *features_in(const char *dir) {
    size_t flen = strlen(dir) + 16;
    char *features = mallocCheck(flen);
    snprintf(features, flen, "%s/features.h5", dir);
    return features;
}

int bn_retrain_run(const bn_retrain_cfg *cfg, MPI_Comm comm) {
    int rank = 0;
    mpiCheck(MPI_Comm_rank(comm, &rank));
    if (make_dir(cfg->bottleneck_dir, comm)) return BN_EXIT_FAIL;
    char *features = features_in(cfg->bottleneck_dir);
    /* 1. The bottlenecks. */
    bn_extract_cfg ex = cfg->extract;
    ex.out = features;
    int rc = bn_extract_run(&ex, comm, NULL);
    if (rc != BN_EXIT_OK) {
        if (rank == 0 && rc != BN_CLI_USAGE)
            fprintf(stderr, "bneck retrain: extraction did not finish (exit status %d); rerun the same command to resume it\n", rc);
        free(features);
        return rc;
    }
    /* 2. The final layer. */
    bn_train_cfg tr = cfg->train;
    tr.features = features;
    if (rank == 0 && !tr.quiet) printf("\n");
    rc = bn_train_run(&tr, comm, NULL);
    free(features);
    return rc;
}

int bn_cmd_retrain(int argc, char **argv) {
    bn_retrain_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    bn_extract_cfg_init(&cfg.extract);
    bn_train_cfg_init(&cfg.train);
    bn_extract_cfg *ex = &cfg.extract;
    bn_train_cfg *tr = &cfg.train;
    double price = NAN; /* --price-per-node-hour: both stages record their cost with it */
    cfg.bottleneck_dir = "/tmp/bottleneck";
    tr->out = "/tmp/output_classifier.h5";
    tr->labels = "/tmp/output_labels.txt";
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"image_dir", 0, BN_OPT_STRING, &ex->images, "DIR", NULL, 0, 0, NULL, "folder of class folders of images; required"},
        {"weights", 'w', BN_OPT_STRING, &ex->weights, "FILE", NULL, 0, 0, NULL, "Keras Inception v3 weights (.h5); required (bneck's addition)"},
        {"bottleneck_dir", 0, BN_OPT_STRING, &cfg.bottleneck_dir, "DIR", "/tmp/bottleneck", 0, 0, NULL,
         "where the features file (features.h5) lives; reused and resumed on the next run"},
        {"output_graph", 0, BN_OPT_STRING, &tr->out, "FILE", "/tmp/output_classifier.h5", 0, 0, NULL,
         "the trained classifier (a bneck classifier HDF5 file, not a TensorFlow graph)"},
        {"output_labels", 0, BN_OPT_STRING, &tr->labels, "FILE", "/tmp/output_labels.txt", 0, 0, NULL, "class names, one per line"},
        {"how_many_training_steps", 0, BN_OPT_INT, &tr->steps, "N", "4000", 1, 1e12, NULL, "training steps"},
        {"learning_rate", 0, BN_OPT_DOUBLE, &tr->learning_rate, "X", "0.01", 0, 1e6, NULL, "gradient descent step size"},
        {"testing_percentage", 0, BN_OPT_DOUBLE, &ex->testing_pct, "PCT", "10", 0, 100, NULL, "share of images for testing"},
        {"validation_percentage", 0, BN_OPT_DOUBLE, &ex->validation_pct, "PCT", "10", 0, 100, NULL, "share of images for validation"},
        {"eval_step_interval", 0, BN_OPT_INT, &tr->eval_interval, "N", "10", 1, 1e12, NULL, "evaluate every N steps"},
        {"train_batch_size", 0, BN_OPT_INT, &tr->batch, "N", "100", 1, 1 << 24, NULL, "images per training step"},
        {"test_batch_size", 0, BN_OPT_INT, &tr->test_batch, "N", "-1", -1, 1e12, NULL, "test images; -1: the whole test set"},
        {"validation_batch_size", 0, BN_OPT_INT, &tr->validation_batch, "N", "100", -1, 1e12, NULL, "validation images per evaluation; -1: all"},
        {"print_misclassified_test_images", 0, BN_OPT_FLAG, &tr->print_misclassified, NULL, NULL, 0, 0, NULL, "list the misclassified test images"},
        {"seed", 0, BN_OPT_INT, &tr->seed, "N", "0", 0, 9.2e18, NULL, "random seed of training (bneck's addition)"},
        BN_OPTS_ENGINE(&ex->eng, "8", "keras"),
        {"decode-threads", 0, BN_OPT_INT, &ex->decode_threads, "N", "cores the engines leave, at least 1", 0, 256, NULL,
         "threads per rank that decode the next unit while the network runs (as bneck extract)"},
        BN_OPT_PRICE(&price),
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "retrain", "retrain.py's workflow in one command: extract the bottlenecks, then train the final layer.",
        "mpirun -n R bneck retrain --image_dir DIR --weights W.h5 [retrain.py flags]",
        "Takes retrain.py's flag names, so an old command line works after replacing\n"
        "'python retrain.py' with 'mpirun bneck retrain' and adding --weights. The\n"
        "features file (bottleneck_dir/features.h5) is resumed if a run was cut short and\n"
        "reused as it stands by the next run on the same images and percentages.\n"
        "Flags that cannot change the result (--summaries_dir, --model_dir, ...) are\n"
        "accepted with a note; distortions (--flip_left_right, --random_crop,\n"
        "--random_scale, --random_brightness) and other architectures are refused.\n"
        "The engine options (--backend ... --max-pixels) are those of bneck extract.\n"
        "Single-step equivalents: bneck extract, then bneck train (docs/train.md).",
        opts};
    int first = bn_is_first_process();
    char **av = mallocCheck(sizeof(char *) * ((size_t)argc + 1));
    memcpy(av, argv, sizeof(char *) * (size_t)argc);
    av[argc] = NULL;
    int ac = argc;
    int rc = strip_foreign(&ac, av, first);
    if (rc) {
        free(av);
        return rc;
    }
    const char *pos[1];
    int npos = 0;
    rc = bn_cli_parse(&spec, ac, av, pos, 0, &npos);
    free(av);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!ex->images) return bn_cli_usage(&spec, "--image_dir DIR is required");
    if (!ex->weights) return bn_cli_usage(&spec, "--weights FILE is required (a Keras Inception v3 .h5; bneck mkweights makes a random one)");
    if (ex->validation_pct + ex->testing_pct > 100)
        return bn_cli_usage(&spec, "--validation_percentage plus --testing_percentage is over 100");
    if (tr->validation_batch == 0 || tr->test_batch == 0)
        return bn_cli_usage(&spec, "--validation_batch_size and --test_batch_size must be -1 (all) or at least 1");
    if (!(tr->learning_rate > 0)) return bn_cli_usage(&spec, "--learning_rate must be above 0");
    if (!cfg.bottleneck_dir[0]) return bn_cli_usage(&spec, "--bottleneck_dir must not be empty");
    if (!tr->out[0] || !tr->labels[0]) return bn_cli_usage(&spec, "--output_graph and --output_labels must not be empty");
    bn_engine_setup es;
    char err[512];
    if (bn_engine_opts_check(&ex->eng, &es, err, sizeof err)) return bn_cli_usage(&spec, "%s", err);
    ex->price = tr->price = price;
    char *features = features_in(cfg.bottleneck_dir);
    tr->features = features;
    rc = bn_train_cfg_check(tr, err, sizeof err);
    tr->features = NULL;
    free(features);
    if (rc) return bn_cli_usage(&spec, "%s", err);
    bn_cli_apply_verbosity(verbose, quiet);
    ex->quiet = quiet;
    tr->quiet = quiet;
    return bn_retrain_run(&cfg, MPI_COMM_WORLD);
}
