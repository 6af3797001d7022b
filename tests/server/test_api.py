"""The JSON API over real HTTP: every endpoint answers what the index answers in-process, and
colmax.Client mirrors Index."""

from __future__ import annotations

import colmax
import numpy as np
import pytest
from colmax.index import Index
from serving import QUESTION, Server, build_demo_index, free_port

QUERIES = [QUESTION, "tallest mountain in the world", "programming languages"]


@pytest.fixture(scope="module")
def local(demo_path):
    with Index.open(demo_path) as index:
        yield index


@pytest.fixture(scope="module")
def client(server):
    return colmax.Client(server.url, index="demo")


def test_health_and_indexes(server, local):
    status, _, body = server.request("GET", "/health")
    assert status == 200
    assert body["version"] == colmax.__version__ and body["isa"] == colmax.active_isa()
    assert body["indexes"]["demo"] == {"documents": len(local), "generation": local.generation}
    assert set(body["indexes"]) == {"demo", "scratch"}
    status, _, listed = server.request("GET", "/indexes")
    assert status == 200 and listed["demo"] == body["indexes"]["demo"]
    status, _, info = server.request("GET", "/indexes/demo")
    assert status == 200
    assert info == {"name": "demo", **local.info()}  # the facts `colmax info` prints


def test_openapi_schema_lists_every_route(server):
    status, _, schema = server.request("GET", "/openapi.json")
    assert status == 200
    paths = schema["paths"]
    for path, method in [
        ("/health", "get"),
        ("/indexes", "get"),
        ("/indexes/{name}", "get"),
        ("/indexes/{name}/search", "post"),
        ("/indexes/{name}/explain", "post"),
        ("/indexes/{name}/documents", "post"),
        ("/indexes/{name}/documents", "delete"),
        ("/indexes/{name}/documents/{id}", "get"),
        ("/encode", "post"),
    ]:
        assert method in paths[path], (path, method)
    status, _, page = server.request("GET", "/docs")
    assert status == 200 and b"swagger" in page.lower()


@pytest.mark.parametrize("k", [1, 5, 100])
def test_search_is_index_search(client, local, k):
    for query in QUERIES:
        assert client.search(query, k=k) == local.search(query, k=k)  # ids, scores, metadata, text


def test_search_options_and_batch(client, local, server):
    flt = {"topic": {"in": ["capital", "mountain"]}}
    assert client.search(QUESTION, k=4, filter=flt) == local.search(QUESTION, k=4, filter=flt)
    assert client.search_batch(QUERIES, k=3) == local.search_batch(QUERIES, k=3)
    status, _, body = server.request("POST", "/indexes/demo/search", {"queries": QUERIES, "k": 2})
    assert status == 200 and len(body["results"]) == 3 and body["generation"] == local.generation
    assert [h["id"] for h in body["results"][0]] == [h.id for h in local.search(QUESTION, k=2)]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mode": "semantic"},
        {"mode": "keyword"},
        {"mode": "hybrid", "alpha": 0.3},
        {"fusion": "rrf"},
        {"mode": "hybrid", "alpha": 1, "fusion": "minmax", "filter": {"topic": "capital"}},
    ],
)
def test_search_modes_are_index_search(client, local, server, options):
    """`mode`, `alpha` and `fusion` over HTTP give Index.search's hits: ids, the score ranked by,
    both sides' scores (semantic_score, keyword_score), metadata, text."""
    for query in QUERIES:
        want = local.search(query, k=5, **options)
        assert client.search(query, k=5, **options) == want
        status, _, out = server.request("POST", "/indexes/demo/search", {"query": query, "k": 5, **options})
        assert status == 200
        assert [(h["id"], h["score"], h["semantic_score"], h["keyword_score"]) for h in out["hits"]] == [
            (h.id, h.score, h.semantic_score, h.keyword_score) for h in want
        ]
    assert client.search_batch(QUERIES, k=3, **options) == local.search_batch(QUERIES, k=3, **options)


def test_search_mode_errors_are_index_errors(server):
    for body, code, words in [
        ({"mode": "semantic", "alpha": 0.5}, "invalid_argument", "alpha and fusion apply to hybrid searches"),
        (
            {"mode": "keyword", "fusion": "rrf"},
            "invalid_argument",
            "alpha and fusion apply to hybrid searches",
        ),
        ({"alpha": 1.5}, "invalid_argument", "alpha (the semantic side's weight) must be from 0 to 1"),
        ({"mode": "fuzzy"}, "invalid_request", "mode"),
        ({"fusion": "max"}, "invalid_request", "fusion"),
        ({"alpha": "high"}, "invalid_request", "alpha"),
    ]:
        status, _, out = server.request("POST", "/indexes/demo/search", {"query": QUESTION, **body})
        assert status == 422 and out["error"]["code"] == code and words in out["error"]["message"], out
    # null is as good as absent
    status, _, out = server.request(
        "POST", "/indexes/demo/search", {"query": QUESTION, "k": 3, "mode": None, "fusion": None}
    )
    assert status == 200 and out["hits"][0]["keyword_score"] is not None  # hybrid by default


def test_plaid_knobs_reach_a_plaid_index(tmp_path):
    path = build_demo_index(tmp_path / "plaid", kind="plaid")
    srv = Server(tmp_path, f"p={path}").start()
    try:
        client = colmax.Client(srv.url)  # the only index: picked without a name
        with Index.open(path) as local:
            for options in ({}, {"nprobe": 1, "ncandidates": 4}, {"exact": True}):
                assert client.search(QUESTION, k=5, **options) == local.search(QUESTION, k=5, **options)
            want = local.explain(QUESTION, "capital-france")
        got = client.explain(QUESTION, "capital-france")
        assert got.doc_tokens == want.doc_tokens and got.doc_spans == want.doc_spans
    finally:
        srv.stop()


def test_an_int8_index_is_served_as_in_process(tmp_path):
    path = build_demo_index(tmp_path / "int8", storage="int8")
    srv = Server(tmp_path, f"q={path}").start()
    try:
        client = colmax.Client(srv.url)
        with Index.open(path) as local:
            status, _, info = srv.request("GET", "/indexes/q")
            assert status == 200 and info["storage"] == "int8" and info == {"name": "q", **local.info()}
            for options in ({}, {"mode": "semantic"}, {"mode": "keyword"}):
                assert client.search(QUESTION, k=5, **options) == local.search(QUESTION, k=5, **options)
            want = local.explain(QUESTION, "capital-france")
        got = client.explain(QUESTION, "capital-france")
        assert (got.score, got.doc_tokens) == (want.score, want.doc_tokens)
    finally:
        srv.stop()


def test_explain_is_index_explain(client, local, server):
    want = local.explain(QUESTION, "capital-france")
    got = client.explain(QUESTION, "capital-france")
    np.testing.assert_array_equal(got.similarity, want.similarity)
    np.testing.assert_array_equal(got.doc_token, want.doc_token)
    assert (got.id, got.score, got.query_tokens, got.doc_tokens) == (
        want.id,
        want.score,
        want.query_tokens,
        want.doc_tokens,
    )
    assert got.doc_spans == want.doc_spans
    # each span is where its token is in the stored text
    text = local.get("capital-france").text
    for token, span in zip(got.doc_tokens, got.doc_spans):
        assert (span is None) == token.startswith("[")
        if span is not None:
            assert text[span[0] : span[1]].lower() == token
    # search with explain: the same explanation under each hit
    status, _, body = server.request(
        "POST", "/indexes/demo/search", {"query": QUESTION, "k": 2, "explain": True}
    )
    assert status == 200
    first = body["hits"][0]
    assert first["id"] == "capital-france" and first["explanation"]["doc_spans"] == [
        list(s) if s else None for s in want.doc_spans
    ]


def test_get_is_index_get(client, local):
    want, got = local.get("capital-italy"), client.get("capital-italy")
    assert (got.id, got.text, got.metadata) == (want.id, want.text, want.metadata)
    assert got.embeddings.dtype == np.float32
    np.testing.assert_array_equal(got.embeddings, want.embeddings)


def test_encode_matches_the_encoder(client, local, server):
    texts = ["What is the capital of France?", "Bananas are yellow."]
    for kind, encode in (
        ("query", local.encoder.encode_queries),
        ("document", local.encoder.encode_documents),
    ):
        got, want = client.encode(texts, kind=kind), encode(texts)
        np.testing.assert_array_equal(got.offsets, want.offsets)
        np.testing.assert_allclose(got.tokens, want.tokens, atol=1e-6)
    # one served index is not enough to leave `index` out when several are served
    status, _, body = server.request("POST", "/encode", {"texts": texts})
    assert status == 422 and body["error"]["code"] == "index_required"


def test_client_needs_a_name_when_several_indexes_are_served(server):
    with pytest.raises(ValueError, match="serves 2 indexes"):
        colmax.Client(server.url).search(QUESTION)


def test_writes_round_trip(server):
    client = colmax.Client(server.url, index="scratch")
    before = len(client)
    ids = client.add(
        ["Lisbon is the capital of Portugal.", "Porto is famous for its wine."],
        ids=["rt-lisbon", "rt-porto"],
        metadata=[{"topic": "capital"}, None],
    )
    assert ids == ["rt-lisbon", "rt-porto"] and len(client) == before + 2
    hits = client.search("What is the capital of Portugal?", k=1)  # an acknowledged add is searchable
    assert hits[0].id == "rt-lisbon" and hits[0].metadata == {"topic": "capital"}
    with pytest.raises(ValueError, match="already in the index") as error:
        client.add(["Lisbon again"], ids=["rt-lisbon"])
    assert error.value.status == 422
    client.add(["Lisbon, on the Tagus, is Portugal's capital."], ids=["rt-lisbon"], upsert=True)
    assert client.get("rt-lisbon").text == "Lisbon, on the Tagus, is Portugal's capital."
    assert len(client) == before + 2
    generated = client.add(["A document without an id."])
    assert len(generated) == 1 and client.get(generated[0]).text == "A document without an id."
    with pytest.raises(KeyError, match="nope") as error:
        client.delete(["rt-porto", "nope"])  # all or nothing
    assert error.value.status == 404 and client.get("rt-porto").id == "rt-porto"
    client.delete(["rt-lisbon", "rt-porto", *generated])
    assert len(client) == before
    with pytest.raises(KeyError):
        client.get("rt-lisbon")


def test_a_long_document_comes_back_with_its_winning_passage(server, scratch_path):
    """A document split into passages: search, explain and get over HTTP carry the passage and
    its span as Index does in-process."""
    client = colmax.Client(server.url, index="scratch")
    filler = " ".join(f"Paragraph {i} is about nothing in particular, only filler words." for i in range(40))
    text = filler + " The kakapo is a flightless parrot that lives in New Zealand."
    client.add([text], ids=["long-kakapo"])
    try:
        query = "flightless parrot of New Zealand"
        with Index.open(scratch_path) as local:
            want = local.search(query, k=1)[0]
            explained = local.explain(query, "long-kakapo")
            spans = local.get("long-kakapo").spans
        got = client.search(query, k=1)[0]
        assert got == want and got.id == "long-kakapo" and got.passage > 0
        assert "kakapo" in got.passage_text and got.text == text
        status, _, out = server.request("POST", "/indexes/scratch/search", {"query": query, "k": 1})
        assert status == 200 and out["hits"][0]["span"] == list(want.span)
        remote = client.explain(query, "long-kakapo")
        assert (remote.passage, remote.span) == (explained.passage, explained.span)
        assert len(spans) > 1 and client.get("long-kakapo").spans == spans
    finally:
        client.delete("long-kakapo")


def test_ids_with_slashes_and_unicode(server):
    client = colmax.Client(server.url, index="scratch")
    weird = "a/b/../c ü %2F?#"
    client.add(["A document whose id needs quoting."], ids=[weird])
    try:
        assert client.get(weird).id == weird
    finally:
        client.delete(weird)


def test_a_commit_of_another_process_is_served_without_restart(server, scratch_path):
    client = colmax.Client(server.url, index="scratch")
    with Index.open(scratch_path) as other:  # this test process is another writer
        other.add(["Reykjavik is the capital of Iceland."], ids=["other-process"])
        generation = other.generation
    try:
        assert client.search("capital of Iceland", k=1)[0].id == "other-process"
        assert client.indexes()["scratch"]["generation"] >= generation
    finally:
        client.delete("other-process")


def test_client_errors():
    with pytest.raises(ValueError, match="http://"):
        colmax.Client("localhost:8000")
    port = free_port()
    with pytest.raises(ConnectionError, match="cannot reach"):
        colmax.Client(f"http://127.0.0.1:{port}", index="x", timeout=5).search("hello")
