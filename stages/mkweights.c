/* mkweights.c: "bneck mkweights" - a random Inception v3 in the Keras weights
 * layout, for demos and tests (real weights cannot be downloaded everywhere).
 * Kernels are He-initialised; every batch norm's statistics are measured on
 * synthetic photo-like images, layer by layer, so activations stay
 * normalised through all 94 layers and the features carry information. */
#include "io/image.h"
#include "io/weights.h"
#include "net/calib.h"
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "pipeline/mpi.h"
#include "stages/synth.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int bn_cmd_mkweights(int argc, char **argv) {
    long long seed = 1, ncalib = 8, first = 1;
    int verbose = 0, quiet = 0;
    const bn_opt opts[] = {
        {"seed", 0, BN_OPT_INT, &seed, "S", "1", 0, 9007199254740991.0, NULL, "random seed; the same seed gives the same file"},
        {"calib-images", 0, BN_OPT_INT, &ncalib, "N", "8", 1, 256, NULL, "synthetic images the batch-norm statistics are measured on"},
        {"first-index", 0, BN_OPT_INT, &first, "N", "1", 0, 1000000, NULL, "number of the first conv2d_N layer (Keras starts at 1)"},
        BN_OPTS_VERBOSITY(&verbose, &quiet),
        {0},
    };
    const bn_cmd_spec spec = {
        "mkweights", "Write a random Inception v3 weights file in the Keras layout, with calibrated batch norms.",
        "bneck mkweights OUT.h5 [options]",
        "The file has the layout of Keras' inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5\n"
        "(docs/weights.md). Kernels are He-initialised normals, beta uniform in [-0.1, 0.1],\n"
        "and each moving mean and variance is measured on synthetic images (mkcorpus'\n"
        "generator), so features are well scaled. Same seed, same bytes (on one machine).",
        opts};
    const char *pos[1];
    int npos = 0;
    int rc = bn_cli_parse(&spec, argc, argv, pos, 1, &npos);
    if (rc < 0) return 0;
    if (rc) return rc;
    if (npos != 1) return bn_cli_usage(&spec, "give the output file OUT.h5");
    bn_cli_apply_verbosity(verbose, quiet);
    int rank = 0;
    rank = bn_launch_rank();
    if (rank != 0) return 0;

    double t0 = bn_now();
    bn_raw_params p;
    bn_raw_alloc(&p);
    bn_random_init(&p, (unsigned long long)seed);
    /* Calibration inputs: photo-like synthetic images of 5 classes, at the
     * two common flower_photos sizes, preprocessed the Keras way. */
    const size_t img_floats = (size_t)BN_INPUT_SIZE * BN_INPUT_SIZE * 3;
    float *in = mallocCheck((size_t)ncalib * img_floats * sizeof(float));
    bn_rgb img = {0, 0, mallocCheck(500 * 333 * 3), 500 * 333 * 3};
    for (int i = 0; i < ncalib; i++) {
        img.width = i % 2 ? 320 : 500;
        img.height = i % 2 ? 240 : 333;
        bn_synth_image(i % 5, 5, (unsigned long long)seed * 1000003ULL + (unsigned long long)i, img.width, img.height, img.rgb);
        bn_resize_norm(&img, BN_INPUT_SIZE, BN_INPUT_SIZE, BN_NORM_KERAS, in + (size_t)i * img_floats);
    }
    bn_calibrate(&p, in, (int)ncalib);
    char err[1024];
    int status = BN_EXIT_OK;
    if (bn_weights_write(pos[0], &p, (int)first, err, sizeof err)) {
        bn_error("check that the folder exists and is writable", "%s", err);
        status = BN_EXIT_FAIL;
    } else {
        char sha[65] = "";
        if (bn_file_sha256(pos[0], sha, err, sizeof err)) snprintf(sha, sizeof sha, "?");
        bn_info("mkweights: wrote %s (94 convolutions, seed %lld, %lld calibration images, %.1f s), sha256 %s", pos[0],
                seed, ncalib, bn_now() - t0, sha);
    }
    bn_rgb_free(&img);
    free(in);
    bn_raw_free(&p);
    return status;
}
