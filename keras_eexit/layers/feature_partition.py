"""DFS feature partitioning: which channels a consumer sends gradients to.

Deep Feature Surgery (Gong et al., ECCV 2024) splits the features at an
internal exit along the channel axis into a shared part `f+` (the first
`round(ratio · C)` channels) and an exit-specific part `f-` (the rest). The
forward pass reads every channel; the backward pass routes the deeper
layers' gradient to `f+` only and the exit's gradient to `f-` only. This
module holds that one rule; `PartitionedHead` and `PartitionedSegment` apply
it on the two sides of a cut.
"""

import keras
from keras import ops

from keras_eexit.utils.validation import check_choice

ROUTES = ("shared", "specific")
"""The part of the channels a consumer sends its gradient to: `"shared"`
(`f+`, the deeper stages) or `"specific"` (`f-`, the exit)."""


def shared_channels(channels, ratio):
    """How many of `channels` are shared (`f+`): `round(ratio · channels)`.

    Python's `round`, as the authors' `FeatureReroute` (`feature_num1 =
    round(num_channel * ratio)`).

    Args:
        channels: the size of the channel axis.
        ratio: the partition coefficient β in [0, 1].

    Returns:
        An int in `[0, channels]`.

    Example:

    >>> shared_channels(6, 0.5)
    3
    """
    return int(round(channels * ratio))


def partition_features(x, ratio, route, referencing=True):
    """Features `x` as one consumer of a DFS cut reads them.

    With `referencing=True` (the method) the values are unchanged and the
    gradient is cut on the other part: `route="shared"` gives
    `concat(f+, stop_gradient(f-))` (what deeper stages read),
    `route="specific"` gives `concat(stop_gradient(f+), f-)` (what the exit
    reads). With `referencing=False` (the paper's ablation without feature
    referencing, `use_fr=False` in the authors' code) the other part is
    replaced by zeros instead.

    Args:
        x: a floating tensor, channels last (`(batch, ..., C)`, C known).
        ratio: the partition coefficient β in [0, 1].
        route: `"shared"` or `"specific"`.
        referencing: keep the other part's values (gradient stopped) or
            zero them.

    Returns:
        A tensor of the shape and dtype of `x`.
    """
    check_choice("route", route, ROUTES)
    channels = x.shape[-1]
    if channels is None:
        raise ValueError(
            "DFS partitions the last (channel) axis of a stage's features, "
            f"whose size must be known; received a tensor of shape "
            f"{tuple(x.shape)}.")
    if not keras.backend.is_float_dtype(x.dtype):
        raise ValueError(
            "DFS partitions the floating-point features a head reads; "
            f"received a {x.dtype} tensor.")
    cut = shared_channels(channels, ratio)
    shared, specific = x[..., :cut], x[..., cut:]
    if route == "shared":
        kept, other = shared, specific
    else:
        kept, other = specific, shared
    if referencing:
        other = ops.stop_gradient(other)
    else:
        other = ops.zeros_like(other)
    if route == "shared":
        return ops.concatenate([kept, other], axis=-1)
    return ops.concatenate([other, kept], axis=-1)
