"""`PartitionedHead`: an exit head whose gradient reaches only `f-` (DFS)."""

import keras

from keras_eexit import chain
from keras_eexit.api import register
from keras_eexit.layers.feature_partition import partition_features
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value


@register
class PartitionedHead(keras.layers.Layer):
    """An exit head that trains only the exit-specific channels (DFS).

    Deep Feature Surgery's feature partitioning, on the exit's side of a cut:
    the wrapped head reads every channel of its input (feature referencing),
    but its gradient flows only into the exit-specific channels `f-` (all
    but the first `round(ratio · C)` channels); the shared channels `f+` it
    reads are constants for it. With `PartitionedSegment` on the deeper
    side, the weights producing `f-` are trained by this exit alone.
    `keras_eexit.methods.dfs` wraps a whole model.

    The head's extra output units are those of the wrapped head (a
    `DampingHead` keeps its damping unit), so damping losses work with DFS.

    Args:
        head: the exit head layer to wrap.
        ratio: DFS's β in [0, 1], the fraction of shared channels.
        referencing: `True` (the method): the shared channels are read with
            their gradient stopped. `False`: they are replaced by zeros (the
            paper's ablation without feature referencing).
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: the tensor the wrapped head reads, channels last.
        training: Python boolean, forwarded to the wrapped head.

    Input shape:
        That of the wrapped head.

    Output shape:
        That of the wrapped head.

    Example:

    ```python
    head = PartitionedHead(keras_eexit.layers.LinearHead(10), ratio=0.5,
                           name="exit_1")
    head(keras.random.normal((2, 8, 8, 16))).shape  # (2, 10)
    ```

    References:
        - Gong et al., Deep Feature Surgery: Towards Accurate and Efficient
            Multi-Exit Networks, ECCV 2024, sec. 3 (feature partitioning
            and referencing); code github.com/GongCheng1919/dfs
            (`models/dns_resnet.py`, `FeatureReroute`: the exit reads
            `cat(f+.detach(), f-)`).
    """

    def __init__(self, head, ratio=0.5, referencing=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(head, dict):
            head = keras.saving.deserialize_keras_object(head)
        if not isinstance(head, keras.layers.Layer):
            raise invalid_value("head", "a Keras layer (an exit head)", head)
        if isinstance(head, PartitionedHead):
            raise invalid_value(
                "head", "a head that is not already partitioned", head)
        self.head = head
        self.ratio = check_number("ratio", ratio, 0.0, 1.0)
        self.referencing = check_bool("referencing", referencing)

    @property
    def damping(self):
        """Whether the wrapped head has a damping unit."""
        return chain.has_damping_unit(self.head)

    @property
    def drop_units(self):
        """The wrapped head's trailing non-class logits."""
        return chain.extra_units(self.head)

    @property
    def num_classes(self):
        """The wrapped head's `num_classes`, when it declares one."""
        return getattr(self.head, "num_classes", None)

    def build(self, input_shape):
        if not self.head.built:
            self.head.build(input_shape)

    def call(self, inputs, training=None):
        inputs = partition_features(inputs, self.ratio, "specific",
                                    self.referencing)
        return self.head(inputs, training=training)

    def compute_output_shape(self, input_shape):
        return self.head.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, training=None):
        return self.head.compute_output_spec(inputs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "head": keras.saving.serialize_keras_object(self.head),
            "ratio": self.ratio,
            "referencing": self.referencing,
        })
        return config
