"""Keyword and hybrid search over shards, ranked as one index holding every shard's documents
would rank them: BM25 under the statistics of the whole sharded index (each shard's share summed,
``keyword.Statistics``), and fusion over the union of the shards' candidates, cut to the depths
one index takes, so that min-max normalisation and reciprocal ranks are global, not per shard.

The coordinator asks every shard for its candidates (``Index.candidates(counts=True)``: its best
by MaxSim and its own BM25 ranking read twice as deep, each completed with its score on the other
side, with their term counts and the shard's statistics), scores their BM25 here under the
statistics summed (``rescore``), asks again the rare shard whose ranking was read too shallow,
and fuses.
Each shard sends along the documents of its ``contenders``, those of its candidates that can
reach the final top k, so that the final hits' documents need no third round trip.
"""

from __future__ import annotations

import operator
from functools import reduce

import numpy as np

from ..index import fusion, hybrid, keyword
from ..index.hybrid import Mode, Sides
from ..index.keyword import Statistics

# (id, shard, score, semantic score, keyword score) of one hit, best first
Ranked = list[tuple[str, int, float, float | None, float | None]]


def rescore(
    per_shard: dict[int, tuple[list[str], Sides]], mode: str, k: int
) -> tuple[Statistics | None, dict[int, tuple[list[str], Sides]], list[int]]:
    """The statistics of the shards that answered, summed; each shard's candidates (gathered with
    ``counts``) with BM25 under them; and the shards whose keyword candidates may miss one of
    their best documents under them (``hybrid.enough``: ask those again with the statistics)."""
    if not per_shard:
        return None, {}, []
    whole = reduce(operator.add, (sides.counts.local for _, sides in per_shard.values()))
    depth = hybrid.keyword_depth(mode, k)
    scored, again = {}, []
    for s, (ids, sides) in per_shard.items():
        counts = sides.counts
        lexical = keyword.bm25(counts.frequencies, counts.lengths, whole)
        read = np.flatnonzero(counts.read)
        documents = np.asarray(ids, dtype=object)[read]  # a passage's document: its id
        exhausted = read.size < counts.asked
        if not hybrid.enough(documents, lexical[read], depth, exhausted, counts.floor, counts.local, whole):
            again.append(s)
        scored[s] = (ids, Sides(sides.positions, sides.semantic, lexical))
    return whole, scored, again


def gather_candidates(run, texts, matrices, k: int, modes, options: dict, documents: bool) -> list[dict]:
    """Per keyword or hybrid query, through ``run`` (a ``replicas.FanOut``: replicas import the
    actor, which imports this module), each shard's (ids, sides, documents), BM25 under the
    statistics of all shards together, in one round: each shard sends its candidates' term
    counts and its own statistics, and BM25 is computed here under their sum (``rescore``); a
    shard whose own ranking, read twice as deep as the hits need, may miss one of its best under
    the sum (rare: none of 300 SciFact queries on 2 shards) is asked again with the sum and
    reads deeper. Every shard answers, documents or none: its deleted passages count in the
    statistics until compact, as in one index."""
    found = run.gather(
        run.submit("candidates", texts, matrices, k, modes, None, options, documents, every=True)
    )
    out = []
    for j, (text, q, mode) in enumerate(zip(texts, matrices, modes)):
        answers = {s: a[j] for s, a in found.items()}
        whole, scored, again = rescore({s: (ids, sides) for s, (ids, sides, _) in answers.items()}, mode, k)
        answers.update((s, (ids, sides, answers[s][2])) for s, (ids, sides) in scored.items())
        if again:
            asked = run.submit(
                "candidates", [text], [q], k, [mode], [whole], options, documents, shards=again
            )
            answers.update((s, a[0]) for s, a in run.gather(asked).items())
        out.append(answers)
    return out


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


# contenders are worked out over at most this many candidates (a quadratic comparison): more
# come only with a large k, whose final hits' documents are then fetched in a call of their own
CONTENDERS_OVER = 2000


def contenders(ids: list[str], sides: Sides, k: int) -> list[str]:
    """The documents among one shard's candidates (``ids``, ``sides``) that a fusion of all
    shards' candidates can rank in the top ``k``: those with a passage that fewer than ``k``
    other documents beat, a document beating a passage when one of its own scores at least as
    much on both sides and more on one. Min-max and reciprocal-rank fusion never lower a
    candidate for a higher score on either side, and a candidate that made either side's depth
    brings those that beat it there (with distinct scores, a passage beaten by ``k`` documents
    is ranked below all of them). Ties, split documents (whose passage on one side may not be
    the one that beats) and more than ``CONTENDERS_OVER`` candidates can escape the rule: the
    coordinator fetches any final hit's document that its shard did not send."""
    n = len(ids)
    if n == 0 or n > CONTENDERS_OVER:
        return []
    sem = np.nan_to_num(np.asarray(sides.semantic, dtype=np.float64), nan=-np.inf)  # keyword: NaN
    kw = np.asarray(sides.keyword, dtype=np.float64)
    beats = (sem >= sem[:, None]) & (kw >= kw[:, None]) & ((sem > sem[:, None]) | (kw > kw[:, None]))
    names, doc = np.unique(np.asarray(ids, dtype=object), return_inverse=True)
    order = np.argsort(doc, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(doc[order]) != 0])
    by_document = np.logical_or.reduceat(beats[:, order], starts, axis=1)  # [i, d]: d beats i
    by_document[np.arange(n), doc] = False  # a document's own passages do not count
    open_ = by_document.sum(axis=1) < k
    return [str(names[d]) for d in np.unique(doc[open_])]
