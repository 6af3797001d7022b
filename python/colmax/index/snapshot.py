"""A loaded commit: its manifest, the open store, the memory-mapped segments, the live rows, the
codebook and which positions continue a document, bundled so that every call reads one
consistent commit.

An ``Index`` holds one ``Snapshot`` and replaces it whole on reload or commit; a call reads it
once, so a search on one thread never pairs a commit's candidates with another's segments.
Loading reuses what the previous snapshot already opened (unchanged segments, store, codebook).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _core
from .codebook import Codebook
from .errors import IndexFormatError, unknown_ids
from .integrity import Report, raise_problems, verify_files
from .manifest import Manifest, parse_manifest, read_manifest_bytes
from .passages import Layout
from .segments import Segment, open_segment, to_float32
from .store import Store
from .types import Document, Hit

# a concurrent compact may delete the files of the manifest just read: how often to read it again
_LOAD_ATTEMPTS = 5


@dataclass(frozen=True)
class Snapshot:
    path: Path
    manifest: Manifest
    store: Store
    segments: tuple[Segment, ...]
    live: tuple[np.ndarray | None, ...]  # per segment: its live local rows, None when all are live
    codebook: Codebook | None  # plaid: the trained codebook
    deleted: np.ndarray  # the positions deleted by this commit or earlier ones, ascending
    layout: Layout  # which positions continue a document (passages)
    stamp: bytes | None = None  # the manifest file's bytes, when loaded from it: a reader's reload check
    verified: bool = False  # every file hashed when opened (this commit's, or on the way to it)

    @property
    def generation(self) -> int:
        return self.manifest.generation

    def positions(self, ids: Sequence[str]) -> list[int]:
        """The live (first) position of each id's document, in order (KeyError naming the
        missing ones)."""
        found = self.store.positions_of(ids, self.generation)
        missing = [i for i in ids if i not in found]
        if missing:
            raise unknown_ids(missing)
        return [found[i] for i in ids]

    def passage_positions(self, ids: Sequence[str]) -> np.ndarray:
        """Every position of the documents ``ids`` (all their passages), ascending (KeyError
        naming unknown ids)."""
        self.positions(ids)
        return self.store.passage_positions(ids, self.generation)

    def locate(self, pos: int) -> tuple[Segment, int]:
        for seg in self.segments:
            if seg.first_pos <= pos < seg.end_pos:
                return seg, pos - seg.first_pos
        raise IndexFormatError(f"position {pos} is in no segment: the index is inconsistent")

    def split(self, positions: np.ndarray) -> list[np.ndarray]:
        """Sorted global positions -> per-segment sorted local rows."""
        out = []
        for seg in self.segments:
            lo, hi = np.searchsorted(positions, [seg.first_pos, seg.end_pos])
            out.append(np.ascontiguousarray(positions[lo:hi] - seg.first_pos))
        return out

    def rows_float32(self, seg: Segment, docs: np.ndarray, threads: int | None) -> np.ndarray:
        """The float32 token rows of documents ``docs`` (local ids) of ``seg``, one document after
        another: its full-precision copy converted, or its codes and residuals decompressed."""
        offsets = seg.offsets
        rows = np.concatenate([np.arange(offsets[d], offsets[d + 1]) for d in docs.tolist()])
        if seg.tokens is not None:
            scales = None if seg.scales is None else seg.scales[rows]
            return to_float32(seg.tokens[rows], self.manifest.storage, scales)
        cb = self.codebook
        codes = _core.plaid_token_codes(seg.doc_codes, seg.doc_code_offsets, offsets, docs, cb.n_centroids)
        return cb.decompress(codes, seg.residuals[rows], threads=threads)

    def doc_matrix(self, pos: int) -> np.ndarray:
        seg, row = self.locate(pos)
        return self.rows_float32(seg, np.array([row]), threads=1)

    def documents(self, ids: Sequence[str], embeddings: bool) -> dict[str, Document]:
        """The documents ``ids`` (unique; KeyError naming unknown ones) by id: text and metadata
        from their first passage, each passage's span, and with ``embeddings`` every passage's
        vectors one after another."""
        heads = self.positions(ids)
        rows = self.store.rows(heads)
        passages: dict[str, list[int]] = {i: [] for i in ids}
        spans: dict[str, list] = {i: [] for i in ids}
        everything = self.store.passage_positions(ids, self.generation)
        for pos, row in sorted(self.store.rows(everything, with_text=False, with_meta=False).items()):
            passages[row.id].append(pos)
            spans[row.id].append(row.span)
        out = {}
        for head in heads:
            row = rows[head]
            vectors = None
            if embeddings:
                vectors = np.concatenate([self.doc_matrix(p) for p in passages[row.id]])
            several = len(passages[row.id]) > 1
            out[row.id] = Document(row.id, row.text, row.meta, vectors, spans[row.id] if several else None)
        return out

    def hits(
        self,
        positions: np.ndarray,
        scores: np.ndarray,
        *,
        documents: bool = True,
        semantic: np.ndarray | None = None,
        keyword: np.ndarray | None = None,
    ) -> list[Hit]:
        """Hits for the (winning passage) ``positions`` ranked with ``scores``, carrying each
        side's score where given; without ``documents`` only ids, scores and passages are read."""
        rows = self.store.rows(positions.tolist(), with_text=documents, with_meta=documents)
        n = len(positions)
        sem = [None] * n if semantic is None else semantic.tolist()
        kw = [None] * n if keyword is None else keyword.tolist()
        hits = []
        for p, s, a, b in zip(positions.tolist(), scores.tolist(), sem, kw):
            row = rows[p]
            hits.append(Hit(row.id, float(s), row.meta, row.text, a, b, row.passage, row.span))
        return hits


def load(
    path: Path,
    manifest: Manifest,
    previous: Snapshot | None = None,
    *,
    verify: bool = False,
    stamp: bytes | None = None,
) -> Snapshot:
    """Open the commit ``manifest`` names, reusing what ``previous`` opened where unchanged;
    with ``verify`` hash every file it opens anew (IndexFormatError naming the damaged ones)."""
    codebook = None
    if manifest.trained:
        same = previous is not None and previous.manifest.codebook == manifest.codebook
        codebook = previous.codebook if same else Codebook.load(path, manifest.codebook, manifest.dim)
    store = previous.store if previous is not None and previous.manifest.store == manifest.store else None
    if store is not None:
        store.refresh()
    else:
        store = Store.open(path / manifest.store)
        if manifest.keyword and not store.has_keyword_index():
            store.close()
            raise IndexFormatError(f"index file {store.path} is damaged: its keyword index is missing")
    old = {s.info.name: s for s in previous.segments} if previous is not None else {}
    reused = verify and previous is not None and previous.verified
    try:
        fresh = [s for s in manifest.segments if not (s.name in old and old[s.name].info == s)]
        segments = tuple(
            old[s.name] if s not in fresh else open_segment(path, s, manifest, codebook)
            for s in manifest.segments
        )
        if verify:  # after the size checks of opening, which name a truncated file as such
            report = Report()
            checked = fresh if reused else manifest.segments
            verify_files(path, {s.file(kind): d for s in checked for kind, d in s.files.items()}, report)
            raise_problems(path, report)
        deleted = store.deleted_positions(manifest.generation)
    except BaseException:
        if previous is None or store is not previous.store:
            store.close()
        raise
    same = previous is not None and previous.store is store and _extends(previous.manifest, manifest)
    layout = Layout(store, manifest.next_pos, previous.layout if same else None)
    live: list[np.ndarray | None] = []
    for seg in segments:
        lo, hi = np.searchsorted(deleted, [seg.first_pos, seg.end_pos])
        if hi > lo:
            alive = np.ones(seg.info.n_docs, dtype=bool)
            alive[deleted[lo:hi] - seg.first_pos] = False
            live.append(np.flatnonzero(alive).astype(np.int64))
        else:
            live.append(None)
    return Snapshot(path, manifest, store, segments, tuple(live), codebook, deleted, layout, stamp, verify)


def _extends(old: Manifest, new: Manifest) -> bool:
    """Whether ``new`` holds ``old``'s positions unchanged (its segments first): what ``old``
    knows about them still holds. A rollback followed by adds reuses positions: not so then."""
    return new.segments[: len(old.segments)] == old.segments and new.next_pos >= old.next_pos


def load_latest(path: Path, previous: Snapshot | None = None, *, verify: bool = False) -> Snapshot:
    """The newest commit, read again if a concurrent compact removed its files meanwhile."""
    attempts = 0
    while True:
        stamp = read_manifest_bytes(path)
        manifest = parse_manifest(path, stamp)
        try:
            return load(path, manifest, previous, verify=verify, stamp=stamp)
        except IndexFormatError:
            attempts += 1
            if attempts == _LOAD_ATTEMPTS or read_manifest_bytes(path) == stamp:
                raise
