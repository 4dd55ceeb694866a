"""What a regime runs, as text: to refuse resuming under another regime."""

import hashlib

import numpy as np

SIGNATURE_BYTES = 2048
"""Bytes of the signature text kept in a `RegimeState` (longer texts are
cut; the comparison uses a hash of the whole text)."""


def regime_signature(regime):
    """One line naming the regime's class and every phase's settings.

    Two regimes with the same line train the same phases the same way
    (lengths, what trains, weights, terms, learning rates, edge actions).

    Args:
        regime: a `Regime` whose phases are known (`prepare_fit` ran).

    Returns:
        A string, e.g. `"TwoStage | backbone: 2 epochs, segments all,
        heads [3], ... | heads: ..."`.
    """
    return " | ".join([type(regime).__name__]
                      + [phase_text(p) for p in regime.phases])


def phase_text(phase):
    """A phase's settings in one line (its name first)."""
    if phase.monitor is not None:
        most = "" if phase.epochs is None else f", at most {phase.epochs}"
        length = (f"until {' and '.join(phase.monitors)} stall "
                  f"{phase.patience}{most}")
    elif phase.epochs is None:
        length = "until fit ends"
    else:
        length = f"{phase.epochs} epoch{'' if phase.epochs == 1 else 's'}"
    parts = [length, f"segments {_exits(phase.train_segments)}",
             f"heads {_exits(phase.train_heads)}",
             f"weights {_value(phase.weights)}"]
    if phase.terms:
        parts.append("terms " + "+".join(type(t).__name__
                                         for t in phase.terms))
    for name in ("learning_rate", "fisher_exit", "reference_exit"):
        if getattr(phase, name) is not None:
            parts.append(f"{name} {getattr(phase, name)}")
    for name in ("restore_best", "snapshot_teacher", "cache_features",
                 "gradient_equilibrium", "reset_optimizer"):
        if getattr(phase, name):
            parts.append(name)
    if phase.train_step is not None:
        parts.append(f"train_step {_value(phase.train_step)}")
    return f"{phase.name!r}: " + ", ".join(parts)


def signature_hash(text):
    """A stable 32-bit hash of a signature text (the same in every run and
    on every backend: JAX keeps integers in 32 bits)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int(np.frombuffer(digest[:4], dtype="<i4")[0])


def legacy_signature_hash(text):
    """The 64-bit hash of files saved before the hash became 32-bit (read
    only: a run saved by an earlier build still resumes)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int(np.frombuffer(digest[:8], dtype="<i8")[0])


def encode(text):
    """The text as `SIGNATURE_BYTES` uint8 values (cut, zero-padded)."""
    data = text.encode("utf-8")[:SIGNATURE_BYTES]
    out = np.zeros((SIGNATURE_BYTES,), "uint8")
    out[:len(data)] = np.frombuffer(data, "uint8")
    return out


def decode(values):
    """The text `encode` stored."""
    data = bytes(np.asarray(values, "uint8")).rstrip(b"\0")
    return data.decode("utf-8", errors="replace")


def difference(saved, given):
    """The first difference between two signature texts, in words."""
    old, new = saved.split(" | "), given.split(" | ")
    if old[0] != new[0]:
        return f"it was saved by {old[0]}, this fit runs {new[0]}"
    if len(old) != len(new):
        return (f"it has {len(old) - 1} phases ({_names(old)}), this fit "
                f"has {len(new) - 1} ({_names(new)})")
    for k, (a, b) in enumerate(zip(old[1:], new[1:]), start=1):
        if a != b:
            return f"phase {k} saved as {a}; this fit gives {b}"
    return "the saved signature was cut short and differs"


def _names(parts):
    return ", ".join(p.split(":", 1)[0] for p in parts[1:])


def _exits(chosen):
    return chosen if isinstance(chosen, str) else str(sorted(chosen))


def _value(value):
    if callable(value):
        func = getattr(value, "func", value)  # functools.partial
        return getattr(func, "__qualname__", type(func).__name__)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"{float(v):g}" for v in value) + "]"
    return str(value)
