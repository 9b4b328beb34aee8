/* buildinfo.c: see buildinfo.h. Facts come from config.h (configure). */
#include "config.h"
#include "pipeline/buildinfo.h"
#include "net/engine.h"

#include <jpeglib.h>
#include <mpi.h>
#include <png.h>
#include <string.h>

void bn_build_info(FILE *f) {
    fprintf(f, "bneck %s build\n", PACKAGE_VERSION);
    fprintf(f, "  MPI ............. %s (%s family)\n", BN_MPI_INFO, BN_MPI_FAMILY);
    /* MPI_Get_library_version may be called before MPI_Init: the library
     * actually loaded, which can differ from the headers built with. */
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(lib, &len) == MPI_SUCCESS && len > 0) {
        lib[len < (int)sizeof lib ? len : (int)sizeof lib - 1] = '\0';
        lib[strcspn(lib, "\r\n")] = '\0';
        for (char *c = lib; *c; c++)
            if (*c == '\t') *c = ' ';
        fprintf(f, "  MPI runtime ..... %s\n", lib);
    } else {
        fprintf(f, "  MPI runtime ..... (MPI_Get_library_version failed)\n");
    }
    fprintf(f, "  parallel HDF5 ... %s\n", BN_HDF5_INFO);
    fprintf(f, "  CBLAS ........... %s\n", BN_BLAS_INFO);
    fprintf(f, "  JPEG ............ %s (libjpeg API %d)\n", BN_JPEG_INFO, JPEG_LIB_VERSION);
    fprintf(f, "  PNG ............. %s (runtime %s)\n", BN_PNG_INFO, png_get_libpng_ver(NULL));
    fprintf(f, "  hashes .......... %s\n", BN_HASH_INFO);
    fprintf(f, "  job files ....... %s\n", BN_INIH_INFO);
    fprintf(f, "  figures ......... %s\n", BN_CAIRO_INFO);
    fprintf(f, "  JSON ............ %s\n", BN_JSONC_INFO);
    fprintf(f, "  oneDNN .......... %s\n", BN_DNNL_INFO);
    fprintf(f, "  CUDA/cuDNN ...... %s\n", BN_CUDA_INFO);
    fprintf(f, "  nvJPEG .......... %s\n", BN_NVJPEG_INFO);
    char why[256] = "";
    int ngpus = bn_engine_gpu_count(why, sizeof why);
    if (why[0])
        fprintf(f, "  GPUs visible .... %d (%s)\n", ngpus, why);
    else
        fprintf(f, "  GPUs visible .... %d\n", ngpus);
    fprintf(f, "  sanitizers ...... %s\n", BN_SANITIZERS_INFO);
    fprintf(f, "  configure args .. %s\n", BN_CONFIGURE_ARGS[0] ? BN_CONFIGURE_ARGS : "(none)");
    char table[1024];
    bn_backend_table_text(table, sizeof table);
    fprintf(f, "engine backends (--backend; cpu = the fastest built one offering the --precision):\n%s", table);
}
