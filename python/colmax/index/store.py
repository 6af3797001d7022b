"""The document store: ids, metadata and text of every document position, in SQLite.

One row per position ever written: a document is one position, or several consecutive ones
when it was split into passages (all under its id, ``passage`` 0, 1, ...; its text on the
first passage's row, each passage's character span in it on every row). ``added`` and
``deleted`` hold manifest generations, so a reader bound to generation G sees exactly the rows
with ``added <= G`` and not ``deleted <= G``: rows written by an unfinished commit
(``added > G``) stay invisible until the manifest names G + 1, and the next writer removes them
(:meth:`Store.rollback_to`). The keyword index, when the manifest declares one, is an FTS5
table in the same file with one row per passage (keyword.py).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import numpy as np

from . import keyword
from .errors import IndexFormatError
from .files import missing

_SCHEMA = """
CREATE TABLE docs (
    pos INTEGER PRIMARY KEY,   -- position: segment first_pos + row in the segment
    id TEXT NOT NULL,          -- the document's id, on each of its passages
    added INTEGER NOT NULL,    -- generation of the commit that wrote the row
    deleted INTEGER,           -- generation of the commit that deleted it, NULL while live
    meta TEXT,                 -- JSON object or NULL, on each passage
    text TEXT,                 -- the document's text on its first passage, NULL for add_embeddings
    passage INTEGER NOT NULL DEFAULT 0,  -- 0, 1, ...: the passage's number in its document
    span_start INTEGER,        -- the passage's characters [span_start, span_end) in the text;
    span_end INTEGER,          -- NULL for a document of one passage (all of its text)
    crc INTEGER                -- CRC-32 of the row's other fields but deleted (row_crc)
);
CREATE INDEX docs_id ON docs(id);
CREATE INDEX docs_deleted ON docs(deleted) WHERE deleted IS NOT NULL;  -- tombstones, read on open
CREATE INDEX docs_added ON docs(added);  -- lets recovery find uncommitted rows without a scan
CREATE TABLE colmax (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO colmax VALUES ('format', 'colmax-index-store'), ('version', '2');
"""
_PASSAGE_INDEXES = """
CREATE UNIQUE INDEX docs_live_id ON docs(id) WHERE deleted IS NULL AND passage = 0;
CREATE INDEX docs_continued ON docs(pos, passage) WHERE passage > 0;  -- read by passages.py
"""
# Version 2 (index format 5) added the passage columns. A version 1 store (one position per
# document, docs_live_id unique over all live rows) is read as it is, and gets them in the first
# write of a colmax that knows version 2 (``Store.upgrade``).
_UPGRADE = """
ALTER TABLE docs ADD COLUMN passage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE docs ADD COLUMN span_start INTEGER;
ALTER TABLE docs ADD COLUMN span_end INTEGER;
ALTER TABLE docs ADD COLUMN crc INTEGER;
DROP INDEX docs_live_id;
UPDATE colmax SET value = '2' WHERE key = 'version';
"""
_VISIBLE = "added <= ? AND (deleted IS NULL OR deleted > ?)"
_HEAD = "passage = 0"  # a document's first row: one per document
_BATCH = 5000  # ids or positions per IN (...) query, well under SQLite's parameter limit


def row_crc(pos, id_, added, meta, text, passage, start, end) -> int:
    """The CRC-32 a row carries over the fields that never change once written: any single
    damaged byte (any burst of up to 32 bits) in them shows. ``deleted`` is left out: deletes
    set it later, and the manifest's live count checks it. Texts count as their UTF-8 bytes
    (``damaged_rows`` reads them as such), each field tagged with its type and length."""
    crc = 0
    for value in (pos, id_, added, meta, text, passage, start, end):
        if value is None:
            part = b"N"
        elif isinstance(value, int):
            part = b"I%d;" % value
        else:
            data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            part = b"T%d;" % len(data) + data
        crc = zlib.crc32(part, crc)
    return crc


# The SQLite types a docs row's columns may have (typeof), in row_crc's order after pos: a
# damaged record header can turn a text into a blob of the same bytes, which the CRC alone
# would not see.
_ROW_TYPES = (
    ("text",),
    ("integer",),
    ("text", "null"),
    ("text", "null"),
    ("integer",),
    ("integer", "null"),
    ("integer", "null"),
)
# A docs row as damaged_rows and copy_live_to check it: texts as their bytes (reading a text
# that is not UTF-8 any more as str would fail), and every column's SQLite type.
_CHECKED_ROW = (
    "SELECT pos, crc, CAST(id AS BLOB), added, CAST(meta AS BLOB), CAST(text AS BLOB), passage, "
    "span_start, span_end, typeof(id), typeof(added), typeof(meta), typeof(text), typeof(passage), "
    "typeof(span_start), typeof(span_end) FROM docs"
)


def _row_intact(row: tuple) -> bool:
    pos, crc, *values = row[:9]
    if crc is None:
        return True  # written by a colmax before the column (docs/format.md)
    types = row[9:]
    if any(t not in allowed for t, allowed in zip(types, _ROW_TYPES)):
        return False
    return row_crc(pos, *values) == crc


def _decoded(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


class Row(NamedTuple):
    """A position's document: its id, metadata and whole text, the passage's number and its
    character span in the text (None: the document is one passage)."""

    id: str
    meta: dict
    text: str | None
    passage: int = 0
    span: tuple[int, int] | None = None


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
    def __init__(self, path: Path, conn: sqlite3.Connection, passages: bool = True) -> None:
        self.path, self.conn = path, conn
        self.passages = passages  # version 2: the passage columns exist
        # what the passage columns read as in a version 1 store: every document one passage
        self._passage_cols = "passage, span_start, span_end" if passages else "0, NULL, NULL"

    @classmethod
    def create(cls, path: Path, with_keyword: bool) -> Store:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.executescript("BEGIN;" + _SCHEMA + _PASSAGE_INDEXES)
            if with_keyword:
                keyword.create(conn, passages=True)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def refresh(self) -> None:
        """Notice that a writer (of another process) upgraded this version 1 store."""
        if not self.passages:
            (version,) = self.conn.execute("SELECT value FROM colmax WHERE key = 'version'").fetchone()
            if version == "2":
                self.__init__(self.path, self.conn, passages=True)

    def upgrade(self) -> None:
        """Writer only: give a version 1 store the passage columns (one transaction; readers of
        either version read it as before)."""
        if self.passages:
            return
        try:
            self.conn.executescript("BEGIN IMMEDIATE;" + _UPGRADE + _PASSAGE_INDEXES + "COMMIT;")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.__init__(self.path, self.conn, passages=True)

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
            info = dict(conn.execute("SELECT key, value FROM colmax WHERE key IN ('format', 'version')"))
        except sqlite3.DatabaseError as e:
            raise IndexFormatError(f"index file {path} is damaged ({e})") from None
        if info.get("format") != "colmax-index-store":
            conn.close()
            raise IndexFormatError(f"index file {path} is not a colmax document store")
        if info.get("version") not in ("1", "2"):
            conn.close()
            raise IndexFormatError(
                f"index file {path} is a document store of unknown version {info.get('version')}"
            )
        return cls(path, conn, passages=info["version"] == "2")

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
        """The first position of each live document ``ids`` names (missing ids are absent)."""
        head = f"AND {_HEAD}" if self.passages else ""
        found: dict[str, int] = {}
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for id_, pos in self.conn.execute(
                f"SELECT id, pos FROM docs WHERE id IN ({marks}) AND {_VISIBLE} {head}", (*chunk, gen, gen)
            ):
                found[id_] = pos
        return found

    def passage_positions(self, ids: Sequence[str], gen: int) -> np.ndarray:
        """Every position (each passage) of the live documents ``ids``, ascending."""
        out: list[int] = []
        for chunk in _chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            out.extend(
                r[0]
                for r in self.conn.execute(
                    f"SELECT pos FROM docs WHERE id IN ({marks}) AND {_VISIBLE}", (*chunk, gen, gen)
                )
            )
        return np.array(sorted(out), dtype=np.int64)

    def rows(
        self, positions: Iterable[int], with_text: bool = True, with_meta: bool = True
    ) -> dict[int, Row]:
        """``pos -> Row`` for the given positions, with the whole text of the document a passage
        belongs to ({} and None for the parts not asked for)."""
        positions = [int(p) for p in positions]
        out: dict[int, Row] = {}
        meta_col = "d.meta" if with_meta else "NULL"
        if not with_text:
            text_col, source = "NULL", "docs d"
        elif self.passages:  # the text is on the document's first row
            text_col, source = "h.text", "docs d JOIN docs h ON h.pos = d.pos - d.passage"
        else:
            text_col, source = "d.text", "docs d"
        cols = ", ".join(f"d.{c}" if self.passages else c for c in self._passage_cols.split(", "))
        for chunk in _chunks(positions):
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT d.pos, d.id, {meta_col}, {text_col}, {cols} FROM {source} WHERE d.pos IN ({marks})"
            )
            for pos, id_, meta, text, passage, start, end in self.conn.execute(query, chunk):
                span = None if start is None else (start, end)
                out[pos] = Row(id_, json.loads(meta) if meta else {}, text, passage, span)
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

    def continued(self, first: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The positions in ``[first, end)`` that are not a document's first passage, ascending,
        and their passage numbers."""
        if not self.passages:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = self.conn.execute(
            "SELECT pos, passage FROM docs WHERE passage > 0 AND pos >= ? AND pos < ? ORDER BY pos",
            (first, end),
        ).fetchall()
        found = np.array(rows, dtype=np.int64).reshape(-1, 2)
        return np.ascontiguousarray(found[:, 0]), np.ascontiguousarray(found[:, 1])

    def damaged_rows(self) -> list[int]:
        """The positions whose fields no longer match their CRC. Rows written before the
        column existed (a version 1 store upgraded on write) have none and are not checked
        until ``compact()`` rewrites them."""
        if not self.passages:
            return []
        return [row[0] for row in self.conn.execute(_CHECKED_ROW) if not _row_intact(row)]

    def count_live(self, gen: int) -> int:
        """Live documents (each counted once, however many passages it has)."""
        head = f"AND {_HEAD}" if self.passages else ""
        (n,) = self.conn.execute(f"SELECT COUNT(*) FROM docs WHERE {_VISIBLE} {head}", (gen, gen)).fetchone()
        return int(n)

    def live_ids(self, gen: int) -> list[str]:
        head = f"AND {_HEAD}" if self.passages else ""
        return [
            r[0]
            for r in self.conn.execute(
                f"SELECT id FROM docs WHERE {_VISIBLE} {head} ORDER BY pos", (gen, gen)
            )
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
                    keyword.forget_added_after(conn, gen, self.passages)  # while its texts are there
                else:
                    keyword.drop(conn)
            conn.execute("DELETE FROM docs WHERE added > ?", (gen,))
            conn.execute("UPDATE docs SET deleted = NULL WHERE deleted > ?", (gen,))

    def has_keyword_index(self) -> bool:
        return keyword.exists(self.conn)

    def add_keyword_index(self) -> None:
        """Create the keyword table and index every stored text, in one transaction."""
        with self._transaction():
            keyword.create(self.conn, self.passages)

    def write(self, gen: int, rows: Iterable[tuple], tombstones: Iterable[int] = ()) -> None:
        """Insert ``(pos, id, meta_json, text, passage, span_start, span_end)`` rows (ascending
        positions) and tombstone positions as generation ``gen``; the keyword index, if any,
        indexes the new passages in the same transaction. Writers upgrade a version 1 store
        before writing (``upgrade``)."""
        span: list[int] = []  # the first and the last position inserted

        def tracked():
            for pos, id_, meta, text, passage, start, end in rows:
                if not span:
                    span.append(pos)
                span[1:] = [pos]
                crc = row_crc(pos, id_, gen, meta, text, passage, start, end)
                yield pos, id_, gen, meta, text, passage, start, end, crc

        conn = self.conn
        with self._transaction():
            conn.executemany("UPDATE docs SET deleted = ? WHERE pos = ?", ((gen, int(p)) for p in tombstones))
            conn.executemany(
                "INSERT INTO docs (pos, id, added, deleted, meta, text, passage, span_start, span_end, crc) "
                "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                tracked(),
            )
            if span and keyword.exists(conn):
                keyword.index_rows(conn, span[0], span[1])

    def copy_live_to(self, target: Store, gen: int, new_gen: int) -> np.ndarray:
        """Write the rows visible at ``gen`` into ``target``, renumbered 0..n-1 in position
        order (a document's passages stay consecutive), as generation ``new_gen``; return their
        old positions. A row that no longer matches its CRC (or is not UTF-8) stops the copy
        with IndexFormatError, so that a rewrite never gives damaged fields a fresh, valid CRC.
        Writers upgrade a version 1 store first (``upgrade``)."""
        cur = self.conn.execute(f"{_CHECKED_ROW} WHERE {_VISIBLE} ORDER BY pos", (gen, gen))
        old: list[int] = []

        def renumbered():
            for new_pos, row in enumerate(cur):
                pos, _, id_, _, meta, text, passage, start, end = row[:9]
                try:
                    if not _row_intact(row):
                        raise ValueError
                    id_, meta, text = _decoded(id_), _decoded(meta), _decoded(text)
                except ValueError:  # UnicodeDecodeError included
                    raise IndexFormatError(
                        f"index file {self.path} is damaged (the row at position {pos} does not match "
                        "its checksum): check it with colmax verify, and restore the index from a "
                        "copy or rebuild it"
                    ) from None
                old.append(pos)
                yield new_pos, id_, meta, text, passage, start, end

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


@contextmanager
def named_damage(store: Store) -> Iterator[None]:
    """Reads of ``store``: SQLite finding its file damaged (a malformed page, a broken keyword
    index) becomes IndexFormatError naming the file; other SQLite errors pass as they are."""
    try:
        yield
    except sqlite3.DatabaseError as e:
        benign = (sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.ProgrammingError)
        if isinstance(e, benign):
            raise
        raise IndexFormatError(
            f"index file {store.path} is damaged ({e}): check it with colmax verify, and restore the "
            "index from a copy or rebuild it"
        ) from None


def _chunks(items: list) -> Iterable[list]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]
