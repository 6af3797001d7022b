"""The semantic side of a search: exact MaxSim over the stored vectors of the candidate rows, the
staged plaid search in the core, exact reranking of given passages.

Positions are passages. Over an index without split documents a position is a document and the
kernels' top-k is the answer; otherwise enough passages are scored to hold the best k
documents (passages.py), so exact search stays exact over documents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _core
from ..scoring import maxsim, maxsim_topk
from .passages import Layout, best_per_document, distinct
from .query import Plan
from .snapshot import Snapshot

_NONE = (np.zeros(0, np.int64), np.zeros(0, np.float32))


def ranked(positions: list[np.ndarray], scores: list[np.ndarray], k: int | None = None):
    """Concatenated (positions, scores), best first: score descending, ties by lower position."""
    if not positions:
        return _NONE
    pos, sc = np.concatenate(positions), np.concatenate(scores)
    order = np.lexsort((pos, -sc))[:k]
    return pos[order], sc[order]


def topk(
    snap: Snapshot, q: np.ndarray, k: int, cands: list[np.ndarray | None], plan: Plan | None, threads
) -> tuple[np.ndarray, np.ndarray]:
    """The best k documents by MaxSim (their best passage's), as the positions of those
    passages and their scores, best first: exact over the stored vectors, or staged (plaid)."""
    if stages(snap, plan):
        return staged_topk(snap, q, k, cands, plan, threads)[:2]
    staged = snap.manifest.kind == "plaid" and snap.manifest.storage is None
    if not snap.layout.split:
        if staged:
            return plaid_topk(snap, q, k, cands, None, threads)[:2]
        return _exact_topk(snap, q, k, cands, threads)
    if staged:  # no full-precision copy: every candidate decompressed and scored
        positions, scores, _ = plaid_topk(snap, q, _count(snap, cands), cands, None, threads)
    else:
        positions, scores = _exact_scores(snap, q, cands, threads)
    return top_documents(snap.layout, positions, scores, k)


def top_documents(
    layout: Layout, positions: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` documents of scored passages. Only passages scoring at least the m-th best
    can hold them, once those span ``k`` documents: m starts at 2k and grows until they do."""
    m = min(2 * k, positions.size)
    while True:
        if m < positions.size:
            threshold = -np.partition(-scores, m - 1)[m - 1]
            chosen = np.flatnonzero(scores >= threshold)  # ties at the threshold too: exact
        else:
            chosen = np.arange(positions.size)
        heads = layout.heads(positions[chosen])
        if chosen.size == positions.size or distinct(heads) >= k:
            return best_per_document(heads, positions[chosen], scores[chosen], k)
        m *= 4


def _count(snap: Snapshot, cands: list[np.ndarray | None]) -> int:
    return sum(seg.info.n_docs if c is None else c.size for seg, c in zip(snap.segments, cands))


def _exact_scores(
    snap: Snapshot, q: np.ndarray, cands: list[np.ndarray | None], threads
) -> tuple[np.ndarray, np.ndarray]:
    """MaxSim of every candidate passage (positions ascending)."""
    positions, scores = [], []
    for seg, cand in zip(snap.segments, cands):
        if cand is not None and cand.size == 0:
            continue
        scores.append(maxsim(q, seg.tokens, seg.offsets, candidates=cand, threads=threads))
        rows = np.arange(seg.info.n_docs, dtype=np.int64) if cand is None else cand
        positions.append(rows + seg.first_pos)
    if not positions:
        return _NONE
    return np.concatenate(positions), np.concatenate(scores)


def stages(snap: Snapshot, plan: Plan | None) -> bool:
    """Whether :func:`topk` runs the staged search (a plaid index searched with a ``plan``)."""
    return snap.manifest.kind == "plaid" and plan is not None


def staged_topk(
    snap: Snapshot,
    q: np.ndarray,
    k: int,
    cands: list[np.ndarray | None],
    plan: Plan,
    threads,
    complete: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`topk` of a staged search, and the MaxSim of the passages at the sorted positions
    ``complete(candidates)`` returns (called once, before the last stage, with the sorted
    positions of the candidates that stage scores; in their order) as that stage scores them
    (as :func:`rerank` with ``staged`` does): scored in the same call, from the tables its first
    stage built, where a second call would build them again (on SciFact's plaid index those took
    70% of such a call's time); None without ``complete``. Over passages, every passage the last
    stage scores exactly is ranked, and the stage doubles its candidates while they hold fewer
    than k documents (``complete`` is called once all the same, shown the first candidates)."""
    listed: list[np.ndarray] = []

    def listing(candidates: list[np.ndarray]) -> list[np.ndarray]:
        if not listed:
            shown = [ids + seg.first_pos for ids, seg in zip(candidates, snap.segments)]
            listed.extend(snap.split(complete(np.concatenate(shown) if shown else np.zeros(0, np.int64))))
        return listed

    more = None if complete is None else listing

    if not snap.layout.split:
        return plaid_topk(snap, q, k, cands, plan, threads, complete=more)
    total, n = _count(snap, cands), max(plan.ncandidates, k)
    while True:
        found = plaid_topk(snap, q, n, cands, Plan(plan.nprobe, n), threads, complete=more)
        positions, scores, completed = found
        heads = snap.layout.heads(positions)
        if distinct(heads) >= k or n >= total:
            return (*best_per_document(heads, positions, scores, k), completed)
        n *= 2


def _exact_topk(
    snap: Snapshot, q: np.ndarray, k: int, cands: list[np.ndarray | None], threads
) -> tuple[np.ndarray, np.ndarray]:
    """The best k positions by exact MaxSim over the stored vectors (one passage a document)."""
    positions, scores = [], []
    for seg, cand in zip(snap.segments, cands):
        if cand is not None and cand.size == 0:
            continue
        rows, s = maxsim_topk(
            q, seg.tokens, seg.offsets, k, doc_scales=seg.scales, candidates=cand, threads=threads
        )
        positions.append(rows + seg.first_pos)
        scores.append(s)
    if len(positions) == 1:  # one segment's top-k is already ranked
        return positions[0], scores[0]
    return ranked(positions, scores, k)


def plaid_topk(
    snap: Snapshot,
    q: np.ndarray,
    k: int,
    cands: list[np.ndarray | None],
    plan: Plan | None,
    threads,
    decompress: bool | None = None,
    complete: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Staged search, or with ``plan`` None every candidate scored on its copied vectors or, for
    an index that keeps no copy, on its decompressed ones (exact MaxSim); ``decompress=False``
    scores those from their residuals instead, as the staged search's last stage does. Third:
    the scores of the passages ``complete(candidates)`` lists (local rows, one array per segment;
    shown the last stage's candidates alike), None without ``complete``. Segments without
    candidates are left out, unless passages are to be completed (they might lie there)."""
    cb = snap.codebook
    keep = [complete is not None or cand is None or cand.size > 0 for cand in cands]
    segments = [
        (
            seg.doc_codes,
            seg.doc_code_offsets,
            seg.residuals,
            seg.offsets,
            seg.ivf_offsets,
            seg.ivf,
            cand,
            seg.tokens,
            seg.scales,
            seg.first_pos,
        )
        for seg, cand, kept in zip(snap.segments, cands, keep)
        if kept
    ]
    if not segments or cb is None:
        return (*_NONE, None if complete is None else np.zeros(0, np.float32))
    nprobe, ncandidates = (plan.nprobe, plan.ncandidates) if plan else (1, k)
    found = _core.plaid_search(
        q,
        cb.centroids,
        cb.weights,
        cb.nbits,
        cb.normalize,
        segments,
        k,
        nprobe,
        max(ncandidates, k),
        exhaustive=plan is None,
        decompress=decompress,
        threads=threads,
        complete=complete,
    )
    return found if complete is not None else (*found, None)


def rerank(
    snap: Snapshot, q: np.ndarray, positions: np.ndarray, threads, staged: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim of the passages at sorted ``positions``, best first. ``staged``: scored as
    the last stage of a staged search scores them (plaid without a copy: from the residuals)."""
    cands = snap.split(positions)
    if any(seg.tokens is None for seg in snap.segments):  # plaid without a copy
        return plaid_topk(snap, q, len(positions), cands, None, threads, decompress=not staged)[:2]
    pos_parts, score_parts = [], []
    for seg, cand in zip(snap.segments, cands):
        if cand.size:
            score_parts.append(
                maxsim(q, seg.tokens, seg.offsets, doc_scales=seg.scales, candidates=cand, threads=threads)
            )
            pos_parts.append(cand + seg.first_pos)
    return ranked(pos_parts, score_parts)
