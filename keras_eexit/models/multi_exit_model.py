"""`MultiExitModel`: a chain of stages, each a segment and an exit head."""

import keras
from keras import ops

from keras_eexit.api import register
from keras_eexit.losses.objective import Objective
from keras_eexit.utils.validation import invalid_value


FORMAT_VERSION = 1
"""Version of the saved `MultiExitModel` config; bumped on a change that an
older keras-eexit could not read (which then refuses it clearly)."""


def _first(state):
    """The tensor a head reads from a state (the first element of a tuple)."""
    return state[0] if isinstance(state, (list, tuple)) else state


def _rescale_first(state, scale):
    """Scales the gradient flowing back through the head-read tensor."""
    from keras_eexit.layers.gradient_rescale import rescale_gradient

    if isinstance(state, (list, tuple)):
        return [rescale_gradient(state[0], scale)] + list(state[1:])
    return rescale_gradient(state, scale)


def _static_shape(x):
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(shape)


@register
class MultiExitModel(keras.Model):
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

    With `model.gradient_equilibrium = True` (set by
    `Joint(gradient_equilibrium=True)`), training rescales the gradients that
    meet at each stage output as Li et al. (ICCV 2019) do: the tensor a head
    reads is multiplied by `1 / (K - k + 1)` in the backward pass and the
    path on to deeper stages by `K - k`, so stage `k` receives the mean of
    its own exit's gradient and the deeper exits' (stage `k` 1-based).

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
        self.objective = Objective.cross_entropy()
        # Created on demand by `set_objective` after the model is built, so
        # kept out of Keras' (locked) tracking and listed in `metrics`.
        object.__setattr__(self, "term_loss_trackers", {})
        self.exit_loss_trackers = [
            keras.metrics.Mean(name=f"{name}_loss") for name in exit_names
        ]
        self._base_loss = None
        self.gradient_equilibrium = False
        object.__setattr__(self, "regime_state", None)
        object.__setattr__(self, "feature_cache", None)
        object.__setattr__(self, "fisher_pass", None)
        input_shape = self._declared_input_shape()
        if input_shape is not None:
            self.build((None,) + input_shape)

    # ------------------------------------------------------------------ API
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
        (see `keras_eexit.evaluation.flops`).

        Returns:
            A list of `num_exits` integers, non-decreasing.
        """
        return self._cumulative(*self._stage_costs()[:2])

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

    def params_per_exit(self):
        """Cumulative parameter count of segments and heads up to each exit.

        Returns:
            A list of `num_exits` integers: weights of segments `1..k` and
            heads `1..k`.
        """
        return self._cumulative(*self._stage_costs()[2:])

    # ----------------------------------------------------------- internals
    def _declared_input_shape(self):
        inputs = getattr(self.segments[0], "inputs", None)
        if not inputs or len(inputs) != 1:
            return None
        return tuple(inputs[0].shape[1:])

    def _stage_costs(self):
        """Per-stage FLOPs and parameters, traced once (structure is fixed)."""
        cached = getattr(self, "_stage_cost_cache", None)
        if cached is None:
            cached = self._trace_stage_costs()
            object.__setattr__(self, "_stage_cost_cache", cached)
        return cached

    def _trace_stage_costs(self):
        import tensorflow as tf

        from keras_eexit.evaluation.flops import count_flops, count_params

        if not self.built:
            raise ValueError(
                "The model is not built yet: call it on a batch (or `build` "
                "it) before counting FLOPs or parameters."
            )
        spec = tf.TensorSpec(
            (1,) + tuple(self._build_input_shape()), self.compute_dtype
        )
        seg_flops, head_flops, seg_params, head_params = [], [], [], []
        for segment, head in zip(self.segments, self.heads):
            seg_flops.append(count_flops(segment, spec))
            state_spec = _state_spec(segment, spec)
            head_flops.append(count_flops(head, _first(state_spec)))
            seg_params.append(count_params(segment))
            head_params.append(count_params(head))
            spec = state_spec
        return (tuple(seg_flops), tuple(head_flops), tuple(seg_params),
                tuple(head_params))

    def _build_input_shape(self):
        declared = self._declared_input_shape()
        if declared is not None:
            return declared
        shape = self._build_shapes_dict or {}
        shape = shape.get("input_shape")
        if shape is None:
            raise ValueError("Cannot tell the model's input shape.")
        return tuple(shape)[1:]

    @staticmethod
    def _cumulative(segment_costs, head_costs):
        totals, running = [], 0
        for seg, head in zip(segment_costs, head_costs):
            running += seg
            totals.append(running + head)
            running += head
        return totals

    def build(self, input_shape):
        inputs = getattr(self.segments[0], "inputs", None)
        dtype = inputs[0].dtype if inputs else "float32"
        state = keras.KerasTensor(tuple(input_shape), dtype)
        classes = []
        for segment, head in zip(self.segments, self.heads):
            state = segment(state)
            units = head(_first(state)).shape[-1]
            classes.append(units - 1 if getattr(head, "damping", False)
                           is True else units)
        self._classes_per_exit = classes
        self.built = True

    def call(self, inputs, training=None):
        self._check_input(inputs)
        state = inputs
        outputs = {}
        equilibrium = self.gradient_equilibrium and training
        for k, (name, segment, head) in enumerate(
            zip(self._exit_names, self.segments, self.heads)
        ):
            state = segment(state, training=training)
            if equilibrium:
                state = _rescale_first(state, 1.0 / (self.num_exits - k))
            outputs[name] = head(_first(state), training=training)
            if equilibrium:
                state = _rescale_first(state, float(self.num_exits - k - 1))
        return outputs

    def _check_input(self, inputs):
        expected = self._declared_input_shape()
        received = _static_shape(inputs)
        if expected is None or received is None:
            return
        if len(received) != len(expected) + 1 or any(
            e is not None and r is not None and e != r
            for e, r in zip(expected, received[1:])
        ):
            raise ValueError(
                "Input shape mismatch: the model expects inputs of shape "
                f"{(None,) + expected} (batch first). Received: inputs with "
                f"shape {received}."
            )

    # ------------------------------------------------------------ training
    def compile(self, optimizer="adam", loss=None, loss_weights=None,
                **kwargs):
        """Configures the model for training, as `keras.Model.compile`.

        Args:
            optimizer: as in `keras.Model.compile`.
            loss: `None` (cross-entropy on logits; sparse or one-hot chosen
                from the label shape), or one Keras loss (name, class
                instance or function of `(y_true, logits)`) applied to every
                exit.
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
        self._base_loss = loss
        self.set_objective(Objective.cross_entropy(loss))
        if loss_weights is not None:
            from keras_eexit.regimes.weights import exit_weights

            self.exit_weights.assign(exit_weights(loss_weights,
                                                  self.num_exits))
        metrics = kwargs.pop("metrics", None)
        if isinstance(metrics, (list, tuple)):
            metrics = {name: list(metrics) for name in self._exit_names}
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        self._compile_config.config.update(
            loss=loss,
            loss_weights=None if loss_weights is None else list(
                self.exit_weights.numpy().tolist()
            ),
        )

    @property
    def metrics(self):
        return super().metrics + list(self.term_loss_trackers.values())

    def set_objective(self, objective):
        """Sets the training objective (an `Objective`).

        Creates a `<term>_loss` tracker for every term other than the
        cross-entropy. Rebuild the train function afterwards if training has
        started (`make_train_function(force=True)`); regimes do this.

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
        # Compiled metrics see the N class logits of damping heads: the
        # damping unit stands for no class and is never a prediction.
        if isinstance(y_pred, dict) and any(
            getattr(h, "damping", False) is True for h in self.heads
        ):
            y_pred = dict(y_pred)
            for name, head in zip(self._exit_names, self.heads):
                if getattr(head, "damping", False) is True:
                    y_pred[name] = y_pred[name][..., :-1]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        total, per_exit, extras = self.objective(
            self, x, y, y_pred, sample_weight
        )
        for tracker, value in zip(self.exit_loss_trackers, per_exit):
            tracker.update_state(value)
        for name, value in extras.items():
            self.term_loss_trackers[name].update_state(value)
        for extra in self.losses:
            total = total + self._aggregate_additional_loss(extra)
        return total

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            callbacks=None, **kwargs):
        """As `keras.Model.fit`; labels are checked first.

        At most one regime (`keras_eexit.regimes.Regime`) may be among the
        callbacks; it is prepared before Keras builds the optimizer (see
        `Regime.prepare`). Without a regime, every exit trains jointly with
        the current `exit_weights`.
        """
        import tensorflow as tf

        from keras_eexit.regimes.regime import Regime

        self._check_labels(x, y)
        callbacks = list(callbacks or [])
        regimes = [c for c in callbacks if isinstance(c, Regime)]
        if len(regimes) > 1:
            raise ValueError(
                "fit received several regimes "
                f"({[type(r).__name__ for r in regimes]}): compose them into "
                "one (`regime_a + regime_b`) instead."
            )
        if regimes:
            self._build_optimizer_in_strategy_scope()
            callbacks = regimes[0].prepare(self, callbacks)
        if isinstance(x, tf.data.Dataset):
            # A data set shuffles itself; Keras would warn that it ignores
            # its default `shuffle=True`.
            kwargs.setdefault("shuffle", False)
        return super().fit(x, y, batch_size=batch_size, epochs=epochs,
                           verbose=verbose, callbacks=callbacks, **kwargs)

    def _build_optimizer_in_strategy_scope(self):
        """Builds the optimizer over every stage, in the strategy's scope.

        A regime builds the optimizer over all variables any phase trains
        (`Regime.prepare`); under a strategy, optimizer slots (Adam's
        moments) must be created in its scope, which `prepare` does not
        enter. The regime's own state (teacher, Fisher sums) stays outside
        on purpose: under `MirroredStrategy` it is then one variable that
        every replica updates, so the Fisher is summed over the global batch.
        """
        if (self._distribute_strategy is None or self.optimizer is None
                or self.optimizer.built or not self.built):
            return
        layers = list(self.segments) + list(self.heads)
        before = [layer.trainable for layer in layers]
        try:
            for layer in layers:
                layer.trainable = True
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        finally:
            for layer, flag in zip(layers, before):
                layer.trainable = flag

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """As `keras.Model.evaluate`; labels are checked first."""
        self._check_labels(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def _check_labels(self, x, y):
        """Eager checks of inputs and labels with clear messages.

        Inputs must be finite (a NaN pixel can pass a ReLU unnoticed and
        poison the weights); labels must be in range and well formed.
        Arrays are checked in full; for a `tf.data.Dataset` the first batch
        is checked.
        """
        import numpy as np
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset):
            for batch in x.take(1):
                x, batch_y, _ = keras.utils.unpack_x_y_sample_weight(batch)
                y = batch_y if y is None else y
        _check_finite_inputs(x)
        if y is None or self.num_classes is None:
            return
        labels = y.values() if isinstance(y, dict) else [y]
        for value in labels:
            if isinstance(value, (list, tuple)):
                return  # structure errors are raised by the train step
            value = np.asarray(value)
            _check_label_values(value, self.num_classes)

    def train_step(self, data):
        data = self._labels_per_exit(data)
        override = self.fisher_pass or self.feature_cache
        if override is not None:
            logs = override.train_step(self, data)
        else:
            logs = super().train_step(data)
        return self._logs_for_reduction(logs)

    def _default_train_step(self, data):
        """Keras' own train step (used by the feature cache)."""
        return super().train_step(data)

    def test_step(self, data):
        logs = super().test_step(self._labels_per_exit(data))
        return self._logs_for_reduction(logs)

    # Under a strategy, Keras 3.15 builds the model, metrics and optimizer
    # before training from one batch (`_maybe_symbolic_build` in
    # keras/src/backend/tensorflow/trainer.py). The override below
    # (a) gives that batch one label per exit, as `train_step` does, or the
    # compiled metrics are built for the first exit only; and (b) routes
    # around two failures under MultiWorkerMirroredStrategy with several
    # workers (keras-team/keras#20585):
    # 1. Keras averages the first distributed batch with an eager
    #    `strategy.reduce("MEAN", batch, axis=None)` on the whole (x, y)
    #    structure; the multi-worker path hands that structure to
    #    `CrossDeviceOps.reduce`, which cannot convert it ("Attempt to
    #    convert a value (PerReplica ...) to a Tensor").
    # 2. `reduce_per_replica` reduces every value the step returns with
    #    `strategy.reduce("MEAN", v, axis=0)` in multi-worker mode; the
    #    step returns scalar metric results, so the graph fails with
    #    "Invalid reduction dimension 0 for input with 0 dimensions"
    #    (`_logs_for_reduction` answers this one).
    def _in_multi_worker_mode(self):
        import tensorflow as tf

        strategy = self.distribute_strategy
        return isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ) and strategy.extended._in_multi_worker_mode()

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        import tensorflow as tf

        if self._distribute_strategy is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        strategy = self.distribute_strategy
        if iterator is not None:
            # Only shapes and dtypes are read from this batch: this
            # worker's first replica stands for all, no collective is needed.
            for _, _, it in iterator:
                data_batch = keras.tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    next(it),
                )
                break
        if data_batch is not None:
            _, y, _ = keras.utils.unpack_x_y_sample_weight(data_batch)
            if y is not None:
                data_batch = self._labels_per_exit(data_batch)
        return super()._maybe_symbolic_build(data_batch=data_batch)

    def _logs_for_reduction(self, logs):
        """Scalar logs become shape `(1,)` under multi-worker training.

        Keras then averages them over every replica of every worker (its
        `axis=0` reduction) into scalars again, as one device would log.
        """
        if not self._in_multi_worker_mode():
            return logs
        return keras.tree.map_structure(
            lambda v: ops.reshape(v, (1,))
            if getattr(getattr(v, "shape", None), "rank", None) == 0 else v,
            logs,
        )

    def _labels_per_exit(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError(
                "Training and evaluation need labels: pass `y` (one label "
                "per sample) or a data set of `(x, y)` pairs."
            )
        if isinstance(y, dict):
            if set(y) != set(self._exit_names):
                raise ValueError(
                    "Label/exit structure mismatch: a dict of labels must "
                    f"have one entry per exit {self._exit_names}. Received "
                    f"keys: {sorted(y)}."
                )
        elif isinstance(y, (list, tuple)):
            raise ValueError(
                "Label/exit structure mismatch: pass one label per sample "
                "(applied to every exit) or a dict keyed by exit name "
                f"{self._exit_names}. Received a {type(y).__name__} of "
                f"{len(y)} label tensors."
            )
        else:
            y = {name: y for name in self._exit_names}
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

    # -------------------------------------------------------- serialization
    def get_config(self):
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


def _state_spec(segment, spec):
    """The `tf.TensorSpec` structure a segment returns for input `spec`."""
    import tensorflow as tf

    def to_keras(s):
        return keras.KerasTensor(tuple(s.shape), s.dtype.name)

    def to_tf(t):
        return tf.TensorSpec(tuple(t.shape), t.dtype)

    inputs = keras.tree.map_structure(to_keras, spec)
    out = segment.compute_output_spec(inputs)
    return keras.tree.map_structure(to_tf, out)



def _check_finite_inputs(x):
    """Raises if a floating-point input array holds NaN or Inf values."""
    import numpy as np

    if isinstance(x, (list, tuple, dict)) or x is None:
        return
    try:
        values = np.asarray(x)
    except (TypeError, ValueError):
        return
    if not np.issubdtype(values.dtype, np.floating):
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = np.argwhere(~finite)
    raise ValueError(
        f"Inputs contain {len(bad)} non-finite values (NaN or Inf), the "
        f"first in sample {int(bad[0][0])}; training on them would make the "
        "weights NaN. Clean or impute the data first."
    )


def _check_label_values(labels, num_classes):
    import numpy as np

    if labels.ndim == 2 and labels.shape[-1] not in (1,):
        if labels.shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {labels.shape[-1]} columns but the "
                f"model has {num_classes} classes. Pass integer labels in "
                f"[0, {num_classes}) or one-hot labels with {num_classes} "
                "columns."
            )
        return
    if labels.ndim > 2:
        raise ValueError(
            f"Labels have shape {labels.shape}: expected integer classes of "
            "shape (batch,) or one-hot labels of shape (batch, num_classes)."
        )
    if labels.size == 0:
        return
    if not np.issubdtype(labels.dtype, np.integer) and not np.all(
        labels == np.round(labels)
    ):
        raise ValueError(
            "Integer class labels expected; received non-integer values "
            f"such as {labels.reshape(-1)[:3].tolist()}."
        )
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"Labels out of range: the model has {num_classes} classes, so "
            f"labels must be in [0, {num_classes - 1}]. Received labels "
            f"from {low} to {high}."
        )
