"""Stability vs plasticity: sequential training with none / EWC / LwF.

    python examples/sequential_ewc_lwf.py [--seeds 2] [--warmup-epochs 8]
                                          [--epochs-per-exit 3]

Zniber et al. train an early-exit network exit by exit. A warm-up trains
the backbone with the final exit; then one stage per exit μ = 1..K (the
final exit included) trains the shared prefix Θ_1..Θ_μ and head μ on exit
μ's loss (eq. 1). Without a regulariser the prefix drifts and the exits
trained earlier forget. EWC (eq. 2-3) penalises moving the parameters
earlier exits need, weighted by their empirical Fisher (measured after each
stage, anchored at the weights that ended it); LwF (eq. 4) keeps each
earlier exit's outputs close to what it produced when its own stage ended.

This script runs, on MNIST-1D (generated offline) with `cnn1d` (4 exits),

* the paper's baselines: "separate" (cumulative loss) and plain sequential
  training on the current exit's loss,
* EWC (λ = 100) and LwF (ρ = 0.7) as the paper defines them,
* the paper's warm-up ablation (its Table 2: the same, without warm-up),
* with `--extension`, the toolkit's former EWC variant (the warm-up's
  final-exit Fisher anchors every segment from stage 1 on), labelled as an
  extension,

and prints per-exit test accuracy (mean ± std over seeds). The paper's
figures are for ResNet-34 / MSDNet on CIFAR-100; these are this toolkit's
small-scale figures.
"""

import argparse
import sys
import time

import keras
import numpy as np

import keras_eexit
from keras_eexit import regimes


def settings(extension):
    """`{name: (warm-up?, SequentialRegime kwargs)}`."""
    table = {
        "separate (cumulative, no regulariser)": (True, {}),
        "current exit, no regulariser": (True, dict(objective="current")),
        "EWC (λ = 100)": (True, dict(regularizer="ewc", lam=100.0)),
        "LwF (ρ = 0.7)": (True, dict(regularizer="lwf", rho=0.7)),
        "EWC (λ = 100), no warm-up": (False, dict(regularizer="ewc",
                                                  lam=100.0)),
        "LwF (ρ = 0.7), no warm-up": (False, dict(regularizer="lwf",
                                                  rho=0.7)),
    }
    if extension:
        table["EWC + warm-up Fisher (extension)"] = (
            True, dict(regularizer="ewc", lam=100.0, warmup_fisher=True))
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--warmup-epochs", type=int, default=8)
    parser.add_argument("--epochs-per-exit", type=int, default=3)
    parser.add_argument("--extension", action="store_true",
                        help="also run the warm-up-Fisher EWC extension")
    args = parser.parse_args()
    data = keras_eexit.data.load_arrays("mnist1d")
    start = time.perf_counter()
    print(f"MNIST-1D, cnn1d, warm-up {args.warmup_epochs} epochs + "
          f"{args.epochs_per_exit} per exit, {args.seeds} seeds; test "
          "accuracy of exits 1..4, mean ± std:")
    for name, (warmup, kwargs) in settings(args.extension).items():
        rows = []
        for seed in range(args.seeds):
            print(f"  {name}: seed {seed + 1}/{args.seeds} "
                  f"({time.perf_counter() - start:.0f} s so far)",
                  file=sys.stderr, flush=True)
            keras.utils.set_random_seed(seed)
            model = keras_eexit.models.get_model("cnn1d")
            regime = regimes.SequentialRegime(
                args.epochs_per_exit,
                warmup_epochs=args.warmup_epochs if warmup else 0,
                verbose=False, **kwargs)
            model.compile(optimizer=keras.optimizers.Adam(2e-3),
                          metrics=["accuracy"])
            model.fit(data["x_train"], data["y_train"], batch_size=64,
                      verbose=0, callbacks=[regime])
            result = model.evaluate(data["x_test"], data["y_test"],
                                    return_dict=True, verbose=0)
            rows.append([result[f"{n}_accuracy"] for n in model.exit_names])
        rows = np.array(rows)
        mean, std = rows.mean(0), rows.std(0)
        cells = " | ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(mean, std))
        print(f"| {name} | {cells} |", flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
