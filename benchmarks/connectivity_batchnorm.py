"""Loss barriers with interpolated vs recomputed BatchNorm statistics.

Trains `small_cnn` on digits three times as `analysis_speed.py` does
(joint, mixed, two-stage; seeds 0, 1, 2; 6 epochs each), then prints the
final-exit loss barrier of every aligned linear path (weight matching,
Kubaty et al. §3.1) twice: with the BatchNorm moving statistics
interpolated like every other weight (`batchnorm="interpolate"`, the
default) and recomputed on the training data at every point
(`batchnorm="recompute"`, as weight-matching work resets them). Seeded:
the figures repeat on one machine.

Usage:
    python benchmarks/connectivity_batchnorm.py [--points 25]
"""

import argparse
import itertools

from analysis_speed import train  # the same three seeded models


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=25)
    args = parser.parse_args()

    from keras_eexit import analysis
    from keras_eexit import data
    from keras_eexit import regimes
    from keras_eexit.analysis.weight_space import as_arrays

    splits = data.load("digits", batch_size=32)
    trained = {
        "joint": train(0, regimes.Joint(verbose=False), splits),
        "mixed": train(1, regimes.Mixed(3, 3, verbose=False), splits),
        "two_stage": train(2, regimes.TwoStage(3, 3, verbose=False),
                           splits),
    }
    train_data = as_arrays(splits.train)
    print("| path | barrier, statistics interpolated | barrier, "
          "statistics recomputed |")
    print("|---|---|---|")
    for a, b in itertools.combinations(trained, 2):
        barriers = [analysis.linear_path(
            trained[a], trained[b], train_data, points=args.points,
            batchnorm=mode).barrier[-1]
            for mode in ("interpolate", "recompute")]
        print(f"| {a} → {b} | {barriers[0]:.2f} | {barriers[1]:.2f} |")


if __name__ == "__main__":
    main()
