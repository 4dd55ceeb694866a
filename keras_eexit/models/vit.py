"""`vit_exits`: a small Vision Transformer with an exit after chosen blocks."""


import keras

from keras_eexit.layers._base import check_bool
from keras_eexit.layers._base import check_dropout
from keras_eexit.layers.token_head import TOKEN_POOLING
from keras_eexit.layers.token_head import TokenHead
from keras_eexit.layers.add_position_embedding import AddPositionEmbedding
from keras_eexit.layers.transformer_block import TransformerBlock
from keras_eexit.models.zoo_common import assemble
from keras_eexit.models.zoo_common import check_positions
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value


def vit_exits(
    num_classes=10,
    image_size=32,
    patch_size=4,
    dim=256,
    depth=7,
    heads=8,
    exits_after=(2, 3, 4, 5, 6, 7),
    mlp_dim=None,
    dropout=0.0,
    attention_dropout=0.0,
    channels=3,
    pooling="cls",
    internal_norm=False,
    head_dropout=0.0,
    damping=False,
):
    """A small Vision Transformer with a classifier after chosen blocks.

    The ViT that Kubaty et al. train from scratch on CIFAR (appendix D.1 of
    "Joint or Disjoint" / "How to Train Your Multi-Exit Model?"): 32x32
    images cut into 4x4 patches (64 tokens and a class token), width 256,
    7 pre-norm transformer blocks with 8 heads, and exits after blocks
    2, 3, 4, 5, 6 and 7 (6 exits; the last is the ViT's own classifier).

    The architecture follows the ViT the benchmark code builds on
    (torchvision's `VisionTransformer`, as copied into the authors'
    `architectures/vit.py`):

    - patch embedding: a `Conv2D` with kernel and stride `patch_size` (with
      bias), flattened to `(image_size / patch_size)**2` tokens;
    - a learned class token (zeros at initialization) prepended, learned
      position embeddings (normal, std 0.02) added over all tokens, then
      dropout (`AddPositionEmbedding`);
    - `depth` pre-norm blocks (`TransformerBlock`): LayerNorm (eps 1e-6),
      multi-head self-attention with biases, dropout, residual; LayerNorm,
      `Dense(mlp_dim)`, exact GELU, dropout, `Dense(dim)`, dropout,
      residual;
    - the final classifier: the encoder's final LayerNorm and a `Dense` on
      the class token (`TokenHead(norm=True)`).

    The internal exits read the class token of the block's output with one
    `Dense` (`TokenHead(norm=False)`), which is the benchmark's
    `transformer_standard_head` (`architectures/early_exits/heads.py`:
    `x[:, 0]` then `nn.Linear`). Pass `internal_norm=True` to put a
    LayerNorm in front of it too. With `pooling="mean"` no class token is
    created and every exit averages the tokens instead.

    Facts we could not confirm: the appendix's MLP width, dropout and
    initializers were not reachable when this was written. `mlp_dim`
    defaults to `4 * dim` (the ratio of every ViT of Dosovitskiy et al.,
    Table 1, and of the ViT-T/ViT-S configurations in the authors' own
    scripts), dropout to 0 (the torchvision default the benchmark keeps),
    and the weights use Keras' default initializers (torchvision zeroes
    the final head's weights; we do not, so that every exit starts
    informative). Pass the paper's values explicitly if they differ.

    Exit `k` is numbered in forward order; blocks are numbered from 1.

    Args:
        num_classes: number of classes (>= 2).
        image_size: side of the square input images, a multiple of
            `patch_size`. Defaults to 32.
        patch_size: side of the square patches. Defaults to 4.
        dim: token width, a multiple of `heads`. Defaults to 256.
        depth: number of transformer blocks. Defaults to 7.
        heads: number of attention heads. Defaults to 8.
        exits_after: 1-based indices of the blocks after which exits go,
            strictly increasing, between 1 and `depth`. The final exit
            always follows block `depth`: it is appended when missing.
            Defaults to `(2, 3, 4, 5, 6, 7)`.
        mlp_dim: hidden width of the blocks' MLP. Defaults to `4 * dim`.
        dropout: dropout rate after the embeddings, after the attention
            and in the MLP. Defaults to 0.
        attention_dropout: dropout rate on the attention weights.
            Defaults to 0.
        channels: channels of the input images. Defaults to 3.
        pooling: `"cls"` (a class token, read by every exit) or `"mean"`
            (no class token; exits average the tokens).
        internal_norm: whether the internal exits normalise the token they
            read (the final exit always does). Defaults to `False`.
        head_dropout: dropout rate in every exit head before its `Dense`.
            Defaults to 0.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`), for
            the damping losses.

    Returns:
        A `MultiExitModel` named `"vit_exits"` with one exit per entry of
        `exits_after` (plus the final one if it was missing). Its state is
        the token tensor `(batch, tokens, dim)`.

    Example:

    ```python
    model = vit_exits(num_classes=10)  # the paper's CIFAR-10 ViT
    model.exit_names  # ['exit_1', ..., 'exit_6']
    small = vit_exits(num_classes=5, image_size=16, dim=32, depth=3,
                      heads=2, exits_after=[1, 2])
    ```

    References:
        - [Kubaty et al., 2025. How to Train Your Multi-Exit Model?
            Analyzing the Impact of Training Strategies](
            https://arxiv.org/abs/2407.14320) (first version: "Joint or
            Disjoint: Mixing Training Regimes for Early-Exit Models"), code
            at https://github.com/kamadforge/early-exit-benchmark
            (`common.py`, `architectures/tv_models.py`) and its shared
            `architectures/vit.py` and `architectures/early_exits/heads.py`
            (as in https://github.com/bartwojcik/D2DMoE)
        - [Dosovitskiy et al., 2021. An Image is Worth 16x16 Words](
            https://arxiv.org/abs/2010.11929)
    """
    num_classes = check_num_classes(num_classes)
    image_size = check_positive_int("image_size", image_size)
    patch_size = check_positive_int("patch_size", patch_size)
    if image_size % patch_size:
        raise invalid_value(
            "patch_size", f"a divisor of image_size={image_size}", patch_size
        )
    dim = check_positive_int("dim", dim)
    depth = check_positive_int("depth", depth)
    heads = check_positive_int("heads", heads)
    if dim % heads:
        raise invalid_value("heads", f"a divisor of dim={dim}", heads)
    mlp_dim = 4 * dim if mlp_dim is None else check_positive_int(
        "mlp_dim", mlp_dim
    )
    dropout = check_dropout("dropout", dropout)
    attention_dropout = check_dropout("attention_dropout", attention_dropout)
    channels = check_positive_int("channels", channels)
    check_choice("pooling", pooling, TOKEN_POOLING)
    check_bool("internal_norm", internal_norm)
    head_dropout = check_dropout("head_dropout", head_dropout)
    check_bool("damping", damping)
    exits = check_positions("exits_after", exits_after, depth, "block")
    if exits[-1] != depth:
        exits.append(depth)

    grid = image_size // patch_size
    inputs = keras.Input(shape=(image_size, image_size, channels),
                         name="image")
    x = keras.layers.Conv2D(
        dim, patch_size, strides=patch_size, padding="valid",
        name="patch_embedding",
    )(inputs)
    x = keras.layers.Reshape((grid * grid, dim), name="patch_tokens")(x)
    x = AddPositionEmbedding(
        class_token=pooling == "cls", name="position_embedding"
    )(x)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for b in range(1, depth + 1):
        x = TransformerBlock(
            dim, heads, mlp_dim, dropout=dropout,
            attention_dropout=attention_dropout, name=f"block_{b}",
        )(x)
    backbone = keras.Model(inputs, x, name="vit_backbone")
    taps = [f"block_{b}" for b in exits[:-1]]
    head_kwargs = {"pooling": pooling, "dropout": head_dropout}
    head_list = make_heads(TokenHead, num_classes, len(taps),
                           damping=damping, norm=internal_norm,
                           **head_kwargs)
    head_list += make_heads(TokenHead, num_classes, 1, start=len(taps) + 1,
                            damping=damping, norm=True, **head_kwargs)
    return assemble(backbone, taps, head_list, name="vit_exits")
