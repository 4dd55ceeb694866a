"""`PartitionedSegment`: a segment that trains only the shared `f+` (DFS)."""

import keras

from keras_eexit import chain
from keras_eexit.api import register
from keras_eexit.layers.feature_partition import partition_features
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value


def _partitioned(state, ratio, referencing):
    """`state` with its head tensor routed to the shared channels."""
    routed = partition_features(chain.head_input(state), ratio, "shared",
                                referencing)
    if isinstance(state, (list, tuple)):
        return [routed] + list(state[1:])
    return routed


@register
class PartitionedSegment(keras.layers.Layer):
    """A segment whose gradient reaches only the shared channels `f+` (DFS).

    Deep Feature Surgery's feature partitioning, on the deeper side of a
    cut: the wrapped segment reads the previous stage's state unchanged
    (feature referencing), but in the backward pass only the shared
    channels `f+` (the first `round(ratio · C)` channels of the tensor the
    previous exit's head reads) receive the gradient of this and deeper
    stages; the exit-specific channels `f-` are constants for them. With
    `PartitionedHead` on the previous exit, the weights producing `f+` are
    trained by the deeper exits alone. Only the head's tensor of a tuple
    state is partitioned; the other tensors (scales, skip connections,
    masks) pass unchanged, as in the authors' MSDNet, where only the scale
    the classifier reads is split. `keras_eexit.methods.dfs` wraps a whole
    model.

    Args:
        segment: the segment (a layer or model) to wrap; never the first
            segment of a chain (its input is the model input).
        ratio: DFS's β in [0, 1], the fraction of shared channels.
        referencing: `True` (the method): the exit-specific channels are
            read with their gradient stopped. `False`: they are replaced by
            zeros (the paper's ablation without feature referencing).
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: the state left by the previous stage (a tensor, or a list
            of tensors whose first is the one its head reads).
        training: Python boolean, forwarded to the wrapped segment.

    Input shape:
        That of the wrapped segment.

    Output shape:
        That of the wrapped segment.

    Example:

    ```python
    segment = PartitionedSegment(
        keras.layers.Dense(8), ratio=0.5, name="segment_2")
    segment(keras.random.normal((2, 4))).shape  # (2, 8)
    ```

    References:
        - Gong et al., Deep Feature Surgery: Towards Accurate and Efficient
            Multi-Exit Networks, ECCV 2024, sec. 3; code
            github.com/GongCheng1919/dfs (`FeatureReroute`: deeper layers
            read `cat(f+, f-.detach())`; `models/dns_msdnet.py` splits only
            `x[-1]`).
    """

    def __init__(self, segment, ratio=0.5, referencing=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(segment, dict):
            segment = keras.saving.deserialize_keras_object(segment)
        if not isinstance(segment, keras.layers.Layer):
            raise invalid_value("segment", "a Keras layer or model", segment)
        if isinstance(segment, PartitionedSegment):
            raise invalid_value(
                "segment", "a segment that is not already partitioned",
                segment)
        self.segment = segment
        self.ratio = check_number("ratio", ratio, 0.0, 1.0)
        self.referencing = check_bool("referencing", referencing)

    def build(self, input_shape):
        if not self.segment.built:
            self.segment.build(input_shape)

    def call(self, inputs, training=None):
        return self.segment(_partitioned(inputs, self.ratio,
                                         self.referencing),
                            training=training)

    def compute_output_spec(self, inputs, training=None):
        return self.segment.compute_output_spec(inputs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "segment": keras.saving.serialize_keras_object(self.segment),
            "ratio": self.ratio,
            "referencing": self.referencing,
        })
        return config
