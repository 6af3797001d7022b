"""A real local Ray cluster for the sharded-index tests (one per module: Ray takes seconds to
start), and the vectors they index."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")  # scripts/test.sh installs the extra: these tests run in CI


@pytest.fixture(scope="module")
def ray_local():
    """``ray.init(num_cpus=2)``: the shard actors reserve half a CPU each (cpus_per_replica)."""
    # address="local": a new cluster even where another is running (ray.init would join it)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
