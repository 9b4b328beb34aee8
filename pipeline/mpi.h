/* mpi.h: starting MPI only when a command needs it.
 *
 * Commands that run alone (--help, --version, mkcorpus, mkweights, features,
 * benchmark, classify of a few images) never initialise MPI, so they answer
 * at once on any machine (an MPI singleton start can take seconds where the
 * host name does not resolve). Commands that share work across ranks call
 * bn_mpi_need() after parsing their command line.
 *
 * MPI is always asked for MPI_THREAD_MULTIPLE: extract serves work units
 * from a thread on rank 0 (pipeline/dispatch.h). What was granted is kept for
 * the stages that need it to check.
 */
#ifndef BN_MPI_H
#define BN_MPI_H

/* Initialise MPI once (later calls do nothing) and set the log's rank.
 * Returns the thread level MPI granted (MPI_THREAD_*). */
int bn_mpi_need(void);

/* 1 when bn_mpi_need() has run. */
int bn_mpi_started(void);

/* The thread level MPI granted, or -1 before bn_mpi_need(). */
int bn_mpi_thread_level(void);

/* Name of a thread level, "MPI_THREAD_MULTIPLE" etc. */
const char *bn_mpi_thread_name(int level);

/* This process's rank in its launch: the MPI rank once MPI is up, else
 * what the launcher (mpirun, srun, hydra) put in the environment, else 0.
 * Commands that run alone use it to let one process of a launch work. */
int bn_launch_rank(void);

/* Finalise MPI if bn_mpi_need() started it (main() at exit). */
void bn_mpi_end(void);

#endif
