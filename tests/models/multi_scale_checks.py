"""Checks shared by the tests of the multi-scale CIFAR networks (MSDNet,
RANet): published cost tables and the outputs of the full model."""

import numpy as np

from keras_eexit.layers.msdnet_head import MSDNetHead


def check_published_costs(model, params, macs, macs_floor, params_rtol=0.05):
    """Cumulative parameters and multiply-adds per exit (millions) match a
    paper's table.

    Both within 5% (parameters within `params_rtol`); the multiply-adds
    slightly below, never above, the published ones (the authors'
    op_counter.py also counts ReLUs, pooling and biases, which our counter
    skips): above `macs_floor` times them.
    """
    got_params = np.array(model.params_per_exit()) / 1e6
    got_macs = np.array(model.macs_per_exit()) / 1e6
    np.testing.assert_allclose(got_params, params, rtol=params_rtol)
    np.testing.assert_allclose(got_macs, macs, rtol=0.05)
    assert (got_macs < macs).all()
    assert (got_macs > macs_floor * np.array(macs)).all()


def check_full_model_outputs(model, num_exits, num_classes=100):
    """`exit_1..exit_K` logits of a 32x32 batch, from MSDNet classifiers."""
    assert model.exit_names == [f"exit_{k}" for k in range(1, num_exits + 1)]
    assert all(isinstance(h, MSDNetHead) for h in model.heads)
    out = model(np.zeros((2, 32, 32, 3), "float32"), training=False)
    assert list(out) == model.exit_names
    assert all(tuple(v.shape) == (2, num_classes) for v in out.values())
