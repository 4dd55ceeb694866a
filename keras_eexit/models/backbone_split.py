"""Cutting a functional Keras model into a chain of segments at tap layers."""

import difflib

import keras

from keras_eexit.utils.validation import invalid_value
from keras_eexit.compat import is_functional
from keras_eexit.compat import nodes_by_depth


def _as_functional(backbone):
    """Returns a functional view of `backbone` (Sequential models included)."""
    if isinstance(backbone, keras.Sequential):
        if not backbone.built or not backbone.inputs:
            raise ValueError(
                "A Sequential backbone must be built with a known input "
                "shape (start it with `keras.Input(shape)`)."
            )
        inputs = keras.Input(
            shape=backbone.inputs[0].shape[1:], dtype=backbone.inputs[0].dtype
        )
        x = inputs
        for layer in backbone.layers:
            x = layer(x)
        return keras.Model(inputs, x, name=backbone.name)
    if not is_functional(backbone):
        raise invalid_value(
            "backbone",
            "a functional keras.Model or a built keras.Sequential (a "
            "subclassed model has no graph to cut; build a MultiExitModel "
            "from segments and heads instead)",
            type(backbone).__name__,
        )
    return backbone


def _ordered_nodes(model):
    """The model's operation nodes, inputs first (topological order)."""
    nodes = []
    graph = nodes_by_depth(model)
    for depth in sorted(graph, reverse=True):
        for node in graph[depth]:
            if node.operation is not None and not node.is_input:
                nodes.append(node)
    return nodes


def _tap_node(model, name, nodes):
    names = [layer.name for layer in model.layers]
    if name not in names:
        near = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        raise ValueError(
            f"Tap layer {name!r} not found in backbone {model.name!r}. "
            f"Near names: {near or names[:10]}."
        )
    layer = model.get_layer(name)
    hits = [n for n in nodes if n.operation is layer]
    if len(hits) != 1 or len(hits[0].outputs) != 1:
        raise ValueError(
            f"Tap layer {name!r} must be called once in the backbone and "
            "return one tensor, so that the exit position is unambiguous."
        )
    return hits[0]


def _ancestors(tensor, producer):
    """Ids of the nodes that `tensor` depends on (its producer included)."""
    seen, stack = set(), [tensor]
    while stack:
        node = producer.get(id(stack.pop()))
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.input_tensors)
    return seen


def split_backbone(backbone, taps):
    """Cuts a functional model after each tap layer.

    Each piece becomes a functional `keras.Model` that reuses the
    backbone's layers (weights are shared, not copied). The state passed
    from one piece to the next is the tap's output, followed by any other
    tensor that later layers still need (skip connections that cross the
    cut), so any cut position works.

    Args:
        backbone: a functional `keras.Model` (or built `Sequential`) with one
            input and one output.
        taps: names of layers after which to cut, in forward order.

    Returns:
        A list of `len(taps) + 1` segment models.

    Example:

    ```python
    resnet = keras.applications.ResNet50(weights=None, include_top=False)
    segments = split_backbone(resnet, ["conv2_block3_out",
                                       "conv3_block4_out"])
    ```
    """
    model = _as_functional(backbone)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise invalid_value(
            "backbone",
            "a model with one input and one output",
            f"{len(model.inputs)} inputs, {len(model.outputs)} outputs",
        )
    if isinstance(taps, str) or not list(taps):
        raise invalid_value("taps", "a non-empty list of layer names", taps)
    taps = list(taps)
    if len(set(taps)) != len(taps):
        raise invalid_value("taps", "distinct layer names", taps)
    nodes = _ordered_nodes(model)
    producer = {id(t): n for n in nodes for t in n.outputs}
    output = model.outputs[0]
    cut_tensors = []
    for name in taps:
        node = _tap_node(model, name, nodes)
        if node.outputs[0] is output:
            raise ValueError(
                f"Tap layer {name!r} is the backbone's output, which already "
                "gets the final exit; tap an earlier layer."
            )
        cut_tensors.append(node.outputs[0])
    cut_tensors.append(output)

    ancestry = [_ancestors(t, producer) for t in cut_tensors]
    for k in range(1, len(taps)):
        if id(producer[id(cut_tensors[k - 1])]) not in ancestry[k]:
            raise ValueError(
                f"Taps must be in forward order along the path to the "
                f"output: {taps[k]!r} does not come after {taps[k - 1]!r}. "
                f"Received: taps={taps}."
            )
    for name, tensor in zip(taps, cut_tensors):
        if id(producer[id(tensor)]) not in ancestry[-1]:
            raise ValueError(
                f"Tap layer {name!r} is not on the path to the backbone's "
                "output."
            )

    stage_of = {}
    for k, anc in enumerate(ancestry):
        for node_id in anc:
            stage_of.setdefault(node_id, k)
    # Tensors each stage must hand on: produced at or before it, used after.
    stage_of_tensor = {id(model.inputs[0]): -1}
    for node in nodes:
        for t in node.outputs:
            stage_of_tensor[id(t)] = stage_of.get(id(node))
    states = []
    for k, tap in enumerate(cut_tensors):
        carried = [tap]
        for node in nodes:
            if stage_of.get(id(node), -2) <= k:
                continue
            for t in node.input_tensors:
                src = stage_of_tensor.get(id(t))
                if src is not None and src <= k and all(
                    t is not c for c in carried
                ):
                    carried.append(t)
        states.append(carried)

    segments, previous = [], [model.inputs[0]]
    for k, state in enumerate(states):
        segment_nodes = [n for n in nodes if stage_of.get(id(n)) == k]
        segments.append(_rebuild(segment_nodes, previous, state, k + 1))
        previous = state
    return segments


def _rebuild(nodes, inputs, outputs, index):
    """A functional model replaying `nodes` from `inputs` to `outputs`."""
    new_inputs = [
        keras.Input(
            shape=t.shape[1:], dtype=t.dtype, name=f"segment_{index}_in_{i}"
        )
        for i, t in enumerate(inputs)
    ]
    tensors = {id(t): n for t, n in zip(inputs, new_inputs)}
    for node in nodes:
        args, kwargs = node.arguments.fill_in(tensors)
        result = node.operation(*args, **kwargs)
        for old, new in zip(node.outputs, keras.tree.flatten(result)):
            tensors[id(old)] = new
    new_outputs = [tensors[id(t)] for t in outputs]
    return keras.Model(
        new_inputs[0] if len(new_inputs) == 1 else new_inputs,
        new_outputs[0] if len(new_outputs) == 1 else new_outputs,
        name=f"segment_{index}",
    )
