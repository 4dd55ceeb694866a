"""Benchmark: thresholds from validation vs one global threshold (MNIST-1D).

Trains `cnn1d` (4 exits) jointly on MNIST-1D (generated offline) and
compares, on the TEST split, three ways of trading accuracy for compute:

* the best-accuracy curve (the policy keras-eexit leads with): for 39
  budgets, the per-exit thresholds of highest VALIDATION accuracy within
  the budget (`keras_eexit.inference.best_accuracy_curve`);
* the budgeted-batch curve (MSDNet's `adaptive_inference.py`, p = 1..39):
  per-exit max-softmax thresholds read from the VALIDATION confidences for
  a geometric exit schedule (`keras_eexit.inference.budgeted_batch_curve`);
* the global-threshold sweep: one max-softmax threshold for every exit,
  100 values (`keras_eexit.evaluation.sweep`), read on the test split
  itself (each point is an honest test result of one rule; the usual way
  papers draw it).

For each point of the two calibrated curves it prints the test mean FLOPs
(fraction of the base network's, `model.base_flops()`) and accuracy next
to the global sweep's accuracy at the same cost, read two ways: the sweep
curve as plotted (straight lines between its points,
`evaluation.accuracy_at`) and the best sweep point within that cost.
Claim checked: a calibrated curve lies on or above the global sweep at
every budget.

    python benchmarks/calibration_mnist1d.py             # about a minute
    python benchmarks/calibration_mnist1d.py --seeds 3 --plot curves.png
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.evaluation import accuracy_at  # noqa: E402
from keras_eexit.evaluation import collect  # noqa: E402
from keras_eexit.evaluation import threshold_sweep  # noqa: E402
from keras_eexit.evaluation import tradeoff_plot  # noqa: E402
from keras_eexit.inference import best_accuracy_curve  # noqa: E402
from keras_eexit.inference import budgeted_batch_curve  # noqa: E402
from keras_eexit.models import cnn1d  # noqa: E402


def best_within(curve, cost):
    """The best accuracy of a sweep point costing at most `cost` (or NaN)."""
    within = curve.accuracy[curve.mean_flops <= cost * (1 + 1e-12)]
    return float(within.max()) if within.size else np.nan


def compare(label, curve, global_sweep, base):
    """Prints a curve next to the global sweep; returns the two margins."""
    print(f"\n{label}")
    print(f"{'point':>5} {'FLOPs/base':>10} {'accuracy':>9} {'global':>9} "
          f"{'diff':>7} {'global best<=':>14} {'diff':>7}")
    margins, margins_within = [], []
    for j, (cost, accuracy) in enumerate(zip(curve.mean_flops,
                                             curve.accuracy), 1):
        interpolated = accuracy_at(global_sweep, cost)
        within = best_within(global_sweep, cost)
        margins.append(accuracy - interpolated)
        margins_within.append(accuracy - within)
        print(f"{j:>5} {cost / base:>10.3f} {accuracy:>9.4f} "
              f"{interpolated:>9.4f} {100 * (accuracy - interpolated):>+6.2f}"
              f" {within:>14.4f} {100 * (accuracy - within):>+6.2f}")
    return np.asarray(margins), np.asarray(margins_within)


def run(seed, args, arrays):
    keras.utils.set_random_seed(seed)
    model = cnn1d(num_classes=10, width=args.width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=args.epochs,
              batch_size=128, verbose=0)
    validation = collect(model, (arrays["x_val"], arrays["y_val"]))
    test = collect(model, (arrays["x_test"], arrays["y_test"]))
    global_sweep = threshold_sweep(test, criterion="max_softmax",
                                   thresholds=100)
    curves = {
        "best accuracy within a budget (39 budgets, exit 1 to exit K)":
            best_accuracy_curve(validation, test),
        "budgeted batch (MSDNet's geometric schedule, p = 1..39)":
            budgeted_batch_curve(validation, test),
    }
    base = float(model.base_flops())
    print(f"\nseed {seed}: test accuracy per exit "
          f"{np.round(test.accuracy(), 4).tolist()}; "
          f"FLOPs per exit / base {np.round(test.flops / base, 3).tolist()}")
    margins = {}
    for label, curve in curves.items():
        margins[label] = compare(
            f"{label} vs the global max_softmax sweep (test split; "
            "thresholds of the curve from validation):", curve,
            global_sweep, base)
    if args.plot:
        root, ext = os.path.splitext(args.plot)
        tradeoff_plot({**{label: [c] for label, c in curves.items()},
                       "global max_softmax threshold": [global_sweep]},
                      f"{root}_seed{seed}{ext}",
                      title=f"cnn1d on MNIST-1D, seed {seed}")
    return margins


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--plot", default=None,
                        help="PNG path prefix for the two curves per seed")
    args = parser.parse_args(argv)
    arrays = load_arrays("mnist1d", validation_split=0.2, seed=0)
    print(f"MNIST-1D: {len(arrays['y_train'])} train, "
          f"{len(arrays['y_val'])} validation (thresholds), "
          f"{len(arrays['y_test'])} test samples; cnn1d width {args.width},"
          f" {args.epochs} epochs, joint training.")
    summary = []
    for seed in range(args.seeds):
        summary.append((seed, run(seed, args, arrays)))
    print("\ncurve minus global sweep, test accuracy points:")
    for seed, margins in summary:
        for label, (interpolated, within) in margins.items():
            valid = interpolated[np.isfinite(interpolated)]
            print(f"  seed {seed}, {label.split(' (')[0]}: vs the "
                  f"interpolated sweep min {100 * valid.min():+.2f}, mean "
                  f"{100 * valid.mean():+.2f}, on or above at "
                  f"{np.sum(valid >= 0)}/{valid.size} budgets; vs the best "
                  f"sweep point within the cost min "
                  f"{100 * np.nanmin(within):+.2f}, on or above at "
                  f"{np.sum(within[np.isfinite(within)] >= 0)}/"
                  f"{np.isfinite(within).sum()}")
    return summary


if __name__ == "__main__":
    main()
