"""Filter-normalised random directions in weight space (Li et al., 2018).

Li et al. ("Visualizing the Loss Landscape of Neural Nets", §4) draw a
Gaussian direction `d` with the shape of the weights and rescale it filter
by filter, `d_f ← d_f / ‖d_f‖ · ‖θ_f‖`, so that a step along `d` means
the same for every layer whatever its scale (BatchNorm makes networks
invariant to the scale of a filter). Their code (`net_plotter.py`,
`normalize_direction` with `ignore="biasbn"`) sets the direction to zero
for parameters with one dimension (biases and BatchNorm's scale and
offset); `ignore=None` makes it equal to the weights there, as their code
does otherwise.

A "filter" here is everything that produces one output channel: the slice
of a kernel along its last axis (Keras' `Conv*D` and `Dense` kernels are
`(..., inputs, outputs)`; PyTorch's are `(outputs, inputs, ...)`, sliced
along the first). Depthwise kernels `(kh, kw, channels, multiplier)` are
sliced per (channel, multiplier). Non-trainable weights (BatchNorm moving
statistics) never move.

`normalization="loss_landscapes"` follows Kubaty et al.'s own landscape
code instead (kamadforge/early-exit-benchmark,
`loss_landscapes_modification/random_plane.py` with `normalization=
"filter"`, on the `loss_landscapes` library's `ModelParameters`): every
trainable parameter moves (biases and BatchNorm's scale and offset too),
each filter of the direction is *divided* by the weights' filter norm
(`filter_normalize_`; each element of a 1-D parameter is a filter), and
the direction is then rescaled to the norm of the whole model,
`‖d‖ = ‖θ‖`. Their grid reaches `‖θ‖ / (2·zoom)` along each direction,
i.e. `span = 1 / (2·zoom)` here.
"""

import numpy as np

from keras_eexit.utils.validation import check_choice

DISTRIBUTIONS = ("normal", "uniform")
IGNORE = ("biasbn", None)
NORMALIZATIONS = ("filter", "loss_landscapes")


def _filters(array, role):
    """`array` viewed as `(filters, elements per filter)`."""
    if role == "depthwise_kernel" and array.ndim == 4:
        return array.reshape(-1, array.shape[2] * array.shape[3]).T
    return array.reshape(-1, array.shape[-1]).T


def filter_normalize(direction, weights, space, ignore="biasbn"):
    """Rescales `direction` filter by filter to the norms of `weights`.

    Args:
        direction: flat `(P,)` vector (a `WeightSpace` vector).
        weights: flat `(P,)` weights the direction is normalised to.
        space: the `WeightSpace` both vectors live in.
        ignore: `"biasbn"` (zero on 1-D parameters, Li et al.'s default)
            or None (1-D parameters take the weights' values).

    Returns:
        The normalised flat vector (float32).
    """
    if ignore is not None and ignore != "biasbn":
        from keras_eexit.utils.validation import invalid_value

        raise invalid_value("ignore", "'biasbn' or None", ignore)
    out = np.zeros(space.size, np.float32)
    for slot in space.slots:
        if not slot.trainable:
            continue
        d, w = _slot_values(direction, slot), _slot_values(weights, slot)
        if d.ndim <= 1:
            if ignore is None:
                out[slot.start:slot.stop] = w.reshape(-1)
            continue
        df, wf = _filters(d, slot.role), _filters(w, slot.role)
        scale = np.linalg.norm(wf, axis=1) / (np.linalg.norm(df, axis=1)
                                              + 1e-10)
        normalised = (df * scale[:, None]).T
        if slot.role == "depthwise_kernel" and d.ndim == 4:
            normalised = normalised.reshape(d.shape)
        out[slot.start:slot.stop] = normalised.reshape(-1)
    return out


def loss_landscapes_normalize(direction, weights, space):
    """Kubaty et al.'s code's normalisation (module docstring).

    Args:
        direction: flat `(P,)` vector.
        weights: flat `(P,)` weights.
        space: the `WeightSpace` both vectors live in.

    A filter whose weights are all zero (an untrained bias) stays still:
    the reference would divide by zero there (and every grid value would be
    NaN).

    Returns:
        The normalised flat vector (float32): zero on non-trainable
        weights, norm equal to the trainable weights' norm.
    """
    out = np.zeros(space.size, np.float64)
    trainable = space.mask(lambda s: s.trainable)
    for slot in space.slots:
        if not slot.trainable:
            continue
        d, w = _slot_values(direction, slot), _slot_values(weights, slot)
        if d.ndim <= 1:
            norms = np.abs(w.reshape(-1))
            normalised = np.divide(d.reshape(-1), norms,
                                   out=np.zeros(norms.shape),
                                   where=norms > 0)
        else:
            df, wf = _filters(d, slot.role), _filters(w, slot.role)
            norms = np.linalg.norm(wf, axis=1)[:, None]
            normalised = np.divide(df, norms, out=np.zeros(df.shape),
                                   where=norms > 0).T
            if slot.role == "depthwise_kernel" and d.ndim == 4:
                normalised = normalised.reshape(d.shape)
        out[slot.start:slot.stop] = normalised.reshape(-1)
    norm = np.linalg.norm(out)
    if norm > 0:
        out *= np.linalg.norm(np.asarray(weights, np.float64)[trainable]) / (
            norm)
    return out.astype(np.float32)


def random_direction(space, weights=None, seed=0, distribution="normal",
                     ignore="biasbn", normalization="filter"):
    """A random, filter-normalised direction in `space`.

    Args:
        space: a `WeightSpace`.
        weights: the flat weights to normalise to (default: the model's).
        seed: seed of the draw.
        distribution: `"normal"` (Li et al.) or `"uniform"` (on [-1, 1];
            Kubaty et al. also show landscapes with uniform directions).
        ignore: see `filter_normalize` (only with `normalization="filter"`).
        normalization: `"filter"` (Li et al., default) or
            `"loss_landscapes"` (Kubaty et al.'s landscape code, see the
            module docstring).

    Returns:
        A flat float32 `(P,)` vector.

    References:
        - [Li et al., 2018. Visualizing the Loss Landscape of Neural Nets](
            https://arxiv.org/abs/1712.09913) (§4, filter normalisation)
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    check_choice("normalization", normalization, NORMALIZATIONS)
    weights = space.vector() if weights is None else weights
    rng = np.random.default_rng(seed)
    raw = (rng.standard_normal(space.size) if distribution == "normal"
           else rng.uniform(-1.0, 1.0, space.size))
    if normalization == "loss_landscapes":
        return loss_landscapes_normalize(raw, weights, space)
    return filter_normalize(raw, weights, space, ignore)


def _slot_values(vector, slot):
    """`slot`'s part of a flat vector, in float64 and the slot's shape."""
    return np.asarray(vector[slot.start:slot.stop], np.float64).reshape(
        slot.shape)
