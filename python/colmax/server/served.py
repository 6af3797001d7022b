"""The indexes one server serves: per index its object, the thread that serializes its writes and
the check that moves it to commits other processes made; and the pool that runs every read.

Searches run on a shared pool of reader threads (the core releases the GIL, so they overlap);
each index's writes run one at a time on its own writer thread, so a long add never holds a
reader thread and never blocks a search: readers keep the commit they have until the write
commits. Anything with ``Index``'s methods can be served (``Servable``), so a sharded index can
stand where an ``Index`` does.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from .errors import ApiError

# what an index name may be: it appears in URLs, so no slashes, dots only inside
NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")


class Servable(Protocol):
    """What the server needs of an index: ``colmax.Index`` and ``colmax.ShardedIndex`` have all
    of it. ``search`` and ``search_batch`` take Index's options by keyword (filter, mode, alpha,
    fusion, exact, nprobe, ncandidates; the server passes those a request sets), ``add`` takes
    ``upsert``."""

    @property
    def generation(self) -> int: ...
    @property
    def encoder(self) -> Any: ...
    def __len__(self) -> int: ...
    def search(self, query, k: int = 10, **options) -> list: ...
    def search_batch(self, queries, k: int = 10, **options) -> list: ...
    def explain(self, query, id: str) -> Any: ...
    def get(self, id: str) -> Any: ...
    def add(self, texts, ids=None, metadata=None, *, upsert: bool = False) -> list[str]: ...
    def delete(self, ids) -> None: ...
    def info(self) -> dict: ...
    def reload(self) -> bool: ...
    def close(self) -> None: ...


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name) or name in (".", ".."):
        raise ValueError(
            f"index name {name!r} must be 1-100 letters, digits, '_', '-' or '.' (not first): "
            "name it with NAME=PATH"
        )
    return name


class ServedIndex:
    def __init__(self, name: str, index: Servable, max_pending_writes: int) -> None:
        self.name, self.index = name, index
        # held by a write or a reload, never by a search: a reload must not move the object back
        # past a commit its own write just made
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"colmax-write-{name}")
        self._queue = threading.BoundedSemaphore(max_pending_writes)

    def refresh(self) -> None:
        """Move to the newest commit, which another process may have made. One read of the
        manifest (about 50 us); skipped while a write of this server runs, since the write
        itself moves the object to the newest commit."""
        if self._lock.acquire(blocking=False):
            try:
                self.index.reload()
            finally:
                self._lock.release()

    def warm(self) -> None:
        """Load the index's model now rather than on the first request (two requests must not
        both load it), and run it once so that the first search does not pay for set-up."""
        try:
            encoder = self.index.encoder
        except Exception:  # an index without a model (embeddings only): searched by matrices only
            return
        encoder.encode_queries(["warm up"])

    def _write(self, fn: Callable[[Servable], Any]):
        try:
            with self._lock:
                return fn(self.index)
        finally:
            self._queue.release()

    def submit_write(self, fn: Callable[[Servable], Any]):
        if not self._queue.acquire(blocking=False):
            raise ApiError(
                503, "busy", f"too many writes are queued for index {self.name!r}: retry in a moment"
            )
        return self._writer.submit(self._write, fn)

    def close(self) -> None:
        self._writer.shutdown(wait=True, cancel_futures=True)  # queued writes were never acknowledged
        self.index.close()


class Registry:
    """The served indexes by name (the only names a request can reach) and the reader pool."""

    def __init__(
        self, indexes: Mapping[str, Servable], *, readers: int = 16, max_pending_writes: int = 64
    ) -> None:
        if not indexes:
            raise ValueError("serve at least one index")
        self.indexes = {check_name(n): ServedIndex(n, ix, max_pending_writes) for n, ix in indexes.items()}
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="colmax-read")

    def __getitem__(self, name: str) -> ServedIndex:
        served = self.indexes.get(name)
        if served is None:
            raise ApiError(
                404, "index_not_found", f"no index named {name!r}: this server serves {self.names()}"
            )
        return served

    def names(self) -> str:
        return ", ".join(repr(n) for n in self.indexes)

    def pick(self, name: str | None) -> ServedIndex:
        """``name``'s index, or the only one when ``name`` is None."""
        if name is not None:
            return self[name]
        if len(self.indexes) > 1:
            raise ApiError(
                422, "index_required", f"this server serves several indexes: name one of {self.names()}"
            )
        return next(iter(self.indexes.values()))

    def warm(self) -> None:
        for served in self.indexes.values():
            served.warm()

    async def read(self, served: ServedIndex, fn: Callable[[Servable], Any]) -> bytes:
        """``fn(index)`` on a reader thread after moving to the newest commit; its result comes
        back as JSON bytes, encoded on that thread too so that the event loop stays free."""

        def run() -> bytes:
            served.refresh()
            return dumps(fn(served.index))

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def write(self, served: ServedIndex, fn: Callable[[Servable], Any]) -> bytes:
        """``fn(index)`` on the index's writer thread, after the writes queued before it."""
        result = await asyncio.wrap_future(served.submit_write(fn))
        return dumps(result)

    def close(self) -> None:
        self._readers.shutdown(wait=True)
        for served in self.indexes.values():
            served.close()


def dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
