"""`TransformerBlock`: multi-head self-attention and an MLP, pre-/post-norm."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import check_bool
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_epsilon
from keras_eexit.layers._base import check_token_shape
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

def _padding_to_attention_mask(mask, attention_mask):
    """Merges a `(batch, tokens)` padding mask into a `(batch, T, S)` one."""
    if mask is None:
        return attention_mask
    keys = ops.expand_dims(ops.cast(mask, "bool"), axis=1)  # (B, 1, S)
    if attention_mask is None:
        return keys
    return ops.logical_and(ops.cast(attention_mask, "bool"), keys)


@register
class TransformerBlock(keras.layers.Layer):
    """A pre-norm transformer encoder block.

    The block of ViT (Dosovitskiy et al., eq. 2-3) and of torchvision's
    `EncoderBlock`:

        y = x + Dropout(MultiHeadAttention(LayerNorm(x)))
        out = y + MLP(LayerNorm(y))

    where `MLP` is `Dense(mlp_dim)`, the activation (GELU), dropout,
    `Dense(dim)` and dropout. With `norm_first=False` the block is post-norm
    (the original Transformer and BERT): `y = LayerNorm(x + Dropout(MHA(x)))`,
    `out = LayerNorm(y + MLP(y))`.

    The attention is `keras.layers.MultiHeadAttention` with `heads` heads of
    size `dim // heads` and biases on the query, key, value and output
    projections: `4 * dim * (dim + 1)` weights, as in PyTorch's
    `nn.MultiheadAttention`.

    Args:
        dim: Integer >= 1, the token width (input and output).
        heads: Integer >= 1 dividing `dim`, the number of attention heads.
        mlp_dim: Integer >= 1, the hidden width of the MLP.
        dropout: Float in [0, 1), dropout after the attention and in the MLP.
            Defaults to `0.0`.
        attention_dropout: Float in [0, 1), dropout on the attention
            weights. Defaults to `0.0`.
        activation: activation of the MLP's hidden layer, a name or callable
            accepted by `keras.activations.get`. Defaults to `"gelu"` (the
            exact, erf-based GELU of ViT and BERT).
        epsilon: Float > 0, the epsilon of both layer normalizations.
            Defaults to `1e-6` (ViT; BERT uses `1e-12`).
        norm_first: Boolean, pre-norm (`True`, the default) or post-norm.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A `(batch, tokens, dim)` tensor.
        attention_mask: Optional boolean tensor `(batch, tokens, tokens)`
            (or broadcastable to it, e.g. `(batch, 1, tokens)`): `True`
            where a query token may attend to a key token.
        mask: Optional boolean padding mask `(batch, tokens)`, `True` for
            real tokens. Keys that are padding are not attended to. Passed
            automatically when the input carries a Keras mask (for example
            from `Embedding(mask_zero=True)`); the mask is propagated.
        training: Python boolean, whether dropout is active.

    Input shape:
        3D tensor `(batch_size, tokens, dim)`.

    Output shape:
        3D tensor `(batch_size, tokens, dim)`.

    Example:

    ```python
    block = TransformerBlock(dim=64, heads=4, mlp_dim=128)
    block(keras.random.normal((2, 17, 64))).shape  # (2, 17, 64)
    ```

    References:
        - [Vaswani et al., 2017. Attention Is All You Need](
            https://arxiv.org/abs/1706.03762)
        - [Dosovitskiy et al., 2021. An Image is Worth 16x16 Words](
            https://arxiv.org/abs/2010.11929) (pre-norm block, GELU MLP)
    """

    def __init__(
        self,
        dim,
        heads,
        mlp_dim,
        dropout=0.0,
        attention_dropout=0.0,
        activation="gelu",
        epsilon=1e-6,
        norm_first=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dim = check_positive_int("dim", dim)
        self.heads = check_positive_int("heads", heads)
        if self.dim % self.heads:
            raise invalid_value(
                "heads", f"a divisor of dim={self.dim}", heads
            )
        self.mlp_dim = check_positive_int("mlp_dim", mlp_dim)
        self.dropout = check_dropout("dropout", dropout)
        self.attention_dropout = check_dropout(
            "attention_dropout", attention_dropout
        )
        self.activation = keras.activations.get(activation)
        self.epsilon = check_epsilon(epsilon)
        self.norm_first = check_bool("norm_first", norm_first)
        self.supports_masking = True
        policy = self.dtype_policy
        self.norm_1 = keras.layers.LayerNormalization(
            epsilon=self.epsilon, dtype=policy, name="norm_1"
        )
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.heads,
            key_dim=self.dim // self.heads,
            dropout=self.attention_dropout,
            dtype=policy,
            name="attention",
        )
        self.attention_dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=policy, name="attention_output_dropout"
        )
        self.norm_2 = keras.layers.LayerNormalization(
            epsilon=self.epsilon, dtype=policy, name="norm_2"
        )
        self.mlp_hidden = keras.layers.Dense(
            self.mlp_dim, dtype=policy, name="mlp_hidden"
        )
        self.mlp_dropout_1 = keras.layers.Dropout(
            self.dropout, dtype=policy, name="mlp_dropout_1"
        )
        self.mlp_output = keras.layers.Dense(
            self.dim, dtype=policy, name="mlp_output"
        )
        self.mlp_dropout_2 = keras.layers.Dropout(
            self.dropout, dtype=policy, name="mlp_dropout_2"
        )

    def build(self, input_shape):
        shape = check_token_shape(input_shape, self.dim)
        self.norm_1.build(shape)
        self.attention.build(shape, shape)
        self.norm_2.build(shape)
        self.mlp_hidden.build(shape)
        self.mlp_output.build(shape[:-1] + (self.mlp_dim,))

    def _attend(self, x, attention_mask, training):
        x = self.attention(
            x, x, attention_mask=attention_mask, training=training
        )
        return self.attention_dropout_layer(x, training=training)

    def _mlp(self, x, training):
        x = self.activation(self.mlp_hidden(x))
        x = self.mlp_dropout_1(x, training=training)
        x = self.mlp_output(x)
        return self.mlp_dropout_2(x, training=training)

    def call(self, inputs, attention_mask=None, mask=None, training=None):
        attention_mask = _padding_to_attention_mask(mask, attention_mask)
        x = inputs
        if self.norm_first:
            x = x + self._attend(self.norm_1(x), attention_mask, training)
            return x + self._mlp(self.norm_2(x), training)
        x = self.norm_1(x + self._attend(x, attention_mask, training))
        return self.norm_2(x + self._mlp(x, training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "dim": self.dim,
                "heads": self.heads,
                "mlp_dim": self.mlp_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": keras.activations.serialize(self.activation),
                "epsilon": self.epsilon,
                "norm_first": self.norm_first,
            }
        )
        return config
