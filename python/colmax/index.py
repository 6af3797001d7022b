"""The persistent late-interaction index: add, delete, update, search, rerank, explain, compact.

An index is a directory (docs/format.md): a manifest naming memory-mapped token segments and a
SQLite store of ids, metadata and text. Every write builds new files and then commits by
atomically replacing the manifest, so a crash at any moment leaves the last commit intact.
An ``Index`` object is a reader bound to one commit; each write takes the writer lock, moves to
the newest commit, and commits the next one. ``reload()`` moves a reader to the newest commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _core
from . import codebook as codebooks
from ._lock import IndexLockedError, WriterLock
from ._manifest import (
    FORMAT_VERSION,
    KINDS,
    MANIFEST,
    STORAGES,
    IndexFormatError,
    IndexVersionError,
    Manifest,
    read_manifest,
    write_manifest,
)
from ._segments import (
    Segment,
    SegmentWriter,
    file_sha256,
    open_segment,
    read_chunks,
    to_float32,
    verify_segment,
    write_file,
)
from ._store import Store
from .codebook import Codebook
from .filters import compile_filter
from .ragged import Ragged

__all__ = [
    "Document",
    "Explanation",
    "Hit",
    "Index",
    "IndexFormatError",
    "IndexLockedError",
    "IndexVersionError",
]

_WRITE_CHUNK_TOKENS = 1 << 16  # rows converted to the storage dtype at a time while writing
# Documents encoded per step of add(): bounds memory to one chunk of vectors in flight and lets
# the previous chunk be written while the next is encoded.
_ADD_CHUNK_DOCS = 1024


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("colmax")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


@dataclass(frozen=True)
class Hit:
    """One search result: the document's id, its MaxSim score, metadata and stored text."""

    id: str
    score: float
    metadata: dict = field(default_factory=dict)
    text: str | None = None


@dataclass(frozen=True)
class Document:
    """A stored document; ``embeddings`` is a float32 copy of its token vectors as stored (a
    plaid index stores a document's tokens ordered by centroid, not in text order)."""

    id: str
    text: str | None
    metadata: dict
    embeddings: np.ndarray


@dataclass(frozen=True)
class Explanation:
    """Why a document scored what it did: for query token i, document token ``doc_token[i]``
    is its best match with similarity ``similarity[i]``; ``score`` is their sum (MaxSim)."""

    id: str
    score: float
    similarity: np.ndarray
    doc_token: np.ndarray
    query_tokens: list[str] | None = None
    doc_tokens: list[str] | None = None  # the matched document token's text, per query token

    def __str__(self) -> str:
        lines = [f"{self.id}: score {self.score:.4f} = sum over query tokens of their best match"]
        for i, (j, s) in enumerate(zip(self.doc_token.tolist(), self.similarity.tolist())):
            q = self.query_tokens[i] if self.query_tokens else f"q{i}"
            d = self.doc_tokens[i] if self.doc_tokens else f"d{j}"
            lines.append(f"  {q:>14} -> {d:<14} {s:.4f}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Plan:
    """Staged-search parameters of a plaid index."""

    nprobe: int
    ncandidates: int

    @classmethod
    def default(cls, k: int) -> _Plan:
        # Measured with benchmarks/bench_scale.py: on SciFact 256 documents in the last stage keep
        # 0.95 of the exact top-10 at 4 bits (128 keep 0.94, 512 0.96 at twice the latency);
        # nprobe barely matters there, while on 1M documents two probes per query token keep
        # the latency near 50 ms. Larger k needs proportionally more candidates.
        return cls(nprobe=2, ncandidates=max(256, 16 * k))


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


def _as_id_list(ids, what: str = "ids") -> list[str]:
    if isinstance(ids, str):
        return [ids]
    try:
        out = list(ids)
    except TypeError:
        raise TypeError(f"{what} must be a string or a list of strings, got {type(ids).__name__}") from None
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise TypeError(f"{what}[{i}] is {type(x).__name__}, ids are strings")
    return out


def _model_record(model, dim: int | None):
    """Resolve ``Index.create``'s model argument to (encoder or None, manifest record, dim)."""
    from .default_model import NAME as DEFAULT_NAME

    if model is None and dim is not None:
        return None, {"name": None, "path": None, "default": False}, int(dim)
    if model is None:
        from .encoder import Encoder

        encoder = Encoder()
    elif isinstance(model, (str, os.PathLike)):
        from .encoder import Encoder

        encoder = Encoder(model)
    elif hasattr(model, "encode_documents") and hasattr(model, "dim"):
        encoder = model
    else:
        raise TypeError(f"model must be None, a model directory or an Encoder, got {type(model).__name__}")
    if dim is not None and int(dim) != encoder.dim:
        raise ValueError(
            f"dim={dim} but the model {encoder.name} produces {encoder.dim}-dim vectors: drop dim="
        )
    default = model is None or (encoder.name == DEFAULT_NAME and not isinstance(model, (str, os.PathLike)))
    path = None if default else str(Path(encoder.path).resolve())
    onnx = getattr(encoder, "onnx_path", None)
    record = {
        "name": encoder.name,
        "path": path,
        "default": default,
        # fingerprint of the weights: a rebuilt or replaced model must not silently score
        # queries against documents it did not encode
        "onnx_sha256": file_sha256(Path(onnx)) if onnx else None,
        "query_length": encoder.query_length,
        "document_length": encoder.document_length,
    }
    return encoder, record, encoder.dim


class Index:
    """A late-interaction index on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path, model=None, threads: int | None = None) -> None:
        # use Index.create / Index.open
        self.path = Path(path)
        self.threads = threads
        self._model_override = model
        self._encoder = model if (model is not None and hasattr(model, "encode_queries")) else None
        self._manifest: Manifest | None = None
        self._store: Store | None = None
        self._segments: list[Segment] = []
        self._live: list[np.ndarray | None] = []  # per segment: live local rows, None when all live
        self._codebook: Codebook | None = None  # plaid: the trained codebook of the loaded commit
        self._write_mutex = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        model=None,
        *,
        kind: str = "exact",
        storage: str | None = None,
        nbits: int | None = None,
        n_centroids: int | None = None,
        dim: int | None = None,
        threads: int | None = None,
    ) -> Index:
        """Create an empty index at ``path`` (a new or empty directory).

        ``model``: None for the packaged default model, a model directory, or an ``Encoder``.
        ``dim`` without a model creates an embeddings-only index (``add_embeddings`` and query
        matrices only).

        ``kind="exact"`` (default) stores every token vector and searches by exact MaxSim over all
        documents; ``storage`` is their precision: "float32" (default), "float16" (half the
        bytes) or "bfloat16" (half the bytes, float32's range).

        ``kind="plaid"`` stores each token as a centroid id plus a residual of ``nbits`` bits per
        dimension (1, 2, 4 or 8; default 2 up to dim 128, where it is about 33 bytes a token, and 4
        above, where 2 bits lose too much: docs/plaid.md) and searches in stages
        that touch only promising documents (docs/plaid.md). The codebook (``n_centroids``
        k-means centroids, by default sized from the corpus) is trained on the first ``add``;
        later adds reuse it, ``retrain()`` re-learns it. ``storage`` here optionally keeps a
        full-precision copy ("float16", "bfloat16", "float32") that the final stage scores
        instead of the decompressed vectors.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if storage is None and kind == "exact":
            storage = "float32"
        if storage is not None and storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if kind == "exact" and (nbits is not None or n_centroids is not None):
            raise ValueError("nbits and n_centroids apply to kind='plaid' indexes only")
        if n_centroids is not None:
            n_centroids = codebooks.check_n_centroids(n_centroids)
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path} already exists and is not an empty directory: choose a new path")
        encoder, record, dim = _model_record(model, dim)
        codebook = None
        if kind == "plaid":
            if nbits is None:
                nbits = codebooks.default_nbits(dim)
            codebook = {"nbits": codebooks.check_nbits(nbits, dim), "n_centroids": n_centroids}
        created = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        try:
            with WriterLock(path):
                store_name = "store-000000.sqlite"
                Store.create(path / store_name).close()
                write_manifest(
                    path,
                    Manifest(
                        generation=0,
                        dim=dim,
                        storage=storage,
                        model=record,
                        store=store_name,
                        created_with=_version(),
                        kind=kind,
                        codebook=codebook,
                    ),
                )
        except BaseException:
            if created:
                shutil.rmtree(path, ignore_errors=True)
            else:
                for child in path.iterdir():
                    child.unlink()
            raise
        index = cls(path, encoder, threads)
        index._load(read_manifest(path))
        return index

    @classmethod
    def open(cls, path: str | os.PathLike, *, model=None, threads: int | None = None) -> Index:
        """Open an existing index (memory-maps its segments; nothing is read into RAM).

        ``model`` overrides the model recorded in the index (a directory or an ``Encoder``),
        e.g. when the model directory has moved. Raises IndexFormatError for a directory that
        is not an index or is damaged, IndexVersionError for one written by a newer colmax.
        """
        index = cls(Path(path), model, threads)
        index._load_latest()
        return index

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = self._manifest = None
        self._segments, self._live = [], []

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reload(self) -> bool:
        """Move to the newest commit; return True if there was one."""
        if read_manifest(self.path).generation == self._m.generation:
            return False
        self._load_latest()
        return True

    def _load_latest(self) -> None:
        # a concurrent compact may delete the files of the manifest just read: read it again
        for attempt in range(5):
            manifest = read_manifest(self.path)
            try:
                self._load(manifest)
                return
            except IndexFormatError:
                if attempt == 4 or read_manifest(self.path).generation == manifest.generation:
                    raise

    def _load(self, manifest: Manifest) -> None:
        codebook = (
            self._codebook if self._codebook_file(manifest) == self._codebook_file(self._manifest) else None
        )
        if codebook is None and manifest.trained:
            codebook = _load_codebook(self.path, manifest)
        store = self._store
        if store is None or store.path.name != manifest.store:
            store = Store.open(self.path / manifest.store)
        old = {s.info.name: s for s in self._segments}
        try:
            segments = [
                old[s.name]
                if s.name in old and old[s.name].info == s
                else open_segment(self.path, s, manifest.dim, manifest.storage, codebook)
                for s in manifest.segments
            ]
            deleted = store.deleted_positions(manifest.generation)
        except BaseException:
            if store is not self._store:
                store.close()
            raise
        live: list[np.ndarray | None] = []
        for seg in segments:
            lo, hi = np.searchsorted(deleted, [seg.first_pos, seg.end_pos])
            if hi > lo:
                alive = np.ones(seg.info.n_docs, dtype=bool)
                alive[deleted[lo:hi] - seg.first_pos] = False
                live.append(np.flatnonzero(alive).astype(np.int64))
            else:
                live.append(None)
        if store is not self._store and self._store is not None:
            self._store.close()
        self._store, self._segments, self._live, self._manifest = store, segments, live, manifest
        self._codebook = codebook

    @staticmethod
    def _codebook_file(manifest: Manifest | None) -> str | None:
        return manifest.codebook.get("file") if manifest is not None and manifest.codebook else None

    @property
    def _m(self) -> Manifest:
        if self._manifest is None:
            raise ValueError("the index is closed")
        return self._manifest

    @property
    def _db(self) -> Store:
        if self._store is None:
            raise ValueError("the index is closed")
        return self._store

    # -- model -------------------------------------------------------------------------------

    @property
    def encoder(self):
        """The index's encoder, loaded on first use."""
        if self._encoder is None:
            record = self._m.model
            if self._model_override is not None:
                from .encoder import Encoder

                self._encoder = Encoder(self._model_override)
            elif record.get("default"):
                from .encoder import Encoder

                self._encoder = Encoder()
            elif record.get("path"):
                if not Path(record["path"]).is_dir():
                    raise FileNotFoundError(
                        f"the index's model directory {record['path']} does not exist: "
                        "open the index with Index.open(path, model=MODEL_DIR)"
                    )
                from .encoder import Encoder

                self._encoder = Encoder(record["path"])
            else:
                raise ValueError(
                    "this index has no model (created with dim=): pass token matrices, "
                    "or open it with Index.open(path, model=MODEL_DIR) to use text"
                )
            expected = record.get("onnx_sha256")
            onnx = getattr(self._encoder, "onnx_path", None)
            if self._model_override is None and expected and onnx and file_sha256(Path(onnx)) != expected:
                self._encoder = None
                raise ValueError(
                    f"the model {record.get('name')} found now ({onnx}) differs from the one that built "
                    "this index (its ONNX file changed): rebuild the index, or pass "
                    "Index.open(path, model=...) to search with this model anyway"
                )
            if self._encoder.dim != self._m.dim:
                dim, self._encoder = self._encoder.dim, None
                raise ValueError(
                    f"the model produces {dim}-dim vectors but the index holds {self._m.dim}-dim ones"
                )
        return self._encoder

    # -- reading -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._m.dim

    @property
    def storage(self) -> str:
        return self._m.storage

    def __len__(self) -> int:
        return self._m.n_live

    def __contains__(self, id) -> bool:
        return isinstance(id, str) and bool(self._db.positions_of([id], self._m.generation))

    def __repr__(self) -> str:
        if self._manifest is None:
            return f"Index({str(self.path)!r}, closed)"
        return f"Index({str(self.path)!r}, documents={len(self)}, dim={self.dim}, storage={self.storage!r})"

    def ids(self) -> list[str]:
        """All live document ids, in insertion order."""
        return self._db.live_ids(self._m.generation)

    def _locate(self, pos: int) -> tuple[Segment, int]:
        for seg in self._segments:
            if seg.first_pos <= pos < seg.end_pos:
                return seg, pos - seg.first_pos
        raise IndexFormatError(f"position {pos} is in no segment: the index is inconsistent")

    def _doc_matrix(self, pos: int) -> np.ndarray:
        seg, row = self._locate(pos)
        return self._rows_float32(seg, np.array([row]), threads=1)

    def _rows_float32(self, seg: Segment, docs: np.ndarray, threads: int | None) -> np.ndarray:
        """The float32 token rows of documents ``docs`` (local ids) of ``seg``, one document after
        another: its full-precision copy converted, or its codes and residuals decompressed."""
        offsets = seg.offsets
        rows = np.concatenate([np.arange(offsets[d], offsets[d + 1]) for d in docs.tolist()])
        if seg.tokens is not None:
            return to_float32(seg.tokens[rows], self._m.storage)
        cb = self._codebook
        codes = _core.plaid_token_codes(seg.doc_codes, seg.doc_code_offsets, offsets, docs, cb.n_centroids)
        return cb.decompress(codes, seg.residuals[rows], threads=threads)

    def _text_order(self, pos: int, text: str) -> np.ndarray | None:
        """The text position of each stored token of document ``pos``. A plaid index stores a
        document's tokens ordered by centroid code; encoding its text again and sorting the codes
        as adding did recovers the order, or None where the codes differ (another model)."""
        seg, row = self._locate(pos)
        cb = self._codebook
        codes, _ = cb.compress(self.encoder.encode_documents([text]).tokens, threads=1)
        order, _, _ = _core.plaid_doc_codes(codes, np.array([0, len(codes)]), cb.n_centroids)
        stored = _core.plaid_token_codes(
            seg.doc_codes, seg.doc_code_offsets, seg.offsets, np.array([row]), cb.n_centroids
        )
        return order if np.array_equal(codes[order], stored) else None

    def _positions(self, ids: Sequence[str]) -> list[int]:
        found = self._db.positions_of(ids, self._m.generation)
        missing = [i for i in ids if i not in found]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise KeyError(f"{len(missing)} id(s) not in the index: {shown}")
        return [found[i] for i in ids]

    def get(self, id: str) -> Document:
        """The stored document ``id`` (KeyError if there is none)."""
        (pos,) = self._positions(_as_id_list(id, "id")[:1] if isinstance(id, str) else [id])
        doc_id, meta, text = self._db.rows([pos])[pos]
        return Document(doc_id, text, meta, self._doc_matrix(pos))

    def _query_matrix(self, query) -> np.ndarray:
        if isinstance(query, str):
            if not query.strip():
                raise ValueError("the query is empty")
            enc = self.encoder
            q = enc.encode_queries([query])[0]
            if not enc.config.do_query_expansion and q.shape[0] >= enc.query_length:
                raise ValueError(
                    f"the query reaches the model's limit of {enc.query_length} tokens and would be "
                    "truncated: shorten it, or pass its token matrix"
                )
            return np.ascontiguousarray(q, dtype=np.float32)
        if isinstance(query, np.ndarray):
            if query.ndim != 2 or query.shape[1] != self._m.dim:
                raise ValueError(
                    f"a query matrix must have shape (n_tokens, {self._m.dim}), got {query.shape}"
                )
            if query.shape[0] == 0:
                raise ValueError("the query matrix has no rows")
            if not np.issubdtype(query.dtype, np.floating):
                raise TypeError(f"a query matrix must be floating point, got {query.dtype}")
            q = np.ascontiguousarray(query, dtype=np.float32)
            if not np.isfinite(q).all():
                raise ValueError("the query matrix holds NaN or infinite values")
            return q
        raise TypeError(f"query must be a string or a (n_tokens, dim) array, got {type(query).__name__}")

    def _candidates(self, filter) -> list[np.ndarray | None]:
        if filter is None:
            return self._live
        sql, params = compile_filter(filter)
        positions = self._db.filter_positions(sql, params, self._m.generation)
        return self._split(positions)

    def _split(self, positions: np.ndarray) -> list[np.ndarray]:
        """Sorted global positions -> per-segment sorted local rows."""
        out = []
        for seg in self._segments:
            lo, hi = np.searchsorted(positions, [seg.first_pos, seg.end_pos])
            out.append(np.ascontiguousarray(positions[lo:hi] - seg.first_pos))
        return out

    def _topk(
        self, q: np.ndarray, k: int, candidates: list[np.ndarray | None], plan: _Plan | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best k positions by MaxSim: exact over the stored vectors, or staged (plaid)."""
        import colmax

        if self._m.kind == "plaid" and (plan is not None or self._m.storage is None):
            return self._plaid_topk(q, k, candidates, plan)
        positions, scores = [], []
        for seg, cand in zip(self._segments, candidates):
            if cand is not None and cand.size == 0:
                continue
            rows, s = colmax.maxsim_topk(q, seg.tokens, seg.offsets, k, candidates=cand, threads=self.threads)
            positions.append(rows + seg.first_pos)
            scores.append(s)
        if not positions:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        pos, sc = np.concatenate(positions), np.concatenate(scores)
        if len(positions) > 1:
            order = np.lexsort((pos, -sc))[:k]  # score desc, ties by lower position
            pos, sc = pos[order], sc[order]
        return pos, sc

    def _plaid_topk(
        self, q: np.ndarray, k: int, candidates: list[np.ndarray | None], plan: _Plan | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Staged search, or with ``plan`` None every candidate scored on its decompressed (or
        copied) vectors: exact MaxSim for an index that keeps no full-precision copy."""
        cb = self._codebook
        segments = [
            (
                seg.doc_codes,
                seg.doc_code_offsets,
                seg.residuals,
                seg.offsets,
                seg.ivf_offsets,
                seg.ivf,
                cand,
                seg.tokens,
                seg.first_pos,
            )
            for seg, cand in zip(self._segments, candidates)
            if cand is None or cand.size
        ]
        if not segments or cb is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        nprobe, ncandidates = (plan.nprobe, plan.ncandidates) if plan else (1, k)
        return _core.plaid_search(
            q,
            cb.centroids,
            cb.weights,
            cb.nbits,
            cb.normalize,
            segments,
            k,
            nprobe,
            max(ncandidates, k),
            exhaustive=plan is None,
            threads=self.threads,
        )

    def _plan(self, k: int, exact: bool, nprobe, ncandidates) -> _Plan | None:
        """Staged-search parameters, or None for exact search (see docs/plaid.md)."""
        if self._m.kind == "exact":
            if nprobe is not None or ncandidates is not None:
                raise ValueError("nprobe and ncandidates apply to kind='plaid' indexes only")
            return None
        if exact:
            return None
        for name, value in (("nprobe", nprobe), ("ncandidates", ncandidates)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        default = _Plan.default(k)
        return _Plan(
            int(nprobe) if nprobe is not None else default.nprobe,
            int(ncandidates) if ncandidates is not None else default.ncandidates,
        )

    def _hits(self, positions: np.ndarray, scores: np.ndarray) -> list[Hit]:
        rows = self._db.rows(positions.tolist())
        return [
            Hit(rows[p][0], float(s), rows[p][1], rows[p][2])
            for p, s in zip(positions.tolist(), scores.tolist())
        ]

    def search(
        self,
        query,
        k: int = 10,
        *,
        filter: Mapping | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
    ) -> list[Hit]:
        """The ``k`` best documents by MaxSim, best first (ties: earlier added first).

        ``query`` is a text (encoded with the index's model) or a ``(n_tokens, dim)`` matrix;
        ``filter`` restricts the candidates by metadata (see :mod:`colmax.filters`).
        An exact index always scores every (filtered) document exactly. A plaid index searches
        in stages: each query token probes its ``nprobe`` nearest centroids, the documents
        holding them are ranked by centroid scores, and the best ``ncandidates`` are scored
        exactly on their decompressed vectors; defaults depend on the corpus size
        (docs/plaid.md). ``exact=True`` scores every document instead.
        """
        k = _check_k(k)
        plan = self._plan(k, exact, nprobe, ncandidates)
        q = self._query_matrix(query)
        return self._hits(*self._topk(q, k, self._candidates(filter), plan))

    def search_batch(
        self,
        queries,
        k: int = 10,
        *,
        filter: Mapping | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries (texts are encoded in one batch)."""
        k = _check_k(k)
        plan = self._plan(k, exact, nprobe, ncandidates)
        if isinstance(queries, str):
            raise TypeError("search_batch takes a list of queries: for one query use search()")
        if isinstance(queries, Ragged):
            matrices = [self._query_matrix(q) for q in queries]
        else:
            queries = list(queries)
            if queries and all(isinstance(q, str) for q in queries):
                for i, q in enumerate(queries):
                    if not q.strip():
                        raise ValueError(f"queries[{i}] is empty")
                matrices = [self._query_matrix(q) for q in self.encoder.encode_queries(queries)]
            else:
                matrices = [self._query_matrix(q) for q in queries]
        candidates = self._candidates(filter)
        return [self._hits(*self._topk(q, k, candidates, plan)) for q in matrices]

    def rerank(self, query, ids: Sequence[str]) -> list[Hit]:
        """Score exactly the documents ``ids`` (KeyError for unknown ones), best first."""
        import colmax

        ids = list(dict.fromkeys(_as_id_list(ids)))
        q = self._query_matrix(query)
        if not ids:
            return []
        positions = np.array(sorted(self._positions(ids)), dtype=np.int64)
        if any(seg.tokens is None for seg in self._segments):  # plaid without a copy: decompress
            return self._hits(*self._plaid_topk(q, len(positions), self._split(positions), None))
        pos_parts, score_parts = [], []
        for seg, cand in zip(self._segments, self._split(positions)):
            if cand.size:
                score_parts.append(
                    colmax.maxsim(q, seg.tokens, seg.offsets, candidates=cand, threads=self.threads)
                )
                pos_parts.append(cand + seg.first_pos)
        pos, sc = np.concatenate(pos_parts), np.concatenate(score_parts)
        order = np.lexsort((pos, -sc))
        return self._hits(pos[order], sc[order])

    def explain(self, query, id: str) -> Explanation:
        """Per query token: the best-matching token of document ``id`` and its similarity."""
        q = self._query_matrix(query)
        (pos,) = self._positions([id]) if isinstance(id, str) else self._positions(_as_id_list(id, "id"))
        d = self._doc_matrix(pos)
        sims = q @ d.T  # (nq, nd); exact float32, the same products MaxSim takes the max of
        best = sims.argmax(axis=1)
        similarity = sims[np.arange(len(q)), best]
        query_tokens = doc_tokens = None
        if isinstance(query, str) or self._db.rows([pos])[pos][2]:
            query_tokens, doc_tokens = _token_texts(self, query, pos, best, len(q), d.shape[0])
        return Explanation(
            id, float(similarity.sum(dtype=np.float64)), similarity, best, query_tokens, doc_tokens
        )

    # -- writing -----------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping] | None = None,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> list[str]:
        """Encode and add documents in one commit; return their ids (generated when not given)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string: pass [text]")
        texts = list(texts)
        if not texts:
            raise ValueError("texts is empty: nothing to add")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
            if not t.strip():
                raise ValueError(f"texts[{i}] is empty: every document needs some text")
        ids, metas = self._check_new(len(texts), ids, metadata)
        encoder = self.encoder
        bar = _progress(len(texts), progress)
        chunks = (
            _counted(encoder.encode_documents(texts[i : i + _ADD_CHUNK_DOCS], batch_size=batch_size), bar)
            for i in range(0, len(texts), _ADD_CHUNK_DOCS)
        )
        try:
            self._write(chunks, ids, metas, texts, [])
        finally:
            bar.close()
        return ids

    def add_embeddings(
        self, embeddings, ids: Sequence[str] | None, metadata: Sequence[Mapping] | None = None
    ) -> list[str]:
        """Add precomputed token matrices (a ``Ragged`` or a list of ``(n_i, dim)`` arrays)."""
        ragged = self._check_embeddings(embeddings)
        ids, metas = self._check_new(len(ragged), ids, metadata)
        self._write(ragged, ids, metas, None, [])
        return ids

    def delete(self, ids) -> None:
        """Delete documents (KeyError, and nothing deleted, if any id is unknown)."""
        ids = list(dict.fromkeys(_as_id_list(ids)))
        if ids:
            self._write(None, [], [], None, ids)

    def update(self, id: str, text: str, metadata: Mapping | None = None) -> None:
        """Replace document ``id``'s text (and metadata; None keeps the current metadata)."""
        if not isinstance(id, str):
            raise TypeError(f"id must be a string, got {type(id).__name__}")
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError("text is empty: every document needs some text")
        current = self.get(id)
        meta = current.metadata if metadata is None else metadata
        _, metas = self._check_new(1, [id], [meta], check_existing=False)
        ragged = self.encoder.encode_documents([text])
        self._write(ragged, [id], metas, [text], [id])

    def _check_embeddings(self, embeddings) -> Ragged:
        if isinstance(embeddings, np.ndarray):
            raise TypeError(
                "embeddings must be a colmax.Ragged or a list of (n_tokens, dim) arrays, not one array"
            )
        if not isinstance(embeddings, Ragged):
            mats = list(embeddings)
            for i, m in enumerate(mats):
                if not isinstance(m, np.ndarray) or m.ndim != 2:
                    raise TypeError(f"embeddings[{i}] must be a 2-D array (n_tokens, dim)")
                if not np.issubdtype(m.dtype, np.floating):
                    raise TypeError(f"embeddings[{i}] must be floating point, got {m.dtype}")
                if m.shape[1] != self._m.dim:
                    raise ValueError(
                        f"embeddings[{i}] has dim {m.shape[1]}, the index holds dim {self._m.dim}"
                    )
            if not mats:
                raise ValueError("embeddings is empty: nothing to add")
            embeddings = Ragged.from_list([np.asarray(m, dtype=np.float32) for m in mats])
        if len(embeddings) == 0:
            raise ValueError("embeddings is empty: nothing to add")
        if embeddings.dim != self._m.dim:
            raise ValueError(f"embeddings have dim {embeddings.dim}, the index holds dim {self._m.dim}")
        if not np.issubdtype(embeddings.tokens.dtype, np.floating):
            raise TypeError(f"embeddings must be floating point, got {embeddings.tokens.dtype}")
        empty = np.flatnonzero(embeddings.lengths == 0)
        if empty.size:
            raise ValueError(
                f"document {int(empty[0])} has no token vectors: every document needs at least one"
            )
        if not np.isfinite(embeddings.tokens).all():
            raise ValueError("embeddings hold NaN or infinite values")
        return embeddings

    def _check_new(
        self, n: int, ids, metadata, check_existing: bool = True
    ) -> tuple[list[str], list[str | None]]:
        if ids is None:
            ids = [uuid.uuid4().hex for _ in range(n)]
        else:
            ids = _as_id_list(ids)
            if len(ids) != n:
                raise ValueError(f"got {n} documents but {len(ids)} ids")
            seen: set[str] = set()
            for i, x in enumerate(ids):
                if not x:
                    raise ValueError(f"ids[{i}] is empty: ids must be non-empty strings")
                if x in seen:
                    raise ValueError(f"id {x!r} appears twice in this call: ids must be unique")
                seen.add(x)
            if check_existing:
                existing = self._db.positions_of(ids, self._m.generation)
                if existing:
                    raise ValueError(
                        f"{len(existing)} id(s) already in the index, e.g. {next(iter(existing))!r}: "
                        "use update() or delete them first"
                    )
        if metadata is None:
            return ids, [None] * n
        if isinstance(metadata, Mapping):
            raise TypeError("metadata must be a list with one dict per document")
        metadata = list(metadata)
        if len(metadata) != n:
            raise ValueError(f"got {n} documents but {len(metadata)} metadata entries")
        metas: list[str | None] = []
        for i, m in enumerate(metadata):
            if m is None:
                metas.append(None)
                continue
            if not isinstance(m, Mapping) or not all(isinstance(key, str) for key in m):
                raise TypeError(f"metadata[{i}] must be a dict with string keys, got {type(m).__name__}")
            try:
                metas.append(json.dumps(dict(m), ensure_ascii=False, allow_nan=False))
            except (TypeError, ValueError) as e:
                raise TypeError(f"metadata[{i}] is not JSON-serialisable: {e}") from None
        return ids, metas

    def _recover(self, manifest: Manifest) -> None:
        """Writer only: undo what an unfinished commit after ``manifest`` left behind."""
        self._db.rollback_to(manifest.generation)
        keep = manifest.files()
        for name in os.listdir(self.path):
            if name in keep or name == "lock":
                continue
            if name.startswith(manifest.store):  # its journal: SQLite's own recovery owns it
                continue
            if name.startswith(("seg-", "store-", "codebook-")) or name == MANIFEST + ".tmp":
                (self.path / name).unlink(missing_ok=True)

    def _begin_write(self) -> Manifest:
        manifest = read_manifest(self.path)
        if manifest.generation != self._m.generation or manifest.store != self._m.store:
            self._load(manifest)
        self._recover(manifest)
        return manifest

    def _write(
        self,
        docs: Ragged | Iterable[Ragged] | None,
        ids: list[str],
        metas: list,
        texts,
        delete_ids: list[str],
    ) -> None:
        """One commit: new documents (a Ragged, or chunks of one in id order) and tombstones."""
        with self._write_mutex, WriterLock(self.path):
            m = self._begin_write()
            gen = m.generation + 1
            tombstones = self._positions(delete_ids) if delete_ids else []
            if ids:
                existing = set(self._db.positions_of(ids, m.generation)) - set(delete_ids)
                if existing:
                    raise ValueError(
                        f"id {existing.pop()!r} is already in the index: use update() or delete it first"
                    )
            writer = None
            try:
                segments = m.segments
                n_new = 0
                if docs is not None:
                    chunks = [docs] if isinstance(docs, Ragged) else docs
                    codebook = self._codebook
                    if m.kind == "plaid" and not m.trained:
                        chunks = list(chunks)  # the first add trains the codebook on all its vectors
                        codebook, m = self._train(m, gen, np.concatenate([c.tokens for c in chunks]))
                    writer = SegmentWriter(
                        self.path, f"seg-{gen:06d}", m.next_pos, m.dim, m.storage, codebook, self.threads
                    )
                    n_new = _append_all(writer, chunks)
                    if n_new != len(ids):
                        raise RuntimeError(f"internal error: {n_new} documents encoded for {len(ids)} ids")
                    segments = (*segments, writer.finish())
                rows = (
                    (m.next_pos + i, ids[i], metas[i], texts[i] if texts is not None else None)
                    for i in range(n_new)
                )
                self._db.write(gen, rows, tombstones)
                new = m.replace(
                    generation=gen,
                    next_pos=m.next_pos + n_new,
                    n_live=m.n_live + n_new - len(tombstones),
                    segments=segments,
                    created_with=m.created_with,
                )
                write_manifest(self.path, new)
            except BaseException:
                self._abort(m, writer)
                raise
            self._load(new)

    def _abort(self, m: Manifest, writer: SegmentWriter | None) -> None:
        try:
            if read_manifest(self.path).generation > m.generation:
                return  # the commit happened: the failure came after the rename
        except Exception:
            pass
        if writer is not None:
            writer.abort()
        self._db.rollback_to(m.generation)
        (self.path / (MANIFEST + ".tmp")).unlink(missing_ok=True)
        (self.path / f"codebook-{m.generation + 1:06d}.centroids").unlink(missing_ok=True)

    def _train(
        self, m: Manifest, gen: int, tokens: np.ndarray, n_tokens: int | None = None
    ) -> tuple[Codebook, Manifest]:
        """Train a codebook on ``tokens`` (drawn from a corpus of ``n_tokens``), write its file
        for commit ``gen``; return it and ``m`` naming it (not committed yet)."""
        requested = m.codebook or {}
        codebook = codebooks.train(
            tokens,
            nbits=requested.get("nbits", 2),
            n_centroids=requested.get("n_centroids")
            or codebooks.default_n_centroids(n_tokens or len(tokens)),
            threads=self.threads,
        )
        if n_tokens is not None:
            codebook = dataclasses.replace(codebook, trained_tokens=int(n_tokens))
        name = f"codebook-{gen:06d}.centroids"
        sha256 = write_file(self.path / name, codebook.centroids.astype("<f4", copy=False))
        record = {
            **codebook.record(),
            "requested_n_centroids": requested.get("n_centroids"),
            "file": name,
            "sha256": sha256,
        }
        return codebook, m.replace(codebook=record)

    def compact(self) -> None:
        """Rewrite the index without deleted documents, as one segment and a fresh store.

        Readers that opened before keep their memory maps; call ``reload()`` to move on."""
        self._rewrite(retrain=None)

    def retrain(self, *, n_centroids: int | None = None, nbits: int | None = None) -> None:
        """Plaid indexes: learn a new codebook from the live documents and re-encode them all
        (compacting too). Worth it when the corpus has grown well past what the codebook was
        trained on (``info()["codebook_trained_tokens"]``) or changed topic. Without a
        full-precision copy the documents are re-encoded from their decompressed vectors."""
        if self._m.kind != "plaid":
            raise ValueError("retrain() applies to kind='plaid' indexes: an exact index has no codebook")
        request = {}
        if n_centroids is not None:
            request["n_centroids"] = codebooks.check_n_centroids(n_centroids)
        if nbits is not None:
            request["nbits"] = codebooks.check_nbits(nbits, self.dim)
        self._rewrite(retrain=request)

    def _rewrite(self, retrain: dict | None) -> None:
        with self._write_mutex, WriterLock(self.path):
            m = self._begin_write()
            if retrain is None and m.n_live == m.next_pos and len(m.segments) <= 1:
                return
            if retrain is not None and m.n_live == 0:
                raise ValueError("the index has no documents to train a codebook on")
            gen = m.generation + 1
            store_name = f"store-{gen:06d}.sqlite"
            writer = target = None
            try:
                target = Store.create(self.path / store_name)
                old_positions = self._db.copy_live_to(target, m.generation, gen)
                target.close()
                segments: tuple = ()
                codebook = self._codebook
                if retrain is not None:
                    wanted = {
                        "nbits": m.codebook["nbits"],
                        "n_centroids": m.codebook.get("requested_n_centroids"),
                        **retrain,
                    }
                    sample, n_tokens = self._training_sample(old_positions, wanted)
                    codebook, m = self._train(m.replace(codebook=wanted), gen, sample, n_tokens)
                if old_positions.size:
                    writer = SegmentWriter(
                        self.path, f"seg-{gen:06d}", 0, m.dim, m.storage, codebook, self.threads
                    )
                    for seg, rows in zip(self._segments, self._split(old_positions)):
                        if retrain is None:
                            _copy_rows(writer, seg, rows)
                        else:
                            self._reencode_rows(writer, seg, rows)
                    segments = (writer.finish(),)
                new = m.replace(
                    generation=gen,
                    store=store_name,
                    next_pos=int(old_positions.size),
                    n_live=int(old_positions.size),
                    segments=segments,
                )
                write_manifest(self.path, new)
            except BaseException:
                committed = False
                try:
                    committed = read_manifest(self.path).generation > m.generation
                except Exception:
                    pass
                if not committed:
                    if writer is not None:
                        writer.abort()
                    if target is not None:
                        target.close()
                    for suffix in ("", "-journal"):
                        (self.path / (store_name + suffix)).unlink(missing_ok=True)
                    (self.path / f"codebook-{gen:06d}.centroids").unlink(missing_ok=True)
                raise
            self._load(new)
            self._recover(new)  # the old generation's files are garbage now

    def _training_sample(self, positions: np.ndarray, wanted: dict) -> tuple[np.ndarray, int]:
        """Float32 vectors of randomly chosen live documents, about as many tokens as k-means
        samples, and the live token count (which sizes the default codebook)."""
        lengths = np.concatenate(
            [
                np.diff(np.asarray(seg.offsets))[rows]
                for seg, rows in zip(self._segments, self._split(positions))
            ]
        )
        n_tokens = int(lengths.sum())
        k = wanted.get("n_centroids") or codebooks.default_n_centroids(n_tokens)
        budget = max(codebooks.SAMPLE_PER_CENTROID * k, codebooks.MIN_SAMPLE)
        order = np.random.default_rng(0).permutation(len(positions))
        take = np.sort(order[: int(np.searchsorted(np.cumsum(lengths[order]), budget)) + 1])
        chosen = positions[take]
        return np.concatenate([self._doc_matrix(int(p)) for p in chosen.tolist()]), n_tokens

    def _reencode_rows(self, writer: SegmentWriter, seg: Segment, rows: np.ndarray) -> None:
        """Append the documents ``rows`` of ``seg`` as float32 (copy, or decompressed) to a
        writer with a new codebook."""
        offsets = np.asarray(seg.offsets)
        for start in range(0, rows.size, 1024):
            chunk = rows[start : start + 1024]
            writer.append(self._rows_float32(seg, chunk, self.threads), offsets[chunk + 1] - offsets[chunk])

    # -- maintenance -------------------------------------------------------------------------

    def verify(self) -> None:
        """Hash every file against the manifest and check the store (IndexFormatError if damaged)."""
        m = self._m
        if m.trained:
            _load_codebook(self.path, m)
        for seg in m.segments:
            verify_segment(self.path, seg)
        (result,) = self._db.conn.execute("PRAGMA integrity_check").fetchone()
        if result != "ok":
            raise IndexFormatError(f"the document store {m.store} is damaged: {result}")
        visible = len(self._db.live_ids(m.generation))
        if visible != m.n_live:
            raise IndexFormatError(f"the store holds {visible} live documents, the manifest says {m.n_live}")

    def warm(self) -> int:
        """Read every file of the current commit once, front to back, so that the page cache
        holds the index; return the bytes read.

        Searches read the memory-mapped files in place: after a cold start (a reboot, or other
        work evicting the cache) their pages come from disk as they are first touched. Plaid
        search hints those reads so that they overlap (docs/format.md), which keeps a cold first
        pass near a warm one: on a 3.45 GB plaid index, first queries 25-34 ms and pass p99
        42-56 ms, where warm passes have p50 21 ms and p99 38 ms (0.2-1.3 s per first query
        before the hints). After warm() nothing waits on the disk; reading sequentially takes
        seconds (2-5.5 s for those 3.45 GB, docs/plaid.md). Worth it when the index fits in
        memory; pointless when it does not.
        """
        total = 0
        for name in sorted(self._m.files()):
            try:
                total += sum(len(chunk) for chunk in read_chunks(self.path / name))
            except FileNotFoundError:
                raise IndexFormatError(f"index file {name} is missing from {self.path}") from None
        return total

    def info(self) -> dict:
        """Facts about the index, as shown by ``colmax info INDEX``."""
        m = self._m
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        # per token: its full-precision copy, packed residual and share of its document's codes
        stored = sum(
            (self.path / s.file(kind)).stat().st_size
            for s in m.segments
            for kind in ("tokens", "residuals", "doc_codes")
            if kind in s.files
        )
        cb = self._codebook
        plaid = {}
        if m.kind == "plaid":
            plaid = {
                "nbits": m.codebook["nbits"],
                "centroids": cb.n_centroids if cb else None,
                "codebook_trained_tokens": cb.trained_tokens if cb else None,
            }
        return {
            "path": str(self.path),
            "format_version": FORMAT_VERSION,
            "created_with": m.created_with,
            "generation": m.generation,
            "model": m.model.get("name") or "(none: embeddings only)",
            "model_path": m.model.get("path") or ("packaged default" if m.model.get("default") else None),
            "kind": m.kind,
            "dim": m.dim,
            "storage": m.storage,
            **plaid,
            "documents": m.n_live,
            "deleted": m.next_pos - m.n_live,
            "segments": len(m.segments),
            "tokens": m.n_tokens,
            "bytes_per_token": round(stored / m.n_tokens, 2) if m.n_tokens else None,
            "size_on_disk": size,
        }


def _load_codebook(directory: Path, manifest: Manifest) -> Codebook:
    record = manifest.codebook
    path = directory / record["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexFormatError(f"index file {record['file']} is missing from {directory}") from None
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        raise IndexFormatError(f"index file {path} is damaged: checksum mismatch")
    try:
        centroids = np.frombuffer(data, dtype="<f4").reshape(int(record["n_centroids"]), manifest.dim)
        return Codebook.from_record(record, np.ascontiguousarray(centroids))
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"the codebook of {directory} is damaged: {e}") from None


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


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="encoding", unit="doc", disable=not enabled)


def _counted(ragged: Ragged, bar) -> Ragged:
    bar.update(len(ragged))
    return ragged


def _append_chunked(writer: SegmentWriter, ragged: Ragged) -> None:
    lengths = ragged.lengths
    start = 0
    while start < len(ragged):
        # whole documents per chunk, about _WRITE_CHUNK_TOKENS rows
        stop = (
            int(np.searchsorted(ragged.offsets, ragged.offsets[start] + _WRITE_CHUNK_TOKENS, side="right"))
            - 1
        )
        stop = min(max(stop, start + 1), len(ragged))
        lo, hi = int(ragged.offsets[start]), int(ragged.offsets[stop])
        writer.append(ragged.tokens[lo:hi], lengths[start:stop])
        start = stop


def _copy_rows(writer: SegmentWriter, seg: Segment, rows: np.ndarray) -> None:
    """Append the segment's documents ``rows`` to ``writer`` as stored (no re-encoding)."""
    offsets = np.asarray(seg.offsets)
    kinds = [kind for kind in ("tokens", "residuals") if getattr(seg, kind) is not None]
    code_offsets = None if seg.doc_code_offsets is None else np.asarray(seg.doc_code_offsets)
    for start in range(0, rows.size, 1024):
        chunk = rows[start : start + 1024]
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


def _token_texts(index: Index, query, pos: int, best: np.ndarray, nq: int, nd: int):
    """Token strings for an explanation: the query's tokens, and the text of each best-matching
    document token (recomputed by tokenizing the stored text). None where unavailable."""
    try:
        enc = index.encoder
        tok = enc.tokenizer
        id_to_token = tok.id_to_token
    except Exception:
        return None, None
    query_tokens = None
    if isinstance(query, str):
        qids = tok.queries([query]).ids[0]
        if len(qids) == nq:
            query_tokens = [id_to_token(int(i)) or "?" for i in qids]
    doc_tokens = None
    text = index._store.rows([pos])[pos][2]
    if text:
        docs = tok.documents([text])
        kept = docs.ids[0][docs.keep[0]]
        order = None
        if len(kept) == nd:
            order = np.arange(nd) if index._m.kind == "exact" else index._text_order(pos, text)
        if order is not None:
            doc_tokens = [id_to_token(int(kept[order[j]])) or "?" for j in best.tolist()]
    return query_tokens, doc_tokens
