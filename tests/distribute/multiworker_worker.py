"""Worker for test_multiworker: one of two MultiWorkerMirroredStrategy tasks.

Usage: python multiworker_worker.py INDEX PORT0 PORT1 OUT.npz [REGIME]
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
index, port0, port1, out = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                            sys.argv[4])
regime_name = sys.argv[5] if len(sys.argv) > 5 else "joint"
os.environ["TF_CONFIG"] = json.dumps({
    "cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
    "task": {"type": "worker", "index": index},
})

import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_eexit import MultiExitModel  # noqa: E402
from keras_eexit import regimes  # noqa: E402


def model():
    segments, heads, channels = [], [], 1
    for k in range(2):
        segments.append(keras.Sequential(
            [keras.Input((8, 8, channels)),
             keras.layers.Conv2D(4, 3, padding="same", activation="tanh")],
            name=f"seg_{k + 1}"))
        channels = 4
        heads.append(keras.Sequential(
            [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)],
            name=f"exit_{k + 1}"))
    return MultiExitModel(segments, heads)


REGIMES = {
    "joint": lambda: regimes.Joint(verbose=False),
    "two_stage": lambda: regimes.TwoStage(1, 2, verbose=False),
    "sequential_ewc": lambda: regimes.SequentialRegime(
        1, warmup_epochs=1, objective="current", regularizer="ewc",
        lam=10.0, verbose=False),
    "distillation": lambda: regimes.Distillation(
        backbone_epochs=1, distill_epochs=1, verbose=False),
}


def train(dataset, strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        m = model()
        m.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    regime = REGIMES[regime_name]()
    history = m.fit(dataset, epochs=regime.epochs_for(m) or 2, verbose=0,
                    callbacks=[regime]).history
    logged = ["loss"] + [f"exit_{k}_{name}" for k in (1, 2)
                         for name in ("loss", "accuracy")]
    return m.get_weights(), np.array([history[key] for key in logged])


rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
y = rng.integers(0, 4, size=64)
# Global batches of 16: each worker's replica gets 8 samples of every batch.
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.DATA)
dataset = dataset.with_options(options)
weights, logs = train(dataset, strategy)
# The same global batches on this process alone, without a strategy.
ref_weights, ref_logs = train(dataset, tf.distribute.get_strategy())
np.savez(out, logs=logs, ref_logs=ref_logs,
         **{f"weight_{i}": w for i, w in enumerate(weights)},
         **{f"ref_weight_{i}": w for i, w in enumerate(ref_weights)})
