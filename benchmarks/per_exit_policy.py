"""Benchmark: per-exit thresholds vs the best single threshold, per budget.

For each model, trains it briefly (seeded), collects every exit's outputs
on the VALIDATION and TEST splits, and for a grid of mean-FLOPs budgets
(evenly spaced strictly between exit 1's cost and the last exit's) picks
thresholds on validation only, in three ways:

* **per exit** — `best_accuracy_policy(validation, budget)`: the per-exit
  threshold search (`keras_eexit.inference.search_thresholds`), the
  policy keras-eexit leads with;
* **global** — `best_accuracy_policy(..., search="global")`: the single
  max-softmax threshold of highest validation accuracy within the budget
  (every distinct validation score tried);
* **budgeted batch** — `budgeted_batch_policy(validation, budget)`:
  MSDNet's geometric exit schedule (the paper's procedure), for
  reference.

It prints, per budget, validation and test accuracy of each and the test
mean FLOPs (as a fraction of the base network's, `model.base_flops()`),
then the mean and worst difference per exit minus global on the test
split (on validation the difference is never negative by construction).

Models: `cnn1d` on MNIST-1D (generated offline) and, on scikit-learn's
digits upsampled to 32x32x3, `cifar_resnet(20)` and a small
`msdnet_cifar` (4 exits, 12 channels: the full one spends minutes
building its training graph on a CPU).

    python benchmarks/per_exit_policy.py                 # a few minutes
    python benchmarks/per_exit_policy.py --models cnn1d --points 19
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit.compat import flatten_layers  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.evaluation import collect  # noqa: E402
from keras_eexit.inference import best_accuracy_policy  # noqa: E402
from keras_eexit.inference import budgeted_batch_policy  # noqa: E402
from keras_eexit.models import get_model  # noqa: E402
from digits_as_cifar import to_cifar_shape  # noqa: E402

MODELS = {
    # data set, builder arguments, default epochs
    "cnn1d": ("mnist1d", {"width": 32}, 10),
    "cifar_resnet": ("digits", {"depth": 20}, 5),
    "msdnet_cifar": ("digits", {"exits": 4, "channels": 12}, 1),
}


def load(dataset, seed):
    if dataset == "mnist1d":
        return load_arrays("mnist1d", validation_split=0.2, seed=seed)
    raw = load_arrays("digits", validation_split=0.25, seed=seed)
    return {k: to_cifar_shape(v) if k.startswith("x_") else v
            for k, v in raw.items()}


def train(name, arrays, epochs, seed):
    dataset, builder, _ = MODELS[name]
    keras.utils.set_random_seed(seed)
    model = get_model(name, num_classes=10,
                      input_shape=arrays["x_train"].shape[1:], **builder)
    for layer in flatten_layers(model):  # short runs: faster BN statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=epochs,
              batch_size=64, verbose=0)
    return model


def compare(name, arrays, epochs, args):
    start = time.perf_counter()
    model = train(name, arrays, epochs, args.seed)
    trained = time.perf_counter() - start
    validation = collect(model, (arrays["x_val"], arrays["y_val"]))
    test = collect(model, (arrays["x_test"], arrays["y_test"]))
    base = float(model.base_flops())
    flops = validation.flops.astype(float)
    budgets = np.linspace(flops[0], flops[-1], args.points + 2)[1:-1]
    print(f"\n{name} on {MODELS[name][0]}: {epochs} epochs ({trained:.0f} s)"
          f", seed {args.seed}; {len(validation.labels)} validation / "
          f"{len(test.labels)} test samples; test accuracy per exit "
          f"{np.round(test.accuracy(), 3).tolist()}; FLOPs per exit / base "
          f"{np.round(flops / base, 3).tolist()}")
    print(f"{'budget':>6} | {'validation':^20} | {'test':^34} | "
          f"{'test FLOPs/base':^15}")
    print(f"{'/base':>6} | {'per-exit':>9} {'global':>9} | {'per-exit':>9} "
          f"{'global':>9} {'diff':>6} {'b.batch':>8} | {'per-exit':>7} "
          f"{'global':>7}")
    rows = []
    for budget in budgets:
        policies = {
            "per_exit": best_accuracy_policy(validation, budget),
            "global": best_accuracy_policy(validation, budget,
                                           search="global"),
            "batch": budgeted_batch_policy(validation, budget)}
        val = {k: p.evaluate(validation) for k, p in policies.items()}
        tst = {k: p.evaluate(test) for k, p in policies.items()}
        diff = tst["per_exit"].accuracy[0] - tst["global"].accuracy[0]
        rows.append((val["per_exit"].accuracy[0] - val["global"].accuracy[0],
                     diff))
        print(f"{budget / base:>6.3f} | {val['per_exit'].accuracy[0]:>9.4f} "
              f"{val['global'].accuracy[0]:>9.4f} | "
              f"{tst['per_exit'].accuracy[0]:>9.4f} "
              f"{tst['global'].accuracy[0]:>9.4f} {100 * diff:>+6.2f} "
              f"{tst['batch'].accuracy[0]:>8.4f} | "
              f"{tst['per_exit'].mean_flops[0] / base:>7.3f} "
              f"{tst['global'].mean_flops[0] / base:>7.3f}")
    val_diff, test_diff = (np.array(column) for column in zip(*rows))
    print(f"per-exit minus global, points of accuracy: validation mean "
          f"{100 * val_diff.mean():+.2f}, worst {100 * val_diff.min():+.2f};"
          f" test mean {100 * test_diff.mean():+.2f}, worst "
          f"{100 * test_diff.min():+.2f}, best {100 * test_diff.max():+.2f}")
    return name, val_diff, test_diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs of every model (default: "
                        "cnn1d 10, cifar_resnet 5, msdnet_cifar 1)")
    parser.add_argument("--points", type=int, default=9,
                        help="budgets between exit 1's cost and the last "
                        "exit's")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = {}
    summary = []
    for name in args.models.split(","):
        dataset, _, epochs = MODELS[name]
        if dataset not in data:
            data[dataset] = load(dataset, args.seed)
        summary.append(compare(name, data[dataset], args.epochs or epochs,
                               args))
    print("\nsummary (test split, per-exit minus global, accuracy points):")
    for name, val_diff, test_diff in summary:
        print(f"  {name:<13} mean {100 * test_diff.mean():+.2f}, worst "
              f"{100 * test_diff.min():+.2f} ({len(test_diff)} budgets; "
              f"validation worst {100 * val_diff.min():+.2f})")
    return summary


if __name__ == "__main__":
    main()
