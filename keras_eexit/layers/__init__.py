"""Layers: exit heads (and their registry) and the layers zoo models use."""

import keras

from keras_eexit.layers.add_position_embedding import AddPositionEmbedding
from keras_eexit.layers.aligned_bilinear_resize import AlignedBilinearResize
from keras_eexit.layers.cls_head import ClsHead
from keras_eexit.layers.conv_pool_head import ConvPoolHead
from keras_eexit.layers.damping_head import DampingHead
from keras_eexit.layers.damping_head import class_probabilities
from keras_eexit.layers.gpf_head import GPFHead
from keras_eexit.layers.linear_head import LinearHead
from keras_eexit.layers.mlp_head import MLPHead
from keras_eexit.layers.msdnet_head import MSDNetHead
from keras_eexit.layers.partitioned_head import PartitionedHead
from keras_eexit.layers.partitioned_segment import PartitionedSegment
from keras_eexit.layers.sdn_pool_head import SDNPoolHead
from keras_eexit.layers.text_embedding import TextEmbedding
from keras_eexit.layers.token_padding_mask import TokenPaddingMask
from keras_eexit.layers.token_type_ids import TokenTypeIds
from keras_eexit.layers.text_encoder import TextEncoderLayer
from keras_eexit.layers.token_head import TokenHead
from keras_eexit.layers.transformer_block import TransformerBlock
from keras_eexit.layers.zero_pad_shortcut import ZeroPadShortcut
from keras_eexit.layers.ztw_head import ZTWHead
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import invalid_value

HEADS = {
    "linear": LinearHead,
    "sdn_pool": SDNPoolHead,
    "conv_pool": ConvPoolHead,
    "mlp": MLPHead,
}
"""Exit heads by name: `"linear"`, `"sdn_pool"`, `"conv_pool"`, `"mlp"`."""


def get_head(head, num_classes, name=None, damping=False, **kwargs):
    """Creates a new exit head.

    Every call returns a new layer with its own weights, so the same
    `head` argument can be used for all the exits of a network. With
    `damping=True` the head is wrapped in a `DampingHead`: it gets one more
    output unit that stands for no class (`num_classes + 1` logits).

    Args:
        head: One of
            - a name from `HEADS` (`"linear"`, `"sdn_pool"`, `"conv_pool"`,
              `"mlp"`);
            - a layer class, called as `head(num_classes, name=name,
              **kwargs)`;
            - a factory callable with the same signature, returning a
              `keras.layers.Layer`.
            Layer instances are refused: they would share weights between
            exits.
        num_classes: Integer, the number of classes (logits).
        name: Optional name of the new layer, such as `"exit_1"`. `None`
            lets Keras choose a unique name.
        damping: Boolean. If `True`, return a `DampingHead` around the head
            (for the damping losses of `keras_eexit.losses`).
        **kwargs: Further arguments of the head, such as `dropout=0.2`.

    Returns:
        A new, unbuilt `keras.layers.Layer`.

    Raises:
        ValueError: if `head` is an unknown name (the message lists the
            valid names), a layer instance or not callable, or if a factory
            does not return a layer.

    Example:

    ```python
    head = get_head("linear", 10, name="exit_1", dropout=0.2)
    head = get_head(MLPHead, 10, hidden_units=(64,))
    head = get_head(lambda n, name=None: keras.layers.Dense(n, name=name), 10)
    head = get_head("linear", 10, name="exit_1", damping=True)  # 11 logits
    ```
    """
    if not isinstance(damping, bool):
        raise invalid_value("damping", "a boolean", damping)
    if isinstance(head, keras.layers.Layer):
        raise invalid_value(
            "head",
            "a head name, a layer class or a factory callable, not a layer "
            "instance (each exit needs its own weights)",
            head,
        )
    if damping:
        return DampingHead(num_classes, head=head, head_kwargs=kwargs,
                           name=name)
    if isinstance(head, str):
        check_choice("head", head, HEADS)
        return HEADS[head](num_classes, name=name, **kwargs)
    if not callable(head):
        raise invalid_value(
            "head",
            f"a head name (one of {sorted(HEADS)}), a layer class or a "
            "factory callable",
            head,
        )
    layer = head(num_classes, name=name, **kwargs)
    if not isinstance(layer, keras.layers.Layer):
        raise invalid_value(
            "head",
            "a factory returning a `keras.layers.Layer`, got "
            f"{type(layer).__name__}",
            head,
        )
    return layer


__all__ = [
    "HEADS",
    "AddPositionEmbedding",
    "AlignedBilinearResize",
    "ClsHead",
    "ConvPoolHead",
    "DampingHead",
    "GPFHead",
    "LinearHead",
    "MLPHead",
    "MSDNetHead",
    "PartitionedHead",
    "PartitionedSegment",
    "SDNPoolHead",
    "TextEmbedding",
    "TextEncoderLayer",
    "TokenHead",
    "TokenPaddingMask",
    "TokenTypeIds",
    "TransformerBlock",
    "ZTWHead",
    "ZeroPadShortcut",
    "class_probabilities",
    "get_head",
]
