"""The `>>>` examples of every docstring of keras_eexit run as tests.

Every module of the package is searched (`package_modules`), so a new
example is tested where it is written. Examples must be fast; one that
needs training may say `# doctest: +SKIP` with its reason beside it.
"""

import doctest
import importlib

import pytest

from keras_eexit.testing.layer_contract import package_modules

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _examples():
    finder = doctest.DocTestFinder(exclude_empty=True)
    for name in package_modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples:
                yield test


EXAMPLES = sorted(_examples(), key=lambda test: test.name)


def test_examples_are_found():
    names = {test.name for test in EXAMPLES}
    assert "keras_eexit.utils.validation.check_choice" in names
    assert "keras_eexit.testing.layer_contract.run_layer_test" in names


@pytest.mark.parametrize("test", EXAMPLES, ids=lambda test: test.name)
def test_docstring_example(test):
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)
