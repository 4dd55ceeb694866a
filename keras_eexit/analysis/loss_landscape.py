"""Loss landscapes of multi-exit models (Kubaty et al., appendix A, D.7).

`f(a, b) = L(θ* + a·δ + b·η)` on a 2-D grid, with `δ`, `η` random
filter-normalised directions (Li et al., 2018) that contain both backbone
and head parameters. Every exit's loss is computed at every grid point
with the same directions ("common random directions for each IC"), on the
data given (Kubaty et al. use the training set and 10,000 points; the
resolution is a parameter). Grid points are evaluated in batches of weight
vectors (`LossEvaluator`), not one model rebuild per point.
`normalization="loss_landscapes"` draws the directions as Kubaty et al.'s
own code does instead (biases and BatchNorm parameters move, filters
divided by the weights' norms, directions rescaled to the model's norm;
see `keras_eexit.analysis.directions`).
"""

import dataclasses

import keras
import numpy as np

from keras_eexit.analysis.directions import random_direction
from keras_eexit.analysis.weight_space import LossEvaluator
from keras_eexit.analysis.weight_space import WeightSpace
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


@dataclasses.dataclass(frozen=True)
class LossLandscape:
    """The loss of every exit over a 2-D slice of weight space.

    Attributes:
        coordinates: `(R,)` grid values of `a` and of `b` (the same).
        losses: `(K, R, R)` mean cross-entropy of each exit; `losses[k, i,
            j]` is at `a = coordinates[j]`, `b = coordinates[i]` (rows are
            `b`, as `contour` expects).
        total: `(R, R)` the weighted sum `Σ_k w_k · losses[k]` with the
            model's `exit_weights` (its training objective).
        exit_names: the exits.
        seed: seed of the first direction (the second uses `seed + 1`).
        distribution: `"normal"` or `"uniform"`.
        samples: number of data samples the losses average over.
        normalization: `"filter"` (Li et al.) or `"loss_landscapes"`.
    """

    coordinates: np.ndarray
    losses: np.ndarray
    total: np.ndarray
    exit_names: tuple
    seed: int
    distribution: str
    samples: int
    normalization: str = "filter"

    def loss(self, exit=None):
        """The `(R, R)` grid of exit `exit` (a number 1..K, a name, or None
        for the total)."""
        if exit is None or exit == "total":
            return self.total
        if isinstance(exit, str):
            if exit not in self.exit_names:
                raise invalid_value("exit", f"one of {list(self.exit_names)}"
                                    " or 'total'", exit)
            return self.losses[self.exit_names.index(exit)]
        if not 1 <= int(exit) <= len(self.exit_names):
            raise invalid_value("exit", f"an exit number in 1..."
                                f"{len(self.exit_names)}", exit)
        return self.losses[int(exit) - 1]

    def to_dict(self):
        """JSON-able contents."""
        return {"coordinates": self.coordinates.tolist(),
                "exit_names": list(self.exit_names),
                "losses": self.losses.tolist(), "total": self.total.tolist(),
                "seed": self.seed, "distribution": self.distribution,
                "samples": self.samples, "normalization": self.normalization}


def loss_landscape(model, data, resolution=31, span=1.0, seed=0,
                   distribution="normal", ignore="biasbn", weight_batch=4,
                   data_batch="auto", max_samples=None,
                   normalization="filter"):
    """Every exit's loss on a `resolution × resolution` grid around θ*.

    Args:
        model: a built `MultiExitModel` (its weights are not changed).
        data: `(x, y)` arrays or a `tf.data.Dataset` of `(x, y)` batches
            (Kubaty et al. use the training data).
        resolution: grid points per axis (the paper's 10,000 points is
            100).
        span: the grid covers `[-span, span]` along both directions.
        seed: seed of `δ` (`η` uses `seed + 1`).
        distribution: `"normal"` or `"uniform"` directions.
        ignore: `"biasbn"` or None, see `filter_normalize`.
        weight_batch: grid points per compiled call.
        data_batch: samples per compiled call.
        max_samples: use at most this many samples.
        normalization: `"filter"` (Li et al.'s filter normalisation,
            default) or `"loss_landscapes"` (Kubaty et al.'s code; their
            `zoom` is `span = 1 / (2·zoom)` here).

    Returns:
        A `LossLandscape`.

    Example:

    ```python
    landscape = loss_landscape(model, (x_train, y_train), resolution=31)
    landscape.loss(1)  # (31, 31) grid of exit 1
    ```

    References:
        - Kubaty et al. Joint or Disjoint (appendix A, eq. 5; D.7).
        - [Li et al., 2018. Visualizing the Loss Landscape of Neural Nets](
            https://arxiv.org/abs/1712.09913)
    """
    resolution = check_positive_int("resolution", resolution)
    if resolution < 2:
        raise invalid_value("resolution", "an integer >= 2", resolution)
    if (isinstance(span, bool) or not isinstance(span, (int, float))
            or not np.isfinite(span) or span <= 0):
        raise invalid_value("span", "a positive number", span)
    space = WeightSpace(model)
    theta = space.vector()
    delta = random_direction(space, theta, seed, distribution, ignore,
                             normalization)
    eta = random_direction(space, theta, seed + 1, distribution, ignore,
                           normalization)
    evaluator = LossEvaluator(space, data, weight_batch, data_batch,
                              max_samples)
    coordinates = np.linspace(-span, span, resolution)
    b, a = np.meshgrid(coordinates, coordinates, indexing="ij")
    losses = evaluator.affine(theta, np.stack([delta, eta]),
                              np.stack([a.reshape(-1), b.reshape(-1)], 1))
    losses = losses.T.reshape(len(model.exit_names), resolution, resolution)
    weights = np.asarray(keras.ops.convert_to_numpy(model.exit_weights),
                         np.float64).reshape(-1, 1, 1)
    return LossLandscape(coordinates, losses, (weights * losses).sum(0),
                         tuple(model.exit_names), int(seed), distribution,
                         int(len(evaluator.x)), normalization)
