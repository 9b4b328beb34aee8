/* mkcorpus.c: "bneck mkcorpus", a reproducible synthetic image corpus laid out
 * like flower_photos (one folder per class), for tests, demos and benchmarks.
 *
 * Image i of class k is rendered by bn_synth_image from a seed derived from
 * (--seed, k, i), and that seed alone also picks its size and its format, so
 * the same options always give byte-identical files, whatever order or
 * subset of images is generated.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "io/imgwrite.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "stages/synth.h"

/* One image size and how often it is drawn. */
typedef struct {
    int w, h;   /* pixels */
    int weight; /* relative frequency (per mille for the flowers mix) */
} size_choice;

/* flower_photos' mix: mostly 500x333 landscape, some portrait, many 320x240,
 * a few others. */
static const size_choice FLOWER_SIZES[] = {
    {500, 333, 550}, {333, 500, 100}, {320, 240, 250}, {500, 375, 40}, {240, 320, 30}, {400, 300, 30},
};

#define MAX_SIZES 64     /* sizes in an explicit --sizes list */
#define MAX_SIDE 16384   /* largest width or height accepted in --sizes */

/* ------------------------------------------------------------------ seeds */

/* splitmix64 finaliser: a well-mixed 64-bit hash of x. */
static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The per-image random state for image i of class k under corpus seed s. */
static uint64_t image_state(uint64_t s, int k, long long i) {
    uint64_t h = mix64(s ^ 0xA0761D6478BD642Full);
    h = mix64(h ^ ((uint64_t)(k + 1) * 0xE7037ED1A0B428DBull));
    return mix64(h ^ ((uint64_t)(i + 1) * 0x8EBC6AF09C88C6E3ull));
}

/* Next value of a per-image stream (splitmix64 step). */
static uint64_t next64(uint64_t *st) {
    *st += 0x9E3779B97F4A7C15ull;
    return mix64(*st);
}

/* ------------------------------------------------------------------ options */

/* Parse "WxH[,WxH...]" into sizes (each weight 1). Returns the count, or -1
 * with a reason in why. */
static int parse_sizes(const char *s, size_choice *out, int max, char *why, size_t whylen) {
    int n = 0;
    const char *p = s;
    while (1) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item) {
            snprintf(why, whylen, "expected WxH[,WxH...] (e.g. 500x333,320x240) or 'flowers', got '%s'", s);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *x = strchr(item, 'x');
        long long w, h;
        if (!x) {
            snprintf(why, whylen, "size '%s' is not WxH (e.g. 500x333)", item);
            return -1;
        }
        *x = '\0';
        if (bn_parse_ll(item, &w) || bn_parse_ll(x + 1, &h)) {
            *x = 'x';
            snprintf(why, whylen, "size '%s' is not WxH with whole numbers (e.g. 500x333)", item);
            return -1;
        }
        *x = 'x';
        if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE) {
            snprintf(why, whylen, "size '%s': width and height must be 1..%d", item, MAX_SIDE);
            return -1;
        }
        if (n == max) {
            snprintf(why, whylen, "at most %d sizes, got more", max);
            return -1;
        }
        out[n].w = (int)w;
        out[n].h = (int)h;
        out[n].weight = 1;
        n++;
        if (!end) break;
        p = end + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ folders */

/* mkdir -p: create path and its missing parents. Returns 0, or -1 with a reason. */
static int make_dirs(const char *path, char *err, size_t errlen) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 1);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(tmp, path, len + 1);
    int rc = 0;
    /* Walk the components; the last pass (i == len) creates path itself. */
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create folder '%s': %s", tmp, strerror(errno));
            rc = -1;
        } else {
            struct stat st;
            if (stat(tmp, &st) != 0) {
                snprintf(err, errlen, "cannot create folder '%s': %s", tmp, strerror(errno));
                rc = -1;
            } else if (!S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "'%s' exists and is not a folder", tmp);
                rc = -1;
            }
        }
        tmp[i] = saved;
        if (rc) break;
    }
    free(tmp);
    return rc;
}

/* The output folder must be absent (it is then created) or an empty folder.
 * Returns 0, or -1 with a reason and a hint. */
static int prepare_out_dir(const char *dir, char *err, size_t errlen, const char **hint) {
    struct stat st;
    *hint = NULL;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "cannot access '%s': %s", dir, strerror(errno));
            return -1;
        }
        return make_dirs(dir, err, errlen);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "'%s' exists and is not a folder", dir);
        *hint = "give a new folder name, or an empty folder";
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    int empty = 1;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    int rerr = errno;
    closedir(d);
    if (empty && rerr) {
        snprintf(err, errlen, "cannot read folder '%s': %s", dir, strerror(rerr));
        return -1;
    }
    if (!empty) {
        snprintf(err, errlen, "output folder '%s' exists and is not empty", dir);
        *hint = "mkcorpus never mixes into existing files: remove the folder or choose another";
        return -1;
    }
    return 0;
}

/* The prefix that manifest lines put before "<class>/<file>": the output
 * folder relative to the manifest's folder when it lies inside it, otherwise
 * its absolute path. Both folders must exist. Returns a malloc'd string ending
 * in '/' (or ""), or NULL with a reason. */
static char *manifest_prefix(const char *manifest, const char *out_dir, char *err, size_t errlen) {
    char mdir[PATH_MAX], real_m[PATH_MAX], real_o[PATH_MAX];
    const char *slash = strrchr(manifest, '/');
    if (!slash)
        snprintf(mdir, sizeof mdir, ".");
    else if (slash == manifest)
        snprintf(mdir, sizeof mdir, "/");
    else
        snprintf(mdir, sizeof mdir, "%.*s", (int)(slash - manifest), manifest);
    if (!realpath(mdir, real_m)) {
        snprintf(err, errlen, "cannot resolve the folder '%s' of manifest '%s': %s", mdir, manifest,
                 strerror(errno));
        return NULL;
    }
    if (!realpath(out_dir, real_o)) {
        snprintf(err, errlen, "cannot resolve output folder '%s': %s", out_dir, strerror(errno));
        return NULL;
    }
    size_t lm = strlen(real_m);
    const char *rel = NULL;
    if (strcmp(real_m, real_o) == 0)
        rel = "";
    else if (strcmp(real_m, "/") == 0)
        rel = real_o + 1;
    else if (strncmp(real_o, real_m, lm) == 0 && real_o[lm] == '/')
        rel = real_o + lm + 1;
    const char *base = rel ? rel : real_o;
    size_t n = strlen(base);
    char *p = malloc(n + 2);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(p, base, n);
    if (n) p[n++] = '/';
    p[n] = '\0';
    return p;
}

/* ------------------------------------------------------------------ command */

int bn_cmd_mkcorpus(int argc, char **argv) {
    long long nclasses = 5, per_class = 40, seed = 1, quality = 90;
    double png_share = 0.0;
    const char *sizes_arg = "flowers";
    const char *manifest = NULL;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"classes", 0, BN_OPT_INT, &nclasses, "N", "5", 2, 1000, NULL, "number of classes"},
        {"per-class", 0, BN_OPT_INT, &per_class, "N", "40", 1, 1000000, NULL, "images per class"},
        {"seed", 0, BN_OPT_INT, &seed, "S", "1", 0, 9007199254740991.0, NULL,
         "corpus seed; same options give byte-identical files"},
        {"sizes", 0, BN_OPT_STRING, &sizes_arg, "flowers|WxH[,WxH...]", "flowers",
         0, 0, NULL, "image sizes: flower_photos' mix, or a list picked uniformly"},
        {"quality", 0, BN_OPT_INT, &quality, "Q", "90", 1, 100, NULL, "JPEG quality (baseline, 4:2:0)"},
        {"png-share", 0, BN_OPT_DOUBLE, &png_share, "P", "0", 0, 1, NULL,
         "fraction of images written as PNG instead of JPEG"},
        {"manifest", 0, BN_OPT_STRING, &manifest, "FILE", NULL, 0, 0, NULL,
         "also write a manifest (path<TAB>label per line) of the images"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {NULL, 0, 0, NULL, NULL, NULL, 0, 0, NULL, NULL},
    };
    const bn_cmd_spec spec = {
        "mkcorpus",
        "Write a reproducible synthetic labelled image corpus (one folder per class).",
        "bneck mkcorpus OUT_DIR [options]",
        "Writes OUT_DIR/<class>/<class>_NNNN.jpg (.png for the PNG share). Classes 0..4 are\n"
        "named daisy, dandelion, roses, sunflowers, tulips; then class_05, class_06, ...\n"
        "Each class has its own colour, shape and texture; each image has random\n"
        "placement, background, lighting and noise. --sizes flowers mimics flower_photos:\n"
        "55% 500x333, 10% 333x500, 25% 320x240, 10% 500x375/240x320/400x300.\n"
        "OUT_DIR must not exist or be empty. Manifest paths are relative to the manifest's\n"
        "folder when OUT_DIR is inside it, otherwise absolute.",
        opts,
    };
    const char *pos[1];
    int npos = 0;
    int prc = bn_cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (prc == -1) return BN_EXIT_OK;
    if (prc) return prc;
    bn_cli_apply_verbosity(verbose, quiet);
    if (npos != 1) return bn_cli_usage(&spec, "missing OUT_DIR (the folder to create)");
    const char *out_dir = pos[0];
    if (!*out_dir) return bn_cli_usage(&spec, "OUT_DIR is an empty string");

    size_choice explicit_sizes[MAX_SIZES];
    const size_choice *sizes = FLOWER_SIZES;
    int nsizes = (int)(sizeof FLOWER_SIZES / sizeof FLOWER_SIZES[0]);
    if (strcmp(sizes_arg, "flowers") != 0) {
        char why[256];
        nsizes = parse_sizes(sizes_arg, explicit_sizes, MAX_SIZES, why, sizeof why);
        if (nsizes < 0) return bn_cli_usage(&spec, "--sizes: %s", why);
        sizes = explicit_sizes;
    }
    int total_weight = 0;
    size_t maxpix = 0; /* pixels of the largest size: the one render buffer */
    for (int s = 0; s < nsizes; s++) {
        total_weight += sizes[s].weight;
        size_t np = (size_t)sizes[s].w * (size_t)sizes[s].h;
        if (np > maxpix) maxpix = np;
    }

    /* Everything below releases through one cleanup path. */
    int rc = BN_EXIT_FAIL;
    unsigned char *pix = NULL;
    char *prefix = NULL;
    char *path = NULL;
    FILE *mf = NULL;
    char err[PATH_MAX + 256];
    const char *hint = NULL;
    double t0 = bn_now();
    size_t nwritten = 0;
    double bytes = 0.0;

    if (prepare_out_dir(out_dir, err, sizeof err, &hint)) {
        bn_error(hint, "mkcorpus: %s", err);
        goto done;
    }
    if (manifest) {
        prefix = manifest_prefix(manifest, out_dir, err, sizeof err);
        if (!prefix) {
            bn_error("the manifest's folder must exist", "mkcorpus: %s", err);
            goto done;
        }
        mf = fopen(manifest, "w");
        if (!mf) {
            bn_error(NULL, "mkcorpus: cannot create manifest '%s': %s", manifest, strerror(errno));
            goto done;
        }
    }

    pix = mallocCheck(maxpix * 3);
    size_t pathcap = strlen(out_dir) + 256; /* + "/" + class (<64) + "/" + file (<128) */
    path = mallocCheck(pathcap);
    const char *sep = out_dir[strlen(out_dir) - 1] == '/' ? "" : "/";
    bn_jpeg_opts jo;
    memset(&jo, 0, sizeof jo);
    jo.quality = (int)quality;
    jo.color = BN_JCS_YCBCR;
    jo.h_samp = jo.v_samp = 2;
    const bn_png_opts po = {BN_PNG_RGB, 0, 0};

    for (int k = 0; k < (int)nclasses; k++) {
        char cname[64];
        bn_synth_class_name(k, cname, sizeof cname);
        snprintf(path, pathcap, "%s%s%s", out_dir, sep, cname);
        if (make_dirs(path, err, sizeof err)) {
            bn_error(NULL, "mkcorpus: %s", err);
            goto done;
        }
        for (long long i = 0; i < per_class; i++) {
            uint64_t st = image_state((uint64_t)seed, k, i);
            /* Size, format and pixels all come from this image's own stream. */
            int pick = (int)(next64(&st) % (uint64_t)total_weight);
            int s = 0;
            while (pick >= sizes[s].weight) pick -= sizes[s++].weight;
            int w = sizes[s].w, h = sizes[s].h;
            double u = (double)(next64(&st) >> 11) * (1.0 / 9007199254740992.0);
            int as_png = u < png_share;
            unsigned long long iseed = next64(&st);
            bn_synth_image(k, (int)nclasses, iseed, w, h, pix);

            unsigned char *enc = NULL;
            size_t enclen = 0;
            int erc = as_png ? bn_png_encode(pix, w, h, &po, &enc, &enclen, err, sizeof err)
                             : bn_jpeg_encode(pix, w, h, &jo, &enc, &enclen, err, sizeof err);
            if (erc) {
                bn_error(NULL, "mkcorpus: encoding image %lld of class %s (%dx%d): %s", i, cname, w, h, err);
                goto done;
            }
            char fname[128];
            snprintf(fname, sizeof fname, "%s_%04lld.%s", cname, i, as_png ? "png" : "jpg");
            snprintf(path, pathcap, "%s%s%s/%s", out_dir, sep, cname, fname);
            int wrc = bn_write_file(path, enc, enclen, err, sizeof err);
            free(enc);
            if (wrc) {
                bn_error("check free space and permissions", "mkcorpus: %s", err);
                goto done;
            }
            nwritten++;
            bytes += (double)enclen;
            if (mf && fprintf(mf, "%s%s/%s\t%s\n", prefix, cname, fname, cname) < 0) {
                bn_error(NULL, "mkcorpus: cannot write manifest '%s': %s", manifest, strerror(errno));
                goto done;
            }
        }
        bn_verbose("mkcorpus: class %d/%lld '%s': %lld images", k + 1, nclasses, cname, per_class);
    }
    if (mf) {
        int cerr = fclose(mf);
        mf = NULL;
        if (cerr != 0) {
            bn_error("check free space", "mkcorpus: cannot write manifest '%s': %s", manifest, strerror(errno));
            goto done;
        }
    }
    bn_info("mkcorpus: wrote %zu images in %lld classes to %s (%.1f MB, %.1f s)", nwritten, nclasses,
            out_dir, bytes / 1e6, bn_now() - t0);
    rc = BN_EXIT_OK;

done:
    if (mf) fclose(mf);
    free(pix);
    free(prefix);
    free(path);
    return rc;
}
