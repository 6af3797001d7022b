"""Training a plaid index's codebook: on the first add's vectors, or on a sample of the live
documents when ``retrain`` re-learns it."""

from __future__ import annotations

import dataclasses

import numpy as np

from . import codebook as codebooks
from .codebook import Codebook
from .files import codebook_name
from .manifest import Manifest
from .snapshot import Snapshot


def train_codebook(
    snap: Snapshot, m: Manifest, gen: int, tokens: np.ndarray, n_tokens: int | None, threads
) -> tuple[Codebook, Manifest]:
    """Train a codebook on ``tokens`` (drawn from a corpus of ``n_tokens``; None: they are the
    corpus) as ``m.codebook`` requests, write its file for commit ``gen``; return it and ``m``
    naming it (not committed yet)."""
    requested = m.codebook or {}
    codebook = codebooks.train(
        tokens,
        nbits=requested.get("nbits", 2),
        n_centroids=requested.get("n_centroids") or codebooks.default_n_centroids(n_tokens or len(tokens)),
        threads=threads,
    )
    if n_tokens is not None:
        codebook = dataclasses.replace(codebook, trained_tokens=int(n_tokens))
    name = codebook_name(gen)
    record = {
        **codebook.record(),
        "requested_n_centroids": requested.get("n_centroids"),
        "file": name,
        "sha256": codebook.save(snap.path / name),
    }
    return codebook, m.replace(codebook=record)


def training_sample(snap: Snapshot, positions: np.ndarray, wanted: dict) -> tuple[np.ndarray, int]:
    """Float32 vectors of randomly chosen documents at ``positions``, about as many tokens as
    k-means samples, and their total token count (which sizes the default codebook)."""
    lengths = np.concatenate(
        [np.diff(np.asarray(seg.offsets))[rows] for seg, rows in zip(snap.segments, snap.split(positions))]
    )
    n_tokens = int(lengths.sum())
    k = wanted.get("n_centroids") or codebooks.default_n_centroids(n_tokens)
    budget = max(codebooks.SAMPLE_PER_CENTROID * k, codebooks.MIN_SAMPLE)
    order = np.random.default_rng(0).permutation(len(positions))
    take = np.sort(order[: int(np.searchsorted(np.cumsum(lengths[order]), budget)) + 1])
    chosen = positions[take]
    return np.concatenate([snap.doc_matrix(int(p)) for p in chosen.tolist()]), n_tokens
