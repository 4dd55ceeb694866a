"""Speed of `sweep`: 10,000 samples x 8 exits x 100 thresholds, one core.

Prints, for every criterion, the median time of the vectorised sweep over
several repeats, and for max-softmax and entropy a naive per-sample Python
loop (timed on 500 samples, scaled to 10,000; its result is checked against
the vectorised one) with the ratio. Target: under 0.5 s per sweep.

Usage:
    taskset -c 0 python benchmarks/sweep_speed.py
"""

import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from keras_eexit.evaluation import threshold_sweep  # noqa: E402

K, N, C, T = 8, 10_000, 10, 100
NAIVE_SAMPLES = 500
REPEATS = 5


def naive(probs, labels, flops, criterion, thresholds):
    """One sample and one exit at a time, the way a loop would do it."""
    accuracy, cost = [], []
    num_classes = probs.shape[-1]
    for t in thresholds:
        right, total = 0, 0.0
        for i in range(probs.shape[1]):
            chosen = len(flops) - 1
            for j in range(len(flops)):
                p = probs[j, i]
                if criterion == "max_softmax":
                    accept = p.max() > t
                else:
                    nonzero = p[p > 0]
                    entropy = -(nonzero * np.log(nonzero)).sum()
                    accept = entropy / np.log(num_classes) <= t
                if accept:
                    chosen = j
                    break
            right += probs[chosen, i].argmax() == labels[i]
            total += flops[chosen]
        accuracy.append(right / probs.shape[1])
        cost.append(total / probs.shape[1])
    return np.array(accuracy), np.array(cost)


def timed(function, repeats=REPEATS):
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(K, N, C))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    probs = probs.astype("float32")
    labels = rng.integers(0, C, N)
    flops = np.cumsum(rng.integers(1_000, 10_000, K))
    print(f"{N:,} samples x {K} exits x {C} classes, {T} thresholds "
          f"(patience: {K - 1} values, static: {K}); median of {REPEATS}")
    for criterion in ("max_softmax", "entropy", "patience", "static"):
        took = timed(
            lambda: threshold_sweep(probs, labels, flops, criterion, T))
        line = (f"  {criterion:12s} {took * 1e3:7.1f} ms "
                f"(target < 500 ms: {'PASS' if took < 0.5 else 'FAIL'})")
        if criterion in ("max_softmax", "entropy"):
            thresholds = np.linspace(0, 1, T)
            sub = (probs[:, :NAIVE_SAMPLES], labels[:NAIVE_SAMPLES])
            start = time.perf_counter()
            accuracy, cost = naive(*sub, flops, criterion, thresholds)
            loop = (time.perf_counter() - start) * N / NAIVE_SAMPLES
            check = threshold_sweep(*sub, flops, criterion, thresholds)
            assert np.allclose(check.accuracy, accuracy)
            assert np.allclose(check.mean_flops, cost)
            line += (f"; naive per-sample loop ~{loop:.1f} s "
                     f"(scaled from {NAIVE_SAMPLES}) = {loop / took:.0f}x")
        print(line, flush=True)


if __name__ == "__main__":
    main()
