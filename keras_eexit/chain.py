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
run changes `run_stage` only.

Heads that read earlier exits (ZTW's cascade and ensemble, GPF's past
states) declare `reads_exits = True`. Such a head is called with
`(features, exits)`, where `exits` is a tuple with one *carry* per earlier
exit, and returns `(logits, carry)`; a plain head's carry is its logits.
For a model with such a head, the state `run_stage` returns is a dict
`{"state": segment state, "exits": (carry_1, ..., carry_k)}` (the *exit
memory*) and stage 0 takes the raw input; so every consumer that passes
states from stage to stage (the model's call, the Fisher pass, batched
early exit and its row compaction, export) carries the memory without
knowing it. Models without such heads keep plain states.

Numbering: functions here take 0-based *positions* (`index`), like the
lists `model.segments` and `model.heads`. Public arguments that name exits
for a user (regime phases, objective terms, the Fisher, static exits) take
exit *numbers* 1..K, as in the output names `exit_1`..`exit_K` and the
papers.
"""

import keras

from keras_eexit.compat import trainable_parameters


STATE = "state"
EXITS = "exits"


def reads_exits(head):
    """Whether `head` reads earlier exits (and returns a carry).

    Args:
        head: an exit head layer (any object).

    Returns:
        `True` for heads exposing `reads_exits = True`.
    """
    return getattr(head, "reads_exits", False) is True


def has_exit_memory(model):
    """Whether the model's states carry an exit memory (see module doc)."""
    return any(reads_exits(h) for h in model.heads)


def _is_memory_state(state):
    return isinstance(state, dict) and set(state) == {STATE, EXITS}


def segment_state(state):
    """The segments' part of a state: the state without its exit memory.

    Args:
        state: a state as `run_stage` returns it (or the model's input).

    Returns:
        `state["state"]` for a state with an exit memory, else `state`.
    """
    return state[STATE] if _is_memory_state(state) else state


def exit_memory(model, state):
    """The carries of the exits run so far (`None` without a memory).

    Args:
        model: a `MultiExitModel`.
        state: a state as `run_stage` returns it, or the model's input.

    Returns:
        A tuple of carries (empty for the input) when the model has heads
        that read earlier exits, else `None`.
    """
    if not has_exit_memory(model):
        return None
    return tuple(state[EXITS]) if _is_memory_state(state) else ()


def head_input(state):
    """The tensor a head reads from a state: the first tensor of a tuple.

    Args:
        state: a tensor, or a list/tuple of tensors (multi-scale networks,
            skip connections crossing a cut, `(hidden, mask)` of a text
            encoder), possibly with an exit memory (see module doc).

    Returns:
        `state[0]` for a list or tuple, else `state` (the exit memory set
        aside).
    """
    state = segment_state(state)
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

    The states as `run_stage` returns them: with the exit memory for
    models whose heads read earlier exits.

    Args:
        model: a built `MultiExitModel`.
        batch_size: the batch axis (`None`: unknown).

    Returns:
        A list of `num_exits` states (a `KerasTensor` or a structure of
        them).
    """
    state = input_spec(model, batch_size)
    if not has_exit_memory(model):
        specs = []
        for segment in model.segments:
            state = segment.compute_output_spec(state)
            specs.append(state)
        return specs
    specs = []
    for index in range(model.num_exits):
        state, _ = run_stage(model, index, state, call=_spec_call)
        specs.append(state)
    return specs


def head_call_specs(model, batch_size=None):
    """What every head is called with, as `KerasTensor` structures.

    For FLOP counting and tracing: a head's input tensor, or
    `(features, exits)` for a head that reads earlier exits.

    Args:
        model: a built `MultiExitModel`.
        batch_size: the batch axis (`None`: unknown).

    Returns:
        A list of `num_exits` structures.
    """
    calls = []

    def record(layer, inputs, training):
        if any(layer is h for h in model.heads):
            calls.append(inputs)
        return _spec_call(layer, inputs, training)

    state = input_spec(model, batch_size)
    for index in range(model.num_exits):
        state, _ = run_stage(model, index, state, call=record)
    return calls


def _spec_call(layer, inputs, training):
    return layer.compute_output_spec(inputs)


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
        `(state, logits)`: the new state (with the exit memory, for models
        whose heads read earlier exits) and the exit's logits (every unit,
        damping units included; see `class_logits`).
    """
    call = call or _call
    memory = exit_memory(model, state)
    state = call(model.segments[index], segment_state(state), training)
    if memory is None:
        return state, call(model.heads[index], head_input(state), training)
    logits, carry = _run_head(model.heads[index], head_input(state), memory,
                              training, call)
    return {STATE: state, EXITS: memory + (carry,)}, logits


def _run_head(head, features, memory, training, call):
    """`(logits, carry)` of one head, given the carries of earlier exits."""
    if not reads_exits(head):
        logits = call(head, features, training)
        return logits, logits
    logits, carry = call(head, (features, tuple(memory)), training)
    return logits, carry


def run_heads(model, features, training=None, call=None):
    """Every exit's logits from the heads' inputs (stages' features).

    For code that computes the features once and then runs the heads only
    (the feature cache of frozen-backbone phases): heads that read earlier
    exits receive the carries of the heads before them, as in `run_stage`.

    Args:
        model: a `MultiExitModel`.
        features: a list of `num_exits` head inputs (see `head_inputs`).
        training: passed to the heads.
        call: as in `run_stage`.

    Returns:
        A list of `num_exits` logits tensors.
    """
    call = call or _call
    memory, outputs = (), []
    for head, feature in zip(model.heads, features):
        logits, carry = _run_head(head, feature, memory, training, call)
        memory = memory + (carry,)
        outputs.append(logits)
    return outputs


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
