"""Mode connectivity of models trained under different regimes.

Kubaty et al. (§3.1, Figure 2, D.8): three models (one per regime) span a
plane in weight space; two of them are first aligned to the third by
weight matching (Ainsworth et al., 2022), so that the plane compares
functions rather than arbitrary orderings of hidden units. The loss is
evaluated over the plane (22,500 points in the paper; the resolution is a
parameter) and along the linear path between two models, where the
*barrier* `max_t [L((1 - t)·θ_a + t·θ_b) - ((1 - t)·L(θ_a) + t·L(θ_b))]`
says whether they lie in one basin (barrier near 0) or not.

BatchNorm moving statistics, `batchnorm=`:

- `"interpolate"` (default): every float weight is interpolated, the
  moving statistics included (moving variances are clipped at 0 where the
  plane extrapolates beyond the three models), as interpolating two
  PyTorch state dicts does. This is the paper's wording ("linear
  interpolation of their weights", §3.1); the paper says nothing of the
  statistics, and Kubaty et al.'s repository has no mode-connectivity code.
- `"recompute"`: at every point the statistics are recomputed on the
  training data (`batchnorm_data`, default `data`) before the loss is
  evaluated, as weight-matching work does for networks with BatchNorm
  (Jordan et al., 2022, REPAIR, `reset_bn_stats`; Ainsworth et al. note
  that interpolated statistics do not describe the interpolated network).
  Barriers are lower, since part of the interpolated network's loss comes
  from statistics that belong to neither model (`small_cnn` on digits,
  joint → two-stage, final exit: 1.41 → 0.07,
  `benchmarks/connectivity_batchnorm.py`), and it costs one more pass
  over the data per point.

The models themselves are never changed.
"""

import dataclasses

import numpy as np

from keras_eexit.analysis.weight_matching import align
from keras_eexit.analysis.weight_space import LossEvaluator
from keras_eexit.analysis.weight_space import WeightSpace
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


def _variances(space):
    return space.mask(lambda s: s.role == "moving_variance")


def _exit_index(exit, names):
    if exit is None:
        return len(names) - 1
    if isinstance(exit, str):
        if exit not in names:
            raise invalid_value("exit", f"one of {list(names)}", exit)
        return list(names).index(exit)
    if isinstance(exit, bool) or not 1 <= int(exit) <= len(names):
        raise invalid_value("exit", f"an exit number in 1...{len(names)}",
                            exit)
    return int(exit) - 1


def _vectors(models, anchor, aligned):
    names = list(models)
    if anchor is None:
        anchor = names[0]
    if anchor not in models:
        raise invalid_value("anchor", f"one of {names}", anchor)
    reference = models[anchor]
    space = WeightSpace(reference)
    vectors = {}
    for name, model in models.items():
        if name == anchor:
            vectors[name] = space.vector()
        elif aligned:
            vectors[name] = align(reference, model)[0]
        else:
            vectors[name] = space.vector(model)
    return space, vectors


@dataclasses.dataclass(frozen=True)
class LinearPath:
    """The loss along `(1 - t)·θ_a + t·θ_b`.

    Attributes:
        t: `(T,)` interpolation coefficients from 0 to 1.
        losses: `(T, K)` every exit's loss.
        exit_names: the exits.
        barrier: `(K,)` the largest excess of the loss over the straight
            line between the end points' losses (0 for a flat path).
        aligned: whether `θ_b` was aligned to `θ_a` first.
        batchnorm: `"interpolate"` or `"recompute"` (module docstring).
    """

    t: np.ndarray
    losses: np.ndarray
    exit_names: tuple
    barrier: np.ndarray
    aligned: bool
    batchnorm: str = "interpolate"

    def to_dict(self):
        return {"t": self.t.tolist(), "losses": self.losses.tolist(),
                "exit_names": list(self.exit_names),
                "barrier": self.barrier.tolist(), "aligned": self.aligned,
                "batchnorm": self.batchnorm}


def loss_barrier(t, losses):
    """`max_t [L(t) - ((1 - t)·L(0) + t·L(1))]` per column of `losses`."""
    t = np.asarray(t, np.float64)[:, None]
    losses = np.asarray(losses, np.float64)
    line = (1 - t) * losses[:1] + t * losses[-1:]
    return (losses - line).max(0)


def linear_path(model_a, model_b, data, points=25, align_weights=True,
                weight_batch=4, data_batch="auto", max_samples=None,
                batchnorm="interpolate", batchnorm_data=None):
    """Every exit's loss along the straight line from `model_a` to `model_b`.

    Args:
        model_a: the reference model (unchanged).
        model_b: a model of the same architecture, aligned to `model_a` by
            weight matching first when `align_weights` (the architecture
            must then be supported, see `weight_matching`).
        data: `(x, y)` arrays or a `tf.data.Dataset` (Kubaty et al. use the
            training data).
        points: points on the path, end points included.
        align_weights: align `model_b` to `model_a` first.
        weight_batch: see `LossEvaluator`.
        data_batch: see `LossEvaluator`.
        max_samples: see `LossEvaluator`.
        batchnorm: `"interpolate"` (default) or `"recompute"` the
            BatchNorm moving statistics at every point (module
            docstring).
        batchnorm_data: the data they are recomputed on (default: `data`).

    Returns:
        A `LinearPath`.

    Example:

    ```python
    path = linear_path(joint, mixed, (x_train, y_train),
                       batchnorm="recompute")
    path.barrier  # (K,) one barrier per exit
    ```
    """
    points = check_positive_int("points", points)
    if points < 2:
        raise invalid_value("points", "an integer >= 2", points)
    space, vectors = _vectors({"a": model_a, "b": model_b}, "a",
                              align_weights)
    evaluator = LossEvaluator(space, data, weight_batch, data_batch,
                              max_samples, nonnegative=_variances(space),
                              batchnorm=batchnorm,
                              batchnorm_data=batchnorm_data)
    t = np.linspace(0.0, 1.0, points)
    losses = evaluator.affine(vectors["a"], (vectors["b"] - vectors["a"])[
        None], t[:, None])
    return LinearPath(t, losses, tuple(model_a.exit_names),
                      loss_barrier(t, losses), bool(align_weights),
                      batchnorm)


@dataclasses.dataclass(frozen=True)
class ConnectivityPlane:
    """The loss over the plane through three models.

    The plane is `θ_0 + x·u + y·v` with `θ_0` the anchor model and `u`, `v`
    an orthonormal basis (Gram–Schmidt) of the other two models' offsets
    from it; `x`, `y` are Euclidean distances in weight space.

    Attributes:
        x: `(R,)` grid coordinates along `u`.
        y: `(R,)` grid coordinates along `v`.
        losses: `(K, R, R)` every exit's loss; `losses[k, i, j]` is at
            `(x[j], y[i])`.
        names: the three models, anchor first.
        points: `(3, 2)` the models' coordinates in the plane.
        exit_names: the exits.
        aligned: whether the two were aligned to the anchor.
        batchnorm: `"interpolate"` or `"recompute"` (module docstring).
    """

    x: np.ndarray
    y: np.ndarray
    losses: np.ndarray
    names: tuple
    points: np.ndarray
    exit_names: tuple
    aligned: bool
    batchnorm: str = "interpolate"

    def loss(self, exit=None):
        """The `(R, R)` grid of one exit (number 1..K or name; default the
        final exit)."""
        return self.losses[_exit_index(exit, self.exit_names)]

    def to_dict(self):
        return {"x": self.x.tolist(), "y": self.y.tolist(),
                "losses": self.losses.tolist(), "names": list(self.names),
                "points": self.points.tolist(),
                "exit_names": list(self.exit_names),
                "aligned": self.aligned, "batchnorm": self.batchnorm}


def connectivity_plane(models, data, anchor=None, resolution=31, margin=0.2,
                       align_weights=True, weight_batch=4, data_batch="auto",
                       max_samples=None, batchnorm="interpolate",
                       batchnorm_data=None):
    """Every exit's loss over the plane through three models.

    Args:
        models: `{name: model}`, three models of one architecture (e.g.
            one per regime).
        data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` batches
            (Kubaty et al. use the training data).
        anchor: the model left as it is (default: the first); the other two
            are aligned to it by weight matching when `align_weights`.
        resolution: grid points per axis (the paper's 22,500 points is
            150).
        margin: the grid extends this fraction of the triangle's size
            beyond it on every side.
        align_weights: align the other two models first.
        weight_batch: see `LossEvaluator`.
        data_batch: see `LossEvaluator`.
        max_samples: see `LossEvaluator`.
        batchnorm: `"interpolate"` (default) or `"recompute"` the
            BatchNorm moving statistics at every point (module
            docstring).
        batchnorm_data: the data they are recomputed on (default: `data`).

    Returns:
        A `ConnectivityPlane`.

    Example:

    ```python
    plane = connectivity_plane({"joint": a, "mixed": b, "disjoint": c},
                               (x_train, y_train), resolution=31)
    connectivity_plot(plane, "plane.png")
    ```

    References:
        - Kubaty et al. Joint or Disjoint (§3.1, Figure 2, D.8).
        - [Garipov et al., 2018. Loss Surfaces, Mode Connectivity, and Fast
            Ensembling of DNNs](https://arxiv.org/abs/1802.10026) (planes
            through three models)
        - [Ainsworth et al., 2022. Git Re-Basin](
            https://arxiv.org/abs/2209.04836)
    """
    if not isinstance(models, dict) or len(models) != 3:
        raise invalid_value("models", "a dict of exactly three models "
                            "{name: model}", type(models).__name__ if not
                            isinstance(models, dict) else len(models))
    resolution = check_positive_int("resolution", resolution)
    if resolution < 2:
        raise invalid_value("resolution", "an integer >= 2", resolution)
    if (isinstance(margin, bool) or not isinstance(margin, (int, float))
            or not 0 <= margin < 10):
        raise invalid_value("margin", "a number in [0, 10)", margin)
    space, vectors = _vectors(models, anchor, align_weights)
    anchor = anchor if anchor is not None else next(iter(models))
    names = [anchor] + [n for n in models if n != anchor]
    theta0 = vectors[names[0]].astype(np.float64)
    d1 = vectors[names[1]] - theta0
    d2 = vectors[names[2]] - theta0
    n1 = np.linalg.norm(d1)
    if n1 == 0:
        raise ValueError(f"Models {names[0]!r} and {names[1]!r} have the "
                         "same weights: they do not span a plane.")
    u = d1 / n1
    v = d2 - (d2 @ u) * u
    n2 = np.linalg.norm(v)
    if n2 <= 1e-9 * max(n1, 1.0):
        raise ValueError("The three models lie on one line in weight "
                         "space: they do not span a plane.")
    v = v / n2
    points = np.array([[0.0, 0.0], [n1, 0.0], [d2 @ u, n2]])
    low, high = points.min(0), points.max(0)
    pad = margin * (high - low).max()
    x = np.linspace(low[0] - pad, high[0] + pad, resolution)
    y = np.linspace(low[1] - pad, high[1] + pad, resolution)
    evaluator = LossEvaluator(space, data, weight_batch, data_batch,
                              max_samples, nonnegative=_variances(space),
                              batchnorm=batchnorm,
                              batchnorm_data=batchnorm_data)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    losses = evaluator.affine(theta0, np.stack([u, v]),
                              np.stack([xx.reshape(-1), yy.reshape(-1)], 1))
    losses = losses.T.reshape(-1, resolution, resolution)
    return ConnectivityPlane(x, y, losses, tuple(names), points,
                             tuple(models[anchor].exit_names),
                             bool(align_weights), batchnorm)
