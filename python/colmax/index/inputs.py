"""Checks of what a write is given: new ids, metadata, precomputed token matrices. Each raises
TypeError or ValueError naming the fix before anything is written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import numpy as np

from .._validate import float_matrix, id_list, text_list
from ..ragged import Ragged
from .snapshot import Snapshot


def new_ids(snap: Snapshot, n: int, ids, *, existing_ok: bool = False) -> list[str]:
    """``n`` unique non-empty ids (generated when ``ids`` is None), none already in the index
    unless ``existing_ok``."""
    ids = fresh_ids(n, ids)
    if not existing_ok:
        already_there(snap.store.positions_of(ids, snap.generation))
    return ids


def fresh_ids(n: int, ids) -> list[str]:
    """``n`` unique non-empty ids: ``ids`` checked, or generated when None."""
    if ids is None:
        return [uuid.uuid4().hex for _ in range(n)]
    ids = id_list(ids)
    if len(ids) != n:
        raise ValueError(f"got {n} documents but {len(ids)} ids")
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if not x:
            raise ValueError(f"ids[{i}] is empty: ids must be non-empty strings")
        if x in seen:
            raise ValueError(f"id {x!r} appears twice in this call: ids must be unique")
        seen.add(x)
    return ids


def already_there(existing) -> None:
    """Refuse to add ids that are already in the index (ValueError naming the fix)."""
    if existing:
        raise ValueError(
            f"{len(existing)} id(s) already in the index, e.g. {next(iter(existing))!r}: "
            "use update() or delete them first"
        )


def stored_texts(texts, n: int) -> list[str] | None:
    """Texts to store with ``n`` precomputed documents (None: none), one string each."""
    if texts is None:
        return None
    texts = text_list(texts, blank_ok=True)
    if len(texts) != n:
        raise ValueError(f"got {n} documents but {len(texts)} texts: pass one per document")
    return texts


def metadata_json(n: int, metadata) -> list[str | None]:
    """One JSON object (or None) per document, as the store keeps them."""
    if metadata is None:
        return [None] * n
    if isinstance(metadata, Mapping):
        raise TypeError("metadata must be a list with one dict per document")
    metadata = list(metadata)
    if len(metadata) != n:
        raise ValueError(f"got {n} documents but {len(metadata)} metadata entries")
    out: list[str | None] = []
    for i, m in enumerate(metadata):
        if m is None:
            out.append(None)
            continue
        if not isinstance(m, Mapping) or not all(isinstance(key, str) for key in m):
            raise TypeError(f"metadata[{i}] must be a dict with string keys, got {type(m).__name__}")
        try:
            out.append(json.dumps(dict(m), ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise TypeError(f"metadata[{i}] is not JSON-serialisable: {e}") from None
    return out


def embeddings(value, dim: int) -> Ragged:
    """A ``Ragged`` or a list of ``(n_i, dim)`` arrays as a checked float32 Ragged."""
    if isinstance(value, np.ndarray):
        raise TypeError(
            "embeddings must be a colmax.Ragged or a list of (n_tokens, dim) arrays, not one array"
        )
    if isinstance(value, Ragged):
        ragged = Ragged(float_matrix(value.tokens, "embeddings", dim, rows=False), value.offsets)
    else:
        mats = [float_matrix(m, f"embeddings[{i}]", dim, rows=False) for i, m in enumerate(value)]
        ragged = Ragged.from_list(mats) if mats else Ragged.from_list([], dim)
    empty = np.flatnonzero(ragged.lengths == 0)
    if empty.size:
        raise ValueError(f"document {int(empty[0])} has no token vectors: every document needs at least one")
    return ragged
