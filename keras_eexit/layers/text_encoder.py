"""`TextEncoderLayer`: a post-norm (BERT-style) Transformer encoder block."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers._base import check_token_shape
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


def bert_initializer():
    """BERT's weight initializer: truncated normal with standard deviation
    0.02."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@register
class TextEncoderLayer(keras.layers.Layer):
    """One BERT encoder block (post-norm self-attention and feed-forward).

    The block of Devlin et al. (BERT), with the layer normalization after
    each residual addition ("post-norm"), unlike the pre-norm blocks of
    ViT:

        x = LayerNorm(x + Dropout(SelfAttention(x, mask)))
        x = LayerNorm(x + Dropout(Dense(Activation(Dense(x)))))

    It follows `keras_hub.layers.TransformerEncoder(normalize_first=False)`
    op for op (same sub-layers, same activation and epsilon), so a builtin
    model behaves like a keras-hub `BertBackbone` of the same size. Padding
    positions are never attended to: `padding_mask` (1 for real tokens, 0
    for padding) becomes an attention mask over the keys.

    Args:
        num_heads: Integer >= 1, the number of attention heads. The hidden
            width (the last input axis) must be divisible by it.
        intermediate_dim: Integer >= 1, the width of the feed-forward
            layer (BERT uses 4 times the hidden width).
        dropout: Float in [0, 1), the dropout rate of the attention
            probabilities and of both residual branches. Defaults to `0.1`.
        activation: Activation of the feed-forward layer, a name or a
            callable accepted by `keras.activations.get`. Defaults to
            `"gelu_approximate"` (the tanh approximation BERT uses).
        layer_norm_epsilon: Float > 0, epsilon of the layer normalizations.
            Defaults to `1e-12` (BERT's value).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A float tensor `(batch_size, sequence_length, hidden_dim)`.
        padding_mask: Optional tensor `(batch_size, sequence_length)`,
            non-zero (or `True`) for tokens that may be attended to.
        training: Python boolean, whether dropout is active.

    Input shape:
        3D tensor `(batch_size, sequence_length, hidden_dim)`.

    Output shape:
        Same as the input.

    Example:

    ```python
    x = keras.random.normal((2, 16, 64))
    mask = np.ones((2, 16), "int32")
    TextEncoderLayer(num_heads=4, intermediate_dim=256)(
        x, padding_mask=mask).shape  # (2, 16, 64)
    ```

    References:
        - [Devlin et al., 2019. BERT: Pre-training of Deep Bidirectional
          Transformers for Language Understanding](
          https://arxiv.org/abs/1810.04805)
        - [Vaswani et al., 2017. Attention Is All You Need](
          https://arxiv.org/abs/1706.03762)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        activation="gelu_approximate",
        layer_norm_epsilon=1e-12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int(
            "intermediate_dim", intermediate_dim
        )
        self.dropout = check_dropout("dropout", dropout)
        self.activation = activation
        self._activation_fn = _get_activation(activation)
        if (
            isinstance(layer_norm_epsilon, bool)
            or not isinstance(layer_norm_epsilon, (int, float))
            or not layer_norm_epsilon > 0
        ):
            raise invalid_value(
                "layer_norm_epsilon", "a float > 0", layer_norm_epsilon
            )
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.supports_masking = False

    def build(self, input_shape):
        shape = check_token_shape(input_shape)
        hidden_dim = int(shape[-1])
        if hidden_dim % self.num_heads:
            raise invalid_value(
                "num_heads",
                f"a divisor of the hidden width {hidden_dim}",
                self.num_heads,
            )
        policy = self.dtype_policy
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            kernel_initializer=bert_initializer(),
            dtype=policy,
            name="self_attention_layer",
        )
        self.attention.build(shape, shape)
        self.attention_dropout = keras.layers.Dropout(
            self.dropout, dtype=policy, name="self_attention_dropout"
        )
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy,
            name="self_attention_layer_norm",
        )
        self.attention_norm.build(shape)
        self.intermediate = keras.layers.Dense(
            self.intermediate_dim,
            activation=self._activation_fn,
            kernel_initializer=bert_initializer(),
            dtype=policy,
            name="feedforward_intermediate_dense",
        )
        self.intermediate.build(shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=bert_initializer(),
            dtype=policy,
            name="feedforward_output_dense",
        )
        self.output_dense.build(shape[:-1] + (self.intermediate_dim,))
        self.feedforward_dropout = keras.layers.Dropout(
            self.dropout, dtype=policy, name="feedforward_dropout"
        )
        self.feedforward_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=policy,
            name="feedforward_layer_norm",
        )
        self.feedforward_norm.build(shape)

    def call(self, inputs, padding_mask=None, training=None):
        mask = None
        if padding_mask is not None:
            # (batch, keys) -> (batch, 1, keys): every query sees the same
            # keys; Keras broadcasts it over queries and heads.
            mask = ops.expand_dims(ops.cast(padding_mask, "bool"), axis=1)
        x = self.attention(
            inputs, inputs, attention_mask=mask, training=training
        )
        x = self.attention_dropout(x, training=training)
        x = self.attention_norm(inputs + x)
        y = self.output_dense(self.intermediate(x))
        y = self.feedforward_dropout(y, training=training)
        return self.feedforward_norm(x + y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": (
                    self.activation if isinstance(self.activation, str)
                    else keras.activations.serialize(self._activation_fn)
                ),
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


def _get_activation(activation):
    if activation == "gelu_approximate":
        return _gelu_approximate
    try:
        return keras.activations.get(activation)
    except (ValueError, TypeError):
        raise invalid_value(
            "activation",
            "an activation name or callable (keras.activations.get)",
            activation,
        ) from None


def _gelu_approximate(x):
    return keras.activations.gelu(x, approximate=True)
