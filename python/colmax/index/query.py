"""Query preparation: texts or matrices to checked float32 query matrices, and the staged-search
plan of a plaid index. Nothing here reads the store or the segments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validate import float_matrix, one_text, positive_int, text_list


@dataclass(frozen=True)
class Plan:
    """Staged-search parameters of a plaid index."""

    nprobe: int
    ncandidates: int

    @classmethod
    def default(cls, k: int) -> Plan:
        # Measured with benchmarks/bench_scale.py: on SciFact 256 documents in the last stage keep
        # 0.95 of the exact top-10 at 4 bits (128 keep 0.94, 512 0.96 at twice the latency);
        # nprobe barely matters there, while on 1M documents two probes per query token keep
        # the latency near 50 ms. Larger k needs proportionally more candidates.
        return cls(nprobe=2, ncandidates=max(256, 16 * k))


def plan_search(kind: str, k: int, exact: bool, nprobe, ncandidates) -> Plan | None:
    """Staged-search parameters, or None for exact search (see docs/plaid.md). The knobs are
    checked even where they are not used, so a wrong one never passes silently."""
    if kind == "exact" and (nprobe is not None or ncandidates is not None):
        raise ValueError("nprobe and ncandidates apply to kind='plaid' indexes only")
    nprobe = None if nprobe is None else positive_int("nprobe", nprobe)
    ncandidates = None if ncandidates is None else positive_int("ncandidates", ncandidates)
    if kind == "exact" or exact:
        return None
    default = Plan.default(k)
    return Plan(nprobe or default.nprobe, ncandidates or default.ncandidates)


def _encoded(encoder, texts: list[str]) -> list[np.ndarray]:
    """Encode query texts, refusing any that the model would truncate (with [MASK] expansion,
    ColBERT's queries are cut to their fixed length by design)."""
    items = encoder.tokenizer.queries(texts)  # tokenized once: checked, then encoded
    if not encoder.config.do_query_expansion:
        for i in np.flatnonzero(items.truncated):
            which = "the query" if len(texts) == 1 else f"query {i}"
            raise ValueError(
                f"{which} is longer than the model's limit of {encoder.query_length} tokens and "
                "would be truncated: shorten it, or pass its token matrix"
            )
    return [np.ascontiguousarray(q, dtype=np.float32) for q in encoder.encode_tokenized(items)]


def query_matrix(query, dim: int, encoder: Callable[[], object]) -> np.ndarray:
    """A text (encoded by ``encoder()``'s model) or a ``(n_tokens, dim)`` matrix, checked."""
    if isinstance(query, str):
        (q,) = _encoded(encoder(), [one_text(query, "the query")])
        return q
    if isinstance(query, np.ndarray):
        return float_matrix(query, "the query matrix", dim)
    raise TypeError(f"query must be a string or a (n_tokens, dim) array, got {type(query).__name__}")


def query_list(queries) -> list:
    """The queries of a batch as a list: texts or matrices (a Ragged's rows)."""
    if isinstance(queries, str):
        raise TypeError("search_batch takes a list of queries: for one query use search()")
    return list(queries)


def query_matrices(queries: list, dim: int, encoder: Callable[[], object]) -> list[np.ndarray]:
    """Many queries (from ``query_list``): texts are encoded in one batch; matrices are checked."""
    if queries and all(isinstance(q, str) for q in queries):
        return _encoded(encoder(), text_list(queries, "queries"))
    return [
        float_matrix(q, f"queries[{i}]", dim) if isinstance(q, np.ndarray) else query_matrix(q, dim, encoder)
        for i, q in enumerate(queries)
    ]
