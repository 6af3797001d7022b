"""ShardedIndex on a real local Ray cluster: the same answers as one index holding every
document (exact: equal ids and scores; plaid: equal with exact=True, recall no lower), writes
that are atomic across shards, and replicas that survive a killed actor."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from colmax.distributed import ShardedIndex, ShardUnavailableError
from colmax.distributed.router import shard_of
from colmax.index import Index, IndexFormatError, IndexLockedError
from colmax.index.lock import WriterLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shard_data import pairs, random_docs, topic_docs, unit_rows

DIM = 16
CPUS = 0.2  # per actor: several sharded indexes fit on the 2-CPU test cluster at once

FILTERS = [None, {"g": 1}, {"g": {"in": [0, 2]}}, {"even": True, "g": 3}, {"g": 9}]


def meta(i):
    return {"g": i % 4, "even": i % 2 == 0}


@pytest.fixture(scope="module")
def exact_pair(ray_local, tmp_path_factory):
    """4 shards and one index with the same history: two adds, deletes, one doc re-added."""
    tmp = tmp_path_factory.mktemp("exact")
    docs = random_docs(140, DIM, seed=1)
    ids = [f"doc-{i}" for i in range(140)]
    texts = [f"text {i}" for i in range(140)]
    sharded = ShardedIndex.create(tmp / "sharded", 4, dim=DIM, cpus_per_replica=CPUS)
    one = Index.create(tmp / "one", dim=DIM)
    for index in (sharded, one):
        index.add_embeddings(docs[:100], ids[:100], [meta(i) for i in range(100)], texts=texts[:100])
        index.delete([ids[i] for i in range(0, 100, 7)])
        index.add_embeddings(docs[100:], ids[100:], [meta(i) for i in range(100, 140)], texts=texts[100:])
        index.add_embeddings([docs[7]], ["doc-7"], [meta(7)], texts=["seven again"])
    yield sharded, one
    sharded.close()


def query(seed, n=5):
    return unit_rows(np.random.default_rng(seed).standard_normal((n, DIM)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    k=st.integers(1, 160),
    which=st.integers(0, len(FILTERS) - 1),
    seed=st.integers(0, 10_000),
    n_tokens=st.integers(1, 8),
)
def test_exact_search_equals_one_index(exact_pair, k, which, seed, n_tokens):
    sharded, one = exact_pair
    q = query(seed, n_tokens)
    got = sharded.search(q, k, filter=FILTERS[which])
    want = one.search(q, k, filter=FILTERS[which])
    assert pairs(got) == pairs(want)  # ids and float32 scores, bit for bit
    assert [(h.metadata, h.text) for h in got] == [(h.metadata, h.text) for h in want]
    assert got.shards == (0, 1, 2, 3) and got.complete


def test_hits_equal_one_index_whether_documents_come_with_the_rankings_or_after(exact_pair):
    sharded, one = exact_pair
    q = query(3)
    # 4 shards x k=300 documents is past DOCUMENTS_WITH_HITS: fetched in a second call
    for k in (10, 250, 300):
        assert list(sharded.search(q, k, filter={"even": True})) == one.search(q, k, filter={"even": True})


def test_a_read_past_the_inline_size_goes_through_the_object_store(exact_pair, monkeypatch):
    from colmax.distributed import replicas

    sharded, one = exact_pair
    queries = [query(700 + i) for i in range(30)]
    put = []
    monkeypatch.setattr(replicas, "_PUT_BYTES", 1000)  # 30 queries pickle to about 3 KB
    monkeypatch.setattr(
        sharded._actors.ray, "put", lambda value, put_=sharded._actors.ray.put: put.append(1) or put_(value)
    )
    got = sharded.search_batch(queries, 7, filter={"even": True})
    assert put == [1]  # once for every shard
    assert [pairs(h) for h in got] == [pairs(h) for h in one.search_batch(queries, 7, filter={"even": True})]


def test_batch_rerank_explain_get_equal_one_index(exact_pair):
    sharded, one = exact_pair
    queries = [query(s) for s in range(6)]
    got = sharded.search_batch(queries, 12, filter={"even": True})
    assert [pairs(h) for h in got] == [pairs(h) for h in one.search_batch(queries, 12, filter={"even": True})]
    assert [pairs(h) for h in got] == [pairs(sharded.search(q, 12, filter={"even": True})) for q in queries]
    assert sharded.search_batch([], 3) == []
    subset = ["doc-3", "doc-120", "doc-7", "doc-3", "doc-55"]
    assert sharded.rerank(queries[0], subset) == one.rerank(queries[0], subset)
    assert sharded.rerank(queries[0], []) == []
    a, b = sharded.explain(queries[1], "doc-120"), one.explain(queries[1], "doc-120")
    assert a.score == b.score and np.array_equal(a.doc_token, b.doc_token)
    doc = sharded.get("doc-7")
    assert (doc.text, doc.metadata) == ("seven again", meta(7))
    np.testing.assert_array_equal(doc.embeddings, one.get("doc-7").embeddings)
    batch = sharded.get_batch(["doc-120", "doc-1", "doc-120"], embeddings=False)
    assert [(d.id, d.text, d.embeddings) for d in batch] == [
        ("doc-120", "text 120", None),
        ("doc-1", "text 1", None),
        ("doc-120", "text 120", None),
    ]
    assert len(sharded) == len(one) == 140 - 15 + 1
    with pytest.raises(KeyError, match="2 id\\(s\\) not in the index: 'doc-0', 'nope'"):
        sharded.rerank(queries[0], ["doc-1", "doc-0", "nope"])
    with pytest.raises(KeyError, match="doc-14"):
        sharded.get("doc-14")
    with pytest.raises(KeyError, match="nope"):
        sharded.explain(queries[0], "nope")


def test_arguments_are_checked_before_any_shard_works(exact_pair):
    sharded, _ = exact_pair
    q = query(0)
    generation = sharded.generation
    with pytest.raises(ValueError, match="k must be >= 1"):
        sharded.search(q, 0)
    with pytest.raises(ValueError, match="nprobe and ncandidates apply to kind='plaid'"):
        sharded.search(q, nprobe=2)
    with pytest.raises(ValueError, match="expected dim 16"):
        sharded.search(np.ones((3, 8), np.float32))
    with pytest.raises((ValueError, TypeError)):
        sharded.search(q, filter={"g": {"near": 3}})
    with pytest.raises(ValueError, match="already in the index"):
        sharded.add_embeddings(random_docs(2, DIM), ["fresh", "doc-3"])
    with pytest.raises(KeyError, match="'doc-0'"):
        sharded.delete(["doc-1", "doc-0"])
    with pytest.raises(ValueError, match="appears twice"):
        sharded.add_embeddings(random_docs(2, DIM), ["a", "a"])
    with pytest.raises(ValueError, match="no model"):
        sharded.search("text needs a model")
    assert sharded.generation == generation and "fresh" not in {h.id for h in sharded.search(q, 200)}
    assert sharded.get("doc-1").id == "doc-1"  # the refused delete deleted nothing


def test_empty_shards_and_an_empty_index(ray_local, tmp_path):
    docs = random_docs(30, DIM, seed=2)
    ids = [i for i in (f"e{j}" for j in range(400)) if shard_of(i, 3) == 1][:30]
    with ShardedIndex.create(tmp_path / "s", 3, dim=DIM, cpus_per_replica=CPUS) as sharded:
        assert sharded.search(query(1), 5) == [] and len(sharded) == 0
        one = Index.create(tmp_path / "one", dim=DIM)
        for index in (sharded, one):
            index.add_embeddings(docs, ids)
        assert [s.documents for s in sharded._root.shards] == [0, 30, 0]
        for k in (1, 7, 30, 100):
            assert pairs(sharded.search(query(k), k)) == pairs(one.search(query(k), k))
        info = sharded.info()
        assert info["documents"] == 30 and [s["documents"] for s in info["shards"]] == [0, 30, 0]
        assert info["kind"] == "exact" and info["n_shards"] == 3 and not info["pending_write"]


def test_update_with_the_default_model(ray_local, tmp_path):
    from colmax import Encoder

    texts = ["Paris is the capital of France.", "Berlin is the capital of Germany.", "Rome is in Italy."]
    ids = ["paris", "berlin", "rome"]
    vectors = Encoder().encode_documents(texts)
    with ShardedIndex.create(tmp_path / "s", 2, cpus_per_replica=CPUS) as sharded:
        one = Index.create(tmp_path / "one")
        for index in (sharded, one):
            index.add_embeddings(vectors, ids, [{"n": i} for i in range(3)], texts=texts)
            index.update("rome", "Rome is the capital of Italy.")
        question = "What is the capital of Italy?"
        assert pairs(sharded.search(question, 3)) == pairs(one.search(question, 3))
        assert sharded.search(question, 1)[0].metadata == {"n": 2}
        explained = sharded.explain(question, "rome")
        assert explained.query_tokens == one.explain(question, "rome").query_tokens
        assert "capital" in explained.doc_tokens


def recall(index, exact, queries, **knobs):
    found = 0
    for q in queries:
        truth = {h.id for h in exact.search(q, 10)}
        found += len(truth & {h.id for h in index.search(q, 10, **knobs)})
    return found / (10 * len(queries))


def test_plaid_shards_share_the_codebook_one_index_would_train(ray_local, tmp_path):
    docs = topic_docs(500, 32, seed=4)
    ids = [f"p{i}" for i in range(500)]
    # two replicas per shard: writes alternate between them, so each must see the shard the other
    # made anew for the shared codebook
    sharded = ShardedIndex.create(tmp_path / "s", 3, dim=32, kind="plaid", replicas=2, cpus_per_replica=0.1)
    one = Index.create(tmp_path / "one", dim=32, kind="plaid")
    exact = Index.create(tmp_path / "exact", dim=32)
    for index in (sharded, one, exact):
        index.add_embeddings(docs, ids)
    try:
        digest = one.info() and Index.open(tmp_path / "one")._snap.manifest.codebook["sha256"]
        assert sharded._root.codebook["sha256"] == digest
        for i in range(3):  # every shard, openable on its own, holds that codebook
            shard = Index.open(tmp_path / "s" / f"shard-{i:03d}")
            assert shard._snap.manifest.codebook["sha256"] == digest and shard.kind == "plaid"
        rng = np.random.default_rng(5)
        queries = [
            unit_rows(docs[j][rng.choice(len(docs[j]), 4)] + 0.2 * rng.standard_normal((4, 32)))
            for j in range(0, 500, 7)
        ]
        for q in queries[:10]:
            assert pairs(sharded.search(q, 10, exact=True)) == pairs(one.search(q, 10, exact=True))
        for knobs in ({}, {"nprobe": 1, "ncandidates": 16}):
            assert recall(sharded, exact, queries, **knobs) >= recall(one, exact, queries, **knobs)
        extra = topic_docs(20, 32, seed=6)
        for index in (sharded, one):
            index.add_embeddings(extra, [f"n{i}" for i in range(20)])
            index.delete(["p1", "n3"])
            index.add_embeddings(extra[:1], ["again"])
        assert sharded._root.codebook["sha256"] == digest and len(sharded) == 519
        for q in queries[:5]:
            assert pairs(sharded.search(q, 30, exact=True)) == pairs(one.search(q, 30, exact=True))
    finally:
        sharded.close()


def test_plaid_first_add_of_texts(ray_local, tmp_path):
    from colmax.evaluation.corpus import read_jsonl

    corpus = read_jsonl(
        os.path.join(os.path.dirname(__import__("colmax").__file__), "data", "demo_corpus.jsonl")
    )
    with ShardedIndex.create(
        tmp_path / "s", 2, kind="plaid", n_centroids=32, cpus_per_replica=CPUS
    ) as sharded:
        sharded.add(corpus.texts, corpus.ids, corpus.metadata, progress=False)
        assert len(sharded) == len(corpus.ids) and sharded._root.codebook["centroids"] == 32
        assert sharded.search("What is the capital of France?", 1)[0].id == "capital-france"
        digests = {
            Index.open(tmp_path / "s" / f"shard-{i:03d}")._snap.manifest.codebook["sha256"] for i in range(2)
        }
        assert digests == {sharded._root.codebook["sha256"]}


def test_a_failed_shard_commit_is_undone_everywhere(ray_local, tmp_path):
    docs = random_docs(40, DIM, seed=7)
    ids = [f"f{i}" for i in range(40)]
    with ShardedIndex.create(tmp_path / "s", 2, dim=DIM, cpus_per_replica=CPUS) as sharded:
        one = Index.create(tmp_path / "one", dim=DIM)
        for index in (sharded, one):
            index.add_embeddings(docs[:30], ids[:30])
        before = sharded._root
        with WriterLock(tmp_path / "s" / "shard-001"):  # shard 1 cannot commit; shard 0 can
            with pytest.raises(IndexLockedError):
                sharded.add_embeddings(docs[30:], ids[30:])
            # shard 0's commit was undone; shard 1's undo waits for its lock: still pending
            assert Index.open(tmp_path / "s" / "shard-000").generation == before.shards[0].generation
            assert sharded.generation == before.generation
            assert pairs(sharded.search(query(3), 40)) == pairs(one.search(query(3), 40))
        sharded.add_embeddings(docs[30:], ids[30:])  # recovers first, then writes
        one.add_embeddings(docs[30:], ids[30:])
        assert pairs(sharded.search(query(3), 40)) == pairs(one.search(query(3), 40))
        assert sharded.generation == before.generation + 1 and sharded._root.pending is None


def test_a_shard_written_directly_is_refused(ray_local, tmp_path):
    with ShardedIndex.create(tmp_path / "s", 2, dim=DIM, cpus_per_replica=CPUS) as sharded:
        sharded.add_embeddings(random_docs(10, DIM), [f"x{i}" for i in range(10)])
        Index.open(tmp_path / "s" / "shard-000").add_embeddings(random_docs(1, DIM), ["stray"])
        with pytest.raises(IndexFormatError, match=r"shard 0 .* written directly"):
            sharded.delete(["x1"])
        assert len(sharded) == 10


def restarted_pid(ray, actor, within_s: float = 60.0) -> int:
    """The process id of ``actor`` once Ray has restarted it (it may still be restarting when
    the searches end: they went to the other replica meanwhile)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return ray.get(actor.ready.remote(), timeout=within_s)[0]
        except ray.exceptions.ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_replicas_answer_while_one_is_killed(ray_local, tmp_path):
    docs = random_docs(60, DIM, seed=8)
    ids = [f"r{i}" for i in range(60)]
    one = Index.create(tmp_path / "one", dim=DIM)
    one.add_embeddings(docs, ids)
    sharded = ShardedIndex.create(tmp_path / "s", 2, dim=DIM, replicas=2, cpus_per_replica=CPUS)
    try:
        sharded.add_embeddings(docs, ids)
        queries = [query(100 + i) for i in range(150)]
        want = [pairs(one.search(q, 5)) for q in queries]
        got, errors = [], []
        started = threading.Event()

        def stream():
            try:
                for i, q in enumerate(queries):
                    if i == 20:
                        started.set()
                    got.append(pairs(sharded.search(q, 5)))
            except Exception as e:  # the assertion below reports it
                errors.append(e)
                started.set()

        worker = threading.Thread(target=stream)
        worker.start()
        started.wait(60)
        victim_pid = sharded.placement()[1][0][0]
        os.kill(victim_pid, signal.SIGKILL)
        worker.join(120)
        assert not errors and got == want  # no query lost, none answered wrong
        assert victim_pid != restarted_pid(ray_local, sharded._actors.actors[1][0])
    finally:
        sharded.close()


def test_a_dead_shard_is_an_error_unless_partial_results_are_allowed(ray_local, tmp_path):
    docs = random_docs(50, DIM, seed=9)
    ids = [f"z{i}" for i in range(50)]
    with ShardedIndex.create(tmp_path / "s", 2, dim=DIM, cpus_per_replica=CPUS) as sharded:
        sharded.add_embeddings(docs, ids)
        ray_local.kill(sharded._actors.actors[1][0], no_restart=True)
        with pytest.raises(ShardUnavailableError, match=r"shard 1 .*shard-001.* allow_partial=True"):
            sharded.search(query(4), 10)
        partial = sharded.search(query(4), 10, allow_partial=True)
        assert partial.shards == (0,) and list(partial.missing_shards) == [1] and not partial.complete
        alone = Index.create(tmp_path / "alone", dim=DIM)
        kept = [i for i in range(50) if shard_of(ids[i], 2) == 0]
        alone.add_embeddings([docs[i] for i in kept], [ids[i] for i in kept])
        assert pairs(partial) == pairs(alone.search(query(4), 10))


def test_open_refuses_what_the_cluster_cannot_place(ray_local, tmp_path):
    ShardedIndex.create(tmp_path / "s", 2, dim=DIM, cpus_per_replica=CPUS).close()
    with pytest.raises(ValueError, match="need 8 CPUs but the Ray cluster has"):
        ShardedIndex.open(tmp_path / "s", replicas=2, threads_per_shard=2)
    with pytest.raises(ValueError, match="reserve at least one CPU per thread"):
        ShardedIndex.open(tmp_path / "s", threads_per_shard=2, cpus_per_replica=1)
    with pytest.raises(IndexFormatError, match="not a colmax sharded index"):
        ShardedIndex.open(tmp_path)
    closed = ShardedIndex.open(tmp_path / "s", cpus_per_replica=CPUS)
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        closed.search(query(0))


def test_compact_keeps_the_answers(ray_local, tmp_path):
    docs = random_docs(40, DIM, seed=13)
    ids = [f"k{i}" for i in range(40)]
    with ShardedIndex.create(tmp_path / "s", 2, dim=DIM, cpus_per_replica=CPUS) as sharded:
        one = Index.create(tmp_path / "one", dim=DIM)
        for index in (sharded, one):
            index.add_embeddings(docs, ids)
            index.delete(ids[::3])
        want = pairs(one.search(query(6), 40))
        sharded.compact()
        assert pairs(sharded.search(query(6), 40)) == want
        for i in range(2):
            info = Index.open(tmp_path / "s" / f"shard-{i:03d}").info()
            assert info["deleted"] == 0 and info["segments"] == 1
        # a compaction whose root was never recorded is kept, not rolled back
        from colmax.distributed.root import write_root

        for index in (sharded, one):
            index.delete(["k1"])
        holder = shard_of("k1", 2)
        recorded = sharded._root
        generation, _ = sharded._actors.call(holder, "compact")  # the shard compacts, then a crash
        assert generation == recorded.shards[holder].generation + 1
        write_root(tmp_path / "s", recorded.replace(pending={"op": "compact"}))
        extra = random_docs(1, DIM, seed=14)
        for index in (sharded, one):
            index.add_embeddings(extra, ["after"])
        assert len(sharded) == 26 and sharded._root.pending is None
        assert sharded._root.shards[holder].generation == generation + (shard_of("after", 2) == holder)
        assert pairs(sharded.search(query(6), 40)) == pairs(one.search(query(6), 40))
