"""MaxSim scoring over ragged document matrices: the public face of the C++ core.

``doc_tokens`` is one C-contiguous ``(total_tokens, dim)`` matrix holding every document's
token vectors back to back, stored as ``float32``, ``float16``, ``uint16`` holding
**bfloat16** bits (see :func:`to_bfloat16`), or ``int8`` with ``doc_scales`` (float32, one per
row; see :func:`quantize_int8`); ``doc_offsets`` (int64, ``n_docs + 1``) says document ``i``
owns rows ``doc_offsets[i]:doc_offsets[i + 1]``. A :class:`~colmax.Ragged` may be passed in
place of the pair. Queries are C-contiguous float32 ``(n_query_tokens, dim)``. Inputs are used
in place (no copy), so memory-mapped matrices are scored straight from disk.

int8 documents are scored in integers: each query token is quantized the same way (symmetric,
its own scale, ``QUERY_LEVELS`` levels a side), the integer dot products are exact and the two
scales are applied before the max, so the score is ``sum_i s_i * max_j (s_j * <q8_i, d8_j>)``
with the same bits on every instruction set.

A document with no tokens scores ``-inf``. Document values must be finite; NaN scores rank
last in :func:`maxsim_topk`. Calls release the GIL and use ``threads`` workers (default: one
per available CPU); results are identical for every thread count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _core
from .ragged import Ragged


def _docs(doc_tokens, doc_offsets):
    if isinstance(doc_tokens, Ragged):
        if doc_offsets is not None:
            raise TypeError("pass either a Ragged or doc_tokens with doc_offsets, not both")
        return doc_tokens.tokens, doc_tokens.offsets
    if doc_offsets is None:
        raise TypeError("doc_offsets is required unless doc_tokens is a colmax.Ragged")
    return doc_tokens, doc_offsets


def _candidates(candidates):
    if candidates is None or isinstance(candidates, np.ndarray):
        return candidates
    return np.asarray(candidates, dtype=np.int64)


# Levels a side of the int8 kernels' query quantization (colmax/quantize.hpp).
QUERY_LEVELS: int = _core.QUERY_LEVELS


def maxsim(
    query: np.ndarray,
    doc_tokens: np.ndarray | Ragged,
    doc_offsets: np.ndarray | None = None,
    *,
    doc_scales: np.ndarray | None = None,
    candidates: Sequence[int] | np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """MaxSim score of every document, float32 ``(n_docs,)``.

    With ``candidates`` (document indices), only those are scored and the result follows
    their order, shape ``(len(candidates),)``. ``doc_scales`` goes with int8 ``doc_tokens``.
    """
    tokens, offsets = _docs(doc_tokens, doc_offsets)
    return _core.maxsim(
        query, tokens, offsets, doc_scales=doc_scales, candidates=_candidates(candidates), threads=threads
    )


def maxsim_batch(
    queries: Sequence[np.ndarray] | Ragged,
    doc_tokens: np.ndarray | Ragged,
    doc_offsets: np.ndarray | None = None,
    *,
    doc_scales: np.ndarray | None = None,
    candidates: Sequence[int] | np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Scores of several queries (token counts may differ) in one pass over the documents.

    Returns float32 ``(n_queries, n_docs)`` (or ``(n_queries, len(candidates))``). Row ``i``
    equals ``maxsim(queries[i], ...)``; reading each document once for all queries is what
    makes this faster than separate calls.
    """
    if isinstance(queries, np.ndarray):
        raise TypeError(
            "queries must be a sequence of (n_tokens, dim) matrices or a colmax.Ragged, not one array"
        )
    tokens, offsets = _docs(doc_tokens, doc_offsets)
    return _core.maxsim_batch(
        list(queries),
        tokens,
        offsets,
        doc_scales=doc_scales,
        candidates=_candidates(candidates),
        threads=threads,
    )


def maxsim_topk(
    query: np.ndarray,
    doc_tokens: np.ndarray | Ragged,
    doc_offsets: np.ndarray | None = None,
    k: int = 10,
    *,
    doc_scales: np.ndarray | None = None,
    candidates: Sequence[int] | np.ndarray | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best documents as ``(indices int64, scores float32)``.

    Sorted by score descending, ties broken by the lower document index; ``k`` is clipped to
    the number of documents scored. ``candidates`` (unique document indices) restricts the
    search to a subset, for reranking and filtered search.
    """
    tokens, offsets = _docs(doc_tokens, doc_offsets)
    return _core.maxsim_topk(
        query, tokens, offsets, k, doc_scales=doc_scales, candidates=_candidates(candidates), threads=threads
    )


def quantize_int8(x: np.ndarray, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` (n, dim) as int8 with a float32 scale each, for int8 ``doc_tokens``.

    Symmetric per row: ``scale = max|row| / 127`` and ``value = round(row * 127 / max|row|)``
    (half to even), so ``row ~ scale * values`` with an error of at most half a step per value
    (a zero row: scale 0). Floating-point input is converted to float32; values must be finite.
    Returns ``(values int8 (n, dim), scales float32 (n,))``: 4x smaller than float32.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"quantize_int8 takes floating-point vectors, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"quantize_int8 takes a 2-D (n, dim) matrix, got shape {x.shape}")
    return _core.quantize_int8(np.ascontiguousarray(x, dtype=np.float32), threads=threads)


# Elements converted per step: bounds to_bfloat16's temporaries to a few MiB at any input size.
_CONVERT_CHUNK = 1 << 20


def to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values as bfloat16 bits in a uint16 array (round to nearest even), for storage."""
    values = np.asarray(values)
    if values.dtype != np.float32:
        raise TypeError(f"to_bfloat16 takes float32, got {values.dtype}; convert with .astype(numpy.float32)")
    out = np.empty(values.shape, np.uint16)
    bits = np.ascontiguousarray(values).reshape(-1).view(np.uint32)
    flat = out.reshape(-1)
    for start in range(0, bits.size, _CONVERT_CHUNK):
        chunk = bits[start : start + _CONVERT_CHUNK]
        rounded = chunk + np.uint32(0x7FFF) + ((chunk >> np.uint32(16)) & np.uint32(1))
        # NaN must stay NaN: rounding could carry its payload into the exponent or clear it.
        nan = (chunk & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000)
        rounded[nan] = chunk[nan] | np.uint32(0x00400000)
        flat[start : start + _CONVERT_CHUNK] = rounded >> np.uint32(16)
    return out


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) widened exactly to float32."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise TypeError(f"from_bfloat16 takes uint16 bfloat16 bits, got {bits.dtype}")
    wide = bits.astype(np.uint32)
    wide <<= np.uint32(16)
    return wide.view(np.float32)
