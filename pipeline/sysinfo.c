/* sysinfo.c: see sysinfo.h. */
#define _GNU_SOURCE
#include "pipeline/sysinfo.h"

#include <ctype.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void bn_cpu_model(char *out, size_t len) {
    if (!out || !len) return;
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t n = strcspn(v, "\n");
        while (n > 0 && isspace((unsigned char)v[n - 1])) n--;
        if (n > 0) snprintf(out, len, "%.*s", (int)n, v);
        break;
    }
    fclose(f);
}

int bn_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1000000 ? (int)n : 1;
}

double bn_memory_gib(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || size <= 0) return 0.0;
    return (double)pages * (double)size / (1024.0 * 1024.0 * 1024.0);
}
