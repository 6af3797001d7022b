"""Training a plaid index's codebook: on the first add's vectors, on a sample of the live
documents when ``retrain`` re-learns it, or on a corpus spread over several places (the shards
of colmax.distributed), to be installed with ``Index.create(..., codebook=)``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

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
    return codebook, m.replace(codebook=save_codebook(snap.path, gen, codebook, requested.get("n_centroids")))


def save_codebook(path, gen: int, codebook: Codebook, requested_n_centroids: int | None) -> dict:
    """Write ``codebook``'s file for commit ``gen`` into index directory ``path``; return the
    manifest record naming it."""
    name = codebook_name(gen)
    return {
        **codebook.record(),
        "requested_n_centroids": requested_n_centroids,
        "file": name,
        "sha256": codebook.save(path / name),
    }


def train_spread(
    n_tokens: int,
    rows_of: Callable[[np.ndarray | None], np.ndarray],
    dim: int,
    *,
    nbits: int | None = None,
    n_centroids: int | None = None,
    threads=None,
) -> Codebook:
    """The codebook that the first ``add`` of ``n_tokens`` vectors of ``dim`` into a plaid index
    (created with ``nbits`` and ``n_centroids``) would train, reading only its sample:
    ``rows_of(sorted row numbers of the concatenated vectors, or None for all)`` returns those
    rows as float32. The vectors may live anywhere (several shards, several machines); the
    result is the same as if they were in one index."""
    nbits = codebooks.default_nbits(dim) if nbits is None else codebooks.check_nbits(nbits, dim)
    return codebooks.train_sampled(n_tokens, rows_of, nbits=nbits, n_centroids=n_centroids, threads=threads)


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
