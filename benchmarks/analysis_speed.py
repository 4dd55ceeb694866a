"""Speed of Kubaty et al.'s weight-space analyses on this machine.

Trains `small_cnn` on digits three times (joint, mixed, two-stage: one
model per regime, 6 epochs each, from different seeds as Kubaty et al.'s
D.8), then times

* a 31 × 31 loss landscape of the joint model (every exit, training data);
* the mode-connectivity plane through the three models (31 × 31, two of
  them aligned to the joint model by weight matching), and the three
  aligned linear paths;

and prints the timings next to the target (under a minute each), the
number of weight vectors evaluated per second, and the per-point time of
one weight vector per compiled call and of the loop a user would write
(assign the weights, call the model) for comparison.

Usage:
    python benchmarks/analysis_speed.py [--resolution 31] [--out DIR]
"""

import argparse
import os
import time

import numpy as np


def train(seed, regime, splits):
    import keras

    from keras_eexit import models

    keras.utils.set_random_seed(seed)
    model = models.get_model("small_cnn", input_shape=(8, 8, 1),
                             num_classes=10)
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  metrics=["accuracy"])
    model.fit(splits.train, epochs=6, verbose=0, callbacks=[regime])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=31)
    parser.add_argument("--out", default=None,
                        help="also write the figures here")
    args = parser.parse_args()

    from keras_eexit import analysis
    from keras_eexit import data
    from keras_eexit import regimes
    from keras_eexit.analysis.weight_space import LossEvaluator
    from keras_eexit.analysis.weight_space import WeightSpace
    from keras_eexit.analysis.weight_space import as_arrays

    splits = data.load("digits", batch_size=32)
    start = time.perf_counter()
    trained = {
        "joint": train(0, regimes.Joint(verbose=False), splits),
        "mixed": train(1, regimes.Mixed(3, 3, verbose=False), splits),
        "two_stage": train(2, regimes.TwoStage(3, 3, verbose=False),
                           splits),
    }
    print(f"training 3 x small_cnn on digits: "
          f"{time.perf_counter() - start:.1f} s")
    train_data = as_arrays(splits.train)
    points = args.resolution ** 2
    print(f"training data: {len(train_data[0])} samples; grid "
          f"{args.resolution} x {args.resolution} = {points} points")

    start = time.perf_counter()
    landscape = analysis.loss_landscape(trained["joint"], train_data,
                                        resolution=args.resolution)
    seconds = time.perf_counter() - start
    print(f"loss landscape (joint, every exit): {seconds:.1f} s "
          f"({points / seconds:.0f} points/s; target < 60 s)")

    start = time.perf_counter()
    plane = analysis.connectivity_plane(trained, train_data,
                                        resolution=args.resolution)
    seconds = time.perf_counter() - start
    print(f"mode-connectivity plane (3 models, 2 aligned): {seconds:.1f} s "
          f"({points / seconds:.0f} points/s; target < 60 s)")

    start = time.perf_counter()
    paths = {f"{a} → {b}": analysis.linear_path(trained[a], trained[b],
                                                train_data, points=25)
             for a, b in (("joint", "mixed"), ("joint", "two_stage"),
                          ("mixed", "two_stage"))}
    print(f"3 aligned linear paths (25 points): "
          f"{time.perf_counter() - start:.1f} s")
    for label, line in paths.items():
        print(f"  {label}: final-exit barrier {line.barrier[-1]:.3f}")

    # Alternatives: one compiled call per point (weight_batch=1), and the
    # loop a user would write (assign the weights, call the model).
    import keras

    space = WeightSpace(trained["joint"])
    theta = space.vector()
    single = LossEvaluator(space, train_data, weight_batch=1)
    single(theta[None])  # trace
    start = time.perf_counter()
    for k in range(20):
        single((theta * (1 + 1e-3 * k))[None])
    one = (time.perf_counter() - start) / 20
    print(f"one weight vector per compiled call: {one * 1e3:.1f} ms per "
          f"point -> {one * points:.0f} s for the grid")
    model, (x, y) = trained["joint"], train_data
    start = time.perf_counter()
    for k in range(10):
        space.assign(theta * (1 + 1e-3 * k))
        out = model(x, training=False)
        [float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
            y, out[name], from_logits=True))) for name in model.exit_names]
    space.assign(theta)
    naive = (time.perf_counter() - start) / 10
    print(f"assign + eager call per point: {naive * 1e3:.1f} ms per point "
          f"-> {naive * points:.0f} s for the grid")

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        analysis.landscape_plot({"joint": landscape},
                                path=os.path.join(args.out, "landscape.png"))
        analysis.connectivity_plot(plane, os.path.join(args.out,
                                                       "plane.png"))
        analysis.path_plot(paths, os.path.join(args.out, "paths.png"))
        print(f"figures in {args.out}")
    assert np.all(np.isfinite(landscape.losses))


if __name__ == "__main__":
    main()
