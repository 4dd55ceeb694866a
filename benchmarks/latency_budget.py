"""Benchmark: policies chosen for a latency budget keep it when served.

Trains a small model (`small_cnn` on scikit-learn's digits, or `cnn1d` on
MNIST-1D with `--dataset mnist1d`), measures its cost profile on two
runtimes (`keras_eexit.inference.measure_costs`):

* `keras`: `predict_early_exit`'s compiled graph at batch `--batch`;
* `litert`: the early-exit LiteRT file through `LiteRTRunner`, batch 1
  (its `one_row` signature), one interpreter thread;

then, for a grid of latency budgets (`--fractions` of the final exit's
measured time per sample), picks `best_accuracy_policy(validation,
budget, cost=profile)` on the VALIDATION split and serves the TEST split
with it, timing the real mean latency per sample (Keras:
`predict_early_exit` over the test split in batches of `--batch`, cycled
to whole batches by default (`--serve full`: the profile's regime, every
call `--batch` rows; `--serve split` serves the split as it is, its last
batch partial, whose fixed costs per call are then shared by fewer rows
than the profile assumes, unless `--plan-fill` plans the policies for
the mean rows per call: `CostProfile.at_batch_size`); LiteRT:
`--litert-samples` test samples one per call; the median of `--repeats`
passes: `keras_eexit.inference.keras_serving` / `litert_serving`). It
prints, per runtime and budget: the budget, the profile's prediction on
the test split (the mean measured cost of the exits the test samples
take, each stage's fixed cost per call charged to the batches that run
it: `CostProfile.mean_cost`), the measured mean latency, measured /
budget, predicted / budget (how far the test split's exits cost from the
validation split's, for which the policy was chosen), measured /
predicted (the profile's own error) and the test accuracy. Then the
same for the policy `calibrate_latency` picks by timing the serving call
itself on VALIDATION inputs (closed loop, `--tolerance`), with its
number of rounds. Target: measured within 10% of the budget on a quiet CPU.

    python benchmarks/latency_budget.py                  # a few minutes
    python benchmarks/latency_budget.py --dataset mnist1d
    python benchmarks/latency_budget.py --model cifar_resnet
    python benchmarks/latency_budget.py --additive       # no fixed costs
    python benchmarks/latency_budget.py --serve split --plan-fill
    python benchmarks/latency_budget.py --epochs 1 --batch 32 \\
        --litert-samples 20 --repeats 1 --max-seconds 2    # smoke run
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.evaluation import collect  # noqa: E402
from keras_eexit.evaluation import threshold_sweep  # noqa: E402
from keras_eexit.export import LiteRTRunner  # noqa: E402
from keras_eexit.export import export_litert  # noqa: E402
from keras_eexit.inference import best_accuracy_policy  # noqa: E402
from keras_eexit.inference import calibrate_latency  # noqa: E402
from keras_eexit.inference import keras_serving  # noqa: E402
from keras_eexit.inference import litert_serving  # noqa: E402
from keras_eexit.inference import measure_costs  # noqa: E402
from keras_eexit.models import get_model  # noqa: E402
from keras_eexit.compat import flatten_layers  # noqa: E402
from digits_as_cifar import to_cifar_shape  # noqa: E402

MODELS = {"digits": ("small_cnn", (8, 8, 1)), "mnist1d": ("cnn1d", (40, 1))}
"""The default model of each data set and its input shape."""

CIFAR_MODEL = "cifar_resnet"
"""`--model cifar_resnet`: ResNet-20 on the digits at 32x32x3, whose
stages take milliseconds at batch 1 (the small models' take µs)."""


def train(args):
    arrays = load_arrays(args.dataset, validation_split=0.25,
                         seed=args.seed)
    name, shape = MODELS[args.dataset]
    if args.model == CIFAR_MODEL:
        if args.dataset != "digits":
            raise SystemExit("--model cifar_resnet takes --dataset digits")
        arrays = {k: to_cifar_shape(v) if k.startswith("x_") else v
                  for k, v in arrays.items()}
        name, shape = CIFAR_MODEL, (32, 32, 3)
    keras.utils.set_random_seed(args.seed)
    model = get_model(name, num_classes=10, input_shape=shape)
    for layer in flatten_layers(model):  # short runs: faster BN statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(arrays["x_train"], arrays["y_train"], epochs=args.epochs,
              batch_size=64, verbose=0)
    return model, arrays


def full_batches(x, batch):
    """Indices of `x`'s rows cycled to a whole number of batches."""
    return np.arange(-(-len(x) // batch) * batch) % len(x)


def report(runtime, profile, validation, test, fractions, serve,
           serve_validation, tolerance, served=None):
    final = profile.seconds_per_sample[-1]
    print(f"{runtime}: {profile.describe()}; exits "
          + ", ".join(f"{n} {1e3 * s:.3f} ms" for n, s in zip(
              profile.exit_names, profile.seconds_per_sample))
          + f" per sample ({profile.repeats} repeats, spread "
          f"{profile.spread:.1%})")
    if profile.seconds_per_call is not None:
        print("  fixed per call (fitted with batch "
              f"{profile.call_batch_size}): " + ", ".join(
                  f"{n} {1e3 * s:.3f} ms" for n, s in zip(
                      profile.exit_names, profile.seconds_per_call))
              + " cumulative, i.e. "
              + ", ".join(f"{share:.0%}" for share in np.asarray(
                  profile.seconds_per_call) / np.asarray(
                  profile.seconds_per_batch))
              + " of each exit's batch")
    print(f"  {'budget':>10}{'predicted':>11}{'measured':>10}"
          f"{'measured/budget':>17}{'predicted/budget':>18}"
          f"{'measured/predicted':>20}{'accuracy':>10}   calibrated: "
          f"{'rounds':>6}{'measured':>10}{'measured/budget':>17}"
          f"{'accuracy':>10}")
    for fraction in fractions:
        budget = fraction * final
        if budget < profile.seconds_per_sample[0]:
            print(f"  {1e3 * budget:>7.3f} ms: below the first exit's "
                  f"{1e3 * profile.seconds_per_sample[0]:.3f} ms, skipped")
            continue
        policy = best_accuracy_policy(validation, budget, cost=profile)
        point = threshold_sweep(test, cost=profile,
                                thresholds=policy.threshold_array()[None])
        predicted = point.mean_flops[0]
        if served is not None:  # the rows served: the split cycled
            predicted = profile.mean_cost(
                policy.exit_indices(test.probs)[served])
        measured = serve(policy)
        closed = calibrate_latency(validation, budget, profile,
                                   serve_validation, tolerance=tolerance)
        closed_point = threshold_sweep(
            test, cost=profile,
            thresholds=closed.policy.threshold_array()[None])
        closed_measured = serve(closed.policy)
        print(f"  {1e3 * budget:>7.3f} ms{1e3 * predicted:>8.3f} ms"
              f"{1e3 * measured:>7.3f} ms{measured / budget:>17.2f}"
              f"{predicted / budget:>18.2f}{measured / predicted:>20.2f}"
              f"{point.accuracy[0]:>10.4f}   {'':>11}"
              f"{len(closed.rounds):>6}{1e3 * closed_measured:>7.3f} ms"
              f"{closed_measured / budget:>17.2f}"
              f"{closed_point.accuracy[0]:>10.4f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=sorted(MODELS),
                        default="digits")
    parser.add_argument("--model", choices=("default", CIFAR_MODEL),
                        default="default",
                        help="the data set's small model, or ResNet-20 on "
                        "the digits at 32x32x3")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256,
                        help="batch size of the Keras path (profile and "
                        "serving)")
    parser.add_argument("--fractions", default="0.5,0.6,0.7,0.8,0.9",
                        help="budgets as fractions of the final exit's "
                        "measured time per sample")
    parser.add_argument("--litert-samples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="time cap of each profile's repeats")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="calibrate_latency's stopping distance to the "
                        "budget (relative)")
    parser.add_argument("--serve", choices=("full", "split"),
                        default="full",
                        help="Keras: serve the test (and validation) split "
                        "cycled to whole batches of --batch, or as it is "
                        "(its last batch partial)")
    parser.add_argument("--plan-fill", action="store_true",
                        help="with --serve split: choose the policies on the "
                        "profile re-planned for the mean rows per call "
                        "(CostProfile.at_batch_size)")
    parser.add_argument("--additive", action="store_true",
                        help="profile without fixed costs per call "
                        "(measure_costs(call_batch_size=None)): every cost "
                        "scales with the rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    fractions = [float(f) for f in args.fractions.split(",")]
    model, arrays = train(args)
    validation = collect(model, (arrays["x_val"], arrays["y_val"]))
    test = collect(model, (arrays["x_test"], arrays["y_test"]))
    x_test = arrays["x_test"].astype("float32")
    print(f"{model.name} on {args.dataset}: {args.epochs} epoch(s); test "
          f"accuracy per exit {np.round(test.accuracy(), 4).tolist()}; "
          f"validation {len(validation.labels)}, test {len(test.labels)} "
          "samples")
    profile = measure_costs(
        model, runtime="keras", batch_size=args.batch,
        data=arrays["x_train"], max_seconds=args.max_seconds,
        call_batch_size=None if args.additive else "auto")
    x_val = arrays["x_val"].astype("float32")
    served = None
    if args.serve == "full":
        served = full_batches(x_test, args.batch)
        x_test, x_val = x_test[served], x_val[full_batches(x_val,
                                                           args.batch)]
        print(f"Keras serves {len(x_test)} rows: the test split cycled to "
              f"whole batches of {args.batch} (--serve full)")
    elif args.plan_fill:
        if args.additive:
            raise SystemExit("--plan-fill needs the fixed costs per call "
                             "(drop --additive)")
        fill = round(len(x_test) / -(-len(x_test) // args.batch))
        profile = profile.at_batch_size(fill)
        print(f"Keras serves the {len(x_test)} test rows as they are; "
              f"policies planned for calls of {fill} rows on average "
              "(--plan-fill: CostProfile.at_batch_size)")
    report("keras (batched)", profile, validation, test, fractions,
           keras_serving(model, x_test, args.batch, args.repeats),
           keras_serving(model, x_val, args.batch, args.repeats),
           args.tolerance, served)
    x_test = arrays["x_test"].astype("float32")
    x_val = arrays["x_val"].astype("float32")
    profile = measure_costs(model, runtime="litert", batch_size=1,
                            data=arrays["x_train"], num_threads=1,
                            max_seconds=args.max_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        export_litert(model, tmp, mode="early_exit")
        runner = LiteRTRunner(tmp, num_threads=1)
        subset = x_test[:args.litert_samples]
        sub_test = collect(model, (subset,
                                   arrays["y_test"][:args.litert_samples]))
        report("litert (batch 1)", profile, validation, sub_test, fractions,
               litert_serving(runner, subset, args.repeats),
               litert_serving(runner, x_val[:args.litert_samples],
                              args.repeats),
               args.tolerance)


if __name__ == "__main__":
    main()
