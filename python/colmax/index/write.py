"""The write path: creating an index directory, recovering from an unfinished commit, and the
transaction every write runs in (add, delete, update and add_keyword_index here; compact and
retrain in rewrite.py).

A commit writes new files (segments, a codebook, rows of the store tagged with the new
generation), then atomically replaces the manifest. Until that rename nothing new is visible;
after a crash the next writer's recovery deletes the leftovers (docs/format.md).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._version import __version__
from ..ragged import Ragged
from . import manifest as manifests
from .codebook import Codebook
from .files import GENERATED_PREFIXES, LOCK, MANIFEST, segment_name
from .lock import WriterLock
from .manifest import Manifest, read_manifest
from .segments import SegmentWriter
from .snapshot import Snapshot, load
from .store import Store
from .training import save_codebook, train_codebook

# Documents encoded per step of add(): bounds memory to one chunk of vectors in flight and lets
# the previous chunk be written while the next is encoded.
ADD_CHUNK_DOCS = 1024
# Rows converted to the storage dtype (and compressed) per write while appending.
WRITE_CHUNK_TOKENS = 1 << 16


def create(path: Path, manifest: Manifest, codebook: Codebook | None = None) -> None:
    """Make ``path`` (new or empty) an index whose first commit is ``manifest`` with an empty
    store (and ``codebook`` installed, for a plaid index); on any failure leave the directory
    as it was."""
    existed = path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        with WriterLock(path):
            if codebook is not None:
                requested = manifest.codebook.get("n_centroids")
                manifest = manifest.replace(codebook=save_codebook(path, 0, codebook, requested))
            Store.create(path / manifest.store, manifest.keyword).close()
            manifests.write_manifest(path, manifest.replace(created_with=__version__))
    except BaseException:
        discard(path, existed)
        raise


def discard(path: Path, existed: bool) -> None:
    """Remove a half-built index: the directory itself, or only its content if it existed before."""
    if not existed:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def recover(snap: Snapshot) -> None:
    """Writer only: undo what an unfinished commit after ``snap`` left behind (its store rows
    and its files), and remove files an earlier commit made garbage."""
    snap.store.rollback_to(snap.generation, snap.manifest.keyword)
    keep = snap.manifest.files()
    for name in os.listdir(snap.path):
        if name in keep or name == LOCK:
            continue
        if name.startswith(snap.manifest.store):  # its journal: SQLite's own recovery owns it
            continue
        if name.startswith(GENERATED_PREFIXES) or name == MANIFEST + ".tmp":
            (snap.path / name).unlink(missing_ok=True)


class Transaction:
    """One commit in the making, under the writer lock. ``snapshot`` is the newest commit,
    recovered; ``gen`` the generation being written. Steps that hold resources register how to
    release them (``on_abort``); ``commit`` makes a new manifest current and loads it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.manifest = snapshot.manifest
        self.gen = snapshot.generation + 1
        self.result: Snapshot | None = None
        self._undo: list = []

    def on_abort(self, undo) -> None:
        self._undo.append(undo)

    def commit(self, new: Manifest) -> Snapshot:
        manifests.write_manifest(self.snapshot.path, new)  # through the module: tests patch it there
        self.result = load(self.snapshot.path, new, self.snapshot)
        return self.result

    def abort(self) -> None:
        try:
            if read_manifest(self.snapshot.path) != self.manifest:
                return  # the commit happened: the failure came after the rename
        except Exception:
            pass
        try:
            for undo in reversed(self._undo):
                undo()
            recover(self.snapshot)
        except Exception:  # never hide the original error: the next writer recovers anyway
            pass


@contextmanager
def transaction(current: Snapshot, mutex: threading.Lock) -> Iterator[Transaction]:
    """Take the writer lock, move to the newest commit and recover; abort on any exception."""
    path = current.path
    with mutex, WriterLock(path):
        m = read_manifest(path)
        # whole manifests compare: a rollback may have reused the generation number
        snap = current if m == current.manifest else load(path, m, current)
        recover(snap)
        txn = Transaction(snap)
        try:
            yield txn
        except BaseException:
            txn.abort()
            raise


def encoded_chunks(encoder, texts: Sequence[str], batch_size: int | None, bar) -> Iterator[Ragged]:
    """The documents' vectors, ADD_CHUNK_DOCS documents at a time, in order."""
    for start in range(0, len(texts), ADD_CHUNK_DOCS):
        ragged = encoder.encode_documents(texts[start : start + ADD_CHUNK_DOCS], batch_size=batch_size)
        bar.update(len(ragged))
        yield ragged


def append(
    txn: Transaction,
    docs: Ragged | Iterable[Ragged] | None,
    ids: list[str],
    metas: list,
    texts: Sequence[str] | None,
    delete_ids: list[str],
    threads,
) -> None:
    """Commit new documents (a Ragged, or chunks of one in id order) and tombstones for
    ``delete_ids`` (KeyError, and nothing written, if one is unknown)."""
    snap, m, gen = txn.snapshot, txn.manifest, txn.gen
    tombstones = snap.positions(delete_ids) if delete_ids else []
    if ids:
        existing = set(snap.store.positions_of(ids, m.generation)) - set(delete_ids)
        if existing:
            raise ValueError(
                f"id {existing.pop()!r} is already in the index: use update() or delete it first"
            )
    segments, n_new = m.segments, 0
    if docs is not None:
        chunks = [docs] if isinstance(docs, Ragged) else docs
        codebook = snap.codebook
        if m.kind == "plaid" and not m.trained:
            chunks = list(chunks)  # the first add trains the codebook on all its vectors
            tokens = np.concatenate([c.tokens for c in chunks])
            codebook, m = train_codebook(snap, m, gen, tokens, None, threads)
        writer = SegmentWriter(snap.path, segment_name(gen), m.next_pos, m, codebook, threads)
        txn.on_abort(writer.abort)
        n_new = _append_all(writer, chunks)
        if n_new != len(ids):
            raise RuntimeError(f"internal error: {n_new} documents encoded for {len(ids)} ids")
        segments = (*segments, writer.finish())
    rows = ((m.next_pos + i, ids[i], metas[i], texts[i] if texts is not None else None) for i in range(n_new))
    snap.store.write(gen, rows, tombstones)
    txn.commit(
        m.replace(
            generation=gen,
            next_pos=m.next_pos + n_new,
            n_live=m.n_live + n_new - len(tombstones),
            segments=segments,
        )
    )


def add_keyword_index(txn: Transaction) -> None:
    """Commit the keyword index of every stored text (nothing to do if there is one). A crash
    before the commit leaves a table the manifest does not declare: recovery drops it."""
    if txn.manifest.keyword:
        return
    txn.snapshot.store.add_keyword_index()
    txn.commit(txn.manifest.replace(generation=txn.gen, keyword=True))


def _append_all(writer: SegmentWriter, chunks: Iterable[Ragged]) -> int:
    """Append every chunk, writing one while the next is produced (encoding and file writes
    release the GIL); return the number of documents. On error the pending write finishes
    before the exception leaves, so the caller can abort the segment safely."""
    n = 0
    with ThreadPoolExecutor(max_workers=1) as pool:  # exit waits for the last write
        pending = None
        for ragged in chunks:
            if pending is not None:
                pending.result()
            pending = pool.submit(_append_chunked, writer, ragged)
            n += len(ragged)
        if pending is not None:
            pending.result()
    return n


def _append_chunked(writer: SegmentWriter, ragged: Ragged) -> None:
    lengths = ragged.lengths
    start = 0
    while start < len(ragged):
        # whole documents per chunk, about WRITE_CHUNK_TOKENS rows
        stop = (
            int(np.searchsorted(ragged.offsets, ragged.offsets[start] + WRITE_CHUNK_TOKENS, side="right")) - 1
        )
        stop = min(max(stop, start + 1), len(ragged))
        lo, hi = int(ragged.offsets[start]), int(ragged.offsets[stop])
        writer.append(ragged.tokens[lo:hi], lengths[start:stop])
        start = stop
