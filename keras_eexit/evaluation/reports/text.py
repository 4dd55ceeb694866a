"""Tables as text: Markdown, CSV and strict JSON, and atomic report files.

Every report of the package (`comparison`, `evaluation`, and
`keras_eexit.analysis.report`) renders its tables and numbers with these
functions, so the same value reads the same everywhere: NaN is `n/a` in
Markdown, an empty cell in CSV and `null` in JSON.
"""

import csv
import io
import json
import math
import os

import numpy as np

from keras_eexit.utils.atomic import write_text


def plain(value):
    """`value` with NumPy types made JSON-able and NaN/inf as None.

    Args:
        value: dicts, lists, tuples, numbers, strings, NumPy arrays/scalars.

    Returns:
        The same structure of Python dicts, lists and scalars.

    Example:

    >>> plain({"a": np.float32(0.5), "b": float("nan")})
    {'a': 0.5, 'b': None}
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value):
    """Strict JSON (NaN and infinities as `null`; NumPy values converted).

    Args:
        value: dicts, lists, numbers, strings and NumPy arrays/scalars.

    Returns:
        The JSON text, indented.

    Example:

    >>> json_text({"accuracy": float("nan")})
    '{\\n  "accuracy": null\\n}'
    """
    return json.dumps(plain(value), indent=2, ensure_ascii=False,
                      allow_nan=False)


def _cell(value, digits):
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(rows, columns=None, digits=4):
    """A Markdown table of dict rows.

    Args:
        rows: a list of dicts.
        columns: the keys to show, in order (default: the first row's).
        digits: decimals for floats (NaN shows as `n/a`; ints get thousands
            separators).

    Returns:
        The table as a string (no trailing newline).

    Example:

    >>> print(markdown_table([{"exit": "exit_1", "accuracy": 0.5}]))
    | exit | accuracy |
    |---|---|
    | exit_1 | 0.5000 |
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(str(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), digits)
                                       for c in columns) + " |")
    return "\n".join(lines)


def csv_text(rows, columns=None):
    """CSV text of dict rows (header line first; NaN as an empty cell).

    Args:
        rows: a list of dicts.
        columns: the keys, in order (default: the first row's).

    Returns:
        The CSV text.

    Example:

    >>> csv_text([{"exit": "exit_1", "accuracy": 0.5}])
    'exit,accuracy\\nexit_1,0.5\\n'
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns),
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v)
                         for k, v in plain(row).items()})
    return buffer.getvalue()


def write_files(out_dir, files):
    """Writes each text atomically into `out_dir` (created if needed).

    Args:
        out_dir: the output directory.
        files: `{file name: text}`, written in this order.

    Returns:
        `{file name: path}` of the files written.

    Example:

    ```python
    write_files("runs/report", {"report.md": "# Report\\n"})
    # {'report.md': 'runs/report/report.md'}
    ```
    """
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for name, text in files.items():
        path = os.path.join(out_dir, name)
        write_text(path, text)
        written[name] = path
    return written
