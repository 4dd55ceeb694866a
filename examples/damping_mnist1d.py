"""Adaptive gradient damping on MNIST-1D: joint vs damping vs power-sqrt.

    python examples/damping_mnist1d.py [--seeds 5] [--epochs 6]
                                       [--lam 0.005] [--alpha 0.8]
                                       [--select-lambda 0.005,0.01,0.075,0.5]
                                       [--baselines]

"Diminishing Non-important Gradients for Training Dynamic Early-Exiting
Networks" gives every exit head one extra output unit that stands for no
class (a damping unit) and trains with a damping loss,
`-log F[y] + λ·(-log F[N+1])`, whose gradient on the true class vanishes
once `F[y] = 1/(1 + λ)`: samples a classifier already fits send smaller
gradients into the shared backbone. The power-sqrt loss joins the damping
parts of all exits under one square root, and dynamic training weights
every sample and exit by `1 + w̃`, `w̃ ∈ [-α, α]` from `-log F[N+1]`.

This script trains `cnn1d` (4 exits) on MNIST-1D (generated offline) with

* plain joint training (cross-entropy, plain heads, summed over exits as
  in the paper),
* the damping loss (damping heads),
* the power-sqrt loss (damping heads),
* power-sqrt + dynamic weights (damping heads),

at the paper's λ (0.005, its CIFAR-100 value and default; sec. 5) and, with
`--select-lambda`, also at the λ that gives the best mean validation
accuracy over the grid given (chosen per loss on the validation split,
then evaluated on the test split), (and with `--baselines` the paper's
threshold gradient selection and label smoothing baselines) over several
seeds, and prints per-exit test accuracy, mean ± std, and the mean
damping-neuron output per exit (the paper's Table 5 analysis). Predictions
of damping heads use the N class units. The paper's figures are for MSDNet
on CIFAR/ImageNet; what this prints is this toolkit's small-scale figures,
not a reproduction.
"""

import argparse
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import keras_eexit
from keras_eexit import regimes


def settings(lam, alpha, baselines, label=""):
    """`{name: (damping heads?, Joint kwargs)}`."""
    table = {
        "joint (cross-entropy)": (False, dict(reduction="sum")),
        f"damping (λ={lam}{label})": (True, dict(loss="damping", lam=lam)),
        f"power-sqrt (λ={lam}{label})": (True, dict(loss="power_sqrt",
                                                    lam=lam)),
        f"power-sqrt + dynamic (λ={lam}{label}, α={alpha})": (
            True, dict(loss="power_sqrt", lam=lam, dynamic=alpha)),
    }
    if baselines:
        table["threshold τ=0.9 (baseline)"] = (
            False, dict(threshold=0.9, reduction="sum"))
        table["label smoothing 0.1 (baseline)"] = (
            False, dict(label_smoothing=0.1, reduction="sum"))
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
    test = (data[f"x_{split}"], data[f"y_{split}"])
    outputs = keras_eexit.evaluation.collect(model, test)
    damping_values = None
    if damping:
        damping_values = keras_eexit.evaluation.damping_outputs(
            model, test).damping
    return outputs.accuracy(), damping_values


def table(data, chosen, args, split):
    """Runs every setting over the seeds; prints one row each."""
    start = time.perf_counter()
    for name, (damping, kwargs) in chosen.items():
        runs = []
        for seed in range(args.seeds):
            print(f"  {name}: seed {seed + 1}/{args.seeds} "
                  f"({time.perf_counter() - start:.0f} s so far)",
                  file=sys.stderr, flush=True)
            runs.append(run(data, damping, kwargs, seed, args.epochs,
                            args.batch_size, split))
        rows = np.array([accuracy for accuracy, _ in runs])
        mean, std = rows.mean(0), rows.std(0)
        cells = " | ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(mean, std))
        extra = ""
        if damping:
            values = np.mean([d for _, d in runs], axis=0)
            extra = " | " + " ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {cells} | {rows.mean():.3f}{extra} |",
              flush=True)


def select_lambda(data, grid, args):
    """The λ of each damping loss with the best mean validation accuracy."""
    best = {}
    for loss in ("damping", "power_sqrt"):
        scores = {}
        for lam in grid:
            rows = [run(data, True, dict(loss=loss, lam=lam), seed,
                        args.epochs, args.batch_size, "val")[0]
                    for seed in range(args.seeds)]
            scores[lam] = float(np.mean(rows))
        best[loss] = max(scores, key=scores.get)
        print(f"validation mean accuracy, {loss}: "
              + ", ".join(f"λ={lam}: {v:.4f}" for lam, v in scores.items())
              + f" -> λ={best[loss]}", flush=True)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=10000)
    parser.add_argument("--lam", type=float,
                        default=keras_eexit.losses.DAMPING_LAMBDAS[
                            "cifar100"])
    parser.add_argument("--alpha", type=float, default=0.8)
    parser.add_argument("--select-lambda", default=None,
                        help="comma-separated λ grid searched on the "
                        "validation split (per loss)")
    parser.add_argument("--baselines", action="store_true",
                        help="also run threshold selection and label "
                        "smoothing")
    args = parser.parse_args()
    tf.get_logger().setLevel("ERROR")  # collect() retraces once per model
    data = keras_eexit.data.load_arrays("mnist1d",
                                        num_samples=args.num_samples)
    print(f"MNIST-1D: {len(data['y_train'])} train, "
          f"{len(data['y_val'])} validation, {len(data['y_test'])} test "
          f"samples; cnn1d, {args.epochs} epochs, {args.seeds} seeds. "
          "Per-exit test accuracy, mean ± std | mean over exits | mean "
          "damping-neuron output per exit (Table 5):")
    start = time.perf_counter()
    table(data, settings(args.lam, args.alpha, args.baselines), args,
          "test")
    if args.select_lambda:
        grid = [float(v) for v in args.select_lambda.split(",")]
        best = select_lambda(data, grid, args)
        chosen = {}
        for loss, lam in best.items():
            for name, value in settings(lam, args.alpha, False,
                                        ", validation-chosen").items():
                if value[1].get("loss") == loss:
                    chosen[name] = value
        table(data, chosen, args, "test")
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
