"""Benchmark: does a batch that splits at a stage boundary cost extra?

`measure_costs` times forced-exit batches (every row leaves at exit k), in
which no batch ever splits: after stage k either all rows continue or none
does. A served batch that mixes exits splits (some rows leave at k, the
others are gathered and go on; `compaction.py`), and the question is
whether that split costs more than the profile's linear model of each
stage (`seconds_per_call` + rows x per-row seconds: `CostProfile.mean_cost`
of the batch's exits) predicts.

Trains `latency_budget.py`'s model (`small_cnn` on digits, or `--model
cifar_resnet`), then times, round-robin in the same rounds
(`keras_eexit.inference.cost_profile.time_calls`), `predict_early_exit`'s
compiled batch call (the call `measure_costs(runtime="keras")` times) on
one batch of `--batch` training rows:

* forced to each exit at `--batch` rows and at `call_batch_size_for(batch)`
  rows: the profile (`fit_call_costs`), exactly as `measure_costs` fits it;
* split at each boundary k (all but the last exit): thresholds at which a
  fraction (`--leave`) of the rows leaves at exit k and the rest go to the
  last exit (no other exit accepts);

and prints each split batch's measured time, the profile's prediction for
its exits and measured / predicted; then the same call through
`predict_early_exit` (one batch per call) against the bare compiled call:
the per-call overhead of the Python around it, which `measure_costs` does
not time.

    python benchmarks/split_cost.py --seed 1
    python benchmarks/split_cost.py --model cifar_resnet --seed 1
    python benchmarks/split_cost.py --epochs 1 --batch 32 --max-seconds 2
"""

import argparse
import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import latency_budget  # noqa: E402
from keras_eexit.evaluation.cost import CostProfile  # noqa: E402
from keras_eexit.inference import ExitPolicy  # noqa: E402
from keras_eexit.inference import predict_early_exit  # noqa: E402
from keras_eexit.inference.cost_profile import call_batch_size_for  # noqa: E402,E501
from keras_eexit.inference.cost_profile import fit_call_costs  # noqa: E402
from keras_eexit.inference.cost_profile import forced_thresholds  # noqa: E402
from keras_eexit.inference.cost_profile import time_calls  # noqa: E402
from keras_eexit.inference.predict import _batch_runner  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default",
                        choices=["default", latency_budget.CIFAR_MODEL])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--leave", type=float, nargs="+",
                        default=[0.5, 0.9])
    parser.add_argument("--max-seconds", type=float, default=90.0)
    args = parser.parse_args(argv)
    args.dataset = "digits"
    model, arrays = latency_budget.train(args)
    num_exits = model.num_exits
    big, small = args.batch, call_batch_size_for(args.batch)
    x = arrays["x_train"].astype(model.input_dtype)
    x = x[latency_budget.full_batches(x, big)][:big]

    def runner(thresholds):
        policy = ExitPolicy("max_softmax", tuple(float(t) for t in
                                                 thresholds))
        return _batch_runner(model, policy), policy

    calls, splits = [], []
    forced = [runner(forced_thresholds("max_softmax", num_exits, k))
              for k in range(num_exits)]
    for run, _ in forced:
        calls += [functools.partial(run, x), functools.partial(
            run, x[:small])]
    # Exit k's max-softmax scores: the forced-to-k call's probabilities.
    scores = [forced[k][0](x)[0].max(-1) for k in range(num_exits)]
    for k in range(num_exits - 1):
        for leave in args.leave:
            thresholds = forced_thresholds("max_softmax", num_exits,
                                           num_exits - 1)
            thresholds[k] = np.quantile(scores[k], 1 - leave)
            run, policy = runner(thresholds)
            exits = np.asarray(run(x)[1], np.int64)
            splits.append((k, leave, exits, policy))
            calls.append(functools.partial(run, x))
    last_run, last_policy = forced[-1]
    calls.append(functools.partial(last_run, x))
    calls.append(lambda: predict_early_exit(model, x, policy=last_policy,
                                            batch_size=big))
    medians, rounds, spread = time_calls(calls, 5, 50, 0.03,
                                         args.max_seconds)
    medians = np.asarray(medians)
    per_batch = np.maximum.accumulate(medians[0:2 * num_exits:2])
    per_small = medians[1:2 * num_exits:2]
    profile = CostProfile(
        tuple(per_batch / big), tuple(per_batch), "keras", big, "0" * 16,
        tuple(model.exit_names), seconds_per_call=tuple(fit_call_costs(
            per_batch, per_small, big, small)), call_batch_size=small)
    print(f"{model.name}, batch {big} (fixed costs fitted with {small}); "
          f"{rounds} rounds, spread {spread:.1%}")
    print("forced batches, ms: "
          + ", ".join(f"exit {k + 1} {t * 1e3:.3f}"
                      for k, t in enumerate(per_batch)))
    print("  boundary  leave  rows per exit         measured   predicted  "
          "measured/predicted")
    for i, (k, leave, exits, _) in enumerate(splits):
        measured = medians[2 * num_exits + i]
        predicted = profile.mean_cost(exits) * big
        counts = np.bincount(exits, minlength=num_exits).tolist()
        print(f"  {k + 1:8d}  {leave:5.2f}  {str(counts):20s}  "
              f"{measured * 1e3:6.3f} ms  {predicted * 1e3:6.3f} ms  "
              f"{measured / predicted:18.3f}")
    bare, served = medians[-2:]
    print(f"last exit: compiled call {bare * 1e3:.3f} ms, predict_early_exit "
          f"{served * 1e3:.3f} ms per batch: +{(served - bare) * 1e6:.0f} us "
          f"({served / bare - 1:+.1%}) per call around the compiled one")


if __name__ == "__main__":
    main()
