"""Segments: the token matrices of one append, as two raw little-endian files memory-mapped on open.

``<name>.tokens`` holds ``n_tokens x dim`` rows in the index's storage dtype (float32, float16,
or bfloat16 bits as uint16); ``<name>.offsets`` holds ``n_docs + 1`` int64 row offsets starting
at 0. No header: shape, dtype and SHA-256 of both files live in the manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._manifest import IndexFormatError, SegmentInfo

DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "bfloat16": np.dtype("<u2")}
_CHUNK = 1 << 24  # bytes hashed per read when verifying


def to_storage(tokens: np.ndarray, storage: str) -> np.ndarray:
    """float32 rows -> the storage dtype (bfloat16: round to nearest even, by the core)."""
    if storage == "float32":
        return np.ascontiguousarray(tokens, dtype=np.float32)
    if storage == "float16":
        return np.ascontiguousarray(tokens, dtype=np.float16)
    import colmax

    return colmax.to_bfloat16(np.ascontiguousarray(tokens, dtype=np.float32))


def to_float32(tokens: np.ndarray, storage: str) -> np.ndarray:
    """Stored rows -> float32 (exact: every stored value is representable)."""
    if storage == "bfloat16":
        import colmax

        return colmax.from_bfloat16(np.ascontiguousarray(tokens))
    return np.asarray(tokens, dtype=np.float32)


class SegmentWriter:
    """Streams documents into a new segment's files; nothing is visible until the manifest names it."""

    def __init__(self, directory: Path, name: str, first_pos: int, dim: int, storage: str) -> None:
        self.directory, self.name, self.first_pos = directory, name, first_pos
        self.dim, self.storage = dim, storage
        self._tokens = open(directory / f"{name}.tokens", "xb")
        self._tokens_hash = hashlib.sha256()
        self._lengths: list[np.ndarray] = []
        self.n_tokens = 0

    def append(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        self._write_bytes(to_storage(tokens, self.storage))
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.n_tokens += int(tokens.shape[0])

    def append_stored(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append rows already in the storage dtype (compact copies them without a round trip)."""
        self._write_bytes(np.ascontiguousarray(tokens, dtype=DTYPES[self.storage]))
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.n_tokens += int(tokens.shape[0])

    def _write_bytes(self, rows: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(rows)).cast("B")  # no copy: file and hash read in place
        self._tokens.write(data)
        self._tokens_hash.update(data)

    def finish(self) -> SegmentInfo:
        """Flush and fsync both files; return what the manifest records about them."""
        self._tokens.flush()
        os.fsync(self._tokens.fileno())
        self._tokens.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype="<i8")
        np.cumsum(lengths, out=offsets[1:])
        data = offsets.tobytes()
        with open(self.directory / f"{self.name}.offsets", "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return SegmentInfo(
            name=self.name,
            first_pos=self.first_pos,
            n_docs=len(lengths),
            n_tokens=self.n_tokens,
            tokens_sha256=self._tokens_hash.hexdigest(),
            offsets_sha256=hashlib.sha256(data).hexdigest(),
        )

    def abort(self) -> None:
        self._tokens.close()
        for suffix in (".tokens", ".offsets"):
            (self.directory / f"{self.name}{suffix}").unlink(missing_ok=True)


@dataclass
class Segment:
    """An open segment: ``tokens`` and ``offsets`` are read-only memory maps, fed to the core as is."""

    info: SegmentInfo
    tokens: np.ndarray
    offsets: np.ndarray

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
        raise IndexFormatError(f"index file {path.name} is missing from {path.parent}") from None
    if size != expected:
        raise IndexFormatError(
            f"index file {path} is damaged: {size} bytes, the manifest expects {expected} (truncated?)"
        )
    try:
        return np.memmap(path, dtype=dtype, mode="r", shape=shape)
    except FileNotFoundError:  # removed since the stat: a concurrent compact; the caller retries
        raise IndexFormatError(f"index file {path.name} is missing from {path.parent}") from None


def open_segment(directory: Path, info: SegmentInfo, dim: int, storage: str) -> Segment:
    """Map a segment's files. Sizes and the (small) offsets file are checked here; the token
    matrix's checksum only by :func:`verify_segment`, since hashing it would make open O(size)."""
    offsets_path = directory / info.offsets_file
    offsets = _map(offsets_path, np.dtype("<i8"), (info.n_docs + 1,))
    if hashlib.sha256(offsets.tobytes()).hexdigest() != info.offsets_sha256:
        raise IndexFormatError(f"index file {offsets_path} is damaged: checksum mismatch")
    tokens = _map(directory / info.tokens_file, DTYPES[storage], (info.n_tokens, dim))
    return Segment(info, tokens, offsets)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_segment(directory: Path, info: SegmentInfo) -> None:
    """Hash both files in full and compare with the manifest."""
    for name, expected in ((info.tokens_file, info.tokens_sha256), (info.offsets_file, info.offsets_sha256)):
        if file_sha256(directory / name) != expected:
            raise IndexFormatError(f"index file {directory / name} is damaged: checksum mismatch")
