"""Keyword and hybrid search over shards, ranked as one index holding every shard's documents
would rank them: BM25 under the statistics of the whole sharded index (each shard's share summed,
``keyword.Statistics``), and fusion over the union of the shards' candidates, cut to the depths
one index takes, so that min-max normalisation and reciprocal ranks are global, not per shard.

The coordinator asks every shard for its share of the statistics of each query's terms, then
each shard with documents for its candidates (``Index.candidates``: its best by MaxSim and by
BM25 under those statistics, each completed with its score on the other side), and fuses here.
"""

from __future__ import annotations

import operator
from functools import reduce

import numpy as np

from ..index import fusion, hybrid
from ..index.hybrid import Mode, Sides
from ..index.keyword import Statistics

# (id, shard, score, semantic score, keyword score) of one hit, best first
Ranked = list[tuple[str, int, float, float | None, float | None]]


def summed_statistics(per_shard: dict[int, list[Statistics]], n: int) -> list[Statistics | None]:
    """Per query, the statistics of every shard that answered, summed (None where none did)."""
    if not per_shard:
        return [None] * n
    return [reduce(operator.add, (stats[i] for stats in per_shard.values())) for i in range(n)]


def fuse_candidates(per_shard: dict[int, tuple[list[str], Sides]], k: int, mode: Mode) -> Ranked:
    """The best ``k`` of the shards' candidates for a ``mode`` search: keyword, by BM25; hybrid,
    the best ``max(k, SEMANTIC_DEPTH)`` by MaxSim and ``max(k, KEYWORD_DEPTH)`` by BM25 among all
    of them (what one index holding them all takes: each shard returned its own best to those
    depths, so the union holds every document of the overall best), fused by ``mode``. Ties
    go to the lower shard, then the earlier added document (one index: the earlier added).

    Candidates are passages: a document split into several may come twice from its shard (its
    best passage by MaxSim and its best by BM25). As in one index, the depths count documents
    (each at its best passage on that side), fusion runs per passage, and a document ranks by
    its best fused passage, once."""
    ids: list[str] = []
    shards, ranks, semantic, lexical = [], [], [], []
    for s in sorted(per_shard):
        shard_ids, sides = per_shard[s]
        ids.extend(shard_ids)
        shards.append(np.full(len(shard_ids), s, dtype=np.int64))
        ranks.append(np.arange(len(shard_ids), dtype=np.int64))
        semantic.append(sides.semantic)
        lexical.append(sides.keyword)
    if not ids:
        return []
    shard, rank = np.concatenate(shards), np.concatenate(ranks)
    sem, kw = np.concatenate(semantic), np.concatenate(lexical)
    documents: dict[tuple[int, str], int] = {}
    document = np.array([documents.setdefault(key, len(documents)) for key in zip(shard.tolist(), ids)])

    def best(scores: np.ndarray, among: np.ndarray, n: int) -> np.ndarray:
        """The best ``n`` documents among candidates ``among``, each as its best of them."""
        order = among[np.lexsort((rank[among], shard[among], -scores[among]))]
        _, first = np.unique(document[order], return_index=True)
        return order[np.sort(first)][:n]

    everyone = np.arange(len(ids))
    if mode.name == "keyword":
        top = best(kw, everyone, k)
        return [(ids[i], int(shard[i]), float(kw[i]), None, float(kw[i])) for i in top.tolist()]
    chosen = np.union1d(
        best(sem, everyone, max(k, hybrid.SEMANTIC_DEPTH)),
        best(kw, np.flatnonzero(kw > 0), max(k, hybrid.KEYWORD_DEPTH)),  # BM25 0: no query term
    )
    fused = np.zeros(len(ids), dtype=np.float64)
    fused[chosen] = fusion.fuse(mode.fusion, sem[chosen], kw[chosen], mode.alpha)
    top = best(fused, chosen, k)
    return [(ids[i], int(shard[i]), float(fused[i]), float(sem[i]), float(kw[i])) for i in top.tolist()]
