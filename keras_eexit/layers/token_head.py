"""`TokenHead`: the exit head of a transformer (class token or mean)."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import ExitHead
from keras_eexit.layers._base import check_bool
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_epsilon
from keras_eexit.layers._base import check_token_shape
from keras_eexit.utils.validation import check_choice

TOKEN_POOLING = ("cls", "mean")
"""How a `TokenHead` summarises the tokens: `"cls"` or `"mean"`."""


@register
class TokenHead(ExitHead):
    """Exit head of a transformer: one token summary, then a `Dense`.

    The tokens `(batch, tokens, dim)` are summarised by the first token
    (`pooling="cls"`, the class token of ViT and BERT) or by their mean
    (`pooling="mean"`); the summary is optionally layer-normalised,
    passed through dropout and mapped to one logit per class. The head
    returns logits (no softmax).

    With `norm=True` and `pooling="cls"` this is the classifier of ViT
    (torchvision's `VisionTransformer`: the encoder's final `LayerNorm`,
    then a `Dense` on the class token; normalising the class token alone
    is the same as normalising every token and keeping the first). With
    `norm=False` and `pooling="cls"` it is the internal classifier the
    early-exit benchmark of Kubaty et al. attaches to transformers
    (`transformer_standard_head`: one `Dense` on the class token). With
    `pooling="mean"` the normalization follows the pooling (timm's
    `fc_norm` for average-pooled ViTs).

    Args:
        num_classes: Integer >= 2, the number of classes (logits).
        pooling: `"cls"` (the first token) or `"mean"` (all tokens).
            Defaults to `"cls"`.
        norm: Boolean, whether a `LayerNormalization` precedes the `Dense`.
            Defaults to `True`.
        epsilon: Float > 0, the epsilon of the normalization. Defaults to
            `1e-6` (ViT).
        dropout: Float in [0, 1), dropout on the summary during training.
            Defaults to `0.0`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A `(batch, tokens, dim)` tensor.
        mask: Optional boolean `(batch, tokens)` padding mask, `True` for
            real tokens; with `pooling="mean"` only those are averaged.
        training: Python boolean, whether dropout is active.

    Input shape:
        3D tensor `(batch_size, tokens, dim)`.

    Output shape:
        2D tensor `(batch_size, num_classes)` of logits. Under a mixed
        dtype policy the logits are `float32`.

    Example:

    ```python
    tokens = keras.random.normal((2, 65, 64))
    head = TokenHead(10, pooling="cls", name="exit_1")
    head(tokens).shape  # (2, 10)
    ```

    References:
        - [Dosovitskiy et al., 2021. An Image is Worth 16x16 Words](
            https://arxiv.org/abs/2010.11929) (class-token classifier)
        - [Kubaty et al., 2025. How to Train Your Multi-Exit Model?](
            https://arxiv.org/abs/2407.14320), code at
            https://github.com/kamadforge/early-exit-benchmark
    """

    def __init__(self, num_classes, pooling="cls", norm=True, epsilon=1e-6,
                 dropout=0.0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.pooling = check_choice("pooling", pooling, TOKEN_POOLING)
        self.norm = check_bool("norm", norm)
        self.epsilon = check_epsilon(epsilon)
        self.dropout = check_dropout("dropout", dropout)
        self.supports_masking = True
        policy = self.dtype_policy
        self.norm_layer = (
            keras.layers.LayerNormalization(
                epsilon=self.epsilon, dtype=policy, name="norm"
            )
            if self.norm
            else None
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=policy, name="dropout"
        )
        self.logits = self._make_logits_layer()

    def build(self, input_shape):
        shape = check_token_shape(input_shape)
        pooled = (shape[0], shape[-1])
        if self.norm_layer is not None:
            self.norm_layer.build(pooled)
        self.dropout_layer.build(pooled)
        self.logits.build(pooled)

    def _pool(self, inputs, mask):
        if self.pooling == "cls":
            return inputs[:, 0, :]
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), axis=-1)
        total = ops.sum(inputs * weights, axis=1)
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        return total / count

    def call(self, inputs, mask=None, training=None):
        x = self._pool(inputs, mask)
        if self.norm_layer is not None:
            x = self.norm_layer(x)
        x = self.dropout_layer(x, training=training)
        return self.logits(x)

    def compute_output_spec(self, inputs, mask=None, training=None):
        return super().compute_output_spec(inputs, training=training)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pooling": self.pooling,
                "norm": self.norm,
                "epsilon": self.epsilon,
                "dropout": self.dropout,
            }
        )
        return config
