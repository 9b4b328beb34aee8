/* sysinfo.c: see sysinfo.h. */
#define _GNU_SOURCE
#include "pipeline/sysinfo.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static int env_int(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end == '\0' && x > 0 && x < 1000000) ? (int)x : 0;
}

int bn_bound_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int bn_default_threads(void) {
    int slurm = env_int("SLURM_CPUS_PER_TASK");
    if (slurm) return slurm;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!local) local = env_int("MPI_LOCALNRANKS");
    if (!local) local = env_int("SLURM_NTASKS_PER_NODE");
    if (!local) {
        /* Not under an MPI launcher: the CPUs this process may use (a
         * container's or taskset's limit included). */
        int bound = bn_bound_cpus();
        return bound > 0 ? bound : (online > 0 ? (int)online : 1);
    }
    int t = online > 0 ? (int)(online / local) : 1;
    return t > 0 ? t : 1;
}

double bn_peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}
