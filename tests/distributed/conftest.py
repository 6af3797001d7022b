"""A real local Ray cluster for the sharded-index tests (one per module: Ray takes seconds to
start), and the vectors they index."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")  # scripts/test.sh installs the extra: these tests run in CI


@pytest.fixture(scope="module")
def ray_local():
    """``ray.init(num_cpus=2)``: the shard actors reserve half a CPU each (cpus_per_replica)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


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
