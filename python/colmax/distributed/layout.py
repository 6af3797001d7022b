"""Making a sharded index's directory (the root description and one ordinary index per shard)
and describing it for ``info()`` and ``colmax info ROOT``. Needs no Ray."""

from __future__ import annotations

import os
from pathlib import Path

from .._validate import positive_int
from .._version import __version__
from ..index import Index
from ..index.model import describe as describe_model
from ..index.model import model_record
from ..index.write import discard
from .root import FORMAT_VERSION, Root, Shard, shard_dir, write_root

# more shards than this is a mistake, not a plan (each one is a directory and an actor)
MAX_SHARDS = 4096


def create_root(
    path: str | os.PathLike,
    n_shards: int,
    model=None,
    *,
    kind: str = "exact",
    storage: str | None = None,
    nbits: int | None = None,
    n_centroids: int | None = None,
    dim: int | None = None,
    keyword: bool = True,
) -> Path:
    """Write an empty sharded index at ``path``: ``n_shards`` indexes made by ``Index.create``
    with these arguments, then the root description naming them at generation 0."""
    n_shards = positive_int("n_shards", n_shards)
    if n_shards > MAX_SHARDS:
        raise ValueError(f"n_shards must be at most {MAX_SHARDS}, got {n_shards}")
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} already exists and is not an empty directory: choose a new path")
    encoder, record, dim = model_record(model, dim)  # the model is loaded once for every shard
    existed = path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(n_shards):
            shard = Index.create(
                path / shard_dir(i),
                encoder,
                kind=kind,
                storage=storage,
                nbits=nbits,
                n_centroids=n_centroids,
                dim=None if encoder is not None else dim,
                keyword=keyword,
            )
            info = shard.info()
            shard.close()
        root = Root(
            generation=0,
            kind=kind,
            dim=dim,
            storage=info["storage"],
            model=record,
            shards=tuple(Shard(shard_dir(i), 0, 0) for i in range(n_shards)),
            codebook={"nbits": info["nbits"], "n_centroids": n_centroids} if kind == "plaid" else None,
            created_with=__version__,
        )
        write_root(path, root)
    except BaseException:
        discard(path, existed)
        raise
    return path


def describe(path: Path, root: Root, shard_infos: list[dict | None]) -> dict:
    """Facts about a sharded index; ``shard_infos`` are its shards' ``Index.info()`` at the
    recorded generations (None for a shard that could not be read here)."""
    shards = []
    for i, (shard, info) in enumerate(zip(root.shards, shard_infos)):
        entry = {"shard": i, "path": shard.path, "generation": shard.generation, "documents": shard.documents}
        if info is not None:
            for key in ("deleted", "segments", "tokens", "bytes_per_token", "size_on_disk", "keyword_index"):
                entry[key] = info[key]
        shards.append(entry)
    known = [info for info in shard_infos if info is not None]
    return {
        "path": str(path),
        "sharded": True,
        "format_version": FORMAT_VERSION,
        "created_with": root.created_with,
        "generation": root.generation,
        "router": root.router,
        "n_shards": root.n_shards,
        **describe_model(root.model),
        "kind": root.kind,
        "dim": root.dim,
        "storage": root.storage,
        "codebook": root.codebook,
        "documents": root.documents,
        "pending_write": root.pending is not None,
        # keyword and hybrid search need it on every shard; None: some shard unreadable here
        "keyword_index": all(info["keyword_index"] for info in known)
        if len(known) == len(shard_infos)
        else None,
        "size_on_disk": sum(info["size_on_disk"] for info in known)
        if len(known) == len(shard_infos)
        else None,
        "shards": shards,
    }


def local_info(path: str | os.PathLike) -> dict:
    """``describe`` with each shard opened here, at its recorded generation (no Ray): for
    ``colmax info ROOT`` on a machine that sees the shard directories."""
    from .root import read_root

    path = Path(path)
    root = read_root(path)
    infos: list[dict | None] = []
    for shard in root.shards:
        try:
            with Index.open(path / shard.path, generation=shard.generation) as index:
                infos.append(index.info())
        except (OSError, ValueError):  # not on this machine, or unreadable here
            infos.append(None)
    return describe(path, root, infos)
