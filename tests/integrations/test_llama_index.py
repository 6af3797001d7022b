"""colmax.integrations.llama_index with the real llama-index-core: the retriever returns exactly
what Index.search does, MetadataFilters translate to colmax filters or are refused, the reranker
orders by exact MaxSim, async paths agree, errors say the fix."""

from __future__ import annotations

import asyncio

import colmax
import numpy as np
import pytest

pytest.importorskip("llama_index.core")  # scripts/test.sh installs the extra: this runs in CI

from colmax.integrations.llama_index import ColmaxRerank, ColmaxRetriever, colmax_filter
from demo_data import QUERIES, demo_corpus
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)


def eq(key, value):
    return MetadataFilter(key=key, value=value)


def op(key, operator, value):
    return MetadataFilter(key=key, operator=operator, value=value)


def nodes_of(results):
    return [(n.node.node_id, n.node.text, n.node.metadata, n.score) for n in results]


def hits_of(hits):
    return [(h.id, h.text, {**h.metadata, **sides(h)}, h.score) for h in hits]


def sides(hit) -> dict:
    both = {"semantic_score": hit.semantic_score, "keyword_score": hit.keyword_score}
    return {name: value for name, value in both.items() if value is not None}


# (LlamaIndex filters, the colmax filter they mean)
TRANSLATIONS = [
    (None, None),
    (MetadataFilters(filters=[]), None),
    (MetadataFilters(filters=[eq("group", "capital")]), {"group": "capital"}),
    (MetadataFilters(filters=[eq("i", 3)]), {"i": 3}),
    (MetadataFilters(filters=[eq("i", 3.0)]), {"i": 3.0}),
    (
        MetadataFilters(filters=[op("group", FilterOperator.IN, ["paris", "seine"])]),
        {"group": {"in": ["paris", "seine"]}},
    ),
    (
        MetadataFilters(filters=[eq("group", "paris"), eq("group", "seine")], condition=FilterCondition.OR),
        {"group": {"in": ["paris", "seine"]}},
    ),
    (
        MetadataFilters(
            filters=[
                MetadataFilters(
                    filters=[eq("group", "capital"), op("group", FilterOperator.IN, ["paris"])],
                    condition=FilterCondition.OR,
                ),
                op("i", FilterOperator.IN, [0, 1, 2, 9, 10]),
            ]
        ),
        {"group": {"in": ["capital", "paris"]}, "i": {"in": [0, 1, 2, 9, 10]}},
    ),
    ({"group": {"in": ["paris", "france"]}}, {"group": {"in": ["paris", "france"]}}),
]


@pytest.mark.parametrize(("filters", "expected"), TRANSLATIONS)
def test_filters_translate_to_colmax_filters(filters, expected):
    assert colmax_filter(filters) == expected


@pytest.mark.parametrize(("filters", "expected"), TRANSLATIONS)
@pytest.mark.parametrize("k", [1, 2, 50])
def test_retriever_returns_index_search(demo_index, filters, expected, k):
    retriever = ColmaxRetriever(demo_index, similarity_top_k=k, filters=filters)
    for query in QUERIES:
        assert nodes_of(retriever.retrieve(query)) == hits_of(demo_index.search(query, k, filter=expected))


def test_translated_filters_select_what_they_say(demo_index):
    filters = MetadataFilters(
        filters=[eq("group", "paris"), op("group", FilterOperator.IN, ["capital"])],
        condition=FilterCondition.OR,
    )
    results = ColmaxRetriever(demo_index, 50, filters=filters).retrieve("a city")
    ids, _, metadata = demo_corpus()
    expected = {d for d, m in zip(ids, metadata) if m["group"] in ("paris", "capital")}
    assert {n.node.node_id for n in results} == expected


REFUSED = [
    (MetadataFilters(filters=[op("i", FilterOperator.GT, 3)]), "operator '>'"),
    (MetadataFilters(filters=[op("group", FilterOperator.NE, "paris")]), "operator '!='"),
    (MetadataFilters(filters=[op("group", FilterOperator.NIN, ["paris"])]), "operator 'nin'"),
    (MetadataFilters(filters=[op("group", FilterOperator.CONTAINS, "paris")]), "operator 'contains'"),
    (MetadataFilters(filters=[op("group", FilterOperator.TEXT_MATCH, "par")]), "operator 'text_match'"),
    (MetadataFilters(filters=[op("group", FilterOperator.IS_EMPTY, None)]), "operator 'is_empty'"),
    (MetadataFilters(filters=[eq("group", "paris")], condition=FilterCondition.NOT), "condition 'not'"),
    (
        MetadataFilters(filters=[eq("group", "paris"), eq("i", 3)], condition=FilterCondition.OR),
        "OR across different keys",
    ),
    (MetadataFilters(filters=[eq("i", 3), op("i", FilterOperator.IN, [3, 4])]), "two conditions on 'i'"),
    (MetadataFilters(filters=[eq("group", None)]), "'group' == None"),
    (MetadataFilters(filters=[eq("group", ["paris"])]), "== takes one value"),
    (MetadataFilters(filters=[op("group", FilterOperator.IN, "paris")]), "in a list"),
]


@pytest.mark.parametrize(("filters", "message"), REFUSED)
def test_untranslatable_filters_are_refused_when_built(demo_index, filters, message):
    with pytest.raises(ValueError, match="no colmax equivalent") as error:
        ColmaxRetriever(demo_index, filters=filters)
    assert message in str(error.value)


def test_async_paths_agree_with_sync(demo_index):
    retriever = ColmaxRetriever(demo_index, similarity_top_k=5)
    rerank = ColmaxRerank(model=demo_index.encoder, top_n=3)

    async def run():
        many = await asyncio.gather(*(retriever.aretrieve(q) for q in QUERIES))
        reranked = await rerank.apostprocess_nodes(many[0], query_str=QUERIES[1])
        return many, reranked

    many, reranked = asyncio.run(run())
    assert [nodes_of(m) for m in many] == [nodes_of(retriever.retrieve(q)) for q in QUERIES]
    assert nodes_of(reranked) == nodes_of(rerank.postprocess_nodes(many[0], query_str=QUERIES[1]))


@pytest.mark.parametrize("mode", [None, "semantic", "keyword", "hybrid"])
def test_mode_gives_index_search_in_that_mode(demo_index, mode):
    retriever = ColmaxRetriever(demo_index, similarity_top_k=4, mode=mode)
    for query in QUERIES:
        results = retriever.retrieve(query)
        assert nodes_of(results) == hits_of(demo_index.search(query, 4, mode=mode))
        for result in results:  # the scores stay out of what an LLM is shown of the node
            node = result.node
            assert ("keyword_score" in node.metadata) == (mode in ("keyword", "hybrid", None))
            shown = node.get_content(metadata_mode=MetadataMode.LLM)
            assert "semantic_score" not in shown and "keyword_score" not in shown
            assert f"group: {node.metadata['group']}" in shown
    with pytest.raises(ValueError, match="mode must be one of semantic, keyword, hybrid"):
        ColmaxRetriever(demo_index, mode="lexical")


def test_rerank_orders_by_maxsim(encoder):
    ids, texts, meta = demo_corpus()
    order = np.random.default_rng(11).permutation(len(ids))
    given = [TextNode(id_=ids[i], text=texts[i], metadata=meta[i]) for i in order]
    nodes = [NodeWithScore(node=node, score=0.5) for node in given]
    query = "How many keys does a piano have?"
    vectors = encoder.encode_documents([n.node.text for n in nodes])
    scores = colmax.maxsim(encoder.encode_queries([query])[0], vectors)
    expected = sorted(range(len(nodes)), key=lambda i: (-scores[i], i))
    for top_n in (1, 6, None):
        ranked = ColmaxRerank(model=encoder, top_n=top_n).postprocess_nodes(nodes, query_str=query)
        keep = expected if top_n is None else expected[:top_n]
        assert [n.node.node_id for n in ranked] == [nodes[i].node.node_id for i in keep]
        assert [n.score for n in ranked] == [float(scores[i]) for i in keep]
    assert all(n.score == 0.5 for n in nodes)  # the inputs are not modified


def test_rerank_defaults(encoder):
    rerank = ColmaxRerank()
    assert rerank.top_n == 2 and rerank._ranker.encoder.dim == encoder.dim
    assert rerank.postprocess_nodes([], query_str="anything") == []


def test_query_engine_with_rerank_and_a_mock_llm(demo_index):
    query = "Which river flows through Paris?"
    engine = RetrieverQueryEngine.from_args(
        ColmaxRetriever(demo_index, similarity_top_k=6),
        llm=MockLLM(),  # answers with its prompt: no network
        node_postprocessors=[ColmaxRerank(model=demo_index.encoder, top_n=2)],
    )
    response = engine.query(query)
    assert len(response.source_nodes) == 2 and response.source_nodes[0].node.node_id == "seine"
    assert "The Seine flows through Paris" in str(response)


# -- errors ----------------------------------------------------------------------------------


def test_missing_or_wrong_index_is_refused(tmp_path, encoder):
    with pytest.raises(TypeError, match="index is missing"):
        ColmaxRetriever(None)
    with pytest.raises(TypeError, match=r"colmax\.Index\.open\("):
        ColmaxRetriever(tmp_path)
    with pytest.raises(TypeError, match=r"colmax\.Index, ShardedIndex or Client"):
        ColmaxRetriever(object())
    index = colmax.Index.create(tmp_path / "closed", encoder)
    retriever = ColmaxRetriever(index)
    index.close()
    with pytest.raises(ValueError, match="closed"):
        retriever.retrieve("anything")


def test_bad_settings_are_refused_when_built(demo_index):
    with pytest.raises(ValueError, match="similarity_top_k must be >= 1"):
        ColmaxRetriever(demo_index, similarity_top_k=0)
    with pytest.raises(TypeError, match="filters must be LlamaIndex MetadataFilters or a colmax filter dict"):
        ColmaxRetriever(demo_index, filters=[eq("group", "paris")])
    with pytest.raises(ValueError, match="only operator is 'in'"):
        ColmaxRetriever(demo_index, filters={"i": {"gt": 3}})
    with pytest.raises(ValueError, match="top_n must be >= 1"):
        ColmaxRerank(model=demo_index.encoder, top_n=0)
    with pytest.raises(ValueError, match="needs the query"):
        ColmaxRerank(model=demo_index.encoder).postprocess_nodes([])


def test_documents_without_text_are_refused(textless_index, encoder):
    retriever = ColmaxRetriever(textless_index, similarity_top_k=2)
    with pytest.raises(ValueError, match=r"'lyon' has no stored text \(added with add_embeddings"):
        retriever.retrieve("a city in France")
    with pytest.raises(ValueError, match="no stored text"):
        asyncio.run(retriever.aretrieve("a city in France"))
    nodes = [NodeWithScore(node=TextNode(text="Paris")), NodeWithScore(node=TextNode(text=""))]
    with pytest.raises(ValueError, match=r"the documents' texts\[1\] is empty"):
        ColmaxRerank(model=encoder).postprocess_nodes(nodes, query_str="Paris")
