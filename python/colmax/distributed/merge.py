"""Merging the shards' answers: per-shard rankings into one, and the list of hits a sharded
search returns, which says which shards answered."""

from __future__ import annotations

import numpy as np

from ..index.types import Hit


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


def merge_ranked(per_shard: dict[int, tuple[list[str], np.ndarray]], k: int) -> list[tuple[str, float, int]]:
    """The best ``k`` of the shards' rankings as (id, score, shard): score descending, ties by
    shard number, then by rank within the shard (insertion order, as in one index)."""
    ids: list[str] = []
    scores, shards, ranks = [], [], []
    for shard in sorted(per_shard):
        shard_ids, shard_scores = per_shard[shard]
        ids.extend(shard_ids)
        scores.append(np.asarray(shard_scores, dtype=np.float64))
        shards.append(np.full(len(shard_ids), shard, dtype=np.int64))
        ranks.append(np.arange(len(shard_ids), dtype=np.int64))
    if not ids:
        return []
    score = np.concatenate(scores)
    shard = np.concatenate(shards)
    order = np.lexsort((np.concatenate(ranks), shard, -score))[:k]
    return [(ids[i], float(score[i]), int(shard[i])) for i in order.tolist()]


def merge_hits(per_shard: dict[int, list[Hit]]) -> list[Hit]:
    """Complete hits from several shards (rerank), best first; ties as in :func:`merge_ranked`."""
    ranked = merge_ranked(
        {s: ([h.id for h in hits], np.array([h.score for h in hits])) for s, hits in per_shard.items()},
        sum(len(h) for h in per_shard.values()),
    )
    by_id = {h.id: h for hits in per_shard.values() for h in hits}
    return [by_id[i] for i, _, _ in ranked]
