"""One replica of one shard: the Ray actor that searches the shard's index and writes to it.

A plain class, made a Ray actor by ``replicas.start`` (Ray is imported there, lazily). It is
given a path, never an index object (the index is opened where the actor runs), and serves
each read at the generation the coordinator names, so that one search reads the commits the
root records even while a write is committing on the shards. Writes go to the newest commit
through one writer ``Index``; the coordinator records the generations they make.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..index import Index
from ..ragged import Ragged
from .hybrid import contenders
from .merge import Ranking, sent

# readers kept open per actor: the root's current generation and the one before it, which
# searches already under way may still name
_READERS = 2
# the methods a search calls on every shard through ShardActor.read
_READS = ("search_batch", "lexical", "candidates")


class ShardActor:
    def __init__(self, path: str, threads: int) -> None:
        self.path = Path(path)
        self.threads = threads
        self._readers: dict[int, Index] = {}
        self._encoder = None  # the shard's model, bound by the first write that encodes

    def ready(self) -> tuple[int, str]:
        """(process id, node id): where this replica runs."""
        import ray

        return os.getpid(), ray.get_runtime_context().get_node_id()

    # -- reads at a generation ---------------------------------------------------------------

    def _reader(self, generation: int) -> Index:
        index = self._readers.get(generation)
        if index is None:
            index = Index.open(self.path, threads=self.threads, generation=generation)
            self._readers[generation] = index
            while len(self._readers) > _READERS:
                self._readers.pop(min(self._readers)).close()
        return index

    def read(self, generation: int, method: str, payload: bytes) -> bytes:
        """``method(generation, *args)``, one of the reads a search fans out (``FanOut``), with
        its arguments and its answer pickled: one bytes object each way for Ray to move."""
        if method not in _READS:
            raise ValueError(f"{method!r} is not a shard read: one of {', '.join(_READS)}")
        answer = getattr(self, method)(generation, *pickle.loads(payload))
        return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)

    def search_batch(self, generation: int, queries: list, k: int, options: dict, documents: bool):
        """Per query, this shard's best ``k``, best first, as a ``merge.Ranking``: its documents'
        metadata and text too when ``documents`` (so that a search takes one round trip)."""
        index = self._reader(generation)
        hits = index.search_batch(queries, k, with_documents=documents, **options)
        return [Ranking.of(hs, documents) for hs in hits]

    def lexical(self, generation: int) -> tuple[bool, str]:
        """(whether the shard has a keyword index, the mode a text query gets by default there)."""
        index = self._reader(generation)
        return bool(index.info()["keyword_index"]), index.default_mode

    def candidates(
        self, generation: int, texts, matrices, k: int, modes, statistics, options: dict, documents: bool
    ):
        """Per query, ``Index.candidates`` in its mode ("hybrid" or "keyword"): with
        ``statistics`` None, with the counts that score them under the statistics of all shards
        (``counts=True``), else under each query's ``statistics``. (ids, sides) by ascending
        position, and with ``documents`` the documents of those that can reach the final top
        ``k`` (``hybrid.contenders``; else none), so that a search takes no call more for them."""
        index = self._reader(generation)
        statistics = [None] * len(texts) if statistics is None else statistics
        found = [
            index.candidates(text, k, mode=mode, statistics=stats, counts=stats is None, matrix=q, **options)
            for text, q, mode, stats in zip(texts, matrices, modes, statistics)
        ]
        if not documents:
            return [(ids, sides, {}) for ids, sides in found]
        return [
            (ids, sides, sent(index.get_batch(contenders(ids, sides, k), embeddings=False)))
            for ids, sides in found
        ]

    def get_batch(self, generation: int, ids: list[str], embeddings: bool):
        return self._reader(generation).get_batch(ids, embeddings=embeddings)

    def found(self, generation: int, ids: list[str]) -> list[str]:
        """Those of ``ids`` that commit ``generation`` holds."""
        index = self._reader(generation)
        return [i for i in ids if i in index]

    def rerank(self, generation: int, query, ids: list[str]):
        return self._reader(generation).rerank(query, ids)

    def explain(self, generation: int, query, id: str):
        return self._reader(generation).explain(query, id)

    def info(self, generation: int) -> dict:
        return self._reader(generation).info()

    # -- writes on the newest commit ---------------------------------------------------------

    @contextmanager
    def _writer(self) -> Iterator[Index]:
        """The shard's newest commit, opened for one call: another replica may have rolled the
        shard back or made it anew since, and a long-lived Index would keep that replica's
        stale store open. The model is loaded once per actor."""
        index = Index.open(self.path, model=self._encoder, threads=self.threads)
        try:
            yield index
        finally:
            index.close()

    def _write(self, method: str, *args, **kwargs) -> tuple[int, int]:
        """``Index.<method>(*args, **kwargs)`` on the newest commit; the shard's (generation,
        documents) after it."""
        with self._writer() as w:
            getattr(w, method)(*args, **kwargs)
            if method in ("add", "update"):  # it has loaded the model: keep it for the next call
                self._encoder = w.encoder
            return w.generation, len(w)

    def state(self) -> tuple[int, int]:
        """(generation, documents) of the shard's newest commit."""
        with self._writer() as w:
            return w.generation, len(w)

    def existing(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` the newest commit holds."""
        with self._writer() as w:
            return [i for i in ids if i in w]

    def add(self, texts, ids, metadata, batch_size, upsert=False):
        return self._write("add", texts, ids, metadata, batch_size=batch_size, upsert=upsert)

    def add_embeddings(self, embeddings: Ragged, ids, metadata, texts):
        return self._write("add_embeddings", embeddings, ids, metadata, texts=texts)

    def delete(self, ids):
        return self._write("delete", ids)

    def update(self, id, text, metadata):
        return self._write("update", id, text, metadata)

    def compact(self):
        return self._write("compact")

    def add_keyword_index(self):
        return self._write("add_keyword_index")

    def rollback(self, generation: int) -> tuple[int, int]:
        """Undo the shard's commits after ``generation`` (an unfinished sharded write)."""
        for g in [g for g in self._readers if g > generation]:
            self._readers.pop(g).close()
        return self._write("rollback", generation)

    # -- the first add of a plaid sharded index ------------------------------------------------

    def encode(self, texts, batch_size):
        """The documents' vectors (kept in Ray's object store until the shared codebook is
        trained) and their token counts."""
        with self._writer() as w:
            self._encoder = w.encoder
            ragged = self._encoder.encode_documents(texts, batch_size=batch_size)
        return ragged, ragged.lengths

    def rows(self, ragged: Ragged, rows: np.ndarray) -> np.ndarray:
        """Token rows ``rows`` of ``ragged`` (a training sample)."""
        return np.ascontiguousarray(ragged.tokens[rows])

    def recreate(self, model, options: dict) -> tuple[int, int]:
        """Make the shard a new empty index, ``Index.create(path, model, **options)``. Only ever
        done while the root records the shard as empty: to install the shared codebook before
        the first add of a plaid index, or to undo an unfinished one."""
        for index in self._readers.values():
            index.close()
        self._readers.clear()
        try:  # the root does not record whether shards keep a keyword index: the shard does
            with self._writer() as w:
                keyword = bool(w.info()["keyword_index"])
        except (OSError, ValueError):  # a shard an interrupted recreate left unreadable
            keyword = True
        shutil.rmtree(self.path, ignore_errors=True)
        Index.create(
            self.path, self._encoder or model, threads=self.threads, keyword=keyword, **options
        ).close()
        return self.state()

    def first_add(self, model, options: dict, embeddings: Ragged | None, ids, metadata, texts):
        """Recreate the empty shard with the shared codebook (in ``options``) and add its documents."""
        self.recreate(model, options)
        if ids:
            return self.add_embeddings(embeddings, ids, metadata, texts)
        return self.state()
