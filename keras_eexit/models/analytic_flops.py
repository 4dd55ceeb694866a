"""FLOPs counted from a Keras layer's structure, without TensorFlow.

The backend-independent twin of `keras_eexit.models.flops.count_flops`
(which traces a TensorFlow graph and walks its ops): same two conventions,
same figures on every model of the zoo (`tests/models/test_analytic_flops.py`
checks both conventions exactly), but computed from the layers themselves,
so it runs on JAX and PyTorch and where TensorFlow is not installed.

How it counts: `fn` is run once symbolically (`compute_output_spec`, no
arithmetic) on the given `keras.KerasTensor` inputs, with every layer nested
in it recording each of its calls (input and output shapes; a layer called
twice is counted twice). Each call then costs its own **multiply-adds** and
its own **element-wise ops** by one small rule per layer type (`_RULES`).
A layer built from other layers (a functional model, `Sequential`, most of
the zoo's heads) is a sum of its sub-layers' calls: its own rule covers only
the arithmetic it does outside them (a residual `x + f(x)`, a global mean),
and layers without a rule do none. Convention `"keras_eexit"` counts
2 per multiply-add and nothing else; `"fvcore"` counts 1 per multiply-add
plus the element-wise ops, exactly as the module docstring of
`keras_eexit.models.flops` lists them (batch normalization 2 per element,
GELU/sigmoid/tanh/add/mul 1, softmax 2, a global mean 1 per input element,
ReLU, padding, pooling windows, reshapes and dropout 0).

A leaf layer type with no rule raises a `ValueError` naming it (a silent 0
would understate the cost); add a rule with `register_rule`.
"""

import math
import re

import keras
import numpy as np

from keras_eexit.compat import flatten_layers
from keras_eexit.utils.validation import check_choice

__all__ = ["CONVENTIONS", "Call", "count_flops", "register_rule"]

CONVENTIONS = ("keras_eexit", "fvcore")
"""FLOP conventions, as in `keras_eexit.models.flops`."""

_RULES = {}
"""`{layer class: rule(layer, call) -> (multiply_adds, elementwise)}`."""


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def count_flops(fn, inputs, *, convention="keras_eexit"):
    """Counts the FLOPs of one forward pass of a Keras layer or model.

    Args:
        fn: a built Keras layer or model.
        inputs: a `keras.KerasTensor` (or a nested tuple/list of them) with
            fully defined shapes, batch dimension included (batch 1 for
            per-sample costs).
        convention: `"keras_eexit"` (2 per multiply-add of convolutions,
            matrix products and einsums, nothing else) or `"fvcore"` (1 per
            multiply-add plus element-wise ops; see
            `keras_eexit.models.flops`).

    Returns:
        The FLOP count (an `int`).

    Raises:
        ValueError: if `fn` is not a Keras layer, or a layer inside it has
            no counting rule and no sub-layers.

    Example:

    >>> layer = keras.layers.Dense(5)
    >>> count_flops(layer, keras.KerasTensor((1, 7)))
    70
    """
    check_choice("convention", convention, CONVENTIONS)
    if not isinstance(fn, keras.layers.Layer):
        from keras_eexit.utils.validation import invalid_value

        raise invalid_value("fn", "a Keras layer or model", fn)
    total = 0
    for layer, call in _record_calls(fn, inputs):
        macs, elementwise = _layer_cost(layer, call)
        if call.constant:
            elementwise = 0
        total += 2 * macs if convention == "keras_eexit" else (
            macs + elementwise)
    return int(total)


def register_rule(layer_class):
    """Registers the counting rule of a layer class (a decorator).

    The rule receives the layer and a `Call` (its input and output shapes)
    and returns `(multiply_adds, elementwise_ops)` of the layer's own
    arithmetic, sub-layers excluded. Subclasses use the rule of their
    nearest registered base class.

    Args:
        layer_class: a `keras.layers.Layer` subclass, or its
            `"module.QualName"` (for a class from an optional package).

    Returns:
        A decorator that registers and returns the rule.

    Example:

    ```python
    @register_rule(MyScale)
    def _my_scale(layer, call):
        return 0, call.output_size  # one multiply per element
    ```
    """

    def decorator(rule):
        _RULES[layer_class] = rule
        return rule

    return decorator


# --------------------------------------------------------------------------
# Recording the calls
# --------------------------------------------------------------------------


class Call:
    """Shapes of one call of a layer.

    Attributes:
        inputs: list of the input tensors' shapes (tuples of ints), in the
            order of `keras.tree.flatten` of the first argument.
        outputs: list of the output tensors' shapes.
        kwargs_shapes: `{name or position: shape}` of the other tensor
            arguments (`value=` of attention layers, or its position 1).
        sub_calls: list of `(layer, Call)` of the layers it called, nested
            ones included, in call order.
        constant: whether its inputs do not depend on the data (token type
            ids): its element-wise ops are then computed once per model,
            not per sample, and count 0 (as in the TF-graph counter).
    """

    def __init__(self, inputs, outputs, kwargs_shapes, sub_calls,
                 constant=False):
        self.inputs = inputs
        self.outputs = outputs
        self.kwargs_shapes = kwargs_shapes
        self.sub_calls = sub_calls
        self.constant = constant

    def last_call_of(self, layer):
        """The `Call` of the last call of sub-layer `layer`."""
        return [c for sub, c in self.sub_calls if sub is layer][-1]

    @property
    def input_size(self):
        """Number of elements of the first input."""
        return math.prod(self.inputs[0])

    @property
    def output_size(self):
        """Number of elements of the first output."""
        return math.prod(self.outputs[0])


def _shapes(structure):
    return [tuple(int(d) for d in x.shape)
            for x in keras.tree.flatten(structure) if hasattr(x, "shape")]


class _Probe(keras.layers.Layer):
    """Runs `fn` inside `compute_output_spec`: symbolic, sub-layers called."""

    def __init__(self, fn):
        super().__init__(name="flops_probe")
        self.fn = fn

    def call(self, inputs):
        return self.fn(inputs, training=False)


def _record_calls(fn, inputs):
    layers = flatten_layers(fn)
    calls, constants, keep = [], set(), []

    def named_tensors(kwargs):
        return [v for k, v in kwargs.items()
                if k not in ("mask", "training") and hasattr(v, "shape")]

    def recorder(layer, original):
        def call(*args, **kwargs):
            start = len(calls)
            outputs = original(*args, **kwargs)
            arguments = keras.tree.flatten((args, named_tensors(kwargs)))
            constant = isinstance(layer, _CONSTANT_OUTPUT) or bool(
                arguments) and all(id(x) in constants for x in arguments)
            if constant:
                constants.update(id(x) for x in keras.tree.flatten(outputs))
                keep.append(outputs)  # ids stay unique while recording
            named = {k: _shapes(v) for k, v in kwargs.items()
                     if k not in ("mask", "training")}
            tensors = [_shapes(a) for a in args] + [
                v for v in named.values() if v]
            kwargs_shapes = {k: v[0] for k, v in named.items() if v}
            for position, shapes in enumerate(tensors[1:len(args)], 1):
                if shapes:
                    kwargs_shapes[position] = shapes[0]
            calls.append((layer, Call(tensors[0] if tensors else [],
                                      _shapes(outputs), kwargs_shapes,
                                      calls[start:], constant)))
            return outputs
        return call

    patched = []
    try:
        for layer in layers:
            if "call" not in vars(layer):
                object.__setattr__(layer, "call",
                                   recorder(layer, layer.call))
                patched.append(layer)
        _Probe(fn).compute_output_spec(inputs)
    finally:
        for layer in patched:
            object.__delattr__(layer, "call")
    return calls


def _layer_cost(layer, call):
    for cls in type(layer).__mro__:
        rule = _RULES.get(cls) or _RULES.get(
            f"{cls.__module__}.{cls.__qualname__}")
        if rule is not None:
            return rule(layer, call)
    if flatten_layers(layer)[1:]:
        return 0, 0  # a composite: its sub-layers' calls are counted
    raise ValueError(
        f"Cannot count FLOPs of layer {layer.name!r}: no counting rule for "
        f"{type(layer).__name__} and it has no sub-layers. Register one "
        "with `keras_eexit.models.analytic_flops.register_rule`."
    )


# --------------------------------------------------------------------------
# Rules: Keras layers
# --------------------------------------------------------------------------


def _free(layer, call):
    return 0, 0


for _cls in (
    keras.layers.InputLayer, keras.layers.ReLU, keras.layers.LeakyReLU,
    keras.layers.Dropout, keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D, keras.layers.GaussianNoise,
    keras.layers.Flatten, keras.layers.Reshape, keras.layers.Permute,
    keras.layers.Concatenate, keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D, keras.layers.Cropping2D,
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D, keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.Identity,
    keras.layers.UpSampling2D,
):
    _RULES[_cls] = _free


@register_rule(keras.layers.Embedding)
def _embedding(layer, call):
    # The TensorFlow lowering wraps negative indices: a compare and an add
    # per index.
    return 0, 2 * call.input_size


@register_rule(keras.layers.Dense)
def _dense(layer, call):
    return call.output_size * call.inputs[0][-1], _activation(
        layer.activation, call.output_size)


@register_rule(keras.layers.EinsumDense)
def _einsum_dense(layer, call):
    kernel = tuple(int(d) for d in layer.kernel.shape)
    return _einsum_macs(layer.equation, [call.inputs[0], kernel]), (
        _activation(layer.activation, call.output_size))


def _conv_rule(layer, call):
    # Grouped, dilated and strided convolutions alike: every output element
    # reads kernel_size x (input channels / groups).
    kernel = tuple(int(d) for d in layer.kernel.shape)
    return call.output_size * math.prod(kernel[:-1]), _activation(
        layer.activation, call.output_size)


def _depthwise_rule(layer, call):
    return call.output_size * math.prod(layer.kernel_size), _activation(
        layer.activation, call.output_size)


def _separable_rule(layer, call):
    spatial = call.outputs[0][1:-1]
    batch = call.outputs[0][0]
    depth = int(call.inputs[0][-1]) * layer.depth_multiplier
    depthwise = batch * math.prod(spatial) * depth
    macs = depthwise * math.prod(layer.kernel_size) + (
        call.output_size * depth)
    return macs, _activation(layer.activation, call.output_size)


def _transposed_rule(layer, call):
    kernel = tuple(int(d) for d in layer.kernel.shape)
    # kernel: (*spatial, filters, input channels); every input element
    # meets a full kernel slice.
    return call.input_size * math.prod(kernel[:-1]), _activation(
        layer.activation, call.output_size)


for _cls in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D):
    _RULES[_cls] = _conv_rule
for _cls in (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D):
    _RULES[_cls] = _depthwise_rule
for _cls in (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D):
    _RULES[_cls] = _separable_rule
for _cls in (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
             keras.layers.Conv3DTranspose):
    _RULES[_cls] = _transposed_rule


@register_rule(keras.layers.BatchNormalization)
def _batch_norm(layer, call):
    return 0, 2 * call.output_size  # x * scale + offset


@register_rule(keras.layers.Activation)
def _activation_layer(layer, call):
    return 0, _activation(layer.activation, call.output_size)


@register_rule(keras.layers.Softmax)
def _softmax(layer, call):
    return 0, 2 * call.output_size


def _global_pool(layer, call):
    return 0, call.input_size


for _cls in (
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
):
    _RULES[_cls] = _global_pool


def _keras_add(x1, x2):
    """Element-wise cost of `keras.ops.add(x1, x2)` on these shapes.

    On TensorFlow, Keras lowers an add whose second operand squeezes to a
    vector of the first's channel size to a `BiasAdd`, which the TF-graph
    counter (and fvcore) does not count; any other add is 1 per element.
    """
    squeezed = [d for d in x2 if d > 1]
    if len(x1) > 1 and len(squeezed) == 1 and squeezed[0] in (x1[1], x1[-1]):
        return 0
    return math.prod(np.broadcast_shapes(tuple(x1), tuple(x2)))


@register_rule(keras.layers.Add)
def _add(layer, call):
    # output = inputs[0]; then output = ops.add(output, x) for each other.
    shape, total = call.inputs[0], 0
    for x in call.inputs[1:]:
        total += _keras_add(shape, x)
        shape = np.broadcast_shapes(tuple(shape), tuple(x))
    return 0, total


@register_rule(keras.layers.Average)
def _average(layer, call):
    return 0, _add(layer, call)[1] + call.output_size  # and a division


def _merge(layer, call):
    # n inputs: n - 1 binary ops per output element.
    return 0, (len(call.inputs) - 1) * call.output_size


for _cls in (keras.layers.Subtract, keras.layers.Multiply):
    _RULES[_cls] = _merge


@register_rule(keras.layers.MultiHeadAttention)
def _multi_head_attention(layer, call):
    # The projections are EinsumDense sub-layers; the layer itself does the
    # two attention einsums, the scaling of the scores and their softmax.
    batch, targets = call.outputs[0][0], call.outputs[0][1]
    value = call.kwargs_shapes.get("value", call.kwargs_shapes.get(1))
    scores = batch * layer.num_heads * targets * math.prod(value[1:-1])
    macs = scores * (layer.key_dim + (layer.value_dim or layer.key_dim))
    return macs, 3 * scores


_LAYER_NORM_COST = {
    # (center, scale) -> (per element, per normalized row), as Keras'
    # `ops.layer_normalization` lowers on TensorFlow: moments (2 per
    # element), then the scale and the shift.
    (True, True): (7, 1),
    (True, False): (5, 2),
    (False, True): (6, 1),
    (False, False): (4, 2),
}


@register_rule(keras.layers.LayerNormalization)
def _layer_norm(layer, call):
    if layer.rms_scaling:
        raise ValueError(
            f"Cannot count FLOPs of layer {layer.name!r}: LayerNormalization "
            "with rms_scaling=True has no rule."
        )
    per_element, per_row = _LAYER_NORM_COST[(layer.center, layer.scale)]
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [
        layer.axis]
    row = math.prod(call.inputs[0][a] for a in axes)
    return 0, per_element * call.input_size + (
        per_row * call.input_size // row)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

_ACTIVATION_COST = {
    "linear": 0, "relu": 0, "relu6": 0, "leaky_relu": 0, "elu": 0,
    "gelu": 1, "gelu_approximate": 1, "_gelu_approximate": 1,
    "sigmoid": 1, "tanh": 1, "exponential": 1,
    "silu": 3, "swish": 3, "softmax": 2, "log_softmax": 2,
}


def _activation(activation, size):
    """fvcore element-wise cost of a Keras activation on `size` elements."""
    name = getattr(activation, "__name__", str(activation))
    if name not in _ACTIVATION_COST:
        raise ValueError(
            f"Cannot count FLOPs of activation {name!r}: no rule. Known: "
            f"{sorted(_ACTIVATION_COST)}."
        )
    return _ACTIVATION_COST[name] * size


def _einsum_macs(equation, shapes):
    """Product of the sizes of all distinct indices (one per multiply-add)."""
    equation = re.sub(r"\s+", "", equation)
    inputs = equation.split("->")[0].split(",")
    sizes, ellipsis = {}, []
    for subscript, shape in zip(inputs, shapes):
        if "..." in subscript:
            head, tail = subscript.split("...")
            n_ell = len(shape) - len(head) - len(tail)
            labels = list(head) + [None] * n_ell + list(tail)
            ell = list(shape[len(head): len(head) + n_ell])
            width = max(len(ellipsis), len(ell))
            ellipsis = [1] * (width - len(ellipsis)) + ellipsis
            ell = [1] * (width - len(ell)) + ell
            ellipsis = [max(a, b) for a, b in zip(ellipsis, ell)]
        else:
            labels = list(subscript)
        for label, dim in zip(labels, shape):
            if label is not None:
                sizes[label] = max(sizes.get(label, 1), int(dim))
    return math.prod(sizes.values()) * math.prod(ellipsis)


# --------------------------------------------------------------------------
# Rules: the zoo's layers (their own arithmetic; sub-layers count apart)
# --------------------------------------------------------------------------


def _pooled_input(x_shape):
    """`global_pool` of `keras_eexit.layers`: a mean/max per input element."""
    return math.prod(x_shape) if len(x_shape) > 2 else 0


def _weight_shape(variable):
    return tuple(int(d) for d in variable.shape)


_CONSTANT_OUTPUT = ()
"""Layer types whose output does not depend on their input's values."""

_KERAS_HUB = "keras_hub.src.layers.modeling."
"""keras-hub layers are named, not imported (keras-hub is optional)."""


def _register_zoo_rules():
    global _CONSTANT_OUTPUT
    from keras_eexit import layers as zoo

    _CONSTANT_OUTPUT = (zoo.TokenTypeIds,)

    @register_rule(zoo.LinearHead)
    @register_rule(zoo.MLPHead)
    def _pooling_head(layer, call):
        return 0, _pooled_input(call.inputs[0])

    @register_rule(zoo.SDNPoolHead)
    def _sdn_pool_head(layer, call):
        # alpha * max_pool(x) + (1 - alpha) * avg_pool(x): two products
        # and a sum per pooled element (1 - alpha is a parameter op).
        if layer.max_pool is None:
            return 0, 0
        return 0, 3 * call.last_call_of(layer.max_pool).output_size

    @register_rule(zoo.ConvPoolHead)
    def _conv_pool_head(layer, call):
        if layer.conv is None or layer.flatten_layer is not None:
            return 0, 0
        pooled = layer.pool_2 or layer.conv_activation  # then a global mean
        return 0, call.last_call_of(pooled).output_size

    @register_rule(zoo.ZTWHead)
    def _ztw_head(layer, call):
        logits = call.outputs[0]
        classes = math.prod(logits)
        macs, elementwise = 0, 0
        if layer.cascade:
            elementwise += classes  # raw + cascade(previous)
        if layer.ensemble:
            # log-softmax of each member, then their weighted sum as a
            # (classes x members) @ (members x 1) product.
            members = layer.num_members
            macs += members * classes
            elementwise += 2 * members * classes
        return macs, elementwise

    @register_rule(zoo.GPFHead)
    def _gpf_head(layer, call):
        batch, c = call.outputs[0][0], layer.num_classes
        d = call.last_call_of(layer.head).outputs[0][-1]
        k, n = layer.position, layer.num_exits
        # Imitators (n - k of them, d x d), the reduction of all n slots and
        # the gate of the k past ones (d x c each); biases add to einsums.
        macs = batch * ((n - k) * d * d + n * d * c + k * d * c)
        # sum of the past, mean of the gate, sigmoid, balance * past; and
        # with imitators: (1 - balance) * sum of the future, added.
        elementwise = 2 * batch * k * c + 2 * batch * c
        if n > k:
            elementwise += batch * (n - k) * c + 3 * batch * c
        return macs, elementwise

    @register_rule(zoo.MSDNetHead)
    def _msdnet_head(layer, call):
        # relu(norm(conv(pad(x)))) per convolution, then a spatial mean:
        # one per element of the last normalization's output.
        return 0, call.last_call_of(layer.norms[-1]).output_size

    @register_rule(zoo.TransformerBlock)
    def _transformer_block(layer, call):
        tokens = math.prod(call.inputs[0][:-1])
        return 0, 2 * call.input_size + _activation(
            layer.activation, tokens * layer.mlp_dim)

    @register_rule(zoo.AddPositionEmbedding)
    def _add_position(layer, call):
        return 0, _keras_add(call.outputs[0], _weight_shape(layer.position))

    @register_rule(zoo.TokenPaddingMask)
    def _not_equal(layer, call):
        return 0, call.input_size

    @register_rule(zoo.TextEncoderLayer)
    @register_rule(_KERAS_HUB + "transformer_encoder.TransformerEncoder")
    def _two_residual_adds(layer, call):
        return 0, 2 * call.output_size

    @register_rule(zoo.TextEmbedding)
    def _text_embedding(layer, call):
        # ops.add(ops.add(tokens, positions[None]), segment)
        out = call.outputs[0]
        return 0, _keras_add(out, (1,) + tuple(out[1:])) + _keras_add(
            out, _weight_shape(layer.segment_embedding))

    @register_rule(_KERAS_HUB + "position_embedding.PositionEmbedding")
    def _position_embedding(layer, call):
        return 0, 0  # a slice of the table, broadcast

    @register_rule(zoo.ZeroPadShortcut)
    @register_rule(zoo.TokenTypeIds)
    @register_rule(zoo.ClsHead)
    def _free_zoo(layer, call):
        return 0, 0


_register_zoo_rules()


def _register_resize_rule():
    from keras_eexit.layers import AlignedBilinearResize

    @register_rule(AlignedBilinearResize)
    def _aligned_resize(layer, call):
        # Per resized axis: a + (b - a) * frac, 3 per element it outputs.
        batch, height, width, channels = call.inputs[0]
        total = 0
        if height != layer.height:
            height = layer.height
            total += 3 * batch * height * width * channels
        if width != layer.width:
            total += 3 * batch * height * layer.width * channels
        return 0, total


_register_resize_rule()
