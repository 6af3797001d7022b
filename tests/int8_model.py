"""The int8 scoring rule (colmax/quantize.hpp) modelled in NumPy, for tests of every kernel that
scores int8: quantization per row and MaxSim with every product rounded to float32 as written."""

from __future__ import annotations

import numpy as np
from colmax.scoring import QUERY_LEVELS


def quantize_reference(x: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row quantization in float32: scale = max|x| / levels, values =
    rint(x * (levels / max|x|)) (half to even), clipped; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    m = np.abs(x).max(axis=1)
    level = np.float32(levels)
    safe = np.where(m > 0, m, np.float32(1))
    inv = (level / safe).astype(np.float32)
    values = np.clip(np.rint(x * inv[:, None]), -levels, levels).astype(np.int8)
    values[m == 0] = 0
    scales = np.where(m > 0, m / level, np.float32(0)).astype(np.float32)
    return values, scales


def int8_maxsim(query: np.ndarray, values: np.ndarray, scales: np.ndarray, offsets) -> np.ndarray:
    """sum_i s_i * max_j (s_j * <q8_i, d8_j>) with every product rounded to float32 as written
    and the sum taken in query-token order; integer dot products in int64 (exact)."""
    q8, qs = quantize_reference(query, QUERY_LEVELS)
    dots = q8.astype(np.int64) @ values.astype(np.int64).T  # (n_query, n_rows)
    sims = scales[None, :] * dots.astype(np.float32)  # float32 products
    out = []
    for d in range(len(offsets) - 1):
        lo, hi = offsets[d], offsets[d + 1]
        if lo == hi:
            out.append(np.float32(-np.inf))
            continue
        best = sims[:, lo:hi].max(axis=1)
        score = np.float32(0)
        for term in qs * best:  # float32, in order
            score = np.float32(score + term)
        out.append(score)
    return np.array(out, dtype=np.float32)
