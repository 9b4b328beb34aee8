/* test_device.c: which device each rank of a node gets (--device,
 * --ranks-per-gpu), and the refusal of --device gpu where there is none.
 * The mapping is a pure function of the node's numbers, so every case a
 * GPU node would see is checked here without one. */
#include "config.h"
#include "net/engine.h"
#include "pipeline/device.h"
#include "pipeline/engopts.h"
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
    int ngpus = bn_engine_gpu_count(why, sizeof why);
    CHECK(ngpus > 0 || why[0], "no GPU and no reason");
    printf("GPUs seen: %d%s%s\n", ngpus, why[0] ? ": " : "", why);

    /* bn_engine_pick_device: what a lone process (features, benchmark,
     * classify of image files) and each extract rank run on. */
    bn_engine_setup es;
    char note[256];
    memset(&es, 0, sizeof es);
    es.backend = "gemm", es.backend_auto = 1, es.device = BN_DEVICE_AUTO, es.ranks_per_gpu = 1, es.gpu = 7;
    CHECK(bn_engine_pick_device(&es, 0, 1, &d, note, sizeof note, err, sizeof err) == 0, "auto refused: %s", err);
    CHECK(es.device_picked == 1, "pick did not mark the setup");
    if (ngpus == 0) {
        CHECK(es.gpu == -1 && d.gpu == -1 && !strcmp(es.backend, "gemm"), "auto without a GPU left the CPU backend");
        CHECK(!strncmp(note, "CPU (--device auto", 18) && strstr(note, why), "auto note: %s", note);
    } else {
        CHECK(es.gpu == 0 && d.gpu == 0 && !strcmp(es.backend, "cuda"), "auto with %d GPUs: gpu %d, %s", ngpus, es.gpu,
              es.backend);
        CHECK(!strncmp(note, "GPU 0 (", 7), "auto note: %s", note);
    }
    /* --device cpu never takes a GPU. */
    es.backend = "gemm", es.device = BN_DEVICE_CPU, es.device_picked = 0;
    CHECK(bn_engine_pick_device(&es, 0, 1, &d, note, sizeof note, err, sizeof err) == 0 && es.gpu == -1 &&
              !strcmp(es.backend, "gemm") && !strncmp(note, "CPU (--device cpu", 17),
          "--device cpu: gpu %d, %s, %s", es.gpu, es.backend, note);
    /* A CPU backend named on the command line keeps the rank on the CPU. */
    es.backend = "ref", es.backend_auto = 0, es.device = BN_DEVICE_AUTO;
    CHECK(bn_engine_pick_device(&es, 0, 1, &d, note, sizeof note, err, sizeof err) == 0 && es.gpu == -1 &&
              d.gpu == -1 && !strcmp(es.backend, "ref"),
          "--backend ref: gpu %d, %s", es.gpu, es.backend);
    if (ngpus > 0) CHECK(strstr(note, "--backend ref runs on the CPU"), "named CPU backend note: %s", note);
    /* --backend cuda on a rank left without a GPU is refused, with the numbers. */
    es.backend = "cuda", es.backend_auto = 0, es.ranks_per_gpu = 1;
    err[0] = 0;
    CHECK(bn_engine_pick_device(&es, ngpus, ngpus + 1, &d, note, sizeof note, err, sizeof err) == -1 &&
              strstr(err, "--backend cuda runs on a GPU") && strstr(err, "--backend cpu"),
          "--backend cuda without a GPU: %s", err);
    /* --device gpu on a node without one is refused. */
    if (ngpus == 0) {
        es.backend = "gemm", es.backend_auto = 1, es.device = BN_DEVICE_GPU;
        CHECK(bn_engine_pick_device(&es, 0, 1, &d, note, sizeof note, err, sizeof err) == -1 &&
                  strstr(err, "no usable GPU"),
              "--device gpu without a GPU: %s", err);
    }
    return t_done("test_device");
}
