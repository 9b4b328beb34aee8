/* tests/slurm/hello.c: a stand-in for bneck in tests/slurm_launcher.sh.
 * Prints "rank R of N"; with HELLO_WAIT=1 it then waits (up to 60 s) for
 * SIGUSR1 or SIGTERM, prints "rank R got signal S" and exits with 75, as
 * bneck extract does when stopped. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got;
static void on_signal(int s) { got = s; }

int main(int argc, char **argv) {
    int rank, size;
    const char *wait = getenv("HELLO_WAIT");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    printf("rank %d of %d\n", rank, size);
    fflush(stdout);
    if (wait && !strcmp(wait, "1")) {
        for (int i = 0; i < 600 && !got; i++) usleep(100000);
        printf("rank %d got signal %d\n", rank, (int)got);
        fflush(stdout);
    }
    MPI_Finalize();
    return got ? 75 : 0;
}
