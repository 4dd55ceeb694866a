"""Per-stage FLOPs and parameters of a `MultiExitModel`, counted once.

FLOPs come from the TF-graph counter (`keras_eexit.models.flops`) on the
TensorFlow backend and from the analytic counter
(`keras_eexit.models.analytic_flops`, same figures) otherwise: see
`uses_tensorflow_graph`.
"""

import dataclasses
import weakref

import keras

from keras_eexit import chain
from keras_eexit.models import analytic_flops


_STAGE_COSTS = weakref.WeakKeyDictionary()
"""`{model: {convention: StageCosts}}`: counted once per model."""


@dataclasses.dataclass(frozen=True)
class StageCosts:
    """FLOPs and parameter counts of every segment and head, per sample.

    Attributes:
        segment_flops: tuple of ints, one per segment.
        head_flops: tuple of ints, one per head.
        segment_params: tuple of ints, one per segment.
        head_params: tuple of ints, one per head.
        recomputes_input: whether every segment recomputes its features from
            the raw input (a chain of unshared prefixes, `Separate`).
    """

    segment_flops: tuple
    head_flops: tuple
    segment_params: tuple
    head_params: tuple
    recomputes_input: bool

    def cumulative_flops(self):
        """FLOPs to reach and evaluate each exit (earlier heads included)."""
        return cumulative(self.segment_flops, self.head_flops)

    def cumulative_params(self):
        """Parameters of segments and heads up to each exit."""
        return cumulative(self.segment_params, self.head_params)

    def base_flops(self):
        """FLOPs of the base network: backbone and final head, no ICs.

        The denominator of Kubaty et al.'s budget table
        (`visualize/cost_vs_table.py` of kamadforge/early-exit-benchmark):
        every segment plus the final head. For unshared prefixes the last
        stage alone is the base network.
        """
        if self.recomputes_input:
            return self.segment_flops[-1] + self.head_flops[-1]
        return sum(self.segment_flops) + self.head_flops[-1]


def cumulative(segment_costs, head_costs):
    """Running totals: exit `k` costs segments `1..k` and heads `1..k`.

    Args:
        segment_costs: per-segment costs.
        head_costs: per-head costs.

    Returns:
        A list of cumulative costs, one per exit.

    Example:

    >>> cumulative([10, 10], [1, 2])
    [11, 23]
    """
    totals, running = [], 0
    for seg, head in zip(segment_costs, head_costs):
        running += seg
        totals.append(running + head)
        running += head
    return totals


def stage_costs(model, convention="keras_eexit"):
    """The model's `StageCosts`, traced on first use and cached.

    Args:
        model: a built `MultiExitModel`.
        convention: the FLOP convention (`keras_eexit.models.flops`):
            `"keras_eexit"` or `"fvcore"` (Kubaty et al.'s reference).

    Returns:
        A `StageCosts`.
    """
    cached = _STAGE_COSTS.setdefault(model, {})
    if convention not in cached:
        cached[convention] = compute_stage_costs(model, convention)
    return cached[convention]


def uses_tensorflow_graph():
    """Whether FLOPs are counted on the TF graph (else analytically).

    The TF-graph counter (`keras_eexit.models.flops`) runs when the Keras
    backend is TensorFlow and TensorFlow is importable; otherwise the
    analytic counter (`keras_eexit.models.analytic_flops`), which gives the
    same figures on every zoo model, runs.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def flops_counter():
    """`count(fn, specs, *, convention) -> int` for the current setting.

    `specs` is a `keras.KerasTensor` structure with the batch axis (see
    `uses_tensorflow_graph` for which counter is returned).
    """
    if not uses_tensorflow_graph():
        return analytic_flops.count_flops

    import tensorflow as tf

    from keras_eexit.models import flops

    def count(fn, specs, *, convention):
        return flops.count_flops(
            fn, keras.tree.map_structure(
                lambda s: tf.TensorSpec(tuple(s.shape), s.dtype), specs),
            convention=convention)

    return count


def compute_stage_costs(model, convention="keras_eexit"):
    """The model's `StageCosts`, counted now (`stage_costs` caches it).

    Args:
        model: a built `MultiExitModel`.
        convention: `"keras_eexit"` or `"fvcore"`.

    Returns:
        A `StageCosts`, counted by `flops_counter()`.
    """
    if not model.built:
        raise ValueError(
            "The model is not built yet: call it on a batch (or `build` "
            "it) before counting FLOPs or parameters."
        )
    count_flops = flops_counter()
    spec = chain.input_spec(model, batch_size=1)
    states = chain.state_specs(model, batch_size=1)
    head_calls = chain.head_call_specs(model, batch_size=1)
    seg_flops, head_flops, seg_params, head_params = [], [], [], []
    for segment, head, state, head_call in zip(model.segments, model.heads,
                                               states, head_calls):
        seg_flops.append(count_flops(segment, spec, convention=convention))
        state_spec = chain.segment_state(state)
        # Heads that read earlier exits are counted on their whole input
        # (cascade inputs, ensembles): the extra work is the head's.
        head_flops.append(count_flops(head, head_call,
                                     convention=convention))
        seg_params.append(int(segment.count_params()))
        head_params.append(int(head.count_params()))
        spec = state_spec
    return StageCosts(
        tuple(seg_flops), tuple(head_flops), tuple(seg_params),
        tuple(head_params),
        all(getattr(s, "recomputes_input", False) for s in model.segments),
    )
