/* test_device.c: which device each rank of a node gets (--device,
 * --ranks-per-gpu), and the refusal of --device gpu where there is none.
 * The mapping is a pure function of the node's numbers, so every case a
 * GPU node would see is checked here without one. */
#include "config.h"
#include "pipeline/device.h"
#include "tests/testutil.h"

#include <string.h>

/* The GPU of each of n local ranks, as a string like "0 1 - -" (- = CPU). */
static void map(bn_device_mode mode, int n, int ngpus, int per, char *out, size_t len) {
    out[0] = 0;
    for (int r = 0; r < n; r++) {
        bn_device d;
        char err[256] = "";
        size_t u = strlen(out);
        if (bn_device_assign(mode, r, n, ngpus, per, "none", &d, err, sizeof err)) {
            snprintf(out + u, len - u, "%sE", r ? " " : "");
            continue;
        }
        if (d.gpu >= 0)
            snprintf(out + u, len - u, "%s%d", r ? " " : "", d.gpu);
        else
            snprintf(out + u, len - u, "%s-", r ? " " : "");
    }
}

int main(void) {
    static const struct {
        bn_device_mode mode;
        int ranks, ngpus, per;
        const char *want;
    } cases[] = {
        {BN_DEVICE_AUTO, 4, 4, 1, "0 1 2 3"},      /* one rank per GPU */
        {BN_DEVICE_AUTO, 3, 1, 1, "0 - -"},        /* 1 GPU rank and 2 CPU ranks */
        {BN_DEVICE_AUTO, 2, 1, 2, "0 0"},          /* 2 ranks sharing one GPU */
        {BN_DEVICE_AUTO, 5, 2, 2, "0 0 1 1 -"},    /* shared, and one left over on the CPU */
        {BN_DEVICE_AUTO, 3, 0, 1, "- - -"},        /* no GPU: auto falls back to the CPU */
        {BN_DEVICE_CPU, 3, 2, 1, "- - -"},         /* cpu never takes one */
        {BN_DEVICE_GPU, 2, 2, 1, "0 1"},
        {BN_DEVICE_GPU, 3, 2, 1, "0 1 -"},         /* more ranks than GPUs is allowed */
        {BN_DEVICE_GPU, 2, 0, 1, "E E"},           /* gpu on a node without one is refused */
        {BN_DEVICE_AUTO, 2, 8, 0, "0 1"},          /* ranks_per_gpu below 1 counts as 1 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[128];
        map(cases[i].mode, cases[i].ranks, cases[i].ngpus, cases[i].per, got, sizeof got);
        CHECK(!strcmp(got, cases[i].want), "--device %s, %d ranks, %d GPUs, %d per GPU: got '%s', want '%s'",
              bn_device_mode_name(cases[i].mode), cases[i].ranks, cases[i].ngpus, cases[i].per, got, cases[i].want);
    }

    /* The refusal says why there is no GPU and what to do instead. */
    bn_device d;
    char err[256] = "";
    CHECK(bn_device_assign(BN_DEVICE_GPU, 0, 1, 0, 1, "no driver", &d, err, sizeof err) == -1, "gpu without one accepted");
    CHECK(strstr(err, "no usable GPU") && strstr(err, "no driver") && strstr(err, "--device auto"), "refusal: %s", err);
    CHECK(d.gpu == -1 && d.local_rank == 0 && d.local_size == 1, "refused device filled wrongly");

    /* Names. */
    bn_device_mode m;
    CHECK(bn_device_mode_parse("gpu", &m) == 0 && m == BN_DEVICE_GPU, "parse gpu");
    CHECK(bn_device_mode_parse("cuda", &m) == -1, "parse accepts 'cuda'");
    CHECK(!strcmp(bn_device_mode_name(BN_DEVICE_AUTO), "auto"), "name of auto");

    /* No GPU seen comes with a reason (no GPU backend, no driver, no device). */
    char why[128] = "";
    int ngpus = bn_device_count(why, sizeof why);
    CHECK(ngpus > 0 || why[0], "no GPU and no reason");
    printf("GPUs seen: %d%s%s\n", ngpus, why[0] ? ": " : "", why);
    return t_done("test_device");
}
