#!/usr/bin/python3
"""torch_ref.py: an independent reference for bneck's Inception v3 bottleneck.

It loads a Keras-layout Inception v3 weights file (.h5) into torchvision's
inception_v3, patched to the Keras semantics, runs it in double precision on
the exact network input that bneck dumped (--dump-input), and compares the
2048-wide global average pool with bneck's features, image by image:

    relative L2 error  ||bneck - ref|| / ||ref||  <=  TOL (1e-4) for every image

Keras vs torchvision, and what this script does about each difference:
  - kernels are HWIO in the .h5, OIHW in torch: transposed (3, 2, 0, 1);
  - batch norm has no gamma in Keras: weight = 1, bias = beta, eps = 1e-3;
  - the conv order: the 94 BasicConv2d convs in model.modules() order equal
    the Keras creation order (conv2d_N sorted by N); every shape is checked,
    so a wrong pairing (for example 1x3 against 3x1) fails loudly;
  - Keras' 3x3 'same' average pools divide by the number of valid pixels;
    torchvision's Inception blocks call F.avg_pool2d(x, 3, 1, 1), which counts
    the padding. The module-level name `F` in torchvision.models.inception is
    replaced by a proxy whose avg_pool2d forces count_include_pad=False (the
    real torch.nn.functional is left alone). The proxy counts its calls: a
    forward must make exactly 9 such pools (3 InceptionA, 4 InceptionC,
    2 InceptionE), which proves the patch is where the lookup happens.

Self-check (proves the comparison can fail): the same reference with the patch
switched off (torchvision's count_include_pad=True) must differ from bneck by
far more than TOL (at least SENSITIVE_MIN).

Usage:
  torch_ref.py WEIGHTS.h5 [--tol T] --case NAME INPUT.npy FEATURES.npy [--case ...]
The first case also gets the float32 torch error (for information) and the
self-check. Exit 0: pass; 1: a failure (error, shape, file); 77: torch,
torchvision, h5py or numpy is missing (skip).
"""
import argparse
import hashlib
import re
import sys

try:
    import numpy as np
    import h5py
    import torch
    import torch.nn.functional as real_F
    import torchvision
    import torchvision.models.inception as tv_inception
except ImportError as e:  # pragma: no cover - the skip path
    print("SKIP: %s" % e)
    sys.exit(77)

TOL = 1e-4            # bneck vs double-precision torch, per image
SENSITIVE_MIN = 1e-2  # the unpatched (count_include_pad=True) reference must be this far off
N_CONVS = 94
N_PATCHED_POOLS = 9   # 3x3 stride-1 'same' average pools per forward


class Failure(Exception):
    pass


# ----------------------------------------------------------------- weights
def _layer_number(prefix, name):
    m = re.fullmatch(prefix + r"_(\d+)", name)
    return int(m.group(1)) if m else None


def _weight(f, layer, suffix):
    """The dataset of `layer` whose name ends in `suffix` (e.g. 'kernel:0').

    Follows the group's `weight_names` attribute as Keras does; falls back to
    the usual path <layer>/<layer>/<suffix>."""
    g = f[layer]
    names = g.attrs.get("weight_names")
    if names is not None:
        for n in names:
            n = n.decode() if isinstance(n, bytes) else str(n)
            if n.split("/")[-1] == suffix:
                return np.asarray(g[n])
    path = "%s/%s" % (layer, suffix)
    if path not in g:
        raise Failure("weights: %s has no weight ending in %s" % (layer, suffix))
    return np.asarray(g[path])


def load_keras_weights(path):
    """Returns [(conv name, bn name, kernel HWIO, beta, moving_mean,
    moving_variance)] x 94, in Keras creation order (conv2d_N and
    batch_normalization_N sorted by N)."""
    return list(iter_keras_weights(path))


def iter_keras_weights(path):
    """Like load_keras_weights, but yields one layer at a time (less memory)."""
    with h5py.File(path, "r") as f:
        convs = sorted((n, k) for k in f.keys() if (n := _layer_number("conv2d", k)) is not None)
        bns = sorted((n, k) for k in f.keys()
                     if (n := _layer_number("batch_normalization", k)) is not None)
        if len(convs) != N_CONVS or len(bns) != N_CONVS:
            raise Failure("weights: %d conv2d_N and %d batch_normalization_N groups, expected %d"
                          % (len(convs), len(bns), N_CONVS))
        # The order by number must agree with the file's own layer order.
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        by_order = [n for n in names if _layer_number("conv2d", n) is not None]
        if by_order != [k for _, k in convs]:
            raise Failure("weights: conv2d_N sorted by N disagrees with the layer_names order")
        for (_, ck), (_, bk) in zip(convs, bns):
            kernel = _weight(f, ck, "kernel:0")
            beta = _weight(f, bk, "beta:0")
            mean = _weight(f, bk, "moving_mean:0")
            var = _weight(f, bk, "moving_variance:0")
            if kernel.ndim != 4:
                raise Failure("weights: %s kernel has shape %s" % (ck, kernel.shape))
            cout = kernel.shape[3]
            for nm, a in (("beta", beta), ("moving_mean", mean), ("moving_variance", var)):
                if a.shape != (cout,):
                    raise Failure("weights: %s %s has shape %s, expected (%d,)"
                                  % (bk, nm, a.shape, cout))
            yield ck, bk, kernel, beta, mean, var


# ----------------------------------------------------------------- the model
class _PoolPatch:
    """Stands in for torch.nn.functional inside torchvision.models.inception.

    Every attribute is the real one, except avg_pool2d, which forces
    count_include_pad=False while `exclude_pad` is set, and counts calls."""

    def __init__(self):
        self.exclude_pad = True
        self.calls = 0

    def __getattr__(self, name):
        return getattr(real_F, name)

    def avg_pool2d(self, x, kernel_size, stride=None, padding=0, *args, **kw):
        self.calls += 1
        if (kernel_size, stride, padding) != (3, 1, 1) or args:
            raise Failure("avg_pool2d called with kernel %r stride %r padding %r %r; expected 3, 1, 1"
                          % (kernel_size, stride, padding, args))
        kw["count_include_pad"] = not self.exclude_pad
        return real_F.avg_pool2d(x, kernel_size, stride, padding, **kw)


POOLS = _PoolPatch()


def install_pool_patch():
    """Make torchvision's Inception blocks use POOLS instead of torch.nn.functional."""
    if tv_inception.F is POOLS:
        return
    if getattr(tv_inception, "F", None) is not real_F:
        raise Failure("torchvision.models.inception does not look up F = torch.nn.functional; "
                      "the average-pool patch would not apply")
    tv_inception.F = POOLS


def copy_weights(model, weights):
    """Copies load_keras_weights() output into a torchvision Inception3, checking every shape."""
    blocks = [m for m in model.modules() if isinstance(m, tv_inception.BasicConv2d)]
    if len(blocks) != N_CONVS:
        raise Failure("torchvision has %d BasicConv2d, expected %d" % (len(blocks), N_CONVS))
    n = 0
    for i, (blk, (ck, bk, kernel, beta, mean, var)) in enumerate(zip(blocks, weights)):
        n += 1
        w = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))  # HWIO -> OIHW
        if tuple(blk.conv.weight.shape) != tuple(w.shape):
            raise Failure("conv %d (%s): torch expects OIHW %s, the .h5 kernel HWIO %s gives %s"
                          % (i + 1, ck, tuple(blk.conv.weight.shape), kernel.shape, tuple(w.shape)))
        if blk.conv.bias is not None:
            raise Failure("conv %d has a bias in torchvision" % (i + 1))
        bn = blk.bn
        bn.eps = 1e-3
        with torch.no_grad():
            blk.conv.weight.copy_(w)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(beta))
            bn.running_mean.copy_(torch.from_numpy(mean))
            bn.running_var.copy_(torch.from_numpy(var))
    if n != N_CONVS:
        raise Failure("copied %d layers, expected %d" % (n, N_CONVS))


def build_model(weights):
    """torchvision inception_v3 holding the Keras weights, with the Keras average pools,
    eval mode, float64, and a hook that keeps the avgpool output in pooled["x"]."""
    install_pool_patch()
    model = torchvision.models.inception_v3(weights=None, aux_logits=False,
                                            init_weights=False, transform_input=False)
    model.eval()
    copy_weights(model, weights)
    model.double()
    pooled = {}
    model.avgpool.register_forward_hook(lambda mod, inp, out: pooled.__setitem__("x", out))
    return model, pooled


def reference(model, pooled, x_nhwc, dtype, exclude_pad=True, chunk=4):
    """Features (N, 2048) float64 of the NHWC input, through avgpool."""
    model.to(dtype)
    POOLS.exclude_pad = exclude_pad
    outs = []
    try:
        with torch.no_grad():
            for s in range(0, x_nhwc.shape[0], chunk):
                x = torch.from_numpy(np.ascontiguousarray(
                    x_nhwc[s:s + chunk].transpose(0, 3, 1, 2))).to(dtype)  # NHWC -> NCHW
                POOLS.calls = 0
                pooled.pop("x", None)
                model(x)
                if POOLS.calls != N_PATCHED_POOLS:
                    raise Failure("the patched avg_pool2d ran %d times in a forward, expected %d"
                                  % (POOLS.calls, N_PATCHED_POOLS))
                if "x" not in pooled:
                    raise Failure("the avgpool hook did not fire")
                p = pooled["x"]
                if tuple(p.shape) != (x.shape[0], 2048, 1, 1):
                    raise Failure("avgpool output has shape %s" % (tuple(p.shape),))
                outs.append(p.reshape(x.shape[0], 2048).double().numpy())
    finally:
        POOLS.exclude_pad = True
        model.double()
    return np.concatenate(outs)


def rel_errors(a, ref):
    """Per-row ||a - ref|| / ||ref||, in float64."""
    a = a.astype(np.float64)
    num = np.linalg.norm(a - ref, axis=1)
    den = np.linalg.norm(ref, axis=1)
    if np.any(den == 0):
        raise Failure("a reference feature row is all zeros; the test would be meaningless")
    return num / den


# ----------------------------------------------------------------- main
def load_case(name, inp, feat):
    x = np.load(inp)
    y = np.load(feat)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (299, 299, 3):
        raise Failure("%s: input %s is %s %s, expected float32 (N, 299, 299, 3)"
                      % (name, inp, x.dtype, x.shape))
    if y.dtype != np.float32 or y.shape != (x.shape[0], 2048):
        raise Failure("%s: features %s are %s %s, expected float32 (%d, 2048)"
                      % (name, feat, y.dtype, y.shape, x.shape[0]))
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise Failure("%s: non-finite values in the input or the features" % name)
    if x.min() < -1.0 - 1e-6 or x.max() > 1.0 + 1e-6:
        raise Failure("%s: input values outside [-1, 1]: [%g, %g]" % (name, x.min(), x.max()))
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--tol", type=float, default=TOL)
    ap.add_argument("--case", nargs=3, action="append", required=True,
                    metavar=("NAME", "INPUT.npy", "FEATURES.npy"))
    args = ap.parse_args()
    print("torch %s, torchvision %s, h5py %s, numpy %s"
          % (torch.__version__, torchvision.__version__, h5py.__version__, np.__version__))

    weights = load_keras_weights(args.weights)
    model, pooled = build_model(weights)
    print("loaded %d conv + batch-norm pairs into torchvision inception_v3; all shapes match"
          % len(weights))

    worst = 0.0
    refs = {}  # input digest -> float64 reference, so identical inputs run once
    for k, (name, inp, feat) in enumerate(args.case):
        x, y = load_case(name, inp, feat)
        key = hashlib.sha256(x.tobytes()).hexdigest()
        if key not in refs:
            refs[key] = reference(model, pooled, x, torch.float64)
        ref = refs[key]
        err = rel_errors(y, ref)
        print("%s: %d images, rel. L2 error per image: %s; max %.3g"
              % (name, len(err), " ".join("%.3g" % e for e in err), err.max()))
        worst = max(worst, float(err.max()))
        if k == 0:
            e32 = rel_errors(reference(model, pooled, x, torch.float32), ref)
            print("  (info) torch float32 vs torch float64: max %.3g" % e32.max())
            unpatched = reference(model, pooled, x, torch.float64, exclude_pad=False)
            es = rel_errors(y, unpatched)
            print("  self-check: bneck vs torchvision WITHOUT the avg-pool patch "
                  "(count_include_pad=True): min %.3g, max %.3g" % (es.min(), es.max()))
            if es.min() < SENSITIVE_MIN:
                raise Failure("the comparison is not sensitive to the average-pool semantics "
                              "(error %.3g < %g without the patch)" % (es.min(), SENSITIVE_MIN))
    print("max rel. L2 error over all cases: %.3g (tolerance %g)" % (worst, args.tol))
    if not worst <= args.tol:
        raise Failure("bneck features differ from the torch reference by %.3g > %g"
                      % (worst, args.tol))
    print("PASS: torch reference")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
