"""`TextEmbedding` and the token-id helpers of the BERT-style text models.

`TextEmbedding` is BERT's embedding block; `TokenPaddingMask` and
`TokenTypeIds` turn a tensor of token ids into the padding mask and the
segment ids BERT expects, so that a text model takes ONE input (token ids,
0 for padding) and stays serializable without `Lambda` layers.
"""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_token_ids_shape
from keras_eexit.layers.text_encoder import bert_initializer
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


@register
class TextEmbedding(keras.layers.Layer):
    """BERT's embedding block: token + position + segment, then LayerNorm.

    Maps token ids to `hidden_dim` vectors: the sum of a learned token
    embedding, a learned absolute position embedding and the embedding of
    segment (token type) 0, normalized by a layer normalization and passed
    through dropout. Single-segment inputs are all BERT classifiers need,
    so the segment embedding is one learned vector (BERT's row 0).

    Args:
        vocabulary_size: Integer >= 2, the number of token ids.
        hidden_dim: Integer >= 1, the embedding width.
        max_sequence_length: Integer >= 1, the number of learned positions;
            inputs may be shorter, never longer.
        dropout: Float in [0, 1), dropout rate after the normalization.
            Defaults to `0.1`.
        layer_norm_epsilon: Float > 0. Defaults to `1e-12` (BERT's value).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Integer tensor `(batch_size, sequence_length)` of token ids.
        training: Python boolean, whether dropout is active.

    Input shape:
        2D tensor `(batch_size, sequence_length)`.

    Output shape:
        3D tensor `(batch_size, sequence_length, hidden_dim)`.

    Example:

    ```python
    ids = np.array([[2, 17, 9, 3, 0, 0]], "int32")
    TextEmbedding(100, 32, max_sequence_length=16)(ids).shape  # (1, 6, 32)
    ```

    References:
        - [Devlin et al., 2019. BERT: Pre-training of Deep Bidirectional
          Transformers for Language Understanding](
          https://arxiv.org/abs/1810.04805)
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        max_sequence_length,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_positive_int(
            "vocabulary_size", vocabulary_size
        )
        if self.vocabulary_size < 2:
            raise invalid_value(
                "vocabulary_size", "an integer >= 2", vocabulary_size
            )
        self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
        self.max_sequence_length = check_positive_int(
            "max_sequence_length", max_sequence_length
        )
        self.dropout = check_dropout("dropout", dropout)
        if (
            isinstance(layer_norm_epsilon, bool)
            or not isinstance(layer_norm_epsilon, (int, float))
            or not layer_norm_epsilon > 0
        ):
            raise invalid_value(
                "layer_norm_epsilon", "a float > 0", layer_norm_epsilon
            )
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        policy = self.dtype_policy
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.hidden_dim,
            embeddings_initializer=bert_initializer(),
            dtype=policy,
            name="token_embedding",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy,
            name="embeddings_layer_norm",
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=policy, name="embeddings_dropout"
        )

    def build(self, input_shape):
        shape = check_token_ids_shape(input_shape)
        length = shape[1]
        if length is not None and length > self.max_sequence_length:
            raise invalid_value(
                "input_shape",
                f"sequences of at most max_sequence_length="
                f"{self.max_sequence_length} tokens",
                shape,
            )
        self.token_embedding.build(shape)
        self.position_embeddings = self.add_weight(
            shape=(self.max_sequence_length, self.hidden_dim),
            initializer=bert_initializer(),
            name="position_embeddings",
        )
        self.segment_embedding = self.add_weight(
            shape=(self.hidden_dim,),
            initializer=bert_initializer(),
            name="segment_embedding",
        )
        self.layer_norm.build(shape + (self.hidden_dim,))

    def call(self, inputs, training=None):
        x = self.token_embedding(inputs)
        length = ops.shape(x)[1]
        # `keras.ops` calls throughout (no `+` or `[:]` on variables): the
        # Fisher pass of EWC intercepts them for one-pass per-sample
        # gradients (`keras_eexit.fisher.per_sample`). The variable is
        # converted before the slice: JAX's `dynamic_slice` takes arrays,
        # not objects with `__jax_array__`.
        table = ops.convert_to_tensor(self.position_embeddings)
        positions = ops.cast(
            ops.slice(table, (0, 0), (length, self.hidden_dim)),
            self.compute_dtype,
        )
        segment = ops.cast(self.segment_embedding, self.compute_dtype)
        x = ops.add(ops.add(x, ops.expand_dims(positions, 0)), segment)
        x = self.layer_norm(x)
        return self.dropout_layer(x, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
