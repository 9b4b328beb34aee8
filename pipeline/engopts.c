/* engopts.c: resolving the engine option group (pipeline/engopts.h). */
#include "pipeline/engopts.h"
#include "pipeline/sysinfo.h"

#include <stdio.h>
#include <string.h>

int bn_engine_opts_check(const bn_engine_opts *eo, bn_engine_setup *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (bn_backend_parse(eo->backend ? eo->backend : "cpu", &out->backend)) {
        snprintf(err, errlen, "backend '%s' is not built in (this build has %s)", eo->backend, bn_backend_choices());
        return -1;
    }
    out->norm = BN_NORM_KERAS;
    if (eo->preprocess && bn_norm_parse(eo->preprocess, &out->norm)) {
        snprintf(err, errlen, "unknown preprocess '%s' (keras or tf2015)", eo->preprocess);
        return -1;
    }
    if (eo->dct && strcmp(eo->dct, "accurate") && strcmp(eo->dct, "fast")) {
        snprintf(err, errlen, "unknown dct '%s' (accurate or fast)", eo->dct);
        return -1;
    }
    if (eo->batch < 1 || eo->batch > 4096) {
        snprintf(err, errlen, "batch %lld is outside 1..4096", eo->batch);
        return -1;
    }
    out->dopts.max_pixels = eo->max_pixels > 0 ? eo->max_pixels : BN_DEFAULT_MAX_PIXELS;
    out->dopts.dct_fast = eo->dct && !strcmp(eo->dct, "fast");
    out->threads = eo->threads > 0 ? (int)eo->threads : bn_default_threads();
    return 0;
}
