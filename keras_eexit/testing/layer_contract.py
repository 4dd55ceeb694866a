"""The contract every keras-eexit layer honours, as one reusable check.

Like Keras' own `run_layer_test` (`keras/src/testing/test_case.py`):
`run_layer_test` builds and calls a layer, round-trips its config and a
`.keras` file in safe mode, runs it under mixed-precision policies, counts
its weights and takes one training step. The test suite runs it over every
layer the package registers (`registered_layers`,
`tests/layers/test_layer_contract.py`); a user can run it on a layer of
their own (a new exit head or stage).
"""

import importlib
import json
import pkgutil
import tempfile
from pathlib import Path

import keras
import numpy as np
from keras import tree

from keras_eexit.api import PACKAGE
from keras_eexit.utils.distribution import precision_policy

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")
"""The dtype policies `run_layer_test` checks by default."""


def package_modules(package=PACKAGE):
    """The names of every module of a package (`__main__` left out).

    Args:
        package: a package name, such as `"keras_eexit"`.

    Returns:
        A sorted list of module names, the package itself first.
    """
    root = importlib.import_module(package)
    names = [module.name for module in
             pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [package] + sorted(n for n in names
                              if n.rsplit(".", 1)[-1] != "__main__")


def registered_layers(package=PACKAGE):
    """Every layer class registered for Keras serialization by a package.

    Imports every module of `package` first (`package_modules`), so a
    layer registered anywhere in it (with `keras_eexit.api.register`) is
    found. Models (`keras.Model` subclasses) are left out.

    Args:
        package: the name of the package and of its registration
            namespace (`"keras_eexit"`).

    Returns:
        A dict `{class name: class}`, sorted by name.

    Example:

    >>> "LinearHead" in registered_layers()
    True
    """
    for module in package_modules(package):
        importlib.import_module(module)
    prefix = f"{package}>"
    found = {
        name[len(prefix):]: cls
        for name, cls in keras.saving.get_custom_objects().items()
        if name.startswith(prefix) and isinstance(cls, type)
        and issubclass(cls, keras.layers.Layer)
        and not issubclass(cls, keras.Model)
    }
    return dict(sorted(found.items()))


def _arguments(init_kwargs):
    """Fresh constructor arguments (a factory is called every time)."""
    return dict(init_kwargs() if callable(init_kwargs) else init_kwargs)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _is_float(x):
    return "float" in _dtype(x)  # float16/32/64, bfloat16


def _plain(config):
    """A config as JSON reads it back (tuples become lists)."""
    return json.loads(json.dumps(config, default=str))


def _first_difference(actual, expected, path=""):
    """The path and values where two plain configs first differ."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(set(actual) | set(expected), key=str):
            if actual.get(key, "<missing>") != expected.get(key, "<missing>"):
                return _first_difference(actual.get(key, "<missing>"),
                                         expected.get(key, "<missing>"),
                                         f"{path}.{key}")
    if (isinstance(actual, list) and isinstance(expected, list)
            and len(actual) == len(expected)):
        for i, (a, e) in enumerate(zip(actual, expected)):
            if a != e:
                return _first_difference(a, e, f"{path}[{i}]")
    return f"{path or 'config'}: {actual!r} != {expected!r}"


def _assert_same_config(actual, expected, what):
    actual, expected = _plain(actual), _plain(expected)
    assert actual == expected, (
        f"{what} has another config: "
        f"{_first_difference(actual, expected)}")


def _split_kwargs(call_kwargs):
    """Array arguments (model inputs) and plain ones (constants)."""
    arrays = {k: v for k, v in call_kwargs.items()
              if isinstance(v, np.ndarray)}
    plain = {k: v for k, v in call_kwargs.items() if k not in arrays}
    return arrays, plain


def _call(layer, input_data, call_kwargs, training):
    arrays, plain = _split_kwargs(call_kwargs)
    return layer(input_data, training=training, **arrays, **plain)


def _flat_outputs(outputs):
    return list(tree.flatten(outputs))


def _shapes(outputs):
    return [tuple(t.shape) for t in _flat_outputs(outputs)]


def _symbolic(data):
    return tree.map_structure(
        lambda a: keras.KerasTensor((None,) + a.shape[1:],
                                    dtype=str(a.dtype)), data)


def _inputs(data):
    return tree.map_structure(
        lambda a: keras.Input(a.shape[1:], dtype=str(a.dtype)), data)


def _tiny_model(layer, input_data, call_kwargs, floats_only=False):
    """A functional model around `layer`: flat inputs, flat outputs."""
    arrays, plain = _split_kwargs(call_kwargs)
    inputs, kwarg_inputs = _inputs((input_data, arrays))
    outputs = _flat_outputs(layer(inputs, **kwarg_inputs, **plain))
    if floats_only:
        outputs = [t for t in outputs if _is_float(t)]
    flat_inputs = tree.flatten((inputs, kwarg_inputs))
    model = keras.Model(flat_inputs, outputs)
    return model, tree.flatten((input_data, arrays))


def _assert_outputs_close(actual, expected, what):
    actual, expected = _flat_outputs(actual), _flat_outputs(expected)
    assert len(actual) == len(expected), what
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(_numpy(a), _numpy(e), rtol=1e-5,
                                   atol=1e-5, err_msg=what)


def check_config_round_trip(layer, input_data, call_kwargs=None):
    """`from_config(get_config())` rebuilds the layer with the same outputs.

    Args:
        layer: a built layer.
        input_data: inputs it was built on (NumPy arrays, possibly nested).
        call_kwargs: further call arguments (NumPy arrays are inputs).
    """
    call_kwargs = call_kwargs or {}
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert type(clone) is type(layer)
    _assert_same_config(clone.get_config(), config,
                        f"{type(layer).__name__}.from_config")
    _call(clone, input_data, call_kwargs, training=False)
    clone.set_weights(layer.get_weights())
    _assert_outputs_close(
        _call(clone, input_data, call_kwargs, training=False),
        _call(layer, input_data, call_kwargs, training=False),
        f"{type(layer).__name__}.from_config computes other outputs")


def check_save_load(layer, input_data, path, call_kwargs=None):
    """A tiny model around the layer survives a `.keras` file (safe mode).

    Args:
        layer: an unbuilt layer.
        input_data: inputs (NumPy arrays, possibly nested).
        path: the `.keras` file to write.
        call_kwargs: further call arguments (NumPy arrays are inputs).
    """
    model, flat = _tiny_model(layer, input_data, call_kwargs or {})
    expected = model(flat, training=False)
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    copy = loaded.get_layer(layer.name)
    assert type(copy) is type(layer)
    _assert_same_config(copy.get_config(), layer.get_config(),
                        f"a loaded {type(layer).__name__}")
    assert len(loaded.weights) == len(model.weights)
    _assert_outputs_close(loaded(flat, training=False), expected,
                          f"a loaded {type(layer).__name__} computes other "
                          "outputs")


def check_dtype_policy(layer_cls, init_kwargs, input_data, policy,
                       call_kwargs=None):
    """Under a mixed policy the layer computes in the policy's dtype.

    The layer is created under the policy as Keras' global dtype policy
    (`keras_eexit.utils.distribution.precision_policy`), as a mixed
    precision model is built, so layers it creates inside take it too.
    Its variables stay `float32`, its floating outputs are in the compute
    dtype (or `float32`, as logits of the exit heads are), and the
    symbolic call (`compute_output_spec`) predicts the eager outputs'
    shapes and dtypes.

    Args:
        layer_cls: the layer class.
        init_kwargs: its constructor arguments (a dict, or a callable
            returning one).
        input_data: inputs (NumPy arrays, possibly nested).
        policy: a dtype policy name such as `"mixed_float16"`.
        call_kwargs: further call arguments (NumPy arrays are inputs).
    """
    call_kwargs = call_kwargs or {}
    compute = keras.DTypePolicy(policy).compute_dtype
    with precision_policy(policy):
        layer = layer_cls(**_arguments(init_kwargs))
        symbolic_layer = layer_cls(**_arguments(init_kwargs))
    assert layer.compute_dtype == compute
    outputs = _call(layer, input_data, call_kwargs, training=False)
    for variable in layer.weights:
        assert _dtype(variable) == "float32", (
            f"{variable.path} is {_dtype(variable)} under {policy}")
    for output in _flat_outputs(outputs):
        if _is_float(output):
            assert _dtype(output) in (compute, "float32"), (
                f"an output is {_dtype(output)} under {policy}")
    arrays, plain = _split_kwargs(call_kwargs)
    symbolic = symbolic_layer(_symbolic(input_data), **_symbolic(arrays),
                              **plain)
    flat = _flat_outputs(outputs)
    spec = _flat_outputs(symbolic)
    assert [_dtype(t) for t in spec] == [_dtype(t) for t in flat], (
        f"symbolic and eager output dtypes differ under {policy}")
    assert [s.shape[1:] for s in spec] == [tuple(t.shape)[1:] for t in flat]


def check_one_step_fit(layer, input_data, call_kwargs=None):
    """One training step moves every trainable weight of the layer.

    The layer is trained inside a tiny model on the mean squared error of
    its floating outputs against random targets (Adam, one batch).

    Args:
        layer: an unbuilt layer with trainable weights.
        input_data: inputs (NumPy arrays, possibly nested).
        call_kwargs: further call arguments (NumPy arrays are inputs).
    """
    model, flat = _tiny_model(layer, input_data, call_kwargs or {},
                              floats_only=True)
    rng = np.random.default_rng(1234567)  # not a seed inputs come from
    targets = [rng.normal(size=tuple(t.shape)).astype("float32")
               for t in _flat_outputs(model(flat, training=False))]
    before = {v.path: _numpy(v) for v in layer.trainable_weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=["mse"] * len(targets))
    batch = len(tree.flatten(input_data)[0])
    history = model.fit(flat, targets, batch_size=batch, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])
    still = [v.path for v in layer.trainable_weights
             if np.array_equal(_numpy(v), before[v.path])]
    assert not still, f"one training step left {still} unchanged"


def run_layer_test(layer_cls, init_kwargs, input_data, call_kwargs=None,
                   expected_output_shape=None, expected_output_dtype=None,
                   expected_num_trainable_weights=None,
                   expected_num_non_trainable_weights=None,
                   policies=MIXED_POLICIES, run_training_check=True,
                   directory=None):
    """Checks a layer's build, call, serialization, dtypes and training.

    In order: the eager call gives the expected output shapes and dtypes
    and the symbolic call (`compute_output_spec`) agrees with it; the
    weight counts are as expected, no variable is tracked twice and
    `trainable = False` makes every weight non-trainable; the config round
    trip (`check_config_round_trip`) and a `.keras` file loaded with
    `safe_mode=True` (`check_save_load`) give the same outputs; each mixed
    policy is honoured (`check_dtype_policy`); one training step moves
    every trainable weight (`check_one_step_fit`, when the layer has any).

    Args:
        layer_cls: the layer class (registered for serialization).
        init_kwargs: a dict of constructor arguments, or a callable
            returning one (for arguments that hold layers, which each new
            instance needs its own of; a dict may hold them serialized
            instead, for layers that accept a config).
        input_data: NumPy inputs of the call, a batch (a nested structure
            for layers that take several tensors).
        call_kwargs: further call arguments; NumPy arrays among them (such
            as a `padding_mask`) become inputs of the tiny models.
        expected_output_shape: the output shape, or a list of shapes for a
            nested output (flattened), or `None` to skip.
        expected_output_dtype: the dtype of every output under the default
            policy, or `None` to skip.
        expected_num_trainable_weights: number of trainable variables once
            built, or `None` to skip.
        expected_num_non_trainable_weights: the same for non-trainable
            variables.
        policies: dtype policies for `check_dtype_policy`.
        run_training_check: whether to take the training step.
        directory: where to write the `.keras` file (a temporary directory
            by default).

    Example:

    >>> import numpy as np
    >>> from keras_eexit.layers import LinearHead
    >>> features = np.random.default_rng(0).normal(size=(2, 4, 4, 3))
    >>> features = features.astype("float32")
    >>> run_layer_test(LinearHead, {"num_classes": 5}, features,
    ...                expected_output_shape=(2, 5),
    ...                expected_num_trainable_weights=2,
    ...                expected_num_non_trainable_weights=0)
    """
    call_kwargs = call_kwargs or {}
    name = layer_cls.__name__

    layer = layer_cls(**_arguments(init_kwargs))
    outputs = _call(layer, input_data, call_kwargs, training=False)
    assert layer.built, f"{name} is not built after a call"
    if expected_output_shape is not None:
        expected = (list(expected_output_shape)
                    if isinstance(expected_output_shape[0], (tuple, list))
                    else [expected_output_shape])
        assert _shapes(outputs) == [tuple(s) for s in expected], (
            f"{name} outputs {_shapes(outputs)}, expected {expected}")
    if expected_output_dtype is not None:
        dtypes = [_dtype(t) for t in _flat_outputs(outputs)]
        assert set(dtypes) == {expected_output_dtype}, dtypes
    arrays, plain = _split_kwargs(call_kwargs)
    symbolic = layer_cls(**_arguments(init_kwargs))(
        _symbolic(input_data), **_symbolic(arrays), **plain)
    assert ([(s.shape[1:], _dtype(s)) for s in _flat_outputs(symbolic)]
            == [(tuple(t.shape)[1:], _dtype(t))
                for t in _flat_outputs(outputs)]), (
        f"{name}'s symbolic call disagrees with its eager call")

    ids = [id(v) for v in layer.weights]
    assert len(set(ids)) == len(ids), f"{name} tracks a variable twice"
    for kind, variables, expected in (
            ("trainable", layer.trainable_weights,
             expected_num_trainable_weights),
            ("non-trainable", layer.non_trainable_weights,
             expected_num_non_trainable_weights)):
        assert expected is None or len(variables) == expected, (
            f"{name} has {len(variables)} {kind} variables, expected "
            f"{expected}: {[v.path for v in variables]}")
    layer.trainable = False
    assert not layer.trainable_weights
    assert len(layer.non_trainable_weights) == len(layer.weights)
    layer.trainable = True

    check_config_round_trip(layer, input_data, call_kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(directory or tmp) / f"{name}.keras"
        check_save_load(layer_cls(**_arguments(init_kwargs)), input_data,
                        path,
                        call_kwargs)
    for policy in policies:
        check_dtype_policy(layer_cls, init_kwargs, input_data, policy,
                           call_kwargs)
    if run_training_check and layer.trainable_weights:
        check_one_step_fit(layer_cls(**_arguments(init_kwargs)), input_data,
                           call_kwargs)
