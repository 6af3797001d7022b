"""ColBERT tokenization: markers, length limits, [MASK] query expansion, punctuation skiplist.

Query:    [CLS] <marker> tokens [SEP], then [MASK] up to ``query_length`` when expansion is on
          (attention 0 on the expansion unless ``attend_to_expansion_tokens``); every position's
          vector is kept.
Document: [CLS] <marker> tokens [SEP], truncated to ``document_length``; vectors of skiplist
          tokens (and padding) are dropped.
Passages: a long document as overlapping windows of its tokens, each [CLS] <marker> tokens
          [SEP], a continued one with the title first (passages.py); nothing is cut.
``queries`` and ``documents`` truncate texts longer than the limit, never reject them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .._validate import positive_int, text_list
from .models import ModelConfig, ModelFormatError
from .passages import Passages, default_stride, title_tokens, windows

# tokenizing this many texts per encode_batch call bounds the Encoding objects alive at once
TOKENIZE_CHUNK = 4096


@dataclass
class Tokenized:
    """Token ids of n items, unpadded. Item i is ``ids[i]``; its first ``n_attended[i]``
    positions get attention 1, the rest ``tail_attention``; ``keep[i]`` marks the positions
    whose vectors are returned; ``truncated[i]`` says whether the text was cut to the limit."""

    ids: list[np.ndarray]
    n_attended: np.ndarray
    keep: list[np.ndarray]
    truncated: np.ndarray
    tail_attention: int = 0

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class _Cut:
    """One text tokenized whole (``before`` and ``after`` special tokens around its text
    tokens, whose character ``offsets`` are kept), its passage windows over the text tokens (at
    most ``width`` each) and the ``title`` ids its continued passages carry."""

    ids: np.ndarray
    before: int
    after: int
    offsets: np.ndarray
    windows: list[tuple[int, int]]
    width: int
    title: np.ndarray

    def held(self, j: int) -> tuple[int, int]:
        """``(start, title tokens)`` of passage ``j``: it holds the title's first tokens and its
        window's tokens from ``start`` on. The title takes the place of the window's first
        tokens, as many as it must to fit, but only of those the window before holds too."""
        a, b = self.windows[j]
        if j == 0 or not len(self.title):
            return a, 0
        need = max(0, (b - a) + len(self.title) - self.width)
        start = a + min(need, self.windows[j - 1][1] - a)
        return start, min(len(self.title), self.width - (b - start))

    def item(self, j: int, marker: int | None) -> np.ndarray:
        """The ids of passage ``j`` as the model sees them: special tokens around, marker, title."""
        ids, before = self.ids, self.before
        start, titled = self.held(j)
        window = ids[before + start : before + self.windows[j][1]]
        item = np.concatenate([ids[:before], self.title[:titled], window, ids[len(ids) - self.after :]])
        return item if marker is None else np.insert(item, 1, marker)

    def span(self, a: int, b: int) -> tuple[int, int]:
        """The characters window ``[a, b)`` covers."""
        return (int(self.offsets[a, 0]), int(self.offsets[b - 1, 1])) if b > a else (0, 0)


class ColbertTokenizer:
    """Wraps a ``tokenizers`` tokenizer with a model's ColBERT settings."""

    def __init__(self, tokenizer_path: str | Path, config: ModelConfig) -> None:
        try:
            raw = Tokenizer.from_file(str(tokenizer_path))
        except Exception as e:  # tokenizers raises a bare Exception for bad files
            raise ModelFormatError(f"cannot read tokenizer {tokenizer_path}: {e}") from None
        self.config = config
        self.query_marker = self._marker_id(raw, config.query_prefix, config.query_prefix_id)
        self.document_marker = self._marker_id(raw, config.document_prefix, config.document_prefix_id)
        self.mask_id = config.mask_token_id if config.mask_token_id is not None else raw.token_to_id("[MASK]")
        if config.do_query_expansion and self.mask_id is None:
            raise ModelFormatError("query expansion needs mask_token_id in the config or a [MASK] token")
        self.pad_id = config.pad_token_id
        skip: set[int] = set()
        for word in config.skiplist:
            vocab_id = raw.token_to_id(word)
            if vocab_id is not None:
                skip.add(vocab_id)
            pieces = raw.encode(word, add_special_tokens=False).ids
            if pieces:
                skip.add(pieces[0])
        self.skiplist_ids = np.array(sorted(skip), dtype=np.int64)
        # one tokenizer per side: the truncation setting lives on the tokenizer object; the
        # tokenizer's own padding/truncation (MiniLM's file says 128) are replaced here
        self._query = self._configured(raw, config.query_length, self.query_marker)
        self._document = self._configured(raw, config.document_length, self.document_marker)
        self._whole = Tokenizer.from_str(raw.to_str())  # passages: every token, cut into windows here
        self._whole.no_padding()
        self._whole.no_truncation()
        self._specials = self._special_counts(self._whole)

    def id_to_token(self, token_id: int) -> str | None:
        """The vocabulary string of ``token_id``; None for an id outside the vocabulary."""
        return self._query.id_to_token(token_id)

    @staticmethod
    def _marker_id(raw: Tokenizer, prefix: str, prefix_id: int | None) -> int | None:
        if prefix_id is not None:
            return int(prefix_id)
        if not prefix:
            return None
        # markers are inserted by id: as text "[unused0]" would split into pieces
        for candidate in (prefix, prefix.strip()):
            token_id = raw.token_to_id(candidate)
            if token_id is not None:
                return token_id
        raise ModelFormatError(f"marker {prefix!r} is not a token of the tokenizer; set its id in the config")

    @staticmethod
    def _configured(raw: Tokenizer, length: int, marker: int | None) -> Tokenizer:
        tok = Tokenizer.from_str(raw.to_str())
        tok.no_padding()
        # the marker takes one position: truncate the rest to length - 1
        tok.enable_truncation(max_length=length - (marker is not None))
        return tok

    @staticmethod
    def _special_counts(tok: Tokenizer) -> tuple[int, int]:
        """How many special tokens the tokenizer puts before and after a text ([CLS], [SEP]
        for BERT), found by tokenizing a probe word with and without them."""
        plain = tok.encode("a", add_special_tokens=False).ids
        full = tok.encode("a").ids
        for before in range(len(full) - len(plain) + 1):
            if full[before : before + len(plain)] == plain:
                return before, len(full) - len(plain) - before
        raise ModelFormatError("the tokenizer's special tokens do not surround a text: cannot cut passages")

    def passage_width(self, length: int) -> int:
        """Text tokens in a passage of ``length`` tokens as the model sees them (special tokens
        and marker included, like ``document_length``)."""
        width = length - sum(self._specials) - (self.document_marker is not None)
        if width < 1:
            raise ValueError(f"a passage of {length} tokens leaves no room for text: make it longer")
        return width

    def passage_settings(self, length: int | None = None, stride: int | None = None) -> tuple[int, int]:
        """``(length, stride)`` of passages, checked; None each for the defaults: the model's
        ``document_length`` and 3/4 of a passage's text tokens."""
        limit = self.config.document_length
        length = limit if length is None else positive_int("the passage length", length)
        if length > limit:
            raise ValueError(
                f"a passage length of {length} exceeds the model's document length of {limit} tokens, "
                f"which would cut every passage: use at most {limit}"
            )
        width = self.passage_width(length)
        stride = default_stride(width) if stride is None else positive_int("the passage stride", stride)
        if stride > width:
            raise ValueError(
                f"a passage stride of {stride} would skip text: a passage of {length} tokens holds "
                f"{width} tokens of text, so the stride must be at most {width}"
            )
        return length, stride

    def passages(
        self,
        texts: Iterable[str],
        length: int | None = None,
        stride: int | None = None,
        *,
        truncate=False,
        titles: Sequence[str | None] | None = None,
    ) -> tuple[Tokenized, Passages]:
        """Every document as passages of at most ``length`` tokens (default and maximum: the
        model's ``document_length``), window starts ``stride`` text tokens apart (default 3/4 of
        a window); ``truncate`` keeps only the first passage of each document (and says which
        were cut). ``titles`` (one per text, None for none) go before the text of every passage
        but the first (at most a quarter of it). A document that fits is one passage, tokenized
        exactly as ``documents``."""
        length, stride = self.passage_settings(length, stride)
        width = self.passage_width(length)
        texts = text_list(texts, blank_ok=True)
        if titles is not None and len(titles) != len(texts):
            raise ValueError(f"{len(titles)} titles for {len(texts)} texts: give one per text (None: none)")
        ids, keep, owner, spans = [], [], [], []
        truncated = np.zeros(len(texts), dtype=bool)
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            chunk = texts[start : start + TOKENIZE_CHUNK]
            named = None if titles is None else titles[start : start + TOKENIZE_CHUNK]
            heads = self._titles(named, len(chunk), width)
            for d, (enc, title) in enumerate(zip(self._whole.encode_batch(chunk), heads), start):
                cut = self._cut(enc, width, stride, title)
                if truncate and len(cut.windows) > 1:
                    cut.windows, truncated[d] = cut.windows[:1], True
                for j, (a, b) in enumerate(cut.windows):
                    item = cut.item(j, self.document_marker)
                    ids.append(item)
                    keep.append(~np.isin(item, self.skiplist_ids))
                    owner.append(d)
                    spans.append(cut.span(a, b))
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        tokenized = Tokenized(ids, lengths, keep, truncated[np.array(owner, dtype=np.int64)])
        where = Passages(
            np.array(owner, dtype=np.int64), np.array(spans, dtype=np.int64).reshape(-1, 2), truncated
        )
        return tokenized, where

    def passage_spans(
        self, text: str, length: int | None = None, stride: int | None = None, title: str | None = None
    ) -> list[np.ndarray]:
        """Per passage of ``passages([text], length, stride, titles=[title])``: the character span
        in ``text`` of each of its positions, an ``(n, 2)`` int64 array, ``(-1, -1)`` for special
        tokens, the marker and the title."""
        length, stride = self.passage_settings(length, stride)
        width = self.passage_width(length)
        cut = self._cut(self._whole.encode(text), width, stride, self._titles([title], 1, width)[0])
        out = []
        for j, (_, b) in enumerate(cut.windows):
            start, titled = cut.held(j)
            spans = np.concatenate(
                [np.full((cut.before + titled, 2), -1), cut.offsets[start:b], np.full((cut.after, 2), -1)]
            ).astype(np.int64)
            if self.document_marker is not None:
                spans = np.insert(spans, 1, -1, axis=0)
            out.append(spans)
        return out

    def _titles(self, titles: Sequence[str | None] | None, n: int, width: int) -> list[np.ndarray]:
        """The token ids (no special tokens) of each of ``n`` documents' titles, cut to what a
        passage of ``width`` text tokens carries; empty for None or a blank title."""
        out = [np.zeros(0, dtype=np.int64)] * n
        given = [i for i, t in enumerate(titles or []) if isinstance(t, str) and t.strip()]
        if given:
            encoded = self._whole.encode_batch([titles[i] for i in given], add_special_tokens=False)
            for i, enc in zip(given, encoded):
                out[i] = np.array(enc.ids[: title_tokens(width)], dtype=np.int64)
        return out

    def _cut(self, enc, width: int, stride: int, title: np.ndarray | None = None) -> _Cut:
        before, after = self._specials
        title = np.zeros(0, dtype=np.int64) if title is None else title
        all_ids = np.array(enc.ids, dtype=np.int64)
        n = len(all_ids) - after
        words = np.array([-1 if w is None else w for w in enc.word_ids[before:n]], dtype=np.int64)
        offsets = np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)[before:n]
        return _Cut(all_ids, before, after, offsets, windows(words, width, stride), width, title)

    def _encode(
        self, tok: Tokenizer, texts: list[str], marker: int | None
    ) -> Iterator[tuple[np.ndarray, bool]]:
        """(ids, whether the text was truncated) per text."""
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            chunk = texts[start : start + TOKENIZE_CHUNK]
            # one text (a search's query) on this thread: encode_batch hands even one text to the
            # tokenizer's thread pool, whose wake-up costs more than the text
            for enc in [tok.encode(chunk[0])] if len(chunk) == 1 else tok.encode_batch(chunk):
                ids = np.array(enc.ids, dtype=np.int64)
                if marker is not None:
                    ids = np.insert(ids, 1, marker)
                yield ids, bool(enc.overflowing)  # what truncation cut off lands in overflowing

    def queries(self, texts: Iterable[str]) -> Tokenized:
        cfg = self.config
        ids, n_attended, keep, truncated = [], [], [], []
        for item, cut in self._encode(self._query, text_list(texts, blank_ok=True), self.query_marker):
            n_attended.append(len(item))
            truncated.append(cut)
            if cfg.do_query_expansion:
                item = np.concatenate([item, np.full(cfg.query_length - len(item), self.mask_id, np.int64)])
            ids.append(item)
            keep.append(np.ones(len(item), dtype=bool))
        tail = int(cfg.attend_to_expansion_tokens)
        return Tokenized(
            ids, np.array(n_attended, dtype=np.int64), keep, np.array(truncated, dtype=bool), tail
        )

    def documents(self, texts: Iterable[str]) -> Tokenized:
        ids, keep, truncated = [], [], []
        for item, cut in self._encode(self._document, text_list(texts, blank_ok=True), self.document_marker):
            ids.append(item)
            keep.append(~np.isin(item, self.skiplist_ids))
            truncated.append(cut)
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        return Tokenized(ids, lengths, keep, np.array(truncated, dtype=bool))
