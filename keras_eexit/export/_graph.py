"""TensorFlow functions traced from a `MultiExitModel` for LiteRT conversion.

Every function takes ONE dict of named tensors and returns a dict of named
tensors, so the LiteRT signature carries those names on both sides.

Weights are baked into the traced graphs as constants (each layer is run
with `stateless_call` on constant copies of its variables). Variables read
inside `tf.cond` branches would otherwise be captured as resource inputs of
the LiteRT `If` op: the converter then either drops their values or hoists
them out of the branch, which breaks int8 calibration of the branch.

Damping heads (an extra "no class" logit, see `class_logits`) are handled
here: their extra units are dropped before the softmax, so exported models
always return probabilities over the real classes.
"""

import contextlib
import inspect

import numpy as np

from keras_eexit import chain
from keras_eexit.compat import flatten_layers
from keras_eexit.inference.compaction import EXIT_INDEX  # noqa: F401 (signature name)
from keras_eexit.inference.compaction import PROBABILITIES
from keras_eexit.inference.compaction import EarlyExitGraph
from keras_eexit.inference.graph_checks import InputChecks
from keras_eexit.inference.graph_checks import flag_invalid
from keras_eexit.utils.validation import invalid_value

INPUT = "input"
THRESHOLDS = "thresholds"
SIGNATURE = "serving_default"
ONE_ROW_SIGNATURE = "one_row"
"""The early-exit file's batch-1 signature (`ChainGraph.one_row_function`)."""


def state_name(i):
    """Signature name of the `i`-th (0-based) tensor of a flattened state."""
    return f"state_{i}"


def drop_units(head, num_logits):
    """How many trailing logits of `head` are not classes, checked.

    See `keras_eexit.chain.extra_units`.

    Args:
        head: the exit head layer.
        num_logits: the width of its output.

    Returns:
        An int in `[0, num_logits - 2]`.
    """
    units = chain.extra_units(head)
    if (
        isinstance(units, bool)
        or not isinstance(units, (int, np.integer))
        or not 0 <= units <= num_logits - 2
    ):
        raise invalid_value(
            "drop_units",
            f"an integer between 0 and {num_logits - 2} on head "
            f"{head.name!r} ({num_logits} logits, at least 2 must remain)",
            units,
        )
    return int(units)


class FrozenLayer:
    """Calls a layer in inference mode with its weights as graph constants.

    Args:
        layer: a built Keras layer or model.
    """

    def __init__(self, layer):
        from keras import ops

        self.layer = layer
        self.trainable = [
            ops.convert_to_numpy(v) for v in layer.trainable_variables
        ]
        self.non_trainable = [
            ops.convert_to_numpy(v) for v in layer.non_trainable_variables
        ]
        parameters = inspect.signature(layer.call).parameters
        self.takes_training = "training" in parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD
            for p in parameters.values()
        )

    def __call__(self, inputs):
        import tensorflow as tf

        trainable = [tf.constant(v) for v in self.trainable]
        non_trainable = [tf.constant(v) for v in self.non_trainable]
        kwargs = {"training": False} if self.takes_training else {}
        outputs, _ = self.layer.stateless_call(
            trainable, non_trainable, inputs, **kwargs
        )
        return outputs


class ChainGraph:
    """The model's chain, ready to be traced into conversion functions.

    Stages run through `keras_eexit.chain.run_stage` with `call=` set to
    the frozen copies, so "segment, then head on the head input" is the
    chain's rule, not this module's.

    Args:
        model: a built `MultiExitModel`.
        input_shape: the input shape without the batch axis.
        criterion: a name of `keras_eexit.criteria.CRITERIA`.
        temperatures: optional per-exit temperatures baked into the
            graphs (logits / T_k before the softmax).
    """

    def __init__(self, model, input_shape, criterion, temperatures=None):
        import keras

        self.model = model
        self.input_shape = tuple(input_shape)
        self.criterion = criterion
        self.dtype = model.input_dtype
        self.temperatures = (None if temperatures is None
                             else [float(t) for t in temperatures])
        self.frozen = {id(layer): FrozenLayer(layer)
                       for layer in list(model.segments) + list(model.heads)}
        self.num_exits = len(model.heads)
        # State structures (batch axis unknown) after each stage, as
        # `chain.run_stage` passes them on (with the exit memory of heads
        # that read earlier exits).
        state = keras.KerasTensor((None,) + self.input_shape, self.dtype)
        self.state_specs = []
        self.drop = []
        self.num_logits = []
        for k, head in enumerate(model.heads):
            state, logits = chain.run_stage(
                model, k, state,
                call=lambda layer, inputs, training: (
                    layer.compute_output_spec(inputs)))
            self.state_specs.append(state)
            self.num_logits.append(int(logits.shape[-1]))
            self.drop.append(drop_units(head, int(logits.shape[-1])))
        classes = {n - d for n, d in zip(self.num_logits, self.drop)}
        if len(classes) != 1:
            raise ValueError(
                "The exits of the model disagree on the number of classes "
                f"({self.num_logits} logits, {self.drop} dropped units): "
                "every exit must predict the same classes to be exported."
            )
        self.num_classes = classes.pop()

    # ----------------------------------------------------------- pieces
    def call(self, layer, inputs, training=None):
        """Runs `layer` frozen (the `call=` of `chain.run_stage`)."""
        return self.frozen[id(layer)](inputs)

    def _stage(self, k, state):
        """Stage `k` frozen: the new state and exit `k`'s probabilities."""
        import tensorflow as tf

        state, logits = chain.run_stage(self.model, k, state, False,
                                        call=self.call)
        logits = tf.cast(chain.class_logits(self.model.heads[k], logits),
                         tf.float32)
        if self.temperatures is not None:
            logits = logits / self.temperatures[k]
        return state, tf.nn.softmax(logits, axis=-1)

    def state_signature(self, k):
        """Name -> `tf.TensorSpec` of the flattened state after segment `k`."""
        import keras
        import tensorflow as tf

        flat = keras.tree.flatten(self.state_specs[k])
        return {
            state_name(i): tf.TensorSpec(
                tuple(t.shape), _float32(t.dtype), name=state_name(i)
            )
            for i, t in enumerate(flat)
        }

    def input_spec(self, batch):
        import tensorflow as tf

        return tf.TensorSpec((batch,) + self.input_shape, self.dtype,
                             name=INPUT)

    # -------------------------------------------------------- functions
    def early_exit_function(self):
        """`{input (batch, ...), thresholds (K,)} -> {probabilities,
        exit_index}`: batched early exit by compaction.

        `keras_eexit.inference.compaction.EarlyExitGraph` on the frozen
        layers: after stage `k` only the rows its exit did not accept are
        gathered into stage `k + 1`, which runs inside a `tf.cond` (a
        LiteRT `If`) taken only when some row remains. Scores are computed
        in float32 (LiteRT built-in kernels have no float64). A row with
        NaN or Inf gets exit index -1 and NaN probabilities; thresholds
        that are not one valid number per exit flag every row
        (`keras_eexit.inference.graph_checks`).
        """
        return self._early_exit(one_row=False)

    def one_row_function(self):
        """`{input (1, ...), thresholds (K,)} -> {probabilities,
        exit_index}`: the same decisions for one sample.

        `EarlyExitGraph.one_row`: nested `tf.cond`s (LiteRT `If`s) on the
        sample's decision, no gather, every shape static, so the graph
        stops at the first exit that accepts the sample with the least
        work per call (the early-exit file's batch-1 signature). An input
        of more rows is flagged (exit index -1), like invalid thresholds
        or a non-finite sample in both signatures.
        """
        return self._early_exit(one_row=True)

    def _early_exit(self, one_row):
        import tensorflow as tf

        graph = EarlyExitGraph(self.model, self.criterion, call=self.call,
                               precision="float32")
        checks = InputChecks(self.criterion, self.num_exits,
                             self.input_shape, self.dtype)
        temperatures = None
        if self.temperatures is not None:
            temperatures = tf.constant(self.temperatures, tf.float32)
        run = graph.one_row if one_row else graph

        def serve(inputs):
            # Invalid rows and calls are flagged, not refused (LiteRT has
            # no assert op): see `graph_checks.flag_invalid`.
            x = inputs[INPUT]
            rows, thresholds = checks.flags(x, inputs[THRESHOLDS], one_row)
            if one_row:  # one row, static shapes from here on
                x = tf.reshape(x[:1], (1,) + self.input_shape)
                rows = rows[:1]
            return flag_invalid(run(x, thresholds, temperatures), rows)

        # The converter names the signatures of a multi-function file after
        # the functions.
        serve.__name__ = ONE_ROW_SIGNATURE if one_row else SIGNATURE
        # The batch and threshold axes are left unknown: a dimension the
        # converter knows would fold the checks of its size away.
        signature = {
            INPUT: self.input_spec(None),
            THRESHOLDS: tf.TensorSpec((None,), tf.float32, name=THRESHOLDS),
        }
        return tf.function(serve, input_signature=[signature])

    def exit_function(self, k):
        """`{input (batch, ...)} -> {probabilities}` of exit `k` (0-based)."""
        import tensorflow as tf

        memory = chain.has_exit_memory(self.model)

        def serve(inputs):
            state = inputs[INPUT]
            for j in range(k):
                if memory:  # exit k reads the earlier exits' outputs
                    state, _ = chain.run_stage(self.model, j, state, False,
                                               call=self.call)
                else:
                    state = self.call(self.model.segments[j], state)
            _, probs = self._stage(k, state)
            return {PROBABILITIES: probs}

        return tf.function(
            serve, input_signature=[{INPUT: self.input_spec(None)}]
        )

    def stage_function(self, k):
        """Stage `k` (0-based): state in, probabilities and state out.

        Stage 0 reads `input`; later stages read `state_0`, `state_1`, ...
        (the flattened state of the previous stage); every stage but the
        last returns its state the same way.
        """
        import keras
        import tensorflow as tf

        if k == 0:
            signature = {INPUT: self.input_spec(None)}
        else:
            signature = self.state_signature(k - 1)
        structure = None if k == 0 else self.state_specs[k - 1]

        def serve(inputs):
            if k == 0:
                state = inputs[INPUT]
            else:
                flat = [inputs[state_name(i)] for i in range(len(inputs))]
                state = keras.tree.pack_sequence_as(structure, flat)
            state, probs = self._stage(k, state)
            outputs = {PROBABILITIES: probs}
            if k < self.num_exits - 1:
                for i, t in enumerate(keras.tree.flatten(state)):
                    outputs[state_name(i)] = t
            return outputs

        return tf.function(serve, input_signature=[signature])

    def keras_states(self, x):
        """Keras states after each stage for a batch `x` (numpy lists).

        Returns:
            A list (one per stage) of lists of flattened state arrays.
        """
        import keras
        from keras import ops

        states = []
        state = x
        for k in range(self.num_exits):
            state, _ = chain.run_stage(self.model, k, state, training=False)
            states.append(
                [ops.convert_to_numpy(t) for t in keras.tree.flatten(state)]
            )
        return states


@contextlib.contextmanager
def float32_compute(model):
    """Runs the body with every mixed-precision layer of `model` in float32.

    LiteRT's built-in kernels compute in float32 (or in integers): a model
    built under `mixed_float16` would trace float16 convolutions, which
    only Flex can run. Plain `DTypePolicy`s whose compute dtype differs
    from their variable dtype are switched to float32 for the duration and
    restored afterwards; quantized policies and policy maps are left alone.
    (Weights stay float32 in either case; `quantization="float16"` is the
    way to store them in float16.)
    """
    import keras

    changed = []
    for layer in flatten_layers(model):
        policy = layer.dtype_policy
        if (
            type(policy) is keras.DTypePolicy
            and policy.compute_dtype != policy.variable_dtype
        ):
            changed.append((layer, policy))
            layer.dtype_policy = keras.DTypePolicy(policy.variable_dtype)
    try:
        yield
    finally:
        for layer, policy in changed:
            layer.dtype_policy = policy


def _float32(dtype):
    """Float16 / bfloat16 become float32 (see `float32_compute`)."""
    name = getattr(dtype, "name", dtype)
    return "float32" if name in ("float16", "bfloat16") else name
