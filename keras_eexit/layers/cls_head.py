"""`ClsHead`: BERT's classifier on the [CLS] token (pooler, then logits)."""

import numbers

import keras

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.layers._base import check_bool
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_token_shape
from keras_eexit.utils.validation import invalid_value


@register
class ClsHead(ExitHead):
    """Exit head of a BERT-style encoder: reads the [CLS] token.

    Follows BERT's `pooled_output` convention: the hidden vector of the
    first token ([CLS]) goes through a `Dense` layer of the same width with
    `tanh` (the "pooler"), then dropout, then a `Dense` to logits, as in
    BERT's sequence classifier. Every exit has its own pooler, as the
    "off-ramps" of DeeBERT do. With `pooler=False` the [CLS] vector goes
    straight to dropout and the logits.

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        pooler: Boolean, whether to apply the `tanh` pooler. Defaults to
            `True`.
        dropout: Float in [0, 1), the dropout rate before the logits.
            Defaults to `0.0`.
        token_index: Integer >= 0, the position of the token read.
            Defaults to `0` ([CLS]).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A float tensor `(batch_size, sequence_length, hidden_dim)`.
        training: Python boolean, whether dropout is active.

    Input shape:
        3D tensor `(batch_size, sequence_length, hidden_dim)`.

    Output shape:
        2D tensor `(batch_size, num_classes)` of logits. Under a mixed
        dtype policy the logits are `float32`.

    Example:

    ```python
    hidden = keras.random.normal((2, 16, 64))
    ClsHead(3, dropout=0.1, name="exit_1")(hidden).shape  # (2, 3)
    ```

    References:
        - [Devlin et al., 2019. BERT: Pre-training of Deep Bidirectional
          Transformers for Language Understanding](
          https://arxiv.org/abs/1810.04805)
        - [Xin et al., 2020. DeeBERT: Dynamic Early Exiting for
          Accelerating BERT Inference](https://arxiv.org/abs/2004.12993)
    """

    def __init__(self, num_classes, pooler=True, dropout=0.0,
                 token_index=0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.pooler = check_bool("pooler", pooler)
        self.dropout = check_dropout("dropout", dropout)
        if (
            isinstance(token_index, bool)
            or not isinstance(token_index, numbers.Integral)
            or token_index < 0
        ):
            raise invalid_value("token_index", "an integer >= 0", token_index)
        self.token_index = int(token_index)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )
        self.logits = self._make_logits_layer()
        self.pooler_dense = None

    def build(self, input_shape):
        shape = check_token_shape(input_shape)
        if shape[1] is not None and shape[1] <= self.token_index:
            raise invalid_value(
                "token_index",
                f"a position inside the sequence (length {shape[1]})",
                self.token_index,
            )
        pooled_shape = (shape[0], shape[-1])
        if self.pooler:
            self.pooler_dense = keras.layers.Dense(
                shape[-1],
                activation="tanh",
                kernel_initializer=keras.initializers.TruncatedNormal(
                    stddev=0.02
                ),
                dtype=self.dtype_policy,
                name="pooler",
            )
            self.pooler_dense.build(pooled_shape)
        self.dropout_layer.build(pooled_shape)
        self.logits.build(pooled_shape)

    def call(self, inputs, training=None):
        x = inputs[:, self.token_index, :]
        if self.pooler_dense is not None:
            x = self.pooler_dense(x)
        x = self.dropout_layer(x, training=training)
        return self.logits(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pooler": self.pooler,
                "dropout": self.dropout,
                "token_index": self.token_index,
            }
        )
        return config
