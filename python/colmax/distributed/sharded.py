"""ShardedIndex: one logical index split into shards, each an ordinary colmax index searched by
its own Ray actors; the coordinator (this object, in the caller's process) encodes queries,
fans them out, merges the shards' rankings and fetches documents for the final hits only.

Mirrors ``colmax.Index``: the same search, write and read methods, the same arguments and
errors, and for exact indexes the same results (docs/distributed.md). Documents go to shards by
a stable hash of their id (router.py); writes follow the root protocol of writes.py.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._progress import progress_bar
from .._validate import id_list, one_id, one_text, positive_int, text_list
from ..index import hybrid, inputs
from ..index.errors import unknown_ids
from ..index.filters import compile_filter
from ..index.keyword import query_terms
from ..index.model import bind_encoder
from ..index.query import Plan, plan_search, query_list, query_matrices, query_matrix
from ..index.types import Document, Explanation, Hit
from . import writes
from .hybrid import fuse_candidates, gather_candidates
from .layout import create_root, describe
from .merge import Hits, Ranking, Sent, merge_hits, merge_ranked, sent
from .replicas import FanOut, Replicas, import_ray
from .root import Root, read_root
from .router import route, shard_of


def shard_candidates(k: int, n_shards: int) -> int:
    """A plaid shard's default ``ncandidates``: one index's default split over the shards, plus
    three standard deviations of how many of those candidates one shard holds (documents are
    spread by a hash, so binomially: ``total`` draws of probability ``1 / n_shards``), and at
    least ``k``. The shards together score a little more than one index would (304 for 2
    shards at k=10, against 256) rather than ``n_shards`` times as much. On SciFact with 2
    shards an even split (128 each) lost 0.001 of the exact top-10 recall against one index;
    this margin kept it (docs/distributed.md)."""
    total = Plan.default(k).ncandidates
    if n_shards == 1:
        return total
    share = total / n_shards
    return max(k, math.ceil(share + 3 * math.sqrt(share * (1 - 1 / n_shards))))


# a semantic search's shards send their hits' documents along when all shards' k hits together
# are at most this many (k=10 on up to 100 shards): one round trip per search instead of two
DOCUMENTS_WITH_HITS = 1000

# a ranked hit: (id, shard, score, semantic score, keyword score, (passage, span) where the shard
# said, (metadata, text) where it sent them)
Entry = tuple[str, int, float, float | None, float | None, tuple | None, tuple | None]


def semantic_entry(ranking: Ranking, shard: int, rank: int, score: float) -> Entry:
    place = (ranking.passages[rank], ranking.spans[rank])
    document = None if ranking.texts is None else (ranking.metadata[rank], ranking.texts[rank])
    return (ranking.ids[rank], shard, score, score, None, place, document)


def lexical_entry(fused: tuple, documents: Sent) -> Entry:
    """A fused hit of a keyword or hybrid search, with its document where its shard sent it."""
    document = documents.get(fused[0])
    if document is None:
        return (*fused, None, None)
    metadata, text, passage = document
    return (*fused, (passage, None), (metadata, text))


def hit(entry: Entry, fetched: Sent) -> Hit:
    """The Hit of a ranked entry, its document from the entry or else from ``fetched``."""
    id_, _, score, semantic, keyword, place, document = entry
    if document is None:
        metadata, text, passage = fetched[id_]
        document = (metadata, text)
        place = place or (passage, None)
    return Hit(id_, score, *document, semantic, keyword, *place)


class ShardedIndex:
    """A late-interaction index split over ``n_shards`` shards served by Ray actors. Create
    with :meth:`create`, reopen with :meth:`open`; close (or use ``with``) to stop the actors."""

    def __init__(self, path: Path, root: Root, replicas: Replicas) -> None:
        # use ShardedIndex.create / ShardedIndex.open
        self.path = path
        self._root = root
        self._replicas: Replicas | None = replicas
        self._encoder = None
        self._lexical_state: tuple[Root, tuple[bool, str]] | None = None
        self._write_mutex = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
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
        replicas: int = 1,
        threads_per_shard: int = 1,
        address: str | None = None,
        cpus_per_replica: float | None = None,
    ) -> ShardedIndex:
        """Create an empty sharded index at ``path`` (a new or empty directory) and open it.

        ``path`` gets ``colmax-sharded.json`` and ``n_shards`` shard directories, each an
        ordinary index made by ``Index.create(shard, model, kind=, storage=, nbits=,
        n_centroids=, dim=, keyword=)`` (same meanings). A plaid index's shards share one codebook,
        trained by the first ``add`` on the sample one index holding those documents would use.
        The rest is :meth:`open`'s.
        """
        create_root(
            path,
            n_shards,
            model,
            kind=kind,
            storage=storage,
            nbits=nbits,
            n_centroids=n_centroids,
            dim=dim,
            keyword=keyword,
        )
        return cls.open(
            path,
            replicas=replicas,
            threads_per_shard=threads_per_shard,
            address=address,
            cpus_per_replica=cpus_per_replica,
        )

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        replicas: int = 1,
        threads_per_shard: int = 1,
        address: str | None = None,
        cpus_per_replica: float | None = None,
        shard_resource: str | None = None,
    ) -> ShardedIndex:
        """Open a sharded index: start ``replicas`` actors per shard on Ray, each reading the
        shard with ``threads_per_shard`` threads and reserving as many CPUs
        (``cpus_per_replica`` reserves fewer, e.g. 0.5, for more shards than CPUs: the actors
        then share cores, and a fraction allows one thread only).

        Connects to the Ray cluster at ``address`` (None: the one this process already joined,
        ``RAY_ADDRESS``, or a new local one). Every node must see the shard directories at the
        same path (shared storage), or, with ``shard_resource="colmax_shard_"``, shard i's
        replicas run only on nodes that offer the custom resource ``colmax_shard_<i>`` (each
        node holding copies of the shards it serves). A shard's replicas are spread over nodes
        where there are several; reads alternate between them and move to another when one
        dies (docs/distributed.md).
        """
        ray = import_ray()
        replicas = positive_int("replicas", replicas)
        threads_per_shard = positive_int("threads_per_shard", threads_per_shard)
        cpus = float(threads_per_shard if cpus_per_replica is None else cpus_per_replica)
        if not (cpus > 0 and (cpus >= threads_per_shard or threads_per_shard == 1)):
            raise ValueError(
                f"cpus_per_replica={cpus_per_replica} cannot run threads_per_shard={threads_per_shard}: "
                "reserve at least one CPU per thread (a fraction only for one thread)"
            )
        path = Path(path)
        root = read_root(path)
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        paths = [str((path / s.path).resolve()) for s in root.shards]
        return cls(path, root, Replicas(paths, replicas, threads_per_shard, cpus, shard_resource))

    def close(self) -> None:
        """Stop the shard actors."""
        if self._replicas is not None:
            self._replicas.close()
        self._replicas = None

    def __enter__(self) -> ShardedIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reload(self) -> bool:
        """Move to the newest recorded state (written by another ShardedIndex); True if it changed."""
        root = read_root(self.path)
        if root == self._root:
            return False
        self._root = root
        return True

    @property
    def _actors(self) -> Replicas:
        if self._replicas is None:
            raise ValueError("the sharded index is closed")
        return self._replicas

    # -- facts ---------------------------------------------------------------------------------

    @property
    def n_shards(self) -> int:
        return self._root.n_shards

    @property
    def dim(self) -> int:
        return self._root.dim

    @property
    def kind(self) -> str:
        return self._root.kind

    @property
    def storage(self) -> str | None:
        return self._root.storage

    @property
    def generation(self) -> int:
        """The number of the recorded state this object reads (one more with every write)."""
        return self._root.generation

    def __len__(self) -> int:
        return self._root.documents

    def __repr__(self) -> str:
        state = "closed" if self._replicas is None else f"documents={len(self)}"
        return f"ShardedIndex({str(self.path)!r}, shards={self.n_shards}, {state})"

    @property
    def encoder(self):
        """The model that encodes queries here (documents are encoded by the shard actors)."""
        if self._encoder is None:
            self._encoder = bind_encoder(self._root.model, self._root.dim, None)
        return self._encoder

    def placement(self) -> list[list[tuple[int, str]]]:
        """Per shard, per replica: (process id, Ray node id) of its actor when it started."""
        return [list(p) for p in self._actors.placement]

    def info(self) -> dict:
        """Facts about the sharded index and each shard, as ``colmax info ROOT`` shows them."""
        root = self._root
        shards = self._actors.on_all("info", lambda s: (root.shards[s].generation,))
        return describe(self.path, root, [shards[s] for s in range(root.n_shards)])

    # -- reading -------------------------------------------------------------------------------

    def search(
        self,
        query,
        k: int = 10,
        *,
        filter: Mapping | None = None,
        mode: str | None = None,
        alpha: float | None = None,
        fusion: str | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
        allow_partial: bool = False,
    ) -> Hits:
        """``Index.search`` over every shard, with the same arguments, defaults and results:
        the query is encoded once, each shard returns its best ``k`` (for a semantic search in
        one round trip with their documents, while the shards' ``k`` hits together are at most
        ``DOCUMENTS_WITH_HITS``), the coordinator keeps the best ``k`` of all (ties: lower shard,
        then earlier added) and, where the shards did not send them, fetches their metadata and
        text in a call of their own (keyword and hybrid searches: a statistics round first, then
        each shard's candidates with the documents of those that can reach the top ``k``).
        For an exact index the result equals one index holding every document, in every
        ``mode``: keyword and hybrid searches rank by BM25 under the statistics of all shards
        together and fuse over all shards' candidates (docs/distributed.md). A plaid index's
        staged search runs on each shard with ``nprobe`` and ``ncandidates`` (per shard; by
        default one index's budget split over the shards with a margin: :func:`shard_candidates`).

        A shard none of whose replicas answer raises ShardUnavailableError, unless
        ``allow_partial``: then the hits come from the shards that answered, listed in
        ``hits.shards`` (the others in ``hits.missing_shards``).
        """
        options = (filter, mode, alpha, fusion, exact, nprobe, ncandidates, allow_partial)
        if not isinstance(query, str):  # checked as Index.search checks it
            query = query_matrix(query, self.dim, lambda: self.encoder)
        return self._search([query], k, *options)[0]

    def search_batch(
        self,
        queries,
        k: int = 10,
        *,
        filter: Mapping | None = None,
        mode: str | None = None,
        alpha: float | None = None,
        fusion: str | None = None,
        exact: bool = False,
        nprobe: int | None = None,
        ncandidates: int | None = None,
        allow_partial: bool = False,
    ) -> list[Hits]:
        """:meth:`search` for many queries: texts are encoded in one batch, and each shard gets
        one call for them all (two for keyword and hybrid searches: statistics, then candidates
        with the documents of those that can reach the top k)."""
        options = (filter, mode, alpha, fusion, exact, nprobe, ncandidates, allow_partial)
        return self._search(query_list(queries), k, *options)

    def _lexical(self, run: FanOut) -> tuple[bool, str]:
        """(whether every shard has a keyword index, a text query's default mode), asked of the
        shards once per recorded state: hybrid where some shard's keyword index holds texts."""
        root = self._root
        if self._lexical_state is not None and self._lexical_state[0] is root:
            return self._lexical_state[1]
        state = run.gather(run.submit("lexical", every=True)).values()
        keyword = all(has for has, _ in state)
        found = (keyword, "hybrid" if keyword and any(m == "hybrid" for _, m in state) else "semantic")
        if not run.missing:  # with allow_partial, what the shards that answered say, this time only
            self._lexical_state = (root, found)
        return found

    def _search(
        self, queries, k, filter, mode, alpha, fusion, exact, nprobe, ncandidates, allow_partial
    ) -> list[Hits]:
        root = self._root
        k = positive_int("k", k)
        plan_search(root.kind, k, exact, nprobe, ncandidates)  # checks the knobs here, once
        if filter is not None:
            compile_filter(filter)
        run = FanOut(self._actors, root, allow_partial)
        hows = [hybrid.choose(q, mode, alpha, fusion, lambda: self._lexical(run)) for q in queries]
        if root.kind == "plaid" and not exact and ncandidates is None:
            ncandidates = shard_candidates(k, root.n_shards)
        options = {"filter": filter, "exact": exact, "nprobe": nprobe, "ncandidates": ncandidates}
        if not queries:
            return []
        # keyword and hybrid searches of texts with keyword terms: statistics, candidates, fusion
        worded = [how.name != "semantic" and bool(query_terms(q)) for q, how in zip(queries, hows)]
        lexical = [i for i, w in enumerate(worded) if w]
        # semantic searches, and hybrid ones of texts without keyword terms (as in Index.search)
        semantic = [i for i, how in enumerate(hows) if not worded[i] and how.name != "keyword"]
        matrices = {}
        if any(how.name != "keyword" for how in hows):  # as Index.search_batch: all in one batch
            matrices = dict(enumerate(query_matrices(queries, self.dim, lambda: self.encoder)))
        ranked: list[list[Entry]] = [[] for _ in queries]  # a keyword query without terms finds nothing
        # the shards' documents come with their rankings or candidates (no call after merging)
        # unless that is many more documents than the final hits
        documents = k * sum(1 for s in root.shards if s.documents) <= DOCUMENTS_WITH_HITS
        if semantic:
            answers = run.gather(
                run.submit("search_batch", [matrices[i] for i in semantic], k, options, documents)
            )
            for j, i in enumerate(semantic):
                rankings = {s: a[j] for s, a in answers.items()}
                merged = merge_ranked(rankings, k)
                ranked[i] = [semantic_entry(rankings[s], s, r, score) for s, r, score in merged]
        if lexical:
            texts, modes = [queries[i] for i in lexical], [hows[i].name for i in lexical]
            q = [matrices.get(i) for i in lexical]
            for i, answers in zip(lexical, gather_candidates(run, texts, q, k, modes, options, documents)):
                candidates = {s: (ids, sides) for s, (ids, sides, _) in answers.items()}
                fused = fuse_candidates(candidates, k, hows[i])
                ranked[i] = [lexical_entry(entry, answers[entry[1]][2]) for entry in fused]
        fetched = self._documents({(e[0], e[1]) for ranking in ranked for e in ranking if e[6] is None})
        return [Hits([hit(e, fetched) for e in ranking], run.answered, run.missing) for ranking in ranked]

    def _documents(self, wanted: set[tuple[str, int]]) -> Sent:
        """(metadata, text, passage) of the final hits the shards did not send, one call per
        shard holding some (``merge.sent``; semantic hits bring their own passage)."""
        root = self._root
        by_shard: dict[int, list[str]] = {}
        for id_, s in sorted(wanted):
            by_shard.setdefault(s, []).append(id_)
        if not by_shard:
            return {}
        docs = self._actors.on_all(
            "get_batch", lambda s: (root.shards[s].generation, by_shard[s], False), shards=sorted(by_shard)
        )
        return sent(d for found in docs.values() for d in found)

    def rerank(self, query, ids: Sequence[str]) -> list[Hit]:
        """Score exactly the documents ``ids`` (KeyError for unknown ones), best first."""
        root = self._root
        ids = list(dict.fromkeys(id_list(ids)))
        q = query_matrix(query, self.dim, lambda: self.encoder)
        if not ids:
            return []
        groups = route(ids, root.n_shards)
        shards = [s for s, group in enumerate(groups) if group]
        args = {s: (root.shards[s].generation, q, [ids[i] for i in groups[s]]) for s in shards}
        try:
            per_shard = self._actors.on_all("rerank", args.__getitem__, shards=shards)
        except KeyError:
            found = self._actors.on_all("found", lambda s: (args[s][0], args[s][2]), shards=shards)
            known = {i for f in found.values() for i in f}
            raise unknown_ids([i for i in ids if i not in known]) from None
        return merge_hits(per_shard)

    def explain(self, query, id: str) -> Explanation:
        """Per query token: the best-matching token of document ``id`` and its similarity."""
        root = self._root
        s = shard_of(one_id(id), root.n_shards)
        if not isinstance(query, str):
            query = query_matrix(query, self.dim, lambda: self.encoder)
        return self._actors.call(s, "explain", root.shards[s].generation, query, id)

    def get(self, id: str) -> Document:
        """The stored document ``id`` (KeyError if there is none)."""
        (doc,) = self.get_batch([one_id(id)])
        return doc

    def get_batch(self, ids: Sequence[str], *, embeddings: bool = True) -> list[Document]:
        """The stored documents ``ids``, in order (KeyError naming unknown ones)."""
        root = self._root
        ids = id_list(ids)
        unique = list(dict.fromkeys(ids))
        groups = route(unique, root.n_shards)
        shards = [s for s, group in enumerate(groups) if group]
        found = self._actors.on_all(
            "get_batch",
            lambda s: (root.shards[s].generation, [unique[i] for i in groups[s]], embeddings),
            shards=shards,
        )
        docs = {d.id: d for part in found.values() for d in part}
        return [docs[i] for i in ids]

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, op: str = "write"):
        with self._write_mutex, writes.transaction(self.path, self._actors, op) as txn:
            yield txn
        self._root = txn.result

    def _check_new(self, ids: list[str], groups: list[list[int]]) -> None:
        taken = self._actors.on_all(
            "existing",
            lambda s: ([ids[i] for i in groups[s]],),
            shards=[s for s, g in enumerate(groups) if g],
        )
        inputs.already_there([i for found in taken.values() for i in found])

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping] | None = None,
        *,
        batch_size: int | None = None,
        progress: bool = False,
        upsert: bool = False,
    ) -> list[str]:
        """Route, encode (on the shards' actors, in parallel) and add documents; one commit per
        shard and one recorded state for them all. Returns their ids. An id already in the index
        is an error, unless ``upsert``: then its document is replaced (an id always routes to the
        same shard, so each shard replaces its own, as ``Index.add(..., upsert=True)``)."""
        texts = text_list(texts)
        ids = inputs.fresh_ids(len(texts), ids)
        inputs.metadata_json(len(texts), metadata)  # checked here, before any shard works
        metadata = None if metadata is None else list(metadata)
        actors = self._actors
        groups = route(ids, self.n_shards)
        bar = progress_bar(len(texts), progress, unit="doc", desc="encoding")
        try:
            with self._transaction() as txn:
                if not upsert:
                    self._check_new(ids, groups)
                parts = {
                    s: (
                        [texts[i] for i in g],
                        [ids[i] for i in g],
                        None if metadata is None else [metadata[i] for i in g],
                    )
                    for s, g in enumerate(groups)
                    if g
                }
                if txn.root.kind == "plaid" and not txn.root.trained:
                    encoded = {s: actors.submit_refs(s, "encode", 2, parts[s][0], batch_size) for s in parts}
                    vectors = {s: (refs[0], actors.ray.get(refs[1])) for s, refs in encoded.items()}
                    writes.first_plaid_add(txn, actors, groups, vectors, ids, metadata, texts, None)
                    bar.update(len(texts))
                else:
                    calls = [actors.submit(s, "add", *parts[s], batch_size, upsert) for s in parts]
                    txn.committed(writes.gather(actors, calls, bar, {s: len(groups[s]) for s in parts}))
        finally:
            bar.close()
        return ids

    def add_embeddings(
        self,
        embeddings,
        ids: Sequence[str] | None,
        metadata: Sequence[Mapping] | None = None,
        *,
        texts: Sequence[str] | None = None,
    ) -> list[str]:
        """Add precomputed token matrices, routed by id (see ``Index.add_embeddings``)."""
        ragged = inputs.embeddings(embeddings, self.dim)
        ids = inputs.fresh_ids(len(ragged), ids)
        inputs.metadata_json(len(ragged), metadata)
        metadata = None if metadata is None else list(metadata)
        texts = inputs.stored_texts(texts, len(ragged))
        actors = self._actors
        groups = route(ids, self.n_shards)
        parts = writes.split_ragged(ragged, groups)

        def pick(values, s):
            return None if values is None else [values[i] for i in groups[s]]

        with self._transaction() as txn:
            self._check_new(ids, groups)
            if txn.root.kind == "plaid" and not txn.root.trained:
                vectors = {s: (actors.ray.put(r), r.lengths) for s, r in parts.items()}
                writes.first_plaid_add(txn, actors, groups, vectors, ids, metadata, texts, None)
            else:
                calls = [
                    actors.submit(
                        s,
                        "add_embeddings",
                        actors.ray.put(r),
                        pick(ids, s),
                        pick(metadata, s),
                        pick(texts, s),
                    )
                    for s, r in parts.items()
                ]
                txn.committed(writes.gather(actors, calls))
        return ids

    def delete(self, ids) -> None:
        """Delete documents (KeyError, and nothing deleted, if any id is unknown)."""
        ids = list(dict.fromkeys(id_list(ids)))
        if not ids:
            return
        actors = self._actors
        groups = route(ids, self.n_shards)
        shards = [s for s, g in enumerate(groups) if g]
        with self._transaction() as txn:
            found = actors.on_all("existing", lambda s: ([ids[i] for i in groups[s]],), shards=shards)
            known = {i for f in found.values() for i in f}
            if len(known) != len(ids):
                raise unknown_ids([i for i in ids if i not in known])
            calls = [actors.submit(s, "delete", [ids[i] for i in groups[s]]) for s in shards]
            txn.committed(writes.gather(actors, calls))

    def update(self, id: str, text: str, metadata: Mapping | None = None) -> None:
        """Replace document ``id``'s text (and metadata; None keeps the current metadata)."""
        one_id(id)
        one_text(text, "text")
        if metadata is not None:
            inputs.metadata_json(1, [metadata])
        s = shard_of(id, self.n_shards)
        with self._transaction() as txn:
            txn.committed(writes.gather(self._actors, [self._actors.submit(s, "update", id, text, metadata)]))

    def add_keyword_index(self) -> None:
        """Add the keyword index (keyword and hybrid search) to every shard that has none
        (``Index.add_keyword_index``), in one recorded state."""
        actors = self._actors
        with self._transaction() as txn:
            txn.committed(
                writes.gather(actors, [actors.submit(s, "add_keyword_index") for s in range(self.n_shards)])
            )

    def compact(self) -> None:
        """Compact every shard (``Index.compact``), one shard per recorded state. Searches that
        are under way keep their commits; a replica opening a shard's pre-compaction commit
        after that shard compacted fails until this object's next state is recorded, which
        follows at once (docs/distributed.md)."""
        for s in range(self.n_shards):
            with self._transaction("compact") as txn:
                txn.committed({s: tuple(self._actors.call(s, "compact", retry=False))})
