/* cli.c: see cli.h. */
#include "pipeline/cli.h"
#include "pipeline/mpi.h"
#include "pipeline/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bn_parse_ll(const char *s, long long *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

int bn_parse_double(const char *s, double *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int bn_is_first_process(void) { return bn_launch_rank() == 0; }

int bn_cli_usage(const bn_cmd_spec *spec, const char *fmt, ...) {
    if (!bn_is_first_process()) return BN_CLI_USAGE;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "bneck %s: %s\nTry 'bneck %s --help' for the options.\n", spec->name, buf, spec->name);
    return BN_CLI_USAGE;
}

void bn_cli_help(const bn_cmd_spec *spec) {
    printf("%s\n\n%s\n", spec->usage, spec->summary);
    if (spec->details) printf("\n%s\n", spec->details);
    printf("\nOptions:\n");
    for (const bn_opt *o = spec->opts; o && o->name; o++) {
        char left[96];
        int n;
        if (o->shortname)
            n = snprintf(left, sizeof left, "  -%c, --%s", o->shortname, o->name);
        else
            n = snprintf(left, sizeof left, "      --%s", o->name);
        if (o->type != BN_OPT_FLAG && o->type != BN_OPT_COUNT && n > 0 && (size_t)n < sizeof left)
            snprintf(left + n, sizeof left - (size_t)n, " %s",
                     o->type == BN_OPT_CHOICE ? o->choices : (o->metavar ? o->metavar : "VALUE"));
        printf("%-34s %s", left, o->help);
        if (o->defval) printf(" (default: %s)", o->defval);
        printf("\n");
    }
    printf("  -h, --help                       show this help and exit\n");
}

static const bn_opt *find_long(const bn_cmd_spec *spec, const char *name, size_t len) {
    for (const bn_opt *o = spec->opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

static const bn_opt *find_short(const bn_cmd_spec *spec, char c) {
    for (const bn_opt *o = spec->opts; o && o->name; o++)
        if (o->shortname == c) return o;
    return NULL;
}

static int choice_ok(const char *choices, const char *v) {
    size_t vl = strlen(v);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vl && strncmp(p, v, len) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* Store a value into an option's destination; returns 0 or BN_CLI_USAGE. */
static int set_value(const bn_cmd_spec *spec, const bn_opt *o, const char *v) {
    switch (o->type) {
    case BN_OPT_INT: {
        long long x;
        if (bn_parse_ll(v, &x))
            return bn_cli_usage(spec, "--%s expects an integer, got '%s'", o->name, v);
        if ((double)x < o->min || (double)x > o->max)
            return bn_cli_usage(spec, "--%s must be between %.0f and %.0f, got %lld", o->name, o->min, o->max, x);
        *(long long *)o->dest = x;
        return 0;
    }
    case BN_OPT_DOUBLE: {
        double x;
        if (bn_parse_double(v, &x))
            return bn_cli_usage(spec, "--%s expects a number, got '%s'", o->name, v);
        if (x < o->min || x > o->max)
            return bn_cli_usage(spec, "--%s must be between %g and %g, got %g", o->name, o->min, o->max, x);
        *(double *)o->dest = x;
        return 0;
    }
    case BN_OPT_STRING:
        if (!*v) return bn_cli_usage(spec, "--%s expects a value, got an empty string", o->name);
        *(const char **)o->dest = v;
        return 0;
    case BN_OPT_CHOICE:
        if (!choice_ok(o->choices, v))
            return bn_cli_usage(spec, "--%s must be one of %s, got '%s'", o->name, o->choices, v);
        *(const char **)o->dest = v;
        return 0;
    default:
        return 0;
    }
}

int bn_cli_parse(const bn_cmd_spec *spec, int argc, char **argv,
                 const char **pos, int maxpos, int *npos) {
    *npos = 0;
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= maxpos)
                return bn_cli_usage(spec, "unexpected argument '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) { only_pos = 1; continue; }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            if (bn_is_first_process()) bn_cli_help(spec);
            return -1;
        }
        const bn_opt *o = NULL;
        const char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(spec, name, len);
            if (!o) return bn_cli_usage(spec, "unknown option '--%.*s'", (int)len, name);
            if (eq) inline_val = eq + 1;
        } else {
            /* Short options: "-v", "-vv", "-n 5", "-n5". */
            for (const char *c = a + 1; *c; c++) {
                o = find_short(spec, *c);
                if (!o) return bn_cli_usage(spec, "unknown option '-%c'", *c);
                if (o->type == BN_OPT_FLAG) { *(int *)o->dest = 1; o = NULL; continue; }
                if (o->type == BN_OPT_COUNT) { (*(int *)o->dest)++; o = NULL; continue; }
                if (c[1]) inline_val = c + 1;
                break;
            }
            if (!o) continue;
        }
        if (o->type == BN_OPT_FLAG || o->type == BN_OPT_COUNT) {
            if (inline_val) return bn_cli_usage(spec, "option '--%s' takes no value", o->name);
            if (o->type == BN_OPT_FLAG) *(int *)o->dest = 1; else (*(int *)o->dest)++;
            continue;
        }
        const char *v = inline_val;
        if (!v) {
            if (i + 1 >= argc) return bn_cli_usage(spec, "option '--%s' needs a value", o->name);
            v = argv[++i];
        }
        int rc = set_value(spec, o, v);
        if (rc) return rc;
    }
    return 0;
}

void bn_cli_apply_verbosity(int verbose, int quiet) {
    bn_level l = quiet ? BN_QUIET : verbose >= 2 ? BN_DEBUG : verbose == 1 ? BN_VERBOSE : BN_INFO;
    bn_log_init(bn_log_rank(), l);
}
