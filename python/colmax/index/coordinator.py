"""What a coordinator over several indexes (colmax.distributed) reads from one: its share of a
query's BM25 statistics and its candidates before fusion, as methods of ``Index``."""

from __future__ import annotations

from collections.abc import Mapping

from .._validate import one_text, positive_int
from . import hybrid, keyword
from .query import plan_search, query_matrix
from .store import named_damage


class CoordinatorReads:
    """Mixed into ``Index`` (which provides ``_read``, ``encoder`` and ``threads``)."""

    def keyword_statistics(self, query: str) -> keyword.Statistics:
        """This index's share of the BM25 statistics of the text ``query``'s terms (summed over
        the shards of a sharded index with ``+``)."""
        snap = self._read()
        terms = keyword.query_terms(one_text(query, "the query"))
        if not snap.manifest.keyword:
            raise ValueError("this index has no keyword index: add it with index.add_keyword_index()")
        with named_damage(snap.store):
            return keyword.statistics(snap.store.conn, terms)

    def candidates(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        statistics: keyword.Statistics | None = None,
        matrix=None,
        filter: Mapping | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
        counts: bool = False,
    ) -> tuple[list[str], hybrid.Sides]:
        """(ids, scores) of what a ``mode`` search ("hybrid" or "keyword") of the text ``query``
        ranks before fusion, by ascending position: for hybrid the candidates of both sides, each
        with its MaxSim and BM25 (``hybrid.side_scores``), for keyword the best ``k`` by BM25.
        BM25 is computed under ``statistics`` (a whole sharded index's) when given. ``matrix``:
        the query's matrix when the caller encoded it. Other arguments as in :meth:`search`.

        ``counts`` (instead of ``statistics``): BM25 is this index's own, and the candidates come
        with what a coordinator needs to score them under statistics it sums over several indexes
        (``Sides.counts``: term counts, lengths, this index's statistics): the keyword side's
        candidates are then every passage of this index's own BM25 ranking read twice as deep,
        and ``hybrid.enough`` tells whether they hold its best under the summed statistics (if
        not, ask again with ``statistics``).

        Candidates are passages: a document split into several may come twice in hybrid
        candidates (its best passage by MaxSim and its best by BM25), under its id each time;
        fuse per passage, then keep each document's best (as :meth:`search` does)."""
        if counts and statistics is not None:
            raise ValueError(
                "counts=True gathers what scores the candidates under summed statistics: give no statistics"
            )
        snap = self._read()
        k = positive_int("k", k)
        plan = plan_search(snap.manifest.kind, k, exact, nprobe, ncandidates)
        how = hybrid.resolve(snap, query, mode, None, None)
        where = hybrid.scope(snap, filter, how.name != "keyword")

        def q():
            return query_matrix(query if matrix is None else matrix, snap.manifest.dim, lambda: self.encoder)

        with named_damage(snap.store):
            sides = hybrid.candidates(snap, query, q, k, where, plan, how, self.threads, statistics, counts)
            ids = [hit.id for hit in snap.hits(sides.positions, sides.keyword, documents=False)]
        return ids, sides
