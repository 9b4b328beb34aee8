/* sysinfo.h: facts about the node a rank runs on. */
#ifndef BN_SYSINFO_H
#define BN_SYSINFO_H

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

#endif
