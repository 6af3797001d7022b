"""Fusing the semantic (MaxSim) and keyword (BM25) scores of one candidate set into one score.

Pure functions over arrays aligned by candidate, where every candidate carries its score on both
sides (``hybrid.side_scores`` computes the side that did not find it). Normalisation and ranks
are taken over the candidates given: a coordinator that gathers candidates from several shards
fuses their union with the same functions, so normalisation is global, not per shard.
"""

from __future__ import annotations

import numpy as np

FUSIONS = ("minmax", "rrf")
# The weight of the semantic side. Min-max: `colmax eval` with the default model (README, Hybrid
# search) gave nDCG@10 0.7251 / 0.7308 / 0.7292 / 0.7275 on SciFact and 0.4010 / 0.4031 /
# 0.4028 / 0.4018 on Cranfield for 0.4 / 0.5 / 0.6 / 0.7. Reciprocal-rank fusion: 0.5, the
# classic unweighted sum (halved).
DEFAULT_ALPHA = {"minmax": 0.5, "rrf": 0.5}
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
