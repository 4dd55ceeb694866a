"""GPF (Global Past-Future): exits that read past states and imitate futures."""

import dataclasses

import numpy as np

from keras_eexit.layers import get_head
from keras_eexit.layers.gpf_head import GPFHead
from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.methods._common import check_model
from keras_eexit.methods._common import with_heads
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

DEFAULT_STATE_DIM = 128
"""Width of the exits' states (Kubaty et al. use 512 on a ViT-B)."""


def gpf(model, state_dim=DEFAULT_STATE_DIM, state_head=None,
        imitation_weight=1.0, state_dropout=0.0):
    """Turns a multi-exit model into a Global Past-Future network.

    Internal exits `1..K-1` become `keras_eexit.layers.GPFHead`s: each
    computes a state with a head of the model's kind (`state_dim` outputs),
    reads the earlier exits' states and imitates the later ones' (see
    `GPFHead`). The final exit stays the backbone's own head, as in Kubaty
    et al.'s benchmark (`GPF` attaches its heads to the internal exits and
    yields the backbone's output unchanged): the backbone's classifier never
    depends on internal exits, so two-stage training can train it first.
    (Liao et al.'s BERT code makes every layer, the last included, a GPF
    exit.) Train with `gpf_regime(regime)` for GPF's loss weighting.

    Segments are shared with `model`; the state heads are new layers.

    Args:
        model: a built `MultiExitModel` with plain heads built from a head
            class with a `num_classes` argument (the zoo's heads), or any
            heads when `state_head` is given.
        state_dim: width `d` of each exit's state.
        state_head: optional head (a name, class or factory, as in
            `keras_eexit.layers.get_head`) computing the states; by default
            each exit's own head class and configuration with `state_dim`
            outputs.
        imitation_weight: factor of the imitation loss; 1 (default) is
            the benchmark's `Σ_k k·CE_k / Σ_k k + imitation`
            (`methods/early_exit.py`) when the model trains under
            `gpf_regime(regime)` with a regime that averages over the exits
            (`Joint()`, `Mixed`, `TwoStage`: `reduction="mean"`).
        state_dropout: dropout on the slots while training.

    Returns:
        A new `MultiExitModel` (same segments, GPF heads).

    Example:

    ```python
    model = gpf(keras_eexit.models.cnn1d(), state_dim=64)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, epochs=10, callbacks=[gpf_regime(Joint())])
    ```

    References:
        - Liao et al., 2021. A Global Past-Future Early Exit Method for
          Accelerating Inference of Pre-trained Language Models. NAACL 2021.
    """
    check_model(model, "GPF")
    check_positive_int("state_dim", state_dim)
    n = model.num_exits - 1
    heads = []
    for k, head in enumerate(model.heads[:-1]):
        name = model.exit_names[k]
        heads.append(GPFHead(
            _state_head(head, state_dim, state_head, name),
            num_classes=model.num_classes, num_exits=n,
            imitation_weight=imitation_weight, state_dropout=state_dropout,
            name=name))
    return with_heads(model, heads + [model.heads[-1]])


def _state_head(head, state_dim, state_head, name):
    if state_head is not None:
        return get_head(state_head, state_dim, name=f"{name}_state")
    config = head.get_config()
    if "num_classes" not in config:
        raise invalid_value(
            "state_head",
            "a head name, class or factory: the model's heads "
            f"({type(head).__name__}) have no `num_classes` to set to "
            "state_dim",
            state_head)
    config.update(num_classes=state_dim, name=f"{name}_state")
    return type(head).from_config(config)


def gpf_weighted(weights, num_exits):
    """A phase's exit weights as Kubaty et al.'s GPF loss weights them.

    The benchmark trains GPF on `Σ_k k·CE_k / Σ_j j` over all K outputs,
    plus the imitation loss with weight 1, in every early-exit phase
    (`methods/early_exit.py`: the same formula with or without the
    backbone; a frozen head's term then moves nothing). Against a phase
    that averages over the exits (`w_k = 1/K` on the exits it trains,
    `reduction="mean"`), that is `w'_k = w_k · k·K / Σ_j j = w_k · 2k/(K+1)`
    (factors averaging 1 over the K exits): under `Joint()` and `Mixed`'s
    joint phase exactly `k / Σ_j j`, under `TwoStage`'s heads phase the
    same weights on the internal exits (the frozen final exit's constant
    term dropped). A phase that trains one exit keeps its weights: the
    benchmark's backbone phase is the backbone's own training, plain
    cross-entropy (`train.py`).

    Args:
        weights: a scheme name, a list of `num_exits` weights, or a schedule
            `f(epoch_in_phase, phase_epochs) -> list`.
        num_exits: K.

    Returns:
        A list of K floats, or a schedule of the same kind.

    Example:

    >>> gpf_weighted([0.25] * 4, 4)
    [0.1, 0.2, 0.3, 0.4]
    """
    if callable(weights):
        def schedule(epoch, epochs):
            return gpf_weighted(weights(epoch, epochs), num_exits)

        return schedule
    w = np.asarray(exit_weights(weights, num_exits), dtype="float64")
    if np.count_nonzero(w) == 1:
        return [float(v) for v in w]
    factors = 2.0 * np.arange(1, num_exits + 1) / (num_exits + 1)
    return [float(v) for v in w * factors]


def gpf_weighted_phases(phases, num_exits):
    """Every phase of a regime with GPF's exit weights (`gpf_weighted`)."""
    return [dataclasses.replace(p, weights=gpf_weighted(p.weights,
                                                        num_exits))
            for p in phases]


def gpf_regime(regime):
    """A regime training a GPF network: depth-weighted exit losses.

    Kubaty et al.'s benchmark trains GPF on `Σ_k k·CE_k / Σ_k k` over all
    outputs plus the imitation loss (`methods/early_exit.py`), the
    weighting of Liao et al.'s code: every phase that trains several exits
    has its weights multiplied by `2k/(K+1)` (`gpf_weighted`), which under
    a regime averaging over the exits (`Joint()`, `Mixed`, `TwoStage`) is
    exactly the benchmark's loss. The imitation loss is added by the
    `GPFHead`s themselves while they train (weight 1, as there).

    Args:
        regime: any `keras_eexit.regimes.Regime`.

    Returns:
        A `MethodRegime`.

    Example:

    ```python
    model.fit(x, y, callbacks=[gpf_regime(keras_eexit.regimes.Mixed(6, 6))])
    ```
    """
    from keras_eexit.methods.method_regime import MethodRegime

    return MethodRegime(regime, gpf_weighted_phases, "gpf")
