"""Documents as several passages, with a tiny model (24-token documents) so that short texts
split: exact search over documents against a NumPy reference, every read and write on whole
documents, and indexes of the format before passages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from colmax.index import Index, keyword
from colmax.index.files import MANIFEST
from colmax.index.manifest import FORMAT_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from old_formats import downgrade_to_format_4, forget_passage_titles
from tiny_checkpoints import WORDS, tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny")


def random_texts(n: int, seed: int, longest: int = 60) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, longest)))) for _ in range(n)]


def reference(index: Index, q: np.ndarray, ids) -> dict[str, tuple[float, int]]:
    """Per document: the best MaxSim over its passages' stored vectors (NumPy, float64) and
    that passage's number."""
    snap = index._snap
    out = {}
    for id_ in ids:
        scores = [
            float((q.astype(np.float64) @ snap.doc_matrix(int(p)).astype(np.float64).T).max(axis=1).sum())
            for p in snap.passage_positions([id_])
        ]
        out[id_] = (max(scores), int(np.argmax(scores)))
    return out


def ranked(ref: dict[str, tuple[float, int]], order: list[str]) -> list[str]:
    position = {id_: i for i, id_ in enumerate(order)}
    return sorted(ref, key=lambda i: (-ref[i][0], position[i]))


@pytest.fixture(scope="module")
def built(model, tmp_path_factory):
    """An exact and a plaid index of the same 150 documents, added in three commits, with
    deletions and an update: most documents span several passages."""
    root = tmp_path_factory.mktemp("passages")
    texts = random_texts(150, seed=1)
    ids = [f"d{i}" for i in range(150)]
    meta = [{"group": i % 3} for i in range(150)]
    indexes = []
    for kind in ("exact", "plaid"):
        options = {"n_centroids": 8} if kind == "plaid" else {}
        index = Index.create(root / kind, model, kind=kind, **options)
        for start in range(0, 150, 50):
            index.add(texts[start : start + 50], ids[start : start + 50], meta[start : start + 50])
        index.delete(["d3", "d77"])
        index.update("d10", "paris " * 5, {"group": 1})
        indexes.append(index)
    live = [i for i in ids if i not in ("d3", "d77")]
    return indexes, live, dict(zip(ids, texts))


def test_documents_span_several_passages(built):
    (exact, _), live, _ = built
    info = exact.info()
    assert len(exact) == info["documents"] == len(live) and info["passages"] > 2 * len(live)
    # the tiny model's 24 tokens
    assert info["passage_settings"] == {"length": 24, "stride": 15, "titles": True}
    assert info["segments"] == 4 and info["deleted"] > 2  # whole documents' passages tombstoned


@pytest.mark.parametrize("kind", ["exact", "plaid"])
def test_search_is_exact_over_documents(built, model, kind):
    index = built[0][0 if kind == "exact" else 1]
    live = built[1]
    options = {"exact": True} if kind == "plaid" else {}  # every passage scored: exact
    order = index.ids()
    for query in ("paris is the capital of france", "late interaction colbert", "germany"):
        q = index.encoder.encode_queries([query])[0]
        ref = reference(index, q, live)
        want = ranked(ref, order)
        for k in (1, 7, 40, len(live)):
            hits = index.search(query, k=k, mode="semantic", **options)
            assert [h.id for h in hits] == want[:k]
            np.testing.assert_allclose([h.score for h in hits], [ref[i][0] for i in want[:k]], rtol=1e-5)
            assert [h.passage for h in hits] == [ref[i][1] for i in want[:k]]
        # a filter restricts every passage of the documents it names
        hits = index.search(query, k=10, mode="semantic", filter={"group": 2}, **options)
        assert [h.id for h in hits] == [i for i in want if int(i[1:]) % 3 == 2][:10]
        # rerank of given documents: their best passages too
        some = want[::-7]
        assert [h.id for h in index.rerank(query, some)] == [i for i in want if i in some]


def test_staged_plaid_search_returns_k_documents(built):
    plaid = built[0][1]
    for k in (1, 10, 60):
        hits = plaid.search("capital of germany", k=k, mode="semantic", ncandidates=k)
        assert len(hits) == k == len({h.id for h in hits})  # candidates grow until k documents


def test_keyword_and_hybrid_rank_documents_by_their_best_passage(built):
    index = built[0][0]
    snap = index._snap
    query = "colbert interaction"
    expression = keyword.match_expression(keyword.query_terms(query))
    hits = index.search(query, k=20, mode="keyword")
    assert len(hits) == len({h.id for h in hits}) == 20
    for h in hits:
        passages = snap.passage_positions([h.id])
        best = keyword.scores(snap.store.conn, expression, passages)
        assert h.keyword_score == pytest.approx(best.max()) and best[h.passage] == best.max()
    scores = [h.keyword_score for h in hits]
    assert scores == sorted(scores, reverse=True)
    hybrid = index.search(query, k=15)
    assert len(hybrid) == len({h.id for h in hybrid}) == 15
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert all(h.semantic_score is not None and h.keyword_score is not None for h in hybrid)


def test_reads_and_writes_act_on_whole_documents(built, tmp_path, model):
    (exact, _), live, texts = built
    several = next(i for i in live if exact.get(i).spans)
    doc = exact.get(several)
    assert doc.text == texts[several] and doc.spans[0][0] == 0 and doc.spans[-1][1] == len(doc.text)
    assert doc.embeddings.shape[0] > 24  # every passage's vectors
    hits = exact.search(doc.text[doc.spans[-1][0] : doc.spans[-1][1]], k=200, mode="semantic")
    hit = next(h for h in hits if h.id == several)
    assert hit.text == doc.text and hit.span in doc.spans and hit.passage_text == doc.text[slice(*hit.span)]
    ex = exact.explain("paris capital", several)
    assert ex.span in doc.spans and ex.passage == doc.spans.index(ex.span)
    for token, span in zip(ex.doc_tokens, ex.doc_spans):
        if span is not None:  # positions in the whole text, inside the passage
            assert ex.span[0] <= span[0] < span[1] <= ex.span[1] and token in doc.text[span[0] : span[1]]
    # the updated document is one passage now, its old passages gone from every side
    assert exact.get("d10").spans is None and exact.search("paris", k=1, mode="keyword")[0].id == "d10"
    assert "d3" not in exact and all(h.id != "d3" for h in exact.search("paris", k=200, mode="keyword"))


def test_delete_update_compact_and_history(model, tmp_path):
    index = Index.create(tmp_path / "ix", model)
    texts = random_texts(30, seed=5)
    ids = index.add(texts, [f"t{i}" for i in range(30)])
    assert ids.passages == index.info()["passages"] > 30
    before = index.search("capital of france", k=30, mode="semantic")
    generation = index.generation
    index.update_many(["t1", "t2"], ["paris " * 50, "berlin"], [None, {"x": 1}])
    assert index.get("t2").metadata == {"x": 1} and index.get("t2").text == "berlin"
    with pytest.raises(KeyError, match="nope"):
        index.update_many(["t1", "nope"], ["a", "b"])
    with pytest.raises(ValueError, match="twice"):
        index.update_many(["t1", "t1"], ["a", "b"])
    index.delete(["t3"])
    old = Index.open(tmp_path / "ix", generation=generation)
    assert [(h.id, h.score, h.passage) for h in old.search("capital of france", k=30, mode="semantic")] == [
        (h.id, h.score, h.passage) for h in before
    ]
    after = [(h.id, h.score, h.passage, h.span) for h in index.search("paris capital", k=29, mode="semantic")]
    index.compact()
    assert index.info()["deleted"] == 0 and len(index) == 29
    compacted = index.search("paris capital", k=29, mode="semantic")
    assert [(h.id, h.score, h.passage, h.span) for h in compacted] == after
    index.verify()
    index.rollback(index.generation)
    with pytest.raises(ValueError, match="compacted"):
        index.rollback(generation)


def test_index_of_format_4_opens_searches_and_upgrades_on_write(model, tmp_path):
    """An index written before passages (manifest format 4, store version 1: one position per
    document, ids unique) reads as before; the first write adds the passage columns."""
    path = tmp_path / "v4"
    index = Index.create(path, model)
    short = ["paris is the capital of france", "berlin is the capital of germany", "colbert"]
    index.add(short, ["paris", "berlin", "colbert"], [{"n": 0}, {"n": 1}, {"n": 2}])
    index.delete(["colbert"])
    before = index.search("capital of france", k=3)
    semantic = [h.id for h in index.search("capital of france", k=2, mode="semantic")]
    index.close()
    downgrade_to_format_4(path)
    old = Index.open(path)
    assert old.search("capital of france", k=3) == before and old.get("paris").text == short[0]
    assert old._snap.store.passages is False
    old.verify()
    long_text = " ".join(random_texts(1, seed=2, longest=2)[0] for _ in range(80))
    old.add([long_text], ["long"])  # the store gains its passage columns in this commit
    assert json.loads((path / MANIFEST).read_text())["format_version"] == FORMAT_VERSION
    reopened = Index.open(path)
    assert reopened._snap.store.passages and len(reopened.get("long").spans) > 1
    assert [h.id for h in reopened.search("capital of france", k=2, mode="semantic")] == semantic
    reopened.verify()


def test_truncation_is_chosen_and_reported(model, tmp_path):
    index = Index.create(tmp_path / "ix", model)
    texts = ["paris " * 60, "berlin", "germany " * 30]
    with pytest.warns(UserWarning, match="2 of 3 documents were longer than one passage"):
        ids = index.add(texts, ["a", "b", "c"], truncate=True)
    assert ids == ["a", "b", "c"] and ids.truncated == ["a", "c"] and ids.passages == 3
    assert index.get("a").spans is None and index.get("a").text == texts[0]
    assert index.info()["passages"] == 3


def test_continued_passages_carry_the_title_unless_the_index_was_cut_without(model, tmp_path):
    text, meta = " ".join(WORDS * 5), {"title": "paris germany"}
    encoder = Index.create(tmp_path / "probe", model).encoder
    titled = encoder.encode_passages([text], titles=[meta["title"]])[0]
    plain = encoder.encode_passages([text])[0]
    assert len(titled) > 2 and not np.array_equal(titled[1], plain[1])
    for name, expected in (("new", titled), ("old", plain)):
        index = Index.create(tmp_path / name, model, storage="float32")
        index.add(["a short one"], ["s"])
        if name == "old":
            index.close()
            forget_passage_titles(tmp_path / name)
            index = Index.open(tmp_path / name)
        index.add([text], ["long"], [meta])
        np.testing.assert_array_equal(index.get("long").embeddings, expected.tokens)
        assert index.explain("paris", "long").doc_tokens is not None
        index.close()


def test_passage_settings_are_recorded_and_checked(model, tmp_path):
    index = Index.create(tmp_path / "ix", model, passage_length=16, passage_stride=4)
    index.add(["paris " * 20], ["p"])
    assert index.info()["passage_settings"] == {"length": 16, "stride": 4, "titles": True}
    assert len(index.get("p").spans) == 3  # 20 words: windows of 13 tokens at 0, 4 and 8
    with pytest.raises(ValueError, match="exceeds the model's document length of 24"):
        Index.create(tmp_path / "a", model, passage_length=25)
    with pytest.raises(ValueError, match="stride must be at most 21"):
        Index.create(tmp_path / "b", model, passage_stride=22)
    with pytest.raises(ValueError, match="need a model"):
        Index.create(tmp_path / "c", dim=16, passage_length=10)
