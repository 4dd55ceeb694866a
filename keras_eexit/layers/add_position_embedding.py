"""`AddPositionEmbedding`: learned position embeddings and a class token."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import check_bool
from keras_eexit.layers._base import check_token_shape
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value

@register
class AddPositionEmbedding(keras.layers.Layer):
    """Adds learned position embeddings, optionally after a class token.

    With `class_token=True` a learned token (initialised to zeros) is
    prepended to the sequence first, so `tokens` inputs become
    `tokens + 1` outputs, and the position embedding covers the class
    token too (ViT, torchvision's `VisionTransformer`). Position embeddings
    are initialised from a normal distribution with standard deviation
    `0.02` (BERT, torchvision).

    The sequence length is fixed when the layer is built: inputs must have
    a static `tokens` axis.

    Args:
        class_token: Boolean, whether to prepend a learned class token.
            Defaults to `True`.
        initializer_stddev: Float > 0, the standard deviation of the
            position embeddings' normal initializer. Defaults to `0.02`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A `(batch, tokens, dim)` tensor.

    Input shape:
        3D tensor `(batch_size, tokens, dim)` with static `tokens`.

    Output shape:
        3D tensor `(batch_size, tokens + 1, dim)` with a class token, else
        `(batch_size, tokens, dim)`.

    Example:

    ```python
    patches = keras.random.normal((2, 64, 32))
    AddPositionEmbedding(name="embedding")(patches).shape  # (2, 65, 32)
    ```

    References:
        - [Dosovitskiy et al., 2021. An Image is Worth 16x16 Words](
            https://arxiv.org/abs/2010.11929) (eq. 1)
    """

    def __init__(self, class_token=True, initializer_stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.class_token = check_bool("class_token", class_token)
        self.initializer_stddev = check_number(
            "initializer_stddev", initializer_stddev, 0.0, low_open=True)

    def build(self, input_shape):
        shape = check_token_shape(input_shape)
        if shape[1] is None:
            raise invalid_value(
                "input_shape", "a static (known) number of tokens", shape
            )
        dim = shape[-1]
        tokens = shape[1] + int(self.class_token)
        if self.class_token:
            self.cls = self.add_weight(
                shape=(1, 1, dim), initializer="zeros", name="class_token"
            )
        self.position = self.add_weight(
            shape=(1, tokens, dim),
            initializer=keras.initializers.RandomNormal(
                stddev=self.initializer_stddev
            ),
            name="position_embedding",
        )

    def call(self, inputs):
        x = inputs
        if self.class_token:
            batch = ops.shape(x)[0]
            cls = ops.broadcast_to(
                ops.cast(self.cls, x.dtype), (batch, 1, x.shape[-1])
            )
            x = ops.concatenate([cls, x], axis=1)
        return ops.add(x, ops.cast(self.position, x.dtype))

    def compute_output_shape(self, input_shape):
        tokens = input_shape[1]
        if tokens is not None and self.class_token:
            tokens += 1
        return (input_shape[0], tokens, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "class_token": self.class_token,
                "initializer_stddev": self.initializer_stddev,
            }
        )
        return config
