"""The write path: creating an index directory, recovering from an unfinished commit, and the
transaction every write runs in (add, delete, update and add_keyword_index here; compact and
retrain in rewrite.py).

A commit writes new files (segments, a codebook, rows of the store tagged with the new
generation), then atomically replaces the manifest. Until that rename nothing new is visible;
after a crash the next writer's recovery deletes the leftovers (docs/format.md).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._version import __version__
from ..encoding.passages import Passages
from ..ragged import Ragged
from . import manifest as manifests
from .codebook import Codebook
from .errors import IndexReadOnlyError, read_only
from .files import GENERATED_PREFIXES, LOCK, MANIFEST, segment_name
from .lock import WriterLock
from .manifest import Manifest, parse_manifest, read_manifest, read_manifest_bytes
from .model import passage_settings
from .segments import SegmentWriter
from .snapshot import Snapshot, load
from .store import Store
from .training import save_codebook, train_codebook
from .types import Added

# Documents encoded per step of add(): bounds memory to one chunk of vectors in flight and lets
# the previous chunk be written while the next is encoded. Long documents fill a chunk by their
# characters (about 4 per token: 1 M characters is some 250 k token vectors, 1,024 documents of
# the default model's 180 tokens 184 k).
ADD_CHUNK_DOCS = 1024
ADD_CHUNK_CHARS = 1 << 20
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
        stamp = manifests.write_manifest(self.snapshot.path, new)  # through the module: tests patch it there
        result = load(self.snapshot.path, new, self.snapshot, stamp=stamp)
        # the files this commit wrote were hashed as they were written
        self.result = dataclasses.replace(result, verified=self.snapshot.verified)
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
def writable(path: Path) -> Iterator[None]:
    """Turn a write refused by the file system (permissions, a read-only mount, a store SQLite
    may only read) into IndexReadOnlyError, which says what to do."""
    try:
        yield
    except IndexReadOnlyError:
        raise
    except PermissionError as e:
        raise read_only(path, e) from None
    except OSError as e:
        if e.errno != errno.EROFS:
            raise
        raise read_only(path, e) from None
    except sqlite3.OperationalError as e:
        # SQLite cannot open a new file (a store, a journal) in a directory it may not write
        refused = "readonly" in str(e) or ("unable to open" in str(e) and not os.access(path, os.W_OK))
        if not refused:
            raise
        raise read_only(path, e) from None


@contextmanager
def transaction(current: Snapshot, mutex: threading.Lock) -> Iterator[Transaction]:
    """Take the writer lock, move to the newest commit and recover; abort on any exception."""
    path = current.path
    with mutex, writable(path), WriterLock(path):
        stamp = read_manifest_bytes(path)
        m = parse_manifest(path, stamp)
        # whole manifests compare: a rollback may have reused the generation number
        snap = current if m == current.manifest else load(path, m, current, stamp=stamp)
        snap.store.upgrade()  # passage columns, for a store written by colmax before them
        recover(snap)
        txn = Transaction(snap)
        try:
            yield txn
        except BaseException:
            txn.abort()
            raise


def _text_chunks(texts: Sequence[str]) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` ranges of at most ADD_CHUNK_DOCS documents and, past the first
    document, ADD_CHUNK_CHARS characters."""
    start = 0
    while start < len(texts):
        stop, chars = start + 1, len(texts[start])
        while (
            stop < len(texts)
            and stop - start < ADD_CHUNK_DOCS
            and chars + len(texts[stop]) <= ADD_CHUNK_CHARS
        ):
            chars += len(texts[stop])
            stop += 1
        yield start, stop
        start = stop


def title(meta: str | dict | None) -> str | None:
    """A document's title: its metadata's (as JSON, as the store keeps it, or a dict) "title"
    when that is a string (the corpus readers put it there; the keyword index reads the same
    field)."""
    if isinstance(meta, str):
        meta = json.loads(meta)
    value = meta.get("title") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def encoded_chunks(
    encoder, texts: Sequence[str], metas, batch_size: int | None, bar, passages: dict | None, truncate: bool
) -> Iterator[tuple[Ragged, Passages]]:
    """The documents' passages and their vectors, a chunk of documents at a time, in order;
    ``passages`` is the index's ``{"length", "stride", "titles"}`` (None: an encoder that cannot
    cut passages encodes each document whole, as it does); with "titles", continued passages
    carry the ``metas``' titles. ``bar`` moves per encoding batch."""
    for start, stop in _text_chunks(texts):
        chunk = texts[start:stop]
        if passages is None:
            ragged = encoder.encode_documents(chunk, batch_size=batch_size)
            bar.update(len(chunk))
            yield ragged, Passages.whole(len(chunk))
        else:
            titles = [title(m) for m in metas[start:stop]] if passages.get("titles") else None
            yield encoder.encode_passages(
                chunk,
                length=passages["length"],
                stride=passages["stride"],
                truncate=truncate,
                titles=titles,
                batch_size=batch_size,
                progress=bar,
            )


def _store_rows(first_pos: int, where: list[Passages], ids, metas, texts) -> Iterator[tuple]:
    """The store rows of new documents' passages, ``where`` per chunk of documents in order:
    every passage carries its document's id and metadata, the first one its text, and each
    its span when the document has several."""
    pos, doc = first_pos, 0
    for chunk in where:
        counts = chunk.counts
        passage = 0
        for owner, (start, end) in zip(chunk.owner.tolist(), chunk.spans.tolist()):
            i = doc + owner
            span = (None, None) if counts[owner] == 1 else (start, end)
            text = texts[i] if texts is not None and passage == 0 else None
            yield pos, ids[i], metas[i], text, passage, *span
            pos += 1
            passage = 0 if passage + 1 == counts[owner] else passage + 1
        doc += len(chunk.truncated)


def append(
    txn: Transaction,
    docs: Ragged | Iterable[tuple[Ragged, Passages]] | None,
    ids: list[str],
    metas: list,
    texts: Sequence[str] | None,
    delete_ids: list[str],
    threads,
    passages: dict | None = None,
) -> list[Passages]:
    """Commit new documents (a Ragged of one passage per document, or chunks of passages in id
    order) and tombstones for every passage of ``delete_ids`` (KeyError, and nothing written,
    if one is unknown); ``passages``, the settings the documents were cut with, goes to the
    manifest. Returns where the new passages came from, per chunk."""
    snap, m, gen = txn.snapshot, txn.manifest, txn.gen
    tombstones = snap.passage_positions(delete_ids) if delete_ids else []
    if ids:
        existing = set(snap.store.positions_of(ids, m.generation)) - set(delete_ids)
        if existing:
            raise ValueError(
                f"id {existing.pop()!r} is already in the index: use update() or delete it first"
            )
    segments, n_new, where = m.segments, 0, []
    if docs is not None:
        chunks = [(docs, Passages.whole(len(docs)))] if isinstance(docs, Ragged) else docs
        codebook = snap.codebook
        if m.kind == "plaid" and not m.trained:
            chunks = list(chunks)  # the first add trains the codebook on all its vectors
            tokens = np.concatenate([c.tokens for c, _ in chunks])
            codebook, m = train_codebook(snap, m, gen, tokens, None, threads)
        writer = SegmentWriter(snap.path, segment_name(gen), m.next_pos, m, codebook, threads)
        txn.on_abort(writer.abort)
        n_new = _append_all(writer, _noting(chunks, where))
        n_docs = sum(len(w.truncated) for w in where)
        if n_docs != len(ids):
            raise RuntimeError(f"internal error: {n_docs} documents encoded for {len(ids)} ids")
        segments = (*segments, writer.finish())
    snap.store.write(gen, _store_rows(m.next_pos, where, ids, metas, texts), tombstones)
    txn.commit(
        m.replace(
            generation=gen,
            next_pos=m.next_pos + n_new,
            n_live=m.n_live + len(ids) - len(delete_ids),
            segments=segments,
            passages=passages or m.passages,
        )
    )
    return where


def add_texts(
    txn: Transaction, encoder, texts, ids, metas, replaced, *, batch_size, bar, truncate, threads
) -> Added:
    """Encode ``texts`` as passages under the index's settings and commit them in ``txn`` (the
    documents ``replaced`` go in the same commit); their ids, naming (and warning about) those
    truncation cut."""
    recorded = txn.manifest.passages or {}
    titles = recorded.get("titles", not recorded)  # none recorded: an index made before titles
    settings = passage_settings(encoder, recorded.get("length"), recorded.get("stride"), titles)
    chunks = encoded_chunks(encoder, texts, metas, batch_size, bar, settings, truncate)
    where = append(txn, chunks, ids, metas, texts, replaced, threads, passages=settings)
    cut = [ids[i] for i in np.flatnonzero(np.concatenate([w.truncated for w in where]))]
    if cut:
        warnings.warn(
            f"{len(cut)} of {len(ids)} documents were longer than one passage and were truncated to their "
            "first one (truncate=True); truncate=False indexes all of their text as passages",
            UserWarning,
            stacklevel=3,
        )
    return Added(ids, sum(len(w) for w in where), cut)


def _noting(chunks: Iterable[tuple[Ragged, Passages]], where: list[Passages]) -> Iterator[Ragged]:
    """The chunks' vectors, keeping each chunk's passages in ``where``."""
    for ragged, passages in chunks:
        where.append(passages)
        yield ragged


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
