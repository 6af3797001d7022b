"""The keyword side of an index: an SQLite FTS5 table (BM25) beside the document rows it indexes,
and the FTS5 queries built from user text.

The table is contentless (``content=''``): it holds only the inverted index and the token counts,
the text stays in ``docs``. It has one row per passage whose document has a text, under the
passage's rowid (``pos``), indexing the passage's part of the text; rows are written, rolled
back and compacted with the ``docs`` rows, in the same SQLite transaction, so a reader's
generation filter (``Store.visible``) applies to both sides alike and a crash can never leave
text and vectors disagreeing (docs/format.md). Tombstoned rows stay indexed until
``compact()``, as in ``docs``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

import numpy as np

TABLE = "keyword"
# Porter stemming over Unicode 6.1 word characters, case and diacritics folded.
TOKENIZE = "porter unicode61 remove_diacritics 2"
SCHEMA = f"CREATE VIRTUAL TABLE {TABLE} USING fts5(title, text, content='', tokenize='{TOKENIZE}')"
# The title column: metadata "title" when it is a string (the corpus readers put it there). The
# same expression feeds inserts and deletes: a contentless table must be given back the exact
# values it indexed to forget a row.
_TITLE = "CASE json_type(d.meta, '$.title') WHEN 'text' THEN json_extract(d.meta, '$.title') END"
# A passage's text: the part of its document's text (on the document's first row, h) that its
# span names, or all of it for a document of one passage. SQLite's substr counts characters, as
# the spans do.
_PASSAGE_TEXT = (
    "CASE WHEN d.span_start IS NULL THEN h.text "
    "ELSE substr(h.text, d.span_start + 1, d.span_end - d.span_start) END"
)


def _rows(passages: bool) -> tuple[str, str, str]:
    """(FROM clause, indexed text, condition for having one) over ``docs`` rows ``d``, for a
    store with passage columns or an older one (one row per document, its text on it)."""
    if passages:
        return "docs d JOIN docs h ON h.pos = d.pos - d.passage", _PASSAGE_TEXT, "h.text IS NOT NULL"
    return "docs d", "d.text", "d.text IS NOT NULL"


_BATCH = 5000  # positions per IN (...) query

# Lucene's English stop set (as BM25 baselines such as Anserini and bm25s use): left out of
# queries, so a question's function words do not pull in half the corpus.
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)
# A term: a run of letters and digits. Everything else (quotes, operators, '*', ':', parentheses)
# separates terms, so no user text can reach FTS5 as query syntax.
_TERM = re.compile(r"[^\W_]+")


def query_terms(text: str) -> list[str]:
    """The distinct lower-cased terms of ``text`` that are not stopwords, in order."""
    terms = dict.fromkeys(t for t in _TERM.findall(text.lower()) if t not in STOPWORDS)
    return list(terms)


def match_expression(terms: Sequence[str]) -> str | None:
    """An FTS5 query matching documents that hold any of ``terms`` (None for no terms). Each term
    is a quoted string, so FTS5 reads it as text, never as an operator."""
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


# -- the table, written under the store's transactions ------------------------------------------


def exists(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
    return row is not None


def create(conn: sqlite3.Connection, passages: bool) -> None:
    """Create the table and index every stored passage (the caller holds a transaction)."""
    try:
        conn.execute(SCHEMA)
    except sqlite3.OperationalError as e:
        if "fts5" not in str(e):
            raise
        raise RuntimeError(
            f"this Python's SQLite ({sqlite3.sqlite_version}) is built without FTS5, which the keyword "
            "index needs: create the index with keyword=False (semantic search only), or use a Python "
            "whose SQLite has FTS5"
        ) from None
    source, text, indexed = _rows(passages)
    insert = f"INSERT INTO {TABLE}(rowid, title, text) SELECT d.pos, {_TITLE}, {text}"
    conn.execute(f"{insert} FROM {source} WHERE {indexed}")


def index_rows(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Index the passages of the ``docs`` rows at positions ``first..last``, just inserted (by a
    writer: the store has passage columns)."""
    source, text, indexed = _rows(True)
    conn.execute(
        f"INSERT INTO {TABLE}(rowid, title, text) SELECT d.pos, {_TITLE}, {text} FROM {source} "
        f"WHERE d.pos BETWEEN ? AND ? AND {indexed}",
        (first, last),
    )


def forget_added_after(conn: sqlite3.Connection, gen: int, passages: bool) -> None:
    """Remove the rows of ``docs`` rows added after generation ``gen`` (before those go)."""
    source, text, indexed = _rows(passages)
    conn.execute(
        f"INSERT INTO {TABLE}({TABLE}, rowid, title, text) SELECT 'delete', d.pos, {_TITLE}, {text} "
        f"FROM {source} WHERE d.added > ? AND {indexed}",
        (gen,),
    )


def drop(conn: sqlite3.Connection) -> None:
    conn.execute(f"DROP TABLE {TABLE}")


def check(conn: sqlite3.Connection, passages: bool) -> str | None:
    """What is wrong with the table (its own integrity check, then its rows against ``docs``)."""
    try:
        conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('integrity-check')")
    except sqlite3.OperationalError:
        raise  # locked or read-only: not a verdict on the table
    except sqlite3.DatabaseError as e:
        return f"its keyword index is damaged ({e})"
    source, _, indexed = _rows(passages)
    (unindexed,) = conn.execute(
        f"SELECT count(*) FROM {source} WHERE {indexed} AND d.pos NOT IN (SELECT id FROM {TABLE}_docsize)"
    ).fetchone()
    (stray,) = conn.execute(
        f"SELECT count(*) FROM {TABLE}_docsize WHERE id NOT IN (SELECT d.pos FROM {source} WHERE {indexed})"
    ).fetchone()
    if unindexed or stray:
        return f"its keyword index disagrees with its texts ({unindexed} not indexed, {stray} stray rows)"
    return None


def holds_text(conn: sqlite3.Connection) -> bool:
    """Whether any text was ever indexed in this store (tombstoned ones count until compact)."""
    return conn.execute(f"SELECT 1 FROM {TABLE}_docsize LIMIT 1").fetchone() is not None


# -- reads --------------------------------------------------------------------------------------


def top(
    conn: sqlite3.Connection, expression: str, n: int, where: str, params: Sequence
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best positions by BM25 among the ``docs`` rows ``where`` selects (a filter),
    best first (ties: lower position first); scores are positive, higher is better."""
    return _ranked(
        conn.execute(
            f"SELECT {TABLE}.rowid, -bm25({TABLE}) AS score FROM {TABLE} "
            f"JOIN docs ON docs.pos = {TABLE}.rowid WHERE {TABLE} MATCH ? AND {where} "
            f"ORDER BY score DESC, {TABLE}.rowid LIMIT ?",
            (expression, *params, n),
        )
    )


def top_live(
    conn: sqlite3.Connection, expression: str, n: int, end: int, deleted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top` over the documents a commit sees without a filter: positions below ``end``
    (its ``next_pos``: later rows belong to later commits) except the ``deleted`` ones (sorted).
    Cheaper than joining ``docs`` for every match: the tombstoned rows are fetched and dropped."""
    positions, scores = _ranked(
        conn.execute(
            f"SELECT rowid, -bm25({TABLE}) AS score FROM {TABLE} WHERE {TABLE} MATCH ? AND rowid < ? "
            "ORDER BY score DESC, rowid LIMIT ?",
            (expression, end, n + deleted.size),
        )
    )
    if deleted.size:
        keep = ~np.isin(positions, deleted, assume_unique=True)
        positions, scores = positions[keep], scores[keep]
    return positions[:n], scores[:n]


def _ranked(cursor) -> tuple[np.ndarray, np.ndarray]:
    rows = cursor.fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64)


def scores(conn: sqlite3.Connection, expression: str, positions: np.ndarray) -> np.ndarray:
    """BM25 of the documents at ``positions`` (0 for one that holds none of the terms)."""
    found: dict[int, float] = {}
    pos = positions.tolist()
    for start in range(0, len(pos), _BATCH):
        chunk = pos[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        # "+rowid": the positions filter the matches; handed to FTS5 as rowid lookups instead,
        # each would restart the query and bm25() recompute its statistics (100x slower)
        found.update(
            conn.execute(
                f"SELECT rowid, -bm25({TABLE}) FROM {TABLE} WHERE {TABLE} MATCH ? AND +rowid IN ({marks})",
                (expression, *chunk),
            )
        )
    return np.array([found.get(p, 0.0) for p in pos], dtype=np.float64)


def matched_terms(conn: sqlite3.Connection, terms: Sequence[str], pos: int) -> list[str]:
    """The ``terms`` that the document at ``pos`` holds (after stemming), in order."""
    query = f"SELECT 1 FROM {TABLE} WHERE {TABLE} MATCH ? AND rowid = ?"
    return [t for t in terms if conn.execute(query, (match_expression([t]), pos)).fetchone()]
