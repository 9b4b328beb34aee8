/* tables.c: the timing tables printed by extract and bneck report (tables.h). */
#include "pipeline/tables.h"

#include <stdio.h>

void bn_print_extract_timing(FILE *fp, const bn_rank_timing *t, int size, double wall) {
    /* gpu s and copy s: the GPU's own timers, parts of forward s; "-" on the CPU. */
    fprintf(fp, "\nrank     done  failed    read s  decode s  forward s   write s    idle s    wall s  images/s  idle %%"
           "     gpu s    copy s  device\n");
    bn_rank_timing sum = {0};
    double maxw = 0, minw = 1e300;
    for (int r = 0; r < size; r++) {
        const bn_rank_timing *x = &t[r];
        char dev[16], gpu[16] = "-", copy[16] = "-";
        if (x->device >= 0) {
            snprintf(dev, sizeof dev, "gpu%d", x->device);
            snprintf(gpu, sizeof gpu, "%.2f", x->gpu_s);
            snprintf(copy, sizeof copy, "%.2f", x->copy_s);
        } else {
            snprintf(dev, sizeof dev, "cpu");
        }
        fprintf(fp, "%4d %8lld %7lld %9.2f %9.2f %10.2f %9.2f %9.2f %9.2f %9.2f %7.1f %9s %9s  %s\n", x->rank, x->done,
               x->failed, x->read_s, x->decode_s, x->forward_s, x->write_s, x->idle_s, x->wall_s, x->images_per_s,
               x->wall_s > 0 ? 100.0 * x->idle_s / x->wall_s : 0.0, gpu, copy, dev);
        sum.done += x->done;
        sum.failed += x->failed;
        sum.read_s += x->read_s;
        sum.decode_s += x->decode_s;
        sum.forward_s += x->forward_s;
        sum.write_s += x->write_s;
        sum.idle_s += x->idle_s;
        sum.wall_s += x->wall_s;
        double busy = x->wall_s - x->idle_s;
        if (busy > maxw) maxw = busy;
        if (busy < minw) minw = busy;
    }
    double n = (double)(sum.done + sum.failed);
    fprintf(fp, " all %8lld %7lld %9.2f %9.2f %10.2f %9.2f %9.2f %9.2f %9.2f %7.1f\n", sum.done, sum.failed, sum.read_s,
           sum.decode_s, sum.forward_s, sum.write_s, sum.idle_s, wall, wall > 0 ? n / wall : 0.0,
           sum.wall_s > 0 ? 100.0 * sum.idle_s / sum.wall_s : 0.0);
    fprintf(fp, "load imbalance: %.1f%% (busiest rank's busy time over the least busy's, minus 1)\n",
           minw > 0 ? 100.0 * (maxw / minw - 1.0) : 0.0);
    fprintf(fp, "wall time: %.2f s for %.0f images on %d rank%s\n", wall, n, size, size == 1 ? "" : "s");
}
