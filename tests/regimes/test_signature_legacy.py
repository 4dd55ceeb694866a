"""A regime state saved with the 64-bit signature hash (before it became
32-bit, so that JAX can hold it) still resumes in its phase."""

import numpy as np

from keras_eexit.regimes import signature as signatures
from keras_eexit.regimes.state import RegimeState
from tests.conftest import make_tiny_model


def _store(state, hash_value, phase_index):
    store = {str(i): np.array(v) for i, v in enumerate(state.variables)}
    store["0"] = np.asarray(hash_value, "int64")
    store["2"] = np.asarray(phase_index, "int64")
    return store


def test_a_legacy_hash_of_the_same_regime_loads_its_progress():
    state = RegimeState(make_tiny_model(), signature="joint|2 phases")
    legacy = signatures.legacy_signature_hash("joint|2 phases")
    assert legacy > np.iinfo("int32").max or legacy < np.iinfo("int32").min
    state.load_own_variables(_store(state, legacy, 1))
    assert int(np.asarray(state.phase_index.value)) == 1
    assert int(np.asarray(state.signature_hash.value)) == (
        signatures.signature_hash("joint|2 phases"))


def test_a_legacy_hash_of_another_regime_loads_nothing():
    state = RegimeState(make_tiny_model(), signature="joint|2 phases")
    other = signatures.legacy_signature_hash("two_stage|2 phases")
    state.load_own_variables(_store(state, other, 1))
    assert int(np.asarray(state.phase_index.value)) == 0
