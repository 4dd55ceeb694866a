"""Worker for test_resume: trains a tiny model under a regime, maybe dies.

Usage: python resume_worker.py REGIME BACKUP_DIR OUT.npz [KILL_EPOCH]

REGIME is "distillation" (teacher snapshot) or "ewc" (Fisher and anchors).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_eexit import MultiExitModel  # noqa: E402
from keras_eexit import regimes  # noqa: E402


def tiny_model():
    segments, heads, channels = [], [], 1
    for k in range(3):
        segments.append(keras.Sequential(
            [keras.Input((8, 8, channels)),
             keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
             keras.layers.BatchNormalization()], name=f"seg_{k + 1}"))
        channels = 4
        heads.append(keras.Sequential(
            [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)],
            name=f"exit_{k + 1}"))
    return MultiExitModel(segments, heads)


class Killer(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch == 1:
            print("worker: killed", flush=True)
            os._exit(3)

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch


def main():
    name, backup_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    kill = int(sys.argv[4]) if len(sys.argv) > 4 else None
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, size=48)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    if name == "distillation":
        # verbose=True: the phase lines tell the test where it resumed.
        regime = regimes.Distillation(backbone_epochs=2, distill_epochs=2,
                                      verbose=True)
    else:
        regime = regimes.SequentialRegime(
            1, warmup_epochs=1, objective="current", regularizer="ewc",
            lam=50.0, verbose=True)
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir), regime]
    if kill is not None:
        callbacks.append(Killer(kill))
    model.fit(x, y, epochs=5, batch_size=8, shuffle=False, verbose=0,
              callbacks=callbacks)
    np.savez(out, *model.get_weights())


if __name__ == "__main__":
    main()
