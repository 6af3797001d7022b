"""The codebook of a compressed index: k-means centroids plus a ColBERTv2 residual codec.

A token vector ``x`` is stored as the id of its nearest centroid ``c`` and, per dimension, the
bucket of the residual ``x - c`` among ``2**nbits`` buckets whose cutoffs are quantiles of the
residual distribution (``nbits`` bits). Decoding adds the bucket's weight (the residual
distribution's mid-bucket quantile) to the centroid, then restores unit length when the training
vectors had it. The index keeps a document's ids as runs of one centroid (under a byte a token,
docs/format.md), so at dim 128 and 2 bits a token costs about 33 bytes instead of 512.

The heavy loops (assignment, packing, unpacking) run in the C++ core; k-means bookkeeping and
quantiles are NumPy over a sample. Large codebooks assign through groups of centroids (approximate,
see ``assign``), which is what keeps a build of 10^8 tokens under half an hour on two cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _core
from .._validate import positive_int
from .errors import IndexFormatError
from .files import check_sha256, missing, write_file

NBITS = (1, 2, 4, 8)
MAX_CENTROIDS = 1 << 16  # codes are uint16

# k-means trains on at most this many vectors per centroid (more adds time, not quality: faiss
# uses the same bound) and never on fewer than the whole corpus when it is smaller.
SAMPLE_PER_CENTROID = 64
MIN_SAMPLE = 1 << 16
_QUANTILE_SAMPLE = 1 << 22  # residual values used to place the bucket cutoffs

# Codebooks this large assign tokens through groups of centroids (_core.kmeans_assign's
# probe_groups): a token scores ~sqrt(n_centroids) group means, then the centroids of its best
# groups. Encoding probes 8 groups: at 16,384 centroids 7% of the exact arithmetic, and 98% of
# tokens get the exact nearest centroid (the rest a near one: a slightly larger residual). The
# k-means steps probe 16, since their errors move every later centroid; on SciFact at 4,096
# centroids this matched exact assignment (docs/plaid.md). Smaller codebooks are cheap enough to
# assign exactly.
GROUPED_ASSIGN_MIN_CENTROIDS = 4096
ENCODE_PROBE_GROUPS = 8
TRAIN_PROBE_GROUPS = 16


def default_n_centroids(n_tokens: int) -> int:
    """A power of two near 2 * sqrt(n_tokens) (ColBERTv2 uses 16 * sqrt on GPUs; on a CPU the
    assignment of every token to every centroid bounds the build time), at most one centroid
    per 8 tokens so that tiny corpora still train."""
    if n_tokens < 1:
        raise ValueError("cannot size a codebook for an empty corpus")
    k = 1 << max(0, round(math.log2(2.0 * math.sqrt(n_tokens))))
    return int(max(1, min(k, n_tokens // 8, MAX_CENTROIDS)))


def check_n_centroids(n_centroids) -> int:
    """A requested codebook size: an int in 1..MAX_CENTROIDS."""
    n_centroids = positive_int("n_centroids", n_centroids)
    if n_centroids > MAX_CENTROIDS:
        raise ValueError(f"n_centroids must be at most {MAX_CENTROIDS} (codes are uint16), got {n_centroids}")
    return n_centroids


def default_nbits(dim: int) -> int:
    """2 bits per dimension for ColBERT-sized vectors (dim <= 128), where ColBERTv2 showed them
    nearly lossless; 4 above: with the 384-dim default model, 2 bits keep 0.89 of the exact
    top-10 on SciFact and 4 bits 0.96 (benchmarks/bench_scale.py)."""
    return 2 if dim <= 128 else 4


def check_nbits(nbits, dim: int) -> int:
    if isinstance(nbits, bool) or not isinstance(nbits, (int, np.integer)) or int(nbits) not in NBITS:
        raise ValueError(f"nbits must be one of {', '.join(map(str, NBITS))}, got {nbits!r}")
    if (dim * int(nbits)) % 8:
        raise ValueError(
            f"dim {dim} x nbits {nbits} is not a whole number of bytes: use nbits=8, or a dim that is "
            f"a multiple of {8 // math.gcd(8, int(nbits))}"
        )
    return int(nbits)


@dataclass(frozen=True)
class Codebook:
    """Centroids ``(n_centroids, dim)`` float32 and the residual codec of ``nbits`` per dimension."""

    centroids: np.ndarray
    nbits: int
    cutoffs: np.ndarray  # 2**nbits - 1 ascending residual values between buckets
    weights: np.ndarray  # 2**nbits decoded residual value of each bucket
    normalize: bool  # decoded vectors are rescaled to unit length
    trained_tokens: int = 0  # corpus tokens when the codebook was trained (drift check)

    @property
    def n_centroids(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def compress(self, tokens: np.ndarray, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """float32 rows -> (uint16 centroid ids, packed residual bytes per row)."""
        tokens = np.ascontiguousarray(tokens, dtype=np.float32)
        codes, _ = assign(tokens, self.centroids, ENCODE_PROBE_GROUPS, threads)
        codes = codes.astype(np.uint16)
        residuals = _core.plaid_compress(
            tokens, codes, self.centroids, self.cutoffs, self.nbits, threads=threads
        )
        return codes, residuals

    def decompress(self, codes: np.ndarray, residuals: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The float32 rows that (codes, residuals) stand for."""
        return _core.plaid_decompress(
            np.ascontiguousarray(codes, dtype=np.uint16),
            np.ascontiguousarray(residuals, dtype=np.uint8),
            self.centroids,
            self.weights,
            self.nbits,
            self.normalize,
            threads=threads,
        )

    def record(self) -> dict:
        """What the index manifest keeps about the codebook (the centroids live in a file)."""
        return {
            "n_centroids": self.n_centroids,
            "nbits": self.nbits,
            "cutoffs": [float(x) for x in self.cutoffs],
            "weights": [float(x) for x in self.weights],
            "normalize": self.normalize,
            "trained_tokens": self.trained_tokens,
        }

    def save(self, path: Path) -> str:
        """Write the centroids file (little-endian float32 rows); return its SHA-256."""
        return write_file(path, self.centroids.astype("<f4", copy=False))

    @classmethod
    def load(cls, directory: Path, record: dict, dim: int) -> Codebook:
        """The codebook a manifest ``record`` describes, its centroids file checked against it."""
        path = directory / record["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise missing(directory, record["file"]) from None
        check_sha256(path, data, record.get("sha256"))
        try:
            centroids = np.frombuffer(data, dtype="<f4").reshape(int(record["n_centroids"]), dim)
            return cls.from_record(record, np.ascontiguousarray(centroids))
        except (KeyError, TypeError, ValueError) as e:
            raise IndexFormatError(f"the codebook of {directory} is damaged: {e}") from None

    @classmethod
    def from_record(cls, record: dict, centroids: np.ndarray) -> Codebook:
        nbits = check_nbits(record["nbits"], int(centroids.shape[1]))
        cutoffs = np.asarray(record["cutoffs"], dtype=np.float32)
        weights = np.asarray(record["weights"], dtype=np.float32)
        if cutoffs.shape != ((1 << nbits) - 1,) or weights.shape != (1 << nbits,):
            raise ValueError(
                f"codebook record has {cutoffs.size} cutoffs and {weights.size} weights for {nbits} bits"
            )
        if int(record["n_centroids"]) != centroids.shape[0]:
            raise ValueError(
                f"codebook record says {record['n_centroids']} centroids, the file holds {centroids.shape[0]}"
            )
        return cls(
            centroids,
            nbits,
            cutoffs,
            weights,
            bool(record["normalize"]),
            int(record.get("trained_tokens", 0)),
        )


def train(
    tokens: np.ndarray,
    *,
    nbits: int = 2,
    n_centroids: int | None = None,
    iterations: int = 10,
    seed: int = 0,
    threads: int | None = None,
) -> Codebook:
    """Train a codebook on token vectors ``(n_tokens, dim)`` float32 (a sample is taken when
    there are many). Spherical k-means (centroids renormalized) when the vectors are unit length,
    as ColBERT's are; plain k-means on inner-product assignment otherwise."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[0] == 0:
        raise ValueError(f"train needs a non-empty (n_tokens, dim) matrix, got shape {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.floating):
        raise TypeError(f"token vectors must be floating point, got {tokens.dtype}")
    check_nbits(nbits, tokens.shape[1])
    return train_sampled(
        tokens.shape[0],
        lambda rows: tokens if rows is None else tokens[rows],
        nbits=nbits,
        n_centroids=n_centroids,
        iterations=iterations,
        seed=seed,
        threads=threads,
    )


def train_sampled(
    n_tokens: int,
    rows_of,
    *,
    nbits: int = 2,
    n_centroids: int | None = None,
    iterations: int = 10,
    seed: int = 0,
    threads: int | None = None,
) -> Codebook:
    """:func:`train` on a corpus of ``n_tokens`` vectors that need not be in one place: only
    the sampled rows are read, as ``rows_of(sorted row numbers)`` (``rows_of(None)``: all rows)
    returning a float32 ``(len(rows), dim)`` matrix. The same corpus gives the same codebook
    however it is stored (the shards of colmax.distributed train it this way)."""
    n = int(n_tokens)
    n_centroids = check_n_centroids(default_n_centroids(n) if n_centroids is None else n_centroids)
    if n_centroids > n:
        raise ValueError(
            f"n_centroids must be between 1 and min(n_tokens={n}, {MAX_CENTROIDS}), got {n_centroids}"
        )
    iterations = positive_int("iterations", iterations)
    rng = np.random.default_rng(seed)
    n_sample = min(n, max(SAMPLE_PER_CENTROID * int(n_centroids), MIN_SAMPLE))
    rows = np.sort(rng.choice(n, n_sample, replace=False)) if n_sample < n else None
    sample = np.ascontiguousarray(rows_of(rows), dtype=np.float32)
    if sample.ndim != 2 or sample.shape[0] != n_sample:
        raise ValueError(f"rows_of returned shape {sample.shape} for {n_sample} rows")
    nbits = check_nbits(nbits, sample.shape[1])
    if not np.isfinite(sample).all():
        raise ValueError("token vectors hold NaN or infinite values")
    norms = np.linalg.norm(sample, axis=1)
    normalize = bool(np.all(np.abs(norms - 1.0) < 1e-3))

    centroids = sample[np.sort(rng.choice(n_sample, int(n_centroids), replace=False))].copy()
    for _ in range(iterations):
        codes, best = assign(sample, centroids, TRAIN_PROBE_GROUPS, threads)
        centroids = _update(sample, codes, best, centroids, normalize)
    codes, _ = assign(sample, centroids, TRAIN_PROBE_GROUPS, threads)
    cutoffs, weights = _bucket_values(sample - centroids[codes], nbits, rng)
    return Codebook(centroids, nbits, cutoffs, weights, normalize, trained_tokens=n)


def assign(
    tokens: np.ndarray, centroids: np.ndarray, probe_groups: int, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(int32 nearest-centroid codes, float32 scores) of float32 rows: exact for small codebooks,
    through ``probe_groups`` groups of centroids per row for large ones."""
    probe = probe_groups if centroids.shape[0] >= GROUPED_ASSIGN_MIN_CENTROIDS else 0
    return _core.kmeans_assign(tokens, centroids, probe_groups=probe, threads=threads)


def _update(
    sample: np.ndarray, codes: np.ndarray, best: np.ndarray, old: np.ndarray, normalize: bool
) -> np.ndarray:
    """Lloyd step: each centroid moves to its members' mean; an empty one takes the sample row
    its centroid fits worst (deterministic, and it splits the loosest cluster)."""
    k = old.shape[0]
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=k)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    present = counts > 0
    sums = np.zeros_like(old)
    sums[present] = np.add.reduceat(sample[order], starts[present], axis=0)
    centroids = sums / np.maximum(counts, 1)[:, None]
    empty = np.flatnonzero(~present)
    if empty.size:
        worst = np.argsort(best, kind="stable")[: empty.size]
        centroids[empty] = sample[worst]
    if normalize:
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        centroids /= np.where(norms > 0, norms, 1.0)
    return np.ascontiguousarray(centroids, dtype=np.float32)


def _bucket_values(
    residuals: np.ndarray, nbits: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """ColBERTv2's codec: cutoffs at the 1/2**b .. quantiles of all residual values, weights at
    the quantiles halfway between, so each bucket holds an equal share of the values."""
    values = residuals.ravel()
    if values.size > _QUANTILE_SAMPLE:
        values = values[rng.choice(values.size, _QUANTILE_SAMPLE, replace=False)]
    n_buckets = 1 << nbits
    cutoffs = np.quantile(values, np.arange(1, n_buckets) / n_buckets)
    weights = np.quantile(values, (np.arange(n_buckets) + 0.5) / n_buckets)
    return cutoffs.astype(np.float32), weights.astype(np.float32)
