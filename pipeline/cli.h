/* cli.h: table-driven, strict command-line parsing shared by every command.
 *
 * A command describes its options as a table of bn_opt. The parser accepts
 * "--name value", "--name=value" and "-x value"; numbers must parse in full
 * ("10x" is an error); an unknown option or a bad value prints an error that
 * names the option and returns BN_CLI_USAGE (exit status 2).
 */
#ifndef BN_CLI_H
#define BN_CLI_H

#include <stddef.h>

/* Exit statuses shared by every command. */
enum {
    BN_EXIT_OK = 0,        /* success */
    BN_EXIT_FAIL = 1,      /* the run failed (bad input files, I/O, ...) */
    BN_CLI_USAGE = 2,      /* bad command line */
    BN_EXIT_RESUME = 75,   /* stopped before the end (a signal): rerun the same command to resume (EX_TEMPFAIL) */
};

typedef enum {
    BN_OPT_FLAG,   /* no value; sets *(int *)dest = 1 */
    BN_OPT_INT,    /* long long within [min, max] */
    BN_OPT_DOUBLE, /* finite double within [min, max] */
    BN_OPT_STRING, /* const char *, points into argv */
    BN_OPT_CHOICE, /* const char * that must be one of choices ("a|b|c") */
    BN_OPT_COUNT,  /* no value; increments *(int *)dest (e.g. -v -v) */
} bn_opt_type;

typedef struct {
    const char *name;    /* long name without "--" */
    char shortname;      /* one-letter alias, or 0 */
    bn_opt_type type;    /* how to parse the value */
    void *dest;          /* int*, long long*, double* or const char** by type */
    const char *metavar; /* value placeholder shown in --help ("N", "DIR") */
    const char *defval;  /* default as shown in --help, NULL for none */
    double min, max;     /* accepted range for INT and DOUBLE */
    const char *choices; /* for CHOICE: "a|b|c" */
    const char *help;    /* one-line description */
} bn_opt;

/* A command: its name, a one-line summary, usage text and option table. */
typedef struct {
    const char *name;       /* "corpus" */
    const char *summary;    /* one line for "bneck --help" */
    const char *usage;      /* "bneck corpus (--images DIR | --manifest FILE) [options]" */
    const char *details;    /* extra paragraph for "--help", or NULL */
    const bn_opt *opts;     /* table, terminated by an entry with name == NULL */
} bn_cmd_spec;

/* Parse argv[1..argc-1] (argv[0] is the command name) against spec.
 * Positional arguments are stored in pos[0..*npos-1] (at most maxpos).
 * Returns 0 on success, BN_CLI_USAGE after printing an error, or -1 when
 * --help was given and printed (the caller then exits 0). */
int bn_cli_parse(const bn_cmd_spec *spec, int argc, char **argv,
                 const char **pos, int maxpos, int *npos);

/* Print the --help text of a command to stdout. */
void bn_cli_help(const bn_cmd_spec *spec);

/* Print a usage error for a command ("bneck CMD: MSG") and a pointer to --help.
 * Returns BN_CLI_USAGE for use in "return bn_cli_usage(...)". */
int bn_cli_usage(const bn_cmd_spec *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The verbosity options every command takes; dest are int counters/flags. */
#define BN_OPTS_VERBOSITY(verbose_ptr, quiet_ptr)                                          \
    {"verbose", 'v', BN_OPT_COUNT, (verbose_ptr), NULL, NULL, 0, 0, NULL,                  \
     "more detail; repeat for debug output"},                                              \
    {"quiet", 'q', BN_OPT_FLAG, (quiet_ptr), NULL, NULL, 0, 0, NULL,                       \
     "print only errors and the final result"}

/* The price option of every command that records a run's cost
 * (io/runrec.h); dest is a double that starts as NAN (no price). */
#define BN_OPT_PRICE(price_ptr)                                                             \
    {"price-per-node-hour", 0, BN_OPT_DOUBLE, (price_ptr), "P", NULL, 0, 1e9, NULL,         \
     "what one node costs per hour (any currency): the run records its cost"}

/* Apply -v/-q counts to the logger (keeps the rank set by main). */
void bn_cli_apply_verbosity(int verbose, int quiet);

/* Strict number parsing: the whole string must be a number. 0 on success. */
int bn_parse_ll(const char *s, long long *out);
int bn_parse_double(const char *s, double *out);

/* True when this process should print user-facing text once per job: it is
 * rank 0 of an MPI launch, or not launched by mpirun/srun at all. Works
 * before MPI_Init, from the launcher's environment variables. */
int bn_is_first_process(void);

#endif
