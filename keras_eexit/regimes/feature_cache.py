"""`FeatureCache`: replay frozen-backbone features instead of recomputing."""

import keras
import numpy as np
from keras import ops

from keras_eexit import chain
from keras_eexit.models.train_step import Batch
from keras_eexit.models.train_step import HeadInputs
from keras_eexit.models.train_step import StepContributor
from keras_eexit.utils.compiled import compile_layers_call
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

    Backends: on TensorFlow the cache is variables written inside the
    traced step (`_GraphStore`); on JAX and PyTorch the step runs eagerly
    around compiled calls and the cache is the fill epoch's feature
    batches, concatenated on the device once the epoch ends
    (`_EagerStore`).

    Args:
        model: the `MultiExitModel`.

    Example:

    ```python
    Phase("heads", 10, train_segments="none", train_heads=[1, 2],
          cache_features=True)
    ```
    """

    roles = ("batch",)
    backends = ("tensorflow", "jax", "torch")
    eager_on_jax = True  # the cache lives outside the trainer's state

    def __init__(self, model):
        self.model = model
        self.mode = "count"
        self._sparse = True
        self.store = (_GraphStore if keras.backend.backend() == "tensorflow"
                      else _EagerStore)(model)

    @classmethod
    def for_phase(cls, model, phase):
        """A cache for `phase`, or `None` when caching cannot apply (a
        phase that trains a segment)."""
        if phase.train_segments != "none":
            return None
        return cls(model)

    @property
    def num_samples(self):
        """Samples counted in the first epoch of the phase (the samples
        filled, once the fill epoch has ended)."""
        return self.store.num_samples()

    def memory_bytes(self):
        """Bytes held by the cached features and labels."""
        return self.store.memory_bytes()

    def describe(self):
        return f"FeatureCache(mode={self.mode!r})"

    def trace_key(self):
        """The mode: each traces a different step."""
        return self.mode

    def next_epoch(self):
        """Moves to the next mode (and a new order of the samples)."""
        self.store.rewind()
        if self.mode == "count":
            if self.num_samples == 0:
                raise ValueError("The feature cache saw no training samples.")
            self.store.allocate(self._sparse)
            self.mode = "fill"
        elif self.mode == "fill":
            self.store.finish()
            self.mode = "replay"
            self.store.shuffle()
        else:
            self.store.shuffle()

    # ---------------------------------------------------------- the batch
    def batch(self, model, batch):
        """The batch of the current mode (traced on TensorFlow).

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
        if self.mode == "count":
            self._sparse = len(labels.shape) == 1 or labels.shape[-1] == 1
            self.store.count(x)
            return batch
        if self.mode == "fill":
            features = self.store.fill(model, x, labels)
        else:
            features, labels = self.store.replay(x)
            y = {name: labels for name in model.exit_names}
        return Batch(HeadInputs(tuple(features)), y, None)

    def batch_stateless(self, model, state, batch):
        """`batch` on JAX: the fill epoch's features are computed from the
        trainer's state (a JAX fit keeps the values there, not in the
        variables)."""
        self.store.values = list(state[0]) + list(state[1])
        try:
            return self.batch(model, batch)
        finally:
            self.store.values = None


def _nbytes(array):
    return int(np.prod(array.shape)) * np.dtype(
        keras.backend.standardize_dtype(array.dtype)).itemsize


class _GraphStore:
    """The TensorFlow cache: variables written by the traced step."""

    def __init__(self, model):
        self.model = model
        self.seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.offset = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.features = None
        self.labels = None
        self.order = None
        self.sparse = True

    def num_samples(self):
        return int(self.seen.numpy())

    def memory_bytes(self):
        if self.features is None:
            return 0
        return sum(_nbytes(v) for v in self.features + [self.labels])

    def rewind(self):
        self.offset.assign(0)

    def allocate(self, sparse):
        n = self.num_samples()
        self.sparse = sparse
        self.features = []
        for state in chain.state_specs(self.model, batch_size=1):
            head_input = chain.head_input(state)
            self.features.append(tf.Variable(
                tf.zeros((n,) + tuple(head_input.shape[1:]),
                         head_input.dtype),
                trainable=False))
        label_shape = (n,) if sparse else (n, self.model.num_classes)
        self.labels = tf.Variable(
            tf.zeros(label_shape,
                     tf.int64 if sparse else keras.backend.floatx()),
            trainable=False)

    def finish(self):
        pass

    def shuffle(self):
        permutation = np.random.permutation(self.num_samples())
        if self.order is None:
            self.order = tf.Variable(permutation, dtype=tf.int64,
                                     trainable=False)
        else:
            self.order.assign(permutation)

    def _rows(self, x):
        size = tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.int64)
        start = self.offset.value()
        self.offset.assign_add(size)
        return start, size

    def count(self, x):
        self.seen.assign_add(
            tf.cast(tf.shape(tf.nest.flatten(x)[0])[0], tf.int64))

    def fill(self, model, x, labels):
        start, size = self._rows(x)
        rows = tf.range(start, start + size)[:, None]
        features = chain.head_inputs(model, x, training=False)
        for store, value in zip(self.features, features):
            store.scatter_nd_update(rows, value)
        cached = tf.reshape(labels, (size,)) if self.sparse else labels
        self.labels.scatter_nd_update(rows,
                                      tf.cast(cached, self.labels.dtype))
        return features

    def replay(self, x):
        start, size = self._rows(x)
        index = self.order[start:start + size]
        return ([tf.gather(store, index) for store in self.features],
                tf.gather(self.labels, index))


class _EagerStore:
    """The JAX / PyTorch cache: the fill epoch's feature batches (from a
    compiled call of the frozen segments), concatenated when it ends."""

    def __init__(self, model):
        self.seen = 0
        self.offset = 0
        self.features = None
        self.labels = None
        self.order = None
        self.sparse = True
        self._parts = None
        self.values = None  # on JAX: the trainer state's model values
        self.model = model
        self._compiled = {}

    def _head_inputs(self, x):
        """The frozen segments' head inputs for `x` (compiled)."""
        model = self.model
        if keras.backend.backend() != "jax":
            if "call" not in self._compiled:
                self._compiled["call"] = compile_layers_call(
                    model,
                    lambda x: chain.head_inputs(model, x, training=False))
            return self._compiled["call"](x)
        import jax

        variables = model.trainable_variables + model.non_trainable_variables
        key = tuple(id(v) for v in variables)
        if key not in self._compiled:
            def stateless(values, x):
                with keras.StatelessScope(
                        state_mapping=list(zip(variables, values))):
                    return chain.head_inputs(model, x, training=False)
            self._compiled = {key: jax.jit(stateless)}
        return self._compiled[key](self.values, x)

    def num_samples(self):
        return self.seen

    def memory_bytes(self):
        if self.features is None:
            return 0
        return sum(_nbytes(v) for v in self.features + [self.labels])

    def rewind(self):
        self.offset = 0

    def allocate(self, sparse):
        self.sparse = sparse
        self.features = self.labels = None
        self._parts = None

    def finish(self):
        if not self._parts:
            raise ValueError("The feature cache's fill epoch saw no "
                             "training samples.")
        features, labels = zip(*self._parts)
        self.features = [ops.concatenate(list(parts), axis=0)
                         for parts in zip(*features)]
        self.labels = ops.concatenate(list(labels), axis=0)
        self.seen = int(ops.shape(self.labels)[0])
        self._parts = None

    def shuffle(self):
        self.order = np.random.permutation(self.seen)

    @staticmethod
    def _size(x):
        return int(ops.shape(keras.tree.flatten(x)[0])[0])

    def count(self, x):
        self.seen += self._size(x)

    def fill(self, model, x, labels):
        size = self._size(x)
        features = list(self._head_inputs(x))
        labels = ops.convert_to_tensor(labels)
        if self.sparse:
            labels = ops.reshape(labels, (size,))
        if self._parts is None:
            self._parts = []
        self._parts.append((features, labels))
        self.offset += size
        return features

    def replay(self, x):
        size = self._size(x)
        index = ops.convert_to_tensor(
            self.order[self.offset:self.offset + size].astype("int32"))
        self.offset += size
        return ([ops.take(f, index, axis=0) for f in self.features],
                ops.take(self.labels, index, axis=0))
