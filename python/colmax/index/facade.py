"""The persistent late-interaction index: add, delete, update, search, rerank, explain, compact.

An index is a directory (docs/format.md): a manifest naming memory-mapped token segments and a
SQLite store of ids, metadata, text and the keyword (FTS5) index of the text. Every write builds
new files and then commits by atomically replacing the manifest, so a crash at any moment leaves
the last commit intact. An ``Index`` object is a reader bound to one commit (a ``Snapshot``);
each write takes the writer lock, moves to the newest commit, and commits the next one.
``reload()`` moves a reader to the newest commit. The class only checks arguments and
delegates: searching to ``hybrid`` (which calls ``search`` for MaxSim and ``keyword`` for BM25),
writing to ``write`` and ``rewrite``, the rest to the modules beside it (docs/architecture.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from .._validate import id_list, one_id, one_text, positive_int, text_list
from . import codebook as codebooks
from . import compress as compressing
from . import defaults, history, hybrid, inputs, keyword, maintenance, search, write
from . import explain as explaining
from .codebook import Codebook
from .files import store_name
from .manifest import STORAGES, Manifest, read_manifest
from .model import bind_encoder, model_record
from .query import plan_search, query_list, query_matrices, query_matrix
from .rewrite import rewrite
from .snapshot import Snapshot, load_latest
from .types import Document, Explanation, Hit


class Index:
    """A late-interaction index on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, snapshot: Snapshot, model=None, threads: int | None = None) -> None:
        # use Index.create / Index.open
        self.path = snapshot.path
        self.threads = threads
        self._model = model  # what the caller asked for: None (the recorded model), a directory or an Encoder
        self._encoder = None  # the bound encoder, loaded on first use
        self._snapshot: Snapshot | None = snapshot
        self._write_mutex = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        model=None,
        *,
        kind: str = "auto",
        storage: str | None = None,
        nbits: int | None = None,
        n_centroids: int | None = None,
        dim: int | None = None,
        keyword: bool = True,
        threads: int | None = None,
        codebook: Codebook | None = None,
    ) -> Index:
        """Create an empty index at ``path`` (a new or empty directory).

        ``model``: None for the packaged default model, a model directory, or an ``Encoder``.
        ``dim`` without a model creates an embeddings-only index (``add_embeddings`` and query
        matrices only).

        ``kind="auto"`` (default) is "exact" for an index created empty ("plaid" when ``nbits``,
        ``n_centroids`` or ``codebook`` is given): the kind is fixed at
        creation, and an exact index whose adds take it past ``defaults.AUTO_PLAID_TOKENS``
        stored tokens warns once, naming :meth:`compress` (``colmax index`` knows its corpus
        up front and creates it "plaid" above that size: README "Defaults").

        ``kind="exact"`` stores every token vector and searches by exact MaxSim over all
        documents; ``storage`` is their precision: "float32", "float16" or "bfloat16" (half
        float32's bytes, its range); by default bfloat16 where the CPU has native bfloat16 dot
        products, else float16 (``defaults.default_storage()``).

        ``kind="plaid"`` stores each token as a centroid id plus a residual of ``nbits`` bits per
        dimension (1, 2, 4 or 8; default 2 up to dim 128, where it is about 33 bytes a token, and 4
        above, where 2 bits lose too much: docs/plaid.md) and searches in stages
        that touch only promising documents (docs/plaid.md). The codebook (``n_centroids``
        k-means centroids, by default sized from the corpus) is trained on the first ``add``;
        later adds reuse it, ``retrain()`` re-learns it. ``storage`` here optionally keeps a
        full-precision copy ("float16", "bfloat16", "float32") that the final stage scores
        instead of the decompressed vectors. ``codebook`` installs a trained one instead (from
        ``colmax.index.codebook.train`` or ``colmax.index.training.train_spread``), so that
        several indexes compress alike: its ``nbits`` must match.

        ``keyword=True`` (default) also keeps a keyword index of the documents' texts (SQLite
        FTS5, BM25), written in the same commits, for keyword and hybrid search (:meth:`search`);
        False leaves it out (semantic search only; :meth:`add_keyword_index` adds it later).
        """
        plaid_knobs = nbits is not None or n_centroids is not None or codebook is not None
        kind = "plaid" if kind == "auto" and plaid_knobs else defaults.resolve_kind(kind, None)
        if storage is None and kind == "exact":
            storage = defaults.default_storage()
        if storage is not None and storage not in STORAGES:
            raise ValueError(f"storage must be one of {', '.join(STORAGES)}, got {storage!r}")
        if dim is not None:
            dim = positive_int("dim", dim)
        if kind == "exact" and (nbits is not None or n_centroids is not None):
            raise ValueError("nbits and n_centroids apply to kind='plaid' indexes only")
        if n_centroids is not None:
            n_centroids = codebooks.check_n_centroids(n_centroids)
        if codebook is not None:
            if kind != "plaid":
                raise ValueError("codebook applies to kind='plaid' indexes only")
            if not isinstance(codebook, Codebook):
                raise TypeError(
                    f"codebook must be a colmax.index.codebook.Codebook, got {type(codebook).__name__}"
                )
            if nbits is not None and nbits != codebook.nbits:
                raise ValueError(f"nbits={nbits} but the codebook has {codebook.nbits} bits: drop nbits=")
            nbits = codebook.nbits
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path} already exists and is not an empty directory: choose a new path")
        encoder, record, dim = model_record(model, dim)
        if codebook is not None and codebook.dim != dim:
            raise ValueError(f"the codebook holds {codebook.dim}-dim centroids but the index is {dim}-dim")
        request = None
        if kind == "plaid":
            nbits = codebooks.default_nbits(dim) if nbits is None else nbits
            request = {"nbits": codebooks.check_nbits(nbits, dim), "n_centroids": n_centroids}
        manifest = Manifest(
            generation=0,
            dim=dim,
            storage=storage,
            model=record,
            store=store_name(0),
            kind=kind,
            codebook=request,
            keyword=bool(keyword),
        )
        write.create(path, manifest, codebook)
        return cls(load_latest(path), encoder, threads)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        model=None,
        threads: int | None = None,
        generation: int | None = None,
    ) -> Index:
        """Open an existing index (memory-maps its segments; nothing is read into RAM).

        ``model`` overrides the model recorded in the index (a directory or an ``Encoder``),
        e.g. when the model directory has moved; a model loaded from the index's record runs
        on ``threads`` too. ``generation`` opens an earlier commit instead of the newest, as
        long as only adds, deletes and updates came after it (ValueError past a compact or
        retrain); ``reload()`` and writes move on to the newest. Raises IndexFormatError for a
        directory that is not an index or is damaged, IndexVersionError for one written by a
        newer colmax.
        """
        path = Path(path)
        snap = load_latest(path) if generation is None else history.load_at(path, generation)
        return cls(snap, model, threads)

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.store.close()
        self._snapshot = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reload(self) -> bool:
        """Move to the newest commit; return True if there was one."""
        snap = self._snap
        if read_manifest(self.path) == snap.manifest:  # whole manifests: a rollback reuses numbers
            return False
        self._snapshot = load_latest(self.path, snap)
        return True

    @property
    def _snap(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise ValueError("the index is closed")
        return snap

    @contextmanager
    def _transaction(self):
        """A write: this object moves to the commit it makes, or to the newest one if it fails."""
        with write.transaction(self._snap, self._write_mutex) as txn:
            try:
                yield txn
            finally:
                self._snapshot = txn.result or txn.snapshot
        if txn.result is not None:
            defaults.warn_if_grown_past(txn.snapshot.manifest, txn.result.manifest, self.path)

    # -- model -------------------------------------------------------------------------------

    @property
    def encoder(self):
        """The index's encoder, loaded on first use."""
        if self._encoder is None:
            m = self._snap.manifest
            self._encoder = bind_encoder(m.model, m.dim, self._model, self.threads)
        return self._encoder

    # -- reading -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._snap.manifest.dim

    @property
    def storage(self) -> str | None:
        return self._snap.manifest.storage

    @property
    def kind(self) -> str:
        """ "exact" or "plaid" (see :meth:`create`)."""
        return self._snap.manifest.kind

    @property
    def default_mode(self) -> str:
        """The mode :meth:`search` gives a text query by default: "hybrid" when the index has a
        keyword index holding texts, else "semantic" (a query matrix is always semantic)."""
        return hybrid.default_mode(self._snap)

    @property
    def generation(self) -> int:
        """The number of the commit this object reads (it grows by one with every write)."""
        return self._snap.generation

    def __len__(self) -> int:
        return self._snap.manifest.n_live

    def __contains__(self, id) -> bool:
        snap = self._snap
        return isinstance(id, str) and bool(snap.store.positions_of([id], snap.generation))

    def __repr__(self) -> str:
        if self._snapshot is None:
            return f"Index({str(self.path)!r}, closed)"
        return f"Index({str(self.path)!r}, documents={len(self)}, dim={self.dim}, storage={self.storage!r})"

    def ids(self) -> list[str]:
        """All live document ids, in insertion order."""
        snap = self._snap
        return snap.store.live_ids(snap.generation)

    def get(self, id: str) -> Document:
        """The stored document ``id`` (KeyError if there is none)."""
        (doc,) = self.get_batch([one_id(id)])
        return doc

    def get_batch(self, ids: Sequence[str], *, embeddings: bool = True) -> list[Document]:
        """The stored documents ``ids``, in order (KeyError naming unknown ones); with
        ``embeddings=False`` their ``embeddings`` are None and no vectors are read."""
        snap = self._snap
        ids = id_list(ids)
        positions = snap.positions(list(dict.fromkeys(ids)))
        rows = snap.store.rows(positions)
        docs = {}
        for pos in positions:
            doc_id, meta, text = rows[pos]
            docs[doc_id] = Document(doc_id, text, meta, snap.doc_matrix(pos) if embeddings else None)
        return [docs[i] for i in ids]

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
        with_documents: bool = True,
    ) -> list[Hit]:
        """The ``k`` best documents for ``query``, best first (ties: earlier added first).

        ``query`` is a text (encoded with the index's model) or a ``(n_tokens, dim)`` matrix;
        ``filter`` restricts the candidates by metadata on every side (see
        :mod:`colmax.index.filters`). ``mode``:

        - ``"semantic"``: MaxSim only; ``Hit.score`` is the MaxSim score.
        - ``"keyword"``: BM25 over the keyword index (SQLite FTS5, porter stemming) only; the
          query text becomes an OR of its terms minus English stopwords, so a missing term does
          not empty the result; ``Hit.score`` is the BM25 score. Query syntax in the text (quotes,
          AND, NEAR, *, :, parentheses) is never interpreted: every term is quoted. A text with
          no terms (only stopwords or punctuation) finds nothing.
        - ``"hybrid"``: the best ``max(k, 100)`` documents by MaxSim and the best ``max(k, 30)``
          by BM25, each with its score on the other side computed (exact MaxSim of a
          keyword-only candidate, BM25 of a semantic-only one), fused: with ``fusion="minmax"``
          (default) ``alpha`` times the min-max normalized MaxSim plus ``1 - alpha`` times the
          normalized BM25 (``alpha`` default 0.5, measured on SciFact and Cranfield: README);
          with ``fusion="rrf"`` reciprocal-rank fusion weighted by ``alpha`` (default 0.5).
          ``Hit.score`` is the fused score, ``Hit.semantic_score`` and ``Hit.keyword_score``
          the two sides'. A text with no keyword terms is searched semantically.
        - ``None`` (default): ``"hybrid"`` for a text query on an index whose keyword index
          holds texts, else ``"semantic"`` (a query matrix, an embeddings-only index, an index
          created before keyword indexes: see :meth:`add_keyword_index`).

        An exact index scores every (filtered) document exactly. A plaid index searches in
        stages: each query token probes its ``nprobe`` nearest centroids (default 2), the
        documents holding them are ranked by centroid scores, and the best ``ncandidates``
        (default max(256, 16 k), whatever the corpus size) are scored exactly on their
        full-precision copy if the index keeps one, else on their decompressed vectors
        (docs/plaid.md). ``exact=True`` scores every document instead. The knobs are checked
        even where they go unused. A text the model would truncate is refused (ValueError),
        except with [MASK] query expansion, which cuts queries to ``query_length`` by design.
        ``with_documents=False`` returns ids and scores only (metadata {}, text None), reading
        nothing else.
        """
        snap = self._snap
        k = positive_int("k", k)
        plan = plan_search(snap.manifest.kind, k, exact, nprobe, ncandidates)
        how = hybrid.resolve(snap, query, mode, alpha, fusion)
        where = hybrid.scope(snap, filter, how.name != "keyword")
        return hybrid.search(
            snap,
            query,
            lambda: query_matrix(query, snap.manifest.dim, lambda: self.encoder),
            k,
            where,
            plan,
            how,
            self.threads,
            with_documents,
        )

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
        with_documents: bool = True,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries, with the same checks (texts are encoded in one batch)."""
        snap = self._snap
        k = positive_int("k", k)
        plan = plan_search(snap.manifest.kind, k, exact, nprobe, ncandidates)
        items = query_list(queries)
        hows = [hybrid.resolve(snap, query, mode, alpha, fusion) for query in items]
        semantic = any(how.name != "keyword" for how in hows)
        matrices = [None] * len(items)
        if semantic:
            matrices = query_matrices(items, snap.manifest.dim, lambda: self.encoder)
        where, threads = hybrid.scope(snap, filter, semantic), self.threads
        return [
            hybrid.search(snap, query, lambda q=q: q, k, where, plan, how, threads, with_documents)
            for query, q, how in zip(items, matrices, hows)
        ]

    def rerank(self, query, ids: Sequence[str]) -> list[Hit]:
        """Score exactly the documents ``ids`` (KeyError for unknown ones), best first."""
        snap = self._snap
        ids = list(dict.fromkeys(id_list(ids)))
        q = query_matrix(query, snap.manifest.dim, lambda: self.encoder)
        if not ids:
            return []
        positions = np.array(sorted(snap.positions(ids)), dtype=np.int64)
        positions, scores = search.rerank(snap, q, positions, self.threads)
        return snap.hits(positions, scores, semantic=scores)

    def explain(self, query, id: str) -> Explanation:
        """Per query token: the best-matching token of document ``id`` and its similarity; for a
        text query on an index with a keyword index, also the query terms the document holds."""
        snap = self._snap
        q = query_matrix(query, snap.manifest.dim, lambda: self.encoder)
        return explaining.explain(snap, query, q, one_id(id), lambda: self.encoder)

    # -- for a coordinator over several indexes (colmax.distributed) --------------------------

    def keyword_statistics(self, query: str) -> keyword.Statistics:
        """This index's share of the BM25 statistics of the text ``query``'s terms (summed over
        the shards of a sharded index with ``+``)."""
        snap = self._snap
        terms = keyword.query_terms(one_text(query, "the query"))
        if not snap.manifest.keyword:
            raise ValueError("this index has no keyword index: add it with index.add_keyword_index()")
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
    ) -> tuple[list[str], hybrid.Sides]:
        """(ids, scores) of what a ``mode`` search ("hybrid" or "keyword") of the text ``query``
        ranks before fusion, by ascending position: for hybrid the candidates of both sides, each
        with its MaxSim and BM25 (``hybrid.side_scores``), for keyword the best ``k`` by BM25.
        BM25 is computed under ``statistics`` (a whole sharded index's) when given. ``matrix``:
        the query's matrix when the caller encoded it. Other arguments as in :meth:`search`."""
        snap = self._snap
        k = positive_int("k", k)
        plan = plan_search(snap.manifest.kind, k, exact, nprobe, ncandidates)
        how = hybrid.resolve(snap, query, mode, None, None)
        where = hybrid.scope(snap, filter, how.name != "keyword")

        def q():
            return query_matrix(query if matrix is None else matrix, snap.manifest.dim, lambda: self.encoder)

        sides = hybrid.candidates(snap, query, q, k, where, plan, how, self.threads, statistics)
        ids = [hit.id for hit in snap.hits(sides.positions, sides.keyword, documents=False)]
        return ids, sides

    # -- writing -----------------------------------------------------------------------------

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
        """Encode and add documents in one commit; return their ids (generated when not given).

        An id already in the index is an error, unless ``upsert``: then the document with that id
        is replaced, in the same commit."""
        texts = text_list(texts)
        ids = inputs.new_ids(self._snap, len(texts), ids, existing_ok=upsert)
        metas = inputs.metadata_json(len(texts), metadata)
        encoder = self.encoder
        bar = progress_bar(len(texts), progress, unit="doc", desc="encoding")
        try:
            with self._transaction() as txn:
                snap = txn.snapshot
                replaced = list(snap.store.positions_of(ids, snap.generation)) if upsert else []
                chunks = write.encoded_chunks(encoder, texts, batch_size, bar)
                write.append(txn, chunks, ids, metas, texts, replaced, self.threads)
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
        """Add precomputed token matrices (a ``Ragged`` or a list of ``(n_i, dim)`` arrays);
        ``texts``, when given, are stored (returned in hits, used by explain) and keyword-indexed."""
        ragged = inputs.embeddings(embeddings, self.dim)
        ids = inputs.new_ids(self._snap, len(ragged), ids)
        metas = inputs.metadata_json(len(ragged), metadata)
        texts = inputs.stored_texts(texts, len(ragged))
        with self._transaction() as txn:
            write.append(txn, ragged, ids, metas, texts, [], self.threads)
        return ids

    def delete(self, ids) -> None:
        """Delete documents (KeyError, and nothing deleted, if any id is unknown)."""
        ids = list(dict.fromkeys(id_list(ids)))
        if ids:
            with self._transaction() as txn:
                write.append(txn, None, [], [], None, ids, self.threads)

    def update(self, id: str, text: str, metadata: Mapping | None = None) -> None:
        """Replace document ``id``'s text (and metadata; None keeps the current metadata)."""
        one_id(id)
        one_text(text, "text")
        with self._transaction() as txn:
            snap = txn.snapshot
            (pos,) = snap.positions([id])
            meta = snap.store.rows([pos], with_text=False)[pos][1] if metadata is None else metadata
            ids = inputs.new_ids(snap, 1, [id], existing_ok=True)
            metas = inputs.metadata_json(1, [meta])
            ragged = self.encoder.encode_documents([text])
            write.append(txn, ragged, ids, metas, [text], [id], self.threads)

    def rollback(self, generation: int) -> None:
        """Undo every commit after ``generation``: the index becomes exactly what that commit
        was, and the files and store rows written since are removed. Only adds, deletes and
        updates can be undone (ValueError past a compact or retrain). Other readers of the
        undone commits must reload."""
        with self._transaction() as txn:
            target = history.manifest_at(txn.manifest, txn.snapshot.store, generation)
            if target != txn.manifest:
                write.recover(txn.commit(target))

    def compact(self) -> None:
        """Rewrite the index without deleted documents, as one segment and a fresh store.

        Readers that opened before keep their memory maps; call ``reload()`` to move on."""
        with self._transaction() as txn:
            rewrite(txn, None, self.threads)

    def retrain(self, *, n_centroids: int | None = None, nbits: int | None = None) -> None:
        """Plaid indexes: learn a new codebook from the live documents and re-encode them all
        (compacting too). Worth it when the corpus has grown well past what the codebook was
        trained on (``info()["codebook_trained_tokens"]``) or changed topic. Without a
        full-precision copy the documents are re-encoded from their decompressed vectors."""
        if self.kind != "plaid":
            raise ValueError("retrain() applies to kind='plaid' indexes: an exact index has no codebook")
        request = {}
        if n_centroids is not None:
            request["n_centroids"] = codebooks.check_n_centroids(n_centroids)
        if nbits is not None:
            request["nbits"] = codebooks.check_nbits(nbits, self.dim)
        with self._transaction() as txn:
            rewrite(txn, request, self.threads)

    def compress(
        self,
        path: str | os.PathLike | None = None,
        *,
        nbits: int | None = None,
        n_centroids: int | None = None,
        storage: str | None = None,
    ) -> Index:
        """Exact indexes: build the plaid form (:meth:`create`, ``kind="plaid"``) from the stored
        vectors, without re-encoding; ids, metadata, texts and the keyword index carry over.
        ``path`` None: in place, as one commit (readers of the exact commit keep it until they
        reload); else a new index at ``path`` (new or empty), this one untouched. Either way
        the original stays whole until the new form is complete. Returns the compressed index.
        ``storage`` keeps a full-precision copy as in :meth:`create`. A plaid index is refused:
        its residuals are lossy, there is no exact form to go back to."""
        wanted = compressing.request(self._snap, nbits, n_centroids, storage)
        if path is not None:
            compressing.compress_to(self._snap, Path(path), wanted, self.threads)
            return Index.open(path, model=self._model, threads=self.threads)
        with self._transaction() as txn:
            compressing.request(txn.snapshot, nbits, n_centroids, storage)  # the newest commit, again
            compressing.compress(txn, txn.snapshot, wanted, self.threads)
        return self

    def add_keyword_index(self) -> None:
        """Add the keyword index (for keyword and hybrid search) to an index that has none (one
        written in index format 3 or earlier, or created with ``keyword=False``), in one commit
        that indexes every stored text. Does nothing if the index has one already."""
        with self._transaction() as txn:
            write.add_keyword_index(txn)

    # -- maintenance -------------------------------------------------------------------------

    def verify(self) -> None:
        """Hash every file against the manifest and check the store (IndexFormatError if damaged)."""
        maintenance.verify(self._snap)

    def warm(self) -> int:
        """Read every file of the current commit once, front to back, so that the page cache
        holds the index; return the bytes read.

        Searches read the memory-mapped files in place: after a cold start (a reboot, or other
        work evicting the cache) their pages come from disk as they are first touched. Plaid
        search hints those reads so that they overlap (docs/format.md), which keeps a cold first
        pass near a warm one: on a 3.45 GB plaid index, first queries 25-34 ms and pass p99
        42-56 ms, where warm passes have p50 21 ms and p99 38 ms (0.2-1.3 s per first query
        before the hints). After warm() nothing waits on the disk; reading sequentially takes
        seconds (2-5.5 s for those 3.45 GB, docs/plaid.md). Worth it when the index fits in
        memory; pointless when it does not.
        """
        return maintenance.warm(self._snap)

    def info(self) -> dict:
        """Facts about the index, as shown by ``colmax info INDEX``."""
        return maintenance.info(self._snap)
