"""`FeatureCache`: replay frozen-backbone features instead of recomputing."""

import warnings

import keras
import numpy as np

from keras_eexit import chain
from keras_eexit.models.train_step import Batch
from keras_eexit.models.train_step import HeadInputs
from keras_eexit.models.train_step import StepContributor
from keras_eexit.utils.lazy_import import tf


class FeatureCache(StepContributor):
    """Caches what the heads read while the backbone is frozen.

    In a phase whose segments are all frozen (the head phase of two-stage
    training), the backbone computes the same features every epoch. The
    cache goes through three modes, one epoch each, then stays in the last:

    1. `"count"`: a normal training epoch that also counts the samples.
    2. `"fill"`: the train step computes the features once (segments in
       inference mode), stores every exit's head input and the labels, and
       trains the heads on them.
    3. `"replay"`: the train step ignores the incoming batch's content and
       trains the heads on cached samples, in a new random order each epoch
       (the batch sizes follow the input pipeline).

    A `"batch"` contributor of the model's train step (`TrainStep`): in
    the fill and replay modes it gives the step a batch of `HeadInputs`,
    which every update then trains on, a method's step included (L2W then
    meta-learns on cached features too).

    This is exact when the training data are the same every epoch (no
    random augmentation): only the sample order differs from recomputing.
    Memory: `num_samples × Σ_k (size of exit k's head input)` floats plus
    the labels, held on the training device. A resumed run refills the
    cache. Under a `tf.distribute` strategy the cache is per process: each
    worker caches the features of its own shard (tested equal to one
    device for `TwoStage` under mirrored and multi-worker training).
    Sample weights are refused with an error naming the phase option.

    Args:
        model: the `MultiExitModel`.

    Example:

    ```python
    Phase("heads", 10, train_segments="none", train_heads=[1, 2],
          cache_features=True)
    ```
    """

    roles = ("batch",)

    def __init__(self, model):
        self.model = model
        self.mode = "count"
        self.seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.offset = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.features = None
        self.labels = None
        self.order = None
        self._sparse = True

    @classmethod
    def for_phase(cls, model, phase):
        """A cache for `phase`, or `None` when caching cannot apply.

        The cache is TensorFlow code: on another backend the phase
        recomputes the frozen backbone's features instead (the same
        result up to the order of the samples), and says so once.
        """
        if phase.train_segments != "none":
            return None
        backend = keras.backend.backend()
        if backend != "tensorflow":
            warnings.warn(
                f"Phase {phase.name!r}: cache_features runs on the "
                f"TensorFlow backend only; on {backend!r} the frozen "
                "backbone's features are recomputed every epoch (same "
                "result up to the sample order, slower).", stacklevel=2)
            return None
        return cls(model)

    @property
    def num_samples(self):
        """Samples counted in the first epoch of the phase."""
        return int(self.seen.numpy())

    def memory_bytes(self):
        """Bytes held by the cached features and labels."""
        if self.features is None:
            return 0
        return sum(int(np.prod(v.shape)) * v.dtype.size
                   for v in self.features + [self.labels])

    def describe(self):
        return f"FeatureCache(mode={self.mode!r})"

    def trace_key(self):
        """The mode: each traces a different step."""
        return self.mode

    def next_epoch(self):
        """Moves to the next mode (and a new order of the samples)."""
        self.offset.assign(0)
        if self.mode == "count":
            self._allocate()
            self.mode = "fill"
        elif self.mode == "fill":
            self.mode = "replay"
            self._shuffle()
        else:
            self._shuffle()

    def _allocate(self):
        n = self.num_samples
        if n == 0:
            raise ValueError("The feature cache saw no training samples.")
        model = self.model
        self.features = []
        for state in chain.state_specs(model, batch_size=1):
            head_input = chain.head_input(state)
            self.features.append(tf.Variable(
                tf.zeros((n,) + tuple(head_input.shape[1:]),
                         head_input.dtype),
                trainable=False))
        classes = model.num_classes
        label_shape = (n,) if self._sparse else (n, classes)
        self.labels = tf.Variable(
            tf.zeros(label_shape,
                     tf.int64 if self._sparse else keras.backend.floatx()),
            trainable=False)

    def _shuffle(self):
        permutation = np.random.permutation(self.num_samples)
        if self.order is None:
            self.order = tf.Variable(permutation, dtype=tf.int64,
                                     trainable=False)
        else:
            self.order.assign(permutation)

    # ---------------------------------------------------------- the batch
    def batch(self, model, batch):
        """The batch of the current mode (traced by Keras).

        Args:
            model: the `MultiExitModel`.
            batch: the incoming `Batch`.

        Returns:
            `batch` (counting mode), or a `Batch` of `HeadInputs`: the
            incoming batch's features (filling), or cached samples
            (replaying).
        """
        x, y, sample_weight = batch
        if sample_weight is not None:
            raise ValueError(
                "Feature caching does not support sample weights: set "
                "`cache_features=False` on the regime.")
        labels = y[model.exit_names[0]]
        size = tf.shape(tf.nest.flatten(x)[0])[0]
        if self.mode == "count":
            self._sparse = len(labels.shape) == 1 or labels.shape[-1] == 1
            self.seen.assign_add(tf.cast(size, tf.int64))
            return batch
        start = self.offset
        rows = tf.range(start, start + tf.cast(size, tf.int64))[:, None]
        if self.mode == "fill":
            features = chain.head_inputs(model, x, training=False)
            for store, value in zip(self.features, features):
                store.scatter_nd_update(rows, value)
            cached = tf.reshape(labels, (size,)) if self._sparse else labels
            self.labels.scatter_nd_update(
                rows, tf.cast(cached, self.labels.dtype))
        else:
            index = self.order[start:start + tf.cast(size, tf.int64)]
            features = [tf.gather(store, index) for store in self.features]
            labels = tf.gather(self.labels, index)
            y = {name: labels for name in model.exit_names}
        self.offset.assign_add(tf.cast(size, tf.int64))
        return Batch(HeadInputs(tuple(features)), y, None)
