"""The index manifest: the one file that says which segments and which store make up a commit.

A commit is an atomic rename of ``colmax-index.json.tmp`` over ``colmax-index.json``; everything
else in the directory is either named by the current manifest or garbage from an unfinished write.
docs/format.md describes every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "colmax-index"
FORMAT_VERSION = 1
MANIFEST = "colmax-index.json"
STORAGES = ("float32", "float16", "bfloat16")


class IndexFormatError(ValueError):
    """A directory is not a colmax index, or its files are damaged (truncated, altered)."""


class IndexVersionError(IndexFormatError):
    """The index was written by a newer colmax whose format this version cannot read."""


@dataclass(frozen=True)
class SegmentInfo:
    """One append: documents ``first_pos .. first_pos + n_docs - 1`` in two raw files."""

    name: str
    first_pos: int
    n_docs: int
    n_tokens: int
    tokens_sha256: str
    offsets_sha256: str

    @property
    def tokens_file(self) -> str:
        return f"{self.name}.tokens"

    @property
    def offsets_file(self) -> str:
        return f"{self.name}.offsets"


@dataclass(frozen=True)
class Manifest:
    generation: int
    dim: int
    storage: str
    model: dict
    store: str
    next_pos: int = 0
    n_live: int = 0
    segments: tuple[SegmentInfo, ...] = field(default_factory=tuple)
    created_with: str = ""

    @property
    def n_tokens(self) -> int:
        return sum(s.n_tokens for s in self.segments)

    def files(self) -> set[str]:
        names = {MANIFEST, self.store}
        for s in self.segments:
            names.update((s.tokens_file, s.offsets_file))
        return names

    def replace(self, **changes) -> Manifest:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generation": self.generation,
            "created_with": self.created_with,
            "dim": self.dim,
            "storage": self.storage,
            "model": self.model,
            "store": self.store,
            "next_pos": self.next_pos,
            "n_live": self.n_live,
            "segments": [dataclasses.asdict(s) for s in self.segments],
        }
        body["checksum"] = _checksum(body)
        return body


def _checksum(body: dict) -> str:
    canonical = json.dumps({k: v for k, v in body.items() if k != "checksum"}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_manifest(directory: Path) -> Manifest:
    """Parse and check ``directory``'s manifest; every problem is an IndexFormatError naming it."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise FileNotFoundError(f"no index at {directory}: the directory does not exist")
    if not path.is_file():
        raise IndexFormatError(f"{directory} is not a colmax index: it has no {MANIFEST}")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"{path} is damaged (not valid JSON: {e})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise IndexFormatError(f"{path} is not a colmax index manifest (no 'format': '{FORMAT}')")
    version = body.get("format_version")
    if not isinstance(version, int):
        raise IndexFormatError(f"{path} has no integer format_version")
    if version > FORMAT_VERSION:
        raise IndexVersionError(
            f"{directory} uses index format {version}, written by colmax {body.get('created_with', '?')}; "
            f"this colmax reads format {FORMAT_VERSION}: upgrade colmax (pip install -U colmax)"
        )
    if body.get("checksum") != _checksum(body):
        raise IndexFormatError(f"{path} is damaged: its checksum does not match its content")
    try:
        segments = tuple(SegmentInfo(**s) for s in body["segments"])
        manifest = Manifest(
            generation=int(body["generation"]),
            dim=int(body["dim"]),
            storage=str(body["storage"]),
            model=dict(body["model"]),
            store=str(body["store"]),
            next_pos=int(body["next_pos"]),
            n_live=int(body["n_live"]),
            segments=segments,
            created_with=str(body.get("created_with", "")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{path} is damaged: missing or malformed field ({e})") from None
    if manifest.storage not in STORAGES:
        raise IndexFormatError(f"{path} names unknown storage {manifest.storage!r}")
    return manifest


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Commit: write a temporary file, fsync it, rename it over the manifest, fsync the directory."""
    tmp = directory / (MANIFEST + ".tmp")
    data = json.dumps(manifest.to_json(), indent=1).encode("utf-8")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / MANIFEST)
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
