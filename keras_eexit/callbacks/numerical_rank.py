"""Numerical rank of backbone activations (Kubaty et al., §3.2, D.5).

D.5: "Ranks are computed by creating a 2D matrix from tensors gathered
right after the operations on a layer and before activation and batch
normalization. The batch size dimension is kept as the first axis, and the
subsequent dimensions are flattened into a single dimension, where the
same 6000 features are randomly selected across the obtained matrices";
the input is the whole test set. Here:

- `layers="pre_activation"` (default) measures the output of every
  convolution and dense layer of the backbone (the segments), which in the
  zoo's blocks comes before BatchNorm and the activation (a layer with a
  fused activation, `Conv2D(..., activation="relu")`, is measured after
  it: its output is the only one Keras exposes);
- at most `max_features` = 6000 columns are kept, chosen by `seed` from the
  column count alone, so every model (and every regime) keeps the same
  columns of a layer;
- the tolerance is PyTorch's and NumPy's `matrix_rank` default,
  `σ_max · max(n, m) · ε`, with the machine epsilon of the activations'
  own dtype (float32: 1.19e-7), as `torch.linalg.matrix_rank` computes it
  for float32 tensors (`rank_tolerance`).
"""

import keras
import numpy as np

from keras_eexit import chain
from keras_eexit.compat import is_functional
from keras_eexit.compat import nodes_by_depth
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

PAPER_FEATURES = 6000
"""Columns kept by Kubaty et al. (D.5)."""

LAYER_SETS = ("pre_activation", "segments", "post_activation")

# The "operations on a layer" of D.5: layers whose output is a linear map
# of their input, before normalization and activation.
_OPERATIONS = tuple(getattr(keras.layers, name) for name in (
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D", "Dense", "EinsumDense")
    if hasattr(keras.layers, name))
_ACTIVATIONS = tuple(getattr(keras.layers, name) for name in (
    "ReLU", "Activation", "LeakyReLU", "ELU", "PReLU", "Softmax")
    if hasattr(keras.layers, name))


def feature_subset(count, max_features, seed=0):
    """The sorted column indices kept out of `count` (all if fewer).

    Depends only on `(count, max_features, seed)`: every model keeps the
    same columns of a layer of the same size ("the same 6000 features",
    D.5).
    """
    if count <= max_features:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, max_features,
                                                      replace=False))


def rank_tolerance(singular_values, shape, dtype):
    """The default singular-value tolerance of `numerical_rank`.

    `S.max() · max(M, N) · eps`, NumPy's `matrix_rank` rule, but with the
    machine epsilon of the activations' own dtype (float32: 1.19e-7), not
    float64's: activations computed in float32 carry rounding noise of
    that size, and float64's epsilon would count the noise as rank.

    Args:
        singular_values: the matrix's singular values.
        shape: `(M, N)`.
        dtype: the dtype the activations were computed in.

    Returns:
        A float.
    """
    dtype = np.dtype(dtype)
    eps = np.finfo(dtype if dtype.kind == "f" else np.float64).eps
    top = float(np.max(singular_values)) if len(singular_values) else 0.0
    return top * max(shape) * float(eps)


def numerical_rank(activations, max_features=PAPER_FEATURES, tol=None,
                   seed=0):
    """Numerical rank of a samples × features activation matrix.

    Kubaty et al.'s appendix D.5: flatten each sample's activations into a
    row, keep a fixed random subset of at most `max_features` columns
    (6000 in the paper; `feature_subset`), and count the singular values
    above `tol`. The SVD runs in float64; the default `tol` is
    `rank_tolerance` (NumPy's and PyTorch's rule with the epsilon of the
    input dtype).

    Args:
        activations: array `(samples, ...)`, at least one sample.
        max_features: columns kept.
        tol: singular-value tolerance, or None for the default.
        seed: seed of the column subset.

    Returns:
        An int.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> numerical_rank(rng.normal(size=(50, 3)) @ rng.normal(size=(3, 40)))
    3
    """
    check_positive_int("max_features", max_features)
    array = np.asarray(activations)
    if array.ndim < 1 or array.shape[0] == 0:
        raise invalid_value("activations", "an array (samples, ...) with at "
                            "least one sample", f"shape {array.shape}")
    matrix = array.reshape(len(array), -1)
    if matrix.shape[1] > max_features:
        matrix = matrix[:, feature_subset(matrix.shape[1], max_features,
                                          seed)]
    if matrix.size == 0:
        return 0
    values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    if tol is None:
        tol = rank_tolerance(values, matrix.shape, array.dtype)
    return int(np.count_nonzero(values > tol))


def measured_layers(model, layers="pre_activation"):
    """The names of the backbone layers an analysis measures, in order.

    Args:
        model: a `MultiExitModel` with functional (or `Sequential`)
            segments.
        layers: `"pre_activation"` (every convolution and dense layer:
            D.5's "operations on a layer"), `"post_activation"` (every
            activation layer, or operation with a fused activation: the
            representations of §3.4), `"segments"` (each segment's output,
            named `segment_k`), or a list of layer names.

    Returns:
        A list of names (`segment_k` for segment outputs).
    """
    if not isinstance(layers, str):
        return list(layers)
    if layers not in LAYER_SETS:
        raise invalid_value("layers", f"one of {list(LAYER_SETS)} or a "
                            "list of layer names", layers)
    if layers == "segments":
        return [f"segment_{k + 1}" for k in range(len(model.segments))]
    names = []
    for segment in model.segments:
        for layer in getattr(segment, "layers", []):
            fused = getattr(layer, "activation", None)
            fused = fused is not None and getattr(
                fused, "__name__", "linear") != "linear"
            if layers == "pre_activation" and isinstance(layer, _OPERATIONS):
                names.append(layer.name)
            elif layers == "post_activation" and (
                    isinstance(layer, _ACTIVATIONS)
                    or (isinstance(layer, _OPERATIONS) and fused)):
                names.append(layer.name)
    if not names:
        raise ValueError(
            f"No {layers} layers found in the segments of {model.name!r} "
            "(segments must be functional or Sequential models); pass "
            "layer names, or layers='segments'.")
    return names


def layer_activations(model, x, layers, batch_size=256, reduce=None):
    """The activations of `layers` (see `measured_layers`) on `x`.

    Runs the segments in inference mode over `x` in batches and returns
    one `(samples, features)` matrix per layer; `reduce(name, matrix)` is
    applied to each batch's matrix first (a column subset keeps the memory
    at `samples × kept columns`).

    Args:
        model: a `MultiExitModel`.
        x: inputs, an array (or a tensor).
        layers: layer names, `segment_k` names, or a set name of
            `measured_layers`.
        batch_size: samples per forward pass.
        reduce: optional `reduce(name, matrix) -> matrix`.

    Returns:
        `{name: np.ndarray (samples, features)}` in `layers` order.
    """
    names = measured_layers(model, layers)
    wanted = set(names)
    found = {name: [] for name in names}
    x = np.asarray(x)
    plans = []  # per segment: (names inside, probe model or None)
    for segment in model.segments:
        inside = [n for n in names
                  if any(layer.name == n for layer in
                         getattr(segment, "layers", []))]
        probe = None
        if inside and is_functional(segment):
            inputs = segment.inputs
            probe = keras.Model(
                inputs[0] if len(inputs) == 1 else inputs,
                [_output_in(segment, n) for n in inside])
        plans.append((inside, probe))
    for start in range(0, len(x), batch_size):
        state = x[start:start + batch_size]
        for k, (segment, (inside, probe)) in enumerate(
                zip(model.segments, plans)):
            if probe is not None:
                outputs = probe(state, training=False)
                outputs = outputs if isinstance(outputs, list) else [outputs]
                for n, value in zip(inside, outputs):
                    found[n].append(value)
            elif inside:  # a Sequential segment: run its layers in turn
                value = state
                for layer in segment.layers:
                    value = layer(value, training=False)
                    if layer.name in inside:
                        found[layer.name].append(value)
            state = segment(state, training=False)
            if f"segment_{k + 1}" in wanted:
                found[f"segment_{k + 1}"].append(chain.head_input(state))
        missing = [n for n in names if not found[n]]
        if missing:
            raise ValueError(
                f"Layers {sorted(missing)} are not inside the model's "
                "segments.")
        for n in names:
            matrix = np.asarray(keras.ops.convert_to_numpy(
                found[n][-1])).reshape(len(found[n][-1]), -1)
            found[n][-1] = reduce(n, matrix) if reduce else matrix
    return {n: np.concatenate(found[n]) for n in names}


class NumericalRank(keras.callbacks.Callback):
    """Numerical rank of backbone activations on a fixed batch, per epoch.

    By default every convolution and dense layer of the backbone is
    measured, before normalization and activation, with 6000 sampled
    features (Kubaty et al., D.5; see the module docstring);
    `layers="segments"` measures each segment's output instead, or name
    layers inside the segments. The model runs in inference mode. Ranks
    are written to the logs as `rank_<name>`.

    Args:
        x: a fixed batch of inputs (Kubaty et al. use the whole test set;
            more samples than kept features gives the most informative
            ranks).
        layers: `"pre_activation"`, `"post_activation"`, `"segments"` or
            layer names inside the segments (see `measured_layers`).
        max_features: see `numerical_rank`.
        tol: see `numerical_rank`.
        seed: see `numerical_rank`.
        every: epochs between measurements (the last epoch of every
            `every` is measured).

    Attributes:
        history: list of `{name: rank}`, one per measured epoch.
        epochs: the (0-based) epochs measured, aligned with `history`.
        ranks: `{name: [rank per measured epoch]}`.

    Example:

    ```python
    rank = NumericalRank(x_val[:2048], max_features=1024)
    model.fit(x, y, epochs=10, callbacks=[rank])
    rank.ranks["segment_1"]
    ```
    """

    def __init__(self, x, layers="pre_activation",
                 max_features=PAPER_FEATURES, tol=None, seed=0, every=1,
                 batch_size=256):
        super().__init__()
        self.x = x
        if layers is None:
            layers = "pre_activation"
        self.layers = layers if isinstance(layers, str) else list(layers)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.max_features = check_positive_int("max_features", max_features)
        self.tol = tol
        self.seed = seed
        self.every = check_positive_int("every", every)
        self.history = []
        self.epochs = []

    @property
    def ranks(self):
        out = {}
        for ranks in self.history:
            for name, rank in ranks.items():
                out.setdefault(name, []).append(rank)
        return out

    def measure(self):
        """The ranks now, `{name: rank}` (also used by `on_epoch_end`)."""
        return layer_ranks(self.model, self.x, self.layers,
                           self.max_features, self.tol, self.seed,
                           self.batch_size)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        ranks = self.measure()
        self.history.append(ranks)
        self.epochs.append(epoch)
        if logs is not None:
            for name, rank in ranks.items():
                logs[f"rank_{name}"] = rank


def layer_ranks(model, x, layers="pre_activation",
                max_features=PAPER_FEATURES, tol=None, seed=0,
                batch_size=256):
    """`numerical_rank` of every measured layer's activations on `x`.

    Args:
        model: a `MultiExitModel`.
        x: inputs (the whole test set in D.5).
        layers: see `measured_layers`.
        max_features: columns kept per layer (6000 in D.5).
        tol: singular-value tolerance, or None for `rank_tolerance`.
        seed: seed of the column subsets.
        batch_size: samples per forward pass.

    Returns:
        `{layer name: rank}` in network order.
    """
    check_positive_int("max_features", max_features)

    def keep(name, matrix):
        return matrix[:, feature_subset(matrix.shape[1], max_features, seed)]

    activations = layer_activations(model, x, layers, batch_size, keep)
    return {name: numerical_rank(value, max_features, tol, seed)
            for name, value in activations.items()}


def _output_in(segment, name):
    """The output of layer `name` in `segment`'s own graph.

    A layer shared with the backbone a segment was cut from has several
    call nodes; `layer.output` would be the backbone's.
    """
    for nodes in nodes_by_depth(segment).values():
        for node in nodes:
            if getattr(node.operation, "name", None) == name:
                return node.outputs[0]
    raise ValueError(f"Layer {name!r} is not in segment {segment.name!r}.")
