"""`run_layer_test` over every layer keras-eexit registers.

The layers come from the registration mechanism (`registered_layers`), so a
new registered layer is covered without a new test: an exit head (an
`ExitHead` subclass) runs on image features by default; any other layer
must declare its arguments and inputs in `CASES` (the test says so).
"""

import keras
import numpy as np
import pytest

from keras_eexit.layers import LinearHead
from keras_eexit.layers._base import ExitHead
from keras_eexit.testing import registered_layers
from keras_eexit.testing import run_layer_test

BATCH = 2
RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.normal(size=(BATCH,) + shape).astype("float32")


def _ids(length, vocabulary=20):
    ids = RNG.integers(1, vocabulary, size=(BATCH, length)).astype("int32")
    ids[:, -1] = 0  # one padding token
    return ids


def _prefix():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3)(inputs), name="prefix")


DEFAULT_HEAD_CASE = {
    "init": {"num_classes": 3},
    "inputs": _normal(8, 8, 4),
    "shape": (BATCH, 3),
}
"""What an exit head without a row in `CASES` is checked with."""

# Each row: constructor arguments (a dict, or a factory for arguments that
# hold layers), inputs, call arguments, output shape(s) and the numbers of
# trainable and non-trainable variables.
CASES = {
    "AddPositionEmbedding": {
        "init": {}, "inputs": _normal(5, 8), "shape": (BATCH, 6, 8),
        "weights": (2, 0)},
    "AlignedBilinearResize": {
        "init": {"height": 6, "width": 5}, "inputs": _normal(3, 4, 2),
        "shape": (BATCH, 6, 5, 2), "weights": (0, 0)},
    "ClsHead": {
        "init": {"num_classes": 3}, "inputs": _normal(5, 8),
        "shape": (BATCH, 3), "weights": (4, 0)},
    "ConvPoolHead": {
        "init": {"num_classes": 3, "filters": 4, "hidden_units": 5},
        "inputs": _normal(8, 8, 4), "shape": (BATCH, 3),
        "weights": (10, 4)},
    "DampingHead": {
        "init": {"num_classes": 3, "head": "mlp",
                 "head_kwargs": {"hidden_units": 5}},
        "inputs": _normal(8, 8, 4), "shape": (BATCH, 4), "weights": (4, 0)},
    "GPFHead": {  # exit 2 of 3, reading exit 1's carry
        "init": lambda: {"head": LinearHead(6), "num_classes": 3,
                         "num_exits": 3},
        "inputs": (_normal(8, 8, 4), ((_normal(6),),)),
        "shape": [(BATCH, 3), (BATCH, 6)], "weights": (10, 0)},
    "L2W": None,  # a training procedure, not called on tensors: test_l2w.py
    "LinearHead": {**DEFAULT_HEAD_CASE, "weights": (2, 0)},
    "MLPHead": {**DEFAULT_HEAD_CASE, "init": {"num_classes": 3,
                                              "hidden_units": 5},
                "weights": (4, 0)},
    "MSDNetHead": {**DEFAULT_HEAD_CASE, "init": {"num_classes": 3,
                                                 "filters": 4},
                   "weights": (8, 4)},
    "PartitionedHead": {
        "init": lambda: {"head": LinearHead(3), "ratio": 0.5},
        "inputs": _normal(8, 8, 4), "shape": (BATCH, 3), "weights": (2, 0)},
    "PartitionedSegment": {
        "init": lambda: {"segment": keras.layers.Dense(8), "ratio": 0.5},
        "inputs": _normal(4), "shape": (BATCH, 8), "weights": (2, 0)},
    "SDNPoolHead": {**DEFAULT_HEAD_CASE, "weights": (3, 0)},
    "TextEmbedding": {
        "init": {"vocabulary_size": 20, "hidden_dim": 8,
                 "max_sequence_length": 6},
        "inputs": _ids(6), "shape": (BATCH, 6, 8), "weights": (5, 0)},
    "TextEncoderLayer": {
        "init": {"num_heads": 2, "intermediate_dim": 16},
        "inputs": _normal(6, 8),
        "call_kwargs": {"padding_mask": (_ids(6) > 0).astype("int32")},
        "shape": (BATCH, 6, 8), "weights": (16, 0)},
    "TokenHead": {
        "init": {"num_classes": 3}, "inputs": _normal(5, 8),
        "shape": (BATCH, 3), "weights": (4, 0)},
    "TokenPaddingMask": {
        "init": {}, "inputs": _ids(6), "shape": (BATCH, 6),
        "weights": (0, 0)},
    "TokenTypeIds": {
        "init": {"type_id": 1}, "inputs": _ids(6), "shape": (BATCH, 6),
        "weights": (0, 0)},
    "TransformerBlock": {
        "init": {"dim": 8, "heads": 2, "mlp_dim": 16},
        "inputs": _normal(5, 8), "shape": (BATCH, 5, 8),
        "weights": (16, 0)},
    "UnsharedStage": {
        "init": lambda: {"prefix": _prefix(), "first": True},
        "inputs": _normal(4), "shape": [(BATCH, 3), (BATCH, 4)],
        "weights": (2, 0)},
    "WeightPredictionNetwork": {
        "init": {"num_exits": 3, "hidden_units": 8}, "inputs": _normal(3),
        "shape": (BATCH, 3), "weights": (4, 0)},
    "ZTWHead": {  # exit 2, cascading from exit 1's logits
        "init": lambda: {"head": LinearHead(3)},
        "inputs": (_normal(8, 8, 4), (_normal(3),)),
        "shape": [(BATCH, 3), (BATCH, 3)], "weights": (5, 3)},
    "ZeroPadShortcut": {
        "init": {"filters": 6}, "inputs": _normal(4, 4, 3),
        "shape": (BATCH, 2, 2, 6), "weights": (0, 0)},
}


def _case(name, cls):
    if name in CASES:
        return CASES[name]
    if issubclass(cls, ExitHead):
        return DEFAULT_HEAD_CASE
    pytest.fail(f"{name} is a registered layer without a row in CASES of "
                f"{__file__}: declare its arguments and inputs there.")


LAYERS = registered_layers()


def test_every_layer_is_found():
    # The registry is the source: the layers zoo models use, the heads of
    # every method and stages of other modules all appear.
    assert {"LinearHead", "ZTWHead", "GPFHead", "TokenTypeIds",
            "UnsharedStage", "WeightPredictionNetwork"} <= set(LAYERS)
    assert "MultiExitModel" not in LAYERS


def test_cases_name_registered_layers():
    assert set(CASES) <= set(LAYERS), set(CASES) - set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_contract(name, tmp_path):
    cls = LAYERS[name]
    case = _case(name, cls)
    if case is None:
        pytest.skip(f"{name} is not called on tensors")
    keras.utils.set_random_seed(0)
    trainable, non_trainable = case.get("weights", (None, None))
    run_layer_test(
        cls, case["init"], case["inputs"],
        call_kwargs=case.get("call_kwargs"),
        expected_output_shape=case["shape"],
        expected_num_trainable_weights=trainable,
        expected_num_non_trainable_weights=non_trainable,
        directory=tmp_path)
