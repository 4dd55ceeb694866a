"""`text_transformer_exits`: a BERT-style encoder with an exit per layer."""

import importlib.util
import numbers

import keras

from keras_eexit.layers.cls_head import ClsHead
from keras_eexit.layers.text_embedding import TextEmbedding
from keras_eexit.layers.token_padding_mask import TokenPaddingMask
from keras_eexit.layers.token_type_ids import TokenTypeIds
from keras_eexit.layers.text_encoder import TextEncoderLayer
from keras_eexit.models.multi_exit_model import MultiExitModel
from keras_eexit.models.zoo_common import make_heads
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_num_classes
from keras_eexit.utils.validation import check_positive_int
from keras_eexit.utils.validation import invalid_value

BACKENDS = ("auto", "keras_hub", "builtin")
"""Where the encoder layers come from (see `text_transformer_exits`)."""

DEFAULTS = {
    "num_layers": 4,
    "num_heads": 4,
    "hidden_dim": 128,
}
"""Architecture defaults without a preset (a "BERT-mini"-like encoder)."""

_ARCHITECTURE = ("vocabulary_size", "num_layers", "num_heads", "hidden_dim",
                 "intermediate_dim", "max_sequence_length")


def text_transformer_exits(
    num_classes=2,
    sequence_length=64,
    vocabulary_size=None,
    num_layers=None,
    num_heads=None,
    hidden_dim=None,
    intermediate_dim=None,
    max_sequence_length=None,
    dropout=0.1,
    backend="auto",
    preset=None,
    head="cls",
    damping=False,
    **head_kwargs,
):
    """A BERT-style text encoder with an exit after every encoder layer.

    The model reads ONE input: integer token ids of shape
    `(batch, sequence_length)`, `[CLS]` first and 0 for padding (the
    convention of `keras_eexit.data.text_vocab.tokenize` and of BERT
    tokenizers). Stage 1 embeds the tokens (token + position + segment-0
    embeddings, layer normalization, dropout) and runs encoder layer 1;
    stage `k > 1` runs encoder layer `k`. The state passed between stages
    is the tuple `(hidden, padding_mask)`: hidden states
    `(batch, sequence_length, hidden_dim)` and the int32 padding mask
    `(batch, sequence_length)` (1 for tokens, 0 for padding), so every
    layer ignores padding without re-reading the ids. Each exit head reads
    the hidden states only; the default head (`"cls"`,
    `keras_eexit.layers.cls_head.ClsHead`) follows BERT's `pooled_output`
    convention: the [CLS] (first) token's vector, a `tanh` `Dense` pooler,
    dropout and a `Dense` to logits, one pooler per exit as in DeeBERT.

        ids -> [embeddings, layer 1] -> exit_1
            -> [layer 2]             -> exit_2
            ...
            -> [layer L]             -> exit_L

    Encoder layers are post-norm BERT blocks (attention and a GELU
    feed-forward, each followed by residual addition and layer
    normalization). Two backends provide them:

    * `"keras_hub"`: a `keras_hub.models.BertBackbone` (randomly
      initialised, or loaded with `preset=`) is cut into stages that reuse
      its layers and weights (`token_embedding`, `position_embedding`,
      `segment_embedding`, `embeddings_layer_norm`, `transformer_layer_{i}`).
      Requires the optional `keras-hub` package.
    * `"builtin"`: the same architecture from keras-eexit's own layers
      (`TextEmbedding`, `TextEncoderLayer`), with no extra dependency.
    * `"auto"` (default): `"keras_hub"` if keras-hub is installed, else
      `"builtin"`.

    Both save to `.keras` and load with `safe_mode=True` (keras-hub layers
    are registered Keras serializables; keras-hub must then be installed
    to load a keras-hub model), and both export to LiteRT.

    Without a preset, token ids follow the tiny built-in character
    vocabulary (`keras_eexit.data.text_vocab`, 61 ids) unless
    `vocabulary_size` says otherwise. With a preset, the architecture and
    the vocabulary are the preset's: tokenize with the matching keras-hub
    tokenizer (`keras_hub.models.BertTokenizer.from_preset(preset)`), and
    leave the architecture arguments at `None`. The heads are new; with a
    preset each head's pooler starts from the preset's pooler
    (`pooled_dense`), so the final exit is BERT's own classifier layout.

    Args:
        num_classes: number of classes (>= 2).
        sequence_length: number of tokens per input (>= 2), static so that
            FLOPs are counted and LiteRT files have a fixed shape.
        vocabulary_size: number of token ids (>= 5). Defaults to the
            built-in character vocabulary's size.
        num_layers: encoder layers, hence exits (>= 1). Defaults to 4.
        num_heads: attention heads (>= 1, dividing `hidden_dim`). Defaults
            to 4.
        hidden_dim: hidden width (>= 1). Defaults to 128.
        intermediate_dim: feed-forward width. Defaults to `4 * hidden_dim`.
        max_sequence_length: number of learned positions (>=
            `sequence_length`). Defaults to `sequence_length`.
        dropout: dropout rate of the encoder (and of the default heads) in
            [0, 1). Defaults to 0.1, BERT's value.
        backend: `"auto"`, `"keras_hub"` or `"builtin"`.
        preset: a keras-hub BERT preset name or directory, loaded with
            `BertBackbone.from_preset` (needs internet access for a name
            not cached yet); `None` for random initialisation.
        head: the exit head of every exit: `"cls"` (default), a name from
            `keras_eexit.layers.HEADS` (which pool over all tokens, padding
            included), a head class or a factory.
        damping: if `True`, every exit head gets one extra output unit
            standing for no class (`keras_eexit.layers.DampingHead`).
        **head_kwargs: forwarded to every head (`pooler=False`, ...).

    Returns:
        A `MultiExitModel` named `"text_transformer"` with `num_layers`
        exits, built for inputs `(None, sequence_length)` of dtype int32.

    Raises:
        ValueError: for invalid arguments, or architecture arguments given
            together with a preset.
        ImportError: if the keras-hub backend or a preset is requested and
            keras-hub is not installed.
        RuntimeError: if the preset cannot be loaded (offline, unknown
            name, not a BERT preset).

    Example:

    ```python
    from keras_eexit.data.text_vocab import tokenize

    model = text_transformer_exits(num_classes=2, sequence_length=32,
                                   num_layers=3, hidden_dim=64,
                                   backend="builtin")
    ids = tokenize(["a fine film", "a dull film"], sequence_length=32)
    model(ids)["exit_3"].shape  # (2, 2)
    ```

    References:
        - [Devlin et al., 2019. BERT: Pre-training of Deep Bidirectional
          Transformers for Language Understanding](
          https://arxiv.org/abs/1810.04805)
        - [Xin et al., 2020. DeeBERT: Dynamic Early Exiting for
          Accelerating BERT Inference](https://arxiv.org/abs/2004.12993)
    """
    num_classes = check_num_classes(num_classes)
    sequence_length = check_positive_int("sequence_length", sequence_length)
    if sequence_length < 2:
        raise invalid_value(
            "sequence_length", "an integer >= 2 ([CLS] and a token)",
            sequence_length,
        )
    dropout = _check_rate(dropout)
    backend = _resolve_backend(backend, preset)
    if head == "cls":
        head = ClsHead
    if head is ClsHead:
        head_kwargs.setdefault("dropout", dropout)

    if preset is not None:
        given = {
            name: value for name, value in (
                ("vocabulary_size", vocabulary_size),
                ("num_layers", num_layers), ("num_heads", num_heads),
                ("hidden_dim", hidden_dim),
                ("intermediate_dim", intermediate_dim),
                ("max_sequence_length", max_sequence_length),
            ) if value is not None
        }
        if given:
            name = sorted(given)[0]
            raise invalid_value(
                name,
                "None when a preset is given (the preset fixes the "
                f"architecture: {', '.join(_ARCHITECTURE)})",
                given[name],
            )
        backbone = _load_preset(preset, dropout)
        return _from_bert_backbone(
            backbone, sequence_length, num_classes, head, damping,
            head_kwargs, init_poolers=True,
        )

    config = _architecture(
        vocabulary_size, num_layers, num_heads, hidden_dim,
        intermediate_dim, max_sequence_length, sequence_length,
    )
    if backend == "keras_hub":
        import keras_hub

        backbone = keras_hub.models.BertBackbone(
            dropout=dropout, name="bert_backbone", **config
        )
        return _from_bert_backbone(
            backbone, sequence_length, num_classes, head, damping,
            head_kwargs, init_poolers=False,
        )
    return _builtin(config, sequence_length, dropout, num_classes, head,
                    damping, head_kwargs)


# ----------------------------------------------------------------- checks
def _check_rate(dropout):
    if (
        isinstance(dropout, bool)
        or not isinstance(dropout, numbers.Real)
        or not 0.0 <= dropout < 1.0
    ):
        raise invalid_value(
            "dropout", "a float between 0 (inclusive) and 1 (exclusive)",
            dropout,
        )
    return float(dropout)


def keras_hub_available():
    """Whether the optional keras-hub package is installed."""
    return importlib.util.find_spec("keras_hub") is not None


def _resolve_backend(backend, preset):
    backend = check_choice("backend", backend, BACKENDS)
    if preset is not None:
        if not isinstance(preset, str) or not preset:
            raise invalid_value(
                "preset", "None or a keras-hub preset name or directory",
                preset,
            )
        if backend == "builtin":
            raise invalid_value(
                "preset",
                "None with backend='builtin' (presets are keras-hub "
                "checkpoints; use backend='keras_hub' or 'auto')",
                preset,
            )
    if backend == "auto":
        backend = "keras_hub" if keras_hub_available() else "builtin"
        if preset is not None and backend == "builtin":
            backend = "keras_hub"  # fails below with the install hint
    if backend == "keras_hub" and not keras_hub_available():
        reason = "a preset" if preset is not None else "backend='keras_hub'"
        raise ImportError(
            f"text_transformer_exits with {reason} needs the optional "
            "keras-hub package: `pip install keras-hub` (or use "
            "backend='builtin', which needs no extra package)."
        )
    return backend


def _architecture(vocabulary_size, num_layers, num_heads, hidden_dim,
                  intermediate_dim, max_sequence_length, sequence_length):
    from keras_eexit.data.text_vocab import VOCABULARY_SIZE

    if vocabulary_size is None:
        vocabulary_size = VOCABULARY_SIZE
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    if vocabulary_size < 5:
        raise invalid_value(
            "vocabulary_size",
            "an integer >= 5 (the 4 special tokens and one more)",
            vocabulary_size,
        )
    num_layers = check_positive_int(
        "num_layers", DEFAULTS["num_layers"] if num_layers is None
        else num_layers)
    num_heads = check_positive_int(
        "num_heads", DEFAULTS["num_heads"] if num_heads is None
        else num_heads)
    hidden_dim = check_positive_int(
        "hidden_dim", DEFAULTS["hidden_dim"] if hidden_dim is None
        else hidden_dim)
    if hidden_dim % num_heads:
        raise invalid_value(
            "num_heads", f"a divisor of hidden_dim={hidden_dim}", num_heads
        )
    intermediate_dim = check_positive_int(
        "intermediate_dim", 4 * hidden_dim if intermediate_dim is None
        else intermediate_dim)
    max_sequence_length = check_positive_int(
        "max_sequence_length", sequence_length if max_sequence_length is None
        else max_sequence_length)
    if max_sequence_length < sequence_length:
        raise invalid_value(
            "max_sequence_length",
            f"an integer >= sequence_length={sequence_length}",
            max_sequence_length,
        )
    return {
        "vocabulary_size": vocabulary_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": intermediate_dim,
        "max_sequence_length": max_sequence_length,
    }


# --------------------------------------------------------------- builders
def _token_input(sequence_length):
    return keras.Input((sequence_length,), dtype="int32", name="token_ids")


def _state_inputs(k, sequence_length, hidden_dim):
    hidden = keras.Input((sequence_length, hidden_dim),
                         name=f"stage_{k}_hidden")
    mask = keras.Input((sequence_length,), dtype="int32",
                       name=f"stage_{k}_padding_mask")
    return hidden, mask


def _assemble(segments, num_classes, head, damping, head_kwargs):
    heads = make_heads(head, num_classes, len(segments), damping=damping,
                       **head_kwargs)
    return MultiExitModel(segments, heads, name="text_transformer")


def _builtin(config, sequence_length, dropout, num_classes, head, damping,
             head_kwargs):
    hidden_dim = config["hidden_dim"]
    segments = []
    for k in range(config["num_layers"]):
        encoder = TextEncoderLayer(
            num_heads=config["num_heads"],
            intermediate_dim=config["intermediate_dim"],
            dropout=dropout,
            name=f"transformer_layer_{k}",
        )
        if k == 0:
            ids = _token_input(sequence_length)
            mask = TokenPaddingMask(name="padding_mask")(ids)
            x = TextEmbedding(
                config["vocabulary_size"], hidden_dim,
                config["max_sequence_length"], dropout=dropout,
                name="embeddings",
            )(ids)
            inputs = ids
        else:
            x, mask = _state_inputs(k + 1, sequence_length, hidden_dim)
            inputs = [x, mask]
        x = encoder(x, padding_mask=mask)
        segments.append(keras.Model(inputs, [x, mask], name=f"stage_{k + 1}"))
    return _assemble(segments, num_classes, head, damping, head_kwargs)


def _from_bert_backbone(backbone, sequence_length, num_classes, head,
                        damping, head_kwargs, init_poolers):
    """Cuts a `keras_hub.models.BertBackbone` into one stage per layer.

    The stages call the backbone's own layers, so they share its weights.
    """
    limit = backbone.max_sequence_length
    if sequence_length > limit:
        raise invalid_value(
            "sequence_length",
            f"an integer <= the backbone's max_sequence_length={limit}",
            sequence_length,
        )
    hidden_dim = backbone.hidden_dim
    segments = []
    for k, encoder in enumerate(backbone.transformer_layers):
        if k == 0:
            ids = _token_input(sequence_length)
            mask = TokenPaddingMask(name="padding_mask")(ids)
            types = TokenTypeIds(name="segment_ids")(ids)
            tokens = backbone.token_embedding(ids)
            positions = backbone.position_embedding(tokens)
            x = backbone.embeddings_add(
                (tokens, positions, backbone.segment_embedding(types))
            )
            x = backbone.embeddings_layer_norm(x)
            x = backbone.embeddings_dropout(x)
            inputs = ids
        else:
            x, mask = _state_inputs(k + 1, sequence_length, hidden_dim)
            inputs = [x, mask]
        x = encoder(x, padding_mask=mask)
        segments.append(keras.Model(inputs, [x, mask], name=f"stage_{k + 1}"))
    model = _assemble(segments, num_classes, head, damping, head_kwargs)
    if init_poolers:
        pooled = backbone.pooled_dense.get_weights()
        for exit_head in model.heads:
            pooler = getattr(exit_head, "pooler_dense", None)
            if pooler is not None:
                pooler.set_weights(pooled)
    return model


def _load_preset(preset, dropout):
    import keras_hub

    try:
        return keras_hub.models.BertBackbone.from_preset(
            preset, dropout=dropout
        )
    except Exception as error:  # network, unknown name, wrong architecture
        raise RuntimeError(
            f"Could not load the keras-hub BERT preset {preset!r} "
            f"({type(error).__name__}: {error}). A preset name is "
            "downloaded on first use, which needs internet access; pass a "
            "local preset directory instead, or preset=None for a randomly "
            "initialised encoder."
        ) from error
