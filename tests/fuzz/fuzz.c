/* fuzz.c: libFuzzer targets for bneck's readers of outside input. One
 * source, one target per build: FUZZ_TARGET picks it (see Makefile.am,
 * --enable-fuzzers, and .ci/fuzz).
 *   1 decode     the image decoder (JPEG and PNG), from memory
 *   2 manifest   the manifest parser (the input is the manifest file)
 *   3 job        the job-file parser and resolver
 *   4 weights    the Keras weights loader (the input is the HDF5 file)
 *   5 features   the features-file reader and the classifier reader
 * File-based readers get the input written to a file in a private folder.
 * A target must never crash or trip ASan or UBSan, whatever the bytes;
 * a refusal (-1 with a message) is the expected answer to junk. */
#include "config.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/classifier.h"
#include "io/corpus.h"
#include "io/featread.h"
#include "io/image.h"
#include "io/weights.h"
#include "net/model.h"
#include "pipeline/job.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must be set (1 decode, 2 manifest, 3 job, 4 weights, 5 features)"
#endif

static char dir[64];   /* private folder for file-based targets */
static char file[128]; /* the input's file in it */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "fuzz: MPI_Init_thread failed\n");
        abort();
    }
    snprintf(dir, sizeof dir, "%s/bneck-fuzz.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    const char *names[] = {"", "", "input.txt", "job.ini", "weights.h5", "file.h5"};
    snprintf(file, sizeof file, "%s/%s", dir, names[FUZZ_TARGET]);
    return 0;
}

/* Write the input to `file`; 0, or -1 (then the input is skipped). */
static int put_file(const uint8_t *data, size_t size) {
    FILE *fp = fopen(file, "wb");
    if (!fp) return -1;
    int ok = fwrite(data, 1, size, fp) == size;
    if (fclose(fp) != 0) ok = 0;
    return ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[1024];
#if FUZZ_TARGET == 1
    static bn_decoder *d;
    static bn_rgb img;
    if (!d) {
        /* Small enough that the fuzzer's memory limit is never what stops a
         * huge header: the decoder must refuse it first. */
        bn_decode_opts o = {.max_pixels = 4 << 20, .dct_fast = 0};
        d = bn_decoder_new(&o);
        if (!d) abort();
    }
    bn_img_result res;
    bn_decode_mem(d, data, size, &img, &res);
    if (res.status == BN_IMG_OK && (img.width <= 0 || img.height <= 0 || !img.rgb)) abort();
    (void)err;
#elif FUZZ_TARGET == 2
    if (put_file(data, size) < 0) return 0;
    bn_split_opts so = {10, 10};
    bn_corpus c;
    memset(&c, 0, sizeof c);
    if (bn_corpus_read_manifest(file, &so, &c, err, sizeof err) == 0) bn_corpus_free(&c);
#elif FUZZ_TARGET == 3
    if (put_file(data, size) < 0) return 0;
    bn_job job;
    memset(&job, 0, sizeof job);
    if (bn_job_read(file, &job) == 0) bn_job_resolve(&job);
    bn_job_free(&job); /* it owns its list of errors either way */
    (void)err;
#elif FUZZ_TARGET == 4
    if (put_file(data, size) < 0) return 0;
    bn_raw_params p;
    if (bn_weights_read(file, &p, err, sizeof err) == 0) bn_raw_free(&p);
#elif FUZZ_TARGET == 5
    if (put_file(data, size) < 0) return 0;
    bn_feats f;
    if (bn_feats_open(file, MPI_COMM_SELF, &f, err, sizeof err) == 0) {
        if (bn_feats_load_paths(&f, err, sizeof err) == 0 && f.n > 0) free(bn_feats_path(&f, 0));
        bn_feats_run *runs = NULL;
        int nruns = 0;
        if (bn_feats_read_runs(&f, &runs, &nruns, err, sizeof err) == 0) bn_feats_runs_free(runs, nruns);
        if (f.n > 0 && f.dim > 0 && f.dim <= 4096) {
            float *row = malloc((size_t)f.dim * sizeof *row);
            long long r = 0;
            if (row) bn_feats_read(&f, &r, 1, row, err, sizeof err);
            free(row);
        }
        bn_feats_close(&f);
    }
    bn_classifier c;
    if (bn_classifier_read(file, &c, err, sizeof err) == 0) bn_classifier_free(&c);
#endif
    return 0;
}
