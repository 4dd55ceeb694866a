"""GPF (Global Past-Future): exits that read past states and imitate futures."""

from keras_eexit.layers import get_head
from keras_eexit.layers.gpf_head import GPFHead
from keras_eexit.methods._common import check_model
from keras_eexit.methods._common import with_heads
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

DEFAULT_STATE_DIM = 128
"""Width of the exits' states (Kubaty et al. use 512 on a ViT-B)."""


def gpf(model, state_dim=DEFAULT_STATE_DIM, state_head=None,
        imitation_weight=None, state_dropout=0.0):
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
        imitation_weight: factor of the imitation loss; default `K`, the
            number of exits, which against keras-eexit's exit weights
            (averaging 1) gives the benchmark's balance
            `Σ_k (k/Σk)·CE_k + imitation`.
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
    if imitation_weight is None:
        imitation_weight = float(model.num_exits)
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


def gpf_regime(regime):
    """A regime training a GPF network: depth-weighted exit losses.

    Kubaty et al.'s benchmark trains GPF on `Σ_i (i+1)·CE_i / Σ_i (i+1)`
    over all outputs plus the imitation loss (`methods/early_exit.py`), the
    weighting of Liao et al.'s code: every phase's exit weights are
    multiplied by the exit number, same total (`depth_weighted`). The
    imitation loss is added by the `GPFHead`s themselves while they train.

    Args:
        regime: any `keras_eexit.regimes.Regime`.

    Returns:
        A `MethodRegime`.
    """
    from keras_eexit.methods.depth_weights import depth_weighted_phases
    from keras_eexit.methods.method_regime import MethodRegime

    return MethodRegime(regime, depth_weighted_phases, "gpf")
