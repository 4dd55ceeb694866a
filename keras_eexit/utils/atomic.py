"""Atomic file writes: a reader never sees a half-written output."""

import contextlib
import errno
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it over `path` on success.

    The temporary file lives in the same directory (so the final rename is
    atomic on POSIX) and keeps the suffix of `path` (Keras chooses the save
    format from it). If the body raises, the temporary file is removed and
    any previous file at `path` is left intact.

    Args:
        path: the final destination.

    Returns:
        A context manager yielding the temporary path (a `str`).

    Example:

    ```python
    with atomic_path("run/model.keras") as tmp:
        model.save(tmp)
    ```
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{base}.", suffix=os.path.splitext(base)[1] or ".tmp",
        dir=directory,
    )
    os.close(fd)
    # mkstemp creates 0600; the output gets what `open` would give it.
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(error, OSError) and path not in str(error):
            raise OSError(
                error.errno,
                f"Could not write {path}: {error.strerror or error}"
            ) from error
        raise


@contextlib.contextmanager
def atomic_directory(path):
    """Yields a temporary directory beside `path`; it becomes `path` on success.

    For outputs that are whole directories (a SavedModel): a reader sees the
    previous directory or the complete new one, never a half-written one.
    If the body raises, the temporary directory is removed and a previous
    directory at `path` is left intact; a file at `path` is refused first.

    Args:
        path: the final directory.

    Returns:
        A context manager yielding the temporary directory (a `str`).

    Example:

    ```python
    with atomic_directory("served/1") as tmp:
        tf.saved_model.save(module, tmp)
    ```
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(
            errno.ENOTDIR, f"Could not write {path}: it is a file, not a "
            "directory")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.",
                               dir=parent)
    except OSError as error:
        raise OSError(error.errno, f"Could not write {path}: "
                      f"{error.strerror or error}") from error
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old.",
                                   dir=parent)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path, text):
    """Writes `text` to `path` atomically (UTF-8).

    Args:
        path: destination file.
        text: the content.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
