"""Reports stay library code in small pieces (issue 25, item 3).

Every report module builds its sections with small functions and imports
at the top; the `analyze` sub-command only parses, loads and calls
`analysis.write_analysis_report` (it renders nothing itself).
"""

import ast
import pathlib

import pytest

import keras_eexit

ROOT = pathlib.Path(keras_eexit.__file__).parent
REPORT_MODULES = sorted(
    [*(ROOT / "evaluation" / "reports").glob("*.py"),
     ROOT / "analysis" / "report.py", ROOT / "cli" / "analyze.py"])
MAX_LINES = 50


def _functions(tree):
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


@pytest.mark.parametrize("path", REPORT_MODULES, ids=lambda p: p.name)
def test_functions_are_small_and_import_nothing(path):
    tree = ast.parse(path.read_text())
    for function in _functions(tree):
        lines = function.end_lineno - function.lineno + 1
        assert lines <= MAX_LINES, (
            f"{path.name}: {function.name} has {lines} lines; build its "
            "sections with smaller functions")
        nested = [node for node in ast.walk(function)
                  if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not nested, f"{path.name}: {function.name} imports inside"


def test_the_analyze_command_renders_nothing_itself():
    source = (ROOT / "cli" / "analyze.py").read_text()
    for name in ("json_text", "csv_text", "write_text", "markdown_table",
                 "_plot", "write_files"):
        assert name not in source, name
    assert "analysis.write_analysis_report(" in source
