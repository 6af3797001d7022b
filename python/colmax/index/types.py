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
    terms is in the document), None where it did not."""

    id: str
    score: float
    metadata: dict = field(default_factory=dict)
    text: str | None = None
    semantic_score: float | None = None
    keyword_score: float | None = None


@dataclass(frozen=True)
class Document:
    """A stored document; ``embeddings`` is a float32 copy of its token vectors as stored (a
    plaid index stores a document's tokens ordered by centroid, not in text order), None when
    not asked for (``get_batch(..., embeddings=False)``)."""

    id: str
    text: str | None
    metadata: dict
    embeddings: np.ndarray | None


@dataclass(frozen=True)
class Explanation:
    """Why a document scored what it did: for query token i, document token ``doc_token[i]``
    is its best match with similarity ``similarity[i]``; ``score`` is their sum (MaxSim).
    ``keyword_terms``: the query's terms the document holds lexically (after stemming), for a text
    query on an index with a keyword index; None otherwise."""

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

    def __str__(self) -> str:
        lines = [f"{self.id}: score {self.score:.4f} = sum over query tokens of their best match"]
        for i, (j, s) in enumerate(zip(self.doc_token.tolist(), self.similarity.tolist())):
            q = self.query_tokens[i] if self.query_tokens else f"q{i}"
            d = self.doc_tokens[i] if self.doc_tokens else f"d{j}"
            lines.append(f"  {q:>14} -> {d:<14} {s:.4f}")
        if self.keyword_terms is not None:
            lines.append("  keyword terms matched: " + (", ".join(self.keyword_terms) or "none"))
        return "\n".join(lines)
