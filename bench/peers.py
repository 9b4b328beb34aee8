#!/usr/bin/env python3
"""peers.py: the OpenVINO and TF-Keras peers of bench/engine.sh.

Runs in a virtual environment with the PyPI packages tensorflow-cpu, tf-keras,
openvino and nncf (bench/engine.sh's PEERS_PYTHON); none of them is part of
bneck's build.

  peers.py info
      One line per peer package: "have NAME VERSION" or "missing NAME: why".
      Exit 0 when tf_keras imports (every peer needs it), else 77.
  peers.py prepare KERAS_WEIGHTS.h5 CAL_INPUT.npy DIR
      Builds tf_keras.applications.InceptionV3(include_top=False,
      weights=None, pooling="avg"), loads the Keras-written weights with
      load_weights, converts it with openvino.convert_model and saves
      DIR/ov_f32.xml (f32 weights, no fp16 compression). With nncf, also
      quantizes that model post-training (nncf.quantize, defaults: symmetric
      8-bit weights per channel, activations by min-max over the data, fast
      bias correction) on every image of CAL_INPUT.npy, the network input
      (N, 299, 299, 3) float32 that bneck dumped (--dump-input, keras
      preprocessing x/127.5 - 1), and saves DIR/ov_int8.xml.
  peers.py run ENGINE BATCH SECONDS THREADS KERAS_WEIGHTS.h5 DIR [STREAMS]
      One measurement, in its own process so that the peak RSS is its own:
      ENGINE is keras, ov-f32, ov-bf16 or ov-int8. Random input in [-1, 1] of
      the batch, one or two warm-up passes, then passes until SECONDS have
      passed. Prints one line:
        images/s X peak RSS MiB Y ran PRECISION DETAIL
      PRECISION is what really ran: for OpenVINO, the precision of the
      majority of the compiled model's convolutions (its runtime model's
      runtimePrecision); DETAIL says how many and what the compiled model's
      INFERENCE_PRECISION_HINT became (a CPU without bf16 support turns a bf16
      hint into f32).
Settings: Keras: tf.config.threading intra-op THREADS, inter-op 1, the model
called through a tf.function at the batch (no per-call predict overhead).
OpenVINO: CPU plugin, INFERENCE_NUM_THREADS THREADS, NUM_STREAMS 1,
PERFORMANCE_HINT LATENCY, the model reshaped to the batch, one infer request;
ov-bf16 adds INFERENCE_PRECISION_HINT bf16, ov-f32 sets it to f32. With
STREAMS S > 1 (OpenVINO only): NUM_STREAMS S, PERFORMANCE_HINT THROUGHPUT, the
model reshaped to BATCH / S and S infer requests of an AsyncInferQueue run
side by side on the slices of each batch (as bneck --streams does).
"""
import collections
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(step, batch, secs):
    """Images per second of step() at the batch: 1-2 warm-up passes, then
    passes until secs have passed."""
    t0 = time.perf_counter()
    for i in range(3):
        step()
        if i >= 1 or time.perf_counter() - t0 > 2 * secs:
            break
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += batch
        t = time.perf_counter() - t0
        if t >= secs:
            return n / t


def keras_model(weights):
    import tf_keras
    model = tf_keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")
    model.load_weights(weights)
    return model


def cmd_info():
    ok = True
    for name in ("tensorflow", "tf_keras", "openvino", "nncf"):
        try:
            mod = __import__(name)
            print("have %s %s" % (name, getattr(mod, "__version__", "?")))
        except Exception as e:  # ImportError, or a broken install
            print("missing %s: %s" % (name, str(e).splitlines()[0] if str(e) else type(e).__name__))
            if name in ("tensorflow", "tf_keras"):
                ok = False
    return 0 if ok else 77


def cmd_prepare(weights, cal, out):
    import numpy as np
    import openvino as ov
    t = time.perf_counter()
    model = keras_model(weights)
    om = ov.convert_model(model)
    ov.save_model(om, os.path.join(out, "ov_f32.xml"), compress_to_fp16=False)
    print("openvino %s: converted the tf_keras model (input %s, output %s) in %.1f s"
          % (ov.__version__, om.inputs[0].get_partial_shape(), om.outputs[0].get_partial_shape(),
             time.perf_counter() - t))
    try:
        import nncf
    except ImportError as e:
        print("no nncf (%s): no OpenVINO int8 model" % e)
        return 0
    x = np.load(cal)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (299, 299, 3):
        print("FAIL: %s is %s %s, expected float32 (N, 299, 299, 3)" % (cal, x.dtype, x.shape))
        return 1
    t = time.perf_counter()
    q = nncf.quantize(om, nncf.Dataset([x[i:i + 1] for i in range(len(x))]), subset_size=len(x))
    ov.save_model(q, os.path.join(out, "ov_int8.xml"))
    print("nncf %s: quantized on %d calibration images in %.1f s" % (nncf.__version__, len(x),
                                                                     time.perf_counter() - t))
    return 0


def run_keras(weights, batch, secs, threads):
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = keras_model(weights)
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (batch, 299, 299, 3)).astype(np.float32))
    f = tf.function(lambda t: model(t, training=False))

    def step():
        f(x).numpy()
    ips = timed(step, batch, secs)
    return ips, "float32", "tf %s intra %d inter 1" % (tf.__version__, threads)


def run_openvino(engine, d, batch, secs, threads, streams=1):
    import numpy as np
    import openvino as ov
    core = ov.Core()
    path = os.path.join(d, "ov_int8.xml" if engine == "ov-int8" else "ov_f32.xml")
    if not os.path.exists(path):
        raise SystemExit("FAIL: %s does not exist (peers.py prepare)" % path)
    if streams < 1 or batch % streams:
        raise SystemExit("FAIL: batch %d does not split into %d streams" % (batch, streams))
    model = core.read_model(path)
    model.reshape([batch // streams, 299, 299, 3])
    cfg = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": streams,
           "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT"}
    if engine == "ov-bf16":
        cfg["INFERENCE_PRECISION_HINT"] = "bf16"
    elif engine == "ov-f32":
        cfg["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = core.compile_model(model, "CPU", cfg)
    hint = str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: ", "").strip("'>")
    got = int(compiled.get_property("NUM_STREAMS"))
    convs = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        if "layerType" in rt and rt["layerType"].astype(str) == "Convolution":
            convs[rt["runtimePrecision"].astype(str) if "runtimePrecision" in rt else "?"] += 1
    ran, k = convs.most_common(1)[0] if convs else ("?", 0)
    x = np.random.default_rng(1).uniform(-1, 1, (batch, 299, 299, 3)).astype(np.float32)
    if streams == 1:
        req = compiled.create_infer_request()

        def step():
            req.infer({0: x})
    else:
        queue = ov.AsyncInferQueue(compiled, streams)
        part = batch // streams
        slices = [np.ascontiguousarray(x[i * part:(i + 1) * part]) for i in range(streams)]

        def step():
            for s in slices:
                queue.start_async({0: s})
            queue.wait_all()
    ips = timed(step, batch, secs)
    detail = "convolutions %s; compiled INFERENCE_PRECISION_HINT %s; streams %d" % (
        ", ".join("%d %s" % (n, p) for p, n in convs.most_common()), hint, got)
    return ips, ran, detail


def main(argv):
    if len(argv) >= 2 and argv[1] == "info":
        return cmd_info()
    if len(argv) == 5 and argv[1] == "prepare":
        return cmd_prepare(argv[2], argv[3], argv[4])
    if len(argv) in (8, 9) and argv[1] == "run":
        engine, batch, secs, threads, weights, d = argv[2], int(argv[3]), float(argv[4]), \
            int(argv[5]), argv[6], argv[7]
        streams = int(argv[8]) if len(argv) == 9 else 1
        if engine == "keras":
            ips, ran, detail = run_keras(weights, batch, secs, threads)
        elif engine in ("ov-f32", "ov-bf16", "ov-int8"):
            ips, ran, detail = run_openvino(engine, d, batch, secs, threads, streams)
        else:
            print("FAIL: unknown engine %s" % engine)
            return 2
        print("images/s %.3f peak RSS MiB %.0f ran %s %s" % (ips, rss_mib(), ran, detail))
        return 0
    print("usage: peers.py info | prepare KERAS.h5 CAL.npy DIR | "
          "run keras|ov-f32|ov-bf16|ov-int8 BATCH SECONDS THREADS KERAS.h5 DIR [STREAMS]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
