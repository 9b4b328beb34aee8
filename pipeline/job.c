/* job.c: reading, overriding and checking job files (pipeline/job.h). */
#include "pipeline/job.h"

#include "pipeline/cli.h"
#include "pipeline/log.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_STRING, K_PATH, K_INT, K_DOUBLE, K_CHOICE, K_BOOL, K_STAGES } ktype;

/* The format: every section and key, its type and range. */
static const struct {
    const char *section, *key;
    ktype type;
    double min, max;      /* K_INT, K_DOUBLE */
    const char *choices;  /* K_CHOICE: "a|b" (NULL: the built-in backends) */
} keys[] = {
    {"job", "stages", K_STAGES, 0, 0, NULL},
    {"job", "weights", K_PATH, 0, 0, NULL},
    {"job", "price-per-node-hour", K_DOUBLE, 0, 1e9, NULL},
    {"job", "progress", K_CHOICE, 0, 0, "auto|tty|log|none"},
    {"corpus", "images", K_PATH, 0, 0, NULL},
    {"corpus", "manifest", K_PATH, 0, 0, NULL},
    {"corpus", "validation-percentage", K_DOUBLE, 0, 100, NULL},
    {"corpus", "testing-percentage", K_DOUBLE, 0, 100, NULL},
    {"outputs", "features", K_PATH, 0, 0, NULL},
    {"outputs", "classifier", K_PATH, 0, 0, NULL},
    {"outputs", "labels", K_PATH, 0, 0, NULL},
    {"outputs", "predictions", K_PATH, 0, 0, NULL},
    {"engine", "backend", K_CHOICE, 0, 0, NULL},
    {"engine", "device", K_CHOICE, 0, 0, "auto|cpu|gpu"},
    {"engine", "ranks-per-gpu", K_INT, 1, 4096, NULL},
    {"engine", "decode-threads", K_INT, 0, 256, NULL},
    {"engine", "decoder", K_CHOICE, 0, 0, "cpu|nvjpeg"},
    {"outputs", "feature-dtype", K_CHOICE, 0, 0, "float32|float16"},
    {"engine", "batch", K_INT, 1, 4096, NULL},
    {"engine", "threads", K_INT, 0, 4096, NULL},
    {"engine", "streams", K_INT, 0, 4096, NULL},
    {"engine", "preprocess", K_CHOICE, 0, 0, "keras|tf2015"},
    {"engine", "dct", K_CHOICE, 0, 0, "accurate|fast"},
    {"engine", "max-pixels", K_INT, 1, 1e15, NULL},
    {"engine", "precision", K_CHOICE, 0, 0, "fp32|bf16|int8|tf32|fp16"},
    {"engine", "calibration", K_PATH, 0, 0, NULL},
    {"train", "steps", K_INT, 1, 1e12, NULL},
    {"train", "learning-rate", K_DOUBLE, 1e-300, 1e6, NULL},
    {"train", "batch", K_INT, 1, 1 << 24, NULL},
    {"train", "eval-interval", K_INT, 1, 1e12, NULL},
    {"train", "validation-batch", K_INT, -1, 1 << 24, NULL},
    {"train", "test-batch", K_INT, -1, 1 << 24, NULL},
    {"train", "sampling", K_CHOICE, 0, 0, "class|uniform"},
    {"train", "seed", K_INT, 0, 9.2e18, NULL},
    {"train", "threads", K_INT, 1, 4096, NULL},
    {"train", "print-misclassified", K_BOOL, 0, 0, NULL},
    {"classify", "images", K_PATH, 0, 0, NULL},
    {"classify", "manifest", K_PATH, 0, 0, NULL},
    {"classify", "features", K_PATH, 0, 0, NULL},
    {"classify", "top", K_INT, 1, 1e6, NULL},
    {"shard", "index", K_INT, 0, 1e9, NULL},
    {"shard", "count", K_INT, 1, 1e9, NULL},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *const sections[] = {"job", "corpus", "outputs", "engine", "train", "classify", "shard"};
#define NSECTIONS (sizeof sections / sizeof sections[0])

static const char *const stage_names[BN_NSTAGES] = {"extract", "train", "classify"};

const char *bn_job_stage_name(int stage) { return stage >= 0 && stage < BN_NSTAGES ? stage_names[stage] : "?"; }

/* ------------------------------------------------------------ errors and names */

static void add_error(bn_job *job, const char *origin, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_error(bn_job *job, const char *origin, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t old = job->errors ? strlen(job->errors) : 0, add = strlen(origin) + strlen(msg) + 4;
    job->errors = reallocCheck(job->errors, old + add);
    snprintf(job->errors + old, add, "%s: %s\n", origin, msg);
    job->nerrors++;
}

/* Levenshtein distance, for the "did you mean" hints. */
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    size_t *row = mallocCheck(sizeof(size_t) * (m + 1));
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[m];
    free(row);
    return d;
}

const char *bn_job_suggest(const char *word, const char *const *names, size_t n) {
    size_t len = strlen(word), limit = len / 3 > 2 ? len / 3 : 2, best = (size_t)-1;
    const char *pick = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, names[i]);
        if (d <= limit && d < best) {
            best = d;
            pick = names[i];
        }
    }
    return pick;
}

/* The key's name with underscores taken as dashes. */
static void normalise(const char *in, char *out, size_t len) {
    size_t k = 0;
    for (; in[k] && k + 1 < len; k++) out[k] = in[k] == '_' ? '-' : in[k];
    out[k] = 0;
}

static int find_section(const char *s) {
    for (size_t i = 0; i < NSECTIONS; i++)
        if (!strcmp(sections[i], s)) return (int)i;
    return -1;
}

static int find_key(const char *section, const char *key) {
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].key, key)) return (int)i;
    return -1;
}

/* Report an unknown section or key with the closest known name. */
static void unknown_name(bn_job *job, const char *origin, const char *section, const char *key) {
    if (find_section(section) < 0) {
        const char *s = bn_job_suggest(section, sections, NSECTIONS);
        if (s)
            add_error(job, origin, "unknown section [%s]; did you mean '%s'?", section, s);
        else
            add_error(job, origin, "unknown section [%s] (the sections: job, corpus, outputs, engine, train, classify, shard)",
                      section);
        return;
    }
    const char *names[NKEYS];
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].section, section)) names[n++] = keys[i].key;
    const char *s = bn_job_suggest(key, names, n);
    if (s) {
        add_error(job, origin, "unknown key '%s' in [%s]; did you mean '%s'?", key, section, s);
        return;
    }
    for (size_t i = 0; i < NKEYS; i++) /* the right key in another section */
        if (!strcmp(keys[i].key, key)) {
            add_error(job, origin, "unknown key '%s' in [%s]; did you mean '%s' in [%s]?", key, section, key,
                      keys[i].section);
            return;
        }
    char list[1024] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    add_error(job, origin, "unknown key '%s' in [%s] (its keys: %s)", key, section, list);
}

/* Store one value. dir: the folder relative paths are taken from (NULL: as
 * given). Returns 0 or -1. */
static int store(bn_job *job, const char *section_in, const char *key_in, const char *value, const char *origin,
                 int line, const char *dir) {
    char section[64], key[64];
    normalise(section_in, section, sizeof section);
    normalise(key_in, key, sizeof key);
    int k = find_key(section, key);
    if (k < 0) {
        unknown_name(job, origin, section, key);
        return -1;
    }
    if (line > 0 && job->line[k] > 0) {
        add_error(job, origin, "%s.%s is given twice (first on line %d)", section, key, job->line[k]);
        return -1;
    }
    free(job->value[k]);
    free(job->origin[k]);
    if (keys[k].type == K_PATH && dir && strcmp(dir, ".") && value[0] && value[0] != '/') {
        size_t len = strlen(dir) + strlen(value) + 2;
        job->value[k] = mallocCheck(len);
        snprintf(job->value[k], len, "%s/%s", dir, value);
    } else {
        job->value[k] = strdupCheck(value);
    }
    job->origin[k] = strdupCheck(origin);
    job->line[k] = line;
    return 0;
}

/* ------------------------------------------------------------ reading */

typedef struct {
    FILE *fp;
    bn_job *job;
    int line;          /* the line inih is at */
    int section_line;  /* the line of the latest [section] header */
    char bad_section[64]; /* the unknown section reported last */
} reader_t;

/* inih's reader: fgets, counting lines, and refusing lines too long for
 * inih's buffer (which would otherwise be split). */
static char *read_line(char *str, int num, void *stream) {
    reader_t *r = stream;
    memset(str, 1, (size_t)num); /* fgets' terminator is then the last NUL */
    char *s = fgets(str, num, r->fp);
    if (!s) return NULL;
    r->line++;
    int end = num - 1;
    while (end > 0 && str[end]) end--;
    if ((size_t)end != strlen(s)) { /* a NUL byte inside the line would cut it short */
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:%d", r->job->path, r->line);
        add_error(r->job, origin, "line contains a NUL byte");
        if (end + 1 == num && str[end - 1] != '\n') { /* and goes on past the buffer */
            int c;
            while ((c = fgetc(r->fp)) != EOF && c != '\n') {
            }
        }
        str[0] = '\n'; /* an empty line for inih */
        str[1] = 0;
        return s;
    }
    const char *t = s + strspn(s, " \t");
    if (*t == '[') r->section_line = r->line;
    size_t len = strlen(s);
    if (len + 1 == (size_t)num && s[len - 1] != '\n') {
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:%d", r->job->path, r->line);
        add_error(r->job, origin, "line longer than %d characters", num - 2);
        int c;
        while ((c = fgetc(r->fp)) != EOF && c != '\n') {
        }
        str[0] = '\n'; /* an empty line for inih */
        str[1] = 0;
    }
    return s;
}

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    reader_t *r = user;
    char origin[1100];
    snprintf(origin, sizeof origin, "%s:%d", r->job->path, r->line);
    if (!section[0]) {
        add_error(r->job, origin, "'%s' comes before any [section]", name);
        return 1;
    }
    char sec[64];
    normalise(section, sec, sizeof sec);
    if (find_section(sec) < 0) { /* reported once, at its header */
        if (strcmp(sec, r->bad_section)) {
            snprintf(r->bad_section, sizeof r->bad_section, "%s", sec);
            snprintf(origin, sizeof origin, "%s:%d", r->job->path, r->section_line);
            unknown_name(r->job, origin, sec, name);
        }
        return 1;
    }
    store(r->job, section, name, value, origin, r->line, r->job->dir);
    return 1; /* errors are collected here, not by inih */
}

static void job_alloc(bn_job *job) {
    job->value = callocCheck(NKEYS, sizeof(char *));
    job->origin = callocCheck(NKEYS, sizeof(char *));
    job->line = callocCheck(NKEYS, sizeof(int));
}

int bn_job_read(const char *path, bn_job *job) {
    memset(job, 0, sizeof *job);
    job_alloc(job);
    job->path = strdupCheck(path);
    const char *slash = strrchr(path, '/');
    if (slash) {
        job->dir = strdupCheck(path);
        job->dir[slash - path ? slash - path : 1] = 0;
    } else {
        job->dir = strdupCheck(".");
    }
    reader_t r = {fopen(path, "r"), job, 0, 0, ""};
    if (!r.fp) {
        add_error(job, path, "cannot open the job file: %s", strerror(errno));
        return job->nerrors;
    }
    int before = job->nerrors;
    int rc = ini_parse_stream(read_line, &r, on_entry, &r);
    fclose(r.fp);
    if (rc > 0 && job->nerrors == before) {
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:%d", path, rc);
        add_error(job, origin, "not a '[section]' or 'key = value' line");
    } else if (rc > 0) {
        /* inih also flags syntax errors; find them by line when ours are elsewhere */
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:%d:", path, rc);
        if (!strstr(job->errors, origin)) {
            snprintf(origin, sizeof origin, "%s:%d", path, rc);
            add_error(job, origin, "not a '[section]' or 'key = value' line");
        }
    } else if (rc < 0) {
        add_error(job, path, "cannot read the job file");
    }
    return job->nerrors;
}

int bn_job_set(bn_job *job, const char *a) {
    char origin[512];
    snprintf(origin, sizeof origin, "--set %.480s", a);
    const char *dot = strchr(a, '.'), *eq = strchr(a, '=');
    if (!dot || !eq || dot > eq || dot == a || eq == dot + 1) {
        add_error(job, origin, "expected SECTION.KEY=VALUE (for example train.steps=100)");
        return -1;
    }
    char section[64], key[64];
    snprintf(section, sizeof section, "%.*s", (int)(dot - a), a);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    const char *v = eq + 1;
    while (*v == ' ') v++;
    return store(job, section, key, v, origin, 0, NULL);
}

/* ------------------------------------------------------------ checking */

static int idx(const char *section, const char *key) {
    int k = find_key(section, key);
    if (k < 0) bn_fatal_at(__FILE__, __LINE__, NULL, "no key %s.%s in the table", section, key);
    return k;
}

static const char *val(const bn_job *job, const char *section, const char *key) {
    return job->value[idx(section, key)];
}

static int one_of(const char *v, const char *choices) {
    size_t n = strlen(v);
    for (const char *p = choices;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return 1;
        if (!bar) return 0;
        p = bar + 1;
    }
}

/* Check the value of key k (if given); numbers into *num. Returns 1 if
 * given and good, 0 if not given, -1 if bad (an error added). */
static int check_value(bn_job *job, int k, double *num) {
    const char *v = job->value[k], *origin = job->origin[k];
    if (!v) return 0;
    char name[160];
    snprintf(name, sizeof name, "%s.%s", keys[k].section, keys[k].key);
    switch (keys[k].type) {
    case K_INT: {
        long long x;
        if (bn_parse_ll(v, &x)) {
            add_error(job, origin, "%s = '%s': not a whole number", name, v);
            return -1;
        }
        if ((double)x < keys[k].min || (double)x > keys[k].max) {
            add_error(job, origin, "%s = %lld is outside %.0f..%.0f", name, x, keys[k].min, keys[k].max);
            return -1;
        }
        *num = (double)x;
        return 1;
    }
    case K_DOUBLE: {
        double x;
        if (bn_parse_double(v, &x) || !isfinite(x)) {
            add_error(job, origin, "%s = '%s': not a number", name, v);
            return -1;
        }
        if (x < keys[k].min || x > keys[k].max) {
            if (keys[k].min > 0 && keys[k].min < 1e-100)
                add_error(job, origin, "%s = %s must be above 0", name, v);
            else
                add_error(job, origin, "%s = %s is outside %g..%g", name, v, keys[k].min, keys[k].max);
            return -1;
        }
        *num = x;
        return 1;
    }
    case K_CHOICE: {
        const char *choices = keys[k].choices ? keys[k].choices : bn_backend_choices();
        if (!one_of(v, choices)) {
            add_error(job, origin, "%s = '%s': not one of %s", name, v, choices);
            return -1;
        }
        return 1;
    }
    case K_BOOL:
        if (one_of(v, "true|yes|on|1")) *num = 1;
        else if (one_of(v, "false|no|off|0")) *num = 0;
        else {
            add_error(job, origin, "%s = '%s': not true or false", name, v);
            return -1;
        }
        return 1;
    case K_STRING:
    case K_PATH:
        if (!v[0]) {
            add_error(job, origin, "%s is empty", name);
            return -1;
        }
        return 1;
    case K_STAGES:
        return 1; /* checked by parse_stages */
    }
    return 1;
}

static void parse_stages(bn_job *job) {
    int k = idx("job", "stages");
    if (!job->value[k]) {
        add_error(job, job->path, "[job] stages is required (for example: stages = extract, train, classify)");
        return;
    }
    char *list = strdupCheck(job->value[k]), *save = NULL;
    for (char *tok = strtok_r(list, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        int s = -1;
        for (int i = 0; i < BN_NSTAGES; i++)
            if (!strcmp(tok, stage_names[i])) s = i;
        if (s < 0) {
            const char *hint = bn_job_suggest(tok, stage_names, BN_NSTAGES);
            if (hint)
                add_error(job, job->origin[k], "unknown stage '%s'; did you mean '%s'?", tok, hint);
            else
                add_error(job, job->origin[k], "unknown stage '%s' (the stages: extract, train, classify)", tok);
            continue;
        }
        int dup = 0;
        for (int i = 0; i < job->nstages; i++) dup |= job->stages[i] == s;
        if (dup) {
            add_error(job, job->origin[k], "stage '%s' is named twice", tok);
        } else if (job->nstages < BN_JOB_MAX_STAGES) {
            job->stages[job->nstages++] = s;
        }
    }
    free(list);
    if (job->nstages == 0 && job->nerrors == 0) add_error(job, job->origin[k], "no stages named");
}

static int has_stage(const bn_job *job, int s) {
    for (int i = 0; i < job->nstages; i++)
        if (job->stages[i] == s) return 1;
    return 0;
}

/* A string the job owns. */
static const char *own(bn_job *job, char *s) {
    if (job->nstrings == (int)(sizeof job->strings / sizeof job->strings[0])) bn_fatal_at(__FILE__, __LINE__, NULL, "too many strings");
    job->strings[job->nstrings++] = s;
    return s;
}

/* Require key for stage: error naming the stage when missing. */
static const char *need(bn_job *job, const char *section, const char *key, const char *stage) {
    const char *v = val(job, section, key);
    if (!v) add_error(job, job->path, "stage '%s' needs [%s] %s", stage, section, key);
    return v;
}

/* outputs.features with {shard} replaced by the shard index. */
static const char *shard_path(bn_job *job, const char *v, long long index) {
    const char *at = strstr(v, "{shard}");
    if (!at) return v;
    size_t len = strlen(v) + 32;
    char *s = mallocCheck(len);
    snprintf(s, len, "%.*s%lld%s", (int)(at - v), v, index, at + 7);
    return own(job, s);
}

int bn_job_resolve(bn_job *job) {
    int before = job->nerrors;
    double num[NKEYS];
    int given[NKEYS];
    for (size_t k = 0; k < NKEYS; k++) {
        num[k] = 0;
        given[k] = check_value(job, (int)k, &num[k]) > 0;
    }
    parse_stages(job);
#define GIVEN(s, k) given[idx(s, k)]
#define NUM(s, k) num[idx(s, k)]
    job->price_per_node_hour = GIVEN("job", "price-per-node-hour") ? NUM("job", "price-per-node-hour") : -1;
    job->device = GIVEN("engine", "device") ? val(job, "engine", "device") : "auto";
    const char *progress = GIVEN("job", "progress") ? val(job, "job", "progress") : "auto";
    long long sidx = GIVEN("shard", "index") ? (long long)NUM("shard", "index") : 0;
    long long scount = GIVEN("shard", "count") ? (long long)NUM("shard", "count") : 1;
    if (sidx >= scount) {
        int k = idx("shard", GIVEN("shard", "index") ? "index" : "count");
        add_error(job, job->origin[k] ? job->origin[k] : job->path, "shard.index %lld must be below shard.count %lld",
                  sidx, scount);
    }

    /* The engine group, shared by extract and classify. */
    bn_engine_opts eng = BN_ENGINE_OPTS_INIT;
    if (GIVEN("engine", "backend")) eng.backend = val(job, "engine", "backend");
    if (GIVEN("engine", "batch")) eng.batch = (long long)NUM("engine", "batch");
    if (GIVEN("engine", "threads")) eng.threads = (long long)NUM("engine", "threads");
    if (GIVEN("engine", "streams")) eng.streams = (long long)NUM("engine", "streams");
    eng.device = job->device;
    if (GIVEN("engine", "ranks-per-gpu")) eng.ranks_per_gpu = (long long)NUM("engine", "ranks-per-gpu");
    if (GIVEN("engine", "preprocess")) eng.preprocess = val(job, "engine", "preprocess");
    if (GIVEN("engine", "dct")) eng.dct = val(job, "engine", "dct");
    if (GIVEN("engine", "max-pixels")) eng.max_pixels = (long long)NUM("engine", "max-pixels");
    if (GIVEN("engine", "precision")) eng.precision = val(job, "engine", "precision");
    if (GIVEN("engine", "calibration")) eng.calibration = val(job, "engine", "calibration");

    /* extract */
    bn_extract_cfg *ex = &job->extract;
    bn_extract_cfg_init(ex);
    ex->images = val(job, "corpus", "images");
    ex->manifest = val(job, "corpus", "manifest");
    ex->weights = val(job, "job", "weights");
    ex->eng = eng;
    if (GIVEN("corpus", "validation-percentage")) ex->validation_pct = NUM("corpus", "validation-percentage");
    if (GIVEN("corpus", "testing-percentage")) ex->testing_pct = NUM("corpus", "testing-percentage");
    ex->shard_index = (int)sidx;
    ex->shard_count = (int)scount;
    ex->progress = progress;
    if (GIVEN("engine", "decode-threads")) ex->decode_threads = (long long)NUM("engine", "decode-threads");
    if (GIVEN("engine", "decoder")) ex->decoder = val(job, "engine", "decoder");
    if (GIVEN("outputs", "feature-dtype")) ex->feature_dtype = val(job, "outputs", "feature-dtype");
    const char *features = val(job, "outputs", "features");
    if (features) ex->out = shard_path(job, features, sidx);
    if (job->price_per_node_hour >= 0) ex->price = job->price_per_node_hour;
    if (ex->validation_pct + ex->testing_pct > 100)
        add_error(job, job->path, "corpus.validation-percentage plus corpus.testing-percentage is over 100");
    if (has_stage(job, BN_STAGE_EXTRACT)) {
        if (ex->images && ex->manifest)
            add_error(job, job->origin[idx("corpus", "manifest")], "give [corpus] images or manifest, not both");
        else if (!ex->images && !ex->manifest)
            add_error(job, job->path, "stage 'extract' needs [corpus] images or manifest");
        need(job, "job", "weights", "extract");
        need(job, "outputs", "features", "extract");
        if (scount > 1 && features && !strstr(features, "{shard}"))
            add_error(job, job->origin[idx("outputs", "features")],
                      "with shard.count %lld every shard needs its own features file: put {shard} in outputs.features "
                      "(for example features-{shard}.h5)", scount);
    }
    if (scount > 1 && (has_stage(job, BN_STAGE_TRAIN) || has_stage(job, BN_STAGE_CLASSIFY)))
        add_error(job, job->origin[idx("shard", "count")] ? job->origin[idx("shard", "count")] : job->path,
                  "a shard (shard.count %lld) runs extract only: train and classify need the joined features", scount);

    /* train */
    bn_train_cfg *tr = &job->train;
    bn_train_cfg_init(tr);
    tr->features = ex->out;
    tr->out = val(job, "outputs", "classifier");
    tr->labels = val(job, "outputs", "labels");
    if (GIVEN("train", "steps")) tr->steps = (long long)NUM("train", "steps");
    if (GIVEN("train", "learning-rate")) tr->learning_rate = NUM("train", "learning-rate");
    if (GIVEN("train", "batch")) tr->batch = (long long)NUM("train", "batch");
    if (GIVEN("train", "eval-interval")) tr->eval_interval = (long long)NUM("train", "eval-interval");
    if (GIVEN("train", "validation-batch")) tr->validation_batch = (long long)NUM("train", "validation-batch");
    if (GIVEN("train", "test-batch")) tr->test_batch = (long long)NUM("train", "test-batch");
    if (GIVEN("train", "sampling")) tr->sampling = val(job, "train", "sampling");
    if (GIVEN("train", "seed")) tr->seed = (long long)NUM("train", "seed");
    if (job->price_per_node_hour >= 0) tr->price = job->price_per_node_hour;
    if (GIVEN("train", "threads")) tr->threads = (long long)NUM("train", "threads");
    if (GIVEN("train", "print-misclassified")) tr->print_misclassified = NUM("train", "print-misclassified") != 0;
    if (has_stage(job, BN_STAGE_TRAIN)) {
        need(job, "outputs", "features", "train");
        need(job, "outputs", "classifier", "train");
        char err[512];
        if (tr->features && tr->out && bn_train_cfg_check(tr, err, sizeof err)) add_error(job, job->path, "train: %s", err);
    }

    /* classify (corpus mode) */
    bn_classify_cfg *cl = &job->classify;
    bn_classify_cfg_init(cl);
    cl->weights = ex->weights;
    cl->classifier = tr->out;
    cl->out = val(job, "outputs", "predictions");
    cl->images = val(job, "classify", "images");
    cl->manifest = val(job, "classify", "manifest");
    cl->features = val(job, "classify", "features");
    if (!cl->images && !cl->manifest) { /* the job's corpus, and its features file */
        cl->images = ex->images;
        cl->manifest = ex->manifest;
        if (!cl->features) cl->features = ex->out;
    }
    cl->eng = eng;
    cl->eng.preprocess = GIVEN("engine", "preprocess") ? eng.preprocess : NULL; /* the classifier's */
    cl->eng.dct = GIVEN("engine", "dct") ? eng.dct : NULL;
    cl->eng.precision = GIVEN("engine", "precision") ? eng.precision : NULL; /* the classifier's */
    if (GIVEN("classify", "top")) cl->top = (long long)NUM("classify", "top");
    cl->progress = progress;
    if (job->price_per_node_hour >= 0) cl->price = job->price_per_node_hour;
    cl->decode_threads = job->extract.decode_threads;
    if (has_stage(job, BN_STAGE_CLASSIFY)) {
        need(job, "job", "weights", "classify");
        need(job, "outputs", "classifier", "classify");
        need(job, "outputs", "predictions", "classify");
        if (cl->images && cl->manifest)
            add_error(job, job->path, "classify needs one corpus: [classify] images or manifest, not both");
        else if (!cl->images && !cl->manifest)
            add_error(job, job->path, "stage 'classify' needs a corpus: [corpus] or [classify] images or manifest");
    }
#undef GIVEN
#undef NUM
    return job->nerrors - before;
}

void bn_job_print(const bn_job *job, FILE *fp) {
    fprintf(fp, "job %s (paths relative to %s)\n", job->path, job->dir);
    const char *last = "";
    for (size_t k = 0; k < NKEYS; k++) {
        if (!job->value[k]) continue;
        if (strcmp(last, keys[k].section)) fprintf(fp, "[%s]\n", last = keys[k].section);
        fprintf(fp, "%s = %s    ; %s\n", keys[k].key, job->value[k], job->origin[k]);
    }
}

void bn_job_free(bn_job *job) {
    if (job->value)
        for (size_t k = 0; k < NKEYS; k++) {
            free(job->value[k]);
            free(job->origin[k]);
        }
    for (int i = 0; i < job->nstrings; i++) free(job->strings[i]);
    free(job->value);
    free(job->origin);
    free(job->line);
    free(job->errors);
    free(job->path);
    free(job->dir);
    memset(job, 0, sizeof *job);
}
