"""Rewriting an index in one commit: ``compact`` (live documents only, one segment, a fresh
store) and ``retrain`` (also a new codebook, every document re-encoded with it)."""

from __future__ import annotations

import numpy as np

from .files import segment_name, store_name
from .segments import Segment, SegmentWriter
from .snapshot import Snapshot
from .store import Store
from .training import train_codebook, training_sample
from .write import Transaction, recover

# Documents copied or re-encoded per step: bounds the rows in memory at once.
REWRITE_CHUNK_DOCS = 1024


def rewrite(txn: Transaction, retrain: dict | None, threads) -> None:
    """Compact, and with ``retrain`` (the codebook request: nbits, n_centroids) train a new
    codebook on the live documents and re-encode them all."""
    snap, m, gen = txn.snapshot, txn.manifest, txn.gen
    if retrain is None and m.n_live == m.next_pos and len(m.segments) <= 1:
        return  # nothing deleted, nothing to merge
    if retrain is not None and m.n_live == 0:
        raise ValueError("the index has no documents to train a codebook on")
    target = Store.create(snap.path / store_name(gen), m.keyword)
    txn.on_abort(target.close)
    old_positions = snap.store.copy_live_to(target, m.generation, gen)
    target.close()
    segments: tuple = ()
    codebook = snap.codebook
    if retrain is not None:
        wanted = {
            "nbits": m.codebook["nbits"],
            "n_centroids": m.codebook.get("requested_n_centroids"),
            **retrain,
        }
        sample, n_tokens = training_sample(snap, old_positions, wanted)
        codebook, m = train_codebook(snap, m.replace(codebook=wanted), gen, sample, n_tokens, threads)
    if old_positions.size:
        writer = SegmentWriter(snap.path, segment_name(gen), 0, m, codebook, threads)
        txn.on_abort(writer.abort)
        for seg, rows in zip(snap.segments, snap.split(old_positions)):
            if retrain is None:
                _copy_rows(writer, seg, rows)
            else:
                reencode_rows(snap, writer, seg, rows, threads)
        segments = (writer.finish(),)
    n = int(old_positions.size)
    new = txn.commit(
        m.replace(generation=gen, store=store_name(gen), next_pos=n, n_live=m.n_live, segments=segments)
    )
    recover(new)  # the previous generation's files are garbage now


def _chunks(rows: np.ndarray):
    for start in range(0, rows.size, REWRITE_CHUNK_DOCS):
        yield rows[start : start + REWRITE_CHUNK_DOCS]


def reencode_rows(snap: Snapshot, writer: SegmentWriter, seg: Segment, rows: np.ndarray, threads) -> None:
    """Append the documents ``rows`` of ``seg`` as float32 (copy, or decompressed) to a writer
    with a new codebook."""
    offsets = np.asarray(seg.offsets)
    for chunk in _chunks(rows):
        writer.append(snap.rows_float32(seg, chunk, threads), offsets[chunk + 1] - offsets[chunk])


def _copy_rows(writer: SegmentWriter, seg: Segment, rows: np.ndarray) -> None:
    """Append the segment's documents ``rows`` to ``writer`` as stored (no re-encoding)."""
    offsets = np.asarray(seg.offsets)
    kinds = [kind for kind in ("tokens", "scales", "residuals") if getattr(seg, kind) is not None]
    code_offsets = None if seg.doc_code_offsets is None else np.asarray(seg.doc_code_offsets)
    for chunk in _chunks(rows):
        stored = {
            kind: np.concatenate([getattr(seg, kind)[offsets[r] : offsets[r + 1]] for r in chunk])
            for kind in kinds
        }
        code_lengths = None
        if code_offsets is not None:
            stored["doc_codes"] = np.concatenate(
                [seg.doc_codes[code_offsets[r] : code_offsets[r + 1]] for r in chunk]
            )
            code_lengths = code_offsets[chunk + 1] - code_offsets[chunk]
        writer.append_stored(stored, offsets[chunk + 1] - offsets[chunk], code_lengths)
