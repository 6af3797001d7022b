"""The search modes of one snapshot: semantic (MaxSim), keyword (BM25 over the keyword index) and
hybrid, where each side's best candidates get their score on the other side computed and the
two scores are fused (fusion.py).

``side_scores`` is the hybrid search before fusion; a coordinator over several indexes (shards)
can call it on each and fuse the union of the candidates with ``fusion.fuse`` itself.

Passages are what both sides score. Each side ranks documents by their best passage; in hybrid
search those passages (a document may bring two, one per side) are the candidates, each gets
its score on the other side, the two are fused per passage, and a document takes its best
passage's fused score (README "Long documents"; fusing each side's per-document maxima instead
gave Cranfield 0.4005 against 0.3992 nDCG@10 on the same vectors, within the encoder's noise).
"""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .. import _core
from .._validate import one_text
from . import fusion, keyword
from . import search as semantic_search
from .filters import compile_filter
from .passages import best_per_document, distinct
from .query import Plan
from .snapshot import Snapshot
from .types import Hit

MODES = ("semantic", "keyword", "hybrid")
# Candidates each side brings to a hybrid search (at least k each), then scored on the other side.
# The semantic side's come at no extra cost (the top-k selection of exact search, the last stage
# of plaid search) and their BM25 is cheap; the keyword side's need MaxSim each. Fusing the same
# completed candidates cut to each depth (default model, exact indexes), nDCG@10 moved by under
# 0.004 between 10 and 100 keyword candidates and between 50 and 100 semantic ones on SciFact and
# Cranfield, while on SciFact 100 keyword candidates meant MaxSim of 60 documents that only BM25
# found, 30 meant 12.
SEMANTIC_DEPTH = 100
KEYWORD_DEPTH = 30

# The threads that work beside a hybrid search's calling thread: they encode its query while
# the calling thread runs the keyword side, and compute the BM25 of a staged search's last-stage
# candidates while that stage runs. Started once per process: starting a thread per search cost
# 0.8 ms, 5% of a plaid search. A forked child starts its own.
_pool: ThreadPoolExecutor | None = None


def _helpers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="colmax-hybrid")
    return _pool


def _forget_pool() -> None:
    global _pool
    _pool = None  # its threads did not survive the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def keyword_depth(mode: str, k: int) -> int:
    """Documents the keyword side brings to a ``mode`` search ("hybrid" or "keyword") for k hits."""
    return max(k, KEYWORD_DEPTH) if mode == "hybrid" else k


@dataclass(frozen=True)
class Mode:
    """A resolved search mode; ``alpha`` and ``fusion`` are set for hybrid searches only."""

    name: str
    alpha: float | None = None
    fusion: str | None = None


def default_mode(snap: Snapshot) -> str:
    """The mode of a text query when none is asked for: hybrid where the keyword index holds
    texts, semantic elsewhere."""
    lexical = snap.manifest.keyword and keyword.holds_text(snap.store.conn)
    return "hybrid" if lexical else "semantic"


def resolve(snap: Snapshot, query, mode: str | None, alpha, fusion_method: str | None) -> Mode:
    """Check the mode arguments for ``query`` (a text or a matrix) and fill in the defaults:
    hybrid for a text query on an index whose keyword index holds texts, else semantic."""
    return choose(query, mode, alpha, fusion_method, lambda: (snap.manifest.keyword, default_mode(snap)))


def choose(
    query, mode: str | None, alpha, fusion_method: str | None, lexical: Callable[[], tuple[bool, str]]
) -> Mode:
    """:func:`resolve` for any index: ``lexical()`` says whether it has a keyword index and which
    mode a text query gets by default (called only when a text's mode depends on it)."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (or None for the default), got {mode!r}")
    if fusion_method is not None and fusion_method not in fusion.FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(fusion.FUSIONS)}, got {fusion_method!r}")
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha (the semantic side's weight) must be from 0 to 1, got {alpha!r}")
        alpha = float(alpha)
    text = isinstance(query, str)
    if text:
        one_text(query, "the query")
    if mode is None:
        mode = lexical()[1] if text else "semantic"
    if mode != "semantic":
        if not lexical()[0]:
            raise ValueError(
                f"mode={mode!r} needs a keyword index, and this index has none (it was created by an "
                "older colmax, or with keyword=False): add it with index.add_keyword_index() "
                "(colmax add-keyword-index INDEX), or search with mode='semantic'"
            )
        if not text:
            raise TypeError(f"mode={mode!r} needs a text query: a query matrix is searched semantically only")
    if mode != "hybrid":
        if alpha is not None or fusion_method is not None:
            raise ValueError(f"alpha and fusion apply to hybrid searches, and this one is {mode}")
        return Mode(mode)
    method = fusion_method or "minmax"
    return Mode(mode, fusion.DEFAULT_ALPHA[method] if alpha is None else alpha, method)


@dataclass(frozen=True)
class Scope:
    """The documents a search may return: per segment the rows MaxSim may score (None: all
    live ones); with a metadata filter, the same documents as an SQL predicate over ``docs``
    for the keyword side (None: every live document)."""

    rows: list[np.ndarray | None]
    where: tuple[str, tuple] | None


def scope(snap: Snapshot, filter: Mapping | None, semantic: bool = True) -> Scope:
    """The scope of a search restricted by a metadata ``filter`` (``semantic`` False: the
    keyword side alone, which needs no rows)."""
    if filter is None:
        return Scope(list(snap.live), None)
    gen = snap.generation
    sql, params = compile_filter(filter)
    rows = snap.split(snap.store.filter_positions(sql, params, gen)) if semantic else []
    return Scope(rows, snap.store.visible(gen, sql, params))


def _keyword_passages(snap: Snapshot, expression: str, n: int, where: Scope) -> tuple[np.ndarray, np.ndarray]:
    if where.where is None:
        return keyword.top_live(snap.store.conn, expression, n, snap.manifest.next_pos, snap.deleted)
    return keyword.top(snap.store.conn, expression, n, *where.where)


def keyword_top(snap: Snapshot, expression: str, n: int, where: Scope) -> tuple[np.ndarray, np.ndarray]:
    """The best ``n`` documents in scope by BM25 (their best passage's), as the positions of
    those passages and their scores, best first. Passages come best first, so the first ``n``
    documents among them are the answer: asked for twice as many until they hold ``n``."""
    if not snap.layout.split:
        return _keyword_passages(snap, expression, n, where)
    m = 2 * n
    while True:
        positions, scores = _keyword_passages(snap, expression, m, where)
        heads = snap.layout.heads(positions)
        if positions.size < m or distinct(heads) >= n:
            return best_per_document(heads, positions, scores, n)
        m *= 2


# Under statistics other than its own, a store's BM25 ranking is read this many times as deep as
# the documents wanted before it is rescored and checked (``enough``).
READ_AHEAD = 2


class Lexical:
    """The keyword side of one search of ``terms``: its top documents and the BM25 of given
    passages, under the store's own statistics (``whole`` None: FTS5 scores, as one index ranks)
    or under ``whole``, the statistics of a collection this store is part of (a sharded index's).
    Statistics count passages (the keyword table's rows), as FTS5 does. ``counting``: the side
    also gives term counts (:meth:`counts`), for a coordinator to score under statistics it sums."""

    def __init__(
        self,
        snap: Snapshot,
        terms: list[str],
        where: Scope,
        whole: keyword.Statistics | None,
        counting: bool = False,
    ):
        self.snap, self.terms, self.where, self.whole = snap, terms, where, whole
        self.expression = keyword.match_expression(terms)
        rescored = whole is not None or counting  # its BM25 is recomputed from its own statistics
        self.local = keyword.statistics(snap.store.conn, terms) if rescored else None

    def scores(self, positions: np.ndarray) -> np.ndarray:
        conn = self.snap.store.conn
        if self.whole is None:
            return keyword.scores(conn, self.expression, positions)
        return keyword.bm25(*self.counts(positions), self.whole)

    def counts(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per passage and term, its occurrences; per passage, its length) at ``positions``."""
        return keyword.frequencies(self.snap.store.conn, self.terms, positions, self.local)

    def read(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The store's own BM25 ranking of passages in scope, ``READ_AHEAD n`` deep, best first:
        what a coordinator scoring under summed statistics takes, and checks, for the best ``n``
        documents (``enough``)."""
        return _keyword_passages(self.snap, self.expression, READ_AHEAD * n, self.where)

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` documents in scope, as their best passages, best first (ties: lower
        position first). Under ``whole`` the store's own ranking of passages is read deeper
        until it provably holds them (``enough``)."""
        if self.whole is None or self.whole == self.local:
            return keyword_top(self.snap, self.expression, n, self.where)
        m = READ_AHEAD * n
        while True:
            positions, local = _keyword_passages(self.snap, self.expression, m, self.where)
            scores = self.scores(positions)
            heads = self.snap.layout.heads(positions)
            floor = float(local[-1]) if local.size else 0.0
            if enough(heads, scores, n, positions.size < m, floor, self.local, self.whole):
                return best_per_document(heads, positions, scores, n)
            m *= 4


def enough(
    documents: np.ndarray,
    scores: np.ndarray,
    n: int,
    exhausted: bool,
    floor: float,
    local: keyword.Statistics,
    whole: keyword.Statistics,
) -> bool:
    """Whether the passages read from a store's own BM25 ranking (``documents`` whose, scoring
    ``scores`` under ``whole``) hold the store's best ``n`` documents under ``whole``, each at
    its best passage: the ranking ran out (``exhausted``), or its ``n``-th document read scores
    more than any passage below the read ones can (``keyword.ceiling`` of ``floor``, the last
    read passage's score under ``local``, the store's own statistics), so that no passage
    unread can enter the top ``n`` or raise a document's score in it."""
    if exhausted:
        return True
    best = np.unique(documents)
    if best.size < n:
        return False
    per_document = np.full(best.size, -np.inf)
    np.maximum.at(per_document, np.searchsorted(best, documents), scores)
    nth = np.partition(per_document, best.size - n)[best.size - n]
    return bool(nth > keyword.ceiling(local, whole, floor) * (1 + 1e-9))  # the margin: rounding


def _absent(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The distinct ``values`` that the sorted ``present`` lacks, ascending (``np.setdiff1d``
    without its two sorts: a search calls this three times)."""
    if present.size:
        at = np.minimum(np.searchsorted(present, values), present.size - 1)
        values = values[present[at] != values]
    return np.sort(values)


def _completion(side: Lexical, positions: np.ndarray, known=None, pending=None) -> np.ndarray:
    """BM25 of the passages at sorted ``positions``: read from ``pending``'s result where the
    sorted ``known`` holds them (a staged search's last-stage candidates, scored while that stage
    ran), computed for the others."""
    if known is None:
        return side.scores(positions)
    out = np.zeros(positions.size, dtype=np.float64)
    at = np.minimum(np.searchsorted(known, positions), known.size - 1)
    found = known[at] == positions
    out[found] = pending.result()[at[found]]
    if not found.all():  # candidates of a later last stage (a search over passages widened it)
        out[~found] = side.scores(positions[~found])
    return out


@dataclass(frozen=True)
class Counts:
    """What scores a store's candidates under statistics summed over several stores, and checks
    that its keyword candidates hold its best under them (``enough``): per candidate and query
    term the term's occurrences (``frequencies``), per candidate its ``lengths``; the store's
    own statistics (``local``); which candidates were read from its own BM25 ranking
    (``read``), how many were asked for (``asked``) and the last read one's own score
    (``floor``, 0.0 when none was read)."""

    frequencies: np.ndarray
    lengths: np.ndarray
    local: keyword.Statistics
    read: np.ndarray
    asked: int
    floor: float


@dataclass(frozen=True)
class Sides:
    """Hybrid candidates (passages) before fusion, by ascending position: every candidate's
    MaxSim and BM25 (0.0 where it holds none of the query's terms); ``counts`` where the
    candidates were gathered for a coordinator to score them (``side_scores(counting=True)``)."""

    positions: np.ndarray
    semantic: np.ndarray
    keyword: np.ndarray
    counts: Counts | None = None


def side_scores(
    snap: Snapshot,
    text: str,
    q: np.ndarray | Callable[[], np.ndarray],
    k: int,
    where: Scope,
    plan: Plan | None,
    threads,
    depths: tuple[int, int] = (SEMANTIC_DEPTH, KEYWORD_DEPTH),
    whole: keyword.Statistics | None = None,
    counting: bool = False,
) -> Sides:
    """The best ``max(k, depths[0])`` documents by MaxSim and the best ``max(k, depths[1])`` by
    BM25 for the query text ``text``, each as the passage that won it there, completed with its
    score on the other side: MaxSim of a keyword-only candidate is computed as the semantic
    side's last stage computes it (``search.rerank``: a plaid index without a copy scores from
    the residuals in a staged search), BM25 of a semantic-only one read from the keyword index.
    ``q`` is the text's query matrix, or a function returning it. BM25 takes its statistics
    (passage count, lengths, frequencies) from the snapshot's store file, which also counts
    passages deleted since the last compact and those of newer commits; or, with ``whole``, from
    the collection it describes (every shard of a sharded index), so that the scores are the ones
    a single index holding the collection would give.

    The keyword side's top runs on a helper thread while this one encodes the query (when ``q``
    is a function; SQLite, the encoder and the MaxSim kernels release the GIL). An exact search
    waits for it before MaxSim starts: the keyword side running beside a MaxSim search that takes
    every core slowed it more than waiting for it. A staged (plaid) search starts at once and
    takes the keyword candidates at its last stage, which scores them from the tables its first
    stage built (a second search building them again made hybrid search 1.26x the semantic
    search's p50 on SciFact's plaid index); the keyword top, which took longer than the query's
    encoding there, is done by then. That stage's candidates go to a helper thread, which
    computes their BM25 while the stage runs; after an exact search the semantic-only
    candidates' BM25 is computed here (README, Hybrid search).

    ``counting`` (for a coordinator summing statistics over stores, instead of ``whole``): the
    keyword candidates are every passage of the store's own BM25 ranking read twice as deep
    (``Lexical.read``), and every candidate's term counts come along (``Sides.counts``), read in
    one pass after the semantic search; BM25 is the store's own."""
    terms = keyword.query_terms(text)
    n_keyword = max(k, depths[1])  # keyword_depth, or a test's own
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))

    def lexical_top() -> tuple[Lexical, tuple[np.ndarray, np.ndarray]]:
        side = Lexical(snap, terms, where, whole, counting)
        return side, side.read(n_keyword) if counting else side.top(n_keyword)

    searching = _helpers().submit(lexical_top) if terms else None
    if searching is not None:
        # Hand the helper the GIL now: it would otherwise wait for this thread to release it in
        # the encoder, and its query would end that much later inside the MaxSim search (plaid
        # SciFact, 300 queries: the keyword top started 0.16 ms in instead of 0.38, hybrid/semantic
        # p50 1.151 against 1.165).
        time.sleep(0)
    keyword_side: list = []  # once known: the Lexical (None without terms), the top's positions, scores
    ahead: list = []  # the last stage's other candidates and the future of their BM25

    def keyword_found() -> tuple[np.ndarray, np.ndarray]:
        if not keyword_side:
            side, top = searching.result() if searching is not None else (None, empty)
            keyword_side.extend((side, *top))
        return keyword_side[1], keyword_side[2]

    def completing(candidates: np.ndarray) -> np.ndarray:
        listed = np.sort(keyword_found()[0])
        others = _absent(candidates, listed)
        if keyword_side[0] is not None and others.size and not counting:
            ahead.extend((others, _helpers().submit(keyword_side[0].scores, others)))
        return listed

    try:
        q = q() if callable(q) else q
        depth = max(k, depths[0])
        if semantic_search.stages(snap, plan):
            sem_pos, sem, listed_sem = semantic_search.staged_topk(
                snap, q, depth, where.rows, plan, threads, completing
            )
        else:
            keyword_found()  # an exact search takes every core: the keyword side does not run beside it
            sem_pos, sem = semantic_search.topk(snap, q, depth, where.rows, plan, threads)
            listed_sem = None
        kw_pos, kw = keyword_found()
        side = keyword_side[0]
        listed = np.sort(kw_pos)
        keyword_only = _absent(kw_pos, np.sort(sem_pos))
        positions = np.sort(np.concatenate((sem_pos, keyword_only)))
        semantic = np.empty(positions.size, dtype=np.float64)
        if listed_sem is not None:
            semantic[np.searchsorted(positions, listed)] = listed_sem
        semantic[np.searchsorted(positions, sem_pos)] = sem
        if keyword_only.size and listed_sem is None:
            # scored as the semantic side's candidates were, so that fusion compares like with like
            p, s = semantic_search.rerank(snap, q, keyword_only, threads)
            semantic[np.searchsorted(positions, p)] = s
        if counting:
            return _counted(side, positions, semantic, kw_pos, kw, n_keyword)
        lexical = np.zeros(positions.size, dtype=np.float64)
        lexical[np.searchsorted(positions, kw_pos)] = kw
        semantic_only = _absent(sem_pos, listed)
        if side is not None and semantic_only.size:
            lexical[np.searchsorted(positions, semantic_only)] = _completion(side, semantic_only, *ahead)
    finally:  # never leave a query running on the connection after an error here
        for running in (searching, ahead[1] if ahead else None):
            if running is not None:
                running.exception()
    return Sides(positions, semantic, lexical)


def _counted(
    side: Lexical, positions: np.ndarray, semantic: np.ndarray, read: np.ndarray, own: np.ndarray, n: int
) -> Sides:
    """Candidates at sorted ``positions`` with their MaxSim (``semantic``), their term counts and
    the store's own BM25; ``read`` are the passages read from that ranking (scores ``own``, best
    first) for the best ``n`` documents (``Lexical.read``)."""
    frequencies, lengths = side.counts(positions)
    floor = float(own[-1]) if own.size else 0.0
    # counts are integers: int32 halves what a shard sends, and BM25 of them is the same
    integral = frequencies.astype(np.int32), lengths.astype(np.int32)
    counts = Counts(*integral, side.local, np.isin(positions, read), READ_AHEAD * n, floor)
    return Sides(positions, semantic, keyword.bm25(frequencies, lengths, side.local), counts)


def candidates(
    snap: Snapshot,
    text: str,
    q: np.ndarray | Callable[[], np.ndarray],
    k: int,
    where: Scope,
    plan: Plan | None,
    mode: Mode,
    threads,
    whole: keyword.Statistics | None,
    counting: bool = False,
) -> Sides:
    """What a coordinator over several indexes ranks for a ``mode`` search of ``text``, before
    fusion: hybrid, :func:`side_scores`; keyword, the best ``k`` by BM25 (MaxSim NaN, not
    computed), or with ``counting`` every passage of the store's own BM25 ranking read ``2 k``
    deep, with their term counts. Both by ascending position, BM25 under ``whole`` when given."""
    terms = keyword.query_terms(text)
    if mode.name == "hybrid" and terms:
        return side_scores(snap, text, q, k, where, plan, threads, whole=whole, counting=counting)
    if mode.name != "keyword":
        raise ValueError(
            f"candidates are gathered for keyword searches and for hybrid searches of a text with keyword "
            f"terms, not for this {mode.name} search: search it with search()"
        )
    if not terms:  # nothing to find, and nothing for BM25 to count
        positions, scores = np.zeros(0, np.int64), np.zeros(0, np.float64)
        nothing = np.zeros((0, 0), np.int32), np.zeros(0, np.int32), keyword.Statistics(0, 0, ())
        counts = Counts(*nothing, np.zeros(0, bool), READ_AHEAD * k, 0.0) if counting else None
        return Sides(positions, scores, scores, counts)
    side = Lexical(snap, terms, where, whole, counting)
    if counting:
        read, own = side.read(k)
        positions = np.sort(read)
        return _counted(side, positions, np.full(positions.size, np.nan), read, own, k)
    positions, scores = side.top(k)
    order = np.argsort(positions)
    return Sides(positions[order], np.full(positions.size, np.nan), scores[order])


def search(
    snap: Snapshot,
    query,
    matrix: Callable[[], np.ndarray],
    k: int,
    where: Scope,
    plan: Plan | None,
    mode: Mode,
    threads,
    documents: bool = True,
) -> list[Hit]:
    """The ``k`` best documents for ``query`` in ``mode``, best first; ties go to the earlier
    added document. ``matrix()`` returns the query's checked matrix (not called by a keyword
    search). A hybrid search of a text without keyword terms (only stopwords or punctuation) is
    a semantic one; a keyword search of it finds nothing. Without ``documents`` the hits carry
    ids and scores only."""
    terms = [] if mode.name == "semantic" else keyword.query_terms(query)
    if mode.name == "keyword":
        if not terms:
            return []
        positions, scores = Lexical(snap, terms, where, None).top(k)
        return snap.hits(positions, scores, documents=documents, keyword=scores)
    if not terms:
        positions, scores = semantic_search.topk(snap, matrix(), k, where.rows, plan, threads)
        return snap.hits(positions, scores, documents=documents, semantic=scores)
    sides = side_scores(snap, query, matrix, k, where, plan, threads)
    fused = fusion.fuse(mode.fusion, sides.semantic, sides.keyword, mode.alpha)
    positions, scores = best_per_document(snap.layout.heads(sides.positions), sides.positions, fused, k)
    at = np.searchsorted(sides.positions, positions)
    semantic, lexical = sides.semantic[at], sides.keyword[at]
    return snap.hits(positions, scores, documents=documents, semantic=semantic, keyword=lexical)


def search_many(
    snap: Snapshot,
    queries: list,
    matrices: list,
    modes: list[Mode],
    k: int,
    where: Scope,
    plan: Plan | None,
    threads,
    documents: bool = True,
) -> list[list[Hit]]:
    """:func:`search` for each query (with its checked matrix, None for keyword ones, and its
    mode), searched concurrently: one query per CPU, or per ``threads``, each on one thread."""
    # Whole queries in parallel scale better than the stages of one: no barrier between stages.
    # threads=None lets each call size itself by what the others leave free (the core does).
    workers = min(len(queries), threads or _core.default_threads())
    each = threads if workers <= 1 or threads is None else 1

    def one(query, q, mode: Mode) -> list[Hit]:
        return search(snap, query, lambda: q, k, where, plan, mode, each, documents)

    if workers <= 1:
        return [one(*args) for args in zip(queries, matrices, modes)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, queries, matrices, modes))
