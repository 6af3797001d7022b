"""Every chunk constant of the write, store and rewrite paths, lowered through monkeypatch and
crossed on purpose (exactly at the boundary, one under, one over), against an index built with
the constants as shipped (one chunk): the same files, byte for byte, and the same answers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from colmax.index import Index, rewrite, store, write
from colmax.index.segments import SegmentWriter
from tiny_checkpoints import tiny_model

DIM = 8


def unit_docs(lengths, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = [rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]
    return [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]


def index_files(path) -> dict[str, bytes]:
    """The bytes of every segment and codebook file (the store is SQLite: compared by API)."""
    return {
        p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name.startswith(("seg-", "codebook-"))
    }


def same_answers(a: Index, b: Index, seed=5) -> None:
    assert a.ids() == b.ids() and a.generation == b.generation
    for id_ in a.ids():
        x, y = a.get(id_), b.get(id_)
        assert (x.metadata, x.text) == (y.metadata, y.text)
        np.testing.assert_array_equal(x.embeddings, y.embeddings)
    q = unit_docs([5], seed)[0]
    assert [(h.id, h.score) for h in a.search(q, k=50)] == [(h.id, h.score) for h in b.search(q, k=50)]


def record_appends(monkeypatch, method="append") -> list[int]:
    """Documents per SegmentWriter.append (or append_stored) call, the real method still doing the work."""
    calls: list[int] = []
    original = getattr(SegmentWriter, method)

    def recording(self, *args, **kwargs):
        lengths = args[1]
        calls.append(len(lengths))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SegmentWriter, method, recording)
    return calls


def greedy_chunks(lengths, limit) -> list[int]:
    """Whole documents per chunk, as many as fit in ``limit`` rows, at least one."""
    chunks, rows, n = [], 0, 0
    for length in lengths:
        if n and rows + length > limit:
            chunks.append(n)
            rows, n = 0, 0
        rows, n = rows + length, n + 1
    return [*chunks, n]


# -- WRITE_CHUNK_TOKENS: rows per SegmentWriter.append while adding

LAYOUTS = {
    "exactly at the boundary": [3, 3, 4] * 3,
    "one under": [3, 3, 3] * 3,
    "one over": [3, 3, 5] * 3,
    "documents longer than a chunk": [12, 2, 11, 10],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("create", [{"storage": "float32"}, {"storage": "bfloat16"}, {"kind": "plaid"}])
def test_write_chunk_tokens(tmp_path, monkeypatch, layout, create):
    lengths = LAYOUTS[layout]
    docs = unit_docs(lengths)
    ids = [f"d{i}" for i in range(len(docs))]
    meta = [{"n": i} for i in range(len(docs))]
    create = {"n_centroids": 4, **create} if create.get("kind") == "plaid" else create
    reference = Index.create(tmp_path / "reference", dim=DIM, **create)
    reference.add_embeddings(docs, ids, meta)
    monkeypatch.setattr(write, "WRITE_CHUNK_TOKENS", 10)
    calls = record_appends(monkeypatch)
    chunked = Index.create(tmp_path / "chunked", dim=DIM, **create)
    chunked.add_embeddings(docs, ids, meta)
    assert calls == greedy_chunks(lengths, 10)
    assert index_files(tmp_path / "chunked") == index_files(tmp_path / "reference")
    same_answers(chunked, reference)


# -- ADD_CHUNK_DOCS: documents encoded per step of add()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny")


TEXTS = [
    "paris is the capital of france",
    "berlin is the capital of germany",
    "colbert",
    "late interaction, late interaction",
    "what is the capital",
    "germany",
    "france is paris",
    "the capital of the capital",
    "interaction is late",
]


@pytest.mark.parametrize("n", [3, 4, 5, 9])  # chunk of 4: one under, exactly, one over, two over
def test_add_chunk_docs(tmp_path, monkeypatch, model, n):
    texts, ids = TEXTS[:n], [f"t{i}" for i in range(n)]
    reference = Index.create(tmp_path / "reference", model=model)
    reference.add(texts, ids)
    monkeypatch.setattr(write, "ADD_CHUNK_DOCS", 4)
    chunked = Index.create(tmp_path / "chunked", model=model)
    encode = chunked.encoder.encode_passages
    calls: list[int] = []

    def recording(batch, **kwargs):
        calls.append(len(batch))
        return encode(batch, **kwargs)

    monkeypatch.setattr(chunked.encoder, "encode_passages", recording)
    chunked.add(texts, ids)
    assert calls == [4] * (n // 4) + ([n % 4] if n % 4 else [])
    assert chunked.ids() == reference.ids() and chunked.generation == reference.generation == 1
    for id_, text in zip(ids, texts):
        got, want = chunked.get(id_), reference.get(id_)
        assert got.text == want.text == text
        # batches of other widths may round differently in the last bits of float32
        np.testing.assert_allclose(got.embeddings, want.embeddings, atol=1e-5)
    hits = chunked.search("capital of france", k=n)
    want = reference.search("capital of france", k=n)
    assert [h.id for h in hits] == [h.id for h in want]
    np.testing.assert_allclose([h.score for h in hits], [h.score for h in want], atol=1e-4)


# -- store._BATCH: ids and positions per SQL statement


@pytest.mark.parametrize("n", [3, 4, 5])
def test_store_batch(tmp_path, monkeypatch, n):
    docs = unit_docs([4] * 12)
    ids = [f"d{i}" for i in range(12)]
    indexes = {}
    for name in ("reference", "chunked"):
        if name == "chunked":
            monkeypatch.setattr(store, "_BATCH", 4)
        index = Index.create(tmp_path / name, dim=DIM)
        index.add_embeddings(docs, ids, [{"n": i} for i in range(12)])
        q = unit_docs([3], seed=9)[0]
        picked = ids[1 : 1 + n]
        reranked = [
            (h.id, h.score, h.metadata, h.text) for h in index.rerank(q, picked)
        ]  # positions_of, rows
        top = [(h.id, h.score, h.metadata, h.text) for h in index.search(q, k=n)]  # rows
        index.delete(picked)  # positions_of
        indexes[name] = (reranked, top, index.ids(), [index.get(i).metadata for i in index.ids()])
    assert indexes["chunked"] == indexes["reference"]
    assert len(indexes["chunked"][0]) == n and len(indexes["chunked"][2]) == 12 - n


# -- REWRITE_CHUNK_DOCS: documents copied or re-encoded per step of compact() and retrain()


def two_segment_index(path, n_second: int, **create) -> Index:
    """An index of two segments (two adds): the first keeps 2 live documents, the second
    ``n_second``; rewrites chunk the documents of each segment."""
    docs = unit_docs([2, 3, 4, 5, 3, 2, 6, 3, 4], seed=3)
    ids = [f"d{i}" for i in range(len(docs))]
    index = Index.create(path, dim=DIM, **create)
    index.add_embeddings(docs[:3], ids[:3], [{"n": i} for i in range(3)])
    index.add_embeddings(docs[3:], ids[3:], [{"n": i} for i in range(3, 9)])
    index.delete([ids[1], *ids[4 : 4 + 6 - n_second]])
    return index


@pytest.mark.parametrize("n_second", [3, 4, 5])
@pytest.mark.parametrize(
    "create", [{"storage": "float16"}, {"kind": "plaid"}, {"kind": "plaid", "storage": "float32"}]
)
def test_rewrite_chunk_docs(tmp_path, monkeypatch, n_second, create):
    create = {"n_centroids": 4, **create} if create.get("kind") == "plaid" else create
    two_segment_index(tmp_path / "built", n_second, **create).close()
    for operation in ["compact"] + (["retrain"] if create.get("kind") == "plaid" else []):
        for name in ("reference", "chunked"):
            shutil.copytree(tmp_path / "built", tmp_path / f"{operation}-{name}")
        reference = Index.open(tmp_path / f"{operation}-reference")
        getattr(reference, operation)()
        chunked = Index.open(tmp_path / f"{operation}-chunked")
        with monkeypatch.context() as patch:
            patch.setattr(rewrite, "REWRITE_CHUNK_DOCS", 4)
            calls = record_appends(patch, "append_stored" if operation == "compact" else "append")
            getattr(chunked, operation)()
        assert calls == [2] + [4] * (n_second // 4) + ([n_second % 4] if n_second % 4 else [])
        assert len(chunked) == 2 + n_second
        assert index_files(tmp_path / f"{operation}-chunked") == index_files(
            tmp_path / f"{operation}-reference"
        )
        same_answers(chunked, reference)
