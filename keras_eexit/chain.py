"""The chain of stages: the one API for code that walks a multi-exit model.

A `MultiExitModel` is a chain: stage `i` (0-based position, exit number
`i + 1`) runs `model.segments[i]` on the state left by stage `i - 1` (the
input for stage 0) and reads its exit with `model.heads[i]`:

    x -> segments[0] -> state_0 -> segments[1] -> ... -> state_{K-1}
              |                        |                       |
          heads[0]                 heads[1]                heads[K-1]

Everything that walks the chain (the model's own `call`, the Fisher pass,
the feature cache, analysis callbacks, batched early exit, export) goes
through the functions here, so that the rules "a head reads the first
tensor of a tuple state", "a damping unit is not a class" and "stage `i` is
segment then head" are written once. A method that changes how a stage is
run (a head that reads earlier exits, say) changes `run_stage` only.

Numbering: functions here take 0-based *positions* (`index`), like the
lists `model.segments` and `model.heads`. Public arguments that name exits
for a user (regime phases, objective terms, the Fisher, static exits) take
exit *numbers* 1..K, as in the output names `exit_1`..`exit_K` and the
papers.
"""

import keras

from keras_eexit.compat import trainable_parameters


def head_input(state):
    """The tensor a head reads from a state: the first tensor of a tuple.

    Args:
        state: a tensor, or a list/tuple of tensors (multi-scale networks,
            skip connections crossing a cut, `(hidden, mask)` of a text
            encoder).

    Returns:
        `state[0]` for a list or tuple, else `state`.
    """
    return state[0] if isinstance(state, (list, tuple)) else state


def extra_units(head):
    """How many trailing logits of `head` are not classes.

    A head declares them with `damping = True` (one "no class" unit, see
    `keras_eexit.layers.DampingHead`) or an integer attribute `drop_units`.

    Args:
        head: an exit head layer.

    Returns:
        A non-negative int (0 for plain heads).
    """
    units = getattr(head, "drop_units", None)
    if units is None:
        return 1 if has_damping_unit(head) else 0
    return units


def has_damping_unit(head):
    """Whether `head`'s last logit is a damping ("no class") unit.

    Args:
        head: an exit head layer (any object).

    Returns:
        `True` for heads exposing `damping = True`.
    """
    return getattr(head, "damping", False) is True


def class_logits(head, logits):
    """The logits of the classes: `logits` without `head`'s extra units.

    Args:
        head: the exit head that produced `logits`.
        logits: tensor `(batch, classes + extra units)`.

    Returns:
        `logits[..., :classes]` (the same tensor for plain heads).
    """
    units = extra_units(head)
    if not units:
        return logits
    return logits[..., : logits.shape[-1] - units]


def num_classes_of(head, num_logits):
    """The number of classes of a head that outputs `num_logits` logits."""
    return int(num_logits) - extra_units(head)


def input_spec(model, batch_size=None):
    """A `keras.KerasTensor` describing the model's input.

    Args:
        model: a built `MultiExitModel`.
        batch_size: the batch axis (`None`: unknown).

    Returns:
        A `KerasTensor` of shape `(batch_size,) + input shape`.
    """
    return keras.KerasTensor((batch_size,) + tuple(model.input_shape_),
                             model.input_dtype)


def state_specs(model, batch_size=None):
    """The structure, shapes and dtypes of the state after every stage.

    Args:
        model: a built `MultiExitModel`.
        batch_size: the batch axis (`None`: unknown).

    Returns:
        A list of `num_exits` states (a `KerasTensor` or a list of them).
    """
    state = input_spec(model, batch_size)
    specs = []
    for segment in model.segments:
        state = segment.compute_output_spec(state)
        specs.append(state)
    return specs


def _call(layer, inputs, training):
    return layer(inputs, training=training)


def run_stage(model, index, state, training=None, call=None):
    """Runs stage `index`: its segment on `state`, then its head.

    Args:
        model: a `MultiExitModel`.
        index: 0-based stage position.
        state: the state left by stage `index - 1` (the input for 0).
        training: passed to the layers.
        call: optional `call(layer, inputs, training)` used instead of
            `layer(inputs, training=training)` (export runs frozen copies).

    Returns:
        `(state, logits)`: the new state and the exit's logits (every
        unit, damping units included; see `class_logits`).
    """
    call = call or _call
    state = call(model.segments[index], state, training)
    return state, call(model.heads[index], head_input(state), training)


def run_to_exit(model, x, index, training=None):
    """Logits of exit `index`, running only the stages up to it.

    Args:
        model: a `MultiExitModel`.
        x: a batch of inputs.
        index: 0-based exit position.
        training: passed to the layers.

    Returns:
        The logits of that exit.
    """
    state = x
    logits = None
    for i in range(index + 1):
        state, logits = run_stage(model, i, state, training)
    return logits


def head_inputs(model, x, training=None):
    """What every head reads for a batch `x`: one tensor per exit.

    Args:
        model: a `MultiExitModel`.
        x: a batch of inputs.
        training: passed to the segments.

    Returns:
        A list of `num_exits` tensors.
    """
    state, features = x, []
    for segment in model.segments:
        state = segment(state, training=training)
        features.append(head_input(state))
    return features


def shared_variables(model, upto=None):
    """The trainable parameters of segments 0..upto, frozen or not.

    What EWC protects (Θ_1..Θ_k) and what gradient-dominance measures: the
    backbone's parameters (kernels, biases, normalization scales), not its
    statistics (BatchNorm's moving averages).

    Args:
        model: a `MultiExitModel`.
        upto: last 0-based segment position included (`None`: all).

    Returns:
        A list of variables, in segment order, without duplicates.
    """
    segments = model.segments if upto is None else model.segments[: upto + 1]
    seen, variables = set(), []
    for segment in segments:
        for v in trainable_parameters(segment):
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    return variables
