/* device.h: which device a rank runs the network on (--device).
 *
 * Ranks of a node are numbered by node-local rank (MPI_Comm_split_type,
 * shared memory) and handed the node's usable GPUs in order, ranks_per_gpu
 * to a GPU; ranks beyond them run on the CPU, and extract's dynamic work
 * sharing balances the mix. "auto" takes a GPU where one is left for the
 * rank, "cpu" never does, "gpu" refuses a node that has no usable GPU.
 * This build's GPU count comes from its GPU backend (bn_engine_gpu_count);
 * a build without one sees none. pipeline/engopts.h picks a rank's device
 * and backend from these (bn_engine_pick_device).
 */
#ifndef BN_DEVICE_H
#define BN_DEVICE_H

#include <mpi.h>
#include <stddef.h>

typedef enum {
    BN_DEVICE_AUTO = 0, /* a GPU when the node has one for this rank, else the CPU */
    BN_DEVICE_CPU = 1,  /* the CPU */
    BN_DEVICE_GPU = 2,  /* a GPU; a node without a usable one is refused */
} bn_device_mode;

/* Parse "auto", "cpu" or "gpu". 0, or -1 for another name. */
int bn_device_mode_parse(const char *s, bn_device_mode *out);
const char *bn_device_mode_name(bn_device_mode m);

/* Where one rank runs. */
typedef struct {
    int gpu;        /* device index for the GPU backend, or -1: the CPU */
    int local_rank; /* this rank among the ranks of its node */
    int local_size; /* ranks on the node */
    int ngpus;      /* usable GPUs the node showed */
} bn_device;

/* Pure: the device of node-local rank local_rank of local_size on a node
 * with ngpus usable GPUs, ranks_per_gpu (>= 1) ranks to a GPU. GPU g takes
 * local ranks g*ranks_per_gpu .. (g+1)*ranks_per_gpu - 1; the rest get the
 * CPU. Returns 0 with *out filled, or -1 with a one-line reason in err:
 * mode gpu on a node without a usable GPU (why_none says why there is none). */
int bn_device_assign(bn_device_mode mode, int local_rank, int local_size, int ngpus, int ranks_per_gpu,
                     const char *why_none, bn_device *out, char *err, size_t errlen);

/* Collective over comm: node-local rank and size (ranks sharing memory). */
void bn_device_local(MPI_Comm comm, int *local_rank, int *local_size);

#endif
