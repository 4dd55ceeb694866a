"""Speed of `sweep`: 10,000 samples x 8 exits x 100 thresholds, one core.

Prints the vectorised sweep's time for each criterion next to a naive
per-sample Python loop (timed on 500 samples and scaled), and the ratio.
Target: under 0.5 s per sweep.

Usage:
    python benchmarks/sweep_speed.py
"""

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from keras_eexit.evaluation import sweep  # noqa: E402


def naive(probs, labels, flops, thresholds):
    accuracy, cost = [], []
    for t in thresholds:
        right, total = 0, 0.0
        for i in range(probs.shape[1]):
            k = next((j for j in range(len(flops))
                      if probs[j, i].max() > t), len(flops) - 1)
            right += probs[k, i].argmax() == labels[i]
            total += flops[k]
        accuracy.append(right / probs.shape[1])
        cost.append(total / probs.shape[1])
    return accuracy, cost


def main():
    rng = np.random.default_rng(0)
    k, n, c = 8, 10_000, 10
    logits = rng.normal(scale=3.0, size=(k, n, c)).astype("float32")
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, c, n)
    flops = np.cumsum(rng.integers(1_000, 10_000, k))
    print(f"{n} samples x {k} exits x 100 thresholds")
    for criterion in ("max_softmax", "entropy"):
        sweep(probs, labels, flops, criterion, 100)
        start = time.perf_counter()
        sweep(probs, labels, flops, criterion, 100)
        took = time.perf_counter() - start
        print(f"  {criterion:12s} {took:.3f} s (target < 0.5 s): "
              f"{'PASS' if took < 0.5 else 'FAIL'}")
    start = time.perf_counter()
    naive(probs[:, :500], labels[:500], flops, np.linspace(0, 1, 100))
    loop = (time.perf_counter() - start) * n / 500
    start = time.perf_counter()
    sweep(probs, labels, flops, "max_softmax", 100)
    vectorised = time.perf_counter() - start
    print(f"  naive per-sample loop (scaled): {loop:.1f} s = "
          f"{loop / vectorised:.0f}x the vectorised sweep")


if __name__ == "__main__":
    main()
