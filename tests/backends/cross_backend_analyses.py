"""The analyses' numbers on the same weights and data, on either backend.

The `analyses` case of `cross_backend_cases.run_cases` (the JAX
subprocess of `test_cross_backend.py` runs it next to the training
cases): from a family's saved weights it measures gradient-dominance
cosines (training and inference mode), numerical ranks, mutual
information (both estimators), a loss landscape, a linear path with
recomputed BatchNorm statistics and the connectivity plane through three
models. The second and third models are the first with fixed NumPy noise
added to its trainable weights, so both backends see the same three.
`check_analyses` compares the two backends' results.
"""

import keras
import numpy as np

from keras_eexit.analysis.loss_landscape import loss_landscape
from keras_eexit.analysis.mode_connectivity import connectivity_plane
from keras_eexit.analysis.mode_connectivity import linear_path
from keras_eexit.analysis.mutual_information import layer_mutual_information
from keras_eexit.callbacks.gradient_dominance import exit_gradient_cosines
from keras_eexit.callbacks.numerical_rank import layer_ranks
from tests.backends import cross_backend_cases as cases

SAMPLES = 48
INPUT_RANK = 5
TOLERANCE = 1e-5


def analysis_data(family, seed=0):
    """`SAMPLES` inputs of rank `INPUT_RANK` (so that the ranks of the
    first layers say something) and their labels."""
    rng = np.random.default_rng(seed)
    shape = tuple(cases.build_shape(family))
    basis = rng.normal(size=(INPUT_RANK, int(np.prod(shape))))
    x = (rng.normal(size=(SAMPLES, INPUT_RANK)) @ basis).reshape(
        (SAMPLES,) + shape)
    return x.astype("float32"), rng.integers(0, cases.CLASSES, SAMPLES)


def _perturbed(directory, family, seed):
    model = cases._load(directory, family)[0]
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        value = keras.ops.convert_to_numpy(variable)
        variable.assign(value + 0.1 * rng.normal(size=value.shape).astype(
            value.dtype) * (np.abs(value).mean() + 1e-3))
    return model


def analyses(directory, family):
    """Every analysis of `family`'s saved weights on `analysis_data`."""
    model = cases._load(directory, family)[0]
    x, y = analysis_data(family)
    result = {
        "cosines_train": exit_gradient_cosines(model, x[:16], y[:16]),
        "cosines_backbone_inference": exit_gradient_cosines(
            model, x[:16], y[:16], scope="backbone", training=False),
    }
    ranks = layer_ranks(model, x)
    result["rank_names"] = np.array(list(ranks))
    result["ranks"] = np.array(list(ranks.values()))
    for estimator in ("jensen", "monte_carlo"):
        result[f"mi_{estimator}"] = np.array(list(layer_mutual_information(
            model, x, estimator=estimator).values()))
    result["landscape"] = loss_landscape(model, (x, y), resolution=3).losses
    other, third = (_perturbed(directory, family, seed) for seed in (1, 2))
    path = linear_path(model, other, (x, y), points=3,
                       batchnorm="recompute")
    result["path"], result["barrier"] = path.losses, path.barrier
    result["plane"] = connectivity_plane(
        {"a": model, "b": other, "c": third}, (x, y), resolution=3).losses
    return result


def check_analyses(directory, family):
    """The two backends' `analyses` agree (ranks exactly, the rest within
    `TOLERANCE`), and the numbers are not trivial."""
    tf, jax = cases.results(directory, "analyses", family)
    assert sorted(tf) == sorted(jax)
    np.testing.assert_array_equal(jax["rank_names"], tf["rank_names"])
    np.testing.assert_array_equal(jax["ranks"], tf["ranks"])
    for key in sorted(set(tf) - {"rank_names", "ranks"}):
        assert np.all(np.isfinite(tf[key])), key
        np.testing.assert_allclose(jax[key], tf[key], rtol=TOLERANCE,
                                   atol=TOLERANCE, err_msg=key)
    # The first layer sees inputs of rank INPUT_RANK (plus its bias);
    # later ones more, but never more than the samples.
    assert tf["ranks"][0] <= INPUT_RANK + 1 < tf["ranks"].max() <= SAMPLES
    assert np.ptp(tf["cosines_train"]) > 10 * TOLERANCE
    assert np.ptp(tf["landscape"]) > 0.01 and np.ptp(tf["plane"]) > 0.01
    assert np.ptp(tf["path"][:, -1]) > 10 * TOLERANCE
