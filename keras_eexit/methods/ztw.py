"""ZTW (Zero Time Waste): cascading exits and their geometric ensembles."""

from keras_eexit.layers._base import check_bool
from keras_eexit.layers.ztw_head import ZTWHead
from keras_eexit.methods._common import check_model
from keras_eexit.methods._common import with_heads


def ztw(model, ensemble_final=False, detach=True, layer_norm=True):
    """Turns a multi-exit model into a Zero Time Waste network.

    Internal exits `1..K-1` become `keras_eexit.layers.ZTWHead`s around the
    model's heads: exit `k >= 2` also reads exit `k - 1`'s logits (the
    cascading connection) and every internal exit gets a geometric ensemble
    of exits `1..k`, trained in ZTW's own phase after the exits (see
    `ztw_regime`). The final exit stays the backbone's own head, as in
    Kubaty et al.'s benchmark (`ZTWCascading` attaches cascading heads to
    the internal exits only, `ZTWEnsembling` "does not build an ensemble on
    the original (backbone model's) head"): the backbone's classifier
    never depends on internal exits, so two-stage training can train it
    first. The original ZTW code also ensembles the final exit
    (`ensemble_final=True`; still without a cascade).

    Segments and heads are shared with `model` (not copied).

    Args:
        model: a built `MultiExitModel` with plain heads.
        ensemble_final: also give the final exit an ensemble of all exits.
        detach: stop the gradient of the cascading input (authors'
            default).
        layer_norm: layer-normalise the cascading input (authors' default).

    Returns:
        A new `MultiExitModel` (same segments, ZTW heads).

    Example:

    ```python
    model = ztw(keras_eexit.models.cnn1d())
    model.compile(optimizer="adam", metrics=["accuracy"])
    regime = ztw_regime(keras_eexit.regimes.Mixed(10, 10))
    model.fit(x, y, callbacks=[regime])
    ```

    References:
        - Wołczyk et al., 2021. Zero Time Waste: Recycling Predictions in
          Early Exit Neural Networks. NeurIPS 2021.
    """
    check_model(model, "ZTW")
    check_bool("ensemble_final", ensemble_final)
    last = model.num_exits - 1
    heads = []
    for k, head in enumerate(model.heads):
        if k < last:
            head = ZTWHead(head, cascade=k > 0, ensemble=True, detach=detach,
                           layer_norm=layer_norm, name=model.exit_names[k])
        elif ensemble_final:
            head = ZTWHead(head, cascade=False, ensemble=True, detach=detach,
                           layer_norm=layer_norm, name=model.exit_names[k])
        heads.append(head)
    return with_heads(model, heads)


def ensemble_heads(model):
    """The model's exits with a ZTW ensemble (`ZTWHead`s), in order."""
    return [h for h in model.heads
            if isinstance(h, ZTWHead) and h.ensemble]
