"""Mutual information I(X; Z) between inputs and layer representations.

Kubaty et al. (§3.4, Figure 5, D.6) estimate I(X; Z) per layer on the test
set with "the Jensen approximation", noting that a Monte-Carlo estimate
gives similar results. A deterministic network has I(X; Z) = H(X) at every
layer that keeps inputs apart, so, as is usual in information-bottleneck
analyses (Saxe et al., 2018; Kolchinsky et al., 2019), the representation
is observed through Gaussian noise, `Z = f(X) + ε`, `ε ~ N(0, σ² I)`, with
X uniform over the `N` samples. Then `p(z)` is a mixture of `N` Gaussians
around the representations `μ_i = f(x_i)` and

    I(X; Z) = H(Z) - H(Z | X) = E_i E_{z ~ N(μ_i, σ²)} [log N(z; μ_i, σ²)
              - log (1/N) Σ_j N(z; μ_j, σ²)].

- `estimator="jensen"`: Jensen's inequality on the convex log-sum-exp
  (`E[log Σ_j ...] ≥ log Σ_j exp E[...]`) gives the closed form

      I_J = -(1/N) Σ_i log (1/N) Σ_j exp(-‖μ_i - μ_j‖² / (2σ²)),

  an upper bound on I(X; Z) (Kolchinsky & Tracey, 2017, the KL pairwise
  estimator), between 0 (all representations equal) and log N (all far
  apart).
- `estimator="monte_carlo"`: the expectation above estimated with
  `samples` noise draws per point (no bound; converges to I(X; Z)).

Both are in nats. The noise sets the scale at which two representations
count as different. By default `σ² = noise × mean_ij ‖μ_i − μ_j‖² / 2`
(`relative` noise): then `‖μ_i − μ_j‖² / (2σ²)` is 1 / noise on average
whatever the layer's width and scale, so layers and models are comparable;
pass `noise_variance` for an absolute σ² instead.
"""

import numpy as np

from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

ESTIMATORS = ("jensen", "monte_carlo")


def _squared_distances(a, b):
    d = (np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :]
         - 2.0 * a @ b.T)
    return np.maximum(d, 0.0)


def _logmeanexp(values, axis):
    top = values.max(axis, keepdims=True)
    return (np.log(np.mean(np.exp(values - top), axis))
            + np.squeeze(top, axis))


def noise_level(representations, noise=0.1):
    """σ² for relative noise: `noise × mean_ij ‖μ_i − μ_j‖² / 2`.

    The mean pairwise squared distance is twice the total variance, so
    this is `noise × Σ_d var(μ_d)` (ddof = 0).
    """
    mu = np.asarray(representations, np.float64).reshape(
        len(representations), -1)
    return float(noise * mu.var(0).sum())


def mutual_information(representations, estimator="jensen", noise=0.1,
                       noise_variance=None, samples=8, seed=0, chunk=1024):
    """I(X; Z) of the representations of N equally likely inputs.

    Args:
        representations: `(N, ...)` array, one row (flattened) per input.
        estimator: `"jensen"` (closed-form upper bound) or
            `"monte_carlo"` (see the module docstring).
        noise: relative noise level (used when `noise_variance` is None).
        noise_variance: absolute σ², or None.
        samples: noise draws per point (Monte Carlo).
        seed: seed of the draws (Monte Carlo).
        chunk: rows processed at a time (memory: `chunk × N` floats).

    Returns:
        The estimate in nats (a float in [0, log N] for `"jensen"`).

    Example:

    >>> mu = np.eye(4) * 100.0          # four far-apart representations
    >>> round(mutual_information(mu, noise_variance=1.0), 6)  # log 4
    1.386294

    References:
        - Kubaty et al. Joint or Disjoint (§3.4, D.6).
        - [Kolchinsky and Tracey, 2017. Estimating Mixture Entropy with
            Pairwise Distances](https://arxiv.org/abs/1706.02419)
        - [Saxe et al., 2018. On the Information Bottleneck Theory of Deep
            Learning](https://openreview.net/forum?id=ry_WPG-A-)
    """
    check_choice("estimator", estimator, ESTIMATORS)
    mu = np.asarray(representations, np.float64)
    if mu.ndim < 1 or len(mu) < 1 or not np.all(np.isfinite(mu)):
        raise invalid_value("representations", "a finite array (N, ...) "
                            "with N >= 1", f"shape {mu.shape}")
    mu = mu.reshape(len(mu), -1)
    if noise_variance is None:
        if (isinstance(noise, bool) or not isinstance(noise, (int, float))
                or not noise > 0):
            raise invalid_value("noise", "a positive number", noise)
        variance = noise_level(mu, noise)
        if variance == 0.0:  # every representation equal: no information
            return 0.0
    else:
        if (isinstance(noise_variance, bool)
                or not isinstance(noise_variance, (int, float))
                or not noise_variance > 0):
            raise invalid_value("noise_variance", "a positive number",
                                noise_variance)
        variance = float(noise_variance)
    chunk = check_positive_int("chunk", chunk)
    n = len(mu)
    total = 0.0
    if estimator == "jensen":
        for lo in range(0, n, chunk):
            d = _squared_distances(mu[lo:lo + chunk], mu)
            total += -_logmeanexp(-d / (2 * variance), axis=1).sum()
        return float(max(total / n, 0.0))
    samples = check_positive_int("samples", samples)
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(variance)
    for lo in range(0, n, chunk):
        centers = mu[lo:lo + chunk]
        for _ in range(samples):
            eps = rng.standard_normal(centers.shape)
            z = centers + sigma * eps
            own = -np.sum(eps * eps, 1) / 2  # log N(z; μ_i) + const
            mixture = _logmeanexp(-_squared_distances(z, mu)
                                  / (2 * variance), axis=1)
            total += np.sum(own - mixture)
    return float(total / (n * samples))


def layer_mutual_information(model, x, layers="post_activation",
                             estimator="jensen", noise=0.1,
                             noise_variance=None, samples=8, seed=0,
                             batch_size=256, max_samples=None):
    """`mutual_information` of every measured backbone layer on `x`.

    Args:
        model: a `MultiExitModel`.
        x: inputs (Kubaty et al. use the whole test set).
        layers: which layers (see
            `keras_eexit.callbacks.numerical_rank.measured_layers`): by
            default the representations after every activation.
        estimator: see `mutual_information`.
        noise: see `mutual_information`.
        noise_variance: see `mutual_information`.
        samples: see `mutual_information`.
        seed: see `mutual_information`.
        batch_size: samples per forward pass.
        max_samples: use the first `max_samples` inputs only (the cost is
            quadratic in the number of samples).

    Returns:
        `{layer name: I(X; Z) in nats}` in network order.
    """
    from keras_eexit.callbacks.numerical_rank import layer_activations

    x = np.asarray(x)
    if max_samples is not None:
        x = x[:check_positive_int("max_samples", max_samples)]
    activations = layer_activations(model, x, layers, batch_size)
    return {name: mutual_information(value, estimator, noise,
                                     noise_variance, samples, seed)
            for name, value in activations.items()}
