#!/usr/bin/env python3
"""keras_ref.py: bneck's fp32 features against Keras' own predict.

The strongest reference there is: tf_keras, the Keras 2 code that wrote the
published Inception v3 weights file. This script

  - builds tf_keras.applications.InceptionV3(include_top=False, weights=None,
    pooling="avg") twice, in float32 and in float64 (tf_keras.backend floatx),
    and loads the Keras-written weights file into both with Keras' own
    load_weights (which pairs layers by their topological order, not by name:
    nothing of bneck's reader is shared);
  - runs model.predict on the exact network input bneck dumped (--dump-input,
    float32 NHWC in [-1, 1]);
  - requires, for every case and image, the relative L2 error
    ||bneck - keras|| / ||keras|| <= TOL (1e-4) against both the float32
    predict (Keras as users run it) and the float64 one (the better truth).

Self-check (the comparison can fail): the float64 model with the kernels of two
same-shaped convolutions swapped, the mistake a reader that paired the file's
layers in the wrong order without a shape error would make, must differ from
bneck's features by at least SENSITIVE_MIN on the first case.

Usage:
  keras_ref.py KERAS_WEIGHTS.h5 [--tol T] --case NAME INPUT.npy FEATURES.npy [--case ...]
Exit 0: pass; 1: failure; 77: tf_keras, h5py or numpy cannot be imported.
"""
import argparse
import hashlib
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

try:
    import numpy as np
    import tf_keras
    import tensorflow as tf
except ImportError as e:  # the skip path
    print("SKIP: %s" % e)
    sys.exit(77)

TOL = 1e-4
SENSITIVE_MIN = 1e-2


class Failure(Exception):
    pass


def build(weights, floatx):
    tf_keras.backend.set_floatx(floatx)
    try:
        model = tf_keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")
        model.load_weights(weights)
    finally:
        tf_keras.backend.set_floatx("float32")
    if model.output_shape != (None, 2048):
        raise Failure("the Keras model's output is %s, expected (None, 2048)" % (model.output_shape,))
    return model


def predict(model, x):
    dtype = model.inputs[0].dtype.as_numpy_dtype
    y = model.predict(x.astype(dtype), batch_size=4, verbose=0)
    return np.asarray(y, dtype=np.float64)


def rel_errors(a, ref):
    a = a.astype(np.float64)
    den = np.linalg.norm(ref, axis=1)
    if np.any(den == 0):
        raise Failure("a Keras feature row is all zeros; the test would be meaningless")
    return np.linalg.norm(a - ref, axis=1) / den


def load_case(name, inp, feat):
    x, y = np.load(inp), np.load(feat)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (299, 299, 3):
        raise Failure("%s: input %s is %s %s, expected float32 (N, 299, 299, 3)"
                      % (name, inp, x.dtype, x.shape))
    if y.dtype != np.float32 or y.shape != (x.shape[0], 2048):
        raise Failure("%s: features %s are %s %s, expected float32 (%d, 2048)"
                      % (name, feat, y.dtype, y.shape, x.shape[0]))
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise Failure("%s: non-finite values in the input or the features" % name)
    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
        raise Failure("%s: input outside [-1, 1]: [%g, %g]" % (name, x.min(), x.max()))
    return x, y


def convs(model):
    return [l for l in model.layers if isinstance(l, tf_keras.layers.Conv2D)]


def swapped_twin(model, names):
    """Swap the kernels of the first two same-shaped, different Conv2D layers
    (in model.layers order); returns their names in `names` (the layer names
    of the first model built, which are the file's: a later model in the same
    process numbers its layers on from there)."""
    seen = {}
    for i, l in enumerate(convs(model)):
        k = l.get_weights()[0]
        j = seen.get(k.shape)
        if j is not None and not np.array_equal(convs(model)[j].get_weights()[0], k):
            o = convs(model)[j]
            ko = o.get_weights()[0]
            o.set_weights([k])
            l.set_weights([ko])
            return names[j], names[i], k.shape
        seen.setdefault(k.shape, i)
    raise Failure("no two same-shaped convolutions to swap")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--tol", type=float, default=TOL)
    ap.add_argument("--case", nargs=3, action="append", required=True,
                    metavar=("NAME", "INPUT.npy", "FEATURES.npy"))
    args = ap.parse_args()
    print("tensorflow %s, tf_keras %s, numpy %s" % (tf.__version__, tf_keras.__version__, np.__version__))
    t0 = time.perf_counter()
    m32 = build(args.weights, "float32")
    m64 = build(args.weights, "float64")
    print("loaded %s into float32 and float64 Keras models with load_weights (%.1f s)"
          % (args.weights, time.perf_counter() - t0))

    worst = {"float32": 0.0, "float64": 0.0}
    refs = {}
    first = None
    for name, inp, feat in args.case:
        x, y = load_case(name, inp, feat)
        key = hashlib.sha256(x.tobytes()).hexdigest()
        if key not in refs:
            refs[key] = {"float32": predict(m32, x), "float64": predict(m64, x)}
        if first is None:
            first = (name, x, y)
        for fx, ref in refs[key].items():
            e = rel_errors(y, ref)
            print("%s vs keras %s predict: %d images, rel. L2 error per image: %s; max %.3g"
                  % (name, fx, len(e), " ".join("%.3g" % v for v in e), e.max()))
            worst[fx] = max(worst[fx], float(e.max()))
    r = refs[hashlib.sha256(first[1].tobytes()).hexdigest()]
    print("  (info) keras float32 vs keras float64: max %.3g" % rel_errors(r["float32"], r["float64"]).max())

    a, b, shape = swapped_twin(m64, [l.name for l in convs(m32)])
    es = rel_errors(first[2], predict(m64, first[1]))
    print("  self-check: %s vs keras float64 with the kernels of %s and %s %s swapped: min %.3g, max %.3g"
          % (first[0], a, b, shape, es.min(), es.max()))
    if es.min() < SENSITIVE_MIN:
        raise Failure("the comparison does not see two swapped convolutions (error %.3g < %g)"
                      % (es.min(), SENSITIVE_MIN))
    print("max rel. L2 error over all cases: %.3g vs float32 predict, %.3g vs float64 (tolerance %g)"
          % (worst["float32"], worst["float64"], args.tol))
    for fx, w in worst.items():
        if not w <= args.tol:
            raise Failure("bneck features differ from Keras' %s predict by %.3g > %g" % (fx, w, args.tol))
    print("PASS: keras reference")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
