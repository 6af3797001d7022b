"""The index manifest: the one file that says which segments and which store make up a commit.

A commit is an atomic rename of ``colmax-index.json.tmp`` over ``colmax-index.json``; everything
else in the directory is either named by the current manifest or garbage from an unfinished write.
docs/format.md describes every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IndexFormatError, IndexVersionError
from .files import MANIFEST, replace_durably

FORMAT = "colmax-index"
# 2: segment files by kind, compressed (plaid) indexes; 3: plaid document codes per document and an
# Elias-Fano inverted file; 4: the keyword index (an FTS5 table in the store, "keyword": true), so
# that a colmax that would not keep it in step refuses to write; 5: documents split into
# passages (several positions under one id, store version 2, "passages": the window settings),
# which an older colmax would count and return as separate documents. Exact indexes of formats
# 1-4 and plaid ones of 3-4 are still read (one passage per document; 1-3 without a keyword
# index); plaid ones of 2 are not.
FORMAT_VERSION = 5
PLAID_SINCE = 3
# storage dtype of a full-precision token copy -> its little-endian NumPy dtype (bfloat16 as bits;
# int8 with a float32 scale per token in a segment's "scales" file)
STORAGE_DTYPES = {"float32": "<f4", "float16": "<f2", "bfloat16": "<u2", "int8": "i1"}
STORAGES = tuple(STORAGE_DTYPES)
INDEX_KINDS = ("exact", "plaid")


@dataclass(frozen=True)
class SegmentInfo:
    """One append: documents ``first_pos .. first_pos + n_docs - 1`` in raw files
    ``<name>.<kind>`` whose SHA-256 ``files`` maps by kind (see ``segments.FILE_KINDS``)."""

    name: str
    first_pos: int
    n_docs: int
    n_tokens: int
    files: dict = field(default_factory=dict)

    def file(self, kind: str) -> str:
        return f"{self.name}.{kind}"

    def __hash__(self) -> int:
        return hash((self.name, self.first_pos, self.n_docs, self.n_tokens))


@dataclass(frozen=True)
class Manifest:
    generation: int
    dim: int
    storage: str | None  # dtype of the full-precision token copy; None: a plaid index without one
    model: dict
    store: str
    next_pos: int = 0
    n_live: int = 0
    segments: tuple[SegmentInfo, ...] = field(default_factory=tuple)
    created_with: str = ""
    kind: str = "exact"
    # plaid: Codebook.record() plus "file" and "sha256" of its centroids; before the first add
    # only the requested {"nbits", "n_centroids"}
    codebook: dict | None = None
    keyword: bool = False  # the store holds the keyword (FTS5) index
    # how documents are cut into passages: {"length", "stride"} in tokens (encoding/passages.py);
    # None until a write records them (indexes of format 4 and earlier, embeddings only)
    passages: dict | None = None

    @property
    def trained(self) -> bool:
        return self.codebook is not None and "file" in self.codebook

    @property
    def n_tokens(self) -> int:
        return sum(s.n_tokens for s in self.segments)

    def files(self) -> set[str]:
        names = {MANIFEST, self.store}
        for s in self.segments:
            names.update(s.file(kind) for kind in s.files)
        if self.trained:
            names.add(self.codebook["file"])
        return names

    def replace(self, **changes) -> Manifest:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generation": self.generation,
            "created_with": self.created_with,
            "kind": self.kind,
            "dim": self.dim,
            "storage": self.storage,
            "codebook": self.codebook,
            "keyword": self.keyword,
            "passages": self.passages,
            "model": self.model,
            "store": self.store,
            "next_pos": self.next_pos,
            "n_live": self.n_live,
            "segments": [dataclasses.asdict(s) for s in self.segments],
        }
        body["checksum"] = body_checksum(body)
        return body


def body_checksum(body: dict) -> str:
    """SHA-256 of a JSON description without its "checksum" field (keys sorted)."""
    canonical = json.dumps({k: v for k, v in body.items() if k != "checksum"}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_manifest(directory: Path) -> Manifest:
    """Parse and check ``directory``'s manifest; every problem is an IndexFormatError naming it."""
    return parse_manifest(directory, read_manifest_bytes(directory))


def read_manifest_bytes(directory: Path) -> bytes:
    """The manifest file's bytes, as they are (equal bytes: the same commit)."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise FileNotFoundError(f"no index at {directory}: the directory does not exist")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise IndexFormatError(f"{directory} is not a colmax index: it has no {MANIFEST}") from None


def parse_manifest(directory: Path, data: bytes) -> Manifest:
    """The manifest ``data`` read from ``directory``, checked (IndexFormatError naming it)."""
    path = directory / MANIFEST
    body, version = read_described(directory, MANIFEST, FORMAT, FORMAT_VERSION, "index", data)
    try:
        segments = tuple(_segment(s, version) for s in body["segments"])
        manifest = Manifest(
            generation=int(body["generation"]),
            dim=int(body["dim"]),
            storage=None if body["storage"] is None else str(body["storage"]),
            model=dict(body["model"]),
            store=str(body["store"]),
            next_pos=int(body["next_pos"]),
            n_live=int(body["n_live"]),
            segments=segments,
            created_with=str(body.get("created_with", "")),
            kind=str(body.get("kind", "exact")),
            codebook=None if body.get("codebook") is None else dict(body["codebook"]),
            keyword=body.get("keyword", False),
            passages=None if body.get("passages") is None else dict(body["passages"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{path} is damaged: missing or malformed field ({e})") from None
    if not isinstance(manifest.keyword, bool):
        raise IndexFormatError(f"{path} is damaged: 'keyword' must be true or false")
    if manifest.kind not in INDEX_KINDS:
        raise IndexFormatError(f"{path} names unknown index kind {manifest.kind!r}")
    if manifest.storage not in STORAGES and not (manifest.kind == "plaid" and manifest.storage is None):
        raise IndexFormatError(f"{path} names unknown storage {manifest.storage!r}")
    if manifest.kind == "plaid" and version < PLAID_SINCE:
        raise IndexVersionError(
            f"{directory} is a compressed (plaid) index in format {version}, written by colmax "
            f"{manifest.created_with or '?'}, whose segment files this colmax does not read: rebuild it "
            "(Index.create(..., kind='plaid') and add the documents again)"
        )
    if (manifest.kind == "plaid") != (manifest.codebook is not None) or (
        manifest.kind == "plaid" and manifest.segments and not manifest.trained
    ):
        raise IndexFormatError(f"{path} is damaged: its codebook does not match its kind {manifest.kind!r}")
    return manifest


def _segment(body: dict, version: int) -> SegmentInfo:
    if version == 1:  # the two files of an exact segment were separate fields
        body = dict(body)
        body["files"] = {"tokens": body.pop("tokens_sha256"), "offsets": body.pop("offsets_sha256")}
    files = body["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise TypeError("segment files must map kinds to SHA-256 strings")
    return SegmentInfo(**body)


def read_described(
    directory: Path, name: str, format: str, newest: int, what: str, data: bytes | None = None
) -> tuple[dict, int]:
    """The JSON description ``name`` in ``directory`` (an index manifest, a sharded root; its
    bytes ``data`` if already read) and its format version, checked: it exists, parses, names
    ``format``, is not newer than ``newest`` and matches its checksum. Every problem is an
    IndexFormatError (IndexVersionError for a newer format) naming the file and the fix."""
    path = directory / name
    if data is None:
        if not directory.is_dir():
            raise FileNotFoundError(f"no {what} at {directory}: the directory does not exist")
        if not path.is_file():
            raise IndexFormatError(f"{directory} is not a colmax {what}: it has no {name}")
        data = path.read_bytes()
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IndexFormatError(f"{path} is damaged (not valid JSON: {e})") from None
    if not isinstance(body, dict) or body.get("format") != format:
        raise IndexFormatError(f"{path} is not a colmax {what} manifest (no 'format': '{format}')")
    version = body.get("format_version")
    if not isinstance(version, int):
        raise IndexFormatError(f"{path} has no integer format_version")
    if version > newest:
        raise IndexVersionError(
            f"{directory} uses {what} format {version}, written by colmax {body.get('created_with', '?')}; "
            f"this colmax reads format {newest}: upgrade colmax (pip install -U colmax)"
        )
    if body.get("checksum") != body_checksum(body):
        raise IndexFormatError(f"{path} is damaged: its checksum does not match its content")
    return body, version


def write_manifest(directory: Path, manifest: Manifest) -> bytes:
    """Commit: the manifest replaced durably (a temporary file, fsync, rename, fsync); return
    the bytes written."""
    data = json.dumps(manifest.to_json(), indent=1).encode("utf-8")
    replace_durably(directory / MANIFEST, data)
    return data
