#!/usr/bin/env python3
"""keras_weights.py: write an Inception v3 weights file with Keras itself.

bneck reads the Keras 2 weights file of Inception v3 (docs/weights.md). The
published file was written by Keras' own save_weights; `bneck mkweights` writes
a look-alike. This script makes a file that Keras really wrote, with sane
parameters, so bneck and its peers can be run on it:

  1. build tf_keras.applications.InceptionV3(include_top=False, weights=None,
     pooling="avg") in a fresh process;
  2. read a bneck-written file (`bneck mkweights SRC.h5 --seed 1`) with h5py:
     its conv2d_N / batch_normalization_N, N = 1..94, are in Keras creation
     order (io/weights.c, docs/format.md);
  3. give the i-th Conv2D and BatchNormalization that Keras created (names
     conv2d, conv2d_1, ..., conv2d_93: the suffix is the creation number) the
     i-th conv's kernel and the i-th batch norm's beta, moving_mean and
     moving_variance (Keras' Inception v3 batch norms have no gamma:
     scale=False); every shape is checked;
  4. model.save_weights(OUT.h5): Keras writes layer_names in topological
     order (model.layers), which is not the creation order, and names the first
     layer of each kind without a suffix (conv2d, batch_normalization).
The file written is checked afterwards with h5py (94 convs, first layer_names
entry after the input is `conv2d`, the order is topological) and, by loading it
into a second fresh model, that Keras reads back exactly what was assigned.

Usage: keras_weights.py SRC.h5 OUT.h5
Needs tf_keras (PyPI tf-keras with tensorflow-cpu) and h5py. Exit 0: written;
1: failure; 77: tf_keras or h5py cannot be imported.

As a module: build_model(), bneck_layers(path), keras_layers(model),
fill_model(model, path) serve tests/keras/keras_ref.py and bench/engine.sh.
"""
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

N_CONVS = 94


class Failure(Exception):
    pass


def _import():
    try:
        import numpy as np
        import h5py
        import tf_keras
    except ImportError as e:
        print("SKIP: %s" % e)
        sys.exit(77)
    return np, h5py, tf_keras


def build_model():
    """A fresh tf_keras Inception v3 without its top, global average pooled."""
    _, _, tf_keras = _import()
    return tf_keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")


def _number(name, base):
    """Creation number in a Keras layer name: 0 for `base`, N for `base_N`; None otherwise."""
    if name == base:
        return 0
    m = re.fullmatch(re.escape(base) + r"_(\d+)", name)
    return int(m.group(1)) if m else None


def keras_layers(model):
    """[(Conv2D, BatchNormalization)] x 94 of a fresh model, in creation order.

    Keras numbers layers of a kind as it creates them (conv2d, conv2d_1, ...);
    the numbers must be exactly 0..93, which holds for the first model built in
    a process."""
    _, _, tf_keras = _import()
    out = []
    for kind, base in ((tf_keras.layers.Conv2D, "conv2d"),
                       (tf_keras.layers.BatchNormalization, "batch_normalization")):
        ls = [l for l in model.layers if isinstance(l, kind)]
        nums = [_number(l.name, base) for l in ls]
        if sorted(n for n in nums if n is not None) != list(range(N_CONVS)) or len(ls) != N_CONVS:
            raise Failure("the Keras model's %s layers are not named %s, %s_1 .. %s_%d "
                          "(was another model built first in this process?): %s"
                          % (base, base, base, base, N_CONVS - 1, [l.name for l in ls][:8]))
        out.append([l for _, l in sorted(zip(nums, ls), key=lambda t: t[0])])
    return list(zip(*out))


def bneck_layers(path):
    """[(kernel HWIO, beta, moving_mean, moving_variance)] x 94 from a file that
    names its layers conv2d_N / batch_normalization_N with N = 1..94 in creation
    order (bneck mkweights)."""
    np, h5py, _ = _import()
    out = []
    with h5py.File(path, "r") as f:
        for i in range(1, N_CONVS + 1):
            c, b = "conv2d_%d" % i, "batch_normalization_%d" % i
            try:
                kernel = np.asarray(f["%s/%s/kernel:0" % (c, c)])
                beta, mean, var = (np.asarray(f["%s/%s/%s:0" % (b, b, w)])
                                   for w in ("beta", "moving_mean", "moving_variance"))
            except KeyError as e:
                raise Failure("%s: no %s or %s weights (%s); is it a bneck mkweights file?"
                              % (path, c, b, e))
            out.append((kernel, beta, mean, var))
    return out


def fill_model(model, path):
    """Assign the bneck file's parameters to the model, pair by pair, checking shapes."""
    np, _, _ = _import()
    src = bneck_layers(path)
    for i, ((conv, bn), (kernel, beta, mean, var)) in enumerate(zip(keras_layers(model), src)):
        want = [tuple(w.shape) for w in conv.get_weights()]
        if want != [kernel.shape]:
            raise Failure("conv %d (%s): Keras expects %s, the file has %s"
                          % (i + 1, conv.name, want, kernel.shape))
        conv.set_weights([kernel])
        want = [tuple(w.shape) for w in bn.get_weights()]
        if want != [beta.shape, mean.shape, var.shape]:
            raise Failure("batch norm %d (%s): Keras expects %s (beta, mean, variance: no gamma), "
                          "the file has %s" % (i + 1, bn.name, want,
                                               [beta.shape, mean.shape, var.shape]))
        bn.set_weights([beta, mean, var])
    return src


def check_written(path, src):
    """The file Keras wrote: layer order and names, and that Keras reads back src."""
    np, h5py, _ = _import()
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        kv = f.attrs.get("keras_version")
        kv = kv.decode() if isinstance(kv, bytes) else kv
    convs = [n for n in names if _number(n, "conv2d") is not None]
    if len(convs) != N_CONVS:
        raise Failure("%s: %d conv2d layers in layer_names, expected %d" % (path, len(convs), N_CONVS))
    if convs[0] != "conv2d":
        raise Failure("%s: the first conv is %s, expected conv2d (no suffix)" % (path, convs[0]))
    moved = sum(1 for k, n in enumerate(convs) if _number(n, "conv2d") != k)
    print("%s: keras_version %s, %d layer_names; conv order: %s, ..., %s; "
          "%d of %d convs stand elsewhere than their creation number"
          % (path, kv, len(names), ", ".join(convs[:8]), convs[-1], moved, N_CONVS))
    if moved == 0:
        raise Failure("%s: layer_names lists the convs in creation order; expected the "
                      "topological order Keras writes" % path)
    # A second model in this process numbers its layers conv2d_94, ...; but its
    # model.layers has the same topological order as the file's layer_names, so
    # the k-th Conv2D there is convs[k] here, created as number _number(convs[k]).
    model = build_model()
    model.load_weights(path)
    got = [l for l in model.layers if l.__class__.__name__ == "Conv2D"]
    for k, name in enumerate(convs):
        i = _number(name, "conv2d")
        if not np.array_equal(got[k].get_weights()[0], src[i][0]):
            raise Failure("%s: Keras read back conv %d (%s) differently from what was assigned"
                          % (path, i + 1, name))
    print("%s: Keras reads back all %d kernels exactly" % (path, N_CONVS))


def main(argv):
    if len(argv) != 3:
        print("usage: keras_weights.py SRC.h5 OUT.h5", file=sys.stderr)
        return 1
    src_path, out = argv[1], argv[2]
    _, _, tf_keras = _import()
    model = build_model()
    src = fill_model(model, src_path)
    model.save_weights(out)   # .h5: the HDF5 format of Keras 2
    print("tf_keras %s wrote %s from %s" % (tf_keras.__version__, out, src_path))
    check_written(out, src)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
