"""Fusing the semantic (MaxSim) and keyword (BM25) scores of one candidate set into one score.

Pure functions over arrays aligned by candidate, where every candidate carries its score on both
sides (``hybrid.side_scores`` computes the side that did not find it). Normalisation and ranks
are taken over the candidates given: a coordinator that gathers candidates from several shards
fuses their union with the same functions, so normalisation is global, not per shard.
"""

from __future__ import annotations

import numpy as np

FUSIONS = ("minmax", "rrf")
# The weight of the semantic side. Min-max: the best mean nDCG@10 of SciFact and Cranfield in
# `colmax eval` with the default model on indexes built by default (long documents as passages
# with titles), flat from 0.6 to 0.75: SciFact 0.7377 / 0.7438 / 0.7457 / 0.7451 / 0.7432 / 0.7449
# and Cranfield 0.4021 / 0.4041 / 0.4046 / 0.4062 / 0.4072 / 0.3993 for 0.5 / 0.6 / 0.65 / 0.7 /
# 0.75 / 0.8 (README, Hybrid search). Reciprocal-rank fusion: 0.5, the classic unweighted sum
# (halved).
DEFAULT_ALPHA = {"minmax": 0.7, "rrf": 0.5}
# The rank offset of reciprocal-rank fusion (Cormack et al. 2009): damps the weight of the very
# first ranks.
RRF_K = 60


def normalized(scores: np.ndarray) -> np.ndarray:
    """Min-max: the lowest score 0, the highest 1; all equal (no ranking information) -> all 0."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    lo, hi = scores.min(), scores.max()
    if hi <= lo:
        return np.zeros_like(scores)
    return (scores - lo) / (hi - lo)


def minmax(semantic: np.ndarray, keyword: np.ndarray, alpha: float) -> np.ndarray:
    """``alpha`` times the normalized MaxSim plus ``1 - alpha`` times the normalized BM25."""
    return alpha * normalized(semantic) + (1.0 - alpha) * normalized(keyword)


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, highest first; equal scores share the best of their ranks."""
    scores = np.asarray(scores, dtype=np.float64)
    ascending = np.sort(scores)
    return (scores.size - np.searchsorted(ascending, scores, side="right") + 1).astype(np.float64)


def rrf(semantic: np.ndarray, keyword: np.ndarray, alpha: float, k: int = RRF_K) -> np.ndarray:
    """Weighted reciprocal-rank fusion: ``alpha / (k + semantic rank)`` plus ``(1 - alpha) /
    (k + keyword rank)``, the keyword term only for candidates that hold a query term (BM25 > 0)."""
    fused = alpha / (k + ranks(semantic))
    matched = np.asarray(keyword) > 0
    fused[matched] += (1.0 - alpha) / (k + ranks(np.asarray(keyword)[matched]))
    return fused


def fuse(method: str, semantic: np.ndarray, keyword: np.ndarray, alpha: float) -> np.ndarray:
    if method == "minmax":
        return minmax(semantic, keyword, alpha)
    if method == "rrf":
        return rrf(semantic, keyword, alpha)
    raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {method!r}")
