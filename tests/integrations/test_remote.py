"""The retrievers over a remote index: a real `colmax serve` on 127.0.0.1 and a `colmax.Client`
as the retrievers' index return what they return over the same index opened in-process, in
every search mode, with filters, sync and async."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import colmax
import pytest

pytest.importorskip("fastapi")  # scripts/test.sh installs every extra: this runs in CI
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from colmax.integrations import langchain, llama_index
from demo_data import QUERIES, demo_corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serving import Server

MODES = [None, "semantic", "keyword", "hybrid"]
FILTER = {"group": {"in": ["capital", "paris", "seine", "france"]}}


@pytest.fixture(scope="module")
def served(tmp_path_factory, encoder):
    """The demo passages in an index served by `colmax serve`, and the same index in-process."""
    tmp = tmp_path_factory.mktemp("remote")
    ids, texts, metadata = demo_corpus()
    with colmax.Index.create(tmp / "demo", encoder) as index:
        index.add(texts, ids=ids, metadata=metadata)
    server = Server(tmp, f"demo={tmp / 'demo'}").start()
    local = colmax.Index.open(tmp / "demo", model=encoder)
    yield colmax.Client(server.url), local
    local.close()
    server.stop()


def documents(docs):
    return [(d.id, d.page_content, d.metadata) for d in docs]


def nodes(results):
    return [(n.node.node_id, n.node.text, n.node.metadata, n.score) for n in results]


def assert_same(remote, here) -> None:
    """``remote(query)`` equals ``here(query)`` for every query, and not only as empty answers."""
    found = 0
    for query in QUERIES:
        got = remote(query)
        assert got == here(query)
        found += len(got)
    assert found


@pytest.mark.parametrize("mode", MODES)
def test_langchain_retriever_remote_is_local(served, mode):
    client, local = served
    remote = langchain.ColmaxRetriever(index=client, k=5, mode=mode, filter=FILTER)
    here = langchain.ColmaxRetriever(index=local, k=5, mode=mode, filter=FILTER)
    assert_same(lambda q: documents(remote.invoke(q)), lambda q: documents(here.invoke(q)))
    many = asyncio.run(remote.abatch(QUERIES))
    assert [documents(d) for d in many] == [documents(here.invoke(q)) for q in QUERIES]


@pytest.mark.parametrize("mode", MODES)
def test_llama_index_retriever_remote_is_local(served, mode):
    client, local = served
    remote = llama_index.ColmaxRetriever(client, similarity_top_k=4, mode=mode)
    here = llama_index.ColmaxRetriever(local, similarity_top_k=4, mode=mode)
    assert_same(lambda q: nodes(remote.retrieve(q)), lambda q: nodes(here.retrieve(q)))
    assert nodes(asyncio.run(remote.aretrieve(QUERIES[0]))) == nodes(here.retrieve(QUERIES[0]))
