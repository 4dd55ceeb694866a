"""`ArrayBatches`: the embedded sets as a `keras.utils.PyDataset`.

On a Keras backend other than TensorFlow, `keras_eexit.data.load` yields
the embedded sets (`"digits"`, `"mnist1d"`) through this class instead of
`tf.data` pipelines, so neither loading nor iterating needs TensorFlow.
The batches are NumPy arrays in the order `tf.data` would not promise but
a seed fixes: the training split is shuffled with `seed` and the epoch
number (a new order every epoch), validation and test keep theirs.
"""

import math

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """Batches `(x, y)` of in-memory arrays, optionally shuffled per epoch.

    Args:
        x: inputs, an array `(N, ...)`.
        y: labels, an array `(N, ...)`.
        batch_size: rows per batch (the last batch may be smaller).
        shuffle: whether to draw a new order at every epoch.
        seed: seed of the orders (epoch `e` uses `(seed, e)`).
        map_batch: optional `(x, y) -> (x, y)` applied to each batch
            (augmentation; its outputs are converted to NumPy).
        **kwargs: passed to `keras.utils.PyDataset` (`workers`, ...).

    Example:

    >>> batches = ArrayBatches(np.zeros((5, 2)), np.arange(5), 2)
    >>> len(batches), batches[2][0].shape
    (3, (1, 2))
    """

    def __init__(self, x, y, batch_size, shuffle=False, seed=0,
                 map_batch=None, **kwargs):
        super().__init__(**kwargs)
        self.x = x
        self.y = y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.map_batch = map_batch
        self.epoch = 0
        self._order = self._draw_order()

    def _draw_order(self):
        if not self.shuffle:
            return np.arange(len(self.x))
        rng = np.random.default_rng([self.seed, self.epoch])
        return rng.permutation(len(self.x))

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        rows = self._order[index * self.batch_size:
                           (index + 1) * self.batch_size]
        x, y = self.x[rows], self.y[rows]
        if self.map_batch is not None:
            x, y = (keras.ops.convert_to_numpy(t)
                    for t in self.map_batch(x, y))
        return x, y

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._draw_order()
