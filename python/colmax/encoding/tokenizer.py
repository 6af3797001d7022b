"""ColBERT tokenization: markers, length limits, [MASK] query expansion, punctuation skiplist.

Query:    [CLS] <marker> tokens [SEP], then [MASK] up to ``query_length`` when expansion is on
          (attention 0 on the expansion unless ``attend_to_expansion_tokens``); every position's
          vector is kept.
Document: [CLS] <marker> tokens [SEP], truncated to ``document_length``; vectors of skiplist
          tokens (and padding) are dropped.
Texts longer than the limit are truncated, never rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .._validate import text_list
from .models import ModelConfig, ModelFormatError

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

    def _encode(
        self, tok: Tokenizer, texts: list[str], marker: int | None
    ) -> Iterator[tuple[np.ndarray, bool]]:
        """(ids, whether the text was truncated) per text."""
        for start in range(0, len(texts), TOKENIZE_CHUNK):
            for enc in tok.encode_batch(texts[start : start + TOKENIZE_CHUNK]):
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

    def document_spans(self, text: str) -> np.ndarray:
        """The character span ``(start, end)`` in ``text`` of each position of ``documents([text])``,
        as an ``(n, 2)`` int64 array; ``(-1, -1)`` for special tokens and the marker."""
        enc = self._document.encode(text)
        spans = np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)
        spans[np.array(enc.special_tokens_mask, dtype=bool)] = -1
        if self.document_marker is not None:
            spans = np.insert(spans, 1, -1, axis=0)
        return spans

    def documents(self, texts: Iterable[str]) -> Tokenized:
        ids, keep, truncated = [], [], []
        for item, cut in self._encode(self._document, text_list(texts, blank_ok=True), self.document_marker):
            ids.append(item)
            keep.append(~np.isin(item, self.skiplist_ids))
            truncated.append(cut)
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        return Tokenized(ids, lengths, keep, np.array(truncated, dtype=bool))
