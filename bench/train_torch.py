#!/usr/bin/env python3
"""The peer of bench/train.sh: retrain.py's training loop in PyTorch.

Reads the done rows of a bneck features file, then runs the same schedule as
bneck train's defaults: W (2048, C) from a truncated normal (stddev 0.001),
b = 0, class-balanced batches of 100 drawn with replacement, plain gradient
descent at 0.01 on the mean softmax cross entropy, and every 10 steps (and at
the last) the train accuracy and cross entropy of the batch and the accuracy
on 100 validation images; then test accuracy on the whole test set. float32,
as TensorFlow ran it. Prints the seconds of the loading and of the loop.
Usage: train_torch.py FEATURES.h5 STEPS THREADS
"""
import sys, time
t0 = time.time()
import h5py, numpy as np, torch

path, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
with h5py.File(path, "r") as f:
    st, sp, lab = f["status"][()], f["split"][()], f["label"][()]
    done = np.flatnonzero(st == 1)
    X = torch.from_numpy(f["features"][()][done])
    C = len(f["label_names"])
y, s = torch.from_numpy(lab[done].astype(np.int64)), sp[done]
tr, va, te = (np.flatnonzero(s == k) for k in (0, 1, 2))
by_class = [tr[y.numpy()[tr] == c] for c in range(C)]
t1 = time.time()
torch.manual_seed(0)
W = torch.nn.init.trunc_normal_(torch.empty(2048, C), std=0.001, a=-0.002, b=0.002).requires_grad_()
b = torch.zeros(C, requires_grad=True)
opt = torch.optim.SGD([W, b], lr=0.01)
rng = np.random.default_rng(0)
def draw(pool, n):
    cls = rng.integers(0, C, n)
    return np.array([pool[c][rng.integers(0, len(pool[c]))] for c in cls])
va_by = [va[y.numpy()[va] == c] for c in range(C)]
va_by = [v if len(v) else va for v in va_by]
for step in range(steps):
    idx = torch.from_numpy(draw(by_class, 100))
    xb, yb = X[idx], y[idx]
    loss = torch.nn.functional.cross_entropy(xb @ W + b, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 10 == 0 or step + 1 == steps:
        with torch.no_grad():
            z = xb @ W + b
            acc = (z.argmax(1) == yb).float().mean().item()
            ce = torch.nn.functional.cross_entropy(z, yb).item()
            vi = torch.from_numpy(draw(va_by, 100))
            vacc = ((X[vi] @ W + b).argmax(1) == y[vi]).float().mean().item()
with torch.no_grad():
    ti = torch.from_numpy(te)
    tacc = ((X[ti] @ W + b).argmax(1) == y[ti]).float().mean().item()
t2 = time.time()
print(f"torch: load {t1 - t0:.3f} s, loop {t2 - t1:.3f} s, total {t2 - t0:.3f} s, test accuracy {100 * tacc:.1f}%")
