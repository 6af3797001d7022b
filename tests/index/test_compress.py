"""Index.compress and `colmax compress`: an exact index's plaid form from its stored vectors
equals the index built as plaid from the same vectors, and a killed compress never harms the
original."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from colmax.cli import main
from colmax.index import Index
from colmax.index.files import VERIFIED

DIM = 16
# Standard-library modules whose docstrings make a small real English corpus available anywhere.
_MODULES = (
    "argparse collections csv datetime decimal email.message functools heapq http.client json logging "
    "pathlib shutil sqlite3 statistics subprocess tarfile tempfile textwrap threading zipfile"
).split()


def docstring_corpus(n_docs=240):
    """(ids, texts, metadata) of public functions' and classes' docstrings; and queries: their
    first lines."""
    seen, ids, texts, metas = set(), [], [], []
    for name in _MODULES:
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if not attr.startswith("_") and callable(obj) else None
            if not doc or len(doc) < 120 or doc in seen:
                continue
            seen.add(doc)
            ids.append(f"{name}.{attr}")
            texts.append(" ".join(doc.split())[:700])
            metas.append({"module": name})
    step = max(1, len(ids) // n_docs)
    return ids[::step][:n_docs], texts[::step][:n_docs], metas[::step][:n_docs]


@pytest.fixture(scope="module")
def docstrings(tmp_path_factory):
    """An exact float32 index of the corpus (default model), and a plaid one built from its vectors."""
    root = tmp_path_factory.mktemp("docstrings")
    ids, texts, metas = docstring_corpus()
    exact = Index.create(root / "exact", kind="exact", storage="float32")
    with warnings.catch_warnings():  # one passage per document, as add_embeddings stores them
        warnings.simplefilter("ignore", UserWarning)
        exact.add(texts, ids, metas, truncate=True)
    vectors = [d.embeddings for d in exact.get_batch(ids)]
    plaid = Index.create(root / "plaid", kind="plaid")
    plaid.add_embeddings(vectors, ids, metas, texts=texts)
    queries = [t.split(".")[0] for t in texts[::8]]
    return root, exact, plaid, queries


def test_compressed_equals_built_as_plaid(docstrings, tmp_path):
    _, exact, plaid, queries = docstrings
    before = sorted(os.listdir(exact.path))
    compressed = exact.compress(tmp_path / "c")
    assert compressed.kind == "plaid" and compressed.storage is None and exact.kind == "exact"
    assert sorted(os.listdir(exact.path)) == before  # the original is left as it was
    assert compressed.ids() == plaid.ids() == exact.ids()
    for a, b in zip(compressed.get_batch(plaid.ids(), embeddings=False), plaid.get_batch(plaid.ids())):
        assert (a.text, a.metadata) == (b.text, b.metadata)
    for q in queries[:10]:  # the keyword side is the same table
        assert compressed.search(q, mode="keyword") == plaid.search(q, mode="keyword")
    for q in queries:  # the same codebook, the same codes: the same ranking and scores
        assert compressed.search(q, mode="semantic") == plaid.search(q, mode="semantic")
    info, built = compressed.info(), plaid.info()
    assert info["bytes_per_token"] == pytest.approx(built["bytes_per_token"], rel=0.02)
    assert (info["nbits"], info["centroids"]) == (built["nbits"], built["centroids"])
    compressed.verify()


def test_compress_keeps_long_documents_as_passages(tmp_path):
    """Passages carry over position by position: the same spans, and each question finds its
    long document, at the passage the exact index finds it."""
    from long_documents import QUERIES, documents

    docs = documents()[:8]
    exact = Index.create(tmp_path / "exact", kind="exact", storage="float32")
    exact.add([text for _, text in docs], [id_ for id_, _ in docs])
    compressed = exact.compress(tmp_path / "c", n_centroids=64)
    for id_, _ in docs:
        assert compressed.get(id_).spans == exact.get(id_).spans and len(exact.get(id_).spans) > 1
    for question, id_ in QUERIES:
        if id_ in dict(docs):
            want, got = exact.search(question, k=1)[0], compressed.search(question, k=1)[0]
            assert (got.id, got.passage, got.span) == (want.id, want.passage, want.span) and got.id == id_


def test_compress_in_place_is_one_commit(docstrings, tmp_path, capsys):
    _, exact, _, queries = docstrings
    assert main(["compress", str(exact.path), "-o", str(tmp_path / "copy"), "--nbits", "4"]) == 0
    assert "plaid 4-bit" in capsys.readouterr().out
    copy = Index.open(tmp_path / "copy")
    assert copy.info()["nbits"] == 4
    # copy exact -> an exact index to compress in place, with a reader on the exact commit
    with Index.create(tmp_path / "ip", kind="exact", storage="bfloat16") as ix:
        docs = exact.get_batch(exact.ids())
        ix.add_embeddings([d.embeddings for d in docs], [d.id for d in docs], [d.metadata for d in docs],
                          texts=[d.text for d in docs])  # fmt: skip
        ix.delete([docs[3].id])
        reader = Index.open(tmp_path / "ip", auto_reload=False)
        hits = reader.search(queries[0])
        generation = ix.generation
        assert ix.compress() is ix and ix.kind == "plaid" and ix.generation == generation + 1
        assert reader.search(queries[0]) == hits  # a reader keeps the commit it opened
        assert reader.reload() and reader.kind == "plaid" and len(reader) == len(docs) - 1
        assert docs[3].id not in ix and ix.get(docs[5].id).text == docs[5].text
        assert not [f for f in os.listdir(ix.path) if f.endswith(".tokens")]  # no exact segment left
        ix.verify()
        with pytest.raises(ValueError, match=r"already a plaid index.*lossy"):
            ix.compress()
        with pytest.raises(ValueError, match="lossy"):
            ix.compress(tmp_path / "back")
    assert main(["compress", str(tmp_path / "ip")]) == 2
    assert "cannot become exact again" in capsys.readouterr().err


def test_compress_errors(tmp_path):
    empty = Index.create(tmp_path / "empty", dim=DIM, kind="exact")
    with pytest.raises(ValueError, match="no documents"):
        empty.compress()
    rng = np.random.default_rng(0)
    empty.add_embeddings([rng.standard_normal((4, DIM)).astype(np.float32)], ["a"])
    with pytest.raises(ValueError, match="nbits"):
        empty.compress(nbits=3)
    with pytest.raises(ValueError, match="storage"):
        empty.compress(storage="int4")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="choose a new path"):
        empty.compress(tmp_path / "full")
    kept = empty.compress(tmp_path / "kept", storage="float16", n_centroids=2)
    assert kept.storage == "float16" and kept.info()["centroids"] == 2
    a, b = kept.get("a").embeddings, empty.get("a").embeddings  # plaid keeps tokens in centroid order
    np.testing.assert_allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], atol=2e-2)


# -- crash safety: compress killed at several points -------------------------------------------

_CRASH_SCRIPT = """
import os, signal, sys
import colmax.index.compress as compress
import colmax.index.manifest as manifest
from colmax.index import Index
from colmax.index.segments import SegmentWriter
from colmax.index.store import Store

point, path, out = sys.argv[1], sys.argv[2], sys.argv[3]

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

if point == "store":
    Store.write = die
elif point == "codebook":
    compress.train_spread = die
elif point == "segment":
    SegmentWriter.finish = die
elif point == "manifest":
    manifest.write_manifest = die
elif point == "rename":
    compress.os.rename = die
print("ready", flush=True)
while True:
    index = Index.open(path)
    if index.kind == "plaid":  # compressed in place by an earlier round
        die()
    index.compress(None if out == "-" else out)
    if out == "-":
        die()
    trash = out + ".done"  # moved away whole, so that a kill never leaves half of it at out
    os.replace(out, trash)
    import shutil
    shutil.rmtree(trash)
"""


def _crash_index(path):
    rng = np.random.default_rng(5)
    docs = [rng.standard_normal((int(rng.integers(2, 30)), DIM)).astype(np.float32) for _ in range(1500)]
    ids = [f"d{i}" for i in range(1500)]
    ix = Index.create(path, dim=DIM, kind="exact", storage="bfloat16")
    ix.add_embeddings(docs, ids, [{"i": i} for i in range(1500)], texts=[f"shared w{i}" for i in range(1500)])
    ix.delete(ids[:7])
    return ix


def _kill_compress(point, path, out, delay=None):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, point, str(path), str(out)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline() == "ready\n"
    if delay is None:
        proc.wait(timeout=60)
    else:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def _check_after_kill(path, out, ids, hits, keyword, q):
    """The original is whole and unchanged, or (compressed in place before the kill) whole and
    plaid; a new index exists whole or not at all."""
    index = Index.open(path)
    index.verify()
    assert index.ids() == ids
    if index.kind == "exact":
        assert index.search(q, k=20) == hits and index.search("w9", mode="keyword") == keyword
    if out.exists():
        Index.open(out).verify()
        assert Index.open(out).ids() == ids


@pytest.mark.parametrize("point", ["store", "codebook", "segment", "manifest", "random"])
@pytest.mark.parametrize("in_place", [True, False])
def test_killed_compress_leaves_the_original(tmp_path, point, in_place):
    path, out = tmp_path / "ix", tmp_path / "out"
    ix = _crash_index(path)
    q = np.random.default_rng(9).standard_normal((5, DIM)).astype(np.float32)
    ids, hits, keyword = ix.ids(), ix.search(q, k=20), ix.search("w9", mode="keyword")
    files = sorted(os.listdir(path))
    ix.close()
    delays = (0.15, 0.4, 0.7) if point == "random" else (None,)
    for delay in delays:
        _kill_compress(point, path, "-" if in_place else out, delay)
        _check_after_kill(path, out, ids, hits, keyword, q)
        if delay is None:  # killed at the point: nothing of the new form is visible
            assert Index.open(path).kind == "exact" and not out.exists()
        shutil.rmtree(out, ignore_errors=True)
    # the next compress clears what the dead one left behind and completes
    index = Index.open(path)
    done = index.compress(None if in_place else out) if index.kind == "exact" else index
    assert done.kind == "plaid" and done.ids() == ids
    # BM25 statistics no longer count the deleted documents, as after a compact
    assert [h.id for h in done.search("w9", mode="keyword")] == [h.id for h in keyword]
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]
    if not in_place:  # (but the record of the verifications above: not part of a commit)
        assert sorted(set(os.listdir(path)) - {VERIFIED}) == files


def test_killed_while_renaming_the_new_index(tmp_path):
    path, out = tmp_path / "ix", tmp_path / "out"
    _crash_index(path).close()
    _kill_compress("rename", path, out)
    assert not out.exists() and (tmp_path / ".out.colmax-partial").is_dir()
    assert Index.open(path).compress(out).kind == "plaid"
    assert not (tmp_path / ".out.colmax-partial").exists()


def test_help_lists_compress(capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--help"])
    assert "lossy" in textwrap.dedent(capsys.readouterr().out)
