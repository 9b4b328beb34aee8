/* buildinfo.c: see buildinfo.h. Facts come from config.h (configure). */
#include "config.h"
#include "pipeline/buildinfo.h"

#include <jpeglib.h>
#include <png.h>

void bn_build_info(FILE *f) {
    fprintf(f, "bneck %s build\n", PACKAGE_VERSION);
    fprintf(f, "  MPI ............. %s\n", BN_MPI_INFO);
    fprintf(f, "  parallel HDF5 ... %s\n", BN_HDF5_INFO);
    fprintf(f, "  CBLAS ........... %s\n", BN_BLAS_INFO);
    fprintf(f, "  JPEG ............ %s (libjpeg API %d)\n", BN_JPEG_INFO, JPEG_LIB_VERSION);
    fprintf(f, "  PNG ............. %s (runtime %s)\n", BN_PNG_INFO, png_get_libpng_ver(NULL));
    fprintf(f, "  hashes .......... %s\n", BN_HASH_INFO);
    fprintf(f, "  job files ....... %s\n", BN_INIH_INFO);
    fprintf(f, "  oneDNN .......... %s\n", BN_DNNL_INFO);
    fprintf(f, "  CUDA/cuDNN ...... %s\n", BN_CUDA_INFO);
    fprintf(f, "  configure args .. %s\n", BN_CONFIGURE_ARGS[0] ? BN_CONFIGURE_ARGS : "(none)");
}
