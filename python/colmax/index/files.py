"""The files of an index directory: their names, durable writes, hashing, and the errors that
name a missing or damaged one.

Every file but the manifest and the lock is named after the commit (generation) that wrote it,
so an unfinished commit's files are recognisable garbage (docs/format.md).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import IndexFormatError

MANIFEST = "colmax-index.json"
LOCK = "lock"
VERIFIED = "colmax-verified.json"  # the last full verification (integrity.py); not part of a commit
# prefixes of the files a commit writes; anything with one that no manifest names is garbage
GENERATED_PREFIXES = ("seg-", "store-", "codebook-")
_CHUNK = 1 << 24  # bytes per read when hashing or warming


def segment_name(gen: int) -> str:
    return f"seg-{gen:06d}"


def store_name(gen: int) -> str:
    return f"store-{gen:06d}.sqlite"


def codebook_name(gen: int) -> str:
    return f"codebook-{gen:06d}.centroids"


def generation_of(name: str) -> int:
    """The generation in a generated file's name (``seg-G``, ``store-G.sqlite``, ...)."""
    return int(name.split("-", 1)[1].split(".", 1)[0])


def missing(directory: Path, name: str) -> IndexFormatError:
    return IndexFormatError(f"index file {name} is missing from {directory}")


def damaged(path: Path, why: str = "checksum mismatch") -> IndexFormatError:
    return IndexFormatError(f"index file {path} is damaged: {why}")


def sha256(data) -> str:
    """SHA-256 of an array's or buffer's bytes, read in place (no copy)."""
    if isinstance(data, np.ndarray):
        data = memoryview(np.ascontiguousarray(data)).cast("B")
    return hashlib.sha256(data).hexdigest()


def check_sha256(path: Path, data, expected: str | None) -> None:
    if sha256(data) != expected:
        raise damaged(path)


def write_file(path: Path, array: np.ndarray) -> str:
    """Write a new file holding ``array``'s bytes, fsync it; return its SHA-256."""
    data = memoryview(np.ascontiguousarray(array)).cast("B")  # no copy: file and hash read in place
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def replace_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling, fsync it, rename it over ``path``, fsync the
    directory: after a crash ``path`` holds the old bytes or the new, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_chunks(path: Path) -> Iterator[memoryview]:
    """The bytes of a file, front to back, in chunks (one reused buffer: use each before the next)."""
    buffer = memoryview(bytearray(_CHUNK))
    with open(path, "rb", buffering=0) as f:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while n := f.readinto(buffer):
            yield buffer[:n]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in read_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def will_need(*paths: Path) -> None:
    """Ask the OS to read files into the page cache in the background (a hint, where supported)."""
    if not hasattr(os, "posix_fadvise"):
        return
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # removed since it was mapped (a concurrent compact): nothing to hint
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)
