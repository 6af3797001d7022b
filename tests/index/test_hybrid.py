"""Keyword (FTS5 BM25) and hybrid search: scores against independent references, both sides
completed, fusion, filters, hostile query text, old indexes and their upgrade, verification."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import time
import warnings

import numpy as np
import pytest
from colmax.index import Index, IndexFormatError, fusion, hybrid, keyword, search
from colmax.index.files import MANIFEST
from colmax.index.manifest import FORMAT_VERSION, body_checksum
from colmax.index.query import Plan

DIM = 16
VOCAB = [f"t{i}" for i in range(30)]  # terms the porter stemmer leaves as they are


def random_docs(n, seed=0):
    rng = np.random.default_rng(seed)
    docs, texts = [], []
    for _ in range(n):
        m = rng.standard_normal((int(rng.integers(2, 10)), DIM)).astype(np.float32)
        docs.append(m / np.linalg.norm(m, axis=1, keepdims=True))
        texts.append(" ".join(rng.choice(VOCAB, size=int(rng.integers(1, 12)))))
    return docs, texts


def unit_query(seed=7, n=4):
    q = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@pytest.fixture
def lexical(tmp_path):
    """An embeddings-only index whose documents carry texts (and some a title)."""
    docs, texts = random_docs(60)
    ids = [f"d{i}" for i in range(60)]
    meta = [{"group": i % 3, **({"title": VOCAB[i % 5]} if i % 4 == 0 else {})} for i in range(60)]
    index = Index.create(tmp_path / "ix", dim=DIM, storage="float32")  # MaxSim checked to 1e-5
    index.add_embeddings(docs[:30], ids[:30], meta[:30], texts=texts[:30])
    index.add_embeddings(docs[30:], ids[30:], meta[30:], texts=texts[30:])
    return index, docs, texts, meta


def bm25_reference(texts, titles, terms, k1=1.2, b=0.75):
    """FTS5's bm25() written out (fts5_aux.c): per term IDF log((N - n + 0.5) / (n + 0.5)),
    floored at 1e-6; term frequency and length over title and text together."""
    tokens = [(title or "").split() + text.split() for text, title in zip(texts, titles)]
    n_docs = len(tokens)
    avgdl = sum(len(t) for t in tokens) / n_docs
    scores = np.zeros(n_docs)
    for term in terms:
        hits = sum(term in t for t in tokens)
        idf = max(math.log((n_docs - hits + 0.5) / (hits + 0.5)), 1e-6)
        for i, t in enumerate(tokens):
            tf = t.count(term)
            scores[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(t) / avgdl))
    return scores


def reference_maxsim(q, docs):
    return np.array([(q @ d.T).max(axis=1).sum() for d in docs])


# -- query text ----------------------------------------------------------------------------------


def test_query_terms():
    assert keyword.query_terms("What is THE capital of France? capital!") == ["what", "capital", "france"]
    assert keyword.query_terms("the of and to") == []
    assert keyword.query_terms('a "NEAR(x y)" b:c*') == ["near", "x", "y", "b", "c"]
    assert keyword.query_terms("Москва и 東京タワー") == ["москва", "и", "東京タワー"]
    assert keyword.match_expression([]) is None
    assert keyword.match_expression(["near", "x"]) == '"near" OR "x"'


HOSTILE = [
    '"',
    '""',
    '"unbalanced quote',
    "AND",
    "OR",
    "NOT",
    "t1 AND t2 OR NOT t3",
    "NEAR(t1 t2, 2)",
    "t1 NEAR t2",
    "*",
    "t1*",
    "title:t1",
    ":",
    "()",
    "(t1 OR",
    "^t1",
    "-t1 +t2",
    "{t1 t2}: t3",
    "the of and a",
    "?!.,;:'\"()[]{}<>-_=+*/\\|~`@#$%^&",
    "t1 " * 2500,  # 10,000 characters
    "x" * 10_000,
    "Москва столица России",
    "東京タワーはどこですか",
    "مرحبا بالعالم",
    "🙂🙂 t2 🙂",
    "t1\x00t2",
    "\ud800 t3",  # a lone surrogate: not valid UTF-8
    "\u0301t4",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_query_text_never_reaches_fts5_as_syntax(lexical, text):
    index, _, _, _ = lexical
    if "\ud800" in text:
        with pytest.raises(ValueError, match="lone surrogate"):
            index.search(text, k=5, mode="keyword")
        return
    hits = index.search(text, k=5, mode="keyword")
    terms = keyword.query_terms(text)
    if not terms:
        assert hits == []
    assert all(h.keyword_score > 0 for h in hits)
    # the same terms, typed plainly, find the same documents
    if terms:
        assert [h.id for h in hits] == [h.id for h in index.search(" ".join(terms), k=5, mode="keyword")]


def test_keyword_scores_are_bm25(lexical):
    index, _, texts, meta = lexical
    titles = [m.get("title") for m in meta]
    terms = ["t3", "t7", "t11"]
    want = bm25_reference(texts, titles, terms)
    hits = index.search("t3 t7, t11?", k=60, mode="keyword")
    assert {h.id for h in hits} == {f"d{i}" for i in np.flatnonzero(want > 0)}
    for h in hits:
        assert h.score == h.keyword_score and h.semantic_score is None
        assert h.score == pytest.approx(want[int(h.id[1:])], rel=1e-9)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hybrid_candidates_carry_both_scores_computed(lexical):
    index, docs, texts, meta = lexical
    snap = index._snapshot
    q = unit_query()
    where = hybrid.scope(snap, None)
    sides = hybrid.side_scores(snap, "t2 t9", q, 1, where, None, None, depths=(8, 6))
    maxsim = reference_maxsim(q, docs)
    bm25 = bm25_reference(texts, [m.get("title") for m in meta], ["t2", "t9"])
    top_semantic = set(np.argsort(-maxsim, kind="stable")[:8])
    top_keyword = set([i for i in np.lexsort((np.arange(60), -bm25)) if bm25[i] > 0][:6])
    assert set(sides.positions.tolist()) == top_semantic | top_keyword
    assert top_keyword - top_semantic and top_semantic - top_keyword  # some found by one side only
    assert set(hybrid.side_scores(snap, "t2 t9", q, 10, where, None, None, depths=(8, 6)).positions) > (
        top_semantic | top_keyword
    )  # at least k from each side
    np.testing.assert_allclose(sides.semantic, maxsim[sides.positions], rtol=1e-5)
    np.testing.assert_allclose(sides.keyword, bm25[sides.positions], rtol=1e-9)


def test_hybrid_fuses_and_reports_both_sides(lexical):
    index, _, _, _ = lexical
    snap = index._snapshot
    q = unit_query()
    sides = hybrid.side_scores(snap, "t2 t9", q, 10, hybrid.scope(snap, None), None, None)
    for method, alpha in [("minmax", 0.6), ("minmax", 0.25), ("rrf", 0.5)]:
        fused = fusion.fuse(method, sides.semantic, sides.keyword, alpha)
        order = np.lexsort((sides.positions, -fused))[:10]
        want = [f"d{p}" for p in sides.positions[order]]
        how = hybrid.Mode("hybrid", alpha, method)
        hits = hybrid.search(snap, "t2 t9", lambda: q, 10, hybrid.scope(snap, None), None, how, None)
        assert [h.id for h in hits] == want
        for h, i in zip(hits, order):
            assert h.score == pytest.approx(fused[i]) and h.semantic_score == pytest.approx(sides.semantic[i])
            assert h.keyword_score == pytest.approx(sides.keyword[i])


def test_fusion_functions():
    semantic = np.array([3.0, 1.0, 2.0, 2.0])
    keyword_ = np.array([0.0, 5.0, 1.0, 0.0])
    np.testing.assert_allclose(fusion.normalized(semantic), [1.0, 0.0, 0.5, 0.5])
    np.testing.assert_allclose(fusion.normalized(np.array([2.0, 2.0])), [0.0, 0.0])
    assert fusion.normalized(np.zeros(0)).size == 0
    np.testing.assert_allclose(fusion.minmax(semantic, keyword_, 1.0), fusion.normalized(semantic))
    np.testing.assert_allclose(fusion.minmax(semantic, keyword_, 0.0), [0.0, 1.0, 0.2, 0.0])
    np.testing.assert_array_equal(fusion.ranks(semantic), [1, 4, 2, 2])
    k = fusion.RRF_K
    want = [0.5 / (k + 1), 0.5 / (k + 4) + 0.5 / (k + 1), 0.5 / (k + 2) + 0.5 / (k + 2), 0.5 / (k + 2)]
    np.testing.assert_allclose(fusion.rrf(semantic, keyword_, 0.5), want)
    with pytest.raises(ValueError, match="fusion must be one of"):
        fusion.fuse("sum", semantic, keyword_, 0.5)


def test_alpha_one_is_the_semantic_ranking_and_zero_the_keyword_one(lexical):
    index, _, _, _ = lexical
    snap = index._snapshot
    q, text, where = unit_query(3), "t4 t5 t6", hybrid.scope(snap, None)

    def fused(alpha):
        how = hybrid.Mode("hybrid", alpha, "minmax")
        return [h.id for h in hybrid.search(snap, text, lambda: q, 10, where, None, how, None)]

    assert fused(1.0) == [h.id for h in index.search(q, k=10)]
    assert fused(0.0) == [h.id for h in index.search(text, k=10, mode="keyword")]


def test_filters_apply_to_both_sides(lexical):
    index, _, _, _ = lexical
    snap = index._snapshot
    where = hybrid.scope(snap, {"group": 1})
    sides = hybrid.side_scores(snap, "t1 t2 t3", unit_query(), 5, where, None, None)
    assert all(p % 3 == 1 for p in sides.positions.tolist())
    hits = index.search("t1 t2 t3", k=60, mode="keyword", filter={"group": {"in": [0, 2]}})
    assert hits and all(h.metadata["group"] in (0, 2) for h in hits)
    index.delete(["d3", "d6"])
    assert not {"d3", "d6"} & {h.id for h in index.search(" ".join(VOCAB), k=60, mode="keyword")}
    snap = index._snapshot
    nothing = hybrid.scope(snap, {"group": 99})
    how = hybrid.Mode("hybrid", 0.5, "minmax")
    assert hybrid.search(snap, "t1 t2", unit_query, 5, nothing, None, how, None) == []


def test_a_reader_keeps_its_commit_on_both_sides(lexical):
    index, _, _, _ = lexical
    reader = Index.open(index.path, auto_reload=False)
    everything = " ".join(VOCAB)
    before = {h.id for h in reader.search(everything, k=60, mode="keyword")}
    index.delete(["d1", "d40"])
    index.add_embeddings(random_docs(3, seed=9)[0], ["n1", "n2", "n3"], texts=[everything] * 3)
    # the same documents (BM25 statistics are the store's: they now count the new ones)
    assert {h.id for h in reader.search(everything, k=60, mode="keyword")} == before
    filtered = reader.search(everything, k=60, mode="keyword", filter={"group": 1})
    assert {h.id for h in filtered} == {i for i in before if int(i[1:]) % 3 == 1}
    reader.reload()
    found = {h.id for h in reader.search(everything, k=100, mode="keyword")}
    assert found == before - {"d1", "d40"} | {"n1", "n2", "n3"}


def test_mode_arguments_are_checked(lexical):
    index, _, _, _ = lexical
    q = unit_query()
    for bad in ({"mode": "fuzzy"}, {"alpha": 1.5}, {"alpha": True}, {"alpha": "0.5"}, {"fusion": "sum"}):
        with pytest.raises(ValueError):
            index.search("t1", **{"mode": "hybrid", **bad})
    with pytest.raises(ValueError, match="apply to hybrid"):
        index.search(q, alpha=0.5)  # a matrix query is searched semantically
    with pytest.raises(TypeError, match="needs a text query"):
        index.search(q, mode="hybrid")
    with pytest.raises(TypeError, match="needs a text query"):
        index.search_batch([q], mode="keyword")
    assert index.search(q, k=3) == index.search(q, k=3, mode="semantic")
    assert all(h.semantic_score == h.score and h.keyword_score is None for h in index.search(q, k=3))


def test_search_batch_equals_search(lexical):
    index, _, _, _ = lexical
    texts = ["t1 t2", "the of", "t29 t0 t13"]
    batch = index.search_batch(texts, k=6, mode="keyword", filter={"group": 2})
    assert batch == [index.search(t, k=6, mode="keyword", filter={"group": 2}) for t in texts]
    assert batch[1] == [] and batch[0]


def test_index_created_without_keyword_index(tmp_path):
    index = Index.create(tmp_path / "ix", dim=DIM, keyword=False)
    docs, texts = random_docs(10)
    index.add_embeddings(docs, [f"d{i}" for i in range(10)], texts=texts)
    assert index.info()["keyword_index"] is False
    with pytest.raises(ValueError, match=r"add_keyword_index\(\)"):
        index.search("t1", mode="keyword")
    assert index.explain(unit_query(), "d1").keyword_terms is None
    gen = index.generation
    index.add_keyword_index()
    assert index.generation == gen + 1 and index.info()["keyword_index"] is True
    index.add_keyword_index()  # nothing to do
    assert index.generation == gen + 1
    index.verify()
    assert index.search("t1 t2", k=10, mode="keyword")


def test_index_of_format_3_searches_as_before_and_upgrades(tmp_path):
    """An index written before keyword indexes (format 3: no "keyword" in the manifest, no FTS5
    table in the store) opens and searches semantically, unchanged; add_keyword_index adds it."""
    path = tmp_path / "v3"
    index = Index.create(path, dim=DIM, keyword=False)
    docs, texts = random_docs(20)
    ids = [f"d{i}" for i in range(20)]
    index.add_embeddings(docs, ids, [{"n": i} for i in range(20)], texts=texts)
    index.delete(["d4"])
    q = unit_query()
    before = index.search(q, k=10)
    index.close()
    body = json.loads((path / MANIFEST).read_text())
    body["format_version"] = 3
    del body["keyword"]
    body["checksum"] = body_checksum(body)
    (path / MANIFEST).write_text(json.dumps(body))
    old = Index.open(path)
    assert old.search(q, k=10) == before and old.info()["keyword_index"] is False
    with pytest.raises(ValueError, match=r"add_keyword_index\(\)"):
        old.search("t1", mode="hybrid")
    old.add_keyword_index()
    assert old.search(q, k=10) == before
    found = {h.id for h in old.search(" ".join(VOCAB), k=20, mode="keyword")}
    assert found == set(ids) - {"d4"}
    reopened = Index.open(path)
    assert json.loads((path / MANIFEST).read_text())["format_version"] == FORMAT_VERSION
    reopened.verify()


def test_compact_carries_the_keyword_index_over(lexical):
    index, _, texts, meta = lexical
    index.delete([f"d{i}" for i in range(0, 60, 2)])
    before = {h.id for h in index.search("t5 t8", k=60, mode="keyword")}
    index.compact()
    index.verify()
    after = index.search("t5 t8", k=60, mode="keyword")
    assert {h.id for h in after} == before  # the same documents, scored with the live ones' statistics
    live = [i for i in range(60) if i % 2]
    want = bm25_reference([texts[i] for i in live], [meta[i].get("title") for i in live], ["t5", "t8"])
    for h in after:
        assert h.score == pytest.approx(want[live.index(int(h.id[1:]))], rel=1e-9)


def _segments_merged(index: Index) -> bool:
    """Whether the keyword table is one merged segment: FTS5's 'optimize' then changes nothing."""
    with sqlite3.connect(index._snapshot.store.path) as conn:
        data = "SELECT count(*), sum(length(block)), group_concat(id) FROM keyword_data"
        before = conn.execute(data).fetchone()
        conn.execute("INSERT INTO keyword(keyword) VALUES ('optimize')")
        return conn.execute(data).fetchone() == before


def test_writes_that_double_the_keyword_table_merge_its_segments(tmp_path):
    """A write indexing at least half of the keyword table's rows leaves it one segment (a
    query walks each segment); smaller writes leave merging to FTS5."""
    docs, texts = random_docs(80, seed=5)
    ids = [f"d{i}" for i in range(80)]
    index = Index.create(tmp_path / "ix", dim=DIM)
    index.add_embeddings(docs[:8], ids[:8], texts=texts[:8])
    assert _segments_merged(index)  # the table's first rows: all of it
    for i in range(8, 14):  # one row each: a segment each, under half the table
        index.add_embeddings(docs[i : i + 1], ids[i : i + 1], texts=texts[i : i + 1])
    assert not _segments_merged(index)
    for i in range(8, 14):
        index.add_embeddings(docs[i : i + 1], [f"e{i}"], texts=texts[i : i + 1])
    index.add_embeddings(docs[14:80], ids[14:80], texts=texts[14:80])  # 66 of 86 rows
    assert _segments_merged(index)
    index.delete(ids[:60])
    index.compact()  # one write of every live row
    assert _segments_merged(index)
    index.verify()


def test_verify_finds_a_keyword_index_out_of_step(lexical):
    index, _, texts, meta = lexical
    index.verify()
    conn = sqlite3.connect(index.path / index._snapshot.manifest.store)
    try:
        # forget document 5's row from the keyword index only, as a broken writer would
        conn.execute(
            "INSERT INTO keyword(keyword, rowid, title, text) VALUES ('delete', 5, ?, ?)",
            (meta[5].get("title"), texts[5]),
        )
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(IndexFormatError, match="keyword index disagrees"):
        index.verify()


def test_a_missing_keyword_table_is_damage(lexical):
    index, _, _, _ = lexical
    path, store = index.path, index._snapshot.manifest.store
    index.close()
    conn = sqlite3.connect(path / store)
    conn.execute("DROP TABLE keyword")
    conn.commit()
    conn.close()
    with pytest.raises(IndexFormatError, match="keyword index is missing"):
        Index.open(path)


def test_texts_of_add_embeddings_are_checked(tmp_path):
    index = Index.create(tmp_path / "ix", dim=DIM)
    docs, _ = random_docs(2)
    with pytest.raises(ValueError, match="one per document"):
        index.add_embeddings(docs, ["a", "b"], texts=["only one"])
    with pytest.raises(TypeError):
        index.add_embeddings(docs, ["a", "b"], texts="ab")
    assert len(index) == 0


def test_plaid_hybrid_scores_keyword_candidates_as_its_last_stage(tmp_path):
    docs, texts = random_docs(300, seed=5)
    ids = [f"d{i}" for i in range(300)]
    for storage in (None, "float32", "int8"):
        index = Index.create(
            tmp_path / f"p{storage}", dim=DIM, kind="plaid", n_centroids=16, nbits=4, storage=storage
        )
        index.add_embeddings(docs, ids, texts=texts)
        q = unit_query(11)
        snap = index._snapshot
        plan = Plan(nprobe=1, ncandidates=20)
        where = hybrid.scope(snap, None)
        sides = hybrid.side_scores(snap, "t7 t8", q, 10, where, plan, None, depths=(10, 10))
        # every document through the staged search's last stage (all centroids probed, none cut)
        staged = {h.id: h.score for h in index.search(q, k=300, nprobe=16, ncandidates=300)}
        exact = {h.id: h.score for h in index.rerank(q, [f"d{p}" for p in sides.positions.tolist()])}
        # the staged search scored the keyword candidates in its last stage: exactly as a second
        # search over them alone scores them
        want = dict(zip(*search.rerank(snap, q, sides.positions, None, staged=True)))
        assert sides.semantic.tolist() == [float(want[p]) for p in sides.positions.tolist()]
        for p, s in zip(sides.positions.tolist(), sides.semantic.tolist()):
            assert s == pytest.approx(staged[f"d{p}"], rel=1e-6)
            # the last stage scores within int8 rounding of exact MaxSim (residuals or the copy)
            assert s == pytest.approx(exact[f"d{p}"], rel=1e-5 if storage == "float32" else 2e-2)
        assert len(sides.positions) > 10
        # and a search with exact=True scores the keyword-only candidates exactly as well
        exact_sides = hybrid.side_scores(snap, "t7 t8", q, 10, where, None, None, depths=(10, 10))
        exact = {h.id: h.score for h in index.rerank(q, [f"d{p}" for p in exact_sides.positions.tolist()])}
        for p, s in zip(exact_sides.positions.tolist(), exact_sides.semantic.tolist()):
            assert s == pytest.approx(exact[f"d{p}"], rel=1e-5)


def test_plaid_hybrid_filters_both_sides_and_raises_the_keyword_sides_error(tmp_path):
    docs, texts = random_docs(200, seed=6)
    index = Index.create(tmp_path / "p", dim=DIM, kind="plaid", n_centroids=16, nbits=4)
    index.add_embeddings(docs, [f"d{i}" for i in range(200)], [{"g": i % 4} for i in range(200)], texts=texts)
    snap, q, plan = index._snapshot, unit_query(12), Plan(nprobe=2, ncandidates=30)
    where = hybrid.scope(snap, {"g": 2})
    sides = hybrid.side_scores(snap, "t3 t4 t5", q, 5, where, plan, None, depths=(10, 10))
    assert sides.positions.size > 10 and all(p % 4 == 2 for p in sides.positions.tolist())
    want = dict(zip(*search.rerank(snap, q, sides.positions, None, staged=True)))
    assert sides.semantic.tolist() == [float(want[p]) for p in sides.positions.tolist()]
    how = hybrid.Mode("hybrid", 0.5, "minmax")
    hits = hybrid.search(snap, "t3 t4 t5", lambda: q, 20, where, plan, how, None)
    assert len(hits) == 20 and all(h.metadata["g"] == 2 for h in hits)

    # the keyword table vanishes under the open index: its query fails while MaxSim searches
    conn = sqlite3.connect(index.path / snap.manifest.store)
    conn.execute("DROP TABLE keyword")
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        hybrid.side_scores(snap, "t3 t4", q, 5, hybrid.scope(snap, None), plan, None)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        hybrid.search(snap, "t3 t4", lambda: q, 5, hybrid.scope(snap, None), plan, how, None)
    assert index.search(q, k=5)  # nothing left running on the connection


# -- text queries through the packaged model ------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from colmax.cli.demo import SAMPLE
    from colmax.evaluation.corpus import read_corpus

    corpus = read_corpus(SAMPLE)
    index = Index.create(tmp_path_factory.mktemp("demo") / "ix")
    index.add(corpus.texts, corpus.ids, corpus.metadata)
    return index


QUESTION = "What is the capital of France?"


@pytest.mark.slow
def test_text_queries_default_to_hybrid(demo):
    hits = demo.search(QUESTION, k=5)
    assert hits == demo.search(
        QUESTION, k=5, mode="hybrid", fusion="minmax", alpha=fusion.DEFAULT_ALPHA["minmax"]
    )
    assert hits[0].id == "capital-france" and hits[0].score == pytest.approx(1.0)
    semantic = {h.id: h.score for h in demo.search(QUESTION, k=len(demo), mode="semantic")}
    for h in hits:
        assert h.semantic_score == pytest.approx(semantic[h.id], rel=1e-6) and h.keyword_score is not None
    assert demo.search_batch([QUESTION], k=5) == [hits]  # (a batch of several quantizes differently)
    rrf = demo.search(QUESTION, k=5, fusion="rrf")
    assert rrf[0].id == "capital-france" and rrf != hits
    # a query matrix is searched semantically by default
    q = np.asarray(demo.encoder.encode_queries([QUESTION])[0])
    assert [h.id for h in demo.search(q, k=5)] == list(semantic)[:5]


@pytest.mark.slow
def test_explain_names_the_matched_terms(demo):
    ex = demo.explain(QUESTION, "capital-france")
    assert ex.keyword_terms == ["capital", "france"]  # "what" is in no document of the pair
    assert "keyword terms matched: capital, france" in str(ex)
    assert demo.explain("the of", "capital-france").keyword_terms == []
    assert (
        demo.explain(np.asarray(demo.encoder.encode_queries(["x"])[0]), "capital-france").keyword_terms
        is None
    )


@pytest.mark.slow
@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_query_text_in_hybrid_search(demo, text):
    terms = keyword.query_terms(text)
    try:
        hits = demo.search(text, k=5)
    except ValueError as error:  # the model's limit (the semantic side refuses to truncate), or not UTF-8
        assert "would be truncated" in str(error) or "lone surrogate" in str(error)
        return
    assert len(hits) == 5
    if not terms:  # searched semantically
        assert hits == demo.search(text, k=5, mode="semantic")


def test_hybrid_search_in_a_forked_child(lexical):
    """The keyword side's threads do not survive a fork: the child must start its own."""
    index, _, _, _ = lexical
    snap, how = index._snapshot, hybrid.Mode("hybrid", 0.5, "minmax")
    where = hybrid.scope(snap, None)
    want = [h.id for h in hybrid.search(snap, "t1 t2", unit_query, 5, where, None, how, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded, fork() may deadlock"
        pid = os.fork()
    if pid == 0:
        try:
            got = [h.id for h in hybrid.search(snap, "t1 t2", unit_query, 5, where, None, how, None)]
            os._exit(0 if got == want else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's hybrid search hung")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_plaid_hybrid_bm25_of_every_candidate_whichever_way_it_was_computed(tmp_path):
    """A staged search's candidates get their BM25 while its last stage runs, and a candidate
    outside that stage (a search over passages widens it) afterwards: all of them equal to
    FTS5's bm25() read for them directly, with a filter too."""
    docs, texts = random_docs(300, seed=8)
    index = Index.create(tmp_path / "p", dim=DIM, kind="plaid", n_centroids=16, nbits=4)
    ids, meta = [f"d{i}" for i in range(300)], [{"g": i % 3} for i in range(300)]
    for part in (slice(0, 170), slice(170, 300)):  # two segments: positions past the first one's
        index.add_embeddings(docs[part], ids[part], meta[part], texts=texts[part])
    snap, q, plan = index._snapshot, unit_query(13), Plan(nprobe=2, ncandidates=40)
    assert len(snap.segments) == 2
    text = "t1 t4 t9 t12"
    expression = keyword.match_expression(keyword.query_terms(text))
    for filter in (None, {"g": 1}):
        where = hybrid.scope(snap, filter)
        sides = hybrid.side_scores(snap, text, q, 10, where, plan, None, depths=(30, 10))
        assert sides.positions.size > 30 and (sides.keyword > 0).sum() > 10 and (sides.keyword == 0).any()
        direct = keyword.scores(snap.store.conn, expression, sides.positions)
        assert sides.keyword.tolist() == direct.tolist()
    # the lookup: found where the last stage's candidates hold them, computed for the rest
    side = hybrid.Lexical(snap, keyword.query_terms(text), hybrid.scope(snap, None), None)
    known = np.arange(0, 300, 2, dtype=np.int64)
    pending = hybrid._helpers().submit(side.scores, known)
    asked = np.array([3, 4, 5, 100, 101, 298, 299], dtype=np.int64)
    got = hybrid._completion(side, asked, known, pending)
    assert got.tolist() == keyword.scores(snap.store.conn, expression, asked).tolist()
    assert hybrid._completion(side, asked).tolist() == got.tolist()


@pytest.mark.parametrize("kind", ["exact", "plaid"])
def test_hybrid_searches_from_several_threads_at_once(tmp_path, kind):
    """Searches sharing one index (its SQLite connection and the hybrid helper threads) from
    several threads at once, with and without a filter, return what each returns alone."""
    from concurrent.futures import ThreadPoolExecutor

    docs, texts = random_docs(240, seed=9)
    options = {"kind": "plaid", "n_centroids": 16, "nbits": 4} if kind == "plaid" else {"storage": "float32"}
    index = Index.create(tmp_path / kind, dim=DIM, **options)
    index.add_embeddings(docs, [f"d{i}" for i in range(240)], [{"g": i % 2} for i in range(240)], texts=texts)
    snap = index._snapshot
    plan = Plan(nprobe=2, ncandidates=40) if kind == "plaid" else None
    how = hybrid.Mode("hybrid", 0.5, "minmax")
    filters = [None, None, {"g": 0}, None, None, {"g": 1}]
    jobs = [(" ".join(VOCAB[i % 30 : i % 30 + 3]), unit_query(i), filters[i % 6]) for i in range(24)]

    def one(job):
        text, q, filter = job
        return hybrid.search(snap, text, lambda: q, 8, hybrid.scope(snap, filter), plan, how, 1)

    alone = [one(job) for job in jobs]
    assert all(len(hits) == 8 for hits in alone)
    assert all(h.metadata["g"] == job[2]["g"] for hits, job in zip(alone, jobs) if job[2] for h in hits)
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(3):
            assert list(pool.map(one, jobs)) == alone
