/* test_cli_parse.c: the strict option parser shared by every command. */
#include "pipeline/cli.h"
#include "tests/testutil.h"

#include <string.h>

static long long steps;
static double lr;
static const char *name, *mode;
static int flag, verbose, quiet;

static const bn_opt opts[] = {
    {"steps", 's', BN_OPT_INT, &steps, "N", "4000", 1, 1000000, NULL, "steps"},
    {"learning-rate", 0, BN_OPT_DOUBLE, &lr, "X", "0.01", 0, 10, NULL, "rate"},
    {"name", 0, BN_OPT_STRING, &name, "S", NULL, 0, 0, NULL, "a name"},
    {"mode", 0, BN_OPT_CHOICE, &mode, NULL, "a", 0, 0, "a|bb|c", "a mode"},
    {"flag", 'f', BN_OPT_FLAG, &flag, NULL, NULL, 0, 0, NULL, "a flag"},
    BN_OPTS_VERBOSITY(&verbose, &quiet),
    {0},
};
static const bn_cmd_spec spec = {"t", "test", "bneck t [options]", NULL, opts};

/* Parse a NULL-terminated argument list; returns the parser's result. */
static int parse(const char **args, int *npos, const char **pos) {
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"t";
    for (; *args; args++) argv[argc++] = (char *)*args;
    steps = 4000; lr = 0.01; name = NULL; mode = "a"; flag = verbose = quiet = 0;
    return bn_cli_parse(&spec, argc, argv, pos, 4, npos);
}

int main(void) {
    const char *pos[4];
    int np;
    { const char *a[] = {"--steps", "10", "--learning-rate=0.5", "x", "--mode", "bb", "-f", "-vv", NULL};
      CHECK(parse(a, &np, pos) == 0, "good line");
      CHECK(steps == 10 && lr == 0.5 && !strcmp(mode, "bb") && flag == 1 && verbose == 2, "values");
      CHECK(np == 1 && !strcmp(pos[0], "x"), "positional"); }
    { const char *a[] = {"-s5", NULL};
      CHECK(parse(a, &np, pos) == 0 && steps == 5, "short with attached value"); }
    { const char *a[] = {"--", "--steps", NULL};
      CHECK(parse(a, &np, pos) == 0 && np == 1 && !strcmp(pos[0], "--steps"), "-- ends options"); }
    /* Every one of these is a usage error (exit status 2). */
    const char *bad[][3] = {
        {"--steps", "10x", NULL}, {"--steps", "", NULL}, {"--steps", "1e3", NULL}, {"--steps", "0", NULL},
        {"--steps", "99999999999999999999", NULL}, {"--steps", NULL, NULL}, {"--learning-rate", "nan", NULL},
        {"--learning-rate", "inf", NULL}, {"--learning-rate", "0.1.2", NULL}, {"--learning-rate", "-1", NULL},
        {"--mode", "b", NULL}, {"--bogus", NULL, NULL}, {"-z", NULL, NULL}, {"--flag=1", NULL, NULL},
        {"--name", "", NULL}, {"a", "b", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *pos1[1];
        char *argv[4] = {(char *)"t"};
        int argc = 1;
        for (int k = 0; k < 2 && bad[i][k]; k++) argv[argc++] = (char *)bad[i][k];
        int rc = bn_cli_parse(&spec, argc, argv, pos1, i == 15 ? 1 : 0, &np);
        CHECK(rc == BN_CLI_USAGE, "case %zu (%s %s) should be a usage error, got %d", i, bad[i][0],
              bad[i][1] ? bad[i][1] : "", rc);
    }
    { const char *a[] = {"--help", NULL};
      CHECK(parse(a, &np, pos) == -1, "--help returns -1"); }
    long long v;
    double d;
    CHECK(bn_parse_ll("42", &v) == 0 && v == 42, "ll 42");
    CHECK(bn_parse_ll(" 42", &v) != 0, "leading space rejected");
    CHECK(bn_parse_ll("42 ", &v) != 0, "trailing space rejected");
    CHECK(bn_parse_double("1e-3", &d) == 0 && d == 1e-3, "double 1e-3");
    CHECK(bn_parse_double("0x", &d) != 0, "0x rejected");
    return t_done("test_cli_parse");
}
