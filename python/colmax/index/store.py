"""The document store: ids, metadata and text of every document position, in SQLite.

One row per position ever written. ``added`` and ``deleted`` hold manifest generations, so a
reader bound to generation G sees exactly the rows with ``added <= G`` and not ``deleted <= G``:
rows written by an unfinished commit (``added > G``) stay invisible until the manifest names
G + 1, and the next writer removes them (:meth:`Store.rollback_to`). The keyword index, when the
manifest declares one, is an FTS5 table in the same file whose rows follow these (keyword.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np

from . import keyword
from .errors import IndexFormatError
from .files import missing

_SCHEMA = """
CREATE TABLE docs (
    pos INTEGER PRIMARY KEY,   -- document position: segment first_pos + row in the segment
    id TEXT NOT NULL,
    added INTEGER NOT NULL,    -- generation of the commit that wrote the row
    deleted INTEGER,           -- generation of the commit that deleted it, NULL while live
    meta TEXT,                 -- JSON object or NULL
    text TEXT                  -- the indexed text, NULL for add_embeddings
);
CREATE INDEX docs_id ON docs(id);
CREATE UNIQUE INDEX docs_live_id ON docs(id) WHERE deleted IS NULL;
CREATE INDEX docs_deleted ON docs(deleted) WHERE deleted IS NOT NULL;  -- tombstones, read on open
CREATE INDEX docs_added ON docs(added);  -- lets recovery find uncommitted rows without a scan
CREATE TABLE colmax (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO colmax VALUES ('format', 'colmax-index-store'), ('version', '1');
"""
_VISIBLE = "added <= ? AND (deleted IS NULL OR deleted > ?)"
_BATCH = 5000  # ids or positions per IN (...) query, well under SQLite's parameter limit


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    # the connection may be used from several threads of one reader (search from a thread pool);
    # sqlite3 serializes calls, and readers never write
    mode = "ro" if readonly else "rw"
    conn = sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}",
        uri=True,
        isolation_level=None,
        timeout=30.0,
        check_same_thread=False,
    )
    conn.execute("PRAGMA synchronous = FULL")
    return conn


class Store:
    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path, self.conn = path, conn

    @classmethod
    def create(cls, path: Path, with_keyword: bool) -> Store:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.executescript("BEGIN;" + _SCHEMA)
            if with_keyword:
                keyword.create(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    @classmethod
    def open(cls, path: Path) -> Store:
        if not path.is_file():
            raise missing(path.parent, path.name)
        try:
            try:
                # read-write even for readers: if a writer died mid-transaction, SQLite must be
                # able to roll its hot journal back; readers never issue writes themselves
                conn = _connect(path, readonly=False)
            except sqlite3.OperationalError:
                conn = _connect(path, readonly=True)  # read-only file system or permissions
            row = conn.execute("SELECT value FROM colmax WHERE key = 'format'").fetchone()
        except sqlite3.DatabaseError as e:
            raise IndexFormatError(f"index file {path} is damaged ({e})") from None
        if row is None or row[0] != "colmax-index-store":
            conn.close()
            raise IndexFormatError(f"index file {path} is not a colmax document store")
        return cls(path, conn)

    def close(self) -> None:
        self.conn.close()

    def __del__(self) -> None:
        # an Index dropped without close() must not leak its connection (Python 3.13 warns)
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    # -- reads, all bound to a generation --------------------------------------------------

    def deleted_positions(self, gen: int) -> np.ndarray:
        rows = self.conn.execute("SELECT pos FROM docs WHERE deleted <= ? ORDER BY pos", (gen,)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def positions_of(self, ids: Sequence[str], gen: int) -> dict[str, int]:
        """Live position of each id that exists (missing ids are absent from the result)."""
        found: dict[str, int] = {}
        for start in range(0, len(ids), _BATCH):
            chunk = list(ids[start : start + _BATCH])
            marks = ",".join("?" * len(chunk))
            for id_, pos in self.conn.execute(
                f"SELECT id, pos FROM docs WHERE id IN ({marks}) AND {_VISIBLE}", (*chunk, gen, gen)
            ):
                found[id_] = pos
        return found

    def rows(
        self, positions: Iterable[int], with_text: bool = True, with_meta: bool = True
    ) -> dict[int, tuple[str, dict, str | None]]:
        """``pos -> (id, metadata, text)`` for the given positions ({} and None for the parts
        not asked for)."""
        positions = [int(p) for p in positions]
        out: dict[int, tuple[str, dict, str | None]] = {}
        text_col = "text" if with_text else "NULL"
        meta_col = "meta" if with_meta else "NULL"
        for start in range(0, len(positions), _BATCH):
            chunk = positions[start : start + _BATCH]
            marks = ",".join("?" * len(chunk))
            for pos, id_, meta, text in self.conn.execute(
                f"SELECT pos, id, {meta_col}, {text_col} FROM docs WHERE pos IN ({marks})", chunk
            ):
                out[pos] = (id_, json.loads(meta) if meta else {}, text)
        return out

    @staticmethod
    def visible(gen: int, sql: str, params: Sequence) -> tuple[str, tuple]:
        """``(predicate, params)`` over ``docs`` selecting the rows visible at ``gen`` that match
        the filter ``sql`` with ``params``."""
        return f"{_VISIBLE} AND {sql}", (gen, gen, *params)

    def filter_positions(self, sql: str, params: list, gen: int) -> np.ndarray:
        where, args = self.visible(gen, sql, params)
        rows = self.conn.execute(f"SELECT pos FROM docs WHERE {where} ORDER BY pos", args).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def count_live(self, gen: int) -> int:
        (n,) = self.conn.execute(f"SELECT COUNT(*) FROM docs WHERE {_VISIBLE}", (gen, gen)).fetchone()
        return int(n)

    def live_ids(self, gen: int) -> list[str]:
        return [
            r[0] for r in self.conn.execute(f"SELECT id FROM docs WHERE {_VISIBLE} ORDER BY pos", (gen, gen))
        ]

    # -- writes (the caller holds the index's writer lock) ------------------------------------

    def rollback_to(self, gen: int, with_keyword: bool) -> None:
        """Forget everything an unfinished commit after generation ``gen`` wrote: its rows, its
        tombstones, and a keyword index that generation ``gen`` does not declare (``with_keyword``
        False: an ``add_keyword_index`` that did not commit)."""
        conn = self.conn
        with self._transaction():
            if keyword.exists(conn):
                if with_keyword:
                    keyword.forget_added_after(conn, gen)  # while the texts it indexed are there
                else:
                    keyword.drop(conn)
            conn.execute("DELETE FROM docs WHERE added > ?", (gen,))
            conn.execute("UPDATE docs SET deleted = NULL WHERE deleted > ?", (gen,))

    def has_keyword_index(self) -> bool:
        return keyword.exists(self.conn)

    def add_keyword_index(self) -> None:
        """Create the keyword table and index every stored text, in one transaction."""
        with self._transaction():
            keyword.create(self.conn)

    def write(
        self,
        gen: int,
        rows: Iterable[tuple[int, str, str | None, str | None]],
        tombstones: Iterable[int] = (),
    ) -> None:
        """Insert ``(pos, id, meta_json, text)`` rows (ascending positions) and tombstone
        positions as generation ``gen``; the keyword index, if any, indexes the new texts in the
        same transaction."""
        span: list[int] = []  # the first and the last position inserted

        def tracked():
            for pos, id_, meta, text in rows:
                if not span:
                    span.append(pos)
                span[1:] = [pos]
                yield pos, id_, gen, meta, text

        conn = self.conn
        with self._transaction():
            conn.executemany("UPDATE docs SET deleted = ? WHERE pos = ?", ((gen, int(p)) for p in tombstones))
            conn.executemany(
                "INSERT INTO docs (pos, id, added, deleted, meta, text) VALUES (?, ?, ?, NULL, ?, ?)",
                tracked(),
            )
            if span and keyword.exists(conn):
                keyword.index_rows(conn, span[0], span[1])

    def copy_live_to(self, target: Store, gen: int, new_gen: int) -> np.ndarray:
        """Write the rows visible at ``gen`` into ``target``, renumbered 0..n-1 in position
        order, as generation ``new_gen``; return their old positions."""
        cur = self.conn.execute(
            f"SELECT pos, id, meta, text FROM docs WHERE {_VISIBLE} ORDER BY pos", (gen, gen)
        )
        old: list[int] = []

        def renumbered():
            for new_pos, (pos, id_, meta, text) in enumerate(cur):
                old.append(pos)
                yield new_pos, id_, meta, text

        target.write(new_gen, renumbered())
        return np.array(old, dtype=np.int64)

    def _transaction(self):
        conn = self.conn

        class _Tx:
            def __enter__(self):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()
