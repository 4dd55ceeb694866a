"""`MultiExitModel`: a chain of stages, each a segment and an exit head."""


import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.compat import TrainerHooks
from keras_eexit.compat import in_multi_worker_mode
from keras_eexit.compat import model_strategy
from keras_eexit.losses.exit_weights import exit_weights
from keras_eexit.losses.objective import Objective
from keras_eexit.metrics.exit_accuracy import ACCURACY_NAMES
from keras_eexit.metrics.exit_accuracy import ExitAccuracy
from keras_eexit import chain
from keras_eexit.models import input_checks
from keras_eexit.models.gradient_equilibrium import GradientEquilibrium
from keras_eexit.models.train_step import TrainStep
from keras_eexit.models.user_settings import set_trainable_flags
from keras_eexit.models.user_settings import trainable_flags
from keras_eexit.utils.lazy_import import is_tf_dataset
from keras_eexit.utils.validation import invalid_value
from keras_eexit.utils.variables import to_numpy


STATE_SLOTS = ("regime_state", "user_settings", "eexit_snapshot_teacher",
               "eexit_fisher_store")
"""Names under which training state is attached to a model
(`MultiExitModel.attach_state`): a running regime's `RegimeState` and the
`UserSettings` it keeps, `SnapshotTeacher`'s frozen copy,
`AccumulateFisher`'s `FisherStore`."""


FORMAT_VERSION = 1
"""Version of the saved `MultiExitModel` config; bumped on a change that an
older keras-eexit could not read (which then refuses it clearly)."""


@register
class MultiExitModel(TrainerHooks, keras.Model):
    """A multi-exit network: a chain of stages, each a segment and a head.

    Stage `k` runs `segments[k]` on the state left by stage `k - 1` (the
    input for the first stage) and reads exit `k` from the new state with
    `heads[k]`:

        x -> segment_1 -> state_1 -> segment_2 -> ... -> segment_K -> state_K
                 |                       |                     |
               head_1                  head_2                head_K

    A state is one tensor or a tuple of tensors (a multi-scale network keeps
    several); a head reads the first element of a tuple. Calling the model
    returns `{"exit_1": logits, ..., "exit_K": logits}`.

    The training step is an ordered list of contributors
    (`model.train_pipeline`, a `TrainStep`; `model.train_step_plan()`
    lists them): a feature cache giving the batch, a method's procedure
    (L2W), loss and gradient changes (`model.gradient_equilibrium = True`,
    set by `Joint(gradient_equilibrium=True)`, rescales the gradients that
    meet at each stage output as Li et al., ICCV 2019, do). Without any,
    a step is Keras' own.

    Training takes ONE label per sample and applies it to every exit (a dict
    of labels keyed by exit name is accepted too); sparse integer labels and
    one-hot labels both work. Without a regime callback, `fit` trains all
    exits jointly with uniform weights; regimes from `keras_eexit.regimes`
    change the exit weights, the objective and the trainable stages.

    Args:
        segments: list of Keras layers or models, one per exit. Segment `k`
            maps the state after stage `k - 1` to the state after stage `k`.
        heads: list of Keras layers of the same length, mapping a state to
            the logits of an exit. Name them after their exits (`"exit_1"`,
            ...) so that their weights are recognisable by path.
        exit_names: optional list of output names; defaults to the head
            names when they are all distinct, else `"exit_1"`, ...
        **kwargs: forwarded to `keras.Model` (`name`, ...).

    Example:

    ```python
    model = keras_eexit.MultiExitModel.from_backbone(
        keras.applications.MobileNetV2(
            weights=None, include_top=False, input_shape=(32, 32, 3)),
        taps=["block_3_expand_relu", "block_6_expand_relu"],
        num_classes=10,
    )
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, epochs=5, callbacks=[keras_eexit.regimes.Joint()])
    model(x[:2])["exit_1"].shape  # (2, 10)
    ```
    """

    def __init__(self, segments, heads, exit_names=None, **kwargs):
        super().__init__(**kwargs)
        segments, heads = list(segments), list(heads)
        if not segments or len(segments) != len(heads):
            raise invalid_value(
                "heads",
                f"one head per segment ({len(segments)} segments, at least "
                "one)",
                f"{len(heads)} heads",
            )
        if exit_names is None:
            names = [h.name for h in heads]
            default = [f"exit_{k + 1}" for k in range(len(heads))]
            exit_names = names if len(set(names)) == len(names) else default
        exit_names = [str(n) for n in exit_names]
        if len(exit_names) != len(heads) or len(set(exit_names)) != len(
            exit_names
        ):
            raise invalid_value(
                "exit_names",
                f"{len(heads)} distinct names, one per head",
                exit_names,
            )
        self.segments = segments
        self.heads = heads
        self._exit_names = exit_names
        self.exit_weights = keras.Variable(
            ops.ones((len(heads),)),
            trainable=False,
            name="exit_weights",
        )
        self.base_objective = Objective.cross_entropy()
        self.objective = self.base_objective
        # Created on demand by `set_objective` after the model is built, so
        # kept out of Keras' (locked) tracking and listed in `metrics`.
        object.__setattr__(self, "term_loss_trackers", {})
        self.exit_loss_trackers = [
            keras.metrics.Mean(name=f"{name}_loss") for name in exit_names
        ]
        self.base_loss = None
        # The training step and the state regimes and callbacks attach
        # while training: not tracked by Keras, so never part of the
        # model's variables or config.
        object.__setattr__(self, "train_pipeline", TrainStep())
        for name in STATE_SLOTS:
            object.__setattr__(self, name, None)
        input_shape = self._declared_input_shape()
        if input_shape is not None:
            self.build((None,) + input_shape)

    # ------------------------------------------------------------------ API
    @property
    def gradient_equilibrium(self):
        """Whether training rescales gradients as Li et al. (2019) do.

        Setting it installs (or removes) a `GradientEquilibrium`
        contributor of the train step (see `GradientEquilibrium`).
        """
        return any(isinstance(c, GradientEquilibrium)
                   for c in self.train_pipeline.contributors)

    @gradient_equilibrium.setter
    def gradient_equilibrium(self, value):
        if bool(value) == self.gradient_equilibrium:
            return  # the same contributor: a traced step stays valid
        for c in self.train_pipeline.contributors:
            if isinstance(c, GradientEquilibrium):
                self.train_pipeline.remove(c)
        if value:
            self.train_pipeline.install(GradientEquilibrium())

    @property
    def train_step_contributors(self):
        """The train step's contributors (`train_pipeline.contributors`).

        An attribute `save_weights` walks: the variables of a contributor
        that holds some (L2W's network and optimizer) are saved under
        `train_step_contributors/`, so `BackupAndRestore` resumes them.
        """
        return self.train_pipeline.contributors

    def train_step_plan(self):
        """The training step's contributors, in the order they run.

        Returns:
            A list of lines `"<n>. <role>: <contributor>"` (roles in
            `keras_eexit.models.train_step.ROLES` order), a contributor
            set aside by a whole-step replacement marked
            `"(replaced by ...)"`. Empty: the step is Keras' own.

        Example:

        ```python
        model.gradient_equilibrium = True
        model.train_step_plan()  # ['1. gradients: GradientEquilibrium']
        ```
        """
        return self.train_pipeline.plan()

    def attach_state(self, name, value):
        """Attaches training state to the model, outside Keras tracking.

        The one way regimes and callbacks keep state on the model: it is
        not among the model's variables nor in its saved config, but
        `save_weights` (and so `BackupAndRestore`) saves its variables.

        Args:
            name: one of `STATE_SLOTS` (`"regime_state"`,
                `"user_settings"`, `"eexit_snapshot_teacher"`,
                `"eexit_fisher_store"`).
            value: a Keras layer (a `UserSettings` for
                `"user_settings"`: while attached, saved files hold the
                user's trainable flags and exit weights), or `None` to
                detach.
        """
        if name not in STATE_SLOTS:
            raise invalid_value("name", f"one of {STATE_SLOTS}", name)
        object.__setattr__(self, name, value)

    @property
    def num_exits(self):
        """Number of exits (stages) of the chain."""
        return len(self.heads)

    @property
    def exit_names(self):
        """Output names, in forward order (`["exit_1", ...]`)."""
        return list(self._exit_names)

    @property
    def num_classes(self):
        """Number of classes of the exits (they must agree), once built.

        A damping head (`keras_eexit.layers.DampingHead`) outputs N + 1
        logits; its extra unit is not a class, so this is N.
        """
        classes = set(getattr(self, "_classes_per_exit", []))
        if len(classes) != 1:
            return None
        return classes.pop()

    @property
    def input_shape_(self):
        """The input shape without the batch axis, once built."""
        declared = self._declared_input_shape()
        if declared is not None:
            return declared
        shape = (self.get_build_config() or {}).get("input_shape")
        if shape is None:
            raise ValueError(
                "Cannot tell the model's input shape: build the model "
                "(call it on a batch or `model.build(input_shape)`) first."
            )
        return tuple(shape)[1:]

    @property
    def input_dtype(self):
        """The dtype of the model's input (float32 unless declared)."""
        inputs = getattr(self.segments[0], "inputs", None)
        if inputs:
            return getattr(inputs[0].dtype, "name", inputs[0].dtype)
        return "float32"

    @classmethod
    def from_backbone(
        cls, backbone, taps, head="linear", num_classes=None, **head_kwargs
    ):
        """Turns a functional Keras model into a multi-exit model.

        The backbone graph is cut after each tap layer; the pieces become the
        segments, and an exit head is attached at every tap and at the
        backbone's output. The new model shares the backbone's layers (and
        therefore its weights).

        Args:
            backbone: a functional `keras.Model` (or a built `Sequential`)
                with one input and one output, for example
                `keras.applications.ResNet50(weights=None, include_top=False)`.
            taps: names of the layers after which internal exits go, in
                forward order.
            head: a head name from `keras_eexit.layers.HEADS`, a head class,
                or a factory `f(num_classes, name=...)`.
            num_classes: number of classes (>= 2).
            **head_kwargs: forwarded to the head constructor.

        Returns:
            A `MultiExitModel` with `len(taps) + 1` exits.
        """
        from keras_eexit.layers import get_head
        from keras_eexit.models.backbone_split import split_backbone

        if num_classes is None:
            raise invalid_value("num_classes", "an integer >= 2", None)
        segments = split_backbone(backbone, taps)
        heads = [
            get_head(head, num_classes, name=f"exit_{k + 1}", **head_kwargs)
            for k in range(len(segments))
        ]
        return cls(segments, heads, name=f"{backbone.name}_exits")

    def flops_per_exit(self):
        """Cumulative FLOPs to reach and evaluate each exit, for one sample.

        Exit `k` costs segments `1..k` plus heads `1..k`: a sample that
        leaves at exit `k` has evaluated every earlier head too (the
        convention of Kubaty et al.'s benchmark). FLOPs are read from the
        traced TensorFlow graph, 2 per multiply-add of convolutions,
        depthwise convolutions, dense layers, matrix products and attention
        (see `keras_eexit.models.flops`).

        Returns:
            A list of `num_exits` integers, non-decreasing.
        """
        return _stage_costs(self).cumulative_flops()

    def macs_per_exit(self):
        """Cumulative multiply-adds to reach and evaluate each exit.

        The convention of the MSDNet/RANet literature, whose tables call
        multiply-adds "FLOPs": exactly half of `flops_per_exit()` (which
        counts 2 FLOPs per multiply-add of convolutions, dense layers and
        matrix products, and nothing else).

        Returns:
            A list of `num_exits` integers, non-decreasing.
        """
        return [flops // 2 for flops in self.flops_per_exit()]

    def base_flops(self):
        """FLOPs of the base network: the backbone and final head, no ICs.

        What Kubaty et al.'s budget table divides by (25/50/75/100% of the
        network without internal classifiers), in the units of
        `flops_per_exit()`. For a chain of unshared prefixes (`Separate`)
        the base network is the last sub-model.

        Returns:
            An int.
        """
        return _stage_costs(self).base_flops()

    def params_per_exit(self):
        """Cumulative parameter count of segments and heads up to each exit.

        Returns:
            A list of `num_exits` integers: weights of segments `1..k` and
            heads `1..k`.
        """
        return _stage_costs(self).cumulative_params()

    # ----------------------------------------------------------- forward
    def _declared_input_shape(self):
        inputs = getattr(self.segments[0], "inputs", None)
        if not inputs or len(inputs) != 1:
            return None
        return tuple(inputs[0].shape[1:])

    def build(self, input_shape):
        state = keras.KerasTensor(tuple(input_shape), self.input_dtype)
        classes = []
        for k, head in enumerate(self.heads):
            state, logits = chain.run_stage(self, k, state,
                                            call=_symbolic_call)
            classes.append(chain.num_classes_of(head, logits.shape[-1]))
        self._classes_per_exit = classes
        self.built = True

    def call(self, inputs, training=None):
        self._check_input(inputs)
        state = inputs
        outputs = {}
        call = self.train_pipeline.stage_call(self) if training else None
        for k, name in enumerate(self._exit_names):
            state, outputs[name] = chain.run_stage(self, k, state, training,
                                                   call=call)
        return outputs

    def _check_input(self, inputs):
        input_checks.check_input_shape(getattr(inputs, "shape", None),
                                       self._expected_input_shape())

    def _expected_input_shape(self):
        """The input shape (no batch axis) that inputs are checked against:
        the one the first segment declares, else the one the model was
        built with; `None` before the model is built."""
        declared = self._declared_input_shape()
        if declared is not None or not self.built:
            return declared
        shape = (self.get_build_config() or {}).get("input_shape")
        return None if shape is None else tuple(shape)[1:]

    def predict(self, x, *args, **kwargs):
        """As `keras.Model.predict`; the input shape is checked first.

        Inputs whose shape differs from the model's input shape (an
        8x8 model given 9x9 images) are refused with one line, as `fit`
        refuses them, even where the layers would compute numbers (stages
        ending in global pooling). Arrays are checked whole; of a
        `tf.data.Dataset`, its element spec and first batch.

        Args:
            x: as `keras.Model.predict`.
            *args, **kwargs: forwarded to `keras.Model.predict`.

        Returns:
            A dict `{exit_name: logits}` of NumPy arrays.

        Example:

        ```python
        logits = model.predict(x_test, batch_size=256)
        logits["exit_1"].shape  # (len(x_test), num_classes)
        ```
        """
        input_checks.check_input_shape(input_checks.inputs_shape(x),
                                       self._expected_input_shape())
        return super().predict(x, *args, **kwargs)

    # ------------------------------------------------------------ training
    def compile(self, optimizer="adam", loss=None, loss_weights=None,
                **kwargs):
        """Configures the model for training, as `keras.Model.compile`.

        Args:
            optimizer: as in `keras.Model.compile`.
            loss: `None` (cross-entropy on logits; sparse or one-hot chosen
                from the label shape), a cross-entropy name, or one Keras
                loss instance or function of `(y_true, logits)` returning a
                loss per sample, applied to every exit.
            loss_weights: optional list of per-exit weights; regimes may
                change them during training.
            **kwargs: forwarded to `keras.Model.compile` (`metrics`,
                `jit_compile`, `steps_per_execution`, ...). A flat list of
                metrics is applied to every exit (`exit_1_accuracy`, ...).
        """
        if isinstance(loss, (dict, list, tuple)):
            raise invalid_value(
                "loss",
                "one loss applied to every exit (use `loss_weights` or a "
                "regime to weight exits)",
                loss,
            )
        self.base_loss = loss
        self.base_objective = Objective.cross_entropy(loss)
        self.set_objective(self.base_objective)
        if loss_weights is not None:
            self.exit_weights.assign(exit_weights(loss_weights,
                                                  self.num_exits))
        self._loss_weights_config = None if loss_weights is None else [
            float(w) for w in to_numpy(self.exit_weights)]
        metrics = kwargs.pop("metrics", None)
        if isinstance(metrics, (list, tuple)):
            metrics = {name: list(metrics) for name in self._exit_names}
        if isinstance(metrics, dict):
            # One accuracy for integer and one-hot labels (Keras' string
            # fixes the label form at the first batch it sees).
            metrics = {name: [ExitAccuracy(m) if isinstance(m, str) and m in
                              ACCURACY_NAMES else m for m in _as_list(value)]
                       for name, value in metrics.items()}
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:
            config = dict(config)
            config.update(
                loss=keras.saving.serialize_keras_object(self.base_loss),
                loss_weights=self._loss_weights_config)
        return config

    @property
    def metrics(self):
        return super().metrics + list(self.term_loss_trackers.values())

    def refresh_train_function(self, force=False):
        """Rebuilds the compiled train step if what it traced has changed.

        A traced train step freezes the trainable variables, the objective
        and the train step's active contributors (with their
        `trace_key()`, such as the feature cache's mode) as they were when
        it was traced. Regimes call this after changing them: the step is
        rebuilt (and traced again at its first call) only when one of them
        differs from the traced step's, so repeated `fit` calls under an
        unchanged configuration reuse the trace.

        Args:
            force: rebuild even if nothing visible changed.
        """
        layers = list(self.segments) + list(self.heads)
        # Objectives and contributors compare by identity.
        traced = (tuple(layer.trainable for layer in layers),
                  self.objective, self.train_pipeline.trace_key(),
                  _AttachedValues(self))
        if (force or self.train_function is None
                or getattr(self, "_eexit_traced", None) != traced):
            self.make_train_function(force=True)
        object.__setattr__(self, "_eexit_traced", traced)

    def make_train_function(self, force=False):
        """As Keras'; on JAX, untraced while an active contributor writes
        variables outside the model's state (a Fisher pass)."""
        if (keras.backend.backend() != "jax"
                or not self.train_pipeline.runs_eagerly()):
            return super().make_train_function(force)
        eager = self.run_eagerly
        self.run_eagerly = True
        try:
            return super().make_train_function(force)
        finally:
            self.run_eagerly = eager

    def set_objective(self, objective):
        """Sets the training objective (an `Objective`).

        Creates a `<term>_loss` tracker for every term other than the
        cross-entropy. Rebuild the train function afterwards if training has
        started (`refresh_train_function()`); regimes do this.

        Args:
            objective: a `keras_eexit.losses.Objective`.
        """
        for name in objective.extra_names:
            if name not in self.term_loss_trackers:
                self.term_loss_trackers[name] = keras.metrics.Mean(
                    name=f"{name}_loss"
                )
        self.objective = objective

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Compiled metrics see the class logits only: a damping unit stands
        # for no class and is never a prediction.
        if isinstance(y_pred, dict):
            y_pred = {
                name: chain.class_logits(head, y_pred[name])
                for name, head in zip(self._exit_names, self.heads)
            }
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        return self.objective_loss(self.objective, x, y, y_pred,
                                   sample_weight)

    def objective_loss(self, objective, x, y, y_pred, sample_weight=None):
        """The loss of `objective` on a batch, tracked as `compute_loss`.

        `compute_loss` with another objective than `model.objective` (a
        `"loss"` contributor of the train step changes it per update):
        updates the per-exit and per-term loss trackers and adds the
        model's `losses`.

        Args:
            objective: an `Objective` (its terms' trackers exist: the
                model's objective's terms, possibly wrapped).
            x, y, y_pred, sample_weight: as `compute_loss`.

        Returns:
            A scalar tensor.
        """
        total, per_exit, extras = objective(
            self, x, y, y_pred, sample_weight
        )
        for tracker, value in zip(self.exit_loss_trackers, per_exit):
            tracker.update_state(value)
        for name, value in extras.items():
            self.term_loss_trackers[name].update_state(value)
        for extra in self.losses:  # `add_loss` and weight regularizers
            total = total + ops.sum(ops.cast(extra, total.dtype))
        return total

    def fit(self, x=None, y=None, batch_size=None, epochs=None,
            verbose="auto", callbacks=None, **kwargs):
        """As `keras.Model.fit`, with a regime among the callbacks.

        Inputs and labels are checked first (clear errors for empty data,
        NaN inputs, inputs of another shape than the model's, malformed
        labels). At most one regime (a callback with
        `prepare_fit`, such as `keras_eexit.regimes.Joint`) may be among
        the callbacks: it is prepared before Keras builds the optimizer,
        and it gives the model back ready for a plain `fit` when training
        ends, fails or is interrupted (trainable flags, exit weights,
        objective, learning rate).

        Args:
            epochs: the number of epochs. Omitted (`None`): the regime's
                length (`regime.epochs_for(model)`), or 1 without a regime.
            Others: as `keras.Model.fit`.

        Returns:
            A `keras.callbacks.History`.
        """
        _check_training_backend("fit")
        input_checks.check_data(x, y, self.num_classes, "fit",
                                kwargs.get("sample_weight"))
        input_checks.check_input_shape(input_checks.inputs_shape(x),
                                       self._expected_input_shape())
        y = input_checks.labels_as_array(y)
        self._trace_for_label_rank("train", x, y)
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and len(validation) >= 2:
            self._trace_for_label_rank("test", validation[0], validation[1])
        elif validation is not None:
            self._trace_for_label_rank("test", validation, None)
        callbacks = list(callbacks or [])
        regimes = [c for c in callbacks if callable(
            getattr(c, "prepare_fit", None))]
        if len(regimes) > 1:
            raise ValueError(
                "fit received several regimes "
                f"({[type(r).__name__ for r in regimes]}): compose them into "
                "one (`regime_a + regime_b`) instead."
            )
        regime = regimes[0] if regimes else None
        if epochs is None:
            epochs = 1 if regime is None else regime.epochs_for(self)
            if epochs is None:
                raise ValueError(
                    f"{type(regime).__name__} has no length of its own (a "
                    "phase lasts until fit ends, or stops on a monitored "
                    "metric without a maximum): pass `epochs=` to fit."
                )
        if is_tf_dataset(x):
            # A data set shuffles itself; Keras would warn that it ignores
            # its default `shuffle=True`.
            kwargs.setdefault("shuffle", False)
        if regime is None:
            self._build_optimizer_before_the_trace()
            return super().fit(x, y, batch_size=batch_size, epochs=epochs,
                               verbose=verbose, callbacks=callbacks,
                               **kwargs)
        self._build_optimizer_in_strategy_scope()
        try:
            callbacks = regime.prepare_fit(self, callbacks)
            return super().fit(x, y, batch_size=batch_size, epochs=epochs,
                               verbose=verbose, callbacks=callbacks,
                               **kwargs)
        finally:
            # Keras skips `on_train_end` when fit raises (KeyboardInterrupt
            # included); the model must not stay half-frozen.
            regime.release_model()

    def _build_optimizer_before_the_trace(self):
        """Builds the optimizer eagerly before a plain `fit` on TensorFlow.

        Without a strategy Keras builds it inside the first trace of the
        train function (`TensorFlowTrainer._maybe_symbolic_build` defers
        it), and a `tf.function` whose first trace created variables is
        traced again: twice the tracing time of the whole step, about
        10 s on the CIFAR MSDNet. Built here over the variables Keras
        would use (`trainable_variables`), the step is traced once. A
        regime builds it itself (`Regime.prepare_fit`); under a strategy
        Keras builds it before tracing.
        """
        if (keras.backend.backend() == "tensorflow"
                and model_strategy(self) is None
                and self.optimizer is not None and not self.optimizer.built
                and self.built):
            self.optimizer.build(self.trainable_variables)

    def _build_optimizer_in_strategy_scope(self):
        """Builds the optimizer over every stage, in the strategy's scope.

        A regime builds the optimizer over all variables any phase trains
        (`Regime.prepare_fit`); under a strategy, optimizer slots (Adam's
        moments) must be created in its scope, which `prepare_fit` does not
        enter. The regime's own state (teacher, Fisher sums) stays outside
        on purpose: under `MirroredStrategy` it is then one variable that
        every replica updates, so the Fisher is summed over the global batch.
        """
        if (model_strategy(self) is None or self.optimizer is None
                or self.optimizer.built or not self.built):
            return
        before = trainable_flags(self)
        try:
            for layer in list(self.segments) + list(self.heads):
                layer.trainable = True
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        finally:
            set_trainable_flags(before)

    def _trace_for_label_rank(self, kind, x, y):
        """Rebuilds the `kind` ("train"/"test") step for labels of a new rank.

        A traced step given labels of another rank (integer classes after
        one-hot rows) is generalised by TensorFlow to labels of unknown
        rank, which no label reader can interpret: the step is traced anew
        instead.
        """
        rank = input_checks.label_rank(x, y)
        attribute = f"_eexit_{kind}_label_rank"
        previous = getattr(self, attribute, None)
        if rank is None:
            return
        if previous is not None and previous != rank:
            if kind == "train":
                self.make_train_function(force=True)
            else:
                self.make_test_function(force=True)
        object.__setattr__(self, attribute, rank)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """As `keras.Model.evaluate`; inputs (their shape included) and
        labels are checked first."""
        _check_training_backend("evaluate")
        input_checks.check_data(x, y, self.num_classes, "evaluate",
                                kwargs.get("sample_weight"))
        input_checks.check_input_shape(input_checks.inputs_shape(x),
                                       self._expected_input_shape())
        y = input_checks.labels_as_array(y)
        self._trace_for_label_rank("test", x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def train_step(self, *args):
        # TensorFlow and PyTorch call `train_step(data)`; JAX's stateless
        # trainer calls `train_step(state, data)` (models/jax_step.py).
        *state, data = args
        data = input_checks.labels_per_exit(data, self._exit_names)
        if state:
            return self.train_pipeline.run_stateless(self, state[0], data)
        return self._logs_for_reduction(self.train_pipeline.run(self, data))

    def keras_train_step(self, data):
        """Keras' own train step on a batch with one label per exit.

        What an update of the train step is without a `"loss"`
        contributor (see `TrainStep.update`). On PyTorch, the same steps
        with gradients of the trainable variables only
        (`torch_training.train_step`: Keras' own writes `.grad` of every
        tensor the loss reads).
        """
        if keras.backend.backend() == "torch":
            from keras_eexit import torch_training

            return torch_training.train_step(self, data)
        return super().train_step(data)

    def test_step(self, *args):
        *state, data = args  # `(state, data)` on JAX, as `train_step`
        data = input_checks.labels_per_exit(data, self._exit_names)
        if state:
            return super().test_step(state[0], data)
        return self._logs_for_reduction(super().test_step(data))

    def symbolic_build_batch(self, batch):
        """Gives the batch Keras builds from under a strategy one label per
        exit, as `train_step` does (else compiled metrics would be built for
        the first exit only)."""
        _, y, _ = keras.utils.unpack_x_y_sample_weight(batch)
        if y is None:
            return batch
        return input_checks.labels_per_exit(batch, self._exit_names)

    def _logs_for_reduction(self, logs):
        """Scalar logs become shape `(1,)` under multi-worker training.

        Keras 3.15 reduces every value a step returns with
        `strategy.reduce("MEAN", v, axis=0)` in multi-worker mode, which
        fails on scalars (keras-team/keras#20585); shape `(1,)` values are
        averaged over every replica of every worker into scalars again, as
        one device would log.
        """
        if (keras.backend.backend() != "tensorflow"
                or not in_multi_worker_mode(self.distribute_strategy)):
            return logs
        return keras.tree.map_structure(
            lambda v: ops.reshape(v, (1,))
            if getattr(getattr(v, "shape", None), "rank", None) == 0 else v,
            logs,
        )

    # -------------------------------------------------------- serialization
    def load_weights(self, filepath, *args, **kwargs):
        """As `keras.Model.load_weights`; while a regime runs, the file's
        regime progress must come from the same regime, else the model's
        weights are put back and one line names both regimes
        (`BackupAndRestore` resumes through this)."""
        state = self.regime_state
        check = getattr(state, "check_loaded", None)
        if check is None:
            return super().load_weights(filepath, *args, **kwargs)
        variables = list(self.weights) + list(
            [] if self.optimizer is None else self.optimizer.variables)
        before = [to_numpy(v) for v in variables]
        failure = None
        try:
            super().load_weights(filepath, *args, **kwargs)
        except Exception as error:
            failure = error
        try:
            # Another regime's state also explains a failure (shapes).
            check(filepath)
        except ValueError:
            for variable, value in zip(variables, before):
                variable.assign(value)
            raise
        if failure is not None:
            raise failure

    def save_own_variables(self, store):
        # While a regime runs, a saved file holds the user's exit weights,
        # not the phase's (`UserSettings`).
        settings = self.user_settings
        if settings is None:
            return super().save_own_variables(store)
        return super().save_own_variables(_Replacing(
            store, {id(self.exit_weights): settings.exit_weights}))

    def get_config(self):
        # While a regime runs, the config holds the user's trainable flags,
        # not the phase's (`UserSettings`).
        settings = self.user_settings
        if settings is None:
            return self._config()
        with settings.trainable_flags_shown(self):
            return self._config()

    def _config(self):
        config = super().get_config()
        config.update(
            {
                "segments": [
                    keras.saving.serialize_keras_object(s)
                    for s in self.segments
                ],
                "heads": [
                    keras.saving.serialize_keras_object(h) for h in self.heads
                ],
                "exit_names": self.exit_names,
                "format_version": FORMAT_VERSION,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        _check_format_version(config.pop("format_version", 1))
        segments = [
            keras.saving.deserialize_keras_object(
                s, custom_objects=custom_objects
            )
            for s in config.pop("segments")
        ]
        heads = [
            keras.saving.deserialize_keras_object(
                h, custom_objects=custom_objects
            )
            for h in config.pop("heads")
        ]
        return cls(segments=segments, heads=heads, **config)


class _AttachedValues:
    """The values of the attached variables a step reads, by identity.

    Keras' JAX trainer passes the model's own variables to the traced step
    as arguments, but a variable outside the model (a teacher snapshot,
    LwF references, EWC's Fisher and anchors) is read once, when the step
    is traced, and kept as a constant. A JAX value is immutable, so a new
    value is a new object: a step traced before any of them was written
    differs from this key and is traced again. (The regime's own counters
    are not read by a step.) TensorFlow's traced step and PyTorch's eager
    one read every variable when they run (the key is then empty).
    """

    def __init__(self, model):
        self.values = []
        if keras.backend.backend() != "jax":
            return
        state = model.regime_state
        read = [model.eexit_snapshot_teacher, model.eexit_fisher_store]
        if state is not None:
            read += [state.teacher, state.fisher_store,
                     *state.references.values()]
        for attached in read:
            if attached is not None:
                self.values.extend(v.value for v in attached.weights)

    def __eq__(self, other):
        return (isinstance(other, _AttachedValues)
                and len(self.values) == len(other.values)
                and all(a is b for a, b in zip(self.values, other.values)))


class _Replacing:
    """A weights store that writes given values in place of variables."""

    def __init__(self, store, values):
        self.store, self.values = store, values

    def __setitem__(self, key, value):
        self.store[key] = self.values.get(id(value), value)


TRAINING_BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends `fit` and `evaluate` run on (models/jax_step.py is
the JAX step, keras_eexit/torch_training.py PyTorch's pieces)."""


def _check_training_backend(what):
    """Refuses `fit`/`evaluate` on a backend without a train step here
    (NumPy, OpenVINO: Keras would fail deep inside its trainer); building,
    calling, `predict` and `.keras` save/load work on every backend."""
    backend = keras.backend.backend()
    if backend not in TRAINING_BACKENDS:
        raise NotImplementedError(
            f"MultiExitModel.{what} runs on the TensorFlow, JAX and PyTorch "
            f"backends; received KERAS_BACKEND={backend!r}. Train and "
            "evaluate with KERAS_BACKEND=tensorflow, jax or torch; on this "
            "backend the model can be built, called, used in `predict` and "
            "saved or loaded."
        )


def _stage_costs(model):
    """`models.costs.stage_costs(model)`, imported on use: it counts FLOPs
    on TensorFlow graphs, and the model itself needs no TensorFlow."""
    from keras_eexit.models import costs

    return costs.stage_costs(model)


def _as_list(metrics):
    """One exit's metrics as a list (Keras takes one metric or a list)."""
    if metrics is None:
        return []
    return list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]


def _symbolic_call(layer, inputs, training):
    # Symbolic calls reach `compute_output_spec`, which need not take
    # `training`.
    return layer(inputs)


def _check_format_version(version):
    """Refuses configs written by a newer, incompatible keras-eexit."""
    if (isinstance(version, bool) or not isinstance(version, int)
            or version < 1):
        raise ValueError(
            f"Invalid MultiExitModel format_version {version!r} in the saved "
            f"config: this keras-eexit reads formats 1 to {FORMAT_VERSION}."
        )
    if version > FORMAT_VERSION:
        raise ValueError(
            f"This model was saved by a newer keras-eexit (MultiExitModel "
            f"format {version}); this installation reads formats 1 to "
            f"{FORMAT_VERSION}. Upgrade keras-eexit to load it."
        )
