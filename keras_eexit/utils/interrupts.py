"""A Ctrl-C or SIGTERM that native code swallowed is raised again.

Python runs a signal handler between bytecodes of the main thread; when
that moment falls inside TensorFlow's native code (which checks for
signals, and on some paths clears the exception it gets), the
`KeyboardInterrupt` the handler raised is lost and the run goes on: seen
with `keras-eexit train` on a loaded machine, which trained all its
epochs after a Ctrl-C. `keras-eexit` therefore handles SIGINT and SIGTERM
with `handle_signal`, which records the interrupt before raising it, and
the runner's `fit` carries `experiments.interrupt_check.
RaisePendingInterrupt`, which raises a
recorded interrupt again at the next batch or epoch boundary. An
interrupt that does propagate is raised once: the CLI clears the record
when it reports it.
"""

import signal

_pending = []


def handle_signal(number, frame):
    """A signal handler: records the interrupt of `number`, then raises it.

    SIGINT raises `KeyboardInterrupt`; SIGTERM the CLI's `Terminated` (a
    `KeyboardInterrupt` with `signal_name` and `exit_code`).

    Args:
        number: the signal number.
        frame: the interrupted frame (unused).

    Raises:
        KeyboardInterrupt: always.
    """
    interrupt = KeyboardInterrupt()
    if number != signal.SIGINT:
        interrupt = Terminated(number)
    _pending[:] = [interrupt]
    raise interrupt


class Terminated(KeyboardInterrupt):
    """A termination signal, raised like Ctrl-C so runs stop the same way.

    Args:
        number: the signal number (its name is `signal_name`, the process
            exit code `128 + number`).
    """

    def __init__(self, number=signal.SIGTERM):
        super().__init__()
        self.signal_name = signal.Signals(number).name
        self.exit_code = 128 + int(number)


def pending():
    """The recorded interrupt not yet reported, or `None`."""
    return _pending[0] if _pending else None


def clear():
    """Forgets a recorded interrupt (it has been reported)."""
    _pending.clear()
