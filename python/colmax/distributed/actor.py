"""One replica of one shard: the Ray actor that searches the shard's index and writes to it.

A plain class, made a Ray actor by ``replicas.start`` (Ray is imported there, lazily). It is
given a path, never an index object (the index is opened where the actor runs), and serves
each read at the generation the coordinator names, so that one search reads the commits the
root records even while a write is committing on the shards. Writes go to the newest commit
through one writer ``Index``; the coordinator records the generations they make.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..index import Index
from ..ragged import Ragged

# readers kept open per actor: the root's current generation and the one before it, which
# searches already under way may still name
_READERS = 2


class ShardActor:
    def __init__(self, path: str, threads: int) -> None:
        self.path = Path(path)
        self.threads = threads
        self._readers: dict[int, Index] = {}
        self._writer_index: Index | None = None

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

    def search_batch(self, generation: int, queries: list[np.ndarray], k: int, options: dict):
        """Per query: (ids, scores) of this shard's best ``k``, best first, without documents."""
        hits = self._reader(generation).search_batch(queries, k, with_documents=False, **options)
        return [([h.id for h in hs], np.array([h.score for h in hs], dtype=np.float64)) for hs in hits]

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

    def _writer(self) -> Index:
        if self._writer_index is None:
            self._writer_index = Index.open(self.path, threads=self.threads)
        return self._writer_index

    def _state(self) -> tuple[int, int]:
        w = self._writer()
        return w.generation, len(w)

    def state(self) -> tuple[int, int]:
        """(generation, documents) of the shard's newest commit."""
        self._writer().reload()
        return self._state()

    def existing(self, ids: list[str]) -> list[str]:
        """Those of ``ids`` the newest commit holds."""
        w = self._writer()
        w.reload()
        return [i for i in ids if i in w]

    def add(self, texts, ids, metadata, batch_size):
        self._writer().add(texts, ids, metadata, batch_size=batch_size)
        return self._state()

    def add_embeddings(self, embeddings: Ragged, ids, metadata, texts):
        self._writer().add_embeddings(embeddings, ids, metadata, texts=texts)
        return self._state()

    def delete(self, ids):
        self._writer().delete(ids)
        return self._state()

    def update(self, id, text, metadata):
        self._writer().update(id, text, metadata)
        return self._state()

    def compact(self):
        self._writer().compact()
        return self._state()

    def rollback(self, generation: int) -> tuple[int, int]:
        """Undo the shard's commits after ``generation`` (an unfinished sharded write)."""
        w = self._writer()
        w.rollback(generation)
        for g in [g for g in self._readers if g > generation]:
            self._readers.pop(g).close()
        return self._state()

    # -- the first add of a plaid sharded index ------------------------------------------------

    def encode(self, texts, batch_size):
        """The documents' vectors (kept in Ray's object store until the shared codebook is
        trained) and their token counts."""
        ragged = self._writer().encoder.encode_documents(texts, batch_size=batch_size)
        return ragged, ragged.lengths

    def rows(self, ragged: Ragged, rows: np.ndarray) -> np.ndarray:
        """Token rows ``rows`` of ``ragged`` (a training sample)."""
        return np.ascontiguousarray(ragged.tokens[rows])

    def recreate(self, model, options: dict) -> tuple[int, int]:
        """Make the shard a new empty index, ``Index.create(path, model, **options)``. Only ever
        done while the root records the shard as empty: to install the shared codebook before
        the first add of a plaid index, or to undo an unfinished one."""
        if self._writer_index is not None:
            self._writer_index.close()
            self._writer_index = None
        for index in self._readers.values():
            index.close()
        self._readers.clear()
        shutil.rmtree(self.path, ignore_errors=True)
        self._writer_index = Index.create(self.path, model, threads=self.threads, **options)
        return self._state()

    def first_add(self, model, options: dict, embeddings: Ragged | None, ids, metadata, texts):
        """Recreate the empty shard with the shared codebook (in ``options``) and add its documents."""
        self.recreate(model, options)
        if ids:
            return self.add_embeddings(embeddings, ids, metadata, texts)
        return self._state()
