/* device.c: see device.h. */
#include "config.h"
#include "pipeline/device.h"
#include "pipeline/log.h"

#include <stdio.h>
#include <string.h>

static const char *const NAMES[] = {"auto", "cpu", "gpu"};

int bn_device_mode_parse(const char *s, bn_device_mode *out) {
    for (int m = 0; m < 3; m++)
        if (s && !strcmp(s, NAMES[m])) {
            *out = (bn_device_mode)m;
            return 0;
        }
    return -1;
}

const char *bn_device_mode_name(bn_device_mode m) { return m >= 0 && m <= BN_DEVICE_GPU ? NAMES[m] : "?"; }

int bn_device_assign(bn_device_mode mode, int local_rank, int local_size, int ngpus, int ranks_per_gpu,
                     const char *why_none, bn_device *out, char *err, size_t errlen) {
    out->gpu = -1;
    out->local_rank = local_rank;
    out->local_size = local_size;
    out->ngpus = ngpus > 0 ? ngpus : 0;
    if (ranks_per_gpu < 1) ranks_per_gpu = 1;
    if (mode == BN_DEVICE_CPU) return 0;
    if (out->ngpus == 0) {
        if (mode == BN_DEVICE_AUTO) return 0;
        snprintf(err, errlen, "--device gpu: this node has no usable GPU (%s); use --device auto to run on the CPU",
                 why_none && why_none[0] ? why_none : "none found");
        return -1;
    }
    int g = local_rank / ranks_per_gpu;
    out->gpu = g < out->ngpus ? g : -1; /* the ranks beyond the GPUs run on the CPU */
    return 0;
}

void bn_device_local(MPI_Comm comm, int *local_rank, int *local_size) {
    MPI_Comm node;
    mpiCheck(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    mpiCheck(MPI_Comm_rank(node, local_rank));
    mpiCheck(MPI_Comm_size(node, local_size));
    mpiCheck(MPI_Comm_free(&node));
}
