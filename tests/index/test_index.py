"""colmax.Index on small random vectors: persistence, crash safety, concurrency, corruption, errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import colmax
import numpy as np
import pytest
from colmax.index import Index, IndexFormatError, IndexLockedError, IndexVersionError
from colmax.index.lock import WriterLock

DIM = 16
STORAGES = ["float32", "float16", "bfloat16", "int8"]


def make_docs(n, seed=0, dim=DIM, max_len=12):
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        m = rng.standard_normal((int(rng.integers(1, max_len + 1)), dim)).astype(np.float32)
        docs.append(m / np.linalg.norm(m, axis=1, keepdims=True))
    return docs


def make_query(seed=100, n=5, dim=DIM):
    q = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def stored(m, storage):
    """What the index stores for a float32 matrix, back in float32."""
    if storage == "float16":
        return m.astype(np.float16).astype(np.float32)
    if storage == "bfloat16":
        return colmax.from_bfloat16(colmax.to_bfloat16(m))
    if storage == "int8":
        values, scales = colmax.quantize_int8(m)
        return values * scales[:, None]
    return m


def reference_ranking(q, docs, ids):
    scores = np.array([(q @ d.T).max(axis=1).sum() for d in docs])
    order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))
    return [ids[i] for i in order], scores


def ids_of(hits):
    return [h.id for h in hits]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "ix"


def text_of(id_):
    """A text every document shares a term of ("shared") and one term of its own (its id)."""
    return f"shared {id_.replace('-', 'x')}"


def build(path, n=40, storage="float32", seed=0, batches=1, texts=False):
    docs = make_docs(n, seed)
    ids = [f"d{i}" for i in range(n)]
    meta = [{"group": i % 3, "name": f"n{i}", "even": i % 2 == 0} for i in range(n)]
    index = Index.create(path, dim=DIM, storage=storage)
    step = -(-n // batches)
    for s in range(0, n, step):
        chunk = ids[s : s + step]
        index.add_embeddings(
            docs[s : s + step],
            chunk,
            meta[s : s + step],
            texts=[text_of(i) for i in chunk] if texts else None,
        )
    return index, docs, ids


# -- search correctness ----------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("batches", [1, 3])
def test_search_matches_numpy_reference(path, storage, batches):
    index, docs, ids = build(path, storage=storage, batches=batches)
    q = make_query()
    expected, scores = reference_ranking(q, [stored(d, storage) for d in docs], ids)
    hits = index.search(q, k=10)
    assert len(hits) == 10
    # widening float16 to float32 is exact, so only the sums' order differs from the reference;
    # bfloat16 kernels (AVX512-BF16, AMX) round the query to bfloat16 too; int8 kernels quantize
    # it (32 levels a side)
    tol = {"bfloat16": 2e-2, "int8": 5e-2}.get(storage, 1e-5)
    got = {h.id: h.score for h in hits}
    for h in hits:
        assert h.score == pytest.approx(scores[ids.index(h.id)], abs=tol)
    if storage not in ("bfloat16", "int8"):  # rounded queries may swap near-ties with the float order
        assert ids_of(hits) == expected[:10]
    else:
        assert len(set(got) & set(expected[:10])) >= 8
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].metadata == {
        "group": int(hits[0].id[1:]) % 3,
        "name": f"n{hits[0].id[1:]}",
        "even": int(hits[0].id[1:]) % 2 == 0,
    }
    assert index.search(q, k=1000)[-1].id == expected[-1] or storage == "bfloat16"
    assert len(index.search(q, k=1000)) == 40


def test_search_batch_equals_search(path):
    index, _, _ = build(path, batches=2)
    queries = [make_query(s) for s in range(4)]
    batch = index.search_batch(queries, k=7)
    assert [ids_of(b) for b in batch] == [ids_of(index.search(q, k=7)) for q in queries]
    ragged = colmax.Ragged.from_list(queries)
    assert [ids_of(b) for b in index.search_batch(ragged, k=7)] == [ids_of(b) for b in batch]


def test_rerank_and_explain(path):
    index, docs, _ = build(path, batches=2)
    q = make_query()
    subset = ["d3", "d30", "d7", "d3"]
    hits = index.rerank(q, subset)
    assert sorted(ids_of(hits)) == ["d3", "d30", "d7"]
    full = {h.id: h.score for h in index.search(q, k=40)}
    for h in hits:
        assert h.score == pytest.approx(full[h.id], abs=1e-6)
    assert index.rerank(q, []) == []
    ex = index.explain(q, "d30")
    sims = q @ docs[30].T
    np.testing.assert_array_equal(ex.doc_token, sims.argmax(axis=1))
    np.testing.assert_allclose(ex.similarity, sims.max(axis=1), atol=1e-6)
    assert ex.score == pytest.approx(full["d30"], abs=1e-5)
    assert ex.query_tokens is None and ex.doc_tokens is None
    assert "d30" in str(ex)


def test_filter(path):
    index, _, _ = build(path)
    q = make_query()
    hits = index.search(q, k=40, filter={"group": 1})
    assert hits and all(h.metadata["group"] == 1 for h in hits)
    assert len(hits) == len([i for i in range(40) if i % 3 == 1])
    hits = index.search(q, k=40, filter={"group": {"in": [0, 2]}, "even": True})
    assert {h.id for h in hits} == {f"d{i}" for i in range(40) if i % 3 != 1 and i % 2 == 0}
    # True must not match 1, a string must not match a number
    assert index.search(q, k=5, filter={"group": True}) == []
    assert index.search(q, k=5, filter={"group": "1"}) == []
    assert index.search(q, k=5, filter={"missing": None}) == []
    assert ids_of(index.search(q, k=5, filter={"name": "n4"})) == ["d4"]
    assert index.search(q, k=40, filter={"group": 1.0}) == index.search(q, k=40, filter={"group": 1})
    index.delete(["d1"])
    assert "d1" not in ids_of(index.search(q, k=40, filter={"group": 1}))


@pytest.mark.parametrize(
    "bad, error",
    [
        ("group", TypeError),
        ({}, ValueError),
        ({"group": {"gt": 1}}, ValueError),
        ({"group": {"in": []}}, ValueError),
        ({"group": {"in": "abc"}}, TypeError),
        ({"group": [1, 2]}, TypeError),
        ({1: 2}, TypeError),
    ],
)
def test_bad_filters(path, bad, error):
    index, _, _ = build(path, n=5)
    with pytest.raises(error):
        index.search(make_query(), filter=bad)


# -- persistence -------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", STORAGES)
def test_round_trip(path, storage):
    index, docs, ids = build(path, storage=storage, batches=3)
    q = make_query()
    before = index.search(q, k=15)
    index.close()
    reopened = Index.open(path)
    assert reopened.storage == storage and reopened.dim == DIM and len(reopened) == 40
    assert reopened.search(q, k=15) == before
    assert "d5" in reopened and "zz" not in reopened and 5 not in reopened
    doc = reopened.get("d5")
    assert doc.id == "d5" and doc.text is None and doc.metadata["name"] == "n5"
    np.testing.assert_array_equal(doc.embeddings, stored(docs[5], storage))
    assert reopened.ids() == ids
    reopened.verify()
    info = reopened.info()
    assert info["documents"] == 40 and info["segments"] == 3
    assert info["bytes_per_token"] == {"float32": 4 * DIM, "int8": DIM + 4}.get(storage, 2 * DIM)
    assert info["tokens"] == sum(len(d) for d in docs)


def test_segments_are_memory_mapped(path):
    index, _, _ = build(path)
    assert all(
        isinstance(s.tokens, np.memmap) and isinstance(s.offsets, np.memmap) for s in index._snapshot.segments
    )


def test_generated_ids_and_delete_compact(path):
    index = Index.create(path, dim=DIM)
    docs = make_docs(30, seed=1)
    generated = index.add_embeddings(docs[:10], None)
    assert len(set(generated)) == 10 and all(isinstance(i, str) for i in generated)
    index.add_embeddings(docs[10:], [f"x{i}" for i in range(10, 30)])
    q = make_query()
    index.delete(["x12", generated[0]])
    index.delete("x13")
    assert len(index) == 27 and "x12" not in index
    before = index.search(q, k=27)
    assert {"x12", "x13", generated[0]}.isdisjoint(ids_of(before))
    files_before = set(os.listdir(path))
    index.compact()
    assert len(index) == 27 and index.search(q, k=27) == before
    files_after = set(os.listdir(path))
    assert len([f for f in files_after if f.endswith(".tokens")]) == 1
    assert not {f for f in files_before if f.startswith("seg-")} & files_after
    reopened = Index.open(path)
    assert reopened.search(q, k=27) == before
    reopened.verify()
    index.compact()  # nothing to do: no new generation
    assert index.generation == reopened.generation
    # a deleted id can be added again
    index.add_embeddings([docs[12]], ["x12"])
    assert "x12" in index and index.get("x12").embeddings.shape == docs[12].shape


def test_delete_everything_then_compact(path):
    index, _, ids = build(path, n=6)
    index.delete(ids)
    assert len(index) == 0 and index.search(make_query(), k=3) == []
    index.compact()
    assert len(index) == 0 and Index.open(path).search(make_query()) == []
    index.add_embeddings(make_docs(2), ["a", "b"])
    assert ids_of(Index.open(path).search(make_query(), k=5)) in (["a", "b"], ["b", "a"])


def test_reader_snapshot_and_reload(path):
    writer, _, _ = build(path, n=10)
    reader = Index.open(path, auto_reload=False)
    writer.add_embeddings(make_docs(5, seed=9), [f"new{i}" for i in range(5)])
    writer.delete(["d0"])
    assert len(reader) == 10 and "d0" in reader and "new0" not in reader
    assert len(reader.search(make_query(), k=100)) == 10
    assert reader.reload() and len(reader) == 14 and "new0" in reader and "d0" not in reader
    assert not reader.reload()
    writer.compact()
    assert len(reader.search(make_query(), k=100)) == 14  # old maps stay valid after compact
    assert reader.reload() and len(reader.search(make_query(), k=100)) == 14


def test_readers_move_to_other_objects_commits_by_themselves(path):
    writer, _, _ = build(path, n=10)
    reader = Index.open(path)  # auto_reload: the default
    assert len(reader.search(make_query(), k=100)) == 10
    writer.add_embeddings(make_docs(5, seed=9), [f"new{i}" for i in range(5)])
    writer.delete(["d0"])
    hits = reader.search(make_query(), k=100)
    assert len(hits) == 14 and "d0" not in ids_of(hits) and reader.generation == writer.generation
    assert "new0" in reader and reader.get("new0").id == "new0" and not reader.reload()
    writer.compact()
    assert len(reader) == 14 and reader.generation == writer.generation
    pinned = Index.open(path, generation=writer.generation)
    writer.add_embeddings(make_docs(1, seed=3), ["later"])
    assert "later" not in pinned and "later" in reader  # an index opened at a generation stays


def test_writes_from_a_stale_object_see_the_newest_commit(path):
    a, _, _ = build(path, n=5)
    b = Index.open(path)
    a.add_embeddings(make_docs(1, seed=3), ["only-in-a"])
    with pytest.raises(ValueError, match="already in the index"):
        b.add_embeddings(make_docs(1, seed=4), ["only-in-a"])
    b.delete("only-in-a")
    assert len(b) == 5 and a.reload() and len(a) == 5


# -- errors ------------------------------------------------------------------------------------


def test_input_errors(path):
    index, _, _ = build(path, n=5)
    q = make_query()
    for k, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="k must be"):
            index.search(q, k=k)
    with pytest.raises(ValueError, match="shape"):
        index.search(q[:, :4])
    with pytest.raises(ValueError, match="shape"):
        index.search(q[0])
    with pytest.raises(ValueError, match="no rows"):
        index.search(q[:0])
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full((2, DIM), np.nan, np.float32))
    with pytest.raises(TypeError, match="floating"):
        index.search(np.ones((2, DIM), np.int32))
    with pytest.raises(TypeError, match="query must be"):
        index.search(42)
    with pytest.raises(ValueError, match="no model"):
        index.search("a text query")
    with pytest.raises(TypeError, match="list of queries"):
        index.search_batch("one query")
    with pytest.raises(KeyError, match="nope"):
        index.get("nope")
    with pytest.raises(KeyError, match="nope"):
        index.explain(q, "nope")
    with pytest.raises(KeyError, match="nope"):
        index.rerank(q, ["d1", "nope"])
    with pytest.raises(KeyError, match="nope"):
        index.delete(["d1", "nope"])
    assert "d1" in index and len(index) == 5  # all or nothing
    with pytest.raises(TypeError):
        index.delete([1])


def test_add_errors_leave_the_index_unchanged(path):
    index, _, _ = build(path, n=5)
    generation = index.generation
    files = sorted(os.listdir(path))
    docs = make_docs(3, seed=5)
    cases = [
        ((docs, ["a", "b"]), ValueError, "3 documents but 2 ids"),
        ((docs, ["a", "a", "b"]), ValueError, "twice"),
        ((docs, ["a", "d1", "b"]), ValueError, "already in the index"),
        ((docs, ["a", "", "b"]), ValueError, "empty"),
        ((docs, ["a", 2, "b"]), TypeError, "strings"),
        ((docs, ["a", "b", "c"], [{}]), ValueError, "metadata"),
        ((docs, ["a", "b", "c"], {"x": 1}), TypeError, "one dict per document"),
        ((docs, ["a", "b", "c"], [{"x": object()}, None, None]), TypeError, "JSON"),
        ((docs, ["a", "b", "c"], [{"x": float("nan")}, None, None]), TypeError, "JSON"),
        ((docs[0], ["a"]), TypeError, "not one array"),
        (([d[:, :8] for d in docs], ["a", "b", "c"]), ValueError, "dim"),
        (([docs[0], docs[1][:0], docs[2]], ["a", "b", "c"]), ValueError, "no token vectors"),
        (([np.full((2, DIM), np.inf, np.float32)], ["a"]), ValueError, "infinite"),
        (([np.ones((2, DIM), np.int64)], ["a"]), TypeError, "floating"),
        ((["text"], ["a"]), TypeError, "2-D array"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            index.add_embeddings(*args)
    with pytest.raises(TypeError, match="one string"):
        index.add("just one text")
    # nothing to write is no error: batch pipelines need no special case for an empty batch
    assert index.add([]) == [] and index.add([], ids=[], metadata=[]) == []
    assert index.add_embeddings([], []) == [] and index.add_embeddings([], None) == []
    index.delete([])
    index.update_many([], [])
    with pytest.raises(ValueError, match="0 documents but 1 ids"):
        index.add([], ids=["a"])
    with pytest.raises(ValueError, match="empty"):
        index.add(["ok", "  "])
    with pytest.raises(TypeError, match="expected str"):
        index.add(["ok", 3])
    assert index.generation == generation and sorted(os.listdir(path)) == files
    Index.open(path).verify()


def test_create_errors(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        Index.create(tmp_path / "a", dim=4, storage="int4")
    with pytest.raises(ValueError, match="dim"):
        Index.create(tmp_path / "a", dim=0)
    with pytest.raises(TypeError, match="model"):
        Index.create(tmp_path / "a", model=3.5)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(FileExistsError):
        Index.create(tmp_path / "full", dim=4)
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        Index.create(tmp_path / "file", dim=4)
    (tmp_path / "empty").mkdir()
    Index.create(tmp_path / "empty", dim=4)  # an empty directory is fine
    assert not (tmp_path / "a").exists()


# -- on-disk damage ---------------------------------------------------------------------------


def test_open_foreign_missing_and_truncated(tmp_path, path):
    with pytest.raises(FileNotFoundError):
        Index.open(tmp_path / "nowhere")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.txt").write_text("hello")
    with pytest.raises(IndexFormatError, match="not a colmax index"):
        Index.open(tmp_path / "foreign")
    build(path, n=5)
    manifest = path / "colmax-index.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        Index.open(path)
    manifest.write_text(json.dumps({"something": "else"}))
    with pytest.raises(IndexFormatError, match="not a colmax index manifest"):
        Index.open(path)


def test_newer_version_and_tampered_manifest(path):
    build(path, n=5)
    manifest = path / "colmax-index.json"
    body = json.loads(manifest.read_text())
    tampered = dict(body, n_live=99)
    manifest.write_text(json.dumps(tampered))
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.open(path)
    newer = dict(body, format_version=body["format_version"] + 1)
    manifest.write_text(json.dumps(newer))
    with pytest.raises(IndexVersionError, match="upgrade colmax"):
        Index.open(path)


def test_damaged_segments_and_store(path):
    index, _, _ = build(path, n=8)
    index.close()
    (tokens,) = path.glob("*.tokens")
    (offsets,) = path.glob("*.offsets")
    good_tokens, good_offsets = tokens.read_bytes(), offsets.read_bytes()
    tokens.write_bytes(good_tokens[:-4])
    with pytest.raises(IndexFormatError, match="truncated"):
        Index.open(path, verify=False)
    flipped = bytearray(good_tokens)
    flipped[100] ^= 0xFF
    tokens.write_bytes(bytes(flipped))
    with pytest.raises(IndexFormatError, match=rf"{tokens.name}: damaged \(checksum"):
        Index.open(path)  # a small index: every file is hashed on open by default
    damaged = Index.open(path, verify=False)  # sizes and small files only
    with pytest.raises(IndexFormatError, match="checksum"):
        damaged.verify()
    damaged.close()
    tokens.write_bytes(good_tokens)
    flipped = bytearray(good_offsets)
    flipped[9] ^= 0x01
    offsets.write_bytes(bytes(flipped))
    with pytest.raises(IndexFormatError, match="checksum"):
        Index.open(path)
    offsets.write_bytes(good_offsets)
    tokens.unlink()
    with pytest.raises(IndexFormatError, match="missing"):
        Index.open(path)
    tokens.write_bytes(good_tokens)
    (store,) = path.glob("store-*.sqlite")
    store.write_bytes(b"garbage" * 1000)
    with pytest.raises(IndexFormatError, match=r"damaged|not a colmax"):
        Index.open(path)


# -- one writer, readers in parallel ----------------------------------------------------------


def test_second_writer_gets_a_clear_error(path):
    index, _, _ = build(path, n=5)
    other = Index.open(path)
    with WriterLock(path):
        with pytest.raises(IndexLockedError, match="one writer at a time"):
            other.add_embeddings(make_docs(1), ["x"])
        with pytest.raises(IndexLockedError):
            other.delete("d1")
        with pytest.raises(IndexLockedError):
            other.compact()
        assert len(other.search(make_query(), k=3)) == 3  # reading needs no lock
    other.add_embeddings(make_docs(1), ["x"])
    assert index.reload() and "x" in index


def test_lock_held_by_another_process(path):
    build(path, n=3)
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from colmax.index.lock import WriterLock
        with WriterLock(Path({str(path)!r})):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=f"pid {proc.pid}"):
            Index.open(path).delete("d0")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    Index.open(path).delete("d0")  # the kernel released the dead holder's lock


def test_concurrent_reader_while_writing(path):
    writer, _, _ = build(path, n=20)
    reader = Index.open(path, auto_reload=False)  # one commit between reloads: len() and hits agree
    q = make_query()
    errors, sizes = [], []
    stop = threading.Event()

    def read():
        try:
            while not stop.is_set():
                reader.reload()
                hits = reader.search(q, k=1000)
                if len(hits) != len(reader):
                    errors.append(f"{len(hits)} hits for {len(reader)} documents")
                sizes.append(len(hits))
                fresh = Index.open(path, auto_reload=False)
                if len(fresh.search(q, k=1000)) != len(fresh):
                    errors.append("fresh reader inconsistent")
                fresh.close()
        except Exception as e:
            errors.append(repr(e))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for round_ in range(12):
            writer.add_embeddings(make_docs(10, seed=round_ + 50), [f"r{round_}-{i}" for i in range(10)])
            writer.delete([f"r{round_}-0"])
            if round_ % 4 == 3:
                writer.compact()
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert len(set(sizes)) > 1  # the reader saw several commits
    assert len(writer) == 20 + 12 * 9


# -- crash safety: a writer killed at any moment ------------------------------------------------

_CRASH_SCRIPT = """
import os, signal, sys
import numpy as np
import colmax.index.manifest as manifest
from colmax.index import Index
from colmax.index.segments import SegmentWriter
from colmax.index.store import Store

point, path, start = sys.argv[1], sys.argv[2], int(sys.argv[3])

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "segment":
    SegmentWriter.finish = die
elif point == "store":
    Store.write = die
elif point == "manifest":
    manifest.write_manifest = die
elif point == "keyword":
    manifest.write_manifest = die
index = Index.open(path)
if point in ("keyword", "upgrade"):
    index.add_keyword_index()
    die()
rng = np.random.default_rng(start)
batch = 0
while True:
    docs = [rng.standard_normal((int(rng.integers(1, 40)), 16)).astype(np.float32) for _ in range(50)]
    ids = [f"p{start}-{batch}-{i}" for i in range(50)]
    if point == "delete":
        index.delete(index.ids()[:3])
    elif point == "compact":
        index.delete(index.ids()[:3])
        index.compact()
    elif point == "update":
        for id_ in index.ids()[:2]:
            index.update(id_, f"shared {id_} renamed{batch}")
        print("updated", flush=True)
    else:
        texts = [f"shared {id_.replace('-', 'x')}" for id_ in ids]
        index.add_embeddings(docs, ids, [{"b": batch}] * 50, texts=texts)
    batch += 1
"""


def _run_until_killed(point, path, seed, delay=None):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, point, str(path), str(seed)], stdout=subprocess.PIPE, text=True
    )
    if delay is None:
        proc.wait(timeout=60)
    else:
        if point == "update":  # loading the model takes a while: count from its first commit
            assert proc.stdout.readline() == "updated\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def _store_column(path, sql):
    """The first column of ``sql`` over the committed store file itself, bypassing colmax."""
    store = json.loads((path / "colmax-index.json").read_text())["store"]
    conn = sqlite3.connect(path / store)
    try:
        return {r[0] for r in conn.execute(sql)}
    finally:
        conn.close()


def _check_consistent(path, q):
    """The last commit, whole: every live document is found by both sides (MaxSim and keyword),
    no deleted or uncommitted one by either."""
    index = Index.open(path)
    index.verify()
    live = set(index.ids())
    hits = index.search(q, k=100000, mode="semantic")
    assert len(hits) == len(index) == len(live) and {h.id for h in hits} == live
    assert {h.id for h in index.search("shared", k=100000, mode="keyword")} == live
    # every id the store holds a row for: live, tombstoned, or left by an unfinished commit
    for id_ in _store_column(path, "SELECT id FROM docs"):
        found = ids_of(index.search(text_of(id_).split()[1], k=3, mode="keyword"))
        assert found == ([id_] if id_ in live else []), id_
    return index


@pytest.mark.parametrize("point", ["segment", "store", "manifest"])
def test_killed_writer_leaves_last_commit(path, point):
    index, _, _ = build(path, n=20, texts=True)
    q = make_query()
    before = index.search(q, k=100)
    files = sorted(os.listdir(path))
    _run_until_killed(point, path, seed=1)
    reopened = _check_consistent(path, q)
    assert reopened.search(q, k=100) == before and len(reopened) == 20
    # the next writer clears what the dead one left behind and carries on
    reopened.add_embeddings(make_docs(3, seed=7), ["a", "b", "c"])
    assert len(Index.open(path)) == 23
    leftovers = set(os.listdir(path)) - set(files) - {"colmax-verified.json"}  # _check_consistent verified
    assert all(f.startswith("seg-") for f in leftovers), leftovers
    assert len([f for f in os.listdir(path) if f.endswith(".tokens")]) == 2


@pytest.mark.parametrize(
    "point, delays", [("add", (0.4, 0.9, 1.3)), ("delete", (0.5,)), ("compact", (0.6, 1.1))]
)
def test_writer_killed_at_random_moments(path, point, delays):
    build(path, n=201, texts=True)  # a multiple of 3: the delete loop may empty the index in time
    q = make_query()
    for round_, delay in enumerate(delays):
        n_before = len(Index.open(path))
        _run_until_killed(point, path, seed=round_, delay=delay)
        index = _check_consistent(path, q)
        if point == "add":
            assert len(index) >= n_before and (len(index) - 201) % 50 == 0
        else:
            assert len(index) <= n_before and (n_before - len(index)) % 3 == 0
    Index.open(path).add_embeddings(
        make_docs(2, seed=3), ["after-1", "after-2"], texts=[text_of("after-1"), text_of("after-2")]
    )
    _check_consistent(path, q)


@pytest.mark.slow
def test_writer_killed_while_updating(path):
    index = Index.create(path)  # update() encodes: the packaged model
    ids = [f"d{i}" for i in range(12)]
    index.add([text_of(i) for i in ids], ids)
    q = np.asarray(index.encoder.encode_queries(["shared"])[0])
    for round_, delay in enumerate((0.05, 0.3, 0.7)):
        _run_until_killed("update", path, seed=round_, delay=delay)
        assert len(_check_consistent(path, q)) == 12


@pytest.mark.parametrize("point", ["keyword", "upgrade"])
def test_add_keyword_index_killed_before_or_after_it_commits(path, point):
    """Killed after the store's transaction but before the commit ("keyword"), the index stays
    without a keyword index and the next writer drops the table left behind; killed after the
    commit ("upgrade"), it has one. Either way both sides agree."""
    index = Index.create(path, dim=DIM, keyword=False)
    ids = [f"d{i}" for i in range(30)]
    index.add_embeddings(make_docs(30), ids, texts=[text_of(i) for i in ids])
    index.delete(ids[:4])
    _run_until_killed(point, path, seed=0)
    reopened = Index.open(path)
    assert reopened.info()["keyword_index"] is (point == "upgrade")
    assert "keyword" in _store_column(path, "SELECT name FROM sqlite_master")  # written in both cases
    if point == "keyword":
        with pytest.raises(ValueError, match=r"add_keyword_index\(\)"):
            reopened.search("shared", mode="keyword")
        reopened.add_keyword_index()
    _check_consistent(path, make_query())


def test_closed_index_raises(path):
    index, _, _ = build(path, n=3)
    with Index.open(path) as reader:
        assert len(reader) == 3
    for call in (
        lambda: len(reader),
        lambda: "d0" in reader,
        lambda: reader.search(make_query()),
        reader.ids,
    ):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert "closed" in repr(reader)
    index.close()
    with pytest.raises(ValueError, match="closed"):
        index.add_embeddings(make_docs(1), ["x"])


def test_reader_process_while_another_process_writes(path):
    build(path, n=50, texts=True)
    q = make_query()
    proc = subprocess.Popen([sys.executable, "-c", _CRASH_SCRIPT, "add", str(path), "5"])
    try:
        seen = set()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with Index.open(path, auto_reload=False) as reader:
                hits = reader.search(q, k=100000)
                assert len(hits) == len(reader) and (len(reader) - 50) % 50 == 0
                seen.add(len(reader))
    finally:
        proc.kill()
        proc.wait()
    assert len(seen) > 1  # the writer committed while we read
    _check_consistent(path, q)
