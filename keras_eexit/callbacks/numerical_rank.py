"""Numerical rank of backbone activations during training."""

import keras
import numpy as np

from keras_eexit import chain
from keras_eexit.compat import nodes_by_depth
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


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


def numerical_rank(activations, max_features=1024, tol=None, seed=0):
    """Numerical rank of a samples × features activation matrix.

    Kubaty et al.'s appendix D.5: flatten each sample's activations into a
    row, keep a fixed random subset of at most `max_features` columns
    (chosen with `seed`, so the same columns every time the feature count
    is the same), and count the singular values above `tol`. The SVD runs
    in float64; the default `tol` is `rank_tolerance` (NumPy's rule with
    the epsilon of the input dtype).

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
        keep = np.random.default_rng(seed).choice(matrix.shape[1],
                                                  max_features,
                                                  replace=False)
        matrix = matrix[:, np.sort(keep)]
    if matrix.size == 0:
        return 0
    values = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    if tol is None:
        tol = rank_tolerance(values, matrix.shape, array.dtype)
    return int(np.count_nonzero(values > tol))


class NumericalRank(keras.callbacks.Callback):
    """Numerical rank of backbone activations on a fixed batch, per epoch.

    By default every segment's output (the first tensor of a tuple state)
    is measured; `layers` names layers inside the (functional) segments
    instead, as Kubaty et al. do per layer. The model runs in inference
    mode. Ranks are written to the logs as `rank_<name>`.

    Args:
        x: a fixed batch of inputs (more samples than kept features gives
            the most informative ranks).
        layers: optional layer names inside the segments.
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

    def __init__(self, x, layers=None, max_features=1024, tol=None, seed=0,
                 every=1):
        super().__init__()
        self.x = x
        self.layers = list(layers) if layers else None
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
        return {name: numerical_rank(np.asarray(value), self.max_features,
                                     self.tol, self.seed)
                for name, value in self._activations().items()}

    def _activations(self):
        model, state = self.model, self.x
        wanted = set(self.layers or [])
        found = {}
        for k, segment in enumerate(model.segments):
            inside = [n for n in wanted
                      if any(layer.name == n for layer in
                             getattr(segment, "layers", []))]
            if inside:
                probe = keras.Model(
                    segment.inputs, [_output_in(segment, n) for n in inside])
                outputs = probe(state, training=False)
                outputs = outputs if isinstance(outputs, list) else [outputs]
                found.update(zip(inside, outputs))
            state = segment(state, training=False)
            if self.layers is None:
                found[f"segment_{k + 1}"] = chain.head_input(state)
        missing = wanted - set(found)
        if missing:
            raise ValueError(
                f"NumericalRank: layers {sorted(missing)} are not inside "
                "the model's segments."
            )
        return found

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        ranks = self.measure()
        self.history.append(ranks)
        self.epochs.append(epoch)
        if logs is not None:
            for name, rank in ranks.items():
                logs[f"rank_{name}"] = rank


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
