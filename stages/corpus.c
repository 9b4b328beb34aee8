/* corpus.c: "bneck corpus" - scan a corpus and report classes, counts, the
 * split and rejected files; with --decode, decode and resize every image
 * across the MPI ranks and report each failure with its reason. */
#include "io/corpus.h"
#include "io/image.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options of the command. */
typedef struct {
    const char *images;      /* --images DIR */
    const char *manifest;    /* --manifest FILE */
    double val_pct;          /* --validation-percentage */
    double test_pct;         /* --testing-percentage */
    const char *list;        /* --list FILE */
    int decode;              /* --decode */
    long long max_pixels;    /* --max-pixels */
    const char *dct;         /* --dct accurate|fast */
    const char *preprocess;  /* --preprocess keras|tf2015 */
    int verbose, quiet;      /* -v, -q */
} corpus_opts;

/* Per-rank decode accounting, reduced to rank 0. */
typedef struct {
    double t_read, t_decode, t_resize; /* seconds */
    double n_ok, n_failed, n_warned;   /* counts (double for one MPI_SUM) */
} decode_stats;

/* Write the --list TSV. Returns 0 or -1 after reporting the error. */
static int write_list(const bn_corpus *c, const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        bn_error("check that the folder exists and is writable", "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "path\tlabel\tsplit\tkey\n");
    for (size_t i = 0; i < c->n; i++)
        fprintf(f, "%s\t%s\t%s\t%s\n", c->items[i].path, c->labels[c->items[i].label],
                bn_split_name(c->items[i].split), c->items[i].key);
    if (f != stdout && fclose(f) != 0) {
        bn_error("check free space on the file system", "error writing %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void print_summary(const bn_corpus *c, const char *source) {
    size_t per[3] = {0, 0, 0};
    size_t *cls = callocCheck((size_t)c->nlabels * 3, sizeof(size_t));
    for (size_t i = 0; i < c->n; i++) {
        per[c->items[i].split]++;
        cls[(size_t)c->items[i].label * 3 + (size_t)c->items[i].split]++;
    }
    printf("corpus: %s\n", source);
    printf("classes: %d\n", c->nlabels);
    printf("images: %zu (train %zu, validation %zu, test %zu)\n", c->n, per[0], per[1], per[2]);
    printf("rejected: %zu\n", c->nrejected);
    int wl = 5, ws = 6;
    for (int k = 0; k < c->nlabels; k++) {
        int a = (int)strlen(c->labels[k]), b = (int)strlen(c->sources[k]);
        if (a > wl) wl = a;
        if (b > ws) ws = b;
    }
    printf("class  %-*s  %-*s  %8s  %8s  %10s  %8s\n", wl, "label", ws, "source", "images", "train", "validation", "test");
    for (int k = 0; k < c->nlabels; k++) {
        size_t *p = cls + (size_t)k * 3;
        printf("%5d  %-*s  %-*s  %8zu  %8zu  %10zu  %8zu\n", k, wl, c->labels[k], ws, c->sources[k],
               p[0] + p[1] + p[2], p[0], p[1], p[2]);
    }
    if (c->nrejected) {
        printf("rejected files:\n");
        for (size_t i = 0; i < c->nrejected; i++) printf("  %s: %s\n", c->rejected[i].path, c->rejected[i].reason);
    }
    if (c->nwarnings) {
        printf("warnings:\n");
        for (size_t i = 0; i < c->nwarnings; i++) printf("  %s\n", c->warnings[i]);
    }
    free(cls);
}

/* Append "index\tstatus\treason\n" to a growing text buffer. */
static void note_append(char **buf, size_t *len, size_t *cap, size_t idx, int status, const char *reason) {
    char line[512];
    int n = snprintf(line, sizeof line, "%zu\t%d\t%s\n", idx, status, reason);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    if (*len + (size_t)n + 1 > *cap) {
        *cap = (*cap + (size_t)n + 1) * 2;
        *buf = reallocCheck(*buf, *cap);
    }
    memcpy(*buf + *len, line, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
}

/* A failure or accepted warning of one image, as gathered on rank 0. */
typedef struct {
    size_t idx;         /* corpus index */
    int status;         /* bn_img_status; 0 for an accepted warning */
    const char *reason; /* one line */
} note_t;

static int note_cmp(const void *a, const void *b) {
    size_t x = ((const note_t *)a)->idx, y = ((const note_t *)b)->idx;
    return x < y ? -1 : x > y;
}

/* Decode this rank's share (round-robin) and gather the notes on rank 0. */
static void decode_all(const bn_corpus *c, const corpus_opts *o, int rank, int size) {
    bn_decode_opts dopts = {.max_pixels = o->max_pixels, .dct_fast = strcmp(o->dct, "fast") == 0};
    bn_norm norm = BN_NORM_KERAS;
    bn_norm_parse(o->preprocess, &norm);
    bn_decoder *dec = bn_decoder_new(&dopts);
    bn_rgb img = {0};
    float *input = mallocCheck(sizeof(float) * BN_INPUT_SIZE * BN_INPUT_SIZE * 3); /* (299, 299, 3) */
    decode_stats st = {0};
    char *notes = NULL;
    size_t nlen = 0, ncap = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t_start = bn_now();
    for (size_t i = (size_t)rank; i < c->n; i += (size_t)size) {
        bn_img_result res;
        const unsigned char *buf;
        size_t len;
        double t0 = bn_now();
        bn_img_status s = bn_read_file(dec, c->items[i].path, &buf, &len, &res);
        double t1 = bn_now();
        st.t_read += t1 - t0;
        if (s == BN_IMG_OK) {
            s = bn_decode_mem(dec, buf, len, &img, &res);
            double t2 = bn_now();
            st.t_decode += t2 - t1;
            if (s == BN_IMG_OK) {
                bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, norm, input);
                st.t_resize += bn_now() - t2;
            }
        }
        if (s == BN_IMG_OK) {
            st.n_ok++;
            if (res.warned) {
                st.n_warned++;
                note_append(&notes, &nlen, &ncap, i, 0, res.reason);
            }
        } else {
            st.n_failed++;
            note_append(&notes, &nlen, &ncap, i, (int)s, res.reason);
        }
    }
    double t_rank = bn_now() - t_start;
    MPI_Barrier(MPI_COMM_WORLD);
    double wall = bn_now() - t_start;

    decode_stats tot = {0};
    mpiCheck(MPI_Reduce(&st, &tot, 6, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD));
    double t_max = 0;
    mpiCheck(MPI_Reduce(&t_rank, &t_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    int mylen = (int)nlen, *lens = NULL, *displs = NULL;
    char *all = NULL;
    if (rank == 0) {
        lens = callocCheck((size_t)size, sizeof(int));
        displs = callocCheck((size_t)size, sizeof(int));
    }
    mpiCheck(MPI_Gather(&mylen, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD));
    if (rank == 0) {
        size_t total = 0;
        for (int r = 0; r < size; r++) {
            displs[r] = (int)total;
            total += (size_t)lens[r];
        }
        all = mallocCheck(total + 1);
        all[total] = '\0';
    }
    mpiCheck(MPI_Gatherv(notes ? notes : "", mylen, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, MPI_COMM_WORLD));
    if (rank == 0) {
        double busy = tot.t_read + tot.t_decode + tot.t_resize;
        double n = tot.n_ok + tot.n_failed;
        printf("decode: %.0f ok, %.0f failed, %.0f with accepted warnings, %d rank%s\n", tot.n_ok, tot.n_failed,
               tot.n_warned, size, size == 1 ? "" : "s");
        printf("decode time: read %.3f s, decode %.3f s, resize %.3f s (summed over ranks); wall %.3f s\n",
               tot.t_read, tot.t_decode, tot.t_resize, wall);
        if (busy > 0 && n > 0)
            printf("decode throughput: %.1f images/s per rank (read+decode+resize), %.1f images/s in all\n",
                   n / busy, wall > 0 ? n / wall : 0.0);
        /* Parse the gathered notes, order them by corpus index, then print
         * failures and accepted warnings. */
        size_t cnt = 0;
        for (const char *p = all; (p = strchr(p, '\n')); p++) cnt++;
        note_t *v = callocCheck(cnt ? cnt : 1, sizeof *v);
        size_t k = 0;
        for (char *p = all; *p && k < cnt;) {
            char *nl = strchr(p, '\n');
            *nl = '\0';
            char *t1 = strchr(p, '\t');
            char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            if (t1 && t2) {
                *t1 = *t2 = '\0';
                v[k].idx = strtoull(p, NULL, 10);
                v[k].status = atoi(t1 + 1);
                v[k].reason = t2 + 1;
                k++;
            }
            p = nl + 1;
        }
        qsort(v, k, sizeof *v, note_cmp);
        for (int pass = 0; pass < 2; pass++) {
            int header = 0, want_fail = pass == 0;
            for (size_t a = 0; a < k; a++) {
                if ((v[a].status != 0) != want_fail) continue;
                if (!header) {
                    printf(want_fail ? "failed files:\n" : "accepted warnings:\n");
                    header = 1;
                }
                if (want_fail)
                    printf("  %s: %s: %s\n", c->items[v[a].idx].path, bn_img_status_name(v[a].status), v[a].reason);
                else
                    printf("  %s: %s\n", c->items[v[a].idx].path, v[a].reason);
            }
        }
        free(v);
    }
    free(all);
    free(lens);
    free(displs);
    free(notes);
    free(input);
    bn_rgb_free(&img);
    bn_decoder_free(dec);
}

int bn_cmd_corpus(int argc, char **argv) {
    corpus_opts o = {.val_pct = 10, .test_pct = 10, .max_pixels = BN_DEFAULT_MAX_PIXELS,
                     .dct = "accurate", .preprocess = "keras"};
    const bn_opt opts[] = {
        {"images", 'i', BN_OPT_STRING, &o.images, "DIR", NULL, 0, 0, NULL, "folder of class folders (retrain.py layout)"},
        {"manifest", 'm', BN_OPT_STRING, &o.manifest, "FILE", NULL, 0, 0, NULL, "manifest of path<TAB>label lines"},
        {"validation-percentage", 0, BN_OPT_DOUBLE, &o.val_pct, "PCT", "10", 0, 100, NULL, "share of images for validation"},
        {"testing-percentage", 0, BN_OPT_DOUBLE, &o.test_pct, "PCT", "10", 0, 100, NULL, "share of images for testing"},
        {"list", 0, BN_OPT_STRING, &o.list, "FILE", NULL, 0, 0, NULL, "write every image with its label and split as TSV ('-' for stdout)"},
        {"decode", 0, BN_OPT_FLAG, &o.decode, NULL, NULL, 0, 0, NULL, "decode and resize every image (split across MPI ranks) and report failures"},
        {"max-pixels", 0, BN_OPT_INT, &o.max_pixels, "N", "100000000", 1, 1e15, NULL, "refuse images with more pixels than this (checked from the header)"},
        {"dct", 0, BN_OPT_CHOICE, &o.dct, NULL, "accurate", 0, 0, "accurate|fast", "JPEG inverse DCT: accurate integer, or fast integer as TF1 used"},
        {"preprocess", 0, BN_OPT_CHOICE, &o.preprocess, NULL, "keras", 0, 0, "keras|tf2015", "input normalisation: x/127.5-1 (keras) or (x-128)/128 (tf2015)"},
        BN_OPTS_VERBOSITY(&o.verbose, &o.quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "corpus", "Scan an image corpus and print its classes, image counts, train/validation/test split sizes and rejected files.",
        "bneck corpus (--images DIR | --manifest FILE) [options]",
        "The split is retrain.py's: SHA-1 of each file's path (without any _nohash_ suffix)\n"
        "decides its set, so it never changes when images are added. See docs/corpus.md.",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 0, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (!o.images == !o.manifest) return bn_cli_usage(&spec, "give exactly one of --images DIR or --manifest FILE");
    if (o.val_pct + o.test_pct > 100)
        return bn_cli_usage(&spec, "--validation-percentage plus --testing-percentage is %g, over 100", o.val_pct + o.test_pct);
    bn_cli_apply_verbosity(o.verbose, o.quiet);

    int rank = 0, size = 1;
    bn_mpi_need();
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &size));
    bn_corpus c;
    memset(&c, 0, sizeof c);
    bn_split_opts so = {o.val_pct, o.test_pct};
    char err[1024] = "";
    /* Every rank scans: the result is deterministic, so all agree on success. */
    double t0 = bn_now();
    int bad = o.images ? bn_corpus_scan_dir(o.images, &so, &c, err, sizeof err)
                       : bn_corpus_read_manifest(o.manifest, &so, &c, err, sizeof err);
    if (bad) {
        if (rank == 0)
            bn_error(o.images ? "the folder must hold one subfolder per class, with .jpg/.jpeg/.png files"
                              : "each line must be 'path<TAB>label'",
                     "%s", err);
        return BN_EXIT_FAIL;
    }
    bn_verbose("scanned %zu images in %.3f s", c.n, bn_now() - t0);
    int status = BN_EXIT_OK;
    if (rank == 0) {
        print_summary(&c, o.images ? o.images : o.manifest);
        if (o.list && write_list(&c, o.list)) status = BN_EXIT_FAIL;
    }
    if (o.decode) decode_all(&c, &o, rank, size);
    mpiCheck(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD));
    bn_corpus_free(&c);
    return status;
}
