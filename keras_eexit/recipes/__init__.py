"""The papers' experiments as recipes: `keras-eexit reproduce NAME`.

A recipe (`Recipe`) is one experiment of one paper — a table or a figure
— as data: data set, model, trained variants (`Arm`s), optimiser,
schedule, batch size, epochs, early stopping, the per-phase learning-rate
search, seeds, augmentation and evaluation, each value with its source
(`Source`: a line of a paper in `shared/papers/`, the authors' code, or
our choice), the paper's numbers (`PaperTable`) and every way the code
differs from the paper. One module per paper registers its recipes:
`kubaty` (Kubaty et al.), `zniber` (Zniber et al.), `rahmath` (Rahmath P
et al.), `damping` (the damping paper).

* `names()`, `get(name)`: the registry;
* `get(name).settings(scale)`: the resolved set-up (`--print-config`);
* `reproduce(name, data_dir=..., out=..., scale="full" | "smoke")`, or
  `get(name).run(...)`: the learning-rate search, every arm × seed
  (resumable), and the report (`report.md`, `results.csv`,
  `comparison/`).

Example:

```python
from keras_eexit import recipes

recipes.names()[:2]
summary = recipes.get("kubaty_vit_cifar10").run(scale="smoke",
                                                out="runs/vit")
```
"""

from keras_eexit.recipes.recipe import SCALES
from keras_eexit.recipes.recipe import Arm
from keras_eexit.recipes.recipe import PaperTable
from keras_eexit.recipes.recipe import Recipe
from keras_eexit.recipes.recipe import Smoke
from keras_eexit.recipes.recipe import Source
from keras_eexit.recipes.registry import get
from keras_eexit.recipes.registry import names
from keras_eexit.recipes.run import reproduce

__all__ = [
    "Arm",
    "PaperTable",
    "Recipe",
    "SCALES",
    "Smoke",
    "Source",
    "get",
    "names",
    "reproduce",
]
