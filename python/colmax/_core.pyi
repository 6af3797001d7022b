"""Stubs for colmax._core: the C++ MaxSim engine and the compressed index (documented in colmax.scoring)."""

from collections.abc import Callable, Sequence

import numpy as np

def maxsim(
    query: np.ndarray,
    doc_tokens: np.ndarray,
    doc_offsets: np.ndarray,
    *,
    doc_scales: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray: ...
def maxsim_batch(
    queries: list[np.ndarray],
    doc_tokens: np.ndarray,
    doc_offsets: np.ndarray,
    *,
    doc_scales: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray: ...
def maxsim_topk(
    query: np.ndarray,
    doc_tokens: np.ndarray,
    doc_offsets: np.ndarray,
    k: int,
    *,
    doc_scales: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]: ...

QUERY_LEVELS: int
"""Levels a side of the int8 kernels' query quantization (colmax/quantize.hpp)."""
RESIDUAL_QUERY_LEVELS: int
"""Levels a side of the query quantization of the compressed index's residual scoring."""

def quantize_int8(x: np.ndarray, *, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float32 rows as (int8 values (n, dim), float32 scales (n,)), x ~ scales[:, None] * values.

    scale = max|row| / 127, value = round_half_even(row * (127 / max|row|)); a zero row has scale 0.
    """

def kmeans_assign(
    x: np.ndarray, centroids: np.ndarray, *, probe_groups: int = 0, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid by inner product per row of float32 x: (int32 codes, float32 best scores).

    Ties go to the lower centroid index; at most 2**24 centroids. With ``probe_groups`` > 0 the
    centroids are grouped (about sqrt(n_centroids) groups, a few Lloyd steps over the centroids)
    and a row is assigned to the best centroid of its ``probe_groups`` best groups: approximate,
    at about (groups + probe_groups * n_centroids / groups) / n_centroids of the exact cost.
    """

def plaid_compress(
    x: np.ndarray,
    codes: np.ndarray,
    centroids: np.ndarray,
    cutoffs: np.ndarray,
    nbits: int,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """Residuals x - centroids[codes] as uint8 (n, dim * nbits // 8).

    Bucket per dimension: numpy.searchsorted(cutoffs, residual, side="right") (a value equal to a
    cutoff goes up); dimension j sits at bits [j * nbits, (j + 1) * nbits) of its row, LSB-first.
    """

def plaid_decompress(
    codes: np.ndarray,
    residuals: np.ndarray,
    centroids: np.ndarray,
    weights: np.ndarray,
    nbits: int,
    normalize: bool,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """centroids[codes] + weights[bucket] per dimension, float32 (n, dim); rows L2-normalized if asked."""

def plaid_doc_codes(
    codes: np.ndarray, doc_offsets: np.ndarray, n_centroids: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-document stored codes of uint16 ``codes`` (one per token): (int64 order, uint8 blobs,
    int64 blob offsets (n_docs + 1,)).

    Store input token ``order[t]`` as token t: each document's tokens sorted by code (stable).
    Document d's blob, ``blobs[offsets[d]:offsets[d + 1]]``, holds ceil(n_tokens / 8) bytes of run
    starts (bit t LSB-first set where token t's code differs from token t - 1's) and then its
    distinct codes, Elias-Fano coded below n_centroids (docs/format.md).
    """

def plaid_token_codes(
    doc_codes: np.ndarray,
    doc_code_offsets: np.ndarray,
    doc_offsets: np.ndarray,
    docs: np.ndarray,
    n_centroids: int,
) -> np.ndarray:
    """uint16 code of every stored token of the int64 local ids ``docs``, document after document."""

def plaid_build_ivf(
    doc_codes: np.ndarray, doc_code_offsets: np.ndarray, doc_offsets: np.ndarray, n_centroids: int
) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets (n_centroids + 1,), uint8 lists): centroid c's ascending local document ids,
    ``offsets[c + 1] - offsets[c]`` of them, Elias-Fano coded below n_docs, the lists back to back."""

def plaid_ivf_bytes(ivf_offsets: np.ndarray, n_docs: int) -> int:
    """Size of the inverted file whose list lengths ``ivf_offsets`` gives, in a segment of n_docs."""

PlaidSegment = tuple[
    np.ndarray,  # doc_codes: uint8 blobs, from plaid_doc_codes
    np.ndarray,  # doc_code_offsets: int64 (n_docs + 1,)
    np.ndarray,  # residuals: uint8 (n_tokens, dim * nbits // 8), in stored token order
    np.ndarray,  # offsets: int64 (n_docs + 1,)
    np.ndarray,  # ivf_offsets: int64 (n_centroids + 1,)
    np.ndarray,  # ivf: uint8, from plaid_build_ivf
    np.ndarray | None,  # allowed: sorted unique int64 local doc ids, or None for all
    np.ndarray | None,  # exact_tokens: float32 / float16 / uint16 (bfloat16) / int8 (n_tokens, dim), or None
    np.ndarray | None,  # exact_scales: float32 (n_tokens,) with int8 exact_tokens, else None
    int,  # first_pos: added to local ids in the result
]

def plaid_search(
    query: np.ndarray,
    centroids: np.ndarray,
    weights: np.ndarray,
    nbits: int,
    normalize: bool,
    segments: list[PlaidSegment],
    k: int,
    nprobe: int,
    ncandidates: int,
    *,
    exhaustive: bool = False,
    decompress: bool | None = None,
    threads: int | None = None,
    stats: dict | None = None,
    complete: Callable[[list[np.ndarray]], Sequence[np.ndarray]] | None = None,
) -> tuple[np.ndarray, ...]:
    """PLAID search: (int64 positions, float32 scores), best first, ties to the lower position.

    Each query token probes its nprobe best centroids; when all segments together hold more
    candidates than ncandidates (raised to k), the best ncandidates by approximate centroid
    scores go on, and are scored by MaxSim on exact_tokens where given, else straight from their
    codes and residuals (int8), or with ``decompress`` on their float32 decompressed vectors.
    exhaustive=True scores every allowed document; ``decompress`` defaults to ``exhaustive``.
    A dict passed as ``stats`` receives the wall-clock seconds of each stage (check_s, probe_s,
    gather_s, approx_s, exact_s; decode_s is exact_s's decompression summed over threads) and
    the documents each kept (probed centroids, gathered, pruned, scored).
    ``complete``, a function taking the candidates the last stage scores (one sorted int64 array
    of local ids per segment) and returning one sorted int64 array of local document ids per
    segment, is called once before the last stage, which scores those documents too (allowed or
    not, without ranking them): their float32 scores come back as a third array, segment after
    segment. An exception it raises leaves the search as itself.
    """

def compiled_isas() -> list[str]: ...
def supported_isas() -> list[str]: ...
def active_isa() -> str: ...
def set_active_isa(name: str) -> None: ...
def default_threads() -> int: ...
def fma_peak_gflops(seconds: float = 0.5) -> float: ...
