"""colmax.integrations.langchain with the real langchain-core: the retriever returns exactly what
Index.search does, the reranker orders by exact MaxSim, async paths agree, errors say the fix."""

from __future__ import annotations

import asyncio

import colmax
import numpy as np
import pytest

pytest.importorskip("langchain_core")  # scripts/test.sh installs the extra: this runs in CI

from colmax.integrations.langchain import ColmaxReranker, ColmaxRetriever
from demo_data import QUERIES, demo_corpus
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

FILTERS = [None, {"group": "capital"}, {"group": {"in": ["paris", "france", "seine"]}}, {"i": 3}]


def sides(hit) -> dict:
    both = {"semantic_score": hit.semantic_score, "keyword_score": hit.keyword_score}
    return {name: value for name, value in both.items() if value is not None}


def expected_documents(hits):
    return [(h.id, h.text, {**h.metadata, "id": h.id, "score": h.score, **sides(h)}) for h in hits]


def got_documents(docs):
    return [(d.id, d.page_content, d.metadata) for d in docs]


@pytest.mark.parametrize("filter", FILTERS)
@pytest.mark.parametrize("k", [1, 4, 50])
def test_retriever_returns_index_search(demo_index, k, filter):
    retriever = ColmaxRetriever(index=demo_index, k=k, filter=filter)
    for query in QUERIES:
        hits = demo_index.search(query, k, filter=filter)
        assert got_documents(retriever.invoke(query)) == expected_documents(hits)


def test_retriever_metadata_and_defaults(demo_index):
    retriever = ColmaxRetriever(index=demo_index)
    assert retriever.k == 4 and retriever.filter is None and retriever.mode is None
    docs = retriever.invoke("Which river flows through Paris?")
    assert len(docs) == 4
    seine = next(d for d in docs if d.id == "seine")
    # the hit's score replaces a metadata field of the same name; the rest is the document's
    assert isinstance(seine.metadata["score"], float)
    assert seine.metadata["group"] == "seine" and seine.metadata["id"] == "seine"
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)


def test_async_paths_agree_with_sync(demo_index):
    retriever = ColmaxRetriever(index=demo_index, k=5, filter={"group": "capital"})
    reranker = ColmaxReranker(model=demo_index.encoder, top_n=3)

    async def run():
        many = await retriever.abatch(QUERIES)  # concurrent, on worker threads
        one = await retriever.ainvoke(QUERIES[0])
        reranked = await reranker.acompress_documents(one, QUERIES[1])
        return many, one, reranked

    many, one, reranked = asyncio.run(run())
    assert [got_documents(d) for d in many] == [got_documents(retriever.invoke(q)) for q in QUERIES]
    assert got_documents(one) == got_documents(retriever.invoke(QUERIES[0]))
    assert got_documents(reranked) == got_documents(reranker.compress_documents(one, QUERIES[1]))


@pytest.mark.parametrize("mode", [None, "semantic", "keyword", "hybrid"])
def test_mode_gives_index_search_in_that_mode(demo_index, mode):
    retriever = ColmaxRetriever(
        index=demo_index, k=5, mode=mode, filter={"group": {"in": ["capital", "paris"]}}
    )
    for query in QUERIES:
        hits = demo_index.search(query, 5, filter=retriever.filter, mode=mode)
        docs = retriever.invoke(query)
        assert got_documents(docs) == expected_documents(hits)
        for doc in docs:  # each side's score where the search computed it
            assert ("semantic_score" in doc.metadata) == (mode != "keyword")
            assert ("keyword_score" in doc.metadata) == (mode in ("keyword", "hybrid", None))
    with pytest.raises(ValueError, match="mode must be one of semantic, keyword, hybrid"):
        ColmaxRetriever(index=demo_index, mode="lexical")


def test_reranker_orders_by_maxsim(encoder):
    ids, texts, metadata = demo_corpus()
    order = np.random.default_rng(7).permutation(len(ids))
    docs = [Document(page_content=texts[i], metadata=dict(metadata[i]), id=ids[i]) for i in order]
    query = "Which river flows through Paris?"
    vectors = encoder.encode_documents([d.page_content for d in docs])
    scores = colmax.maxsim(encoder.encode_queries([query])[0], vectors)
    expected = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
    for top_n in (1, 5, None):
        ranked = ColmaxReranker(model=encoder, top_n=top_n).compress_documents(docs, query)
        keep = expected if top_n is None else expected[:top_n]
        assert [d.id for d in ranked] == [docs[i].id for i in keep]
        assert [d.metadata["relevance_score"] for d in ranked] == [float(scores[i]) for i in keep]
        assert all(d.metadata["i"] == docs[i].metadata["i"] for d, i in zip(ranked, keep))
    assert all("relevance_score" not in d.metadata for d in docs)  # the inputs are not modified


def test_reranker_ties_keep_input_order(encoder):
    docs = [Document(page_content="Paris is in France.", id=str(i)) for i in range(4)]
    ranked = ColmaxReranker(model=encoder, top_n=None).compress_documents(docs, "Paris")
    assert [d.id for d in ranked] == ["0", "1", "2", "3"]


def test_reranker_defaults_and_model_argument(encoder):
    reranker = ColmaxReranker()  # the packaged default model
    assert reranker.top_n == 3 and reranker._ranker.encoder.dim == encoder.dim
    assert ColmaxReranker(model=str(encoder.path), top_n=1)._ranker.encoder.path == encoder.path
    assert reranker.compress_documents([], "anything") == []


def test_retrieve_then_rerank_in_a_chain(demo_index):
    retriever = ColmaxRetriever(index=demo_index, k=8)
    reranker = ColmaxReranker(model=demo_index.encoder, top_n=2)
    chain = retriever | RunnableLambda(lambda docs: reranker.compress_documents(docs, QUERIES[1]))
    docs = chain.invoke(QUERIES[1])
    assert len(docs) == 2 and docs[0].id == "seine"
    assert {d.id for d in docs} <= {h.id for h in demo_index.search(QUERIES[1], 8)}


# -- errors ----------------------------------------------------------------------------------


def test_missing_or_wrong_index_is_refused(tmp_path, encoder):
    with pytest.raises(ValueError, match="index"):  # pydantic: the field is required
        ColmaxRetriever()
    with pytest.raises(TypeError, match="index is missing"):
        ColmaxRetriever(index=None)
    with pytest.raises(TypeError, match=r"colmax.Index.open\("):
        ColmaxRetriever(index=str(tmp_path))
    with pytest.raises(TypeError, match=r"colmax\.Index, ShardedIndex or Client"):
        ColmaxRetriever(index=object())
    index = colmax.Index.create(tmp_path / "closed", encoder)
    retriever = ColmaxRetriever(index=index)
    index.close()
    with pytest.raises(ValueError, match="closed"):
        retriever.invoke("anything")


def test_bad_settings_are_refused_when_built(demo_index):
    with pytest.raises(ValueError, match="k must be >= 1"):
        ColmaxRetriever(index=demo_index, k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        ColmaxRetriever(index=demo_index, k="3")
    with pytest.raises(ValueError, match="only operator is 'in'"):
        ColmaxRetriever(index=demo_index, filter={"i": {"gt": 3}})
    with pytest.raises(ValueError, match="filter is empty"):
        ColmaxRetriever(index=demo_index, filter={})
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        ColmaxReranker(model=demo_index.encoder, top_n=0)
    with pytest.raises(TypeError, match="model must be None, a model directory or an Encoder"):
        ColmaxReranker(model=3)


def test_documents_without_text_are_refused(textless_index, tmp_path, encoder):
    retriever = ColmaxRetriever(index=textless_index, k=2)
    with pytest.raises(ValueError, match=r"'lyon' has no stored text \(added with add_embeddings"):
        retriever.invoke("a city in France")
    with pytest.raises(ValueError, match="no stored text"):
        asyncio.run(retriever.ainvoke("a city in France"))
    # an embeddings-only index has no model to encode the query, nor text to return
    vectors = colmax.Index.create(tmp_path / "vectors", dim=encoder.dim)
    vectors.add_embeddings(encoder.encode_documents(["Paris is the capital of France."]), ids=["paris"])
    with pytest.raises(ValueError, match="this index has no model"):
        ColmaxRetriever(index=vectors).invoke("capital of France")
    reopened = colmax.Index.open(tmp_path / "vectors", model=encoder)
    with pytest.raises(ValueError, match="'paris' has no stored text"):
        ColmaxRetriever(index=reopened).invoke("capital of France")
    reranker = ColmaxReranker(model=encoder)
    with pytest.raises(ValueError, match=r"the documents' texts\[1\] is empty"):
        reranker.compress_documents([Document(page_content="Paris"), Document(page_content=" ")], "Paris")
    with pytest.raises(ValueError, match="the query is empty"):
        reranker.compress_documents([Document(page_content="Paris")], "")
