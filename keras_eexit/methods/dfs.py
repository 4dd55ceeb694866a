"""DFS: Deep Feature Surgery's feature partitioning on a multi-exit chain."""

from keras_eexit import chain
from keras_eexit.layers.partitioned_head import PartitionedHead
from keras_eexit.layers.partitioned_segment import PartitionedSegment
from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.utils.validation import check_bool
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number
from keras_eexit.utils.validation import invalid_value

EXIT_GRADIENTS = ("specific", "all")
"""Where an internal exit's gradient goes: `"specific"` (the exit-specific
channels only, the paper's definition) or `"all"` (every channel, the
variant of the authors' `feature_reroute.py`)."""


def dfs(model, ratio=0.5, exit_gradient="specific", referencing=True):
    """Deep Feature Surgery (Gong et al., ECCV 2024) on a multi-exit model.

    At every internal exit `k` (1..K-1) the features its head reads are
    split along the channel axis into shared channels `f+` (the first
    `round(ratio · C)`) and exit-specific channels `f-` (the rest). Both
    the head and the next stage read every channel (feature referencing),
    but in the backward pass exit `k`'s gradient reaches only `f-` and the
    deeper exits' gradients only `f+`: the weights producing `f-` are
    trained by exit `k` alone and those producing `f+` by the deeper exits
    alone, which is how DFS keeps the exits' gradients from conflicting on
    shared weights. The last exit is not partitioned.

    The forward pass is unchanged (with `referencing=True`): outputs,
    FLOPs, early-exit inference and export are those of the plain model.
    Any regime trains the result; note that under `TwoStage` the
    exit-specific channels get no gradient at all (only the final exit
    trains the backbone, which is then frozen), so they keep their initial
    values — a consequence of the definition.

    Source followed: the paper's definition as drawn in the authors'
    README and implemented in `src/models/dns_resnet.py`, `dns_vgg.py` and
    `dns_bert.py` (`x_plus = cat(f+, f-.detach())` to deeper layers,
    `x_sub = cat(f+.detach(), f-)` to the exit): the default. The authors'
    `src/models/feature_reroute.py`, which their MSDNet (`dns_msdnet.py`)
    and ViT use, gives the exit every channel with its gradient (`x_sub =
    x`, "very effective for small models"): `exit_gradient="all"`, the
    method `dfs_reroute`. The damping paper (004) compares against DFS on
    MSDNet (its Table 2 reprints DFS's MSDNet figures), i.e. against this
    variant. For tuple
    states only the tensor the head reads is partitioned, as their MSDNet
    splits only the scale its classifier reads. DFS's own training loss is
    the plain joint cross-entropy (their ResNet-18 CIFAR runs add BYOT-style
    distillation, which is not part of DFS).

    Args:
        model: a built `MultiExitModel` with shared segments (not a chain of
            unshared prefixes, which has nothing to partition).
        ratio: β in [0, 1], the fraction of shared channels (0.5 in every
            script of the authors). 1 leaves the backbone to the final exit
            (exits train only their heads); 0 trains each segment by its
            own exit only.
        exit_gradient: `"specific"` (the paper) or `"all"` (the authors'
            MSDNet/ViT code; see above).
        referencing: `True` (the method). `False`: the paper's ablation
            without feature referencing: each consumer reads zeros instead
            of the other part's channels (forward values change), which
            requires `exit_gradient="specific"`.

    Returns:
        A new `MultiExitModel` over the same layer objects (weights shared
        with `model`): heads 1..K-1 wrapped in `PartitionedHead` (unless
        `exit_gradient="all"`), segments 2..K in `PartitionedSegment`. It
        is not compiled.

    Example:

    ```python
    model = keras_eexit.methods.dfs(keras_eexit.models.cnn1d(), ratio=0.5)
    model.compile(optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, epochs=10, callbacks=[keras_eexit.regimes.Joint()])
    ```

    References:
        - Gong, Chen, Luo, Lu, Li, Zhang, Sun, Zhang. Deep Feature Surgery:
            Towards Accurate and Efficient Multi-Exit Networks. ECCV 2024
            (arXiv:2407.13986); github.com/GongCheng1919/dfs.
    """
    if not isinstance(model, MultiExitModel):
        raise invalid_value("model", "a keras_eexit.MultiExitModel", model)
    ratio = check_number("ratio", ratio, 0.0, 1.0)
    check_choice("exit_gradient", exit_gradient, EXIT_GRADIENTS)
    check_bool("referencing", referencing)
    if not referencing and exit_gradient == "all":
        raise invalid_value(
            "exit_gradient", "'specific' when referencing=False (an exit "
            "that reads zeros for the shared channels has no gradient to "
            "send them)", exit_gradient)
    if not model.built:
        raise ValueError(
            "dfs() needs a built model: call it on a batch or "
            "`model.build(input_shape)` first.")
    layers = list(model.segments) + list(model.heads)
    if any(isinstance(layer, (PartitionedHead, PartitionedSegment))
           for layer in layers):
        raise ValueError(
            f"Model {model.name!r} is already partitioned by DFS.")
    if any(chain.reads_exits(h) for h in model.heads):
        raise ValueError(
            f"Model {model.name!r} has heads that read earlier exits (ZTW, "
            "GPF): apply dfs() first, then the method that adds them "
            "(e.g. `ztw(dfs(model))`).")
    if any(getattr(s, "recomputes_input", False) for s in model.segments):
        raise ValueError(
            f"Model {model.name!r} is a chain of unshared prefixes "
            "(Separate): its exits share no features for DFS to partition.")
    segments = [model.segments[0]] + [
        PartitionedSegment(s, ratio, referencing, name=s.name)
        for s in model.segments[1:]]
    heads = list(model.heads)
    if exit_gradient == "specific":
        heads = [PartitionedHead(h, ratio, referencing, name=h.name)
                 for h in heads[:-1]] + heads[-1:]
    result = MultiExitModel(segments, heads, exit_names=model.exit_names,
                            name=model.name)
    if not result.built:
        result.build((None,) + tuple(model.input_shape_))
    return result


def dfs_reroute(model, ratio=0.5):
    """DFS as the authors' MSDNet code runs it: `exit_gradient="all"`.

    The authors' `src/models/feature_reroute.py` (used by their MSDNet,
    `dns_msdnet.py`, and ViT) lets an internal exit's gradient reach every
    channel of the features it reads, while the deeper exits' gradients
    still reach only the shared channels. This is the DFS the damping paper
    (004, sec. 4 and Table 2) compares against: its DFS figures are those
    of DFS's 5-exit MSDNet on ImageNet. `dfs(model)` keeps the paper's
    definition (the exit's gradient reaches only its own channels).

    Args:
        model: a built `MultiExitModel` (see `dfs`).
        ratio: β, the fraction of shared channels (0.5, as the authors).

    Returns:
        A new `MultiExitModel`: `dfs(model, ratio, exit_gradient="all")`.

    Example:

    ```python
    model = keras_eexit.methods.dfs_reroute(keras_eexit.models.cnn1d())
    ```
    """
    return dfs(model, ratio=ratio, exit_gradient="all")
