"""Permutation alignment of two networks by weight matching (Git Re-Basin).

Hidden units can be permuted without changing what a network computes;
two independently trained networks therefore rarely line up unit for unit.
Ainsworth et al. (2022, "Git Re-Basin", Algorithm 1, *weight matching*)
find, for each permutation group, the permutation of `other`'s units that
maximises `Σ ⟨W_reference, P W_other P'ᵀ⟩` over the weights the group
touches, one group at a time (a linear assignment problem), until no
group changes. Kubaty et al. (§3.1, D.8) align two of three models to the
third this way before drawing the plane through them.

Supported architectures (the zoo's CNN families, with `LinearHead` or
`SDNPoolHead` exits, their defaults):

- `small_cnn`, `cnn1d`: one group per stage (the channels of
  `stage{k}_conv`, its BatchNorm and every head reading that stage);
- `cifar_resnet`: one group per residual stream and one per block (the
  channels of the block's first convolution). With the parameter-free
  "option A" shortcut (depths 20/32/56) the wider stream of stage `s`
  contains the previous stream, zero-padded: its permutation permutes the
  copied channels as the previous stream does and the padded channels
  among themselves. Projection shortcuts start a fresh group.

Other models are refused with a clear error (their symmetries differ: a
`Flatten` into a `Dense`, attention heads, multi-scale states ...).
"""

import dataclasses
import re

import numpy as np

from keras_eexit.analysis.weight_space import WeightSpace
from keras_eexit.utils.validation import check_positive_int

SUPPORTED = ("small_cnn", "cnn1d", "cifar_resnet")
HEADS = ("LinearHead", "SDNPoolHead")


@dataclasses.dataclass(frozen=True)
class PermutationSpec:
    """Which axes of which weights each permutation group reorders.

    Attributes:
        groups: `{group name: number of units}`.
        axes: `{slot index: {axis: layout}}` where a layout is a list of
            `(group, positions)`: the group's permutation reorders the
            entries at `positions` of that axis (an axis may be made of
            several groups, e.g. a zero-padded residual stream).
    """

    groups: dict
    axes: dict


def _stream(group, size, offset=0):
    return [(group, np.arange(offset, offset + size))]


def _shift(layout, offset):
    return [(g, p + offset) for g, p in layout]


class _Builder:
    def __init__(self, model):
        from keras_eexit.compat import flatten_layers

        self.space = WeightSpace(model)
        self.model = model
        self.layers = {}
        for segment in model.segments:
            for layer in flatten_layers(segment)[1:]:
                self.layers.setdefault(layer.name, layer)
        self.groups = {}
        self.axes = {}

    def layer(self, name):
        if name not in self.layers:
            raise _unsupported(self.model, f"it has no layer {name!r}")
        return self.layers[name]

    def group(self, name, size):
        self.groups[name] = int(size)
        return _stream(name, size)

    def put(self, variable, axis, layout):
        index = self.space.index_of(variable)
        size = variable.shape[axis]
        covered = np.concatenate([p for _, p in layout])
        if sorted(covered.tolist()) != list(range(size)):
            raise _unsupported(self.model,
                               f"{variable.path} does not match its layout")
        self.axes.setdefault(index, {})[axis] = layout

    def conv(self, name, in_layout, out_layout):
        kernel = self.layer(name).kernel
        rank = len(kernel.shape)
        if in_layout is not None:
            self.put(kernel, rank - 2, in_layout)
        self.put(kernel, rank - 1, out_layout)
        bias = getattr(self.layer(name), "bias", None)
        if bias is not None:
            self.put(bias, 0, out_layout)

    def batch_norm(self, name, layout):
        layer = self.layer(name)
        for attribute in ("gamma", "beta", "moving_mean",
                          "moving_variance"):
            variable = getattr(layer, attribute, None)
            if variable is not None:
                self.put(variable, 0, layout)

    def heads(self, layouts_by_output):
        """Each head's Dense kernel rows follow its segment's stream.

        `LinearHead`: global pooling, so one row per channel.
        `SDNPoolHead`: channel-wise pooling to a small grid, flattened
        channels-last, so the stream's layout repeats at every position.
        """
        for k, (segment, head) in enumerate(zip(self.model.segments,
                                                self.model.heads)):
            kind = type(head).__name__
            if kind not in HEADS:
                raise _unsupported(
                    self.model, f"exit_{k + 1} has a {kind}; weight "
                    f"matching supports {' and '.join(HEADS)} exits")
            output = segment.layers[-1].name
            if output not in layouts_by_output:
                raise _unsupported(self.model, f"exit_{k + 1} reads "
                                   f"{output!r}, not a stage output")
            layout = layouts_by_output[output]
            channels = sum(len(p) for _, p in layout)
            rows = head.logits.kernel.shape[0]
            if rows % channels:
                raise _unsupported(self.model, f"exit_{k + 1}'s Dense has "
                                   f"{rows} inputs for {channels} channels")
            self.put(head.logits.kernel, 0, [
                (g, p + position * channels)
                for position in range(rows // channels) for g, p in layout])

    def spec(self):
        return PermutationSpec(dict(self.groups), dict(self.axes))


def _unsupported(model, why):
    return ValueError(
        f"Weight matching does not support model {model.name!r}: {why}. "
        f"Supported: {', '.join(SUPPORTED)} from keras_eexit.models, with "
        f"{' or '.join(HEADS)} exits.")


def _family(model):
    name = model.name
    for family in ("small_cnn", "cnn1d", "cifar_resnet"):
        if name == family or (family == "cifar_resnet"
                              and re.fullmatch(r"cifar_resnet\d+", name)):
            return family
    raise _unsupported(model, "not one of the supported architectures")


def _chain_spec(builder):
    stages = sorted(int(m.group(1)) for m in (
        re.fullmatch(r"stage(\d+)_conv", n) for n in builder.layers) if m)
    if not stages:
        raise _unsupported(builder.model, "no stage{k}_conv layers")
    outputs, previous = {}, None
    for k in stages:
        conv = builder.layer(f"stage{k}_conv")
        layout = builder.group(f"stage{k}", conv.kernel.shape[-1])
        builder.conv(f"stage{k}_conv", previous, layout)
        builder.batch_norm(f"stage{k}_bn", layout)
        outputs[f"stage{k}_out"] = layout
        previous = layout
    builder.heads(outputs)


def _resnet_spec(builder):
    stem = builder.layer("stem_conv")
    stream = builder.group("stream1", stem.kernel.shape[-1])
    builder.conv("stem_conv", None, stream)
    builder.batch_norm("stem_bn", stream)
    outputs = {}
    blocks = sorted((int(m.group(1)), int(m.group(2))) for m in (
        re.fullmatch(r"stage(\d+)_block(\d+)_1_conv", n)
        for n in builder.layers) if m)
    for stage, block in blocks:
        name = f"stage{stage}_block{block}"
        width = builder.layer(f"{name}_1_conv").kernel.shape[-1]
        inner = builder.group(f"{name}_inner", width)
        builder.conv(f"{name}_1_conv", stream, inner)
        builder.batch_norm(f"{name}_1_bn", inner)
        out = stream
        if f"{name}_shortcut_conv" in builder.layers:  # projection
            out = builder.group(f"stream{stage}", width)
            builder.conv(f"{name}_shortcut_conv", stream, out)
            builder.batch_norm(f"{name}_shortcut_bn", out)
        elif f"{name}_shortcut" in builder.layers:  # option A: zero pad
            channels = sum(len(p) for _, p in stream)
            before = (width - channels) // 2
            extra = np.concatenate([np.arange(before),
                                    np.arange(before + channels, width)])
            builder.groups[f"stream{stage}_pad"] = len(extra)
            out = _shift(stream, before) + [(f"stream{stage}_pad", extra)]
        builder.conv(f"{name}_2_conv", inner, out)
        builder.batch_norm(f"{name}_2_bn", out)
        outputs[f"{name}_out"] = out
        stream = out
    builder.heads(outputs)


def permutation_spec(model):
    """The `PermutationSpec` of a supported model (see the module doc).

    Args:
        model: a built `small_cnn`, `cnn1d` or `cifar_resnet` model.

    Returns:
        A `PermutationSpec` over `WeightSpace(model)`.

    Raises:
        ValueError: for any other architecture, or heads other than
            `LinearHead`/`SDNPoolHead`, naming what is not supported.
    """
    family = _family(model)
    builder = _Builder(model)
    if family == "cifar_resnet":
        _resnet_spec(builder)
    else:
        _chain_spec(builder)
    return builder.spec()


def _index(size, layout, perms):
    index = np.arange(size)
    for group, positions in layout:
        perm = perms.get(group)
        if perm is not None:
            index[positions] = positions[perm]
    return index


def apply_permutation(space, spec, vector, perms):
    """`vector` with its units reordered by `perms`.

    Args:
        space: the `WeightSpace` of the vector.
        spec: its `PermutationSpec`.
        vector: flat `(P,)` weights.
        perms: `{group: permutation array}` (missing groups: identity);
            position `i` of a group takes the unit at `perm[i]`.

    Returns:
        The permuted flat vector (what the network computes is unchanged).
    """
    out = np.array(vector, np.float32, copy=True)
    for index, axes in spec.axes.items():
        slot = space.slots[index]
        array = out[slot.start:slot.stop].reshape(slot.shape)
        for axis, layout in axes.items():
            array = np.take(array, _index(slot.shape[axis], layout, perms),
                            axis=axis)
        out[slot.start:slot.stop] = array.reshape(-1)
    return out


def weight_matching(space, spec, reference, other, max_iter=100, seed=0):
    """Permutations of `other`'s units that best match `reference`.

    Ainsworth et al.'s Algorithm 1: start from identities; for each group
    in a random order, solve the linear assignment maximising
    `Σ_i ⟨W_ref[..., i, ...], W_other'[..., perm(i), ...]⟩` over every
    trainable weight the group reorders (`W_other'` has every other
    group's current permutation applied); repeat until no group changes.

    Args:
        space: the `WeightSpace` of both vectors.
        spec: the `PermutationSpec`.
        reference: flat weights of the reference model.
        other: flat weights of the model to align.
        max_iter: rounds over all groups at most.
        seed: seed of the group order.

    Returns:
        `{group: permutation}`; `apply_permutation(space, spec, other,
        perms)` is the aligned model.

    References:
        - [Ainsworth et al., 2022. Git Re-Basin: Merging Models modulo
            Permutation Symmetries](https://arxiv.org/abs/2209.04836)
            (Algorithm 1)
    """
    from scipy.optimize import linear_sum_assignment

    max_iter = check_positive_int("max_iter", max_iter)
    perms = {g: np.arange(n) for g, n in spec.groups.items()}
    by_group = {g: [] for g in spec.groups}
    for index, axes in spec.axes.items():
        if not space.slots[index].trainable:
            continue
        for axis, layout in axes.items():
            for group, positions in layout:
                by_group[group].append((index, axis, positions))
    reference = np.asarray(reference, np.float64)
    rng = np.random.default_rng(seed)
    names = list(spec.groups)
    for _ in range(max_iter):
        changed = False
        for group in rng.permutation(names):
            fixed = dict(perms)
            fixed[group] = np.arange(spec.groups[group])
            current = apply_permutation(space, spec, other, fixed)
            size = spec.groups[group]
            cost = np.zeros((size, size))
            for index, axis, positions in by_group[group]:
                slot = space.slots[index]
                ref = np.moveaxis(reference[slot.start:slot.stop].reshape(
                    slot.shape), axis, 0)[positions].reshape(size, -1)
                oth = np.moveaxis(current[slot.start:slot.stop].reshape(
                    slot.shape).astype(np.float64), axis, 0)[
                        positions].reshape(size, -1)
                cost += ref @ oth.T
            _, columns = linear_sum_assignment(cost, maximize=True)
            previous = cost[np.arange(size), perms[group]].sum()
            if cost[np.arange(size), columns].sum() > previous + 1e-9 * (
                    1 + abs(previous)):
                perms[group] = columns
                changed = True
        if not changed:
            break
    return perms


def align(reference, other, max_iter=100, seed=0):
    """`other`'s weights permuted to match `reference` (weight matching).

    Args:
        reference: a built model of a supported architecture (unchanged).
        other: a model of the same architecture (unchanged).
        max_iter: see `weight_matching`.
        seed: see `weight_matching`.

    Returns:
        `(aligned flat vector of other, perms)`, in
        `WeightSpace(reference)`'s layout.
    """
    space = WeightSpace(reference)
    spec = permutation_spec(reference)
    theta_ref, theta_other = space.vector(), space.vector(other)
    perms = weight_matching(space, spec, theta_ref, theta_other, max_iter,
                            seed)
    return apply_permutation(space, spec, theta_other, perms), perms
