"""Earlier commits of an index: reading one (``Index.open(path, generation=G)``) and rolling the
index back to one (``Index.rollback(G)``).

Adds, deletes and updates only append: a new segment, store rows tagged with the new
generation, tombstones tagged with it. Commit G is therefore still inside every later commit
until a compact or retrain rewrites the store: its manifest is the newest one without the
segments written after G, and the store shows exactly G's rows to a reader bound to G
(docs/format.md). colmax.distributed relies on this to keep shards at the generations its root
records, and to undo the shard commits of a write that did not finish.
"""

from __future__ import annotations

from pathlib import Path

from .files import generation_of
from .manifest import Manifest, read_manifest
from .snapshot import Snapshot, load
from .store import Store


def manifest_at(m: Manifest, store: Store, generation: int) -> Manifest:
    """The manifest commit ``generation`` had, derived from a later manifest ``m`` and its store
    (ValueError when a rewrite after it removed its files, or it is not before ``m``)."""
    if isinstance(generation, bool) or not isinstance(generation, int):
        raise TypeError(f"generation must be an int, got {type(generation).__name__}")
    if generation == m.generation:
        return m
    if not 0 <= generation < m.generation:
        raise ValueError(
            f"generation must be between 0 and {m.generation} (the newest commit), got {generation}"
        )
    rewritten = generation_of(m.store)
    if rewritten > generation:
        raise ValueError(
            f"commit {generation} of {store.path.parent} is gone: the index was compacted or retrained "
            f"(or compressed) at commit {rewritten}, which removed the files of earlier commits"
        )
    segments = tuple(s for s in m.segments if generation_of(s.name) <= generation)
    codebook = m.codebook
    if m.trained and generation_of(m.codebook["file"]) > generation:  # trained by a later first add
        codebook = {"nbits": m.codebook["nbits"], "n_centroids": m.codebook.get("requested_n_centroids")}
    return m.replace(
        generation=generation,
        segments=segments,
        next_pos=segments[-1].first_pos + segments[-1].n_docs if segments else 0,
        n_live=store.count_live(generation),
        codebook=codebook,
    )


def load_at(
    path: Path, generation: int | None, previous: Snapshot | None = None, *, verify: bool = False
) -> Snapshot:
    """Commit ``generation`` of the index at ``path`` (None: the newest); ``verify`` hashes
    its files."""
    newest = read_manifest(path)
    if generation is None or generation == newest.generation:
        return load(path, newest, previous, verify=verify)
    snap = load(path, newest, previous)  # opens the store and maps the segments it shares with G
    try:
        return load(path, manifest_at(newest, snap.store, generation), snap, verify=verify)
    except BaseException:
        if previous is None or snap.store is not previous.store:
            snap.store.close()
        raise
