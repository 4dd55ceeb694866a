"""L2W: meta-learned sample weights for early-exit training (Han et al.)."""

import keras
import numpy as np
from keras import ops

from keras_eexit import chain
from keras_eexit.api import register
from keras_eexit.compat import model_strategy
from keras_eexit.compat_gradients import differentiable_gradient
from keras_eexit.losses.exit_cross_entropy import per_sample_crossentropy
from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.losses.objective import Objective
from keras_eexit.methods.l2w_lookahead import LOOKAHEADS
from keras_eexit.methods.l2w_lookahead import lookahead_step
from keras_eexit.methods.weight_prediction_network import CENTERINGS
from keras_eexit.methods.weight_prediction_network import INITIALIZERS
from keras_eexit.methods.weight_prediction_network import (
    WeightPredictionNetwork)
from keras_eexit.methods.weight_prediction_network import centred_weights
from keras_eexit.models.train_step import Batch
from keras_eexit.models.train_step import StepContributor
from keras_eexit.models.train_step import stateless_forward
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

EXIT_WEIGHTINGS = ("sum", "regime")
"""How L2W's loss combines the exits: `"sum"`, the authors' `Σ_k mean_i
w_ik ℓ_ik` over the exits the phase trains (those with a positive regime
weight), each counted once; or `"regime"`, each exit's term multiplied by
the regime's exit weight `c_k` (e.g. `1/K` under `Joint()`)."""


def target_probabilities(num_exits, ratio):
    """L2W's target distribution of samples over exits: `p_k ∝ ratio^k`.

    The geometric exit distribution of the meta objective (the authors'
    `calc_target_probs`: `ratio = target_p_index / 20`, 15/20 = 0.75 in
    every released command). `ratio < 1` sends most samples to early exits.

    Args:
        num_exits: K.
        ratio: the common ratio q > 0.

    Returns:
        A float32 NumPy array of K probabilities summing to 1.

    Example:

    >>> target_probabilities(2, 1.0).tolist()
    [0.5, 0.5]
    """
    k = np.arange(1, check_positive_int("num_exits", num_exits) + 1)
    probs = np.power(np.float64(ratio), k)
    return (probs / probs.sum()).astype("float32")


def allocate_samples(confidences, probabilities):
    """Assigns each meta sample to one exit by confidence, as L2W does.

    Exit 1 takes the `floor(n · p_1)` samples it is most confident on;
    exit 2 the `floor(n · p_2)` most confident among the rest; ...; the
    last exit takes every sample left (the "dynamic" meta objective of Han
    et al., their Fig. 3 and `main_cifar_DDP.py`). Ties go to the lower
    sample index. Written with `keras.ops` (a sample's rank is the number
    of samples ahead of it, from pairwise comparisons: `(n, n)` booleans
    for the `n` samples of a meta half), so it runs on every backend.

    Args:
        confidences: tensor `(n, K)`, each exit's max-softmax confidence.
        probabilities: K target probabilities (`target_probabilities`).

    Returns:
        A float32 tensor `(n, K)` with one 1 per row.

    Example:

    >>> masks = allocate_samples([[0.9, 0.5], [0.6, 0.7]], [0.5, 0.5])
    >>> keras.ops.convert_to_numpy(masks).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    confidences = ops.stop_gradient(ops.cast(
        ops.convert_to_tensor(confidences), "float32"))
    n = ops.shape(confidences)[0]
    index = ops.arange(n)
    # `earlier[i, j]`: sample j comes before sample i in a tie.
    earlier = ops.less(index[None, :], index[:, None])
    assigned = ops.zeros((n,), "bool")
    masks = []
    for k, p in enumerate(probabilities[:-1]):
        quota = ops.floor(ops.cast(n, "float32") * float(p))
        score = ops.where(assigned, -np.inf, confidences[:, k])
        ahead = ops.logical_or(
            ops.greater(score[None, :], score[:, None]),
            ops.logical_and(ops.equal(score[None, :], score[:, None]),
                            earlier))
        rank = ops.sum(ops.cast(ahead, "float32"), axis=1)
        take = ops.logical_and(ops.less(rank, quota),
                               ops.logical_not(assigned))
        masks.append(take)
        assigned = ops.logical_or(assigned, take)
    masks.append(ops.logical_not(assigned))
    return ops.cast(ops.stack(masks, axis=1), "float32")


def meta_objective(model, outputs, labels, probabilities):
    """L2W's meta loss: each exit's cross-entropy on the samples it gets.

    Samples are assigned with `allocate_samples` from the confidences of
    `outputs` (class logits: a damping unit is dropped); the loss is the
    sum over exits of the mean cross-entropy over each exit's samples
    (exits that get none contribute 0), as in the authors' code.

    Args:
        model: the `MultiExitModel` (for its heads and exit names).
        outputs: logits by exit name, for the meta samples.
        labels: the meta samples' labels (sparse or one-hot).
        probabilities: the K target probabilities.

    Returns:
        A float32 scalar.
    """
    logits = [ops.cast(chain.class_logits(h, outputs[n]), "float32")
              for h, n in zip(model.heads, model.exit_names)]
    confidences = ops.stack(
        [ops.max(ops.softmax(z, axis=-1), axis=-1) for z in logits], axis=1)
    masks = allocate_samples(confidences, probabilities)
    total = 0.0
    for k, z in enumerate(logits):
        mask = masks[:, k]
        count = ops.sum(mask)
        losses = per_sample_crossentropy(labels, z)
        total = total + ops.sum(mask * losses) / ops.maximum(count, 1.0)
    return total


@register
class L2W(keras.layers.Layer, StepContributor):
    """L2W: meta-learned per-sample, per-exit loss weights (Han et al. 2022).

    A weight prediction network (`WeightPredictionNetwork`) maps the K
    per-exit losses of a training sample to its K loss weights
    `w = 1 + ε · (t − mean t)` (`centred_weights`); the multi-exit model
    trains on the authors' `Σ_k mean_i w_ik · ℓ_ik` over the exits the
    current regime phase trains (`exit_weights="sum"`; the regime's exit
    weights only say which exits count) with the weights held constant.
    The network is meta-learned so that one training step with these
    weights lowers a meta loss that mirrors early-exit inference:
    each meta sample is assigned to the exit most confident on it under a
    geometric budget `p_k ∝ q^k` (`allocate_samples`), and the meta loss is
    every exit's cross-entropy on its samples.

    Each training batch is cut in two halves that take turns (the authors'
    released code): with half A as training data and half B as meta data,

    1. bi-level step (every `meta_interval` steps): `ℓ` and `w(φ)` on A at
       the current parameters θ, a look-ahead θ' = the model optimizer's
       own next update on `∇θ Σ_k mean w ℓ` (its momentum, moments, step
       count and weight decay included: the authors' `MetaSGD.meta_step`
       for their SGD, the same rule for Adam/AdamW) that keeps its
       dependence on φ, the meta loss on B at θ', and one Adam step on φ
       along its exact gradient (second order);
    2. model step on A with the updated network's weights;

    then the same with the halves swapped (`exchange=True`). The
    look-ahead runs `model.stateless_call`, so it neither moves the model's
    weights nor its BatchNorm statistics, and it covers exactly the
    variables the current regime phase trains (under `TwoStage`'s head
    phase, the heads: as Kubaty et al. run L2W under disjoint training).

    `ℓ_ik` is the per-sample loss of the objective's exit term that
    replaces the cross-entropy: cross-entropy by default, the damping or
    power-sqrt loss under `Joint(loss="damping" | "power_sqrt")` — the
    damping paper's combination of its losses with linear scalarization.
    The meta loss always uses the class logits (a damping unit dropped).

    L2W is a training procedure: `attach(model)` installs it in the
    model's train step (`model.train_pipeline`) as its `"step"` (the
    halves and the bi-level step around each model update) and a `"loss"`
    contributor (the weights of each update), which plain `fit` and every
    regime use. Under a feature-cache phase it trains on the cached head
    inputs (the look-ahead then runs the heads alone); a Fisher pass or
    ZTW's ensemble phase replaces it for its phase. The network runs only
    during training: the model's outputs, saved file and FLOPs are
    unchanged (`training_flops_per_sample` reports the network's cost).
    The network and its optimizer are saved by `save_weights` and so by
    `BackupAndRestore` while attached.

    Source followed: the authors' code (LeapLabTHU/L2W-DEN,
    `tools/main_cifar_DDP.py`: the loss `torch.sum(torch.mean(weight *
    losses, 0))` in the look-ahead and the model step; `tools/meta.py`:
    `MetaSGD.meta_step` replays the model optimizer's update;
    `models/weight_predict.py`: `MLP_tanh` with PyTorch's default
    initialisation). Options that keep other behaviour: `exit_weights=
    "regime"` (the regime's exit weights in both losses), `lookahead=
    "sgd"` (a plain gradient step at the optimizer's learning rate),
    `initializer="glorot"` (Keras' default start of the network). The
    model's weight decay follows Keras' optimizer (decoupled), where the
    authors' SGD adds L2 weight decay to the gradient: the look-ahead
    models whichever update the model really takes. Differences: the meta
    optimizer is Keras Adam with decoupled weight decay and a constant
    learning rate (theirs: L2 weight decay, cosine decay; pass a Keras
    schedule for the latter); with `exchange=True` the model optimizer
    steps twice per batch (as theirs does), so an iteration-based
    learning-rate schedule advances twice per batch; `meta_interval` counts
    steps over the whole run (not per epoch). Mixed precision: the meta
    step is not loss-scaled. Distribution strategies with several replicas
    are not supported. Backends: TensorFlow (a traced step), JAX and
    PyTorch (`methods/l2w_steps.py`), equal within 1e-5.

    Args:
        epsilon: ε > 0, the weights' spread (0.8 CIFAR, 0.3 ImageNet).
        centering: one of `CENTERINGS` (`"exits"`, CIFAR; `"all"`,
            ImageNet).
        target_ratio: q > 0 of the meta objective's exit distribution
            (0.75).
        hidden_units: width of the network's hidden layers (500).
        num_layers: number of hidden layers (1).
        meta_learning_rate: Adam learning rate of the network (1e-4), a
            float or a Keras schedule.
        meta_weight_decay: Adam's weight decay of the network (1e-4).
        meta_interval: run the bi-level step every this many train steps
            (1 on CIFAR, 100 on ImageNet).
        lookahead_learning_rate: the look-ahead's learning rate; `None`
            (default) reads the model optimizer's current learning rate.
        lookahead: one of `LOOKAHEADS`: `"optimizer"` (the authors': the
            model optimizer's own update, SGD, Adam or AdamW) or `"sgd"`.
        exit_weights: one of `EXIT_WEIGHTINGS`: `"sum"` (the authors') or
            `"regime"`.
        initializer: the network's initialisation, one of
            `weight_prediction_network.INITIALIZERS` (`"torch"`, the
            authors').
        exchange: alternate the halves' roles (two model steps per batch),
            or `False`: one bi-level step (train on the first half, meta on
            the second), then one model step on the whole batch.
        **kwargs: Base layer keyword arguments (`name`).

    Example:

    ```python
    model = keras_eexit.models.cnn1d()
    keras_eexit.methods.L2W(epsilon=0.8).attach(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(x, y, epochs=20, callbacks=[keras_eexit.regimes.Joint()])
    ```

    References:
        - Han, Pu, Lai, Wang, Song, Cao, Huang, Deng, Huang. Learning to
            Weight Samples for Dynamic Early-exiting Networks. ECCV 2022
            (arXiv:2209.08310); github.com/LeapLabTHU/L2W-DEN.
    """

    roles = ("step", "loss")
    backends = ("tensorflow", "jax", "torch")
    eager_on_jax = True  # it writes the network, outside the trainer state

    def __init__(self, epsilon=0.8, centering="exits", target_ratio=0.75,
                 hidden_units=500, num_layers=1, meta_learning_rate=1e-4,
                 meta_weight_decay=1e-4, meta_interval=1,
                 lookahead_learning_rate=None, exchange=True,
                 lookahead="optimizer", exit_weights="sum",
                 initializer="torch", **kwargs):
        kwargs.setdefault("name", "l2w")
        super().__init__(**kwargs)
        self.epsilon = check_number("epsilon", epsilon, 0.0, low_open=True)
        self.centering = check_choice("centering", centering, CENTERINGS)
        self.target_ratio = check_number("target_ratio", target_ratio, 0.0,
                                         low_open=True)
        self.hidden_units = check_positive_int("hidden_units", hidden_units)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if not isinstance(meta_learning_rate,
                          keras.optimizers.schedules.LearningRateSchedule):
            meta_learning_rate = check_number(
                "meta_learning_rate", meta_learning_rate, 0.0, low_open=True)
        self.meta_learning_rate = meta_learning_rate
        self.meta_weight_decay = check_number(
            "meta_weight_decay", meta_weight_decay, 0.0)
        self.meta_interval = check_positive_int("meta_interval",
                                                meta_interval)
        if lookahead_learning_rate is not None:
            lookahead_learning_rate = check_number(
                "lookahead_learning_rate", lookahead_learning_rate, 0.0,
                low_open=True)
        self.lookahead_learning_rate = lookahead_learning_rate
        self.exchange = check_bool("exchange", exchange)
        self.lookahead = check_choice("lookahead", lookahead, LOOKAHEADS)
        self.exit_weights = check_choice("exit_weights", exit_weights,
                                         EXIT_WEIGHTINGS)
        self.initializer = check_choice("initializer", initializer,
                                        INITIALIZERS)
        self.network = None
        self.optimizer = None
        self.probabilities = None
        self.meta_loss_tracker = keras.metrics.Mean(name="l2w_meta_loss")

    # ----------------------------------------------------------- set-up
    def attach(self, model):
        """Installs this procedure in `model`'s train step.

        Builds the weight prediction network for `model.num_exits` exits
        and its optimizer (so that `BackupAndRestore` finds their
        variables).

        Args:
            model: a `MultiExitModel`.

        Returns:
            This `L2W` (for `l2w = L2W(...).attach(model)`).
        """
        from keras_eexit.models.multi_exit_model import MultiExitModel

        if not isinstance(model, MultiExitModel):
            raise invalid_value("model", "a keras_eexit.MultiExitModel",
                                model)
        self.check_backend()
        strategy = model_strategy(model)
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "L2W does not support distribution strategies with several "
                "replicas yet: train it on one device.")
        num_exits = model.num_exits
        if num_exits < 2:
            raise ValueError(
                "L2W weights the exits of a multi-exit model; "
                f"{model.name!r} has one exit.")
        if self.network is None:
            self.network = WeightPredictionNetwork(
                num_exits, self.hidden_units, self.num_layers,
                initializer=self.initializer,
                name="weight_prediction_network")
            self.network.build((None, num_exits))
            self.optimizer = keras.optimizers.Adam(
                self.meta_learning_rate, weight_decay=self.meta_weight_decay
                or None)
            self.optimizer.build(self.network.trainable_variables)
            self.steps = self.add_weight(
                shape=(), dtype="int32", initializer="zeros",
                trainable=False, name="steps")
            self.probabilities = target_probabilities(num_exits,
                                                      self.target_ratio)
            self.built = True
        elif self.network.num_exits != num_exits:
            raise ValueError(
                f"This L2W was built for {self.network.num_exits} exits; "
                f"model {model.name!r} has {num_exits}.")
        model.train_pipeline.install(self)
        if getattr(model, "train_function", None) is not None:
            model.refresh_train_function()
        return self

    def detach(self, model):
        """Removes this procedure from `model` (plain training again)."""
        model.train_pipeline.remove(self)
        if getattr(model, "train_function", None) is not None:
            model.refresh_train_function()
        return model

    def next_epoch(self):
        """Called by a regime at an epoch boundary within a phase.

        Resets the running mean of the logged `l2w_meta_loss`.
        """
        self.meta_loss_tracker.reset_state()

    def training_flops_per_sample(self):
        """FLOPs of the weight prediction network per training sample.

        One forward pass of the network (2 per multiply-add, the
        convention of `MultiExitModel.flops_per_exit`), which runs only in
        training; the bi-level step adds look-ahead passes of the model
        itself on top. Inference costs nothing extra.

        Returns:
            An int.
        """
        from keras_eexit.models.costs import flops_counter

        if self.network is None:
            raise ValueError("Attach L2W to a model first.")
        count = flops_counter()
        return count(self.network, keras.KerasTensor(
            (1, self.network.num_exits), "float32"),
            convention="keras_eexit")

    # ------------------------------------------------------------ maths
    def sample_weights(self, losses):
        """The loss weights `(batch, K)` for per-exit losses `(batch, K)`.

        Constants (no gradient flows to the losses or the network).
        """
        raw = self.network(ops.stop_gradient(losses))
        return ops.stop_gradient(
            centred_weights(raw, self.epsilon, self.centering))

    def weighted_objective(self, model, losses):
        """The model's objective with L2W's weights on its exit term.

        Args:
            model: the `MultiExitModel`.
            losses: per-exit losses `(batch, K)` (`exit_losses`); the
                weights `centred_weights(WPN(losses))` keep their
                dependence on the network (the look-ahead needs it).

        Returns:
            An `Objective`: the model's, with its term that replaces the
            cross-entropy multiplying its per-sample factors by the
            weights.
        """
        raw = self.network(ops.stop_gradient(losses))
        weights = centred_weights(raw, self.epsilon, self.centering)
        summed = self.exit_weights == "sum"
        return Objective([
            _Reweighted(term, weights, summed)
            if term is _weighted_term(model) else term
            for term in model.objective.terms])

    def meta_loss(self, model, train, meta, alpha=None, values=None):
        """The meta loss after one look-ahead step, as a function of φ.

        Differentiable with respect to the network's variables
        (`meta_gradients` differentiates it), on every backend: the
        look-ahead's gradient is `compat_gradients.differentiable_gradient`.

        Args:
            model: the `MultiExitModel`.
            train: `(x, y, sample_weight)` of the training half, `y` by
                exit name.
            meta: `(x, y)` of the meta half.
            alpha: the look-ahead's learning rate (default:
                `lookahead_learning_rate`, else the model optimizer's).
            values: `(trainable, non_trainable)` values of the model's
                variables to start the look-ahead from (default: their
                current values; JAX's stateless step passes its state's).

        Returns:
            A float32 scalar.
        """
        x, y, sample_weight = train
        meta_x, meta_y = meta
        if alpha is None:
            alpha = self.lookahead_learning_rate
        trainable = model.trainable_variables
        if model.optimizer is not None and not model.optimizer.built:
            # The look-ahead reads the optimizer's state: build it as the
            # first `apply_gradients` would (Keras builds lazily).
            model.optimizer.build(trainable)
        if values is None:
            values = ([ops.convert_to_tensor(v.value) for v in trainable],
                      [ops.convert_to_tensor(v.value)
                       for v in model.non_trainable_variables])
        theta, frozen = values

        def pseudo_loss(theta):
            outputs, _ = stateless_forward(model, theta, frozen, x,
                                           training=True)
            objective = self.weighted_objective(
                model, exit_losses(model, x, y, outputs))
            return objective(model, x, y, outputs, sample_weight)[0]

        grads = differentiable_gradient(pseudo_loss, theta)
        ahead = lookahead_step(model.optimizer, trainable, theta, grads,
                               learning_rate=alpha, mode=self.lookahead)
        outputs, _ = stateless_forward(model, ahead, frozen, meta_x,
                                       training=True)
        labels = meta_y[model.exit_names[0]]
        return meta_objective(model, outputs, labels, self.probabilities)

    def meta_gradients(self, model, train, meta, alpha=None):
        """`(∇φ meta loss, meta loss)`: the exact bi-level gradient.

        Args:
            model, train, meta, alpha: as `meta_loss`.

        Returns:
            `(gradients, loss)`: one gradient per variable of
            `self.network.trainable_variables`, and the meta loss.
        """
        variables = self.network.trainable_variables
        backend = keras.backend.backend()
        if backend == "jax":
            from keras_eexit.methods import l2w_steps

            return l2w_steps.jax_meta_gradients(self, model, train, meta,
                                                alpha)
        if backend == "torch":
            import torch

            loss = self.meta_loss(model, train, meta, alpha)
            targets = [v.value for v in variables]
            grads = torch.autograd.grad(loss, targets, allow_unused=True)
            return ([torch.zeros_like(t) if g is None else g
                     for g, t in zip(grads, targets)], loss.detach())
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = self.meta_loss(model, train, meta, alpha)
        return tape.gradient(loss, variables), loss

    # ------------------------------------------------------- train step
    def _meta_step(self, model, train, meta):
        grads, loss = self.meta_gradients(model, train, meta)
        variables = self.network.trainable_variables
        self.optimizer.apply_gradients(zip(grads, variables))
        self.meta_loss_tracker.update_state(loss)

    def objective(self, model, batch, y_pred, objective):
        """The `"loss"` contribution: L2W's weights on the exit term.

        Args:
            model: the `MultiExitModel`.
            batch: the update's `Batch`.
            y_pred: its logits by exit name.
            objective: the objective so far (the model's).

        Returns:
            `weighted_objective` of the batch's per-exit losses (constant
            weights from the current network).
        """
        return self.weighted_objective(
            model, exit_losses(model, batch.x, batch.y, y_pred))

    def run(self, model, batch, update):
        """The `"step"` contribution: one L2W step on a batch.

        Traced on TensorFlow; eager on PyTorch (`l2w_steps.torch_run`).

        Args:
            model: the `MultiExitModel`.
            batch: the step's `Batch` (inputs, or cached `HeadInputs`).
            update: one model update on a `Batch` (with this `"loss"`
                contribution: L2W's weights).

        Returns:
            The logs of the last update, with `l2w_meta_loss`.
        """
        if keras.backend.backend() == "torch":
            from keras_eexit.methods import l2w_steps

            return l2w_steps.torch_run(self, model, batch, update)
        import tensorflow as tf

        x, y, sample_weight = batch
        size = tf.shape(tf.nest.flatten(x)[0])[0]
        first = (size + 1) // 2
        # A single-sample batch serves as both halves.
        second = tf.where(size >= 2, first, 0)

        def half(start, stop):
            def cut(t):
                return None if t is None else t[start:stop]
            return (tf.nest.map_structure(cut, x),
                    tf.nest.map_structure(cut, y),
                    None if sample_weight is None else cut(sample_weight))

        part_a = half(0, first)
        part_b = half(second, size)
        do_meta = tf.equal(self.steps % self.meta_interval, 0)
        self.steps.assign_add(1)
        # Traced once per train-function trace and called once per half:
        # half the tracing and graph size of two inline copies.
        meta_step = tf.function(
            lambda train, held_out: self._meta_step(model, train, held_out),
            autograph=False)
        model_step = tf.function(
            lambda x, y, w: update(Batch(x, y, w)), autograph=False)

        def meta(train, held_out):
            def run():
                meta_step(train, held_out[:2])
                return tf.constant(True)
            if self.meta_interval == 1:
                run()
            else:
                tf.cond(do_meta, run, lambda: tf.constant(False))

        meta(part_a, part_b)
        if not self.exchange:
            logs = model_step(x, y, sample_weight)
        else:
            model_step(*part_a)
            meta(part_b, part_a)
            logs = model_step(*part_b)
        logs = dict(logs)
        logs["l2w_meta_loss"] = self.meta_loss_tracker.result()
        return logs

    def run_stateless(self, model, state, batch):
        """The `"step"` contribution on JAX (`l2w_steps.jax_run`).

        Args:
            model: the `MultiExitModel`.
            state: the trainer's `(trainable, non_trainable, optimizer,
                metrics)` values.
            batch: the step's `Batch`.

        Returns:
            `(logs, new_state)`.
        """
        from keras_eexit.methods import l2w_steps

        return l2w_steps.jax_run(self, model, state, batch)

    # ---------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        schedule = self.meta_learning_rate
        config.update({
            "epsilon": self.epsilon,
            "centering": self.centering,
            "target_ratio": self.target_ratio,
            "hidden_units": self.hidden_units,
            "num_layers": self.num_layers,
            "meta_learning_rate": (
                keras.saving.serialize_keras_object(schedule)
                if not isinstance(schedule, float) else schedule),
            "meta_weight_decay": self.meta_weight_decay,
            "meta_interval": self.meta_interval,
            "lookahead_learning_rate": self.lookahead_learning_rate,
            "exchange": self.exchange,
            "lookahead": self.lookahead,
            "exit_weights": self.exit_weights,
            "initializer": self.initializer,
        })
        return config


def _weighted_term(model):
    """The objective's term L2W weights: the one replacing cross-entropy."""
    terms = [t for t in model.objective.terms if t.replaces_cross_entropy]
    if not terms or not isinstance(terms[0], ExitTerm):
        raise ValueError(
            "L2W weights the per-sample loss of every exit: the model's "
            "objective needs a per-exit term (an ExitTerm) in place of the "
            f"cross-entropy; it has {model.objective.terms}.")
    return terms[0]


def exit_losses(model, x, y, outputs):
    """Per-sample loss of every exit, `(batch, K)`: what L2W weights.

    The losses of the objective's term that replaces the cross-entropy:
    the cross-entropy itself by default, the damping or power-sqrt loss
    under `Joint(loss=...)` (their `ExitTerm.per_sample`).

    Args:
        model: the `MultiExitModel`.
        x: the batch's inputs.
        y: labels by exit name.
        outputs: logits by exit name.

    Returns:
        A float32 tensor `(batch, K)`.
    """
    term = _weighted_term(model)
    values = term.per_sample(model, x, y, outputs,
                             list(range(model.num_exits)))
    return ops.stack([ops.cast(v, "float32") for v in values], axis=1)


class _Reweighted(ExitTerm):
    """`term` with its per-sample factors multiplied by L2W's weights.

    Delegates every hook of `ExitTerm` to `term`; `sample_factors` changes
    to `w_ik · v_ik` (`v` the term's own factors, such as the damping
    loss's dynamic weights) and, with `summed`, the exit coefficient to 1
    on every exit the term weights positively (0 elsewhere): the authors'
    sum over exits.
    """

    def __init__(self, term, weights, summed=False):
        super().__init__(exits=term.exits, weight=term.weight,
                         name=term.name)
        self.term = term
        self.weights = weights
        self.summed = summed
        self.replaces_cross_entropy = term.replaces_cross_entropy

    def check_model(self, model):
        self.term.check_model(model)

    def exit_positions(self, model):
        return self.term.exit_positions(model)

    def coefficient(self, model, position):
        coefficient = self.term.coefficient(model, position)
        if not self.summed:
            return coefficient
        return ops.cast(ops.greater(coefficient, 0.0), "float32")

    def per_sample(self, model, x, y, y_pred, positions):
        return self.term.per_sample(model, x, y, y_pred, positions)

    def sample_factors(self, model, y_pred, positions):
        own = self.term.sample_factors(model, y_pred, positions)
        return [self.weights[:, k] if own is None
                else self.weights[:, k] * ops.cast(own[j], "float32")
                for j, k in enumerate(positions)]


def l2w(model, **options):
    """The `l2w` method: `model` trained with L2W's meta-learned weights.

    The network is unchanged; `L2W(**options)` is attached to the model's
    train step, so every regime trains it with L2W (see `L2W`).

    Args:
        model: a built `MultiExitModel`.
        **options: arguments of `L2W` (`epsilon`, `centering`, ...).

    Returns:
        `model`, with the attached `L2W` in `model.train_pipeline`.

    Example:

    ```python
    model = keras_eexit.methods.l2w(keras_eexit.models.cnn1d(), epsilon=0.8)
    ```
    """
    L2W(**options).attach(model)
    return model
