"""The write path of a sharded index: one write at a time under the root's lock, shard commits
bracketed by the root description (pending before, the shards' new generations after), and the
recovery that rolls the shards back to the recorded state when a write did not finish.

A write marks the root ``pending``, commits on each shard it touches (in parallel, each an
ordinary atomic index commit), then replaces the root with the shards' new generations. Until
that rename readers keep reading the recorded generations. If the write fails the shards are
rolled back at once; if the writer dies, the next writer (or ``ShardedIndex.recover``) sees the
pending mark and rolls every shard back to what the root records (``Index.rollback``), so a
crash between shard commits never leaves a mixed state visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..index.errors import IndexFormatError
from ..index.files import sha256
from ..index.lock import WriterLock
from ..index.training import train_spread
from ..ragged import Ragged, offsets_from_lengths
from .replicas import Replicas
from .root import Root, Shard, read_root, write_root


class RootTransaction:
    """One sharded write in the making: ``root`` is the recorded state it starts from; the
    write records each shard's (generation, documents) in ``shards`` as they commit."""

    def __init__(self, root: Root) -> None:
        self.root = root
        self.shards: dict[int, tuple[int, int]] = {}
        self.codebook: dict | None = None
        self.result: Root | None = None

    def committed(self, results: dict[int, tuple[int, int]]) -> None:
        self.shards.update(results)

    def new_root(self) -> Root:
        shards = tuple(
            Shard(s.path, *self.shards[i]) if i in self.shards else s for i, s in enumerate(self.root.shards)
        )
        return self.root.replace(
            generation=self.root.generation + 1,
            shards=shards,
            codebook=self.codebook or self.root.codebook,
            pending=None,
        )


def shard_options(root: Root, codebook=None) -> tuple[str | None, dict]:
    """``Index.create`` arguments (model, options) that make a shard as the root describes it."""
    model = root.model
    options = {"kind": root.kind, "storage": root.storage, "dim": None if model.get("name") else root.dim}
    if root.kind == "plaid":
        options["n_centroids"] = root.codebook.get("n_centroids")
        if codebook is None:
            options["nbits"] = root.codebook["nbits"]
        else:
            options["codebook"] = codebook
    return (None if model.get("default") or not model.get("name") else model.get("path")), options


def undo(path: Path, replicas: Replicas, root: Root) -> Root:
    """Bring every shard back to the state ``root`` records and clear its pending mark. An
    unfinished compaction is kept instead: it changed no document, and the commits before it
    are gone, so the shards' newest generations are recorded."""
    if (root.pending or {}).get("op") == "compact":
        states = replicas.on_all("state", lambda s: ())
        clean = root.replace(
            generation=root.generation + 1,
            shards=tuple(Shard(s.path, *states[i]) for i, s in enumerate(root.shards)),
            pending=None,
        )
        write_root(path, clean)
        return clean
    if root.kind == "plaid" and not root.trained:  # every shard is empty: make them anew
        model, options = shard_options(root)
        replicas.on_all("recreate", lambda s: (model, options))
    else:
        replicas.on_all("rollback", lambda s: (root.shards[s].generation,))
    clean = root.replace(pending=None)
    write_root(path, clean)
    return clean


def recover(path: Path, replicas: Replicas) -> Root:
    """The recorded state, after undoing an unfinished write. Without one, a shard ahead of the
    root was written directly (not through the sharded index): refuse rather than lose it."""
    root = read_root(path)
    if root.pending is not None:
        return undo(path, replicas, root)
    newest = replicas.on_all("state", lambda s: ())
    for s, (g, _) in sorted(newest.items()):
        if g != root.shards[s].generation:
            raise IndexFormatError(
                f"shard {s} ({path / root.shards[s].path}) is at generation {g} but the sharded index "
                f"records {root.shards[s].generation}: it was written directly, not through "
                f"ShardedIndex. Undo it with colmax.Index.open(shard).rollback({root.shards[s].generation}) "
                "if it was a mistake; documents added that way are in the wrong shard for their id"
            )
    return root


@contextmanager
def transaction(path: Path, replicas: Replicas, op: str = "write") -> Iterator[RootTransaction]:
    """Take the root's writer lock, recover, mark the root pending ``op``; on success record
    the shards' new generations, on failure undo (roll back, or keep a compaction)."""
    with WriterLock(path):
        root = recover(path, replicas)
        pending = root.replace(pending={"op": op})
        write_root(path, pending)
        txn = RootTransaction(root)
        try:
            yield txn
        except BaseException:
            try:
                undo(path, replicas, pending)
            except Exception:  # never hide the original error: the next writer undoes it
                pass
            raise
        txn.result = txn.new_root()
        write_root(path, txn.result)


def gather(replicas: Replicas, calls, bar=None, sizes=None) -> dict[int, tuple[int, int]]:
    """Wait for shard write calls (no retry: a write is undone, not repeated); results by shard."""
    out = {}
    for call in calls:
        out[call.shard] = tuple(replicas.result(call, retry=False))
        if bar is not None:
            bar.update(sizes[call.shard])
    return out


def first_plaid_add(
    txn: RootTransaction,
    replicas: Replicas,
    groups: list[list[int]],
    parts: dict[int, tuple[object, np.ndarray]],
    ids: list[str],
    metadata,
    texts,
    threads,
) -> None:
    """The first add of a plaid sharded index: train one codebook on the sample that a single
    index holding these documents would train on, then recreate every shard with it and add.

    ``parts`` maps each shard with documents to (its Ragged or an ObjectRef to it, its token
    counts); the documents' order across shards is the order of ``ids``."""
    root = txn.root
    n_docs = len(ids)
    shard_of = np.empty(n_docs, dtype=np.int64)
    local = np.empty(n_docs, dtype=np.int64)
    lengths = np.empty(n_docs, dtype=np.int64)
    for s, group in enumerate(groups):
        if group:
            shard_of[group] = s
            local[group] = np.arange(len(group))
            lengths[group] = parts[s][1]
    starts = offsets_from_lengths(lengths)  # each document's first row in the add's order
    local_starts = {s: offsets_from_lengths(parts[s][1]) for s in parts}

    def rows_of(rows: np.ndarray | None) -> np.ndarray:
        rows = np.arange(int(starts[-1])) if rows is None else rows
        doc = np.searchsorted(starts, rows, side="right") - 1
        owner = shard_of[doc]
        local_rows = np.empty_like(rows)
        for s in parts:
            mine = owner == s
            local_rows[mine] = local_starts[s][local[doc[mine]]] + (rows[mine] - starts[doc[mine]])
        calls = {
            s: replicas.submit(s, "rows", parts[s][0], local_rows[owner == s])
            for s in parts
            if (owner == s).any()
        }
        out = np.empty((rows.size, root.dim), dtype=np.float32)
        for s, call in calls.items():
            out[owner == s] = replicas.result(call)
        return out

    request = root.codebook
    codebook = train_spread(
        int(starts[-1]),
        rows_of,
        root.dim,
        nbits=request["nbits"],
        n_centroids=request.get("n_centroids"),
        threads=threads,
    )
    model, options = shard_options(root, codebook)
    calls = [
        replicas.submit(
            s,
            "first_add",
            model,
            options,
            parts[s][0] if s in parts else None,
            [ids[i] for i in group],
            None if metadata is None else [metadata[i] for i in group],
            None if texts is None else [texts[i] for i in group],
        )
        for s, group in enumerate(groups)
    ]
    txn.committed(gather(replicas, calls))
    txn.codebook = {
        **request,
        "sha256": sha256(codebook.centroids.astype("<f4", copy=False)),
        "centroids": codebook.n_centroids,
        "trained_tokens": codebook.trained_tokens,
    }


def split_ragged(ragged: Ragged, groups: list[list[int]]) -> dict[int, Ragged]:
    """Each shard's documents of ``ragged`` (for the shards that get any)."""
    return {s: Ragged.from_list([ragged[i] for i in group]) for s, group in enumerate(groups) if group}
