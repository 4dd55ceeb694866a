"""`TrainStep`: a model's training step as an ordered list of contributors."""

import collections

import keras

from keras_eexit import chain


ROLES = ("batch", "step", "loss", "gradients")
"""What a contributor adds to the training step, in the order they run:

* `"batch"`: gives the batch the step trains on (`batch(model, batch)`:
  the feature cache replays cached head inputs);
* `"step"`: drives the step (`run(model, batch, update)`): calls `update`
  on the batch or parts of it and may do more around it (L2W's meta
  step), or replaces the update with its own rule (a Fisher pass, ZTW's
  ensemble phase). One active contributor at most;
* `"loss"`: changes the objective of an update from its outputs
  (`objective(model, batch, y_pred, objective)`: L2W's sample weights);
* `"gradients"`: changes how gradients flow back through the chain
  (`stage_call(model, call)`, the stage call of `chain.run_stage`:
  gradient equilibrium).
"""


Batch = collections.namedtuple("Batch", ["x", "y", "sample_weight"])
Batch.__doc__ = """A training batch: inputs, labels by exit name, weights.

`x` is the model's input, or `HeadInputs` when a batch contributor (the
feature cache) gives what the heads read instead."""


HeadInputs = collections.namedtuple("HeadInputs", ["features"])
HeadInputs.__doc__ = """A batch given as the heads' inputs (one per exit).

Used in place of the model's input when the backbone is frozen and its
features are cached: `forward` then runs the heads only."""


def forward(model, x, training=True):
    """The model's outputs for a batch's `x` (inputs or `HeadInputs`).

    Args:
        model: a `MultiExitModel`.
        x: the model's inputs, or `HeadInputs` (the heads alone run).
        training: the call's training flag.

    Returns:
        `{"exit_k": logits}`.

    Example:

    ```python
    outputs = forward(model, x)  # model(x, training=True)
    ```
    """
    if isinstance(x, HeadInputs):
        logits = chain.run_heads(model, list(x.features), training=training)
        return dict(zip(model.exit_names, logits))
    return model(x, training=training)


def stateless_forward(model, trainable, non_trainable, x, training=True):
    """`forward` with the model's variables replaced by given values.

    `model.stateless_call` for inputs; for `HeadInputs` the heads run in a
    `keras.StatelessScope` with the same mapping. A look-ahead step (L2W)
    differentiates through it without moving the model's variables.

    Args:
        model: a `MultiExitModel`.
        trainable: values of `model.trainable_variables`, in order.
        non_trainable: values of `model.non_trainable_variables`.
        x: inputs or `HeadInputs`.
        training: the call's training flag.

    Returns:
        `(outputs, non_trainable_values)` as `model.stateless_call`.
    """
    if not isinstance(x, HeadInputs):
        return model.stateless_call(trainable, non_trainable, x,
                                    training=training)
    mapping = list(zip(model.trainable_variables, trainable)) + list(
        zip(model.non_trainable_variables, non_trainable))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        outputs = forward(model, x, training)
        values = [scope.get_current_value(v)
                  for v in model.non_trainable_variables]
    return outputs, values


class StepContributor:
    """A part of the training step, installed on a model's `TrainStep`.

    Subclasses set `roles` (from `ROLES`) and implement the hook of each
    role. `replaces` lists roles whose other contributors sit out while
    this one is installed (a whole-step replacement such as a Fisher pass
    replaces `("step", "loss", "gradients")`: nothing trains); a role in
    `incompatible` makes installing it next to a contributor of that role
    fail with a message. `trace_key()` changes when the traced step must be
    rebuilt (the feature cache's mode); `next_epoch()` is called by a
    regime at every epoch boundary within a phase.

    Example:

    ```python
    class CountBatches(StepContributor):
        roles = ("step",)

        def run(self, model, batch, update):
            self.count.assign_add(1)
            return update(batch)

    model.train_pipeline.install(CountBatches())
    ```
    """

    roles = ()
    replaces = ()
    incompatible = ()
    backends = ("tensorflow",)
    """The Keras backends whose train step it runs on (`None`: all)."""
    eager_on_jax = False
    """Whether its JAX step runs untraced (it writes variables outside the
    model's state, as the Fisher pass's sums)."""

    def describe(self):
        """A short description for the step's plan (the class name)."""
        return type(self).__name__

    @classmethod
    def check_backend(cls):
        """Raises `NotImplementedError` on a backend it does not run on."""
        backend = keras.backend.backend()
        if cls.backends is not None and backend not in cls.backends:
            raise NotImplementedError(
                f"{cls.__name__} runs on the {' or '.join(cls.backends)} "
                f"backend only for now. Received: KERAS_BACKEND="
                f"{backend!r}. Train with KERAS_BACKEND=tensorflow.")

    def trace_key(self):
        """What, besides identity, the traced step depends on."""
        return None

    def next_epoch(self):
        """Called by a regime at an epoch boundary (nothing by default)."""

    # Hooks, one per role.
    def batch(self, model, batch):
        """`"batch"`: the `Batch` to train on instead of `batch`."""
        return batch

    def run(self, model, batch, update):
        """`"step"`: runs the step; `update(batch)` is one model update."""
        return update(batch)

    def batch_stateless(self, model, state, batch):
        """`"batch"` on JAX, where the variables hold no values during
        `fit`: the trainer's `state` has them (default: `batch`)."""
        return self.batch(model, batch)

    def run_stateless(self, model, state, batch):
        """`"step"` on JAX: `(logs, new_state)` from the trainer's state
        `(trainable, non_trainable, optimizer, metrics)` values."""
        raise NotImplementedError(
            f"{self.describe()} has no JAX step.")

    def objective(self, model, batch, y_pred, objective):
        """`"loss"`: the objective of this update (from its outputs)."""
        return objective

    def stage_call(self, model, call):
        """`"gradients"`: wraps the stage call of `chain.run_stage`."""
        return call


class TrainStep:
    """A model's training step: an ordered, inspectable list of contributors.

    A step runs the `"batch"` contributors in order, then the one active
    `"step"` contributor (or one update), whose updates use the `"loss"`
    and `"gradients"` contributors. Without any contributor (or with
    `"gradients"` ones only) an update is Keras' own train step, so plain
    training is exactly Keras'.

    Every `MultiExitModel` owns one (`model.train_pipeline`); regimes,
    methods and callbacks install and remove contributors through it and
    `model.train_step_plan()` lists them in the order they run.

    Example:

    ```python
    keras_eexit.methods.L2W().attach(model)
    model.train_step_plan()
    # ['1. step: L2W', '2. loss: L2W']
    ```
    """

    def __init__(self):
        self._contributors = []

    @property
    def contributors(self):
        """The installed contributors, in installation order."""
        return tuple(self._contributors)

    def install(self, contributor):
        """Adds `contributor` (installing it twice does nothing).

        Args:
            contributor: a `StepContributor`.

        Raises:
            ValueError: when it refuses (or is refused by) an installed
                contributor, or when two contributors would both drive
                the step.
        """
        if not isinstance(contributor, StepContributor):
            raise ValueError(
                "Invalid value received for argument `contributor`. "
                "Expected a keras_eexit.models.train_step.StepContributor. "
                f"Received: contributor={contributor!r}")
        if any(c is contributor for c in self._contributors):
            return
        unknown = set(contributor.roles) - set(ROLES)
        if unknown or not contributor.roles:
            raise ValueError(
                f"Invalid roles of {contributor.describe()}: expected some "
                f"of {ROLES}. Received: roles={contributor.roles}")
        contributor.check_backend()
        for other in self._contributors:
            _check_pair(contributor, other)
            _check_pair(other, contributor)
        self._contributors.append(contributor)

    def remove(self, contributor):
        """Removes `contributor` if it is installed."""
        self._contributors = [c for c in self._contributors
                              if c is not contributor]

    def entries(self):
        """`(role, contributor, replaced_by)` in the order the step runs.

        `replaced_by` is the contributor that sets this one's role aside,
        or `None` when it is active.
        """
        rows = []
        for role in ROLES:
            for c in self._contributors:
                if role in c.roles:
                    rows.append((role, c, self._replacer(c, role)))
        return rows

    def plan(self):
        """The step as lines `"<n>. <role>: <contributor>"`, in order."""
        lines = []
        for n, (role, c, by) in enumerate(self.entries(), 1):
            line = f"{n}. {role}: {c.describe()}"
            if by is not None:
                line += f" (replaced by {by.describe()})"
            lines.append(line)
        return lines

    def __repr__(self):
        return "TrainStep([" + "; ".join(self.plan()) + "])"

    def active(self, role):
        """The contributors whose `role` is active, in order."""
        return [c for r, c, by in self.entries() if r == role and by is None]

    def trace_key(self):
        """Changes whenever what a traced step captured changes."""
        return tuple((role, c, c.trace_key())
                     for role, c, by in self.entries() if by is None)

    def next_epoch(self):
        """Tells every contributor that a new epoch of its phase begins."""
        for c in self._contributors:
            c.next_epoch()

    def _replacer(self, contributor, role):
        for other in self._contributors:
            if other is not contributor and role in other.replaces:
                return other
        return None

    # --------------------------------------------------------- the step
    def run(self, model, data):
        """One training step on `data` (traced by Keras inside `fit`)."""
        batch = Batch(*keras.utils.unpack_x_y_sample_weight(data))
        for c in self.active("batch"):
            batch = c.batch(model, batch)
        drivers = self.active("step")
        if drivers:
            return drivers[0].run(model, batch,
                                  lambda b: self.update(model, b))
        return self.update(model, batch)

    def run_stateless(self, model, state, data):
        """One stateless training step (`train_step(state, data)` of Keras'
        JAX trainer; models/jax_step.py). Returns `(logs, new_state)`."""
        from keras_eexit.models import jax_step

        batch = Batch(*keras.utils.unpack_x_y_sample_weight(data))
        for c in self.active("batch"):  # an eager step (`eager_on_jax`)
            batch = c.batch_stateless(model, state, batch)
        drivers = self.active("step")
        if drivers:
            return drivers[0].run_stateless(model, state, batch)
        if self.runs_eagerly():
            return jax_step.compiled_train_step(model)(state, tuple(batch))
        return jax_step.train_step(model, state, tuple(batch))

    def runs_eagerly(self):
        """Whether an active contributor needs an untraced step (JAX)."""
        return any(c.eager_on_jax for _, c, by in self.entries()
                   if by is None)

    def stage_call(self, model):
        """The stage call of the `"gradients"` contributors (or `None`)."""
        call = None
        for c in self.active("gradients"):
            call = c.stage_call(model, call)
        return call

    def update(self, model, batch):
        """One model update on `batch`; returns the metrics' logs.

        Keras' own train step unless a `"loss"` contributor is active or
        the batch holds `HeadInputs`; then the same steps with the
        contributors' objective.
        """
        losses = self.active("loss")
        if not losses and not isinstance(batch.x, HeadInputs):
            return model.keras_train_step(tuple(batch))

        def loss_fn():
            y_pred = forward(model, batch.x, training=True)
            objective = model.objective
            for c in losses:
                objective = c.objective(model, batch, y_pred, objective)
            loss = model.objective_loss(objective, batch.x, batch.y, y_pred,
                                        batch.sample_weight)
            return loss, y_pred

        y_pred = _apply_gradients(model, loss_fn, batch)
        return model.compute_metrics(batch.x, batch.y, y_pred,
                                     sample_weight=batch.sample_weight)


def _apply_gradients(model, loss_fn, batch):
    """Differentiates `loss_fn` and applies the optimizer (TensorFlow, or
    `torch_training.apply_gradients` on PyTorch).

    The one backend-specific piece of an update: Keras' train step without
    its forward pass and loss.
    """
    if keras.backend.backend() == "torch":
        from keras_eexit import torch_training

        return torch_training.apply_gradients(model, loss_fn, batch.x)
    import tensorflow as tf

    from keras_eexit.compat import update_loss_tracker

    with tf.GradientTape() as tape:
        loss, y_pred = loss_fn()
        update_loss_tracker(model, loss,
                            tf.shape(tf.nest.flatten(batch.x)[0])[0])
        scaled = model.optimizer.scale_loss(loss)
    variables = model.trainable_weights
    gradients = tape.gradient(scaled, variables)
    model.optimizer.apply_gradients(zip(gradients, variables))
    return y_pred


def _check_pair(new, old):
    """Raises when `new` refuses `old`, or they compete for the step."""
    clash = set(new.incompatible) & set(old.roles)
    if clash:
        raise ValueError(
            f"{new.describe()} cannot run with {old.describe()}: it refuses "
            f"a {sorted(clash)[0]!r} contributor. Remove one of them "
            "(`model.train_pipeline.remove(...)`).")
    both = set(new.roles) & set(old.roles)
    if both & set(new.replaces) & set(old.replaces):
        raise ValueError(
            f"{new.describe()} and {old.describe()} both replace the train "
            "step: one of them would silently not run. Remove one of them "
            "(`model.train_pipeline.remove(...)`).")
    if ("step" in both
            and "step" not in new.replaces and "step" not in old.replaces):
        raise ValueError(
            f"{new.describe()} and {old.describe()} both drive the train "
            "step, and neither replaces the other: a step runs one "
            "procedure. Remove one of them "
            "(`model.train_pipeline.remove(...)`).")
