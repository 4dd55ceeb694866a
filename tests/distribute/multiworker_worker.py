"""Worker for test_multiworker: one of two MultiWorkerMirroredStrategy tasks.

Usage: python multiworker_worker.py INDEX PORT0 PORT1 OUT.npz
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
index, port0, port1, out = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                            sys.argv[4])
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


keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 8, 8, 1)).astype("float32")
y = rng.integers(0, 4, size=64)
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.DATA)
dataset = dataset.with_options(options)
with strategy.scope():
    m = model()
    m.compile(optimizer=keras.optimizers.SGD(0.1))
history = m.fit(dataset, epochs=2, verbose=0,
                callbacks=[regimes.Joint(verbose=False)])
np.savez(out, *m.get_weights(), loss=np.array(history.history["loss"]))
