"""The root of a sharded index: a directory holding one ordinary colmax index per shard and
``colmax-sharded.json``, the small description that says what the shards are and which commit
(generation) of each makes up the sharded index's current state.

The description is versioned and checksummed like an index manifest and replaced the same way
(temporary file, fsync, rename, fsync). A write first marks it ``pending``, then commits on the
shards, then records their new generations; a crash in between leaves a pending description
whose shard generations are still the last consistent state, to which the next writer rolls the
shards back (docs/distributed.md).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ..index.errors import IndexFormatError
from ..index.files import replace_durably
from ..index.manifest import body_checksum, read_described
from .router import ROUTER

ROOT_FILE = "colmax-sharded.json"
FORMAT = "colmax-sharded"
FORMAT_VERSION = 1


def shard_dir(i: int) -> str:
    return f"shard-{i:03d}"


@dataclass(frozen=True)
class Shard:
    """Shard ``path`` (relative to the root) at commit ``generation`` holds ``documents`` live ones."""

    path: str
    generation: int
    documents: int = 0


@dataclass(frozen=True)
class Root:
    generation: int
    kind: str
    dim: int
    storage: str | None
    model: dict
    shards: tuple[Shard, ...]
    # plaid: the codebook request {"nbits", "n_centroids"}; after the first add also the shared
    # codebook's "sha256" (of its centroids file), "centroids" and "trained_tokens"
    codebook: dict | None = None
    pending: dict | None = None  # {"op": ...} while a write is under way
    created_with: str = ""
    router: str = ROUTER

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.shards)

    @property
    def trained(self) -> bool:
        return self.codebook is not None and "sha256" in self.codebook

    def replace(self, **changes) -> Root:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_with": self.created_with,
            "generation": self.generation,
            "router": {"name": self.router, "n_shards": self.n_shards},
            "kind": self.kind,
            "dim": self.dim,
            "storage": self.storage,
            "model": self.model,
            "codebook": self.codebook,
            "shards": [dataclasses.asdict(s) for s in self.shards],
            "pending": self.pending,
        }
        body["checksum"] = body_checksum(body)
        return body


def is_root(path: Path) -> bool:
    return (Path(path) / ROOT_FILE).is_file()


def write_root(directory: Path, root: Root) -> None:
    replace_durably(directory / ROOT_FILE, json.dumps(root.to_json(), indent=1).encode("utf-8"))


def read_root(directory: Path) -> Root:
    """Parse and check ``directory``'s description; every problem is an IndexFormatError naming it."""
    path = Path(directory) / ROOT_FILE
    body, _ = read_described(Path(directory), ROOT_FILE, FORMAT, FORMAT_VERSION, "sharded index")
    try:
        shards = tuple(
            Shard(str(s["path"]), int(s["generation"]), int(s["documents"])) for s in body["shards"]
        )
        router = body["router"]
        root = Root(
            generation=int(body["generation"]),
            kind=str(body["kind"]),
            dim=int(body["dim"]),
            storage=None if body["storage"] is None else str(body["storage"]),
            model=dict(body["model"]),
            shards=shards,
            codebook=None if body["codebook"] is None else dict(body["codebook"]),
            pending=None if body["pending"] is None else dict(body["pending"]),
            created_with=str(body.get("created_with", "")),
            router=str(router["name"]),
        )
        n_shards = int(router["n_shards"])
    except (KeyError, TypeError, ValueError) as e:
        raise IndexFormatError(f"{path} is damaged: missing or malformed field ({e})") from None
    if root.router != ROUTER or n_shards != len(shards) or not shards:
        raise IndexFormatError(
            f"{path} names router {root.router!r} over {n_shards} shards: not one this colmax knows"
        )
    return root
