"""Benchmark: early-exit methods × training regimes on MNIST-1D (cnn1d).

Kubaty et al. ("Joint or Disjoint", §4.2 and appendix C) train every
early-exit method under every regime; this script does the same at a small
scale, for the README's table: every method of `keras_eexit.methods.METHODS`
(sdn, pbee, ztw, gpf, and l2w/dfs when registered) × {joint, disjoint,
mixed} × 3 seeds on MNIST-1D (10,000 generated samples), `cnn1d` with
linear heads, the command line's defaults (12-epoch budget, batches of 32,
Adam at a constant 3e-3; disjoint = ⌈2E/3⌉ backbone epochs + the rest for
the heads, mixed = half and half). ZTW's ensemble phase adds 2 epochs
(forward passes with the network frozen) after the budget.

Each run is evaluated on the test split with the method's exit rule
(PBEE: patience, the others: max-softmax over Kubaty et al.'s 100
thresholds), and the table reads, as their Table 1: accuracy within 25%,
50%, 75% and 100% of the base network's FLOPs (backbone and final head, no
internal classifier; the last sweep point within the budget) and the best
accuracy ("max"). Over seeds the sweep curves are averaged first, then
read (Kubaty et al.'s `visualize`); ± is the standard deviation of the
per-seed readings. It also prints the final exit's accuracy and the
training time per run.

    python benchmarks/methods_comparison.py               # ~1 hour on 2 cores
    python benchmarks/methods_comparison.py --seeds 1 --epochs 4   # smoke run
    python benchmarks/methods_comparison.py --methods sdn,ztw --regimes mixed

Results are appended to `--out` (JSON lines, one record per run) so that an
interrupted run resumes where it stopped.
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit import methods  # noqa: E402
from keras_eexit import regimes  # noqa: E402
from keras_eexit.data import load_arrays  # noqa: E402
from keras_eexit.evaluation import budget_table  # noqa: E402
from keras_eexit.evaluation import collect  # noqa: E402
from keras_eexit.evaluation import threshold_sweep  # noqa: E402
from keras_eexit.evaluation.sweep import Sweep  # noqa: E402
from keras_eexit.models import get_model  # noqa: E402

REGIMES = ("joint", "disjoint", "mixed")
BUDGETS = ("25%", "50%", "75%", "100%", "max")


def make_regime(name, epochs):
    """The regime `name` filling an `epochs` budget (the CLI's rule)."""
    if name == "joint":
        return regimes.Joint()
    if name == "disjoint":
        backbone = math.ceil(2 * epochs / 3)
        return regimes.TwoStage(backbone, epochs - backbone)
    if name == "mixed":
        return regimes.Mixed(epochs // 2, epochs - epochs // 2)
    raise ValueError(f"unknown regime {name!r}; choose from {REGIMES}")


def run(method_name, regime_name, seed, data, args):
    """Trains one model; returns its record (sweep arrays included)."""
    method = methods.get_method(method_name)
    keras.utils.set_random_seed(seed)
    model = method.build(get_model("cnn1d", num_classes=10))
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                  metrics=["accuracy"])
    regime = method.adapt(make_regime(regime_name, args.epochs),
                          epochs=args.epochs)
    epochs = regime.epochs_for(model) or args.epochs
    start = time.perf_counter()
    model.fit(data["x_train"], data["y_train"], batch_size=args.batch_size,
              epochs=epochs, callbacks=[regime], verbose=0)
    seconds = time.perf_counter() - start
    outputs = collect(model, (data["x_test"], data["y_test"]))
    result = threshold_sweep(outputs, criterion=method.criterion)
    return {
        "method": method_name, "regime": regime_name, "seed": seed,
        "criterion": method.criterion, "epochs": epochs,
        "train_seconds": round(seconds, 1),
        "exit_accuracy": [float(a) for a in outputs.accuracy()],
        "flops": [int(f) for f in outputs.flops],
        "base_flops": int(model.base_flops()),
        "thresholds": np.asarray(result.thresholds).tolist(),
        "accuracy": np.asarray(result.accuracy).tolist(),
        "mean_flops": np.asarray(result.mean_flops).tolist(),
        "exit_ratios": np.asarray(result.exit_ratios).tolist(),
    }


def _sweep(record, accuracy=None, mean_flops=None, exit_ratios=None):
    return Sweep(
        record["criterion"], np.asarray(record["thresholds"]),
        np.asarray(record["accuracy"] if accuracy is None else accuracy),
        np.asarray(record["mean_flops"] if mean_flops is None
                   else mean_flops),
        np.asarray(record["exit_ratios"] if exit_ratios is None
                   else exit_ratios))


def _budget_flops(record):
    """Per-exit FLOPs whose last value is the base network's cost, the
    denominator of the budgets."""
    return list(record["flops"][:-1]) + [record["base_flops"]]


def summarise(records):
    """Per (method, regime): budget table of the seed-averaged curve, the
    std of per-seed readings, final-exit accuracy and training time."""
    groups = {}
    for r in records:
        groups.setdefault((r["method"], r["regime"]), []).append(r)
    rows = []
    for (method, regime), runs in groups.items():
        mean = _sweep(
            runs[0],
            np.mean([r["accuracy"] for r in runs], axis=0),
            np.mean([r["mean_flops"] for r in runs], axis=0),
            np.mean([r["exit_ratios"] for r in runs], axis=0))
        table = budget_table(mean, _budget_flops(runs[0]))
        per_seed = [budget_table(_sweep(r), _budget_flops(r)) for r in runs]
        rows.append({
            "method": method, "regime": regime, "seeds": len(runs),
            "criterion": runs[0]["criterion"],
            "table": {b: table[b] for b in BUDGETS},
            "std": {b: float(np.nanstd([t[b] for t in per_seed]))
                    for b in BUDGETS},
            "final_exit": float(np.mean([r["exit_accuracy"][-1]
                                         for r in runs])),
            "train_seconds": float(np.mean([r["train_seconds"]
                                            for r in runs])),
        })
    return rows


def markdown(rows, method_order, regime_order):
    head = ("| method | regime | " + " | ".join(BUDGETS)
            + " | final exit | train s |")
    lines = [head, "|" + "---|" * (len(BUDGETS) + 4)]
    order = {(m, r): (method_order.index(m), regime_order.index(r))
             for m in method_order for r in regime_order}
    for row in sorted(rows, key=lambda r: order.get(
            (r["method"], r["regime"]), (99, 99))):
        cells = [f"{100 * row['table'][b]:.1f} ± {100 * row['std'][b]:.1f}"
                 for b in BUDGETS]
        name = row["method"] + (" (patience)"
                                if row["criterion"] == "patience" else "")
        lines.append(f"| {name} | {row['regime']} | " + " | ".join(cells)
                     + f" | {100 * row['final_exit']:.1f} | "
                     f"{row['train_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(methods.METHODS))
    parser.add_argument("--regimes", default=",".join(REGIMES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--out", default="runs/methods_comparison.jsonl")
    args = parser.parse_args(argv)
    method_names = [m for m in args.methods.split(",") if m]
    regime_names = [r for r in args.regimes.split(",") if r]
    for name in method_names:
        methods.get_method(name)  # unknown names fail before training
    for name in regime_names:
        make_regime(name, args.epochs)
    data = load_arrays("mnist1d", num_samples=args.num_samples)
    records = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            records = [json.loads(line) for line in f if line.strip()]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    done = {(r["method"], r["regime"], r["seed"], r["epochs"])
            for r in records}
    for seed in range(args.seeds):
        for regime_name in regime_names:
            for method_name in method_names:
                extra = 2 if method_name == "ztw" else 0
                key = (method_name, regime_name, seed, args.epochs + extra)
                if key in done:
                    continue
                record = run(method_name, regime_name, seed, data, args)
                records.append(record)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"{method_name:5s} {regime_name:9s} seed {seed}: "
                      f"exits {np.round(record['exit_accuracy'], 3)} "
                      f"({record['train_seconds']:.0f} s)", flush=True)
    wanted = [r for r in records
              if r["method"] in method_names and r["regime"] in regime_names
              and r["seed"] < args.seeds]
    print()
    print(f"MNIST-1D, cnn1d, {args.epochs}-epoch budget, batch "
          f"{args.batch_size}, Adam {args.learning_rate:g}, "
          f"{args.seeds} seed(s); test accuracy (%) within a fraction of "
          "the base network's FLOPs:")
    print(markdown(summarise(wanted), method_names, regime_names))


if __name__ == "__main__":
    main()
