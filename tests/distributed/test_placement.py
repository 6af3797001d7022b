"""Placement on Ray's in-process multi-node test cluster: a shard's replicas go to different
nodes, and ``shard_resource`` pins each shard's replicas to the nodes that hold it."""

from __future__ import annotations

import pytest
from colmax.distributed import ShardedIndex
from colmax.index import Index
from shard_data import pairs, random_docs, unit_rows

cluster_utils = pytest.importorskip("ray.cluster_utils")

DIM = 16


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a worker node, 2 CPUs each; each offers one shard's custom resource."""
    import ray

    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"colmax_shard_0": 1}, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=2, resources={"colmax_shard_1": 1})
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    yield nodes
    ray.shutdown()
    cluster.shutdown()


def test_replicas_spread_over_nodes_and_shards_follow_their_resource(two_nodes, tmp_path):
    docs = random_docs(50, DIM, seed=12)
    ids = [f"n{i}" for i in range(50)]
    one = Index.create(tmp_path / "one", dim=DIM)
    one.add_embeddings(docs, ids)
    with ShardedIndex.create(tmp_path / "s", 2, dim=DIM, replicas=2) as sharded:  # 4 actors x 1 CPU
        for shard in sharded.placement():
            assert len({node for _, node in shard}) == 2  # the two replicas of a shard on two nodes
        sharded.add_embeddings(docs, ids)
        q = unit_rows(docs[9][:3])
        assert pairs(sharded.search(q, 20)) == pairs(one.search(q, 20))
    with ShardedIndex.open(tmp_path / "s", shard_resource="colmax_shard_") as pinned:
        for shard, replicas in enumerate(pinned.placement()):
            for _, node in replicas:
                assert f"colmax_shard_{shard}" in two_nodes[node]
        assert pairs(pinned.search(q, 20)) == pairs(one.search(q, 20))
