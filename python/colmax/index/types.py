"""What searches and reads return: hits, stored documents, explanations."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Hit:
    """One search result: the document's id, its score, metadata and stored text.

    ``score`` is what the search ranked by: MaxSim (semantic), BM25 (keyword) or the fusion of
    both (hybrid: see ``Index.search``). ``semantic_score`` and ``keyword_score`` are the
    document's MaxSim and BM25 where the search computed them (BM25 0.0: none of the query's
    terms is in the document), None where it did not.

    A document split into passages scores what its best passage scores: ``passage`` is that
    passage's number (0 for the first) and ``span`` its characters ``(start, end)`` in ``text``,
    the whole document's text (``passage_text`` is that part); a document of one passage has
    ``passage`` 0 and ``span`` None."""

    id: str
    score: float
    metadata: dict = field(default_factory=dict)
    text: str | None = None
    semantic_score: float | None = None
    keyword_score: float | None = None
    passage: int | None = None
    span: tuple[int, int] | None = None

    @property
    def passage_text(self) -> str | None:
        """The winning passage's text (the whole text for a document of one passage)."""
        if self.text is None or self.span is None:
            return self.text
        return self.text[self.span[0] : self.span[1]]


class Added(list):
    """The ids ``Index.add`` gave its documents, in order (a ``list`` of ``str``); ``passages``
    is how many passages they were indexed as, ``truncated`` names those it cut to their first
    passage (only with ``truncate=True``)."""

    def __init__(self, ids=(), passages: int = 0, truncated=()) -> None:
        super().__init__(ids)
        self.passages = passages
        self.truncated = list(truncated)


@dataclass(frozen=True)
class Document:
    """A stored document; ``embeddings`` is a float32 copy of its token vectors as stored (a
    plaid index stores a document's tokens ordered by centroid, not in text order), None when
    not asked for (``get_batch(..., embeddings=False)``). A document split into passages has
    its passages' vectors one after another (the tokens passages share appear in each), and
    ``spans`` holds each passage's characters ``(start, end)`` in ``text`` (None: one passage)."""

    id: str
    text: str | None
    metadata: dict
    embeddings: np.ndarray | None
    spans: list[tuple[int, int]] | None = None


@dataclass(frozen=True)
class Explanation:
    """Why a document scored what it did: for query token i, document token ``doc_token[i]``
    is its best match with similarity ``similarity[i]``; ``score`` is their sum (MaxSim).
    ``keyword_terms``: the query's terms the document holds lexically (after stemming), for a text
    query on an index with a keyword index; None otherwise. For a document split into passages
    all of this is about its best passage by MaxSim, number ``passage`` with characters
    ``span`` of the text (None: the document is one passage), and ``doc_spans`` are positions
    in the whole text."""

    id: str
    score: float
    similarity: np.ndarray
    doc_token: np.ndarray
    query_tokens: list[str] | None = None
    doc_tokens: list[str] | None = None  # the matched document token's text, per query token
    # where that token is in the document's stored text: (start, end) character offsets, None
    # for [CLS], [SEP] and markers
    doc_spans: list[tuple[int, int] | None] | None = None
    keyword_terms: list[str] | None = None
    passage: int | None = None
    span: tuple[int, int] | None = None

    def __str__(self) -> str:
        where = (
            ""
            if self.span is None
            else f" (passage {self.passage}, characters {self.span[0]}-{self.span[1]})"
        )
        lines = [f"{self.id}{where}: score {self.score:.4f} = sum over query tokens of their best match"]
        for i, (j, s) in enumerate(zip(self.doc_token.tolist(), self.similarity.tolist())):
            q = self.query_tokens[i] if self.query_tokens else f"q{i}"
            d = self.doc_tokens[i] if self.doc_tokens else f"d{j}"
            lines.append(f"  {q:>14} -> {d:<14} {s:.4f}")
        if self.keyword_terms is not None:
            lines.append("  keyword terms matched: " + (", ".join(self.keyword_terms) or "none"))
        return "\n".join(lines)
