"""`GPFHead`: an exit of the Global Past-Future early-exit method."""

import math

import keras
from keras import ops

from keras_eexit import chain
from keras_eexit.api import register
from keras_eexit.layers._base import check_dropout
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


@register
class GPFHead(keras.layers.Layer):
    """An exit of Global Past-Future (GPF): past states and imitated futures.

    Exit `k` of `n` GPF exits (Liao et al., 2021) predicts from the states
    of every exit, past, present and future:

    * its state `h_k = ReLU(state_head(features))` (`state_dim` units);
    * the *past*: the states of exits `1..k-1`, read from the chain's exit
      memory, without gradient;
    * the *future*: imitations `ĥ_{k→j} = ReLU(A_j h_k + a_j)` of the
      states of the later exits `j = k+1..n`, which later exits train to
      resemble their real states (the imitation loss below).

    With the slots `x_l` (l = 1..n: past states, `h_k`, imitations), per-slot
    projections give `s_l = R_l x_l + r_l` (classes); the exit's logits are

        λ · Σ_{l≤k} s_l + (1 - λ) · Σ_{l>k} s_l,
        λ = sigmoid(B · ReLU(mean_{l≤k}(G_l x_l + g_l)) + b_B),

    an adaptive balance of past and future. This is the computation of
    Kubaty et al.'s benchmark (kamadforge/early-exit-benchmark,
    `architectures/early_exits/gpf.py`), which its authors note is
    "inconsistent with the description in the paper, but consistent with
    the original implementation" (lancopku/Early-Exit). Differences from
    the original code (BERT): there the state is the layer's `tanh` pooler,
    imitations are `tanh(W_j h)`, the gate is `tanh` of the mean and the
    logits are `2λ·past + (2 - 2λ)·future`.

    *Imitation loss.* While training, when exit `i` trains (its layer is
    trainable when the train step is traced; regimes retrace at every
    phase), its imitations travel in its carry, and exit `j > i` adds
    (`add_loss`) `imitation_weight · mean_batch(1 - cos(sg(h_j), ĥ_{i→j}))
    / ((n - 1)(n - i))`: summed over all pairs this is the benchmark's
    `(1/(n-1)) Σ_{i<n} mean_{j>i} (1 - cos)` (a `CosineEmbeddingLoss` with
    target 1 on detached real states). The gradient reaches exit `i`'s
    imitators, its state and the backbone below it, never exit `j`. A
    frozen exit's imitations carry no loss, so e.g. a backbone-only phase
    is not pulled by the imitation of frozen heads.

    *Parameters.* Unlike the original code, which shares each slot's
    projection (and each target's imitator) across exits, every exit owns
    the parameters it uses: each head is then a self-contained layer that
    saves and loads alone, and freezing a head freezes exactly what it
    computes with. The computation of each exit is the same; the number of
    parameters grows with `n` per exit.

    The head reads earlier exits (`reads_exits = True`, see
    `keras_eexit.chain`): it is called with `(features, exits)` and returns
    `(logits, carry)`; its carry is `(sg(h_k),)`, plus its imitations while
    it trains.

    Args:
        head: the state head, a layer mapping the features to `state_dim`
            values (an exit head built with `state_dim` "classes").
        num_classes: the number of classes.
        num_exits: `n`, the number of GPF exits of the network (this head's
            position is the number of earlier exits it reads, plus one).
        imitation_weight: factor of the imitation loss (>= 0).
        state_dropout: dropout rate on the slots during training (the
            benchmark's `state_dropout`, 0 in its scripts).
        **kwargs: base layer arguments (`name`, ...).

    Call arguments:
        inputs: `(features, exits)`: the head's input tensor and the
            carries of exits 1..k-1 (GPF carries).
        training: dropout, imitation loss and imitations in the carry.

    Returns:
        `(logits, carry)`; logits `(batch, num_classes)` float32.

    Example:

    ```python
    heads = [GPFHead(LinearHead(64), num_classes=10, num_exits=3)
             for _ in range(3)]
    memory = ()
    for head, features in zip(heads, features_per_exit):
        logits, carry = head((features, memory))
        memory += (carry,)
    ```

    References:
        - [Liao et al., 2021. A Global Past-Future Early Exit Method for
          Accelerating Inference of Pre-trained Language Models](
          https://aclanthology.org/2021.naacl-main.162), NAACL 2021 (code:
          lancopku/Early-Exit).
    """

    reads_exits = True

    def __init__(self, head, num_classes, num_exits, imitation_weight=1.0,
                 state_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(head, dict):
            head = keras.saving.deserialize_keras_object(head)
        if not isinstance(head, keras.layers.Layer) or chain.reads_exits(
                head):
            raise invalid_value("head", "a keras.layers.Layer (a state head)",
                                head)
        self.head = head
        self.num_classes = check_num_classes(num_classes)
        self.num_exits = check_positive_int("num_exits", num_exits)
        self.imitation_weight = check_number("imitation_weight",
                                             imitation_weight, low=0.0)
        self.state_dropout = check_dropout("state_dropout", state_dropout)
        self.dropout = keras.layers.Dropout(self.state_dropout,
                                            dtype="float32", name="dropout")
        self.balance = keras.layers.Dense(self.num_classes, dtype="float32",
                                          name="balance")

    @property
    def position(self):
        """This exit's number among the GPF exits (1..n), once built."""
        return getattr(self, "_position", None)

    def build(self, input_shape):
        features_shape, exits_shape = input_shape
        exits_shape = tuple(exits_shape)
        d = int(self.head.compute_output_spec(
            keras.KerasTensor(tuple(features_shape))).shape[-1])
        self.state_dim = d
        k = len(exits_shape) + 1
        n, c = self.num_exits, self.num_classes
        if k > n:
            raise ValueError(
                f"GPFHead {self.name!r} is exit {k} of a chain of GPF exits, "
                f"but num_exits={n}: give every GPF head the number of GPF "
                "exits of the network.")
        for carry in exits_shape:
            carry = tuple(carry)
            if not carry or tuple(carry[0])[-1:] != (d,):
                raise ValueError(
                    f"GPFHead {self.name!r} (state_dim {d}) reads earlier "
                    f"exits whose carries are {exits_shape}: every earlier "
                    f"exit must be a GPFHead with state_dim {d}.")
        self._position = k
        scale = 1.0 / math.sqrt(d)
        self.reduction_kernel = self.add_weight(
            shape=(n, d, c), name="reduction_kernel", dtype="float32",
            initializer=keras.initializers.RandomNormal(0.0, scale))
        self.reduction_bias = self.add_weight(
            shape=(n, c), name="reduction_bias", dtype="float32",
            initializer="zeros")
        self.gate_kernel = self.add_weight(
            shape=(k, d, c), name="gate_kernel", dtype="float32",
            initializer=keras.initializers.RandomNormal(0.0, scale))
        self.gate_bias = self.add_weight(
            shape=(k, c), name="gate_bias", dtype="float32",
            initializer="zeros")
        self.balance.build((None, c))
        if n > k:
            # torch.nn.Linear's default initialisation, as the benchmark's
            # imitators.
            uniform = keras.initializers.RandomUniform(-scale, scale)
            self.imitator_kernel = self.add_weight(
                shape=(n - k, d, d), name="imitator_kernel",
                dtype="float32", initializer=uniform)
            self.imitator_bias = self.add_weight(
                shape=(n - k, d), name="imitator_bias", dtype="float32",
                initializer=uniform)

    def call(self, inputs, training=None):
        features, exits = inputs
        exits = tuple(exits)
        k, n = self._position, self.num_exits
        # Variables read in `call` follow the compute dtype (float16 under
        # mixed precision): the head computes in float32.
        w = {name: ops.cast(getattr(self, name), "float32")
             for name in _WEIGHTS if hasattr(self, name)}
        state = ops.relu(ops.cast(self.head(features, training=training),
                                  "float32"))
        slots = [ops.cast(carry[0], "float32") for carry in exits] + [state]
        future = None
        if n > k:
            future = ops.relu(
                ops.einsum("bd,jde->bje", state, w["imitator_kernel"])
                + w["imitator_bias"])
        x = ops.stack(slots, axis=1)  # (batch, k, d)
        if future is not None:
            x = ops.concatenate([x, future], axis=1)  # (batch, n, d)
        x = self.dropout(x, training=training)
        projected = ops.einsum("bnd,ndc->bnc", x,
                               w["reduction_kernel"]) + w["reduction_bias"]
        past = ops.sum(projected[:, :k], axis=1)
        gate = ops.einsum("bnd,ndc->bnc", x[:, :k],
                          w["gate_kernel"]) + w["gate_bias"]
        balance = ops.sigmoid(self.balance(ops.relu(ops.mean(gate, axis=1))))
        logits = balance * past
        if future is not None:
            logits = logits + (1.0 - balance) * ops.sum(projected[:, k:],
                                                        axis=1)
        if training:
            self._add_imitation_loss(state, exits)
        carry = (ops.stop_gradient(state),)
        if training and self.trainable and future is not None:
            carry = carry + (future,)
        return logits, carry

    def _add_imitation_loss(self, state, exits):
        """Adds this exit's share of the imitation loss (it is a target)."""
        if not self.imitation_weight:
            return
        n, k = self.num_exits, self._position
        target = _unit(ops.stop_gradient(state))
        total = None
        for i, carry in enumerate(exits, start=1):  # source exit i < k
            if len(carry) < 2:
                continue  # exit i is frozen or not training: no loss
            imitation = _unit(ops.cast(carry[1][:, k - i - 1], "float32"))
            loss = ops.mean(1.0 - ops.sum(target * imitation, axis=-1))
            loss = loss / ((n - 1) * (n - i))
            total = loss if total is None else total + loss
        if total is not None:
            self.add_loss(self.imitation_weight * total)

    def get_config(self):
        config = super().get_config()
        config.update({
            "head": keras.saving.serialize_keras_object(self.head),
            "num_classes": self.num_classes,
            "num_exits": self.num_exits,
            "imitation_weight": self.imitation_weight,
            "state_dropout": self.state_dropout,
        })
        return config


_WEIGHTS = ("reduction_kernel", "reduction_bias", "gate_kernel", "gate_bias",
            "imitator_kernel", "imitator_bias")


def _unit(x):
    """`x / ||x||` along the last axis (zero vectors stay zero)."""
    norm = ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True),
                                1e-16))
    return x / norm
