"""Data and comparison helpers of the sharded-index tests (a module of its own: every test folder
has a conftest.py, so importing from "conftest" would pick whichever was imported first)."""

from __future__ import annotations

import numpy as np


def unit_rows(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=-1, keepdims=True)).astype(np.float32)


def random_docs(n: int, dim: int, seed: int = 0, max_len: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [unit_rows(rng.standard_normal((int(rng.integers(1, max_len + 1)), dim))) for _ in range(n)]


def topic_docs(n: int, dim: int, seed: int = 0, topics: int = 24) -> list[np.ndarray]:
    """Tokens scattered around a few topic vectors, so a codebook has structure to find."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, dim))
    out = []
    for _ in range(n):
        picks = rng.choice(topics, size=3, replace=False)
        length = int(rng.integers(4, 20))
        out.append(
            unit_rows(centres[rng.choice(picks, size=length)] + 0.35 * rng.standard_normal((length, dim)))
        )
    return out


def pairs(hits) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]
