"""Every recipe value that cites a paper line is at that line, and is the
value the recipe runs (`--print-config`)."""

import math
import pathlib
import re

import pytest

from keras_eexit import recipes

PAPERS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "papers"
if not PAPERS.is_dir():  # a worktree under /work/wt, or a clone
    PAPERS = pathlib.Path("/work/shared/papers")

WORDS = {"no": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
         "ten": 10}
# Keys that describe a choice in words (nothing in the settings to compare).
DESCRIPTIVE = {"architecture", "lr_search", "warmup", "model"}


def _normal(text):
    text = text.replace("\\", "").replace("$", "")
    return " ".join(text.split())


def _line(where):
    name, line = where.rsplit(":L", 1)
    lines = (PAPERS / name).read_text(encoding="utf-8").splitlines()
    return _normal(lines[int(line) - 1])


def numbers(text):
    """The numbers a phrase of a paper states (`5e - 4`, `5⋅10−4`, `10−3`,
    `0.9`, `five`)."""
    t = _normal(text).replace("−", "-").replace("⋅", "*")
    t = re.sub(r"(\d)\s*e\s*-\s*(\d)", r"\1e-\2", t)
    found = [WORDS[w] for w in re.findall(r"[a-z]+", t.lower())
             if w in WORDS]
    for m in re.finditer(r"(\d+(?:\.\d+)?)\*10\^?\{?-(\d+)", t):
        found.append(float(m.group(1)) * 10.0 ** -int(m.group(2)))
    for m in re.finditer(r"(?<![\d.*])10\^?\{?-(\d+)", t):
        found.append(10.0 ** -int(m.group(1)))
    found += [float(m) for m in re.findall(r"\d+(?:\.\d+)?(?:e-\d+)?", t)]
    return found


def _stated(value, text):
    """Whether `text` states `value` (every element of a list, or a range
    `a to b` / `a, ..., b` that starts at its first element)."""
    nums = numbers(text)
    has = lambda v: any(math.isclose(v, n, rel_tol=1e-9) for n in nums)  # noqa: E731,E501
    if isinstance(value, (list, tuple)):
        if all(has(v) for v in value):
            return True
        ranged = " to " in text or "⋯" in text or "..." in text
        return ranged and has(min(value)) and max(value) <= max(nums)
    return has(value)


def _close(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9)
    return a == b


def _contains(big, small):
    return all(any(_close(s, b) for b in big) for s in small)


def _check_setting(recipe, settings, key, value):
    if key in DESCRIPTIVE:
        return
    head, _, rest = key.partition(".")
    if head in ("regimes", "ablation"):
        found = [a.regime_params[rest] for a in recipe.arms
                 if rest in a.regime_params]
        assert any(_close(v, value) for v in found), (key, value, found)
    elif head == "lr_search":
        grids = [g for arm in recipe.arms for g in arm.lr_search.values()]
        wanted = value if isinstance(value, list) else [value]
        assert any(_contains(g, wanted) and len(g) == len(wanted)
                   for g in grids), (key, value, grids)
    else:
        actual = settings
        for part in key.split("."):
            actual = actual[part]
        if isinstance(actual, list) and isinstance(value, int):
            actual = len(actual)  # "five runs": five seeds
        assert _close(actual, value) or _close(list(actual or []),
                                               list(value or [])) \
            if isinstance(value, list) else _close(actual, value), (
                key, actual, value)


CASES = [(name, key) for name in recipes.names()
         for key in recipes.get(name).sources]


@pytest.mark.parametrize("name,key", CASES)
def test_cited_value_is_at_the_line_and_in_the_config(name, key):
    recipe = recipes.get(name)
    source = recipe.sources[key]
    settings = recipe.settings("full")
    assert key in settings["sources"]
    if source.kind != "paper":
        assert source.where  # the code path or our reason
        return
    line = _line(source.where)
    assert _normal(source.text) in line, (source.where, source.text)
    if isinstance(source.value, (int, float, list, tuple)) and not (
            isinstance(source.value, bool)) and any(
            isinstance(v, (int, float)) for v in (
                source.value if isinstance(source.value, (list, tuple))
                else [source.value])):
        assert _stated(source.value, source.text), (source.value,
                                                    source.text)
    _check_setting(recipe, settings, key, source.value)


def test_the_checks_fail_on_a_wrong_value():
    recipe = recipes.get("damping_msdnet_cifar100")
    source = recipe.sources["optimizer.learning_rate"]
    assert _stated(0.1, source.text)
    assert not _stated(0.01, source.text)
    assert numbers("5e - 4") == [5e-4]
    assert 5e-4 in numbers("a learning rate of5⋅10−4")
    assert 1e-3 in numbers("learning rate of10−3")
    with pytest.raises(AssertionError):
        _check_setting(recipe, recipe.settings(), "batch_size", 128)


@pytest.mark.parametrize("name", recipes.names())
def test_transcribed_tables_are_at_their_lines(name):
    for table in recipes.get(name).paper_tables:
        where, first = table.where.split(":L")
        start = int(first.split("-")[0])
        end = int(first.split("-L")[-1]) if "-L" in first else start
        text = " ".join(_line(f"{where}:L{i}")
                        for i in range(start, end + 1))
        for row, cells in table.rows.items():
            assert len(cells) == len(table.columns), row
            for cell in cells:
                if cell is None:
                    continue
                number = str(cell).replace("+", "").split(" ")[0]
                assert number in text, (name, table.table, row, cell)


@pytest.mark.parametrize("name", recipes.names())
def test_print_config_has_the_issue_keys(name):
    settings = recipes.get(name).settings("full")
    for key in ("dataset", "model", "regimes", "methods", "optimizer",
                "schedule", "batch_size", "epochs", "early_stopping",
                "lr_search", "seeds", "augmentation", "sources"):
        assert key in settings, key
    assert set(settings["optimizer"]) >= {
        "name", "learning_rate", "momentum", "nesterov", "weight_decay",
        "clipnorm"}
    if settings["early_stopping"] is not None:
        assert set(settings["early_stopping"]) >= {"monitor", "patience"}
    smoke = recipes.get(name).settings("smoke")
    assert "NOT comparable" in smoke["warning"]
    assert any(d.startswith("smoke scale") for d in smoke["deviations"])


def test_docs_list_every_recipe():
    docs = (pathlib.Path(__file__).resolve().parents[2] / "docs"
            / "reproduce.md").read_text(encoding="utf-8")
    for name in recipes.names():
        assert f"### `{name}`" in docs, name
        for deviation in recipes.get(name).deviations:
            assert deviation in docs, (name, deviation)
