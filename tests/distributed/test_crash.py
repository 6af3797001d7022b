"""A sharded write whose coordinator is killed (SIGKILL) between two shard commits: readers keep
the recorded state, and the next write rolls the committed shard back before writing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

from colmax.distributed import ShardedIndex
from colmax.distributed.root import ROOT_FILE
from colmax.distributed.router import shard_of
from colmax.index import Index
from shard_data import pairs, random_docs, unit_rows

DIM = 16

# The coordinator in a process of its own, joined to the test's Ray cluster. It holds back
# shard 1's call (the shards are called in order), so the kill lands after shard 0 committed
# and before shard 1 started: the state a crash between shard commits leaves.
_COORDINATOR = textwrap.dedent(
    """
    import sys, time
    import numpy as np, ray
    from colmax.distributed import ShardedIndex, replicas

    root, address, marker = sys.argv[1:4]
    ray.init(address=address, log_to_driver=False)
    index = ShardedIndex.open(root, cpus_per_replica=0.2)
    submit = replicas.Replicas.submit

    def held_back(self, shard, method, *args, **kw):
        if method == "add_embeddings" and shard == 1:
            open(marker, "w").close()
            time.sleep(600)
        return submit(self, shard, method, *args, **kw)

    replicas.Replicas.submit = held_back
    rng = np.random.default_rng(1)
    docs = [m / np.linalg.norm(m, axis=1, keepdims=True) for m in rng.standard_normal((8, 5, 16))]
    index.add_embeddings([d.astype(np.float32) for d in docs], [f"late{i}" for i in range(8)])
    """
)


def shard_generation(root, i):
    return json.loads((root / f"shard-{i:03d}" / "colmax-index.json").read_text())["generation"]


def test_coordinator_killed_between_shard_commits(ray_local, tmp_path):
    assert {shard_of(f"late{i}", 2) for i in range(8)} == {0, 1}  # the write touches both shards
    docs = random_docs(40, DIM, seed=11)
    ids = [f"c{i}" for i in range(40)]
    root = tmp_path / "s"
    one = Index.create(tmp_path / "one", dim=DIM)
    one.add_embeddings(docs, ids)
    q = unit_rows(docs[3][:2])
    with ShardedIndex.create(root, 2, dim=DIM, cpus_per_replica=0.2) as sharded:
        sharded.add_embeddings(docs, ids)
        before = [shard_generation(root, i) for i in range(2)]
        marker = tmp_path / "held"
        address = ray_local.get_runtime_context().gcs_address
        proc = subprocess.Popen([sys.executable, "-c", _COORDINATOR, str(root), address, str(marker)])
        try:
            deadline = time.monotonic() + 120
            while not (marker.exists() and shard_generation(root, 0) > before[0]):
                assert proc.poll() is None and time.monotonic() < deadline, "the coordinator never got there"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        assert shard_generation(root, 0) == before[0] + 1 and shard_generation(root, 1) == before[1]
        assert json.loads((root / ROOT_FILE).read_text())["pending"] == {"op": "write"}

        # readers see the recorded state: shard 0's unrecorded commit stays invisible
        assert pairs(sharded.search(q, 50)) == pairs(one.search(q, 50))
        with ShardedIndex.open(root, cpus_per_replica=0.2) as fresh:
            assert pairs(fresh.search(q, 50)) == pairs(one.search(q, 50)) and len(fresh) == 40
        # the next write rolls shard 0 back, then commits on top of the recorded state
        sharded.delete(["c5"])
        one.delete(["c5"])
        assert shard_generation(root, 0) in (before[0], before[0] + 1)
        assert pairs(sharded.search(q, 50)) == pairs(one.search(q, 50))
        shard0 = Index.open(root / "shard-000")
        assert not [i for i in range(8) if f"late{i}" in shard0] and len(sharded) == 39
        for i in range(2):
            Index.open(root / f"shard-{i:03d}").verify()
