/* sysinfo.h: facts about the node a rank runs on. */
#ifndef BN_SYSINFO_H
#define BN_SYSINFO_H

#include <stddef.h>

/* Threads a rank should use by default: SLURM_CPUS_PER_TASK when Slurm sets
 * it, else the node's online CPUs divided by the ranks on this node (from the
 * launcher's environment), at least 1. So "mpirun -n 2" on a 2-core machine
 * gives 1 thread per rank, not 2. */
int bn_default_threads(void);

/* CPUs this process is bound to (its affinity mask), or 0 if unknown.
 * Open MPI binds each rank to one core by default for up to 2 ranks. */
int bn_bound_cpus(void);

/* Peak resident set size of this process, in MiB. */
double bn_peak_rss_mib(void);

/* The CPU's model name as /proc/cpuinfo gives it ("AMD EPYC 9B14"), written
 * into out (len bytes, NUL-terminated); "unknown" where the file or its
 * "model name" line is missing (another OS, some ARM kernels). */
void bn_cpu_model(char *out, size_t len);

/* CPUs online on this node (sysconf), at least 1. */
int bn_online_cpus(void);

/* Total memory of this node in GiB (sysconf), or 0 when unknown. */
double bn_memory_gib(void);

#endif
