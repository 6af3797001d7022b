"""Earlier commits (Index.open(generation=), Index.rollback), installed codebooks, stored texts
with precomputed embeddings, id-and-score-only searches and batch reads."""

from __future__ import annotations

import numpy as np
import pytest
from colmax.index import Index
from colmax.index.codebook import train
from colmax.index.training import train_spread
from test_index import DIM, make_docs, make_query
from test_plaid_index import clustered_docs


def ids_scores(hits):
    return [(h.id, h.score) for h in hits]


def test_open_an_earlier_commit_and_roll_back_to_it(tmp_path):
    path = tmp_path / "ix"
    docs = make_docs(30)
    index = Index.create(path, dim=DIM)
    index.add_embeddings(docs[:10], [f"d{i}" for i in range(10)], [{"g": i % 2} for i in range(10)])
    g1 = index.generation
    q = make_query()
    before = ids_scores(index.search(q, k=30))
    filtered = ids_scores(index.search(q, k=30, filter={"g": 1}))
    index.add_embeddings(docs[10:], [f"d{i}" for i in range(10, 30)])
    index.delete(["d3", "d12"])
    index.delete(["d5"])
    assert len(index) == 27

    old = Index.open(path, generation=g1)
    assert old.generation == g1 and len(old) == 10 and "d3" in old and "d12" not in old
    assert ids_scores(old.search(q, k=30)) == before
    assert ids_scores(old.search(q, k=30, filter={"g": 1})) == filtered
    assert old.ids() == [f"d{i}" for i in range(10)]
    assert old.reload() and old.generation == index.generation  # reload moves to the newest

    newest = index.generation
    index.rollback(g1)
    assert index.generation == g1 and len(index) == 10
    assert ids_scores(index.search(q, k=30)) == before
    index.verify()
    reopened = Index.open(path)
    assert reopened.generation == g1 and ids_scores(reopened.search(q, k=30)) == before
    # the undone commits' files are gone, and the next commit reuses their numbers cleanly
    names = sorted(p.name for p in path.iterdir())
    assert not [n for n in names if n.startswith("seg-") and int(n[4:10]) > g1]
    index.add_embeddings(docs[10:12], ["x", "y"])
    assert index.generation == g1 + 1 < newest
    assert old.reload() and len(old) == 12  # a stale reader sees the rollback and the new commit
    Index.open(path).verify()
    index.rollback(index.generation)  # nothing to undo
    assert len(index) == 12


def test_rollback_refuses_to_cross_a_compaction(tmp_path):
    index = Index.create(tmp_path / "ix", dim=DIM)
    index.add_embeddings(make_docs(5), [f"d{i}" for i in range(5)])
    g = index.generation
    index.delete(["d1"])
    index.compact()
    with pytest.raises(ValueError, match="compacted or retrained"):
        index.rollback(g)
    with pytest.raises(ValueError, match="compacted or retrained"):
        Index.open(tmp_path / "ix", generation=g)
    with pytest.raises(ValueError, match="between 0 and"):
        index.rollback(index.generation + 1)
    with pytest.raises(TypeError, match="generation must be an int"):
        index.rollback("1")
    assert len(index) == 4


def test_rollback_of_a_first_plaid_add_forgets_the_trained_codebook(tmp_path):
    index = Index.create(tmp_path / "ix", dim=32, kind="plaid", n_centroids=16)
    index.add_embeddings(clustered_docs(50), [f"d{i}" for i in range(50)])
    assert index.info()["centroids"] == 16
    index.rollback(0)
    assert len(index) == 0 and index.info()["centroids"] is None
    assert not [p for p in (tmp_path / "ix").iterdir() if p.name.startswith("codebook-")]
    index.add_embeddings(clustered_docs(50, seed=3), [f"e{i}" for i in range(50)])  # trains again
    assert index.info()["centroids"] == 16


def test_an_installed_codebook_compresses_like_the_trained_one(tmp_path):
    docs = clustered_docs(120)
    ids = [f"d{i}" for i in range(120)]
    trained = Index.create(tmp_path / "a", dim=32, kind="plaid")
    trained.add_embeddings(docs, ids)
    tokens = np.concatenate(docs)
    # train_spread reads only the sampled rows, wherever they are, and gives the same codebook
    asked = []

    def rows_of(rows):
        asked.append(rows)
        return tokens if rows is None else tokens[rows]

    codebook = train_spread(len(tokens), rows_of, 32)
    assert asked
    installed = Index.create(tmp_path / "b", dim=32, kind="plaid", codebook=codebook)
    assert installed.info()["centroids"] == codebook.n_centroids
    installed.add_embeddings(docs, ids)
    assert trained.info()["centroids"] == installed.info()["centroids"]
    for seed in range(5):
        q = docs[seed * 7][:4]
        assert ids_scores(trained.search(q, k=10)) == ids_scores(installed.search(q, k=10))
    assert Index.open(tmp_path / "b").info()["codebook_trained_tokens"] == len(tokens)
    with pytest.raises(ValueError, match="kind='plaid'"):
        Index.create(tmp_path / "c", dim=32, kind="exact", codebook=codebook)
    with pytest.raises(ValueError, match="drop nbits"):
        Index.create(tmp_path / "c", dim=32, kind="plaid", codebook=codebook, nbits=8)
    with pytest.raises(ValueError, match="16-dim"):
        Index.create(tmp_path / "c", dim=16, kind="plaid", codebook=codebook)
    with pytest.raises(TypeError, match="Codebook"):
        Index.create(tmp_path / "c", dim=32, kind="plaid", codebook=tokens)
    with pytest.raises(ValueError, match="rows_of returned"):
        train_spread(len(tokens), lambda rows: tokens[:3], 32)
    assert train(tokens, nbits=2).n_centroids == codebook.n_centroids


def test_texts_with_embeddings_documents_only_when_asked(tmp_path):
    index = Index.create(tmp_path / "ix", dim=DIM, storage="float32")  # embeddings returned as given
    docs = make_docs(4)
    index.add_embeddings(docs, ["a", "b", "c", "d"], [{"n": i} for i in range(4)], texts=["A", "B", "", "D"])
    q = make_query()
    full = index.search(q, k=4)
    bare = index.search(q, k=4, with_documents=False)
    assert [(h.id, h.score) for h in bare] == [(h.id, h.score) for h in full]
    assert all(h.metadata == {} and h.text is None for h in bare)
    assert {h.id: h.text for h in full} == {"a": "A", "b": "B", "c": "", "d": "D"}
    assert [h.id for h in index.search_batch([q], k=2, with_documents=False)[0]] == [h.id for h in full[:2]]
    got = index.get_batch(["d", "a", "d"], embeddings=False)
    assert [(g.id, g.text, g.metadata, g.embeddings) for g in got] == [
        ("d", "D", {"n": 3}, None),
        ("a", "A", {"n": 0}, None),
        ("d", "D", {"n": 3}, None),
    ]
    np.testing.assert_array_equal(index.get_batch(["b"])[0].embeddings, docs[1])
    with pytest.raises(KeyError, match="'zz'"):
        index.get_batch(["a", "zz"])
    with pytest.raises(ValueError, match="2 texts"):
        index.add_embeddings(docs[:1], ["e"], texts=["x", "y"])
    with pytest.raises(TypeError, match="texts"):
        index.add_embeddings(docs[:1], ["e"], texts="x")
