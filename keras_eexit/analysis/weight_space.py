"""A model's weights as one flat vector, and its loss for many at once.

Loss landscapes and mode-connectivity planes evaluate the same network at
hundreds of points of weight space. `WeightSpace` maps a model's float
variables (trainable and non-trainable, in the order of
`model.trainable_variables + model.non_trainable_variables`) to one flat
vector and back; `LossEvaluator` computes every exit's mean cross-entropy
for a *batch* of weight vectors in one compiled call
(`keras.ops.vectorized_map` over `Layer.stateless_call`: a
`tf.vectorized_map` in a `tf.function` on TensorFlow, a `jax.vmap` under
`jax.jit` on JAX, `utils/compiled.py`): no model is rebuilt or re-traced
per point, and the variables of the model are never changed.

BatchNorm moving statistics are weights of the vector like any other
(`batchnorm="interpolate"`), or, with `batchnorm="recompute"`, recomputed
for every weight vector on data before its loss is evaluated (the "reset
BatchNorm statistics" step of weight-matching work: Jordan et al., 2022,
REPAIR, `reset_bn_stats`; see `LossEvaluator`).
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from keras_eexit import chain
from keras_eexit.utils.batches import is_batch_stream
from keras_eexit.utils.batches import iterate_batches
from keras_eexit.utils.compiled import compile_layers_call
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one variable sits in the flat vector.

    Attributes:
        variable: the Keras variable (of the model the space was made from).
        start: offset in the flat vector.
        shape: the variable's shape.
        trainable: whether it is in `model.trainable_variables`.
        layer: the layer that owns it, or None.
        role: `"kernel"`, `"bias"`, `"gamma"`, `"beta"`, `"moving_mean"`,
            `"moving_variance"` or another attribute name.
    """

    variable: object
    start: int
    shape: tuple
    trainable: bool
    layer: object
    role: str

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def stop(self):
        return self.start + self.size


def _owners(model):
    """`{id(variable): (layer, attribute name)}` for the model's layers."""
    from keras_eexit.compat import flatten_layers

    owners = {}
    for layer in flatten_layers(model):
        for name in ("kernel", "bias", "gamma", "beta", "moving_mean",
                     "moving_variance", "depthwise_kernel",
                     "pointwise_kernel", "embeddings", "alpha"):
            value = getattr(layer, name, None)
            if isinstance(value, keras.Variable):
                owners.setdefault(id(value), (layer, name))
    return owners


class WeightSpace:
    """The float variables of a built model as one flat vector.

    Args:
        model: a built `MultiExitModel` (or any built Keras model).

    Attributes:
        slots: one `Slot` per float variable, in flat-vector order.
        size: the length of the flat vector.

    Example:

    ```python
    space = WeightSpace(model)
    theta = space.vector()            # float32 (P,)
    space.assign(theta + 0.01 * delta)
    ```
    """

    def __init__(self, model):
        if not model.built:
            raise ValueError(
                "The model is not built: call it on a batch first.")
        self.model = model
        owners = _owners(model)
        self._trainable = list(model.trainable_variables)
        self._non_trainable = list(model.non_trainable_variables)
        self.slots = []
        start = 0
        for trainable, variables in ((True, self._trainable),
                                     (False, self._non_trainable)):
            for variable in variables:
                if not _is_float(variable):
                    continue
                layer, role = owners.get(id(variable), (None, None))
                if role is None:
                    role = variable.path.rsplit("/", 1)[-1]
                slot = Slot(variable, start, tuple(variable.shape),
                            trainable, layer, role)
                self.slots.append(slot)
                start = slot.stop
        self.size = start
        self._index = {id(s.variable): i for i, s in enumerate(self.slots)}

    def index_of(self, variable):
        """The position in `slots` of `variable` (of `self.model`)."""
        try:
            return self._index[id(variable)]
        except KeyError:
            raise ValueError(
                f"Variable {variable.path} is not a float variable of "
                f"{self.model.name}.") from None

    def slot_of(self, variable):
        """The `Slot` of `variable` (a variable of `self.model`)."""
        return self.slots[self.index_of(variable)]

    def vector(self, model=None):
        """The flat float32 vector of `model`'s weights (default: own).

        `model` must have the same architecture (same variable shapes in
        the same order), e.g. the same zoo model trained another way.
        """
        model = self.model if model is None else model
        if model is self.model:
            values = [s.variable for s in self.slots]
        else:
            values = [v for v in list(model.trainable_variables)
                      + list(model.non_trainable_variables)
                      if _is_float(v)]
            shapes = [tuple(v.shape) for v in values]
            if shapes != [s.shape for s in self.slots]:
                raise ValueError(
                    f"Model {model.name!r} does not have the architecture of "
                    f"{self.model.name!r} (different weight shapes): weight-"
                    "space analyses need models of one architecture.")
        return np.concatenate([
            np.asarray(keras.ops.convert_to_numpy(v), np.float32).reshape(-1)
            for v in values]) if values else np.zeros(0, np.float32)

    def arrays(self, vector):
        """`vector` split into one array per slot."""
        vector = np.asarray(vector)
        return [vector[s.start:s.stop].reshape(s.shape) for s in self.slots]

    def assign(self, vector):
        """Writes `vector` into the model's variables."""
        self._check(vector)
        for slot, value in zip(self.slots, self.arrays(vector)):
            slot.variable.assign(value.astype(slot.variable.dtype))

    def _check(self, vector):
        shape = np.shape(vector)
        if shape != (self.size,):
            raise invalid_value("vector", f"a flat vector of {self.size} "
                                "weights", f"shape {shape}")

    def mask(self, predicate):
        """A boolean `(size,)` mask of the slots where `predicate(slot)`."""
        out = np.zeros(self.size, bool)
        for slot in self.slots:
            if predicate(slot):
                out[slot.start:slot.stop] = True
        return out

    def variable_lists(self, flat):
        """Tensors for `stateless_call` from a flat tensor (inside a
        compiled function)."""
        pieces = {id(s.variable): ops.reshape(flat[s.start:s.stop], s.shape)
                  for s in self.slots}

        def values(variables):
            return [ops.cast(pieces[id(v)], v.dtype) if id(v) in pieces
                    else v.value for v in variables]

        return values(self._trainable), values(self._non_trainable)


def _auto_batch(model, weight_batch, samples, budget=2**27):
    """Samples per call keeping `weight_batch × samples × largest state`
    float32 values under `budget` bytes, in chunks of equal size (so the
    padding of the last chunk stays small)."""
    largest = 1
    for state in chain.state_specs(model, 1):
        for tensor in keras.tree.flatten(state):
            largest = max(largest, int(np.prod(tensor.shape)))
    limit = max(16, budget // (4 * largest * weight_batch))
    chunks = -(-samples // limit)
    return int(-(-samples // chunks))


def _map_rows(function, weights):
    """`function` of every row of `weights`, stacked: vectorized
    (`keras.ops.vectorized_map`), or a loop on PyTorch, whose `vmap`
    cannot run Keras' convolutions."""
    if keras.backend.backend() == "torch":
        return ops.stack([function(row) for row in weights])
    return ops.vectorized_map(function, weights)


def _is_float(variable):
    return "float" in str(variable.dtype)


BATCHNORM = ("interpolate", "recompute")


def _batchnorm_slots(space):
    """`[(slot index, position in non-trainable variables, momentum)]` of
    the moving statistics of trainable BatchNorm layers (a frozen one runs
    in inference mode in a training-mode call and so has no batch
    statistics to recompute)."""
    positions = {id(v): i for i, v in enumerate(space._non_trainable)}
    out = []
    for index, slot in enumerate(space.slots):
        if (slot.role in ("moving_mean", "moving_variance")
                and isinstance(slot.layer, keras.layers.BatchNormalization)
                and slot.layer.trainable):
            out.append((index, positions[id(slot.variable)],
                        float(slot.layer.momentum)))
    return out


def as_arrays(data, max_samples=None):
    """`(x, y)` NumPy arrays (integer labels) from arrays or a dataset.

    Args:
        data: a tuple `(x, y)` of arrays, or a `tf.data.Dataset` or
            `keras.utils.PyDataset` of `(x, y)` batches.
        max_samples: keep at most this many samples (the first ones).

    Returns:
        `(x, y)`.
    """
    unlabelled = ValueError(
        "The analyses need labelled data: a tf.data.Dataset or "
        "keras.utils.PyDataset of (x, y) batches, or a tuple (x, y) of "
        "arrays.")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (np.asarray(a) for a in data)
    elif is_batch_stream(data):
        spec = getattr(data, "element_spec", (None, None))
        if not (isinstance(spec, tuple) and len(spec) >= 2):
            raise unlabelled
        xs, ys, count = [], [], 0
        for batch in iterate_batches(data):
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
                raise unlabelled
            xs.append(np.asarray(batch[0]))
            ys.append(np.asarray(batch[1]))
            count += len(xs[-1])
            if max_samples is not None and count >= max_samples:
                break
        if not xs:
            raise ValueError("The data set is empty: nothing to evaluate.")
        x, y = np.concatenate(xs), np.concatenate(ys)
    else:
        raise invalid_value("data", "a tuple (x, y) of arrays, or a "
                            "tf.data.Dataset or keras.utils.PyDataset of "
                            "(x, y) batches",
                            type(data).__name__)
    if y.ndim == 2 and y.shape[-1] > 1:
        y = y.argmax(-1)
    y = y.reshape(-1)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"The analyses need as many labels as inputs (and at least one "
            f"sample); received {len(x)} inputs and {len(y)} labels.")
    if max_samples is not None:
        x, y = x[:max_samples], y[:max_samples]
    return x, y.astype(np.int32)


class LossEvaluator:
    """Every exit's mean cross-entropy for batches of weight vectors.

    One compiled function (`utils.compiled.compile_layers_call`: a
    `tf.function` on TensorFlow, `jax.jit` on JAX) maps `weight_batch`
    flat weight vectors (`keras.ops.vectorized_map` over `stateless_call`)
    over a fixed-size chunk of the data; chunks are padded to one shape, so
    the function is traced once. Layers run in inference mode (BatchNorm
    uses the moving statistics of the weight vector, dropout is off).
    Damping heads are scored on their class logits.

    Args:
        space: a `WeightSpace`.
        data: `(x, y)` arrays, or a `tf.data.Dataset` or
            `keras.utils.PyDataset` of `(x, y)` batches.
        weight_batch: weight vectors per compiled call.
        data_batch: samples per compiled call, or `"auto"`: as many as
            keep the largest activation of one call under ~128 MiB (all of
            a small data set: fewer, larger calls are faster).
        max_samples: use at most this many samples of `data`.
        nonnegative: optional boolean mask of weights clipped at 0 before
            use (BatchNorm moving variances, which an extrapolation in
            weight space can push below 0).
        batchnorm: `"interpolate"` (default: the moving statistics are
            taken from the weight vector, like every other weight) or
            `"recompute"`: before a weight vector's loss is evaluated, the
            moving statistics of every trainable BatchNorm layer are
            replaced by the ones of that network on `batchnorm_data`, as
            weight-matching work resets them after interpolating (Jordan
            et al., 2022, REPAIR, `reset_bn_stats`): a training-mode pass
            (each layer normalises with its batch's statistics) over
            batches of `data_batch` samples, the batch means and unbiased
            variances averaged over the data (weighted by batch size).
        batchnorm_data: the data the statistics are recomputed on
            (default: `data`; Kubaty et al. evaluate on the training data,
            which is also what the statistics should come from); at most
            `max_samples` of it.

    Example:

    ```python
    evaluator = LossEvaluator(WeightSpace(model), (x_train, y_train))
    evaluator(np.stack([theta, theta + delta]))  # (2, num_exits)
    ```
    """

    def __init__(self, space, data, weight_batch=4, data_batch="auto",
                 max_samples=None, nonnegative=None,
                 batchnorm="interpolate", batchnorm_data=None):
        self.space = space
        self.weight_batch = check_positive_int("weight_batch", weight_batch)
        if batchnorm not in BATCHNORM:
            raise invalid_value("batchnorm", f"one of {BATCHNORM}",
                                batchnorm)
        self.batchnorm = batchnorm
        self.x, self.y = as_arrays(data, max_samples)
        self._bn = _batchnorm_slots(space) if batchnorm == "recompute" else []
        if self._bn:
            self.bn_x = (self.x if batchnorm_data is None
                         else as_arrays(batchnorm_data, max_samples)[0])
            self._stats = compile_layers_call(space.model,
                                              self._batch_statistics)
        model = space.model
        if data_batch == "auto":
            data_batch = _auto_batch(model, self.weight_batch, len(self.x))
        self.data_batch = check_positive_int("data_batch", data_batch)
        self.exit_names = tuple(model.exit_names)
        self._clip = (None if nonnegative is None
                      else np.asarray(nonnegative, bool))
        self._function = compile_layers_call(model, self._losses)

    def _losses(self, weights, x, y, mask):
        model, space, clip = self.space.model, self.space, self._clip

        def one(flat):
            if clip is not None:
                flat = ops.where(clip, ops.maximum(flat, 0.0), flat)
            trainable, non_trainable = space.variable_lists(flat)
            outputs, _ = model.stateless_call(trainable, non_trainable, x,
                                              training=False)
            sums = []
            for head, name in zip(model.heads, model.exit_names):
                logits = ops.cast(chain.class_logits(head, outputs[name]),
                                  "float32")
                loss = ops.sparse_categorical_crossentropy(
                    y, logits, from_logits=True)
                sums.append(ops.sum(loss * mask))
            return ops.stack(sums)

        return _map_rows(one, weights)

    def _batch_statistics(self, weights, x):
        """Per weight vector, the batch statistics of every recomputed
        BatchNorm variable, concatenated: `(B, total size)`."""
        model, space = self.space.model, self.space
        keep = np.ones(space.size, np.float32)
        for index, _, _ in self._bn:  # moving statistics start at 0, so
            slot = space.slots[index]  # new = (1 - momentum) · batch value
            keep[slot.start:slot.stop] = 0.0

        def one(flat):
            trainable, non_trainable = space.variable_lists(flat * keep)
            _, updated = model.stateless_call(trainable, non_trainable, x,
                                              training=True)
            return ops.concatenate([
                ops.reshape(ops.cast(updated[position], "float32"), (-1,))
                / (1.0 - momentum) for _, position, momentum in self._bn], 0)

        return _map_rows(one, weights)

    def recompute_batchnorm(self, weights):
        """`weights` `(B, P)` with the BatchNorm moving statistics replaced
        by the ones recomputed on `batchnorm_data` (see `batchnorm`)."""
        weights = np.array(weights, np.float32)
        if not self._bn:
            return weights
        sums, total = 0.0, 0
        for lo in range(0, len(self.bn_x), self.data_batch):
            x = self.bn_x[lo:lo + self.data_batch]
            stats = ops.convert_to_numpy(self._stats(
                ops.convert_to_tensor(weights),
                ops.convert_to_tensor(x))).astype(np.float64)
            offset = 0
            for index, _, _ in self._bn:  # unbiased variances, as PyTorch
                slot = self.space.slots[index]
                if slot.role == "moving_variance" and len(x) > 1:
                    stats[:, offset:offset + slot.size] *= len(x) / (
                        len(x) - 1)
                offset += slot.size
            sums = sums + stats * len(x)
            total += len(x)
        stats = sums / total
        offset = 0
        for index, _, _ in self._bn:
            slot = self.space.slots[index]
            weights[:, slot.start:slot.stop] = stats[
                :, offset:offset + slot.size]
            offset += slot.size
        return weights

    def affine(self, origin, basis, coefficients):
        """Losses at `origin + coefficients @ basis`, built chunk by chunk.

        Args:
            origin: `(P,)` weights.
            basis: `(D, P)` directions.
            coefficients: `(M, D)` coordinates of the points.

        Returns:
            `(M, num_exits)` mean losses. Only `weight_batch` weight
            vectors exist at a time, whatever `M`.
        """
        origin = np.asarray(origin, np.float32)
        basis = np.asarray(basis, np.float32)
        coefficients = np.asarray(coefficients, np.float32)
        out = []
        for start in range(0, len(coefficients), self.weight_batch):
            c = coefficients[start:start + self.weight_batch]
            out.append(self(origin[None] + c @ basis))
        return np.concatenate(out) if out else np.zeros(
            (0, len(self.exit_names)))

    def __call__(self, weights):
        """`(B, num_exits)` mean losses for `weights` of shape `(B, P)`
        (BatchNorm statistics recomputed first with
        `batchnorm="recompute"`)."""
        weights = np.asarray(weights, np.float32)
        if weights.ndim == 1:
            weights = weights[None]
        if weights.shape[1:] != (self.space.size,):
            raise invalid_value("weights", f"vectors of {self.space.size} "
                                "weights", f"shape {weights.shape}")
        out = []
        for start in range(0, len(weights), self.weight_batch):
            chunk = weights[start:start + self.weight_batch]
            count = len(chunk)
            if count < self.weight_batch:  # one traced shape
                chunk = np.concatenate([chunk, np.repeat(
                    chunk[-1:], self.weight_batch - count, 0)])
            chunk = self.recompute_batchnorm(chunk)
            total = np.zeros((self.weight_batch, len(self.exit_names)))
            for lo in range(0, len(self.x), self.data_batch):
                x = self.x[lo:lo + self.data_batch]
                y = self.y[lo:lo + self.data_batch]
                mask = np.ones(len(x), np.float32)
                if len(x) < self.data_batch and len(self.x) > self.data_batch:
                    pad = self.data_batch - len(x)
                    x = np.concatenate([x, np.zeros((pad,) + x.shape[1:],
                                                    x.dtype)])
                    y = np.concatenate([y, np.zeros(pad, y.dtype)])
                    mask = np.concatenate([mask, np.zeros(pad, np.float32)])
                total += ops.convert_to_numpy(self._function(
                    *map(ops.convert_to_tensor, (chunk, x, y, mask))))
            out.append(total[:count] / len(self.x))
        return np.concatenate(out)
