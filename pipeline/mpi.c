/* mpi.c: starting MPI only when needed (pipeline/mpi.h). */
#include "pipeline/mpi.h"
#include "pipeline/log.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_level = -1; /* granted thread level; -1: not started */

int bn_mpi_need(void) {
    if (g_level >= 0) return g_level;
    int inited = 0, provided = MPI_THREAD_SINGLE;
    MPI_Initialized(&inited);
    if (inited)
        mpiCheck(MPI_Query_thread(&provided));
    else {
        /* BNECK_MPI_THREADS=funneled asks for less, to test the refusal. */
        const char *want = getenv("BNECK_MPI_THREADS");
        int level = want && !strcmp(want, "funneled") ? MPI_THREAD_FUNNELED : MPI_THREAD_MULTIPLE;
#ifdef OPEN_MPI
        /* Open MPI's MPI-IO (ompio) asks each of its shared-file-pointer
         * components whether it can serve a file it opens. The "lockedfile"
         * one writes "PATH.locktest.RANK" into a 256-byte buffer, so a path
         * of about 240 bytes or more overflows it and the process aborts
         * ("buffer overflow detected"; seen with Open MPI 4.1.4, and the
         * buffer is the same in later releases). bneck never uses shared
         * file pointers, so it leaves that component out unless the user
         * chose the components (docs/mpi.md). */
        if (!getenv("OMPI_MCA_sharedfp") && setenv("OMPI_MCA_sharedfp", "^lockedfile", 0) != 0)
            bn_warn("cannot set OMPI_MCA_sharedfp: paths of 240 bytes or more may crash Open MPI's MPI-IO");
#endif
        mpiCheck(MPI_Init_thread(NULL, NULL, level, &provided));
    }
    g_level = provided;
    int rank = 0;
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    bn_log_init(rank, bn_log_level());
    return g_level;
}

int bn_mpi_started(void) { return g_level >= 0; }

int bn_mpi_thread_level(void) { return g_level; }

const char *bn_mpi_thread_name(int level) {
    if (level == MPI_THREAD_MULTIPLE) return "MPI_THREAD_MULTIPLE";
    if (level == MPI_THREAD_SERIALIZED) return "MPI_THREAD_SERIALIZED";
    if (level == MPI_THREAD_FUNNELED) return "MPI_THREAD_FUNNELED";
    if (level == MPI_THREAD_SINGLE) return "MPI_THREAD_SINGLE";
    return "an unknown thread level";
}

void bn_mpi_end(void) {
    if (g_level < 0) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
    g_level = -1;
}

int bn_launch_rank(void) {
    if (g_level >= 0) {
        int rank = 0;
        mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
        return rank;
    }
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}
