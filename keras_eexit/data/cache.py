"""The user cache directory and crash-safe `.npz` files inside it."""

import logging
import os
import uuid
import zipfile

import numpy as np

logger = logging.getLogger(__name__)

#: Environment variable that overrides the cache directory.
CACHE_ENV = "KERAS_EEXIT_CACHE"


def cache_dir():
    """Returns the directory where generated data sets are cached.

    `$KERAS_EEXIT_CACHE` when set, else `$XDG_CACHE_HOME/keras_eexit`, else
    `~/.cache/keras_eexit`. The directory is not created here.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(os.path.abspath(base), "keras_eexit")


def read_npz(path, keys):
    """Reads `keys` from an `.npz` file, or returns `None` if unusable.

    A missing, truncated, corrupt or incomplete file (or one that would
    need pickle to read) yields `None`, so the caller regenerates it.

    Args:
        path: File to read.
        keys: Array names that must all be present.

    Returns:
        A dict of numpy arrays, or `None`.
    """
    if not os.path.exists(path):
        return None
    try:
        # Own the file handle: np.load leaks it when the content is not
        # an array file at all.
        with open(path, "rb") as handle:
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                return None
            with archive:
                return {key: np.asarray(archive[key]) for key in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        logger.warning("Ignoring unreadable cache file %s (%s).", path, err)
        return None


def write_npz(path, arrays):
    """Writes `arrays` to `path` atomically.

    The arrays go to a temporary file in the same directory, which is
    flushed to disk and then renamed over `path` with `os.replace`: a
    reader sees either the old file, no file, or the complete new one,
    never a truncated file, even if the writer is killed.

    Args:
        path: Destination `.npz` file; its directory is created if needed.
        arrays: Dict of name -> numpy array (no object arrays).

    Returns:
        `True` if the file was written, `False` if the directory is not
        writable (the failure is logged, not raised: the cache is optional).
    """
    directory = os.path.dirname(os.path.abspath(path))
    tmp_path = None
    try:
        os.makedirs(directory, exist_ok=True)
        # A fresh, unique name opened exclusively ("xb"): unlike mkstemp,
        # this honours the umask, so the cache file gets normal permissions.
        tmp_path = os.path.join(
            directory, f".tmp-{os.getpid()}-{uuid.uuid4().hex}.npz"
        )
        with open(tmp_path, "xb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
        tmp_path = None
        return True
    except OSError as err:
        logger.warning("Could not write cache file %s (%s).", path, err)
        return False
    finally:
        if tmp_path is not None and os.path.exists(tmp_path):
            os.remove(tmp_path)
