"""ZTW (Zero Time Waste): cascading exits and their geometric ensembles."""

from keras_eexit.utils.validation import check_bool
from keras_eexit.layers.ztw_head import ZTWHead
from keras_eexit.methods._common import check_model
from keras_eexit.methods._common import with_heads
from keras_eexit.utils.validation import invalid_value


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


ENSEMBLE_EPOCHS = 2
ENSEMBLE_LEARNING_RATE = 1e-2


def ztw_regime(regime, epochs=None, ensemble_epochs=ENSEMBLE_EPOCHS,
               learning_rate=ENSEMBLE_LEARNING_RATE):
    """A regime training a ZTW network: the regime, then the ensembles.

    The regime trains the cascading exits (Kubaty et al. train ZTW's exits
    under each regime); one more phase, `"ztw_ensemble"`, then trains the
    geometric ensembles with everything else frozen (`ZTWEnsembleStep`),
    as the paper prescribes: weights learned after the classifiers. Its
    objective is the cross-entropy of every exit with uniform weights (the
    benchmark's mean over all outputs: exits without an ensemble add a
    constant). The phase adds `ensemble_epochs` to the regime's length.

    Its length and learning rate are ours: the authors train the ensembles
    for 2 epochs of ImageNet with Adam 1e-3 (their rewrite,
    `ztw_cv/scripts/ztw_vit.py`) or 501 epochs of cached CIFAR logits with
    Adam 5e-4 (the original code), tens of thousands of updates either
    way; 2 epochs of a small data set are a few hundred, so the default
    learning rate is 1e-2 (measured on digits: at 1e-3 the ensembles
    barely leave their start, at 1e-2 they gain 1-2 points over the
    exits). Raise `ensemble_epochs` on small data.

    Args:
        regime: any `keras_eexit.regimes.Regime`.
        epochs: the regime's own length, needed only when its last phase
            lasts "until fit ends" (`Joint()`): that phase then gets what
            is left of `epochs` after the others.
        ensemble_epochs: epochs of the ensemble phase.
        learning_rate: Adam's learning rate in the ensemble phase.

    Returns:
        A `MethodRegime`; `epochs_for(model)` includes the ensemble phase.

    Example:

    ```python
    model = ztw(keras_eexit.models.cnn1d())
    model.compile(optimizer="adam", metrics=["accuracy"])
    regime = ztw_regime(keras_eexit.regimes.Joint(), epochs=20)
    model.fit(x, y, callbacks=[regime])  # 20 + 2 epochs
    ```
    """
    import dataclasses

    from keras_eexit.methods.method_regime import MethodRegime
    from keras_eexit.methods.ztw_ensemble_step import ZTWEnsembleStep
    from keras_eexit.regimes.phase import Phase
    from keras_eexit.utils.validation import check_number
    from keras_eexit.utils.validation import check_positive_int

    check_positive_int("ensemble_epochs", ensemble_epochs)
    check_number("learning_rate", learning_rate, low=0.0, low_open=True)
    if epochs is not None:
        check_positive_int("epochs", epochs)
    step = ZTWEnsembleStep.factory(learning_rate)

    def rewrite(phases, num_exits):
        phases = list(phases)
        last = phases[-1]
        if last.epochs is None and last.monitor is None:
            fixed = [p.epochs for p in phases[:-1]]
            if epochs is None or any(e is None for e in fixed):
                raise ValueError(
                    "ZTW trains its ensembles after the regime, whose last "
                    f"phase {last.name!r} lasts until fit ends: pass the "
                    "regime's length, ztw_regime(regime, epochs=...).")
            if epochs <= sum(fixed):
                raise invalid_value(
                    "epochs", f"more than the {sum(fixed)} epochs of the "
                    "regime's earlier phases", epochs)
            phases[-1] = dataclasses.replace(last,
                                             epochs=epochs - sum(fixed))
        return phases + [Phase(
            "ztw_ensemble", ensemble_epochs, train_segments="none",
            train_heads="none", weights="uniform", train_step=step)]

    return MethodRegime(regime, rewrite, "ztw")
