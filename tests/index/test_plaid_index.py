"""colmax.Index(kind="plaid"): the compressed index with staged search, on clustered vectors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import colmax
import numpy as np
import pytest
from colmax import _core
from colmax.index import Index, IndexFormatError, IndexVersionError, codebook
from colmax.index.codebook import default_n_centroids, train
from colmax.index.manifest import FORMAT_VERSION, MANIFEST, body_checksum

DIM = 32


def clustered_docs(n, seed=0, n_topics=24, dim=DIM, noise=0.35):
    """Documents whose tokens scatter around a few topic vectors: like real token vectors,
    unlike i.i.d. noise, they have neighbourhoods for pruning to find."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((n_topics, dim)).astype(np.float32)
    docs = []
    for _ in range(n):
        picks = rng.choice(n_topics, size=3, replace=False)
        length = int(rng.integers(4, 20))
        m = topics[rng.choice(picks, size=length)] + noise * rng.standard_normal((length, dim))
        docs.append((m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32))
    return docs


def query_from(doc, seed=1):
    rng = np.random.default_rng(seed)
    q = doc[rng.choice(len(doc), size=min(6, len(doc)), replace=False)] + 0.2 * rng.standard_normal(
        (min(6, len(doc)), doc.shape[1])
    )
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def build(path, n=300, seed=0, **create):
    docs = clustered_docs(n, seed)
    ids = [f"d{i}" for i in range(n)]
    meta = [{"group": i % 3} for i in range(n)]
    index = Index.create(path, dim=DIM, kind="plaid", **create)
    index.add_embeddings(docs, ids, meta)
    return index, docs, ids


def brute_force(q, docs, ids, k):
    scores = np.array([(q @ d.T).max(axis=1).sum() for d in docs])
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))[:k]
    return [ids[i] for i in order], scores[order]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "px"


def test_codebook_sizes_and_error_bound():
    docs = np.concatenate(clustered_docs(200))
    assert default_n_centroids(10_000) == 256 and default_n_centroids(30) == 3
    rms, cosines = [], []
    for nbits in (1, 2, 4, 8):
        cb = train(docs, nbits=nbits, n_centroids=32)
        codes, residuals = cb.compress(docs)
        assert codes.dtype == np.uint16 and residuals.shape == (len(docs), DIM * nbits // 8)
        assert cb.normalize
        back = cb.decompress(codes, residuals)
        np.testing.assert_allclose(np.linalg.norm(back, axis=1), 1, atol=1e-5)
        rms.append(float(np.sqrt(np.mean((back - docs) ** 2))))
        cosines.append(float(np.mean(np.sum(back * docs, axis=1))))
    # every extra bit shrinks the error; 2 bits keep vectors close, 8 bits are nearly lossless
    assert rms == sorted(rms, reverse=True) and rms[-1] < 0.01, rms
    assert cosines[1] > 0.95 and cosines[3] > 0.999, cosines


def test_large_codebooks_assign_through_groups(monkeypatch):
    docs = np.concatenate(clustered_docs(300))
    exact_book = train(docs, n_centroids=256)
    probes, kmeans_assign = [], _core.kmeans_assign

    def spy(*args, probe_groups=0, **kwargs):
        probes.append(probe_groups)
        return kmeans_assign(*args, probe_groups=probe_groups, **kwargs)

    monkeypatch.setattr(codebook, "GROUPED_ASSIGN_MIN_CENTROIDS", 256)
    monkeypatch.setattr(codebook, "ENCODE_PROBE_GROUPS", 2)  # of 16 groups
    monkeypatch.setattr(codebook, "TRAIN_PROBE_GROUPS", 3)
    monkeypatch.setattr(_core, "kmeans_assign", spy)
    grouped_book = train(docs, n_centroids=256)
    assert probes and set(probes) == {3}
    codes, _ = grouped_book.compress(docs)
    assert probes[-1] == 2
    nearest, _ = kmeans_assign(docs, grouped_book.centroids)
    assert np.mean(codes == nearest) > 0.8
    # a near centroid instead of the nearest costs little: the decoded vectors stay as close
    errors = [
        float(np.sqrt(np.mean((book.decompress(*book.compress(docs)) - docs) ** 2)))
        for book in (exact_book, grouped_book)
    ]
    assert errors[1] < 1.1 * errors[0], errors


def test_staged_search_finds_the_exact_top10(path):
    index, docs, ids = build(path)
    info = index.info()
    assert info["kind"] == "plaid" and info["nbits"] == 2 and info["storage"] is None
    # the packed residual, plus under the uint16 per token a code would take (runs of a document's codes)
    assert DIM * 2 // 8 < info["bytes_per_token"] < 2 + DIM * 2 // 8
    recalls = []
    for i in range(0, 300, 15):
        q = query_from(docs[i], seed=i)
        exact = index.search(q, k=10, exact=True)
        decompressed = [index.get(x).embeddings for x in ids]
        want, scores = brute_force(q, decompressed, ids, 10)
        assert [h.id for h in exact] == want
        np.testing.assert_allclose([h.score for h in exact], scores, rtol=1e-5, atol=1e-5)
        # probing every centroid and keeping every candidate is the exact search, scored in int8
        # (bit for bit against the int8 model in tests/test_plaid_core.py): within its error here
        full = index.search(q, k=10, nprobe=info["centroids"], ncandidates=300)
        float_score = dict(zip(*brute_force(q, decompressed, ids, 300)))
        assert len({h.id for h in full} & set(want)) >= 9
        for h in full:
            assert h.score == pytest.approx(float_score[h.id], abs=0.02 * len(q))
        staged = index.search(q, k=10)
        recalls.append(len({h.id for h in staged} & set(want)) / 10)
        truth, _ = brute_force(q, docs, ids, 10)  # on the original vectors
        assert len(set(truth) & {h.id for h in exact}) >= 7
    assert np.mean(recalls) >= 0.9, recalls


def test_full_precision_copy_scores_exactly(path):
    index, docs, ids = build(path, storage="float32")
    q = query_from(docs[7])
    want, scores = brute_force(q, docs, ids, 10)
    hits = index.search(q, k=10, exact=True)
    assert [h.id for h in hits] == want
    np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-5, atol=1e-5)
    staged = index.search(q, k=10, nprobe=64, ncandidates=300)
    assert [h.id for h in staged] == want  # the last stage scores the copy
    # stored with the document's tokens ordered by centroid code (stable)
    codes, _ = index._snapshot.codebook.compress(docs[3])
    np.testing.assert_array_equal(index.get("d3").embeddings, docs[3][np.argsort(codes, kind="stable")])


def test_int8_copy_scores_as_an_exact_int8_index(path, tmp_path):
    index, docs, ids = build(path, storage="int8")
    exact = Index.create(tmp_path / "exact", dim=DIM, storage="int8")
    exact.add_embeddings(docs, ids)
    for doc in (7, 120):
        q = query_from(docs[doc])
        want = [(h.id, h.score) for h in exact.search(q, k=10)]
        # per-row quantization does not see the token order, and max is exact: the same bits
        assert [(h.id, h.score) for h in index.search(q, k=10, exact=True)] == want
        assert [(h.id, h.score) for h in index.search(q, k=10, nprobe=64, ncandidates=300)] == want
    values, scales = colmax.quantize_int8(docs[3])
    codes, _ = index._snapshot.codebook.compress(docs[3])
    order = np.argsort(codes, kind="stable")
    np.testing.assert_array_equal(index.get("d3").embeddings, (values * scales[:, None])[order])
    assert {"tokens", "scales"} <= set(index._snapshot.manifest.segments[0].files)
    index.delete(ids[:3])
    index.compact()  # copies the int8 rows and their scales as stored
    index.verify()
    q = query_from(docs[7])
    want = [(h.id, h.score) for h in exact.search(q, k=13) if h.id not in ids[:3]][:10]
    assert [(h.id, h.score) for h in index.search(q, k=10, exact=True)] == want


def test_adds_after_training_reuse_the_codebook_and_deletes_compact(path):
    index, docs, _ = build(path, n=200)
    trained = index.info()["codebook_trained_tokens"]
    codebook_files = sorted(p.name for p in path.glob("codebook-*"))
    new = clustered_docs(30, seed=5)
    index.add_embeddings(new, [f"n{i}" for i in range(30)])
    assert sorted(p.name for p in path.glob("codebook-*")) == codebook_files
    assert index.info()["codebook_trained_tokens"] == trained and len(index) == 230
    assert index.search(new[4], k=1)[0].id == "n4"  # a document is its own best match

    q = query_from(docs[10])
    top = index.search(q, k=5, nprobe=64, ncandidates=230)
    index.delete([top[0].id, "n4"])
    after = index.search(q, k=5, nprobe=64, ncandidates=230)
    assert top[0].id not in {h.id for h in after} and [h.id for h in after][:4] == [h.id for h in top][1:]
    assert all(h.id != "n4" for h in index.search(new[4], k=10))
    index.compact()
    assert len(index.info()) and index.info()["deleted"] == 0 and index.info()["segments"] == 1
    compacted = index.search(q, k=5, nprobe=64, ncandidates=230)
    assert [(h.id, h.score) for h in compacted] == [(h.id, h.score) for h in after]
    index.verify()


def test_retrain(path):
    index, docs, _ = build(path, n=200, n_centroids=8)
    assert index.info()["centroids"] == 8
    q = query_from(docs[3])
    before = [h.id for h in index.search(q, k=10, exact=True)]
    index.delete(["d0"])
    index.retrain(n_centroids=32)
    info = index.info()
    assert info["centroids"] == 32 and info["deleted"] == 0 and len(index) == 199
    assert len(list(path.glob("codebook-*"))) == 1
    after = [h.id for h in index.search(q, k=10, exact=True)]
    assert len(set(after) & set(before) - {"d0"}) >= 7
    reopened = Index.open(path)
    assert reopened.info()["centroids"] == 32
    assert [h.id for h in reopened.search(q, k=10, exact=True)] == after
    reopened.verify()


def test_filter_rerank_explain(path):
    index, docs, _ = build(path, n=120)
    q = query_from(docs[9])
    hits = index.search(q, k=10, filter={"group": 0})
    assert hits and all(h.metadata["group"] == 0 for h in hits)
    reranked = index.rerank(q, ["d5", "d9", "d1"])
    decompressed = [index.get(x).embeddings for x in ("d5", "d9", "d1")]
    want, scores = brute_force(q, decompressed, ["d5", "d9", "d1"], 3)
    assert [h.id for h in reranked] == want
    np.testing.assert_allclose([h.score for h in reranked], scores, rtol=1e-5, atol=1e-5)
    explanation = index.explain(q, "d9")
    assert explanation.score == pytest.approx(scores[want.index("d9")], rel=1e-5)


def test_warm_reads_every_file_of_the_commit(path):
    index, docs, ids = build(path, storage="float16")
    index.delete(ids[:5])
    q = query_from(docs[40])
    before = [(h.id, h.score) for h in index.search(q, k=5)]
    (path / "stray.bin").write_bytes(b"x" * 1000)  # not the index's: not read
    m = index._snapshot.manifest
    names = [s.file(kind) for s in m.segments for kind in s.files] + [m.store, m.codebook["file"], MANIFEST]
    kinds = {"offsets", "doc_codes", "doc_code_offsets", "residuals", "ivf_offsets", "ivf", "tokens"}
    assert kinds == set(m.segments[0].files)
    assert index.warm() == sum((path / name).stat().st_size for name in names)
    assert [(h.id, h.score) for h in index.search(q, k=5)] == before
    index.close()
    with pytest.raises(ValueError, match="closed"):
        index.warm()


def test_persistence_and_corruption(path):
    index, docs, _ = build(path, n=100)
    q = query_from(docs[1])
    before = [(h.id, h.score) for h in index.search(q, k=10)]
    index.close()
    reopened = Index.open(path)
    assert [(h.id, h.score) for h in reopened.search(q, k=10)] == before
    reopened.verify()
    manifest = json.loads((path / "colmax-index.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION and manifest["kind"] == "plaid"

    (codes,) = path.glob("seg-*.doc_codes")
    data = bytearray(codes.read_bytes())
    data[0] ^= 0xFF
    codes.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.open(path).verify()
    (residuals,) = path.glob("seg-*.residuals")
    residuals.write_bytes(residuals.read_bytes()[:-3])
    with pytest.raises(IndexFormatError, match="truncated"):
        Index.open(path)
    (centroids,) = path.glob("codebook-*")
    centroids.write_bytes(b"\0" + centroids.read_bytes()[1:])
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.open(path)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="nbits must be one of"):
        Index.create(tmp_path / "a", dim=DIM, kind="plaid", nbits=3)
    with pytest.raises(ValueError, match="whole number of bytes"):
        Index.create(tmp_path / "b", dim=7, kind="plaid", nbits=2)
    with pytest.raises(ValueError, match="kind must be one of"):
        Index.create(tmp_path / "c", dim=DIM, kind="ivf")
    with pytest.raises(ValueError, match="plaid"):
        Index.create(tmp_path / "d", dim=DIM, kind="exact", nbits=4)
    with pytest.raises(ValueError, match="n_centroids"):
        Index.create(tmp_path / "e", dim=DIM, kind="plaid", n_centroids=0)
    exact = Index.create(tmp_path / "f", dim=DIM)
    exact.add_embeddings(clustered_docs(5), None)
    with pytest.raises(ValueError, match="plaid"):
        exact.search(clustered_docs(1)[0], nprobe=2)
    with pytest.raises(ValueError, match="plaid"):
        exact.retrain()

    index = Index.create(tmp_path / "g", dim=DIM, kind="plaid", n_centroids=5000)
    assert index.search(clustered_docs(1)[0], k=3) == []  # untrained and empty
    with pytest.raises(ValueError, match="n_centroids"):  # more centroids than tokens
        index.add_embeddings(clustered_docs(10), None)
    assert len(Index.open(tmp_path / "g")) == 0 and not list((tmp_path / "g").glob("codebook-*"))
    index, docs, _ = build(tmp_path / "h", n=50)
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="nprobe"):
            index.search(docs[0], nprobe=bad)
        with pytest.raises(error, match="ncandidates"):
            index.search(docs[0], ncandidates=bad)
        with pytest.raises(error, match="nprobe"):  # checked even where exact search ignores it
            index.search(docs[0], exact=True, nprobe=bad)
        with pytest.raises(error, match="nprobe"):  # and the same way by search_batch
            index.search_batch([docs[0]], exact=True, nprobe=bad)
        with pytest.raises(error, match="ncandidates"):
            index.search_batch([docs[0]], exact=True, ncandidates=bad)
        with pytest.raises(ValueError, match="plaid"):  # an exact index refuses the knobs outright
            exact.search_batch([docs[0]], exact=True, nprobe=bad)


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    import colmax.index.manifest as manifest
    from colmax.index import Index
    sys.path.insert(0, sys.argv[2])
    from test_plaid_index import clustered_docs

    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)

    manifest.write_manifest = die  # killed after training and writing every file, before the commit
    index = Index.open(sys.argv[1])
    index.add_embeddings(clustered_docs(80, seed=3), None)
    """
)


def test_killed_first_add_leaves_the_untrained_index(path):
    Index.create(path, dim=DIM, kind="plaid").close()
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH_SCRIPT, str(path), os.path.dirname(__file__)], timeout=120
    )
    assert proc.returncode == -signal.SIGKILL
    assert list(path.glob("codebook-*"))  # the dead writer's files are there ...
    index = Index.open(path)
    assert len(index) == 0 and index.info()["centroids"] is None
    docs = clustered_docs(40)
    index.add_embeddings(docs, [f"d{i}" for i in range(40)])  # ... and the next writer clears them
    assert len(list(path.glob("codebook-*"))) == 1 and len(Index.open(path)) == 40
    Index.open(path).verify()


def test_exact_index_written_by_format_1_still_opens(tmp_path):
    path = tmp_path / "v1"
    index = Index.create(path, dim=DIM)
    docs = clustered_docs(10)
    index.add_embeddings(docs, [f"d{i}" for i in range(10)])
    q = query_from(docs[2])
    before = [(h.id, h.score) for h in index.search(q, k=5)]
    index.close()
    body = json.loads((path / "colmax-index.json").read_text())
    body["format_version"] = 1
    for key in ("kind", "codebook"):
        body.pop(key)
    for seg in body["segments"]:
        files = seg.pop("files")
        seg["tokens_sha256"], seg["offsets_sha256"] = files["tokens"], files["offsets"]
    from colmax.index.manifest import body_checksum

    body["checksum"] = body_checksum(body)
    (path / "colmax-index.json").write_text(json.dumps(body))
    assert [(h.id, h.score) for h in Index.open(path).search(q, k=5)] == before


@pytest.mark.slow
def test_text_seed_case_through_a_plaid_index(tmp_path):
    from colmax.cli.demo import SAMPLE
    from colmax.evaluation.corpus import read_corpus

    corpus = read_corpus(SAMPLE)
    index = Index.create(tmp_path / "t", kind="plaid", nbits=4)
    index.add(corpus.texts, corpus.ids)
    ranked = [h.id for h in index.search("What is the capital of France?", k=len(corpus.texts))]
    assert ranked[0] == "capital-france" and ranked.index("capital-france") < ranked.index("capital-germany")


def test_plaid_indexes_of_format_2_are_refused_naming_the_fix(path):
    index, _, _ = build(path, n=20)
    index.close()
    body = json.loads((path / MANIFEST).read_text())
    body["format_version"] = 2
    body["checksum"] = body_checksum(body)
    (path / MANIFEST).write_text(json.dumps(body))
    with pytest.raises(IndexVersionError, match=r"format 2.*rebuild it"):
        Index.open(path)


def test_explain_maps_stored_tokens_back_to_the_text(tmp_path):
    texts = ["Paris is the capital of France.", "Berlin is the capital of Germany.", "Bananas are yellow."]
    question = "What is the capital of France?"
    exact = Index.create(tmp_path / "exact", storage="float32")
    exact.add(texts, ["paris", "berlin", "bananas"])
    plaid = Index.create(tmp_path / "plaid", kind="plaid", n_centroids=8, storage="float32")
    plaid.add(texts, ["paris", "berlin", "bananas"])
    for doc in ("paris", "berlin"):
        want, got = exact.explain(question, doc), plaid.explain(question, doc)
        # the same vectors, stored in another order: the same matches, text for text
        np.testing.assert_array_equal(got.similarity, want.similarity)
        assert got.doc_tokens == want.doc_tokens and got.query_tokens == want.query_tokens
        assert got.doc_spans == want.doc_spans
    ex = plaid.explain(question, "paris")
    assert ex.doc_tokens[ex.query_tokens.index("france")] == "france"


# -- maintenance: retrain(nbits=...), empty indexes, the full-precision copy, filtered batches


def score_errors(index, docs, ids, q) -> np.ndarray:
    """|exact score over the stored vectors - score over the original vectors| per document."""
    got = {h.id: h.score for h in index.search(q, k=len(ids), exact=True)}
    want = np.array([(q @ d.T).max(axis=1).sum() for d in docs])
    return np.abs(np.array([got[i] for i in ids]) - want)


def test_retrain_with_more_bits(path):
    index, docs, ids = build(path, n=120, n_centroids=8)
    assert index.info()["nbits"] == 2
    q = query_from(docs[5])
    before = {h.id: h.score for h in index.search(q, k=len(ids), exact=True)}
    coarse = score_errors(index, docs, ids, q)
    residuals = sum(p.stat().st_size for p in path.glob("seg-*.residuals"))
    with pytest.raises(ValueError, match="nbits"):
        index.retrain(nbits=3)
    index.retrain(nbits=4)
    info = index.info()
    assert (info["nbits"], info["centroids"]) == (4, 8)  # the requested size is kept
    assert sum(p.stat().st_size for p in path.glob("seg-*.residuals")) == 2 * residuals
    # without a copy the 2-bit vectors are what is re-encoded: 4 bits keep them closely
    after = {h.id: h.score for h in index.search(q, k=len(ids), exact=True)}
    drift = np.abs(np.array([after[i] - before[i] for i in ids]))
    assert drift.mean() < coarse.mean() / 4
    assert Index.open(path).info()["nbits"] == 4


def round_trip_error(index, docs) -> float:
    codebook = index._snapshot.codebook
    tokens = np.concatenate(docs)
    return float(np.sqrt(np.mean((codebook.decompress(*codebook.compress(tokens)) - tokens) ** 2)))


def test_retrain_with_more_bits_from_the_full_precision_copy(path):
    index, docs, _ = build(path, n=120, n_centroids=8, storage="float16")
    coarse = round_trip_error(index, docs)
    index.retrain(nbits=4)
    assert index.info()["nbits"] == 4
    assert round_trip_error(index, docs) < coarse / 2  # trained on the copy, not on 2-bit vectors


def test_retrain_and_compact_an_empty_index(path):
    index = Index.create(path, dim=DIM, kind="plaid")
    with pytest.raises(ValueError, match="no documents to train"):
        index.retrain()
    index.add_embeddings(clustered_docs(20), [f"d{i}" for i in range(20)])
    index.delete([f"d{i}" for i in range(20)])
    generation = index.generation
    with pytest.raises(ValueError, match="no documents to train"):
        index.retrain(nbits=4)
    assert index.generation == generation and index.info()["nbits"] == 2  # nothing written
    index.compact()
    assert len(index) == 0 and index.info()["segments"] == 0
    assert index.search(clustered_docs(1, seed=3)[0], k=5) == []
    index.add_embeddings(clustered_docs(5, seed=4), [f"n{i}" for i in range(5)])  # the codebook stays
    assert len(index) == 5 and index.search(clustered_docs(5, seed=4)[2], k=1)[0].id == "n2"
    index.verify()


@pytest.mark.parametrize("storage, tol", [("float32", 1e-5), ("float16", 5e-3)])
def test_compact_and_retrain_keep_the_full_precision_copy(path, storage, tol):
    index, docs, ids = build(path, n=150, storage=storage, n_centroids=8)
    index.delete(ids[:30])
    docs, ids = docs[30:], ids[30:]
    q = query_from(docs[11])
    for step in ("compact", "retrain"):
        if step == "compact":
            index.compact()
        else:
            index.retrain(n_centroids=16, nbits=4)
        assert index.storage == storage and len(index) == 120
        assert index.info()["segments"] == 1 and list(path.glob("seg-*.tokens"))
        # scores come from the copy, not from the codes: as close as the storage dtype allows
        assert score_errors(index, docs, ids, q).max() < tol
        want, _ = brute_force(q, docs, ids, 10)
        assert [h.id for h in index.search(q, k=10, nprobe=16, ncandidates=120)] == want
        stored = index.get(ids[7]).embeddings
        np.testing.assert_allclose(np.sort(stored, axis=0), np.sort(docs[7], axis=0), atol=tol)
    assert index.info()["centroids"] == 16
    index.verify()


def test_search_batch_with_a_filter(path):
    index, docs, ids = build(path, n=150)
    queries = [query_from(docs[i], seed=i) for i in (3, 4, 50, 99)]
    group = [i for i in range(len(ids)) if i % 3 == 1]
    batch = index.search_batch(queries, k=5, filter={"group": 1})
    for q, hits in zip(queries, batch):
        assert [(h.id, h.score) for h in hits] == [
            (h.id, h.score) for h in index.search(q, k=5, filter={"group": 1})
        ]
        assert hits and all(h.metadata == {"group": 1} for h in hits)
    exact = index.search_batch(queries, k=5, filter={"group": 1}, exact=True)
    for q, hits in zip(queries, exact):
        decompressed = [index.get(ids[i]).embeddings for i in group]
        want, scores = brute_force(q, decompressed, [ids[i] for i in group], 5)
        assert [h.id for h in hits] == want
        np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-5, atol=1e-5)
    assert index.search_batch(queries, k=5, filter={"group": 7}) == [[], [], [], []]


def test_search_defaults_are_the_documented_ones(path):
    index, docs, _ = build(path, n=300)
    q = query_from(docs[8])
    for k in (5, 20):  # max(256, 16 k): 256, then 320 documents scored exactly
        explicit = index.search(q, k=k, nprobe=2, ncandidates=max(256, 16 * k))
        assert index.search(q, k=k) == explicit
    assert index.search(q, k=20) != index.search(q, k=20, nprobe=1, ncandidates=20)
