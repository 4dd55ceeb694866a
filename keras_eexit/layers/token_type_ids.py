"""`TokenTypeIds`: a constant segment id for every token."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import check_token_ids_shape
from keras_eexit.utils.validation import check_non_negative_int

@register
class TokenTypeIds(keras.layers.Layer):
    """Constant segment (token type) ids shaped like a tensor of token ids.

    BERT adds the embedding of a segment id to every token; a single-segment
    input uses segment 0 everywhere. This layer makes those ids from the
    token ids, so a model needs no second input.

    Args:
        type_id: Integer >= 0, the segment id to emit. Defaults to `0`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Call arguments:
        inputs: Integer tensor `(batch_size, sequence_length)` of token ids.

    Input shape:
        2D tensor `(batch_size, sequence_length)`.

    Output shape:
        Same as the input; `int32` values equal to `type_id`.

    Example:

    ```python
    TokenTypeIds()(np.array([[2, 8, 3, 0]]))  # [[0, 0, 0, 0]]
    ```
    """

    def __init__(self, type_id=0, **kwargs):
        super().__init__(**kwargs)
        self.type_id = check_non_negative_int("type_id", type_id)

    def build(self, input_shape):
        check_token_ids_shape(input_shape)

    def call(self, inputs):
        return ops.full_like(inputs, self.type_id, dtype="int32")

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape), "int32")

    def get_config(self):
        config = super().get_config()
        config.update({"type_id": self.type_id})
        return config
