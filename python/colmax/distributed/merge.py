"""Merging the shards' answers: per-shard rankings into one, and the list of hits a sharded
search returns, which says which shards answered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import numpy as np

from ..index.types import Document, Hit


class Hits(list):
    """The hits of a sharded search, best first (a ``list`` of ``Hit``). ``shards`` are the
    shards that answered; ``missing_shards`` maps each one that did not (only possible with
    ``allow_partial=True``) to the error."""

    def __init__(self, hits=(), shards: tuple[int, ...] = (), missing_shards: dict | None = None) -> None:
        super().__init__(hits)
        self.shards = tuple(shards)
        self.missing_shards = dict(missing_shards or {})

    @property
    def complete(self) -> bool:
        return not self.missing_shards


class Ranking(NamedTuple):
    """One shard's best hits for one query, best first, as its actor returns them: ids, scores,
    each hit's winning passage and span, and with documents their metadata and texts (else
    None: fetched later for the final hits only)."""

    ids: list[str]
    scores: np.ndarray
    passages: list[int | None]
    spans: list[tuple[int, int] | None]
    metadata: list[dict] | None = None
    texts: list[str | None] | None = None

    @classmethod
    def of(cls, hits: list[Hit], documents: bool) -> Ranking:
        return cls(
            [h.id for h in hits],
            np.array([h.score for h in hits], dtype=np.float64),
            [h.passage for h in hits],
            [h.span for h in hits],
            [h.metadata for h in hits] if documents else None,
            [h.text for h in hits] if documents else None,
        )


def merge_ranked(per_shard: Mapping[int, Ranking], k: int) -> list[tuple[int, int, float]]:
    """The best ``k`` of the shards' rankings (anything with ``ids`` and ``scores``) as (shard,
    rank in the shard, score): score descending, ties by shard number, then by rank within the
    shard (insertion order, as in one index)."""
    scores, shards, ranks = [], [], []
    for shard in sorted(per_shard):
        n = len(per_shard[shard].ids)
        scores.append(np.asarray(per_shard[shard].scores, dtype=np.float64))
        shards.append(np.full(n, shard, dtype=np.int64))
        ranks.append(np.arange(n, dtype=np.int64))
    if not scores or not sum(len(s) for s in scores):
        return []
    score, shard, rank = np.concatenate(scores), np.concatenate(shards), np.concatenate(ranks)
    order = np.lexsort((rank, shard, -score))[:k]
    return list(zip(shard[order].tolist(), rank[order].tolist(), score[order].tolist()))


def merge_hits(per_shard: dict[int, list[Hit]]) -> list[Hit]:
    """Complete hits from several shards (rerank), best first; ties as in :func:`merge_ranked`."""
    rankings = {s: Ranking.of(hits, False) for s, hits in per_shard.items()}
    ranked = merge_ranked(rankings, sum(len(h) for h in per_shard.values()))
    return [per_shard[s][r] for s, r, _ in ranked]


# a document as a hit needs it: (metadata, text, passage), by id
Sent = dict[str, tuple[dict, str | None, int | None]]


def sent(documents: Iterable[Document]) -> Sent:
    """(metadata, text, passage) of stored documents, by id, for the hits of a keyword or hybrid
    search: their candidates do not say which of a document's passages they are, so a document
    of several has passage None here (one of one passage has passage 0, as in Index.search)."""
    return {d.id: (d.metadata, d.text, 0 if d.spans is None else None) for d in documents}
