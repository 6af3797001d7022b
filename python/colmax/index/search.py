"""The semantic side of a search: exact MaxSim over the stored vectors of the candidate rows, the
staged plaid search in the core, exact reranking of given documents."""

from __future__ import annotations

import numpy as np

from .. import _core
from ..scoring import maxsim, maxsim_topk
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
    """The best k positions by MaxSim: exact over the stored vectors, or staged (plaid)."""
    if snap.manifest.kind == "plaid" and (plan is not None or snap.manifest.storage is None):
        return plaid_topk(snap, q, k, cands, plan, threads)
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
) -> tuple[np.ndarray, np.ndarray]:
    """Staged search, or with ``plan`` None every candidate scored on its copied vectors or, for
    an index that keeps no copy, on its decompressed ones (exact MaxSim); ``decompress=False``
    scores those from their residuals instead, as the staged search's last stage does."""
    cb = snap.codebook
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
        for seg, cand in zip(snap.segments, cands)
        if cand is None or cand.size
    ]
    if not segments or cb is None:
        return _NONE
    nprobe, ncandidates = (plan.nprobe, plan.ncandidates) if plan else (1, k)
    return _core.plaid_search(
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
    )


def rerank(
    snap: Snapshot, q: np.ndarray, positions: np.ndarray, threads, staged: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim of the documents at sorted ``positions``, best first. ``staged``: scored as
    the last stage of a staged search scores them (plaid without a copy: from the residuals)."""
    cands = snap.split(positions)
    if any(seg.tokens is None for seg in snap.segments):  # plaid without a copy
        return plaid_topk(snap, q, len(positions), cands, None, threads, decompress=not staged)
    pos_parts, score_parts = [], []
    for seg, cand in zip(snap.segments, cands):
        if cand.size:
            score_parts.append(
                maxsim(q, seg.tokens, seg.offsets, doc_scales=seg.scales, candidates=cand, threads=threads)
            )
            pos_parts.append(cand + seg.first_pos)
    return ranked(pos_parts, score_parts)
