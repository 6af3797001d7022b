"""Segments: the token vectors of one append, as raw little-endian files memory-mapped on open.

``<name>.offsets`` holds ``n_docs + 1`` int64 row offsets starting at 0. An exact segment keeps
``<name>.tokens``, ``n_tokens x dim`` rows in the index's storage dtype (float32, float16,
bfloat16 bits as uint16, or int8 with ``<name>.scales``, one float32 per row). A plaid segment
keeps each document's tokens ordered by centroid code:
``<name>.doc_codes`` / ``<name>.doc_code_offsets`` (per document, its runs and distinct codes),
``<name>.residuals`` (packed residual bytes per token), the inverted file ``<name>.ivf_offsets``
/ ``<name>.ivf`` (per centroid, the documents holding it, Elias-Fano coded) and optionally
``<name>.tokens`` in the same token order. No header: shapes, dtypes and SHA-256 of every file
live in the manifest (docs/format.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _core
from ..ragged import offsets_from_lengths
from ..scoring import from_bfloat16, quantize_int8, to_bfloat16
from .codebook import Codebook
from .files import check_sha256, damaged, missing, will_need, write_file
from .manifest import STORAGE_DTYPES, Manifest, SegmentInfo

# Every file kind a segment may have; "tokens" takes the storage dtype.
FILE_KINDS = (
    "tokens",
    "scales",
    "offsets",
    "doc_codes",
    "doc_code_offsets",
    "residuals",
    "ivf_offsets",
    "ivf",
)
_DTYPE_OF_KIND = {"scales": np.dtype("<f4"), "doc_codes": np.dtype("u1"), "residuals": np.dtype("u1")}


def copy_kinds(storage: str | None) -> list[str]:
    """The file kinds of a full-precision copy in ``storage`` (none without one)."""
    if storage is None:
        return []
    return ["tokens", "scales"] if storage == "int8" else ["tokens"]


def to_storage(tokens: np.ndarray, storage: str) -> dict[str, np.ndarray]:
    """float32 rows -> the rows of each copy file kind (bfloat16: round to nearest even; int8:
    symmetric per row, by the core)."""
    tokens = np.ascontiguousarray(tokens, dtype=np.float32)
    if storage == "bfloat16":
        return {"tokens": to_bfloat16(tokens)}
    if storage == "int8":
        values, scales = quantize_int8(tokens)
        return {"tokens": values, "scales": scales}
    return {"tokens": np.ascontiguousarray(tokens, dtype=STORAGE_DTYPES[storage])}


def to_float32(tokens: np.ndarray, storage: str, scales: np.ndarray | None = None) -> np.ndarray:
    """Stored rows (int8: with their scales) -> float32; exact but for int8, whose rows become
    scale * values rounded to float32."""
    if storage == "bfloat16":
        return from_bfloat16(np.ascontiguousarray(tokens))
    if storage == "int8":
        return np.asarray(tokens, dtype=np.float32) * np.asarray(scales, dtype=np.float32)[:, None]
    return np.asarray(tokens, dtype=np.float32)


class SegmentWriter:
    """Streams documents into a new segment's files; nothing is visible until the manifest names it.

    An exact index writes the token rows in ``storage``; a plaid index writes each document's
    tokens ordered by centroid code: its codes and packed residuals through ``codebook``, plus
    the rows in ``storage`` when it keeps a copy.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        first_pos: int,
        manifest: Manifest,
        codebook: Codebook | None = None,
        threads: int | None = None,
    ) -> None:
        self.directory, self.name, self.first_pos = directory, name, first_pos
        self.storage, self.codebook, self.threads = manifest.storage, codebook, threads
        storage = self.storage
        kinds = copy_kinds(storage) + (["doc_codes", "residuals"] if codebook else [])
        self._files: dict[str, tuple] = {}
        try:
            for kind in kinds:
                self._files[kind] = (open(directory / f"{name}.{kind}", "xb"), hashlib.sha256())
        except BaseException:
            self.abort()
            raise
        self._lengths: list[np.ndarray] = []
        self._code_lengths: list[np.ndarray] = []
        self.n_tokens = 0

    def append(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents given as float32 rows (``lengths`` rows each)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if self.codebook is not None:
            codes, residuals = self.codebook.compress(tokens, threads=self.threads)
            offsets = offsets_from_lengths(lengths)
            order, doc_codes, code_offsets = _core.plaid_doc_codes(codes, offsets, self.codebook.n_centroids)
            if self.storage is not None:
                tokens = tokens[order]
            self._write("doc_codes", doc_codes)
            self._write("residuals", residuals[order])
            self._code_lengths.append(np.diff(code_offsets))
        if self.storage is not None:
            for kind, rows in to_storage(tokens, self.storage).items():
                self._write(kind, rows)
        self._count(tokens.shape[0], lengths)

    def append_stored(
        self, rows: dict[str, np.ndarray], lengths: np.ndarray, code_lengths: np.ndarray | None = None
    ) -> None:
        """Append documents already in this segment's stored form (compact copies them as they
        are): ``rows`` maps each file kind this writer writes to its rows (for ``doc_codes``, the
        documents' blobs back to back, ``code_lengths`` bytes each)."""
        for kind in self._files:
            self._write(
                kind,
                np.ascontiguousarray(
                    rows[kind], dtype=_DTYPE_OF_KIND.get(kind) or STORAGE_DTYPES[self.storage]
                ),
            )
        if self.codebook is not None:
            self._code_lengths.append(np.asarray(code_lengths, dtype=np.int64))
        self._count(int(np.sum(lengths)), lengths)

    def _count(self, n_rows: int, lengths: np.ndarray) -> None:
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.n_tokens += int(n_rows)

    def _write(self, kind: str, rows: np.ndarray) -> None:
        f, digest = self._files[kind]
        data = memoryview(np.ascontiguousarray(rows)).cast("B")  # no copy: file and hash read in place
        f.write(data)
        digest.update(data)

    def finish(self) -> SegmentInfo:
        """Flush and fsync every file (offsets and, for plaid, the inverted file last); return
        what the manifest records about them."""
        hashes = {}
        for kind, (f, digest) in self._files.items():
            f.flush()
            os.fsync(f.fileno())
            f.close()
            hashes[kind] = digest.hexdigest()
        offsets = offsets_from_lengths(np.concatenate(self._lengths) if self._lengths else [])
        hashes["offsets"] = self._write_whole("offsets", offsets)
        if self.codebook is not None:
            code_offsets = offsets_from_lengths(
                np.concatenate(self._code_lengths) if self._code_lengths else []
            )
            hashes["doc_code_offsets"] = self._write_whole("doc_code_offsets", code_offsets)
            doc_codes = _map(
                self.directory / f"{self.name}.doc_codes", np.dtype("u1"), (int(code_offsets[-1]),)
            )
            ivf_offsets, ivf = _core.plaid_build_ivf(
                doc_codes, code_offsets, offsets, self.codebook.n_centroids
            )
            hashes["ivf_offsets"] = self._write_whole("ivf_offsets", ivf_offsets)
            hashes["ivf"] = self._write_whole("ivf", ivf)
        return SegmentInfo(self.name, self.first_pos, len(offsets) - 1, self.n_tokens, hashes)

    def _write_whole(self, kind: str, array: np.ndarray) -> str:
        return write_file(self.directory / f"{self.name}.{kind}", array)

    def abort(self) -> None:
        for f, _ in self._files.values():
            f.close()
        for kind in FILE_KINDS:
            (self.directory / f"{self.name}.{kind}").unlink(missing_ok=True)


@dataclass
class Segment:
    """An open segment: read-only memory maps, fed to the core as they are. ``tokens`` is None
    for a plaid segment without a full-precision copy; ``scales`` is set only with int8 tokens;
    the plaid arrays are None for an exact one."""

    info: SegmentInfo
    offsets: np.ndarray
    tokens: np.ndarray | None = None
    scales: np.ndarray | None = None
    doc_codes: np.ndarray | None = None
    doc_code_offsets: np.ndarray | None = None
    residuals: np.ndarray | None = None
    ivf_offsets: np.ndarray | None = None
    ivf: np.ndarray | None = None

    @property
    def first_pos(self) -> int:
        return self.info.first_pos

    @property
    def end_pos(self) -> int:
        return self.info.first_pos + self.info.n_docs


def _map(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    expected = int(np.prod(shape)) * dtype.itemsize
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise missing(path.parent, path.name) from None
    if size != expected:
        raise damaged(path, f"{size} bytes, the manifest expects {expected} (truncated?)")
    if expected == 0:  # mmap cannot map an empty file
        return np.zeros(shape, dtype=dtype)
    try:
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)
    except FileNotFoundError:  # removed since the stat: a concurrent compact; the caller retries
        raise missing(path.parent, path.name) from None


def _map_checked(directory: Path, info: SegmentInfo, kind: str, dtype: np.dtype, shape) -> np.ndarray:
    """Map a small file and check its SHA-256 (cheap, and its values index the big files)."""
    path = directory / info.file(kind)
    array = _map(path, dtype, shape)
    check_sha256(path, array, info.files.get(kind))
    return array


def open_segment(
    directory: Path, info: SegmentInfo, manifest: Manifest, codebook: Codebook | None
) -> Segment:
    """Map a segment's files. Sizes and the small files (offsets, document-code and
    inverted-file offsets) are checked here; the big ones' checksums only when asked
    (``integrity.py``: ``Index.open(verify=...)``, ``Index.verify()``), since hashing them
    makes open O(size)."""
    dim, storage = manifest.dim, manifest.storage
    offsets = _map_checked(directory, info, "offsets", np.dtype("<i8"), (info.n_docs + 1,))
    seg = Segment(info, offsets)
    if storage is not None:
        seg.tokens = _map(
            directory / info.file("tokens"), np.dtype(STORAGE_DTYPES[storage]), (info.n_tokens, dim)
        )
        if storage == "int8":
            seg.scales = _map(directory / info.file("scales"), np.dtype("<f4"), (info.n_tokens,))
    if codebook is not None:
        seg.doc_code_offsets = _map_checked(
            directory, info, "doc_code_offsets", np.dtype("<i8"), (info.n_docs + 1,)
        )
        seg.doc_codes = _map(
            directory / info.file("doc_codes"), np.dtype("u1"), (int(seg.doc_code_offsets[-1]),)
        )
        seg.residuals = _map(
            directory / info.file("residuals"), np.dtype("u1"), (info.n_tokens, dim * codebook.nbits // 8)
        )
        seg.ivf_offsets = _map_checked(
            directory, info, "ivf_offsets", np.dtype("<i8"), (codebook.n_centroids + 1,)
        )
        seg.ivf = _map(
            directory / info.file("ivf"),
            np.dtype("u1"),
            (_core.plaid_ivf_bytes(seg.ivf_offsets, info.n_docs),),
        )
        # A search reads these small files at random: start reading them now, so that a cold
        # start does not fault their pages in one at a time (docs/plaid.md).
        will_need(directory / info.file("ivf"), directory / info.file("doc_codes"))
    return seg
