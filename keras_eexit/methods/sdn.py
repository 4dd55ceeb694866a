"""SDN: plain internal classifiers, the baseline every method builds on."""

from keras_eexit.methods._common import check_model


def sdn(model):
    """The model as it is: plain internal classifiers (Kaya et al., 2019).

    Shallow-Deep Networks attach an internal classifier to the backbone at
    each exit; this is what the zoo builders and
    `MultiExitModel.from_backbone` make, trained by any regime as it is
    (Kubaty et al.'s "SDN" method: the regime's own loss, max-softmax
    exits).

    Args:
        model: a built `MultiExitModel`.

    Returns:
        `model`.
    """
    check_model(model, "SDN", min_exits=1, damping=True)
    return model
