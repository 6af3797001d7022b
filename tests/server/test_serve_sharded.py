"""`colmax serve` serving a sharded index's root on a real local Ray cluster: the server process
joins the cluster (--ray-address), starts the shard actors, and answers over HTTP what one index
holding the same documents answers in-process, in every search mode; stopped, it leaves no actor
behind. Without Ray installed, serving a sharded root names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import time

import colmax
import pytest
from colmax.cli.demo import SAMPLE
from colmax.evaluation.corpus import read_jsonl
from colmax.index import Index
from serving import QUESTION, Server

ray = pytest.importorskip("ray")  # scripts/test.sh installs the extra: this runs in CI

QUERIES = [QUESTION, "tallest mountain in the world", "Which river flows through Paris?"]
CPUS = 0.25  # per shard actor, of the cluster's 2


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster for this module; the server process joins it by its address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def indexes(cluster, tmp_path_factory):
    """The demo corpus in a 2-shard index and in one index, from the same vectors (the default
    model's int8 vectors depend slightly on the batch they are encoded in)."""
    tmp = tmp_path_factory.mktemp("sharded-serve")
    corpus = read_jsonl(SAMPLE)
    metadata = [{"topic": i.split("-")[0], "n": n} for n, i in enumerate(corpus.ids)]
    encoder = colmax.Encoder()
    vectors = encoder.encode_documents(corpus.texts)
    with colmax.ShardedIndex.create(tmp / "root", 2, cpus_per_replica=CPUS) as sharded:
        sharded.add_embeddings(vectors, corpus.ids, metadata, texts=corpus.texts)
    one = Index.create(tmp / "one", encoder)
    one.add_embeddings(vectors, corpus.ids, metadata, texts=corpus.texts)
    yield tmp / "root", one
    one.close()


def cpus_back(want: float, seconds: float = 30.0) -> bool:
    """Whether the cluster's free CPUs return to ``want`` (the server's actors gone) in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0.0) >= want - 1e-9:
            return True
        time.sleep(0.2)
    return False


def test_serve_a_sharded_root_like_an_index(cluster, indexes, tmp_path):
    root, one = indexes
    srv = Server(tmp_path, f"shards={root}", "--ray-address", cluster, "--cpus-per-replica", str(CPUS))
    srv.start()
    try:
        assert "2 shards on Ray" in srv.log()
        client = colmax.Client(srv.url)
        assert client.index == "shards" and len(client) == len(one)
        for options in (
            {},
            {"mode": "semantic"},
            {"mode": "keyword"},
            {"alpha": 0.7, "fusion": "rrf"},
            {"filter": {"topic": {"in": ["capital", "france"]}}},
        ):
            for query in QUERIES:
                assert client.search(query, k=6, **options) == one.search(query, k=6, **options), options
            assert client.search_batch(QUERIES, k=4, **options) == one.search_batch(QUERIES, k=4, **options)
        # a RAG retriever over the served sharded index returns what it returns over one index
        pytest.importorskip("langchain_core")  # CI installs every extra
        from colmax.integrations.langchain import ColmaxRetriever

        for query in QUERIES:
            remote = ColmaxRetriever(index=client, k=3).invoke(query)
            here = ColmaxRetriever(index=one, k=3).invoke(query)
            assert [(d.id, d.metadata) for d in remote] == [(d.id, d.metadata) for d in here]
        got, want = client.explain(QUESTION, "capital-france"), one.explain(QUESTION, "capital-france")
        assert got.keyword_terms == want.keyword_terms == ["capital", "france"]
        assert (got.doc_tokens, got.score) == (want.doc_tokens, want.score)
        info = client.info()
        assert info["sharded"] is True and info["n_shards"] == 2 and info["keyword_index"] is True
        # writes go through the sharded index's protocol: upsert, get, delete
        generation = client.indexes()["shards"]["generation"]
        client.add(
            ["Canberra is the capital of Australia."], ids=["canberra"], metadata=[{"topic": "capital"}]
        )
        client.add(["Canberra is Australia's capital city."], ids=["canberra"], upsert=True)
        assert client.get("canberra").text == "Canberra is Australia's capital city."
        assert client.search("capital of Australia", k=1)[0].id == "canberra"
        client.delete(["canberra"])
        with pytest.raises(KeyError, match="canberra"):
            client.get("canberra")
        assert client.indexes()["shards"]["generation"] == generation + 3
    finally:
        srv.stop()
    assert "Application shutdown complete" in srv.log()  # closed: its actors stopped
    assert cpus_back(2.0), "the server's shard actors outlived it"


def test_a_sharded_root_without_ray_names_the_extra(indexes):
    root, _ = indexes
    code = (
        "import sys\n"
        "sys.modules['ray'] = None\n"
        "from colmax.cli import main\n"
        f"sys.exit(main(['serve', {str(root)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert 'is a sharded index, and serving one needs Ray: pip install "colmax[ray]"' in result.stderr
