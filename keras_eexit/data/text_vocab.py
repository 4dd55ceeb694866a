"""A tiny built-in text vocabulary and tokenizer, for offline text models.

Pretrained BERT checkpoints come with a WordPiece vocabulary of ~30,000
entries that must be downloaded (`keras_hub.models.BertTokenizer`). To run a
text early-exit model with no download at all, this module ships a small,
fixed vocabulary and a deterministic tokenizer:

* `CHARACTERS` (the default): character level, lowercase. Ids 0-3 are the
  special tokens `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, then one id per
  character of `ALPHABET` (letters, digits, space and common punctuation).
  Any other character maps to `[UNK]`. 61 ids in all.
* `TextVocabulary.from_texts(texts)`: word level, built from a corpus (the
  most frequent lowercase words, plus the same four special tokens).

`tokenize(texts, sequence_length)` returns an int32 array
`(len(texts), sequence_length)`: `[CLS]`, the tokens, `[SEP]`, then `[PAD]`
(0) up to the length; longer texts are truncated so that `[CLS]` and
`[SEP]` always fit. Id 0 is padding, which is what
`keras_eexit.models.text_transformer.text_transformer_exits` masks out.

Example:

```python
from keras_eexit.data.text_vocab import CHARACTERS, tokenize

ids = tokenize(["A fine film!", "dull"], sequence_length=16)
ids.shape, ids[0, 0] == CHARACTERS.cls_id  # (2, 16), True
CHARACTERS.decode(ids[1])  # "dull"
```
"""

import collections
import numbers
import re

import numpy as np

from keras_eexit.utils.validation import invalid_value

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP)
"""The special tokens, with ids 0 (padding), 1, 2 and 3."""

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 .,;:!?'\"-()/&%$+*=@#"
"""The characters of the built-in character vocabulary (after lowercasing)."""

LEVELS = ("char", "word")

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


class TextVocabulary:
    """A fixed vocabulary: special tokens first, then characters or words.

    Args:
        tokens: the ordinary tokens (characters or words), in id order,
            without the special tokens; they get ids 4, 5, ...
        level: `"char"` (one token per character) or `"word"` (lowercase
            words and punctuation marks).

    Attributes:
        tokens: every token, specials included (`tokens[i]` has id `i`).
        size: the number of ids (`vocabulary_size` of a model).
        pad_id, unk_id, cls_id, sep_id: 0, 1, 2, 3.
    """

    pad_id, unk_id, cls_id, sep_id = 0, 1, 2, 3

    def __init__(self, tokens, level="char"):
        if level not in LEVELS:
            raise invalid_value("level", "'char' or 'word'", level)
        tokens = list(tokens)
        if any(not isinstance(t, str) or not t for t in tokens):
            raise invalid_value("tokens", "non-empty strings", tokens[:5])
        if level == "char" and any(len(t) != 1 for t in tokens):
            raise invalid_value(
                "tokens", "single characters for level='char'", tokens[:5]
            )
        duplicates = set(SPECIAL_TOKENS) & set(tokens) or (
            len(set(tokens)) != len(tokens)
        )
        if duplicates:
            raise invalid_value(
                "tokens", "distinct tokens other than the special ones",
                tokens[:5],
            )
        self.level = level
        self.tokens = list(SPECIAL_TOKENS) + tokens
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def characters(cls):
        """The built-in character vocabulary (`ALPHABET`, 61 ids)."""
        return cls(ALPHABET, level="char")

    @classmethod
    def from_texts(cls, texts, max_size=1000, min_count=1):
        """A word-level vocabulary of the most frequent words of `texts`.

        Args:
            texts: an iterable of strings.
            max_size: Integer >= 5, the largest vocabulary size (special
                tokens included).
            min_count: Integer >= 1, words seen fewer times are left out.

        Returns:
            A `TextVocabulary` with `level="word"`; ties in frequency are
            broken alphabetically, so the result is deterministic.
        """
        texts = _check_texts(texts)
        if isinstance(max_size, bool) or not isinstance(
            max_size, numbers.Integral
        ) or max_size < len(SPECIAL_TOKENS) + 1:
            raise invalid_value("max_size", "an integer >= 5", max_size)
        if isinstance(min_count, bool) or not isinstance(
            min_count, numbers.Integral
        ) or min_count < 1:
            raise invalid_value("min_count", "an integer >= 1", min_count)
        counts = collections.Counter(
            w for text in texts for w in _words(text.lower())
        )
        ranked = sorted(
            (w for w, c in counts.items()
             if c >= min_count and w not in SPECIAL_TOKENS),
            key=lambda w: (-counts[w], w),
        )
        return cls(ranked[: max_size - len(SPECIAL_TOKENS)], level="word")

    @property
    def size(self):
        return len(self.tokens)

    def split(self, text):
        """The tokens of `text` (lowercased), before mapping to ids."""
        text = str(text).lower()
        return list(text) if self.level == "char" else _words(text)

    def encode(self, text):
        """The ids of the tokens of `text`, without special tokens."""
        return [self._ids.get(t, self.unk_id) for t in self.split(text)]

    def decode(self, ids):
        """The text of `ids`, special tokens dropped (`[UNK]` kept)."""
        tokens = [
            self.tokens[i] for i in np.asarray(ids).reshape(-1).tolist()
            if i not in (self.pad_id, self.cls_id, self.sep_id)
        ]
        return ("" if self.level == "char" else " ").join(tokens)

    def tokenize(self, texts, sequence_length):
        """Token ids `[CLS] tokens [SEP] [PAD]...` of each text.

        Args:
            texts: a string or an iterable of strings.
            sequence_length: Integer >= 3, the length of every row.

        Returns:
            An int32 array `(len(texts), sequence_length)` (a single string
            gives one row).
        """
        texts = _check_texts(texts)
        if isinstance(sequence_length, bool) or not isinstance(
            sequence_length, numbers.Integral
        ) or sequence_length < 3:
            raise invalid_value(
                "sequence_length", "an integer >= 3 ([CLS], a token and "
                "[SEP])", sequence_length,
            )
        out = np.zeros((len(texts), int(sequence_length)), np.int32)
        for row, text in enumerate(texts):
            ids = self.encode(text)[: sequence_length - 2]
            ids = [self.cls_id] + ids + [self.sep_id]
            out[row, : len(ids)] = ids
        return out

    def get_config(self):
        """A JSON-friendly description (`TextVocabulary(**config)`)."""
        return {"tokens": self.tokens[len(SPECIAL_TOKENS):],
                "level": self.level}

    def __repr__(self):
        return f"TextVocabulary(level={self.level!r}, size={self.size})"


def _words(text):
    return _WORD.findall(text)


def _check_texts(texts):
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, bytes):
        return [texts.decode("utf-8")]
    try:
        values = list(texts)
    except TypeError:
        raise invalid_value(
            "texts", "a string or an iterable of strings",
            type(texts).__name__,
        ) from None
    out = []
    for value in values:
        if isinstance(value, (bytes, np.bytes_)):
            value = bytes(value).decode("utf-8")
        if not isinstance(value, str):
            raise invalid_value(
                "texts", "a string or an iterable of strings",
                f"an element of type {type(value).__name__}",
            )
        out.append(str(value))
    return out


CHARACTERS = TextVocabulary.characters()
"""The built-in character vocabulary."""

VOCABULARY_SIZE = CHARACTERS.size
"""Size of the built-in character vocabulary (the default of the models)."""


def tokenize(texts, sequence_length, vocabulary=None):
    """Tokenizes `texts` with the built-in (or another) vocabulary.

    Args:
        texts: a string or an iterable of strings.
        sequence_length: Integer >= 3, the length of every row.
        vocabulary: a `TextVocabulary`; defaults to `CHARACTERS`.

    Returns:
        An int32 array `(len(texts), sequence_length)`: `[CLS]` (id 2)
        first, `[SEP]` (id 3) after the (possibly truncated) text, padding
        (id 0) after it.
    """
    vocabulary = CHARACTERS if vocabulary is None else vocabulary
    if not isinstance(vocabulary, TextVocabulary):
        raise invalid_value(
            "vocabulary", "a TextVocabulary or None",
            type(vocabulary).__name__,
        )
    return vocabulary.tokenize(texts, sequence_length)
