"""Keyword and hybrid search of a ShardedIndex on a real local Ray cluster, against one index
holding the same documents: the same ids, order and scores (fused, MaxSim, BM25) with filters,
after deletes, updates and upserts, because BM25 is computed under the statistics of all shards
and fusion normalises over all shards' candidates. The one stated exception: BM25 counts a
deleted text until compact (FTS5 keeps it), so a sharded index equals a freshly built index of
its live documents only once compacted."""

from __future__ import annotations

import numpy as np
import pytest
from colmax.distributed import ShardedIndex
from colmax.index import Index
from shard_data import WORDS, assert_same_ranking, unit_rows, word_texts

CPUS = 0.2
DIM = 384  # the default model's: text queries are encoded by it
FILTERS = [None, {"g": 2}, {"g": {"in": [0, 1]}}]
QUERIES = ["w3 quasar", "nebula w12 w7 w30", "What is w2 of w5?", "pulsar", "w0 w1 w2"]


def docs(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [unit_rows(rng.standard_normal((int(rng.integers(2, 9)), DIM))) for _ in range(n)]


def meta(i: int) -> dict:
    return {"g": i % 3, **({"title": WORDS[i % 9]} if i % 4 == 0 else {})}


def history(index, vectors, texts, ids) -> None:
    """Adds, deletes, an update and upserts (these encode with the default model)."""
    index.add_embeddings(vectors[:120], ids[:120], [meta(i) for i in range(120)], texts=texts[:120])
    index.delete(ids[:120:7])
    index.add_embeddings(vectors[120:], ids[120:], [meta(i) for i in range(120, len(ids))], texts=texts[120:])
    index.update(ids[121], "quasar nebula pulsar w3 w3 w3")
    # one text per add: the default model's int8 vectors depend slightly on the batch, and a
    # sharded add encodes each shard's share as a batch of its own
    index.add(["pulsar w12 quasar"], ids=[ids[122]], metadata=[{"g": 2}], upsert=True)
    index.add(["a new w7 text"], ids=["fresh"], metadata=[{"g": 0}], upsert=True)
    # documents the model splits into passages: one may bring two passages to a hybrid search
    # (its best by MaxSim and its best by BM25) and must come back once, at its best fused one
    for i in range(3):
        long_text = " ".join(word_texts(30, seed=20 + i))
        index.add([long_text], ids=[f"long{i}"], metadata=[{"g": i}])


@pytest.fixture(scope="module")
def pair(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hybrid")
    n = 180
    vectors, texts, ids = docs(n, seed=11), word_texts(n, seed=12), [f"h{i}" for i in range(n)]
    sharded = ShardedIndex.create(tmp / "sharded", 3, cpus_per_replica=CPUS)
    one = Index.create(tmp / "one")
    for index in (sharded, one):
        history(index, vectors, texts, ids)
    yield sharded, one
    sharded.close()
    one.close()


def ranking(hits) -> list[tuple[str, float]]:
    return [(h.id, h.score) for h in hits]


def same(got, one: Index, query: str, k: int, **options) -> None:
    """``got`` is ``one.search(query, k, **options)``, up to the order of equal scores (broken
    by shard first in a sharded index) at the cut: compared with one index's deeper ranking when
    the depths allow (keyword), else exactly."""
    want = one.search(query, k, **options)
    if options.get("mode") == "keyword":
        assert_same_ranking(ranking(got), ranking(one.search(query, k + 50, **options)), k)
    else:
        assert_same_ranking(ranking(got), ranking(want), k)
    by_id = {h.id: h for h in want}
    for hit in got:
        if hit.id in by_id:
            want_hit = by_id[hit.id]
            assert hit.semantic_score == want_hit.semantic_score
            if want_hit.keyword_score is None:  # semantic mode: no keyword side on either
                assert hit.keyword_score is None
            else:
                assert hit.keyword_score == pytest.approx(want_hit.keyword_score, rel=1e-12)
            assert (hit.metadata, hit.text) == (want_hit.metadata, want_hit.text)


@pytest.mark.parametrize(
    "options", [{}, {"alpha": 0.8, "fusion": "rrf"}, {"alpha": 0.2}, {"mode": "keyword"}]
)
def test_sharded_hybrid_and_keyword_search_equal_one_index(pair, options):
    sharded, one = pair
    assert one.default_mode == "hybrid"
    for query in QUERIES:
        for which, k in ((0, 1), (1, 10), (2, 40), (0, 200)):
            got = sharded.search(query, k, filter=FILTERS[which], **options)
            assert got.complete and len({h.id for h in got}) == len(got)  # each document once
            same(got, one, query, k, filter=FILTERS[which], **options)
    assert any(h.id.startswith("long") for h in sharded.search("w0 w1 w2", 10, **options))
    # texts encoded in one batch (the default model's int8 vectors depend slightly on the batch)
    for got, want in zip(
        sharded.search_batch(QUERIES, 12, **options), one.search_batch(QUERIES, 12, **options)
    ):
        assert_same_ranking(ranking(got), ranking(want), 12)


@pytest.mark.parametrize("k", [5, 400])  # 400 on 3 shards: the documents come in a second call
def test_semantic_hits_name_the_winning_passage_as_one_index(pair, k):
    sharded, one = pair
    words = one.get("long1").text.split()
    for query in ("w0 w1 w2", " ".join(words[-12:-4])):  # the last: a later passage wins
        got, want = sharded.search(query, k, mode="semantic"), one.search(query, k, mode="semantic")
        assert list(got) == want  # ids, scores, metadata, texts, passages and spans
        assert got.complete and len(got) == min(k, len(one))
    assert any(h.passage > 0 and h.passage_text != h.text for h in got)


def test_modes_mixed_in_one_batch(pair):
    sharded, one = pair
    queries = ["w3 quasar", "the of", unit_rows(np.random.default_rng(5).standard_normal((4, DIM)))]
    got = sharded.search_batch(queries, 8)
    want = one.search_batch(queries, 8)
    for g, w in zip(got, want):
        assert ranking(g) == ranking(w)  # hybrid; "the of" has no keyword term: semantic; a matrix: semantic
        assert [(h.semantic_score, h.keyword_score) for h in g] == [
            (h.semantic_score, h.keyword_score) for h in w
        ]
    assert [h.keyword_score for h in got[1]] == [None] * 8
    assert sharded.search("the of", 3, mode="keyword") == []


def test_explain_names_the_keyword_terms_through_shards(pair):
    sharded, one = pair
    for id_ in ("h121", "h5", "fresh"):
        got, want = sharded.explain("quasar and w3, fresh?", id_), one.explain("quasar and w3, fresh?", id_)
        assert got.keyword_terms == want.keyword_terms and got.score == want.score
    assert sharded.explain("quasar w3", "h121").keyword_terms == ["quasar", "w3"]


def test_modes_are_checked_before_any_shard_searches(pair):
    sharded, _ = pair
    with pytest.raises(ValueError, match="mode must be one of"):
        sharded.search("w3", mode="lexical")
    with pytest.raises(ValueError, match="alpha and fusion apply to hybrid searches"):
        sharded.search("w3", mode="keyword", alpha=0.3)
    with pytest.raises(ValueError, match="alpha"):
        sharded.search("w3", alpha=1.5)
    with pytest.raises(TypeError, match="needs a text query"):
        sharded.search(unit_rows(np.ones((2, DIM))), mode="hybrid")
    assert sharded.info()["keyword_index"] is True


def test_equal_to_a_fresh_index_of_the_live_documents_once_compacted(ray_local, tmp_path):
    """Before compact the sharded BM25 still counts the deleted texts (as one index with the same
    history does), so it differs from an index built fresh from the live documents; after
    compact it equals it."""
    n = 90
    vectors, texts, ids = docs(n, seed=21), word_texts(n, seed=22), [f"c{i}" for i in range(n)]
    gone = set(ids[::3])
    with ShardedIndex.create(tmp_path / "s", 2, cpus_per_replica=CPUS) as sharded:
        sharded.add_embeddings(vectors, ids, [meta(i) for i in range(n)], texts=texts)
        sharded.delete(sorted(gone))
        live = [i for i in range(n) if ids[i] not in gone]
        fresh = Index.create(tmp_path / "fresh")
        fresh.add_embeddings(
            [vectors[i] for i in live],
            [ids[i] for i in live],
            [meta(i) for i in live],
            texts=[texts[i] for i in live],
        )
        before = sharded.search("w3 quasar", 10, mode="keyword")
        want = fresh.search("w3 quasar", 10, mode="keyword")
        assert {h.id for h in before} <= {ids[i] for i in live}
        assert [h.score for h in before] != pytest.approx([h.score for h in want], rel=1e-9)
        sharded.compact()
        for options in ({"mode": "keyword"}, {}, {"fusion": "rrf"}):
            for query in QUERIES:
                same(sharded.search(query, 10, **options), fresh, query, 10, **options)


def test_add_keyword_index_to_a_sharded_root(ray_local, tmp_path):
    n = 40
    vectors, texts, ids = docs(n, seed=31), word_texts(n, seed=32), [f"k{i}" for i in range(n)]
    with ShardedIndex.create(tmp_path / "s", 2, keyword=False, cpus_per_replica=CPUS) as sharded:
        one = Index.create(tmp_path / "one", keyword=False)
        for index in (sharded, one):
            index.add_embeddings(vectors, ids, [meta(i) for i in range(n)], texts=texts)
        assert sharded.info()["keyword_index"] is False
        assert ranking(sharded.search("w3 w5", 5)) == ranking(one.search("w3 w5", 5))  # semantic
        assert sharded.search("w3 w5", 5)[0].keyword_score is None
        with pytest.raises(ValueError, match=r"add_keyword_index\(\)"):
            sharded.search("w3 w5", 5, mode="hybrid")
        generation = sharded.generation
        for index in (sharded, one):
            index.add_keyword_index()
        assert sharded.generation == generation + 1 and sharded.info()["keyword_index"] is True
        for options in ({}, {"mode": "keyword"}):
            same(sharded.search("w3 w5 quasar", 5, **options), one, "w3 w5 quasar", 5, **options)
        assert sharded.search("w3 w5", 5)[0].keyword_score is not None  # hybrid by default now


def test_int8_shards_equal_one_int8_index(ray_local, tmp_path):
    n = 60
    vectors, texts, ids = docs(n, seed=41), word_texts(n, seed=42), [f"q{i}" for i in range(n)]
    with ShardedIndex.create(tmp_path / "s", 2, storage="int8", cpus_per_replica=CPUS) as sharded:
        one = Index.create(tmp_path / "one", storage="int8")
        for index in (sharded, one):
            index.add_embeddings(vectors, ids, [meta(i) for i in range(n)], texts=texts)
        info = sharded.info()
        assert sharded.storage == info["storage"] == one.info()["storage"] == "int8"
        assert {s["bytes_per_token"] for s in info["shards"]} == {DIM + 4}  # a byte a value, a scale
        for options in ({}, {"mode": "semantic"}, {"fusion": "rrf"}):
            for query in QUERIES[:3]:
                same(sharded.search(query, 10, **options), one, query, 10, **options)
        got, want = sharded.explain("quasar w3", "q5"), one.explain("quasar w3", "q5")
        assert got.score == want.score and got.keyword_terms == want.keyword_terms
        # explain scores the stored int8 rows (times their scales) with the float32 query, the
        # search quantizes each query token too (32 levels a side)
        hit = {h.id: h for h in one.search("quasar w3", n, mode="semantic")}["q5"]
        assert got.score == pytest.approx(hit.score, abs=5e-2)


def test_hybrid_hits_come_with_their_documents(pair, monkeypatch):
    """A keyword or hybrid search takes no call after fusing for its final hits' documents:
    each shard sent those of its candidates that could reach the top k (``contenders``)."""
    sharded, one = pair
    fetched = []
    fetch = ShardedIndex._documents

    def documents(self, wanted):
        fetched.extend(wanted)
        return fetch(self, wanted)

    monkeypatch.setattr(ShardedIndex, "_documents", documents)
    for options in ({}, {"mode": "keyword"}, {"alpha": 0.8, "fusion": "rrf"}):
        for query in QUERIES:
            got = sharded.search(query, 10, filter=FILTERS[1], **options)
            same(got, one, query, 10, filter=FILTERS[1], **options)
    assert not fetched
    got = sharded.search("w3 quasar", 400)  # 400 on 3 shards: past DOCUMENTS_WITH_HITS
    same(got, one, "w3 quasar", 400)
    assert len(fetched) == len(got)


def test_a_shard_read_too_shallow_is_asked_again(pair, monkeypatch):
    """Each shard sends its own BM25 ranking read twice as deep as the hits need; where that may
    miss one of its best under the statistics of all shards (``rescore``), the coordinator asks
    that shard again under them, and the ranking is still one index's. The queries that need it
    are found by asking the shards' indexes directly, as the coordinator would."""
    from colmax.distributed import replicas
    from colmax.distributed.hybrid import rescore

    sharded, one = pair
    parts = [Index.open(sharded.path / s.path, generation=s.generation) for s in sharded._root.shards]
    found = []
    for first in range(0, len(WORDS) - 2):
        for k in (1, 3, 10):
            text = " ".join(WORDS[first : first + 3])
            answers = {s: p.candidates(text, k, mode="keyword", counts=True) for s, p in enumerate(parts)}
            if rescore(answers, "keyword", k)[2]:
                found.append((text, k))
    for part in parts:
        part.close()
    assert found
    asked = []
    submit = replicas.FanOut.submit

    def spy(self, method, *args, **options):
        if options.get("shards") is not None:
            asked.append(method)
        return submit(self, method, *args, **options)

    monkeypatch.setattr(replicas.FanOut, "submit", spy)
    for text, k in found[:5]:
        got = sharded.search(text, k, mode="keyword")
        assert_same_ranking(ranking(got), ranking(one.search(text, k + 50, mode="keyword")), k)
    assert asked and set(asked) == {"candidates"}
