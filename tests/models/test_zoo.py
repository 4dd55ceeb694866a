"""The model zoo: shapes, names, saving, costs and argument errors."""

import inspect

import keras
import numpy as np
import pytest

from keras_eexit import MultiExitModel
from keras_eexit.layers import LinearHead
from keras_eexit.layers import MLPHead
from keras_eexit.layers import SDNPoolHead
from keras_eexit.models import MODELS
from keras_eexit.models import cifar_resnet
from keras_eexit.models import get_model
from keras_eexit.models import small_cnn
from keras_eexit.layers import ZeroPadShortcut

# id, name, kwargs, number of exits. Inputs are as small as each model
# allows (32x32 for the keras.applications backbones).
ZOO = [
    ("small_cnn", "small_cnn", {"width": 8}, 3),
    ("cnn1d", "cnn1d", {"width": 8}, 4),
    ("resnet20", "cifar_resnet", {"depth": 20}, 3),
    ("resnet32_4_exits", "cifar_resnet",
     {"depth": 32, "exits": [2, 5, 10, 14]}, 5),
    ("resnet56", "cifar_resnet", {"depth": 56}, 3),
    ("resnet34", "cifar_resnet", {"depth": 34, "input_shape": (16, 16, 3)},
     8),
    ("vgg16", "vgg16_exits", {}, 3),
    ("mobilenet_v2", "mobilenet_v2_exits", {}, 4),
    ("resnet50", "resnet50_exits", {}, 4),
]


def _input(model, batch=2, seed=0):
    shape = model.segments[0].inputs[0].shape[1:]
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(batch,) + tuple(shape)).astype("float32")


@pytest.fixture(scope="module", params=ZOO, ids=[z[0] for z in ZOO])
def zoo_model(request):
    _, name, kwargs, num_exits = request.param
    keras.utils.set_random_seed(0)
    return get_model(name, num_classes=7, **kwargs), num_exits


def test_registry_lists_every_builder():
    assert sorted(MODELS) == sorted([
        "small_cnn", "cnn1d", "cifar_resnet", "vgg16_exits",
        "mobilenet_v2_exits", "resnet50_exits", "msdnet_cifar",
        "msdnet_imagenet", "ranet_cifar", "vit_exits",
        "text_transformer_exits",
    ])


def test_every_builder_takes_damping_off_by_default():
    # The damping losses need a damping unit on every exit; every zoo
    # architecture builds one on request (README, "A multi-exit model").
    for name, builder in MODELS.items():
        param = inspect.signature(builder).parameters.get("damping")
        assert param is not None and param.default is False, name


def test_outputs_are_named_logits(zoo_model):
    model, num_exits = zoo_model
    assert isinstance(model, MultiExitModel)
    names = [f"exit_{k}" for k in range(1, num_exits + 1)]
    assert model.num_exits == num_exits
    assert model.exit_names == names
    assert [h.name for h in model.heads] == names
    assert all(isinstance(s, keras.Model) for s in model.segments)
    out = model(_input(model))
    assert list(out) == names
    assert all(tuple(v.shape) == (2, 7) for v in out.values())


def test_save_and_load_give_identical_outputs(zoo_model, tmp_path):
    model, _ = zoo_model
    x = _input(model, seed=1)
    before = model(x)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, MultiExitModel)
    assert loaded.exit_names == model.exit_names
    after = loaded(x)
    for name in model.exit_names:
        np.testing.assert_allclose(after[name], before[name], atol=1e-6)


def test_costs_grow_with_depth(zoo_model):
    model, num_exits = zoo_model
    flops = model.flops_per_exit()
    params = model.params_per_exit()
    assert len(flops) == len(params) == num_exits
    assert all(f > 0 for f in flops)
    assert flops == sorted(flops) and params == sorted(params)
    # Every weight but the (non-trainable) per-exit loss weights, a vector
    # of `num_exits` entries held by the model itself.
    assert params[-1] == model.count_params() - num_exits
    assert tuple(model.exit_weights.shape) == (num_exits,)


def test_cifar_resnet_sizes_match_he_et_al():
    # He et al. (2016), Table 6: 0.27M, 0.46M and 0.85M parameters.
    for depth, expected in ((20, 0.27e6), (32, 0.46e6), (56, 0.85e6)):
        model = cifar_resnet(depth=depth)
        backbone = sum(s.count_params() for s in model.segments)
        backbone += model.heads[-1].count_params()  # the final classifier
        assert backbone == pytest.approx(expected, rel=0.05), depth


def test_resnet34_has_sdn_exits_every_second_block():
    model = cifar_resnet(depth=34, input_shape=(16, 16, 3))
    assert model.num_exits == 8
    assert all(isinstance(h, SDNPoolHead) for h in model.heads[:-1])
    assert isinstance(model.heads[-1], LinearHead)
    # Segment k ends after block 2k: its output is that block's output.
    ends = [s.outputs[0].shape for s in model.segments]
    assert [tuple(e[1:]) for e in ends] == [
        (16, 16, 64), (8, 8, 128), (8, 8, 128), (4, 4, 256), (4, 4, 256),
        (4, 4, 256), (2, 2, 512), (2, 2, 512),
    ]
    # ResNet-34 for CIFAR: about 21.3M weights in the backbone.
    backbone = sum(s.count_params() for s in model.segments)
    assert backbone == pytest.approx(21.3e6, rel=0.02)


def test_head_argument_takes_names_classes_and_factories():
    by_class = small_cnn(width=4, head=MLPHead, hidden_units=(6,))
    assert all(isinstance(h, MLPHead) for h in by_class.heads)

    def factory(num_classes, name=None):
        return LinearHead(num_classes, pooling="max", name=name)

    by_factory = small_cnn(width=4, head=factory, num_classes=3)
    assert [h.pooling for h in by_factory.heads] == ["max"] * 3
    assert by_factory(np.zeros((1, 8, 8, 1)))["exit_3"].shape == (1, 3)
    resnet = cifar_resnet(depth=20, head="mlp", hidden_units=(8,))
    assert [type(h) for h in resnet.heads] == [MLPHead, MLPHead, LinearHead]


def test_exit_positions_follow_the_arguments():
    model = cifar_resnet(depth=20, exits=[1, 4, 8])
    shapes = [tuple(s.outputs[0].shape[1:]) for s in model.segments]
    assert shapes == [(32, 32, 16), (16, 16, 32), (8, 8, 64), (8, 8, 64)]
    vgg = get_model("vgg16_exits", exits_after=(2, 7, 12))
    shapes = [tuple(s.outputs[0].shape[1:]) for s in vgg.segments]
    assert shapes == [(32, 32, 64), (8, 8, 256), (2, 2, 512), (1, 1, 512)]


def test_zero_pad_shortcut_subsamples_and_pads():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    layer = ZeroPadShortcut(6, strides=2)
    y = np.asarray(layer(x))
    assert y.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    assert not y[..., :2].any() and not y[..., 4:].any()
    assert layer.compute_output_shape((None, 5, 5, 2)) == (None, 3, 3, 6)


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(ValueError, match="small_cnn") as info:
        get_model("small_cn")
    assert "resnet50_exits" in str(info.value)
    assert "Did you mean 'small_cnn'" in str(info.value)


@pytest.mark.parametrize("depth", [18, 44, "20", 20.0, True])
def test_bad_depth_lists_valid_depths(depth):
    with pytest.raises(ValueError, match=r"\[20, 32, 34, 56\]"):
        cifar_resnet(depth=depth)


@pytest.mark.parametrize("exits", [[0], [9], [3, 3], [6, 3], [], "3", [2.0]])
def test_bad_exit_positions(exits):
    with pytest.raises(ValueError, match="`exits`"):
        cifar_resnet(depth=20, exits=exits)


def test_bad_arguments_of_the_other_builders():
    with pytest.raises(ValueError, match="`exits_after`"):
        get_model("vgg16_exits", exits_after=(5, 13))
    with pytest.raises(ValueError, match="`num_classes`"):
        get_model("small_cnn", num_classes=1)
    with pytest.raises(ValueError, match="`input_shape`"):
        get_model("cnn1d", input_shape=(40,))
    with pytest.raises(ValueError, match="`input_shape`"):
        get_model("mobilenet_v2_exits", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="`width`"):
        get_model("small_cnn", width=0)
    with pytest.raises(ValueError, match="`shortcut`|shortcut"):
        cifar_resnet(depth=20, shortcut="identity")
    with pytest.raises(ValueError, match="not found"):
        get_model("resnet50_exits", taps=["conv2_block9_out"])
    with pytest.raises(ValueError, match="head"):
        get_model("small_cnn", head="no_such_head")
