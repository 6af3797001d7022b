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


# words for texts the keyword index ranks: stems that stay apart, and a few rare ones
WORDS = [f"w{i}" for i in range(40)] + ["quasar", "nebula", "pulsar"]


def word_texts(n: int, seed: int = 0) -> list[str]:
    """Texts of Zipf-distributed words, each of its own length (8 to 8 + n words), so that two
    documents rarely tie on BM25 (ties are broken by position in one index, by shard first in a
    sharded one)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)
    lengths = rng.permutation(n) + 8
    return [" ".join(rng.choice(WORDS, size=int(m), p=weights / weights.sum())) for m in lengths]


def assert_same_ranking(got: list[tuple[str, float]], deeper: list[tuple[str, float]], k: int) -> None:
    """``got`` (the best ``k`` of a sharded search, (id, score)) is one index's ranking
    ``deeper`` (its best ``k`` and more, so that a group of equal scores cut at ``k`` is seen
    whole) up to the order inside groups of equal scores: one index breaks those ties by
    insertion order, a sharded one by shard first. Scores equal within float rounding."""
    assert len(got) == min(k, len(deeper))
    np.testing.assert_allclose(
        [s for _, s in got], [s for _, s in deeper[: len(got)]], rtol=1e-12, atol=1e-15
    )
    start = 0
    while start < len(got):
        end = start
        while end < len(deeper) and deeper[end][1] == deeper[start][1]:
            end += 1
        tied = {i for i, _ in deeper[start:end]}
        taken = {i for i, _ in got[start:end]}
        assert taken == tied if end <= len(got) else taken <= tied, (start, got, deeper)
        start = end
