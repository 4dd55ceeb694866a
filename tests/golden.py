"""Comparing rendered report files with the copies kept beside a test.

Markdown is compared byte for byte; CSV and JSON cell by cell, with floats
to a relative tolerance (the last digits of a p-value or of a float32 loss
may differ between machines).
"""

import csv
import io
import json
import math
import pathlib


def same_value(actual, expected, rel=1e-9):
    """Equal, with floats (also inside containers) to `rel` relative."""
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and list(actual) == list(expected)
                and all(same_value(actual[k], expected[k], rel)
                        for k in expected))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(same_value(a, e, rel)
                        for a, e in zip(actual, expected)))
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-12)
    return actual == expected


def _cells(text):
    """CSV rows with numeric cells as floats."""
    def value(cell):
        try:
            return float(cell)
        except ValueError:
            return cell
    return [[value(c) for c in row] for row in csv.reader(io.StringIO(text))]


def assert_same_file(path, expected_path, rel=1e-9):
    """`path` renders what `expected_path` holds (see the module doc)."""
    path, expected_path = pathlib.Path(path), pathlib.Path(expected_path)
    actual, expected = path.read_text(), expected_path.read_text()
    if path.suffix == ".json":
        assert same_value(json.loads(actual), json.loads(expected),
                          rel), path.name
    elif path.suffix == ".csv":
        assert same_value(_cells(actual), _cells(expected), rel), path.name
    else:
        assert actual == expected, path.name
