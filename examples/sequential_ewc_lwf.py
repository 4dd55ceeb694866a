"""Stability vs plasticity: sequential training with none / EWC / LwF.

    python examples/sequential_ewc_lwf.py [--seeds 2]

Zniber et al. train an early-exit network exit by exit: a warm-up trains
the backbone with the final exit, then internal exits are added shallow to
deep, each stage training the shared prefix for the new exit. Without a
regulariser the prefix drifts and the final exit (frozen head, moving
features) forgets; EWC anchors the prefix to what earlier stages (and the
warm-up) needed; LwF keeps earlier internal exits' outputs close to a
snapshot. This script runs the three on MNIST-1D (generated offline) with
`cnn1d` and prints per-exit test accuracy (mean ± std over seeds).
"""

import argparse

import keras
import numpy as np

import keras_eexit
from keras_eexit import regimes

SETTINGS = {
    "separate (cumulative, none)": dict(objective="cumulative"),
    "current, none": dict(objective="current"),
    "current + EWC (λ=100)": dict(objective="current", regularizer="ewc",
                                  lam=100.0),
    "current + LwF (ρ=0.7)": dict(objective="current", regularizer="lwf",
                                  rho=0.7),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--warmup-epochs", type=int, default=8)
    parser.add_argument("--epochs-per-exit", type=int, default=3)
    args = parser.parse_args()
    data = keras_eexit.data.load_arrays("mnist1d")
    print(f"Sequential training of cnn1d on MNIST-1D: warm-up "
          f"{args.warmup_epochs} epochs, {args.epochs_per_exit} per exit, "
          f"{args.seeds} seed(s). Test accuracy per exit, mean ± std:",
          flush=True)
    results = {}
    header = False
    for name, kwargs in SETTINGS.items():
        rows = []
        for seed in range(args.seeds):
            keras.utils.set_random_seed(seed)
            model = keras_eexit.models.get_model("cnn1d")
            regime = regimes.Sequential(
                args.epochs_per_exit, warmup_epochs=args.warmup_epochs,
                verbose=False, **kwargs)
            model.compile(optimizer=keras.optimizers.Adam(2e-3),
                          metrics=["accuracy"])
            model.fit(data["x_train"], data["y_train"], batch_size=64,
                      epochs=regime.epochs_for(model), verbose=0,
                      callbacks=[regime])
            result = model.evaluate(data["x_test"], data["y_test"],
                                    return_dict=True, verbose=0)
            rows.append([result[f"{n}_accuracy"] for n in model.exit_names])
        results[name] = np.array(rows)
        if not header:
            print(f"{'setting':30s} " + "  ".join(
                f"{n:^11s}" for n in model.exit_names), flush=True)
            header = True
        mean, std = results[name].mean(0), results[name].std(0)
        cells = "  ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(mean, std))
        print(f"{name:30s} {cells}", flush=True)


if __name__ == "__main__":
    main()
