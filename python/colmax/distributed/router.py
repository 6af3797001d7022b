"""Which shard holds a document: a stable hash of its id, the same in every process, on every
machine and in every Python version (Python's own ``hash`` of a string is salted per process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

# the router's name in the root description; a different rule gets a different name
ROUTER = "blake2b-64-mod"


def shard_of(id: str, n_shards: int) -> int:
    """The shard of document ``id``: the first 8 bytes of its BLAKE2b digest (UTF-8), as a
    little-endian integer, modulo the shard count."""
    digest = hashlib.blake2b(id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_shards


def route(ids: Sequence[str], n_shards: int) -> list[list[int]]:
    """Per shard, the indices into ``ids`` of the documents it holds, in input order."""
    groups: list[list[int]] = [[] for _ in range(n_shards)]
    for i, id_ in enumerate(ids):
        groups[shard_of(id_, n_shards)].append(i)
    return groups
