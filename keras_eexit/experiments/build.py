"""Data, model, regime and optimiser of an experiment, from its config."""

import inspect

from keras_eexit.data.embedded import EMBEDDED_SHAPES


def load_data(config):
    """The data set's train / validation / test pipelines (`Splits`).

    Pipelines are made fresh for every run and shuffled by the run's seed,
    so a run's result does not depend on the runs before it.
    """
    from keras_eexit import data

    kwargs = {"batch_size": config.batch_size, "seed": config.seed,
              "deterministic": config.deterministic}
    if config.num_samples is not None:
        kwargs["num_samples"] = config.num_samples
    if config.augment is not None:
        kwargs["augment"] = config.augment
    if config.data_dir is not None:
        kwargs["data_dir"] = config.data_dir
    return data.load(config.dataset, **kwargs)


def builder_kwargs(model_name, info, head, damping):
    """The zoo builder's arguments for a data set and the head options.

    Builders differ: most take `input_shape`, the ViT takes `image_size`
    and `channels`, the text transformer `sequence_length`, and the paper
    architectures (MSDNet, RANet, ViT) have
    their own exit heads. An option a builder cannot honour is an error,
    never silently dropped.

    Args:
        model_name: a key of `keras_eexit.models.MODELS`.
        info: the data set's `DatasetInfo`.
        head: the exit head type asked for.
        damping: whether the heads need a damping unit.

    Returns:
        The keyword arguments of the builder.
    """
    from keras_eexit import models

    params = inspect.signature(models.MODELS[model_name]).parameters
    shape = tuple(info.input_shape)
    kwargs = {"num_classes": info.num_classes}
    if "input_shape" in params:
        kwargs["input_shape"] = shape
    elif "image_size" in params and len(shape) == 3 and shape[0] == shape[1]:
        kwargs.update(image_size=shape[0], channels=shape[2])
    elif "sequence_length" in params and len(shape) == 1:
        kwargs["sequence_length"] = shape[0]  # token ids (text models)
    else:
        raise ValueError(
            f"Model {model_name!r} cannot take this data set's inputs of "
            f"shape {shape}; pick a model for them (--model auto chooses "
            "one)."
        )
    if "head" in params:
        kwargs["head"] = head
    elif head != "linear":
        raise ValueError(
            f"Model {model_name!r} has its own exit heads (those of its "
            f"paper); --head {head} is not supported for it."
        )
    if "damping" in params:
        kwargs["damping"] = damping
    elif damping:
        raise ValueError(
            f"Model {model_name!r} has no damping heads; the damping losses "
            "need a model built with `damping=True`."
        )
    return kwargs


def build_model(config, info):
    """The zoo model of `config` for a data set, ready for its regime.

    A regime class with a `prepare_model` (such as `Separate`, whose exits
    need unshared prefixes) rebuilds the chain it needs here.

    Args:
        config: an `ExperimentConfig`.
        info: the data set's `DatasetInfo`.

    Returns:
        A `MultiExitModel` (not compiled): the method's network
        (`keras_eexit.methods`) on the zoo model.
    """
    from keras_eexit import methods
    from keras_eexit import models
    from keras_eexit import regimes

    model = models.get_model(
        config.model_name,
        **{**builder_kwargs(config.model_name, info, config.head,
                            config.damping), **config.model_params})
    prepare = getattr(regimes.REGIMES[config.regime], "prepare_model", None)
    model = model if prepare is None else prepare(model)
    return methods.get_method(config.method).build(model)


def build_regime(config, num_exits, verbose=True):
    """The regime of `config`, its phases fitted into the epoch budget.

    Args:
        config: an `ExperimentConfig`.
        num_exits: the model's number of exits.
        verbose: let the regime print each phase as it starts.

    Returns:
        A `Regime` (as `config.method` trains under it).
    """
    from keras_eexit import regimes
    from keras_eexit.regimes.registry import converged_regime
    from keras_eexit.regimes.registry import parameters
    from keras_eexit.regimes.registry import until_convergence

    params = {**config.regime_params, "verbose": verbose}
    c = config.convergence
    if c is not None and c.monitor.startswith("val_") and (
        "patience" in parameters(config.regime) and not c.min_delta
    ):
        # The named regime's own convergence: every trained exit's
        # `val_exit_k_<metric>` (the papers' early stopping).
        regime = converged_regime(config.regime, config.budget, num_exits,
                                  c.patience, c.max_epochs,
                                  c.monitor[len("val_"):], **params)
    else:
        regime = regimes.regime_for_budget(config.regime, config.budget,
                                           num_exits, **params)
        if c is not None:
            regime = until_convergence(regime, num_exits, c.patience,
                                       c.max_epochs, c.monitor,
                                       c.min_delta)
    from keras_eexit import methods

    # The method trains under the regime its own way (PABEE's and GPF's
    # weighting, ZTW's ensemble phase after the budget).
    return methods.get_method(config.method).adapt(regime,
                                                   epochs=config.budget)


def fit_epochs(config, regime, num_exits):
    """How many epochs `fit` runs: the regime's length, else the budget."""
    return regime.epochs_for(num_exits) or config.budget


def per_phase_rates(regime, num_exits):
    """Whether a phase of `regime` sets its own learning rate."""
    return any(p.learning_rate for p in regime.phases_for(num_exits))


def learning_rate(config, regime, num_exits, steps_per_epoch, epochs):
    """The optimizer's learning rate: a float or a Keras schedule.

    `"cosine"` decays over the whole run
    (`keras.optimizers.schedules.CosineDecay`), `"multistep"` multiplies the
    rate by `decay_factor` after each epoch of `milestones`
    (`PiecewiseConstantDecay`). Under a regime whose phases set their own
    rates, `"cosine"` is a float here and `schedule_callbacks` decays each
    phase from its own rate over its own epochs (Kubaty et al., appendix
    D.3-D.4); `"multistep"` is refused there: no paper combines them, and
    whether its milestones count from the run's or each phase's start
    would be our guess.
    """
    import keras

    rate = config.learning_rate
    if config.schedule == "constant":
        return rate
    if per_phase_rates(regime, num_exits):
        if config.schedule == "cosine":
            return rate
        raise ValueError(
            f"--schedule {config.schedule} cannot be combined with a regime "
            "that sets per-phase learning rates (no paper does: milestones "
            "per phase are undefined); use --schedule constant or cosine."
        )
    if steps_per_epoch <= 0:
        return rate
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=steps_per_epoch * epochs)
    boundaries = [m * steps_per_epoch for m in config.milestones]
    values = [rate * config.decay_factor ** i
              for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries,
                                                            values)


def schedule_callbacks(config, regime, num_exits, steps_per_epoch, epochs):
    """The callbacks the learning-rate schedule needs (after the regime).

    Returns:
        `[PhaseCosineDecay]` for `"cosine"` under a regime with per-phase
        rates (each phase its own cosine decay), else `[]`.
    """
    from keras_eexit.experiments.phase_schedule import PhaseCosineDecay

    if config.schedule != "cosine" or not per_phase_rates(regime,
                                                          num_exits):
        return []
    return [PhaseCosineDecay(regime, config.learning_rate, steps_per_epoch,
                             epochs)]


def make_optimizer(config, rate):
    """The Keras optimizer of `config` at `rate` (a float or schedule)."""
    import keras

    kwargs = {}
    if config.clipnorm is not None:
        kwargs["clipnorm"] = config.clipnorm
    if config.weight_decay:
        kwargs["weight_decay"] = config.weight_decay
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum,
                                    nesterov=config.nesterov, **kwargs)
    if config.optimizer == "adamw":
        kwargs.setdefault("weight_decay", 0.0)
        return keras.optimizers.AdamW(rate, **kwargs)
    return keras.optimizers.Adam(rate, **kwargs)


def compile_model(model, config, regime, steps_per_epoch, epochs):
    """Compiles `model` with the config's optimizer and schedule.

    The default is Adam at a constant rate; see `learning_rate` and
    `make_optimizer`.
    """
    rate = learning_rate(config, regime, model.num_exits, steps_per_epoch,
                         epochs)
    model.compile(optimizer=make_optimizer(config, rate),
                  metrics=["accuracy"])


def check_fits_data(model, info, model_label="The model"):
    """Raises if a model cannot read a data set's inputs or labels.

    Args:
        model: a built `MultiExitModel`.
        info: the data set's `DatasetInfo`.
        model_label: how to name the model in the message.

    Raises:
        ValueError: one line naming both shapes (or class counts) and, for
            the embedded sets, the data set that fits.
    """
    expected = tuple(model.input_shape_)
    shape = tuple(info.input_shape)
    if len(expected) != len(shape) or any(
            e is not None and e != s for e, s in zip(expected, shape)):
        fits = [n for n, s in EMBEDDED_SHAPES.items()
                if tuple(s) == expected]
        hint = (f" (--dataset {fits[0]} has them)" if fits else "")
        raise ValueError(
            f"{model_label} expects inputs of shape {expected}, but data "
            f"set {info.name!r} has inputs of shape {shape}: pass the data "
            f"set the model was trained on{hint}."
        )
    classes = model.num_classes
    if classes is not None and classes != info.num_classes:
        raise ValueError(
            f"{model_label} has {classes} classes, but data set "
            f"{info.name!r} has {info.num_classes}: pass the data set the "
            "model was trained on."
        )
