"""A Ctrl-C or SIGTERM that native code swallowed still stops a run."""

import signal

import keras
import numpy as np
import pytest

from keras_eexit.cli import evaluate as cli_evaluate
from keras_eexit.cli import main as cli_main
from keras_eexit.experiments.interrupt_check import RaisePendingInterrupt
from keras_eexit.utils import interrupts


@pytest.fixture(autouse=True)
def _no_pending():
    interrupts.clear()
    yield
    interrupts.clear()


@pytest.mark.parametrize("number,name,code", [
    (signal.SIGINT, None, None), (signal.SIGTERM, "SIGTERM", 143)])
def test_the_handler_records_what_it_raises(number, name, code):
    with pytest.raises(KeyboardInterrupt) as raised:
        interrupts.handle_signal(number, None)
    assert interrupts.pending() is raised.value
    assert getattr(raised.value, "signal_name", None) == name
    assert getattr(raised.value, "exit_code", None) == code
    interrupts.clear()
    assert interrupts.pending() is None


class _SwallowAt(keras.callbacks.Callback):
    """Native code swallowing the interrupt: the handler ran, its
    exception never reached `fit`."""

    def __init__(self, batch):
        super().__init__()
        self.batch, self.seen = batch, []

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append(batch)
        if batch == self.batch:
            try:
                interrupts.handle_signal(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass


def test_a_swallowed_interrupt_stops_fit_at_the_batch_end():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((40, 3)), np.zeros((40, 2))
    swallow = _SwallowAt(2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0,
                  callbacks=[swallow, RaisePendingInterrupt()])
    assert swallow.seen == [0, 1, 2]
    # Without the check the same run trains on (what the CLI saw).
    interrupts.clear()
    swallow = _SwallowAt(2)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[swallow])
    assert swallow.seen == list(range(10))


def test_main_reports_a_recorded_interrupt_once_and_restores_handlers(
        monkeypatch, capsys):
    before = {n: signal.getsignal(n) for n in (signal.SIGINT,
                                               signal.SIGTERM)}
    seen = {}

    def interrupted(args):
        seen.update({n: signal.getsignal(n) for n in before})
        interrupts.handle_signal(signal.SIGTERM, None)

    monkeypatch.setattr(cli_main, "_initialize_devices_quietly",
                        lambda: None)
    monkeypatch.setattr(cli_evaluate, "run", interrupted)
    assert cli_main.main(["evaluate", "--model", "m.keras"]) == 143
    assert "interrupted (SIGTERM)" in capsys.readouterr().err
    assert all(h is interrupts.handle_signal for h in seen.values())
    assert interrupts.pending() is None
    assert {n: signal.getsignal(n) for n in before} == before
