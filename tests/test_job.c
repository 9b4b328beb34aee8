/* test_job.c: the job-file reader (pipeline/job.h) without MPI: names and
 * their hints, underscores, paths relative to the file, {shard}, overrides,
 * repeated keys, long lines, and the configs it fills. */
#include "pipeline/job.h"
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/test_job.XXXXXX";

/* Write text to dir/name and return the path (static buffer). */
static const char *put(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        perror(path);
        exit(1);
    }
    return path;
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *names[] = {"steps", "seed", "batch", "learning-rate"};
    CHECK(bn_job_suggest("stpes", names, 4) && !strcmp(bn_job_suggest("stpes", names, 4), "steps"), "stpes -> steps");
    CHECK(bn_job_suggest("learning-rat", names, 4) && !strcmp(bn_job_suggest("learning-rat", names, 4), "learning-rate"),
          "learning-rat -> learning-rate");
    CHECK(bn_job_suggest("zzzzzz", names, 4) == NULL, "no hint for a far name");

    bn_job job;
    const char *p = put("good.ini",
                        "# comment\n[job]\nstages = extract , train,classify\nweights = w.h5\nprice_per_node_hour = 0.5 ; inline\n"
                        "[corpus]\nimages = /abs/corpus\nvalidation_percentage = 15\n"
                        "[outputs]\nfeatures = out/f-{shard}.h5\nclassifier = c.h5\npredictions = p.csv\n"
                        "[engine]\nbatch = 4\npreprocess = tf2015\n[train]\nsteps = 9\nprint-misclassified = yes\n");
    CHECK(bn_job_read(p, &job) == 0, "good.ini reads: %s", job.errors ? job.errors : "");
    CHECK(bn_job_set(&job, "train.steps=33") == 0, "override");
    CHECK(bn_job_set(&job, "classify.top=2") == 0, "override a key the file lacks");
    CHECK(bn_job_resolve(&job) == 0, "good.ini resolves: %s", job.errors ? job.errors : "");
    CHECK(job.nstages == 3 && job.stages[0] == BN_STAGE_EXTRACT && job.stages[2] == BN_STAGE_CLASSIFY, "stages in order");
    char want[600];
    snprintf(want, sizeof want, "%s/w.h5", dir);
    CHECK(job.extract.weights && !strcmp(job.extract.weights, want), "weights relative to the file: %s", job.extract.weights);
    CHECK(!strcmp(job.extract.images, "/abs/corpus"), "absolute path kept");
    snprintf(want, sizeof want, "%s/out/f-0.h5", dir);
    CHECK(job.extract.out && !strcmp(job.extract.out, want), "{shard} replaced: %s", job.extract.out);
    CHECK(job.train.features == job.extract.out, "train reads extract's file");
    CHECK(job.extract.validation_pct == 15 && job.extract.testing_pct == 10, "split");
    CHECK(job.extract.eng.batch == 4 && !strcmp(job.extract.eng.preprocess, "tf2015"), "engine");
    CHECK(job.classify.eng.preprocess && !strcmp(job.classify.eng.preprocess, "tf2015") && job.classify.eng.dct == NULL,
          "classify: given preprocess kept, dct left to the classifier");
    CHECK(job.train.steps == 33 && job.train.print_misclassified == 1 && job.train.batch == 100, "train settings");
    CHECK(job.classify.top == 2 && job.classify.features == job.extract.out, "classify settings");
    CHECK(job.price_per_node_hour == 0.5, "price");
    bn_job_free(&job);

    p = put("bad.ini", "[job]\nstages = extract\nstages = train\n[train]\nsteps = 0\nlearning-rate = 0\n"
                       "[traim]\nsteps = 3\nbatch = 3\n[corpus]\nimage = x\n");
    int n = bn_job_read(p, &job);
    n += bn_job_resolve(&job);
    const char *e = job.errors ? job.errors : "";
    CHECK(strstr(e, "bad.ini:3: job.stages is given twice (first on line 2)"), "repeated key: %s", e);
    CHECK(strstr(e, "bad.ini:7: unknown section [traim]; did you mean 'train'?"), "section hint once: %s", e);
    CHECK(!strstr(e, "bad.ini:9:"), "an unknown section is reported once: %s", e);
    CHECK(strstr(e, "bad.ini:11: unknown key 'image' in [corpus]; did you mean 'images'?"), "key hint: %s", e);
    CHECK(strstr(e, "bad.ini:5: train.steps = 0 is outside 1..1000000000000"), "range: %s", e);
    CHECK(strstr(e, "bad.ini:6: train.learning-rate = 0 must be above 0"), "above 0: %s", e);
    CHECK(n == job.nerrors && n >= 5, "error count %d", n);
    bn_job_free(&job);

    char longline[400];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "[job]\nweights = ", 16);
    strcpy(longline + 380, "\nstages = extract\n");
    p = put("long.ini", longline);
    CHECK(bn_job_read(p, &job) > 0 && strstr(job.errors, "long.ini:2: line longer than"), "long line: %s",
          job.errors ? job.errors : "");
    bn_job_free(&job);

    p = put("syntax.ini", "[job]\nstages = extract\njust words\n");
    CHECK(bn_job_read(p, &job) == 1 && strstr(job.errors, "syntax.ini:3: not a '[section]' or 'key = value' line"),
          "syntax: %s", job.errors ? job.errors : "");
    bn_job_free(&job);

    CHECK(bn_job_read("/nonexistent/j.ini", &job) == 1 && strstr(job.errors, "cannot open the job file"), "missing file");
    CHECK(bn_job_set(&job, "nodot=3") < 0 && strstr(job.errors, "expected SECTION.KEY=VALUE"), "bad --set");
    bn_job_free(&job);


    /* Edge cases of the file itself. Line ends: CRLF, and no newline at the
     * end; a UTF-8 byte-order mark; values with quotes, spaces and UTF-8 are
     * taken as written (no unquoting). */
    p = put("crlf.ini", "\xEF\xBB\xBF[job]\r\nstages = extract\r\nweights = /w.h5\r\n[corpus]\r\nimages = /d/\"it's\" été dir\r\n"
                        "[outputs]\r\nfeatures = /o/f.h5");
    CHECK(bn_job_read(p, &job) == 0 && bn_job_resolve(&job) == 0, "crlf.ini: %s", job.errors ? job.errors : "");
    CHECK(job.extract.images && !strcmp(job.extract.images, "/d/\"it's\" été dir"), "value as written: [%s]",
          job.extract.images ? job.extract.images : "(null)");
    CHECK(job.extract.out && !strcmp(job.extract.out, "/o/f.h5"), "last line without a newline: [%s]",
          job.extract.out ? job.extract.out : "(null)");
    bn_job_free(&job);

    p = put("empty.ini", "");
    n = bn_job_read(p, &job);
    n += bn_job_resolve(&job);
    CHECK(n == 1 && strstr(job.errors, "[job] stages is required"), "empty file: %s", job.errors ? job.errors : "");
    bn_job_free(&job);

    /* An unknown key far longer than any name: named in full (up to its
     * first 60 characters), with file:line. */
    char longkey[300];
    memset(longkey, 0, sizeof longkey);
    strcpy(longkey, "[train]\nsteps = 3\n");
    memset(longkey + strlen(longkey), 'k', 150);
    strcat(longkey, " = 1\n");
    p = put("longkey.ini", longkey);
    CHECK(bn_job_read(p, &job) == 1 && strstr(job.errors, "longkey.ini:3: unknown key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"),
          "long unknown key: %s", job.errors ? job.errors : "");
    bn_job_free(&job);

    /* A NUL byte would end the line early for the INI reader: refused, never
     * read as a shorter value. */
    snprintf(want, sizeof want, "%s/nul.ini", dir);
    {
        FILE *f = fopen(want, "wb");
        static const char nul[] = "[job]\nstages = extract\n[corpus]\nimages = /data/a\0/b\n";
        CHECK(f && fwrite(nul, 1, sizeof nul - 1, f) == sizeof nul - 1 && fclose(f) == 0, "write nul.ini");
    }
    CHECK(bn_job_read(want, &job) > 0 && strstr(job.errors, "nul.ini:4: ") && strstr(job.errors, "NUL"),
          "NUL byte: %s", job.errors ? job.errors : "");
    bn_job_free(&job);

    /* A long line as the last line, without a newline. */
    memset(longline, 'y', sizeof longline);
    memcpy(longline, "[job]\nweights = ", 16);
    longline[sizeof longline - 1] = 0;
    p = put("longlast.ini", longline);
    CHECK(bn_job_read(p, &job) > 0 && strstr(job.errors, "longlast.ini:2: line longer than"), "long last line: %s",
          job.errors ? job.errors : "");
    bn_job_free(&job);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return t_done("test_job");
}
