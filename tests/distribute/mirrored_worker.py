"""Worker for test_mirrored: one regime, one device vs MirroredStrategy.

Usage: python mirrored_worker.py REGIME OUT.npz
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit import MultiExitModel  # noqa: E402
from keras_eexit import regimes  # noqa: E402

REGIMES = {
    "joint": lambda: regimes.Joint(verbose=False),
    "two_stage": lambda: regimes.TwoStage(1, 2, verbose=False),
    "sequential_ewc": lambda: regimes.SequentialRegime(
        1, warmup_epochs=1, objective="current", regularizer="ewc",
        lam=10.0, verbose=False),
    "distillation": lambda: regimes.Distillation(
        backbone_epochs=1, distill_epochs=2, verbose=False),
}


def model():
    """A BatchNorm-free chain: BN statistics are per replica by design."""
    segments, heads, channels = [], [], 1
    for k in range(3):
        segments.append(keras.Sequential(
            [keras.Input((8, 8, channels)),
             keras.layers.Conv2D(4, 3, padding="same", activation="tanh")],
            name=f"seg_{k + 1}"))
        channels = 4
        heads.append(keras.Sequential(
            [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)],
            name=f"exit_{k + 1}"))
    return MultiExitModel(segments, heads)


def run(strategy, name, x, y):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        m = model()
        m.compile(optimizer=keras.optimizers.SGD(0.1))
    regime = REGIMES[name]()
    history = m.fit(x, y, batch_size=16, shuffle=False, verbose=0,
                    epochs=regime.epochs_for(m) or 3, callbacks=[regime])
    losses = np.array([history.history[f"exit_{k}_loss"] for k in (1, 2, 3)])
    return m.get_weights(), losses


def main():
    name, out = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=64)
    one_w, one_l = run(tf.distribute.get_strategy(), name, x, y)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two_w, two_l = run(mirrored, name, x, y)
    np.savez(out, losses_one=one_l, losses_two=two_l,
             weight_diff=max(float(np.abs(a - b).max())
                             for a, b in zip(one_w, two_w)))


if __name__ == "__main__":
    main()
