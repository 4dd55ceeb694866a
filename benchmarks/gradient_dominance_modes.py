"""Gradient dominance measured in training mode vs inference mode.

Trains `small_cnn` on digits under the mixed regime (backbone 5 epochs,
then joint 5; Adam 3·10⁻³, batch 32, seed 0) with two `GradientDominance`
callbacks on the same fixed batch of 64 training images, every 10 steps:
one measuring training-mode gradients (the default: BatchNorm on the
batch's statistics, the gradients the optimizer applies) and one
inference-mode gradients (`training=False`, the former measurement).
Neither changes training. Prints, per phase, the largest difference of
the cosines and how often the dominant exit (largest cosine) differs;
with `--out` writes the training-mode figure
(`gradient_dominance_mixed.png`). Seeded: the figures repeat on one
machine.

Usage:
    python benchmarks/gradient_dominance_modes.py [--out DIR]
"""

import argparse
import os

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help="write gradient_dominance_mixed.png here")
    args = parser.parse_args()

    import keras

    from keras_eexit import data
    from keras_eexit import models
    from keras_eexit import regimes
    from keras_eexit.analysis.weight_space import as_arrays
    from keras_eexit.callbacks import GradientDominance
    from keras_eexit.evaluation import gradient_dominance_plot

    splits = data.load("digits", batch_size=32)
    x, y = as_arrays(splits.train, max_samples=64)
    keras.utils.set_random_seed(0)
    model = models.get_model("small_cnn", input_shape=(8, 8, 1),
                             num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    training = GradientDominance(x, y, every=10)
    inference = GradientDominance(x, y, every=10, training=False)
    model.fit(splits.train, epochs=10, verbose=0, callbacks=[
        regimes.Mixed(5, 5, verbose=False), training, inference])
    steps = training.steps
    boundary = steps.max() // 2 + 1  # the phases have equal lengths
    for phase, rows in (("backbone", steps < boundary),
                        ("joint", steps >= boundary)):
        a, b = training.cosines[rows], inference.cosines[rows]
        finite = np.isfinite(a) & np.isfinite(b)
        diff = np.abs(a - b)[finite].max() if finite.any() else np.nan
        flips = np.mean(np.nanargmax(np.where(finite, a, -2), 1)
                        != np.nanargmax(np.where(finite, b, -2), 1))
        print(f"{phase} phase: {rows.sum()} measurements, largest cosine "
              f"difference {diff:.2f}, dominant exit differs in "
              f"{flips:.0%}")
    last = training.cosines[-1]
    print("last measurement, training mode:", np.round(last, 2),
          "inference mode:", np.round(inference.cosines[-1], 2))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        gradient_dominance_plot(
            training, model.exit_names,
            os.path.join(args.out, "gradient_dominance_mixed.png"),
            title="Gradient dominance, mixed regime (training mode)")


if __name__ == "__main__":
    main()
