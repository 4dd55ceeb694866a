"""Adaptive gradient damping on MNIST-1D: joint vs damping vs power-sqrt.

    python examples/damping_mnist1d.py [--seeds 3] [--epochs 6] [--lam 0.5]
                                       [--alpha 0.8] [--baselines]
                                       [--split test]

"Diminishing Non-important Gradients for Training Dynamic Early-Exiting
Networks" gives every exit head one extra output unit that stands for no
class (a damping unit) and trains with a damping loss,
`-log F[y] + λ·(-log F[N+1])`, whose gradient on the true class vanishes
once `F[y] = 1/(1 + λ)`: samples a classifier already fits send smaller
gradients into the shared backbone. The power-sqrt loss joins the damping
parts of all exits under one square root, and dynamic training weights
every sample and exit by `1 + w̃`, `w̃ ∈ [-α, α]` from `-log F[N+1]`.

This script trains `cnn1d` (4 exits) on MNIST-1D (generated offline) with

* plain joint training (cross-entropy, plain heads),
* the damping loss (damping heads),
* the power-sqrt loss (damping heads),
* power-sqrt + dynamic weights (damping heads),

(and with `--baselines` the paper's threshold gradient selection and label
smoothing baselines) over several seeds, and prints per-exit accuracy,
mean ± std. Predictions of damping heads use the N class units. The paper's
figures are for MSDNet on CIFAR/ImageNet; what this prints is a small-scale
check, not a reproduction.
"""

import argparse
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import keras_eexit
from keras_eexit import regimes


def settings(lam, alpha, baselines):
    """`{name: (damping heads?, Joint kwargs)}`."""
    table = {
        "joint (cross-entropy)": (False, {}),
        f"damping (λ={lam})": (True, dict(loss="damping", lam=lam)),
        f"power-sqrt (λ={lam})": (True, dict(loss="power_sqrt", lam=lam)),
        f"power-sqrt + dynamic (α={alpha})": (
            True, dict(loss="power_sqrt", lam=lam, dynamic=alpha)),
    }
    if baselines:
        table["threshold τ=0.9 (baseline)"] = (False, dict(threshold=0.9))
        table["label smoothing 0.1 (baseline)"] = (
            False, dict(label_smoothing=0.1))
    return table


def run(data, damping, joint_kwargs, seed, epochs, batch_size, split):
    keras.utils.set_random_seed(seed)
    info = data["info"]
    model = keras_eexit.models.get_model(
        "cnn1d", input_shape=info.input_shape, num_classes=info.num_classes,
        damping=damping)
    steps = epochs * -(-len(data["y_train"]) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  metrics=["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=epochs,
              batch_size=batch_size, verbose=0,
              callbacks=[regimes.Joint(verbose=False, **joint_kwargs)])
    outputs = keras_eexit.evaluation.collect(
        model, (data[f"x_{split}"], data[f"y_{split}"]))
    return outputs.accuracy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=10000)
    parser.add_argument("--lam", type=float, default=0.5)
    parser.add_argument("--alpha", type=float, default=0.8)
    parser.add_argument("--baselines", action="store_true",
                        help="also run threshold selection and label "
                        "smoothing")
    parser.add_argument("--split", default="test", choices=("val", "test"),
                        help="evaluate on the validation split (to choose "
                        "λ, α) or the test split")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")  # collect() retraces once per model
    data = keras_eexit.data.load_arrays("mnist1d",
                                        num_samples=args.num_samples)
    print(f"MNIST-1D: {len(data['y_train'])} train, "
          f"{len(data[f'y_{args.split}'])} {args.split} samples; cnn1d, "
          f"{args.epochs} epochs, {args.seeds} seeds. Per-exit "
          f"{args.split} accuracy, mean ± std:")
    start = time.perf_counter()
    print(f"{'setting':34s} " + "  ".join(
        f"{'exit ' + str(k):^11s}" for k in range(1, 5)), flush=True)
    for name, (damping, kwargs) in settings(
            args.lam, args.alpha, args.baselines).items():
        rows = []
        for seed in range(args.seeds):
            print(f"  {name}: seed {seed + 1}/{args.seeds} "
                  f"({time.perf_counter() - start:.0f} s so far)",
                  file=sys.stderr, flush=True)
            rows.append(run(data, damping, kwargs, seed, args.epochs,
                            args.batch_size, args.split))
        rows = np.array(rows)
        mean, std = rows.mean(0), rows.std(0)
        cells = "  ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(mean, std))
        print(f"{name:34s} {cells}   (mean {rows.mean():.3f})", flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
