"""`TokenPaddingMask`: 1 for real tokens, 0 for padding."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import check_token_ids_shape
from keras_eexit.utils.validation import check_non_negative_int

@register
class TokenPaddingMask(keras.layers.Layer):
    """The padding mask of a tensor of token ids: 1 for tokens, 0 for padding.

    Args:
        padding_id: Integer >= 0, the id of the padding token. Defaults to
            `0`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: Integer tensor `(batch_size, sequence_length)` of token ids.

    Input shape:
        2D tensor `(batch_size, sequence_length)`.

    Output shape:
        Same as the input; `int32` values in {0, 1}.

    Example:

    ```python
    TokenPaddingMask()(np.array([[2, 8, 3, 0]]))  # [[1, 1, 1, 0]]
    ```
    """

    def __init__(self, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        self.padding_id = check_non_negative_int("padding_id", padding_id)

    def build(self, input_shape):
        check_token_ids_shape(input_shape)

    def call(self, inputs):
        return ops.cast(ops.not_equal(inputs, self.padding_id), "int32")

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape), "int32")

    def get_config(self):
        config = super().get_config()
        config.update({"padding_id": self.padding_id})
        return config
