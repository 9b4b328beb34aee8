/* engopts.c: resolving the engine option group (pipeline/engopts.h). */
#include "pipeline/engopts.h"
#include "pipeline/log.h"
#include "pipeline/sysinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bn_engine_opts_check(const bn_engine_opts *eo, bn_engine_setup *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->precision = BN_PREC_FP32;
    if (eo->precision && bn_precision_parse(eo->precision, &out->precision)) {
        snprintf(err, errlen, "unknown precision '%s' (fp32, bf16, int8, tf32 or fp16)", eo->precision);
        return -1;
    }
    out->backend_auto = !eo->backend || !strcmp(eo->backend, "cpu");
    out->backend = bn_backend_resolve(eo->backend ? eo->backend : "cpu", out->precision, err, errlen);
    if (!out->backend && out->backend_auto) {
        /* A precision only the GPU backend offers (tf32, fp16): the rank
         * must get a GPU (bn_engine_pick_device says so where it does not). */
        char e2[256];
        out->backend = bn_backend_resolve("cuda", out->precision, e2, sizeof e2);
        if (!out->backend)
            snprintf(err, errlen, "--precision %s runs on a GPU, and %s", bn_precision_name(out->precision),
                     strstr(e2, "not built") ? "this build has no GPU backend (bneck --build-info)" : e2);
    }
    if (!out->backend) return -1;
    static int warned;
    if (out->precision != BN_PREC_FP32 && (!eo->backend || !strcmp(eo->backend, "cpu")) &&
        !strcmp(out->backend, "gemm") && !warned && bn_log_rank() == 0) {
        warned = 1;
        bn_warn("--precision %s runs on the gemm backend here, which emulates its rounding in fp32: the same features, "
                "but no faster than fp32 (this build has no oneDNN; see bneck --build-info)",
                bn_precision_name(out->precision));
    }
    out->calibration = eo->calibration;
    if (out->precision == BN_PREC_INT8 && !eo->calibration) {
        snprintf(err, errlen, "--precision int8 needs --calibration CAL.h5 (make one with: bneck calibrate --weights W.h5 "
                              "--images DIR --out CAL.h5); there are no default scales");
        return -1;
    }
    if (out->precision != BN_PREC_INT8 && eo->calibration) {
        snprintf(err, errlen, "--calibration is for --precision int8 (this run is %s)", bn_precision_name(out->precision));
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
    out->device = BN_DEVICE_AUTO;
    if (eo->device && bn_device_mode_parse(eo->device, &out->device)) {
        snprintf(err, errlen, "unknown device '%s' (auto, cpu or gpu)", eo->device);
        return -1;
    }
    /* Only what every rank answers alike is checked here (a usage error
     * stops all ranks before any collective); whether a node has a usable
     * GPU is agreed among the ranks by the stage that picks the device. */
    if (out->device == BN_DEVICE_CPU && bn_backend_is_gpu(out->backend)) {
        if (out->backend_auto)
            snprintf(err, errlen, "--precision %s runs only on a GPU (the cuda backend), and --device cpu keeps this run "
                     "on the CPU: use fp32, bf16 or int8 there", bn_precision_name(out->precision));
        else
            snprintf(err, errlen, "--backend %s runs only on a GPU, and --device cpu keeps this run on the CPU",
                     out->backend);
        return -1;
    }
    if (out->device == BN_DEVICE_GPU) {
        char why[128];
        if (!bn_backend_resolve("cuda", out->precision, why, sizeof why)) {
            snprintf(err, errlen, "--device gpu: %s; use --device auto or cpu",
                     strstr(why, "not built") ? "this build has no GPU backend" : why);
            return -1;
        }
    }
    out->gpu = -1;
    out->ranks_per_gpu = eo->ranks_per_gpu > 0 ? (int)eo->ranks_per_gpu : 1;
    out->streams = (int)eo->streams;
    if (out->streams > out->threads) {
        snprintf(err, errlen, "--streams %d is more than the %d thread%s of this rank (each stream needs one)", out->streams,
                 out->threads, out->threads == 1 ? "" : "s");
        return -1;
    }
    return 0;
}

int bn_engine_pick_device(bn_engine_setup *es, int local_rank, int local_size, bn_device *dev, char *note,
                          size_t notelen, char *err, size_t errlen) {
    char why[128] = "";
    int ngpus = es->device == BN_DEVICE_CPU ? 0 : bn_engine_gpu_count(why, sizeof why);
    es->device_picked = 1;
    es->gpu = -1;
    if (bn_device_assign(es->device, local_rank, local_size, ngpus, es->ranks_per_gpu, why, dev, err, errlen))
        return -1;
    /* A named GPU backend, or a precision only the GPU offers. */
    int named_gpu = bn_backend_is_gpu(es->backend);
    if (named_gpu && dev->gpu < 0) {
        char what[64];
        snprintf(what, sizeof what, es->backend_auto ? "--precision %s" : "--backend %s",
                 es->backend_auto ? bn_precision_name(es->precision) : es->backend);
        snprintf(err, errlen, "%s runs on a GPU, and node-local rank %d of %d has none (%d usable GPUs%s%s, "
                 "--ranks-per-gpu %d, --device %s); %s", what, local_rank, local_size, ngpus, why[0] ? ": " : "", why,
                 es->ranks_per_gpu, bn_device_mode_name(es->device),
                 es->backend_auto ? "use fp32, bf16 or int8 where ranks run on the CPU"
                                  : "use --backend cpu to let the ranks without one run on the CPU");
        return -1;
    }
    if (dev->gpu >= 0 && !es->backend_auto && !named_gpu) {
        snprintf(note, notelen, "CPU (--backend %s runs on the CPU; GPU %d is left unused)", es->backend, dev->gpu);
        dev->gpu = -1;
        return 0;
    }
    if (dev->gpu >= 0) {
        char e2[256];
        if (!bn_backend_resolve("cuda", es->precision, e2, sizeof e2)) {
            snprintf(note, notelen, "CPU (GPU %d is left unused: %s)", dev->gpu, e2);
            dev->gpu = -1;
            return 0;
        }
        es->backend = "cuda";
        es->gpu = dev->gpu;
        snprintf(note, notelen, "GPU %d (node-local rank %d of %d, %d usable GPUs)", dev->gpu, local_rank, local_size,
                 ngpus);
        return 0;
    }
    snprintf(note, notelen, "CPU (--device %s; node-local rank %d of %d; %d usable GPUs%s%s)",
             bn_device_mode_name(es->device), local_rank, local_size, ngpus, why[0] ? ": " : "", why);
    return 0;
}

bn_engine *bn_engine_open(bn_engine_setup *es, const bn_model *m, int max_batch, char *err, size_t errlen) {
    if (!es->device_picked) {
        bn_device dev;
        char note[256];
        if (bn_engine_pick_device(es, 0, 1, &dev, note, sizeof note, err, errlen)) return NULL;
        bn_verbose("device: %s", note);
    }
    if (es->precision == BN_PREC_INT8 && !es->calib) {
        es->calib = callocCheck(1, sizeof *es->calib);
        if (bn_calib_read(es->calibration, m->sha256, es->calib, err, errlen)) return NULL;
    }
    /* Scales measured on one normalisation do not fit the other's range. */
    if (es->precision == BN_PREC_INT8 && es->calib->preprocess[0] &&
        strcmp(es->calib->preprocess, bn_norm_name(es->norm))) {
        snprintf(err, errlen, "%s was calibrated with --preprocess %s, and this run uses %s: recalibrate with --preprocess %s",
                 es->calib->path[0] ? es->calib->path : es->calibration, es->calib->preprocess, bn_norm_name(es->norm),
                 bn_norm_name(es->norm));
        return NULL;
    }
    bn_engine_config cfg = {m, es->backend, es->precision, es->precision == BN_PREC_INT8 ? es->calib : NULL,
                            max_batch, es->threads, es->streams, es->gpu};
    return bn_engine_create(&cfg, err, errlen);
}

void bn_engine_setup_free(bn_engine_setup *es) {
    free(es->calib);
    es->calib = NULL;
}
