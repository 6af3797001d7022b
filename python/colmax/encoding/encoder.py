"""Encoder: texts -> L2-normalized float32 token matrices (colmax.Ragged) via onnxruntime."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .._progress import progress_bar
from .._validate import positive_int
from ..ragged import Ragged, offsets_from_lengths
from .attention import fused_model
from .default_model import default_model_dir
from .models import ModelFormatError, resolve_model
from .passages import Passages
from .tokenizer import ColbertTokenizer, Tokenized

# Batches are cut by padded tokens, not by texts: ~2k tokens (about 11 documents of 180 tokens)
# keep the activations in cache. Measured on SciFact (2 threads, 180-token documents), int8:
# 120-140 docs/s at 1-2k tokens vs 98-102 at 32 documents; float32: 76 vs 66. Dynamic int8
# scales activations per batch, and very small batches cost quality (Cranfield nDCG@10 0.375
# at 1024 tokens, 0.380 at 2048; float32 0.381).
DEFAULT_BATCH_TOKENS = 2048
MAX_BATCH_SIZE = 256
# Up to this many padded tokens (a query or a few) a batch runs on a one-thread session: as fast
# as on two, measured with one SciFact query at a time (p50 2.3 ms on one thread, 3.3 on two
# without spinning), and it leaves the other cores to the search that follows.
SMALL_BATCH_TOKENS = 128


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _session(onnx_path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # parallelism is inside the ops
    # onnxruntime's default counts physical cores of the whole machine; use what this process may run on
    options.intra_op_num_threads = threads or _available_cpus()
    options.inter_op_num_threads = 1
    # No busy-waiting between runs: onnxruntime's pool otherwise spins on the cores after every
    # encode, while the search that follows needs them (SciFact text queries on 2 vCPUs: p50 16
    # against 25 ms, docs/plaid.md). Encoding large batches loses nothing measurable.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: warnings about unused initializers are noise
    try:
        return ort.InferenceSession(fused_model(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for unreadable files
        raise ModelFormatError(f"onnxruntime cannot load {onnx_path}: {e}") from None


class Encoder:
    """ColBERT-style encoder over an ONNX model directory.

    ``Encoder()`` loads the packaged default (all-MiniLM-L6-v2 token vectors, int8, dim 384;
    built into the user cache on first use, no network). ``Encoder(path)`` loads a directory
    written by ``colmax convert`` or LightOn's ONNX export. Keyword settings override the
    directory's config (e.g. ``do_query_expansion=True`` for LightOn exports, which always
    write False). ``encode_queries`` and ``encode_documents`` truncate texts longer than
    ``query_length`` / ``document_length`` tokens; ``encode_passages`` cuts long documents into
    overlapping passages instead, losing nothing.
    ``batch_tokens`` bounds the padded tokens per inference batch (texts are batched in length
    order); ``threads`` defaults to every CPU this process may use.
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        int8: bool | None = None,
        threads: int | None = None,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        query_length: int | None = None,
        document_length: int | None = None,
        do_query_expansion: bool | None = None,
        attend_to_expansion_tokens: bool | None = None,
    ) -> None:
        files = resolve_model(default_model_dir() if path is None else path, int8=int8)
        config = files.config.replace(
            query_length=query_length,
            document_length=document_length,
            do_query_expansion=do_query_expansion,
            attend_to_expansion_tokens=attend_to_expansion_tokens,
        )
        for name in ("query_length", "document_length"):
            if getattr(config, name) < 3:
                raise ValueError(
                    f"{name} must be at least 3 ([CLS], marker, [SEP]), got {getattr(config, name)}"
                )
        batch_tokens = positive_int("batch_tokens", batch_tokens)
        self.config = config
        self.path = files.directory
        self.onnx_path = files.onnx_path
        self.name: str = config.model_name
        self.batch_tokens = batch_tokens
        self.tokenizer = ColbertTokenizer(files.tokenizer_path, config)
        self._session = _session(files.onnx_path, threads)
        self._threads = threads or _available_cpus()
        self._small_session = None  # the one-thread session for small batches, made on first use
        self._small_lock = threading.Lock()
        inputs = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - inputs
        if missing:
            raise ModelFormatError(
                f"{files.onnx_path} lacks inputs {sorted(missing)}: not a BERT-style encoder"
            )
        self._token_types = "token_type_ids" in inputs
        self._output = self._session.get_outputs()[0].name
        width = self._session.get_outputs()[0].shape[-1]
        self.dim: int = width if isinstance(width, int) else int(config.embedding_dim or self._probe_dim())

    @property
    def query_length(self) -> int:
        return self.config.query_length

    @property
    def document_length(self) -> int:
        return self.config.document_length

    def __repr__(self) -> str:
        return (
            f"Encoder(name={self.name!r}, dim={self.dim}, query_length={self.query_length}, "
            f"document_length={self.document_length}, onnx={self.onnx_path.name})"
        )

    def encode_queries(self, texts: Iterable[str], *, batch_size: int | None = None) -> Ragged:
        """One (n_tokens, dim) matrix per query: all positions, [MASK] expansion included."""
        return self._encode(self.tokenizer.queries(texts), batch_size, progress=False)

    def encode_tokenized(self, items: Tokenized, *, batch_size: int | None = None) -> Ragged:
        """The vectors of items this encoder's ``tokenizer`` made (``tokenizer.queries(texts)``,
        ``tokenizer.documents(texts)``), e.g. once their ``truncated`` flags are checked:
        ``encode_tokenized(tokenizer.queries(texts))`` equals ``encode_queries(texts)``."""
        return self._encode(items, batch_size, progress=False)

    def encode_documents(
        self, texts: Iterable[str], *, batch_size: int | None = None, progress: bool = False
    ) -> Ragged:
        """One (n_kept, dim) matrix per document, skiplist tokens and padding dropped.

        Documents are batched in length order to minimize padding (``batch_size`` fixes the
        number per batch instead of the ``batch_tokens`` budget); the result is in input order,
        written once into a preallocated matrix.
        """
        return self._encode(self.tokenizer.documents(texts), batch_size, progress)

    def encode_passages(
        self,
        texts: Iterable[str],
        *,
        length: int | None = None,
        stride: int | None = None,
        truncate: bool = False,
        titles: Sequence[str | None] | None = None,
        batch_size: int | None = None,
        progress=False,
    ) -> tuple[Ragged, Passages]:
        """Documents of any length as passages: one (n_kept, dim) matrix per passage, in document
        order, and where each passage comes from (its document and character span).

        A passage holds at most ``length`` tokens (default and maximum: ``document_length``), and
        starts ``stride`` text tokens after the previous one (default: 3/4 of a passage), on the
        start of a word; a document that fits is one passage encoded as ``encode_documents``
        would. ``truncate=True`` keeps the first passage only (``Passages.truncated`` says which
        documents lost text). ``titles`` (one per text, None for none) go before the text of every
        passage but the first, taking at most a quarter of it. ``progress``: a bar counting
        documents, moved per batch (True for a new one, or an object with ``update(n)``)."""
        items, where = self.tokenizer.passages(texts, length, stride, truncate=truncate, titles=titles)
        return self._encode(items, batch_size, progress, where.owner), where

    def _probe_dim(self) -> int:
        ids = np.array([[self.tokenizer.pad_id]], dtype=np.int64)
        return int(self._run(ids, np.ones_like(ids)).shape[-1])

    def _run(self, ids: np.ndarray, attention: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": attention}
        if self._token_types:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return self._session_for(ids.size).run([self._output], feeds)[0]

    def _session_for(self, padded_tokens: int):
        if padded_tokens > SMALL_BATCH_TOKENS or self._threads == 1:
            return self._session
        with self._small_lock:
            if self._small_session is None:
                self._small_session = _session(self.onnx_path, 1)
        return self._small_session

    def _batches(self, lengths: np.ndarray, batch_size: int | None) -> Iterator[np.ndarray]:
        """Item indices in length order, cut into batches of at most ``batch_size`` items or,
        by default, about ``batch_tokens`` padded tokens."""
        order = np.argsort(lengths, kind="stable")
        if batch_size is not None:
            batch_size = positive_int("batch_size", batch_size)
            for start in range(0, len(order), batch_size):
                yield order[start : start + batch_size]
            return
        start = 0
        while start < len(order):
            stop = start + 1
            # ascending lengths: the item being added is the batch's widest
            while (
                stop < len(order)
                and stop - start < MAX_BATCH_SIZE
                and (stop - start + 1) * lengths[order[stop]] <= self.batch_tokens
            ):
                stop += 1
            yield order[start:stop]
            start = stop

    def _passage_batches(self, lengths: np.ndarray, batch_size: int | None, owner) -> Iterator[np.ndarray]:
        """:meth:`_batches` over every document's first passage, then over the passages that
        continue long documents. Dynamic int8 scales activations per batch, so a vector depends
        on its batch-mates: batched apart, the first passages (every short document whole) get
        exactly the vectors truncation would give them, and splitting documents changes no
        other document's vectors."""
        if owner is None:
            yield from self._batches(lengths, batch_size)
            return
        first = np.ones(len(owner), dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        for group in (np.flatnonzero(first), np.flatnonzero(~first)):
            for batch in self._batches(lengths[group], batch_size):
                yield group[batch]

    def _encode(self, items: Tokenized, batch_size: int | None, progress, owner=None) -> Ragged:
        """Encode every item, moving ``progress`` per batch: by items, or with ``owner`` (the
        document of each item) by the documents whose items are all done."""
        offsets = offsets_from_lengths(np.fromiter((k.sum() for k in items.keep), np.int64, len(items)))
        out = np.empty((int(offsets[-1]), self.dim), dtype=np.float32)
        lengths = np.fromiter((len(i) for i in items.ids), dtype=np.int64, count=len(items))
        own_bar = isinstance(progress, bool)
        total = len(items) if owner is None else int(owner[-1]) + 1 if len(owner) else 0
        bar = progress_bar(total, progress, unit="doc", desc="encoding") if own_bar else progress
        pending = None if owner is None else np.bincount(owner, minlength=total)
        try:
            for batch in self._passage_batches(lengths, batch_size, owner):
                width = int(lengths[batch].max())
                ids = np.full((len(batch), width), self.tokenizer.pad_id, dtype=np.int64)
                attention = np.zeros((len(batch), width), dtype=np.int64)
                keep = np.zeros((len(batch), width), dtype=bool)
                for row, i in enumerate(batch):
                    n = lengths[i]
                    ids[row, :n] = items.ids[i]
                    attention[row, : items.n_attended[i]] = 1
                    attention[row, items.n_attended[i] : n] = items.tail_attention
                    keep[row, :n] = items.keep[i]
                vectors = self._run(ids, attention)
                for row, i in enumerate(batch):
                    out[offsets[i] : offsets[i + 1]] = vectors[row][keep[row]]
                if pending is None:
                    bar.update(len(batch))
                else:
                    done = owner[batch]
                    np.subtract.at(pending, done, 1)
                    bar.update(int(np.count_nonzero(pending[np.unique(done)] == 0)))
        finally:
            if own_bar:
                bar.close()
        if not self.config.normalized:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return Ragged(out, offsets)


def load_encoder(model=None, *, threads: int | None = None):
    """The encoder a ``model`` argument names: None for the packaged default, a model directory,
    or an Encoder (anything with ``encode_queries``, ``encode_documents`` and ``dim``) as is; a
    model loaded here runs on ``threads``."""
    if model is None:
        return Encoder(threads=threads)
    if isinstance(model, (str, os.PathLike)):
        return Encoder(model, threads=threads)
    if all(hasattr(model, name) for name in ("encode_queries", "encode_documents", "dim")):
        return model
    raise TypeError(f"model must be None, a model directory or an Encoder, got {type(model).__name__}")
