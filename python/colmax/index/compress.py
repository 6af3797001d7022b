"""Compressing an exact index into the plaid form without re-encoding (``Index.compress``,
``colmax compress``): a codebook trained on a sample of the stored vectors, every live position's
vectors compressed with it, the store's rows (ids, metadata, texts, keyword index) copied, all in
one commit, in place or into a new directory. The reverse is refused: residuals are lossy."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np

from . import codebook as codebooks
from .files import fsync_dir, segment_name, store_name
from .manifest import STORAGES
from .rewrite import REWRITE_CHUNK_DOCS, reencode_rows
from .segments import SegmentWriter
from .snapshot import Snapshot, load_latest
from .store import Store
from .training import save_codebook, train_spread
from .write import Transaction, create, recover, transaction


def request(source: Snapshot, nbits: int | None, n_centroids: int | None, storage: str | None) -> dict:
    """The plaid codebook request for compressing ``source``, checked before any work."""
    m = source.manifest
    if m.kind == "plaid":
        raise ValueError(
            f"{source.path} is already a plaid index; a plaid index cannot become exact again (its "
            "residuals are lossy): rebuild it from the texts with Index.create(kind='exact'), or "
            "re-learn its codebook with retrain()"
        )
    if m.n_live == 0:
        raise ValueError(f"{source.path} has no documents to train a codebook on: add some first")
    if storage is not None and storage not in STORAGES:
        raise ValueError(f"storage must be None or one of {', '.join(STORAGES)}, got {storage!r}")
    nbits = codebooks.default_nbits(m.dim) if nbits is None else codebooks.check_nbits(nbits, m.dim)
    if n_centroids is not None:
        n_centroids = codebooks.check_n_centroids(n_centroids)
    return {"nbits": nbits, "n_centroids": n_centroids, "storage": storage}


def compress(txn: Transaction, source: Snapshot, wanted: dict, threads) -> Snapshot:
    """Commit in ``txn`` (``source``'s own index, or a new empty one) the plaid form of
    ``source``'s live documents, renumbered from 0 like a compact; return the new commit."""
    snap, gen, m = txn.snapshot, txn.gen, source.manifest
    target = Store.create(snap.path / store_name(gen), m.keyword)
    txn.on_abort(target.close)
    positions = source.store.copy_live_to(target, m.generation, gen)
    target.close()
    # the codebook the first add of these vectors into a plaid index would train, reading only
    # its sample: the result is the index built as plaid from the same vectors
    n_tokens, rows_of = _live_rows(source, positions, threads)
    nbits, n_centroids = wanted["nbits"], wanted["n_centroids"]
    codebook = train_spread(n_tokens, rows_of, m.dim, nbits=nbits, n_centroids=n_centroids, threads=threads)
    record = save_codebook(snap.path, gen, codebook, n_centroids)
    plaid = txn.manifest.replace(kind="plaid", storage=wanted["storage"], codebook=record)
    writer = SegmentWriter(snap.path, segment_name(gen), 0, plaid, codebook, threads)
    txn.on_abort(writer.abort)
    for seg, rows in zip(source.segments, source.split(positions)):
        reencode_rows(source, writer, seg, rows, threads)
    n = int(positions.size)
    new = txn.commit(
        plaid.replace(
            generation=gen, store=store_name(gen), next_pos=n, n_live=n, segments=(writer.finish(),)
        )
    )
    recover(new)  # in place: the exact commit's files are garbage now
    return new


def _live_rows(source: Snapshot, positions: np.ndarray, threads):
    """The token count of the documents at ``positions`` and ``rows_of(rows)``: float32 rows of
    their vectors concatenated in position order (None: all), read through the segment reader
    a chunk of documents at a time."""
    parts = list(zip(source.segments, source.split(positions)))
    n_tokens = int(sum(np.diff(np.asarray(seg.offsets))[rows].sum() for seg, rows in parts))

    def rows_of(wanted: np.ndarray | None) -> np.ndarray:
        out, start = [], 0  # start: the row number of the chunk's first token
        for seg, rows in parts:
            offsets = np.asarray(seg.offsets)
            for first in range(0, rows.size, REWRITE_CHUNK_DOCS):
                chunk = rows[first : first + REWRITE_CHUNK_DOCS]
                n = int((offsets[chunk + 1] - offsets[chunk]).sum())
                lo, hi = (0, n) if wanted is None else np.searchsorted(wanted, [start, start + n])
                if hi > lo:
                    matrix = source.rows_float32(seg, chunk, threads)
                    out.append(matrix if wanted is None else matrix[wanted[lo:hi] - start])
                start += n
        return np.concatenate(out) if out else np.zeros((0, source.manifest.dim), np.float32)

    return n_tokens, rows_of


def compress_to(source: Snapshot, out: Path, wanted: dict, threads) -> None:
    """Build the plaid form of ``source`` as a new index at ``out`` (new or empty). It is built
    in a hidden sibling directory and renamed to ``out`` once committed, so ``out`` never holds
    half an index; a run killed midway leaves only that sibling, which the next run replaces."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty directory: choose a new path")
    partial = out.parent / f".{out.name}.colmax-partial"
    shutil.rmtree(partial, ignore_errors=True)
    m = source.manifest
    # the source's manifest emptied, so that every field a later format adds carries over
    first = m.replace(
        generation=0, storage=None, store=store_name(0), next_pos=0, n_live=0, segments=(), kind="plaid",
        codebook={"nbits": wanted["nbits"], "n_centroids": wanted["n_centroids"]},
    )  # fmt: skip
    try:
        create(partial, first)
        empty = load_latest(partial)
        try:
            with transaction(empty, threading.Lock()) as txn:
                compress(txn, source, wanted, threads).store.close()
        finally:
            empty.store.close()
        if out.exists():
            out.rmdir()
        os.rename(partial, out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
