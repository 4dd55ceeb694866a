"""I(X; Z) estimators against closed forms."""

import numpy as np
import pytest
from scipy import integrate

from keras_eexit.analysis import layer_mutual_information
from keras_eexit.analysis import mutual_information


def _jensen_closed_form(distances, variance):
    d = np.asarray(distances, np.float64)
    return float(-np.mean(np.log(np.mean(np.exp(-d / (2 * variance)), 1))))


def test_invertible_map_matches_the_closed_form():
    # Five inputs on a line, mapped by an invertible similarity (rotation,
    # scale, shift): pairwise distances scale by s, nothing else changes.
    x = np.outer(np.arange(5.0), [1.0, 0.0, 0.0])
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    s, shift = 2.5, np.array([1.0, -2.0, 0.5])
    z = s * x @ q.T + shift
    variance = 3.0
    grid = np.arange(5.0)
    expected = _jensen_closed_form(
        (s * (grid[:, None] - grid[None, :])) ** 2, variance)
    assert mutual_information(z, noise_variance=variance) == pytest.approx(
        expected, rel=1e-10)
    # Relative noise follows the data's scale: any similarity map of X
    # leaves the estimate unchanged.
    assert mutual_information(z, noise=0.3) == pytest.approx(
        mutual_information(x, noise=0.3), rel=1e-9)


def test_limits_zero_and_log_n():
    far = np.eye(6) * 1e3
    for estimator in ("jensen", "monte_carlo"):
        assert mutual_information(far, estimator, noise_variance=1.0) == (
            pytest.approx(np.log(6), abs=1e-9))
        assert mutual_information(np.ones((6, 3)), estimator) == 0.0


def test_monte_carlo_converges_to_the_exact_value_jensen_bounds_it():
    # Two inputs at distance D: I = log 2 - E[softplus-type term], an
    # integral along the line through them (1-D problem).
    distance, variance = 2.0, 1.0
    sigma = np.sqrt(variance)

    def integrand(t):  # z on the axis, sample from component 0 at 0
        p0 = np.exp(-t ** 2 / (2 * variance))
        p1 = np.exp(-(t - distance) ** 2 / (2 * variance))
        density = p0 / np.sqrt(2 * np.pi * variance)
        return density * np.log(p0 / ((p0 + p1) / 2))

    exact, _ = integrate.quad(integrand, -12 * sigma, distance + 12 * sigma)
    points = np.array([[0.0, 0.0], [distance, 0.0]])
    monte_carlo = mutual_information(points, "monte_carlo",
                                     noise_variance=variance, samples=40000)
    assert monte_carlo == pytest.approx(exact, abs=0.01)
    jensen = mutual_information(points, noise_variance=variance)
    assert jensen >= exact
    assert jensen == pytest.approx(
        np.log(2) - np.log(1 + np.exp(-distance ** 2 / (2 * variance))))


@pytest.mark.parametrize("kwargs,match", [
    ({"estimator": "kde"}, "estimator"),
    ({"noise": 0}, "noise"),
    ({"noise_variance": -1.0}, "noise_variance"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mutual_information(np.eye(3), **kwargs)


def test_per_layer_on_a_model():
    from keras_eexit import models

    model = models.get_model("small_cnn", width=4)
    x = np.random.default_rng(0).random((48, 8, 8, 1)).astype("float32")
    model(x)
    values = layer_mutual_information(model, x)
    assert list(values) == ["stage1_out", "stage2_out", "stage3_out"]
    assert all(0 <= v <= np.log(48) + 1e-9 for v in values.values())
