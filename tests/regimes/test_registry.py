"""The regime registry: every name builds, and one rule splits the budget."""

import pytest

from keras_eexit import regimes
from keras_eexit.regimes import registry


@pytest.mark.parametrize("name", sorted(regimes.REGIMES))
@pytest.mark.parametrize("epochs,num_exits", [(1, 2), (3, 3), (12, 3),
                                              (12, 4), (30, 7)])
def test_every_registered_regime_fits_a_budget(name, epochs, num_exits):
    regime = regimes.regime_for_budget(name, epochs, num_exits,
                                       verbose=False)
    phases = regime.phases_for(num_exits)
    assert all(p.epochs is None or p.epochs >= 1 for p in phases)
    total = regime.epochs_for(num_exits)
    if total is None:  # joint: as long as fit runs
        assert name == "joint"
        return
    # Within the budget unless every phase needs its one epoch anyway;
    # EWC's Fisher passes are extra epochs in which nothing trains.
    trained = sum(p.epochs for p in phases if p.fisher_exit is None)
    assert trained <= max(epochs, len(phases))
    assert str(total) in regimes.plan_text(regime, num_exits)


@pytest.mark.parametrize("name,split", [
    ("two_stage", {"backbone_epochs": 8, "heads_epochs": 4}),
    ("mixed", {"backbone_epochs": 6, "joint_epochs": 6}),
    ("branch_wise", {"epochs_per_exit": 4}),
    ("sequential", {"warmup_epochs": 6, "epochs_per_exit": 2}),
    ("distillation", {"backbone_epochs": 6, "distill_epochs": 3}),
])
def test_split_of_twelve_epochs_over_three_exits(name, split):
    assert regimes.split_budget(name, 12, 3) == split


def test_split_follows_explicit_parameters():
    assert regimes.split_budget("two_stage", 12, 4,
                                heads="one_by_one") == {
        "backbone_epochs": 8, "heads_epochs": 1}
    assert regimes.split_budget("sequential", 12, 3, warmup_epochs=0) == {
        "epochs_per_exit": 4}
    assert regimes.split_budget("distillation", 12, 3, mode="joint") == {
        "distill_epochs": 12}
    # Given lengths are never overridden.
    assert regimes.split_budget("mixed", 12, 3, backbone_epochs=2) == {
        "joint_epochs": 6}


def test_a_regime_listed_without_registration_fails_clearly(monkeypatch):
    monkeypatch.setitem(regimes.REGIMES, "mine", regimes.Joint)
    with pytest.raises(ValueError, match="registered with a budget split"):
        regimes.regime_for_budget("mine", 12, 3)


def test_register_adds_a_name_everywhere(monkeypatch):
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    monkeypatch.setattr(registry, "REGIMES", dict(registry.REGIMES))
    registry.register("mixed_short", regimes.Mixed,
                      lambda b: {"backbone_epochs": 1,
                                 "joint_epochs": b.rest(1)})
    regime = registry.regime_for_budget("mixed_short", 5, 3, verbose=False)
    assert regime.epochs_for(3) == 5
    assert "mixed_short" in registry.REGIMES


def test_unknown_names_and_parameters():
    with pytest.raises(ValueError, match="Did you mean 'joint'"):
        regimes.split_budget("jiont", 12, 3)
    with pytest.raises(ValueError, match="Valid parameters"):
        regimes.regime_for_budget("mixed", 12, 3, epochs_per_exit=2)
    with pytest.raises(ValueError, match="epochs"):
        regimes.split_budget("mixed", 0, 3)


def test_until_convergence_monitors_every_training_phase():
    regime = regimes.regime_for_budget(
        "sequential", 12, 3, objective="current", regularizer="ewc",
        verbose=False)
    converged = registry.until_convergence(regime, 3, patience=2,
                                           max_epochs=10)
    phases = converged.phases_for(3)
    assert [p.name for p in phases] == [p.name for p in
                                        regime.phases_for(3)]
    for phase in phases:
        if phase.fisher_exit is None:
            assert phase.monitor == "val_loss" and phase.patience == 2
            assert phase.epochs == 10 and phase.restore_best
        else:
            assert phase.monitor is None and phase.epochs == 1
    assert "until val_loss stalls 2" in regimes.plan_text(converged, 3)
    assert converged.epochs_for(3) == sum(p.epochs for p in phases)
