"""Analytic FLOP and parameter counts read from the TensorFlow graph.

Two conventions are offered (`count_flops(..., convention=...)`):
`"keras_eexit"` (the default, described first) and `"fvcore"`, the count of
Kubaty et al.'s reference code, so that figures can be put next to the
paper's (see "The fvcore convention" below).

Convention
----------
`count_flops` counts **2 FLOPs per multiply-add** of the dense linear ops and
nothing else. This is the multiply-add ("MAC") convention of the early-exit
literature (MSDNet, SDN, Kubaty et al.'s "Strategies at a glance" benchmark,
fvcore/ptflops-style counters) multiplied by two, so that one MAC = 2 FLOPs
(the convention of the TF profiler for the same ops):

* counted: `Conv2D`, `Conv3D`, the generic `Conv` op, `DepthwiseConv2dNative`,
  the transposed convolutions (`Conv2DBackpropInput`,
  `Conv3DBackpropInputV2`, `DepthwiseConv2dNativeBackpropInput`), `MatMul`,
  `BatchMatMul`/`BatchMatMulV2`/`BatchMatMulV3` and `Einsum` (plus the grappler
  fused forms `_FusedConv2D`/`_FusedMatMul`, counted without their fused
  epilogue).
* **not** counted: bias additions, batch normalization, activations,
  softmax, pooling, padding, reshapes and every other element-wise op.
  On convolution/dense-dominated networks these are a few percent of the
  total (see `profiler_flops`, which does count them).

Keras lowers `Conv1D` to `Conv2D` on `ExpandDims`-ed tensors and
`SeparableConv2D` to a depthwise plus a pointwise convolution; both are
handled through the underlying ops.

Per op, with output tensor `y` and kernel `w`:

* convolution (`Conv2D`, `Conv3D`, `Conv`): `2 * |y| * prod(w.shape[:-1])`
  (kernel spatial size times input channels per group);
* depthwise convolution: `2 * |y| * kh * kw`;
* transposed convolution: `2 * |x| * prod(w.shape[:-1])` where `x` is the
  layer input (`out_backprop`) — every input element is multiplied by a full
  `kh * kw * out_channels` kernel slice;
* `MatMul` / `BatchMatMul*`: `2 * |y| * k` with `k` the contracted size
  (`transpose_a` / `adj_x` respected; broadcast batch dimensions are in `|y|`);
* `Einsum` with two operands: `2 * prod(size of every distinct index)` — the
  standard contraction cost (ellipsis dimensions broadcast and included). A
  one-operand `Einsum` is a transpose/reduction and counts 0.

Control flow
------------
Function calls (`PartitionedCall`, `StatefulPartitionedCall`, direct calls of
library functions) are followed into their bodies. A conditional (`If`,
`StatelessIf`, `Case`, `StatelessCase`) counts the **maximum** over its
branches: the cost of the worst path, which is the figure an early-exit cost
table needs for a stage (count the stages separately for per-exit costs). A
loop (`While`, `StatelessWhile`) counts `trips * body + (trips + 1) * cond`,
where `trips` is the loop's `maximum_iterations` when it folds to a constant
(exact for Keras RNN layers, whose loops run exactly that many steps; an upper
bound for a `tf.while_loop` that may stop early) or else the `while_iterations`
argument; without either a `ValueError` is raised.

The fvcore convention
---------------------
Kubaty et al.'s benchmark (kamadforge/early-exit-benchmark, `utils.py`
`flop_count` and `OP_HANDLERS`, used by `eval.py` `benchmark_earlyexiting`)
counts with fvcore's `FlopCountAnalysis`, which counts **1 per
multiply-add** and, besides fvcore's default handlers, element-wise ops the
reference registers. `convention="fvcore"` maps the TensorFlow graph onto
the PyTorch ops those handlers see:

* convolutions, dense layers, matrix products, einsums: 1 per multiply-add
  (half of this library's count); their bias is part of the PyTorch op and
  not counted (`BiasAdd`, and an `Add` of a parameter right after such an
  op, count 0);
* batch normalization in inference (fvcore `batchnorm_flop_jit`): 2 per
  element (the `Mul` and `Add` that touch activations; the arithmetic on
  the parameters alone counts 0 here and in every rule below);
* `add`, `sub`, `mul`, `div`, `exp`, `sigmoid`, `tanh`, `gelu`, `cumsum`,
  `ne`, `lt`, `argmax`, `one_hot` (reference `OP_HANDLERS`): 1 per output
  element (a GELU is counted once, not per primitive op of its TF form);
* `softmax`, `log_softmax`: 2 per output element;
* `mean`, `sum`, global max pooling (`adaptive_max_pool2d`) and global
  average pooling (`adaptive_avg_pool2d`; `Mean` in TF): 1 per input
  element;
* `topk`, `gather`, `scatter`: 1 per input plus 1 per output element;
  nearest / bilinear resizing: 1 / 4 per output element;
* not counted (no handler in fvcore or the reference): ReLU and its
  variants, max/average pooling with a window, padding, slicing, reshapes,
  concatenation, `neg`, `sqrt`/`rsqrt`/`pow`/`square`, dropout at
  inference.

Known differences (the TF graph has no single op for these): layer
normalization is counted per primitive op (about 8 per element where
fvcore's `layer_norm` handler counts 5), and SiLU/swish as the ops TF 2.21
lowers it to (3 per element, measured; the reference registers only the
in-place `silu_`). On convolution networks (`small_cnn`, `cnn1d`,
`cifar_resnet`) the mapping is exact: `tests/models/test_flops.py` checks
it against the closed form of the PyTorch modules.

Shapes are the graph's static shapes, with the batch size of `input_spec`
(callers use batch 1 for per-sample costs). An op whose relevant shapes are not
fully static raises a `ValueError` naming the op.
"""

import inspect
import math
import numbers
import re

import keras
import numpy as np

from keras_eexit.compat import freeze_concrete_function
from keras_eexit.compat import graph_function
from keras_eexit.compat import silence_deprecation
from keras_eexit.utils.lazy_import import tf
from keras_eexit.utils.validation import invalid_value

__all__ = ["CONVENTIONS", "count_flops", "count_params", "profiler_flops"]

CONVENTIONS = ("keras_eexit", "fvcore")
"""FLOP conventions of `count_flops` (see the module docstring)."""

_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_IF_OPS = ("If", "StatelessIf")
_CASE_OPS = ("Case", "StatelessCase")
_WHILE_OPS = ("While", "StatelessWhile")
_CONV_OPS = ("Conv2D", "Conv3D", "Conv", "_FusedConv2D")
_TRANSPOSED_CONV_OPS = ("Conv2DBackpropInput", "Conv3DBackpropInputV2")
_MATMUL_OPS = ("MatMul", "_FusedMatMul")
_BATCH_MATMUL_OPS = ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def count_flops(fn, input_spec, *, while_iterations=None,
                convention="keras_eexit"):
    """Counts the FLOPs of one forward pass of `fn`.

    Args:
        fn: A Keras layer or model, or any callable taking one argument (a
            tensor, or a tuple/list of tensors such as a multi-scale state).
            Keras layers are called with `training=False`; other callables
            are too when their signature accepts `training` (or `**kwargs`).
        input_spec: A `tf.TensorSpec`, or a tuple/list (possibly nested) of
            them, matching the structure `fn` takes, with fully defined shapes
            including the batch dimension (use batch 1 for per-sample costs).
        while_iterations: Trip count to assume for a `While` loop whose
            `maximum_iterations` is not a graph constant. Unused otherwise.
        convention: `"keras_eexit"` (2 per multiply-add of convolutions,
            matrix products and einsums, nothing else) or `"fvcore"` (1 per
            multiply-add plus the element-wise ops Kubaty et al.'s
            reference code counts with fvcore). See the module docstring.

    Returns:
        The FLOP count (an `int`) in the chosen convention.

    Raises:
        ValueError: if `input_spec` is malformed or does not match `fn`, or
            if an op to count has shapes that are not fully static (the
            message names the op), or a loop's trip count is unknown.
    """
    if while_iterations is not None and (
        isinstance(while_iterations, bool)
        or not isinstance(while_iterations, numbers.Integral)
        or while_iterations < 0
    ):
        raise invalid_value(
            "while_iterations", "None or an integer >= 0", while_iterations
        )
    from keras_eexit.utils.validation import check_choice

    check_choice("convention", convention, CONVENTIONS)
    concrete = _trace(fn, input_spec)
    counter = _GraphCounter(concrete.graph, while_iterations, convention)
    return int(counter.count(concrete.graph))


def count_params(layer):
    """Number of weights of a built Keras layer or model.

    Follows the literature (MSDNet, SDN and the early-exit benchmarks report
    every weight of the network): trainable **and** non-trainable weights are
    counted, so batch-normalization moving statistics are included. This is
    `layer.count_params()`.

    Raises:
        ValueError: if `layer` is not a Keras layer, or is not built yet.
    """
    if not isinstance(layer, keras.layers.Layer):
        raise invalid_value("layer", "a Keras layer or model", layer)
    if not layer.built:
        raise ValueError(
            f"Layer {layer.name!r} is not built yet, so it has no weights to "
            "count. Call it on an input (or call `build()`) first."
        )
    return int(layer.count_params())


def profiler_flops(fn, input_spec):
    """FLOPs of `fn` according to the TF profiler (a cross-check).

    The concrete function is frozen with `convert_variables_to_constants_v2`,
    which inlines function calls (and lowers `If`/`While` to `Switch`/`Merge`,
    so loop bodies are counted once and both branches of a conditional are
    counted). Its `GraphDef` is imported into a fresh `tf.Graph`, where shape
    inference re-runs with the batch size of `input_spec`, and profiled with
    `ProfileOptionBuilder.float_operation()`.

    The profiler uses 2 FLOPs per multiply-add too, but it also counts bias
    additions, batch-norm arithmetic, element-wise ops and pooling. Measured
    on TF 2.21: it agrees with `count_flops` exactly on a bias-free
    convolution/dense network and is ~3% higher on MobileNetV2 (12,603,584
    vs 12,224,256 at 32x32; 615.3M vs 601.5M at 224x224 with the top). It
    does not count `Einsum` (attention scores), skips grouped `Conv2D`
    (`groups > 1`) entirely, and estimates a transposed convolution as
    `2 * |output| * kh * kw * in_ch / stride**2` (equal to `count_flops`
    with "same" padding, larger with "valid"). Loop bodies (RNNs) have
    incomplete shapes after lowering and are mostly not counted.

    Args:
        fn: As for `count_flops`.
        input_spec: As for `count_flops`.

    Returns:
        `total_float_ops` of the profile (an `int`).
    """
    concrete = _trace(fn, input_spec)
    frozen = freeze_concrete_function(concrete)
    graph_def = frozen.graph.as_graph_def()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = (
        builder(builder.float_operation()).with_empty_output().build()
    )
    # The v1 profiler logs deprecation notices; they are noise here.
    with silence_deprecation():
        profile = tf.compat.v1.profiler.profile(graph, options=options)
    return int(profile.total_float_ops)


# --------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------


def _accepts_training(fn):
    if isinstance(fn, keras.layers.Layer):
        # Layer.__call__ forwards `training` only when `call` accepts it.
        return True
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "training" or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )


def _check_input_spec(input_spec):
    leaves = tf.nest.flatten(input_spec)
    if not leaves:
        raise invalid_value(
            "input_spec", "a tf.TensorSpec or a tuple/list of them", input_spec
        )
    for leaf in leaves:
        if not isinstance(leaf, tf.TensorSpec):
            raise invalid_value(
                "input_spec",
                "a tf.TensorSpec or a (nested) tuple/list of tf.TensorSpec",
                input_spec,
            )
        if not leaf.shape.is_fully_defined():
            raise invalid_value(
                "input_spec",
                "tf.TensorSpec(s) with fully defined shapes, batch dimension "
                "included (e.g. batch 1 for per-sample FLOPs)",
                input_spec,
            )


def _trace(fn, input_spec):
    """Traces `fn` on `input_spec` to a concrete function."""
    if not callable(fn):
        raise invalid_value("fn", "a Keras layer/model or a callable", fn)
    _check_input_spec(input_spec)
    if _accepts_training(fn):

        def call(x):
            return fn(x, training=False)

    else:

        def call(x):
            return fn(x)

    try:
        return tf.function(call, autograph=False).get_concrete_function(
            input_spec
        )
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(
            f"Could not trace {_describe(fn)} on input_spec={input_spec!r}; "
            "check that `input_spec` has the structure and shapes it "
            f"accepts. Original error: {error}"
        ) from error


def _describe(fn):
    name = getattr(fn, "name", None) or getattr(fn, "__name__", None)
    return f"{type(fn).__name__} {name!r}" if name else repr(fn)


# --------------------------------------------------------------------------
# Graph walk
# --------------------------------------------------------------------------


class _GraphCounter:
    """Sums FLOPs over a graph and every function body it reaches."""

    def __init__(self, root_graph, while_iterations,
                 convention="keras_eexit"):
        self._root = root_graph
        self._while_iterations = while_iterations
        self._fvcore = convention == "fvcore"
        self._memo = {}  # function name -> FLOPs of its body
        self._active = set()  # guards against (impossible) recursion

    def count(self, graph):
        total = 0
        ops = _live_ops(graph)
        data = _data_dependent(graph) if self._fvcore else None
        for op in ops:
            total += self._op_flops(op, data)
        return total

    # -- function library ------------------------------------------------

    def _function_graph(self, name, graph):
        found = graph_function(graph, name)
        return found if found is not None else graph_function(self._root,
                                                               name)

    def _function_flops(self, name, graph, op):
        if name in self._memo:
            return self._memo[name]
        body = self._function_graph(name, graph)
        if body is None:
            raise ValueError(
                f"Cannot count FLOPs of op {op.name!r} ({op.type}): function "
                f"{name!r} is not in the graph's function library."
            )
        if name in self._active:
            raise ValueError(
                f"Cannot count FLOPs of op {op.name!r}: function {name!r} "
                "calls itself."
            )
        self._active.add(name)
        try:
            flops = self.count(body)
        finally:
            self._active.discard(name)
        self._memo[name] = flops
        return flops

    # -- per op ------------------------------------------------------------

    def _op_flops(self, op, data=None):
        kind = op.type
        graph = op.graph
        if kind in _CALL_OPS:
            return self._function_flops(op.get_attr("f").name, graph, op)
        if kind in _IF_OPS:
            return max(
                self._function_flops(op.get_attr(b).name, graph, op)
                for b in ("then_branch", "else_branch")
            )
        if kind in _CASE_OPS:
            return max(
                (
                    self._function_flops(f.name, graph, op)
                    for f in op.get_attr("branches")
                ),
                default=0,
            )
        if kind in _WHILE_OPS:
            trips = self._trip_count(op)
            body = self._function_flops(op.get_attr("body").name, graph, op)
            cond = self._function_flops(op.get_attr("cond").name, graph, op)
            return trips * body + (trips + 1) * cond
        rule = _RULES.get(kind)
        if self._fvcore:
            if rule is not None:
                return rule(op) // 2  # 1 per multiply-add
            return _fvcore_elementwise(op, data)
        if rule is not None:
            return rule(op)
        if self._function_graph(kind, graph) is not None:
            # Legacy direct call: the op type is the function's name.
            return self._function_flops(kind, graph, op)
        return 0

    def _trip_count(self, op):
        # While v2 inputs: (loop_counter, maximum_iterations, *loop_vars).
        maximum = _static_int(op.inputs[1]) if len(op.inputs) > 1 else None
        if maximum is not None and maximum >= 0:
            return maximum
        if self._while_iterations is not None:
            return int(self._while_iterations)
        raise ValueError(
            f"Cannot count FLOPs of loop {op.name!r} ({op.type}): its trip "
            "count (maximum_iterations) is not a graph constant. Pass "
            "`while_iterations=` to count_flops."
        )


def _live_ops(graph):
    """The ops of `graph` that its outputs or control outputs depend on.

    A function body is pruned to these when it runs, so dead ops (e.g. the
    first RNN step Keras traces outside its loop only to infer shapes) cost
    nothing and are not counted. A plain `tf.Graph` has no outputs: all ops.
    """
    outputs = list(getattr(graph, "outputs", None) or [])
    control = list(getattr(graph, "control_outputs", None) or [])
    if not outputs and not control:
        return graph.get_operations()
    live = set()
    stack = [t.op for t in outputs] + control
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in live]


def _static_int(tensor):
    """The value of a scalar integer tensor if it folds to a constant."""
    value = tf.get_static_value(tensor)
    if value is None:
        value = _fold_constant(tensor)
    if value is None or np.ndim(value) != 0:
        return None
    return int(value)


_STATEFUL_OR_INPUT = {
    "Placeholder",
    "PlaceholderWithDefault",
    "ReadVariableOp",
    "VarHandleOp",
    "VariableV2",
}


def _fold_constant(tensor, max_ops=64):
    """Evaluates `tensor` if it depends on constants only (e.g. Max(Range))."""
    seen, stack = {}, [tensor.op]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        if (
            op.type in _STATEFUL_OR_INPUT
            or op.type in _CALL_OPS
            or op.op_def.is_stateful
            or len(seen) >= max_ops
        ):
            return None
        seen[op.name] = op
        stack.extend(t.op for t in op.inputs)
        if op.control_inputs:
            return None
    graph_def = tf.compat.v1.GraphDef()
    source = tensor.graph.as_graph_def()
    graph_def.node.extend(n for n in source.node if n.name in seen)
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return session.run(tensor.name)
    except (ValueError, TypeError, tf.errors.OpError):
        return None


# -- op rules ----------------------------------------------------------------


def _static_dims(tensor, op, role):
    shape = tensor.shape
    if shape.rank is None or not shape.is_fully_defined():
        raise ValueError(
            f"Cannot count FLOPs of op {op.name!r} ({op.type}): the {role} "
            f"has shape {shape}, which is not fully static. Give `input_spec` "
            "fully defined shapes; a tf.function nested inside the model must "
            "be traced with static shapes too."
        )
    return [int(d) for d in shape]


def _conv_flops(op):
    out = _static_dims(op.outputs[0], op, "output")
    kernel = _static_dims(op.inputs[1], op, "kernel")
    return 2 * math.prod(out) * math.prod(kernel[:-1])


def _depthwise_flops(op):
    out = _static_dims(op.outputs[0], op, "output")
    kernel = _static_dims(op.inputs[1], op, "kernel")
    return 2 * math.prod(out) * math.prod(kernel[:2])


def _transposed_conv_flops(op):
    # inputs: (input_sizes, filter [*spatial, out_ch, in_ch], out_backprop)
    x = _static_dims(op.inputs[2], op, "input (out_backprop)")
    kernel = _static_dims(op.inputs[1], op, "kernel")
    return 2 * math.prod(x) * math.prod(kernel[:-1])


def _depthwise_transposed_flops(op):
    # inputs: (input_sizes, filter [kh, kw, ch, mult], out_backprop)
    x = _static_dims(op.inputs[2], op, "input (out_backprop)")
    kernel = _static_dims(op.inputs[1], op, "kernel")
    return 2 * math.prod(x) * math.prod(kernel[:2])


def _matmul_flops(op):
    a = _static_dims(op.inputs[0], op, "first operand")
    out = _static_dims(op.outputs[0], op, "output")
    k = a[0] if op.get_attr("transpose_a") else a[1]
    return 2 * math.prod(out) * k


def _batch_matmul_flops(op):
    a = _static_dims(op.inputs[0], op, "first operand")
    out = _static_dims(op.outputs[0], op, "output")
    k = a[-2] if op.get_attr("adj_x") else a[-1]
    return 2 * math.prod(out) * k


def _einsum_flops(op):
    equation = op.get_attr("equation")
    if isinstance(equation, bytes):
        equation = equation.decode()
    return _einsum_cost(
        equation,
        [
            _static_dims(t, op, f"operand {i}")
            for i, t in enumerate(op.inputs)
        ],
        op_name=op.name,
    )


def _einsum_cost(equation, shapes, op_name="einsum"):
    """2 x the product of the sizes of all distinct indices of `equation`.

    The standard cost of a two-operand contraction (one multiply-add per
    point of the joint index space). Ellipsis dimensions broadcast across
    operands and are included. One operand (transpose/reduction): 0.
    """
    equation = re.sub(r"\s+", "", equation)
    inputs = equation.split("->")[0].split(",")
    if len(inputs) != len(shapes):
        raise ValueError(
            f"Einsum {op_name!r}: equation {equation!r} has {len(inputs)} "
            f"operands but {len(shapes)} shapes were given."
        )
    if len(inputs) < 2:
        return 0
    sizes = {}
    ellipsis = []
    for subscript, shape in zip(inputs, shapes):
        if "..." in subscript:
            head, tail = subscript.split("...")
            n_ell = len(shape) - len(head) - len(tail)
            labels = list(head) + [None] * n_ell + list(tail)
            ell_dims = shape[len(head) : len(head) + n_ell]
            # Broadcast ellipsis dimensions, aligned on the right.
            width = max(len(ellipsis), len(ell_dims))
            ellipsis = [1] * (width - len(ellipsis)) + ellipsis
            padded = [1] * (width - len(ell_dims)) + list(ell_dims)
            ellipsis = [max(a, b) for a, b in zip(ellipsis, padded)]
        else:
            labels = list(subscript)
        if len(labels) != len(shape):
            raise ValueError(
                f"Einsum {op_name!r}: subscript {subscript!r} does not match "
                f"operand shape {shape}."
            )
        for label, dim in zip(labels, shape):
            if label is not None:
                sizes[label] = max(sizes.get(label, 1), dim)
    return 2 * math.prod(sizes.values()) * math.prod(ellipsis)


_RULES = {
    **{kind: _conv_flops for kind in _CONV_OPS},
    "DepthwiseConv2dNative": _depthwise_flops,
    **{kind: _transposed_conv_flops for kind in _TRANSPOSED_CONV_OPS},
    "DepthwiseConv2dNativeBackpropInput": _depthwise_transposed_flops,
    **{kind: _matmul_flops for kind in _MATMUL_OPS},
    **{kind: _batch_matmul_flops for kind in _BATCH_MATMUL_OPS},
    "Einsum": _einsum_flops,
}


# -- the fvcore convention (Kubaty et al.'s reference) -------------------------

# TF op -> (per input element, per output element), for ops that touch
# activations (data-dependent). Mirrors fvcore's default handlers and the
# `OP_HANDLERS` of kamadforge/early-exit-benchmark `utils.py`.
_FVCORE_ELEMENTWISE = {
    **{kind: (0, 1) for kind in (
        "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "DivNoNan",
        "Exp", "Sigmoid", "Tanh", "Cumsum", "NotEqual", "Less", "ArgMax",
        "OneHot", "ResizeNearestNeighbor")},
    "Softmax": (0, 2),
    "LogSoftmax": (0, 2),
    "Mean": (1, 0),
    "Sum": (1, 0),
    "Max": (1, 0),
    "TopKV2": (1, 1),
    "ResizeBilinear": (0, 4),
    "FusedBatchNorm": (0, 2),
    "FusedBatchNormV2": (0, 2),
    "FusedBatchNormV3": (0, 2),
}
_MAC_OPS = frozenset(_RULES)
_PASS_THROUGH = frozenset(("Reshape", "Identity", "Cast", "ExpandDims",
                           "Squeeze"))
_GELU_SCOPE = re.compile(r"(?:^|/)Gelu(?:_\d+)?/")


def _data_dependent(graph):
    """Names of the ops of `graph` that depend on its data inputs.

    Data inputs are the non-resource placeholders (a function graph's
    captured variables are resource placeholders). Ops computed from
    parameters alone (a batch norm's `gamma / sqrt(var + eps)`) happen once
    per forward pass, inside the fused op in PyTorch, and count 0.
    """
    data = set()
    for op in graph.get_operations():
        if op.type == "Placeholder":
            if op.outputs and op.outputs[0].dtype != tf.resource:
                data.add(op.name)
        elif any(t.op.name in data for t in op.inputs):
            data.add(op.name)
    return data


def _producer(tensor):
    op = tensor.op
    while op.type in _PASS_THROUGH and op.inputs:
        op = op.inputs[0].op
    return op


def _is_bias_add(op, data):
    """An add of parameters to a convolution's or matmul's output."""
    if op.type == "BiasAdd":
        return True
    if op.type not in ("Add", "AddV2") or len(op.inputs) != 2:
        return False
    first, second = op.inputs
    for x, b in ((first, second), (second, first)):
        if b.op.name not in data and _producer(x).type in _MAC_OPS:
            return True
    return False


def _elements(tensor, op, role):
    return math.prod(_static_dims(tensor, op, role))


def _fvcore_elementwise(op, data):
    if op.name not in data or _is_bias_add(op, data):
        return 0
    gelu = _GELU_SCOPE.search(op.name)
    if gelu is not None:
        # One `gelu` per element: count the op that leaves the scope.
        scope = op.name[:gelu.end()]
        inside = any(c.name.startswith(scope) for t in op.outputs
                     for c in t.consumers())
        return 0 if inside or not op.outputs else _elements(
            op.outputs[0], op, "output")
    scales = _FVCORE_ELEMENTWISE.get(op.type)
    if scales is None:
        return 0
    per_input, per_output = scales
    total = 0
    if per_input:
        total += per_input * _elements(op.inputs[0], op, "input")
    if per_output:
        total += per_output * _elements(op.outputs[0], op, "output")
    return total
