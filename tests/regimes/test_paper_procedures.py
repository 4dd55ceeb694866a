"""Each named regime runs its paper's procedure (issue 14).

Every test here fails on the procedures the names ran before: which
weights move in which phase, which loss terms are active, and their values
against a hand computation.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax
from scipy.special import softmax

from keras_eexit import regimes
from keras_eexit.fisher import EWCPenalty
from keras_eexit.fisher import empirical_fisher
from keras_eexit.losses import LwFPenalty
from keras_eexit.losses import exit_weights


def _fit(model, regime, callbacks, data, epochs=None, lr=0.05, **kwargs):
    x, y = data
    model.compile(optimizer=keras.optimizers.Adam(lr))
    epochs = epochs or regime.epochs_for(model)
    return model.fit(x, y, epochs=epochs, batch_size=16, verbose=0,
                     callbacks=[regime] + list(callbacks), **kwargs)


class _Flat(keras.callbacks.Callback):
    """Runs before the regime: every exit's validation metrics stay flat,
    so a phase that monitors them stops after `patience` epochs."""

    def on_epoch_end(self, epoch, logs=None):
        for k in (1, 2, 3):
            logs[f"val_exit_{k}_loss"] = 1.0
            logs[f"val_exit_{k}_accuracy"] = 0.5


def _names(regime, num_exits=3):
    return [p.name for p in regime.phases_for(num_exits)]


# ------------------------------------------------------------ Zniber et al.
@pytest.mark.large
def test_sequential_ewc_stages_terms_and_penalty(model_factory, tiny_data,
                                                 recorder):
    """A stage per exit (the final one too) after the warm-up; no penalty
    at stage 1; eq. 2 at stage 2: λ Σ_{θ ∈ Θ_1} F^(1) (θ − θ*)², θ* and
    F^(1) from the end of stage 1."""
    x, y = tiny_data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model = model_factory()
    lam = 7.0
    regime = regimes.SequentialRegime(1, warmup_epochs=1, regularizer="ewc",
                                      lam=lam, verbose=False)
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.setdefault("terms", []).append(
                list(self.model.objective.extra_names))

        def on_epoch_end(self, epoch, logs=None):
            store = self.model.regime_state.fisher_store
            if epoch == 1:  # end of stage 1: the weights EWC anchors
                seen["theta_star"] = [np.array(v) for v in store.protected]
                seen["fisher_1"] = empirical_fisher(self.model, ds, 1)
            if epoch == 2:  # after the Fisher pass of exit 1
                seen["store"] = [np.array(f) for f in store.fisher]
                seen["anchors"] = [np.array(a) for a in store.anchors]
            if epoch == 3:  # end of stage 2
                seen["theta"] = [np.array(v) for v in store.protected]
                seen["paths"] = store.paths
                seen["penalty"] = float(EWCPenalty(lam)(
                    self.model, None, None, None)[0])

    history = _fit(model, regime, [recorder, Probe()], tiny_data)
    assert _names(regime) == ["backbone", "stage_1", "fisher_1", "stage_2",
                              "fisher_2", "stage_3"]
    assert history.history["phase"] == [0, 1, 2, 3, 4, 5]
    assert recorder.changed == [({1, 2, 3}, {3}), ({1}, {1}), (set(), set()),
                                ({1, 2}, {2}), (set(), set()),
                                ({1, 2, 3}, {3})]
    # No penalty before a second exit is trained; the warm-up adds none.
    assert seen["terms"][:2] == [[], []]
    assert "ewc" in seen["terms"][3]
    fisher = seen["fisher_1"]
    for path, value, anchor, start in zip(seen["paths"], seen["store"],
                                          seen["anchors"],
                                          seen["theta_star"]):
        if path in fisher:  # Θ_1: exit 1's empirical Fisher
            np.testing.assert_allclose(value, fisher[path], rtol=1e-4,
                                       atol=1e-7)
        else:  # Θ_2, Θ_3: exit 1 does not depend on them
            assert not value.any()
        np.testing.assert_array_equal(anchor, start)
    expected = lam * sum(
        (f * (t - a) ** 2).sum()
        for f, t, a in zip(seen["store"], seen["theta"], seen["anchors"]))
    assert seen["penalty"] == pytest.approx(expected, rel=1e-5)
    assert expected > 0


def test_warmup_fisher_is_the_named_extension(model_factory):
    paper = regimes.SequentialRegime(1, warmup_epochs=1, regularizer="ewc")
    extension = regimes.SequentialRegime(1, warmup_epochs=1, regularizer="ewc",
                                         warmup_fisher=True)
    assert "fisher_3" not in _names(paper)
    assert _names(extension)[:3] == ["backbone", "fisher_3", "stage_1"]
    assert [t.name for t in extension.phases_for(3)[2].terms] == ["ewc"]
    with pytest.raises(ValueError, match="warmup_fisher"):
        regimes.SequentialRegime(1, regularizer="ewc", warmup_fisher=True)


@pytest.mark.large
def test_lwf_reference_of_exit_nu_is_taken_when_its_stage_ends(
        model_factory, tiny_data, recorder):
    x, y = tiny_data
    model = model_factory()
    rho = 0.5
    regime = regimes.SequentialRegime(1, regularizer="lwf", rho=rho,
                                      verbose=False)
    seen = {}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            out = self.model(x, training=False)
            if epoch in (0, 1):  # ends of stages 1 and 2
                seen[epoch + 1] = np.array(out[f"exit_{epoch + 1}"])

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:  # stage 3: LwF on exits 1 and 2
                state = self.model.regime_state
                out = self.model(x, training=False)
                seen["current"] = {k: np.array(out[f"exit_{k}"])
                                   for k in (1, 2)}
                seen["refs"] = {k: np.array(state.reference_outputs(k, x))
                                for k in (1, 2)}
                seen["lwf"] = float(LwFPenalty(rho, [1, 2])(
                    self.model, x, None, out)[0])

    _fit(model, regime, [recorder, Probe()], tiny_data)
    # Heads 1..μ train (LwF's gradients reach earlier heads), deeper not.
    assert recorder.changed == [({1}, {1}), ({1, 2}, {1, 2}),
                                ({1, 2, 3}, {1, 2, 3})]
    for k in (1, 2):
        np.testing.assert_allclose(seen["refs"][k], seen[k], atol=1e-5)
    # Stage 2 moved segment 1 and head 1: the reference of exit 1 is NOT
    # the network at the start of stage 3.
    assert not np.allclose(seen["refs"][1], seen["current"][1], atol=1e-4)

    def kl(current, reference):
        p = softmax(current, -1)
        return (p * (log_softmax(current, -1)
                     - log_softmax(reference, -1))).sum(-1).mean()

    expected = rho * sum(kl(seen["current"][k], seen["refs"][k])
                         for k in (1, 2))
    assert seen["lwf"] == pytest.approx(expected, rel=1e-4)


def test_sequential_objective_defaults():
    assert regimes.SequentialRegime(1, regularizer="ewc").objective_kind == (
        "current")
    assert regimes.SequentialRegime(1, regularizer="lwf").objective_kind == (
        "current")
    assert regimes.SequentialRegime(1).objective_kind == "cumulative"
    explicit = regimes.SequentialRegime(1, regularizer="ewc",
                                        objective="cumulative")
    assert explicit.objective_kind == "cumulative"
    stage_2 = explicit.phases_for(3)[2]
    np.testing.assert_allclose(exit_weights(stage_2.weights, 3), [1, 1, 0])


def test_sequential_stage_stops_early_on_its_exit(model_factory, tiny_data):
    x, y = tiny_data
    regime = regimes.SequentialRegime(5, patience=1, verbose=False)
    assert [p.monitor for p in regime.phases_for(3)] == [
        ("val_exit_1_loss",), ("val_exit_2_loss",), ("val_exit_3_loss",)]
    assert all(p.restore_best for p in regime.phases_for(3))
    model = model_factory()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0,
                        callbacks=[_Flat(), regime])
    assert history.history["phase"] == [0, 0, 1, 1, 2, 2]


def test_warmup_ablation_changes_the_warmup_alone():
    kwargs = dict(regularizer="lwf", rho=0.2, patience=3)
    with_warmup = regimes.SequentialRegime(2, warmup_epochs=4, **kwargs)
    without = regimes.SequentialRegime(2, warmup_epochs=0, **kwargs)
    phases = with_warmup.phases_for(4)

    def described(phase):
        fields = {f.name: getattr(phase, f.name)
                  for f in dataclasses.fields(phase) if f.name != "terms"}
        fields["terms"] = [(type(t).__name__, vars(t)) for t in phase.terms]
        return fields

    assert phases[0].name == "backbone"
    assert [described(p) for p in phases[1:]] == [
        described(p) for p in without.phases_for(4)]


# ---------------------------------------------- "Strategies at a glance"
@pytest.mark.large
def test_separate_submodels_are_truncated_copies_trained_alone(
        model_factory, tiny_data):
    x, _ = tiny_data
    model = model_factory()
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(*tiny_data, epochs=1, verbose=0)  # a "pretrained" model
    copied = regimes.Separate.prepare_model(model)
    fresh = regimes.Separate.prepare_model(model, weights="fresh")
    expected = model(x, training=False)
    got, other = copied(x, training=False), fresh(x, training=False)
    for name in model.exit_names:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5)
        assert not np.allclose(other[name], expected[name], atol=1e-3)
    seen = {"steps": []}

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen["steps"].append(int(self.model.optimizer.iterations))
            if epoch == 0:  # sub-model 1 trained alone: exit 2 untouched
                seen["exit_2"] = np.array(
                    self.model(x, training=False)["exit_2"])

    _fit(copied, regimes.Separate(1, verbose=False), [Probe()], tiny_data)
    np.testing.assert_allclose(seen["exit_2"], expected["exit_2"],
                               atol=1e-5)
    # Every sub-model starts with its own, fresh optimizer state.
    assert seen["steps"] == [2, 2, 2]  # 32 samples, batch 16


@pytest.mark.large
def test_distillation_distils_each_exit_in_turn_final_frozen(
        model_factory, tiny_data, recorder):
    x, y = tiny_data
    model = model_factory()
    alpha, tau = 0.3, 2.0
    regime = regimes.Distillation(temperature=tau, alpha=alpha,
                                  backbone_epochs=1, distill_epochs=1,
                                  verbose=False)
    seen = {}

    class Capture(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                seen["teacher"] = np.array(
                    self.model(x, training=False)["exit_3"])
            if epoch == 2:  # distilling exit 2
                out = self.model(x, training=False)
                seen["student"] = np.array(out["exit_2"])
                seen["snapshot"] = np.array(
                    self.model.regime_state.teacher_logits(x))
                seen["loss"] = float(self.model.compute_loss(
                    x, {n: y for n in self.model.exit_names}, out))

    history = _fit(model, regime, [recorder, Capture()], tiny_data)
    assert [p.name for p in regime.phases] == ["backbone", "distill_1",
                                               "distill_2"]
    assert history.history["phase"] == [0, 1, 2]
    # The teacher (backbone and final exit) is frozen; head n alone trains.
    assert recorder.changed == [({1, 2, 3}, {3}), (set(), {1}),
                                (set(), {2})]
    np.testing.assert_allclose(model(x, training=False)["exit_3"],
                               seen["teacher"], atol=1e-6)
    # The teacher is the model as stage 1 left it, not the moving model.
    np.testing.assert_allclose(seen["snapshot"], seen["teacher"],
                               atol=1e-5)
    t, s = seen["teacher"], seen["student"]
    ce = -log_softmax(s, -1)[np.arange(len(y)), y].mean()
    p = softmax(t / tau, -1)
    kl = (p * (np.log(p) - log_softmax(s / tau, -1))).sum(-1).mean()
    expected = alpha * ce + (1 - alpha) * tau**2 * kl  # eq. 5, exit 2 only
    assert seen["loss"] == pytest.approx(expected, rel=1e-4)


def test_distillation_default_freezes_the_teacher_path():
    """Appendix A / Fig. 7: the teacher (L_1..L_n and the final exit) is
    frozen after stage 1, so only head n trains by default; line 18 read on
    the shared backbone (segments 1..n with head n) is the named option."""
    def trained(**kwargs):
        phases = regimes.Distillation(backbone_epochs=1, distill_epochs=1,
                                      **kwargs).phases_for(3)
        return [(p.train_segments if isinstance(p.train_segments, str)
                 else sorted(p.train_segments), sorted(p.train_heads))
                for p in phases[1:]]

    assert trained() == [("none", [1]), ("none", [2])]
    assert trained(train_backbone=True) == [([1], [1]), ([1, 2], [2])]


def test_distillation_keeps_the_final_exit_and_earlier_students(
        model_factory, tiny_data):
    x, _ = tiny_data
    model = model_factory()
    seen = {}

    class Capture(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = {k: np.array(v) for k, v in
                           self.model(x, training=False).items()}

    regime = regimes.Distillation(backbone_epochs=1, distill_epochs=1,
                                  verbose=False)
    _fit(model, regime, [Capture()], tiny_data)
    # The final exit is the teacher as stage 1 left it; exit 1, distilled
    # in phase 1, is not moved by the distillation of exit 2.
    np.testing.assert_allclose(seen[2]["exit_3"], seen[0]["exit_3"],
                               atol=1e-6)
    np.testing.assert_allclose(seen[2]["exit_1"], seen[1]["exit_1"],
                               atol=1e-6)


def _trained(regime, num_exits=3):
    """(segments, heads) each phase trains, as sorted lists or a word."""
    def listed(chosen):
        return chosen if isinstance(chosen, str) else sorted(chosen)

    return [(listed(p.train_segments), listed(p.train_heads))
            for p in regime.phases_for(num_exits)]


def _described(regime, num_exits=3):
    """Everything a phase does except its name."""
    return [{k: v for k, v in dataclasses.asdict(p).items() if k != "name"}
            for p in regime.phases_for(num_exits)]


@pytest.mark.large
def test_joint_branch_fine_tunes_branch_wise(model_factory, tiny_data,
                                             recorder):
    """Sec. 5.4 (1): joint, then Algorithm 3's schedule over every exit:
    segment n and head n, layers up to L_{n-1} frozen, the final exit
    last."""
    regime = regimes.JointBranch(1, 1, verbose=False)
    history = _fit(model_factory(), regime, [recorder], tiny_data)
    assert history.history["phase"] == [0, 1, 2, 3]
    assert recorder.changed == [({1, 2, 3}, {1, 2, 3}), ({1}, {1}),
                                ({2}, {2}), ({3}, {3})]
    # Alg. 1/6: w_n = c·n / Σk with c = 1, then exit n's loss alone.
    np.testing.assert_allclose(recorder.exit_weights[0],
                               np.array([1, 2, 3]) / 6, rtol=1e-6)
    for n in (1, 2, 3):
        np.testing.assert_allclose(recorder.exit_weights[n],
                                   np.eye(3)[n - 1])


def test_joint_branch_and_joint_two_stage_differ():
    """Table 7 reports the two hybrids apart; Alg. 6 lines 15-24 as
    printed (head n alone on the frozen backbone) are the joint-two-stage
    procedure, kept as `train_segment=False`."""
    branch = regimes.JointBranch(1, 1)
    assert _trained(branch) == [("all", "all"), ([1], [1]), ([2], [2]),
                                ([3], [3])]
    assert _described(branch) != _described(regimes.JointTwoStage(1, 1))
    assert _described(regimes.JointBranch(1, 1, train_segment=False)) == (
        _described(regimes.JointTwoStage(1, 1)))


def test_joint_two_stage_trains_exits_one_by_one():
    phases = regimes.JointTwoStage(1, 1).phases_for(3)
    assert [(p.name, p.train_segments, p.train_heads) for p in phases] == [
        ("joint", "all", "all"), ("head_1", "none", frozenset({1})),
        ("head_2", "none", frozenset({2}))]


def test_pretrained_branch_is_pretraining_then_branch_wise():
    """Sec. 5.4 (3): backbone pretraining, then Algorithm 3's schedule
    (final branch included), not two-stage training; the fixed-backbone
    reading (= `TwoStage(heads="one_by_one")`) is `train_segments=False`."""
    regime = regimes.PretrainedBranch(1, 1)
    assert _trained(regime) == [("all", [3]), ([1], [1]), ([2], [2]),
                                ([3], [3])]
    assert _described(regime)[1:] == _described(regimes.BranchWise(1))
    two_stage = regimes.TwoStage(1, 1, heads="one_by_one")
    assert _described(regime) != _described(two_stage)
    fixed = regimes.PretrainedBranch(1, 1, train_segments=False)
    assert _described(fixed) == _described(two_stage)
    assert _names(regimes.PretrainedBranch(0, 1)) == [
        "branch_1", "branch_2", "branch_3"]


@pytest.mark.large
def test_pretrained_branch_trains_segment_and_head_of_each_exit(
        model_factory, tiny_data, recorder):
    model = model_factory()
    regime = regimes.PretrainedBranch(1, 1, cache_features=False,
                                      verbose=False)
    history = _fit(model, regime, [recorder], tiny_data)
    assert history.history["phase"] == [0, 1, 2, 3]
    assert recorder.changed == [({1, 2, 3}, {3}), ({1}, {1}), ({2}, {2}),
                                ({3}, {3})]


# ------------------------------------------------------------ Kubaty et al.
@pytest.mark.parametrize("regime,weights", [
    (regimes.Joint(), [1 / 3] * 3),
    (regimes.Joint(reduction="sum"), [1, 1, 1]),
    (regimes.Joint("linear", reduction="sum"), [1 / 6, 2 / 6, 3 / 6]),
    # Alg. 1 (line 12 sums w_n·loss_n) and the sec. 5.4 set-up, unasked.
    (regimes.Joint("linear"), [1 / 6, 2 / 6, 3 / 6]),
    (regimes.Joint("to_final"), [0.3, 0.65, 1.0]),
    (regimes.Joint("linear", scale=2.0), [1 / 3, 2 / 3, 1.0]),
    (regimes.Joint("linear", reduction="mean"), [1 / 18, 2 / 18, 3 / 18]),
    (regimes.Joint(schedule="sdn"), None),
    (regimes.Mixed(1, 1), [1 / 3] * 3),
    (regimes.Mixed(1, 1, reduction="sum"), [1, 1, 1]),
])
def test_joint_losses_default_to_each_papers_reduction(regime, weights):
    phase = regime.phases_for(3)[-1]
    if weights is None:  # SDN: Kaya et al. sum the weighted losses
        np.testing.assert_allclose(phase.weights(4, 4)[-1], 1.0)
    else:
        np.testing.assert_allclose(exit_weights(phase.weights, 3), weights,
                                   rtol=1e-6)


def test_mean_reduction_divides_the_loss_by_the_number_of_exits(
        model_factory, tiny_data):
    x, y = tiny_data
    model = model_factory()
    out = model(x, training=False)
    labels = {n: y for n in model.exit_names}
    per_exit = sum(
        float(np.mean(-log_softmax(np.array(out[n]), -1)[np.arange(len(y)),
                                                         y]))
        for n in model.exit_names)
    for reduction, factor in (("mean", 1 / 3), ("sum", 1.0)):
        phase = regimes.Joint(reduction=reduction).phases_for(3)[0]
        model.exit_weights.assign(exit_weights(phase.weights, 3))
        value = float(model.compute_loss(x, labels, out))
        assert value == pytest.approx(factor * per_exit, rel=1e-5)


def test_two_stage_heads_phase_averages_over_every_exit():
    backbone, heads = regimes.TwoStage(1, 1).phases_for(3)
    np.testing.assert_allclose(exit_weights(backbone.weights, 3), [0, 0, 1])
    np.testing.assert_allclose(exit_weights(heads.weights, 3),
                               [1 / 3, 1 / 3, 0])


@pytest.mark.parametrize("make,phases", [
    (lambda: regimes.Mixed(6, 6, patience=1, metric="loss"), [0, 0, 1, 1]),
    (lambda: regimes.Joint(patience=1, metric="loss", max_epochs=9), [0, 0]),
])
def test_every_named_regime_runs_phases_to_convergence(make, phases,
                                                       model_factory,
                                                       tiny_data):
    x, y = tiny_data
    model = model_factory()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0,
                        callbacks=[_Flat(), make()])
    assert history.history["phase"] == phases


def test_convergence_watches_every_trained_head():
    mixed = regimes.Mixed(50, 50, patience=10)
    backbone, joint = mixed.phases_for(3)
    assert backbone.monitor == ("val_exit_3_accuracy",)
    assert joint.monitor == tuple(f"val_exit_{k}_accuracy" for k in (1, 2,
                                                                      3))
    assert backbone.epochs == joint.epochs == 50
    assert joint.restore_best and joint.patience == 10
    assert joint.reset_optimizer and not backbone.reset_optimizer
    heads = regimes.TwoStage(50, 50, patience=10).phases_for(3)[1]
    assert heads.monitor == ("val_exit_1_accuracy", "val_exit_2_accuracy")


def test_compare_converge_runs_each_regimes_own_early_stopping():
    from keras_eexit.cli import compare
    from keras_eexit.cli.main import _parser
    from keras_eexit.experiments.build import build_regime

    args = _parser().parse_args([
        "compare", "--regimes", "mixed,sequential[warmup_epochs=0]",
        "--epochs", "12", "--converge", "5", "--max-phase-epochs", "40",
        "--converge-metric", "accuracy", "--seeds", "1"])
    mixed, sequential = compare.configs(args)
    backbone, joint = build_regime(mixed, 3, verbose=False).phases_for(3)
    assert backbone.monitor == ("val_exit_3_accuracy",)
    assert joint.monitor == tuple(f"val_exit_{k}_accuracy" for k in (1, 2,
                                                                      3))
    assert backbone.epochs == joint.epochs == 40
    assert joint.patience == 5 and joint.restore_best
    stages = build_regime(sequential, 3, verbose=False).phases_for(3)
    assert [p.name for p in stages] == ["stage_1", "stage_2", "stage_3"]
    assert [p.monitor for p in stages] == [
        (f"val_exit_{k}_accuracy",) for k in (1, 2, 3)]
    with pytest.raises(ValueError, match="needs --converge"):
        compare.configs(_parser().parse_args([
            "compare", "--max-phase-epochs", "4"]))
