"""`ZTWHead`: Zero Time Waste's cascading exit with its geometric ensemble."""

import keras
from keras import ops

from keras_eexit import chain
from keras_eexit.api import register
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import invalid_value

LAYER_NORM_EPSILON = 1e-5
"""ε of the cascading layer norm: PyTorch's `nn.LayerNorm` default, which
both authors' codes use (`heads.py` of Kubaty et al.'s benchmark,
gmum/Zero-Time-Waste); Keras' default is 1e-3."""


@register
class ZTWHead(keras.layers.Layer):
    """An exit of Zero Time Waste: cascading connection and ensemble.

    Wraps any exit head. Exit `k` of a ZTW network computes its own logits
    from its features and, through the *cascading connection*, from the
    logits of exit `k - 1` (Wołczyk et al., 2021, sec. 3.1):

        raw_k = head(features) + W · LayerNorm(stop_gradient(raw_{k-1}))

    which is the paper's "concatenate the previous exit's output to the
    features before the last linear layer" written as a sum (every exit
    head ends in a `Dense`, and a `Dense` of a concatenation is the sum of
    the two parts' products). The layer normalisation and the
    stop-gradient are the authors' defaults (ZTW appendix; `--detach_prev
    --detach_norm layernorm` in gmum/Zero-Time-Waste, `detach=True,
    layer_norm=True` in Kubaty et al.'s benchmark), the layer norm with
    PyTorch's `nn.LayerNorm` defaults as there (ε = 1e-5, learned scale
    and offset; Keras' own default ε is 1e-3, which moves logits of small
    spread). Exit `k` reads nothing from later exits: the chain runs exits
    in order.

    The *geometric ensemble* (sec. 3.2) combines the exits 1..k:

        z_k = (1/k) · Σ_{i≤k} exp(w_i) · log_softmax(raw_i) + b

    (logits: their softmax is the normalised product `Π p_i^{exp(w_i)/k}`
    times `exp(b)`), with `w ~ N(0, 0.01)` and `b = 0` at the start, as in
    both codes (`GeometricWeightedEnsemble`, `WeightedAverage`). `w` and `b`
    are *non-trainable* variables: no regime phase moves them (nor decays
    them); only ZTW's ensemble phase (`keras_eexit.methods.ZTW`), which
    trains them with the rest of the network frozen, as the paper
    prescribes. Until that phase has run (`ensemble_ready == 0`) the exit
    outputs `raw_k`, so every regime trains the cascading exits exactly as
    the paper's first step does; afterwards it outputs `z_k`.

    The head reads earlier exits (`reads_exits = True`, see
    `keras_eexit.chain`): it is called with `(features, exits)`, where
    `exits` holds the *carries* of exits 1..k-1, and returns
    `(logits, carry)`; its carry is `raw_k`.

    Args:
        head: the exit head to wrap (a layer returning class logits, no
            damping unit).
        cascade: whether the exit reads the previous exit's logits (False
            for exit 1 and for the backbone's own final exit).
        ensemble: whether the exit's output becomes the geometric ensemble
            of exits 1..k once trained.
        detach: stop the gradient of the cascading input (authors' default).
        layer_norm: layer-normalise the cascading input (authors' default).
        **kwargs: base layer arguments (`name`, ...).

    Call arguments:
        inputs: `(features, exits)`: the head's input tensor and the tuple
            of earlier exits' carries (their raw logits).
        training: passed to the wrapped head.

    Returns:
        `(logits, raw_logits)`, each `(batch, num_classes)` float32.

    Example:

    ```python
    first = ZTWHead(LinearHead(10), cascade=False)
    second = ZTWHead(LinearHead(10))
    logits_1, carry_1 = first((features_1, ()))
    logits_2, carry_2 = second((features_2, (carry_1,)))
    ```

    References:
        - [Wołczyk et al., 2021. Zero Time Waste: Recycling Predictions in
          Early Exit Neural Networks](https://arxiv.org/abs/2106.05409),
          NeurIPS 2021 (code: gmum/Zero-Time-Waste).
    """

    reads_exits = True

    def __init__(self, head, cascade=True, ensemble=True, detach=True,
                 layer_norm=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(head, dict):
            head = keras.saving.deserialize_keras_object(head)
        if not isinstance(head, keras.layers.Layer):
            raise invalid_value("head", "a keras.layers.Layer (an exit head)",
                                head)
        if chain.extra_units(head) or chain.reads_exits(head):
            raise invalid_value(
                "head",
                "a plain exit head (no damping unit, not itself reading "
                "earlier exits)", head)
        self.head = head
        self.cascade = check_bool("cascade", cascade)
        self.ensemble = check_bool("ensemble", ensemble)
        self.detach = check_bool("detach", detach)
        self.layer_norm = check_bool("layer_norm", layer_norm)
        self.cascade_norm = None
        self.cascade_dense = None

    @property
    def num_members(self):
        """Exits in the ensemble (this exit's number), once built."""
        return getattr(self, "_members", None)

    def build(self, input_shape):
        features_shape, exits_shape = input_shape
        exits_shape = tuple(exits_shape)
        logits = self.head.compute_output_spec(
            keras.KerasTensor(tuple(features_shape)))
        classes = int(logits.shape[-1])
        self.num_classes = classes
        for carry in exits_shape:
            if tuple(carry)[-1] != classes:
                raise ValueError(
                    f"ZTWHead {self.name!r} reads earlier exits with "
                    f"{[tuple(c) for c in exits_shape]} logits, but its "
                    f"head has {classes} classes: every exit of a ZTW "
                    "network must predict the same classes.")
        if self.cascade:
            if not exits_shape:
                raise ValueError(
                    f"ZTWHead {self.name!r} has cascade=True but is the "
                    "first exit: there is no previous exit to read (build "
                    "exit 1 with cascade=False).")
            if self.layer_norm:
                self.cascade_norm = keras.layers.LayerNormalization(
                    epsilon=LAYER_NORM_EPSILON, dtype="float32",
                    name="cascade_norm")
                self.cascade_norm.build((None, classes))
            self.cascade_dense = keras.layers.Dense(
                classes, use_bias=False, dtype="float32",
                name="cascade")
            self.cascade_dense.build((None, classes))
        self._members = len(exits_shape) + 1
        if self.ensemble:
            self.ensemble_weights = self.add_weight(
                shape=(self._members,), name="ensemble_weights",
                initializer=keras.initializers.RandomNormal(0.0, 0.01),
                trainable=False, dtype="float32")
            self.ensemble_bias = self.add_weight(
                shape=(classes,), name="ensemble_bias",
                initializer="zeros", trainable=False, dtype="float32")
            self.ensemble_ready = self.add_weight(
                shape=(), name="ensemble_ready", initializer="zeros",
                trainable=False, dtype="float32")

    def ensemble_variables(self):
        """The ensemble's parameters `[w, b]` (empty without ensemble)."""
        if not self.ensemble:
            return []
        return [self.ensemble_weights, self.ensemble_bias]

    def combine(self, members):
        """The geometric ensemble `z_k` of the members' logits (1..k)."""
        logp = ops.stack(
            [ops.log_softmax(ops.cast(m, "float32"), axis=-1)
             for m in members], axis=-1)  # (batch, classes, k)
        # Variables read in `call` follow the compute dtype (float16 under
        # mixed precision): the ensemble computes in float32.
        weights = ops.cast(self.ensemble_weights, "float32")
        coefficients = ops.exp(weights) / len(members)
        return ops.squeeze(
            ops.matmul(logp, ops.expand_dims(coefficients, -1)), -1
        ) + ops.cast(self.ensemble_bias, "float32")

    def call(self, inputs, training=None):
        features, exits = inputs
        exits = tuple(exits)
        raw = ops.cast(self.head(features, training=training), "float32")
        if self.cascade:
            previous = ops.cast(exits[-1], "float32")
            if self.detach:
                previous = ops.stop_gradient(previous)
            if self.cascade_norm is not None:
                previous = self.cascade_norm(previous)
            raw = raw + self.cascade_dense(previous)
        if not self.ensemble:
            return raw, raw
        ensembled = self.combine(exits + (raw,))
        return ops.where(self.ensemble_ready > 0.5, ensembled, raw), raw

    def get_config(self):
        config = super().get_config()
        config.update({
            "head": keras.saving.serialize_keras_object(self.head),
            "cascade": self.cascade,
            "ensemble": self.ensemble,
            "detach": self.detach,
            "layer_norm": self.layer_norm,
        })
        return config
