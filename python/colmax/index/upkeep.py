"""The index-wide operations of ``Index``, each one commit (or a read of the whole index):
rollback, compact, retrain, compress, add_keyword_index, verify, warm and info."""

from __future__ import annotations

import os
from pathlib import Path

from . import codebook as codebooks
from . import compress as compressing
from . import history, integrity, maintenance, write
from .rewrite import rewrite


class Upkeep:
    """Mixed into ``Index`` (which provides ``_snap``, ``_read``, ``_transaction``, ``_model``,
    ``kind``, ``dim``, ``threads`` and ``open``)."""

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
    ) -> Upkeep:
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
            return type(self).open(path, model=self._model, threads=self.threads)
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

    def verify(self) -> dict:
        """Hash every segment and codebook file against the manifest and check the store
        (SQLite's integrity check, every row's CRC, the keyword index, the document count):
        IndexFormatError naming every damaged file, else a report (files, bytes, seconds) that
        is also recorded in the index directory, where ``info()`` and ``colmax info`` show it."""
        snap = self._read()
        report = integrity.verify(snap.path, snap.manifest, snap.store)
        integrity.raise_problems(snap.path, report)
        recorded = integrity.record(snap.path, snap.manifest, report)
        return {"files": report.files, "bytes": report.bytes, "seconds": report.seconds, "recorded": recorded}

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
        return maintenance.info(self._read())
