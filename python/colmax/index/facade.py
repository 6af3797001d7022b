"""The persistent late-interaction index: add, delete, update, search, rerank, explain, compact.

An index is a directory (docs/format.md): a manifest naming memory-mapped token segments and a
SQLite store of ids, metadata, text and the keyword (FTS5) index of the text. Every write builds
new files and then commits by atomically replacing the manifest, so a crash at any moment leaves
the last commit intact. An ``Index`` object is a reader bound to one commit (a ``Snapshot``);
each write takes the writer lock, moves to the newest commit, and commits the next one.
A reader notices other processes' commits by itself (``auto_reload``: one read of the manifest
per search); ``reload()`` moves it explicitly. Long documents are cut into passages that share
the document's id (encoding/passages.py, index/passages.py). The class only checks arguments
and delegates: searching to ``hybrid`` (which calls ``search`` for MaxSim and ``keyword`` for
BM25), writing to ``write`` and ``rewrite``, the rest to the modules beside it
(docs/architecture.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .._progress import progress_bar, wanted
from .._validate import id_list, one_id, positive_int, text_list
from . import defaults, history, hybrid, inputs, integrity, search, write
from . import explain as explaining
from .codebook import Codebook
from .coordinator import CoordinatorReads
from .creation import first_manifest
from .files import MANIFEST
from .manifest import read_manifest
from .model import bind_encoder
from .passages import best_per_document
from .query import plan_search, query_list, query_matrices, query_matrix
from .snapshot import Snapshot, load_latest
from .store import named_damage
from .types import Added, Document, Explanation, Hit
from .upkeep import Upkeep


class Index(CoordinatorReads, Upkeep):
    """A late-interaction index on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(
        self, snapshot: Snapshot, model=None, threads: int | None = None, *, auto_reload=True, verify=False
    ) -> None:
        # use Index.create / Index.open
        self.path = snapshot.path
        self._manifest_file = self.path / MANIFEST  # read by every search (auto_reload)
        self.threads = threads
        self._model = model  # what the caller asked for: None (the recorded model), a directory or an Encoder
        self._encoder = None  # the bound encoder, loaded on first use
        self._snapshot: Snapshot | None = snapshot
        self._write_mutex = threading.Lock()
        self._auto_reload = auto_reload
        self._verify = verify  # hash the files of every commit moved to

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
        passage_length: int | None = None,
        passage_stride: int | None = None,
        threads: int | None = None,
        codebook: Codebook | None = None,
    ) -> Index:
        """Create an empty index at ``path`` (a new or empty directory).

        ``model``: None for the packaged default model, a model directory, or an ``Encoder``.
        ``dim`` without a model creates an embeddings-only index (``add_embeddings`` and query
        matrices only).

        ``kind="auto"`` (default) is "exact" for an index created empty ("plaid" when ``nbits``,
        ``n_centroids`` or ``codebook`` is given): the kind is fixed at creation, and an exact
        index whose adds take it past ``defaults.AUTO_PLAID_TOKENS`` stored tokens warns once,
        naming :meth:`compress` (``colmax index`` knows its corpus up front and creates it
        "plaid" above that size: README "Defaults").

        ``kind="exact"`` stores every token vector and searches by exact MaxSim over all
        documents; ``storage`` is their precision: "float32", "float16" (half the bytes),
        "bfloat16" (half the bytes, float32's range) or "int8" (a quarter, plus a float32 scale
        per token; scored in integers, see ``colmax.quantize_int8``); by default bfloat16 where
        the CPU has native bfloat16 dot products, else float16 (``defaults.default_storage()``).

        ``kind="plaid"`` stores each token as a centroid id plus a residual of ``nbits`` bits per
        dimension (1, 2, 4 or 8; default 2 up to dim 128, where it is about 33 bytes a token, and 4
        above, where 2 bits lose too much: docs/plaid.md) and searches in stages
        that touch only promising documents (docs/plaid.md). The codebook (``n_centroids``
        k-means centroids, by default sized from the corpus) is trained on the first ``add``;
        later adds reuse it, ``retrain()`` re-learns it. ``storage`` here optionally keeps a
        copy ("int8", "float16", "bfloat16", "float32") that the final stage scores instead of
        the decompressed vectors. ``codebook`` installs a trained one instead (from
        ``colmax.index.codebook.train`` or ``colmax.index.training.train_spread``), so that
        several indexes compress alike: its ``nbits`` must match.

        ``keyword=True`` (default) also keeps a keyword index of the documents' texts (SQLite
        FTS5, BM25), written in the same commits, for keyword and hybrid search (:meth:`search`);
        False leaves it out (semantic search only; :meth:`add_keyword_index` adds it later).

        Documents longer than the model's document length are indexed as overlapping passages
        (:meth:`add`): at most ``passage_length`` tokens each (default and maximum: the model's
        document length), each starting ``passage_stride`` text tokens after the previous one
        (default: 3/4 of a passage: README "Long documents"). Every passage after a document's
        first carries the document's title (its metadata ``"title"``, at most a quarter of the
        passage) in place of its first tokens, those the passage before holds too.
        """
        path = Path(path)
        encoder, manifest = first_manifest(
            path,
            model,
            kind,
            storage,
            nbits,
            n_centroids,
            dim,
            keyword,
            passage_length,
            passage_stride,
            codebook,
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
        verify: bool | None = None,
        auto_reload: bool = True,
    ) -> Index:
        """Open an existing index (memory-maps its segments; nothing is read into RAM).

        ``model`` overrides the model recorded in the index (a directory or an ``Encoder``),
        e.g. when the model directory has moved; a model loaded from the index's record runs
        on ``threads`` too. ``generation`` opens an earlier commit instead of the newest, as
        long as only adds, deletes and updates came after it (ValueError past a compact or
        retrain); ``reload()`` and writes move on to the newest.

        ``verify=True`` hashes every segment and codebook file against the manifest before
        anything reads them, and every file of a later commit this object moves to: a damaged
        index raises IndexFormatError naming its damaged files instead of answering. ``False``
        checks sizes and the small files only (offsets, codebook). ``None`` (default) hashes
        every file of an index whose files total at most 64 MiB (under 50 ms at the 1.4 GB/s
        measured here) and only the small ones above that: use ``verify=True``,
        :meth:`verify` or ``colmax verify`` for large indexes (README "Long documents, changing
        indexes, integrity").

        ``auto_reload`` (default True): every search, get and explain first checks whether
        another process (or another Index object) committed since, and moves to that commit if
        so (one read of the manifest file, a few microseconds); False stays on the commit opened
        until :meth:`reload`. An index opened at a ``generation`` stays there. Raises
        IndexFormatError for a directory that is not an index or is damaged, IndexVersionError
        for one written by a newer colmax.
        """
        path = Path(path)
        verify = integrity.open_verifies(verify, path, read_manifest(path))
        if generation is None:
            snap = load_latest(path, verify=verify)
        else:
            snap = history.load_at(path, generation, verify=verify)
        return cls(snap, model, threads, auto_reload=auto_reload and generation is None, verify=verify)

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
        self._snapshot = load_latest(self.path, snap, verify=self._verify)
        return True

    @property
    def _snap(self) -> Snapshot:
        snap = self._snapshot
        if snap is None:
            raise ValueError("the index is closed")
        return snap

    def _read(self) -> Snapshot:
        """The snapshot a read uses: with ``auto_reload``, the newest commit. The check compares
        the manifest file's bytes with those this object loaded (equal bytes, equal commit); a
        write of this object running on another thread moves it when it commits."""
        snap = self._snap
        if not self._auto_reload or snap.stamp is None:
            return snap
        try:
            current = self._manifest_file.read_bytes()
        except OSError:  # being replaced or gone: the loaded commit stays readable
            return snap
        if current != snap.stamp and self._write_mutex.acquire(blocking=False):
            try:
                self._snapshot = load_latest(self.path, snap, verify=self._verify)
            finally:
                self._write_mutex.release()
            snap = self._snap
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
        return self._read().manifest.n_live

    def __contains__(self, id) -> bool:
        snap = self._read()
        with named_damage(snap.store):
            return isinstance(id, str) and bool(snap.store.positions_of([id], snap.generation))

    def __repr__(self) -> str:
        if self._snapshot is None:
            return f"Index({str(self.path)!r}, closed)"
        return f"Index({str(self.path)!r}, documents={len(self)}, dim={self.dim}, storage={self.storage!r})"

    def ids(self) -> list[str]:
        """All live document ids, in insertion order."""
        snap = self._read()
        with named_damage(snap.store):
            return snap.store.live_ids(snap.generation)

    def get(self, id: str) -> Document:
        """The stored document ``id`` (KeyError if there is none): its whole text, however many
        passages it was indexed as."""
        (doc,) = self.get_batch([one_id(id)])
        return doc

    def get_batch(self, ids: Sequence[str], *, embeddings: bool = True) -> list[Document]:
        """The stored documents ``ids``, in order (KeyError naming unknown ones); with
        ``embeddings=False`` their ``embeddings`` are None and no vectors are read."""
        snap = self._read()
        ids = id_list(ids)
        with named_damage(snap.store):
            docs = snap.documents(list(dict.fromkeys(ids)), embeddings)
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
          by BM25, each with its score on the other side computed (MaxSim of a keyword-only
          candidate as the search's last stage scores its candidates, BM25 of a semantic-only
          one), fused: with ``fusion="minmax"`` (default) ``alpha`` times the min-max
          normalized MaxSim plus ``1 - alpha`` times the normalized BM25 (``alpha`` default
          0.7, measured on SciFact and Cranfield: README);
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

        A document indexed as several passages scores its best passage's score (in hybrid mode,
        each side's best passages are fused one by one and the document takes the best fused
        passage); ``Hit.passage`` and ``Hit.span`` say which passage won. The ``k`` documents
        are exactly the best ``k`` wherever the search is exact.
        """
        snap = self._read()
        k = positive_int("k", k)
        plan = plan_search(snap.manifest.kind, k, exact, nprobe, ncandidates)
        with named_damage(snap.store):
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
        """:meth:`search` for many queries, with the same checks (texts are encoded in one batch).
        The queries are searched concurrently, one per CPU (or per ``threads`` of the index, each
        on one thread)."""
        snap = self._read()
        k = positive_int("k", k)
        plan = plan_search(snap.manifest.kind, k, exact, nprobe, ncandidates)
        items = query_list(queries)
        with named_damage(snap.store):
            hows = [hybrid.resolve(snap, query, mode, alpha, fusion) for query in items]
            semantic = any(how.name != "keyword" for how in hows)
            matrices = [None] * len(items)
            if semantic:
                matrices = query_matrices(items, snap.manifest.dim, lambda: self.encoder)
            where = hybrid.scope(snap, filter, semantic)
            return hybrid.search_many(
                snap, items, matrices, hows, k, where, plan, self.threads, with_documents
            )

    def rerank(self, query, ids: Sequence[str]) -> list[Hit]:
        """Score exactly the documents ``ids`` (KeyError for unknown ones), best first; a
        document of several passages scores its best passage's MaxSim."""
        snap = self._read()
        ids = list(dict.fromkeys(id_list(ids)))
        q = query_matrix(query, snap.manifest.dim, lambda: self.encoder)
        if not ids:
            return []
        with named_damage(snap.store):
            positions, scores = search.rerank(snap, q, snap.passage_positions(ids), self.threads)
            positions, scores = best_per_document(snap.layout.heads(positions), positions, scores)
            return snap.hits(positions, scores, semantic=scores)

    def explain(self, query, id: str) -> Explanation:
        """Per query token: the best-matching token of document ``id`` and its similarity (of
        its best passage by MaxSim, for a document of several); for a text query on an index
        with a keyword index, also the query terms that passage holds."""
        snap = self._read()
        q = query_matrix(query, snap.manifest.dim, lambda: self.encoder)
        with named_damage(snap.store):
            return explaining.explain(snap, query, q, one_id(id), lambda: self.encoder, self.threads)

    # -- writing -----------------------------------------------------------------------------

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[Mapping] | None = None,
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        upsert: bool = False,
        truncate: bool = False,
    ) -> Added:
        """Encode and add documents in one commit; return their ids (generated when not given).

        A document longer than the model's document length is indexed whole, as overlapping
        passages under its id (see :meth:`create`): search finds it by its best passage, and
        ``get``, ``delete`` and ``update`` act on the whole document. ``truncate=True`` indexes
        only its first passage instead, and says so: a warning gives the count, and the
        returned list's ``truncated`` names the documents cut. An id already in the index is an
        error, unless ``upsert``: then the document with that id is replaced, in the same
        commit. ``progress`` shows a bar moving per encoding batch (None: when stderr is a
        terminal). No texts: nothing is written, and the result is empty."""
        texts = text_list(texts, empty_ok=True)
        snap = self._snap
        ids = inputs.new_ids(snap, len(texts), ids, existing_ok=upsert)
        metas = inputs.metadata_json(len(texts), metadata)
        if not texts:
            return Added()
        encoder = self.encoder
        bar = progress_bar(len(texts), wanted(progress), unit="doc", desc="encoding")
        try:
            with self._transaction() as txn:
                snap = txn.snapshot
                replaced = list(snap.store.positions_of(ids, snap.generation)) if upsert else []
                return write.add_texts(
                    txn, encoder, texts, ids, metas, replaced, **self._how(batch_size, bar, truncate)
                )
        finally:
            bar.close()

    def _how(self, batch_size, bar, truncate) -> dict:
        return {"batch_size": batch_size, "bar": bar, "truncate": truncate, "threads": self.threads}

    def add_embeddings(
        self,
        embeddings,
        ids: Sequence[str] | None,
        metadata: Sequence[Mapping] | None = None,
        *,
        texts: Sequence[str] | None = None,
    ) -> list[str]:
        """Add precomputed token matrices (a ``Ragged`` or a list of ``(n_i, dim)`` arrays), one
        per document; ``texts``, when given, are stored (returned in hits, used by explain) and
        keyword-indexed. No matrices: nothing is written, and the result is empty."""
        ragged = inputs.embeddings(embeddings, self.dim)
        ids = inputs.new_ids(self._snap, len(ragged), ids)
        metas = inputs.metadata_json(len(ragged), metadata)
        texts = inputs.stored_texts(texts, len(ragged))
        if not ids:
            return []
        with self._transaction() as txn:
            write.append(txn, ragged, ids, metas, texts, [], self.threads)
        return ids

    def delete(self, ids) -> None:
        """Delete documents, every passage of each (KeyError, and nothing deleted, if any id is
        unknown). No ids: nothing happens."""
        ids = list(dict.fromkeys(id_list(ids)))
        if ids:
            with self._transaction() as txn:
                write.append(txn, None, [], [], None, ids, self.threads)

    def update(self, id: str, text: str, metadata: Mapping | None = None) -> None:
        """Replace document ``id``'s text (and metadata; None keeps the current metadata)."""
        self.update_many([one_id(id)], [text], None if metadata is None else [metadata])

    def update_many(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[Mapping | None] | None = None,
        *,
        batch_size: int | None = None,
        progress: bool | None = None,
        truncate: bool = False,
    ) -> None:
        """Replace the texts (and metadata) of the documents ``ids`` in one commit: KeyError, and
        nothing written, if one is unknown. A metadata entry of None (or ``metadata=None``)
        keeps that document's current metadata; the rest is as :meth:`add`. No ids: nothing
        happens."""
        texts = text_list(texts, empty_ok=True)
        ids = inputs.fresh_ids(len(texts), id_list(ids))
        given = [None] * len(ids) if metadata is None else list(metadata)
        inputs.metadata_json(len(ids), [m or {} for m in given])  # checked before any work
        if not ids:
            return
        encoder = self.encoder
        bar = progress_bar(len(texts), wanted(progress), unit="doc", desc="encoding")
        try:
            with self._transaction() as txn:
                snap = txn.snapshot
                heads = snap.positions(ids)  # KeyError for an unknown id, before any work
                current = snap.store.rows(heads, with_text=False)
                metas = inputs.metadata_json(
                    len(ids), [current[h].meta if m is None else m for h, m in zip(heads, given)]
                )
                write.add_texts(txn, encoder, texts, ids, metas, ids, **self._how(batch_size, bar, truncate))
        finally:
            bar.close()
