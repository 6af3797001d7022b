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

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

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
    _merged_after(conn, conn.execute(f"{insert} FROM {source} WHERE {indexed}").rowcount)


def index_rows(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Index the passages of the ``docs`` rows at positions ``first..last``, just inserted (by a
    writer: the store has passage columns)."""
    source, text, indexed = _rows(True)
    cursor = conn.execute(
        f"INSERT INTO {TABLE}(rowid, title, text) SELECT d.pos, {_TITLE}, {text} FROM {source} "
        f"WHERE d.pos BETWEEN ? AND ? AND {indexed}",
        (first, last),
    )
    _merged_after(conn, cursor.rowcount)


def _merged_after(conn: sqlite3.Connection, indexed: int) -> None:
    """After a write that indexed ``indexed`` rows, in its transaction: when they are at least
    half of the table's rows (the table's creation, a compaction, a bulk load), merge the
    table's segments into one (FTS5's 'optimize'). FTS5 writes a segment per transaction (more
    for a large one) and merges them only in groups, and a query walks every segment: on
    SciFact's plaid index built by one add_embeddings, one segment cut FTS5's top 30 from 3.03 to
    2.84 ms and the BM25 of 100 passages from 0.79 to 0.64 ms (300 queries, interleaved). The
    merge rewrites the table (0.07 s for SciFact's 13,833 passages); at most twice the rows the
    write indexed, so its cost stays a constant share of indexing, and small writes to a large
    table leave it to FTS5's own merging."""
    if indexed > 0 and 2 * indexed >= _totals(conn)[0]:
        conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('optimize')")


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
    except sqlite3.OperationalError as e:
        # FTS5 runs its own check as an INSERT, which a store this process may only read refuses;
        # SQLite's integrity_check has read the table's pages, and the rows are compared below
        if "readonly" not in str(e):
            raise  # locked: not a verdict on the table
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
    pos = positions.tolist()
    found = _bm25_of(conn, expression, pos)
    return np.array([found.get(p, 0.0) for p in pos], dtype=np.float64)


def _bm25_of(conn: sqlite3.Connection, expression: str, pos: list[int]) -> dict[int, float]:
    """FTS5's BM25 (positive) of those of the documents at ``pos`` that match ``expression``."""
    found: dict[int, float] = {}
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
    return found


def matched_terms(conn: sqlite3.Connection, terms: Sequence[str], pos: int) -> list[str]:
    """The ``terms`` that the document at ``pos`` holds (after stemming), in order."""
    query = f"SELECT 1 FROM {TABLE} WHERE {TABLE} MATCH ? AND rowid = ?"
    return [t for t in terms if conn.execute(query, (match_expression([t]), pos)).fetchone()]


# -- BM25 under explicit statistics ---------------------------------------------------------------
# Several stores searched as one collection (the shards of a sharded index) rank by BM25 over the
# whole collection: its document count, average length and each term's document frequency, not
# each store's own. FTS5 computes bm25() from its own table only, so the statistics are gathered
# (``statistics``, summed with ``+``) and the formula applied here to each document's term
# frequencies and length (``frequencies``). ``bm25`` is FTS5's bm25() (ext/fts5/fts5_aux.c)
# operation for operation, so under a store's own statistics it gives FTS5's scores bit for bit
# (tests/index/test_keyword_statistics.py), and a sharded index the scores of one store holding
# every shard's rows.

K1, B = 1.2, 0.75  # FTS5's constants
_AVERAGES = 1  # the keyword_data row of the table's row count and per-column token totals


@dataclass(frozen=True)
class Statistics:
    """What BM25 takes from the collection for one query: ``rows`` (the keyword table's rows:
    every indexed text, tombstoned ones until compact and those of newer commits included, as
    FTS5 counts them), their total ``tokens`` (title and text together), and per query term
    the rows holding it (``holding``)."""

    rows: int
    tokens: int
    holding: tuple[int, ...]

    def __add__(self, other: Statistics) -> Statistics:
        if len(self.holding) != len(other.holding):
            raise ValueError("statistics of different queries cannot be summed")
        return Statistics(
            self.rows + other.rows,
            self.tokens + other.tokens,
            tuple(a + b for a, b in zip(self.holding, other.holding)),
        )

    def idf(self) -> list[float]:
        """Per term, FTS5's IDF: log((N - n + 0.5) / (n + 0.5)), floored at 1e-6 (a term in more
        than half the rows would otherwise score negative)."""
        out = []
        for n in self.holding:
            idf = math.log((self.rows - n + 0.5) / (n + 0.5))
            out.append(1e-6 if idf <= 0.0 else idf)
        return out

    @property
    def average_length(self) -> float:
        return self.tokens / self.rows if self.rows else 0.0


def _varints(blob: bytes) -> list[int]:
    """The SQLite varints of ``blob`` (big-endian groups of 7 bits; a 9th byte holds 8)."""
    out, i = [], 0
    while i < len(blob):
        value = 0
        for j in range(9):
            byte = blob[i]
            i += 1
            if j == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        out.append(value)
    return out


def _totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(rows, tokens) of the keyword table: its averages record."""
    row = conn.execute(f"SELECT block FROM {TABLE}_data WHERE id = ?", (_AVERAGES,)).fetchone()
    counts = _varints(row[0]) if row is not None and row[0] else []
    return (counts[0], sum(counts[1:])) if counts else (0, 0)


def statistics(conn: sqlite3.Connection, terms: Sequence[str]) -> Statistics:
    """This store's keyword statistics for the query ``terms``: the values FTS5's bm25() reads
    (its averages record, and a count of the rows matching each term)."""
    rows, tokens = _totals(conn)
    query = f"SELECT count(*) FROM {TABLE} WHERE {TABLE} MATCH ?"
    holding = tuple(conn.execute(query, (match_expression([t]),)).fetchone()[0] for t in terms)
    return Statistics(rows, tokens, holding)


def lengths(conn: sqlite3.Connection, positions: Sequence[int]) -> np.ndarray:
    """Tokens (title and text) of the documents at ``positions``, from FTS5's docsize rows (0 for
    a document without text)."""
    found: dict[int, int] = {}
    for start in range(0, len(positions), _BATCH):
        chunk = list(positions[start : start + _BATCH])
        marks = ",".join("?" * len(chunk))
        for pos, size in conn.execute(f"SELECT id, sz FROM {TABLE}_docsize WHERE id IN ({marks})", chunk):
            # a column of under 128 tokens is a one-byte varint: its byte is its size
            found[pos] = sum(size) if max(size, default=0) < 0x80 else sum(_varints(size))
    return np.array([found.get(p, 0) for p in positions], dtype=np.float64)


def frequencies(
    conn: sqlite3.Connection, terms: Sequence[str], positions: np.ndarray, local: Statistics
) -> tuple[np.ndarray, np.ndarray]:
    """(per document and term, how often the term occurs in it; per document, its length) for the
    documents at ``positions``; ``local`` is ``statistics(conn, terms)``.

    FTS5 hands a row's term frequencies to C ranking functions only, so each comes from FTS5's
    own bm25() of the one-term query inverted under the statistics it used: score = idf * f *
    (k1 + 1) / (f + K) gives f = t K / (k1 + 1 - t) with t = score / idf, an integer (every
    column weighs 1) recovered exactly by rounding."""
    pos = positions.tolist()
    size = lengths(conn, pos)
    freqs = np.zeros((len(pos), len(terms)), dtype=np.float64)
    if not pos or not local.tokens:  # no text has a token: nothing matches
        return freqs, size
    where = {p: i for i, p in enumerate(pos)}
    saturation = K1 * ((1 - B) + B * size / local.average_length)
    for j, (term, idf) in enumerate(zip(terms, local.idf())):
        if not local.holding[j]:
            continue
        found = _bm25_of(conn, match_expression([term]), pos)
        if found:
            i = np.fromiter((where[p] for p in found), dtype=np.int64, count=len(found))
            t = np.fromiter(found.values(), dtype=np.float64, count=len(found)) / idf
            freqs[i, j] = np.rint(t * saturation[i] / ((K1 + 1.0) - t))
    return freqs, size


def bm25(freqs: np.ndarray, size: np.ndarray, stats: Statistics) -> np.ndarray:
    """BM25 of documents with term frequencies ``freqs`` (documents x terms) and lengths ``size``
    under ``stats``, positive, with FTS5's operations in FTS5's order (so its rounding too)."""
    score = np.zeros(len(size), dtype=np.float64)
    if not stats.tokens:
        return score
    saturation = K1 * ((1 - B) + B * size / stats.average_length)
    for j, idf in enumerate(stats.idf()):
        f = freqs[:, j]
        score = score + idf * ((f * (K1 + 1.0)) / (f + saturation))
    return score


def ceiling(local: Statistics, whole: Statistics, floor: float) -> float:
    """The most a passage of the store ``local`` describes can score under ``whole`` when it
    scores at most ``floor`` under ``local``. Per term a score is IDF x g, g the saturated
    frequency (0 to k1 + 1), and g under ``whole`` is at most g under ``local`` times the ratio
    of average lengths (when over 1); so the bound is that ratio times the largest sum of whole
    IDF x g whose local IDF x g stays within ``floor``: a fractional knapsack, filled by IDF
    ratio. A bound by the largest IDF ratio alone is loose where a term is common in one store
    (its own IDF floored at 1e-6): on SciFact in 2 shards it sent 12% of the shards' keyword
    tops (depth 10 or 30) to read deeper, this one none."""
    if not local.tokens:
        return 0.0
    length = max(1.0, whole.average_length / local.average_length)
    terms = sorted(
        ((w / own, own, w) for own, w, n in zip(local.idf(), whole.idf(), local.holding) if n), reverse=True
    )
    left, most = floor, 0.0
    for _, own, w in terms:
        g = min(K1 + 1.0, left / own)
        most += w * g
        left -= own * g
        if left <= 0.0:
            break
    return length * most
