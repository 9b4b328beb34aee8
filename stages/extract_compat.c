/* extract_compat.c: TEMPORARY stand-in for the typed extract entry point
 * (stages/stages.h) until stages/extract.c provides bn_extract_run: it runs
 * "bneck extract" through its command line. Delete this file (and its line
 * in Makefile.am) when the real one lands. */
#include "pipeline/cli.h"
#include "pipeline/commands.h"
#include "pipeline/log.h"
#include "stages/stages.h"

#include <stdio.h>
#include <string.h>

void bn_extract_cfg_init(bn_extract_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    bn_engine_opts eo = BN_ENGINE_OPTS_INIT;
    cfg->eng = eo;
    cfg->validation_pct = 10;
    cfg->testing_pct = 10;
    cfg->shard_index = 0;
    cfg->shard_count = 1;
    cfg->progress = "auto";
}

int bn_extract_run(const bn_extract_cfg *cfg, MPI_Comm comm, bn_extract_result *res) {
    (void)comm;
    if (res) memset(res, 0, sizeof *res);
    if (cfg->shard_count > 1) {
        if (bn_log_rank() == 0) bn_error(NULL, "this build's extract does not take shards yet");
        return BN_EXIT_FAIL;
    }
    char s_vp[32], s_tp[32], s_batch[32], s_threads[32], s_pix[32];
    snprintf(s_vp, sizeof s_vp, "%.17g", cfg->validation_pct);
    snprintf(s_tp, sizeof s_tp, "%.17g", cfg->testing_pct);
    snprintf(s_batch, sizeof s_batch, "%lld", cfg->eng.batch);
    snprintf(s_threads, sizeof s_threads, "%lld", cfg->eng.threads);
    snprintf(s_pix, sizeof s_pix, "%lld", cfg->eng.max_pixels);
    const char *argv[40];
    int ac = 0;
    argv[ac++] = "extract";
    argv[ac++] = cfg->images ? "--images" : "--manifest";
    argv[ac++] = cfg->images ? cfg->images : cfg->manifest;
    argv[ac++] = "--weights";
    argv[ac++] = cfg->weights;
    argv[ac++] = "--out";
    argv[ac++] = cfg->out;
    argv[ac++] = "--backend";
    argv[ac++] = cfg->eng.backend ? cfg->eng.backend : "cpu";
    argv[ac++] = "--batch";
    argv[ac++] = s_batch;
    argv[ac++] = "--threads";
    argv[ac++] = s_threads;
    argv[ac++] = "--max-pixels";
    argv[ac++] = s_pix;
    argv[ac++] = "--preprocess";
    argv[ac++] = cfg->eng.preprocess ? cfg->eng.preprocess : "keras";
    argv[ac++] = "--dct";
    argv[ac++] = cfg->eng.dct ? cfg->eng.dct : "accurate";
    argv[ac++] = "--validation-percentage";
    argv[ac++] = s_vp;
    argv[ac++] = "--testing-percentage";
    argv[ac++] = s_tp;
    argv[ac++] = "--progress";
    argv[ac++] = cfg->progress ? cfg->progress : "auto";
    bn_level level = bn_log_level();
    if (cfg->quiet || level == BN_QUIET) argv[ac++] = "-q";
    if (level >= BN_VERBOSE) argv[ac++] = "-v";
    if (level >= BN_DEBUG) argv[ac++] = "-v";
    argv[ac] = NULL;
    int rc = bn_cmd_extract(ac, (char **)argv);
    bn_log_init(bn_log_rank(), level);
    if (res) {
        res->complete = rc == BN_EXIT_OK;
        res->stopped = rc == BN_EXIT_RESUME;
    }
    return rc == BN_CLI_USAGE ? BN_EXIT_FAIL : rc;
}
