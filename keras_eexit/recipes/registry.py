"""The recipes by name: `RECIPES`, `get`, `names`."""

from keras_eexit.utils.validation import check_choice

RECIPES = {}
"""`{name: Recipe}` of every registered recipe."""


def register(recipe):
    """Adds a `Recipe` under its name (a name may be registered once)."""
    if recipe.name in RECIPES:
        raise ValueError(f"Recipe {recipe.name!r} is already registered.")
    RECIPES[recipe.name] = recipe
    return recipe


def names():
    """The registered recipe names, sorted."""
    _load()
    return sorted(RECIPES)


def get(name):
    """The `Recipe` registered under `name`.

    Args:
        name: a recipe name (see `names()`).

    Returns:
        The `Recipe`.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones).

    Example:

    >>> from keras_eexit import recipes
    >>> recipes.get("damping_msdnet_cifar100").settings()["optimizer"]["name"]
    'sgd'
    """
    _load()
    return RECIPES[check_choice("recipe", name, sorted(RECIPES))]


def _load():
    # The paper modules register their recipes when imported.
    from keras_eexit.recipes import damping  # noqa: F401
    from keras_eexit.recipes import kubaty  # noqa: F401
    from keras_eexit.recipes import rahmath  # noqa: F401
    from keras_eexit.recipes import zniber  # noqa: F401
